/* Unit tests of runcmd.c: a helper command's stdin, output, cap, deadline and cancel. */
#include "ai.h"
#include "buf.h"
#include "clock.h"
#include "runcmd.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* Alive and not a zombie: whoever adopted a killed child may be slow to reap it. */
static bool running(pid_t p)
{
	char path[64], stat[256] = "";
	const char *paren;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	if (!(f = fopen(path, "r")))
		return false;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = '\0';
	fclose(f);
	paren = strrchr(stat, ')');
	return !paren || paren[1] != ' ' || paren[2] != 'Z';
}

static int run_flags(const char *cmd, long ms, volatile sig_atomic_t *cancel, unsigned flags,
		     struct buf *out, int *st, struct ai_err *e)
{
	buf_reset(out);
	ai_err_clear(e);
	*st = -1;
	return runcmd_shell("key_cmd", cmd, mono_ms() + ms, cancel, flags, out, st, e);
}

static int run(const char *cmd, long ms, volatile sig_atomic_t *cancel, struct buf *out, int *st,
	       struct ai_err *e)
{
	return run_flags(cmd, ms, cancel, 0, out, st, e);
}

/* The pid the command wrote to fd, once it is gone (waited for up to 1 s); 0 if none was written. */
static pid_t child_gone(int fd)
{
	char pid[32] = "";
	ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
	pid_t p = n > 0 ? (pid_t)strtol(pid, NULL, 10) : 0;

	for (int i = 0; i < 100 && p > 0 && running(p); i++)
		usleep(10000);
	if (p > 0 && running(p)) {
		kill(p, SIGKILL);
		return 0;
	}
	return p;
}

static volatile sig_atomic_t late_cancel;

/* SIGALRM mid-run: what a SIGTERM handler does, and what a dying program does. */
static void on_alarm_cancel(int sig)
{
	(void)sig;
	late_cancel = 1;
}

static void on_alarm_kill(int sig)
{
	(void)sig;
	runcmd_kill_running();
}

/* Arms SIGALRM with handler fn in ms milliseconds. */
static void alarm_in(void (*fn)(int), long ms)
{
	struct itimerval it = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

int main(void)
{
	struct buf out;
	struct ai_err e;
	volatile sig_atomic_t cancel = 0;
	int st, fds[2];
	int64_t t0;
	char path[] = "/tmp/t_runcmd.XXXXXX", cmd[256];
	int fd = mkstemp(path);

	buf_init(&out, 64);
	ok(!run("echo sk-1; echo second", 5000, NULL, &out, &st, &e), "a command that prints");
	is_str(out.data, "sk-1\nsecond\n", "its whole output");
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0");

	ok(!run("exit 3", 5000, NULL, &out, &st, &e), "a failing command still runs");
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 3, "its status is given back");

	/* The program's stdin is a pipe with data waiting: the command must not see it. */
	if (pipe(fds) || write(fds[1], "piped\n", 6) != 6 || dup2(fds[0], 0) < 0)
		return 1;
	ok(!run("cat; echo end", 5000, NULL, &out, &st, &e), "a command that reads stdin");
	is_str(out.data, "end\n", "reads /dev/null, not the program's stdin");
	{
		char got[8] = "";

		is_int(read(0, got, sizeof(got) - 1), 6, "the piped data is still there");
	}

	ok(run("head -c 100 /dev/zero", 5000, NULL, &out, &st, &e) < 0, "more than the cap");
	is_int(e.code, AI_EX_CONFIG, "is a configuration error");
	is_str(e.msg, "key_cmd printed more than 64 bytes", "said so, without the output");

	/* What the command started in the background goes with it at the deadline. */
	if (fd < 0)
		return 1;
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! >%s; wait", path);
	t0 = mono_ms();
	ok(run(cmd, 300, NULL, &out, &st, &e) < 0, "a command past its deadline");
	ok(mono_ms() - t0 < 3000, "is stopped in time (%lld ms)", (long long)(mono_ms() - t0));
	is_int(e.code, AI_EX_TEMPFAIL, "a temporary failure");
	is_str(e.msg, "key_cmd did not finish in time", "named");
	{
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid_t p = n > 0 ? (pid_t)strtol(pid, NULL, 10) : 0;
		int i;

		for (i = 0; i < 100 && p > 0 && running(p); i++)
			usleep(10000);
		ok(p > 0 && !running(p), "its background child is killed too");
	}

	cancel = 1;
	t0 = mono_ms();
	ok(run("sleep 30", 10000, &cancel, &out, &st, &e) < 0, "cancel stops it");
	is_int(e.code, AI_EX_INTERRUPT, "as an interrupt");
	ok(mono_ms() - t0 < 3000, "at once");

	/* A cancel that comes while it runs (a SIGTERM's flag) kills it and what it started. */
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! >%s; wait", path);
	if (ftruncate(fd, 0))
		return 1;
	late_cancel = 0;
	alarm_in(on_alarm_cancel, 300);
	t0 = mono_ms();
	ok(run(cmd, 10000, &late_cancel, &out, &st, &e) < 0, "a cancel mid-run stops it");
	is_int(e.code, AI_EX_INTERRUPT, "as an interrupt");
	ok(mono_ms() - t0 < 2000, "at once (%lld ms)", (long long)(mono_ms() - t0));
	ok(child_gone(fd) > 0, "its background child is killed too");

	/* A program dying on a signal kills the helper first, group and all. */
	if (ftruncate(fd, 0))
		return 1;
	alarm_in(on_alarm_kill, 300);
	t0 = mono_ms();
	ok(run(cmd, 10000, NULL, &out, &st, &e) == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "runcmd_kill_running from a handler kills the shell");
	ok(mono_ms() - t0 < 2000, "at once (%lld ms)", (long long)(mono_ms() - t0));
	ok(child_gone(fd) > 0, "and what it started");
	signal(SIGALRM, SIG_DFL);

	/* The shell's exit ends it, even with a daemon still holding its stdout. */
	if (ftruncate(fd, 0))
		return 1;
	snprintf(cmd, sizeof(cmd), "echo sk-2; sleep 30 & echo $! >%s", path);
	t0 = mono_ms();
	ok(!run(cmd, 5000, NULL, &out, &st, &e), "a command that leaves a daemon behind");
	ok(mono_ms() - t0 < 1000, "is done when its shell is (%lld ms)", (long long)(mono_ms() - t0));
	is_str(out.data, "sk-2\n", "with what it printed");
	{
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);

		if (n > 0)
			kill((pid_t)strtol(pid, NULL, 10), SIGKILL);
	}

	/* RUNCMD_FIRST_LINE: what passes the cap is read and dropped, up to a bound. */
	ok(!run_flags("echo sk-3; head -c 100000 /dev/zero", 5000, NULL, RUNCMD_FIRST_LINE, &out, &st, &e),
	   "output past the cap, first line only");
	ok(out.len == 64 && !memcmp(out.data, "sk-3\n", 5), "keeps what fits");
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the command was read to its end");
	ok(run_flags("head -c 2000000 /dev/zero", 5000, NULL, RUNCMD_FIRST_LINE, &out, &st, &e) < 0,
	   "output without end");
	is_str(e.msg, "key_cmd printed more than 1048576 bytes", "is refused");

	/* None of the program's descriptors past stderr reach the command. */
	{
		int leak = open("/dev/null", O_RDONLY);   /* no O_CLOEXEC, as a careless caller's */

		snprintf(cmd, sizeof(cmd), "[ -e /proc/self/fd/%d ] && echo open || echo closed", leak);
		ok(leak >= 3 && !run(cmd, 5000, NULL, &out, &st, &e), "a command looks for fd %d", leak);
		is_str(out.data, "closed\n", "and does not have it");
		close(leak);
	}

	ok(run("exec /no/such/program 2>/dev/null", 5000, NULL, &out, &st, &e) == 0 && WEXITSTATUS(st) == 127,
	   "a missing program is the shell's status 127");
	close(fd);
	unlink(path);
	buf_release(&out);
	return tap_done();
}
