#ifndef AI_MARKDOWN_H
#define AI_MARKDOWN_H
/*
 * markdown.h - Markdown rendered for a terminal as it streams.
 *
 * A model's answer arrives in pieces; a person wants to read it rendered,
 * not as "**bold**" and "## Heading", and without waiting for the end.
 * The renderer writes what is decided and nothing else: a prose line
 * (paragraph or list item) word by word, as far as no markup still open
 * could change it, a code line once it cannot be the closing fence, any
 * other line when its newline arrives, a table when its last row is
 * followed by a line that is not a row.  What it has written is never
 * taken back.  So the output depends only on the text, never on how it
 * was cut into pieces: feeding it byte by byte gives the same bytes as
 * feeding it whole, only sooner.
 *
 * What it renders: ATX headings, emphasis (* _ ** __ ~~), inline code,
 * fenced code blocks (every code line written as it came, with nothing
 * added inside it, so that it can be copied; the language is shown on a
 * line of its own above), bullet, ordered and task lists, block quotes,
 * tables aligned to their columns, thematic breaks, links as their text
 * followed by the URL.  Prose is wrapped to the width given.  Not
 * rendered: setext headings (the text line is out before the underline
 * arrives), indented code, HTML, tables without a leading '|'; they
 * show as text.
 *
 * The renderer adds SGR sequences of its own (unless plain) and nothing
 * else: a control character in its input is written as U+FFFD.  It is
 * meant to sit behind termsafe.h, which shows the model's own escape
 * sequences as visible characters before they get here.
 *
 * It never prints: output goes into the caller's buf.
 *
 *	struct markdown m;
 *	markdown_init(&m, 80, true);
 *	for each piece: markdown_feed(&m, p, n, &out, &err), show out
 *	at the end:     markdown_end(&m, &out, &err), show out
 *	markdown_release(&m);
 */
#include "ai.h"
#include "buf.h"

/* A line longer than this is rendered in parts of this size (cut between characters). */
#define MARKDOWN_LINE_MAX (64 * 1024)
/* A prose line longer than this waits for its newline (re-reading it at each word would be quadratic). */
#define MARKDOWN_PARTIAL_MAX 4096
/* A line still coming is looked at (its decided words written) at most this often. */
#define MARKDOWN_LOOK_NS 10000000
/* A table with more bytes than this is shown in parts, each aligned on its own. */
#define MARKDOWN_TABLE_MAX (256 * 1024)
#define MARKDOWN_MAX_COLS 64
#define MARKDOWN_MAX_LIST 16

struct markdown {
	int width;              /* columns to wrap prose to */
	bool sgr;               /* false: plain, no escape sequence at all (NO_COLOR, TERM=dumb) */
	int64_t look_ns;        /* a line still coming is looked at no more often (init:
	                         * MARKDOWN_LOOK_NS; 0: at every piece, as the tests do) */
	/* private */
	struct buf line;        /* the input line still waiting for its newline */
	struct buf held;        /* a line with a '|': a table's header if a delimiter row follows */
	struct buf table;       /* the rows of the table being read, each ended by '\n' */
	bool in_table;
	int ncols;
	unsigned char align[MARKDOWN_MAX_COLS];
	bool in_code;           /* inside a fenced code block */
	char fence;             /* '`' or '~' */
	size_t fence_len, fence_indent;
	bool blank;             /* the last line written was blank, or nothing was written yet */
	int nlist;              /* open list levels and the indent of their markers */
	int list_indent[MARKDOWN_MAX_LIST];
	int list_col[MARKDOWN_MAX_LIST];   /* where the item's marker starts on the screen */
	int list_text[MARKDOWN_MAX_LIST];  /* where its text starts */
	/*
	 * A prose line (a paragraph's or a list item's) is written word by
	 * word as it arrives, as far as its rendering is decided; a code line
	 * as soon as it cannot be the closing fence.
	 */
	bool open;              /* a prose line is being written */
	bool open_list;         /* it is a list item (its text is trimmed at both ends) */
	size_t open_from;       /* where its inline text starts in line */
	int open_quote;
	char mark[24];          /* its list marker, or "" */
	size_t mark_len;
	int indent;
	bool code_started;      /* the code line being written is decided to be code */
	size_t code_done;       /* bytes of line written so far */
	size_t wpos;            /* the wrap cursor: next byte of vis to write */
	int wcol;               /* columns used on the output line */
	bool wfirst, wstarted;  /* on the first output line; its prefix is written */
	unsigned wcur;          /* the style on */
	size_t unsure;          /* inline: the source offset where the undecided part starts */
	size_t vis_safe;        /* and the bytes of vis before it */
	bool tab_space;
	bool end_open;          /* inline: the text is cut before an undecided part */
	int64_t last_look;      /* monotonic ns of the last look at a line still coming */         /* a tab is a space (table cells, whose width must be known) */
	struct buf vis, sty;    /* one rendered line: its text, and a style byte per byte */
	struct buf toks, cnt;   /* the inline parser's tokens and emphasis counters */
	struct buf cells;       /* a table's cells, rendered in vis: where each is and its width */
	bool fail;              /* a buf could not grow: reported by feed or end */
};

/*
 * Sets m up for a new text, rendered to width columns (at least 20 is
 * used), with SGR sequences when sgr is true.
 */
void markdown_init(struct markdown *m, int width, bool sgr);

/*
 * Renders the lines p[0..n) completes, appending them to out (caller-owned);
 * an incomplete last line is kept for the next piece.  Returns 0, or -1
 * with AI_EX_OSERR in err when out or m's own buffers cannot grow (what
 * was appended before stays).
 */
int markdown_feed(struct markdown *m, const void *p, size_t n, struct buf *out,
		  struct ai_err *err);

/*
 * Ends the text: renders the line still kept and a table still open.
 * When the text did not end with a newline, neither does the output.
 * m is then ready for a new text with the same width and style.
 * Returns 0, or -1 as markdown_feed.
 */
int markdown_end(struct markdown *m, struct buf *out, struct ai_err *err);

/* Frees m's buffers. */
void markdown_release(struct markdown *m);

#endif
