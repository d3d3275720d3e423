#include "fdio.h"

#include <errno.h>
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
