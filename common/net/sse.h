#ifndef AI_SSE_H
#define AI_SSE_H
/*
 * sse.h - an incremental parser for server-sent events (text/event-stream),
 * following the WHATWG HTML "event stream interpretation" rules.
 *
 * Feed it the bytes as they arrive, in pieces of any size; it calls back
 * once per complete event.  Where a piece ends does not matter: a line
 * end split as CR|LF across two feeds is one line end, a UTF-8 BOM split
 * across feeds is still dropped, and a UTF-8 sequence split across feeds
 * arrives whole (bytes are buffered, never decoded or altered).
 *
 * Lines and events are bounded (struct buf caps), so a server that never
 * sends a line end cannot grow memory without bound.
 *
 * One deliberate, switchable extension: llama.cpp's server reports errors
 * mid-stream as a non-standard "error: {...}" field line.  The standard
 * ignores unknown fields, which would lose the message; with error_field
 * set (the default) such a block is delivered as an event of type "error"
 * whose data is the field's value.  Clear error_field for strict WHATWG
 * behaviour.
 */
#include "ai.h"
#include "buf.h"

/*
 * One dispatched event.  Every pointer is borrowed from the parser and
 * valid only during the callback.
 */
struct sse_event {
	const char *event;   /* the event type; "" when none was given (means "message") */
	const char *data;    /* data lines joined with LF, NUL-terminated (may hold NULs) */
	size_t data_len;     /* bytes in data, not counting the terminating NUL */
	const char *id;      /* the last event ID seen on the stream so far, "" when none */
	long retry;          /* the stream's reconnection time in ms; -1 when never set */
};

/*
 * Called once per event.  Returning non-zero stops parsing: sse_feed then
 * returns -1 and leaves the error value alone (the callback may fill it).
 */
typedef int (*sse_event_fn)(const struct sse_event *ev, void *ud);

struct sse_parser {
	struct buf line;     /* an unterminated line carried between feeds */
	struct buf data;     /* the data buffer of the event being built */
	struct buf event;    /* the event type buffer */
	struct buf id;       /* the last event ID buffer; persists across events */
	struct buf error;    /* value of a non-standard "error" field (see error_field) */
	long retry;          /* reconnection time from the last valid retry field; -1 none */
	size_t max_line;     /* longest line accepted, without its line end */
	size_t max_event;    /* largest data buffer accepted */
	bool error_field;    /* deliver "error:" field lines as "error" events (default true) */
	bool got_error;      /* an "error" field was seen in the current block */
	bool started;        /* past the first bytes, where a BOM may stand */
	unsigned char bom;   /* bytes of a possible BOM matched so far (0..2) */
	bool cr;             /* the last line ended in CR: a LF next is part of it */
	bool failed;         /* a feed returned -1; only sse_finish makes it usable again */
};

/*
 * Initialises p for a new stream.  max_line caps a line (without its line
 * end), max_event caps the joined data of one event; 0 means no cap.
 * Allocates nothing; release with sse_release.
 */
void sse_init(struct sse_parser *p, size_t max_line, size_t max_event);

/*
 * Parses n more bytes of the stream, calling fn(ev, ud) for each event
 * completed by them.  Returns 0, or -1:
 *   - a line or event over the caps: err filled, code AI_EX_DATAERR;
 *   - out of memory: code AI_EX_OSERR;
 *   - fn returned non-zero: err is cleared on entry and then holds
 *     whatever fn left in it (code 0 when fn did not touch it).
 * After -1 the parser refuses further bytes until sse_finish.
 * err may be NULL.
 */
int sse_feed(struct sse_parser *p, const char *bytes, size_t n,
	     sse_event_fn fn, void *ud, struct ai_err *err);

/*
 * Ends the stream.  An event not closed by a blank line is discarded, as
 * the standard says; returns true when something was pending (data of an
 * unclosed event, or an unterminated line) or a feed had failed, which
 * tells the caller the stream was cut short.  Leaves p ready for a new stream (a reconnection):
 * the last event ID and the reconnection time are kept, everything else
 * is reset, including the failed state.
 */
bool sse_finish(struct sse_parser *p);

/* Frees p's buffers; p can be used again after sse_init. */
void sse_release(struct sse_parser *p);

#endif
