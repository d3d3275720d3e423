#ifndef AI_MODELS_H
#define AI_MODELS_H
/*
 * models.h - the models a server offers (GET /models), for --list-models
 * and the shells' completion of -m.  The request goes through
 * ai_api_request: the key, the transport's retries, -v and --dry-run as
 * for every other call; it is neither cached nor written to the ledger,
 * since it costs nothing.
 */
#include "ai.h"
#include "api/api.h"

struct ai_model {
	char *id;               /* owned, never NULL */
	char *owned_by;         /* owned, or NULL when the server did not say */
};

struct ai_models {
	struct ai_model *v;     /* owned: n models in the server's order */
	size_t n;
};

/*
 * Asks the server behind c for its models and fills out (release it with
 * ai_models_release).  0 on success; 1 under --dry-run (the request was
 * shown, nothing was sent, out is empty); -1 with err on failure: the
 * server's message quoted, a 404 with a hint about the base URL, an answer
 * that is not a list AI_EX_UNAVAILABLE.
 */
int ai_models_list(struct ai_client *c, struct ai_models *out, struct ai_err *err);

/*
 * Reads a /models answer: OpenAI's {"object": "list", "data": [{"id",
 * "owned_by"}...]}, with or without the "models" array llama.cpp's server
 * adds beside it; an answer with only a "models" array (Ollama's own
 * shape: "model" or "name") is read from that.  Entries without an id are
 * skipped.  host names the server in messages.  Exposed for the tests.
 */
int ai_models_parse(const char *body, size_t len, const char *host, struct ai_models *out,
		    struct ai_err *err);

void ai_models_release(struct ai_models *m);

#endif
