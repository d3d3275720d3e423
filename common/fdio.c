#include "fdio.h"
#include "utf8.h"

#include <errno.h>
#include <stdlib.h>
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

/* fd_replace_file and fd_replace_private: the temporary file made mode, synced when sync. */
static int replace(const char *path, const void *p, size_t n, mode_t mode, bool sync, struct ai_err *err)
{
	size_t len = strlen(path);
	char *tmp = malloc(len + sizeof(".XXXXXX"));
	int fd;

	if (!tmp)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".XXXXXX", sizeof(".XXXXXX"));
	fd = mkstemp(tmp);
	if (fd < 0) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot create '%s'", path);
		free(tmp);
		return -1;
	}
	if (fchmod(fd, mode) || fd_write_all(fd, p, n) || (sync && fsync(fd))) {
		int e = errno;

		close(fd);
		unlink(tmp);
		free(tmp);
		errno = e;
		return ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", path);
	}
	/* close releases fd even when it fails (POSIX leaves it so on Linux): no second close. */
	if (close(fd)) {
		int e = errno;

		unlink(tmp);
		free(tmp);
		errno = e;
		return ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", path);
	}
	if (rename(tmp, path)) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", path);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

int fd_replace_file(const char *path, const void *p, size_t n, struct ai_err *err)
{
	mode_t um = umask(0);

	/* mkstemp makes 0600; a report is as readable as any file the user writes. */
	umask(um);
	return replace(path, p, n, 0666 & ~um, false, err);
}

int fd_replace_private(const char *path, const void *p, size_t n, struct ai_err *err)
{
	return replace(path, p, n, 0600, true, err);
}
