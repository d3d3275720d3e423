/*
 * attach.c - attachments made content parts (attach.h).
 */
#include "api/attach.h"
#include "buf.h"
#include "fdio.h"
#include "jsonval.h"
#include "utf8.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

void attach_set_init(struct attach_set *s)
{
	memset(s, 0, sizeof(*s));
}

void attach_set_release(struct attach_set *s)
{
	if (s->parts)
		json_object_put(s->parts);
	attach_set_init(s);
}

const char *attach_image_type(const void *p, size_t n)
{
	const unsigned char *b = p;

	if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return "image/jpeg";
	if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
		return "image/gif";
	if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
		return "image/webp";
	return NULL;
}

static bool is_pdf(const void *p, size_t n)
{
	return n >= 5 && !memcmp(p, "%PDF-", 5);
}

static bool is_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

static size_t max_each(const struct attach_opts *o)
{
	return o->max_each ? o->max_each : ATTACH_MAX_DEFAULT;
}

static size_t max_total(const struct attach_opts *o)
{
	return o->max_total ? o->max_total : ATTACH_MAX_TOTAL_DEFAULT;
}

/* n bytes for a person: "1.5 GiB", "20.0 MiB", "3.0 KiB", "10 bytes". */
static void human(uint64_t n, char *out, size_t size)
{
	if (n >= 1u << 30)
		snprintf(out, size, "%.1f GiB", (double)n / (1u << 30));
	else if (n >= 1u << 20)
		snprintf(out, size, "%.1f MiB", (double)n / (1u << 20));
	else if (n >= 1u << 10)
		snprintf(out, size, "%.1f KiB", (double)n / (1u << 10));
	else
		snprintf(out, size, "%u bytes", (unsigned)n);
}

/* Over a cap: the error names the attachment and the setting that raises it. */
static int check_size(const struct attach_set *s, const char *name, uint64_t n,
		      const struct attach_opts *o, struct ai_err *err)
{
	char have[32], cap[32];

	if (n > max_each(o)) {
		human(n, have, sizeof(have));
		human(max_each(o), cap, sizeof(cap));
		return ai_errf(err, AI_EX_DATAERR, "attachment '%s' is %s, over the cap of %s per "
			       "attachment (attach_max in ai.conf)", name, have, cap);
	}
	if (s->total >= max_total(o) || n > max_total(o) - s->total) {
		human(max_total(o), cap, sizeof(cap));
		return ai_errf(err, AI_EX_DATAERR, "attachment '%s' brings the attachments over their "
			       "total cap of %s (attach_max_total in ai.conf)", name, cap);
	}
	return 0;
}

/* "data:TYPE;base64,..." of p[0..n) as a new json string, or NULL out of memory. */
static json_object *data_url(const char *type, const void *p, size_t n)
{
	size_t pre = strlen("data:;base64,") + strlen(type);
	size_t b64 = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *u = malloc(pre + b64);
	json_object *j;

	if (!u)
		return NULL;
	snprintf(u, pre + 1, "data:%s;base64,", type);
	sodium_bin2base64(u + pre, b64, p, n, sodium_base64_VARIANT_ORIGINAL);
	j = json_object_new_string(u);
	free(u);
	return j;
}

/*
 * {"type": type, type: {k1: v1[, k2: v2]}}, v1 and v2 consumed (v2 and k2
 * may be NULL); NULL out of memory.
 */
static json_object *part(const char *type, const char *k1, json_object *v1, const char *k2,
			 json_object *v2)
{
	json_object *p = json_object_new_object(), *in = json_object_new_object();
	int bad = !p || !in || !v1 || (k2 && !v2);

	/* jv_add takes its value whatever it returns. */
	bad |= in ? jv_add(in, k1, v1) : (json_object_put(v1), -1);
	if (k2)
		bad |= in ? jv_add(in, k2, v2) : (json_object_put(v2), -1);
	bad |= p ? jv_add(p, "type", json_object_new_string(type)) : -1;
	bad |= p ? jv_add(p, type, in) : (json_object_put(in), -1);
	if (bad) {
		json_object_put(p);
		return NULL;
	}
	return p;
}

static json_object *text_part(const char *text, size_t n)
{
	json_object *p = json_object_new_object(), *t = json_object_new_string_len(text, (int)n);

	if (!p || !t || jv_add(p, "type", json_object_new_string("text"))) {
		json_object_put(p);
		json_object_put(t);
		return NULL;
	}
	if (jv_add(p, "text", t)) {
		json_object_put(p);
		return NULL;
	}
	return p;
}

/* A text attachment: "NAME:\n" and its text. */
static json_object *named_text(const char *name, const char *text, size_t n)
{
	struct buf b;
	json_object *p = NULL;

	buf_init(&b, 0);
	if (!buf_addf(&b, "%s:\n", name) && !buf_add(&b, text, n))
		p = text_part(b.data, b.len);
	buf_release(&b);
	return p;
}

static int push(struct attach_set *s, json_object *part, size_t bytes, struct ai_err *err)
{
	if (!part)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (!s->parts && !(s->parts = json_object_new_array())) {
		json_object_put(part);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (jv_push(s->parts, part))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	s->n++;
	s->total += bytes;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b && b[1] ? b + 1 : path;
}

/*
 * The part of data[0..n) called name; path is where it is on disk (for a
 * PDF's text), or NULL.
 */
static int add_data(struct attach_set *s, const char *name, const char *path, const void *data,
		    size_t n, const struct attach_opts *o, struct ai_err *err)
{
	const char *type = attach_image_type(data, n);
	struct ai_err e;

	if (type)
		return push(s, part("image_url", "url", data_url(type, data, n), NULL, NULL),
			    n, err);
	if (is_pdf(data, n)) {
		struct buf t;
		int rc;

		if (o->pdf == ATTACH_PDF_FILE)
			return push(s, part("file", "filename", json_object_new_string(base_name(name)),
					    "file_data", data_url("application/pdf", data, n)), n, err);
		if (!o->pdf_text || !path)
			return ai_errf(err, AI_EX_SOFTWARE, "attachment '%s': no way to read a PDF's text", name);
		buf_init(&t, 0);
		if (o->pdf_text(name, path, &t, o->pdf_ud, err)) {
			buf_release(&t);
			return -1;
		}
		rc = push(s, named_text(name, t.data ? t.data : "", t.len), n, err);
		buf_release(&t);
		return rc;
	}
	if (utf8_check_input(name, data, n, &e))
		return ai_errf(err, AI_EX_DATAERR,
			       "attachment '%s' is neither an image (PNG, JPEG, WebP, GIF), a PDF nor UTF-8 text",
			       name);
	return push(s, named_text(name, data, n), n, err);
}

int attach_add_mem(struct attach_set *s, const char *name, const void *data, size_t n,
		   const struct attach_opts *o, struct ai_err *err)
{
	const char *dir = getenv("TMPDIR");
	struct buf path;
	int fd, rc;

	if (check_size(s, name, n, o, err))
		return -1;
	if (!is_pdf(data, n) || o->pdf != ATTACH_PDF_TEXT)
		return add_data(s, name, NULL, data, n, o, err);
	/* pdftotext reads a file: the bytes go to a private temporary one. */
	buf_init(&path, 0);
	if (buf_addf(&path, "%s/ai-attach-XXXXXX", dir && *dir == '/' ? dir : "/tmp"))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	fd = mkstemp(path.data);
	if (fd < 0) {
		rc = ai_errf_errno(err, AI_EX_OSERR, "cannot make a temporary file for '%s'", name);
		buf_release(&path);
		return rc;
	}
	if (fd_write_all(fd, data, n)) {
		rc = ai_errf_errno(err, AI_EX_IOERR, "cannot write a temporary file for '%s'", name);
	} else {
		rc = add_data(s, name, path.data, data, n, o, err);
	}
	close(fd);
	unlink(path.data);
	buf_release(&path);
	return rc;
}

int attach_add(struct attach_set *s, const char *src, const struct attach_opts *o,
	       struct ai_err *err)
{
	struct stat st;
	struct buf b;
	int fd, rc;

	if (is_url(src)) {
		/* Passed as it is: the server fetches it, or says it cannot. */
		if (strchr(src, ' ') || strchr(src, '\n'))
			return ai_errf(err, AI_EX_USAGE, "attachment '%s' is not a URL", src);
		return push(s, part("image_url", "url", json_object_new_string(src), NULL, NULL), 0, err);
	}
	fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ai_errf_errno(err, AI_EX_NOINPUT, "cannot open attachment '%s'", src);
	/* The size is known before a byte is read: a 1 GB file costs this fstat. */
	if (fstat(fd, &st)) {
		rc = ai_errf_errno(err, AI_EX_NOINPUT, "cannot read attachment '%s'", src);
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ai_errf(err, AI_EX_NOINPUT, "attachment '%s' is not a regular file", src);
	}
	if (check_size(s, src, (uint64_t)st.st_size, o, err)) {
		close(fd);
		return -1;
	}
	/* The cap holds even if the file grows while it is read. */
	buf_init(&b, max_each(o) + 1);
	if (fd_read_all(fd, &b, NULL)) {
		rc = errno == EFBIG ? check_size(s, src, b.len, o, err)
				    : ai_errf_errno(err, errno == ENOMEM ? AI_EX_OSERR : AI_EX_NOINPUT,
						    "cannot read attachment '%s'", src);
		close(fd);
		buf_release(&b);
		return rc;
	}
	close(fd);
	if (check_size(s, src, b.len, o, err))
		rc = -1;
	else
		rc = add_data(s, src, src, b.data ? b.data : "", b.len, o, err);
	buf_release(&b);
	return rc;
}

json_object *attach_content(const char *text, const struct attach_set *s)
{
	json_object *a, *p;
	size_t i;

	if (!s || !s->n)
		return json_object_new_string(text);
	a = json_object_new_array();
	if (!a || jv_push(a, text_part(text, strlen(text)))) {
		json_object_put(a);
		return NULL;
	}
	for (i = 0; i < json_object_array_length(s->parts); i++) {
		p = json_object_array_get_idx(s->parts, i);
		if (jv_push(a, json_object_get(p))) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

json_object *attach_message(const char *text, const struct attach_set *s)
{
	json_object *m = json_object_new_object(), *c = attach_content(text, s);

	if (!m || !c || jv_add(m, "role", json_object_new_string("user"))) {
		json_object_put(m);
		json_object_put(c);
		return NULL;
	}
	if (jv_add(m, "content", c)) {
		json_object_put(m);
		return NULL;
	}
	return m;
}

/* One part as it is kept: its text, or what it was in brackets. */
static int kept_part(json_object *p, struct buf *b)
{
	const char *type = jv_str(p, "type");
	json_object *in;

	if (b->len && buf_addstr(b, "\n\n"))
		return -1;
	if (type && !strcmp(type, "text"))
		return buf_addstr(b, jv_str(p, "text") ? jv_str(p, "text") : "");
	if (type && !strcmp(type, "image_url") && json_object_object_get_ex(p, "image_url", &in)) {
		const char *url = jv_str(in, "url");

		if (url && is_url(url))
			return buf_addf(b, "[image: %s]", url);
		return buf_addstr(b, "[image attached]");
	}
	if (type && !strcmp(type, "file") && json_object_object_get_ex(p, "file", &in) &&
	    jv_str(in, "filename"))
		return buf_addf(b, "[file attached: %s]", jv_str(in, "filename"));
	return buf_addf(b, "[%s attached]", type ? type : "part");
}

json_object *attach_kept(json_object *msg)
{
	json_object *c, *m;
	struct buf b;
	size_t i;

	if (!json_object_object_get_ex(msg, "content", &c) || !json_object_is_type(c, json_type_array))
		return json_object_get(msg);
	buf_init(&b, 0);
	for (i = 0; i < json_object_array_length(c); i++)
		if (kept_part(json_object_array_get_idx(c, i), &b)) {
			buf_release(&b);
			return NULL;
		}
	m = jv_message(jv_str(msg, "role") ? jv_str(msg, "role") : "user", b.data ? b.data : "");
	buf_release(&b);
	return m;
}

bool attach_refused(struct ai_err *err)
{
	static const char *const said[] = { "image", "vision", "multimodal", "multi-modal" };
	char low[sizeof(err->msg)];
	size_t i;

	if (err->status < 400 || err->status >= 500)
		return false;
	for (i = 0; err->msg[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)err->msg[i]);
	low[i] = '\0';
	for (i = 0; i < AI_ARRAY_LEN(said); i++)
		if (strstr(low, said[i])) {
			char was[sizeof(err->msg)];

			memcpy(was, err->msg, sizeof(was));
			ai_errf(err, AI_EX_DATAERR, "the model does not take these attachments "
				"(pick a model that reads images with -m): %s", was);
			return true;
		}
	return false;
}

static bool b64_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/' || c == '=';
}

char *attach_shorten(const char *body)
{
	static const char mark[] = ";base64,";
	const char *p = body, *q;
	struct buf b;

	buf_init(&b, 0);
	while ((q = strstr(p, mark))) {
		size_t run = 0, chars = 0, keep;

		q += sizeof(mark) - 1;
		/* json-c may write '/' as "\/". */
		while (q[run] && (b64_char(q[run]) || (q[run] == '\\' && q[run + 1] == '/'))) {
			run += q[run] == '\\' ? 2 : 1;
			chars++;
		}
		keep = 0;
		for (size_t c = 0; keep < run && c < 16; c++)
			keep += q[keep] == '\\' ? 2 : 1;
		if (buf_add(&b, p, (size_t)(q - p)) || buf_add(&b, q, keep) ||
		    (chars > 16 && buf_addf(&b, "... (%zu base64 characters)", chars))) {
			buf_release(&b);
			return NULL;
		}
		p = q + run;
	}
	if (buf_addstr(&b, p)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}
