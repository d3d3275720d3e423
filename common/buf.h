#ifndef AI_BUF_H
#define AI_BUF_H
/*
 * buf.h - the one growable byte buffer, with a hard maximum size.
 *
 * All input, HTTP bodies and stream lines go through it, so no input
 * can grow memory without bound (curl's dynbuf "toobig" idea).  The
 * data is always NUL-terminated, so it can be used as a C string when
 * it holds text; len does not count the NUL.
 */
#include "ai.h"

struct buf {
	char *data;     /* owned; NULL until the first add */
	size_t len;     /* bytes used, not counting the terminating NUL */
	size_t alloc;   /* bytes allocated */
	size_t max;     /* hard cap on len; 0 means SIZE_MAX */
};

#define BUF_INIT { NULL, 0, 0, 0 }

/* Initialises b, empty, with the given maximum length (0: no cap). */
void buf_init(struct buf *b, size_t max);

/* Frees the data and leaves b empty and reusable with the same cap. */
void buf_release(struct buf *b);

/* Empties b but keeps its allocation. */
void buf_reset(struct buf *b);

/*
 * Append n bytes.  Returns 0, or -1 with errno EFBIG when the result
 * would pass b->max, or ENOMEM; b is unchanged on failure.
 */
int buf_add(struct buf *b, const void *p, size_t n);
int buf_addstr(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...) AI_PRINTF(2, 3);
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);

/* Makes sure n more bytes fit without reallocation. Same errors as buf_add. */
int buf_grow(struct buf *b, size_t n);

/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/*
 * Returns the data as an owned, NUL-terminated string (free with free())
 * and leaves b empty.  An empty buffer gives ""; NULL only when out of memory.
 */
char *buf_detach(struct buf *b, size_t *len);

#endif
