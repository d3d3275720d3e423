#ifndef AI_HTTPERR_H
#define AI_HTTPERR_H
/*
 * httperr.h - what a failed answer says about itself beyond its status.
 *
 * Servers label some errors that can never succeed as 5xx (llama-server
 * answers 500 to an embeddings input larger than its physical batch, and
 * to a body it cannot parse), and some 4xx mean "this input is too large"
 * rather than "this request is wrong".  The transport keeps one table of
 * the texts real servers send in those cases, per server family (httperr.c),
 * so that a permanent error is never retried whatever its status, and a
 * caller that can make its input smaller (ai-index) knows when to.
 */
#include "ai.h"

enum http_verdict {
	HTTP_ERR_UNKNOWN = 0,   /* nothing known: the status decides (http_retryable_status) */
	HTTP_ERR_PERMANENT,     /* the same request fails the same way: never retried */
	HTTP_ERR_TOO_LARGE      /* an input is larger than the server takes: permanent too,
				 * and a smaller input may succeed */
};

/* One known error: the server family that sends it, and a text of its message. */
struct http_known_error {
	const char *family;     /* "llama.cpp", "OpenAI", "vLLM", "Ollama" */
	const char *text;       /* found anywhere in the body, ASCII case ignored */
	enum http_verdict verdict;
	const char *sample;     /* a whole body as the server sends it (the unit tests) */
};

/* The table, borrowed, static; *n is set to its length. */
const struct http_known_error *http_known_errors(size_t *n);

/*
 * The verdict on an error answer of status with body[0..len) (need not be
 * NUL-terminated; only the first 64 KiB are read): HTTP_ERR_UNKNOWN for a
 * status below 400 or a body that matches no entry.  *family (may be NULL)
 * is set to the family of the entry found, else NULL.
 */
enum http_verdict http_error_verdict(long status, const char *body, size_t len,
				     const char **family);

#endif
