/*
 * docload.c - PDF, HTML and the user's loaders made text for ai-index.
 *
 * pdftotext and loaders run through the tool runner, which already holds
 * every limit a program from outside needs (timeout, output cap, process
 * group, environment allow-list): there is one runner in the project.
 * HTML is walked in-process with libxml2's forgiving HTML parser, with
 * network access off.
 */
#include "rag/docload.h"
#include "agent/toolrun.h"
#include "buf.h"
#include "fdio.h"
#include "rag/ingest.h"
#include "utf8.h"

#include <ctype.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>

/* ---- which kind ----------------------------------------------------------- */

/* The extension of name (after the last dot of its last component), or NULL. */
static const char *extension(const char *name)
{
	const char *base = strrchr(name, '/'), *dot;

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	return dot && dot != base && dot[1] ? dot + 1 : NULL;
}

static bool ext_is(const char *ext, const char *const *v, size_t n)
{
	for (size_t i = 0; ext && i < n; i++)
		if (!strcasecmp(ext, v[i]))
			return true;
	return false;
}

/* The loader's command for ext, borrowed from o->loaders, or NULL. */
static const char *loader_for(const struct docload_opts *o, const char *ext)
{
	char low[64];
	json_object *v;
	size_t n;

	if (!o || !o->loaders || !ext || (n = strlen(ext)) >= sizeof(low))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)ext[i]);
	return json_object_object_get_ex(o->loaders, low, &v) ? json_object_get_string(v) : NULL;
}

/* Whether head starts, after a byte order mark and blanks, with an HTML document's first tag. */
static bool looks_html(const char *h, size_t n)
{
	static const char *const start[] = { "<!doctype html", "<html" };

	if (n >= 3 && !memcmp(h, "\xef\xbb\xbf", 3)) {
		h += 3;
		n -= 3;
	}
	while (n && isspace((unsigned char)*h)) {
		h++;
		n--;
	}
	for (size_t i = 0; i < AI_ARRAY_LEN(start); i++) {
		size_t m = strlen(start[i]);

		if (n > m && !strncasecmp(h, start[i], m) &&
		    (isspace((unsigned char)h[m]) || h[m] == '>'))
			return true;
	}
	return false;
}

static bool looks_pdf(const char *h, size_t n)
{
	/* PDF readers accept the header anywhere in the first KiB. */
	for (size_t i = 0; i + 5 <= n && i < DOCLOAD_SNIFF; i++)
		if (!memcmp(h + i, "%PDF-", 5))
			return true;
	return false;
}

enum doc_kind docload_kind(const char *name, const void *head, size_t n,
			   const struct docload_opts *o, const char **cmd)
{
	static const char *const pdf[] = { "pdf" };
	static const char *const html[] = { "html", "htm", "xhtml" };
	const char *ext = extension(name), *c = loader_for(o, ext);

	if (cmd)
		*cmd = c;
	if (c)
		return DOC_LOADER;
	if (looks_pdf(head, n))
		return DOC_PDF;
	if (looks_html(head, n))
		return DOC_HTML;
	if (ext_is(ext, pdf, AI_ARRAY_LEN(pdf)))
		return DOC_PDF;
	if (ext_is(ext, html, AI_ARRAY_LEN(html)))
		return DOC_HTML;
	return DOC_TEXT;
}

int docload_sniff(const char *path, const struct docload_opts *o, enum doc_kind *kind,
		  const char **cmd, struct ai_err *err)
{
	char head[DOCLOAD_SNIFF];
	ssize_t n = 0;
	struct stat st;
	int fd;

	*kind = DOC_TEXT;
	if (cmd)
		*cmd = NULL;
	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		do
			n = read(fd, head, sizeof(head));
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		*kind = docload_kind(path, head, (size_t)n, o, cmd);
	}
	close(fd);
	return 0;
}

/* ---- programs ------------------------------------------------------------- */

void docload_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* Appends one word to the NULL-terminated *v of *n words; -1 out of memory (word freed). */
static int push_word(char ***v, size_t *n, char *word)
{
	char **nv = word ? realloc(*v, (*n + 2) * sizeof(*nv)) : NULL;

	if (!nv) {
		free(word);
		return -1;
	}
	nv[(*n)++] = word;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

char **docload_argv(const char *cmd, const char *path, struct ai_err *err)
{
	char **v = NULL;
	size_t n = 0;
	bool placed = false;
	struct buf w;

	buf_init(&w, 0);
	for (const char *p = cmd; ; ) {
		bool have = false;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		buf_reset(&w);
		while (*p && *p != ' ' && *p != '\t') {
			char q = *p;

			have = true;
			if (q == '\'' || q == '"') {
				const char *end = strchr(p + 1, q);

				if (!end) {
					buf_release(&w);
					docload_argv_free(v);
					ai_errf(err, AI_EX_CONFIG, "loader '%s': a %s quote is not closed", cmd,
						q == '"' ? "double" : "single");
					return NULL;
				}
				if (buf_add(&w, p + 1, (size_t)(end - p - 1)))
					goto oom;
				p = end + 1;
			} else if (buf_addch(&w, *p++)) {
				goto oom;
			}
		}
		if (!have)
			continue;
		if (w.len == 2 && !memcmp(w.data, "{}", 2)) {
			placed = true;
			if (push_word(&v, &n, strdup(path)))
				goto oom;
		} else if (push_word(&v, &n, strndup(w.data ? w.data : "", w.len))) {
			goto oom;
		}
	}
	buf_release(&w);
	if (!n) {
		ai_errf(err, AI_EX_CONFIG, "loader '%s' names no command", cmd);
		return NULL;
	}
	if (!placed && push_word(&v, &n, strdup(path)))
		goto oom_nobuf;
	return v;
oom:
	buf_release(&w);
oom_nobuf:
	docload_argv_free(v);
	ai_errf(err, AI_EX_OSERR, "out of memory");
	return NULL;
}

/* The first line of a program's stderr, for a message, into out. */
static void first_line(const struct buf *b, char *out, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	if (!b->len)
		return;
	while (len < b->len && b->data[len] != '\n' && len + 1 < n)
		len++;
	memcpy(out, b->data, len);
	out[len] = '\0';
	/* What a program prints is shown in a message: no control characters. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = '?';
}

/*
 * Runs argv through the tool runner with o's limits; what it printed is
 * left in res->out.  what names the program in messages ("pdftotext",
 * "loader 'pandoc -t plain'").  0, or -1 with err (res then released).
 */
static int run(char **argv, const char *what, const struct docload_opts *o,
	       struct toolrun_result *res, struct ai_err *err)
{
	struct tooldef t = { 0 };
	struct toolrun_limits lim = { 0 };
	struct ai_err e;
	char line[160];
	int rc;

	memset(res, 0, sizeof(*res));
	ai_err_clear(&e);
	if (!(t.path = toolrun_resolve(argv[0], &e)))
		return ai_errf(err, AI_EX_UNAVAILABLE, "%s: %s", what, e.msg);
	t.name = (char *)"docload";
	t.argv = argv;
	lim.timeout_ms = o->timeout_ms;
	lim.max_output = o->max_output ? o->max_output : TOOLRUN_MAX_OUTPUT;
	lim.cancel = o->cancel;
	/* Nothing on its standard input: the document is named in argv. */
	rc = toolrun(&t, "", &lim, res, &e);
	free(t.path);
	if (rc) {
		if (e.code == AI_EX_INTERRUPT)
			return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
		return ai_errf(err, e.code == AI_EX_OSERR ? AI_EX_OSERR : AI_EX_UNAVAILABLE, "%s: %s", what,
			       e.msg);
	}
	first_line(&res->err, line, sizeof(line));
	if (res->timed_out)
		rc = ai_errf(err, AI_EX_TEMPFAIL, "%s ran past its timeout of %.3g s and was killed", what,
			     (double)(o->timeout_ms ? o->timeout_ms : TOOLRUN_TIMEOUT_MS) / 1000);
	else if (res->term_signal)
		rc = ai_errf(err, AI_EX_DATAERR, "%s was killed by signal %d%s%s", what, res->term_signal,
			     line[0] ? ": " : "", line);
	else if (res->exit_status != 0)
		rc = ai_errf(err, AI_EX_DATAERR, "%s failed (exit %d)%s%s", what, res->exit_status,
			     line[0] ? ": " : "", line);
	else if (res->truncated)
		rc = ai_errf(err, AI_EX_DATAERR, "%s printed more than %zu MiB of text; raise AI_MAX_INPUT",
			     what, lim.max_output >> 20);
	if (rc)
		toolrun_result_release(res);
	return rc;
}

/* Hands out what a program printed as the document's text, once checked. */
static int take_text(const char *what, struct toolrun_result *res,
		     struct ingest_text *out, struct ai_err *err)
{
	struct buf *b = &res->out;
	bool blank = true;

	for (size_t i = 0; i < b->len && blank; i++)
		blank = isspace((unsigned char)b->data[i]) != 0;
	if (blank)
		return ai_errf(err, AI_EX_DATAERR, "%s printed no text", what);
	if (utf8_valid_prefix(b->data, b->len) != b->len)
		return ai_errf(err, AI_EX_DATAERR, "%s printed what is not UTF-8 text", what);
	if (!(out->text = buf_detach(b, &out->len)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

/*
 * pdftotext's pages end with a form feed: each starts a page, and becomes
 * a line end so that the text stays plain.  A last page that is empty
 * (the form feed ending the last one) is not a page.
 */
static int split_pages(struct ingest_text *t, struct ai_err *err)
{
	size_t n = 1, k = 0;

	for (size_t i = 0; i < t->len; i++)
		n += t->text[i] == '\f';
	if (!(t->pages = malloc(n * sizeof(*t->pages))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	t->pages[k++] = 0;
	for (size_t i = 0; i < t->len; i++)
		if (t->text[i] == '\f') {
			t->text[i] = '\n';
			if (i + 1 < t->len)
				t->pages[k++] = i + 1;
		}
	t->npages = k;
	return 0;
}

static int load_pdf(const char *path, const struct docload_opts *o, struct ingest_text *out,
		    struct ai_err *err)
{
	/* "--" so that a path starting with '-' is not taken as an option. */
	char *argv[] = { (char *)"pdftotext", (char *)"-q", (char *)"-enc", (char *)"UTF-8",
			 (char *)"--", (char *)path, (char *)"-", NULL };
	struct toolrun_result res;
	struct ai_err e;

	ai_err_clear(&e);
	if (run(argv, "pdftotext", o, &res, &e)) {
		if (e.code == AI_EX_UNAVAILABLE && strstr(e.msg, "not found"))
			return ai_errf(err, AI_EX_UNAVAILABLE,
				       "a PDF needs pdftotext, not found in PATH: install poppler-utils");
		*err = e;
		return -1;
	}
	if (take_text("pdftotext", &res, out, err) || split_pages(out, err)) {
		toolrun_result_release(&res);
		free(out->text);
		free(out->pages);
		*out = (struct ingest_text){ NULL, 0, NULL, 0, false };
		return -1;
	}
	toolrun_result_release(&res);
	return 0;
}

static int load_with(const char *path, const char *cmd, const struct docload_opts *o,
		     struct ingest_text *out, struct ai_err *err)
{
	char what[120];
	char **argv = docload_argv(cmd, path, err);
	struct toolrun_result res;
	int rc;

	if (!argv)
		return -1;
	snprintf(what, sizeof(what), "loader '%.100s'", cmd);
	rc = run(argv, what, o, &res, err);
	docload_argv_free(argv);
	if (rc)
		return -1;
	rc = take_text(what, &res, out, err);
	toolrun_result_release(&res);
	return rc;
}

/* ---- HTML ----------------------------------------------------------------- */

/* The text being made of a page: breaks are owed, and written before the next text. */
struct html_out {
	struct buf b;
	int owed;               /* 0 nothing, 1 a line end, 2 a blank line */
	bool space;             /* a blank is owed between two words */
	int pre;                /* inside <pre>: whitespace kept */
	bool oom;
};

static void owe(struct html_out *h, int breaks)
{
	if (breaks > h->owed)
		h->owed = breaks;
	h->space = false;
}

/* Writes what is owed, then s[0..n) as it is. */
static void put(struct html_out *h, const char *s, size_t n)
{
	if (h->b.len && h->owed)
		h->oom |= buf_addstr(&h->b, h->owed == 2 ? "\n\n" : "\n") != 0;
	else if (h->b.len && h->space)
		h->oom |= buf_addch(&h->b, ' ') != 0;
	h->owed = 0;
	h->space = false;
	h->oom |= buf_add(&h->b, s, n) != 0;
}

/* A text node: runs of whitespace become one blank, except in <pre>. */
static void text(struct html_out *h, const char *s)
{
	if (h->pre) {
		size_t n = strlen(s);

		if (n)
			put(h, s, n);
		return;
	}
	while (*s) {
		size_t ws = 0, w;

		while (s[ws] && isspace((unsigned char)s[ws]))
			ws++;
		if (ws)
			h->space = true;
		s += ws;
		for (w = 0; s[w] && !isspace((unsigned char)s[w]); w++)
			;
		if (w)
			put(h, s, w);
		s += w;
	}
}

static bool name_in(const xmlChar *name, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcasecmp((const char *)name, v[i]))
			return true;
	return false;
}

/*
 * Elements whose text is not the document's: code, styles, navigation.
 * A <header> or <footer> inside an <article>, <main> or <section> is that
 * part's own (its title, its byline), not the site's, and is kept.
 */
static bool dropped(const xmlChar *name, bool in_content)
{
	static const char *const v[] = { "script", "style", "noscript", "template", "nav", "aside",
					 "head", "svg", "iframe", "object", "button", "select", "form" };
	static const char *const chrome[] = { "header", "footer" };

	return name_in(name, v, AI_ARRAY_LEN(v)) || (!in_content && name_in(name, chrome, AI_ARRAY_LEN(chrome)));
}

/* Elements whose header and footer are their own. */
static bool content(const xmlChar *name)
{
	static const char *const v[] = { "article", "main", "section" };

	return name_in(name, v, AI_ARRAY_LEN(v));
}

/* Elements that start a paragraph of their own. */
static bool block(const xmlChar *name)
{
	static const char *const v[] = { "p", "div", "section", "article", "main", "blockquote", "pre",
					 "table", "ul", "ol", "dl", "figure", "figcaption", "address",
					 "details", "summary", "hr", "body" };

	return name_in(name, v, AI_ARRAY_LEN(v));
}

/* Elements that start a line of their own. */
static bool line(const xmlChar *name)
{
	static const char *const v[] = { "br", "li", "tr", "dt", "dd", "caption" };

	return name_in(name, v, AI_ARRAY_LEN(v));
}

/* The level of a heading element h1-h6, or 0. */
static int heading_level(const xmlChar *name)
{
	const char *s = (const char *)name;

	if ((s[0] == 'h' || s[0] == 'H') && s[1] >= '1' && s[1] <= '6' && !s[2])
		return s[1] - '0';
	return 0;
}

/*
 * How deep walk and flat_text recurse.  libxml2 itself stops at 256
 * levels (without HTML_PARSE_HUGE), which docload_html reports.
 */
#define HTML_DEPTH_MAX 256

/* Appends the text of n's subtree to b, all on one line (a heading's title). */
static void flat_text(struct html_out *h, xmlNode *n, int depth, struct buf *b)
{
	/* As walk: a tree nested past reason is cut there rather than recursed into. */
	if (depth > HTML_DEPTH_MAX)
		return;
	for (; n; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && dropped(n->name, true))
			continue;
		if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content) {
			for (const char *s = (const char *)n->content; *s; s++) {
				char c = isspace((unsigned char)*s) ? ' ' : *s;

				if (c == ' ' && (!b->len || b->data[b->len - 1] == ' '))
					continue;
				h->oom |= buf_addch(b, c) != 0;
			}
		} else if (n->type == XML_ELEMENT_NODE) {
			if (b->len && b->data[b->len - 1] != ' ' && (block(n->name) || line(n->name)))
				h->oom |= buf_addch(b, ' ') != 0;
			flat_text(h, n->children, depth + 1, b);
		}
	}
}

static void walk(struct html_out *h, xmlNode *n, int depth, bool in_content)
{
	for (; n && !h->oom; n = n->next) {
		int level;

		if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content) {
			text(h, (const char *)n->content);
			continue;
		}
		if (n->type != XML_ELEMENT_NODE || dropped(n->name, in_content))
			continue;
		if ((level = heading_level(n->name))) {
			struct buf t;

			buf_init(&t, 0);
			flat_text(h, n->children, depth + 1, &t);
			while (t.len && t.data[t.len - 1] == ' ')
				t.len--;
			if (t.len) {
				owe(h, 2);
				put(h, "######", (size_t)level);
				h->oom |= buf_addch(&h->b, ' ') != 0;
				h->oom |= buf_add(&h->b, t.data, t.len) != 0;
				owe(h, 2);
			}
			buf_release(&t);
			continue;
		}
		/* A page nested past reason is cut there rather than recursed into. */
		if (depth > HTML_DEPTH_MAX)
			continue;
		if (block(n->name))
			owe(h, 2);
		else if (line(n->name))
			owe(h, 1);
		if (!strcasecmp((const char *)n->name, "li")) {
			put(h, "-", 1);
			h->space = true;
		}
		if (!strcasecmp((const char *)n->name, "pre"))
			h->pre++;
		walk(h, n->children, depth + 1, in_content || content(n->name));
		if (!strcasecmp((const char *)n->name, "pre"))
			h->pre--;
		if (block(n->name))
			owe(h, 2);
		else if (line(n->name) || !strcasecmp((const char *)n->name, "td") ||
			 !strcasecmp((const char *)n->name, "th"))
			h->space = true;
	}
}

/*
 * libxml2 reports some errors (a failed encoding conversion) through its
 * global handlers even with HTML_PARSE_NOERROR, and their default writes
 * to stderr: common/ never prints, so they are silenced during a parse.
 */
static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

#if LIBXML_VERSION >= 21200
static void quiet_structured(void *ctx, const xmlError *e)
#else
static void quiet_structured(void *ctx, xmlErrorPtr e)
#endif
{
	(void)ctx;
	(void)e;
}

/*
 * Parses html into *doc (owned; xmlFreeDoc), quietly.  0, or -1 when the
 * parser stopped part-way (too deep a nesting: RECOVER would hand back the
 * part before it as if it were all), *doc then NULL and why in err_msg.
 */
static int parse_quietly(const char *html, int n, htmlDocPtr *doc, char *err_msg, size_t cap)
{
	xmlGenericErrorFunc gen = xmlGenericError;
	void *gen_ctx = xmlGenericErrorContext;
	xmlStructuredErrorFunc st = xmlStructuredError;
	void *st_ctx = xmlStructuredErrorContext;
	const xmlError *e;
	int rc = 0;

	*doc = NULL;
	xmlSetGenericErrorFunc(NULL, quiet);
	xmlSetStructuredErrorFunc(NULL, quiet_structured);
	/*
	 * Without NONET a page could make the parser fetch its DTD.  No NOBLANKS:
	 * it drops the space between two inline elements ("<b>a</b> <b>b</b>"
	 * would read "ab"); walk collapses whitespace itself.
	 */
	/*
	 * htmlReadMemory, not a context of our own: it reads with an XML memory
	 * context, whose encoding guess takes UTF-8 unless the page says
	 * otherwise; libxml2 2.9's HTML contexts take Latin-1 ("café" became
	 * "cafÃ©").  The error that stopped it, if any, is the thread's last.
	 */
	xmlResetLastError();
	*doc = htmlReadMemory(html, n, NULL, NULL, HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
			      HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	xmlSetGenericErrorFunc(gen_ctx, gen);
	xmlSetStructuredErrorFunc(st_ctx, st);
	/* The depth limit is XML_ERR_INTERNAL_ERROR up to 2.10, XML_ERR_RESOURCE_LIMIT after. */
	e = xmlGetLastError();
	if (e && (e->code == XML_ERR_INTERNAL_ERROR
#if LIBXML_VERSION >= 21100
		  || e->code == XML_ERR_RESOURCE_LIMIT
#endif
		  )) {
		snprintf(err_msg, cap, "%.*s", (int)strcspn(e->message ? e->message : "", "\n"),
			 e->message ? e->message : "");
		xmlFreeDoc(*doc);
		*doc = NULL;
		rc = -1;
	}
	xmlResetLastError();
	return rc;
}

int docload_html(const char *name, const char *html, size_t n, struct ingest_text *out,
		 struct ai_err *err)
{
	struct html_out h = { .b = { 0 } };
	htmlDocPtr doc;
	xmlNode *root;
	char why[128];

	*out = (struct ingest_text){ NULL, 0, NULL, 0, false };
	if (n > INT_MAX)
		return ai_errf(err, AI_EX_DATAERR, "'%s' is too large for the HTML parser", name);
	if (parse_quietly(html, (int)n, &doc, why, sizeof(why)))
		return ai_errf(err, AI_EX_DATAERR, "'%s' cannot be read whole as HTML (libxml2: %s)", name, why);
	if (!doc)
		return ai_errf(err, AI_EX_DATAERR, "'%s' cannot be read as HTML", name);
	buf_init(&h.b, 0);
	root = xmlDocGetRootElement(doc);
	if (root)
		walk(&h, root, 0, false);
	xmlFreeDoc(doc);
	if (h.oom) {
		buf_release(&h.b);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (!h.b.len) {
		buf_release(&h.b);
		return ai_errf(err, AI_EX_DATAERR, "'%s' holds no text outside scripts, styles and navigation",
			       name);
	}
	h.oom |= buf_addch(&h.b, '\n') != 0;
	/* libxml2 gives UTF-8, but a page may hold what decodes to a NUL. */
	if (h.oom || utf8_check_input(name, h.b.data, h.b.len, err)) {
		buf_release(&h.b);
		return h.oom ? ai_errf(err, AI_EX_OSERR, "out of memory") : -1;
	}
	out->text = buf_detach(&h.b, &out->len);
	out->markdown = true;
	return out->text ? 0 : ai_errf(err, AI_EX_OSERR, "out of memory");
}

/* Reads the whole file at path, as bytes, up to max. */
static int read_bytes(const char *path, size_t max, struct buf *b, struct ai_err *err)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		rc = ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = ai_errf(err, AI_EX_NOINPUT, "'%s' is not a regular file", path);
	buf_init(b, max);
	if (!rc && fd_read_all(fd, b, NULL))
		rc = errno == EFBIG ? ai_errf(err, AI_EX_DATAERR, "'%s' is larger than %zu MiB; raise AI_MAX_INPUT",
					      path, max >> 20)
				    : ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", path, strerror(errno));
	close(fd);
	if (rc)
		buf_release(b);
	return rc;
}

int docload_file(const char *path, enum doc_kind kind, const char *cmd,
		 const struct docload_opts *o, struct ingest_text *out, struct ai_err *err)
{
	struct buf b;
	int rc;

	*out = (struct ingest_text){ NULL, 0, NULL, 0, false };
	switch (kind) {
	case DOC_PDF:
		return load_pdf(path, o, out, err);
	case DOC_LOADER:
		return load_with(path, cmd, o, out, err);
	case DOC_HTML:
		if (read_bytes(path, o->max_output ? o->max_output : TOOLRUN_MAX_OUTPUT, &b, err))
			return -1;
		rc = docload_html(path, b.data ? b.data : "", b.len, out, err);
		buf_release(&b);
		return rc;
	case DOC_TEXT:
		break;
	}
	return ai_errf(err, AI_EX_SOFTWARE, "docload_file: '%s' is text as it is", path);
}
