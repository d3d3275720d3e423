#include "batch/jsonl.h"
#include "api/attach.h"
#include "jsonval.h"
#include "api/template.h"
#include "utf8.h"

#include <sodium.h>
#include <unistd.h>

#define BLOCK (64u * 1024)

/* ---- lines ---- */

int jsonl_reader_init(struct jsonl_reader *r, int fd, size_t max, struct ai_err *err)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->max = max ? max : SIZE_MAX - 1;
	buf_init(&r->line, 0);
	if (!(r->blk = malloc(BLOCK)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

void jsonl_reader_release(struct jsonl_reader *r)
{
	free(r->blk);
	buf_release(&r->line);
	memset(r, 0, sizeof(*r));
}

static int fill(struct jsonl_reader *r, struct ai_err *err)
{
	ssize_t n;

	r->boff += r->blen;
	r->bpos = r->blen = 0;
	do
		n = read(r->fd, r->blk, BLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return ai_errf_errno(err, AI_EX_NOINPUT, "cannot read the input");
	if (n == 0)
		r->eof = true;
	else if (r->on_bytes)
		r->on_bytes(r->blk, (size_t)n, r->ud);
	r->blen = (size_t)n;
	return 0;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int jsonl_next(struct jsonl_reader *r, const char **line, size_t *len, bool *too_long,
	       struct ai_err *err)
{
	for (;;) {
		size_t seen = 0;
		bool over = false, any = false;
		uint64_t start = r->boff + r->bpos;

		buf_reset(&r->line);
		for (;;) {
			const char *nl;
			size_t avail, take;

			if (r->bpos == r->blen) {
				if (!r->eof && fill(r, err))
					return -1;
				if (r->eof)
					break;
			}
			any = true;
			avail = r->blen - r->bpos;
			nl = memchr(r->blk + r->bpos, '\n', avail);
			take = nl ? (size_t)(nl - (r->blk + r->bpos)) : avail;
			seen += take;
			if (!over && seen > r->max) {
				over = true;
				buf_reset(&r->line);
			}
			if (!over && buf_add(&r->line, r->blk + r->bpos, take))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			r->bpos += take;
			if (nl) {
				r->bpos++;
				break;
			}
		}
		if (!any)
			return 0;
		r->lineno++;
		r->offset = start;
		if (!over && r->line.len && r->line.data[r->line.len - 1] == '\r')
			r->line.len--;
		if (!over && blank(r->line.data ? r->line.data : "", r->line.len))
			continue;
		if (!r->line.data && buf_addstr(&r->line, ""))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		r->line.data[r->line.len] = '\0';
		*line = r->line.data;
		*len = over ? 0 : r->line.len;
		*too_long = over;
		return 1;
	}
}

/* ---- items ---- */


int jsonl_id_key(json_object *id, struct buf *out)
{
	if (json_object_is_type(id, json_type_string)) {
		if (!json_object_get_string_len(id))
			return -1;
		return buf_add(out, json_object_get_string(id), (size_t)json_object_get_string_len(id));
	}
	if (json_object_is_type(id, json_type_int))
		return buf_addf(out, "%lld", (long long)json_object_get_int64(id));
	return -1;
}

struct field_ctx {
	json_object *obj;
	const char *str;
};

/* One {{name}} of an item: {{text}} of a string item, else the object's field. */
static int field_value(const char *name, struct buf *out, void *ud)
{
	struct field_ctx *f = ud;
	json_object *v = NULL;

	if (f->str && !strcmp(name, "text"))
		return buf_addstr(out, f->str) ? -1 : 0;
	if (!f->obj || !json_object_object_get_ex(f->obj, name, &v) || !v)
		return -1;
	if (json_object_is_type(v, json_type_string))
		buf_add(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	else
		buf_addstr(out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	return 0;
}

/* The same {{name}} engine as -T's templates (template.h). */
int jsonl_template(const char *tmpl, json_object *obj, const char *str, struct buf *out,
		   char *why, size_t n)
{
	struct field_ctx f = { obj, str };
	char name[128];

	if (template_expand(tmpl, field_value, &f, out, name, sizeof(name))) {
		snprintf(why, n, "the item has no field '%s' that --template names", name);
		return -1;
	}
	return 0;
}

int jsonl_schema_line(struct buf *out, const struct structured *st, json_object *id, long status,
		      const char *content, int attempts, bool *ok)
{
	struct schema_fail f;
	json_object *data;
	char why[400], msg[480];
	int bad;

	if (!content)
		content = "";
	if (!structured_check(st, content, &data, &f)) {
		bad = structured_lines(out, data, st->multi);
		json_object_put(data);
		*ok = true;
		return bad;
	}
	structured_describe(&f, why, sizeof(why));
	snprintf(msg, sizeof(msg), "the reply does not match the schema %s", why);
	buf_reset(out);
	*ok = false;
	return jsonl_err_line(out, id, status, "schema_invalid", msg, attempts) ||
	       structured_error_raw(out, content) ? -1 : 0;
}

static void bad(struct jsonl_item *it, const char *fmt, ...) AI_PRINTF(2, 3);
static void bad(struct jsonl_item *it, const char *fmt, ...)
{
	va_list ap;

	it->bad = true;
	va_start(ap, fmt);
	vsnprintf(it->error, sizeof(it->error), fmt, ap);
	va_end(ap);
}

/*
 * Says in our words where a line stops being JSON: json-c's own ("null
 * expected" for a line of prose) name its parser's state, not the line.
 * end is where the parser stopped; after a whole value it is the first
 * byte after it.  A line that does not start like an item is most likely
 * plain text, and --lines is what reads that.
 */
static void not_json(struct jsonl_item *it, long lineno, const char *line, size_t len,
		     bool had_value, enum json_tokener_error te, size_t end)
{
	const char *hint = "";
	size_t i = 0, col;
	char what[32];

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i < len && line[i] != '{' && line[i] != '"' && line[i] != '[')
		hint = "; --lines reads plain text";
	if (!had_value && (te == json_tokener_continue || end >= len)) {
		bad(it, "line %ld is not JSON: it ends too early%s", lineno, hint);
		return;
	}
	if (had_value)
		while (end < len && (line[end] == ' ' || line[end] == '\t'))
			end++;
	if (end >= len)
		end = len - 1;
	col = end;
	if (te == json_tokener_error_depth)
		snprintf(what, sizeof(what), "nested too deeply");
	else if (line[end] > ' ' && line[end] < 127)
		snprintf(what, sizeof(what), "unexpected '%c'", line[end]);
	else
		snprintf(what, sizeof(what), "unexpected character");
	/* The line is valid UTF-8 by now: count characters, not bytes. */
	for (i = 0; i < end; i++)
		if (((unsigned char)line[i] & 0xc0) == 0x80)
			col--;
	bad(it, "line %ld is not JSON: %s at column %zu%s%s", lineno, what, col + 1,
	    had_value ? ", after the value" : "", hint);
}

/* messages = [system?, user text]; -1 on ENOMEM. */
static int text_messages(struct jsonl_item *it, const struct jsonl_opts *o, const char *text)
{
	json_object *m = json_object_new_array(), *x;

	if (!m || !(it->text = strdup(text)))
		goto oom;
	if (o->system) {
		if (!(x = jv_message("system", o->system)) || json_object_array_add(m, x)) {
			json_object_put(x);
			goto oom;
		}
	}
	if (!(x = jv_message("user", text)) || json_object_array_add(m, x)) {
		json_object_put(x);
		goto oom;
	}
	it->messages = m;
	return 0;
oom:
	json_object_put(m);
	return -1;
}

static int from_text(struct jsonl_item *it, const struct jsonl_opts *o, json_object *obj,
		     const char *str)
{
	struct buf t;
	int rc = 0;

	if (!o->tmpl)
		return text_messages(it, o, str);
	buf_init(&t, 0);
	if (jsonl_template(o->tmpl, obj, str, &t, it->error, sizeof(it->error)))
		it->bad = true;
	else
		rc = text_messages(it, o, t.data ? t.data : "");
	buf_release(&t);
	return rc;
}

static int from_fields(struct jsonl_item *it, const struct jsonl_opts *o, json_object *j);

/*
 * A text item's "attachments": the user message (the last) becomes its text
 * and their parts.  An attachment that cannot be had makes the item bad,
 * with attach's message; -1 only out of memory.
 */
static int item_attachments(struct jsonl_item *it, const struct jsonl_opts *o, json_object *att)
{
	struct attach_set s;
	struct ai_err e;
	json_object *m;
	size_t i, n, last;
	int rc = 0;

	if (!json_object_is_type(att, json_type_array)) {
		bad(it, "\"attachments\" must be an array of files and URLs");
		return 0;
	}
	if (!o->attach) {
		bad(it, "\"attachments\" are not taken here");
		return 0;
	}
	n = json_object_array_length(att);
	attach_set_init(&s);
	ai_err_clear(&e);
	for (i = 0; i < n && !it->bad; i++) {
		json_object *v = json_object_array_get_idx(att, i);

		if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v) ||
		    !strcmp(json_object_get_string(v), "-"))
			bad(it, "attachment %zu must be the name of a file or a URL", i + 1);
		else if (attach_add(&s, json_object_get_string(v), o->attach, &e)) {
			if (e.code == AI_EX_OSERR)
				rc = -1;
			bad(it, "%s", e.msg);
		}
	}
	if (it->bad) {
		json_object_put(it->messages);
		it->messages = NULL;
	} else if (!rc && s.n) {
		last = json_object_array_length(it->messages) - 1;
		if (!(m = attach_message(it->text, &s)) ||
		    json_object_array_put_idx(it->messages, last, m)) {
			json_object_put(m);
			rc = -1;
		}
		it->attachments = s.n;
	}
	attach_set_release(&s);
	return rc;
}

static int from_object(struct jsonl_item *it, const struct jsonl_opts *o, json_object *j)
{
	json_object *att;
	int rc;

	if (!json_object_object_get_ex(j, "attachments", &att))
		return from_fields(it, o, j);
	if (json_object_object_get_ex(j, "messages", NULL)) {
		bad(it, "\"attachments\" go with a text item, not with \"messages\"");
		return 0;
	}
	rc = from_fields(it, o, j);
	if (rc || it->bad)
		return rc;
	return item_attachments(it, o, att);
}

static int from_fields(struct jsonl_item *it, const struct jsonl_opts *o, json_object *j)
{
	json_object *msgs, *text;

	if (json_object_object_get_ex(j, "messages", &msgs)) {
		if (!json_object_is_type(msgs, json_type_array) || !json_object_array_length(msgs)) {
			bad(it, "\"messages\" must be a non-empty array");
			return 0;
		}
		it->messages = json_object_get(msgs);
		if (!(it->extra = json_object_new_object()))
			return -1;
		json_object_object_foreach(j, k, v) {
			/* The answer is read whole: a stream request would not parse. */
			if (!strcmp(k, "id") || !strcmp(k, "messages") || !strcmp(k, "stream") ||
			    !strcmp(k, "stream_options"))
				continue;
			if (jv_add(it->extra, k, json_object_get(v)))
				return -1;
		}
		{
			json_object *m;

			if (json_object_object_get_ex(it->extra, "model", &m) &&
			    json_object_is_type(m, json_type_string))
				it->model = json_object_get_string(m);
		}
		return 0;
	}
	if (o->tmpl)
		return from_text(it, o, j, NULL);
	if (json_object_object_get_ex(j, "text", &text)) {
		if (!json_object_is_type(text, json_type_string)) {
			bad(it, "\"text\" must be a string");
			return 0;
		}
		if (!json_object_get_string_len(text)) {
			bad(it, "the item's text is empty");
			return 0;
		}
		return from_text(it, o, j, json_object_get_string(text));
	}
	bad(it, "the item has no text: give \"text\", \"messages\", or a --template");
	return 0;
}

int jsonl_parse(const char *line, size_t len, bool too_long, long lineno,
		const struct jsonl_opts *o, struct jsonl_item *it, struct ai_err *err)
{
	json_object *j = NULL, *id = NULL;
	struct buf key;
	size_t valid;
	int rc = 0;

	memset(it, 0, sizeof(*it));
	it->lineno = lineno;
	buf_init(&key, 0);
	if (too_long) {
		bad(it, "line %ld is longer than the limit (--max-line)", lineno);
	} else if ((valid = utf8_valid_prefix(line, len)) != len) {
		bad(it, "line %ld is not valid UTF-8 (or holds a NUL byte) at byte %zu", lineno, valid + 1);
	} else if (o->mode == JSONL_LINES) {
		rc = from_text(it, o, NULL, line);
	} else {
		json_tokener *tok = json_tokener_new();

		if (!tok)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		j = len <= INT_MAX ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
		/*
		 * A bare number ("42") may go on in the next byte, so json-c
		 * waits for more: a blank after the line ends it, and the value is
		 * then judged for what it is, not called cut short.
		 */
		if (!j && len && json_tokener_get_error(tok) == json_tokener_continue &&
		    json_tokener_get_parse_end(tok) == len &&
		    (j = json_tokener_parse_ex(tok, " ", 1)) != NULL &&
		    json_tokener_get_error(tok) == json_tokener_success)
			/* The whole line was the value. */;
		else if (!j || json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != len) {
			not_json(it, lineno, line, len, j != NULL, json_tokener_get_error(tok),
				 json_tokener_get_parse_end(tok));
			json_object_put(j);
			j = NULL;
		}
		json_tokener_free(tok);
		if (j && json_object_is_type(j, json_type_string)) {
			if (!json_object_get_string_len(j))
				bad(it, "the item's text is empty");
			else
				rc = from_text(it, o, NULL, json_object_get_string(j));
		} else if (j && json_object_is_type(j, json_type_object)) {
			json_object *v;

			if (json_object_object_get_ex(j, "id", &v)) {
				if (jsonl_id_key(v, &key)) {
					bad(it, "the id must be a non-empty string or an integer");
					buf_reset(&key);
				} else {
					id = json_object_get(v);
				}
			}
			if (!it->bad)
				rc = from_object(it, o, j);
		} else if (j) {
			bad(it, "an item must be a JSON string or object, not %s",
			    json_type_to_name(json_object_get_type(j)));
		}
	}
	if (!id) {
		buf_reset(&key);
		it->auto_id = true;
		id = json_object_new_int64(lineno);
		if (!id || jsonl_id_key(id, &key))
			rc = -1;
	}
	it->id = id;
	if (!rc && !(it->key = strdup(key.data ? key.data : "")))
		rc = -1;
	buf_release(&key);
	json_object_put(j);
	if (it->bad) {
		json_object_put(it->messages);
		json_object_put(it->extra);
		it->messages = it->extra = NULL;
		it->model = NULL;
	}
	if (rc) {
		jsonl_item_release(it);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	return 0;
}

void jsonl_item_release(struct jsonl_item *it)
{
	json_object_put(it->id);
	json_object_put(it->messages);
	json_object_put(it->extra);
	free(it->key);
	free(it->text);
	memset(it, 0, sizeof(*it));
}

static int finish_line(struct buf *out, json_object *o)
{
	size_t n;
	const char *s = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE, &n) : NULL;
	int rc = s ? buf_add(out, s, n) : -1;

	json_object_put(o);
	return rc;
}

int jsonl_ok_line(struct buf *out, json_object *id, const struct jsonl_answer *a)
{
	json_object *o = json_object_new_object(), *u = json_object_new_object();
	bool calls = a->tool_calls && json_object_is_type(a->tool_calls, json_type_array) &&
		     json_object_array_length(a->tool_calls) > 0;
	int bad;

	if (!o || !u || jv_add(o, "id", json_object_get(id)) ||
	    jv_add(o, "output", json_object_new_string(a->output ? a->output : "")) ||
	    jv_add(o, "finish_reason", a->finish_reason ? json_object_new_string(a->finish_reason) : NULL) ||
	    (calls && jv_add(o, "tool_calls", json_object_get(a->tool_calls))) ||
	    (a->prompt_tokens >= 0 && jv_add(u, "prompt_tokens", json_object_new_int64(a->prompt_tokens))) ||
	    (a->completion_tokens >= 0 &&
	     jv_add(u, "completion_tokens", json_object_new_int64(a->completion_tokens)))) {
		json_object_put(u);
		json_object_put(o);
		return -1;
	}
	bad = jv_add(o, "usage", u);   /* takes u, or drops it */
	if (bad || jv_add(o, "model", a->model ? json_object_new_string(a->model) : NULL) ||
	    jv_add(o, "cached", json_object_new_boolean(a->cached)) ||
	    jv_add(o, "ms", json_object_new_int64(a->ms < 0 ? 0 : (int64_t)(a->ms + 0.5)))) {
		json_object_put(o);
		return -1;
	}
	return finish_line(out, o);
}

int jsonl_err_line(struct buf *out, json_object *id, long status, const char *type,
		   const char *message, int attempts)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	if (!o || !e || jv_add(o, "id", json_object_get(id)) ||
	    json_object_object_add(e, "status", status > 0 ? json_object_new_int64(status) : NULL) ||
	    jv_add(e, "type", json_object_new_string(type && *type ? type : "error")) ||
	    jv_add(e, "message", json_object_new_string(message ? message : ""))) {
		json_object_put(e);
		json_object_put(o);
		return -1;
	}
	if (jv_add(o, "error", e) || jv_add(o, "attempts", json_object_new_int(attempts))) {
		json_object_put(o);
		return -1;
	}
	return finish_line(out, o);
}

/* ---- a set of ids ---- */

void jsonl_idset_init(struct jsonl_idset *s)
{
	memset(s, 0, sizeof(*s));
	randombytes_buf(s->hkey, sizeof(s->hkey));
}

void jsonl_idset_release(struct jsonl_idset *s)
{
	free(s->tab);
	memset(s, 0, sizeof(*s));
}

uint64_t jsonl_idset_hash(const struct jsonl_idset *s, const char *key, size_t len)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)key, len, s->hkey);
	memcpy(&v, h, sizeof(v));
	return v ? v : 1;
}

static size_t slot(const uint64_t *tab, size_t cap, uint64_t h)
{
	size_t i = (size_t)(h & (cap - 1));

	while (tab[i] && tab[i] != h)
		i = (i + 1) & (cap - 1);
	return i;
}

int jsonl_idset_has(const struct jsonl_idset *s, const char *key, size_t len)
{
	uint64_t h;

	if (!s->cap)
		return 0;
	h = jsonl_idset_hash(s, key, len);
	return s->tab[slot(s->tab, s->cap, h)] == h;
}

int jsonl_idset_add(struct jsonl_idset *s, const char *key, size_t len)
{
	uint64_t h = jsonl_idset_hash(s, key, len);
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *t = calloc(cap, sizeof(*t));

		if (!t)
			return -1;
		for (size_t k = 0; k < s->cap; k++)
			if (s->tab[k])
				t[slot(t, cap, s->tab[k])] = s->tab[k];
		free(s->tab);
		s->tab = t;
		s->cap = cap;
	}
	i = slot(s->tab, s->cap, h);
	if (s->tab[i] == h)
		return 1;
	s->tab[i] = h;
	s->n++;
	return 0;
}
