/* t_docload.c - what kind a document is, a loader's argv, and HTML made text. */
#include "rag/docload.h"
#include "rag/ingest.h"
#include "tap.h"

#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

/* The argv of cmd for path, joined with '|' (owned), or NULL with err. */
static char *argv_of(const char *cmd, const char *path, struct ai_err *err)
{
	char **v = docload_argv(cmd, path, err);
	char out[512] = "";
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; v[i]; i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "|" : "", v[i]);
	docload_argv_free(v);
	return strdup(out);
}

static void test_argv(void)
{
	struct ai_err err;
	char *s;

	s = argv_of("pandoc -t plain", "/d/a b.docx", &err);
	is_str(s, "pandoc|-t|plain|/d/a b.docx", "words at blanks, the path last and whole");
	free(s);
	s = argv_of("  x \t\"two words\" {} 'a;b' $HOME ", "/p", &err);
	is_str(s, "x|two words|/p|a;b|$HOME", "quotes group, {} is the path, nothing expands");
	free(s);
	s = argv_of("cat {} {}", "/p", &err);
	is_str(s, "cat|/p|/p", "every {} is the path, and then it is not appended");
	free(s);
	s = argv_of("x a''b \"\"", "/p", &err);
	is_str(s, "x|ab||/p", "quotes join a word; an empty quoted word stays");
	free(s);
	ok(!argv_of("sed 's/a/b/", "/p", &err) && err.code == AI_EX_CONFIG && strstr(err.msg, "single quote"),
	   "an open quote is a configuration error: %s", err.msg);
	ok(!argv_of("  \t ", "/p", &err) && err.code == AI_EX_CONFIG && strstr(err.msg, "no command"),
	   "a blank command too: %s", err.msg);
}

static void test_kind(void)
{
	json_object *l = json_object_new_object();
	struct docload_opts o = { l, 0, 0, NULL };
	const char *cmd;

	json_object_object_add(l, "docx", json_object_new_string("pandoc -t plain"));
	json_object_object_add(l, "pdf", json_object_new_string("mypdf"));
	is_int(docload_kind("a.txt", "%PDF-1.4\n", 9, NULL, NULL), DOC_PDF, "a PDF by its bytes");
	is_int(docload_kind("a.txt", "\n\n%PDF-1.7", 11, NULL, NULL), DOC_PDF, "its header a little way in");
	is_int(docload_kind("A.PDF", "", 0, NULL, NULL), DOC_PDF, "or by its name, in any case");
	is_int(docload_kind("x", "\xef\xbb\xbf  <!DOCTYPE HTML>\n<p>", 20, NULL, NULL), DOC_HTML,
	       "HTML by its doctype, after a BOM and blanks");
	is_int(docload_kind("x", "<html lang=en>", 14, NULL, NULL), DOC_HTML, "or its <html> tag");
	is_int(docload_kind("x", "<htmlish>", 9, NULL, NULL), DOC_TEXT, "not a tag that only starts so");
	is_int(docload_kind("page.HTM", "text", 4, NULL, NULL), DOC_HTML, "or its name");
	is_int(docload_kind("notes.md", "# <html> in text", 16, NULL, NULL), DOC_TEXT, "Markdown is text");
	is_int(docload_kind("pump.1", ".TH PUMP 1", 10, NULL, NULL), DOC_TEXT, "a man page is text");
	is_int(docload_kind("dir.d/file", "x", 1, &o, NULL), DOC_TEXT, "a dot in a directory is no extension");
	is_int(docload_kind(".docx", "x", 1, &o, NULL), DOC_TEXT, "nor a leading dot");
	cmd = NULL;
	is_int(docload_kind("r/Report.DOCX", "PK\3\4", 4, &o, &cmd), DOC_LOADER, "a loader by extension, any case");
	is_str(cmd, "pandoc -t plain", "its command");
	is_int(docload_kind("m.pdf", "%PDF-1.4", 8, &o, &cmd), DOC_LOADER, "a loader wins over the PDF reader");
	is_str(cmd, "mypdf", "with its own command");
	json_object_put(l);
}

/* The text docload_html makes of html, owned, or NULL. */
static char *html(const char *h, bool *markdown)
{
	struct ingest_text t;
	struct ai_err err;

	if (docload_html("t.html", h, strlen(h), &t, &err)) {
		printf("# docload_html: %s\n", err.msg);
		return NULL;
	}
	if (markdown)
		*markdown = t.markdown;
	ok(t.pages == NULL && strlen(t.text) == t.len, "no pages, and the length is the text's");
	return t.text;
}

static void test_html(void)
{
	struct ingest_text t;
	struct ai_err err;
	bool md = false;
	char *s;

	s = html("<html><head><title>T</title><script>bad()</script></head><body>"
		 "<nav>menu</nav><header>top</header><h1>Title  <em>one</em></h1>"
		 "<p>Some   <b>bold</b>\n text &amp; more.</p><style>p{}</style>"
		 "<ul><li>first</li><li>second <i>item</i></li></ul><footer>foot</footer><aside>side</aside>"
		 "<h3>Deep</h3><pre>  a\n    b</pre><table><tr><td>c1</td><td>c2</td></tr></table></body></html>", &md);
	is_str(s, "# Title one\n\nSome bold text & more.\n\n- first\n- second item\n\n### Deep\n\n  a\n    b\n\nc1 c2\n",
	       "headings, paragraphs, lists, pre and cells; no script, style or navigation");
	ok(md, "chunked as Markdown, so headings are section titles");
	free(s);
	s = html("<body><header><h1>Site</h1></header><article><header><h1>Post title</h1><p>by Ann</p>"
		 "</header><p>Body.</p><footer>tags: x</footer></article><footer>site foot</footer></body>", NULL);
	is_str(s, "# Post title\n\nby Ann\n\nBody.\n\ntags: x\n",
	       "an article's header and footer are its own; the page's are not");
	free(s);
	s = html("<p>caf\xc3\xa9 <!-- hidden comment --> ok<br>next line</p>", NULL);
	is_str(s, "caf\xc3\xa9 ok\nnext line\n", "a fragment, UTF-8 kept, no comment, <br> a line end");
	free(s);
	s = html("<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9</p></body></html>", NULL);
	is_str(s, "caf\xc3\xa9\n", "a declared Latin-1 page becomes UTF-8");
	free(s);
	s = html("<p>unclosed <div>block<p>para", NULL);
	is_str(s, "unclosed\n\nblock\n\npara\n", "broken markup is recovered");
	free(s);
	ok(docload_html("e.html", "<script>x()</script><nav>n</nav>", 32, &t, &err) == -1 &&
	   err.code == AI_EX_DATAERR && strstr(err.msg, "no text") && !t.text,
	   "a page of scripts and navigation alone is an error: %s", err.msg);
	{
		/* UTF-32 by its first bytes, then bytes that do not convert: libxml2 says so on stderr. */
		static const char bad[] = "<\0\0\0!\0\0\0\0\0!D";
		char tmpl[] = "/tmp/t_docload.XXXXXX";
		int fd = mkstemp(tmpl), saved = dup(2);
		struct stat st;

		fflush(stderr);
		dup2(fd, 2);
		if (docload_html("u.html", bad, sizeof(bad) - 1, &t, &err) == 0)
			free(t.text);
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		ok(fstat(fd, &st) == 0 && st.st_size == 0, "libxml2 prints nothing (common/ never prints)");
		close(fd);
		unlink(tmpl);
	}
	ok(docload_html("z.html", "", 0, &t, &err) == -1 && err.code == AI_EX_DATAERR, "and so is nothing: %s",
	   err.msg);
}

int main(void)
{
	test_argv();
	test_kind();
	test_html();
	return tap_done();
}
