#ifndef AI_TERMSAFE_H
#define AI_TERMSAFE_H
/*
 * termsafe.h - model text made safe to show on a terminal.
 *
 * A model's reply can hold escape sequences that move the cursor, retitle
 * the window, write the clipboard (OSC 52) or hide text.  termsafe copies
 * text with every control character made visible instead:
 *
 *   - C0 controls other than newline and tab become their Control Pictures
 *     U+2400..U+241F (so ESC shows as U+241B "␛");
 *   - DEL becomes U+2421 "␡";
 *   - the C1 controls U+0080..U+009F, written as UTF-8, become U+FFFD;
 *   - bytes that are not UTF-8 (RFC 3629: no overlongs, surrogates or
 *     code points above U+10FFFF) become U+FFFD, one per bad byte.
 *
 * Everything else, printable ASCII and valid UTF-8, passes unchanged, and
 * the output is always valid UTF-8.  Text arrives in pieces (stream
 * deltas) that may split a character: the incomplete tail of one piece is
 * carried in the struct to the next, so a character is never cut in two
 * nor taken for garbage.
 *
 *	struct termsafe t;
 *	termsafe_init(&t);
 *	for each piece: termsafe_feed(&t, p, n, &out, &err), show out
 *	at the end:     termsafe_flush(&t, &out, &err), show out
 */
#include "ai.h"
#include "buf.h"

struct termsafe {
	/* private: an incomplete UTF-8 sequence carried to the next piece */
	unsigned char pend[4];
	size_t npend;           /* bytes in pend; 0: none */
	size_t need;            /* length of the sequence pend starts */
	bool line;              /* newline is a control too (termsafe_init_line) */
};

/* Sets t up with nothing carried.  Also discards a carried tail unseen. */
void termsafe_init(struct termsafe *t);

/*
 * As termsafe_init, for text that must stay on one line (a diagnostic):
 * newline is shown as U+240A like the other C0 controls, so that
 * text from a server cannot start a line of its own.  Tab still passes.
 */
void termsafe_init_line(struct termsafe *t);

/*
 * Appends p[0..n) to out, made safe; an incomplete UTF-8 sequence at the
 * end of p is kept in t and appended when the next piece completes it.
 * out is caller-owned.  Room for the worst case (3 bytes out for every
 * byte in, carried ones included) is made before anything is written, so
 * on failure (-1, AI_EX_OSERR in err: out of memory, or out's cap) out
 * and t are unchanged.  Returns 0.
 */
int termsafe_feed(struct termsafe *t, const void *p, size_t n, struct buf *out,
		  struct ai_err *err);

/* True when t carries an incomplete sequence that a flush would replace. */
bool termsafe_pending(const struct termsafe *t);

/*
 * Ends the text: a carried incomplete sequence (the text stopped inside a
 * character) is appended to out as one U+FFFD, and t is empty again.
 * Appends nothing when nothing was carried.  Returns 0, or -1 with
 * AI_EX_OSERR in err, t unchanged, when out cannot grow.
 */
int termsafe_flush(struct termsafe *t, struct buf *out, struct ai_err *err);

#endif
