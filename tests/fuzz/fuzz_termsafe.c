/*
 * fuzz_termsafe.c - libFuzzer harness for the terminal neutraliser.
 *
 * The input is model text.  It goes through termsafe three ways: whole,
 * split at an offset taken from the data, and (when short) byte by byte,
 * each ended by termsafe_flush; the three outputs must be byte for byte
 * the same, since a stream may be cut anywhere.  The output must be valid
 * UTF-8 holding no C0 control but newline and tab, no DEL and no C1
 * control, and text that needed no change must come out unchanged.  Any
 * broken promise calls abort().
 */
#include "termsafe.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *in, size_t len, size_t step, size_t cut, struct buf *out)
{
	struct termsafe t;
	struct ai_err err;
	size_t at = 0;

	buf_init(out, 0);
	termsafe_init(&t);
	while (at < len) {
		size_t n = step ? step : (at < cut ? cut - at : len - at);

		if (n > len - at)
			n = len - at;
		if (termsafe_feed(&t, in + at, n, out, &err))
			abort();
		at += n;
	}
	if (termsafe_flush(&t, out, &err) || termsafe_pending(&t))
		abort();
}

static void same(const struct buf *a, const struct buf *b)
{
	if (a->len != b->len || (a->len && memcmp(a->data, b->data, a->len)))
		abort();
}

/* True when s needs no change: valid UTF-8 with no control but newline and tab. */
static bool clean(const unsigned char *s, size_t n)
{
	if (n == 0)
		return true;
	if (utf8_valid_prefix((const char *)s, n) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') || s[i] == 0x7f)
			return false;
		if (s[i] == 0xC2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole, split, bytes;
	size_t cut = 0;

	for (size_t i = 0; i < size; i++)
		cut = cut * 31 + data[i];
	cut = size ? cut % (size + 1) : 0;

	run(data, size, 0, size, &whole);
	if (!clean((const unsigned char *)whole.data, whole.len))
		abort();
	if (clean(data, size) && (whole.len != size || (size && memcmp(whole.data, data, size))))
		abort();
	if (whole.len > 3 * size)
		abort();
	run(data, size, 0, cut, &split);
	same(&whole, &split);
	buf_release(&split);
	if (size <= 1024) {
		run(data, size, 1, 0, &bytes);
		same(&whole, &bytes);
		buf_release(&bytes);
	}
	buf_release(&whole);
	return 0;
}
