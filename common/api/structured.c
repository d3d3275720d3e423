/*
 * structured.c - answers as data: response_format, the fallback for servers
 * that refuse it, and the checks and the one repair (see structured.h).
 */
#include "ai.h"
#include "api/structured.h"
#include "buf.h"
#include "fdio.h"
#include "jsonval.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A schema file larger than this is a mistake, not a schema. */
#define SCHEMA_FILE_MAX (1u << 20)

static int read_schema_file(const char *path, struct buf *out, struct ai_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open schema '%s': %s", path, strerror(errno));
	/* A FIFO or a device would block or never end: a schema is a regular file. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ai_errf(err, AI_EX_NOINPUT, "schema '%s' is not a regular file", path);
	}
	if (fd_read_all(fd, out, NULL)) {
		int e = errno;

		close(fd);
		if (e == EFBIG)
			return ai_errf(err, AI_EX_DATAERR, "schema '%s' is larger than %u KiB", path,
				       SCHEMA_FILE_MAX >> 10);
		return ai_errf(err, AI_EX_NOINPUT, "cannot read schema '%s': %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

int structured_load(struct structured *st, const char *arg, bool multi, struct ai_err *err)
{
	struct buf text;
	bool file = arg[0] == '@';
	json_object *type;
	int rc;

	memset(st, 0, sizeof(*st));
	st->multi = multi;
	buf_init(&text, SCHEMA_FILE_MAX);
	if (file) {
		if (read_schema_file(arg + 1, &text, err)) {
			buf_release(&text);
			return -1;
		}
	} else if (buf_addstr(&text, arg)) {
		buf_release(&text);
		return ai_errf(err, AI_EX_USAGE, "--schema is larger than %u KiB; put it in a file (@FILE)",
			       SCHEMA_FILE_MAX >> 10);
	}
	rc = schema_parse(&st->schema, text.data ? text.data : "", text.len, multi, err);
	buf_release(&text);
	if (!rc && (!json_object_object_get_ex(st->schema.root, "type", &type) ||
		    strcmp(json_object_get_string(type), "object"))) {
		schema_release(&st->schema);
		rc = ai_errf(err, AI_EX_DATAERR, "schema: the top must be {\"type\": \"object\", ...}, "
			     "as structured outputs want (--schema-multi for a list)");
	}
	if (rc) {
		char m[sizeof(err->msg)];

		/* Say which schema: the file's name, or the option for an inline one. */
		snprintf(m, sizeof(m), "%.60s: %.190s", file ? arg + 1 : "--schema", err->msg);
		memcpy(err->msg, m, sizeof(m));
		if (err->code == AI_EX_DATAERR && !file)
			err->code = AI_EX_USAGE;
		return -1;
	}
	return 0;
}

char *structured_save(const struct structured *st)
{
	json_object *o = json_object_new_object();
	char *s = NULL;

	if (o && !jv_add(o, "schema", json_object_get(st->schema.root)) &&
	    !jv_add(o, "multi", json_object_new_boolean(st->multi)))
		s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

int structured_restore(struct structured *st, const char *text, struct ai_err *err)
{
	json_object *o = json_tokener_parse(text), *root, *multi;
	const char *s;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!o || !json_object_object_get_ex(o, "schema", &root) ||
	    !json_object_object_get_ex(o, "multi", &multi)) {
		json_object_put(o);
		return ai_errf(err, AI_EX_DATAERR, "the job's schema is damaged");
	}
	/* The root is whole already (--schema-multi's wrapping included): compiled as it is. */
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	rc = schema_parse(&st->schema, s, strlen(s), false, err);
	st->multi = json_object_get_boolean(multi);
	json_object_put(o);
	return rc;
}

int structured_from_request(struct structured *st, json_object *extra, struct ai_err *err)
{
	json_object *rf, *js, *schema;

	memset(st, 0, sizeof(*st));
	if (!extra || !json_object_object_get_ex(extra, "response_format", &rf) ||
	    !jv_str(rf, "type") || strcmp(jv_str(rf, "type"), "json_schema"))
		return 0;
	if (!json_object_object_get_ex(rf, "json_schema", &js) ||
	    !json_object_object_get_ex(js, "schema", &schema))
		return ai_errf(err, AI_EX_DATAERR, "response_format json_schema has no schema");
	/* Shared with the request, which only reads it too. */
	if (schema_compile(&st->schema, json_object_get(schema), err))
		return -1;
	st->own_format = true;
	return 1;
}

void structured_release(struct structured *st)
{
	schema_release(&st->schema);
}

json_object *structured_extra(const struct structured *st, json_object *base)
{
	json_object *o = json_object_new_object(), *rf = json_object_new_object(), *js = NULL;

	if (!o || !rf)
		goto fail;
	if (base) {
		json_object_object_foreach(base, k, v) {
			if ((strcmp(k, "response_format") || (st->own_format && !st->fallback)) &&
			    jv_add(o, k, json_object_get(v)))
				goto fail;
		}
	}
	if (st->own_format && !st->fallback) {
		json_object_put(rf);
		return o;
	}
	if (st->fallback) {
		if (jv_add(rf, "type", json_object_new_string("json_object")))
			goto fail;
	} else {
		if (!(js = json_object_new_object()) ||
		    jv_add(js, "name", json_object_new_string(st->multi ? "items" : "reply")) ||
		    jv_add(js, "schema", json_object_get(st->schema.root)) ||
		    jv_add(js, "strict", json_object_new_boolean(1)) ||
		    jv_add(rf, "type", json_object_new_string("json_schema")))
			goto fail;
		if (jv_add(rf, "json_schema", js)) {
			js = NULL;
			goto fail;
		}
		js = NULL;
	}
	if (jv_add(o, "response_format", rf)) {
		rf = NULL;
		goto fail;
	}
	return o;
fail:
	json_object_put(js);
	json_object_put(rf);
	json_object_put(o);
	return NULL;
}

json_object *structured_messages(const struct structured *st, json_object *msgs)
{
	json_object *out = NULL, *sys = NULL, *first = NULL;
	size_t n = json_object_array_length(msgs);
	struct buf b;

	if (!st->fallback)
		return json_object_get(msgs);
	buf_init(&b, 0);
	/* The first system message takes the schema; it goes first either way. */
	for (size_t i = 0; i < n && !first; i++) {
		json_object *m = json_object_array_get_idx(msgs, i);
		const char *role = jv_str(m, "role");

		if (role && !strcmp(role, "system") && jv_str(m, "content"))
			first = m;
	}
	if (first)
		buf_addf(&b, "%s\n\n", jv_str(first, "content"));
	buf_addstr(&b, "Reply with one JSON value that matches this JSON Schema, and nothing else:\n");
	if (buf_addstr(&b, json_object_to_json_string_ext(st->schema.root, JSON_C_TO_STRING_PLAIN)) ||
	    !(out = json_object_new_array()) || !(sys = json_object_new_object()) ||
	    jv_add(sys, "role", json_object_new_string("system")) ||
	    jv_add(sys, "content", json_object_new_string(b.data)))
		goto fail;
	if (jv_push(out, sys)) {
		sys = NULL;
		goto fail;
	}
	sys = NULL;
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(msgs, i);

		if (m != first && jv_push(out, json_object_get(m)))
			goto fail;
	}
	buf_release(&b);
	return out;
fail:
	json_object_put(sys);
	json_object_put(out);
	buf_release(&b);
	return NULL;
}

/* strcasestr is a GNU extension; this is all it is needed for. */
static bool has_word(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (; *s; s++)
		if (!strncasecmp(s, w, n))
			return true;
	return false;
}

bool structured_refused(const struct ai_chat_resp *resp, const struct ai_err *err)
{
	if (resp->status != 400 || !err)
		return false;
	return has_word(err->msg, "response_format") || has_word(err->msg, "json_schema") ||
	       has_word(err->msg, "response format");
}

int structured_check(const struct structured *st, const char *content, json_object **data,
		     struct schema_fail *f)
{
	size_t len = strlen(content), used;
	const char *p = content;
	json_tokener *tok;
	json_object *j;
	enum json_tokener_error je;

	*data = NULL;
	memset(f, 0, sizeof(*f));
	while (len && strchr(" \t\r\n", *p))
		p++, len--;
	while (len && strchr(" \t\r\n", p[len - 1]))
		len--;
	/* In json_object mode some models still wrap the JSON in a Markdown fence. */
	if (len >= 6 && !strncmp(p, "```", 3) && !strncmp(p + len - 3, "```", 3)) {
		const char *nl = memchr(p, '\n', len);

		if (nl) {
			len -= (size_t)(nl + 1 - p) + 3;
			p = nl + 1;
		}
	}
	if (!(tok = json_tokener_new_ex(64))) {
		snprintf(f->reason, sizeof(f->reason), "out of memory");
		return -1;
	}
	j = json_tokener_parse_ex(tok, p, (int)(len > INT_MAX ? INT_MAX : len));
	je = json_tokener_get_error(tok);
	used = j && je == json_tokener_success ? json_tokener_get_parse_end(tok) : 0;
	json_tokener_free(tok);
	if (!j || je != json_tokener_success) {
		json_object_put(j);
		/* json-c's own words ("null expected" for "no") would mislead more than help. */
		snprintf(f->reason, sizeof(f->reason), "the reply is not JSON%s",
			 je == json_tokener_continue || je == json_tokener_success ? " (it ends too soon)" : "");
		return -1;
	}
	while (used < len && strchr(" \t\r\n", p[used]))
		used++;
	if (used < len) {
		json_object_put(j);
		snprintf(f->reason, sizeof(f->reason), "the reply has text after its JSON value");
		return -1;
	}
	if (schema_validate(&st->schema, j, f)) {
		json_object_put(j);
		return -1;
	}
	*data = j;
	return 0;
}

bool structured_cacheable(const char *content, void *ud)
{
	json_object *data;
	struct schema_fail f;

	if (structured_check(ud, content, &data, &f))
		return false;
	json_object_put(data);
	return true;
}

void structured_describe(const struct schema_fail *f, char *out, size_t n)
{
	if (f->ptr[0])
		snprintf(out, n, "at '%.120s': %.190s", f->ptr, f->reason);
	else
		snprintf(out, n, "at the top: %.190s", f->reason);
}

json_object *structured_repair(json_object *msgs, const char *reply, const struct schema_fail *f)
{
	json_object *out = json_object_new_array(), *a = json_object_new_object(),
		    *u = json_object_new_object();
	char why[512];
	struct buf b;

	buf_init(&b, 0);
	structured_describe(f, why, sizeof(why));
	buf_addf(&b, "That reply does not match the JSON schema: %s. Reply again with only the "
		 "corrected JSON.", why);
	if (!out || !a || !u || !b.data)
		goto fail;
	for (size_t i = 0; i < json_object_array_length(msgs); i++)
		if (jv_push(out, json_object_get(json_object_array_get_idx(msgs, i))))
			goto fail;
	if (jv_add(a, "role", json_object_new_string("assistant")) ||
	    jv_add(a, "content", json_object_new_string(reply)) ||
	    jv_add(u, "role", json_object_new_string("user")) ||
	    jv_add(u, "content", json_object_new_string(b.data)))
		goto fail;
	if (jv_push(out, a)) {
		a = NULL;
		goto fail;
	}
	a = NULL;
	if (jv_push(out, u)) {
		u = NULL;
		goto fail;
	}
	buf_release(&b);
	return out;
fail:
	buf_release(&b);
	json_object_put(a);
	json_object_put(u);
	json_object_put(out);
	return NULL;
}

static void sum_tokens(long *acc, long v)
{
	if (v >= 0 && *acc >= 0)
		*acc += v;
	else
		*acc = -1;
}

/* One request of the exchange: q with this schema's fields and the messages msgs. */
static int ask(struct ai_client *c, const struct structured *st, const struct ai_chat_req *q,
	       json_object *msgs, struct ai_chat_resp *resp, struct ai_err *err)
{
	struct ai_chat_req r = *q;
	json_object *extra = structured_extra(st, q->extra), *m = structured_messages(st, msgs);
	int rc;

	if (!extra || !m) {
		json_object_put(extra);
		json_object_put(m);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	r.extra = extra;
	r.messages = m;
	r.on_delta = NULL;
	r.cacheable = structured_cacheable;
	r.cacheable_ud = (void *)st;
	rc = ai_chat(c, &r, resp, err);
	json_object_put(extra);
	json_object_put(m);
	return rc;
}

int structured_chat(struct ai_client *c, struct structured *st, const struct ai_chat_req *q,
		    struct ai_chat_resp *resp, json_object **data, struct schema_fail *f,
		    struct ai_err *err)
{
	json_object *msgs = q->messages, *fixed = NULL;
	long pt = 0, ct = 0;
	int rc;

	*data = NULL;
	memset(f, 0, sizeof(*f));
	memset(resp, 0, sizeof(*resp));        /* released by the caller whatever happens */
	for (int attempt = 0; ; attempt++) {
		rc = ask(c, st, q, msgs, resp, err);
		if (rc && !st->fallback && structured_refused(resp, err)) {
			/* Said once, under -v: later calls of this run go straight to json_object. */
			ai_client_verbose(c, "the server refused response_format json_schema; asking "
					  "with json_object and the schema in the system prompt");
			st->fallback = true;
			ai_chat_resp_release(resp);
			rc = ask(c, st, q, msgs, resp, err);
		}
		if (rc || resp->dry_run)
			break;
		sum_tokens(&pt, resp->prompt_tokens);
		sum_tokens(&ct, resp->completion_tokens);
		if (!structured_check(st, resp->content, data, f))
			break;
		if (attempt == 1) {
			char why[400];

			structured_describe(f, why, sizeof(why));
			rc = ai_errf(err, AI_EX_DATAERR, "the reply does not match the schema %s", why);
			break;
		}
		if (!(fixed = structured_repair(q->messages, resp->content, f))) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			break;
		}
		msgs = fixed;
		ai_chat_resp_release(resp);
	}
	if (!rc || err->code == AI_EX_DATAERR) {
		resp->prompt_tokens = pt;
		resp->completion_tokens = ct;
	}
	json_object_put(fixed);
	return rc;
}

/* The JSON object in line, parsed; NULL when it is none. */
static json_object *line_object(const struct buf *line)
{
	json_object *o = line->data ? json_tokener_parse(line->data) : NULL;

	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static int line_put(struct buf *line, json_object *o)
{
	size_t n;
	const char *t = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	return t ? buf_add(line, t, n) : -1;
}

int structured_lines(struct buf *line, json_object *data, bool multi)
{
	json_object *o = line_object(line), *items = NULL;
	size_t n;
	int rc = -1;

	if (!o)
		return -1;
	if (!multi) {
		if (jv_add(o, "data", json_object_get(data)))
			goto out;
		buf_reset(line);
		rc = line_put(line, o);
		goto out;
	}
	json_object_object_get_ex(data, "items", &items);
	n = json_object_array_length(items);
	buf_reset(line);
	if (!n) {
		rc = jv_add(o, "data", NULL) || jv_add(o, "index", NULL) ? -1 : line_put(line, o);
		goto out;
	}
	/* One line an object, each the item's whole line with its own data and index. */
	for (size_t i = 0; i < n; i++) {
		if (jv_add(o, "data", json_object_get(json_object_array_get_idx(items, i))) ||
		    jv_add(o, "index", json_object_new_int64((int64_t)i)) ||
		    (i && buf_addch(line, '\n')) || line_put(line, o))
			goto out;
	}
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

int structured_error_raw(struct buf *line, const char *raw)
{
	json_object *o = line_object(line), *e;
	int rc = -1;

	if (o && json_object_object_get_ex(o, "error", &e) &&
	    !jv_add(e, "raw", json_object_new_string(raw ? raw : ""))) {
		buf_reset(line);
		rc = line_put(line, o);
	}
	json_object_put(o);
	return rc;
}
