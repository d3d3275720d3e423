#ifndef AI_UTF8_H
#define AI_UTF8_H
/* utf8.h - UTF-8 checks shared by every program that reads text. */
#include "ai.h"
#include "buf.h"

/*
 * Returns the length of the longest prefix of s[0..n) that is valid
 * UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF)
 * and contains no NUL byte.  Equal to n when all of s is valid.
 */
size_t utf8_valid_prefix(const char *s, size_t n);

/*
 * Returns the length of the longest prefix of s[0..n) that does not end
 * inside a multi-byte sequence: the place to cut a valid UTF-8 string
 * without splitting a character.  s must be valid UTF-8.
 */
size_t utf8_cut(const char *s, size_t n);

/* Line (1-based) and column (1-based, in bytes) of offset off in s. */
void utf8_where(const char *s, size_t off, size_t *line, size_t *col);

/*
 * Appends s[0..n) to b with every NUL byte replaced by U+FFFD: text from a
 * server or a model that holds a NUL (JSON "\u0000") keeps everything after
 * it, where a C string would silently end there.  0, or -1 when b is full
 * (errno EFBIG) or memory runs out (ENOMEM).
 */
int utf8_add_text(struct buf *b, const char *s, size_t n);

/*
 * Checks that s[0..n), read from the input called name, is UTF-8 text
 * without NUL bytes.  0, or -1 with AI_EX_DATAERR and a message that says
 * where (line and column), or what the data looks like when it is a known
 * binary format (an image, a PDF, an archive) and how to get its text.
 */
int utf8_check_input(const char *name, const char *s, size_t n, struct ai_err *err);

#endif
