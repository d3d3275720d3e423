#ifndef AI_API_H
#define AI_API_H
/*
 * api.h - the OpenAI-compatible API.  Every model call goes through here:
 * the request is built with json-c, the response cache is consulted first,
 * the budget is checked before anything is sent, the transport does the
 * rest (and the retries), and every call, hit or miss, success or failure,
 * is written to the usage ledger.  No program can bypass either.
 */
#include "ai.h"
#include "buf.h"
#include "api/cache.h"
#include "config.h"
#include "net/http.h"

#include <json-c/json.h>

struct ledger;
struct ai_call;

/* --dry-run: called instead of sending; headers carry the key redacted. */
typedef void (*ai_dry_run_fn)(const char *method, const char *url, const char *const *headers,
			      const char *body, void *ud);

struct ai_client;

/*
 * Everything a client is set up with, given once to ai_client_init.  A
 * zeroed struct is the default for every field but cfg.
 */
struct ai_client_opts {
	struct ai_config *cfg;          /* borrowed, must outlive the client */
	const char *prog;               /* "ai-summarize": the ledger's program column (borrowed) */
	const char *model;              /* borrowed or NULL (cfg->model): chat requests without one */
	const char *embed_model;        /* borrowed or NULL (cfg->embed_model): embeddings */
	int parallel;                   /* concurrent requests; 0: 1 */
	volatile sig_atomic_t *stop;    /* NULL, or set (by a signal handler) to stop every call */
	long idle_timeout_ms;           /* a stream silent this long fails; 0: never */
	bool batch_price;               /* price calls at the Batch API rate */
	/* Called once per distinct problem that does not fail the call (a ledger that cannot be
	 * written, a cache that cannot be opened), and for each -v line. */
	void (*warn)(const char *msg, void *ud);
	void (*debug)(const char *line, void *ud);
	/* --dry-run: shows each request that is not sent.  NULL: nothing is shown. */
	ai_dry_run_fn dry_run;
	void *ud;                       /* passed to the callbacks */
	/* Called by ai_client_release before it frees c (so a caller that keeps a list of
	 * its clients, as libcmd does to flush them at exit, can drop c).  NULL: nothing. */
	void (*released)(struct ai_client *c, void *ud);
};

/*
 * A client: an opaque handle (as curl's CURL), made by ai_client_init and
 * ended by ai_client_release.  What a caller needs of it is read through
 * the functions below; nothing outside api/ sees its fields
 * (api/client_int.h).
 */
struct ai_client;

/* Makes *cp from o (copied; the strings and cfg it points to are borrowed and must
 * outlive it).  Nothing is opened until the first call.  On failure *cp is NULL. */
int ai_client_init(struct ai_client **cp, const struct ai_client_opts *o, struct ai_err *err);
/* Closes what the client opened and frees it; NULL is a no-op. */
void ai_client_release(struct ai_client *c);
/*
 * Writes the usage ledger rows the client holds in memory (the calls of
 * busy wake-ups, written LEDGER_FLUSH_MS after at the latest).  A program
 * that may exit() without releasing the client (a die from a callback, a
 * closed pipe) calls it first; libcmd does, from an atexit handler.  A
 * client belongs to the process that made it: in a forked child the
 * queue, its parent's calls, is dropped, never written twice.
 */
void ai_client_flush(struct ai_client *c);
/* The endpoint's host (for messages and the ledger); borrowed, valid as long as c. */
const char *ai_client_host(const struct ai_client *c);

/* The configuration the client was set up with; borrowed. */
struct ai_config *ai_client_config(const struct ai_client *c);
/* The model of chat requests that name none, of embeddings; borrowed, valid as long as c. */
const char *ai_client_model(const struct ai_client *c);
const char *ai_client_embed_model(const struct ai_client *c);
/* The stop flag the client was given, or NULL: a loop over the client's calls checks it too. */
volatile sig_atomic_t *ai_client_stop(const struct ai_client *c);
/* Under -v (cfg->verbose), gives msg to the client's warn callback; else does nothing. */
void ai_client_verbose(const struct ai_client *c, const char *msg);

struct ai_chat_req {
	json_object *messages;          /* borrowed array of {role, content} objects */
	const char *model;              /* NULL: the client's model (ai_client_model) */
	double temperature;             /* NAN: the configured one (ai.conf), else the server's */
	long max_tokens;                /* 0: the configured one (ai.conf), else the server's */
	json_object *tools;             /* borrowed array in the OpenAI shape, or NULL */
	json_object *extra;             /* borrowed object: more request fields, or NULL; they win
	                                 * over the configured ones (-o, ai.conf's option.KEY) */
	bool stream;
	/* Streams: each piece of the reply as it arrives (also when replayed from the cache).
	 * Returns non-zero to stop. */
	int (*on_delta)(const char *text, size_t n, void *ud);
	/* Each piece of a reasoning model's reasoning, which is never part of the answer
	 * (reasoning_content, reasoning); also for a plain call and a cache hit.  May be NULL. */
	int (*on_reasoning)(const char *text, size_t n, void *ud);
	void *ud;
	/* Called with a complete answer before it is cached: false keeps it out of the
	 * cache (a reply that fails its schema, structured.h).  NULL: every answer. */
	bool (*cacheable)(const char *content, void *ud);
	void *cacheable_ud;
};

/* Initialises r with the defaults above. */
void ai_chat_req_init(struct ai_chat_req *r);

struct ai_chat_resp {
	char *content;                  /* owned, never NULL after a success ("" for none) */
	char *finish_reason;            /* owned or NULL */
	char *model;                    /* owned: the model the server named, else the one asked */
	json_object *tool_calls;        /* owned array, or NULL */
	char *reasoning;                /* owned: the model's reasoning, or NULL when it sent none */
	char *refusal;                  /* owned: the model's refusal, or NULL (the call then fails) */
	long prompt_tokens, completion_tokens;  /* -1 when the server did not say */
	long cached_tokens;             /* of prompt_tokens, from the server's prompt cache; -1 unknown */
	long reasoning_tokens;          /* of completion_tokens, spent reasoning; -1 unknown */
	double cost;                    /* USD, NAN when the model's price is unknown */
	double latency_ms, ttfb_ms;
	bool cached;
	bool dry_run;
	long status;
	int attempts;
	bool partial;                   /* a stream that ended before it was complete */
	/* The server's rate-limit signals on the last answer, -1 when absent (see struct
	 * http_resp): a batch slows down as a whole when they run low. */
	long rl_remaining_requests, rl_remaining_tokens, rl_reset_ms, retry_after_ms;
	char error_type[64];            /* a failed call: the server's error.type, else "" */
};

void ai_chat_resp_release(struct ai_chat_resp *r);

/*
 * One chat completion, to the end.  -1 with err: the message quotes the
 * server's error.  An answer the model refused (a "refusal") or the
 * server withheld (finish_reason "content_filter") fails too, with
 * AI_EX_DATAERR: it is no answer to the input, and retrying the same input
 * gets the same; what arrived stays in resp (refusal, content).
 */
int ai_chat(struct ai_client *c, const struct ai_chat_req *req, struct ai_chat_resp *resp,
	    struct ai_err *err);

/*
 * The same, concurrently: the request is serialised at once (req need not
 * outlive the call); resp is borrowed until done is called from inside
 * ai_client_run/ai_client_step.  A cache hit calls done from the next run.
 */
typedef void (*ai_chat_done_fn)(int rc, struct ai_chat_resp *resp, struct ai_err *err, void *ud);
int ai_chat_start(struct ai_client *c, const struct ai_chat_req *req, struct ai_chat_resp *resp,
		  ai_chat_done_fn done, void *ud, struct ai_err *err);

struct ai_embed_resp {
	float *v;                       /* owned: n vectors of dim floats, row-major, L2-normalised */
	size_t n, dim;
	long prompt_tokens;
	char *model;                    /* owned */
	bool cached;
	double cost;
	double latency_ms;
	bool too_large;                 /* failed: the server said an input is too large
					 * for it (net/httperr.h), so smaller ones may pass */
};
void ai_embed_resp_release(struct ai_embed_resp *r);

/* Embeddings for n texts (borrowed) in one request. */
typedef void (*ai_embed_done_fn)(int rc, struct ai_embed_resp *resp, struct ai_err *err, void *ud);
int ai_embed_start(struct ai_client *c, const char *const *texts, size_t n, const char *model,
		   struct ai_embed_resp *resp, ai_embed_done_fn done, void *ud, struct ai_err *err);
int ai_embed(struct ai_client *c, const char *const *texts, size_t n, const char *model,
	     struct ai_embed_resp *resp, struct ai_err *err);

/* Runs the started calls to the end.  -1 only when interrupted. */
int ai_client_run(struct ai_client *c, struct ai_err *err);
/* Runs for at most timeout_ms; returns calls still pending, or -1 when interrupted. */
int ai_client_step(struct ai_client *c, long timeout_ms, struct ai_err *err);
int ai_client_pending(const struct ai_client *c);

/* Delays every request not yet started (retries included) by ms: a batch's rate limiter. */
void ai_client_pause(struct ai_client *c, long ms);
/* The ms left of that pause, or of one a server asked for mid-retry; 0 when none. */
long ai_client_paused_ms(const struct ai_client *c);

/*
 * One request to another endpoint of the API (files, batches), synchronous, with the
 * key and the retry policy: path is appended to the base URL ("/files"); headers
 * (NULL-terminated, borrowed, may be NULL) come after the Authorization line.  0 on a
 * 2xx answer (resp holds it; the caller releases resp); -1 with err on anything else,
 * the server's message quoted.  Under --dry-run the request is shown through the
 * dry_run callback, nothing is sent, and 1 is returned.
 */
int ai_api_request(struct ai_client *c, const char *method, const char *path,
		   const char *const *headers, const char *body, size_t len,
		   struct http_resp *resp, struct ai_err *err);

/*
 * GET path as ai_api_request does, the 2xx body written to fd (a regular
 * file open for writing, emptied first) instead of memory, so that it may
 * be larger than any answer held in memory, up to max bytes (0: no bound).
 * 0 when it was written whole; -1 with err (AI_EX_IOERR when fd cannot be
 * written, AI_EX_TEMPFAIL over max); 1 under --dry-run, nothing written.
 */
int ai_api_download(struct ai_client *c, const char *path, int fd, size_t max, struct ai_err *err);

/*
 * Writes the ledger row of one chat completion answered through the Batch API (whose
 * results arrive as files, not through ai_chat), priced at the batch rate whatever
 * the client's batch_price says.  Returns the cost in USD (NAN when the model's price is unknown).
 * A ledger that cannot be written is warned about, as for any call.
 */
double ai_account_batch_result(struct ai_client *c, const char *model, long prompt_tokens,
			       long completion_tokens, long status);

/* The JSON body ai_chat would send for q (model: q->model, else the configured one), for
 * requests sent another way (the Batch API's input file).  Returns owned, NULL on ENOMEM. */
json_object *ai_chat_body(struct ai_client *c, const struct ai_chat_req *q);

/* Copies the "type" of the error object in an error answer into out (n bytes), or "". */
void ai_error_type(const char *body, size_t len, char *out, size_t n);

/* Copies the server's message in an error answer (error.message, a plain-string error,
 * message or detail, else the start of the body) into out (n bytes), or "(no message)". */
void ai_error_message(const char *body, size_t len, char *out, size_t n);

/*
 * Turns a failed HTTP exchange into a message and exit code: the server's
 * error.message quoted (error may also be a plain string), 401/403 as a
 * configuration problem with the fix, 429 and 5xx as temporary failures
 * unless their text is known to be permanent (net/httperr.h: then 69, as
 * other 4xx); a 400 or 404 saying that the model does not exist suggests
 * --list-models.
 */
int ai_http_error(const char *what, long status, const char *body, size_t len, struct ai_err *err);

/* The canonical text of a request, hashed for the cache key (exposed for the tests). */
int ai_cache_canonical(const char *base_url, json_object *body, struct buf *out);

#endif
