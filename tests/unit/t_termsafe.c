/* t_termsafe - terminal neutraliser: every class of control, split UTF-8, bad bytes. */
#include "termsafe.h"
#include "utf8.h"
#include "tap.h"

#define ESC_PIC "\xe2\x90\x9b"  /* U+241B */
#define BEL_PIC "\xe2\x90\x87"  /* U+2407 */
#define DEL_PIC "\xe2\x90\xa1"  /* U+2421 */
#define REPL "\xef\xbf\xbd"     /* U+FFFD */

static struct buf out;

/* Feeds s[0..n) whole, flushes, and returns the output (borrowed until the next call). */
static const char *safe_n(const char *s, size_t n)
{
	struct termsafe t;
	struct ai_err e;

	buf_reset(&out);
	termsafe_init(&t);
	if (termsafe_feed(&t, s, n, &out, &e) || termsafe_flush(&t, &out, &e))
		return "(failed)";
	return out.data ? out.data : "";
}

static const char *safe(const char *s)
{
	return safe_n(s, strlen(s));
}

/* Feeds s in pieces cut at cuts[0..ncut) (ascending), flushes, and returns an owned copy. */
static char *safe_cut(const char *s, size_t n, const size_t *cuts, size_t ncut)
{
	struct termsafe t;
	struct ai_err e;
	struct buf b;
	size_t from = 0;

	buf_init(&b, 0);
	termsafe_init(&t);
	for (size_t i = 0; i <= ncut; i++) {
		size_t to = i < ncut ? cuts[i] : n;

		if (termsafe_feed(&t, s + from, to - from, &b, &e)) {
			buf_release(&b);
			return NULL;
		}
		from = to;
	}
	if (termsafe_flush(&t, &b, &e)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static void test_plain(void)
{
	is_str(safe(""), "", "empty text gives nothing");
	is_str(safe("hello, world"), "hello, world", "printable ASCII passes");
	is_str(safe("a\nb\tc\n"), "a\nb\tc\n", "newline and tab pass");
	is_str(safe("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0"),
	       "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc2\xa0",
	       "2-, 3- and 4-byte UTF-8 and U+00A0 (the first after C1) pass");
	is_str(safe("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf", "U+10FFFF, the last code point, passes");
	is_str(safe("\xef\xbf\xbd"), REPL, "U+FFFD itself passes");
}

static void test_c0(void)
{
	int bad = 0;

	for (int c = 0; c < 0x20; c++) {
		char in[1] = { (char)c };
		char want[4] = { 0 };
		const char *got;

		if (c == '\n' || c == '\t')
			continue;
		/* U+2400 + c: E2 90 (80 + c). */
		want[0] = (char)0xe2;
		want[1] = (char)0x90;
		want[2] = (char)(0x80 + c);
		got = safe_n(in, 1);
		if (strcmp(got, want)) {
			bad++;
			printf("# C0 %#x gave '%s'\n", (unsigned)c, got);
		}
	}
	is_int(bad, 0, "every C0 control but newline and tab becomes its Control Picture");
	is_str(safe_n("a\0b", 3), "a\xe2\x90\x80" "b", "NUL becomes U+2400, not the end of the text");
	is_str(safe("\r\n"), "\xe2\x90\x8d\n", "CR is shown, so a line cannot be overwritten");
	is_str(safe("x\by"), "x\xe2\x90\x88y", "backspace is shown");
	is_str(safe("\x7f"), DEL_PIC, "DEL becomes U+2421");
	is_str(safe("ab\x7f\x7f" "c"), "ab" DEL_PIC DEL_PIC "c", "each DEL is shown");
}

/* Line mode (diagnostics): newline is shown too, everything else as before. */
static void test_line(void)
{
	struct termsafe t;
	struct ai_err e;

	buf_reset(&out);
	termsafe_init_line(&t);
	if (termsafe_feed(&t, "a\nb\tc\x1b[2J\xc3", 10, &out, &e) || termsafe_flush(&t, &out, &e))
		buf_reset(&out);
	is_str(out.data ? out.data : "", "a\xe2\x90\x8a" "b\tc" ESC_PIC "[2J" REPL,
	       "line mode shows newline as U+240A, keeps tab, shows the rest as always");
	termsafe_init(&t);
	buf_reset(&out);
	if (termsafe_feed(&t, "a\nb", 3, &out, &e))
		buf_reset(&out);
	is_str(out.data ? out.data : "", "a\nb", "termsafe_init leaves line mode");
}

static void test_sequences(void)
{
	is_str(safe("\x1b"), ESC_PIC, "a lone ESC becomes U+241B");
	is_str(safe("\x1b[2J\x1b[H"), ESC_PIC "[2J" ESC_PIC "[H", "CSI clear screen is shown, not run");
	is_str(safe("\x1b[31mred\x1b[0m"), ESC_PIC "[31mred" ESC_PIC "[0m", "SGR colour is shown");
	is_str(safe("\x1b]0;pwned\x07"), ESC_PIC "]0;pwned" BEL_PIC, "OSC window title ending in BEL is shown");
	is_str(safe("\x1b]52;c;cm0gLXJmIH4K\x07"), ESC_PIC "]52;c;cm0gLXJmIH4K" BEL_PIC,
	       "OSC 52 clipboard write (BEL) is shown, not run");
	is_str(safe("\x1b]52;c;cm0gLXJmIH4K\x1b\\"), ESC_PIC "]52;c;cm0gLXJmIH4K" ESC_PIC "\\",
	       "OSC 52 clipboard write (ST) is shown, not run");
	is_str(safe("\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\"),
	       ESC_PIC "]8;;http://evil/" ESC_PIC "\\click" ESC_PIC "]8;;" ESC_PIC "\\",
	       "OSC 8 hyperlink is shown");
	is_str(safe("\x1bP+q\x1b\\"), ESC_PIC "P+q" ESC_PIC "\\", "DCS is shown");
}

static void test_c1(void)
{
	int bad = 0;

	for (int c = 0x80; c <= 0x9f; c++) {
		char in[2] = { (char)0xc2, (char)c };
		const char *got = safe_n(in, 2);

		if (strcmp(got, REPL)) {
			bad++;
			printf("# C1 U+%04X gave '%s'\n", (unsigned)c, got);
		}
	}
	is_int(bad, 0, "every C1 control U+0080..U+009F written as UTF-8 becomes U+FFFD");
	is_str(safe("\xc2\x9b" "2J"), REPL "2J", "8-bit CSI as UTF-8 (C2 9B) is replaced");
	is_str(safe("\xc2\x9d" "52;c;eA==\xc2\x9c"), REPL "52;c;eA==" REPL, "8-bit OSC 52 as UTF-8 is replaced");
	is_str(safe("\x9b" "2J"), REPL "2J", "a raw 8-bit CSI byte is replaced");
	{
		const char in[] = "\xc2\x9b";
		size_t cut = 1;
		char *got = safe_cut(in, 2, &cut, 1);

		is_str(got, REPL, "a C1 control split between pieces is still replaced");
		free(got);
	}
}

static void test_invalid(void)
{
	is_str(safe("\x80"), REPL, "a lone continuation byte");
	is_str(safe("a\xbf" "b"), "a" REPL "b", "a continuation byte between letters");
	is_str(safe("\xc0\xaf"), REPL REPL, "C0 lead (overlong '/') gives one U+FFFD a byte");
	is_str(safe("\xc1\xbf"), REPL REPL, "C1 lead (overlong)");
	is_str(safe("\xe0\x80\xaf"), REPL REPL REPL, "3-byte overlong");
	is_str(safe("\xf0\x80\x80\xaf"), REPL REPL REPL REPL, "4-byte overlong");
	is_str(safe("\xed\xa0\x80"), REPL REPL REPL, "a surrogate (U+D800)");
	is_str(safe("\xf4\x90\x80\x80"), REPL REPL REPL REPL, "above U+10FFFF");
	is_str(safe("\xf5\xf8\xfe\xff"), REPL REPL REPL REPL, "F5..FF are never UTF-8");
	is_str(safe("\xe2\x82" "A"), REPL "A", "a truncated sequence is one U+FFFD and the next byte survives");
	is_str(safe("\xe2\x82\x1b"), REPL ESC_PIC, "an ESC cutting a sequence is still shown as ESC");
	is_str(safe("\xe2\x82\xe2\x82\xac"), REPL "\xe2\x82\xac", "a lead byte cutting a sequence starts a new one");
	is_str(safe("\xf0\x9f\x98"), REPL, "text ending inside a character: one U+FFFD at the flush");
	is_str(safe("\xc3"), REPL, "text ending after a lead byte: one U+FFFD at the flush");
}

/* Every cut of every sample gives the same output as the whole text. */
static void test_splits(void)
{
	static const char *const samples[] = {
		"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
		("a\xc3\xa9" "b\xe6\x97\xa5\xf0\x9f\x91\x8d\x1b[0m\xc2\x85" "z\n"),
		("\xe2\x82" "A\xed\xa0\x80\xc2\x9b\x7f\xf0\x9f\x98"),
	};
	int bad1 = 0, bad2 = 0, badb = 0, pend_bad = 0;

	for (size_t s = 0; s < AI_ARRAY_LEN(samples); s++) {
		const char *in = samples[s];
		size_t n = strlen(in);
		char *whole = safe_cut(in, n, NULL, 0);

		/* One cut at every offset. */
		for (size_t k = 0; k <= n; k++) {
			char *got = safe_cut(in, n, &k, 1);

			if (!got || strcmp(got, whole))
				bad1++;
			free(got);
		}
		/* Two cuts at every pair of offsets. */
		for (size_t a = 0; a <= n; a++)
			for (size_t b = a; b <= n; b++) {
				size_t cuts[2] = { a, b };
				char *got = safe_cut(in, n, cuts, 2);

				if (!got || strcmp(got, whole))
					bad2++;
				free(got);
			}
		/* A byte at a time. */
		{
			size_t cuts[64];
			char *got;

			for (size_t k = 0; k < n; k++)
				cuts[k] = k + 1;
			got = safe_cut(in, n, cuts, n);
			if (!got || strcmp(got, whole))
				badb++;
			free(got);
		}
		free(whole);
	}
	is_int(bad1, 0, "one cut at any offset changes nothing");
	is_int(bad2, 0, "two cuts at any offsets change nothing");
	is_int(badb, 0, "a byte at a time changes nothing");

	/* A valid character cut anywhere is never replaced and is written once complete. */
	{
		const char in[] = "\xf0\x9f\x98\x80";
		struct termsafe t;
		struct ai_err e;
		struct buf b;

		buf_init(&b, 0);
		termsafe_init(&t);
		for (size_t k = 0; k < 4; k++) {
			termsafe_feed(&t, in + k, 1, &b, &e);
			if ((k < 3) != termsafe_pending(&t) || b.len != (k < 3 ? 0 : 4))
				pend_bad++;
		}
		is_int(pend_bad, 0, "a 4-byte character fed a byte at a time waits, then comes out whole");
		is_str(b.data, in, "and it is the character itself");
		termsafe_flush(&t, &b, &e);
		is_int(b.len, 4, "a flush with nothing carried appends nothing");
		buf_release(&b);
	}
}

/* Random bytes in random pieces: always valid UTF-8 without NUL or controls, and cut-independent. */
static void test_random(void)
{
	unsigned long x = 12345;
	int bad_utf8 = 0, bad_ctl = 0, bad_cut = 0;

	for (int round = 0; round < 2000; round++) {
		char in[48];
		size_t n = 1 + round % sizeof(in), cuts[4];
		char *whole, *got;

		for (size_t i = 0; i < n; i++) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			/* Bias towards the interesting bytes. */
			switch ((x >> 60) & 3) {
			case 0: in[i] = (char)(x >> 33); break;
			case 1: in[i] = (char)(0x80 | ((x >> 33) & 0x3f)); break;
			case 2: in[i] = (char)(0xc2 + ((x >> 33) % 0x33)); break;
			default: in[i] = (char)((x >> 33) & 0x7f); break;
			}
		}
		for (size_t k = 0; k < 4; k++) {
			x = x * 6364136223846793005UL + 1442695040888963407UL;
			cuts[k] = (x >> 33) % (n + 1);
		}
		/* Ascending cuts. */
		for (size_t a = 0; a < 4; a++)
			for (size_t b = a + 1; b < 4; b++)
				if (cuts[b] < cuts[a]) {
					size_t tmp = cuts[a];

					cuts[a] = cuts[b];
					cuts[b] = tmp;
				}
		whole = safe_cut(in, n, NULL, 0);
		got = safe_cut(in, n, cuts, 4);
		if (!whole || utf8_valid_prefix(whole, strlen(whole)) != strlen(whole))
			bad_utf8++;
		for (const unsigned char *p = (const unsigned char *)whole; p && *p; p++)
			if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f ||
			    (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
				bad_ctl++;
		if (!got || !whole || strcmp(got, whole))
			bad_cut++;
		free(whole);
		free(got);
	}
	is_int(bad_utf8, 0, "random bytes always come out as valid UTF-8 without NUL");
	is_int(bad_ctl, 0, "random bytes never come out with a C0, DEL or C1 control");
	is_int(bad_cut, 0, "random bytes in random pieces come out as they do whole");
}

static void test_failure(void)
{
	struct termsafe t;
	struct ai_err e;
	struct buf b;
	int rc;

	buf_init(&b, 7);
	termsafe_init(&t);
	ai_err_clear(&e);
	is_int(termsafe_feed(&t, "ab", 2, &b, &e), 0, "a piece whose worst case fits the cap is written");
	is_str(b.data, "ab", "as it is");
	rc = termsafe_feed(&t, "\xe2\x82", 2, &b, &e);
	is_int(rc, -1, "a piece whose worst case passes the cap fails");
	is_int(e.code, AI_EX_OSERR, "with AI_EX_OSERR");
	ok(strstr(e.msg, "out of memory") != NULL, "and says so: %s", e.msg);
	is_int(b.len, 2, "leaving the output as it was");
	ok(!termsafe_pending(&t), "and carrying nothing from the failed piece");
	buf_release(&b);

	/* A flush that cannot grow keeps its carried bytes for a retry. */
	buf_init(&b, 0);
	termsafe_init(&t);
	is_int(termsafe_feed(&t, "\xe2", 1, &b, &e), 0, "a lead byte alone needs no output yet");
	is_int(b.len, 0, "and writes nothing");
	b.max = 2;
	is_int(termsafe_flush(&t, &b, &e), -1, "a flush that passes the cap fails");
	ok(termsafe_pending(&t), "and keeps the carried sequence");
	b.max = 0;
	is_int(termsafe_flush(&t, &b, &e), 0, "the flush retried with room succeeds");
	is_str(b.data, REPL, "and writes one U+FFFD");
	ok(!termsafe_pending(&t), "carrying nothing after");
	termsafe_feed(&t, "\xe2\x82", 2, &b, &e);
	termsafe_init(&t);
	ok(!termsafe_pending(&t), "init discards a carried tail");
	is_int(termsafe_feed(&t, NULL, 0, &b, &e), 0, "an empty piece is fine, even with no pointer");
	buf_release(&b);
}

int main(void)
{
	buf_init(&out, 0);
	test_plain();
	test_c0();
	test_line();
	test_sequences();
	test_c1();
	test_invalid();
	test_splits();
	test_random();
	test_failure();
	buf_release(&out);
	return tap_done();
}
