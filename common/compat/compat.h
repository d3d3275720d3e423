#ifndef AI_COMPAT_H
#define AI_COMPAT_H
/*
 * compat.h - what the rest of the tree asks of the operating system and
 * the distribution, in one place, under names that say what is wanted.
 *
 * Everything here is Linux (and glibc, and Debian's package names) today:
 * linux.c.  A port adds a sibling file that implements the same names, and
 * nothing outside common/compat/ changes.  Each wrapper says what its
 * caller gets where the system lacks the feature, so that the caller's
 * fallback is written once, here.  Like the rest of common/, none of it
 * prints, exits or reads stdin.
 */
#include "ai.h"

#include <sys/types.h>

/*
 * The file names dlopen(3) tries for libcurl, in order, NULL-terminated:
 * the same ABI under Debian's OpenSSL build, then its GnuTLS one.  The
 * first is the one to name in a message.  Borrowed, static.
 */
extern const char *const compat_libcurl_names[];

/* The package that installs compat_libcurl_names[0], for the hint in a message. */
#define COMPAT_LIBCURL_PACKAGE "apt-get install libcurl4"

/*
 * Makes getopt(3) start over on a new argv, as if never called: glibc
 * wants optind = 0 for a full reset (its hidden state too), where BSD
 * wants optreset = 1 and optind = 1.
 */
void compat_getopt_reset(void);

/*
 * pipe2(fd, O_CLOEXEC): both ends close-on-exec.  Where the kernel has no
 * pipe2 this is pipe(2) then fcntl(2), which a fork in another thread can
 * race; the callers fork from one thread.  0, or -1 with errno (fd then
 * untouched or both ends closed).
 */
int compat_pipe_cloexec(int fd[2]);

/*
 * Closes every descriptor from lo up, except keep (-1: none), in a forked
 * child before execve: async-signal-safe.  close_range(2) where the kernel
 * has it, else a close(2) of each number below maxfd.
 */
void compat_close_from(int lo, int keep, long maxfd);

/*
 * Adds to fa (a posix_spawn_file_actions_t *) the closing of every
 * descriptor from lo up, so a helper started with posix_spawn(3) gets
 * none of the program's files (a spool, a database, a socket) that lack
 * close-on-exec.  glibc's addclosefrom_np (2.34); 0, or an errno value
 * (ENOSYS where the system has none: the helper then inherits them).
 */
int compat_spawn_close_from(void *fa, int lo);

/*
 * A descriptor that becomes readable when child pid exits (pidfd_open(2)),
 * so a poll(2) loop needs no tick to notice.  -1 where the kernel has none:
 * the caller then polls with a short timeout.  The caller closes it.
 */
int compat_pidfd_open(pid_t pid);

/*
 * Makes the calling process the reaper of its orphaned descendants
 * (PR_SET_CHILD_SUBREAPER), once per process; true when it is.  False
 * where the system has no such thing: a descendant that leaves the
 * process group then escapes the caller's kill.
 */
bool compat_become_subreaper(void);

/*
 * In a child between fork and exec (async-signal-safe): asks the kernel to
 * send sig to it when its parent dies (PR_SET_PDEATHSIG), so a long-lived
 * child does not outlive a parent killed with SIGKILL.  A no-op where the
 * system has no such thing.
 */
void compat_die_with_parent(int sig);

/* A growable list of process ids. */
struct compat_pids {
	pid_t *v;
	size_t n, cap;
};

/* Frees l's array and empties it. */
void compat_pids_release(struct compat_pids *l);

/* True when p is in l. */
bool compat_pids_has(const struct compat_pids *l, pid_t p);

/*
 * Fills l with the pids whose parent is the calling process (read from
 * /proc/PID/stat).  0, or -1 when they cannot be listed or memory runs out
 * (l then holds what was found).
 */
int compat_list_children(struct compat_pids *l);

/*
 * How many processes user uid runs now (the entries of /proc it owns),
 * or -1 when that cannot be known.
 */
long compat_user_procs(uid_t uid);

/*
 * A readiness poller over many sockets (epoll(7) here; kqueue or poll(2)
 * elsewhere), for the HTTP pool, which watches as many sockets as libcurl
 * opens.  Events are COMPAT_IN, COMPAT_OUT and, on wait only, COMPAT_ERR
 * (an error or hang-up).
 */
enum { COMPAT_IN = 1, COMPAT_OUT = 2, COMPAT_ERR = 4 };

struct compat_event {
	int fd;
	unsigned events;
};

/* A new poller (close it with close(2)), or -1 with errno. */
int compat_poller_open(void);

/* Watches fd for events (added or changed); events 0 stops watching it.  0, or -1 with errno. */
int compat_poller_watch(int poller, int fd, unsigned events);

/*
 * Waits up to ms milliseconds (-1: forever) and fills at most n events.
 * Returns how many, 0 on timeout, or -1 with errno (EINTR included).
 */
int compat_poller_wait(int poller, struct compat_event *ev, int n, long ms);

#endif
