/* Unit tests of runcmd.c: a helper command's stdin, output, cap, deadline and cancel. */
#include "ai.h"
#include "buf.h"
#include "clock.h"
#include "runcmd.h"
#include "tap.h"

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

static int run(const char *cmd, long ms, volatile sig_atomic_t *cancel, struct buf *out, int *st,
	       struct ai_err *e)
{
	buf_reset(out);
	ai_err_clear(e);
	*st = -1;
	return runcmd_shell("key_cmd", cmd, mono_ms() + ms, cancel, out, st, e);
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

	ok(run("exec /no/such/program 2>/dev/null", 5000, NULL, &out, &st, &e) == 0 && WEXITSTATUS(st) == 127,
	   "a missing program is the shell's status 127");
	close(fd);
	unlink(path);
	buf_release(&out);
	return tap_done();
}
