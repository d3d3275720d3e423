/*
 * ai-testserver - the OpenAI-compatible server the bats suites run against.
 *
 *   ai-testserver --port-file FILE [--log FILE] [--exit-with-parent]
 *                 [--tls-cert PEM --tls-key PEM]
 *
 * Binds 127.0.0.1 on an ephemeral port, writes the port number to FILE
 * (through FILE.tmp and rename(2), so a reader never sees half a number)
 * and serves until SIGTERM or SIGINT, then exits 0.  With --tls-cert and
 * --tls-key it speaks HTTPS with that certificate (the proxy and CA tests
 * make a private CA for it).
 *
 * Like curl's sws and git's lib-httpd, it does two things for a test:
 * it records every request (one JSON line per request in the log, written
 * before the answer leaves, so a test that got an answer can read the
 * line), and it can be scripted through POST /_control to be slow, fail
 * with any status, cut a connection or a stream short, or answer with
 * tool calls.  tests/bats/helpers.bash wraps all of this (ctl, requests).
 *
 * Log line: {"t": ms since the epoch (float), "method", "path" (no query),
 * "query": {the query's arguments, decoded}, "headers": {lowercased names},
 * "body": parsed JSON, else the raw body as a string, else null}.  /_control requests are not logged.
 *
 * Control API (POST /_control, a JSON object; refused with a 400 when a
 * key is unknown, so a misspelt script fails its test):
 *   {"set": {...}}   until reset: latency_ms, embed_dim, chunk_delay_ms,
 *                    reply (a string instead of the echo; null: echo again),
 *                    batch_delay_ms (a batch completes on the first GET this
 *                    long after its creation), batch_fail_every (N: every
 *                    Nth line of a batch goes to its error file with a 500),
 *                    json_from_prompt (true: instead of the echo, reply with
 *                    the first user message's text from its first '{' to its
 *                    last '}', or "no JSON here": a model that answers each
 *                    item of a batch with the JSON the item holds),
 *                    embed_max_tokens (N: an embeddings input over N tokens
 *                    gets llama-server's 500, see "real servers" below)
 *   {"push": [...]}  appends actions to a FIFO.  Each API request takes the
 *                    first action whose "path" equals its path (no "path":
 *                    any); "times": N (default 1) serves N requests.
 *   {"reset": true}  empties the queue and restores the settings.
 *   GET /_control    {"queued": N}
 * Action keys: status, body (JSON or a string sent as is), headers,
 * latency_ms (instead of the set one), close, malformed, reply,
 * tool_calls ([{id, name, arguments}], used when the request has tools),
 * usage, raw, drip_ms, replay (a recorded answer of a real server, see
 * "real servers" below), and for streams cut_after (K events, counting the
 * role chunk, then the connection is dropped), hold_ms (a pause after the
 * first content chunk), no_done, error_event.  An error status with no
 * body answers {"error":{"message":"scripted N","type":"test_error",
 * "code":N}}; a status below 400 with no body answers normally with it.
 *
 * Endpoints: POST /v1/chat/completions (plain and "stream": true),
 * POST /v1/embeddings, GET /v1/models; the Batch API: POST /v1/files
 * (multipart: purpose, file), GET /v1/files/ID/content, DELETE /v1/files/ID, POST /v1/batches,
 * GET /v1/batches/ID, POST /v1/batches/ID/cancel (kept in memory; answers
 * are made as /v1/chat/completions makes them, when the batch completes);
 * anything else is a 404.
 *
 * Embeddings are deterministic: every word (a run of ASCII letters and
 * digits, or bytes >= 0x80, ASCII lowercased) is hashed with 64-bit
 * FNV-1a followed by MurmurHash3's fmix64 finaliser to h; it adds sign(bit 31 of h) to bucket (h mod 2^32) mod dim
 * and sign(bit 63 of h) to bucket (h >> 32) mod dim (bit set: -1).  The
 * vector is then L2-normalised; a text without words is the unit vector
 * on bucket 0.  Texts sharing words therefore have a high cosine.  The
 * models test-embed-weak and test-embed-good get two other embeddings (see
 * their section).
 *
 * One thread per connection (libmicrohttpd), so a scripted delay on one
 * request never holds up another.  Every wait sleeps on a condition
 * variable that shutdown broadcasts, so SIGTERM is answered at once even
 * with slow requests in flight.
 *
 * Out of memory aborts: this is a test tool, and a clear crash is the
 * most useful thing it can do then.
 */
#include "ai.h"

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <microhttpd.h>

#define BODY_MAX (256u * 1024 * 1024)  /* larger request bodies get a 413 */
#define DEFAULT_DIM 64
#define MAX_DIM 8192
#define ECHO_BYTES 60
#define DRIP_BYTES 5                   /* bytes per piece under drip_ms */
#define ARG_PIECE 8                    /* tool-call argument bytes per delta */

/* ---- small utilities ---------------------------------------------------- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("ai-testserver: out of memory\n", stderr);
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("ai-testserver: out of memory\n", stderr);
		abort();
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* A growable byte string; p is NUL-terminated whenever it is non-NULL. */
struct sb {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sb *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Adds val to obj under key; json-c keeps val only on success. */
static void jadd(json_object *obj, const char *key, json_object *val)
{
	if (json_object_object_add(obj, key, val) != 0)
		json_object_put(val);
}

static void jappend(json_object *arr, json_object *val)
{
	if (json_object_array_add(arr, val) != 0)
		json_object_put(val);
}

/* Borrowed member of obj, or NULL when obj is not an object or lacks key. */
static json_object *jget(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (!obj || !json_object_is_type(obj, json_type_object))
		return NULL;
	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static const char *jstr(json_object *obj, const char *key)
{
	json_object *v = jget(obj, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool jbool(json_object *obj, const char *key)
{
	json_object *v = jget(obj, key);

	return v && json_object_get_boolean(v);
}

/* An integer member, or def when it is absent or not a number. */
static long jlong(json_object *obj, const char *key, long def)
{
	json_object *v = jget(obj, key);

	if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return def;
	return (long)json_object_get_int64(v);
}

/* Compact JSON text; borrowed, dies with obj. */
static const char *jtext(json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/*
 * Parses the whole of s[0..n) as one JSON value; returns owned, or NULL
 * when it is not exactly one JSON value (trailing whitespace allowed).
 */
static json_object *parse_json(const char *s, size_t n)
{
	json_tokener *tok;
	json_object *obj;
	size_t end;

	if (n == 0 || n > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, s, (int)n);
	end = json_tokener_get_parse_end(tok);
	if (obj && json_tokener_get_error(tok) == json_tokener_success) {
		while (end < n && strchr(" \t\r\n", s[end]))
			end++;
		if (end != n) {
			json_object_put(obj);
			obj = NULL;
		}
	} else if (obj) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* The largest cut <= n that does not split a UTF-8 sequence of s. */
static size_t utf8_cut(const char *s, size_t len, size_t n)
{
	if (n >= len)
		return len;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static size_t count_words(const char *s)
{
	size_t n = 0;
	bool in = false;

	for (; *s; s++) {
		bool sp = strchr(" \t\r\n\f\v", *s) != NULL;

		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- global state ------------------------------------------------------- */

/*
 * One action pushed through /_control: obj is the action as sent (owned),
 * path the path it is limited to (NULL: any), times the requests it still
 * serves.
 */
struct action {
	json_object *obj;
	char *path;
	long times;
	struct action *next;
};

struct settings {
	long latency_ms;
	long embed_dim;
	long chunk_delay_ms;
	char *reply;            /* owned; NULL: echo the last message */
	long batch_delay_ms;
	long batch_fail_every;
	bool json_from_prompt;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* all below */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;     /* shutdown */
static bool g_stopping;
static struct settings g_set = { 0, DEFAULT_DIM, 0, NULL, 0, 0, false };
static struct action *g_queue;
static unsigned long g_seq;

static pthread_mutex_t g_loglock = PTHREAD_MUTEX_INITIALIZER;
static int g_logfd = -1;

/* Sleeps ms milliseconds, or less when the server is stopping. */
static void sleep_ms(long ms)
{
	struct timespec until;

	if (ms <= 0)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g_lock);
	while (!g_stopping && pthread_cond_timedwait(&g_wake, &g_lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&g_lock);
}

static bool stopping(void)
{
	bool s;

	pthread_mutex_lock(&g_lock);
	s = g_stopping;
	pthread_mutex_unlock(&g_lock);
	return s;
}

static void queue_clear_locked(void)
{
	while (g_queue) {
		struct action *a = g_queue;

		g_queue = a->next;
		json_object_put(a->obj);
		free(a->path);
		free(a);
	}
}

static size_t queue_len_locked(void)
{
	size_t n = 0;

	for (struct action *a = g_queue; a; a = a->next)
		n++;
	return n;
}

/*
 * Takes the first queued action whose path matches (or that has none)
 * and returns an owned deep copy of it, or NULL when none matches.  The
 * copy lets the request use it after the lock is released.
 */
static json_object *queue_take(const char *path)
{
	json_object *copy = NULL;
	struct action **pp;

	pthread_mutex_lock(&g_lock);
	for (pp = &g_queue; *pp; pp = &(*pp)->next) {
		struct action *a = *pp;

		if (a->path && strcmp(a->path, path) != 0)
			continue;
		if (json_object_deep_copy(a->obj, &copy, NULL) != 0)
			copy = NULL;
		if (--a->times <= 0) {
			*pp = a->next;
			json_object_put(a->obj);
			free(a->path);
			free(a);
		}
		break;
	}
	pthread_mutex_unlock(&g_lock);
	return copy;
}

/* ---- the request log ---------------------------------------------------- */

struct req {
	struct sb body;
	bool too_big;
};

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	json_object *headers = cls, *old;
	char name[256];
	size_t i;

	(void)kind;
	for (i = 0; key[i] && i + 1 < sizeof(name); i++)
		name[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
	name[i] = '\0';
	value = value ? value : "";
	old = jget(headers, name);
	if (old) {
		/* A repeated header is joined the HTTP way, with ", ". */
		struct sb b = { 0 };

		sb_str(&b, json_object_get_string(old));
		sb_str(&b, ", ");
		sb_str(&b, value);
		jadd(headers, name, json_object_new_string_len(b.p, (int)b.len));
		free(b.p);
	} else {
		jadd(headers, name, json_object_new_string(value));
	}
	return MHD_YES;
}

/* The query's arguments as they came (a name without a value gets ""). */
static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	(void)kind;
	jadd(cls, name, json_object_new_string(value ? value : ""));
	return MHD_YES;
}

/*
 * Appends one line describing the request to the log with one write(2)
 * on the O_APPEND descriptor.  body is the parsed body (borrowed) or NULL.
 */
static void log_request(struct MHD_Connection *conn, const char *method, const char *path,
	const struct req *r, json_object *body)
{
	json_object *line, *headers;
	char t[64];
	struct sb out = { 0 };
	size_t off = 0;

	if (g_logfd < 0)
		return;
	line = json_object_new_object();
	snprintf(t, sizeof(t), "%.3f", now_ms());
	jadd(line, "t", json_object_new_double_s(strtod(t, NULL), t));
	jadd(line, "method", json_object_new_string(method));
	jadd(line, "path", json_object_new_string(path));
	headers = json_object_new_object();
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_cb, headers);
	jadd(line, "query", headers);
	headers = json_object_new_object();
	MHD_get_connection_values(conn, MHD_HEADER_KIND, header_cb, headers);
	jadd(line, "headers", headers);
	if (body)
		jadd(line, "body", json_object_get(body));
	else if (r->body.len)
		jadd(line, "body", json_object_new_string_len(r->body.p, (int)r->body.len));
	else
		jadd(line, "body", NULL);
	sb_str(&out, jtext(line));
	sb_add(&out, "\n", 1);
	json_object_put(line);

	pthread_mutex_lock(&g_loglock);
	while (off < out.len) {
		ssize_t n = write(g_logfd, out.p + off, out.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("ai-testserver: log");
			break;
		}
		off += (size_t)n;
	}
	pthread_mutex_unlock(&g_loglock);
	free(out.p);
}

/* ---- responses ---------------------------------------------------------- */

/* One piece of a response body, sent after waiting delay_ms. */
struct piece {
	char *data;
	size_t len;
	long delay_ms;
};

/*
 * A response body sent piece by piece from the content-reader callback,
 * which is how streams flush each chunk and how drip_ms and cut_after
 * work.  end_error ends the body with MHD_CONTENT_READER_END_WITH_ERROR,
 * which closes the connection with no terminating chunk.
 */
struct body {
	struct piece *v;
	size_t n, cap;
	size_t i, off;
	bool waited;
	bool end_error;
	size_t total;
};

static void body_add(struct body *b, const char *data, size_t len, long delay_ms)
{
	if (len == 0)
		return;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	b->v[b->n].data = memcpy(xmalloc(len), data, len);
	b->v[b->n].len = len;
	b->v[b->n].delay_ms = delay_ms;
	b->n++;
	b->total += len;
}

/*
 * Adds data as one piece, or under drip_ms as pieces of DRIP_BYTES each
 * drip_ms apart; delay_ms is waited before the first.
 */
static void body_add_drip(struct body *b, const char *data, size_t len, long delay_ms, long drip_ms)
{
	size_t off = 0;

	if (drip_ms <= 0) {
		body_add(b, data, len, delay_ms);
		return;
	}
	while (off < len) {
		size_t n = len - off < DRIP_BYTES ? len - off : DRIP_BYTES;

		body_add(b, data + off, n, (b->n ? drip_ms : 0) + delay_ms);
		delay_ms = 0;
		off += n;
	}
}

static void body_free(void *cls)
{
	struct body *b = cls;

	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].data);
	free(b->v);
	free(b);
}

static ssize_t body_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct body *b = cls;
	struct piece *p;
	size_t n;

	(void)pos;
	if (b->i >= b->n)
		return b->end_error ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
	p = &b->v[b->i];
	if (b->off == 0 && !b->waited) {
		b->waited = true;
		sleep_ms(p->delay_ms);
		if (stopping())
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = p->len - b->off < max ? p->len - b->off : max;
	memcpy(out, p->data + b->off, n);
	b->off += n;
	if (b->off == p->len) {
		b->i++;
		b->off = 0;
		b->waited = false;
	}
	return (ssize_t)n;
}

/* What a handler decided to answer; send_reply() turns it into MHD calls. */
struct reply {
	unsigned status;
	const char *ctype;
	struct sb text;         /* the body, when not streamed */
	struct body *stream;    /* owned until queued; sent chunked when set */
	json_object *headers;   /* borrowed from the action: extra headers */
	long drip_ms;
};

static bool has_header(json_object *headers, const char *name)
{
	if (!headers || !json_object_is_type(headers, json_type_object))
		return false;
	json_object_object_foreach(headers, k, v) {
		(void)v;
		if (strcasecmp(k, name) == 0)
			return true;
	}
	return false;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *rp)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (rp->stream) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, body_read, rp->stream, body_free);
	} else if (rp->drip_ms > 0) {
		struct body *b = xmalloc(sizeof(*b));

		memset(b, 0, sizeof(*b));
		body_add_drip(b, rp->text.p ? rp->text.p : "", rp->text.len, 0, rp->drip_ms);
		resp = MHD_create_response_from_callback(b->total, 4096, body_read, b, body_free);
		if (!resp)
			body_free(b);
	} else {
		resp = MHD_create_response_from_buffer(rp->text.len, rp->text.p ? rp->text.p : (char *)"",
			MHD_RESPMEM_MUST_COPY);
	}
	if (!resp) {
		if (rp->stream)
			body_free(rp->stream);
		rp->stream = NULL;
		return MHD_NO;
	}
	rp->stream = NULL;
	if (!has_header(rp->headers, "content-type"))
		MHD_add_response_header(resp, "Content-Type", rp->ctype);
	if (rp->headers && json_object_is_type(rp->headers, json_type_object)) {
		json_object_object_foreach(rp->headers, k, v)
			MHD_add_response_header(resp, k, json_object_get_string(v));
	}
	ret = MHD_queue_response(conn, rp->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void reply_json(struct reply *rp, unsigned status, json_object *obj)
{
	rp->status = status;
	rp->ctype = "application/json";
	rp->text.len = 0;
	sb_str(&rp->text, jtext(obj));
	json_object_put(obj);
}

static json_object *error_obj(const char *msg, const char *type, json_object *code)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	jadd(e, "message", json_object_new_string(msg));
	jadd(e, "type", json_object_new_string(type));
	jadd(e, "code", code);
	jadd(o, "error", e);
	return o;
}

static void reply_error(struct reply *rp, unsigned status, const char *msg)
{
	reply_json(rp, status, error_obj(msg, "invalid_request_error", NULL));
}

/* ---- real servers: recorded answers, llama.cpp's embeddings limit -------- */

/*
 * Action key "replay": "STEM" answers with a response recorded from a real
 * server (tests/fixtures/compat/, from ../shared/compat-samples/): STEM.hdr
 * holds the status line and the headers as the server sent them, STEM.body
 * the body byte for byte.  The status and every header are sent as
 * recorded, in their order, but for the framing, which libmicrohttpd writes
 * itself from the same bytes: Content-Length (it counts the same body),
 * Transfer-Encoding (a recorded "chunked" answer is sent chunked) and
 * Connection; it adds a Date, and an empty value becomes one space.
 * drip_ms and latency_ms apply as to any answer.  A file that cannot be
 * read is a 599 (its name on stderr), so that a misspelt fixture fails its
 * test instead of passing as an error test.
 *
 * Setting "embed_max_tokens": N (0: none) makes /v1/embeddings answer as
 * a default llama-server does when an input does not fit its physical
 * batch: a 500 with its exact body, for any input of more than N tokens
 * (the server's count: bytes / 4 + 1, as its usage reports them).
 */

static long g_embed_max_tokens;   /* under g_lock */

/* The recorded 500 of llama-server (build of early 2025) for an input over -ub tokens. */
static const char llama_too_large[] =
	"{\"error\":{\"code\":500,\"message\":\"input is too large to process. "
	"increase the physical batch size\",\"type\":\"server_error\"}}";

static bool slurp(const char *path, struct sb *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char tmp[8192];
	ssize_t n;

	if (fd < 0)
		return false;
	while ((n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return false;
		}
		sb_add(out, tmp, (size_t)n);
	}
	close(fd);
	if (!out->p)
		sb_add(out, "", 0);
	return true;
}

/* Sends the recorded answer STEM.hdr + STEM.body. */
static enum MHD_Result replay_send(struct MHD_Connection *conn, const char *stem, long drip_ms)
{
	struct sb path = { 0 }, hdr = { 0 }, body = { 0 };
	struct MHD_Response *resp;
	struct body *b;
	enum MHD_Result ret;
	unsigned status = 0;
	bool chunked = false, ok;
	char *line, *next;

	sb_str(&path, stem);
	sb_str(&path, ".hdr");
	ok = slurp(path.p, &hdr);
	path.len = 0;
	sb_str(&path, stem);
	sb_str(&path, ".body");
	ok = ok && slurp(path.p, &body);
	if (ok && (sscanf(hdr.p, "HTTP/%*s %3u", &status) != 1 || status < 100 || status > 999))
		ok = false;
	if (!ok) {
		struct reply rp;

		fprintf(stderr, "ai-testserver: replay: cannot read '%s.hdr' and '%s.body'\n", stem, stem);
		memset(&rp, 0, sizeof(rp));
		reply_json(&rp, 599, error_obj("replay: cannot read the recorded answer", "test_error", NULL));
		ret = send_reply(conn, &rp);
		free(rp.text.p);
		free(path.p);
		free(hdr.p);
		free(body.p);
		return ret;
	}
	/* Every line NUL-terminated in place, its CR dropped: the status line, then "Name: value". */
	for (line = hdr.p; line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (!strncasecmp(line, "transfer-encoding:", 18) && strstr(line + 18, "chunked"))
			chunked = true;
	}
	b = xmalloc(sizeof(*b));
	memset(b, 0, sizeof(*b));
	body_add_drip(b, body.p, body.len, 0, drip_ms);
	resp = MHD_create_response_from_callback(chunked ? MHD_SIZE_UNKNOWN : b->total, 4096, body_read,
		b, body_free);
	if (!resp) {
		body_free(b);
		ret = MHD_NO;
		goto out;
	}
	for (line = hdr.p + strlen(hdr.p) + 1; line < hdr.p + hdr.len; line += strlen(line) + 1) {
		char *colon = strchr(line, ':'), *v;

		if (!*line || !colon)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (!strcasecmp(line, "content-length") || !strcasecmp(line, "transfer-encoding") ||
		    !strcasecmp(line, "connection"))
			continue;
		/* libmicrohttpd refuses an empty value (llama.cpp's Access-Control-Allow-Origin): one space. */
		if (MHD_add_response_header(resp, line, *v ? v : " ") != MHD_YES)
			fprintf(stderr, "ai-testserver: replay: header '%s' refused\n", line);
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
out:
	free(path.p);
	free(hdr.p);
	free(body.p);
	return ret;
}

/* Whether an input of /v1/embeddings is over embed_max_tokens: the llama.cpp 500 then. */
static bool embed_too_large(json_object *input, size_t n, struct reply *rp)
{
	long max;

	pthread_mutex_lock(&g_lock);
	max = g_embed_max_tokens;
	pthread_mutex_unlock(&g_lock);
	if (max <= 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_is_type(input, json_type_string) ? input
			: json_object_array_get_idx(input, i);

		if ((long)(strlen(json_object_get_string(it)) / 4 + 1) > max) {
			rp->status = 500;
			rp->ctype = "application/json; charset=utf-8";
			rp->text.len = 0;
			sb_str(&rp->text, llama_too_large);
			return true;
		}
	}
	return false;
}

/* ---- /v1/chat/completions ------------------------------------------------ */

/* What one chat request is answered with, gathered from request, settings and action. */
struct chat {
	json_object *req;       /* borrowed */
	json_object *act;       /* borrowed; may be NULL */
	char id[64];
	const char *model;
	long created;
	char *content;          /* owned */
	json_object *calls;     /* owned array of OpenAI tool calls, or NULL */
	long prompt_tokens;
	long completion_tokens;
};

static json_object *usage_obj(const struct chat *c)
{
	json_object *u = jget(c->act, "usage"), *o = NULL;

	if (u && json_object_deep_copy(u, &o, NULL) == 0)
		return o;
	o = json_object_new_object();
	jadd(o, "prompt_tokens", json_object_new_int64(c->prompt_tokens));
	jadd(o, "completion_tokens", json_object_new_int64(c->completion_tokens));
	jadd(o, "total_tokens", json_object_new_int64(c->prompt_tokens + c->completion_tokens));
	return o;
}

/*
 * The scripted tool calls in OpenAI form: each {id, type, function:
 * {name, arguments}}.  Accepts {id, name, arguments} (arguments a string
 * or any JSON value, which is serialised) or the OpenAI form itself.
 */
static json_object *make_calls(json_object *script)
{
	json_object *out = json_object_new_array();
	size_t n = json_object_array_length(script);

	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(script, i);
		json_object *fn = jget(s, "function") ? jget(s, "function") : s;
		json_object *args = jget(fn, "arguments");
		json_object *call = json_object_new_object(), *f = json_object_new_object();
		const char *id = jstr(s, "id");
		char idbuf[32];

		if (!id) {
			snprintf(idbuf, sizeof(idbuf), "call_%zu", i + 1);
			id = idbuf;
		}
		jadd(call, "id", json_object_new_string(id));
		jadd(call, "type", json_object_new_string("function"));
		jadd(f, "name", json_object_new_string(jstr(fn, "name") ? jstr(fn, "name") : "tool"));
		if (!args)
			jadd(f, "arguments", json_object_new_string("{}"));
		else if (json_object_is_type(args, json_type_string))
			jadd(f, "arguments", json_object_new_string(json_object_get_string(args)));
		else
			jadd(f, "arguments", json_object_new_string(jtext(args)));
		jadd(call, "function", f);
		jappend(out, call);
	}
	return out;
}

/*
 * Fills c from the request; returns NULL or the message of a 400.
 * default_reply is the "reply" setting (NULL: echo).
 */
static const char *chat_prepare(struct chat *c, const char *default_reply)
{
	json_object *msgs = jget(c->req, "messages"), *tools = jget(c->req, "tools");
	json_object *script = jget(c->act, "tool_calls");
	const char *reply = jstr(c->act, "reply"), *last = "", *first_user = NULL;
	size_t n, bytes = 0;
	unsigned long seq;
	bool from_prompt;

	if (!c->req || !json_object_is_type(c->req, json_type_object))
		return "the request body must be a JSON object";
	if (!msgs || !json_object_is_type(msgs, json_type_array))
		return "'messages' is required and must be an array";
	n = json_object_array_length(msgs);
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(msgs, i), *content = jget(m, "content");

		if (content && json_object_is_type(content, json_type_string)) {
			bytes += (size_t)json_object_get_string_len(content);
			if (i + 1 == n)
				last = json_object_get_string(content);
			if (!first_user && jstr(m, "role") && !strcmp(jstr(m, "role"), "user"))
				first_user = json_object_get_string(content);
		} else if (content && json_object_is_type(content, json_type_array)) {
			for (size_t j = 0; j < json_object_array_length(content); j++) {
				const char *t = jstr(json_object_array_get_idx(content, j), "text");

				bytes += t ? strlen(t) : 0;
			}
		}
	}
	c->model = jstr(c->req, "model") ? jstr(c->req, "model") : "test-model";
	c->created = (long)time(NULL);
	pthread_mutex_lock(&g_lock);
	seq = ++g_seq;
	from_prompt = g_set.json_from_prompt;
	pthread_mutex_unlock(&g_lock);
	snprintf(c->id, sizeof(c->id), "chatcmpl-test-%lu", seq);
	c->prompt_tokens = (long)(bytes / 4 + 1);

	if (tools && json_object_is_type(tools, json_type_array) && json_object_array_length(tools) > 0 &&
		script && json_object_is_type(script, json_type_array) && json_object_array_length(script) > 0) {
		size_t argbytes = 0;

		c->calls = make_calls(script);
		for (size_t i = 0; i < json_object_array_length(c->calls); i++)
			argbytes += strlen(jstr(jget(json_object_array_get_idx(c->calls, i), "function"),
				"arguments"));
		c->completion_tokens = (long)(argbytes / 4 + 1);
		return NULL;
	}
	if (reply) {
		c->content = xstrdup(reply);
	} else if (default_reply) {
		c->content = xstrdup(default_reply);
	} else if (from_prompt) {
		const char *a = first_user ? strchr(first_user, '{') : NULL;
		const char *z = first_user ? strrchr(first_user, '}') : NULL;
		struct sb b = { 0 };

		if (a && z && z > a)
			sb_add(&b, a, (size_t)(z - a + 1));
		else
			sb_str(&b, "no JSON here");
		c->content = b.p;
	} else {
		struct sb b = { 0 };

		sb_str(&b, "echo: ");
		sb_add(&b, last, utf8_cut(last, strlen(last), ECHO_BYTES));
		c->content = b.p;
	}
	c->completion_tokens = (long)count_words(c->content);
	return NULL;
}

static void chat_whole(struct chat *c, struct reply *rp)
{
	json_object *o = json_object_new_object(), *choices = json_object_new_array();
	json_object *ch = json_object_new_object(), *msg = json_object_new_object();

	jadd(o, "id", json_object_new_string(c->id));
	jadd(o, "object", json_object_new_string("chat.completion"));
	jadd(o, "created", json_object_new_int64(c->created));
	jadd(o, "model", json_object_new_string(c->model));
	jadd(msg, "role", json_object_new_string("assistant"));
	if (c->calls) {
		jadd(msg, "content", NULL);
		jadd(msg, "tool_calls", json_object_get(c->calls));
	} else {
		jadd(msg, "content", json_object_new_string(c->content));
	}
	jadd(ch, "index", json_object_new_int(0));
	jadd(ch, "message", msg);
	jadd(ch, "finish_reason", json_object_new_string(c->calls ? "tool_calls" : "stop"));
	jappend(choices, ch);
	jadd(o, "choices", choices);
	jadd(o, "usage", usage_obj(c));
	reply_json(rp, 200, o);
}

/* Stream events, each "data: ...\n\n", before the delays are decided. */
struct events {
	struct sb *v;
	size_t n, cap;
};

static void ev_add(struct events *e, const char *data)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	memset(&e->v[e->n], 0, sizeof(e->v[e->n]));
	sb_str(&e->v[e->n], "data: ");
	sb_str(&e->v[e->n], data);
	sb_str(&e->v[e->n], "\n\n");
	e->n++;
}

/* Adds a chunk with the given delta (consumed) and finish_reason (NULL: null). */
static void ev_chunk(struct events *e, const struct chat *c, json_object *delta, const char *finish)
{
	json_object *o = json_object_new_object(), *choices = json_object_new_array();

	jadd(o, "id", json_object_new_string(c->id));
	jadd(o, "object", json_object_new_string("chat.completion.chunk"));
	jadd(o, "created", json_object_new_int64(c->created));
	jadd(o, "model", json_object_new_string(c->model));
	if (delta) {
		json_object *ch = json_object_new_object();

		jadd(ch, "index", json_object_new_int(0));
		jadd(ch, "delta", delta);
		jadd(ch, "finish_reason", finish ? json_object_new_string(finish) : NULL);
		jappend(choices, ch);
	}
	jadd(o, "choices", choices);
	if (!delta)
		jadd(o, "usage", usage_obj(c));
	ev_add(e, jtext(o));
	json_object_put(o);
}

static json_object *delta_content(const char *s, size_t n)
{
	json_object *d = json_object_new_object();

	jadd(d, "content", json_object_new_string_len(s, (int)n));
	return d;
}

/* One tool-call delta: the first for a call carries id, type and name. */
static json_object *delta_call(size_t index, json_object *call, const char *args, size_t n, bool first)
{
	json_object *d = json_object_new_object(), *arr = json_object_new_array();
	json_object *tc = json_object_new_object(), *f = json_object_new_object();

	jadd(tc, "index", json_object_new_int((int)index));
	if (first) {
		jadd(tc, "id", json_object_new_string(jstr(call, "id")));
		jadd(tc, "type", json_object_new_string("function"));
		jadd(f, "name", json_object_new_string(jstr(jget(call, "function"), "name")));
	}
	jadd(f, "arguments", json_object_new_string_len(args, (int)n));
	jadd(tc, "function", f);
	jappend(arr, tc);
	jadd(d, "tool_calls", arr);
	return d;
}

static void chat_stream(struct chat *c, struct reply *rp, long chunk_delay_ms)
{
	struct events e = { 0 };
	json_object *role = json_object_new_object(), *so = jget(c->req, "stream_options");
	json_object *errev = jget(c->act, "error_event");
	long cut = jlong(c->act, "cut_after", -1), hold = jlong(c->act, "hold_ms", 0);
	long drip = jlong(c->act, "drip_ms", 0);
	size_t limit;
	struct body *b;

	jadd(role, "role", json_object_new_string("assistant"));
	jadd(role, "content", c->calls ? NULL : json_object_new_string(""));
	ev_chunk(&e, c, role, NULL);
	if (c->calls) {
		for (size_t i = 0; i < json_object_array_length(c->calls); i++) {
			json_object *call = json_object_array_get_idx(c->calls, i);
			const char *args = jstr(jget(call, "function"), "arguments");
			size_t len = strlen(args), off = 0;

			ev_chunk(&e, c, delta_call(i, call, "", 0, true), NULL);
			while (off < len) {
				size_t cut8 = utf8_cut(args, len, off + ARG_PIECE);

				if (cut8 <= off)
					cut8 = off + ARG_PIECE < len ? off + ARG_PIECE : len;
				ev_chunk(&e, c, delta_call(i, call, args + off, cut8 - off, false), NULL);
				off = cut8;
			}
		}
	} else {
		/* Each piece is a word and the whitespace after it; leading space joins the first. */
		const char *s = c->content;

		while (*s) {
			const char *p = s;

			while (*p && strchr(" \t\r\n\f\v", *p))
				p++;
			while (*p && !strchr(" \t\r\n\f\v", *p))
				p++;
			while (*p && strchr(" \t\r\n\f\v", *p))
				p++;
			ev_chunk(&e, c, delta_content(s, (size_t)(p - s)), NULL);
			s = p;
		}
	}
	if (errev) {
		/* The error event replaces everything after the first content chunk. */
		json_object *o = json_object_new_object(), *copy = NULL;
		size_t keep = e.n > 2 ? 2 : e.n;

		for (size_t i = keep; i < e.n; i++)
			free(e.v[i].p);
		e.n = keep;
		if (json_object_deep_copy(errev, &copy, NULL) != 0)
			copy = json_object_new_object();
		jadd(o, "error", copy);
		ev_add(&e, jtext(o));
		json_object_put(o);
	} else {
		ev_chunk(&e, c, json_object_new_object(), c->calls ? "tool_calls" : "stop");
		if (jbool(so, "include_usage"))
			ev_chunk(&e, c, NULL, NULL);
		if (!jbool(c->act, "no_done"))
			ev_add(&e, "[DONE]");
	}

	b = xmalloc(sizeof(*b));
	memset(b, 0, sizeof(*b));
	limit = cut >= 0 && (size_t)cut < e.n ? (size_t)cut : e.n;
	for (size_t i = 0; i < e.n; i++) {
		long delay = i ? chunk_delay_ms : 0;

		if (i == 2)
			delay += hold;
		if (i < limit)
			body_add_drip(b, e.v[i].p, e.v[i].len, delay, drip);
		free(e.v[i].p);
	}
	free(e.v);
	b->end_error = cut >= 0;
	rp->status = 200;
	rp->ctype = "text/event-stream";
	rp->stream = b;
}

static void handle_chat(json_object *req, json_object *act, struct reply *rp)
{
	struct chat c;
	const char *err;
	char *def;
	long chunk_delay;

	memset(&c, 0, sizeof(c));
	c.req = req;
	c.act = act;
	pthread_mutex_lock(&g_lock);
	def = g_set.reply ? xstrdup(g_set.reply) : NULL;
	chunk_delay = g_set.chunk_delay_ms;
	pthread_mutex_unlock(&g_lock);
	err = chat_prepare(&c, def);
	if (err)
		reply_error(rp, 400, err);
	else if (jbool(req, "stream"))
		chat_stream(&c, rp, chunk_delay);
	else
		chat_whole(&c, rp);
	free(def);
	free(c.content);
	json_object_put(c.calls);
}

/* ---- /v1/embeddings ----------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	/* MurmurHash3's finaliser, so the low bits that pick buckets depend on every byte. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static bool word_byte(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
}

/* Newton's method, so the server needs no libm (the Makefile links none). */
static double square_root(double x)
{
	double r = x > 1.0 ? x : 1.0;

	for (int i = 0; i < 200; i++) {
		double next = 0.5 * (r + x / r);

		if (next >= r)
			break;
		r = next;
	}
	return r;
}

/*
 * The next word of *sp, ASCII lowercased into word (its first cap bytes; the
 * rest is skipped), *sp moved past it; returns its length, 0 at the end.
 */
static size_t next_word(const unsigned char **sp, char *word, size_t cap)
{
	const unsigned char *s = *sp;
	size_t n = 0;

	while (*s && !word_byte(*s))
		s++;
	for (; *s && word_byte(*s); s++)
		if (n < cap)
			word[n++] = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
	*sp = s;
	return n;
}

/* Fills v[0..dim) with the embedding of text (see the top of the file). */
static void embed(const char *text, float *v, size_t dim)
{
	char word[256];
	double norm = 0.0;
	const unsigned char *s = (const unsigned char *)text;
	size_t n;

	memset(v, 0, dim * sizeof(*v));
	while ((n = next_word(&s, word, sizeof(word)))) {
		uint64_t h = fnv1a(word, n);

		v[(uint32_t)h % dim] += (h >> 31) & 1 ? -1.0f : 1.0f;
		v[(uint32_t)(h >> 32) % dim] += (h >> 63) & 1 ? -1.0f : 1.0f;
	}
	for (size_t i = 0; i < dim; i++)
		norm += (double)v[i] * v[i];
	if (norm == 0.0) {
		v[0] = 1.0f;
		return;
	}
	norm = square_root(norm);
	for (size_t i = 0; i < dim; i++)
		v[i] = (float)(v[i] / norm);
}

static void base64(struct sb *out, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		char q[4];

		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		sb_add(out, q, 4);
	}
}

/* ---- embedding variants: a weak and a good model ------------------------
 *
 * For the retrieval-quality tests (tests/bats/ask.bats, tests/fixtures/
 * rag-dev), two more deterministic embeddings, chosen by the request's
 * model; any other model gets embed() above.
 *
 *   test-embed-weak  embed()'s word hashing folded into 8 buckets (spread
 *                    over the dimensions asked for): most words collide,
 *                    so similarity carries little beyond text length, as
 *                    a poor or mismatched model gives.
 *   test-embed-good  1,024 dimensions unless the request names dimensions;
 *                    stop words dropped, a crude English stemmer (plural,
 *                    -ed, -ing, -ly, -tion), log-scaled counts, each stem
 *                    hashed into two signed buckets and each of its
 *                    character trigrams into one at half the weight, so
 *                    "compressed" and "compression" land near each other;
 *                    a direction shared by every text is added, so that
 *                    cosines are 0.64 + 0.36 times the texts' own, and pass
 *                    ai-ask's similarity floor as a real model's do.
 */
#define WEAK_BUCKETS 8
#define GOOD_DIM 1024

static long variant_dim(const char *model, long dim)
{
	return model && strcmp(model, "test-embed-good") == 0 ? GOOD_DIM : dim;
}

static bool variant_stop(const char *w, size_t n)
{
	static const char *const stop[] = {
		"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
		"how", "i", "if", "in", "into", "is", "it", "its", "not", "of", "on", "or", "that",
		"the", "then", "this", "to", "was", "what", "when", "which", "with", "you",
	};

	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (strlen(stop[i]) == n && strncmp(stop[i], w, n) == 0)
			return true;
	return false;
}

/* Strips one common suffix, keeping a stem of at least 3 bytes. */
static size_t variant_stem(const char *w, size_t n)
{
	static const char *const suf[] = { "ations", "ation", "tions", "tion", "ings", "ing", "edly",
					   "ed", "ly", "es", "s" };

	for (size_t i = 0; i < sizeof(suf) / sizeof(suf[0]); i++) {
		size_t l = strlen(suf[i]);

		if (n >= l + 3 && memcmp(w + n - l, suf[i], l) == 0)
			return n - l;
	}
	return n;
}

/* Adds weight w to the signed bucket h picks. */
static void variant_add(float *v, size_t dim, uint64_t h, float w)
{
	v[(uint32_t)h % dim] += (h >> 63) & 1 ? -w : w;
}

static void variant_good(const char *text, float *v, size_t dim)
{
	const unsigned char *s = (const unsigned char *)text;
	char word[256];
	size_t n;

	while ((n = next_word(&s, word, sizeof(word)))) {
		if (n < 2 || variant_stop(word, n))
			continue;
		n = variant_stem(word, n);
		{
			uint64_t h = fnv1a(word, n);

			variant_add(v, dim, h, 1.0f);
			variant_add(v, dim, h >> 32 | h << 32, 1.0f);
		}
		for (size_t i = 0; i + 3 <= n; i++)
			variant_add(v, dim, fnv1a(word + i, 3) ^ 0x9e3779b97f4a7c15ULL, 0.5f);
	}
	/* Log-scaled counts: a word said ten times is not ten times the topic. */
	for (size_t i = 0; i < dim; i++) {
		float a = v[i] < 0 ? -v[i] : v[i];
		double l = 0.0, x = 1.0 + a;

		/* ln(x) by halving to [1, 2) and the series of atanh; no libm here. */
		while (x >= 2.0) {
			x /= 2.0;
			l += 0.69314718055994531;
		}
		{
			double y = (x - 1.0) / (x + 1.0), y2 = y * y, t = y, sum = 0.0;

			for (int k = 1; k < 40; k += 2, t *= y2)
				sum += t / k;
			l += 2.0 * sum;
		}
		v[i] = (float)(v[i] < 0 ? -l : l);
	}
}

/*
 * Fills v[0..dim) for the variant model names, L2-normalised; false (v
 * untouched) for any other model.
 */
static bool embed_variant(const char *model, const char *text, float *v, size_t dim)
{
	double norm = 0.0;

	if (!model)
		return false;
	if (strcmp(model, "test-embed-weak") == 0) {
		float b[WEAK_BUCKETS];

		embed(text, b, WEAK_BUCKETS);
		memset(v, 0, dim * sizeof(*v));
		for (size_t i = 0; i < dim; i++)
			v[i] = b[i % WEAK_BUCKETS];
	} else if (strcmp(model, "test-embed-good") == 0) {
		memset(v, 0, dim * sizeof(*v));
		variant_good(text, v, dim);
		for (size_t i = 0; i < dim; i++)
			norm += (double)v[i] * v[i];
		/* 0.6 of the text's direction and 0.8 of one shared by every text: cosines of
		 * 0.64 + 0.36 c, as real models give unrelated texts well above 0. */
		norm = norm > 0.0 ? square_root(norm) : 1.0;
		for (size_t i = 0; i < dim; i++)
			v[i] = (float)(0.6 * v[i] / norm + 0.8 / square_root((double)dim));
		norm = 0.0;
	} else {
		return false;
	}
	for (size_t i = 0; i < dim; i++)
		norm += (double)v[i] * v[i];
	if (norm == 0.0) {
		v[0] = 1.0f;
		return true;
	}
	norm = square_root(norm);
	for (size_t i = 0; i < dim; i++)
		v[i] = (float)(v[i] / norm);
	return true;
}

static void handle_embeddings(json_object *req, struct reply *rp)
{
	json_object *input = jget(req, "input"), *o, *data;
	const char *fmt = jstr(req, "encoding_format");
	long dim;
	size_t n, bytes = 0;
	bool b64 = fmt && strcmp(fmt, "base64") == 0;
	float *v;

	if (!req || !json_object_is_type(req, json_type_object))
		{ reply_error(rp, 400, "the request body must be a JSON object"); return; }
	if (!input || !(json_object_is_type(input, json_type_string) || json_object_is_type(input, json_type_array)))
		{ reply_error(rp, 400, "'input' must be a string or an array of strings"); return; }
	if (fmt && !b64 && strcmp(fmt, "float") != 0)
		{ reply_error(rp, 400, "'encoding_format' must be \"float\" or \"base64\""); return; }
	n = json_object_is_type(input, json_type_string) ? 1 : json_object_array_length(input);
	if (n == 0)
		{ reply_error(rp, 400, "'input' must not be empty"); return; }
	for (size_t i = 0; json_object_is_type(input, json_type_array) && i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(input, i), json_type_string))
			{ reply_error(rp, 400, "'input' must be a string or an array of strings"); return; }
	if (embed_too_large(input, n, rp))
		return;
	pthread_mutex_lock(&g_lock);
	dim = g_set.embed_dim;
	pthread_mutex_unlock(&g_lock);
	dim = jlong(req, "dimensions", variant_dim(jstr(req, "model"), dim));
	if (dim < 1 || dim > MAX_DIM)
		{ reply_error(rp, 400, "'dimensions' must be between 1 and 8192"); return; }

	v = xmalloc((size_t)dim * sizeof(*v));
	o = json_object_new_object();
	data = json_object_new_array();
	jadd(o, "object", json_object_new_string("list"));
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_is_type(input, json_type_string) ? input : json_object_array_get_idx(input, i);
		json_object *e = json_object_new_object();
		const char *text = json_object_get_string(it);

		bytes += strlen(text);
		if (!embed_variant(jstr(req, "model"), text, v, (size_t)dim))
			embed(text, v, (size_t)dim);
		jadd(e, "object", json_object_new_string("embedding"));
		jadd(e, "index", json_object_new_int((int)i));
		if (b64) {
			struct sb s = { 0 };
			unsigned char *raw = xmalloc((size_t)dim * 4);

			for (long k = 0; k < dim; k++) {
				uint32_t u;

				memcpy(&u, &v[k], 4);
				for (int j = 0; j < 4; j++)
					raw[k * 4 + j] = (unsigned char)(u >> (8 * j));
			}
			base64(&s, raw, (size_t)dim * 4);
			jadd(e, "embedding", json_object_new_string(s.p));
			free(s.p);
			free(raw);
		} else {
			json_object *arr = json_object_new_array_ext((int)dim);

			for (long k = 0; k < dim; k++) {
				char num[32];

				snprintf(num, sizeof(num), "%.8g", (double)v[k]);
				jappend(arr, json_object_new_double_s((double)v[k], num));
			}
			jadd(e, "embedding", arr);
		}
		jappend(data, e);
	}
	free(v);
	jadd(o, "data", data);
	jadd(o, "model", json_object_new_string(jstr(req, "model") ? jstr(req, "model") : "test-model"));
	{
		json_object *u = json_object_new_object();

		jadd(u, "prompt_tokens", json_object_new_int64((int64_t)(bytes / 4 + 1)));
		jadd(u, "total_tokens", json_object_new_int64((int64_t)(bytes / 4 + 1)));
		jadd(o, "usage", u);
	}
	reply_json(rp, 200, o);
}

/* ---- /v1/files and /v1/batches ------------------------------------------ */

struct stored_file {
	char id[48];
	char *purpose;
	struct sb content;
	struct stored_file *next;
};

struct stored_batch {
	char id[48];
	char input_file_id[48];
	char output_file_id[48];
	char error_file_id[48];
	char status[24];
	double created_ms;
	long total, completed, failed;
	struct stored_batch *next;
};

static struct stored_file *g_files;      /* under g_lock */
static struct stored_batch *g_batches;   /* under g_lock */
static unsigned long g_objseq;

static struct stored_file *file_find_locked(const char *id)
{
	for (struct stored_file *f = g_files; f; f = f->next)
		if (strcmp(f->id, id) == 0)
			return f;
	return NULL;
}

static struct stored_batch *batch_find_locked(const char *id)
{
	for (struct stored_batch *b = g_batches; b; b = b->next)
		if (strcmp(b->id, id) == 0)
			return b;
	return NULL;
}

static struct stored_file *file_add_locked(const char *purpose, const char *data, size_t len)
{
	struct stored_file *f = xmalloc(sizeof(*f));

	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "file-test-%lu", ++g_objseq);
	f->purpose = xstrdup(purpose);
	sb_add(&f->content, data, len);
	f->next = g_files;
	g_files = f;
	return f;
}

static json_object *file_obj(const struct stored_file *f)
{
	json_object *o = json_object_new_object();

	jadd(o, "id", json_object_new_string(f->id));
	jadd(o, "object", json_object_new_string("file"));
	jadd(o, "bytes", json_object_new_int64((int64_t)f->content.len));
	jadd(o, "purpose", json_object_new_string(f->purpose));
	jadd(o, "filename", json_object_new_string("requests.jsonl"));
	return o;
}

static json_object *batch_obj(const struct stored_batch *b)
{
	json_object *o = json_object_new_object(), *c = json_object_new_object();

	jadd(o, "id", json_object_new_string(b->id));
	jadd(o, "object", json_object_new_string("batch"));
	jadd(o, "endpoint", json_object_new_string("/v1/chat/completions"));
	jadd(o, "input_file_id", json_object_new_string(b->input_file_id));
	jadd(o, "completion_window", json_object_new_string("24h"));
	jadd(o, "status", json_object_new_string(b->status));
	jadd(o, "output_file_id", b->output_file_id[0] ? json_object_new_string(b->output_file_id) : NULL);
	jadd(o, "error_file_id", b->error_file_id[0] ? json_object_new_string(b->error_file_id) : NULL);
	jadd(o, "created_at", json_object_new_int64((int64_t)(b->created_ms / 1000)));
	jadd(c, "total", json_object_new_int64(b->total));
	jadd(c, "completed", json_object_new_int64(b->completed));
	jadd(c, "failed", json_object_new_int64(b->failed));
	jadd(o, "request_counts", c);
	return o;
}

/*
 * Runs every line of the batch's input (a copy, owned) as /v1/chat/completions
 * would, into its files.  Called without g_lock, which chat_prepare takes; the
 * batch is "finalizing" meanwhile, so no other request completes it too.
 */
static void batch_complete(struct stored_batch *b, char *input, long fail_every, char *def)
{
	struct sb out = { 0 }, errs = { 0 };
	const char *p = input ? input : "";
	long n = 0, completed = 0, failed = 0;
	unsigned long seq;

	pthread_mutex_lock(&g_lock);
	seq = ++g_objseq;
	pthread_mutex_unlock(&g_lock);

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		json_object *line = parse_json(p, len), *res = json_object_new_object();
		json_object *resp = json_object_new_object();
		char rid[48];
		struct sb *to = &out;

		p += len + (nl ? 1 : 0);
		if (!line) {
			json_object_put(res);
			json_object_put(resp);
			continue;
		}
		n++;
		snprintf(rid, sizeof(rid), "batch_req_%lu_%ld", seq, n);
		jadd(res, "id", json_object_new_string(rid));
		jadd(res, "custom_id", json_object_new_string(jstr(line, "custom_id") ? jstr(line, "custom_id") : ""));
		if (fail_every > 0 && n % fail_every == 0) {
			jadd(resp, "status_code", json_object_new_int(500));
			jadd(resp, "request_id", json_object_new_string(rid));
			jadd(resp, "body", error_obj("scripted batch failure", "server_error", NULL));
			to = &errs;
			failed++;
		} else {
			struct chat c;
			struct reply rp;
			const char *e;

			memset(&c, 0, sizeof(c));
			memset(&rp, 0, sizeof(rp));
			c.req = jget(line, "body");
			e = chat_prepare(&c, def);
			if (e) {
				jadd(resp, "status_code", json_object_new_int(400));
				jadd(resp, "body", error_obj(e, "invalid_request_error", NULL));
				to = &errs;
				failed++;
			} else {
				chat_whole(&c, &rp);
				jadd(resp, "status_code", json_object_new_int(200));
				jadd(resp, "request_id", json_object_new_string(rid));
				jadd(resp, "body", parse_json(rp.text.p, rp.text.len));
				completed++;
			}
			free(rp.text.p);
			free(c.content);
			json_object_put(c.calls);
		}
		jadd(res, "response", resp);
		jadd(res, "error", NULL);
		sb_str(to, jtext(res));
		sb_add(to, "\n", 1);
		json_object_put(res);
		json_object_put(line);
	}
	pthread_mutex_lock(&g_lock);
	if (out.len)
		snprintf(b->output_file_id, sizeof(b->output_file_id), "%s",
			file_add_locked("batch_output", out.p, out.len)->id);
	if (errs.len)
		snprintf(b->error_file_id, sizeof(b->error_file_id), "%s",
			file_add_locked("batch_output", errs.p, errs.len)->id);
	b->completed = completed;
	b->failed = failed;
	snprintf(b->status, sizeof(b->status), "completed");
	pthread_mutex_unlock(&g_lock);
	free(out.p);
	free(errs.p);
	free(input);
	free(def);
}

static void store_clear_locked(void)
{
	while (g_files) {
		struct stored_file *f = g_files;

		g_files = f->next;
		free(f->purpose);
		free(f->content.p);
		free(f);
	}
	while (g_batches) {
		struct stored_batch *b = g_batches;

		g_batches = b->next;
		free(b);
	}
}

/* The value of the part named name in a multipart/form-data body, or NULL. */
static const char *multipart_part(const char *body, size_t len, const char *boundary, const char *name,
	size_t *plen)
{
	char delim[256], want[160];
	size_t dl;
	const char *p = body, *end = body + len;

	snprintf(delim, sizeof(delim), "--%s", boundary);
	snprintf(want, sizeof(want), "name=\"%s\"", name);
	dl = strlen(delim);
	for (;;) {
		const char *hdr_end, *next;

		while (p + dl <= end && memcmp(p, delim, dl) != 0)
			p++;
		if (p + dl > end)
			return NULL;
		p += dl;
		if (p + 2 <= end && p[0] == '-' && p[1] == '-')
			return NULL;
		for (hdr_end = p; hdr_end + 4 <= end && memcmp(hdr_end, "\r\n\r\n", 4) != 0; hdr_end++)
			;
		if (hdr_end + 4 > end)
			return NULL;
		for (next = hdr_end + 4; next + 2 + dl <= end &&
			!(next[0] == '\r' && next[1] == '\n' && memcmp(next + 2, delim, dl) == 0); next++)
			;
		if (next + 2 + dl > end)
			return NULL;
		{
			bool match = false;

			for (const char *h = p; h + strlen(want) <= hdr_end; h++)
				if (memcmp(h, want, strlen(want)) == 0)
					match = true;
			if (match) {
				*plen = (size_t)(next - (hdr_end + 4));
				return hdr_end + 4;
			}
		}
		p = next + 2;
	}
}

static void handle_batch_api(struct MHD_Connection *conn, const char *method, const char *path,
	json_object *req, const struct req *r, struct reply *rp)
{
	bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
	char id[64];
	json_object *o = NULL;

	if (strcmp(path, "/v1/files") == 0 && post) {
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		const char *bd = ct ? strstr(ct, "boundary=") : NULL, *file, *purpose;
		char boundary[200];
		size_t flen = 0, plen = 0;

		if (!ct || strncmp(ct, "multipart/form-data", 19) != 0 || !bd)
			{ reply_error(rp, 400, "upload the file as multipart/form-data"); return; }
		snprintf(boundary, sizeof(boundary), "%s", bd + 9);
		file = multipart_part(r->body.p ? r->body.p : "", r->body.len, boundary, "file", &flen);
		purpose = multipart_part(r->body.p ? r->body.p : "", r->body.len, boundary, "purpose", &plen);
		if (!file || !purpose)
			{ reply_error(rp, 400, "the upload needs the parts 'file' and 'purpose'"); return; }
		if (plen != 5 || memcmp(purpose, "batch", 5) != 0)
			{ reply_error(rp, 400, "'purpose' must be 'batch'"); return; }
		pthread_mutex_lock(&g_lock);
		o = file_obj(file_add_locked("batch", file, flen));
		pthread_mutex_unlock(&g_lock);
		reply_json(rp, 200, o);
		return;
	}
	if (get && sscanf(path, "/v1/files/%63[^/]/content", id) == 1) {
		struct stored_file *f;

		pthread_mutex_lock(&g_lock);
		f = file_find_locked(id);
		if (f) {
			rp->status = 200;
			rp->ctype = "application/jsonl";
			sb_add(&rp->text, f->content.p ? f->content.p : "", f->content.len);
		}
		pthread_mutex_unlock(&g_lock);
		if (!f)
			reply_json(rp, 404, error_obj("no such file", "invalid_request_error", json_object_new_string("not_found")));
		return;
	}
	if (strcmp(method, "DELETE") == 0 && sscanf(path, "/v1/files/%63[^/]", id) == 1 &&
	    !strchr(path + 10, '/')) {
		struct stored_file **pf, *f = NULL;

		pthread_mutex_lock(&g_lock);
		for (pf = &g_files; *pf; pf = &(*pf)->next)
			if (strcmp((*pf)->id, id) == 0) {
				f = *pf;
				*pf = f->next;
				break;
			}
		pthread_mutex_unlock(&g_lock);
		if (!f) {
			reply_json(rp, 404, error_obj("no such file", "invalid_request_error", json_object_new_string("not_found")));
			return;
		}
		free(f->purpose);
		free(f->content.p);
		free(f);
		o = json_object_new_object();
		jadd(o, "id", json_object_new_string(id));
		jadd(o, "object", json_object_new_string("file"));
		jadd(o, "deleted", json_object_new_boolean(1));
		reply_json(rp, 200, o);
		return;
	}
	if (strcmp(path, "/v1/batches") == 0 && post) {
		const char *fid = jstr(req, "input_file_id");
		struct stored_batch *b;

		if (!fid || !jstr(req, "endpoint") || !jstr(req, "completion_window"))
			{ reply_error(rp, 400, "'input_file_id', 'endpoint' and 'completion_window' are required"); return; }
		pthread_mutex_lock(&g_lock);
		if (!file_find_locked(fid)) {
			pthread_mutex_unlock(&g_lock);
			reply_json(rp, 404, error_obj("no such file", "invalid_request_error", json_object_new_string("not_found")));
			return;
		}
		b = xmalloc(sizeof(*b));
		memset(b, 0, sizeof(*b));
		snprintf(b->id, sizeof(b->id), "batch_test_%lu", ++g_objseq);
		snprintf(b->input_file_id, sizeof(b->input_file_id), "%s", fid);
		snprintf(b->status, sizeof(b->status), "in_progress");
		b->created_ms = now_ms();
		for (const char *p = file_find_locked(fid)->content.p; p && *p; p++)
			if (*p == '\n')
				b->total++;
		b->next = g_batches;
		g_batches = b;
		o = batch_obj(b);
		pthread_mutex_unlock(&g_lock);
		reply_json(rp, 200, o);
		return;
	}
	if ((get && sscanf(path, "/v1/batches/%63[^/]", id) == 1 && !strchr(path + 12, '/')) ||
		(post && sscanf(path, "/v1/batches/%63[^/]/cancel", id) == 1)) {
		struct stored_batch *b;

		pthread_mutex_lock(&g_lock);
		b = batch_find_locked(id);
		if (b && post && strcmp(b->status, "in_progress") == 0)
			snprintf(b->status, sizeof(b->status), "cancelled");
		if (b && get && strcmp(b->status, "in_progress") == 0 &&
			now_ms() >= b->created_ms + (double)g_set.batch_delay_ms) {
			struct stored_file *in = file_find_locked(b->input_file_id);
			char *input = in && in->content.p ? xstrdup(in->content.p) : NULL;
			char *def = g_set.reply ? xstrdup(g_set.reply) : NULL;
			long every = g_set.batch_fail_every;

			snprintf(b->status, sizeof(b->status), "finalizing");
			pthread_mutex_unlock(&g_lock);
			batch_complete(b, input, every, def);
			pthread_mutex_lock(&g_lock);
		}
		o = b ? batch_obj(b) : NULL;
		pthread_mutex_unlock(&g_lock);
		if (o)
			reply_json(rp, 200, o);
		else
			reply_json(rp, 404, error_obj("no such batch", "invalid_request_error", json_object_new_string("not_found")));
		return;
	}
	{
		char msg[300];

		snprintf(msg, sizeof(msg), "unknown path '%.200s' for %s", path, method);
		reply_json(rp, 404, error_obj(msg, "invalid_request_error", json_object_new_string("not_found")));
	}
}

/* ---- /_control ---------------------------------------------------------- */

static const char *const action_keys[] = {
	"path", "times", "status", "body", "headers", "latency_ms", "close", "malformed", "reply",
	"tool_calls", "cut_after", "hold_ms", "no_done", "error_event", "raw", "drip_ms", "usage",
	"replay",
};

static bool is_int(json_object *v)
{
	return v && json_object_is_type(v, json_type_int);
}

/*
 * Checks one pushed action; returns NULL or why it is refused.  An
 * unknown key is refused, so that a misspelt script fails the test
 * instead of being silently ignored.
 */
static const char *action_check(json_object *a, char *why, size_t whylen)
{
	static const char *const ints[] = { "times", "status", "latency_ms", "cut_after", "hold_ms", "drip_ms" };

	if (!json_object_is_type(a, json_type_object))
		return "each action must be an object";
	json_object_object_foreach(a, k, v) {
		size_t i;

		for (i = 0; i < AI_ARRAY_LEN(action_keys); i++)
			if (strcmp(k, action_keys[i]) == 0)
				break;
		if (i == AI_ARRAY_LEN(action_keys)) {
			snprintf(why, whylen, "unknown action key '%s'", k);
			return why;
		}
		for (i = 0; i < AI_ARRAY_LEN(ints); i++)
			if (strcmp(k, ints[i]) == 0 && (!is_int(v) || json_object_get_int64(v) < 0)) {
				snprintf(why, whylen, "'%s' must be a non-negative integer", k);
				return why;
			}
	}
	if (jget(a, "times") && jlong(a, "times", 1) < 1)
		return "'times' must be at least 1";
	if (jget(a, "status") && (jlong(a, "status", 0) < 100 || jlong(a, "status", 0) > 999))
		return "'status' must be between 100 and 999";
	if (jget(a, "path") && !jstr(a, "path"))
		return "'path' must be a string";
	if (jget(a, "headers") && !json_object_is_type(jget(a, "headers"), json_type_object))
		return "'headers' must be an object";
	if (jget(a, "tool_calls") && !json_object_is_type(jget(a, "tool_calls"), json_type_array))
		return "'tool_calls' must be an array";
	if (jget(a, "reply") && !jstr(a, "reply"))
		return "'reply' must be a string";
	if (jget(a, "raw") && !jstr(a, "raw"))
		return "'raw' must be a string";
	if (jget(a, "replay") && !jstr(a, "replay"))
		return "'replay' must be a string: the recorded answer's path without .hdr or .body";
	return NULL;
}

/*
 * {"set": {...}}: latency_ms, embed_dim, chunk_delay_ms, reply (null
 * restores the echo).  Checked whole before anything is changed.
 */
static const char *control_set(json_object *set, char *why, size_t whylen)
{
	if (!json_object_is_type(set, json_type_object))
		return "'set' must be an object";
	json_object_object_foreach(set, k, v) {
		if (strcmp(k, "reply") == 0) {
			if (v && !json_object_is_type(v, json_type_string))
				return "'reply' must be a string or null";
		} else if (strcmp(k, "latency_ms") == 0 || strcmp(k, "chunk_delay_ms") == 0 ||
			strcmp(k, "batch_delay_ms") == 0 || strcmp(k, "batch_fail_every") == 0) {
			if (!is_int(v) || json_object_get_int64(v) < 0) {
				snprintf(why, whylen, "'%s' must be a non-negative integer", k);
				return why;
			}
		} else if (strcmp(k, "json_from_prompt") == 0) {
			if (!json_object_is_type(v, json_type_boolean))
				return "'json_from_prompt' must be true or false";
		} else if (strcmp(k, "embed_dim") == 0) {
			if (!is_int(v) || json_object_get_int64(v) < 1 || json_object_get_int64(v) > MAX_DIM)
				return "'embed_dim' must be between 1 and 8192";
		} else if (strcmp(k, "embed_max_tokens") == 0) {
			if (!is_int(v) || json_object_get_int64(v) < 0)
				return "'embed_max_tokens' must be a non-negative integer";
		} else {
			snprintf(why, whylen, "unknown setting '%s'", k);
			return why;
		}
	}
	pthread_mutex_lock(&g_lock);
	json_object_object_foreach(set, k2, v2) {
		if (strcmp(k2, "reply") == 0) {
			free(g_set.reply);
			g_set.reply = v2 ? xstrdup(json_object_get_string(v2)) : NULL;
		} else if (strcmp(k2, "latency_ms") == 0) {
			g_set.latency_ms = (long)json_object_get_int64(v2);
		} else if (strcmp(k2, "chunk_delay_ms") == 0) {
			g_set.chunk_delay_ms = (long)json_object_get_int64(v2);
		} else if (strcmp(k2, "batch_delay_ms") == 0) {
			g_set.batch_delay_ms = (long)json_object_get_int64(v2);
		} else if (strcmp(k2, "batch_fail_every") == 0) {
			g_set.batch_fail_every = (long)json_object_get_int64(v2);
		} else if (strcmp(k2, "json_from_prompt") == 0) {
			g_set.json_from_prompt = json_object_get_boolean(v2);
		} else if (strcmp(k2, "embed_max_tokens") == 0) {
			g_embed_max_tokens = (long)json_object_get_int64(v2);
		} else {
			g_set.embed_dim = (long)json_object_get_int64(v2);
		}
	}
	pthread_mutex_unlock(&g_lock);
	return NULL;
}

static void handle_control(const char *method, const struct req *r, struct reply *rp)
{
	json_object *req, *push, *set, *o;
	char why[200];
	const char *err = NULL;
	size_t queued;

	if (strcmp(method, "GET") == 0) {
		pthread_mutex_lock(&g_lock);
		queued = queue_len_locked();
		pthread_mutex_unlock(&g_lock);
		o = json_object_new_object();
		jadd(o, "queued", json_object_new_int64((int64_t)queued));
		{ reply_json(rp, 200, o); return; }
	}
	if (strcmp(method, "POST") != 0)
		{ reply_error(rp, 405, "use GET or POST on /_control"); return; }
	req = parse_json(r->body.p, r->body.len);
	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		{ reply_error(rp, 400, "the control body must be a JSON object"); return; }
	}
	push = jget(req, "push");
	set = jget(req, "set");
	json_object_object_foreach(req, k, v) {
		(void)v;
		if (strcmp(k, "push") && strcmp(k, "set") && strcmp(k, "reset")) {
			snprintf(why, sizeof(why), "unknown control key '%s'; use set, push or reset", k);
			err = why;
		}
	}
	if (!err && push && !json_object_is_type(push, json_type_array))
		err = "'push' must be an array of actions";
	for (size_t i = 0; !err && push && i < json_object_array_length(push); i++)
		err = action_check(json_object_array_get_idx(push, i), why, sizeof(why));
	if (!err && jbool(req, "reset")) {
		pthread_mutex_lock(&g_lock);
		queue_clear_locked();
		free(g_set.reply);
		g_set = (struct settings){ 0, DEFAULT_DIM, 0, NULL, 0, 0, false };
		g_embed_max_tokens = 0;
		pthread_mutex_unlock(&g_lock);
	}
	if (!err && set)
		err = control_set(set, why, sizeof(why));
	if (err) {
		json_object_put(req);
		{ reply_error(rp, 400, err); return; }
	}
	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; push && i < json_object_array_length(push); i++) {
		json_object *a = json_object_array_get_idx(push, i);
		struct action *na = xmalloc(sizeof(*na)), **tail = &g_queue;

		na->obj = json_object_get(a);
		na->path = jstr(a, "path") ? xstrdup(jstr(a, "path")) : NULL;
		na->times = jlong(a, "times", 1);
		na->next = NULL;
		while (*tail)
			tail = &(*tail)->next;
		*tail = na;
	}
	queued = queue_len_locked();
	pthread_mutex_unlock(&g_lock);
	json_object_put(req);
	o = json_object_new_object();
	jadd(o, "ok", json_object_new_boolean(1));
	jadd(o, "queued", json_object_new_int64((int64_t)queued));
	reply_json(rp, 200, o);
}

/* ---- Ollama's /api/embed ------------------------------------------------- */

/*
 * Ollama's native embeddings, as Ollama 0.5+ answers them: {"model", "embeddings":
 * [[...]], "prompt_eval_count"}.  An input over embed_max_tokens is cut to it,
 * silently, unless the request says "truncate": false: then the 400 Ollama gives.
 */
static void handle_ollama_embed(json_object *req, struct reply *rp)
{
	json_object *input = jget(req, "input"), *tr = jget(req, "truncate"), *o, *embs;
	bool cut = !tr || json_object_get_boolean(tr);
	long dim, max;
	size_t n;
	int64_t tokens = 0;
	float *v;

	if (!req || !json_object_is_type(req, json_type_object))
		{ reply_error(rp, 400, "the request body must be a JSON object"); return; }
	if (!input || !(json_object_is_type(input, json_type_string) || json_object_is_type(input, json_type_array)))
		{ reply_error(rp, 400, "'input' must be a string or an array of strings"); return; }
	n = json_object_is_type(input, json_type_string) ? 1 : json_object_array_length(input);
	pthread_mutex_lock(&g_lock);
	dim = g_set.embed_dim;
	max = g_embed_max_tokens;
	pthread_mutex_unlock(&g_lock);
	v = xmalloc((size_t)dim * sizeof(*v));
	o = json_object_new_object();
	embs = json_object_new_array();
	jadd(o, "model", json_object_new_string(jstr(req, "model") ? jstr(req, "model") : "m"));
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_is_type(input, json_type_string) ? input : json_object_array_get_idx(input, i);
		json_object *arr;
		const char *text = json_object_get_string(it);
		size_t len = strlen(text);
		char *t;

		if (max > 0 && (long)(len / 4 + 1) > max) {
			if (!cut) {
				free(v);
				json_object_put(embs);
				json_object_put(o);
				rp->status = 400;
				rp->ctype = "application/json; charset=utf-8";
				rp->text.len = 0;
				sb_str(&rp->text, "{\"error\":\"the input length exceeds the context length\"}");
				return;
			}
			len = (size_t)(max - 1) * 4;
		}
		t = xmalloc(len + 1);
		memcpy(t, text, len);
		t[len] = '\0';
		tokens += (int64_t)(len / 4 + 1);
		embed(t, v, (size_t)dim);
		free(t);
		arr = json_object_new_array_ext((int)dim);
		for (long k = 0; k < dim; k++)
			jappend(arr, json_object_new_double((double)v[k]));
		jappend(embs, arr);
	}
	free(v);
	jadd(o, "embeddings", embs);
	jadd(o, "total_duration", json_object_new_int64(1000000));
	jadd(o, "prompt_eval_count", json_object_new_int64(tokens));
	reply_json(rp, 200, o);
}

/* ---- dispatch ----------------------------------------------------------- */

static void handle_api(const char *method, const char *path, json_object *req, const struct req *r,
	json_object *act, struct reply *rp)
{
	bool post = strcmp(method, "POST") == 0;

	if (strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/v1/embeddings") == 0) {
		if (!post)
			{ reply_error(rp, 405, "use POST"); return; }
		if (!req) {
			reply_error(rp, 400, r->body.len ? "the request body is not valid JSON"
				: "the request body is empty; send a JSON object");
			return;
		}
		if (path[4] == 'c')
			{ handle_chat(req, act, rp); return; }
		{ handle_embeddings(req, rp); return; }
	}
	if (strcmp(path, "/api/embed") == 0) {
		if (!post)
			{ reply_error(rp, 405, "use POST"); return; }
		handle_ollama_embed(req, rp);
		return;
	}
	if (strcmp(path, "/v1/models") == 0) {
		json_object *o = json_object_new_object(), *data = json_object_new_array();
		json_object *m = json_object_new_object();

		if (strcmp(method, "GET") != 0) {
			json_object_put(o);
			json_object_put(data);
			json_object_put(m);
			{ reply_error(rp, 405, "use GET"); return; }
		}
		jadd(m, "id", json_object_new_string("test-model"));
		jadd(m, "object", json_object_new_string("model"));
		jadd(m, "owned_by", json_object_new_string("ai-testserver"));
		jappend(data, m);
		jadd(o, "object", json_object_new_string("list"));
		jadd(o, "data", data);
		{ reply_json(rp, 200, o); return; }
	}
	{
		char msg[300];

		snprintf(msg, sizeof(msg), "unknown path '%.200s'", path);
		reply_json(rp, 404, error_obj(msg, "invalid_request_error", json_object_new_string("not_found")));
	}
}

/*
 * Answers a complete API request: logs it, takes its scripted action,
 * waits, then answers as the action says or as the endpoint does.
 */
static enum MHD_Result serve(struct MHD_Connection *conn, const char *method, const char *path, struct req *r)
{
	struct reply rp;
	json_object *req = NULL, *act;
	enum MHD_Result ret;
	long latency;
	bool wants_stream;

	memset(&rp, 0, sizeof(rp));
	if (r->too_big) {
		reply_error(&rp, 413, "the request body is too large");
		ret = send_reply(conn, &rp);
		free(rp.text.p);
		return ret;
	}
	req = parse_json(r->body.p, r->body.len);
	log_request(conn, method, path, r, req);
	act = queue_take(path);
	pthread_mutex_lock(&g_lock);
	latency = g_set.latency_ms;
	pthread_mutex_unlock(&g_lock);
	sleep_ms(jlong(act, "latency_ms", latency));
	wants_stream = jbool(req, "stream");
	rp.headers = jget(act, "headers");
	rp.drip_ms = jlong(act, "drip_ms", 0);

	if (jbool(act, "close") || stopping()) {
		ret = MHD_NO;
		goto out;
	}
	if (jstr(act, "replay")) {
		ret = replay_send(conn, jstr(act, "replay"), rp.drip_ms);
		goto out;
	}
	if (jget(act, "status") || jget(act, "body")) {
		json_object *body = jget(act, "body");
		long status = jlong(act, "status", 200);

		if (body) {
			rp.status = (unsigned)status;
			rp.ctype = "application/json";
			sb_str(&rp.text, json_object_is_type(body, json_type_string) ? json_object_get_string(body)
				: jtext(body));
			goto send;
		}
		if (status >= 400) {
			char msg[64];

			snprintf(msg, sizeof(msg), "scripted %ld", status);
			reply_json(&rp, (unsigned)status, error_obj(msg, "test_error", json_object_new_int((int)status)));
			goto send;
		}
	}
	if (jstr(act, "raw")) {
		rp.status = (unsigned)jlong(act, "status", 200);
		rp.ctype = wants_stream ? "text/event-stream" : "application/json";
		sb_str(&rp.text, jstr(act, "raw"));
		goto send;
	}
	if (jbool(act, "malformed")) {
		rp.status = 200;
		rp.ctype = "application/json";
		sb_str(&rp.text, "{\"choices\": [");
		goto send;
	}
	if (strncmp(path, "/v1/files", 9) == 0 || strncmp(path, "/v1/batches", 11) == 0)
		handle_batch_api(conn, method, path, req, r, &rp);
	else
		handle_api(method, path, req, r, act, &rp);
	if (jget(act, "status") && rp.status == 200)
		rp.status = (unsigned)jlong(act, "status", 200);
send:
	ret = send_reply(conn, &rp);
out:
	if (rp.stream)
		body_free(rp.stream);
	free(rp.text.p);
	json_object_put(act);
	json_object_put(req);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)version;
	if (!r) {
		r = xmalloc(sizeof(*r));
		memset(r, 0, sizeof(*r));
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->body.len + *upload_size > BODY_MAX)
			r->too_big = true;
		else
			sb_add(&r->body, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/_control") == 0) {
		struct reply rp;
		enum MHD_Result ret;

		memset(&rp, 0, sizeof(rp));
		handle_control(method, r, &rp);
		ret = send_reply(conn, &rp);
		free(rp.text.p);
		return ret;
	}
	return serve(conn, method, url, r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r) {
		free(r->body.p);
		free(r);
		*con_cls = NULL;
	}
}

/* ---- main --------------------------------------------------------------- */

static int write_port_file(const char *file, unsigned port)
{
	struct sb tmp = { 0 };
	FILE *f;
	int rc = 0;

	sb_str(&tmp, file);
	sb_str(&tmp, ".tmp");
	f = fopen(tmp.p, "w");
	if (!f) {
		fprintf(stderr, "ai-testserver: cannot open '%s': %s\n", tmp.p, strerror(errno));
		free(tmp.p);
		return -1;
	}
	fprintf(f, "%u\n", port);
	if (ferror(f) | fclose(f) || rename(tmp.p, file) != 0) {
		fprintf(stderr, "ai-testserver: cannot write '%s': %s\n", file, strerror(errno));
		rc = -1;
	}
	free(tmp.p);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: ai-testserver [--port-file FILE] [--log FILE] [--exit-with-parent]\n"
	      "                     [--tls-cert PEM --tls-key PEM]\n", f);
}

/* A PEM file, whole and NUL-terminated (libmicrohttpd takes certificates from memory). */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	struct sb b = { 0 };
	char chunk[4096];
	size_t n;

	if (!f) {
		fprintf(stderr, "ai-testserver: cannot open '%s': %s\n", path, strerror(errno));
		exit(AI_EX_NOINPUT);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		sb_add(&b, chunk, n);
	fclose(f);
	sb_add(&b, "", 0);
	return b.p;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port-file", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'l' },
		{ "exit-with-parent", no_argument, NULL, 'e' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *port_file = NULL, *log_file = NULL;
	char *tls_cert = NULL, *tls_key = NULL;
	struct MHD_OptionItem tls[3] = { { MHD_OPTION_END, 0, NULL } };
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	sigset_t set;
	int c, sig = 0;
	bool watch_parent = false;
	pid_t parent = getppid();

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': port_file = optarg; break;
		case 'l': log_file = optarg; break;
		case 'e': watch_parent = true; break;
		case 'c': tls_cert = read_pem(optarg); break;
		case 'k': tls_key = read_pem(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return AI_EX_USAGE;
		}
	}
	if (optind != argc || !tls_cert != !tls_key) {
		usage(stderr);
		return AI_EX_USAGE;
	}
	if (tls_cert) {
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key };
		tls[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	}
	if (log_file) {
		g_logfd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (g_logfd < 0) {
			fprintf(stderr, "ai-testserver: cannot open '%s': %s\n", log_file, strerror(errno));
			return AI_EX_IOERR;
		}
	}

	/* Every thread inherits this mask, so only sigwait() below sees the signals. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		MHD_USE_ERROR_LOG | (tls_cert ? MHD_USE_TLS : 0), 0, NULL, NULL, handler, NULL,
		MHD_OPTION_ARRAY, tls,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	if (!d) {
		fputs("ai-testserver: cannot start the HTTP daemon on 127.0.0.1\n", stderr);
		return AI_EX_OSERR;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		fputs("ai-testserver: cannot read the bound port\n", stderr);
		MHD_stop_daemon(d);
		return AI_EX_OSERR;
	}
	if (port_file) {
		if (write_port_file(port_file, info->port) != 0) {
			MHD_stop_daemon(d);
			return AI_EX_IOERR;
		}
	} else {
		printf("%u\n", (unsigned)info->port);
		fflush(stdout);
	}

	/*
	 * With --exit-with-parent, a test runner that is killed (and so
	 * never runs its teardown) does not leave the server behind: the
	 * parent's death shows as a new parent process id.
	 */
	for (;;) {
		struct timespec tick = { 0, 250000000L };

		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (watch_parent && getppid() != parent)
			break;
	}
	pthread_mutex_lock(&g_lock);
	g_stopping = true;
	pthread_cond_broadcast(&g_wake);
	pthread_mutex_unlock(&g_lock);
	MHD_stop_daemon(d);
	pthread_mutex_lock(&g_lock);
	queue_clear_locked();
	store_clear_locked();
	free(g_set.reply);
	g_set.reply = NULL;
	pthread_mutex_unlock(&g_lock);
	if (g_logfd >= 0)
		close(g_logfd);
	return 0;
}
