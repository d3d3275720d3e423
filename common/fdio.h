#ifndef AI_FDIO_H
#define AI_FDIO_H
/*
 * fdio.h - whole reads and writes on a file descriptor, through EINTR and
 * short counts.  Errors are errno values, each caller wording its own
 * message; fd_read_text, the reader of text input, words them once.
 */
#include "ai.h"
#include "buf.h"

#include <signal.h>

/*
 * Appends everything fd has until end of file to out.  0, or -1 with
 * errno: EFBIG when out's cap is reached, ENOMEM, read's own, or EINTR
 * when a signal arrives once *stop (if given) is set.
 */
int fd_read_all(int fd, struct buf *out, volatile sig_atomic_t *stop);

/* Writes all n bytes.  0, or -1 with errno (EIO for a write of 0 bytes). */
int fd_write_all(int fd, const void *p, size_t n);

/*
 * Reads fd, the input called name in messages, to its end into out (whose
 * max is the cap) and checks that what it read is text (utf8_check_input).
 * 0, or -1 with err: AI_EX_DATAERR over the cap or for what is not text,
 * AI_EX_INTERRUPT when *stop (if given) is set during the read, AI_EX_OSERR
 * out of memory, AI_EX_NOINPUT when fd cannot be read.
 */
int fd_read_text(int fd, const char *name, struct buf *out, volatile sig_atomic_t *stop,
		 struct ai_err *err);

/*
 * Replaces the file at path with n bytes, whole or not at all: written to
 * a temporary file beside it (mode 0666 less the umask, as a shell's >
 * would make it), then renamed over it, so a reader never sees half a
 * file.  0, or -1 with err (AI_EX_IOERR, naming path
 * and the cause); no temporary file is left behind.
 */
int fd_replace_file(const char *path, const void *p, size_t n, struct ai_err *err);

/*
 * fd_replace_file for a file of the user's own data (a job's status): mode
 * 0600 whatever the umask, and synced before the rename, so that a crash
 * leaves the old file or the new one, never an empty one.
 */
int fd_replace_private(const char *path, const void *p, size_t n, struct ai_err *err);

#endif
