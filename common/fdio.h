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
#include <sys/types.h>

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
 * A file replaced whole or not at all, written in pieces: a reader never
 * sees half of it.  fd_replace_open makes a temporary file beside path,
 * hidden (.NAME.XXXXXX, so that no one listing the directory takes it for
 * a file of its own), mode less the umask; the caller writes r->fd;
 * fd_replace_commit flushes it to disk and renames it over path;
 * fd_replace_abort removes it.  After a failed open or commit nothing is
 * left behind and there is nothing to abort.  Failures are -1 with err:
 * AI_EX_IOERR naming path and the cause, AI_EX_OSERR out of memory.
 */
struct fd_replace {
	int fd;                 /* the temporary file, open for writing */
	char *tmp;              /* its path, owned */
	const char *path;       /* borrowed from fd_replace_open's caller */
};

int fd_replace_open(struct fd_replace *r, const char *path, mode_t mode, struct ai_err *err);
int fd_replace_commit(struct fd_replace *r, struct ai_err *err);
void fd_replace_abort(struct fd_replace *r);

/*
 * Replaces the file at path with n bytes, as fd_replace_open and
 * fd_replace_commit do, mode less the umask (0666 is what a shell's >
 * would make).  It syncs the file before the rename (fd_replace_commit):
 * keep it off paths that write many times a second.  0, or -1 with err (AI_EX_IOERR, naming path and the
 * cause); no temporary file is left behind.
 */
int fd_replace_file(const char *path, const void *p, size_t n, mode_t mode, struct ai_err *err);

#endif
