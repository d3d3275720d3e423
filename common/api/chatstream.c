/*
 * chatstream.c - a streamed chat completion, assembled (see chatstream.h).
 *
 * Two readers of a chunk give the same result:
 *   - the slow path parses it with json-c and reads what it needs;
 *   - the fast path is a strict scanner for the one shape that makes up
 *     nearly every chunk: {..., "choices":[{"index":0, "delta":{"content":
 *     "..."}, "finish_reason":null|"..."}], "usage":null, ...}, and a
 *     reasoning model's {"reasoning_content"|"reasoning": "..."} deltas.  It checks
 *     the whole chunk is valid JSON, skipping fields it does not use, and
 *     gives up (returns "not handled") on anything it does not fully
 *     understand, before changing any state.  Strict JSON is a subset of
 *     what json-c accepts, and where json-c is lenient or surprising
 *     (lone surrogates become U+FFFD, \u0000, duplicate keys: last wins,
 *     huge numbers) the scanner declines, so the two cannot disagree.
 * A json-c parse costs about 2 us a chunk; the scanner a fraction of it.
 */
#include "api/chatstream.h"
#include "jsonval.h"
#include "utf8.h"

void chatstream_init(struct chatstream *cs, size_t max_content)
{
	buf_init(&cs->content, max_content);
	cs->finish_reason[0] = '\0';
	cs->prompt_tokens = -1;
	cs->completion_tokens = -1;
	cs->cached_tokens = -1;
	cs->reasoning_tokens = -1;
	cs->usage_seen = false;
	buf_init(&cs->reasoning, max_content);
	buf_init(&cs->refusal, max_content);
	cs->done = false;
	cs->chunks = 0;
	cs->tools = NULL;
	cs->ntools = 0;
	cs->on_delta = NULL;
	cs->on_reasoning = NULL;
	cs->ud = NULL;
	cs->max_content = max_content;
	cs->no_fast = false;
	cs->fast_chunks = 0;
	cs->tok = NULL;
	buf_init(&cs->scratch, 0);
}

void chatstream_release(struct chatstream *cs)
{
	size_t i;

	buf_release(&cs->content);
	buf_release(&cs->reasoning);
	buf_release(&cs->refusal);
	buf_release(&cs->scratch);
	if (cs->tools) {
		for (i = 0; i < CHATSTREAM_MAX_TOOLS; i++) {
			buf_release(&cs->tools[i].id);
			buf_release(&cs->tools[i].name);
			buf_release(&cs->tools[i].arguments);
		}
		free(cs->tools);
		cs->tools = NULL;
	}
	cs->ntools = 0;
	if (cs->tok)
		json_tokener_free(cs->tok);
	cs->tok = NULL;
}

/*
 * Copies s[0..n) into out for quoting in a message: NUL, line breaks and
 * tabs become spaces, so that the quote reads as one line, and a cut falls
 * between UTF-8 characters, marked "...".  Other control characters are
 * kept: whoever prints the message shows them (termout.h), as it does
 * for every message, and a JSON record escapes them.
 */
static void quotable(char *out, size_t outsz, const char *s, size_t n)
{
	size_t k = n, i;

	if (k > outsz - 1) {
		k = outsz - 4;
		while (k && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
	}
	for (i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = !c || c == '\n' || c == '\r' || c == '\t' ? ' ' : (char)c;
	}
	if (k < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

static int oom(struct ai_err *err)
{
	return ai_errf(err, AI_EX_OSERR, "out of memory reading the stream");
}

static int too_long(struct chatstream *cs, struct ai_err *err, const char *what)
{
	if (errno == ENOMEM)
		return oom(err);
	/* Nothing raises the cap (api.c's MAX_CONTENT): name it, advise nothing. */
	return ai_errf(err, AI_EX_DATAERR, "the %s is over %zu bytes, the most one answer may hold",
		       what, cs->max_content);
}

/* The message of an "error" value: a string, or an object with "message". */
static int server_error(json_object *e, struct ai_err *err)
{
	char q[200];
	json_object *m = NULL;
	const char *s;

	if (json_object_is_type(e, json_type_object))
		json_object_object_get_ex(e, "message", &m);
	if (json_object_is_type(e, json_type_string))
		m = e;
	if (m && json_object_is_type(m, json_type_string))
		s = json_object_get_string(m);
	else
		s = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
	quotable(q, sizeof(q), s, strlen(s));
	return ai_errf(err, AI_EX_UNAVAILABLE, "the server reported an error mid-stream: '%s'", q);
}

/* An event of type "error": JSON with an error or a message in it, or text. */
static int error_event(const char *data, size_t len, struct ai_err *err)
{
	json_object *o = NULL, *e;
	char q[200];
	int rc;

	if (len < INT_MAX && !memchr(data, '\0', len))
		o = json_tokener_parse(data);
	if (json_object_is_type(o, json_type_object)) {
		if (json_object_object_get_ex(o, "error", &e) && e)
			rc = server_error(e, err);
		else
			rc = server_error(o, err);
		json_object_put(o);
		return rc;
	}
	json_object_put(o);
	quotable(q, sizeof(q), data, len);
	return ai_errf(err, AI_EX_UNAVAILABLE, "the server reported an error mid-stream: '%s'", q);
}

static int not_json(const char *data, size_t len, struct ai_err *err, const char *what)
{
	char q[64];

	quotable(q, sizeof(q), data, len);
	return ai_errf(err, AI_EX_DATAERR, "stream data is not %s: '%s'", what, q);
}

/* Appends a piece of text to b (the reply, the reasoning or the refusal) and hands it to cb. */
static int add_text(struct chatstream *cs, struct buf *b, const char *what,
		    int (*cb)(const char *, size_t, void *), const char *s, size_t n,
		    struct ai_err *err)
{
	int rc;

	if (!n)
		return 0;
	if (memchr(s, '\0', n)) {
		/* "\u0000" in a delta: keep the text after it (see utf8_add_text). */
		struct buf t;

		buf_init(&t, cs->max_content);
		if (utf8_add_text(&t, s, n)) {
			buf_release(&t);
			return too_long(cs, err, what);
		}
		rc = add_text(cs, b, what, cb, t.data, t.len, err);
		buf_release(&t);
		return rc;
	}
	if (buf_add(b, s, n))
		return too_long(cs, err, what);
	if (cb && (rc = cb(s, n, cs->ud)) != 0)
		return ai_errf(err, rc > 0 ? rc : AI_EX_SOFTWARE, "stream stopped by the delta callback");
	return 0;
}

static int add_content(struct chatstream *cs, const char *s, size_t n, struct ai_err *err)
{
	return add_text(cs, &cs->content, "reply", cs->on_delta, s, n, err);
}

static void set_finish(struct chatstream *cs, const char *s, size_t n)
{
	if (n > sizeof(cs->finish_reason) - 1)
		n = sizeof(cs->finish_reason) - 1;
	memcpy(cs->finish_reason, s, n);
	cs->finish_reason[n] = '\0';
}

/* ---- the slow path: json-c ---- */

static const char *str_of(json_object *o, const char *key, size_t *len)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

static struct chatstream_tool *tool_slot(struct chatstream *cs, int64_t idx, struct ai_err *err)
{
	size_t i;

	if (idx < 0 || idx >= CHATSTREAM_MAX_TOOLS) {
		ai_errf(err, AI_EX_DATAERR, "tool call index %lld out of range (0 to %d)",
			(long long)idx, CHATSTREAM_MAX_TOOLS - 1);
		return NULL;
	}
	if (!cs->tools) {
		cs->tools = calloc(CHATSTREAM_MAX_TOOLS, sizeof(*cs->tools));
		if (!cs->tools) {
			oom(err);
			return NULL;
		}
		for (i = 0; i < CHATSTREAM_MAX_TOOLS; i++) {
			buf_init(&cs->tools[i].id, cs->max_content);
			buf_init(&cs->tools[i].name, cs->max_content);
			buf_init(&cs->tools[i].arguments, cs->max_content);
		}
	}
	cs->tools[idx].used = true;
	if ((size_t)idx + 1 > cs->ntools)
		cs->ntools = (size_t)idx + 1;
	return &cs->tools[idx];
}

static int tool_delta(struct chatstream *cs, json_object *tc, struct ai_err *err)
{
	struct chatstream_tool *t;
	json_object *v, *fn;
	const char *id, *s;
	size_t idlen = 0, n = 0;
	int64_t idx;

	if (!json_object_is_type(tc, json_type_object))
		return 0;
	id = str_of(tc, "id", &idlen);
	if (json_object_object_get_ex(tc, "index", &v) && json_object_is_type(v, json_type_int)) {
		idx = json_object_get_int64(v);
	} else if (cs->ntools == 0) {
		idx = 0;
	} else {
		/* No index (some servers): a new id starts a new call. */
		struct chatstream_tool *last = &cs->tools[cs->ntools - 1];

		idx = (int64_t)cs->ntools - 1;
		if (idlen && last->id.len && (idlen != last->id.len || memcmp(id, last->id.data, idlen)))
			idx++;
	}
	if (!(t = tool_slot(cs, idx, err)))
		return -1;
	if (idlen && !t->id.len && buf_add(&t->id, id, idlen))
		return too_long(cs, err, "tool call id");
	if (!json_object_object_get_ex(tc, "function", &fn) || !json_object_is_type(fn, json_type_object))
		return 0;
	if ((s = str_of(fn, "name", &n)) && n && !t->name.len && buf_add(&t->name, s, n))
		return too_long(cs, err, "tool name");
	if (!json_object_object_get_ex(fn, "arguments", &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
	} else {
		/* Arguments sent as a JSON value rather than text: keep its text. */
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		n = strlen(s);
	}
	if (buf_add(&t->arguments, s, n))
		return too_long(cs, err, "tool call arguments");
	return 0;
}

static int slow_choice(struct chatstream *cs, json_object *c, struct ai_err *err)
{
	json_object *v, *d, *tcs;
	const char *s;
	size_t n, i;
	int rc;

	if (!json_object_is_type(c, json_type_object))
		return 0;
	/* Only the first choice (n=1 is all this toolset asks for). */
	if (json_object_object_get_ex(c, "index", &v) && v &&
	    !(json_object_is_type(v, json_type_int) && json_object_get_int64(v) == 0))
		return 0;
	if (json_object_object_get_ex(c, "delta", &d) && json_object_is_type(d, json_type_object)) {
		/* DeepSeek, vLLM and llama.cpp say reasoning_content; OpenRouter and Ollama reasoning. */
		if (((s = str_of(d, "reasoning_content", &n)) || (s = str_of(d, "reasoning", &n))) &&
		    add_text(cs, &cs->reasoning, "reasoning", cs->on_reasoning, s, n, err))
			return -1;
		if ((s = str_of(d, "refusal", &n)) &&
		    add_text(cs, &cs->refusal, "refusal", NULL, s, n, err))
			return -1;
		if ((s = str_of(d, "content", &n)) && add_content(cs, s, n, err))
			return -1;
		if (json_object_object_get_ex(d, "content", &v) &&
		    json_object_is_type(v, json_type_array)) {
			/* Parts: joined on a buffer of their own, then delivered as one delta. */
			struct buf t;

			buf_init(&t, cs->max_content);
			if (jv_content_text(v, &t)) {
				int why = errno;

				buf_release(&t);
				if (why == EINVAL)
					return ai_errf(err, AI_EX_UNAVAILABLE,
						       "a delta's content is a list of something other than parts");
				errno = why;
				return too_long(cs, err, "reply");
			}
			rc = add_content(cs, t.data, t.len, err);
			buf_release(&t);
			if (rc)
				return -1;
		}
		if (json_object_object_get_ex(d, "tool_calls", &tcs) &&
		    json_object_is_type(tcs, json_type_array)) {
			for (i = 0; i < json_object_array_length(tcs); i++)
				if (tool_delta(cs, json_object_array_get_idx(tcs, i), err))
					return -1;
		}
	}
	if ((s = str_of(c, "finish_reason", &n)))
		set_finish(cs, s, n);
	return 0;
}

static int slow_chunk(struct chatstream *cs, const char *data, size_t len, struct ai_err *err)
{
	json_object *o, *v;
	size_t end, i;
	int rc = 0;

	if (!cs->tok && !(cs->tok = json_tokener_new()))
		return oom(err);
	json_tokener_reset(cs->tok);
	if (len > INT_MAX)
		return not_json(data, len, err, "JSON");
	o = json_tokener_parse_ex(cs->tok, data, (int)len);
	end = json_tokener_get_parse_end(cs->tok);
	if (json_tokener_get_error(cs->tok) != json_tokener_success)
		o = NULL;   /* nothing returned on failure, so nothing to free */
	while (o && end < len && (data[end] == ' ' || data[end] == '\t' || data[end] == '\n' ||
				  data[end] == '\r'))
		end++;
	if (!o || end < len) {
		json_object_put(o);
		return not_json(data, len, err, "JSON");
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return not_json(data, len, err, "a JSON object");
	}
	if (json_object_object_get_ex(o, "error", &v) && v) {
		rc = server_error(v, err);
		goto out;
	}
	if (json_object_object_get_ex(o, "choices", &v) && json_object_is_type(v, json_type_array)) {
		for (i = 0; i < json_object_array_length(v); i++)
			if ((rc = slow_choice(cs, json_object_array_get_idx(v, i), err)))
				goto out;
	}
	{
		/* Bounded as every reader of usage bounds it (jv_count). */
		struct jv_tokens t = { cs->prompt_tokens, cs->completion_tokens, cs->cached_tokens,
				       cs->reasoning_tokens, cs->usage_seen };

		jv_tokens_read(o, &t);
		cs->usage_seen = t.usage;
		cs->prompt_tokens = t.prompt;
		cs->completion_tokens = t.completion;
		cs->cached_tokens = t.cached;
		cs->reasoning_tokens = t.reasoning;
	}
out:
	json_object_put(o);
	return rc;
}

/* ---- the fast path: a strict scanner for the content-delta shape ---- */

struct scan {
	const char *s, *e;
	struct buf *out;
};

#define MAX_SKIP_DEPTH 20

static inline void ws(struct scan *sc)
{
	while (sc->s < sc->e && (*sc->s == ' ' || *sc->s == '\n' || *sc->s == '\r' || *sc->s == '\t'))
		sc->s++;
}

static inline bool peek(struct scan *sc, char c)
{
	return sc->s < sc->e && *sc->s == c;
}

static inline bool eat(struct scan *sc, char c)
{
	if (!peek(sc, c))
		return false;
	sc->s++;
	return true;
}

static int hex4(const char *p)
{
	int v = 0, i;

	for (i = 0; i < 4; i++) {
		char c = p[i];
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/*
 * A string at sc->s (on its opening quote): decoded onto out when out is
 * not NULL.  False for what only json-c should judge: control characters,
 * unknown escapes, \u0000, surrogates that do not pair up.
 */
static bool scan_string(struct scan *sc, struct buf *out)
{
	const char *p = sc->s + 1, *e = sc->e, *run = p;
	char u[4];
	long cp;
	size_t un;

	for (;;) {
		while (p < e && (unsigned char)*p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		if (p >= e || (unsigned char)*p < 0x20)
			return false;
		if (out && p > run && buf_add(out, run, (size_t)(p - run)))
			return false;
		if (*p == '"') {
			sc->s = p + 1;
			return true;
		}
		if (++p >= e)
			return false;
		un = 1;
		switch (*p) {
		case '"': u[0] = '"'; break;
		case '\\': u[0] = '\\'; break;
		case '/': u[0] = '/'; break;
		case 'b': u[0] = '\b'; break;
		case 'f': u[0] = '\f'; break;
		case 'n': u[0] = '\n'; break;
		case 'r': u[0] = '\r'; break;
		case 't': u[0] = '\t'; break;
		case 'u':
			if (e - p < 5 || (cp = hex4(p + 1)) <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
				return false;
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				long lo;

				if (e - p < 7 || p[1] != '\\' || p[2] != 'u' || (lo = hex4(p + 3)) < 0xDC00 ||
				    lo > 0xDFFF)
					return false;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
			} else if (cp < 0x800) {
				u[0] = (char)(0xC0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3F));
				un = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xE0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
				u[2] = (char)(0x80 | (cp & 0x3F));
				un = 3;
			} else {
				u[0] = (char)(0xF0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
				u[3] = (char)(0x80 | (cp & 0x3F));
				un = 4;
			}
			break;
		default:
			return false;
		}
		if (out && buf_add(out, u, un))
			return false;
		run = ++p;
	}
}

/* A number, strictly; declines exponents and long numbers (json-c's call). */
static bool scan_number(struct scan *sc)
{
	const char *p = sc->s, *e = sc->e;

	if (p < e && *p == '-')
		p++;
	if (p >= e)
		return false;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	} else {
		return false;
	}
	if (p < e && *p == '.') {
		if (++p >= e || *p < '0' || *p > '9')
			return false;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if ((p < e && (*p == 'e' || *p == 'E')) || p - sc->s > 18)
		return false;
	sc->s = p;
	return true;
}

static bool scan_word(struct scan *sc, const char *w, size_t n)
{
	if ((size_t)(sc->e - sc->s) < n || memcmp(sc->s, w, n) != 0)
		return false;
	sc->s += n;
	return true;
}

static bool skip_value(struct scan *sc, int depth);

/* The rest of an object or array after its opening bracket. */
static bool skip_container(struct scan *sc, int depth, char close)
{
	ws(sc);
	if (eat(sc, close))
		return true;
	for (;;) {
		if (close == '}') {
			if (!peek(sc, '"') || !scan_string(sc, NULL))
				return false;
			ws(sc);
			if (!eat(sc, ':'))
				return false;
			ws(sc);
		}
		if (!skip_value(sc, depth + 1))
			return false;
		ws(sc);
		if (eat(sc, close))
			return true;
		if (!eat(sc, ','))
			return false;
		ws(sc);
	}
}

static bool skip_value(struct scan *sc, int depth)
{
	if (sc->s >= sc->e || depth > MAX_SKIP_DEPTH)
		return false;
	switch (*sc->s) {
	case '"':
		return scan_string(sc, NULL);
	case '{':
		sc->s++;
		return skip_container(sc, depth, '}');
	case '[':
		sc->s++;
		return skip_container(sc, depth, ']');
	case 't':
		return scan_word(sc, "true", 4);
	case 'f':
		return scan_word(sc, "false", 5);
	case 'n':
		return scan_word(sc, "null", 4);
	default:
		return scan_number(sc);
	}
}

/* A key we may interpret: no escapes, so the raw bytes are the name. */
static bool scan_key(struct scan *sc, const char **k, size_t *n)
{
	const char *p;

	if (!peek(sc, '"'))
		return false;
	p = sc->s + 1;
	*k = p;
	while (p < sc->e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
		p++;
	if (p >= sc->e || *p != '"')
		return false;
	*n = (size_t)(p - *k);
	sc->s = p + 1;
	ws(sc);
	if (!eat(sc, ':'))
		return false;
	ws(sc);
	return true;
}

#define KEY(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), lit, sizeof(lit) - 1) == 0)

/* After a member: ',' and the next key's quote, or the closing '}'. */
static int next_member(struct scan *sc)
{
	ws(sc);
	if (eat(sc, '}'))
		return 0;
	if (!eat(sc, ','))
		return -1;
	ws(sc);
	return 1;
}

/* What the fast path found, as offsets into the scratch buffer. */
struct fast {
	size_t content_off, content_len;
	size_t finish_off, finish_len;
	bool finish;
	size_t reasoning_off, reasoning_len;
};

/*
 * A string, decoded onto the scratch buffer (*off, *len; *is_string set),
 * or null (left alone); false for anything else.
 */
static bool scan_string_or_null(struct scan *sc, size_t *off, size_t *len, bool *is_string)
{
	if (!peek(sc, '"'))
		return scan_word(sc, "null", 4);
	*off = sc->out->len;
	if (!scan_string(sc, sc->out))
		return false;
	*len = sc->out->len - *off;
	if (is_string)
		*is_string = true;
	return true;
}

/* An object of string or null members; "content" decoded, others skipped. */
static bool scan_delta(struct scan *sc, struct fast *f)
{
	const char *k;
	size_t n;
	bool seen = false, seen_r = false;
	int r;

	if (!eat(sc, '{'))
		return false;
	ws(sc);
	if (eat(sc, '}'))
		return true;
	do {
		if (!scan_key(sc, &k, &n))
			return false;
		if (KEY(k, n, "content")) {
			if (seen || !scan_string_or_null(sc, &f->content_off, &f->content_len, NULL))
				return false;
			seen = true;
		} else if (KEY(k, n, "tool_calls")) {
			return false;
		} else if (KEY(k, n, "reasoning_content") || KEY(k, n, "reasoning")) {
			/* One of the two, once: with both, which one wins is json-c's call. */
			if (seen_r || !scan_string_or_null(sc, &f->reasoning_off, &f->reasoning_len, NULL))
				return false;
			seen_r = true;
		} else if (KEY(k, n, "refusal")) {
			/* Null is nothing to keep; a refusal is rare, and json-c's to read. */
			if (!scan_word(sc, "null", 4))
				return false;
		} else if (!skip_value(sc, 4)) {
			return false;
		}
	} while ((r = next_member(sc)) == 1);
	return r == 0;
}

static bool scan_choice(struct scan *sc, struct fast *f)
{
	const char *k;
	size_t n;
	unsigned seen = 0;
	int r;

	if (!eat(sc, '{'))
		return false;
	ws(sc);
	if (eat(sc, '}'))
		return true;
	do {
		if (!scan_key(sc, &k, &n))
			return false;
		if (KEY(k, n, "index")) {
			/* Exactly the number 0; anything else is json-c's to judge. */
			if (seen & 1 || !eat(sc, '0'))
				return false;
			if (sc->s < sc->e && (*sc->s == '.' || *sc->s == 'e' || *sc->s == 'E' ||
					      (*sc->s >= '0' && *sc->s <= '9')))
				return false;
			seen |= 1;
		} else if (KEY(k, n, "delta")) {
			if (seen & 2 || !scan_delta(sc, f))
				return false;
			seen |= 2;
		} else if (KEY(k, n, "finish_reason")) {
			if (seen & 4 || !scan_string_or_null(sc, &f->finish_off, &f->finish_len, &f->finish))
				return false;
			seen |= 4;
		} else if (!skip_value(sc, 3)) {
			return false;
		}
	} while ((r = next_member(sc)) == 1);
	return r == 0;
}

/* The whole chunk; false when it is not the simple shape or not strict JSON. */
static bool scan_chunk(struct scan *sc, struct fast *f)
{
	const char *k;
	size_t n;
	unsigned seen = 0;
	int r;

	ws(sc);
	if (!eat(sc, '{'))
		return false;
	ws(sc);
	if (!eat(sc, '}')) {
		do {
			if (!scan_key(sc, &k, &n))
				return false;
			if (KEY(k, n, "choices")) {
				if (seen & 1 || !eat(sc, '['))
					return false;
				seen |= 1;
				ws(sc);
				if (!eat(sc, ']')) {
					/* One choice only: more go to json-c. */
					if (!scan_choice(sc, f))
						return false;
					ws(sc);
					if (!eat(sc, ']'))
						return false;
				}
			} else if (KEY(k, n, "usage")) {
				if (seen & 2 || !scan_word(sc, "null", 4))
					return false;
				seen |= 2;
			} else if (KEY(k, n, "error") || KEY(k, n, "timings")) {
				return false;
			} else if (!skip_value(sc, 1)) {
				return false;
			}
		} while ((r = next_member(sc)) == 1);
		if (r)
			return false;
	}
	ws(sc);
	return sc->s == sc->e;
}

/* Returns 1 when the chunk is not the fast path's to read. */
static int fast_chunk(struct chatstream *cs, const char *data, size_t len, struct ai_err *err)
{
	struct scan sc = { data, data + len, &cs->scratch };
	struct fast f = { 0, 0, 0, 0, false, 0, 0 };

	buf_reset(&cs->scratch);
	if (!scan_chunk(&sc, &f))
		return 1;
	cs->fast_chunks++;
	/*
	 * The role chunk ("content":null or "") decodes nothing, so scratch may
	 * still be unallocated: no pointer arithmetic on its NULL (UB, found by
	 * the fuzz seed).
	 */
	/* In the slow path's order: the reasoning, then the answer. */
	if (f.reasoning_len && add_text(cs, &cs->reasoning, "reasoning", cs->on_reasoning,
					cs->scratch.data + f.reasoning_off, f.reasoning_len, err))
		return -1;
	if (f.content_len && add_content(cs, cs->scratch.data + f.content_off, f.content_len, err))
		return -1;
	if (f.finish)
		set_finish(cs, f.finish_len ? cs->scratch.data + f.finish_off : "", f.finish_len);
	return 0;
}

/* ---- events ---- */

static bool blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

int chatstream_event(struct chatstream *cs, const struct sse_event *ev, struct ai_err *err)
{
	int rc;

	if (cs->done)
		return 0;
	if (ev->event[0] && strcmp(ev->event, "message") != 0) {
		if (strcmp(ev->event, "error") == 0)
			return error_event(ev->data, ev->data_len, err);
		return 0;   /* pings and other event types this API does not define */
	}
	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		cs->done = true;
		return 0;
	}
	if (blank(ev->data, ev->data_len))
		return 0;
	cs->chunks++;
	if (memchr(ev->data, '\0', ev->data_len))
		return not_json(ev->data, ev->data_len, err, "JSON");
	if (!cs->no_fast) {
		rc = fast_chunk(cs, ev->data, ev->data_len, err);
		if (rc <= 0)
			return rc;
	}
	return slow_chunk(cs, ev->data, ev->data_len, err);
}

struct feed_ctx {
	struct chatstream *cs;
	struct ai_err *err;
};

static int feed_event(const struct sse_event *ev, void *ud)
{
	struct feed_ctx *f = ud;

	return chatstream_event(f->cs, ev, f->err) ? 1 : 0;
}

int chatstream_feed(struct chatstream *cs, struct sse_parser *p, const char *bytes,
		    size_t n, struct ai_err *err)
{
	struct feed_ctx f = { cs, err };

	return sse_feed(p, bytes, n, feed_event, &f, err);
}

int chatstream_end(struct chatstream *cs, struct sse_parser *p, struct ai_err *err)
{
	bool partial = sse_finish(p);

	/*
	 * Only "[DONE]" proves the stream was not cut: a connection closed
	 * after a finish_reason chunk may still have lost the usage chunk, and
	 * every server we know (OpenAI, llama.cpp, Ollama, vLLM) sends it.
	 */
	if (cs->done)
		return 0;
	if (partial)
		return ai_errf(err, AI_EX_TEMPFAIL,
			       "stream cut short in the middle of an event; the reply is incomplete");
	return ai_errf(err, AI_EX_TEMPFAIL, "stream ended without [DONE]%s",
		       cs->finish_reason[0] ? " (after a finish reason); the usage may be missing" :
		       "; the reply may be incomplete");
}

/* json_object_object_add takes val only on success. */
static int add_str(json_object *o, const char *key, const char *s, size_t n)
{
	json_object *v = json_object_new_string_len(s, (int)n);

	if (!v)
		return -1;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

json_object *chatstream_tool_calls(const struct chatstream *cs)
{
	json_object *arr, *call = NULL, *fn = NULL;
	size_t i;

	if (!cs->ntools || !(arr = json_object_new_array()))
		return NULL;
	for (i = 0; i < cs->ntools; i++) {
		const struct chatstream_tool *t = &cs->tools[i];

		if (!t->used)
			continue;
		if (!(call = json_object_new_object()) || !(fn = json_object_new_object()))
			goto fail;
		if (add_str(call, "id", t->id.len ? t->id.data : "", t->id.len) ||
		    add_str(call, "type", "function", 8) ||
		    add_str(fn, "name", t->name.len ? t->name.data : "", t->name.len) ||
		    add_str(fn, "arguments", t->arguments.len ? t->arguments.data : "",
			    t->arguments.len))
			goto fail;
		if (json_object_object_add(call, "function", fn))
			goto fail;
		fn = NULL;
		if (json_object_array_add(arr, call))
			goto fail;
		call = NULL;
	}
	return arr;
fail:
	json_object_put(fn);
	json_object_put(call);
	json_object_put(arr);
	return NULL;
}
