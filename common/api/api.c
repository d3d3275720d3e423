#include "api/api.h"
#include "api/client_int.h"
#include "api/chatstream.h"
#include "jsonval.h"
#include "api/ledger.h"
#include "api/prices.h"
#include "net/httperr.h"
#include "net/sse.h"
#include "utf8.h"
#include "net/url.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <strings.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAM_LINE (1u << 20)
#define MAX_STREAM_EVENT (8u << 20)
#define MAX_CONTENT (16u << 20)

enum call_kind { CALL_CHAT, CALL_EMBED };

/* How a call is answered: a cache hit and a dry run are completions of their own. */
enum call_via { VIA_NET, VIA_CACHE, VIA_DRY_RUN };

/* One model call in flight: everything it owns from start to done. */
struct ai_call {
	struct ai_client *c;
	enum call_kind kind;
	char *url, *body, *model, *prompt;
	size_t body_len;
	const char *hdrs[5];
	struct http_req hreq;
	struct http_resp hresp;
	unsigned char key[CACHE_KEY_LEN];
	bool use_cache;
	enum call_via via;
	struct buf hit;         /* VIA_CACHE: the cached value */
	int64_t t0_wall;
	/* chat */
	struct ai_chat_resp *cresp;
	ai_chat_done_fn cdone;
	int (*on_delta)(const char *text, size_t n, void *ud);
	int (*on_reasoning)(const char *text, size_t n, void *ud);
	void *delta_ud;
	bool (*cacheable)(const char *content, void *ud);
	void *cacheable_ud;
	bool stream;
	bool stream_options;    /* the body asks for the usage chunk (stream_options) */
	long cached_tokens, reasoning_tokens;   /* for the ledger row; -1 unknown */
	struct sse_parser sse;
	struct chatstream cs;
	bool checked, plain;    /* a stream request answered with plain JSON */
	struct buf plainbuf;
	struct ai_err stream_err;
	/* embeddings */
	struct ai_embed_resp *eresp;
	ai_embed_done_fn edone;
	size_t n_inputs;
	void *ud;
	struct ai_call *next;   /* in the client's ready list (VIA_CACHE, VIA_DRY_RUN) */
};

int ai_client_init(struct ai_client **cp, const struct ai_client_opts *o, struct ai_err *err)
{
	const struct ai_config *cfg = o->cfg;
	struct ai_client *c = calloc(1, sizeof(*c));
	char host[256];

	*cp = NULL;
	if (!c)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	c->o = *o;
	c->owner = getpid();
	if (c->o.parallel < 1)
		c->o.parallel = 1;
	http_opts_init(&c->http);
	c->http.timeout_ms = (long)(cfg->timeout_s * 1000);
	c->http.connect_timeout_ms = (long)(cfg->connect_timeout_s * 1000);
	c->http.idle_timeout_ms = o->idle_timeout_ms;
	c->http.retries = (int)cfg->retries;
	c->http.verbose = cfg->verbose;
	c->http.ca_cert = cfg->ca_cert;
	c->http.proxy = cfg->proxy;
	c->http.no_proxy = cfg->no_proxy;
	c->http.interrupt = o->stop;
	c->http.debug = o->debug;
	c->http.debug_ud = o->ud;
	if (!(c->host = strdup(url_host(cfg->base_url, host, sizeof(host))))) {
		free(c);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	*cp = c;
	return 0;
}

const char *ai_client_host(const struct ai_client *c)
{
	return c->host;
}

struct ai_config *ai_client_config(const struct ai_client *c)
{
	return c->o.cfg;
}

/* Resolved at each call, not at init: a program may still set cfg's models after. */
const char *ai_client_model(const struct ai_client *c)
{
	return c->o.model ? c->o.model : c->o.cfg->model;
}

const char *ai_client_embed_model(const struct ai_client *c)
{
	return c->o.embed_model ? c->o.embed_model : c->o.cfg->embed_model;
}

volatile sig_atomic_t *ai_client_stop(const struct ai_client *c)
{
	return c->o.stop;
}

static void call_free(struct ai_call *k);
static void ledger_flush(struct ai_client *c);

void ai_client_release(struct ai_client *c)
{
	if (!c)
		return;
	if (c->o.released)
		c->o.released(c, c->o.ud);
	if (c->pool)
		http_pool_free(c->pool);
	while (c->ready) {
		struct ai_call *k = c->ready;

		c->ready = k->next;
		call_free(k);
	}
	if (c->cache_state == 1)
		cache_close(&c->cache);
	ledger_flush(c);
	free(c->lq);
	if (c->ledger) {
		ledger_close(c->ledger);
		free(c->ledger);
	}
	if (c->auth)
		sodium_free(c->auth);
	free(c->host);
	free(c);
}

void ai_client_verbose(const struct ai_client *c, const char *msg)
{
	if (c->o.cfg->verbose && c->o.warn)
		c->o.warn(msg, c->o.ud);
}

static void warn_once(struct ai_client *c, const char *what, const struct ai_err *e)
{
	char msg[400];

	if (!c->o.warn)
		return;
	snprintf(msg, sizeof(msg), "%s: %s", what, e->msg);
	c->o.warn(msg, c->o.ud);
}

static struct cache *client_cache(struct ai_client *c)
{
	if (!c->o.cfg->cache)
		return NULL;
	if (!c->cache_state) {
		char *dir = config_xdg_path("CACHE", "responses");
		struct ai_err e;

		ai_err_clear(&e);
		if (dir && !cache_open(&c->cache, dir, c->o.cfg->cache_ttl_s, c->o.cfg->cache_max, &e)) {
			c->cache_state = 1;
		} else {
			c->cache_state = -1;
			if (!dir)
				ai_errf(&e, AI_EX_CONFIG, "no cache directory (set HOME or XDG_CACHE_HOME)");
			warn_once(c, "cache off", &e);
		}
		free(dir);
	}
	return c->cache_state == 1 ? &c->cache : NULL;
}

static struct ledger *client_ledger(struct ai_client *c)
{
	if (!c->o.cfg->ledger)
		return NULL;
	if (!c->ledger_state) {
		struct buf path;
		struct ai_err e;

		ai_err_clear(&e);
		buf_init(&path, 0);
		c->ledger = calloc(1, sizeof(*c->ledger));
		if (c->ledger && !ledger_default_path(&path, &e) && !ledger_open(c->ledger, path.data, &e)) {
			ledger_set_keep(c->ledger, c->o.cfg->ledger_keep);
			c->ledger_state = 1;
		} else {
			c->ledger_state = -1;
			free(c->ledger);
			c->ledger = NULL;
			warn_once(c, "usage ledger not written", &e);
		}
		buf_release(&path);
	}
	return c->ledger_state == 1 ? c->ledger : NULL;
}

/*
 * Builds "Authorization: Bearer KEY" once, in guarded memory; for Azure
 * OpenAI (azure_api_version set) "api-key: KEY", the header it reads.
 */
static int client_auth(struct ai_client *c, const char **hdr, struct ai_err *err)
{
	const char *key;

	if (!c->auth_loaded) {
		if (config_key(c->o.cfg, &key, err))
			return -1;
		if (key) {
			size_t n = strlen(key) + sizeof("Authorization: Bearer ");

			if (!(c->auth = sodium_malloc(n)))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			snprintf(c->auth, n, "%s%s", c->o.cfg->azure_api_version ? "api-key: " :
				 "Authorization: Bearer ", key);
		}
		c->auth_loaded = true;
	}
	*hdr = c->auth;
	return 0;
}

/* The key's header as --dry-run shows it. */
static const char *auth_shown(const struct ai_client *c)
{
	return c->o.cfg->azure_api_version ? "api-key: [redacted]" : "Authorization: Bearer [redacted]";
}

static struct http_pool *client_pool(struct ai_client *c, struct ai_err *err)
{
	if (!c->pool) {
		c->pool = http_pool_new(&c->http, c->o.parallel, err);
	}
	return c->pool;
}

void ai_chat_req_init(struct ai_chat_req *r)
{
	memset(r, 0, sizeof(*r));
	r->temperature = NAN;
}

void ai_chat_resp_release(struct ai_chat_resp *r)
{
	free(r->content);
	free(r->finish_reason);
	free(r->model);
	free(r->reasoning);
	free(r->refusal);
	if (r->tool_calls)
		json_object_put(r->tool_calls);
	memset(r, 0, sizeof(*r));
}

void ai_embed_resp_release(struct ai_embed_resp *r)
{
	free(r->v);
	free(r->model);
	memset(r, 0, sizeof(*r));
}

static void call_free(struct ai_call *k)
{
	if (!k)
		return;
	free(k->url);
	free(k->body);
	free(k->model);
	free(k->prompt);
	http_resp_release(&k->hresp);
	buf_release(&k->hit);
	if (k->checked)
		buf_release(&k->plainbuf);
	if (k->kind == CALL_CHAT && k->stream) {
		sse_release(&k->sse);
		chatstream_release(&k->cs);
	}
	free(k);
}

int ai_cache_canonical(const char *base_url, json_object *body, struct buf *out)
{
	const char *s = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);

	return buf_addf(out, "%s\n%s", base_url, s ? s : "");
}

/* Models that take max_completion_tokens and refuse max_tokens (OpenAI's reasoning models). */
static bool wants_completion_tokens(const char *model)
{
	return (model[0] == 'o' && model[1] >= '1' && model[1] <= '9') || !strncmp(model, "gpt-5", 5);
}

/*
 * Whether a request to model may carry a temperature.  OpenAI's reasoning
 * models answer 400 to any but their default, unless reasoning is off
 * (gpt-5.1's reasoning_effort "none"), so there it is left out rather than
 * failing every call of a config that sets one.
 */
static bool temperature_allowed(const char *model, const struct ai_chat_req *q,
				const struct ai_config *cfg)
{
	json_object *v = NULL;

	if (!wants_completion_tokens(model))
		return true;
	if (!(q->extra && json_object_object_get_ex(q->extra, "reasoning_effort", &v)) && cfg->params)
		json_object_object_get_ex(cfg->params, "reasoning_effort", &v);
	return v && json_object_is_type(v, json_type_string) && !strcmp(json_object_get_string(v), "none");
}

static json_object *chat_body(const struct ai_config *cfg, const struct ai_chat_req *q,
			      const char *model)
{
	json_object *b = json_object_new_object();
	double temperature = isnan(q->temperature) ? cfg->temperature : q->temperature;
	long max_tokens = q->max_tokens > 0 ? q->max_tokens : cfg->max_tokens;

	if (!b)
		return NULL;
	if (jv_add(b, "model", json_object_new_string(model)) ||
	    jv_add(b, "messages", json_object_get(q->messages)))
		goto fail;
	if (!isnan(temperature) && temperature_allowed(model, q, cfg) &&
	    jv_add(b, "temperature", json_object_new_double(temperature)))
		goto fail;
	if (max_tokens > 0 &&
	    jv_add(b, wants_completion_tokens(model) ? "max_completion_tokens" : "max_tokens",
		 json_object_new_int64(max_tokens)))
		goto fail;
	if (q->tools && jv_add(b, "tools", json_object_get(q->tools)))
		goto fail;
	if (q->extra) {
		json_object_object_foreach(q->extra, k, v)
			if (jv_add(b, k, json_object_get(v)))
				goto fail;
	}
	/* -o and the config's parameters, where the request has not set the field itself. */
	if (cfg->params) {
		json_object_object_foreach(cfg->params, pk, pv)
			if (!json_object_object_get_ex(b, pk, NULL) && jv_add(b, pk, json_object_get(pv)))
				goto fail;
	}
	return b;
fail:
	json_object_put(b);
	return NULL;
}

static char *dup_json(json_object *o, size_t *len)
{
	size_t n;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *d = s ? malloc(n + 1) : NULL;

	if (d) {
		memcpy(d, s, n + 1);
		*len = n;
	}
	return d;
}

/* The server's own words in an error answer, borrowed from j or copied into raw (201 bytes). */
static const char *error_text(json_object *j, const char *body, size_t len, char *raw)
{
	const char *msg = NULL;

	if (j) {
		json_object *e;

		if (json_object_object_get_ex(j, "error", &e)) {
			if (json_object_is_type(e, json_type_string))
				msg = json_object_get_string(e);
			else
				msg = jv_str(e, "message");
		}
		if (!msg)
			msg = jv_str(j, "message");
		if (!msg)
			msg = jv_str(j, "detail");
	}
	if (!msg && len) {
		size_t n = len < 200 ? len : 200;

		/*
		 * An excerpt of a page (HTML, text) on one line, a C string; other
		 * control characters are the printer's to show (termout.h).
		 */
		for (size_t i = 0; i < n; i++)
			raw[i] = !body[i] || body[i] == '\n' || body[i] == '\r' || body[i] == '\t' ? ' ' : body[i];
		raw[n] = '\0';
		msg = raw;
	}
	return msg;
}

void ai_error_message(const char *body, size_t len, char *out, size_t n)
{
	json_object *j = len ? json_tokener_parse(body) : NULL;
	char raw[201];
	const char *m = error_text(j, body, len, raw);

	snprintf(out, n, "%s", m && *m ? m : "(no message)");
	json_object_put(j);
}

/*
 * Whether an error answer says the model does not exist: OpenAI's code
 * "model_not_found", or the words of Ollama ("model \"x\" not found"), vLLM
 * ("The model `x` does not exist"), llama.cpp, LiteLLM and OpenRouter.
 */
static bool model_missing(json_object *j, const char *msg)
{
	static const char *const said[] = {
		"not found", "does not exist", "not exist", "no such", "unknown model",
		"invalid model", "not a valid model",
	};
	json_object *e;
	const char *code = NULL, *type = NULL;
	char low[256];
	size_t i;

	if (j && json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_object)) {
		code = jv_str(e, "code");
		type = jv_str(e, "type");
	}
	if (!code)
		code = jv_str(j, "code");
	if ((code && !strcmp(code, "model_not_found")) || (type && !strcmp(type, "model_not_found")))
		return true;
	if (!msg)
		return false;
	for (i = 0; msg[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)msg[i]);
	low[i] = '\0';
	if (!strstr(low, "model"))
		return false;
	for (i = 0; i < AI_ARRAY_LEN(said); i++)
		if (strstr(low, said[i]))
			return true;
	return false;
}

int ai_http_error(const char *what, long status, const char *body, size_t len, struct ai_err *err)
{
	json_object *j = len ? json_tokener_parse(body) : NULL;
	const char *msg, *hint = "";
	char raw[201];
	int code, keep;
	size_t n;

	msg = error_text(j, body, len, raw);
	if (!msg || !*msg)
		msg = "(no message)";
	if (status == 401 || status == 403)
		code = AI_EX_CONFIG;
	else if (http_retryable_status(status) &&
		 http_error_verdict(status, body, len, NULL) == HTTP_ERR_UNKNOWN)
		code = AI_EX_TEMPFAIL;
	else
		code = AI_EX_UNAVAILABLE;   /* other 4xx, and a 5xx known to be permanent */
	if ((status == 400 || status == 404) && model_missing(j, msg))
		hint = "; see the models the server offers with --list-models";
	else if (status == 401)
		hint = "; check OPENAI_API_KEY or api_key_cmd (see ai.conf(5))";
	else if (status == 404)
		hint = "; check the model name and the base URL";
	/* Cut a long server message (at a character's start), not the hint after it. */
	keep = (int)(sizeof(err->msg) - 1 - strlen(hint)) - (int)strlen(what) - 40;
	if (keep < 60)
		keep = 60;
	n = strlen(msg);
	if (n > (size_t)keep)
		while (keep > 0 && ((unsigned char)msg[keep] & 0xc0) == 0x80)
			keep--;
	ai_errf(err, code, "%s: the server answered %ld: %.*s%s", what, status, keep, msg, hint);
	err->status = status;
	if (j)
		json_object_put(j);
	return -1;
}

/*
 * Whether the path of a base URL ends in /v1 or goes through it: servers
 * that speak the OpenAI API (llama.cpp, vLLM, Ollama) serve it under /v1,
 * and a base URL without it is answered 404 for every request.
 */
static bool path_has_v1(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	n = strcspn(p, "?#");
	while (n && p[n - 1] == '/')
		n--;
	if (n >= 3 && !memcmp(p + n - 3, "/v1", 3))
		return true;
	{
		const char *q = strstr(p, "/v1/");

		return q && q < p + n;
	}
}

/*
 * After ai_http_error: a 404 from a base URL without /v1 most likely means
 * the /v1 is missing, so say so, with the URL to try.  The hint replaces
 * the end of a message too long to hold both.
 */
static void v1_hint(const struct ai_client *c, struct ai_err *err)
{
	const char *url = c->o.cfg->base_url;
	char hint[160];
	size_t hl, ml, n;

	if (!err || err->status != 404 || !url || path_has_v1(url))
		return;
	n = strcspn(url, "?#");
	while (n && url[n - 1] == '/')
		n--;
	if (strchr(url, '@') || n > 100)    /* no credentials in a message, no long URL */
		snprintf(hint, sizeof(hint), "; does the base URL need /v1? (OPENAI_BASE_URL=http://host:port/v1)");
	else
		snprintf(hint, sizeof(hint), "; does the base URL need /v1? (OPENAI_BASE_URL=%.*s/v1)", (int)n, url);
	hl = strlen(hint);
	ml = strlen(err->msg);
	if (ml + hl >= sizeof(err->msg)) {
		ml = sizeof(err->msg) - 1 - hl;
		while (ml > 0 && ((unsigned char)err->msg[ml] & 0xc0) == 0x80)
			ml--;
	}
	memcpy(err->msg + ml, hint, hl + 1);
}

static double call_cost(const struct ai_call *k, long pt, long ct)
{
	if (pt < 0)
		return NAN;
	/* A local server's unpriced model costs nothing (prices.h). */
	/* Prompt tokens the server read from its cache cost the cached-input price. */
	return prices_cost_cached_at(&k->c->o.cfg->prices, k->model, k->c->host, pt, k->cached_tokens,
				     ct < 0 ? 0 : ct, (k->c->o.batch_price || k->c->batch_now));
}

/*
 * The ledger rows of busy wake-ups.  Inside ai_client_step, account()
 * queues its row; a step writes the queue in one transaction
 * (ledger_append_many) when it ends with no call in flight, or with
 * LEDGER_FLUSH_ROWS rows queued, or LEDGER_FLUSH_MS after the oldest
 * came; a step with rows queued waits no longer than that deadline,
 * and a call started past it writes them first, so the rows are
 * written within about LEDGER_FLUSH_MS of their call's end whatever
 * timeout the caller passed (ai_client_run's 1000 s).  A
 * commit costs ~80 us of CPU whatever it holds (the pages it writes to
 * the WAL), and ai-batch's wake-ups at -P 64 complete about four calls
 * each: written per wake-up the ledger cost 0.145 s of CPU per 1,000
 * calls against 0.105 s without it; see tests/bench/batch.sh.
 * Outside a step (a synchronous caller between steps,
 * ai_account_batch_result) a row is written at once.  A budget check
 * adds the queued rows' cost to the ledger's, so it sees every call
 * made.  The queue is also written when the client is released, and
 * by ai_client_flush (libcmd calls it at exit()).  A process killed by
 * a signal meanwhile loses at most the queued rows, LEDGER_FLUSH_MS of
 * them, as a power cut may lose the last commits (synchronous=NORMAL;
 * ledger.h).
 */
#define LEDGER_FLUSH_ROWS 256
#define LEDGER_FLUSH_MS 200

struct ledger_qrow {
	struct ledger_row r;
	char *model, *prompt;           /* owned copies: the call is freed before the flush */
};

static void ledger_off(struct ai_client *c, const struct ai_err *e)
{
	warn_once(c, "usage ledger not written", e);
	ledger_close(c->ledger);
	free(c->ledger);
	c->ledger = NULL;
	c->ledger_state = -1;
}

static void ledger_queue_clear(struct ai_client *c)
{
	for (size_t i = 0; i < c->lq_n; i++) {
		free(c->lq[i].model);
		free(c->lq[i].prompt);
	}
	c->lq_n = 0;
}

/*
 * Writes the queued rows in one transaction; on failure warns once and
 * turns the ledger off.  In a forked child the rows are its parent's
 * (which writes them): dropped.
 */
static void ledger_flush(struct ai_client *c)
{
	struct ledger_row rows[64];
	struct ai_err e;
	size_t i = 0;

	ai_err_clear(&e);
	if (c->lq_n && c->ledger && c->owner == getpid()) {
		/* One transaction for all: append_many takes an array of rows. */
		struct ledger_row *v = c->lq_n <= AI_ARRAY_LEN(rows) ? rows : malloc(c->lq_n * sizeof(*v));

		if (!v) {
			ai_errf(&e, AI_EX_OSERR, "out of memory");
			ledger_off(c, &e);
		} else {
			for (i = 0; i < c->lq_n; i++)
				v[i] = c->lq[i].r;
			if (ledger_append_many(c->ledger, v, c->lq_n, &e))
				ledger_off(c, &e);
			if (v != rows)
				free(v);
		}
	}
	ledger_queue_clear(c);
}

void ai_client_flush(struct ai_client *c)
{
	if (c)
		ledger_flush(c);
}

/* The known cost of the queued rows of today (the budget's day). */
static double queued_cost_today(const struct ai_client *c)
{
	int64_t today = c->lq_n ? ledger_today_ms() : 0;
	double usd = 0;

	for (size_t i = 0; i < c->lq_n; i++)
		if (c->lq[i].r.ts_ms >= today && isfinite(c->lq[i].r.cost))
			usd += c->lq[i].r.cost;
	return usd;
}

/* Queues a row (see ledger_flush); false when it must be written at once. */
static bool ledger_enqueue(struct ai_client *c, const struct ledger_row *r)
{
	struct ledger_qrow *q;

	if (!c->in_step)
		return false;
	if (c->lq_n == c->lq_alloc) {
		size_t na = c->lq_alloc ? 2 * c->lq_alloc : 64;
		struct ledger_qrow *nv;

		if (c->lq_n >= LEDGER_FLUSH_ROWS)
			ledger_flush(c);
		if (c->lq_n == c->lq_alloc) {
			nv = realloc(c->lq, na * sizeof(*nv));
			if (!nv)
				return false;
			c->lq = nv;
			c->lq_alloc = na;
		}
	}
	q = &c->lq[c->lq_n];
	if (!c->lq_n)
		c->lq_t0 = mono_ms();
	q->r = *r;
	q->model = r->model ? strdup(r->model) : NULL;
	q->prompt = r->prompt ? strdup(r->prompt) : NULL;
	if ((r->model && !q->model) || (r->prompt && !q->prompt)) {
		free(q->model);
		free(q->prompt);
		return false;
	}
	q->r.model = q->model;
	q->r.prompt = q->prompt;
	c->lq_n++;
	return true;
}

/*
 * The image and file parts in a request body (attach.h).  The body is json-c's
 * plain text: a quote inside a string is escaped, so these can only be parts.
 */
static long count_attachments(const char *body)
{
	static const char *const kinds[] = { "\"type\":\"image_url\"", "\"type\":\"file\"" };
	long n = 0;

	for (size_t i = 0; body && i < AI_ARRAY_LEN(kinds); i++)
		for (const char *p = body; (p = strstr(p, kinds[i])); p++)
			n++;
	return n;
}

/* Every call ends here: one ledger row, hit or miss, success or failure. */
static void account(struct ai_call *k, long pt, long ct, long status, bool cached, double cost,
		    double latency_ms)
{
	struct ledger *l = client_ledger(k->c);
	struct ledger_row r;
	struct ai_err e;

	if (!l)
		return;
	memset(&r, 0, sizeof(r));
	r.ts_ms = k->t0_wall;
	r.program = k->c->o.prog;
	r.model = k->model;
	r.host = k->c->host;
	r.prompt_tokens = pt;
	r.completion_tokens = ct;
	r.cached_tokens = k->cached_tokens;
	r.reasoning_tokens = k->reasoning_tokens;
	r.latency_ms = (long)latency_ms;
	r.status = status;
	r.cached = cached;
	r.batch = (k->c->o.batch_price || k->c->batch_now);
	r.cost = cached ? 0 : cost;
	r.saved = cached ? cost : NAN;
	r.prompt = k->c->o.cfg->log_prompts ? k->prompt : NULL;
	r.attachments = count_attachments(k->body);
	if (ledger_enqueue(k->c, &r))
		return;
	l = k->c->ledger;	/* a full queue's flush may have failed and closed it */
	ai_err_clear(&e);
	if (l && ledger_append(l, &r, &e))
		ledger_off(k->c, &e);
}

/* ---- chat ---- */

static int stream_data(const char *p, size_t n, void *ud)
{
	struct ai_call *k = ud;

	/* Some servers ignore "stream": true and answer with one JSON object. */
	if (!k->checked) {
		k->checked = true;
		k->plain = !strncasecmp(k->hresp.content_type, "application/json", 16);
		buf_init(&k->plainbuf, MAX_CONTENT);
	}
	if (k->plain)
		return buf_add(&k->plainbuf, p, n) ? ai_errf(&k->stream_err, AI_EX_UNAVAILABLE,
						     "the answer is too large") : 0;
	if (chatstream_feed(&k->cs, &k->sse, p, n, &k->stream_err))
		return -1;
	return 0;
}

static int stream_delta(const char *text, size_t n, void *ud)
{
	struct ai_call *k = ud;

	return k->on_delta ? k->on_delta(text, n, k->delta_ud) : 0;
}

static int stream_reasoning(const char *text, size_t n, void *ud)
{
	struct ai_call *k = ud;

	return k->on_reasoning ? k->on_reasoning(text, n, k->delta_ud) : 0;
}

static int dup_or_null(char **dst, const char *s)
{
	*dst = NULL;
	if (s && !(*dst = strdup(s)))
		return -1;
	return 0;
}

/* Fills resp from a chat completion object (the server's, or the cache's copy of it). */
static int parse_chat(struct ai_call *k, const char *body, size_t len, struct ai_err *err)
{
	struct ai_chat_resp *r = k->cresp;
	json_tokener *tok = json_tokener_new_ex(64);
	json_object *j, *choices, *ch, *msg, *tc = NULL, *cv;
	const char *reasoning, *refusal;
	struct jv_tokens t;
	struct buf text;
	int rc = -1, content_rc = 0;

	if (!tok)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	j = json_tokener_parse_ex(tok, body, (int)len);
	if (!j || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(j, json_type_object)) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s is not a JSON object", k->c->host);
		goto out;
	}
	if (!json_object_object_get_ex(j, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array) || !json_object_array_length(choices) ||
	    !(ch = json_object_array_get_idx(choices, 0)) ||
	    !json_object_object_get_ex(ch, "message", &msg)) {
		const char *em = NULL;
		json_object *e;

		if (json_object_object_get_ex(j, "error", &e))
			em = json_object_is_type(e, json_type_string) ? json_object_get_string(e) :
			     jv_str(e, "message");
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s has no choices%s%s", k->c->host,
			em ? ": " : "", em ? em : "");
		goto out;
	}
	/*
	 * A wrong shape is a server error, never an empty success (which
	 * ai-batch would journal as finished): content is a string, or null
	 * beside tool calls (t_chatstream.c's server shapes); tool_calls is an
	 * array or null.
	 */
	if (!json_object_is_type(msg, json_type_object)) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s has a message that is not an object",
			k->c->host);
		goto out;
	}
	if (json_object_object_get_ex(msg, "tool_calls", &tc) && tc &&
	    !json_object_is_type(tc, json_type_array)) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s has tool_calls that are not an array",
			k->c->host);
		goto out;
	}
	if (!json_object_object_get_ex(msg, "content", &cv))
		cv = NULL;
	if (cv && !json_object_is_type(cv, json_type_string) && !json_object_is_type(cv, json_type_array)) {
		ai_errf(err, AI_EX_UNAVAILABLE,
			"the answer from %s has a content that is not a string or a list of parts",
			k->c->host);
		goto out;
	}
	/* A refusal is an answer of its own, with content null (chat_done fails the call). */
	refusal = jv_str(msg, "refusal");
	if (!cv && !(tc && json_object_array_length(tc)) && !refusal) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the answer from %s has neither content nor tool calls",
			k->c->host);
		goto out;
	}
	/* DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter and Ollama reasoning. */
	if (!(reasoning = jv_str(msg, "reasoning_content")))
		reasoning = jv_str(msg, "reasoning");
	buf_init(&text, MAX_CONTENT);
	content_rc = jv_content_text(cv, &text);
	if (content_rc) {
		int why = errno;

		buf_release(&text);
		ai_errf(err, why == ENOMEM ? AI_EX_OSERR : AI_EX_UNAVAILABLE,
			why == EINVAL ? "the answer from %s has a content that is not a string or a list of parts" :
			"the answer from %s is too large", k->c->host);
		goto out;
	}
	r->content = buf_detach(&text, NULL);
	if (!r->content || dup_or_null(&r->finish_reason, jv_str(ch, "finish_reason")) ||
	    dup_or_null(&r->reasoning, reasoning && *reasoning ? reasoning : NULL) ||
	    dup_or_null(&r->refusal, refusal && *refusal ? refusal : NULL) ||
	    dup_or_null(&r->model, jv_str(j, "model") ? jv_str(j, "model") : k->model)) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (tc && json_object_array_length(tc))
		r->tool_calls = json_object_get(tc);
	jv_tokens_init(&t);
	jv_tokens_read(j, &t);
	r->prompt_tokens = t.prompt;
	r->completion_tokens = t.completion;
	r->cached_tokens = t.cached;
	r->reasoning_tokens = t.reasoning;
	rc = 0;
out:
	if (j)
		json_object_put(j);
	json_tokener_free(tok);
	return rc;
}

/* {"KEY": n}: a usage detail as OpenAI writes it.  Returns new, NULL on ENOMEM. */
static json_object *usage_detail(const char *key, long n)
{
	json_object *o = json_object_new_object();

	if (o && jv_add(o, key, json_object_new_int64(n))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* What the cache keeps of a chat answer: the same shape as a completion, so one parser reads both. */
static int chat_cache_value(const struct ai_chat_resp *r, struct buf *out)
{
	json_object *o = json_object_new_object(), *ch = json_object_new_object(),
		    *msg = json_object_new_object(), *arr = json_object_new_array(), *u = NULL;
	int rc = -1;

	if (!o || !ch || !msg || !arr)
		goto out;
	if (jv_add(msg, "role", json_object_new_string("assistant")) ||
	    jv_add(msg, "content", json_object_new_string(r->content ? r->content : "")) ||
	    (r->reasoning && jv_add(msg, "reasoning_content", json_object_new_string(r->reasoning))) ||
	    (r->tool_calls && jv_add(msg, "tool_calls", json_object_get(r->tool_calls))) ||
	    jv_add(ch, "message", msg))
		goto out;
	msg = NULL;
	if ((r->finish_reason && jv_add(ch, "finish_reason", json_object_new_string(r->finish_reason))) ||
	    json_object_array_add(arr, ch))
		goto out;
	ch = NULL;
	if (jv_add(o, "choices", arr))
		goto out;
	arr = NULL;
	if ((r->model && jv_add(o, "model", json_object_new_string(r->model))) ||
	    !(u = jv_usage(r->prompt_tokens, r->completion_tokens)))
		goto out;
	if ((r->cached_tokens >= 0 &&
	     jv_add(u, "prompt_tokens_details", usage_detail("cached_tokens", r->cached_tokens))) ||
	    (r->reasoning_tokens >= 0 &&
	     jv_add(u, "completion_tokens_details", usage_detail("reasoning_tokens", r->reasoning_tokens))))
		goto out;
	if (jv_add(o, "usage", u)) {
		u = NULL;
		goto out;
	}
	u = NULL;
	rc = buf_addstr(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	json_object_put(ch);
	json_object_put(msg);
	json_object_put(arr);
	json_object_put(u);
	return rc;
}

static void chat_finish(struct ai_call *k, int rc, struct ai_err *e)
{
	k->cdone(rc, k->cresp, e, k->ud);
	call_free(k);
}

/*
 * An answer that is none: the model's refusal, or a server's content
 * filter that stopped it.  Same input, same answer, so not temporary:
 * AI_EX_DATAERR, with the refusal quoted (the printer neutralises it, as
 * every message), and resp's error_type "refusal" or "content_filter"
 * (ai-batch's error lines).  0 when the answer is one.
 */
static int withheld(const struct ai_call *k, struct ai_err *e)
{
	struct ai_chat_resp *r = k->cresp;

	if (r->refusal) {
		int keep = 180;     /* of the message's 256 bytes, the rest for its words */

		snprintf(r->error_type, sizeof(r->error_type), "refusal");
		if (strlen(r->refusal) > (size_t)keep)
			while (keep > 0 && ((unsigned char)r->refusal[keep] & 0xc0) == 0x80)
				keep--;
		return ai_errf(e, AI_EX_DATAERR, "the model refused to answer: '%.*s%s'", keep,
			       r->refusal, strlen(r->refusal) > (size_t)keep ? "..." : "");
	}
	if (r->finish_reason && !strcmp(r->finish_reason, "content_filter")) {
		snprintf(r->error_type, sizeof(r->error_type), "content_filter");
		return ai_errf(e, AI_EX_DATAERR, "%s withheld the answer: its content filter stopped it%s",
			       k->c->host, r->content && r->content[0] ? " part way" : "");
	}
	return 0;
}

/*
 * Whether a 400 to a stream request is the server refusing
 * stream_options (older Azure API versions, some proxies and servers
 * answer "Unrecognized request argument supplied: stream_options").
 */
static bool refuses_stream_options(const struct ai_call *k, const struct http_resp *h)
{
	char msg[256];

	if (h->status != 400 || !k->stream_options)
		return false;
	ai_error_message(h->body.data, h->body.len, msg, sizeof(msg));
	return strstr(msg, "stream_options") || strstr(msg, "include_usage");
}

static void chat_done(int rc, struct http_resp *h, struct ai_err *herr, void *ud);

/*
 * Sends k again without stream_options, and has the client leave it out
 * from now on: the usage chunk is a nicety, the answer is not.  0, or -1
 * when the request cannot be rebuilt or queued.
 */
static int resend_without_stream_options(struct ai_call *k, struct ai_err *err)
{
	json_object *b = json_tokener_parse(k->body);
	char *body;
	size_t len;

	if (!b)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	json_object_object_del(b, "stream_options");
	body = dup_json(b, &len);
	json_object_put(b);
	if (!body)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	free(k->body);
	k->body = body;
	k->body_len = len;
	k->hreq.body = body;
	k->hreq.body_len = len;
	k->stream_options = false;
	k->c->no_stream_options = true;
	ai_client_verbose(k->c, "the server refuses stream_options; asking again without it");
	http_resp_release(&k->hresp);
	http_resp_init(&k->hresp);
	return http_pool_add(k->c->pool, &k->hreq, &k->hresp, chat_done, k, err);
}

static void chat_done(int rc, struct http_resp *h, struct ai_err *herr, void *ud)
{
	struct ai_call *k = ud;
	struct ai_chat_resp *r = k->cresp;
	struct ai_err e;

	ai_err_clear(&e);
	r->status = h->status;
	r->attempts = h->attempts;
	r->latency_ms = h->ms;
	r->ttfb_ms = h->ttfb_ms;
	r->rl_remaining_requests = h->rl_remaining_requests;
	r->rl_remaining_tokens = h->rl_remaining_tokens;
	r->rl_reset_ms = h->rl_reset_ms;
	r->retry_after_ms = h->retry_after_ms;
	if (rc) {
		e = k->stream_err.code ? k->stream_err : *herr;
		if (k->stream && h->delivered) {
			r->partial = true;
			r->content = buf_detach(&k->cs.content, NULL);
		}
		account(k, -1, -1, h->status, false, NAN, h->ms);
		chat_finish(k, -1, &e);
		return;
	}
	if (refuses_stream_options(k, h) && !resend_without_stream_options(k, &e))
		return;
	if (h->status < 200 || h->status > 299) {
		ai_http_error("chat", h->status, h->body.data, h->body.len, &e);
		v1_hint(k->c, &e);
		ai_error_type(h->body.data, h->body.len, r->error_type, sizeof(r->error_type));
		account(k, -1, -1, h->status, false, NAN, h->ms);
		chat_finish(k, -1, &e);
		return;
	}
	if (k->stream && h->delivered && !k->plain) {
		int end = chatstream_end(&k->cs, &k->sse, &e);

		r->prompt_tokens = k->cs.prompt_tokens;
		r->completion_tokens = k->cs.completion_tokens;
		r->cached_tokens = k->cached_tokens = k->cs.cached_tokens;
		r->reasoning_tokens = k->reasoning_tokens = k->cs.reasoning_tokens;
		r->tool_calls = chatstream_tool_calls(&k->cs);
		r->content = buf_detach(&k->cs.content, NULL);
		r->reasoning = k->cs.reasoning.len ? buf_detach(&k->cs.reasoning, NULL) : NULL;
		r->refusal = k->cs.refusal.len ? buf_detach(&k->cs.refusal, NULL) : NULL;
		r->finish_reason = k->cs.finish_reason[0] ? strdup(k->cs.finish_reason) : NULL;
		r->model = strdup(k->model);
		if (end) {
			r->partial = true;
			account(k, r->prompt_tokens, r->completion_tokens, h->status, false,
				call_cost(k, r->prompt_tokens, r->completion_tokens), h->ms);
			chat_finish(k, -1, &e);
			return;
		}
	} else if (k->plain ? parse_chat(k, k->plainbuf.data, k->plainbuf.len, &e) :
		   parse_chat(k, h->body.data, h->body.len, &e)) {
		account(k, -1, -1, h->status, false, NAN, h->ms);
		chat_finish(k, -1, &e);
		return;
	} else {
		k->cached_tokens = r->cached_tokens;
		k->reasoning_tokens = r->reasoning_tokens;
		if (k->stream && k->on_reasoning && r->reasoning)
			k->on_reasoning(r->reasoning, strlen(r->reasoning), k->delta_ud);
		/* A server that answered a stream request with plain JSON: show it all at once. */
		if (k->stream && k->on_delta && r->content[0])
			k->on_delta(r->content, strlen(r->content), k->delta_ud);
	}
	r->cost = call_cost(k, r->prompt_tokens, r->completion_tokens);
	account(k, r->prompt_tokens, r->completion_tokens, h->status, false, r->cost, h->ms);
	if (withheld(k, &e)) {
		chat_finish(k, -1, &e);
		return;
	}
	if (k->use_cache && !r->partial && r->content &&
	    (!k->cacheable || k->cacheable(r->content, k->cacheable_ud))) {
		struct buf v;

		buf_init(&v, 0);
		if (!chat_cache_value(r, &v))
			cache_put(&k->c->cache, k->key, v.data, v.len, &e);
		buf_release(&v);
	}
	chat_finish(k, 0, NULL);
}

/* A chat answered from the cache: replayed, a stream as a stream, a word at a time. */
static void chat_hit(struct ai_call *k)
{
	struct ai_chat_resp *r = k->cresp;
	struct ai_err e;
	int64_t t0 = mono_ms();

	ai_err_clear(&e);
	if (parse_chat(k, k->hit.data, k->hit.len, &e)) {
		chat_finish(k, -1, &e);
		return;
	}
	r->cached = true;
	r->status = 200;
	k->cached_tokens = r->cached_tokens;
	k->reasoning_tokens = r->reasoning_tokens;
	if (k->on_reasoning && r->reasoning)
		k->on_reasoning(r->reasoning, strlen(r->reasoning), k->delta_ud);
	if (k->on_delta) {
		const char *s = r->content;

		while (*s) {
			size_t n = strcspn(s, " \n");

			n += strspn(s + n, " \n");
			if (k->on_delta(s, n, k->delta_ud))
				break;
			s += n;
		}
	}
	r->cost = call_cost(k, r->prompt_tokens, r->completion_tokens);
	r->latency_ms = (double)(mono_ms() - t0);
	account(k, r->prompt_tokens, r->completion_tokens, 200, true, r->cost, r->latency_ms);
	r->cost = 0;
	chat_finish(k, 0, NULL);
}

/*
 * A call answered without the network (via says how) waits in the ready
 * list, in order, until the run loop completes it: its done callback is
 * never called from inside the *_start call that made it.
 */
static void push_ready(struct ai_client *c, struct ai_call *k, enum call_via via)
{
	struct ai_call **p = &c->ready;

	k->via = via;
	k->next = NULL;
	while (*p)
		p = &(*p)->next;
	*p = k;
}

static void embed_done(int rc, struct http_resp *h, struct ai_err *herr, void *ud);

/* The request's headers; the key is loaded (api_key_cmd run) only for a request that goes out. */
static int call_headers(struct ai_call *k, const char **auth, struct ai_err *err)
{
	size_t nh = 0;

	if (client_auth(k->c, auth, err))
		return -1;
	k->hdrs[nh++] = "Content-Type: application/json";
	if (k->stream)
		k->hdrs[nh++] = "Accept: text/event-stream";
	if (*auth)
		k->hdrs[nh++] = *auth;
	k->hdrs[nh] = NULL;
	return 0;
}

/*
 * A call ready to send: dry run, then cache, then the budget, then the
 * pool.  A dry run or a cache hit costs nothing, so neither is refused by
 * the budget.
 */
static int call_send(struct ai_call *k, struct buf *canon, struct ai_err *err)
{
	struct ai_client *c = k->c;
	struct cache *cache;
	const char *auth = NULL;

	k->t0_wall = wall_ms();
	/* A caller that starts calls between rare steps (ingest.c steps at
	 * its parallel limit only) still writes its rows by their deadline. */
	if (c->lq_n && mono_ms() - c->lq_t0 >= LEDGER_FLUSH_MS)
		ledger_flush(c);
	if (c->o.cfg->dry_run) {
		const char *shown[5];
		size_t i;

		if (call_headers(k, &auth, err))
			return -1;
		for (i = 0; k->hdrs[i]; i++)
			shown[i] = k->hdrs[i] == auth ? auth_shown(c) : k->hdrs[i];
		shown[i] = NULL;
		if (c->o.dry_run)
			c->o.dry_run("POST", k->url, shown, k->body, c->o.ud);
		if (k->kind == CALL_CHAT) {
			k->cresp->dry_run = true;
			k->cresp->content = strdup("");
		}
		push_ready(c, k, VIA_DRY_RUN);
		return 0;
	}
	cache = client_cache(c);
	if (cache && canon) {
		cache_key(canon->data, canon->len, k->key);
		k->use_cache = true;
		buf_init(&k->hit, 0);
		if (cache_get(cache, k->key, &k->hit) == 1) {
			/* -v says why nothing went out: without it a hit is silent. */
			if (c->o.cfg->verbose && c->o.debug) {
				char line[128];

				snprintf(line, sizeof(line), "cache hit, key %02x%02x%02x%02x%02x%02x..., age %llds",
					 k->key[0], k->key[1], k->key[2], k->key[3], k->key[4], k->key[5],
					 cache_age(cache, k->key));
				c->o.debug(line, c->o.ud);
			}
			push_ready(c, k, VIA_CACHE);
			return 0;
		}
		buf_release(&k->hit);
	}
	if (!isnan(c->o.cfg->budget_daily)) {
		struct ledger *l = client_ledger(c);

		if (!l)
			return ai_errf(err, AI_EX_CONFIG,
				       "a daily budget is set but the usage ledger cannot be read");
		/* The calls of this wake-up count against the budget too,
		 * from the queue: writing it first would end its batching. */
		if (ledger_check_budget_with(l, c->o.cfg->budget_daily, queued_cost_today(c), err))
			return -1;
	}
	if (call_headers(k, &auth, err) || !client_pool(c, err))
		return -1;
	k->hreq.url = k->url;
	k->hreq.body = k->body;
	k->hreq.body_len = k->body_len;
	k->hreq.headers = k->hdrs;
	k->hreq.stream = k->stream;
	if (k->stream) {
		k->hreq.on_data = stream_data;
		k->hreq.ud = k;
	}
	http_resp_init(&k->hresp);
	return http_pool_add(c->pool, &k->hreq, &k->hresp,
			     k->kind == CALL_CHAT ? chat_done : embed_done, k, err);
}

/*
 * The URL of path under the base URL.  The path goes before the base URL's
 * query, which must survive (a "?api-version=" written into it): appended
 * after it, it would be part of the query and the endpoint lost.
 *
 * Azure OpenAI (azure_api_version set) names a model's deployment in the
 * path and the API's version in the query: with deployment (the model of a
 * chat or embeddings call) the path is /deployments/NAME/PATH under the
 * base URL (https://RESOURCE.openai.azure.com/openai), and every URL gets
 * api-version=VERSION unless the base URL's query has one.
 */
static char *endpoint_for(struct ai_client *c, const char *path, const char *deployment)
{
	const char *base = c->o.cfg->base_url, *s = strstr(base, "://"), *ver = c->o.cfg->azure_api_version;
	const char *q;
	size_t n;
	struct buf b;
	bool ok;

	s = s ? s + 3 : base;
	n = (size_t)(s - base) + strcspn(s, "?#");
	while (n > (size_t)(s - base) && base[n - 1] == '/')
		n--;
	q = base + n + strspn(base + n, "/");
	buf_init(&b, 0);
	ok = !buf_add(&b, base, n);
	if (ver && deployment) {
		/* A deployment's name is the user's: anything past [A-Za-z0-9._-] is escaped. */
		ok = ok && !buf_addstr(&b, "/deployments/");
		for (const unsigned char *p = (const unsigned char *)deployment; ok && *p; p++)
			ok = isalnum(*p) || strchr("._-", *p) ? !buf_addch(&b, (char)*p) :
			     !buf_addf(&b, "%%%02X", *p);
	}
	ok = ok && !buf_addstr(&b, path) && !buf_addstr(&b, q);
	if (ok && ver && !strstr(q, "api-version="))
		ok = !buf_addf(&b, "%sapi-version=%s", *q == '?' ? "&" : "?", ver);
	if (!ok) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static char *endpoint(struct ai_client *c, const char *path)
{
	return endpoint_for(c, path, NULL);
}

/* The prompt text for --log-prompts: the last user message. */
static char *last_user_text(json_object *messages)
{
	size_t n = messages ? json_object_array_length(messages) : 0;

	while (n--) {
		json_object *m = json_object_array_get_idx(messages, n);
		const char *role = jv_str(m, "role"), *content = jv_str(m, "content");

		if (role && !strcmp(role, "user") && content)
			return strdup(content);
	}
	return NULL;
}

int ai_chat_start(struct ai_client *c, const struct ai_chat_req *q, struct ai_chat_resp *resp,
		  ai_chat_done_fn done, void *ud, struct ai_err *err)
{
	struct ai_call *k = calloc(1, sizeof(*k));
	const char *model = q->model ? q->model : ai_client_model(c);
	json_object *b = NULL;
	struct buf canon;
	int rc = -1;

	buf_init(&canon, 0);
	memset(resp, 0, sizeof(*resp));
	resp->prompt_tokens = resp->completion_tokens = -1;
	resp->cached_tokens = resp->reasoning_tokens = -1;
	resp->cost = NAN;
	resp->rl_remaining_requests = resp->rl_remaining_tokens = -1;
	resp->rl_reset_ms = resp->retry_after_ms = -1;
	if (!k)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	k->c = c;
	k->kind = CALL_CHAT;
	k->cresp = resp;
	k->cdone = done;
	k->ud = ud;
	k->on_delta = q->on_delta;
	k->on_reasoning = q->on_reasoning;
	k->delta_ud = q->ud;
	k->cached_tokens = k->reasoning_tokens = -1;
	k->cacheable = q->cacheable;
	k->cacheable_ud = q->cacheable_ud;
	k->stream = q->stream;
	http_resp_init(&k->hresp);
	if (!(k->model = strdup(model)) || !(k->url = endpoint_for(c, "/chat/completions", model)) ||
	    !(b = chat_body(c->o.cfg, q, model))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (c->o.cfg->log_prompts)
		k->prompt = last_user_text(q->messages);
	if (!isnan(isnan(q->temperature) ? c->o.cfg->temperature : q->temperature) &&
	    !temperature_allowed(model, q, c->o.cfg))
		ai_client_verbose(c, "a reasoning model refuses a temperature: it is not sent");
	/* The cache key leaves out how the answer is delivered: a stream and a plain call share it. */
	if (ai_cache_canonical(c->o.cfg->base_url, b, &canon)) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (k->stream) {
		/* The usage chunk, unless this server refused it once (resend_without_stream_options). */
		json_object *so = c->no_stream_options ? NULL : json_object_new_object();

		if (jv_add(b, "stream", json_object_new_boolean(1)) ||
		    (!c->no_stream_options &&
		     (!so || jv_add(so, "include_usage", json_object_new_boolean(1)) ||
		      jv_add(b, "stream_options", so)))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		k->stream_options = !c->no_stream_options;
		sse_init(&k->sse, MAX_STREAM_LINE, MAX_STREAM_EVENT);
		chatstream_init(&k->cs, MAX_CONTENT);
		k->cs.on_delta = stream_delta;
		k->cs.on_reasoning = stream_reasoning;
		k->cs.ud = k;
	}
	if (!(k->body = dup_json(b, &k->body_len))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	rc = call_send(k, &canon, err);
out:
	if (b)
		json_object_put(b);
	buf_release(&canon);
	if (rc)
		call_free(k);
	return rc;
}

struct sync { int rc; struct ai_err *err; };

static void sync_chat_done(int rc, struct ai_chat_resp *r, struct ai_err *e, void *ud)
{
	struct sync *s = ud;

	(void)r;
	s->rc = rc;
	if (rc && s->err)
		*s->err = *e;
}

int ai_chat(struct ai_client *c, const struct ai_chat_req *q, struct ai_chat_resp *resp,
	    struct ai_err *err)
{
	struct sync s = { 0, err };

	if (ai_chat_start(c, q, resp, sync_chat_done, &s, err) || ai_client_run(c, err))
		return -1;
	return s.rc;
}

/* ---- embeddings ---- */

static void embed_finish(struct ai_call *k, int rc, struct ai_err *e)
{
	k->edone(rc, k->eresp, e, k->ud);
	call_free(k);
}

/*
 * Ollama's /api/embed answers {"embeddings": [[...], ...],
 * "prompt_eval_count": N}: made OpenAI's {"data": [{"embedding": [...]}],
 * "usage": {"prompt_tokens": N}} in place, so that one parser checks both.
 */
static void ollama_embed_shape(json_object *j)
{
	json_object *embs, *data, *n;

	if (!j || !json_object_is_type(j, json_type_object) || json_object_object_get_ex(j, "data", NULL) ||
	    !json_object_object_get_ex(j, "embeddings", &embs) || !json_object_is_type(embs, json_type_array) ||
	    !(data = json_object_new_array()))
		return;
	for (size_t i = 0; i < json_object_array_length(embs); i++) {
		json_object *it = json_object_new_object();

		if (!it || json_object_array_add(data, it)) {
			json_object_put(it);
			break;
		}
		json_object_object_add(it, "embedding", json_object_get(json_object_array_get_idx(embs, i)));
	}
	json_object_object_add(j, "data", data);
	if (json_object_object_get_ex(j, "prompt_eval_count", &n) && !json_object_object_get_ex(j, "usage", NULL)) {
		json_object *u = json_object_new_object();

		if (u) {
			json_object_object_add(u, "prompt_tokens", json_object_get(n));
			json_object_object_add(j, "usage", u);
		}
	}
}

static int parse_embed(struct ai_call *k, const char *body, size_t len, struct ai_err *err)
{
	struct ai_embed_resp *r = k->eresp;
	json_object *j = json_tokener_parse(body), *data, *u;
	size_t n, dim = 0;
	unsigned char *seen = NULL;
	int rc = -1;

	(void)len;
	ollama_embed_shape(j);
	if (!j || !json_object_object_get_ex(j, "data", &data) ||
	    !json_object_is_type(data, json_type_array)) {
		ai_errf(err, AI_EX_UNAVAILABLE, "the embeddings answer from %s has no data array",
			k->c->host);
		goto out;
	}
	n = json_object_array_length(data);
	if (n != k->n_inputs) {
		ai_errf(err, AI_EX_UNAVAILABLE, "asked %s for %zu embeddings and got %zu", k->c->host,
			k->n_inputs, n);
		goto out;
	}
	if (!(seen = calloc(n ? n : 1, 1))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(data, i), *emb, *iv;
		long idx = (long)i;
		size_t d;

		/* "index", when given, is an integer naming one input, each once. */
		if (json_object_object_get_ex(it, "index", &iv) && iv) {
			if (!json_object_is_type(iv, json_type_int) || json_object_get_int64(iv) < 0 ||
			    (uint64_t)json_object_get_int64(iv) >= n ||
			    seen[json_object_get_int64(iv)]) {
				ai_errf(err, AI_EX_UNAVAILABLE,
					"embedding %zu from %s has an index that is not one of 0 to %zu, "
					"each once", i, k->c->host, n - 1);
				goto out;
			}
			idx = (long)json_object_get_int64(iv);
		} else if (seen[i]) {
			ai_errf(err, AI_EX_UNAVAILABLE, "embedding %zu from %s repeats an index", i,
				k->c->host);
			goto out;
		}
		seen[idx] = 1;
		if (!json_object_object_get_ex(it, "embedding", &emb) ||
		    !json_object_is_type(emb, json_type_array) || !(d = json_object_array_length(emb))) {
			ai_errf(err, AI_EX_UNAVAILABLE, "embedding %zu from %s is malformed", i, k->c->host);
			goto out;
		}
		if (!dim) {
			dim = d;
			if (!(r->v = calloc(n * dim, sizeof(float)))) {
				ai_errf(err, AI_EX_OSERR, "out of memory");
				goto out;
			}
		} else if (d != dim) {
			ai_errf(err, AI_EX_UNAVAILABLE,
				"embeddings from %s differ in dimension (%zu and %zu)", k->c->host, dim, d);
			goto out;
		}
		{
			float *v = r->v + (size_t)idx * dim;
			double norm = 0;

			for (size_t x = 0; x < d; x++) {
				json_object *fv = json_object_array_get_idx(emb, x);
				double f = json_object_get_double(fv);

				if (!json_object_is_type(fv, json_type_double) &&
				    !json_object_is_type(fv, json_type_int)) {
					ai_errf(err, AI_EX_UNAVAILABLE,
						"embedding %zu from %s holds something other than numbers", i,
						k->c->host);
					goto out;
				}
				/* Stored as float: a double past FLT_MAX would become infinity there. */
				if (!isfinite(f) || fabs(f) > FLT_MAX) {
					ai_errf(err, AI_EX_UNAVAILABLE,
						"embedding %zu from %s holds NaN, infinity or a number past float range",
						i, k->c->host);
					goto out;
				}
				v[x] = (float)f;
				norm += (double)v[x] * v[x];
			}
			norm = sqrt(norm);
			if (!(norm > 0)) {
				ai_errf(err, AI_EX_UNAVAILABLE, "embedding %zu from %s is all zeros", i, k->c->host);
				goto out;
			}
			for (size_t x = 0; x < d; x++)
				v[x] = (float)(v[x] / norm);
		}
	}
	r->n = n;
	r->dim = dim;
	r->prompt_tokens = -1;
	if (json_object_object_get_ex(j, "usage", &u))
		r->prompt_tokens = jv_count(u, "prompt_tokens");
	r->model = strdup(jv_str(j, "model") ? jv_str(j, "model") : k->model);
	rc = 0;
out:
	free(seen);
	if (rc) {
		free(r->v);
		r->v = NULL;
	}
	if (j)
		json_object_put(j);
	return rc;
}

static void embed_done(int rc, struct http_resp *h, struct ai_err *herr, void *ud)
{
	struct ai_call *k = ud;
	struct ai_embed_resp *r = k->eresp;
	struct ai_err e;

	ai_err_clear(&e);
	r->latency_ms = h->ms;
	if (rc) {
		account(k, -1, -1, h->status, false, NAN, h->ms);
		embed_finish(k, -1, herr);
		return;
	}
	if (h->status < 200 || h->status > 299) {
		r->too_large = http_error_verdict(h->status, h->body.data, h->body.len, NULL) ==
			       HTTP_ERR_TOO_LARGE;
		ai_http_error("embeddings", h->status, h->body.data, h->body.len, &e);
		v1_hint(k->c, &e);
		account(k, -1, -1, h->status, false, NAN, h->ms);
		embed_finish(k, -1, &e);
		return;
	}
	if (parse_embed(k, h->body.data, h->body.len, &e)) {
		account(k, -1, -1, h->status, false, NAN, h->ms);
		embed_finish(k, -1, &e);
		return;
	}
	r->cost = call_cost(k, r->prompt_tokens, 0);
	account(k, r->prompt_tokens, 0, h->status, false, r->cost, h->ms);
	if (k->use_cache)
		cache_put(&k->c->cache, k->key, h->body.data, h->body.len, &e);
	embed_finish(k, 0, NULL);
}

/* Whether embeddings go through Ollama's /api/embed (config.h, enum ai_embed_api). */
static bool embed_via_ollama(const struct ai_client *c)
{
	char host[256];
	const char *colon;

	if (c->o.cfg->embed_api != AI_EMBED_API_AUTO)
		return c->o.cfg->embed_api == AI_EMBED_API_OLLAMA;
	if (!url_host(c->o.cfg->base_url, host, sizeof(host)))
		return false;
	colon = strrchr(host, ':');
	return colon && strcmp(colon, ":11434") == 0;
}

/* Ollama's native endpoint beside its OpenAI one: the base URL less a final /v1, then /api/embed. */
static char *ollama_embed_url(const struct ai_client *c)
{
	const char *base = c->o.cfg->base_url, *s = strstr(base, "://");
	size_t n;
	struct buf b;

	s = s ? s + 3 : base;
	n = (size_t)(s - base) + strcspn(s, "?#");
	while (n > (size_t)(s - base) && base[n - 1] == '/')
		n--;
	if (n >= 3 + (size_t)(s - base) && strncmp(base + n - 3, "/v1", 3) == 0)
		n -= 3;
	buf_init(&b, 0);
	if (buf_add(&b, base, n) || buf_addstr(&b, "/api/embed")) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int ai_embed_start(struct ai_client *c, const char *const *texts, size_t n, const char *model,
		   struct ai_embed_resp *resp, ai_embed_done_fn done, void *ud, struct ai_err *err)
{
	bool ollama = embed_via_ollama(c);
	struct ai_call *k = calloc(1, sizeof(*k));
	json_object *b = json_object_new_object(), *in = json_object_new_array();
	struct buf canon;
	int rc = -1;

	buf_init(&canon, 0);
	memset(resp, 0, sizeof(*resp));
	resp->cost = NAN;
	if (!model)
		model = ai_client_embed_model(c);
	if (!k || !b || !in)
		goto oom;
	for (size_t i = 0; i < n; i++)
		if (json_object_array_add(in, json_object_new_string(texts[i])))
			goto oom;
	k->c = c;
	k->kind = CALL_EMBED;
	k->cached_tokens = k->reasoning_tokens = -1;
	k->eresp = resp;
	k->edone = done;
	k->ud = ud;
	k->n_inputs = n;
	http_resp_init(&k->hresp);
	if (jv_add(b, "model", json_object_new_string(model)) || jv_add(b, "input", in))
		goto oom;
	in = NULL;
	/* Told not to cut: an input past the context is then an error that
	 * ai-index answers by splitting the chunk (net/httperr.c), never a
	 * vector of its first part. */
	if (ollama && jv_add(b, "truncate", json_object_new_boolean(0)))
		goto oom;
	if (!(k->model = strdup(model)) ||
	    !(k->url = ollama ? ollama_embed_url(c) : endpoint_for(c, "/embeddings", model)) ||
	    ai_cache_canonical(c->o.cfg->base_url, b, &canon) || !(k->body = dup_json(b, &k->body_len)))
		goto oom;
	rc = call_send(k, &canon, err);
	goto out;
oom:
	ai_errf(err, AI_EX_OSERR, "out of memory");
out:
	json_object_put(in);
	json_object_put(b);
	buf_release(&canon);
	if (rc && k)
		call_free(k);
	return rc;
}

static void sync_embed_done(int rc, struct ai_embed_resp *r, struct ai_err *e, void *ud)
{
	struct sync *s = ud;

	(void)r;
	s->rc = rc;
	if (rc && s->err)
		*s->err = *e;
}

int ai_embed(struct ai_client *c, const char *const *texts, size_t n, const char *model,
	     struct ai_embed_resp *resp, struct ai_err *err)
{
	struct sync s = { 0, err };

	if (ai_embed_start(c, texts, n, model, resp, sync_embed_done, &s, err) ||
	    ai_client_run(c, err))
		return -1;
	return s.rc;
}

/* ---- the run loop ---- */

/* Embeddings answered from the cache: the stored answer, parsed as the server's. */
static void embed_hit(struct ai_call *k)
{
	struct ai_err e;

	ai_err_clear(&e);
	if (parse_embed(k, k->hit.data, k->hit.len, &e)) {
		embed_finish(k, -1, &e);
		return;
	}
	k->eresp->cached = true;
	account(k, k->eresp->prompt_tokens, 0, 200, true, call_cost(k, k->eresp->prompt_tokens, 0), 0);
	embed_finish(k, 0, NULL);
}

/* Completes the calls answered without the network, in the order they were started. */
static void deliver_ready(struct ai_client *c)
{
	while (c->ready) {
		struct ai_call *k = c->ready;

		c->ready = k->next;
		if (k->via == VIA_DRY_RUN && k->kind == CALL_CHAT)
			chat_finish(k, 0, NULL);
		else if (k->via == VIA_DRY_RUN)
			embed_finish(k, 0, NULL);
		else if (k->kind == CALL_CHAT)
			chat_hit(k);
		else
			embed_hit(k);
	}
}

int ai_client_step(struct ai_client *c, long timeout_ms, struct ai_err *err)
{
	int r = 0;

	/* Queued rows bound the wait: the step ends by their flush deadline,
	 * however long the caller would wait (ai_client_run waits 1000 s). */
	if (c->in_step == 0 && c->lq_n) {
		int64_t left = LEDGER_FLUSH_MS - (mono_ms() - c->lq_t0);

		if (left < 0)
			left = 0;
		if (timeout_ms < 0 || timeout_ms > left)
			timeout_ms = (long)left;
	}
	c->in_step++;
	deliver_ready(c);
	if (c->pool && http_pool_pending(c->pool)) {
		r = http_pool_step(c->pool, timeout_ms, err);
		deliver_ready(c);
	}
	/* The ledger rows of the wake-ups so far, in one transaction (see ledger_flush). */
	/* An interrupted program (SIGINT, SIGTERM, SIGHUP) is about to
	 * end, and a second signal kills it at once: write now. */
	if (--c->in_step == 0 && c->lq_n &&
	    (c->lq_n >= LEDGER_FLUSH_ROWS || !ai_client_pending(c) || mono_ms() - c->lq_t0 >= LEDGER_FLUSH_MS ||
	     (c->o.stop && *c->o.stop)))
		ledger_flush(c);
	return r < 0 ? -1 : ai_client_pending(c);
}

int ai_client_pending(const struct ai_client *c)
{
	return (c->pool ? http_pool_pending(c->pool) : 0) + (c->ready ? 1 : 0);
}

int ai_client_run(struct ai_client *c, struct ai_err *err)
{
	while (ai_client_pending(c))
		if (ai_client_step(c, 1000000, err) < 0)
			return -1;
	return 0;
}

void ai_client_pause(struct ai_client *c, long ms)
{
	struct ai_err e;

	ai_err_clear(&e);
	if (ms > 0 && client_pool(c, &e))
		http_pool_pause(c->pool, ms);
}

long ai_client_paused_ms(const struct ai_client *c)
{
	return c->pool ? http_pool_paused_ms(c->pool) : 0;
}

void ai_error_type(const char *body, size_t len, char *out, size_t n)
{
	json_object *j = len ? json_tokener_parse(body) : NULL, *e;
	const char *t = NULL;

	if (j && json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_object))
		t = jv_str(e, "type");
	snprintf(out, n, "%s", t ? t : "");
	if (j)
		json_object_put(j);
}

/* ai_api_request, and with to_fd ai_api_download: the 2xx body goes to fd, up to fd_max bytes. */
static int api_request(struct ai_client *c, const char *method, const char *path,
		       const char *const *headers, const char *body, size_t len, bool to_fd, int fd,
		       size_t fd_max, struct http_resp *resp, struct ai_err *err)
{
	const char *hdrs[16], *shown[16], *auth = NULL;
	struct http_req q;
	struct http_opts o = c->http;
	char *url;
	size_t nh = 0;
	int rc;

	if (client_auth(c, &auth, err))
		return -1;
	if (auth)
		hdrs[nh++] = auth;
	for (size_t i = 0; headers && headers[i] && nh < AI_ARRAY_LEN(hdrs) - 1; i++)
		hdrs[nh++] = headers[i];
	hdrs[nh] = NULL;
	if (!(url = endpoint(c, path)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (c->o.cfg->dry_run) {
		for (size_t i = 0; i <= nh; i++)
			shown[i] = hdrs[i] && hdrs[i] == auth ? auth_shown(c) : hdrs[i];
		if (c->o.dry_run)
			c->o.dry_run(method, url, shown, body, c->o.ud);
		free(url);
		return 1;
	}
	memset(&q, 0, sizeof(q));
	q.url = url;
	q.method = method;
	q.body = body;
	q.body_len = len;
	q.headers = hdrs;
	q.to_fd = to_fd;
	q.fd = fd;
	q.fd_max = fd_max;
	rc = http_do(&o, &q, resp, err);
	free(url);
	if (rc)
		return -1;
	if (resp->status < 200 || resp->status > 299) {
		char what[64];

		snprintf(what, sizeof(what), "%s %s", method, path);
		ai_http_error(what, resp->status, resp->body.data, resp->body.len, err);
		v1_hint(c, err);
		return -1;
	}
	return 0;
}

int ai_api_request(struct ai_client *c, const char *method, const char *path,
		   const char *const *headers, const char *body, size_t len,
		   struct http_resp *resp, struct ai_err *err)
{
	return api_request(c, method, path, headers, body, len, false, -1, 0, resp, err);
}

int ai_api_download(struct ai_client *c, const char *path, int fd, size_t max, struct ai_err *err)
{
	struct http_resp resp;
	int rc;

	http_resp_init(&resp);
	rc = api_request(c, "GET", path, NULL, NULL, 0, true, fd, max, &resp, err);
	http_resp_release(&resp);
	return rc;
}

double ai_account_batch_result(struct ai_client *c, const char *model, long prompt_tokens,
			       long completion_tokens, long status)
{
	struct ai_call k;
	double cost;

	memset(&k, 0, sizeof(k));
	k.c = c;
	k.model = (char *)(model ? model : ai_client_model(c));
	k.t0_wall = wall_ms();
	k.cached_tokens = k.reasoning_tokens = -1;
	c->batch_now = true;
	cost = call_cost(&k, prompt_tokens, completion_tokens);
	account(&k, prompt_tokens, completion_tokens, status, false, cost, 0);
	c->batch_now = false;
	return cost;
}

json_object *ai_chat_body(struct ai_client *c, const struct ai_chat_req *q)
{
	return chat_body(c->o.cfg, q, q->model ? q->model : ai_client_model(c));
}
