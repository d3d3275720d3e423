/*
 * linux.c - compat.h on Linux with glibc, as Debian ships it.
 *
 * The raw syscall(2) numbers are used where glibc's wrapper is newer than
 * the oldest glibc we build on (pipe2 needs _GNU_SOURCE, close_range
 * 2.34, pidfd_open 2.36); each falls back when the kernel says ENOSYS.
 */
/* posix_spawn_file_actions_addclosefrom_np is a GNU extension. */
#define _GNU_SOURCE 1
#include "compat/compat.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

const char *const compat_libcurl_names[] = { "libcurl.so.4", "libcurl-gnutls.so.4", NULL };

void compat_getopt_reset(void)
{
	optind = 0;     /* glibc: a full reset, hidden state included */
}

int compat_pipe_cloexec(int fd[2])
{
#ifdef SYS_pipe2
	if (syscall(SYS_pipe2, fd, O_CLOEXEC) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
#endif
	if (pipe(fd))
		return -1;
	if (fcntl(fd[0], F_SETFD, FD_CLOEXEC) || fcntl(fd[1], F_SETFD, FD_CLOEXEC)) {
		int e = errno;

		close(fd[0]);
		close(fd[1]);
		errno = e;
		return -1;
	}
	return 0;
}

void compat_close_from(int lo, int keep, long maxfd)
{
#ifdef SYS_close_range
	if ((keep < 0 || keep == lo ||
	     syscall(SYS_close_range, (unsigned)lo, (unsigned)keep - 1, 0U) == 0) &&
	    syscall(SYS_close_range, keep < 0 ? (unsigned)lo : (unsigned)keep + 1, ~0U, 0U) == 0)
		return;
#endif
	for (long fd = lo; fd < maxfd; fd++)
		if (fd != keep)
			close((int)fd);
}

int compat_spawn_close_from(void *fa, int lo)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	return posix_spawn_file_actions_addclosefrom_np(fa, lo);
#else
	(void)fa;
	(void)lo;
	return ENOSYS;
#endif
}

int compat_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0U);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

void compat_die_with_parent(int sig)
{
#if defined(__linux__) && defined(PR_SET_PDEATHSIG)
	prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0L, 0L, 0L);
#else
	(void)sig;
#endif
}

bool compat_become_subreaper(void)
{
#if defined(__linux__) && defined(PR_SET_CHILD_SUBREAPER)
	static int done;        /* 1: set, -1: the kernel refused */

	if (!done)
		done = prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) == 0 ? 1 : -1;
	return done > 0;
#else
	return false;
#endif
}

void compat_pids_release(struct compat_pids *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

bool compat_pids_has(const struct compat_pids *l, pid_t p)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == p)
			return true;
	return false;
}

int compat_list_children(struct compat_pids *l)
{
	pid_t self = getpid();
	struct dirent *e;
	DIR *d = opendir("/proc");

	l->n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char path[300], st[512], *rp;
		long pid, ppid;
		ssize_t r;
		int fd;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		r = read(fd, st, sizeof(st) - 1);
		close(fd);
		if (r <= 0)
			continue;
		st[r] = '\0';
		/* "pid (comm) state ppid ...": comm may hold anything, so from the last ')'. */
		if (!(rp = strrchr(st, ')')) || sscanf(rp + 1, " %*c %ld", &ppid) != 1 ||
		    ppid != (long)self)
			continue;
		pid = strtol(e->d_name, NULL, 10);
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			pid_t *v = realloc(l->v, cap * sizeof(*v));

			if (!v) {
				closedir(d);
				return -1;
			}
			l->v = v;
			l->cap = cap;
		}
		l->v[l->n++] = (pid_t)pid;
	}
	closedir(d);
	return 0;
}

long compat_user_procs(uid_t uid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat st;
		char path[300];

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (!stat(path, &st) && st.st_uid == uid)
			n++;
	}
	closedir(d);
	return n;
}

int compat_poller_open(void)
{
	return epoll_create1(EPOLL_CLOEXEC);
}

int compat_poller_watch(int poller, int fd, unsigned events)
{
	struct epoll_event ev;

	if (!events)
		return epoll_ctl(poller, EPOLL_CTL_DEL, fd, NULL);
	memset(&ev, 0, sizeof(ev));
	ev.events = (events & COMPAT_IN ? EPOLLIN : 0u) | (events & COMPAT_OUT ? EPOLLOUT : 0u);
	ev.data.fd = fd;
	/* Watched already (MOD), or new to us (ADD). */
	if (!epoll_ctl(poller, EPOLL_CTL_MOD, fd, &ev))
		return 0;
	if (errno != ENOENT)
		return -1;
	return epoll_ctl(poller, EPOLL_CTL_ADD, fd, &ev);
}

int compat_poller_wait(int poller, struct compat_event *ev, int n, long ms)
{
	struct epoll_event e[64];
	int got;

	if (n > (int)AI_ARRAY_LEN(e))
		n = (int)AI_ARRAY_LEN(e);
	if (ms > INT_MAX)
		ms = INT_MAX;
	got = epoll_wait(poller, e, n, (int)ms);
	for (int i = 0; i < got; i++) {
		ev[i].fd = e[i].data.fd;
		ev[i].events = (e[i].events & EPOLLIN ? COMPAT_IN : 0u) |
			       (e[i].events & EPOLLOUT ? COMPAT_OUT : 0u) |
			       (e[i].events & (EPOLLERR | EPOLLHUP) ? COMPAT_ERR : 0u);
	}
	return got;
}
