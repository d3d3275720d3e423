#ifndef AI_RMTREE_H
#define AI_RMTREE_H
/*
 * rmtree.h - removes a directory tree without a shell, for the tests and
 * benchmarks that make one (t_cache, cache_bench).  Header-only: each
 * includes it once.  Links are removed, never followed (O_NOFOLLOW).
 */
#include "ai.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

/* Removes name, relative to the directory at (AT_FDCWD: the working one), and all below it. */
static AI_UNUSED void rm_rf_at(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *d;
	DIR *dp;

	if (fd < 0) {
		unlinkat(at, name, 0);
		return;
	}
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return;
	}
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			rm_rf_at(fd, d->d_name);
	closedir(dp);
	unlinkat(at, name, AT_REMOVEDIR);
}

#endif
