#include "markdown.h"

#include <time.h>

/*
 * Why not md4c: md_parse() takes a whole document and reports its blocks
 * only once it has read them all; there is no way to feed it a piece and
 * learn that a line is decided.  Calling it again on every line would
 * parse the answer again and again (quadratic on a long answer), and
 * calling it on one line's text alone lets its block parser take the
 * text for a block ("1. x", "# x", four spaces) that this renderer has
 * already decided is not one.  The inline part it would serve is small:
 * it is written here and fuzzed (tests/fuzz/fuzz_markdown.c).
 */

/* The style of one byte of a rendered line. */
enum {
	ST_BOLD = 1, ST_ITALIC = 2, ST_UNDER = 4, ST_STRIKE = 8,
	ST_CODE = 16, ST_DIM = 32, ST_HEAD = 64
};

enum tok_kind { T_TEXT, T_CODE, T_DELIM, T_LINK_START, T_LINK_END, T_URL };

/* A piece of a line for the inline parser: text, a code span, a run of *, _ or ~, a link's ends. */
struct tok {
	uint32_t off, len;      /* the bytes in the line: text, code, the run, the URL */
	uint32_t left;          /* T_DELIM: how many of the run are still text */
	uint8_t kind;
	char ch;
	bool open, close;       /* T_DELIM: can open or close emphasis */
	bool image;             /* T_LINK_*: an image: its alt text is shown */
	bool same;              /* T_LINK_END: the text is the URL itself, shown once */
};

/* Emphasis counters per token: how many bold, italic and struck pairs enclose it. */
struct cnt {
	int32_t b, i, s;
};

static void md_add(struct markdown *m, struct buf *out, const void *p, size_t n)
{
	/* Most adds are a few bytes into room already there: no call to buf_add for those. */
	if (n < out->alloc - out->len && (!out->max || n <= out->max - out->len)) {
		if (n)
			memcpy(out->data + out->len, p, n);
		out->len += n;
		out->data[out->len] = 0;
		return;
	}
	if (buf_add(out, p, n))
		m->fail = true;
}

static void md_addstr(struct markdown *m, struct buf *out, const char *s)
{
	md_add(m, out, s, strlen(s));
}

static void spaces(struct markdown *m, struct buf *out, int n)
{
	if (n <= 0)
		return;
	if (buf_grow(out, (size_t)n)) {
		m->fail = true;
		return;
	}
	memset(out->data + out->len, ' ', (size_t)n);
	out->len += (size_t)n;
	out->data[out->len] = 0;
}

/* n box-drawing dashes U+2500, grown once rather than three bytes at a time. */
static void dash_run(struct markdown *m, struct buf *out, int n)
{
	if (n <= 0)
		return;
	if (buf_grow(out, 3 * (size_t)n)) {
		m->fail = true;
		return;
	}
	for (int i = 0; i < n; i++)
		memcpy(out->data + out->len + 3 * (size_t)i, "\xe2\x94\x80", 3);
	out->len += 3 * (size_t)n;
	out->data[out->len] = 0;
}

/* The length of the UTF-8 sequence at s[0..n), or 1 for a byte that does not start a whole one. */
static size_t u8len(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t k;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, c &= 0x07;
	else
		goto bad;
	if (k > n)
		goto bad;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3f);
	}
	*cp = c;
	return k;
bad:
	*cp = 0xfffd;
	return 1;
}

/* The longest prefix of s[0..n) that does not end inside a UTF-8 sequence (s may be any bytes). */
static size_t cut_chars(const char *s, size_t n)
{
	size_t i = n, k = 0;

	while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--, k++;
	if (i > 0 && (unsigned char)s[i - 1] >= 0xc0) {
		uint32_t cp;

		if (u8len((const unsigned char *)s + i - 1, n - i + 1, &cp) == 1 && k < 3 &&
		    (unsigned char)s[i - 1] >= 0xc2 && (unsigned char)s[i - 1] <= 0xf4)
			return i - 1;
	}
	return n;
}

/* Columns a character takes: 0 for combining marks, 2 for East Asian wide ones and emoji. */
static int cpwidth(uint32_t c)
{
	if (c < 0x300)
		return 1;
	if ((c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200f) ||
	    (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe00 && c <= 0xfe0f))
		return 0;
	if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
	    (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
	    (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
	    (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
	    (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd))
		return 2;
	return 1;
}

static int strwidth(const char *s, size_t n)
{
	int w = 0;
	uint32_t cp;

	for (size_t i = 0; i < n;) {
		if ((unsigned char)s[i] < 0x80) {
			i++, w++;
			continue;
		}
		i += u8len((const unsigned char *)s + i, n - i, &cp);
		w += cpwidth(cp);
	}
	return w;
}

/* Switches the terminal from style cur to style to: one SGR sequence, or nothing when plain. */
static void sgr(struct markdown *m, struct buf *out, unsigned cur, unsigned to)
{
	/* Built by hand: this runs at every change of style, and snprintf showed in the profile. */
	static const struct { unsigned bit; char code[4]; size_t len; } attr[] = {
		{ ST_BOLD, ";1", 2 }, { ST_DIM, ";2", 2 }, { ST_ITALIC, ";3", 2 }, { ST_UNDER, ";4", 2 },
		{ ST_STRIKE, ";9", 2 }, { ST_CODE, ";36", 3 }, { ST_HEAD, ";35", 3 }
	};
	char t[32] = "\033[0";
	size_t n = 3;

	if (!m->sgr || cur == to)
		return;
	for (size_t i = 0; i < AI_ARRAY_LEN(attr); i++) {
		/* Code's colour wins over a heading's. */
		if (!(to & attr[i].bit) || (attr[i].bit == ST_HEAD && (to & ST_CODE)))
			continue;
		memcpy(t + n, attr[i].code, attr[i].len);
		n += attr[i].len;
	}
	t[n++] = 'm';
	md_add(m, out, t, n);
}

/*
 * Appends s[0..n) to the rendered line in style st.  A control character
 * (termsafe.h has already shown the model's own as pictures) becomes
 * U+FFFD, and a tab a space, so that the width is known.
 */
static void vis_add(struct markdown *m, const char *s, size_t n, unsigned st)
{
	char *v, *y;
	size_t i;

	/*
	 * Room for the worst case first (3 bytes for each control), then plain
	 * stores.  vis and sty have no cap: room already there needs no call.
	 */
	if (n > SIZE_MAX / 4 ||
	    (3 * n >= m->vis.alloc - m->vis.len && buf_grow(&m->vis, 3 * n)) ||
	    (3 * n >= m->sty.alloc - m->sty.len && buf_grow(&m->sty, 3 * n))) {
		m->fail = true;
		return;
	}
	v = m->vis.data + m->vis.len;
	y = m->sty.data + m->sty.len;
	/* Printable ASCII and UTF-8 up to the first control character are copied at once. */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			break;
	if (i) {
		memcpy(v, s, i);
		v += i;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != 0x7f) {
			*v++ = (char)c;
		} else if (c == '\t') {
			*v++ = m->tab_space ? ' ' : '\t';
		} else {
			memcpy(v, "\xef\xbf\xbd", 3);
			v += 3;
		}
	}
	memset(y, (int)st, (size_t)(v - (m->vis.data + m->vis.len)));
	y += v - (m->vis.data + m->vis.len);
	m->vis.len = (size_t)(v - m->vis.data);
	m->sty.len = (size_t)(y - m->sty.data);
	*v = 0;
	*y = 0;
}

static bool is_punct(unsigned char c)
{
	return c < 0x80 && ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
			    (c >= '[' && c <= '`') || (c >= '{' && c <= '~'));
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static struct tok *tok_push(struct markdown *m, enum tok_kind kind, size_t off, size_t len)
{
	struct tok *t;

	if (sizeof(*t) >= m->toks.alloc - m->toks.len && buf_grow(&m->toks, sizeof(*t))) {
		m->fail = true;
		return NULL;
	}
	t = (struct tok *)(void *)(m->toks.data + m->toks.len);
	memset(t, 0, sizeof(*t));
	t->kind = (uint8_t)kind;
	t->off = (uint32_t)off;
	t->len = (uint32_t)len;
	m->toks.len += sizeof(*t);
	return t;
}

/* The end of the code span whose opening run of k backticks ends at i, or 0 when it is not closed. */
static size_t code_end(const char *s, size_t n, size_t i, size_t k, size_t *close)
{
	while (i < n) {
		size_t j;

		if (s[i] != '`') {
			i++;
			continue;
		}
		for (j = i; j < n && s[j] == '`'; j++)
			;
		if (j - i == k) {
			*close = i;
			return j;
		}
		i = j;
	}
	return 0;
}

/* link_end's answer when the text ends before it can tell. */
#define NOT_YET SIZE_MAX

/*
 * A link at s[i] ('[' or "!["): [text](url "title").  Fills the text's and
 * the URL's ranges and returns the index after ')'; 0 when it is not a
 * link, whatever follows s[n]; NOT_YET when the text stops before that
 * is known.
 */
static size_t link_end(const char *s, size_t n, size_t i, size_t *t0, size_t *t1,
		       size_t *u0, size_t *u1)
{
	int depth = 0;
	size_t j;

	if (s[i] == '!')
		i++;
	*t0 = i + 1;
	for (j = i; j < n; j++) {
		if (s[j] == '\\' && j + 1 < n) {
			j++;
		} else if (s[j] == '[') {
			depth++;
		} else if (s[j] == ']' && --depth == 0) {
			break;
		}
	}
	if (j >= n || j + 1 >= n)
		return NOT_YET;
	if (s[j + 1] != '(')
		return 0;
	*t1 = j;
	j += 2;
	while (j < n && s[j] == ' ')
		j++;
	*u0 = j;
	depth = 0;
	for (; j < n && s[j] != ' '; j++) {
		if (s[j] == '(')
			depth++;
		else if (s[j] == ')' && depth-- == 0)
			break;
	}
	*u1 = j;
	if (j >= n)
		return NOT_YET;
	if (*u1 == *u0)
		return 0;
	/* A title, which is not shown. */
	while (j < n && s[j] != ')')
		j++;
	return j < n ? j + 1 : NOT_YET;
}

/*
 * Cuts s[0..n) into tokens.  links is false inside a link's text (a link
 * holds no link).  Text runs stop at the characters that may start markup.
 */
static void tokenize(struct markdown *m, const char *s, size_t n, bool links)
{
	/* The bytes the switch below looks at; prose is mostly none of them. */
	static const bool starts[256] = {
		['\\'] = true, ['`'] = true, ['*'] = true, ['_'] = true,
		['~'] = true, ['!'] = true, ['['] = true, ['<'] = true
	};
	size_t i = 0, text = 0;

#define FLUSH_TEXT(to) do { if ((to) > text) tok_push(m, T_TEXT, text, (to) - text); } while (0)
	while (i < n && !m->fail) {
		unsigned char c;
		size_t j, k, close, t0, t1, u0, u1;
		struct tok *t;

		while (i < n && !starts[(unsigned char)s[i]])
			i++;
		if (i == n)
			break;
		c = (unsigned char)s[i];
		switch (c) {
		case '\\':
			if (i + 1 < n && is_punct((unsigned char)s[i + 1])) {
				FLUSH_TEXT(i);
				text = i + 1;
				i += 2;
				continue;
			}
			break;
		case '`':
			for (j = i; j < n && s[j] == '`'; j++)
				;
			k = code_end(s, n, j, j - i, &close);
			if (!k) {
				/* A later run may close it: what follows is not decided yet. */
				if (links && i < m->unsure)
					m->unsure = i;
				FLUSH_TEXT(i);
				text = i;
				i = j;
				continue;
			}
			FLUSH_TEXT(i);
			/* One space on each side is padding, as CommonMark strips it. */
			if (close - j >= 2 && s[j] == ' ' && s[close - 1] == ' ')
				j++, close--;
			tok_push(m, T_CODE, j, close - j);
			i = text = k;
			continue;
		case '*': case '_': case '~': {
			unsigned char prev = i ? (unsigned char)s[i - 1] : ' ', next;
			bool lf, rf;

			for (j = i; j < n && s[j] == (char)c; j++)
				;
			next = j < n ? (unsigned char)s[j] : ' ';
			lf = !is_space(next) && (!is_punct(next) || is_space(prev) || is_punct(prev));
			rf = !is_space(prev) && (!is_punct(prev) || is_space(next) || is_punct(next));
			if (c == '~' && j - i > 2) {
				i = j;
				continue;
			}
			FLUSH_TEXT(i);
			t = tok_push(m, T_DELIM, i, j - i);
			if (t) {
				t->ch = (char)c;
				t->left = (uint32_t)(j - i);
				if (c == '_') {
					/* snake_case is not emphasis. */
					t->open = lf && (!rf || is_punct(prev));
					t->close = rf && (!lf || is_punct(next));
				} else {
					t->open = lf;
					t->close = rf;
				}
			}
			i = text = j;
			continue;
		}
		case '!':
		case '[':
			if (!links || (c == '!' && (i + 1 >= n || s[i + 1] != '[')))
				break;
			k = link_end(s, n, i, &t0, &t1, &u0, &u1);
			if (k == NOT_YET && i < m->unsure) {
				m->unsure = i;
				FLUSH_TEXT(i);
				text = i;
			}
			if (!k || k == NOT_YET)
				break;
			FLUSH_TEXT(i);
			t = tok_push(m, T_LINK_START, i, 0);
			if (t)
				t->image = c == '!';
			j = m->toks.len / sizeof(*t);
			tokenize(m, s + t0, t1 - t0, false);
			/* The inner tokens are relative to s + t0 (and the array may have moved). */
			for (t = (struct tok *)(void *)m->toks.data; j < m->toks.len / sizeof(*t); j++)
				t[j].off += (uint32_t)t0;
			t = tok_push(m, T_LINK_END, u0, u1 - u0);
			if (t) {
				t->image = c == '!';
				t->same = t1 - t0 == u1 - u0 && !memcmp(s + t0, s + u0, u1 - u0);
			}
			i = text = k;
			continue;
		case '<':
			if (!links)
				break;
			for (j = i + 1; j < n && s[j] != '>' && s[j] != ' ' && s[j] != '<'; j++)
				;
			if (j < n && s[j] == '>' &&
			    ((j - i > 8 && !memcmp(s + i + 1, "http://", 7)) ||
			     (j - i > 9 && !memcmp(s + i + 1, "https://", 8)))) {
				FLUSH_TEXT(i);
				tok_push(m, T_URL, i + 1, j - i - 1);
				i = text = j + 1;
				continue;
			}
			if (j >= n && i < m->unsure) {
				m->unsure = i;
				FLUSH_TEXT(i);
				text = i;
			}
			break;
		default:
			break;
		}
		i++;
	}
	FLUSH_TEXT(n);
#undef FLUSH_TEXT
}

/*
 * Pairs emphasis delimiters, CommonMark's way simplified: a closer takes
 * the nearest opener of its character (not across a link's edge), two of
 * each when both have two, and the pair styles every token between them.
 * The styling is counted in a difference array, and each character has a
 * stack of its own, so the whole line costs linear time however deep the
 * nesting or however many delimiters stay unmatched.
 */
static int stack_of(char ch)
{
	return ch == '*' ? 0 : ch == '_' ? 1 : 2;
}

static void emphasis(struct markdown *m)
{
	struct tok *tk = (struct tok *)(void *)m->toks.data;
	size_t nt = m->toks.len / sizeof(*tk);
	struct cnt *c;
	size_t *stack[3], ns[3] = { 0, 0, 0 }, floor[3] = { 0, 0, 0 }, saved[3] = { 0, 0, 0 };

	buf_reset(&m->cnt);
	if (buf_grow(&m->cnt, (nt + 1) * sizeof(*c) + 3 * (nt + 1) * sizeof(size_t))) {
		m->fail = true;
		return;
	}
	/* The stacks first: malloc's alignment suits size_t, and after them int32_t. */
	for (int k = 0; k < 3; k++)
		stack[k] = (size_t *)(void *)m->cnt.data + (size_t)k * (nt + 1);
	c = (struct cnt *)(void *)(stack[2] + nt + 1);
	memset(c, 0, (nt + 1) * sizeof(*c));
	for (size_t i = 0; i < nt; i++) {
		struct tok *t = &tk[i];
		int k;

		if (t->kind == T_LINK_START) {
			for (k = 0; k < 3; k++)
				saved[k] = floor[k] = ns[k];
			continue;
		}
		if (t->kind == T_LINK_END) {
			for (k = 0; k < 3; k++) {
				ns[k] = saved[k];
				floor[k] = 0;
			}
			continue;
		}
		if (t->kind != T_DELIM)
			continue;
		k = stack_of(t->ch);
		while (t->close && t->left && ns[k] > floor[k]) {
			size_t j = stack[k][ns[k] - 1], use;
			struct tok *o = &tk[j];

			if (t->ch == '~' && o->left != t->left)
				break;
			use = t->ch == '~' ? t->left : (o->left >= 2 && t->left >= 2) ? 2 : 1;
			/*
			 * The tokens strictly between opener j and closer i: the
			 * count goes up after j and down after i - 1.
			 */
			if (t->ch == '~') {
				c[j].s++;
				c[i - 1].s--;
			} else if (use == 2) {
				c[j].b++;
				c[i - 1].b--;
			} else {
				c[j].i++;
				c[i - 1].i--;
			}
			o->left -= (uint32_t)use;
			t->left -= (uint32_t)use;
			if (!o->left)
				ns[k]--;
			/* Openers inside the pair can no longer match anything after it. */
			for (int q = 0; q < 3; q++)
				while (ns[q] > floor[q] && stack[q][ns[q] - 1] > j)
					ns[q]--;
		}
		if (t->open && t->left)
			stack[k][ns[k]++] = i;
	}
	/* An opener still waiting for its closer leaves what follows it undecided. */
	for (int k = 0; k < 3; k++)
		if (ns[k] && tk[stack[k][0]].off < m->unsure)
			m->unsure = tk[stack[k][0]].off;
}

/*
 * Renders the inline markup of s[0..n) onto the end of the rendered line
 * (m->vis, m->sty), every byte in base style plus its own.
 */
static void render_inline(struct markdown *m, const char *s, size_t n, unsigned base)
{
	struct tok *tk;
	struct cnt *c;
	size_t nt;
	int32_t b = 0, it = 0, st = 0;
	unsigned link = 0;

	buf_reset(&m->toks);
	m->unsure = n;
	tokenize(m, s, n, true);
	emphasis(m);
	m->vis_safe = SIZE_MAX;
	if (m->fail)
		return;
	/* Text cut before an undecided part: a run at the cut may yet open or close. */
	if (m->end_open && m->toks.len) {
		const struct tok *last = (const struct tok *)(void *)(m->toks.data + m->toks.len) - 1;

		if (last->kind == T_DELIM && last->off + last->len == n && last->off < m->unsure)
			m->unsure = last->off;
	}
	tk = (struct tok *)(void *)m->toks.data;
	c = (struct cnt *)(void *)((size_t *)(void *)m->cnt.data + 3 * (m->toks.len / sizeof(*tk) + 1));
	nt = m->toks.len / sizeof(*tk);
	for (size_t i = 0; i < nt; i++) {
		const struct tok *t = &tk[i];
		unsigned style = base | link | (b > 0 ? ST_BOLD : 0) | (it > 0 ? ST_ITALIC : 0) |
				 (st > 0 ? ST_STRIKE : 0);

		if (m->vis_safe == SIZE_MAX && t->kind != T_LINK_END && t->off >= m->unsure)
			m->vis_safe = m->vis.len;
		switch (t->kind) {
		case T_TEXT:
			vis_add(m, s + t->off, t->len, style);
			break;
		case T_CODE:
			vis_add(m, s + t->off, t->len, style | ST_CODE);
			break;
		case T_DELIM:
			/* What no pair took is text; a closer's leftover follows the pair, an opener's precedes it. */
			vis_add(m, s + t->off, t->left, style);
			break;
		case T_LINK_START:
			if (t->image)
				vis_add(m, "image: ", 7, style | ST_DIM);
			link = t->image ? 0 : ST_UNDER;
			break;
		case T_LINK_END:
			link = 0;
			style &= ~(unsigned)ST_UNDER;
			if (!t->same) {
				vis_add(m, " (", 2, style | ST_DIM);
				vis_add(m, s + t->off, t->len, style | ST_DIM);
				vis_add(m, ")", 1, style | ST_DIM);
			}
			break;
		case T_URL:
			vis_add(m, s + t->off, t->len, style | ST_UNDER);
			break;
		}
		/* The counters change after the token: an opener's own run is outside its pair. */
		b += c[i].b;
		it += c[i].i;
		st += c[i].s;
	}
	if (m->vis_safe == SIZE_MAX)
		m->vis_safe = m->vis.len;
}

/* Writes vis[from..to) with its styles; returns the style left on. */
static unsigned emit_styled(struct markdown *m, struct buf *out, size_t from, size_t to, unsigned cur)
{
	const unsigned char *sty = (const unsigned char *)m->sty.data;
	size_t run = from;
	uint64_t same = UINT64_C(0x0101010101010101) * cur, w;

	if (from == to)
		return cur;
	for (size_t i = from; i <= to; i++) {
		/* Styles change seldom: eight style bytes at a time while they stay. */
		while (to - i >= 8 && (memcpy(&w, sty + i, sizeof(w)), w == same))
			i += 8;
		if (i < to && sty[i] == cur)
			continue;
		md_add(m, out, m->vis.data + run, i - run);
		if (i == to)
			break;
		sgr(m, out, cur, sty[i]);
		cur = sty[i];
		same = UINT64_C(0x0101010101010101) * cur;
		run = i;
	}
	return cur;
}

/* A line's prefix: the quote bars, then the list marker (first line) or its width in spaces. */
struct prefix {
	int quote;              /* block quote depth */
	const char *first;      /* the first line's marker, or NULL */
	size_t first_len;
	int indent;             /* columns before the text on every line, the marker's included */
	unsigned first_style;
};

static int prefix_write(struct markdown *m, struct buf *out, const struct prefix *px, bool first)
{
	int w = 0, pad = px->indent;

	for (int q = 0; q < px->quote; q++) {
		sgr(m, out, 0, ST_DIM);
		md_addstr(m, out, "\xe2\x94\x82 ");     /* U+2502 */
		sgr(m, out, ST_DIM, 0);
		w += 2;
	}
	if (first && px->first) {
		pad -= strwidth(px->first, px->first_len);
		spaces(m, out, pad);
		sgr(m, out, 0, px->first_style);
		md_add(m, out, px->first, px->first_len);
		sgr(m, out, px->first_style, 0);
	} else {
		spaces(m, out, pad);
	}
	return w + px->indent;
}

/* The columns of text on a line after the prefix; at least 10, the terminal wraps the rest. */
static int avail_of(const struct markdown *m, const struct prefix *px)
{
	int a = m->width - 2 * px->quote - px->indent;

	return a < 10 ? 10 : a;
}

static void wrap_begin(struct markdown *m)
{
	m->wpos = 0;
	m->wcol = 0;
	m->wfirst = true;
	m->wstarted = false;
	m->wcur = 0;
}

static void wrap_start_line(struct markdown *m, struct buf *out, const struct prefix *px)
{
	if (m->wstarted)
		return;
	prefix_write(m, out, px, m->wfirst);
	m->wstarted = true;
	m->wcol = 0;
	m->wcur = 0;
}

static void wrap_end_line(struct markdown *m, struct buf *out, const struct prefix *px)
{
	wrap_start_line(m, out, px);
	sgr(m, out, m->wcur, 0);
	m->wcur = 0;
	md_add(m, out, "\n", 1);
	m->wstarted = false;
	m->wfirst = false;
	m->blank = false;
}

/* Columns of the character at v[i] (a tab counts 4: a guess, the terminal decides); *k its bytes. */
static int char_cols(const char *v, size_t len, size_t i, size_t *k)
{
	uint32_t cp;

	*k = 1;
	if ((unsigned char)v[i] < 0x80)
		return v[i] == '\t' ? 4 : 1;
	*k = u8len((const unsigned char *)v + i, len - i, &cp);
	return cpwidth(cp);
}

/*
 * What wrap_run has decided but not yet written: vis[from..to), which
 * starts in style cur.  The words and spaces of an output line are
 * contiguous in vis, so they go out as one run (an SGR sequence only
 * where the style changes) rather than one buf_add each.
 */
struct wpend {
	size_t from, to;
	unsigned cur;
};

static void wflush(struct markdown *m, struct buf *out, struct wpend *p)
{
	if (p->from != p->to)
		emit_styled(m, out, p->from, p->to, p->cur);
	p->from = p->to = 0;
}

/* vis[from..to) is decided: added to the pending run; m->wcur is the style it leaves on. */
static void wemit(struct markdown *m, struct buf *out, struct wpend *p, size_t from, size_t to)
{
	if (from == to)
		return;
	if (p->from == p->to || p->to != from) {
		wflush(m, out, p);
		p->from = from;
		p->cur = m->wcur;
	}
	p->to = to;
	m->wcur = (unsigned char)m->sty.data[to - 1];
}

/*
 * Writes the rendered line (m->vis) from the wrap cursor up to upto,
 * wrapped to the width, greedily: a space is written when it fits (a line
 * may end in spaces, which no one sees), else the line ends there and the
 * spaces after it are dropped; a word goes on the line when it fits, else
 * starts the next one, and a word wider than a line is broken where it
 * must be.  Unless final, a word is written only once the space after it
 * has arrived, since it may go on.  Each decision depends only on what
 * precedes it, so writing in several calls gives the same bytes as one.
 * final ends the line: every output line starts with the prefix and ends
 * with the style reset.
 */
static void wrap_run(struct markdown *m, struct buf *out, const struct prefix *px, size_t upto, bool final)
{
	const char *v = m->vis.data ? m->vis.data : "";
	int avail = avail_of(m, px);
	struct wpend pend = { 0, 0, 0 };

	if (upto > m->vis.len)
		upto = m->vis.len;
	while (m->wpos < upto) {
		size_t we, i, k, from;
		int ww = 0;
		bool ascii = true;

		/*
		 * On a line already started, the printable ASCII words and spaces
		 * that fit whole would each be written as they are: all at once.
		 * Then the general case below decides where the line breaks.
		 */
		if (m->wstarted && m->wcol < avail) {
			size_t lim = m->wpos + (size_t)(avail - m->wcol), j;

			if (lim > upto)
				lim = upto;
			for (j = m->wpos; j < lim && (unsigned char)(v[j] - 0x20) < 0x5f; j++)
				;
			/* Not into a word that goes on past here (or that may, unless final). */
			if (j < upto ? v[j] != ' ' : !final)
				while (j > m->wpos && v[j - 1] != ' ')
					j--;
			if (j > m->wpos) {
				wemit(m, out, &pend, m->wpos, j);
				m->wcol += (int)(j - m->wpos);
				m->wpos = j;
				continue;
			}
		}
		if (v[m->wpos] == ' ') {
			size_t run, fit;

			/* A line after the first starts at a word. */
			if (!m->wstarted && !m->wfirst) {
				m->wpos++;
				continue;
			}
			if (m->wstarted && m->wcol + 1 > avail) {
				wflush(m, out, &pend);
				wrap_end_line(m, out, px);
				continue;
			}
			wrap_start_line(m, out, px);
			/* The spaces that fit, at once: each would be decided alone the same way. */
			for (run = m->wpos; run < upto && v[run] == ' '; run++)
				;
			run -= m->wpos;
			fit = (size_t)(avail - m->wcol);
			if (run > fit)
				run = fit;
			wemit(m, out, &pend, m->wpos, m->wpos + run);
			m->wcol += (int)run;
			m->wpos += run;
			continue;
		}
		/*
		 * A word of printable ASCII is as wide as it is long: no UTF-8 to
		 * decode.  (vis holds no control character but tab.)
		 */
		for (we = m->wpos; we < upto && (unsigned char)(v[we] - 0x21) < 0x5e; we++)
			;
		for (; we < upto && v[we] != ' '; we++)
			if ((unsigned char)v[we] >= 0x80 || v[we] == '\t')
				ascii = false;
		if (we == upto && !final)
			break;
		if (ascii)
			ww = (int)(we - m->wpos);
		else
			for (i = m->wpos; i < we; i += k)
				ww += char_cols(v, we, i, &k);
		if (m->wstarted && m->wcol > 0 && m->wcol + ww > avail) {
			wflush(m, out, &pend);
			wrap_end_line(m, out, px);
			continue;
		}
		wrap_start_line(m, out, px);
		if (m->wcol + ww <= avail) {
			/* It fits whole: no character of it can break the line. */
			wemit(m, out, &pend, m->wpos, we);
			m->wcol += ww;
			m->wpos = we;
			continue;
		}
		for (i = from = m->wpos; i < we; i += k) {
			int w = char_cols(v, we, i, &k);

			if (m->wcol + w > avail && m->wcol > 0) {
				wemit(m, out, &pend, from, i);
				wflush(m, out, &pend);
				wrap_end_line(m, out, px);
				wrap_start_line(m, out, px);
				from = i;
			}
			m->wcol += w;
		}
		wemit(m, out, &pend, from, we);
		m->wpos = we;
	}
	wflush(m, out, &pend);
	if (final)
		wrap_end_line(m, out, px);
}

/* The whole of m->vis as one line, wrapped. */
static void emit_wrapped(struct markdown *m, struct buf *out, const struct prefix *px)
{
	wrap_begin(m);
	wrap_run(m, out, px, m->vis.len, true);
}

static size_t indent_of(const char *s, size_t n, int *cols)
{
	size_t i = 0;
	int c = 0;

	for (; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
		c += s[i] == '\t' ? 4 - c % 4 : 1;
	*cols = c;
	return i;
}

static bool blank_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space((unsigned char)s[i]))
			return false;
	return true;
}

/* A thematic break: three or more of one of - * _, nothing else but spaces. */
static bool is_rule(const char *s, size_t n)
{
	char ch = 0;
	int k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ' || s[i] == '\t')
			continue;
		if (s[i] != '-' && s[i] != '*' && s[i] != '_')
			return false;
		if (ch && s[i] != ch)
			return false;
		ch = s[i];
		k++;
	}
	return k >= 3;
}

/* A fence: three or more backticks or tildes; a backtick fence's info holds no backtick. */
static size_t fence_of(const char *s, size_t n, char *ch)
{
	size_t k = 0;

	if (!n || (s[0] != '`' && s[0] != '~'))
		return 0;
	while (k < n && s[k] == s[0])
		k++;
	if (k < 3)
		return 0;
	if (s[0] == '`' && memchr(s + k, '`', n - k))
		return 0;
	*ch = s[0];
	return k;
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_space((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n && is_space((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static void blank_out(struct markdown *m, struct buf *out, int quote)
{
	if (m->blank && !quote)
		return;
	for (int q = 0; q < quote; q++) {
		sgr(m, out, 0, ST_DIM);
		md_addstr(m, out, q + 1 < quote ? "\xe2\x94\x82 " : "\xe2\x94\x82");
		sgr(m, out, ST_DIM, 0);
	}
	md_add(m, out, "\n", 1);
	m->blank = !quote;
}

/* Appends s[0..n) with every control character but tab as U+FFFD. */
static void add_clean(struct markdown *m, struct buf *out, const char *s, size_t n)
{
	for (size_t i = 0, from = 0; i <= n; i++) {
		while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != 0x7f)
			i++;
		if (i < n && s[i] == '\t')
			continue;
		md_add(m, out, s + from, i - from);
		if (i < n)
			md_addstr(m, out, "\xef\xbf\xbd");
		from = i + 1;
	}
}

/* A line of n box-drawing dashes, dim: a rule, or the edge of a code block. */
static void dashes(struct markdown *m, struct buf *out, const char *label, size_t llen)
{
	int n = m->width;

	sgr(m, out, 0, ST_DIM);
	if (label) {
		md_addstr(m, out, "\xe2\x94\x80\xe2\x94\x80 ");
		add_clean(m, out, label, llen);
		md_add(m, out, " ", 1);
		n -= 4 + strwidth(label, llen);
	}
	dash_run(m, out, n);
	sgr(m, out, ST_DIM, 0);
	md_add(m, out, "\n", 1);
	m->blank = false;
}

/* Splits a table row into at most MARKDOWN_MAX_COLS trimmed cells; a '|' in code or after '\' is text. */
static int split_row(const char *s, size_t n, const char **cell, size_t *clen)
{
	int nc = 0;
	size_t from, i;
	bool code = false;

	trim(&s, &n);
	if (n && s[0] == '|')
		s++, n--;
	if (n && s[n - 1] == '|' && (n < 2 || s[n - 2] != '\\'))
		n--;
	for (from = i = 0; i <= n && nc < MARKDOWN_MAX_COLS; i++) {
		if (i < n && s[i] == '\\') {
			i++;
			continue;
		}
		if (i < n && s[i] == '`')
			code = !code;
		if (i < n && (s[i] != '|' || code))
			continue;
		cell[nc] = s + from;
		clen[nc] = (i < n ? i : n) - from;
		trim(&cell[nc], &clen[nc]);
		nc++;
		from = i + 1;
	}
	return nc;
}

/* A table's delimiter row with ncols cells: :---, ---:, :---:, ---.  Fills the alignments. */
static bool delim_row(struct markdown *m, const char *s, size_t n, int ncols)
{
	const char *cell[MARKDOWN_MAX_COLS];
	size_t clen[MARKDOWN_MAX_COLS];
	int nc;

	if (!memchr(s, '-', n))
		return false;
	nc = split_row(s, n, cell, clen);
	if (nc != ncols)
		return false;
	for (int c = 0; c < nc; c++) {
		const char *p = cell[c];
		size_t k = clen[c], d = 0;
		bool l = k && p[0] == ':', r = k > 1 && p[k - 1] == ':';

		for (size_t i = l; i < k - r; i++, d++)
			if (p[i] != '-')
				return false;
		if (!d)
			return false;
		m->align[c] = (unsigned char)(l && r ? 'c' : r ? 'r' : 'l');
	}
	return true;
}

/* A rendered table cell: its bytes in m->vis and their width. */
struct cellr {
	size_t from, to;
	int w;
};

/*
 * Writes the table read so far, every column as wide as its widest cell,
 * and forgets it.  Every cell is rendered once, all of them into m->vis,
 * before the widths are known; then written.
 */
static void table_out(struct markdown *m, struct buf *out)
{
	int width[MARKDOWN_MAX_COLS] = { 0 };
	const char *s = m->table.data, *end = s + m->table.len;
	const struct cellr *cr;
	size_t nrow = 0;

	buf_reset(&m->vis);
	buf_reset(&m->sty);
	buf_reset(&m->cells);
	m->tab_space = true;
	for (const char *p = s; p < end && !m->fail;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *cell[MARKDOWN_MAX_COLS];
		size_t clen[MARKDOWN_MAX_COLS];
		int nc = split_row(p, (size_t)(nl - p), cell, clen);

		for (int c = 0; c < m->ncols; c++) {
			struct cellr r;

			r.from = m->vis.len;
			render_inline(m, c < nc ? cell[c] : "", c < nc ? clen[c] : 0, nrow ? 0 : ST_BOLD);
			r.to = m->vis.len;
			r.w = r.to > r.from ? strwidth(m->vis.data + r.from, r.to - r.from) : 0;
			if (r.w > width[c])
				width[c] = r.w;
			if (buf_add(&m->cells, &r, sizeof(r)))
				m->fail = true;
		}
		nrow++;
		p = nl + 1;
	}
	m->tab_space = false;
	cr = (const struct cellr *)(const void *)m->cells.data;
	for (size_t row = 0; row < nrow && !m->fail; row++) {
		for (int c = 0; c < m->ncols; c++) {
			const struct cellr *r = &cr[row * (size_t)m->ncols + (size_t)c];
			int w = r->w, pad = width[c] - w, lpad;
			bool last = c + 1 == m->ncols;
			unsigned cur;

			/* The last column is not padded on the right: no trailing blanks. */
			if (last && !w)
				pad = 0;
			if (c) {
				sgr(m, out, 0, ST_DIM);
				md_addstr(m, out, last && !w ? " \xe2\x94\x82" : " \xe2\x94\x82 ");
				sgr(m, out, ST_DIM, 0);
			}
			lpad = m->align[c] == 'r' ? pad : m->align[c] == 'c' ? pad / 2 : 0;
			spaces(m, out, lpad);
			cur = emit_styled(m, out, r->from, r->to, 0);
			sgr(m, out, cur, 0);
			if (!last)
				spaces(m, out, pad - lpad);
		}
		md_add(m, out, "\n", 1);
		if (!row) {
			sgr(m, out, 0, ST_DIM);
			for (int c = 0; c < m->ncols; c++) {
				if (c)
					md_addstr(m, out, "\xe2\x94\x80\xe2\x94\xbc\xe2\x94\x80");
				dash_run(m, out, width[c]);
			}
			sgr(m, out, ST_DIM, 0);
			md_add(m, out, "\n", 1);
		}
	}
	buf_reset(&m->table);
	m->blank = false;
}

static void table_add(struct markdown *m, const char *s, size_t n)
{
	if (buf_add(&m->table, s, n) || buf_addch(&m->table, '\n'))
		m->fail = true;
}

static void line_out(struct markdown *m, struct buf *out, const char *s, size_t n, bool may_hold);

/* The list level an item indented by cols belongs to, opening or closing levels as needed. */
static int list_level(struct markdown *m, int cols)
{
	while (m->nlist && m->list_indent[m->nlist - 1] > cols)
		m->nlist--;
	if (m->nlist && m->list_indent[m->nlist - 1] == cols)
		return m->nlist - 1;
	if (m->nlist == MARKDOWN_MAX_LIST)
		return m->nlist - 1;
	m->list_indent[m->nlist] = cols;
	m->list_col[m->nlist] = m->nlist ? m->list_col[m->nlist - 1] + 2 : 0;
	return m->nlist++;
}

/* A list item's marker at s[0..n): "- ", "* ", "+ ", "12. ", "3) ".  Returns the text's offset or 0. */
static size_t list_marker(const char *s, size_t n, bool *ordered)
{
	size_t i = 0;

	if (n >= 1 && (s[0] == '-' || s[0] == '*' || s[0] == '+')) {
		*ordered = false;
		i = 1;
	} else {
		while (i < n && i < 9 && s[i] >= '0' && s[i] <= '9')
			i++;
		if (!i || i >= n || (s[i] != '.' && s[i] != ')'))
			return 0;
		*ordered = true;
		i++;
	}
	if (i == n)
		return i;
	if (s[i] != ' ' && s[i] != '\t')
		return 0;
	return i + 1;
}

/*
 * Makes the line's text from line[at] on (after the quote bars and the
 * indent of cols columns) the open prose line: a list item, or a paragraph
 * line, continuing a list item when indented under it.  Done once a line:
 * it opens and closes list levels.
 */
static void prose_setup(struct markdown *m, const char *line, size_t len, size_t at, int cols, int quote)
{
	const char *s = line + at, *t;
	size_t k, tn;
	bool ordered;

	m->open = true;
	m->open_quote = quote;
	m->mark_len = 0;
	m->indent = 0;
	m->open_list = false;
	m->open_from = at;
	wrap_begin(m);
	if ((k = list_marker(s, len - at, &ordered))) {
		int level = list_level(m, cols);
		size_t ml;

		t = s + k;
		tn = len - at - k;
		while (tn && is_space((unsigned char)*t))
			t++, tn--;
		if (ordered) {
			for (ml = 0; s[ml] >= '0' && s[ml] <= '9'; ml++)
				;
			memcpy(m->mark, s, ++ml);
			m->mark[ml++] = ' ';
		} else {
			static const char *const bullets[] = { "\xe2\x80\xa2 ", "\xe2\x97\xa6 ", "\xe2\x96\xaa " };

			ml = strlen(bullets[level % 3]);
			memcpy(m->mark, bullets[level % 3], ml);
		}
		if (tn >= 3 && t[0] == '[' && t[2] == ']' && (tn == 3 || t[3] == ' ') &&
		    (t[1] == ' ' || t[1] == 'x' || t[1] == 'X')) {
			const char *box = t[1] == ' ' ? "\xe2\x98\x90 " : "\xe2\x98\x91 ";

			memcpy(m->mark + ml, box, 4);
			ml += 4;
			t += 3, tn -= 3;
			while (tn && is_space((unsigned char)*t))
				t++, tn--;
		}
		m->mark_len = ml;
		m->indent = m->list_col[level] + strwidth(m->mark, ml);
		m->list_text[level] = m->indent;
		m->open_list = true;
		m->open_from = (size_t)(t - line);
		return;
	}
	/* Text indented under a list item continues it; text at the margin ends the list. */
	if (m->nlist && cols > m->list_indent[0]) {
		int l = m->nlist - 1;

		while (l > 0 && cols <= m->list_indent[l])
			l--;
		m->indent = m->list_text[l];
	} else if (!quote) {
		m->nlist = 0;
	}
}

/*
 * Writes the open prose line line[0..n) as far as it is decided; final:
 * all of it, the line is whole.  Only what follows the last space is
 * read when not final, and of that only what precedes the first markup
 * still open (m->unsure): so what is written now is what the whole line
 * will render to there.
 */
static void open_emit(struct markdown *m, struct buf *out, const char *line, size_t n, bool final)
{
	struct prefix px = { m->open_quote, m->mark_len ? m->mark : NULL, m->mark_len, m->indent, ST_BOLD };
	const char *t = line + m->open_from;
	size_t tn = n > m->open_from ? n - m->open_from : 0;

	if (final) {
		/*
		 * A trailing backslash marks a hard break, which every line is
		 * here.  Trailing spaces stay: written as they came, they may be
		 * out already.
		 */
		if (!m->open_list && tn && t[tn - 1] == '\\')
			tn--;
	} else {
		while (tn && t[tn - 1] != ' ')
			tn--;
		if (!tn)
			return;
	}
	buf_reset(&m->vis);
	buf_reset(&m->sty);
	if (!final) {
		/*
		 * What follows an undecided part (a code span not closed yet, a
		 * link still coming) is not read at all: read now, its '*' could
		 * close an emphasis before it that the whole line leaves open.
		 */
		buf_reset(&m->toks);
		m->unsure = tn;
		tokenize(m, t, tn, true);
		if (m->unsure < tn) {
			tn = m->unsure;
			m->end_open = true;
		}
	}
	render_inline(m, t, tn, 0);
	m->end_open = false;
	wrap_run(m, out, &px, final ? m->vis.len : m->vis_safe, final);
	if (final)
		m->open = false;
}

/* Renders one whole line (no newline) that is not in a code block or a table. */
static void block_line(struct markdown *m, struct buf *out, const char *s, size_t n)
{
	struct prefix px = { 0, NULL, 0, 0, 0 };
	const char *line = s;
	int cols;
	size_t ind = indent_of(s, n, &cols), k;
	char ch;

	buf_reset(&m->vis);
	buf_reset(&m->sty);
	if (blank_line(s, n)) {
		blank_out(m, out, 0);
		return;
	}
	s += ind, n -= ind;
	if ((k = fence_of(s, n, &ch))) {
		const char *info = s + k;
		size_t ilen = n - k;

		trim(&info, &ilen);
		m->in_code = true;
		m->fence = ch;
		m->fence_len = k;
		m->fence_indent = ind;
		dashes(m, out, ilen ? info : "code", ilen ? ilen : 4);
		return;
	}
	/* Block quotes: the bars, then the rest as a line of its own kind. */
	while (n && s[0] == '>') {
		px.quote++;
		s++, n--;
		if (n && s[0] == ' ')
			s++, n--;
	}
	if (px.quote) {
		const char *t = s;
		size_t tn = n;

		trim(&t, &tn);
		if (!tn) {
			blank_out(m, out, px.quote);
			return;
		}
		ind = indent_of(s, n, &cols);
		s += ind, n -= ind;
	}
	if (cols < 4 && n && s[0] == '#') {
		size_t h = 0;

		while (h < n && s[h] == '#')
			h++;
		if (h <= 6 && (h == n || s[h] == ' ' || s[h] == '\t')) {
			static const unsigned hs[] = { ST_BOLD | ST_UNDER | ST_HEAD, ST_BOLD | ST_HEAD, ST_BOLD,
						       ST_BOLD | ST_ITALIC, ST_ITALIC, ST_ITALIC };
			const char *t = s + h;
			size_t tn = n - h;

			trim(&t, &tn);
			/* A closing run of '#' is not text; "C#" keeps its '#'. */
			{
				size_t e = tn;

				while (e && t[e - 1] == '#')
					e--;
				if (!e || t[e - 1] == ' ' || t[e - 1] == '\t')
					tn = e;
			}
			trim(&t, &tn);
			if (!px.quote)
				m->nlist = 0;
			/* Without SGR a heading keeps its marks: nothing else would tell it from prose. */
			if (!m->sgr) {
				vis_add(m, s, h, 0);
				vis_add(m, " ", 1, 0);
			}
			render_inline(m, t, tn, hs[h - 1]);
			emit_wrapped(m, out, &px);
			return;
		}
	}
	if (is_rule(s, n) && cols < 4) {
		dashes(m, out, NULL, 0);
		return;
	}
	prose_setup(m, line, (size_t)(s - line) + n, (size_t)(s - line), cols, px.quote);
	open_emit(m, out, line, (size_t)(s - line) + n, true);
}

/* Writes a code line as it came (less the fence's indent), or ends the block at its fence. */
static void code_line(struct markdown *m, struct buf *out, const char *s, size_t n)
{
	int cols;
	size_t ind = indent_of(s, n, &cols), k;
	char ch;

	if (m->code_started) {
		/* Its start is out already: the rest, and the newline. */
		k = m->code_done < n ? m->code_done : n;
		m->code_started = false;
	} else if (ind < 4 && (k = fence_of(s + ind, n - ind, &ch)) && ch == m->fence &&
		   k >= m->fence_len && blank_line(s + ind + k, n - ind - k)) {
		m->in_code = false;
		dashes(m, out, NULL, 0);
		return;
	} else {
		for (k = 0; k < m->fence_indent && k < n && s[k] == ' '; k++)
			;
	}
	buf_reset(&m->vis);
	buf_reset(&m->sty);
	/* Tabs stay tabs: the line is copied as it is.  Only controls are replaced. */
	add_clean(m, out, s + k, n - k);
	md_add(m, out, "\n", 1);
	m->blank = false;
}

/*
 * One whole line.  A line with a '|' may be a table's header: it is held
 * (may_hold) until the next line says whether a delimiter row follows.
 */
static void line_out(struct markdown *m, struct buf *out, const char *s, size_t n, bool may_hold)
{
	if (m->open) {
		open_emit(m, out, s, n, true);
		return;
	}
	if (m->in_code) {
		code_line(m, out, s, n);
		return;
	}
	if (m->in_table) {
		if (!blank_line(s, n) && memchr(s, '|', n) && m->table.len + n < MARKDOWN_TABLE_MAX) {
			table_add(m, s, n);
			return;
		}
		table_out(m, out);
		m->in_table = false;
		if (!blank_line(s, n) && memchr(s, '|', n)) {
			/* The table was too long: its next part, aligned on its own, with the same header. */
			m->in_table = true;
			table_add(m, s, n);
			return;
		}
	}
	if (m->held.len) {
		const char *cell[MARKDOWN_MAX_COLS];
		size_t clen[MARKDOWN_MAX_COLS];
		int nc = split_row(m->held.data, m->held.len, cell, clen);

		if (nc > 1 && delim_row(m, s, n, nc)) {
			m->in_table = true;
			m->ncols = nc;
			buf_reset(&m->table);
			table_add(m, m->held.data, m->held.len);
			buf_reset(&m->held);
			return;
		}
		block_line(m, out, m->held.data, m->held.len);
		buf_reset(&m->held);
	}
	if (may_hold) {
		int cols;
		size_t ind = indent_of(s, n, &cols);

		/*
		 * Only a line that starts with '|' can head a table: a paragraph
		 * line is written as it arrives, before a '|' later in it is seen.
		 */
		if (cols < 4 && ind < n && s[ind] == '|') {
			if (buf_add(&m->held, s, n))
				m->fail = true;
			return;
		}
	}
	block_line(m, out, s, n);
}

/*
 * Whether the line s[0..n), still without its newline, is prose whose kind
 * and prefix no further text can change: not a table's, a heading's, a
 * quote's or a fence's; its first word whole (a list marker is known);
 * something in it that a rule cannot hold; a task box known.
 */
static bool prose_decided(const struct markdown *m, const char *s, size_t n)
{
	int cols;
	size_t ind = indent_of(s, n, &cols), k;
	bool ordered;

	if (m->in_table || m->held.len || ind == n || strchr("|`~>#", s[ind]))
		return false;
	if (!memchr(s + ind, ' ', n - ind) || strspn(s + ind, "-*_ \t") >= n - ind)
		return false;
	if ((k = list_marker(s + ind, n - ind, &ordered))) {
		const char *t;

		while (ind + k < n && is_space((unsigned char)s[ind + k]))
			k++;
		if (n - ind - k < 4)
			return false;
		/* A task box: the text starts after it and its spaces, which must be whole. */
		t = s + ind + k;
		if (t[0] == '[' && t[2] == ']' && t[3] == ' ' && (t[1] == ' ' || t[1] == 'x' || t[1] == 'X')) {
			for (k += 3; ind + k < n && is_space((unsigned char)s[ind + k]); k++)
				;
			if (ind + k == n)
				return false;
		}
	}
	return true;
}

/* The line so far, without its newline, piece[0..plen) its end: what of it is decided is written now. */
static void line_partial(struct markdown *m, struct buf *out, const char *piece, size_t plen)
{
	const char *s = m->line.data;
	size_t n = m->line.len;
	int cols;

	if (!n)
		return;
	if (m->in_code) {
		size_t ind = indent_of(s, n, &cols), k;

		if (!m->code_started) {
			if (ind == n)
				return;
			/* Until something else comes, this may be the closing fence. */
			if (ind < 4 && s[ind] == m->fence) {
				for (k = ind; k < n && s[k] == m->fence; k++)
					;
				if (k == n || (k - ind >= m->fence_len && blank_line(s + k, n - k)))
					return;
			}
			for (k = 0; k < m->fence_indent && k < n && s[k] == ' '; k++)
				;
			m->code_started = true;
			m->code_done = k;
		}
		/*
		 * Whole characters only: a line too long to wait for is cut
		 * between characters too (cut_chars), never before this point.
		 */
		n = cut_chars(s, n);
		if (n > m->code_done)
			add_clean(m, out, s + m->code_done, n - m->code_done);
		m->code_done = n > m->code_done ? n : m->code_done;
		m->blank = false;
		return;
	}
	/* Prose is decided word by word: nothing new without a space in the piece. */
	if (n > MARKDOWN_PARTIAL_MAX || !memchr(piece, ' ', plen))
		return;
	/*
	 * Each look reads the line again from its start: pieces that come
	 * faster than a person can see (a file piped through --markdown=always)
	 * are not each worth one.  What is written does not change, only when.
	 */
	{
		struct timespec ts;
		int64_t now;

#ifdef CLOCK_MONOTONIC_COARSE
		/* A few ms of resolution are plenty here, and it costs a tenth as much. */
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
		clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
		now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		if (m->last_look && now - m->last_look < m->look_ns)
			return;
		m->last_look = now;
	}
	if (!m->open) {
		size_t ind;

		if (!prose_decided(m, s, n))
			return;
		ind = indent_of(s, n, &cols);
		prose_setup(m, s, n, ind, cols, 0);
	}
	open_emit(m, out, s, n, false);
}

void markdown_init(struct markdown *m, int width, bool sgr_on)
{
	memset(m, 0, sizeof(*m));
	m->width = width < 20 ? 20 : width;
	m->sgr = sgr_on;
	m->look_ns = MARKDOWN_LOOK_NS;
	m->blank = true;
	buf_init(&m->line, 0);
	buf_init(&m->held, 0);
	buf_init(&m->table, 0);
	buf_init(&m->vis, 0);
	buf_init(&m->sty, 0);
	buf_init(&m->toks, 0);
	buf_init(&m->cnt, 0);
	buf_init(&m->cells, 0);
}

static int failed(struct markdown *m, struct ai_err *err)
{
	if (!m->fail)
		return 0;
	m->fail = false;
	return ai_errf(err, AI_EX_OSERR, "out of memory rendering markdown");
}

int markdown_feed(struct markdown *m, const void *p, size_t n, struct buf *out, struct ai_err *err)
{
	const char *s = p;

	while (n && !m->fail) {
		const char *nl = memchr(s, '\n', n);
		size_t take = nl ? (size_t)(nl - s) : n, room = MARKDOWN_LINE_MAX - m->line.len;

		if (take > room)
			take = room;
		if (buf_add(&m->line, s, take)) {
			m->fail = true;
			break;
		}
		s += take, n -= take;
		if (!n) {
			/* The piece ends inside a line. */
			line_partial(m, out, s - take, take);
			break;
		}
		if (*s == '\n') {
			line_out(m, out, m->line.data ? m->line.data : "", m->line.len, true);
			buf_reset(&m->line);
			s++, n--;
		} else if (m->line.len == MARKDOWN_LINE_MAX) {
			/* Too long to wait for: rendered in parts, each cut between characters. */
			size_t cut = cut_chars(m->line.data, m->line.len);

			line_out(m, out, m->line.data, cut, false);
			buf_consume(&m->line, cut);
		}
	}
	return failed(m, err);
}

int markdown_end(struct markdown *m, struct buf *out, struct ai_err *err)
{
	size_t before = out->len;
	bool partial = m->line.len > 0;
	int width = m->width, rc;
	bool sgr_on = m->sgr;
	int64_t look = m->look_ns;

	if (partial)
		line_out(m, out, m->line.data, m->line.len, false);
	if (m->held.len && !m->in_code)
		block_line(m, out, m->held.data, m->held.len);
	if (m->in_table)
		table_out(m, out);
	/* The text did not end its last line: neither does the output. */
	if (partial && out->len > before && out->data[out->len - 1] == '\n')
		out->data[--out->len] = 0;
	rc = failed(m, err);
	markdown_release(m);
	markdown_init(m, width, sgr_on);
	m->look_ns = look;
	return rc;
}

void markdown_release(struct markdown *m)
{
	buf_release(&m->line);
	buf_release(&m->held);
	buf_release(&m->table);
	buf_release(&m->vis);
	buf_release(&m->sty);
	buf_release(&m->toks);
	buf_release(&m->cnt);
	buf_release(&m->cells);
}
