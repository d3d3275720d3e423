/*
 * t_toolrun.c - the tools file loader and the tool runner.
 *
 * Runs from the repository root (tests/run cds there): the tools are the
 * small scripts in tests/fixtures/tools/.
 */
#include "agent/toolrun.h"
#include "clock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define FIX "tests/fixtures/tools/"

static char tmpdir[] = "/tmp/t_toolrun.XXXXXX";
static char cwd[PATH_MAX];

/* A hand-built tool: argv[0] relative to the repository root, no path. */
static struct tooldef tool(char **argv)
{
	struct tooldef t;

	memset(&t, 0, sizeof(t));
	t.name = (char *)"t";
	t.argv = argv;
	return t;
}

static int run(const struct tooldef *t, const char *args, const struct toolrun_limits *lim,
	       struct toolrun_result *res, struct ai_err *err)
{
	ai_err_clear(err);
	return toolrun(t, args, lim, res, err);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p && *p; ) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len == n && memcmp(p, line, n) == 0)
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static bool has_var(const char *env, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = env; p && *p; ) {
		const char *nl = strchr(p, '\n');

		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return true;
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

static void write_file(const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

/* Dead, or a zombie waiting for init: either way it no longer runs. */
static bool pid_gone(pid_t pid)
{
	char path[64], stat[256];
	FILE *f;
	size_t n;
	char *rp;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	rp = strrchr(stat, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void test_echo(void)
{
	char *argv[] = { (char *)FIX "echo.sh", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;
	char args[256], pwned[64];

	/* Shell metacharacters arrive as bytes on stdin, never as a command. */
	snprintf(pwned, sizeof(pwned), "/tmp/PWNED_%ld", (long)getpid());
	snprintf(args, sizeof(args),
		 "{\"x\":\"; touch %s $(id) `id` \\n rm -rf\", \"y\":\"'\\\"|&>< *\"}", pwned);
	unlink(pwned);
	is_int(run(&t, args, NULL, &res, &err), 0, "echo: runs (%s)", err.msg);
	is_str(res.out.data, args, "echo: output equals the args exactly");
	is_int(res.out.len, strlen(args), "echo: same length");
	is_int(res.exit_status, 0, "echo: exit 0");
	ok(!res.timed_out && !res.truncated && res.term_signal == 0, "echo: clean result");
	ok(access(pwned, F_OK) != 0, "echo: no file created by the metacharacters");
	toolrun_result_release(&res);

	is_int(run(&t, NULL, NULL, &res, &err), 0, "echo: NULL args runs");
	is_str(res.out.data, "{}", "echo: NULL args sends {}");
	toolrun_result_release(&res);
	is_int(run(&t, "", NULL, &res, &err), 0, "echo: empty args runs");
	is_int(res.out.len, 0, "echo: empty args, empty stdin");
	toolrun_result_release(&res);
}

static void test_closed_stdin(void)
{
	char *argv[] = { (char *)FIX "echo.sh", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;
	int save = dup(0);

	/* With fd 0 free the first pipe lands on it: the runner must cope. */
	close(0);
	is_int(run(&t, "{\"a\":1}", NULL, &res, &err), 0, "closed stdin: runs (%s)", err.msg);
	dup2(save, 0);
	close(save);
	is_str(res.out.data, "{\"a\":1}", "closed stdin: output intact");
	toolrun_result_release(&res);
}

static void test_env(void)
{
	char *argv[] = { (char *)FIX "env.sh", NULL };
	char *extra[] = { (char *)"MY_SETTING", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;
	const char *secret[] = { "OPENAI_API_KEY", "FOO_KEY", "AI_MODEL", "GITHUB_TOKEN",
				 "my_api_key", "DB_PASSWORD", "AWS_SECRET", "openai_base_url",
				 "STRIPE_APIKEY" };

	for (size_t i = 0; i < AI_ARRAY_LEN(secret); i++)
		setenv(secret[i], "sk-leak", 1);
	setenv("TZ", "UTC", 1);
	setenv("LC_TIME", "C", 1);
	setenv("MY_SETTING", "on", 1);
	setenv("RANDOM_THING", "x", 1);
	t.env = extra;
	is_int(run(&t, "{}", NULL, &res, &err), 0, "env: runs (%s)", err.msg);
	for (size_t i = 0; i < AI_ARRAY_LEN(secret); i++)
		ok(!has_var(res.out.data, secret[i]), "env: %s not passed", secret[i]);
	ok(!strstr(res.out.data, "sk-leak"), "env: the secret value appears nowhere");
	ok(has_var(res.out.data, "PATH"), "env: PATH passed");
	ok(has_var(res.out.data, "TZ") && has_var(res.out.data, "LC_TIME"), "env: TZ, LC_* passed");
	ok(has_var(res.out.data, "MY_SETTING"), "env: the tool's extra name passed");
	ok(!has_var(res.out.data, "RANDOM_THING"), "env: other variables not passed");
	toolrun_result_release(&res);

	/* No PATH at all: the tool still gets a sane one. */
	{
		char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

		unsetenv("PATH");
		is_int(run(&t, "{}", NULL, &res, &err), 0, "env: runs without PATH (%s)", err.msg);
		ok(has_line(res.out.data, "PATH=/usr/local/bin:/usr/bin:/bin"), "env: default PATH");
		toolrun_result_release(&res);
		if (path)
			setenv("PATH", path, 1);
		free(path);
	}
	for (size_t i = 0; i < AI_ARRAY_LEN(secret); i++)
		unsetenv(secret[i]);

	ok(toolrun_env_secret("X_TOKEN", 7), "secret: _TOKEN");
	ok(toolrun_env_secret("ai_profile", 10), "secret: ai_ lowercase");
	ok(!toolrun_env_secret("KEYBOARD", 8), "secret: KEYBOARD is not");
	ok(!toolrun_env_secret("TOKENS_DIR", 10), "secret: TOKENS_DIR is not");
	ok(!toolrun_env_allowed("LC_", 3, NULL), "allowed: bare LC_ is not");
	ok(toolrun_env_allowed("LANG", 4, NULL), "allowed: LANG");
	ok(!toolrun_env_allowed("PATHX", 5, NULL), "allowed: PATHX is not");
	ok(!toolrun_env_allowed("GH_TOKEN", 8, (char *[]){ (char *)"GH_TOKEN", NULL }),
	   "allowed: deny-list beats the extra names");
}

static void test_fds(void)
{
	char *argv[] = { (char *)FIX "fds.sh", (char *)"3", (char *)"4", (char *)"5", (char *)"6",
			 (char *)"7", (char *)"8", (char *)"9", (char *)"42", (char *)"100", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;
	int fd = open("/dev/null", O_RDONLY);   /* deliberately not close-on-exec */

	ok(fd >= 3, "fds: extra fd %d open", fd);
	ok(dup2(fd, 42) == 42 && dup2(fd, 100) == 100, "fds: 42 and 100 open");
	is_int(run(&t, "{}", NULL, &res, &err), 0, "fds: runs (%s)", err.msg);
	is_str(res.out.data, "probe 9\n", "fds: the probe sees its own fd and nothing else of ours");
	toolrun_result_release(&res);
	close(fd);
	close(42);
	close(100);
}

static void test_timeout(void)
{
	char pidfile[PATH_MAX + 32];
	char *argv[] = { (char *)FIX "sleeper.sh", pidfile, NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .timeout_ms = 300 };
	struct toolrun_result res;
	struct ai_err err;
	long gpid = 0;
	bool gone = false;
	FILE *f;

	snprintf(pidfile, sizeof(pidfile), "%s/sleeper.pid", tmpdir);
	is_int(run(&t, "{}", &lim, &res, &err), 0, "timeout: returns 0 (%s)", err.msg);
	ok(res.timed_out, "timeout: timed_out");
	is_int(res.term_signal, SIGKILL, "timeout: killed by SIGKILL");
	is_int(res.exit_status, -1, "timeout: no exit status");
	ok(res.ms >= 300 && res.ms < 300 + 1500, "timeout: returned after %ld ms", res.ms);
	toolrun_result_release(&res);
	f = fopen(pidfile, "r");
	ok(f && fscanf(f, "%ld", &gpid) == 1 && gpid > 1, "timeout: grandchild pid %ld", gpid);
	if (f)
		fclose(f);
	for (int i = 0; i < 100 && gpid > 1 && !(gone = pid_gone((pid_t)gpid)); i++)
		usleep(20000);
	ok(gone, "timeout: grandchild killed too");

	/* The tool's own timeout wins over the caller's. */
	t.timeout_ms = 200;
	lim.timeout_ms = 20000;
	is_int(run(&t, "{}", &lim, &res, &err), 0, "timeout: tool's timeout_ms");
	ok(res.timed_out && res.ms < 200 + 1500, "timeout: tool's 200 ms used (%ld ms)", res.ms);
	toolrun_result_release(&res);
}

static long read_pid(const char *file)
{
	long pid = 0;
	FILE *f = fopen(file, "r");

	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static void test_leftovers(void)
{
	char pidfile[PATH_MAX + 32];
	char *argv[] = { (char *)FIX "background.sh", pidfile, NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .timeout_ms = 10000 };
	struct toolrun_result res;
	struct ai_err err;
	long gpid;
	bool gone = false;

	/* The tool exits but leaves a child holding stdout: it is killed with
	 * the group, and we do not wait for it. */
	snprintf(pidfile, sizeof(pidfile), "%s/bg.pid", tmpdir);
	is_int(run(&t, "{}", &lim, &res, &err), 0, "background: runs (%s)", err.msg);
	is_str(res.out.data, "hi\n", "background: output");
	ok(res.exit_status == 0 && !res.timed_out, "background: exit 0, no timeout");
	ok(res.ms < 1500, "background: prompt (%ld ms)", res.ms);
	toolrun_result_release(&res);
	gpid = read_pid(pidfile);
	for (int i = 0; i < 100 && gpid > 1 && !(gone = pid_gone((pid_t)gpid)); i++)
		usleep(20000);
	ok(gpid > 1 && gone, "background: the left-over child is killed");

	/* One that escaped the group with setsid keeps the pipe open: we stop
	 * reading after a short grace instead of waiting for it. */
	argv[0] = (char *)FIX "escape.sh";
	snprintf(pidfile, sizeof(pidfile), "%s/escape.pid", tmpdir);
	is_int(run(&t, "{}", &lim, &res, &err), 0, "escape: runs (%s)", err.msg);
	is_str(res.out.data, "hi\n", "escape: output");
	ok(res.exit_status == 0 && !res.timed_out && res.ms < 1500, "escape: prompt (%ld ms)", res.ms);
	toolrun_result_release(&res);
	gpid = read_pid(pidfile);
	if (gpid > 1)
		kill((pid_t)gpid, SIGKILL);
}

static void test_output(void)
{
	char *argv[] = { (char *)FIX "bigout.sh", (char *)"10000000", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .max_output = 65536, .timeout_ms = 20000 };
	struct toolrun_result res;
	struct ai_err err;
	size_t xs = 0;

	is_int(run(&t, "{}", &lim, &res, &err), 0, "10 MB: runs (%s)", err.msg);
	ok(res.truncated, "10 MB: truncated");
	is_int(res.out.len, 65536, "10 MB: out.len == cap");
	for (size_t i = 0; i < res.out.len; i++)
		xs += res.out.data[i] == 'x';
	is_int(xs, 65536, "10 MB: the kept bytes are the first ones");
	is_int(res.exit_status, 0, "10 MB: the tool finished normally");
	ok(!res.timed_out && res.ms < 5000, "10 MB: prompt (%ld ms)", res.ms);
	toolrun_result_release(&res);

	argv[1] = (char *)"1000";
	lim.max_output = 1000;
	is_int(run(&t, "{}", &lim, &res, &err), 0, "exact cap: runs");
	ok(!res.truncated && res.out.len == 1000, "exact cap: not truncated, %zu bytes", res.out.len);
	toolrun_result_release(&res);

	argv[1] = (char *)"0";
	is_int(run(&t, "{}", &lim, &res, &err), 0, "no output: runs");
	ok(res.out.len == 0 && res.out.data == NULL && !res.truncated, "no output: empty");
	toolrun_result_release(&res);
}

static void test_stderr(void)
{
	char *argv[] = { (char *)FIX "stderr.sh", (char *)"10000", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;

	is_int(run(&t, "{}", NULL, &res, &err), 0, "stderr: runs");
	is_int(res.err.len, TOOLRUN_MAX_STDERR, "stderr: capped at 4 KiB");
	ok(!res.truncated && res.out.len == 0, "stderr: stdout untouched");
	toolrun_result_release(&res);
}

static void test_noread(void)
{
	char *argv[] = { (char *)FIX "noread.sh", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .timeout_ms = 10000 };
	struct toolrun_result res;
	struct ai_err err;
	struct buf big = BUF_INIT;
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);   /* the worst case: SIGPIPE would kill us */

	buf_addstr(&big, "{\"pad\":\"");
	while (big.len < (1u << 20))
		buf_addstr(&big, "abcdefghijklmnopqrstuvwxyz012345");
	buf_addstr(&big, "\"}");
	is_int(run(&t, big.data, &lim, &res, &err), 0, "1 MB unread: runs (%s)", err.msg);
	is_str(res.out.data, "done\n", "1 MB unread: the tool finished");
	ok(!res.timed_out && res.ms < 5000, "1 MB unread: no deadlock (%ld ms)", res.ms);
	toolrun_result_release(&res);

	/* And one that reads it all. */
	argv[0] = (char *)FIX "echo.sh";
	lim.max_output = 2u << 20;
	is_int(run(&t, big.data, &lim, &res, &err), 0, "1 MB echo: runs");
	ok(res.out.len == big.len && memcmp(res.out.data, big.data, big.len) == 0,
	   "1 MB echo: all of it came back");
	toolrun_result_release(&res);
	signal(SIGPIPE, old);
	buf_release(&big);
}

static void test_status(void)
{
	char *argv[] = { (char *)FIX "status.sh", (char *)"3", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_result res;
	struct ai_err err;

	is_int(run(&t, "{}", NULL, &res, &err), 0, "exit 3: runs");
	is_int(res.exit_status, 3, "exit 3: recorded");
	is_str(res.out.data, "out\n", "exit 3: stdout");
	is_str(res.err.data, "oops\n", "exit 3: stderr");
	toolrun_result_release(&res);

	/* A caller that ignores SIGCHLD: the kernel reaps the tool, its
	 * output still comes back, and we do not hang waiting for it. */
	signal(SIGCHLD, SIG_IGN);
	is_int(run(&t, "{}", NULL, &res, &err), 0, "SIGCHLD ignored: runs");
	is_str(res.out.data, "out\n", "SIGCHLD ignored: stdout");
	ok(res.exit_status == -1 && res.ms < 5000, "SIGCHLD ignored: status unknown, prompt (%ld ms)",
	   res.ms);
	toolrun_result_release(&res);
	signal(SIGCHLD, SIG_DFL);

	argv[0] = (char *)FIX "selfkill.sh";
	is_int(run(&t, "{}", NULL, &res, &err), 0, "signal: runs");
	ok(res.exit_status == -1 && res.term_signal == SIGTERM, "signal: SIGTERM recorded (%d, %d)",
	   res.exit_status, res.term_signal);
	toolrun_result_release(&res);

	argv[0] = (char *)FIX "nonexistent";
	is_int(run(&t, "{}", NULL, &res, &err), -1, "missing: error");
	is_str(err.msg, "cannot run 'tests/fixtures/tools/nonexistent': No such file or directory",
	       "missing: message");
	is_int(err.code, AI_EX_CONFIG, "missing: config error");
	ok(res.out.len == 0 && res.out.data == NULL, "missing: no output");
	toolrun_result_release(&res);

	argv[0] = (char *)FIX "noexec.sh";
	is_int(run(&t, "{}", NULL, &res, &err), -1, "not executable: error");
	ok(strstr(err.msg, "Permission denied") != NULL, "not executable: %s", err.msg);
	toolrun_result_release(&res);

	argv[0] = NULL;
	is_int(run(&t, "{}", NULL, &res, &err), -1, "empty argv: error");
}

static void test_signals_and_limits(void)
{
	char *argv[] = { (char *)FIX "sigpipe.sh", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .timeout_ms = 10000 };
	struct toolrun_result res;
	struct ai_err err;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);   /* as every program does */

	is_int(run(&t, "{}", NULL, &res, &err), 0, "sigpipe: runs");
	is_str(res.out.data, "y\n", "sigpipe: output");
	is_int(res.err.len, 0, "sigpipe: the tool got SIGPIPE at its default (%s)",
	       res.err.data ? res.err.data : "");
	toolrun_result_release(&res);
	signal(SIGPIPE, old);

	/* Raise the soft core limit first, so that "core 0" proves something. */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_max != 0) {
			rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576
				? 1048576 : rl.rlim_max;
			setrlimit(RLIMIT_CORE, &rl);
		}
	}
	argv[0] = (char *)FIX "limits.sh";
	lim.max_memory_mb = 512;
	is_int(run(&t, "{}", &lim, &res, &err), 0, "limits: runs");
	ok(has_line(res.out.data, "core 0"), "limits: no core dumps");
	ok(has_line(res.out.data, "as 524288"), "limits: 512 MB address space");
	toolrun_result_release(&res);

	argv[0] = (char *)FIX "spin.sh";
	lim.max_memory_mb = 0;
	lim.cpu_seconds = 1;
	/* One second of CPU may take many more of wall time on a loaded
	 * machine (seen: over 10 s in CI): only the CPU limit may stop it. */
	lim.timeout_ms = 300000;
	is_int(run(&t, "{}", &lim, &res, &err), 0, "cpu: runs");
	ok(!res.timed_out && (res.term_signal == SIGXCPU || res.term_signal == SIGKILL),
	   "cpu: stopped by RLIMIT_CPU (signal %d after %ld ms)", res.term_signal, res.ms);
	toolrun_result_release(&res);
}

static volatile sig_atomic_t interrupted;

static void on_alarm(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void test_cancel(void)
{
	char *argv[] = { (char *)FIX "noread.sh", NULL };
	struct tooldef t = tool(argv);
	struct toolrun_limits lim = { .timeout_ms = 20000, .cancel = &interrupted };
	struct toolrun_result res;
	struct ai_err err;
	struct sigaction sa;
	struct itimerval it = { { 0, 0 }, { 0, 100000 } };
	long t0;

	interrupted = 1;
	is_int(run(&t, "{}", &lim, &res, &err), -1, "cancel: already set fails");
	is_int(err.code, AI_EX_INTERRUPT, "cancel: AI_EX_INTERRUPT");

	argv[0] = (char *)FIX "sleeper.sh";
	argv[1] = NULL;
	{
		char pidfile[PATH_MAX + 32];
		char *a2[] = { (char *)FIX "sleeper.sh", pidfile, NULL };
		struct timespec ts;

		snprintf(pidfile, sizeof(pidfile), "%s/cancel.pid", tmpdir);
		t.argv = a2;
		interrupted = 0;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
		is_int(run(&t, "{}", &lim, &res, &err), -1, "cancel: SIGALRM handler stops it");
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ok(ts.tv_sec * 1000L + ts.tv_nsec / 1000000L - t0 < 2000, "cancel: promptly");
		is_str(err.msg, "tool 't' interrupted", "cancel: message");
		signal(SIGALRM, SIG_DFL);
		interrupted = 0;
	}
}

/* ---------------------------------------------------------------- */

static int load_text(struct toolset *ts, const char *name, const char *text, struct ai_err *err)
{
	char path[PATH_MAX + 64];

	write_file(name, text);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ai_err_clear(err);
	return toolset_load(ts, path, err);
}

static void bad_file(const char *text, const char *want, const char *what)
{
	struct toolset ts = TOOLSET_INIT;
	struct ai_err err;
	int rc = load_text(&ts, "bad.json", text, &err);

	is_int(rc, -1, "load %s: fails", what);
	ok(strstr(err.msg, want) != NULL, "load %s: '%s' in: %s", what, want, err.msg);
	ok(strstr(err.msg, "bad.json") != NULL, "load %s: names the file", what);
	is_int(err.code, AI_EX_CONFIG, "load %s: config error", what);
	is_int(ts.n, 0, "load %s: nothing added", what);
	toolset_release(&ts);
}

static void test_load(void)
{
	struct toolset ts = TOOLSET_INIT;
	struct ai_err err;
	struct buf b = BUF_INIT;
	const struct tooldef *t;
	json_object *o;
	struct toolrun_result res;

	buf_addf(&b,
		 "{\"tools\": [\n"
		 " {\"name\": \"echo\", \"description\": \"Echo the args\",\n"
		 "  \"parameters\": {\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"string\"}}},\n"
		 "  \"argv\": [\"%s/" FIX "echo.sh\"], \"side_effects\": false, \"timeout_ms\": 5000},\n"
		 " {\"name\": \"Shell-ish_2\", \"argv\": [\"sh\", \"-c\", \"cat\"], \"env\": [\"MY_SETTING\"]}\n"
		 "]}\n", cwd);
	is_int(load_text(&ts, "good.json", b.data, &err), 0, "load: valid file (%s)", err.msg);
	is_int(ts.n, 2, "load: two tools");
	t = toolset_find(&ts, "echo");
	ok(t != NULL, "load: find echo");
	if (t) {
		is_str(t->description, "Echo the args", "load: description");
		ok(!t->side_effects && t->timeout_ms == 5000, "load: side_effects, timeout_ms");
		ok(t->path && t->path[0] == '/', "load: absolute path kept");
		o = tooldef_to_openai(t);
		is_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		       "{\"type\":\"function\",\"function\":{\"name\":\"echo\",\"description\":"
		       "\"Echo the args\",\"parameters\":{\"type\":\"object\",\"properties\":"
		       "{\"x\":{\"type\":\"string\"}}}}}", "to_openai: the API's shape");
		json_object_put(o);
		is_int(toolrun(t, "{\"x\":\"hi\"}", NULL, &res, &err), 0, "load: loaded tool runs");
		is_str(res.out.data, "{\"x\":\"hi\"}", "load: loaded tool output");
		toolrun_result_release(&res);
	}
	t = toolset_find(&ts, "Shell-ish_2");
	ok(t != NULL, "load: find Shell-ish_2");
	if (t) {
		is_str(t->argv[0], "sh", "load: argv[0] as written");
		ok(t->path && t->path[0] == '/' && strstr(t->path, "/sh"), "load: sh found in PATH: %s",
		   t->path);
		is_str(t->description, "", "load: default description");
		ok(t->side_effects, "load: side_effects defaults to true");
		ok(t->env && t->env[0] && strcmp(t->env[0], "MY_SETTING") == 0 && !t->env[1],
		   "load: env names");
		o = tooldef_to_openai(t);
		is_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		       "{\"type\":\"function\",\"function\":{\"name\":\"Shell-ish_2\",\"description\":"
		       "\"\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}",
		       "to_openai: default schema");
		json_object_put(o);
	}
	ok(toolset_find(&ts, "nope") == NULL, "load: find unknown is NULL");

	/* Loading again: every name is now a duplicate, and nothing changes. */
	is_int(load_text(&ts, "good.json", b.data, &err), -1, "load: duplicate across files fails");
	ok(strstr(err.msg, "tool 'echo'") && strstr(err.msg, "already defined"), "load: %s", err.msg);
	is_int(ts.n, 2, "load: still two tools");
	toolset_release(&ts);
	ok(ts.n == 0 && ts.v == NULL, "release: empty");
	toolset_release(&ts);
	buf_release(&b);

	bad_file("{\"tools\": [", "not valid JSON", "truncated JSON");
	bad_file("{\"tools\": []}\n\n{", "unexpected text", "trailing text");
	bad_file("{\"tools\": [\n{\"name\": \"a\",,}]}", "line 2", "invalid JSON");
	bad_file("", "not valid JSON", "empty file");
	bad_file("[]", "must hold an object", "top-level array");
	bad_file("{\"tool\": []}", "must hold an object", "no tools key");
	bad_file("{\"tools\": {}}", "must hold an object", "tools not an array");
	bad_file("{\"tools\": [1]}", "tool #1: not a JSON object", "tool not an object");
	bad_file("{\"tools\": [{\"argv\":[\"sh\"]}]}", "\"name\" is missing", "no name");
	bad_file("{\"tools\": [{\"name\":\"\",\"argv\":[\"sh\"]}]}", "\"name\" must be", "empty name");
	bad_file("{\"tools\": [{\"name\":\"a b\",\"argv\":[\"sh\"]}]}", "\"name\" must be", "space");
	bad_file("{\"tools\": [{\"name\":\"caf\\u00e9\",\"argv\":[\"sh\"]}]}", "\"name\" must be",
		 "non-ASCII name");
	bad_file("{\"tools\": [{\"name\":\"a\\u0000b\",\"argv\":[\"sh\"]}]}", "\"name\" must be",
		 "NUL in name");
	bad_file("{\"tools\": [{\"name\":7,\"argv\":[\"sh\"]}]}", "\"name\" must be", "number name");
	bad_file("{\"tools\": [{\"name\":\"a\"},{\"name\":\"a\",\"argv\":[\"sh\"]}]}",
		 "tool 'a': \"argv\" is missing", "missing argv");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"]},{\"name\":\"a\",\"argv\":[\"sh\"]}]}",
		 "tool 'a': a tool of that name is already defined", "duplicate in one file");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[]}]}", "non-empty array", "empty argv");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":\"sh -c x\"}]}", "non-empty array",
		 "argv a string");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\", 1]}]}", "argv[1] is not a string",
		 "argv not strings");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\", \"a\\u0000b\"]}]}",
		 "argv[1] is not a string", "NUL in argv");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"\"]}]}", "argv[0] is empty", "empty argv[0]");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"" FIX "echo.sh\"]}]}",
		 "must be an absolute path", "relative argv[0]");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"no-such-command-xyz\"]}]}",
		 "not found in PATH", "unknown command");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"/nonexistent/x\"]}]}",
		 "cannot run '/nonexistent/x': No such file", "missing absolute path");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"/tmp\"]}]}",
		 "cannot run '/tmp'", "directory as argv[0]");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"parameters\":[]}]}",
		 "\"parameters\" must be", "parameters an array");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"timeout\":5}]}",
		 "unknown key \"timeout\"", "unknown key");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"timeout_ms\":0}]}",
		 "\"timeout_ms\" must be from 1", "zero timeout");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"timeout_ms\":\"5\"}]}",
		 "\"timeout_ms\" must be an integer", "string timeout");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"side_effects\":1}]}",
		 "\"side_effects\" must be", "side_effects a number");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"description\":null}]}",
		 "\"description\" must be", "null description");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"env\":[\"WEATHER_API_KEY\"]}]}",
		 "looks like a secret", "secret env name");
	bad_file("{\"tools\": [{\"name\":\"a\",\"argv\":[\"sh\"],\"env\":[\"A=B\"]}]}",
		 "not a variable name", "bad env name");

	{
		struct toolset ts2 = TOOLSET_INIT;
		char path[PATH_MAX + 64];

		snprintf(path, sizeof(path), "%s/does-not-exist.json", tmpdir);
		is_int(toolset_load(&ts2, path, &err), -1, "load: missing file fails");
		ok(strstr(err.msg, "cannot open tools file") && strstr(err.msg, "No such file"),
		   "load: %s", err.msg);
		is_int(load_text(&ts2, "empty.json", "{\"tools\": []}", &err), 0, "load: no tools is fine");
		is_int(ts2.n, 0, "load: zero tools");
		toolset_release(&ts2);
	}
	/* 64 characters is the longest name the API takes. */
	{
		struct toolset ts2 = TOOLSET_INIT;

		char text[256], name[66];

		memset(name, 'n', 64);
		name[64] = '\0';
		snprintf(text, sizeof(text), "{\"tools\": [{\"name\":\"%s\",\"argv\":[\"sh\"]}]}", name);
		is_int(load_text(&ts2, "long.json", text, &err), 0, "load: 64-char name (%s)", err.msg);
		toolset_release(&ts2);
		name[64] = 'n';
		name[65] = '\0';
		snprintf(text, sizeof(text), "{\"tools\": [{\"name\":\"%s\",\"argv\":[\"sh\"]}]}", name);
		bad_file(text, "\"name\" must be", "65-char name");
	}
}

static void test_load_dir(void)
{
	struct toolset ts = TOOLSET_INIT;
	struct ai_err err;
	char dir[PATH_MAX + 64], sub[PATH_MAX + 96];

	snprintf(dir, sizeof(dir), "%s/tools.d", tmpdir);
	ai_err_clear(&err);
	is_int(toolset_load_dir(&ts, dir, &err), 0, "dir: missing dir is not an error");
	is_int(ts.n, 0, "dir: nothing loaded");

	mkdir(dir, 0700);
	snprintf(sub, sizeof(sub), "%s/z.json", dir);
	mkdir(sub, 0700);    /* a directory named *.json is skipped */
	write_file("tools.d/b.json", "{\"tools\": [{\"name\":\"b\",\"argv\":[\"sh\"]}]}");
	write_file("tools.d/a.json", "{\"tools\": [{\"name\":\"a1\",\"argv\":[\"sh\"]},"
		   "{\"name\":\"a2\",\"argv\":[\"cat\"]}]}");
	write_file("tools.d/c.txt", "not json, not loaded");
	write_file("tools.d/.hidden.json", "not json, not loaded");
	is_int(toolset_load_dir(&ts, dir, &err), 0, "dir: loads (%s)", err.msg);
	is_int(ts.n, 3, "dir: three tools");
	if (ts.n == 3) {
		is_str(ts.v[0].name, "a1", "dir: sorted, a.json first");
		is_str(ts.v[1].name, "a2", "dir: then its second tool");
		is_str(ts.v[2].name, "b", "dir: then b.json");
	}

	/* A bad file anywhere: an error naming it, and nothing from the directory kept. */
	toolset_release(&ts);
	write_file("tools.d/c.json", "{\"tools\": [{\"name\":\"c\",\"argv\":[\"sh\"],\"x\":1}]}");
	is_int(toolset_load_dir(&ts, dir, &err), -1, "dir: bad file fails");
	ok(strstr(err.msg, "c.json") && strstr(err.msg, "tool 'c'"), "dir: %s", err.msg);
	is_int(ts.n, 0, "dir: all or nothing");
	toolset_release(&ts);
}

/* MCP servers declared beside the tools: parsed, checked, all or nothing. */
static void test_load_mcp(void)
{
	struct toolset ts = TOOLSET_INIT;
	struct ai_err err;
	const struct mcp_decl *d;

	is_int(load_text(&ts, "mcp.json",
			 "{\"mcp\": {\"fs\": {\"command\": [\"cat\", \"-u\"], \"env\": [\"FS_ROOT\"],"
			 " \"allow\": [\"write_file\"], \"timeout_ms\": 500, \"startup_timeout_ms\": 900},"
			 " \"web\": {\"url\": \"https://h/mcp\", \"headers_cmd\": \"pass x\"}},"
			 " \"tools\": []}", &err), 0, "mcp: declarations load (%s)", err.msg);
	is_int(ts.nmcp, 2, "mcp: two servers");
	is_int(ts.n, 0, "mcp: no tools yet: they come from the server");
	d = toolset_find_mcp(&ts, "fs");
	ok(d && d->cmd.path && d->cmd.path[0] == '/' && !strcmp(d->cmd.argv[1], "-u"),
	   "mcp: command resolved in PATH as a tool's argv");
	ok(d && d->allow && !strcmp(d->allow[0], "write_file") && !d->allow[1], "mcp: allow list");
	ok(d && d->timeout_ms == 500 && d->startup_timeout_ms == 900 && !d->url, "mcp: timeouts");
	ok(d && d->cmd.env && !strcmp(d->cmd.env[0], "FS_ROOT"), "mcp: env names");
	d = toolset_find_mcp(&ts, "web");
	ok(d && !d->cmd.argv && !strcmp(d->url, "https://h/mcp") && !strcmp(d->headers_cmd, "pass x"),
	   "mcp: an HTTP server");
	/* A second file naming fs again adds nothing, its good tools included. */
	is_int(load_text(&ts, "again.json",
			 "{\"tools\": [{\"name\": \"t2\", \"argv\": [\"cat\"]}],"
			 " \"mcp\": {\"other\": {\"command\": [\"cat\"]}, \"fs\": {\"command\": [\"cat\"]}}}",
			 &err), -1, "mcp: a server declared twice is refused");
	ok(strstr(err.msg, "the MCP server 'fs' is already declared in") != NULL, "mcp: says where: %s",
	   err.msg);
	ok(ts.nmcp == 2 && ts.n == 0, "mcp: all or nothing");
	is_int(load_text(&ts, "bad.json", "{\"mcp\": {\"x\": {\"command\": [\"cat\"], \"env\": [\"MY_TOKEN\"]}}}",
			 &err), -1, "mcp: a secret-looking env name is refused");
	is_int(load_text(&ts, "bad.json", "{\"mcp\": {\"x\": {\"url\": \"h\", \"env\": [\"A\"]}}}",
			 &err), -1, "mcp: a bad url is refused");
	is_int(load_text(&ts, "bad.json", "{\"mcp\": {\"x\": {}}}", &err), -1,
	       "mcp: neither command nor url is refused");
	is_int(load_text(&ts, "bad.json", "{\"mcp\": []}", &err), -1, "mcp: not an object is refused");
	is_int(load_text(&ts, "bad.json", "{}", &err), -1, "mcp: neither tools nor mcp is refused");
	is_int(ts.nmcp, 2, "mcp: still the two");
	toolset_release(&ts);
	ok(ts.nmcp == 0 && !ts.mcp, "mcp: released");
}

/* A long-lived child: talks on its pipes, and is stopped even when it ignores its end. */
static void test_toolproc(void)
{
	char *cat_argv[] = { (char *)"/bin/cat", NULL };
	char *stubborn_argv[] = { (char *)"/bin/sh", (char *)"-c",
				  (char *)"trap '' TERM; echo ready; while :; do sleep 1; done", NULL };
	struct tooldef t = tool(cat_argv);
	struct toolproc p;
	struct ai_err err;
	char buf[64];
	ssize_t n = -1;
	pid_t pid;
	long t0;

	ai_err_clear(&err);
	is_int(toolproc_start(&p, &t, NULL, &err), 0, "toolproc: cat starts (%s)", err.msg);
	is_int(toolproc_write(&p, "hello\n", 6, (long)mono_ms() + 5000, NULL, NULL, NULL, &err), 0, "toolproc: write");
	for (int i = 0; i < 500 && n < 0; i++) {
		n = read(p.out, buf, sizeof(buf) - 1);
		if (n < 0)
			usleep(10000);
	}
	ok(n == 6 && !memcmp(buf, "hello\n", 6), "toolproc: cat answers on its stdout");
	ok(!toolproc_exited(&p), "toolproc: still running");
	pid = p.pid;
	toolproc_stop(&p, 1000);
	ok(pid_gone(pid) && p.pid == 0 && p.in < 0 && p.out < 0, "toolproc: stopped by end of input");
	is_int(toolproc_write(&p, "x", 1, (long)mono_ms() + 100, NULL, NULL, NULL, &err), -1,
	       "toolproc: no write after stop");
	toolproc_stop(&p, 1000);        /* harmless */

	t = tool(stubborn_argv);
	is_int(toolproc_start(&p, &t, NULL, &err), 0, "toolproc: a stubborn child starts");
	n = -1;
	for (int i = 0; i < 500 && n <= 0; i++) {
		n = read(p.out, buf, sizeof(buf) - 1);
		if (n <= 0)
			usleep(10000);
	}
	pid = p.pid;
	t0 = (long)mono_ms();
	toolproc_stop(&p, 100);
	ok(pid_gone(pid), "toolproc: SIGKILL for one that ignores end of input and SIGTERM");
	ok((long)mono_ms() - t0 < 5000, "toolproc: within its grace times");

	{
		char *missing[] = { (char *)"/nonexistent/server", NULL };

		t = tool(missing);
		ai_err_clear(&err);
		is_int(toolproc_start(&p, &t, NULL, &err), -1, "toolproc: a missing program fails");
		is_int(err.code, AI_EX_CONFIG, "toolproc: as a configuration error");
		toolproc_stop(&p, 100);
	}
}

int main(void)
{
	int st;

	/* CI may start us with standard input closed: keep 0-2 taken, so that the
	 * test's own extra descriptors are 3 and up, as in any program. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return 1;

	if (!getcwd(cwd, sizeof(cwd)) || !mkdtemp(tmpdir)) {
		perror("t_toolrun");
		return 1;
	}
	test_echo();
	test_closed_stdin();
	test_env();
	test_fds();
	test_timeout();
	test_leftovers();
	test_output();
	test_stderr();
	test_noread();
	test_status();
	test_signals_and_limits();
	test_cancel();
	test_load();
	test_load_dir();
	test_load_mcp();
	test_toolproc();
	ok(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "no child left unreaped");
	{
		char cmd[PATH_MAX + 16];
		int AI_UNUSED rc;

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		rc = system(cmd);
	}
	return tap_done();
}
