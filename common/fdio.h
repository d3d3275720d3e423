#ifndef AI_FDIO_H
#define AI_FDIO_H
/*
 * fdio.h - whole reads and writes on a file descriptor, through EINTR and
 * short counts.  Errors are errno values; each caller words its own message.
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

#endif
