#ifndef AI_CLIENT_INT_H
#define AI_CLIENT_INT_H
/*
 * client_int.h - the private side of api.h's opaque struct ai_client.
 */
#include "api/api.h"
#include "api/cache.h"
#include "net/http.h"

#include <sys/types.h>

struct ai_call;
struct ledger;
struct ledger_qrow;

/*
 * The client's fields: only ai_client_init writes them (api.c
 * afterwards).  Included by api.c alone; everyone else holds a pointer.
 */
struct ai_client {
	struct ai_client_opts o;        /* as given to ai_client_init */
	struct http_opts http;
	struct http_pool *pool;
	struct cache cache;
	int cache_state;                /* 0 not tried, 1 open, -1 failed */
	struct ledger *ledger;
	int ledger_state;
	struct ledger_qrow *lq;         /* owned: the rows of this wake-up, written at its end */
	size_t lq_n, lq_alloc;
	int64_t lq_t0;                  /* mono_ms() when the oldest queued row came */
	pid_t owner;                    /* the process that made it: only it writes the queue */
	int in_step;                    /* inside ai_client_step: account() queues its row */
	char *auth;                     /* sodium_malloc'd "Authorization: Bearer KEY" or NULL */
	bool auth_loaded;
	bool no_stream_options;         /* the server refused stream_options: send it no more */
	bool batch_now;                 /* pricing one Batch API result (ai_account_batch_result) */
	char *host;                     /* owned: the endpoint's host, for the ledger */
	struct ai_call *ready;          /* calls answered without the network, to complete */
};

#endif
