#include "runcmd.h"
#include "clock.h"
#include "compat/compat.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long output is still read once the shell has exited. */
#define RUNCMD_DRAIN_MS 100

/* The command now running: its pid, and whether it leads a group of its own. */
static volatile sig_atomic_t running_pid;
static volatile sig_atomic_t running_group;

void runcmd_kill_running(void)
{
	pid_t p = running_pid;

	if (p > 0)
		kill(running_group ? -p : p, SIGKILL);
}

bool runcmd_interactive(void)
{
	return isatty(0) || isatty(2);
}

/*
 * True when this process's group is its terminal's foreground group: a
 * helper moved to a group of its own would then be in the background, and
 * stopped the moment it opens /dev/tty for a password.
 */
static bool tty_foreground(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	bool fg;

	if (fd < 0)
		return false;
	fg = tcgetpgrp(fd) == getpgrp();
	close(fd);
	return fg;
}

/* Adds what fits of p to out and drops the rest, counting it in *dropped. */
static void add_some(struct buf *out, const char *p, size_t n, size_t *dropped)
{
	size_t room = out->max > out->len ? out->max - out->len : 0;

	if (!*dropped && buf_add(out, p, n < room ? n : room) == 0 && n <= room)
		return;
	*dropped += n < room ? 0 : n - room;
}

int runcmd_shell(const char *name, const char *cmd, int64_t deadline_ms,
		 const volatile sig_atomic_t *cancel, unsigned flags, struct buf *out, int *status,
		 struct ai_err *err)
{
	char *argv[] = { "sh", "-c", (char *)(uintptr_t)cmd, NULL };
	char chunk[4096];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	int pfd[2], rc = 0, e;
	bool eof = false, reaped = false, group = !tty_foreground();
	int64_t drain_end = 0;
	size_t dropped = 0;
	pid_t pid;

	if (compat_pipe_cloexec(pfd))
		return ai_errf_errno(err, AI_EX_OSERR, "pipe");
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);      /* the programs ignore it; the command must not */
	if ((e = posix_spawn_file_actions_init(&fa))) {
		close(pfd[0]);
		close(pfd[1]);
		return ai_errf(err, AI_EX_OSERR, "cannot run %s: %s", name, strerror(e));
	}
	/*
	 * A file action not taken would run the command with our stdin or
	 * without its pipe: it is not run at all.  Nothing of ours past
	 * stderr: a spool or a socket it kept open would outlive us.  Where
	 * the C library cannot close them (glibc < 2.34, ENOSYS) only those
	 * opened close-on-exec are closed: a known gap, to be closed by a
	 * fork + compat_close_from + exec path as toolrun has.
	 */
	if (!(e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
	    !(e = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1)) &&
	    (e = compat_spawn_close_from(&fa, 3)) == ENOSYS)
		e = 0;
	if (e) {
		posix_spawn_file_actions_destroy(&fa);
		close(pfd[0]);
		close(pfd[1]);
		return ai_errf(err, AI_EX_OSERR, "cannot run %s: %s", name, strerror(e));
	}
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	/* A group of its own, so that what it started goes with it at the deadline. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 (group ? POSIX_SPAWN_SETPGROUP : 0));
	e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (e) {
		close(pfd[0]);
		return ai_errf(err, AI_EX_CONFIG, "cannot run %s: %s", name, strerror(e));
	}
	running_group = group;
	running_pid = pid;
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int64_t now = mono_ms(), wait_ms;

		/* The shell's end is the command's end, whoever still holds the pipe. */
		if (!reaped) {
			pid_t w = waitpid(pid, status, WNOHANG);

			if (w == pid) {
				reaped = true;
				if (!group)
					running_pid = 0;        /* its number may be reused */
				drain_end = now + RUNCMD_DRAIN_MS;
			} else if (w < 0 && errno != EINTR) {
				rc = ai_errf_errno(err, AI_EX_OSERR, "waitpid");
				break;
			}
		}
		if (reaped && (eof || now >= drain_end))
			break;
		if (cancel && *cancel) {
			rc = ai_errf(err, AI_EX_INTERRUPT, "interrupted");
			break;
		}
		if (now >= deadline_ms) {
			rc = ai_errf(err, AI_EX_TEMPFAIL, "%s did not finish in time", name);
			break;
		}
		if (eof) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		wait_ms = deadline_ms - now < 50 ? deadline_ms - now : 50;
		if (reaped && drain_end - now < wait_ms)
			wait_ms = drain_end - now;
		if (poll(&p, 1, (int)wait_ms) > 0) {
			ssize_t r = read(pfd[0], chunk, sizeof(chunk));

			if (r > 0 && (flags & RUNCMD_FIRST_LINE)) {
				add_some(out, chunk, (size_t)r, &dropped);
				if (out->len + dropped > RUNCMD_DROP_MAX) {
					rc = ai_errf(err, AI_EX_CONFIG, "%s printed more than %d bytes", name,
						     RUNCMD_DROP_MAX);
					break;
				}
			} else if (r > 0 && buf_add(out, chunk, (size_t)r)) {
				rc = ai_errf(err, AI_EX_CONFIG, "%s printed more than %zu bytes", name, out->max);
				break;
			}
			eof = r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN);
		}
	}
	close(pfd[0]);
	sodium_memzero(chunk, sizeof(chunk));   /* it may have held a key */
	if (rc) {
		/* A pid already reaped may be another process's by now: only its group is safe. */
		if (group)
			kill(-pid, SIGKILL);
		else if (!reaped)
			kill(pid, SIGKILL);
		while (!reaped && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	running_pid = 0;
	return rc;
}
