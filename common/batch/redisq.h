#ifndef AI_REDISQ_H
#define AI_REDISQ_H
/*
 * redisq.h - ai-batch across machines: jobs in Redis, workers anywhere.
 *
 * submit puts a job's items in a Redis stream and its options beside
 * them; any number of workers, on any host, take items through one
 * consumer group, run them through the local filter's engine (batch.h:
 * cache, ledger, retries, breaker) and store each item's line in a hash
 * keyed by the item's id, then XACK it.  The store and the XACK are one
 * Lua script, so an item is either pending or has its line, and a line
 * stored twice (a reclaimed item another worker also finished) is one
 * line: HSETNX keeps the first.
 *
 * Keys, for job ID (P = "ai-batch:"):
 *
 *   P jobs            sorted set of job ids by creation time (list)
 *   P active          set of the jobs not yet complete nor cancelled
 *   P ID              hash: total, created, state, args (the options, a
 *                     JSON array), ok, failed
 *   P ID:items        stream of {k: id, line: the item as JSON}, group "workers"
 *   P ID:keys         list of the ids in input order (results)
 *   P ID:res          hash id -> output line
 *   P ID:tries        hash id -> deliveries so far (poison items)
 *   P ID:rl           hash: the job's shared token buckets and server pause
 *
 * A worker that dies leaves its items pending: another takes them with
 * XAUTOCLAIM once they have been idle claim_idle_ms (a worker keeps the
 * items of a long run fresh with XCLAIM ... JUSTID).  An item delivered
 * max_deliveries times without a line (its worker died each time, or it
 * failed temporarily each time) gets an error line of type "poison".
 * An item that failed temporarily (429, 5xx, timeout, no connection,
 * after the engine's own retries) goes back to the end of the stream.
 *
 * --rpm, --tpm and the server's pauses (Retry-After, x-ratelimit-*) are
 * shared by every worker of a job: a token bucket in P ID:rl, taken and
 * refilled by one Lua script on Redis' own clock.
 *
 * Every command goes through one function that, when the connection
 * breaks, reconnects with backoff (100 ms doubling to 5 s, until *stop)
 * and sends the pipeline again: every pipeline is idempotent.
 */
#include "ai.h"
#include "batch/batch.h"

#include <json-c/json.h>
#include <signal.h>

struct redisq {
	void *ctx;              /* redisContext, or NULL while disconnected */
	char *host;             /* owned */
	int port, db;
	char *user;             /* owned or NULL: the URL's user (Redis 6 ACL) */
	char *pass;             /* owned (sodium_malloc'd) or NULL */
	char url[160];          /* for messages: without the password */
	char consumer[128];     /* host:pid:16 random hex digits, this worker's name in the group */
	long round_trips;       /* pipelines sent (each one round trip) */
	long reconnects;
	volatile sig_atomic_t *stop;    /* borrowed, or NULL */
};

/*
 * Parses url (redis://[[user]:pass@]host[:port][/db], user and pass
 * percent-decoded) and connects: AUTH [user] with the URL's password, else
 * with password (borrowed; from redis_password_cmd), then SELECT db.  -1 with err: a bad URL
 * (AI_EX_USAGE), rediss:// (AI_EX_UNAVAILABLE: this hiredis has no TLS),
 * no answer (AI_EX_UNAVAILABLE), a refused password (AI_EX_CONFIG).
 * stop (borrowed, may be NULL) ends waits for a lost connection.
 */
int redisq_open(struct redisq *q, const char *url, const char *password,
		volatile sig_atomic_t *stop, struct ai_err *err);
void redisq_close(struct redisq *q);

/*
 * Reads the items on fd (borrowed) as the filter would (o: their mode,
 * ids, size cap; duplicates refused with AI_EX_DATAERR before anything is
 * stored) and stores them as a new job with args (borrowed: the options
 * the workers use, a JSON array of strings).  Items without an id get
 * their line number, written into what is stored; lines that cannot
 * become requests get their error line at once.  The job's id goes to id.
 */
int redisq_submit(struct redisq *q, int fd, const struct batch_opts *o, json_object *args,
		  char *id, size_t idn, struct ai_err *err);

/* The job's status as for a local job ({id, mode: "redis", state, total, done, ok, failed,
 * pending, created}), owned; NULL with err (AI_EX_NOINPUT: no such job). */
json_object *redisq_status(struct redisq *q, const char *id, struct ai_err *err);

/* "done", "cancelled", "running" or "queued", borrowed from status. */
const char *redisq_state(json_object *status);

/*
 * Calls emit with the line of every finished item, in input order (the
 * items not finished are skipped).  0 when every item has its line, 1
 * when some have none yet, -1 with err.
 */
int redisq_results(struct redisq *q, const char *id,
		   void (*emit)(const char *line, size_t len, void *ud), void *ud, struct ai_err *err);

/* Waits (polling every 250 ms) until the job is done or cancelled; its status into *status
 * (owned).  -1 with err (AI_EX_INTERRUPT when *q->stop). */
int redisq_wait(struct redisq *q, const char *id, json_object **status, struct ai_err *err);

/*
 * Cancels the job: workers take no more of its items; the lines stored
 * stay.  One script, which writes only into a job that exists: a job
 * deleted meanwhile is AI_EX_NOINPUT, and not brought back.
 */
int redisq_cancel(struct redisq *q, const char *id, struct ai_err *err);

/*
 * Deletes the job: every key above of it, and its place in P jobs and
 * P active, in one script, so that no worker ever sees half a job.  A job
 * not done nor cancelled is refused (AI_EX_TEMPFAIL) unless force; a
 * worker in the middle of it then drops what it holds of it and sends no
 * more of its items, and its scripts, which look for the job first, write
 * nothing of it again.  AI_EX_NOINPUT: no such job.
 */
int redisq_delete(struct redisq *q, const char *id, bool force, struct ai_err *err);

/* The ids of every job, oldest first, owned (free each, then the vector). */
int redisq_list(struct redisq *q, char ***ids, size_t *n, struct ai_err *err);

struct redisq_worker_opts {
	int parallel;           /* requests in flight; a chunk is a quarter of what is left,
				 * between that and 16 times that many items */
	long claim_idle_ms;     /* reclaim another worker's items idle this long (default 60000) */
	long max_deliveries;    /* deliveries without a line after which an item is poison (default 5) */
	const char *job;        /* serve this job only, returning once it is complete; NULL: all */
	/*
	 * Called when the worker starts on a job: fills *bo (the job's options
	 * from args, borrowed) and *c (a client for them); both stay valid
	 * until job_close.  -1 with err refuses the job (anyone who can write
	 * to Redis can write its args): each of its items gets an error line
	 * of type "job_refused" saying err, and the worker goes on.
	 */
	int (*job_open)(json_object *args, struct batch_opts *bo, struct ai_client **c,
			void *ud, struct ai_err *err);
	void (*job_close)(struct ai_client *c, void *ud);
	/* Told of what a person running the worker wants to know (-v), or NULL. */
	void (*note)(const char *msg, void *ud);
	void *ud;
};

/*
 * Serves jobs until *q->stop (AI_EX_INTERRUPT) or, with o->job, until that
 * job is complete or cancelled (0).  Counts go to *st (items run, stored).
 */
struct redisq_worker_stats {
	long items, stored, requeued, poison, refused;
};
int redisq_work(struct redisq *q, const struct redisq_worker_opts *o, struct redisq_worker_stats *st,
		struct ai_err *err);

#endif
