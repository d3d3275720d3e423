#include "fdio.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fd_read_all(int fd, struct buf *out, volatile sig_atomic_t *stop)
{
	char chunk[65536];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));

		if (r < 0 && errno == EINTR && !(stop && *stop))
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (buf_add(out, chunk, (size_t)r))
			return -1;      /* errno: EFBIG or ENOMEM */
	}
}

int fd_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int fd_read_text(int fd, const char *name, struct buf *out, volatile sig_atomic_t *stop,
		 struct ai_err *err)
{
	size_t from = out->len;

	if (!fd_read_all(fd, out, stop))
		return out->len == from ? 0 : utf8_check_input(name, out->data + from, out->len - from, err);
	if (errno == EINTR)
		return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
	if (errno == EFBIG)
		return ai_errf(err, AI_EX_DATAERR,
			       "input is larger than %zu MiB ('%s'); split it (split -C) or raise AI_MAX_INPUT",
			       out->max >> 20, name);
	if (errno == ENOMEM)
		return ai_errf(err, AI_EX_OSERR, "out of memory reading '%s'", name);
	return ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", name, strerror(errno));
}

int fd_replace_open(struct fd_replace *r, const char *path, mode_t mode, struct ai_err *err)
{
	const char *slash = strrchr(path, '/');
	size_t dir = slash ? (size_t)(slash + 1 - path) : 0, len = strlen(path);

	r->fd = -1;
	r->path = path;
	/* dir + "." + base + ".XXXXXX" */
	if (!(r->tmp = malloc(len + 1 + sizeof(".XXXXXX"))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	memcpy(r->tmp, path, dir);
	r->tmp[dir] = '.';
	memcpy(r->tmp + dir + 1, path + dir, len - dir);
	memcpy(r->tmp + len + 1, ".XXXXXX", sizeof(".XXXXXX"));
	/*
	 * open(2) rather than mkstemp: the kernel applies the umask to mode
	 * (mkstemp's 0600 would need umask(2) read and restored, a race with
	 * any other thread making a file), and O_CLOEXEC is set at once.
	 */
	if (sodium_init() < 0) {
		free(r->tmp);
		r->tmp = NULL;
		return ai_errf(err, AI_EX_SOFTWARE, "cannot initialise libsodium");
	}
	for (int tries = 0; r->fd < 0 && tries < 100; tries++) {
		unsigned char rnd[3];

		randombytes_buf(rnd, sizeof(rnd));
		snprintf(r->tmp + len + 2, 7, "%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
		r->fd = open(r->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (r->fd < 0 && errno != EEXIST)
			break;
	}
	if (r->fd < 0) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot create '%s'", path);
		free(r->tmp);
		r->tmp = NULL;
		return -1;
	}
	return 0;
}

void fd_replace_abort(struct fd_replace *r)
{
	int e = errno;

	if (r->fd >= 0)
		close(r->fd);
	if (r->tmp)
		unlink(r->tmp);
	free(r->tmp);
	r->fd = -1;
	r->tmp = NULL;
	errno = e;
}

int fd_replace_commit(struct fd_replace *r, struct ai_err *err)
{
	int rc = fsync(r->fd), e = errno;

	/* Closed once, whatever fsync said: a second close could close another thread's file. */
	if (close(r->fd) && !rc) {
		rc = -1;
		e = errno;
	}
	r->fd = -1;
	if (rc) {
		errno = e;
		ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", r->path);
		fd_replace_abort(r);
		return -1;
	}
	if (rename(r->tmp, r->path)) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", r->path);
		fd_replace_abort(r);
		return -1;
	}
	free(r->tmp);
	r->tmp = NULL;
	return 0;
}

int fd_replace_file(const char *path, const void *p, size_t n, mode_t mode, struct ai_err *err)
{
	struct fd_replace r;

	if (fd_replace_open(&r, path, mode, err))
		return -1;
	if (fd_write_all(r.fd, p, n)) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", path);
		fd_replace_abort(&r);
		return -1;
	}
	return fd_replace_commit(&r, err);
}
