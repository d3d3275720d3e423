#include "path.h"
#include "buf.h"

#include <unistd.h>

/* Drops ".", "..", and empty components of an absolute path, in place. */
static void normalise(char *p)
{
	char *r = p, *w = p;

	while (*r) {
		size_t n;

		while (*r == '/')
			r++;
		n = strcspn(r, "/");
		if (n == 0)
			break;
		if (n == 1 && r[0] == '.') {
			/* nothing */
		} else if (n == 2 && r[0] == '.' && r[1] == '.') {
			while (w > p && *--w != '/')
				;
		} else {
			*w++ = '/';
			memmove(w, r, n);
			w += n;
		}
		r += n;
	}
	if (w == p)
		*w++ = '/';
	*w = '\0';
}

char *path_canonical(const char *path)
{
	char *real = realpath(path, NULL), *cwd, *cut;
	struct buf b;

	if (real)
		return real;
	if (errno == ENOMEM)
		return NULL;
	buf_init(&b, 0);
	if (path[0] != '/') {
		if (!(cwd = getcwd(NULL, 0)))
			return NULL;
		buf_addstr(&b, cwd);
		buf_addch(&b, '/');
		free(cwd);
	}
	buf_addstr(&b, path);
	if (!b.data) {
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * The file is gone (or never was): its longest leading directory that
	 * still exists is resolved as realpath resolves it, links and all, so
	 * that a removed file keeps the name it was stored under; the rest is
	 * resolved by name.
	 */
	for (cut = strrchr(b.data, '/'); cut; ) {
		char *dir;

		*cut = '\0';
		dir = realpath(cut == b.data ? "/" : b.data, NULL);
		*cut = '/';
		if (dir) {
			struct buf r;

			buf_init(&r, 0);
			buf_addstr(&r, dir);
			buf_addstr(&r, cut);
			free(dir);
			buf_release(&b);
			if (!r.data) {
				errno = ENOMEM;
				return NULL;
			}
			normalise(r.data);
			return buf_detach(&r, NULL);
		}
		if (errno == ENOMEM || cut == b.data)
			break;
		while (--cut > b.data && *cut != '/')
			;
	}
	normalise(b.data);
	return buf_detach(&b, NULL);
}

const char *path_display(const char *abs)
{
	char *cwd = getcwd(NULL, 0);
	const char *shown = abs;
	size_t n;

	if (!cwd)
		return abs;
	n = strlen(cwd);
	if (abs[0] == '/' && !strncmp(abs, cwd, n) && abs[n] == '/' && abs[n + 1])
		shown = abs + n + 1;
	else if (n == 1 && abs[0] == '/' && abs[1])
		shown = abs + 1;
	free(cwd);
	return shown;
}
