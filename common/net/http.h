#ifndef AI_HTTP_H
#define AI_HTTP_H
/*
 * http.h - the one transport.  Every byte on the network goes through it,
 * and retries live here alone.
 *
 * One engine over libcurl's multi interface serves a single request
 * (http_do) and many concurrent ones (struct http_pool): connections are
 * reused across requests, a request that must be retried waits on a timer
 * without blocking the others, and a rate-limit answer (429 with
 * Retry-After) pauses the start of every request in the pool, not just the
 * one that met it.
 *
 * Retry policy (DESIGN.md): 408, 409, 429, 5xx and connection failures
 * (but an answer whose text says it is permanent: see httperr.h),
 * with exponential backoff (0.5 s doubling to 8 s) less up to 25% jitter,
 * honouring Retry-After and retry-after-ms up to 120 s (a longer wait is
 * not believed: see http_server_wait_ms); never another 4xx, nor a TLS
 * certificate that fails verification (AI_EX_CONFIG, naming the CA file);
 * never once a byte of a streamed body was handed to the caller, since it
 * would be printed twice.
 */
#include "ai.h"
#include "clock.h"
#include "buf.h"

#include <signal.h>

struct http_opts {
	long connect_timeout_ms;
	long timeout_ms;        /* whole request; 0: none (streams use idle_timeout_ms) */
	long idle_timeout_ms;   /* no byte for this long ends a streamed request (default
				 * 60 s; timeout_ms, when smaller, wins); 0: timeout_ms alone */
	int retries;            /* attempts after the first */
	size_t max_response;    /* cap on a buffered body */
	const char *ca_cert;    /* borrowed or NULL (libcurl's default): the CA bundle */
	const char *proxy;      /* borrowed or NULL: the proxy, else libcurl reads the environment */
	const char *no_proxy;   /* borrowed or NULL (loopback): hosts never sent through the proxy */
	int verbose;            /* call debug for the exchange, Authorization redacted */
	void (*debug)(const char *line, void *ud);
	void *debug_ud;
	volatile sig_atomic_t *interrupt;  /* when it becomes non-zero, everything stops */
};

/*
 * Defaults: 10 s connect, 600 s total, 60 s of silence ends a stream, 2
 * retries, 64 MiB responses (or AI_MAX_RESPONSE bytes, K, M or G, when that
 * is set: tests lower it).
 */
void http_opts_init(struct http_opts *o);

struct http_req {
	const char *url;
	const char *method;             /* NULL: POST when there is a body, else GET */
	const char *body;
	size_t body_len;
	const char *const *headers;     /* NULL-terminated "Name: value" lines, borrowed */
	/*
	 * For streams: called with each piece of a 2xx body as it arrives
	 * instead of buffering it.  Returns 0, or non-zero to abort: the
	 * transfer then fails with AI_EX_SOFTWARE "transfer aborted", so a
	 * callback with a reason of its own keeps it in ud and reports it
	 * from the done callback (api.c's stream_err).  Once called, no retry.
	 */
	int (*on_data)(const char *p, size_t n, void *ud);
	void *ud;
	bool stream;                    /* use idle_timeout_ms instead of timeout_ms */
	/*
	 * For downloads: when to_fd, a 2xx body goes to fd (a regular file
	 * open for writing) instead of resp->body, so max_response does not
	 * bound it; fd_max does (0: nothing does).  It is written from offset
	 * 0, and the file is emptied when each attempt starts, so a retry
	 * starts it over.  Error bodies are still buffered.
	 */
	bool to_fd;
	int fd;
	size_t fd_max;
	const char *capture;            /* NULL, or a header name whose value the answer
	                                   keeps in resp->captured (MCP's Mcp-Session-Id) */
	const char *const *redact;      /* NULL, or NULL-terminated header names whose values
	                                   debug output hides, as it hides Authorization's */
};

struct http_resp {
	long status;                    /* last HTTP status, 0 when none was received */
	struct buf body;                /* the body of the last attempt (error bodies too) */
	char content_type[128];
	long retry_after_ms;            /* from the last response, -1 when absent */
	long rl_remaining_requests;     /* x-ratelimit-remaining-requests, -1 when absent */
	long rl_remaining_tokens;       /* x-ratelimit-remaining-tokens, -1 when absent */
	long rl_reset_ms;               /* the larger x-ratelimit-reset-*, -1 when absent */
	int attempts;
	double ms;                      /* wall time of all attempts and waits */
	double ttfb_ms;                 /* first body byte of the last attempt */
	bool delivered;                 /* on_data was called */
	char captured[256];             /* req->capture's value in the last response, or "" */
	bool captured_bad;              /* that value was longer than 255 bytes or held a byte
	                                   outside 0x21-0x7E: captured is then "" */
};

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);

/*
 * Runs one request to the end, retrying per the policy.  0 when an HTTP
 * response was received, whatever its status (the caller reads
 * resp->status and the body); -1 when none could be had (connection
 * refused, timeout, DNS, a too large body, interrupted) with err set:
 * AI_EX_TEMPFAIL for what a later retry may fix, AI_EX_INTERRUPT.
 */
int http_do(const struct http_opts *o, const struct http_req *req, struct http_resp *resp,
	    struct ai_err *err);

/* The concurrent engine. */
struct http_pool;
struct http_xfer;

/* Called when a transfer is over: rc 0 (a response, see resp->status) or -1 with err. */
typedef void (*http_done_fn)(int rc, struct http_resp *resp, struct ai_err *err, void *ud);

/* Returns an owned pool (free with http_pool_free) running at most max_parallel transfers. */
struct http_pool *http_pool_new(const struct http_opts *o, int max_parallel, struct ai_err *err);
void http_pool_free(struct http_pool *p);

/*
 * Queues a request.  req and resp are borrowed until done is called, which
 * happens from inside http_pool_run (or http_pool_step).  done may add more
 * requests.  -1 only when memory runs out.
 */
int http_pool_add(struct http_pool *p, const struct http_req *req, struct http_resp *resp,
		  http_done_fn done, void *ud, struct ai_err *err);

/* Runs until no request is left.  -1 only when interrupted (AI_EX_INTERRUPT). */
int http_pool_run(struct http_pool *p, struct ai_err *err);

/*
 * Runs for at most timeout_ms (or until something finished), so a caller
 * can feed the pool as it goes.  Returns the number of requests still queued
 * or running, or -1 when interrupted.
 */
int http_pool_step(struct http_pool *p, long timeout_ms, struct ai_err *err);

/* Requests queued or running. */
int http_pool_pending(const struct http_pool *p);

/* Delays every request not yet started until now + ms (an rpm/tpm limiter uses it too). */
void http_pool_pause(struct http_pool *p, long ms);
/* The ms left of the pool's pause (a server's Retry-After, or a caller's), 0 when none. */
long http_pool_paused_ms(const struct http_pool *p);

/* The retry policy, pure, for the unit tests and for callers that explain it. */
bool http_retryable_status(long status);

/* The longest wait a server can ask for and get (Retry-After, x-ratelimit-reset-*). */
#define HTTP_MAX_SERVER_WAIT_MS 120000L
/*
 * The one gate for every server-given wait: ms when it is a finite number
 * from 0 to HTTP_MAX_SERVER_WAIT_MS, else -1 (treated as absent, so the
 * program's own backoff applies).
 */
long http_server_wait_ms(double ms);
/* Parses Retry-After (delta seconds or an HTTP date) and retry-after-ms; ms through
 * http_server_wait_ms, or -1. */
long http_parse_retry_after(const char *retry_after, const char *retry_after_ms, int64_t now_s);
/* Parses x-ratelimit-reset-* ("1s", "6m0s", "20ms", "0.5s", "1h2m", bare seconds) to ms
 * through http_server_wait_ms; -1 when absent, garbage or over the cap. */
long http_parse_reset(const char *s);
/* Parses a count header (x-ratelimit-remaining-*): a non-negative decimal; -1 for garbage. */
long http_parse_count(const char *s);
/* The wait before attempt n (1 = first retry): honours after_ms (capped at 120 s), else backoff;
 * rnd in [0, 1) gives the jitter. */
long http_retry_delay_ms(int n, long after_ms, double rnd);


#endif
