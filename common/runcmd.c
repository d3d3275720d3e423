#include "runcmd.h"
#include "clock.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int runcmd_shell(const char *name, const char *cmd, int64_t deadline_ms,
		 const volatile sig_atomic_t *cancel, struct buf *out, int *status,
		 struct ai_err *err)
{
	char *argv[] = { "sh", "-c", (char *)(uintptr_t)cmd, NULL };
	char chunk[4096];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	int pfd[2], rc = 0, e;
	bool eof = false;
	pid_t pid;

	if (pipe(pfd))
		return ai_errf_errno(err, AI_EX_OSERR, "pipe");
	fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);      /* the programs ignore it; the command must not */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[1]);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	/* A group of its own, so that what it started goes with it at the deadline. */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETPGROUP);
	e = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(pfd[1]);
	if (e) {
		close(pfd[0]);
		return ai_errf(err, AI_EX_CONFIG, "cannot run %s: %s", name, strerror(e));
	}
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int64_t now = mono_ms();
		pid_t w;

		if (eof) {
			w = waitpid(pid, status, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR) {
				rc = ai_errf_errno(err, AI_EX_OSERR, "waitpid");
				break;
			}
		}
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
		if (poll(&p, 1, (int)(deadline_ms - now < 50 ? deadline_ms - now : 50)) > 0) {
			ssize_t r = read(pfd[0], chunk, sizeof(chunk));

			if (r > 0 && buf_add(out, chunk, (size_t)r)) {
				rc = ai_errf(err, AI_EX_CONFIG, "%s printed more than %zu bytes", name, out->max);
				break;
			}
			eof = r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN);
		}
	}
	close(pfd[0]);
	sodium_memzero(chunk, sizeof(chunk));   /* it may have held a key */
	if (rc) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return rc;
}
