/* t_markdown - the streaming Markdown renderer: each construct, and output independent of the cuts. */
#include "markdown.h"
#include "tap.h"

#define BOLD "\033[0;1m"
#define RESET "\033[0m"

/* Renders s whole at width w, plain or with SGR; returns an owned string. */
static char *render_w(const char *s, int w, bool sgr)
{
	struct markdown m;
	struct buf out;
	struct ai_err e;

	buf_init(&out, 0);
	markdown_init(&m, w, sgr);
	if (markdown_feed(&m, s, strlen(s), &out, &e) || markdown_end(&m, &out, &e))
		buf_addstr(&out, "(failed)");
	markdown_release(&m);
	return buf_detach(&out, NULL);
}

/* Checks one rendering (plain, 40 columns) and frees it. */
static void plain(const char *in, const char *want, const char *what)
{
	char *got = render_w(in, 40, false);

	is_str(got, want, "%s", what);
	free(got);
}

static void sgr_is(const char *in, const char *want, const char *what)
{
	char *got = render_w(in, 40, true);

	is_str(got, want, "%s", what);
	free(got);
}

static void test_blocks(void)
{
	plain("# Title\n", "# Title\n", "a heading keeps its marks without SGR");
	sgr_is("# Title #\n", "\033[0;1;4;35mTitle" RESET "\n", "a level-1 heading: bold, underlined, closing #s gone");
	sgr_is("### C#\n", BOLD "C#" RESET "\n", "a heading's last word may end in '#'");
	plain("plain text\n", "plain text\n", "a paragraph line passes");
	plain("- one\n- two\n  - three\n", "\xe2\x80\xa2 one\n\xe2\x80\xa2 two\n  \xe2\x97\xa6 three\n",
	      "bullets, nested by indent");
	plain("1. a\n10) b\n", "1. a\n10) b\n", "ordered items keep their numbers");
	plain("- [ ] todo\n- [x] done\n", "\xe2\x80\xa2 \xe2\x98\x90 todo\n\xe2\x80\xa2 \xe2\x98\x91 done\n",
	      "task list boxes");
	plain("1. first\n   more\n", "1. first\n   more\n", "a continuation line is indented under its item");
	plain("> quoted\n> > deeper\n", "\xe2\x94\x82 quoted\n\xe2\x94\x82 \xe2\x94\x82 deeper\n", "block quotes, nested");
	plain("---\n", "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\n",
	      "a rule is the width of the terminal");
	plain("a\n\n\n\nb\n", "a\n\nb\n", "blank lines collapse to one");
	plain("\n\nfirst\n", "first\n", "leading blank lines are dropped");
}

static void test_code(void)
{
	char *got = render_w("```sh\n  ls -l | **x** `y`\n\tTAB\n```\nafter\n", 20, true);

	ok(strstr(got, "\n  ls -l | **x** `y`\n\tTAB\n") != NULL,
	   "code lines are written as they came, markup and tabs untouched");
	ok(strstr(got, " sh ") != NULL, "the language is shown");
	ok(strstr(got, "\033[0;2m\xe2\x94\x80\xe2\x94\x80 sh ") == got, "above the code, on a line of its own");
	free(got);
	got = render_w("```\nA \033[2J B\n```\n", 20, false);
	ok(strstr(got, "\nA \xef\xbf\xbd[2J B\n") != NULL, "an escape in a code line is not passed");
	free(got);
	got = render_w("- item\n  ```\n  code\n  ```\n", 40, false);
	ok(strstr(got, "\ncode\n") != NULL, "a fence's indent is taken off its lines");
	free(got);
	got = render_w("```\nnot closed", 40, false);
	ok(strstr(got, "\nnot closed") && got[strlen(got) - 1] == 'd', "an unclosed block ends with the text");
	free(got);
	got = render_w("````\n```\n````\nafter\n", 40, false);
	ok(strstr(got, "\n```\n") && strstr(got, "\nafter\n"), "a shorter fence inside is code");
	free(got);
}

static void test_inline(void)
{
	sgr_is("**b** *i* `c` ~~s~~\n",
	       BOLD "b" RESET " \033[0;3mi" RESET " \033[0;36mc" RESET " \033[0;9ms" RESET "\n",
	       "bold, italic, code, strikethrough");
	sgr_is("**a *b* c**\n", BOLD "a \033[0;1;3mb" BOLD " c" RESET "\n", "emphasis nests");
	sgr_is("***x***\n", "\033[0;1;3mx" RESET "\n", "bold italic from one run");
	plain("snake_case_name and 2 * 3 * 4\n", "snake_case_name and 2 * 3 * 4\n", "intraword _ and spaced * are text");
	plain("\\*not\\* `a*b*c`\n", "*not* a*b*c\n", "escapes and code spans are literal");
	plain("**open only\n", "**open only\n", "an unclosed run is text");
	plain("[site](https://x.org/a) and <https://y.org>\n",
	      "site (https://x.org/a) and https://y.org\n", "links as text plus URL, autolinks as the URL");
	plain("[https://z.org](https://z.org)\n", "https://z.org\n", "a link whose text is its URL is shown once");
	plain("![a cat](c.png)\n", "image: a cat (c.png)\n", "an image as its alt text and URL");
	sgr_is("**[t](u)**\n", "\033[0;1;4mt\033[0;1;2m (u)" RESET "\n", "emphasis around a link");
	plain("[x](u \"title\")\n", "x (u)\n", "a link's title is not shown");
	plain("`` a`b ``\n", "a`b\n", "a double-backtick span holds a backtick");
}

static void test_table(void)
{
	plain("| a | bb |\n|:-:|---:|\n| ccc | d |\n| e |\n\nafter\n",
	      " a  \xe2\x94\x82 bb\n"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\xbc\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\n"
	      "ccc \xe2\x94\x82  d\n"
	      " e  \xe2\x94\x82\n"
	      "\nafter\n", "a table aligned to its columns, centred and right");
	plain("a | b\nnot a delimiter row\n", "a | b\nnot a delimiter row\n", "a line with a bar and no table");
	plain("| x | `a|b` | y\n|--|--|--|\n", "x \xe2\x94\x82 a|b \xe2\x94\x82 y\n"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\xbc\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\xbc\xe2\x94\x80\xe2\x94\x80\n",
	      "a bar in a code span is not a cell edge; the last table is shown at the end");
	plain("| a | b |\n|---|---|\n| 1 | 2 |", "a \xe2\x94\x82 b\n"
	      "\xe2\x94\x80\xe2\x94\x80\xe2\x94\xbc\xe2\x94\x80\xe2\x94\x80\n1 \xe2\x94\x82 2",
	      "a table ending the text without a newline");
}

static void test_wrap(void)
{
	char *got = render_w("one two three four five six seven eight nine ten eleven twelve\n", 20, false);

	is_str(got, "one two three four \nfive six seven eight\nnine ten eleven \ntwelve\n",
	       "prose wraps at the width (a space that fits is written, invisible at the end)");
	free(got);
	got = render_w("- aaaa bbbb cccc dddd eeee ffff\n", 20, false);
	is_str(got, "\xe2\x80\xa2 aaaa bbbb cccc \n  dddd eeee ffff\n", "a list item wraps under its text");
	free(got);
	got = render_w("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 20, false);
	is_str(got, "xxxxxxxxxxxxxxxxxxxx\nxxxxxxxxxxxxxxxxxxxx\nxxxxxxxxxx\n", "a word longer than a line is broken");
	free(got);
	got = render_w("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n", 20, false);
	is_str(got, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n"
	       "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n", "wide characters count two columns");
	free(got);
	got = render_w("no newline at the end", 40, false);
	is_str(got, "no newline at the end", "no newline in, none out");
	free(got);
}

static void test_controls(void)
{
	char *got = render_w("a \033]52;c;x\007 [l\033[2Jk](u\033x) `\033`\n", 80, true);
	size_t esc = 0, sgr = 0;

	for (const char *p = got; (p = strchr(p, '\033')); p++) {
		esc++;
		if (p[1] == '[') {
			size_t k = strspn(p + 2, "0123456789;");

			sgr += p[2 + k] == 'm';
		}
	}
	is_int(esc, sgr, "every escape in the output is the renderer's own SGR");
	ok(strstr(got, "\xef\xbf\xbd]52;c;x\xef\xbf\xbd") != NULL, "a control in the text becomes U+FFFD");
	free(got);
}

/* What feeding s (no end) writes at once, plain, 40 columns; owned. */
static char *early(const char *s)
{
	struct markdown m;
	struct buf out;
	struct ai_err e;

	buf_init(&out, 0);
	markdown_init(&m, 40, false);
	if (markdown_feed(&m, s, strlen(s), &out, &e))
		buf_addstr(&out, "(failed)");
	markdown_release(&m);
	return buf_detach(&out, NULL);
}

static void early_is(const char *in, const char *want, const char *what)
{
	char *got = early(in);

	is_str(got, want, "%s", what);
	free(got);
}

static void test_early(void)
{
	early_is("one two thr", "one two ", "a paragraph is written a word at a time, before its newline");
	early_is("one **two** thr", "one two ", "emphasis closed is decided");
	early_is("see *this and", "see ", "not past an opener still open");
	early_is("a `code and", "a ", "nor an unclosed code span");
	early_is("a [link](http", "a ", "nor a link still coming");
	early_is("[1] is a note and", "[1] is a note ", "a bracket that cannot be a link does not wait");
	early_is("- item text and", "\xe2\x80\xa2 item text ", "a list item too");
	early_is("- ", "", "not before its marker is known");
	early_is("- - ", "", "a rule cannot be told from a list yet");
	early_is("# Heading and", "", "a heading waits for its newline");
	early_is("| a | b", "", "a table's row waits");
	early_is("```\nls -l", "\xe2\x94\x80\xe2\x94\x80 code \xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
		 "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
		 "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
		 "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80"
		 "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\nls -l", "a code line as it arrives");
	{
		char *fence = early("```\n");

		early_is("```\n``", fence, "not while it may be the closing fence");
		early_is("```\n```  ", fence, "nor with blanks after it");
		free(fence);
	}
}

static const char doc[] =
	"# Heading *one*\n\nSome **bold** text, `code`, ~~old~~ and a [link](https://e.com).\n"
	"- item one that is long enough to be wrapped at forty columns  \n  - nested\n"
	"1. first\n2. second\n\n> a quote with *emphasis*\n\n```c\nint main(void) { return 0; }\n```\n"
	"| h1 | h2 |\n|---|:-:|\n| a | **b** |\n| cc | d |\ntext | after\n---\n"
	"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 caf\xc3\xa9 done";

/* Feeds s in the pieces cut at cuts[0..ncut) and returns an owned rendering. */
static char *render_cut(const char *s, size_t n, const size_t *cuts, size_t ncut, int w)
{
	struct markdown m;
	struct buf out;
	struct ai_err e;
	size_t from = 0;

	buf_init(&out, 0);
	markdown_init(&m, w, true);
	m.look_ns = 0;          /* every piece looked at: the cuts are what is tested */
	for (size_t i = 0; i <= ncut; i++) {
		size_t to = i < ncut ? cuts[i] : n;

		if (markdown_feed(&m, s + from, to - from, &out, &e))
			buf_addstr(&out, "(failed)");
		from = to;
	}
	if (markdown_end(&m, &out, &e))
		buf_addstr(&out, "(failed)");
	markdown_release(&m);
	return buf_detach(&out, NULL);
}

static void test_splits(void)
{
	size_t n = strlen(doc), bad = 0, cuts[64];
	char *whole = render_cut(doc, n, NULL, 0, 40), *got;

	for (size_t c = 0; c <= n; c++) {
		got = render_cut(doc, n, &c, 1, 40);
		bad += strcmp(got, whole) != 0;
		free(got);
	}
	is_int(bad, 0, "cut in two at every byte boundary, the output is the same");
	{
		size_t *all = malloc(n * sizeof(*all));

		for (size_t i = 0; i < n; i++)
			all[i] = i;
		got = render_cut(doc, n, all, n, 40);
		is_str(got, whole, "fed one byte at a time, the output is the same");
		free(got);
		free(all);
	}
	srand(18);
	bad = 0;
	for (int r = 0; r < 500; r++) {
		size_t k = (size_t)rand() % 64, last = 0;

		for (size_t i = 0; i < k; i++) {
			last += (size_t)rand() % (n / 16 + 1);
			if (last > n)
				last = n;
			cuts[i] = last;
		}
		got = render_cut(doc, n, cuts, k, 40);
		bad += strcmp(got, whole) != 0;
		free(got);
	}
	is_int(bad, 0, "500 random cuttings give the same output");
	free(whole);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

static void test_long_line(void)
{
	size_t n = MARKDOWN_LINE_MAX * 2 + 100, bad = 0;
	char *s = malloc(n + 1), *whole, *got;

	for (size_t i = 0; i < n; i++)
		s[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 26);
	/* A 2-byte character across the point where the line is cut. */
	memcpy(s + MARKDOWN_LINE_MAX - 1, "\xc3\xa9", 2);
	s[n - 1] = '\n';
	s[n] = 0;
	whole = render_cut(s, n, NULL, 0, 80);
	ok(strstr(whole, "\xc3\xa9") != NULL, "a character at the cut stays whole");
	for (size_t c = MARKDOWN_LINE_MAX - 3; c <= MARKDOWN_LINE_MAX + 3; c++) {
		got = render_cut(s, n, &c, 1, 80);
		bad += strcmp(got, whole) != 0;
		free(got);
	}
	is_int(bad, 0, "a line over the limit is cut at the same place however it arrives");
	/* Exactly the limit, then the newline in the next piece. */
	s[MARKDOWN_LINE_MAX] = '\n';
	free(whole);
	whole = render_cut(s, MARKDOWN_LINE_MAX + 1, NULL, 0, 80);
	{
		size_t c = MARKDOWN_LINE_MAX;

		got = render_cut(s, MARKDOWN_LINE_MAX + 1, &c, 1, 80);
		is_str(got, whole, "a line of exactly the limit waits for its newline");
		free(got);
	}
	free(whole);
	/* The same line in a code block, written as it arrives, in pieces of 1000 bytes and odd cuts. */
	{
		char *c = malloc(n + 5);
		size_t cuts[200], k = 0;

		memcpy(c, "```\n", 4);
		memcpy(c + 4, s, n);
		c[4 + MARKDOWN_LINE_MAX] = 'x';
		c[n + 4] = 0;
		whole = render_cut(c, n + 4, NULL, 0, 80);
		for (size_t at = 1000; at < n + 4 && k < 150; at += 1000)
			cuts[k++] = at;
		for (size_t at = MARKDOWN_LINE_MAX + 1; at <= MARKDOWN_LINE_MAX + 6; at++)
			cuts[k++] = at;
		qsort(cuts, k, sizeof(*cuts), cmp_size);
		got = render_cut(c, n + 4, cuts, k, 80);
		is_str(got, whole, "a long code line written as it arrives is cut as when it comes whole");
		free(got);
		free(whole);
		free(c);
	}
	free(s);
}

int main(void)
{
	test_blocks();
	test_code();
	test_inline();
	test_table();
	test_wrap();
	test_early();
	test_controls();
	test_splits();
	test_long_line();
	return tap_done();
}
