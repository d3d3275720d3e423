/*
 * fuzz_chunk.c - libFuzzer harness for the chunker and the token estimate.
 *
 * The first three bytes choose the options (a small target, so that even
 * short inputs make many chunks; an overlap; Markdown on or off); the rest,
 * cut to its valid UTF-8 prefix before any NUL as chunk_text requires, is
 * the text.  Every promise chunk.h makes about the result is checked, and
 * a broken one calls abort():
 *   - each chunk lies inside the text, is not empty, starts and ends on a
 *     character boundary and has no whitespace at either end;
 *   - chunks are in order: each starts and ends strictly after the one
 *     before, and without overlap they do not overlap;
 *   - together they cover every non-whitespace byte;
 *   - tokens is tok_estimate of the chunk and never over the target;
 *   - line_start and line_end are the lines of its first and last byte
 *     (so they never go down from one chunk to the next);
 *   - no heading path without Markdown.
 * tok_estimate runs on the raw bytes too: 0 for nothing, 1 for one
 * character, at least 1 otherwise, never less for a longer prefix.
 */
#include "chunk.h"
#include "utf8.h"

#include <ctype.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static bool space(char c)
{
	return isspace((unsigned char)c) != 0;
}

static bool boundary(const char *s, size_t n, size_t at)
{
	return at == n || ((unsigned char)s[at] & 0xC0) != 0x80;
}

/* tok_estimate's own promises, on any bytes. */
static void estimate(const char *s, size_t n)
{
	size_t prev = 0, step = n > 256 ? n / 64 : 1;

	check(tok_estimate(s, 0) == 0);
	for (size_t k = 1; k <= n; k += step) {
		size_t t = tok_estimate(s, k);

		check(t >= 1 && t >= prev);
		prev = t;
	}
	check(tok_estimate(s, n) >= prev);
	if (n && (unsigned char)s[0] < 0x80)
		check(tok_estimate(s, 1) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chunk_opts o = { 0, 0, false };
	struct chunk_list l = CHUNK_LIST_INIT;
	struct ai_err err;
	const char *text;
	size_t n, covered = 0, *nl;
	const struct chunk *prev = NULL;

	if (size < 3)
		return 0;
	o.target_tokens = data[0] % 64;          /* 0 is taken as 1 */
	o.overlap_tokens = data[1] % 80;         /* may pass the target: clamped */
	o.markdown = data[2] & 1;
	text = (const char *)data + 3;
	n = size - 3;
	estimate(text, n);
	n = utf8_valid_prefix(text, n);
	{
		const char *nul = memchr(text, '\0', n);

		if (nul)
			n = (size_t)(nul - text);
	}
	/* nl[i]: newlines in text[0, i). */
	nl = malloc((n + 1) * sizeof(*nl));
	check(nl != NULL);
	nl[0] = 0;
	for (size_t i = 0; i < n; i++)
		nl[i + 1] = nl[i] + (text[i] == '\n');
	if (chunk_text(text, n, &o, &l, &err))
		abort();                         /* only out of memory may fail */
	for (size_t i = 0; i < l.n; i++) {
		const struct chunk *c = &l.v[i];
		size_t last;

		check(c->len > 0 && c->off < n && c->len <= n - c->off);
		check(boundary(text, n, c->off) && boundary(text, n, c->off + c->len));
		check(!space(text[c->off]) && !space(text[c->off + c->len - 1]));
		check(c->tokens == tok_estimate(text + c->off, c->len));
		check(c->tokens <= (o.target_tokens ? o.target_tokens : 1));
		if (prev) {
			check(c->off > prev->off && c->off + c->len > prev->off + prev->len);
			if (!o.overlap_tokens)
				check(c->off >= prev->off + prev->len);
			check(c->line_start >= prev->line_start && c->line_end >= prev->line_end);
		}
		check(o.markdown || !c->heading);
		/* Lines: the newlines before its first and before its last byte. */
		last = c->off + c->len - 1;
		check(c->line_start == 1 + nl[c->off] && c->line_end == 1 + nl[last]);
		/* Every non-whitespace byte between the covered part and this chunk. */
		for (size_t k = covered; k < c->off; k++)
			check(space(text[k]));
		if (c->off + c->len > covered)
			covered = c->off + c->len;
		prev = c;
	}
	for (size_t k = covered; k < n; k++)
		check(space(text[k]));
	check(l.n > 0 || !l.v);
	chunk_list_release(&l);
	free(nl);
	return 0;
}
