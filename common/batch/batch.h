#ifndef AI_BATCH_H
#define AI_BATCH_H
/*
 * batch.h - the engine of ai-batch: JSON-lines items in, exactly one
 * output line per item out, many requests at once through one client.
 *
 * batch_open reads the whole input once before anything is sent: it
 * counts the items (for the progress and the ETA), hashes the input
 * (BLAKE2b-256, the name the journal keeps), and refuses duplicate ids.
 * Input that cannot be read twice (a pipe) is first copied to an unlinked
 * temporary file, so memory stays flat whatever the input's size; the
 * price is that the first request waits for the end of the input.  The
 * ids are checked by sorting their 64-bit hashes in bounded memory (runs
 * of 256k spilled to another unlinked temporary file, extsort.h), and the
 * journal's index is kept the same way (journal.h): nothing is held per
 * item, so peak RSS is the same at 100k items and at 1M (tests/bench/scale.sh).
 *
 * batch_run then streams the items: it keeps --parallel requests in
 * flight, starts each as a slot frees up, holds the rate limits (its own
 * --rpm and --tpm, and the server's Retry-After and x-ratelimit-* signals,
 * which pause the whole batch), journals every finished item (fdatasync'd
 * in groups) before its line is emitted, and emits the lines in input
 * order, or as they finish when unordered.
 *
 * Ordered output needs a reorder buffer: at most `window` items are read
 * ahead of the oldest one not yet emitted.  When one slow item holds the
 * head, the items after it finish and wait; once `window` of them are
 * waiting no new item is started until the slow one ends, so memory stays
 * bounded and throughput drops for that while.  --unordered emits each
 * line as it is ready; the same window bounds how far the reading runs
 * ahead of a stuck item.
 *
 * What counts as finished, and is not sent again on a resume: an answer,
 * or a failure that sending again would not change (the server refused
 * the request: a 4xx other than 408, 409, 429, 401 and 403).  Temporary
 * failures (429, 5xx, timeouts, broken connections) get their error line
 * but are not journaled, so a run with the same state tries them again.
 * Input lines that cannot become requests (invalid JSON, over the size
 * cap, no text) get their error line every time and are never sent.
 *
 * A server that is gone should not cost every remaining item its retries:
 * once 16 requests in a row (or twice the parallelism, if more) got no
 * answer at all (no connection, or a timeout; any HTTP status resets the
 * count), the items not yet sent get an error line of type "not_sent" at
 * once, temporary like the failures before them, and b->down says why.
 * It stays tripped for the run, even if a request still in flight then
 * gets an answer: the run's end says what was not sent.
 */
#include "ai.h"
#include "api/api.h"
#include "api/structured.h"
#include "batch/journal.h"
#include "batch/jsonl.h"

#include <signal.h>

struct batch_stats {
	long total;             /* items in the input */
	long done;              /* items with a line (emitted or journaled) */
	long ok, failed;
	long replayed;          /* taken from the journal, not sent */
	long sent;              /* requests started */
	long inflight;
	long not_sent;          /* items given up on unsent once the server stopped answering */
	long prompt_tokens, completion_tokens;
	double cost;            /* USD of what is priced */
	int64_t started_ms;     /* wall clock, ms since the epoch */
	int64_t elapsed_ms;
};

struct batch_opts {
	struct jsonl_opts item;
	int parallel;           /* requests in flight */
	bool unordered;
	double rpm, tpm;        /* 0: no limit of our own */
	size_t max_line;        /* bytes; longer lines are error items */
	long max_tokens;        /* 0: the server's default */
	double temperature;     /* NAN: the server's default */
	const char *state;      /* the journal's path, or NULL */
	size_t window;          /* reorder bound; 0: max(1024, 16 * parallel) */
	/* Called with each output line (no newline), in output order. */
	void (*emit)(const char *line, size_t len, void *ud);
	/* Called after each group of lines emitted together (one wake-up's), or NULL. */
	void (*flush)(void *ud);
	/* Called about every progress_ms while running, and once at the end (final). */
	void (*progress)(const struct batch_stats *s, bool final, void *ud);
	long progress_ms;
	void *ud;
	/* NULL, or set (by a signal handler) to stop waiting for a pipe's input. */
	volatile sig_atomic_t *stop;
	/*
	 * Limits shared beyond this process (ai-batch worker: Redis), or NULL:
	 * admit is asked before each request is sent, after the batch's own
	 * limits, and returns 0 to send it (est tokens taken), the ms to wait,
	 * or a negative value to withdraw the rest of the run: this item and
	 * every later one get a "not_sent" line at once, and nothing more is sent;
	 * pause is told of each new pause the server asked for (ms from now).
	 */
	long (*admit)(long est, void *ud);
	void (*pause)(long ms, void *ud);
	/*
	 * Called, or NULL, when the input has ended and a slot is free: it may
	 * append lines to the input file (with pwrite, leaving the offset) and
	 * return 1 to go on reading; 0 ends the input for the rest of the run.
	 * A queue's worker feeds the engine so, with no gap between chunks.
	 */
	int (*more)(void *ud);
	/* --schema: every answer is checked, repaired once, and its line gets "data"; one that
	 * stays invalid is an error line of type schema_invalid (structured.h).  Borrowed. */
	struct structured *st;
};

struct batch_slot;

struct batch {
	struct batch_opts o;
	struct batch_stats st;
	char input_id[96];      /* "blake2b-256:HEX" */
	/* private */
	int fd;
	bool own_fd;
	uint64_t start_off;
	struct journal j;
	bool journal;
	long fail_temp;
	struct batch_slot *ring;
	size_t cap;
	struct ai_client *c;
	struct ai_err fatal;
	int64_t rpm_next, tpm_t, server_until;
	double tpm_level;
	bool emitted;           /* lines emitted since the last flush */
	bool no_more;           /* o.more said the input has ended */
	long down_streak;       /* requests in a row that got no answer at all */
	long resend;            /* slots --schema asks again (S_RESEND) */
	char down[320];         /* why the rest is not sent, once down_streak reached the limit */
};

/*
 * Reads the input on fd (borrowed) through: counts, hashes, checks ids,
 * opens the journal.  -1 with err: a duplicate id or a changed input
 * (AI_EX_DATAERR, nothing sent), an unreadable input (AI_EX_NOINPUT).
 * Release with batch_close.
 */
int batch_open(struct batch *b, const struct batch_opts *o, int fd, struct ai_err *err);

/*
 * Runs every item through c.  0 when every item has its line; -1 with err
 * when interrupted (AI_EX_INTERRUPT: the lines of finished items are out
 * and journaled) or when the journal cannot be written.
 */
int batch_run(struct batch *b, struct ai_client *c, struct ai_err *err);

/* 0 all succeeded (or no items), 1 some failed, 69 or 75 (all temporary) when none succeeded. */
int batch_exit_code(const struct batch *b);

void batch_close(struct batch *b);

/*
 * Calls fn for every item of the input on fd (borrowed, read from its
 * current offset), in order: for the Batch API, which sends them as a
 * file.  fn returns 0 to go on.  The item is borrowed for the call.
 */
int batch_each_item(int fd, const struct jsonl_opts *o, size_t max_line,
		    int (*fn)(struct jsonl_item *it, void *ud), void *ud, struct ai_err *err);

#endif
