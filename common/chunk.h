#ifndef AI_CHUNK_H
#define AI_CHUNK_H
/*
 * chunk.h - split long text into pieces of a bounded token size.
 *
 * Shared by ai-summarize (map-reduce over long input: markdown off, no
 * overlap, target = the input-token budget) and ai-index (RAG: markdown
 * on, overlap about 15% of the target).  Pure computation: no I/O, no
 * global state, safe to call from several threads at once.
 */
#include "ai.h"

/*
 * A rough token count of s[0..n), the one estimate the whole project uses.
 * Cheap (one pass, no tables to load), deterministic, and meant to be an
 * over- rather than an under-estimate for English prose, code and CJK:
 *
 *     tokens = max(words * 4 / 3 + punct,  ceil(ascii / 4) + nonascii)
 *
 *   words     runs of word bytes: ASCII letters, digits, '_' and every
 *             non-ASCII byte (so "café" and "日本語" are one word each)
 *   punct     ASCII bytes that are neither word bytes nor whitespace
 *             (punctuation, operators, control characters): one token each
 *   ascii     ASCII bytes, whitespace included
 *   nonascii  non-ASCII characters (UTF-8 lead bytes): one token each, as
 *             a CJK character roughly is; accented Latin is over-counted
 *
 * English prose comes out at about 1.3 tokens a word, code at about one a
 * symbol, Chinese or Japanese at one a character.  Properties callers may
 * rely on: 0 for n == 0 and at least 1 otherwise; never decreases when
 * text is appended (tok_estimate(s, k) is monotone in k); one character
 * alone is exactly 1.  s need not be NUL-terminated.
 */
size_t tok_estimate(const char *s, size_t n);

struct chunk {
	size_t off, len;              /* the chunk is input[off, off + len) */
	size_t line_start, line_end;  /* 1-based, inclusive, of its first and last byte */
	char *heading;                /* owned (freed by chunk_list_release): the Markdown
	                                 heading path in force where the chunk starts, e.g.
	                                 "Install > Debian"; NULL when none or markdown off */
	size_t tokens;                /* tok_estimate(input + off, len) */
};

struct chunk_opts {
	/*
	 * Aim for chunks of about this many tokens.  It is a hard maximum:
	 * tokens <= target_tokens for every chunk (a single character always
	 * fits, since it counts 1).  0 is taken as 1.
	 */
	size_t target_tokens;
	/*
	 * Start each chunk about this many tokens before the end of the
	 * previous one, at a sentence start, else a word start, else (text
	 * without spaces, such as Chinese) a character boundary.  A value
	 * >= target_tokens is clamped to target_tokens / 2.  0: no overlap.
	 * No overlap is carried across a Markdown heading break: a section
	 * starts clean, under its own heading path.
	 */
	size_t overlap_tokens;
	/*
	 * Track Markdown headings (ATX "# Title" up to level 6; setext
	 * "Title" underlined with === or --- when the title is a one-line
	 * paragraph) for the heading path, prefer breaking just before a
	 * heading, never break between a heading and what follows it when
	 * anything else is possible, and ignore '#' lines inside ``` or ~~~
	 * fenced code blocks (where blank lines also count only as line ends).
	 */
	bool markdown;
};

struct chunk_list {
	struct chunk *v;  /* owned; free with chunk_list_release */
	size_t n;
};

#define CHUNK_LIST_INIT { NULL, 0 }

/*
 * Splits text[0..n) into chunks and stores them in *out (which it
 * overwrites without freeing; release it with chunk_list_release).
 * text must be valid UTF-8 without NUL bytes (the caller checks with
 * utf8_valid_prefix); it need not be NUL-terminated.
 *
 * Each chunk holds whole characters with leading and trailing whitespace
 * trimmed.  Chunks are in order, each starting strictly after the one
 * before and ending strictly after it, and together they cover every
 * non-whitespace byte of the input; without overlap they do not overlap.
 * Whitespace-only or empty input gives zero chunks (out->v NULL).
 *
 * Where a chunk ends: among the places where the text from the chunk's
 * start still fits the target, the last one of the best kind present:
 * before a Markdown heading, then a blank line (paragraph end), then a
 * line end that closes a sentence, then any line end, then a sentence
 * end (". ", "! ", "? ", also before a closing quote or bracket, and
 * after 。！？), then any whitespace, then any character boundary.  So
 * whole paragraphs are packed greedily while they fit, a paragraph too
 * big is split by sentences, a sentence by words, a word by characters.
 * One refinement: when that would leave a chunk less than half full
 * because the next paragraph (or line, or sentence) did not fit, and
 * that paragraph is too big for a chunk of its own anyway, its first
 * sentences fill this chunk instead.  Never across a heading break.
 *
 * Runs in time linear in n (plus the overlap re-read).  Returns 0, or -1
 * with err filled (AI_EX_OSERR) when memory runs out; *out is then empty.
 */
int chunk_text(const char *text, size_t n, const struct chunk_opts *o,
	       struct chunk_list *out, struct ai_err *err);

/* Frees every chunk's heading and the array, and leaves l empty. */
void chunk_list_release(struct chunk_list *l);

#endif
