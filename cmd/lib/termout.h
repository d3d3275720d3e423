#ifndef AI_TERMOUT_H
#define AI_TERMOUT_H
/*
 * termout.h - the one way text from a model or a server reaches a
 * terminal: as text, never as control (termsafe.h does the work).
 *
 *   - Model text on stdout (struct termout): made safe when stdout is a
 *     terminal and --raw was not given; written byte for byte otherwise,
 *     so a pipe or a file gets exactly what the model sent.  On a
 *     terminal its Markdown is rendered as well (markdown.h), behind the
 *     neutraliser: --markdown=auto|always|never or the markdown key
 *     decides (termout_markdown), plain without SGR under NO_COLOR or
 *     TERM=dumb, wrapped to the terminal's width (else $COLUMNS, else 80).
 *   - Diagnostics on stderr (termout_visible): always made safe, terminal
 *     or not, and kept on one line.  A diagnostic is "prog: message", one
 *     line, for a person or for grep; no control character belongs in it,
 *     and a log written with 2>file is read later on a terminal (tail -f,
 *     less -R), so an escape sequence is as dangerous there.
 *   - Progress on stderr (struct termout_progress): a line redrawn in place
 *     (CR, ESC [K) on a terminal that understands it; on one that does
 *     not (TERM unset, empty or "dumb", as in Emacs' shell) plain lines,
 *     now and then, with no escape codes.
 *
 * Like cli.h this prints and exits: it serves main().
 */
#include "ai.h"
#include "buf.h"
#include "config.h"
#include "markdown.h"
#include "termsafe.h"

/*
 * When model text is rendered as Markdown: an enum ai_markdown (config.h),
 * set by setup_client from --markdown and the markdown key.  auto: when
 * stdout is a terminal and not --raw; always: also into a pipe, and made
 * safe even with --raw, since the renderer's own escapes must be the only
 * ones; never: not at all.
 */
extern int termout_markdown;

/* Stdout's terminal width, else $COLUMNS, else 80. */
int termout_width(void);

/* Whether SGR (colour, dim, bold) is wanted and understood: NO_COLOR unset or
 * empty, TERM set and not dumb.  Whether the stream is a terminal is the caller's to ask. */
bool termout_sgr(void);

/* Model text on its way to stdout. */
struct termout {
	bool neutral;           /* stdout is a terminal and not --raw: make it safe */
	bool raw;
	int md;                 /* Markdown: 1 rendered, -1 not, 0 not decided yet */
	struct termsafe ts;     /* a character split between two writes */
	struct buf scratch;     /* the safe copy of one write */
	struct markdown m;
	struct buf rendered;    /* the rendered copy of one write */
};

/*
 * Decides once: neutral when stdout is a terminal and raw is false.
 * Whether Markdown is rendered is decided at the first write, once the
 * configuration is read (termout_markdown).
 */
void termout_init(struct termout *o, bool raw);

/*
 * Writes p[0..n) to stdout (cli_write: EPIPE exits 0, another error 74),
 * made safe when o->neutral; flushes when flush is true.  A character
 * split at the end of p is held until the next write completes it.
 */
void termout_write(struct termout *o, const void *p, size_t n, bool flush);

/*
 * Ends the text: a character left incomplete is written as U+FFFD, and a
 * Markdown line or table still held back is rendered.  Returns true when
 * what was written leaves the cursor inside a line, else false.
 */
bool termout_end(struct termout *o, bool flush);

void termout_release(struct termout *o);

/*
 * Appends s[0..n) to b as one line of visible text: every control
 * character, newline included, shown as its Control Picture, bytes that
 * are not UTF-8 as U+FFFD (termsafe_init_line).  Returns 0, or -1 when b
 * cannot grow (b is then unchanged).  For every byte on stderr that came
 * from a model or a server: error messages, -v headers, tool names.
 */
int termout_visible(struct buf *b, const void *s, size_t n);

/* A progress line on stderr. */
struct termout_progress {
	bool dumb;              /* TERM cannot redraw a line: plain lines instead */
	int64_t last_ms;        /* when a plain line was last written (monotonic) */
};

/* Reads TERM: unset, empty or "dumb" means plain lines. */
void termout_progress_init(struct termout_progress *p);

/*
 * Shows the progress line made from fmt, prefixed with the program name:
 * redrawn in place (ended with a newline when final), or on a dumb
 * terminal as a plain line at most every few seconds, and always when
 * final.  The caller decides whether progress is wanted at all (stderr a
 * terminal, not -q).
 */
void termout_progress(struct termout_progress *p, bool final, const char *fmt, ...) AI_PRINTF(3, 4);

#endif
