/*
 * t_compat.c - the operating-system wrappers: each does what its name
 * says on this system, and says so the way compat.h promises.
 */
#include "compat/compat.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static void test_pipe(void)
{
	int fd[2] = { -1, -1 };

	is_int(compat_pipe_cloexec(fd), 0, "pipe_cloexec: a pipe");
	ok((fcntl(fd[0], F_GETFD) & FD_CLOEXEC) && (fcntl(fd[1], F_GETFD) & FD_CLOEXEC),
	   "pipe_cloexec: both ends close-on-exec");
	ok(write(fd[1], "x", 1) == 1, "pipe_cloexec: the ends are connected");
	close(fd[0]);
	close(fd[1]);
}

static void test_close_from(void)
{
	int p[2], keep, gone;
	pid_t pid;
	int status = 0;

	compat_pipe_cloexec(p);
	keep = fcntl(p[1], F_DUPFD, 40);
	gone = fcntl(p[1], F_DUPFD, 50);
	pid = fork();
	if (pid == 0) {
		compat_close_from(3, keep, 1024);
		/* keep must be open, gone and the pipe closed. */
		_exit(fcntl(keep, F_GETFD) >= 0 && fcntl(gone, F_GETFD) < 0 &&
		      fcntl(p[0], F_GETFD) < 0 ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "close_from: closes all from lo but keep");
	close(p[0]);
	close(p[1]);
	close(keep);
	close(gone);
}

static void test_children(void)
{
	struct compat_pids l = { NULL, 0, 0 };
	struct pollfd pfd;
	int pidfd, status;
	pid_t pid = fork();

	if (pid == 0) {
		pause();
		_exit(0);
	}
	is_int(compat_list_children(&l), 0, "list_children: /proc is readable");
	ok(compat_pids_has(&l, pid), "list_children: finds the child just forked");
	ok(!compat_pids_has(&l, getpid()), "list_children: not the caller itself");
	pidfd = compat_pidfd_open(pid);
	ok(pidfd >= 0 || errno == ENOSYS, "pidfd_open: a descriptor, or ENOSYS");
	kill(pid, SIGKILL);
	if (pidfd >= 0) {
		pfd.fd = pidfd;
		pfd.events = POLLIN;
		is_int(poll(&pfd, 1, 5000), 1, "pidfd_open: readable once the child exits");
		close(pidfd);
	}
	waitpid(pid, &status, 0);
	compat_list_children(&l);
	ok(!compat_pids_has(&l, pid), "list_children: a reaped child is gone");
	compat_pids_release(&l);
	ok(!l.v && !l.n, "pids_release: empty");
	ok(compat_user_procs(getuid()) >= 1, "user_procs: at least this process");
	ok(compat_become_subreaper() == compat_become_subreaper(), "become_subreaper: the same answer twice");
}

static void test_poller(void)
{
	struct compat_event ev[4];
	int p[2], q = compat_poller_open();

	ok(q >= 0, "poller_open: a poller");
	compat_pipe_cloexec(p);
	is_int(compat_poller_watch(q, p[0], COMPAT_IN), 0, "poller_watch: adds");
	is_int(compat_poller_watch(q, p[0], COMPAT_IN), 0, "poller_watch: a second watch changes, not fails");
	is_int(compat_poller_wait(q, ev, 4, 0), 0, "poller_wait: nothing ready, 0");
	ok(write(p[1], "x", 1) == 1, "write");
	is_int(compat_poller_wait(q, ev, 4, 1000), 1, "poller_wait: one ready");
	ok(ev[0].fd == p[0] && (ev[0].events & COMPAT_IN), "poller_wait: names the fd and the event");
	close(p[1]);
	is_int(compat_poller_watch(q, p[0], 0), 0, "poller_watch: 0 stops watching");
	is_int(compat_poller_wait(q, ev, 4, 0), 0, "poller_wait: an unwatched fd reports nothing");
	is_int(compat_poller_watch(q, 1000, 0), -1, "poller_watch: an fd never watched cannot be removed");
	close(p[0]);
	close(q);
}

static void test_names(void)
{
	is_str(compat_libcurl_names[0], "libcurl.so.4", "libcurl_names: the OpenSSL build first");
	ok(compat_libcurl_names[1] && !compat_libcurl_names[2], "libcurl_names: NULL-terminated");
}

int main(void)
{
	test_pipe();
	test_close_from();
	test_children();
	test_poller();
	test_names();
	return tap_done();
}
