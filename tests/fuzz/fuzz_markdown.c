/*
 * fuzz_markdown.c - libFuzzer harness for the streaming Markdown renderer.
 *
 * The first byte picks the width (20..83) and whether SGR is on; the rest
 * is model text.  It is rendered three ways: whole, split at an offset
 * taken from the data, and (when short) byte by byte; the outputs must be
 * byte for byte the same, since a stream may be cut anywhere.  The output
 * must hold no control character but newline and tab, and every ESC must
 * start one of the renderer's own SGR sequences ("ESC [ digits;... m").
 * The renderer is then used again for a second text, as ai-stream -i
 * does, and must give the same output for it.  Any broken promise calls
 * abort().
 */
#include "markdown.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *in, size_t len, size_t step, size_t cut, int width, bool sgr,
		struct buf *out)
{
	struct markdown m;
	struct ai_err err;
	size_t at = 0;

	buf_init(out, 0);
	markdown_init(&m, width, sgr);
	m.look_ns = 0;          /* every piece looked at: the cuts are what is tested */
	while (at < len) {
		size_t n = step ? step : (at < cut ? cut - at : len - at);

		if (n > len - at)
			n = len - at;
		if (markdown_feed(&m, in + at, n, out, &err))
			abort();
		at += n;
	}
	if (markdown_end(&m, out, &err))
		abort();
	/* Reused for another text: it must start from scratch. */
	{
		struct buf again;

		buf_init(&again, 0);
		if (markdown_feed(&m, in, len, &again, &err) || markdown_end(&m, &again, &err))
			abort();
		if (again.len != out->len || (again.len && memcmp(again.data, out->data, again.len)))
			abort();
		buf_release(&again);
	}
	markdown_release(&m);
}

static void same(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len)))
		abort();
}

static void check_controls(const struct buf *b, bool sgr)
{
	const unsigned char *s = (const unsigned char *)b->data;

	for (size_t i = 0; i < b->len; i++) {
		if (s[i] == 0x1b) {
			size_t j = i + 1;

			if (!sgr || j >= b->len || s[j] != '[')
				abort();
			for (j++; j < b->len && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';'); j++)
				;
			if (j >= b->len || s[j] != 'm')
				abort();
			i = j;
			continue;
		}
		if ((s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') || s[i] == 0x7f)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole, split, bytes;
	size_t cut = 0;
	int width;
	bool sgr;

	if (!size)
		return 0;
	width = 20 + (data[0] & 0x3f);
	sgr = data[0] & 0x40;
	data++, size--;
	for (size_t i = 0; i < size; i++)
		cut = cut * 31 + data[i];
	cut = size ? cut % (size + 1) : 0;

	run(data, size, 0, size, width, sgr, &whole);
	check_controls(&whole, sgr);
	run(data, size, 0, cut, width, sgr, &split);
	same(&whole, &split);
	buf_release(&split);
	if (size <= 2048) {
		run(data, size, 1, 0, width, sgr, &bytes);
		same(&whole, &bytes);
		buf_release(&bytes);
	}
	buf_release(&whole);
	return 0;
}
