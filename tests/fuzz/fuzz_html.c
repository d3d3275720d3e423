/*
 * fuzz_html.c - libFuzzer harness for docload_html, ai-index's reading of
 * HTML pages (any bytes a file may hold).
 *
 * Checked, abort() on a broken promise: it succeeds or fails with a
 * message, never both; the text it gives is non-empty UTF-8 without NUL,
 * of the length it says, ends with a line end, and has no run of three
 * line ends (a break is one or two) unless the page may hold a <pre>,
 * whose text is kept as it is; it is always chunked as Markdown.
 */
#include "rag/docload.h"
#include "rag/ingest.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether data[0..n) holds "pre" in any case (NUL bytes and all). */
static bool has_pre(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i++)
		if ((d[i] | 0x20) == 'p' && (d[i + 1] | 0x20) == 'r' && (d[i + 2] | 0x20) == 'e')
			return true;
	return false;
}

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ingest_text t;
	struct ai_err err;

	ai_err_clear(&err);
	if (docload_html("f.html", (const char *)data, size, &t, &err)) {
		check(err.msg[0] && !t.text && !t.len);
		return 0;
	}
	check(t.text && t.len && t.markdown && !t.pages);
	check(strlen(t.text) == t.len);
	check(utf8_valid_prefix(t.text, t.len) == t.len);
	check(t.text[t.len - 1] == '\n');
	check(!strstr(t.text, "\n\n\n") || has_pre(data, size));
	free(t.text);
	return 0;
}
