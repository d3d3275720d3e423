/*
 * chunk.c - the text chunker: greedy packing under a token budget with a
 * preference order of break points, optional overlap, Markdown headings.
 *
 * How it works.  From a chunk's start, one forward scan keeps a running
 * token tally of the text so far and stops at the first byte that would
 * take it past the target.  On the way it remembers, for each kind of
 * break point (heading, paragraph, line end, sentence end, space,
 * character), the last one seen while the text still fitted.  The chunk
 * ends at the last break of the best kind seen.  The tally is the very
 * one tok_estimate() computes, so the chunk's estimate is known to fit
 * without being recomputed at each candidate.
 *
 * Each scan reads at most one target's worth of text past the chunk
 * start, and the text after the chosen break is read again by the next
 * scan; in practice the total is a small multiple of n.  A chunk that
 * would stay less than half full costs one more look-ahead scan, to
 * learn whether the paragraph that did not fit would fit on its own.  Markdown
 * structure (headings, fenced code) comes from one line-by-line pass
 * before chunking, so a scan that starts anywhere knows whether it is
 * inside a fence without re-reading from the top.
 */
#include "chunk.h"
#include "buf.h"

/* Kinds of break point, worst first: a chunk ends at the best one present. */
enum {
	LV_CHAR,      /* between two characters of a word */
	LV_SPACE,     /* at whitespace */
	LV_SENT,      /* after . ! ? (then whitespace) or after 。！？ */
	LV_LINE,      /* at a line end */
	LV_LINESENT,  /* at a line end that also ends a sentence */
	LV_PARA,      /* at a blank line */
	LV_HEAD,      /* just before a Markdown heading */
	LV_N
};

#define NONE SIZE_MAX

/*
 * Byte classes.  Whitespace is the C locale's isspace(); "word" bytes are
 * ASCII letters, digits, '_' and every byte >= 0x80, so a UTF-8 word is
 * one run; every other ASCII byte counts as punctuation.  The table is
 * faster than the comparisons in the scanning loops, and const, so the
 * module has no mutable state and needs no initialisation.
 */
enum { C_SPACE = 1, C_WORD = 2, C_PUNCT = 4 };

static const unsigned char cls[256] = {
	4,4,4,4,4,4,4,4,4,1,1,1,1,1,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
	1,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,2,2,2,2,2,2,2,2,2,2,4,4,4,4,4,4,
	4,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,4,4,4,4,2,
	4,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,4,4,4,4,4,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
	2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

static int is_cont(unsigned c)
{
	return (c & 0xc0) == 0x80;
}

/* The counts behind tok_estimate(); see chunk.h for the formula. */
struct tally {
	size_t words, punct, ascii, cps;
};

static size_t tally_est(const struct tally *t)
{
	size_t a = t->words * 4 / 3 + t->punct;
	size_t b = (t->ascii + 3) / 4 + t->cps;

	return a > b ? a : b;
}

/* Adds byte i to the tally of a range that starts at s (s <= i). */
static inline void tally_add(struct tally *t, const unsigned char *u, size_t s, size_t i)
{
	unsigned b = u[i], k = cls[b];

	if (b < 0x80)
		t->ascii++;
	else if (b >= 0xc0)
		t->cps++;
	if (k == C_WORD) {
		if (i == s || cls[u[i - 1]] != C_WORD)
			t->words++;
	} else if (k == C_PUNCT) {
		t->punct++;
	}
}

/*
 * Adds byte i to the tally of a range that ends at e (i < e), growing it
 * backwards.  Words are counted at their last byte instead of their
 * first, which gives the same count for any range.
 */
static inline void tally_add_back(struct tally *t, const unsigned char *u, size_t i, size_t e)
{
	unsigned b = u[i], k = cls[b];

	if (b < 0x80)
		t->ascii++;
	else if (b >= 0xc0)
		t->cps++;
	if (k == C_WORD) {
		if (i + 1 == e || cls[u[i + 1]] != C_WORD)
			t->words++;
	} else if (k == C_PUNCT) {
		t->punct++;
	}
}

size_t tok_estimate(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	struct tally t = { 0, 0, 0, 0 };
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		tally_add(&t, u, 0, i);
	return tally_est(&t);
}

/* --- Markdown structure ------------------------------------------------- */

struct mdhead {
	size_t start;        /* first non-blank byte of the heading's (first) line */
	size_t end;          /* end of its last line: the '\n' or n */
	size_t title, tlen;  /* the title text, trimmed */
	int level;           /* 1..6 */
};

struct mdfence {
	size_t start, end;   /* from the opening line's start to the closing line's end */
};

struct md {
	struct buf heads, fences;  /* arrays of struct mdhead, struct mdfence */
	size_t nh, nf;
};

static const struct mdhead *md_head(const struct md *m, size_t i)
{
	return (const struct mdhead *)(const void *)m->heads.data + i;
}

static const struct mdfence *md_fence(const struct md *m, size_t i)
{
	return (const struct mdfence *)(const void *)m->fences.data + i;
}

static int is_blank(unsigned c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A list item, block quote or table row cannot be a setext heading's text. */
static int md_not_para(const unsigned char *u, size_t f, size_t ce)
{
	size_t k = f;

	if (u[f] == '>' || u[f] == '|')
		return 1;
	if (u[f] == '-' || u[f] == '*' || u[f] == '+')
		return f + 1 == ce || is_blank(u[f + 1]);
	while (k < ce && k - f < 9 && u[k] >= '0' && u[k] <= '9')
		k++;
	return k > f && k < ce && (u[k] == '.' || u[k] == ')') &&
	       (k + 1 == ce || is_blank(u[k + 1]));
}

/* Whether [f, ce) is three or more of '-', '*' or '_' with optional blanks. */
static int md_rule(const unsigned char *u, size_t f, size_t ce)
{
	size_t cnt = 0;

	if (u[f] != '-' && u[f] != '*' && u[f] != '_')
		return 0;
	for (size_t k = f; k < ce; k++) {
		if (u[k] == u[f])
			cnt++;
		else if (!is_blank(u[k]))
			return 0;
	}
	return cnt >= 3;
}

/*
 * One pass over the lines: ATX and setext headings, fenced code blocks.
 * A setext heading is recognised only when its text is a one-line
 * paragraph that is not a list item, quote or table row; a longer
 * paragraph over "===" stays plain text (CommonMark would make all of
 * it the heading, which is rare and not worth a heading path).
 */
static int md_scan(const unsigned char *u, size_t n, struct md *m)
{
	size_t ls = 0, fstart = 0, flen = 0, prev_first = 0, prev_end = 0;
	unsigned char fch = 0;
	int in_fence = 0, para_start = 1, prev_cand = 0;

	while (ls < n) {
		const unsigned char *nl = memchr(u + ls, '\n', n - ls);
		size_t le = nl ? (size_t)(nl - u) : n;
		size_t f = ls, ce = le, r;
		int cand = 0;

		while (f < le && u[f] == ' ')
			f++;
		while (ce > f && cls[u[ce - 1]] == C_SPACE)
			ce--;
		if (in_fence) {
			for (r = 0; f + r < ce && u[f + r] == fch; r++)
				;
			if (f - ls <= 3 && r >= flen && f + r == ce) {
				struct mdfence fe = { fstart, le };

				if (buf_add(&m->fences, &fe, sizeof fe))
					return -1;
				m->nf++;
				in_fence = 0;
				para_start = 1;
			}
			goto next;
		}
		if (f == ce) {
			para_start = 1;
			goto next;
		}
		if (f - ls > 3)
			goto plain;
		if (u[f] == '`' || u[f] == '~') {
			for (r = 0; f + r < ce && u[f + r] == u[f]; r++)
				;
			if (r >= 3 && (u[f] == '~' || !memchr(u + f + r, '`', ce - f - r))) {
				in_fence = 1;
				fch = u[f];
				flen = r;
				fstart = ls;
				goto next;
			}
		}
		if (u[f] == '#') {
			for (r = 0; f + r < ce && u[f + r] == '#'; r++)
				;
			if (r <= 6 && (f + r == ce || is_blank(u[f + r]))) {
				struct mdhead h = { f, le, f + r, 0, (int)r };
				size_t te = ce, k = ce;

				while (h.title < te && is_blank(u[h.title]))
					h.title++;
				/* An optional closing run of '#' after a blank goes. */
				while (k > h.title && u[k - 1] == '#')
					k--;
				if (k == h.title || is_blank(u[k - 1]))
					te = k;
				while (te > h.title && is_blank(u[te - 1]))
					te--;
				h.tlen = te - h.title;
				if (buf_add(&m->heads, &h, sizeof h))
					return -1;
				m->nh++;
				para_start = 1;
				goto next;
			}
		}
		if (prev_cand && (u[f] == '=' || u[f] == '-')) {
			for (r = 0; f + r < ce && u[f + r] == u[f]; r++)
				;
			if (f + r == ce) {
				struct mdhead h = { prev_first, le, prev_first,
						    prev_end - prev_first, u[f] == '=' ? 1 : 2 };

				if (buf_add(&m->heads, &h, sizeof h))
					return -1;
				m->nh++;
				para_start = 1;
				goto next;
			}
		}
		if (md_rule(u, f, ce)) {
			para_start = 1;
			goto next;
		}
plain:
		cand = para_start && f - ls <= 3 && !md_not_para(u, f, ce);
		prev_first = f;
		prev_end = ce;
		para_start = 0;
next:
		prev_cand = cand;
		if (!nl)
			break;
		ls = le + 1;
	}
	if (in_fence) {
		struct mdfence fe = { fstart, n };

		if (buf_add(&m->fences, &fe, sizeof fe))
			return -1;
		m->nf++;
	}
	return 0;
}

/* Index of the first heading whose start is >= pos. */
static size_t md_head_at(const struct md *m, size_t pos)
{
	size_t lo = 0, hi = m->nh;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (md_head(m, mid)->start < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first fence whose end is > pos. */
static size_t md_fence_at(const struct md *m, size_t pos)
{
	size_t lo = 0, hi = m->nf;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (md_fence(m, mid)->end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* --- the chunker --------------------------------------------------------- */

struct ck {
	const unsigned char *u;
	size_t n, target, ov;
	bool markdown;
	struct md md;
};

static size_t skip_ws(const struct ck *k, size_t i)
{
	while (i < k->n && cls[k->u[i]] == C_SPACE)
		i++;
	return i;
}

/* 。 ！ ？ (U+3002, U+FF01, U+FF1F) end just before j, within [s, j). */
static int cjk_term_before(const unsigned char *u, size_t s, size_t j)
{
	const unsigned char *p;

	if (j < s + 3)
		return 0;
	p = u + j - 3;
	return (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x82) ||
	       (p[0] == 0xef && p[1] == 0xbc && (p[2] == 0x81 || p[2] == 0x9f));
}

/*
 * Whether the text in [s, j) ends a sentence: . ! ? possibly followed by
 * one closing quote, bracket or emphasis mark, or a CJK full stop.
 * "e.g." counts too; a wrong guess only moves a break a little.  j > s.
 */
static int ends_sentence(const unsigned char *u, size_t s, size_t j)
{
	size_t k = j;

	switch (u[k - 1]) {
	case '"': case '\'': case ')': case ']': case '*': case '_':
		if (k > s + 1)
			k--;
		break;
	default:
		break;
	}
	if (u[k - 1] == '.' || u[k - 1] == '!' || u[k - 1] == '?')
		return 1;
	return u[j - 1] >= 0x80 && cjk_term_before(u, s, j);
}

/*
 * Whether the word starting at q (after whitespace, q > s) starts a
 * sentence or a line: the overlap prefers to begin there.
 */
static int starts_sentence(const struct ck *k, size_t s, size_t q)
{
	size_t j = q;

	while (j > s && cls[k->u[j - 1]] == C_SPACE) {
		if (k->u[j - 1] == '\n')
			return 1;
		j--;
	}
	return j > s && ends_sentence(k->u, s, j);
}

/* Cursors into the Markdown arrays, valid for one forward scan. */
struct mdcur {
	size_t h, f;
};

/*
 * The kind of break at the whitespace run [rs, re), which holds nl
 * newlines and follows a sentence end when sent.
 */
static int run_level(const struct ck *k, struct mdcur *cur, size_t rs, size_t re,
		     size_t nl, int sent)
{
	int l = sent ? LV_SENT : LV_SPACE;

	if (nl >= 2)
		l = LV_PARA;
	else if (nl == 1)
		l = sent ? LV_LINESENT : LV_LINE;
	if (!k->markdown)
		return l;
	while (cur->h < k->md.nh && md_head(&k->md, cur->h)->start < re)
		cur->h++;
	/* A heading sticks to what follows it: no break inside or just after one. */
	if (cur->h > 0 && md_head(&k->md, cur->h - 1)->end >= rs)
		return LV_SPACE;
	if (cur->h < k->md.nh && md_head(&k->md, cur->h)->start == re)
		return LV_HEAD;
	while (cur->f < k->md.nf && md_fence(&k->md, cur->f)->end <= rs)
		cur->f++;
	if (l == LV_PARA && cur->f < k->md.nf && md_fence(&k->md, cur->f)->start < rs)
		l = LV_LINE;
	return l;
}

struct cut {
	size_t end;     /* the chunk is [s, end), end already trimmed */
	size_t next;    /* where the text after the chunk begins, before trimming */
	size_t tokens;  /* tok_estimate of [s, end) */
	int level;
};

/* The tally of [a, b), as tok_estimate() counts it. */
static void tally_range(struct tally *t, const unsigned char *u, size_t a, size_t b)
{
	for (size_t i = a; i < b; i++)
		tally_add(t, u, a, i);
}

/*
 * tok_estimate of [s, end) from the tally t of [s, stop) (end <= stop):
 * the counts are additive except for a word that runs across end, which
 * the tally of [end, stop) counts a second time.
 */
static size_t est_prefix(const struct tally *t, const unsigned char *u, size_t s,
			 size_t end, size_t stop)
{
	struct tally tail = { 0, 0, 0, 0 }, head;

	tally_range(&tail, u, end, stop);
	head.words = t->words - tail.words;
	if (end > s && end < stop && cls[u[end - 1]] == C_WORD && cls[u[end]] == C_WORD)
		head.words++;
	head.punct = t->punct - tail.punct;
	head.ascii = t->ascii - tail.ascii;
	head.cps = t->cps - tail.cps;
	return tally_est(&head);
}

/*
 * Where the chunk after [s, e) should start to repeat about k->ov tokens
 * of it: the furthest-back sentence start within the budget if that
 * gives at least a third of it, else the furthest-back word start, else a
 * character boundary (text without spaces).  Always > s; 0 for none.
 */
static size_t overlap_start(const struct ck *k, size_t s, size_t e)
{
	const unsigned char *u = k->u;
	struct tally t = { 0, 0, 0, 0 };
	size_t q = e, qs = 0, qs_est = 0, qw = 0, qc = 0, h;

	/* Never reach back into a heading: the heading path says it already. */
	if (k->markdown && (h = md_head_at(&k->md, e)) > 0 &&
	    md_head(&k->md, h - 1)->end + 1 > s)
		s = md_head(&k->md, h - 1)->end + 1;
	while (q - 1 > s) {
		size_t est;
		unsigned b;

		tally_add_back(&t, u, q - 1, e);
		est = tally_est(&t);
		if (est > k->ov)
			break;
		b = u[--q];
		if (cls[b] == C_SPACE || is_cont(b))
			continue;
		if (cls[u[q - 1]] == C_SPACE) {
			if (starts_sentence(k, s, q)) {
				qs = q;
				qs_est = est;
			}
			qw = q;
		} else if (cjk_term_before(u, s, q)) {
			qs = q;
			qs_est = est;
		} else {
			qc = q;
		}
	}
	if (qs && qs_est * 3 >= k->ov)
		return qs;
	if (qw)
		return qw;
	return qs ? qs : qc;
}

/* What one forward scan found. */
struct scan {
	size_t be[LV_N];  /* the last break of each kind: chunk end, 0 for none */
	size_t bn[LV_N];  /* and where the text after it begins */
	struct tally t;   /* the tally of [s, stop) */
	size_t stop;
	size_t last_end;  /* when the rest of the text fits: where it ends, else 0 */
};

/*
 * Scans forward from s (a non-space byte) while the text still fits the
 * target, recording the last break of each kind whose end is past
 * after.  Returns early, with 1, as soon as it records a break of kind
 * stop_level or better; returns 0 when the budget or the text runs out.
 *
 * The loop is the hot path of the module: it records only whitespace
 * runs and CJK sentence ends as it goes.  The best break between two
 * characters of a word needs no recording: it is where the scan stops,
 * since only the first byte of a character can raise the estimate.
 */
static int scan(const struct ck *k, size_t s, size_t after, int stop_level, struct scan *sc)
{
	const unsigned char *u = k->u;
	size_t i = s, rs = NONE, rnl = 0;
	int rsent = 0, lv;
	struct mdcur cur = { 0, 0 };

	for (lv = 0; lv < LV_N; lv++)
		sc->be[lv] = 0;
	memset(&sc->t, 0, sizeof sc->t);
	sc->last_end = 0;
	if (k->markdown) {
		cur.h = md_head_at(&k->md, s);
		cur.f = md_fence_at(&k->md, s);
	}
	for (; i < k->n; i++) {
		unsigned b = u[i];

		if (cls[b] == C_SPACE) {
			if (rs == NONE) {
				rs = i;
				rnl = 0;
				rsent = ends_sentence(u, s, i);
			}
			rnl += b == '\n';
		} else if (rs != NONE) {
			if (rs > after) {
				lv = run_level(k, &cur, rs, i, rnl, rsent);
				sc->be[lv] = rs;
				sc->bn[lv] = i;
				if (lv >= stop_level) {
					sc->stop = i;
					return 1;
				}
			}
			rs = NONE;
		} else if (i > s && u[i - 1] >= 0x80 && i > after && cjk_term_before(u, s, i)) {
			sc->be[LV_SENT] = sc->bn[LV_SENT] = i;
			if (LV_SENT >= stop_level) {
				sc->stop = i;
				return 1;
			}
		}
		tally_add(&sc->t, u, s, i);
		if (tally_est(&sc->t) > k->target)
			break;
	}
	if (i == k->n) {
		sc->stop = k->n;
		sc->last_end = rs != NONE ? rs : k->n;
		return 0;
	}
	sc->stop = i + 1;
	if (rs != NONE) {
		/*
		 * Stopped inside whitespace: read to its end to know what kind
		 * of break it is.  Whitespace after the chunk's end costs the
		 * chunk nothing, so the run's kind must not depend on where in
		 * it the budget ran out.
		 */
		size_t re = i + 1;

		while (re < k->n && cls[u[re]] == C_SPACE)
			rnl += u[re++] == '\n';
		if (re == k->n) {
			sc->last_end = rs;  /* only whitespace is left */
		} else if (rs > after) {
			lv = run_level(k, &cur, rs, re, rnl, rsent);
			sc->be[lv] = rs;
			sc->bn[lv] = re;
			return lv >= stop_level;
		}
	} else if (i > s && i > after && cls[u[i - 1]] != C_SPACE) {
		sc->be[LV_CHAR] = sc->bn[LV_CHAR] = i;
	}
	return 0;
}

/*
 * Finds where the chunk that starts at s (a non-space byte) ends.  Only
 * ends past after count, so that with overlap every chunk reaches past
 * the one before.  Returns 0, or -1 when no such end fits (possible only
 * when s is an overlap start, s < after).
 */
static int find_cut(const struct ck *k, size_t s, size_t after, struct cut *out)
{
	struct scan sc, ahead;
	int lv, best = -1;
	size_t i, q;

	scan(k, s, after, LV_N, &sc);
	if (sc.last_end) {
		/* The rest fits: this is the last chunk. */
		out->end = sc.last_end;
		out->next = k->n;
		out->level = LV_PARA;
		out->tokens = est_prefix(&sc.t, k->u, s, out->end, sc.stop);
		return out->end > after ? 0 : -1;
	}
	for (lv = LV_N - 1; lv >= 0 && best < 0; lv--)
		if (sc.be[lv])
			best = lv;
	if (best < 0) {
		if (s < after)
			return -1;
		/*
		 * Not even the first character fits.  Cannot happen while every
		 * character counts 1 and the target is >= 1, but the loop must
		 * progress whatever the estimate does: take one character.
		 */
		i = s + 1;
		while (i < k->n && is_cont(k->u[i]))
			i++;
		out->end = out->next = i;
		out->level = LV_CHAR;
		out->tokens = tok_estimate((const char *)k->u + s, i - s);
		return 0;
	}
	out->end = sc.be[best];
	out->next = sc.bn[best];
	out->level = best;
	out->tokens = est_prefix(&sc.t, k->u, s, out->end, sc.stop);
	/*
	 * A chunk less than half full because the paragraph (line, sentence)
	 * after it did not fit: if that paragraph will not fit a chunk of
	 * its own either, it is going to be split anyway, so start splitting
	 * it here and fill this chunk.  Otherwise it moves whole to the next
	 * chunk.  Sections are kept apart: never across a heading break.
	 */
	if (best == LV_HEAD || best == LV_CHAR || out->tokens >= k->target / 2)
		return 0;
	/* Look ahead as the next chunk will, overlap included. */
	i = skip_ws(k, out->next);
	if (k->ov && (q = overlap_start(k, s, out->end)) && q < i)
		i = q;
	if (scan(k, i, out->end, best, &ahead) || ahead.last_end)
		return 0;
	for (lv = best - 1; lv >= 0; lv--) {
		if (sc.be[lv] > out->end) {
			out->end = sc.be[lv];
			out->next = sc.bn[lv];
			out->level = lv;
			out->tokens = est_prefix(&sc.t, k->u, s, out->end, sc.stop);
			break;
		}
	}
	return 0;
}

static size_t count_nl(const unsigned char *u, size_t a, size_t b)
{
	size_t cnt = 0;

	/* A plain loop the compiler vectorises; memchr per line costs more. */
	for (size_t i = a; i < b; i++)
		cnt += u[i] == '\n';
	return cnt;
}

/* The heading path for stack[1..6] as an owned string, NULL when empty. */
static int heading_path(const struct ck *k, const size_t *stack, char **out)
{
	struct buf b;

	*out = NULL;
	buf_init(&b, 0);
	for (int lv = 1; lv <= 6; lv++) {
		const struct mdhead *h;

		if (stack[lv] == NONE)
			continue;
		h = md_head(&k->md, stack[lv]);
		if (!h->tlen)
			continue;
		if ((b.len && buf_add(&b, " > ", 3)) ||
		    buf_add(&b, k->u + h->title, h->tlen)) {
			buf_release(&b);
			return -1;
		}
	}
	if (b.len)
		*out = buf_detach(&b, NULL);
	return 0;
}

void chunk_list_release(struct chunk_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].heading);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int chunk_text(const char *text, size_t n, const struct chunk_opts *o,
	       struct chunk_list *out, struct ai_err *err)
{
	struct ck k;
	struct buf arr;
	struct chunk_list res = CHUNK_LIST_INIT;
	size_t stack[7], hp = 0, lpos = 0, line = 1, after = 0, s;
	int rc = -1;

	out->v = NULL;
	out->n = 0;
	if (!o || (!text && n))
		return ai_errf(err, AI_EX_SOFTWARE, "chunk_text: no options or no text");
	k.u = (const unsigned char *)text;
	k.n = n;
	k.target = o->target_tokens ? o->target_tokens : 1;
	k.ov = o->overlap_tokens >= k.target ? k.target / 2 : o->overlap_tokens;
	k.markdown = o->markdown;
	buf_init(&k.md.heads, 0);
	buf_init(&k.md.fences, 0);
	k.md.nh = k.md.nf = 0;
	buf_init(&arr, 0);
	for (int i = 0; i < 7; i++)
		stack[i] = NONE;
	if (k.markdown && md_scan(k.u, n, &k.md))
		goto oom;

	s = skip_ws(&k, 0);
	while (s < n) {
		struct chunk ch;
		struct cut c;
		size_t next, q;

		if (find_cut(&k, s, after, &c)) {
			/* The overlap left no room to move on: start after the last chunk. */
			s = skip_ws(&k, after);
			if (find_cut(&k, s, after, &c))
				break;  /* not reached: s > after always finds a cut */
		}
		/*
		 * The heading path is the one in force at the chunk's first
		 * text that is not a heading line: a chunk that opens with
		 * "## Install" and "### Debian" is about Debian.
		 */
		for (size_t pos = s; hp < k.md.nh && md_head(&k.md, hp)->start <= pos &&
		     md_head(&k.md, hp)->start < c.end; hp++) {
			const struct mdhead *h = md_head(&k.md, hp);

			stack[h->level] = hp;
			for (int lv = h->level + 1; lv <= 6; lv++)
				stack[lv] = NONE;
			if (h->end >= pos)
				pos = skip_ws(&k, h->end);
		}
		line += count_nl(k.u, lpos, s);
		lpos = s;
		ch.off = s;
		ch.len = c.end - s;
		ch.line_start = line;
		ch.line_end = line + count_nl(k.u, s, c.end);
		ch.tokens = c.tokens;
		if (heading_path(&k, stack, &ch.heading))
			goto oom;
		if (buf_add(&arr, &ch, sizeof ch)) {
			free(ch.heading);
			goto oom;
		}
		res.v = (struct chunk *)(void *)arr.data;
		res.n++;

		next = skip_ws(&k, c.next);
		if (next >= n)
			break;
		after = c.end;
		if (k.ov && c.level != LV_HEAD && (q = overlap_start(&k, s, c.end)) && q < next)
			next = q;
		s = next;
	}
	if (res.n)
		out->v = (struct chunk *)(void *)buf_detach(&arr, NULL);
	out->n = res.n;
	rc = 0;
	goto done;
oom:
	res.v = (struct chunk *)(void *)arr.data;
	for (size_t i = 0; i < res.n; i++)
		free(res.v[i].heading);
	buf_release(&arr);
	ai_errf(err, AI_EX_OSERR, "cannot chunk text: out of memory");
done:
	buf_release(&k.md.heads);
	buf_release(&k.md.fences);
	return rc;
}
