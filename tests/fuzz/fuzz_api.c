/*
 * fuzz_api.c - libFuzzer harness for the answers common/api/api.c parses:
 * a chat completion (plain, and replayed as a stream), an embeddings
 * answer, and an error body.
 *
 * The parsers are static and fed by the transport; the one way to them
 * without a network is the response cache, which api.c reads with the
 * same parser as a server's answer.  So the input (after a first byte
 * that chooses the case) is stored in a scratch cache under the key of
 * a fixed request, and the request is made: it must be a cache hit (the
 * base URL is a closed local port, in case it is not).  The promises
 * checked, abort() otherwise:
 *   - chat: a success has content, a model and comes from the cache; a
 *     stream's pieces put together are exactly the content; a failure
 *     is a server error with a message;
 *   - embeddings: a success has one vector per text, each finite and of
 *     length 1 or 0; a failure is a server error with a message;
 *   - an error body with any status gives a message and a known exit
 *     code, and its error type is a terminated string.
 */
#include "api/api.h"

#include <math.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static char dir[64];
static struct ai_config cfg;
static struct ai_client *client;
static struct cache cache;
static json_object *messages;
static bool ready;

static void warn(const char *msg, void *ud)
{
	(void)ud;
	fprintf(stderr, "fuzz_api: %s\n", msg);
	abort();   /* the scratch cache or config is broken: the harness tests nothing */
}

static void cleanup(void)
{
	char cmd[128];

	if (!dir[0])
		return;
	/* Scratch files this process made under a mkdtemp name: nothing else. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_api: cannot remove %s\n", dir);
}

static void setup(void)
{
	static const char *const vars[] = {
		"OPENAI_BASE_URL", "OPENAI_API_KEY", "AI_MODEL", "AI_EMBED_MODEL", "AI_TIMEOUT",
		"AI_RETRIES", "AI_CACHE", "AI_CACHE_TTL", "AI_CACHE_MAX", "AI_LEDGER",
		"AI_BUDGET_DAILY", "AI_MAX_INPUT", "AI_PROFILE",
	};
	struct ai_err err;
	char path[128];

	for (size_t i = 0; i < AI_ARRAY_LEN(vars); i++)
		unsetenv(vars[i]);
	snprintf(dir, sizeof(dir), "/tmp/fuzz_api.XXXXXX");
	check(mkdtemp(dir) != NULL);
	atexit(cleanup);
	check(setenv("HOME", dir, 1) == 0);
	snprintf(path, sizeof(path), "%s/cache", dir);
	check(setenv("XDG_CACHE_HOME", path, 1) == 0);
	snprintf(path, sizeof(path), "%s/no-config", dir);
	check(setenv("AI_CONFIG", path, 1) == 0);
	check(config_load(&cfg, NULL, &err) == 0);
	check(config_set(&cfg, "base_url", "http://127.0.0.1:9", "fuzz", &err) == 0);
	cfg.ledger = false;
	cfg.retries = 0;
	cfg.timeout_s = cfg.connect_timeout_s = 1;
	check(ai_client_init(&client, &(struct ai_client_opts){ .cfg = &cfg, .prog = "fuzz_api", .warn = warn },
			     &err) == 0);
	snprintf(path, sizeof(path), "%s/cache/ai/responses", dir);
	check(cache_open(&cache, path, 0, 0, &err) == 0);
	messages = json_tokener_parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
	check(messages != NULL);
	ready = true;
}

/* Stores body as the cached answer to the request whose body is req. */
static void plant(json_object *req, const uint8_t *body, size_t len)
{
	unsigned char key[CACHE_KEY_LEN];
	struct ai_err err;
	struct buf canon, back;

	buf_init(&canon, 0);
	buf_init(&back, 0);
	check(ai_cache_canonical(cfg.base_url, req, &canon) == 0);
	cache_key(canon.data, canon.len, key);
	check(cache_put(&cache, key, body, len, &err) == 0);
	/* The cache must give back exactly what it took, or the call would go out. */
	check(cache_get(&cache, key, &back) == 1);
	check(back.len == len && (len == 0 || memcmp(back.data, body, len) == 0));
	buf_release(&canon);
	buf_release(&back);
}

static int collect(const char *text, size_t n, void *ud)
{
	return buf_add(ud, text, n) ? 1 : 0;
}

static void chat(const uint8_t *body, size_t len, bool stream)
{
	struct ai_chat_req q;
	struct ai_chat_resp r;
	struct ai_err err;
	struct buf got;
	json_object *req;

	ai_chat_req_init(&q);
	q.messages = messages;
	check((req = ai_chat_body(client, &q)) != NULL);
	plant(req, body, len);
	json_object_put(req);
	buf_init(&got, 0);
	q.stream = stream;
	if (stream) {
		q.on_delta = collect;
		q.ud = &got;
	}
	memset(&err, 0, sizeof(err));
	if (ai_chat(client, &q, &r, &err) == 0) {
		check(r.content && r.model && r.cached);
		if (stream)
			check(got.len == strlen(r.content) &&
			      (got.len == 0 || memcmp(got.data, r.content, got.len) == 0));
	} else {
		check(err.code == AI_EX_UNAVAILABLE && err.msg[0]);
	}
	ai_chat_resp_release(&r);
	buf_release(&got);
}

static void embed(const uint8_t *body, size_t len, size_t n)
{
	static const char *const texts[] = { "one", "two", "three" };
	struct ai_embed_resp r;
	struct ai_err err;
	json_object *req = json_object_new_object(), *in = json_object_new_array();

	check(req && in);
	for (size_t i = 0; i < n; i++)
		check(json_object_array_add(in, json_object_new_string(texts[i])) == 0);
	check(json_object_object_add(req, "model", json_object_new_string(cfg.embed_model)) == 0);
	check(json_object_object_add(req, "input", in) == 0);
	plant(req, body, len);
	json_object_put(req);
	memset(&err, 0, sizeof(err));
	if (ai_embed(client, texts, n, NULL, &r, &err) == 0) {
		check(r.n == n && r.dim > 0 && r.v && r.model && r.cached);
		for (size_t i = 0; i < n; i++) {
			double norm = 0;

			for (size_t x = 0; x < r.dim; x++) {
				check(isfinite(r.v[i * r.dim + x]));
				norm += (double)r.v[i * r.dim + x] * r.v[i * r.dim + x];
			}
			check(norm == 0 || fabs(sqrt(norm) - 1) < 1e-3);
		}
	} else {
		check(err.code == AI_EX_UNAVAILABLE && err.msg[0]);
	}
	ai_embed_resp_release(&r);
}

static void error_body(const uint8_t *data, size_t size)
{
	char *body = malloc(size + 1), type[16];
	struct ai_err err;
	long status;
	int code;

	check(body != NULL && size >= 2);
	status = data[0] * 2L + (data[1] & 1);           /* 0..511 */
	memcpy(body, data + 2, size - 2);
	body[size - 2] = '\0';
	memset(&err, 0, sizeof(err));
	check(ai_http_error("chat", status, body, size - 2, &err) == -1);
	code = err.code;
	check(err.msg[0] && err.status == status &&
	      (code == AI_EX_CONFIG || code == AI_EX_TEMPFAIL || code == AI_EX_UNAVAILABLE));
	check(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
	memset(type, 'x', sizeof(type));
	ai_error_type(body, size - 2, type, sizeof(type));
	check(memchr(type, '\0', sizeof(type)) != NULL);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;

	if (size < 3)
		return 0;
	if (!ready)
		setup();
	mode = data[0] % 6;
	data++;
	size--;
	switch (mode) {
	case 0: chat(data, size, false); break;
	case 1: chat(data, size, true); break;
	case 2: case 3: case 4: embed(data, size, mode - 1); break;
	default: error_body(data, size); break;
	}
	return 0;
}
