/* t_chunk.c - unit tests of the text chunker and the token estimate. */
#include "ai.h"
#include "buf.h"
#include "chunk.h"
#include "utf8.h"
#include "tap.h"

#include <time.h>

static int is_ws(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Bytes of one character starting at s[i] (s valid UTF-8). */
static size_t char_len(const char *s, size_t i)
{
	unsigned char c = (unsigned char)s[i];

	return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
}

/*
 * Checks every promise chunk_text() makes about l for text[0..n) and
 * options o; returns a description of the first broken one, or NULL.
 * It reports one TAP line per call, not one per chunk.
 */
static const char *invariants(const char *text, size_t n, const struct chunk_opts *o,
			      const struct chunk_list *l)
{
	static char why[200];
	size_t target = o->target_tokens ? o->target_tokens : 1;
	size_t line = 1, lpos = 0, prev_off = 0, prev_end = 0;
	unsigned char *seen = calloc(1, n ? n : 1);
	const char *bad = NULL;

	if (!seen)
		return "calloc failed";
	for (size_t i = 0; i < l->n && !bad; i++) {
		const struct chunk *c = &l->v[i];
		size_t end = c->off + c->len;

		snprintf(why, sizeof why, "chunk %zu [%zu,+%zu): ", i, c->off, c->len);
		if (c->len == 0 || end > n)
			bad = "empty or out of range";
		else if (is_ws((unsigned char)text[c->off]) || is_ws((unsigned char)text[end - 1]))
			bad = "whitespace not trimmed";
		else if (utf8_valid_prefix(text + c->off, c->len) != c->len)
			bad = "not valid UTF-8 (split inside a character?)";
		else if (c->tokens != tok_estimate(text + c->off, c->len))
			bad = "tokens is not tok_estimate of the chunk";
		else if (c->tokens > target && c->len != char_len(text, c->off))
			bad = "over the target";
		else if (i > 0 && (c->off <= prev_off || end <= prev_end))
			bad = "does not move forward";
		else if (i > 0 && !o->overlap_tokens && c->off < prev_end)
			bad = "overlaps the one before without overlap";
		else if (!o->markdown && c->heading)
			bad = "heading path without markdown";
		if (bad)
			break;
		/* Line numbers: count forward from the last chunk start. */
		for (; lpos < c->off; lpos++)
			line += text[lpos] == '\n';
		{
			size_t le = line;

			for (size_t k = c->off; k < end; k++)
				le += text[k] == '\n';
			if (c->line_start != line || c->line_end != le) {
				bad = "wrong line range";
				break;
			}
		}
		memset(seen + c->off, 1, c->len);
		prev_off = c->off;
		prev_end = end;
	}
	for (size_t k = 0; k < n && !bad; k++) {
		if (!seen[k] && !is_ws((unsigned char)text[k])) {
			snprintf(why, sizeof why, "byte %zu: ", k);
			bad = "non-space byte in no chunk";
		}
	}
	free(seen);
	if (!bad)
		return NULL;
	{
		size_t w = strlen(why);

		snprintf(why + w, sizeof why - w, "%s", bad);
	}
	return why;
}

static int run(const char *text, size_t n, size_t target, size_t overlap, bool md,
	       struct chunk_list *l)
{
	struct chunk_opts o = { target, overlap, md };
	struct ai_err e;

	ai_err_clear(&e);
	return chunk_text(text, n, &o, l, &e);
}

/* Runs and checks the invariants; returns the number of chunks or -1. */
static long run_check(const char *text, size_t n, size_t target, size_t overlap, bool md,
		      const char **why)
{
	struct chunk_opts o = { target, overlap, md };
	struct chunk_list l;
	long cnt;

	*why = NULL;
	if (run(text, n, target, overlap, md, &l)) {
		*why = "chunk_text failed";
		return -1;
	}
	*why = invariants(text, n, &o, &l);
	cnt = (long)l.n;
	chunk_list_release(&l);
	return *why ? -1 : cnt;
}

static char *chunk_str(const char *text, const struct chunk *c)
{
	char *s = malloc(c->len + 1);

	if (!s)
		abort();
	memcpy(s, text + c->off, c->len);
	s[c->len] = '\0';
	return s;
}

/* Index of the chunk containing needle (first match), or -1. */
static long find_chunk(const char *text, const struct chunk_list *l, const char *needle)
{
	const char *p = strstr(text, needle);

	if (!p)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		size_t off = (size_t)(p - text);

		if (off >= l->v[i].off && off + strlen(needle) <= l->v[i].off + l->v[i].len)
			return (long)i;
	}
	return -1;
}

static uint32_t rng = 12345;

static uint32_t rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 16) & 0x7fff;
}

static const char *const words[] = {
	"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and",
	"then", "runs", "away", "from", "everything", "internationalisation", "it",
	"is", "not", "what", "we", "expected", "of", "tokens", "chunks", "x",
};

/* Appends prose: npara paragraphs of 1..maxs sentences of 3..14 words. */
static void gen_prose(struct buf *b, size_t npara, unsigned maxs)
{
	for (size_t p = 0; p < npara; p++) {
		unsigned ns = 1 + rnd() % maxs;

		for (unsigned s = 0; s < ns; s++) {
			unsigned nw = 3 + rnd() % 12;

			for (unsigned w = 0; w < nw; w++) {
				buf_addstr(b, words[rnd() % AI_ARRAY_LEN(words)]);
				buf_addch(b, w + 1 < nw ? ' ' : '.');
			}
			buf_addch(b, s + 1 < ns ? ' ' : '\n');
		}
		buf_addch(b, '\n');
	}
}

static void test_tok_estimate(void)
{
	static const char *const one[] = { "a", " ", "\n", ".", "é", "日", "😀", "_", "7" };
	const char *mixed = "Hello, world. Ça va? 日本語のテキスト。😀🎉 x = f(y);\r\n";
	size_t prev = 0;
	int mono = 1;

	is_int(tok_estimate("", 0), 0, "tok_estimate: empty is 0");
	is_int(tok_estimate(NULL, 0), 0, "tok_estimate: NULL with n 0 is 0");
	for (size_t i = 0; i < AI_ARRAY_LEN(one); i++)
		is_int(tok_estimate(one[i], strlen(one[i])), 1, "tok_estimate: one character '%s' is 1",
		       one[i][0] == '\n' ? "\\n" : one[i]);
	is_int(tok_estimate("Hello, world.", 13), 4, "tok_estimate: 'Hello, world.' is 4");
	/* 9 words + 1 full stop: 12 + 1; real tokenizers say about 10. */
	is_int(tok_estimate("The quick brown fox jumps over the lazy dog.", 44), 13,
	       "tok_estimate: a pangram over-estimates (13)");
	ok(tok_estimate("日本語のテキスト", strlen("日本語のテキスト")) >= 8,
	   "tok_estimate: CJK counts at least one token a character");
	ok(tok_estimate("for (int i = 0; i < n; i++) {", 29) >= 14,
	   "tok_estimate: code counts its symbols");
	ok(tok_estimate("                                ", 32) >= 8,
	   "tok_estimate: whitespace is not free");
	for (size_t k = 1; k <= strlen(mixed); k++) {
		size_t t = tok_estimate(mixed, k);

		if (t < prev || t == 0)
			mono = 0;
		prev = t;
	}
	ok(mono, "tok_estimate: non-zero and monotone over every prefix of mixed text");
	ok(tok_estimate("abc def", 3) < tok_estimate("abc def", 7),
	   "tok_estimate: reads only n bytes");
}

static void test_empty(void)
{
	struct chunk_list l = { (struct chunk *)1, 99 };
	struct ai_err e;
	struct chunk_opts o = { 10, 0, false };

	is_int(run("", 0, 10, 0, false, &l), 0, "empty: returns 0");
	ok(l.n == 0 && l.v == NULL, "empty: zero chunks");
	chunk_list_release(&l);
	is_int(run(NULL, 0, 10, 0, true, &l), 0, "empty: NULL text with n 0 is fine");
	ok(l.n == 0, "empty: NULL text gives zero chunks");
	is_int(run(" \n\t\r\n  \f\v\n", 10, 10, 3, true, &l), 0, "whitespace only: returns 0");
	ok(l.n == 0 && l.v == NULL, "whitespace only: zero chunks");
	chunk_list_release(&l);
	chunk_list_release(&l);
	ok(1, "chunk_list_release twice is harmless");
	chunk_list_release(NULL);

	ai_err_clear(&e);
	is_int(chunk_text("x", 1, NULL, &l, &e), -1, "no options: -1");
	ok(e.msg[0] != '\0' && l.n == 0, "no options: error message, empty list");
	ai_err_clear(&e);
	is_int(chunk_text(NULL, 5, &o, &l, &e), -1, "NULL text with n > 0: -1");
}

static void test_short(void)
{
	const char *t = "\n\n  Hello world.\nSecond line.\n\n";
	struct chunk_list l;
	char *s;

	is_int(run(t, strlen(t), 100, 0, false, &l), 0, "short: returns 0");
	is_int(l.n, 1, "short: one chunk");
	if (l.n != 1)
		return;
	s = chunk_str(t, &l.v[0]);
	is_str(s, "Hello world.\nSecond line.", "short: trimmed text");
	is_int(l.v[0].off, 4, "short: offset");
	is_int(l.v[0].line_start, 3, "short: line_start");
	is_int(l.v[0].line_end, 4, "short: line_end");
	is_int(l.v[0].tokens, tok_estimate(s, strlen(s)), "short: tokens");
	ok(l.v[0].heading == NULL, "short: no heading");
	free(s);
	chunk_list_release(&l);
	ok(l.v == NULL && l.n == 0, "release empties the list");

	is_int(run("x", 1, 1, 0, false, &l), 0, "one byte, target 1");
	ok(l.n == 1 && l.v[0].off == 0 && l.v[0].len == 1 && l.v[0].line_end == 1,
	   "one byte: one chunk [0,1) on line 1");
	chunk_list_release(&l);
	is_int(run("a b", 3, 0, 0, false, &l), 0, "target 0 is taken as 1");
	is_int(l.n, 2, "target 0: one chunk a word");
	chunk_list_release(&l);
}

/* Whole paragraphs packed greedily: each chunk could not take the next paragraph. */
static void test_paragraphs(void)
{
	struct buf b;
	struct chunk_list l;
	const char *why;
	int greedy = 1, at_para = 1, inorder = 1;
	struct buf cat, ref;

	buf_init(&b, 0);
	gen_prose(&b, 300, 3);
	run_check(b.data, b.len, 120, 0, false, &why);
	ok(!why, "paragraphs: invariants (%s)", why ? why : "all hold");
	if (run(b.data, b.len, 120, 0, false, &l))
		return;
	ok(l.n > 10, "paragraphs: %zu chunks for %zu bytes", l.n, b.len);
	for (size_t i = 0; i + 1 < l.n; i++) {
		const struct chunk *c = &l.v[i], *d = &l.v[i + 1];
		const char *pend = strstr(b.data + d->off, "\n\n");
		size_t np = pend ? (size_t)(pend - b.data) : b.len;
		size_t end = c->off + c->len;

		/* The generated paragraphs are all smaller than the target. */
		if (tok_estimate(b.data + c->off, np - c->off) <= 120)
			greedy = 0;
		if (strncmp(b.data + end, "\n\n", 2) != 0)
			at_para = 0;
	}
	ok(greedy, "paragraphs: greedy, the next paragraph never fitted");
	ok(at_para, "paragraphs: every chunk ends at a paragraph end");

	/* Without overlap the chunks hold all the non-space bytes, in order. */
	buf_init(&cat, 0);
	buf_init(&ref, 0);
	for (size_t i = 0; i < l.n; i++)
		for (size_t k = l.v[i].off; k < l.v[i].off + l.v[i].len; k++)
			if (!is_ws((unsigned char)b.data[k]))
				buf_addch(&cat, b.data[k]);
	for (size_t k = 0; k < b.len; k++)
		if (!is_ws((unsigned char)b.data[k]))
			buf_addch(&ref, b.data[k]);
	inorder = cat.len == ref.len && memcmp(cat.data, ref.data, cat.len) == 0;
	ok(inorder, "paragraphs: concatenated chunks = the non-space input, in order");
	buf_release(&cat);
	buf_release(&ref);
	chunk_list_release(&l);

	/* One big paragraph is split at sentence ends. */
	buf_reset(&b);
	rng = 7;
	for (int s = 0; s < 60; s++) {
		buf_addstr(&b, s ? " " : "");
		for (int w = 0; w < 8; w++) {
			buf_addstr(&b, w ? " " : "");
			buf_addstr(&b, words[rnd() % AI_ARRAY_LEN(words)]);
		}
		buf_addch(&b, s % 3 ? '.' : '?');
	}
	if (run(b.data, b.len, 40, 0, false, &l) == 0) {
		int sent = 1;

		for (size_t i = 0; i + 1 < l.n; i++) {
			char last = b.data[l.v[i].off + l.v[i].len - 1];

			if (last != '.' && last != '?')
				sent = 0;
		}
		ok(l.n > 5 && sent, "big paragraph: %zu chunks, each ends a sentence", l.n);
		chunk_list_release(&l);
	}
	/*
	 * A short paragraph before one too big for any chunk: the chunk is
	 * filled with the big one's first sentences rather than left nearly
	 * empty; a paragraph that fits a chunk of its own moves whole.
	 */
	{
		const char *t = "Short intro.\n\nOne two three four. Five six seven eight. "
				"Nine ten eleven twelve. Thirteen fourteen fifteen sixteen. "
				"Seventeen eighteen nineteen twenty.\n\nTail.";
		char *s;

		if (run(t, strlen(t), 24, 0, false, &l) == 0 && l.n >= 2) {
			s = chunk_str(t, &l.v[0]);
			is_str(s, "Short intro.\n\nOne two three four. Five six seven eight. "
			       "Nine ten eleven twelve.", "half-empty chunk filled from a paragraph too big");
			free(s);
		}
		chunk_list_release(&l);
		if (run(t, strlen(t), 40, 0, false, &l) == 0 && l.n >= 2) {
			s = chunk_str(t, &l.v[0]);
			is_str(s, "Short intro.", "a paragraph that fits a chunk moves whole");
			free(s);
		}
		chunk_list_release(&l);
	}
	/* Hard-wrapped prose prefers a line end that closes a sentence. */
	{
		const char *t = "one two three four five six seven\neight nine. ten eleven\n"
				"twelve thirteen fourteen fifteen sixteen";
		char *s;

		if (run(t, strlen(t), 25, 0, false, &l) == 0 && l.n >= 2) {
			s = chunk_str(t, &l.v[0]);
			is_str(s, "one two three four five six seven", "line end beats a sentence end mid-line");
			free(s);
		}
		chunk_list_release(&l);
	}
	buf_release(&b);
}

static void test_long_word(void)
{
	struct buf b;
	const char *why;
	struct chunk_list l;
	int all_valid = 1;
	long cnt;

	buf_init(&b, 0);
	for (int i = 0; i < 400; i++)
		buf_addstr(&b, "x");
	cnt = run_check(b.data, b.len, 10, 0, false, &why);
	ok(!why, "long ASCII word: invariants (%s)", why ? why : "all hold");
	is_int(cnt, 10, "long ASCII word: 400 bytes at 40 a chunk");

	buf_reset(&b);
	buf_addstr(&b, "start ");
	for (int i = 0; i < 200; i++)
		buf_addstr(&b, i % 3 == 0 ? "é" : i % 3 == 1 ? "日本" : "😀");
	buf_addstr(&b, " end");
	for (size_t target = 1; target <= 12; target++) {
		if (run(b.data, b.len, target, 0, false, &l))
			all_valid = 0;
		for (size_t i = 0; i < l.n; i++)
			if (utf8_valid_prefix(b.data + l.v[i].off, l.v[i].len) != l.v[i].len ||
			    l.v[i].tokens > target)
				all_valid = 0;
		chunk_list_release(&l);
	}
	ok(all_valid, "long multi-byte word: every piece valid UTF-8 and within target 1..12");
	buf_release(&b);
}

static void test_multibyte(void)
{
	const char *t =
		"Café naïve résumé — “quoted”.\n日本語のテキストです。とても長い文章を書きます！"
		"次の文は？ 😀🎉👨‍👩‍👧 emoji, and ÿ€𐍈 high bytes.\n\n"
		"Ελληνικά κείμενα εδώ. Кириллица тоже. 한국어 문장입니다.\n";
	const char *why = NULL;
	size_t bad_target = 0, bad_ov = 0;
	bool md = false;

	for (size_t target = 1; target <= 50 && !why; target++) {
		static const size_t ovs[] = { 0, 1, 3, 10, 1000 };

		for (size_t k = 0; k < AI_ARRAY_LEN(ovs) && !why; k++) {
			md = !md;
			run_check(t, strlen(t), target, ovs[k], md, &why);
			bad_target = target;
			bad_ov = ovs[k];
		}
	}
	ok(!why, "multi-byte text, targets 1..50, overlaps 0..1000: never split a character%s%s",
	   why ? ": " : "", why ? why : "");
	if (why)
		printf("#   target %zu overlap %zu\n", bad_target, bad_ov);

	/* High bytes only, no ASCII at all: still valid pieces. */
	{
		struct buf b;
		long cnt;

		buf_init(&b, 0);
		for (int i = 0; i < 100; i++)
			buf_addstr(&b, "ÿ€𐍈\xc2\x80\xf4\x8f\xbf\xbf");
		cnt = run_check(b.data, b.len, 7, 2, false, &why);
		ok(!why && cnt > 50, "high bytes only (U+0080, U+10FFFF...): %ld chunks, %s", cnt,
		   why ? why : "invariants hold");
		buf_release(&b);
	}
	/* Chinese with sentence ends and no spaces breaks after 。 */
	{
		const char *z = "这是第一句话。这是第二句话。这是第三句话。";
		struct chunk_list l;

		if (run(z, strlen(z), 9, 0, false, &l) == 0) {
			char *s = l.n ? chunk_str(z, &l.v[0]) : NULL;

			is_int(l.n, 3, "CJK: three sentences at target 9 give three chunks");
			is_str(s, "这是第一句话。", "CJK: broken after 。");
			free(s);
			chunk_list_release(&l);
		}
	}
}

static void test_overlap(void)
{
	struct buf b;
	struct chunk_list l, l2;
	const char *why;
	int shared = 1, word_start = 1, same = 1;
	size_t total_shared = 0;

	buf_init(&b, 0);
	rng = 99;
	gen_prose(&b, 40, 8);

	run_check(b.data, b.len, 60, 10, false, &why);
	ok(!why, "overlap 10 of 60: invariants (%s)", why ? why : "all hold");
	if (run(b.data, b.len, 60, 10, false, &l))
		return;
	for (size_t i = 0; i + 1 < l.n; i++) {
		const struct chunk *c = &l.v[i], *d = &l.v[i + 1];
		size_t end = c->off + c->len;

		if (d->off >= end) {
			shared = 0;
			continue;
		}
		total_shared += tok_estimate(b.data + d->off, end - d->off);
		if (!is_ws((unsigned char)b.data[d->off - 1]))
			word_start = 0;
	}
	ok(shared, "overlap: every chunk shares text with the one before");
	ok(word_start, "overlap: every overlap starts at a word");
	ok(l.n > 1 && total_shared / (l.n - 1) >= 5 && total_shared / (l.n - 1) <= 10,
	   "overlap: about 5..10 tokens shared on average (%zu)",
	   l.n > 1 ? total_shared / (l.n - 1) : 0);
	chunk_list_release(&l);

	/* overlap >= target is clamped to target / 2 and terminates. */
	run_check(b.data, b.len, 40, 40, false, &why);
	ok(!why, "overlap = target: terminates, invariants (%s)", why ? why : "all hold");
	run_check(b.data, b.len, 40, SIZE_MAX, true, &why);
	ok(!why, "overlap = SIZE_MAX: terminates, invariants (%s)", why ? why : "all hold");
	if (run(b.data, b.len, 40, 1000, false, &l) == 0 && run(b.data, b.len, 40, 20, false, &l2) == 0) {
		same = l.n == l2.n;
		for (size_t i = 0; same && i < l.n; i++)
			same = l.v[i].off == l2.v[i].off && l.v[i].len == l2.v[i].len;
		ok(same, "overlap 1000 of 40 behaves as 20 (%zu chunks)", l.n);
		chunk_list_release(&l);
		chunk_list_release(&l2);
	}
	/* Overlap target - 1 still moves forward and ends. */
	run_check(b.data, b.len, 30, 29, false, &why);
	ok(!why, "overlap = target - 1: terminates, invariants (%s)", why ? why : "all hold");
	/* Spaceless text overlaps at character boundaries. */
	{
		const char *z = "这是第一句话这是第二句话这是第三句话这是第四句话";

		if (run(z, strlen(z), 8, 3, false, &l) == 0) {
			ok(l.n > 1 && l.v[1].off < l.v[0].off + l.v[0].len,
			   "overlap: text without spaces overlaps too");
			chunk_list_release(&l);
		}
	}
	buf_release(&b);
}

static const char md_doc[] =
	"# Intro\n"
	"Some text about the tool, long enough to matter here.\n"
	"\n"
	"## Install\n"
	"### Debian\n"
	"Run apt-get install ai-tools as root, then check the version.\n"
	"\n"
	"```sh\n"
	"# not a heading, a shell comment\n"
	"\n"
	"echo hi from the fenced block\n"
	"```\n"
	"\n"
	"## Use  ##\n"
	"Run it with a file. It reads stdin otherwise.\n"
	"\n"
	"Setext Title\n"
	"============\n"
	"Body of the setext section.\n"
	"\n"
	"Sub title\n"
	"---------\n"
	"Body of the sub section.\n"
	"- item\n"
	"---\n"
	"Tail text.\n";

static void test_markdown(void)
{
	const size_t n = sizeof md_doc - 1;
	struct chunk_list l;
	const char *why;
	long i;
	int no_lone_head = 1, no_fake = 1, mid_head = 0;

	for (size_t target = 1; target <= 80; target++) {
		run_check(md_doc, n, target, target / 6, true, &why);
		if (why) {
			printf("#   target %zu\n", target);
			break;
		}
	}
	ok(!why, "markdown: invariants at targets 1..80 (%s)", why ? why : "all hold");
	for (size_t target = 8; target <= 60; target++) {
		if (run(md_doc, n, target, target / 3, true, &l))
			break;
		for (size_t k = 1; k < l.n; k++) {
			size_t ls = l.v[k].off;

			while (ls > 0 && md_doc[ls - 1] != '\n')
				ls--;
			/* Only a heading too long for one chunk may be cut inside. */
			if (md_doc[ls] == '#' && ls != l.v[k].off &&
			    strncmp(md_doc + ls, "# not a heading", 15) != 0 &&
			    tok_estimate(md_doc + ls, strcspn(md_doc + ls, "\n")) <= target)
				mid_head++;
		}
		chunk_list_release(&l);
	}
	is_int(mid_head, 0, "markdown: no overlap starts inside a heading line");

	if (run(md_doc, n, 30, 0, true, &l))
		return;
	i = find_chunk(md_doc, &l, "apt-get");
	ok(i >= 0, "markdown: 'apt-get' in one chunk");
	if (i >= 0)
		is_str(l.v[i].heading, "Intro > Install > Debian", "markdown: heading path A > B > C");
	i = find_chunk(md_doc, &l, "echo hi");
	ok(i >= 0, "markdown: 'echo hi' in one chunk");
	if (i >= 0)
		is_str(l.v[i].heading, "Intro > Install > Debian", "markdown: '#' in a fence is no heading");
	i = find_chunk(md_doc, &l, "Run it with");
	if (i >= 0)
		is_str(l.v[i].heading, "Intro > Use", "markdown: closing '#'s dropped from the title");
	else
		ok(0, "markdown: 'Run it with' in one chunk");
	i = find_chunk(md_doc, &l, "Body of the setext");
	if (i >= 0)
		is_str(l.v[i].heading, "Setext Title", "markdown: setext '=' heading is level 1");
	else
		ok(0, "markdown: setext body in one chunk");
	i = find_chunk(md_doc, &l, "Body of the sub");
	if (i >= 0)
		is_str(l.v[i].heading, "Setext Title > Sub title", "markdown: setext '-' heading is level 2");
	else
		ok(0, "markdown: sub body in one chunk");
	i = find_chunk(md_doc, &l, "Tail text");
	if (i >= 0)
		is_str(l.v[i].heading, "Setext Title > Sub title", "markdown: '---' after a list item is no heading");
	else
		ok(0, "markdown: tail in one chunk");
	is_str(l.v[0].heading, "Intro", "markdown: the first chunk is under its own heading");

	{
		static const char *const starts[] = {
			"# Intro", "## Install", "```sh", "## Use", "Setext Title", "Sub title",
		};
		int fine = l.n == AI_ARRAY_LEN(starts);

		for (size_t k = 0; fine && k < l.n; k++)
			fine = strncmp(md_doc + l.v[k].off, starts[k], strlen(starts[k])) == 0;
		ok(fine, "markdown: sections and the fenced block packed whole, %zu chunks", l.n);
	}
	for (size_t k = 0; k < l.n; k++) {
		const char *s = md_doc + l.v[k].off;
		const char *last_nl = NULL;

		/* No chunk ends with a heading line: a heading sticks to its body. */
		for (const char *p = s; p < s + l.v[k].len; p++)
			if (*p == '\n')
				last_nl = p;
		if (last_nl && last_nl[1] == '#')
			no_lone_head = 0;
		if (l.v[k].heading && strstr(l.v[k].heading, "not a heading"))
			no_fake = 0;
	}
	ok(no_lone_head, "markdown: no chunk ends with a heading line");
	ok(no_fake, "markdown: no heading path from inside a fence");
	chunk_list_release(&l);

	/* Sections that fit are packed whole and broken before headings. */
	{
		static const char doc[] =
			"# A\none two three four five.\n\nsix seven.\n"
			"# B\neight nine ten eleven.\n\ntwelve.\n"
			"# C\nthirteen fourteen.\n";

		if (run(doc, sizeof doc - 1, 15, 5, true, &l) == 0) {
			int heads = l.n == 3;

			for (size_t k = 0; heads && k < l.n; k++)
				heads = doc[l.v[k].off] == '#';
			ok(heads, "markdown: three sections, three chunks, each from its heading, "
			   "no overlap across headings (%zu chunks)", l.n);
			if (l.n == 3) {
				is_str(l.v[1].heading, "B", "markdown: level-1 heading replaces the last");
			}
			chunk_list_release(&l);
		}
		if (run(doc, sizeof doc - 1, 25, 5, false, &l) == 0) {
			ok(l.n >= 1 && l.v[0].heading == NULL, "markdown off: no heading path");
			chunk_list_release(&l);
		}
	}
	/* A short section before a big one stays alone: sections are kept apart. */
	{
		static const char doc[] =
			"# A\nShort.\n\n# B\nOne two three four. Five six seven eight. "
			"Nine ten eleven twelve. Thirteen fourteen fifteen sixteen.\n";
		char *s;

		if (run(doc, sizeof doc - 1, 20, 0, true, &l) == 0 && l.n >= 2) {
			s = chunk_str(doc, &l.v[0]);
			is_str(s, "# A\nShort.", "markdown: a short section is not filled from the next");
			free(s);
			is_str(l.v[1].heading, "B", "markdown: the big section starts its own chunk");
		}
		chunk_list_release(&l);
	}
	/* A fence never closed runs to the end; '#' after it is still code. */
	{
		static const char doc[] = "# Top\n\n~~~\n# fake\n\n# fake too\n";

		if (run(doc, sizeof doc - 1, 4, 0, true, &l) == 0) {
			int fine = 1;

			for (size_t k = 0; k < l.n; k++)
				if (!l.v[k].heading || strcmp(l.v[k].heading, "Top"))
					fine = 0;
			ok(fine && l.n > 1, "markdown: unclosed fence, every chunk under 'Top'");
			chunk_list_release(&l);
		}
	}
}

static void test_crlf(void)
{
	const char *t = "line one.\r\nline two.\r\n\r\npara two is here.\r\n\r\n# H\r\nbody.\r\n";
	struct chunk_list l;
	const char *why;
	char *s;

	run_check(t, strlen(t), 8, 0, true, &why);
	ok(!why, "CRLF: invariants (%s)", why ? why : "all hold");
	if (run(t, strlen(t), 8, 0, true, &l) || l.n < 3)
		return;
	s = chunk_str(t, &l.v[0]);
	is_str(s, "line one.\r\nline two.", "CRLF: first paragraph, no trailing \\r");
	free(s);
	is_int(l.v[0].line_start, 1, "CRLF: line_start");
	is_int(l.v[0].line_end, 2, "CRLF: line_end");
	is_int(l.v[1].line_start, 4, "CRLF: second chunk on line 4");
	is_str(l.v[l.n - 1].heading, "H", "CRLF: heading title without \\r");
	chunk_list_release(&l);
}

static void test_lines(void)
{
	const char *t = "a\nb\n\nc d e\n\n\n\nf\ng";
	struct chunk_list l;

	if (run(t, strlen(t), 4, 0, false, &l))
		return;
	is_int(l.n, 3, "lines: three chunks");
	if (l.n == 3) {
		ok(l.v[0].line_start == 1 && l.v[0].line_end == 2, "lines: chunk 1 is lines 1-2");
		ok(l.v[1].line_start == 4 && l.v[1].line_end == 4, "lines: chunk 2 is line 4");
		ok(l.v[2].line_start == 8 && l.v[2].line_end == 9, "lines: chunk 3 is lines 8-9");
	}
	chunk_list_release(&l);
}

/* Random texts from awkward pieces, every combination of options. */
static void test_random(void)
{
	static const char *const pieces[] = {
		"word", " ", " ", "\n", "\n\n", ". ", "! ", "é", "日本", "😀", "# ", "## T\n",
		"```\n", "~~~\n", "\r\n", "\t", "---\n", "===\n", "supercalifragilistic",
		"。", "？", "\"", ")", "-", "x", "  \n  ",
	};
	struct buf b;
	const char *why = NULL;
	size_t runs = 0;

	buf_init(&b, 0);
	rng = 2024;
	for (int iter = 0; iter < 300 && !why; iter++) {
		size_t np = rnd() % 120;

		buf_reset(&b);
		for (size_t p = 0; p < np; p++)
			buf_addstr(&b, pieces[rnd() % AI_ARRAY_LEN(pieces)]);
		for (int v = 0; v < 6 && !why; v++) {
			size_t target = 1 + rnd() % 40;
			size_t ov = v % 3 == 0 ? 0 : rnd() % (target + 3);

			run_check(b.len ? b.data : "", b.len, target, ov, v & 1, &why);
			runs++;
			if (why)
				printf("#   iter %d target %zu overlap %zu md %d\n", iter, target, ov, v & 1);
		}
	}
	ok(!why, "random texts: invariants in %zu runs (%s)", runs, why ? why : "all hold");
	buf_release(&b);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_speed(void)
{
	struct buf b;
	struct chunk_list l;
	const char *why;
	double t0, dt, mbs;
	static const struct { size_t target, ov; bool md; const char *name; } cfg[] = {
		{ 2000, 0, false, "summarize-like, target 2000, no overlap" },
		{ 512, 77, true, "index-like, target 512, overlap 77, markdown" },
	};

	buf_init(&b, 0);
	rng = 1;
	while (b.len < 10 * 1000 * 1000) {
		if (rnd() % 20 == 0)
			buf_addstr(&b, "## A section heading\n\n");
		gen_prose(&b, 1, 6);
	}
	for (size_t k = 0; k < AI_ARRAY_LEN(cfg); k++) {
		t0 = now();
		if (run(b.data, b.len, cfg[k].target, cfg[k].ov, cfg[k].md, &l)) {
			ok(0, "speed: chunk_text failed");
			continue;
		}
		dt = now() - t0;
		mbs = (double)b.len / 1e6 / (dt > 1e-9 ? dt : 1e-9);
		printf("# speed: %.1f MB in %.3f s = %.0f MB/s, %zu chunks (%s)\n",
		       (double)b.len / 1e6, dt, mbs, l.n, cfg[k].name);
		ok(l.n > 0, "speed: 10 MB chunked (%s)", cfg[k].name);
		chunk_list_release(&l);
		run_check(b.data, b.len, cfg[k].target, cfg[k].ov, cfg[k].md, &why);
		ok(!why, "speed: invariants on 10 MB (%s)", why ? why : "all hold");
	}
	t0 = now();
	{
		volatile size_t sink = tok_estimate(b.data, b.len);

		(void)sink;
	}
	dt = now() - t0;
	printf("# speed: tok_estimate %.0f MB/s\n", (double)b.len / 1e6 / (dt > 1e-9 ? dt : 1e-9));
	buf_release(&b);
}

int main(void)
{
	test_tok_estimate();
	test_empty();
	test_short();
	test_paragraphs();
	test_long_word();
	test_multibyte();
	test_overlap();
	test_markdown();
	test_crlf();
	test_lines();
	test_random();
	test_speed();
	return tap_done();
}
