#include "termsafe.h"

#define REPLACEMENT 0xfffdu

void termsafe_init(struct termsafe *t)
{
	memset(t, 0, sizeof(*t));
}

void termsafe_init_line(struct termsafe *t)
{
	termsafe_init(t);
	t->line = true;
}

bool termsafe_pending(const struct termsafe *t)
{
	return t->npend > 0;
}

/* Appends cp (below U+10000, which is all this file makes) as UTF-8; the room is already there. */
static void add_cp(struct buf *b, unsigned cp)
{
	char u[3];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	buf_add(b, u, n);
}

/* The second byte a lead byte allows (RFC 3629): no overlongs, surrogates or > U+10FFFF. */
static bool second_ok(unsigned char lead, unsigned char c)
{
	switch (lead) {
	case 0xe0: return c >= 0xa0 && c <= 0xbf;
	case 0xed: return c >= 0x80 && c <= 0x9f;
	case 0xf0: return c >= 0x90 && c <= 0xbf;
	case 0xf4: return c >= 0x80 && c <= 0x8f;
	default: return c >= 0x80 && c <= 0xbf;
	}
}

/*
 * Every byte in, carried or new, makes at most 3 bytes out: a control or a
 * bad byte makes one 3-byte character, a sequence of k bytes makes k bytes
 * or one U+FFFD.  So 3 * (n + 3) is enough, and growing first makes a
 * failure leave everything as it was.
 */
static int make_room(const struct termsafe *t, size_t n, struct buf *out, struct ai_err *err)
{
	if (n > SIZE_MAX / 3 - 3 || buf_grow(out, 3 * (n + t->npend)))
		return ai_errf(err, AI_EX_OSERR, "out of memory making text safe for a terminal");
	return 0;
}

/*
 * Whether the 8 bytes at p are all printable ASCII (0x20..0x7e): the
 * commonest case, tested a word at a time.  A byte below 0x20 borrows
 * into its high bit when 0x20 is taken from it (and had none: ~x); one
 * at 0x7f or above has its high bit set or gets it when 1 is added.  A
 * borrow or carry across bytes starts only at a byte already reported.
 */
static bool all_printable8(const unsigned char *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return !((((x - 0x2020202020202020u) & ~x) | x | (x + 0x0101010101010101u)) &
		 0x8080808080808080u);
}

int termsafe_feed(struct termsafe *t, const void *p_, size_t n, struct buf *out, struct ai_err *err)
{
	const unsigned char *p = p_;

	if (!n)
		return 0;
	if (make_room(t, n, out, err))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (t->npend) {
			bool ok = t->npend == 1 ? second_ok(t->pend[0], c) : (c >= 0x80 && c <= 0xbf);

			if (ok) {
				t->pend[t->npend++] = c;
				if (t->npend == t->need) {
					/* U+0080..U+009F are C2 80..C2 9F. */
					if (t->need == 2 && t->pend[0] == 0xc2 && t->pend[1] <= 0x9f)
						add_cp(out, REPLACEMENT);
					else
						buf_add(out, t->pend, t->npend);
					t->npend = 0;
				}
				continue;
			}
			/* The sequence broke off: it is one bad character, and c starts afresh. */
			add_cp(out, REPLACEMENT);
			t->npend = 0;
		}
		if ((c == '\n' && !t->line) || c == '\t' || (c >= 0x20 && c < 0x7f)) {
			/* A run of them at once: nearly all text is such a run (the room is made). */
			size_t j = i;

			while (j < n) {
				if (n - j >= 8 && all_printable8(p + j)) {
					j += 8;
					continue;
				}
				if (!((p[j] >= 0x20 && p[j] < 0x7f) || p[j] == '\t' || (p[j] == '\n' && !t->line)))
					break;
				j++;
			}
			memcpy(out->data + out->len, p + i, j - i);
			out->len += j - i;
			out->data[out->len] = '\0';
			i = j - 1;
		}
		else if (c < 0x20)
			add_cp(out, 0x2400u + c);
		else if (c == 0x7f)
			add_cp(out, 0x2421u);
		else if (c >= 0xc2 && c <= 0xf4) {
			t->pend[0] = c;
			t->npend = 1;
			t->need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		} else {
			add_cp(out, REPLACEMENT);
		}
	}
	return 0;
}

int termsafe_flush(struct termsafe *t, struct buf *out, struct ai_err *err)
{
	if (!t->npend)
		return 0;
	if (buf_grow(out, 3))
		return ai_errf(err, AI_EX_OSERR, "out of memory making text safe for a terminal");
	add_cp(out, REPLACEMENT);
	t->npend = 0;
	return 0;
}
