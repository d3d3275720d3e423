/* t_history - the history file: loading good and bad lines, appending, concurrent appenders, short writes. */
#include "api/history.h"
#include "config.h"
#include "jsonval.h"
#include "buf.h"
#include "tap.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[] = "/tmp/t_history.XXXXXX";
static char path[512];

/* A fresh file name in the scratch directory (borrowed until the next call). */
static const char *fresh(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	return path;
}

static void put(const char *p, const char *text, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		printf("# cannot write '%s'\n", p);
	if (fd >= 0)
		close(fd);
}

/* The whole file as an owned string ("" when missing). */
static char *slurp(const char *p)
{
	struct buf b;
	char chunk[4096];
	ssize_t r;
	int fd = open(p, O_RDONLY);

	buf_init(&b, 0);
	while (fd >= 0 && (r = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)r);
	if (fd >= 0)
		close(fd);
	return buf_detach(&b, NULL);
}

static json_object *msg(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", content ? json_object_new_string(content) : NULL);
	return m;
}

/* Loads text written to a file; returns the rc, the array in *conv (owned), the error in *e. */
static int load_text(const char *text, size_t max, json_object **conv, struct ai_err *e)
{
	const char *p = fresh("load");

	put(p, text, strlen(text));
	*conv = json_object_new_array();
	ai_err_clear(e);
	return history_load(p, max, *conv, NULL, e);
}

static const char *field(json_object *conv, size_t i, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(json_object_array_get_idx(conv, i), key, &v))
		return "(missing)";
	return json_object_get_string(v);
}

static void test_load_good(void)
{
	json_object *conv;
	struct ai_err e;

	conv = json_object_new_array();
	is_int(history_load(fresh("none"), 0, conv, NULL, &e), 0, "a missing file is an empty history");
	is_int(json_object_array_length(conv), 0, "with no messages");
	json_object_put(conv);

	is_int(load_text("", 0, &conv, &e), 0, "an empty file loads");
	is_int(json_object_array_length(conv), 0, "as no messages");
	json_object_put(conv);

	is_int(load_text("{\"role\":\"system\",\"content\":\"Be brief.\"}\n"
			 "\n   \t\r\n"
			 "{\"role\":\"user\",\"content\":\"caf\xc3\xa9 / \\\"q\\\"\\nline\"}\r\n"
			 "{\"role\":\"assistant\",\"content\":null}\n"
			 "{\"content\":\"x\",\"role\":\"tool\",\"extra\":[1,2]}", 0, &conv, &e),
	       0, "good lines, blank lines, CRLF, null content, extra fields and no final newline load");
	is_int(json_object_array_length(conv), 4, "four messages");
	is_str(field(conv, 0, "role"), "system", "the first is the system message");
	is_str(field(conv, 1, "content"), "caf\xc3\xa9 / \"q\"\nline", "escapes and UTF-8 are decoded");
	is_str(field(conv, 2, "content"), NULL, "null content stays null");
	is_str(field(conv, 3, "content"), "x", "the last line without a newline is read");
	json_object_put(conv);

	/* Loading appends to what the array already holds. */
	conv = json_object_new_array();
	json_object_array_add(conv, msg("system", "first"));
	put(fresh("more"), "{\"role\":\"user\",\"content\":\"u\"}\n", 30);
	is_int(history_load(path, 0, conv, NULL, &e), 0, "loading into a non-empty array");
	is_int(json_object_array_length(conv), 2, "adds after what was there");
	is_str(field(conv, 1, "role"), "user", "in order");
	json_object_put(conv);
}

static void test_load_bad(void)
{
	static const struct {
		const char *text, *what;
		const char *line;
	} bad[] = {
		{ "not json\n", "a line that is not JSON", "line 1 " },
		{ "{\"role\":\"user\",\"content\":\"a\"}\n[1,2]\n", "an array", "line 2 " },
		{ "{\"role\":\"user\",\"content\":\"a\"}\n\n\"text\"\n", "a string, after a blank line", "line 3 " },
		{ "{\"content\":\"a\"}\n", "no role", "line 1 " },
		{ "{\"role\":\"user\"}\n", "no content", "line 1 " },
		{ "{\"role\":7,\"content\":\"a\"}\n", "a role that is not a string", "line 1 " },
		{ "{\"role\":\"user\",\"content\":[\"a\"]}\n", "content that is an array", "line 1 " },
		{ "{\"role\":\"user\",\"content\":3}\n", "content that is a number", "line 1 " },
		{ "{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"user\",\"content\":\"b\"\n",
		  "a truncated last line", "line 2 " },
	};
	json_object *conv;
	struct ai_err e;

	for (size_t i = 0; i < AI_ARRAY_LEN(bad); i++) {
		int rc = load_text(bad[i].text, 0, &conv, &e);

		ok(rc == -1 && e.code == AI_EX_DATAERR && strstr(e.msg, bad[i].line) &&
		   strstr(e.msg, "is not a message") && strstr(e.msg, path),
		   "%s is refused at its %s: %s", bad[i].what, bad[i].line, e.msg);
		json_object_put(conv);
	}

	is_int(load_text("{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"user\",\"content\":\"\xff\"}\n",
			 0, &conv, &e), -1, "bytes that are not UTF-8 are refused");
	is_int(e.code, AI_EX_DATAERR, "as bad data");
	ok(strstr(e.msg, "line 2, column") != NULL, "naming line and column: %s", e.msg);
	json_object_put(conv);

	{
		const char text[] = "{\"role\":\"user\",\"content\":\"a\0b\"}\n";

		put(fresh("nul"), text, sizeof(text) - 1);
		conv = json_object_new_array();
		is_int(history_load(path, 0, conv, NULL, &e), -1, "a NUL byte is refused");
		ok(strstr(e.msg, "NUL") != NULL, "saying so: %s", e.msg);
		json_object_put(conv);
	}

	is_int(load_text("{\"role\":\"user\",\"content\":\"aaaaaaaaaaaaaaaaaaaa\"}\n", 16, &conv, &e), -1,
	       "a file over the cap is refused");
	is_int(e.code, AI_EX_DATAERR, "as bad data");
	json_object_put(conv);

	conv = json_object_new_array();
	is_int(history_load(dir, 0, conv, NULL, &e), -1, "a directory is not a history");
	is_int(e.code, AI_EX_NOINPUT, "it cannot be read");
	ok(strstr(e.msg, dir) != NULL, "the message names it: %s", e.msg);
	json_object_put(conv);
}

static void test_append(void)
{
	json_object *m[3], *conv;
	struct ai_err e;
	struct stat st;
	char *s;
	const char *p = fresh("append");

	m[0] = msg("system", "Be brief.");
	m[1] = msg("user", "caf\xc3\xa9 a/b \"q\"\nnext");
	m[2] = msg("assistant", NULL);
	is_int(history_append(p, m, 0, NULL, &e), 0, "appending nothing succeeds");
	ok(stat(p, &st) && errno == ENOENT, "and creates no file");
	is_int(history_append(p, m, 3, NULL, &e), 0, "appending to a new file");
	ok(!stat(p, &st) && (st.st_mode & 0777) == 0600, "creates it private (0600)");
	s = slurp(p);
	is_str(s, "{\"role\":\"system\",\"content\":\"Be brief.\"}\n"
		  "{\"role\":\"user\",\"content\":\"caf\xc3\xa9 a/b \\\"q\\\"\\nnext\"}\n"
		  "{\"role\":\"assistant\",\"content\":null}\n",
	       "one compact JSON line a message, slashes and UTF-8 unescaped");
	free(s);
	is_int(history_append(p, m + 1, 2, NULL, &e), 0, "appending again");
	conv = json_object_new_array();
	is_int(history_load(p, 0, conv, NULL, &e), 0, "what was appended loads back");
	is_int(json_object_array_length(conv), 5, "all five messages");
	is_str(field(conv, 4, "role"), "assistant", "in order");
	is_str(field(conv, 3, "content"), "caf\xc3\xa9 a/b \"q\"\nnext", "with their text intact");
	json_object_put(conv);

	/* A file edited by hand without a final newline. */
	p = fresh("nonl");
	put(p, "{\"role\":\"user\",\"content\":\"a\"}", 29);
	is_int(history_append(p, m + 2, 1, NULL, &e), 0, "appending to a file without a final newline");
	s = slurp(p);
	is_str(s, "{\"role\":\"user\",\"content\":\"a\"}\n{\"role\":\"assistant\",\"content\":null}\n",
	       "adds the newline first, so the old last line stays whole");
	free(s);

	ai_err_clear(&e);
	is_int(history_append(dir, m, 1, NULL, &e), -1, "a directory cannot be appended to");
	is_int(e.code, AI_EX_IOERR, "an I/O error");
	ok(strstr(e.msg, "cannot open history") && strstr(e.msg, dir), "naming it: %s", e.msg);
	fresh("sub");
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/h");
	is_int(history_append(path, m, 1, NULL, &e), -1, "a file in a missing directory cannot be created");
	is_int(e.code, AI_EX_IOERR, "an I/O error");
	for (size_t i = 0; i < 3; i++)
		json_object_put(m[i]);
}

enum { WRITERS = 6, ROUNDS = 40 };

/*
 * Several processes append exchanges with long texts at once; every
 * exchange must come out as two adjacent lines, none lost or cut.
 */
static void test_concurrent(void)
{
	const char *p = fresh("concurrent");
	char big[20000];
	json_object *conv;
	struct ai_err e;
	int failed = 0, torn = 0, bad_len = 0;
	size_t seen[WRITERS] = { 0 };

	put(p, "{\"role\":\"system\",\"content\":\"s\"}", 31);  /* no final newline: raced over too */
	for (int w = 0; w < WRITERS; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			ok(0, "fork: %s", strerror(errno));
			return;
		}
		if (pid == 0) {
			int bad = 0;

			memset(big, 'a' + w, sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			for (int r = 0; r < ROUNDS; r++) {
				char u[64];
				json_object *m[2];

				snprintf(u, sizeof(u), "%d %d", w, r);
				m[0] = msg("user", u);
				/* Lengths vary so that writes do not line up. */
				m[1] = msg("assistant", big + (size_t)(r * 97 + w * 13) % 5000);
				if (history_append(p, m, 2, NULL, &e))
					bad++;
				json_object_put(m[0]);
				json_object_put(m[1]);
			}
			_exit(bad ? 1 : 0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	is_int(failed, 0, "%d processes appending %d exchanges each all succeed", WRITERS, ROUNDS);
	conv = json_object_new_array();
	is_int(history_load(p, 0, conv, NULL, &e), 0, "the file they wrote is a valid history: %s", e.msg);
	is_int(json_object_array_length(conv), 1 + 2 * WRITERS * ROUNDS, "with every message in it");
	for (size_t i = 1; i + 1 < json_object_array_length(conv); i += 2) {
		int w, r;
		const char *a = field(conv, i + 1, "content");

		if (strcmp(field(conv, i, "role"), "user") || sscanf(field(conv, i, "content"), "%d %d", &w, &r) != 2 ||
		    w < 0 || w >= WRITERS || strcmp(field(conv, i + 1, "role"), "assistant") ||
		    a[0] != 'a' + w) {
			torn++;
			continue;
		}
		if (strlen(a) != sizeof(big) - 1 - (size_t)(r * 97 + w * 13) % 5000 ||
		    strspn(a, (char[]){ (char)('a' + w), 0 }) != strlen(a))
			bad_len++;
		if ((size_t)r != seen[w]++)
			torn++;
	}
	is_int(torn, 0, "every exchange is a user line followed by its own answer, in each writer's order");
	is_int(bad_len, 0, "no answer was cut or mixed with another");
	json_object_put(conv);
}

/*
 * An appender waits for another holder of the lock: while the test holds
 * flock(2) on the file, a child's append must not reach it.
 */
static void test_lock(void)
{
	const char *p = fresh("locked");
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	struct stat st;
	int fd, status;
	pid_t pid;
	char *s;

	put(p, "", 0);
	fd = open(p, O_RDONLY);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		ok(0, "cannot lock '%s': %s", p, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		json_object *m = msg("user", "after the lock");
		struct ai_err e;

		_exit(history_append(p, &m, 1, NULL, &e) ? 1 : 0);
	}
	nanosleep(&pause, NULL);
	is_int(stat(p, &st) ? -1 : (long long)st.st_size, 0, "an append waits while another process holds the lock");
	flock(fd, LOCK_UN);
	close(fd);
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "and goes ahead once it is released");
	s = slurp(p);
	is_str(s, "{\"role\":\"user\",\"content\":\"after the lock\"}\n", "writing its line");
	free(s);
}

/*
 * A short write, made real with a file size limit: write(2) stops at the
 * limit and returns fewer bytes.  Runs in a child so the limit stays there.
 * Returns the child's report: 0 refused as wanted, 1 succeeded, 2 refused
 * otherwise, -1 could not run.
 */
static int append_limited(const char *p, off_t limit, json_object *const *m, size_t n, char *why, size_t whylen)
{
	int fds[2], status;
	pid_t pid;
	ssize_t r;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		struct rlimit rl = { (rlim_t)limit, (rlim_t)limit };
		struct ai_err e;
		int rc;

		close(fds[0]);
		signal(SIGXFSZ, SIG_IGN);
		ai_err_clear(&e);
		if (setrlimit(RLIMIT_FSIZE, &rl))
			_exit(3);
		rc = history_append(p, m, n, NULL, &e);
		if (write(fds[1], e.msg, strlen(e.msg)) < 0)
			_exit(3);
		_exit(rc == 0 ? 1 : e.code == AI_EX_IOERR ? 0 : 2);
	}
	close(fds[1]);
	r = read(fds[0], why, whylen - 1);
	why[r > 0 ? r : 0] = '\0';
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) == 3)
		return -1;
	return WEXITSTATUS(status);
}

static void test_short_write(void)
{
	static const char before[] = "{\"role\":\"user\",\"content\":\"kept\"}\n";
	const char *p = fresh("short");
	json_object *m[2];
	char why[256], *s;
	int rc;

	m[0] = msg("user", "a question long enough to cross the limit");
	m[1] = msg("assistant", "an answer long enough to cross the limit");

	put(p, before, sizeof(before) - 1);
	rc = append_limited(p, (off_t)sizeof(before) - 1 + 20, m, 2, why, sizeof(why));
	is_int(rc, 0, "a short write fails with an I/O error");
	ok(strstr(why, "cannot append to history") && strstr(why, p), "naming the file: %s", why);
	s = slurp(p);
	is_str(s, before, "and the part written is cut back off");
	free(s);

	/* The newline added for a hand-edited file goes too. */
	put(p, before, sizeof(before) - 2);
	rc = append_limited(p, (off_t)sizeof(before) - 2 + 10, m, 2, why, sizeof(why));
	is_int(rc, 0, "a short write after an added newline fails");
	s = slurp(p);
	ok(strlen(s) == sizeof(before) - 2 && !memcmp(s, before, sizeof(before) - 2),
	   "and the file is exactly as it was, without the newline");
	free(s);

	/* At the limit already: write(2) itself fails (EFBIG) and nothing is written. */
	put(p, before, sizeof(before) - 1);
	rc = append_limited(p, (off_t)sizeof(before) - 1, m, 2, why, sizeof(why));
	is_int(rc, 0, "a write refused outright fails with an I/O error");
	ok(strstr(why, strerror(EFBIG)) != NULL, "saying why: %s", why);
	s = slurp(p);
	is_str(s, before, "and leaves the file as it was");
	free(s);

	/* With room, the same append works: the limit, not the code, made it fail. */
	rc = append_limited(p, 1 << 20, m, 2, why, sizeof(why));
	is_int(rc, 1, "with room under the limit the append succeeds");
	json_object_put(m[0]);
	json_object_put(m[1]);
}

/* The conversation over a history file: which system message is sent and which is stored. */
static void test_conv(void)
{
	struct conv cv;
	struct ai_err e;
	const char *p = fresh("conv");
	json_object *m[2];

	ai_err_clear(&e);
	is_int(conv_open(&cv, p, 0, NULL, "dflt", NULL, &e), 0, "a new history");
	is_int((int)json_object_array_length(cv.msgs), 1, "holds the default system message");
	is_str(jv_str(json_object_array_get_idx(cv.msgs, 0), "content"), "dflt", "ai.conf's system");
	ok(cv.store_system, "which the new file will keep");
	/* An exchange as conv_ask leaves it, then saved. */
	m[0] = jv_message("user", "hi");
	m[1] = jv_message("assistant", "hello");
	jv_push(cv.msgs, m[0]);
	jv_push(cv.msgs, m[1]);
	is_int(conv_save(&cv, &e), 0, "the exchange is saved");
	ok(!cv.store_system, "the system message only once");
	conv_release(&cv);

	is_int(conv_open(&cv, p, 0, NULL, "other", NULL, &e), 0, "the history again");
	is_int((int)json_object_array_length(cv.msgs), 3, "system, question, answer");
	is_str(jv_str(json_object_array_get_idx(cv.msgs, 0), "content"), "dflt",
	       "the history's own system message wins over ai.conf's");
	conv_release(&cv);

	is_int(conv_open(&cv, p, 0, "flag", "other", NULL, &e), 0, "with --system");
	is_int((int)json_object_array_length(cv.msgs), 3, "replaces, does not add");
	is_str(jv_str(json_object_array_get_idx(cv.msgs, 0), "content"), "flag", "--system wins for the requests");
	ok(!cv.store_system, "and the file keeps its own");
	conv_release(&cv);

	is_int(conv_open(&cv, NULL, 0, NULL, NULL, NULL, &e), 0, "no file, no system");
	is_int((int)json_object_array_length(cv.msgs), 0, "an empty conversation");
	is_int(conv_save(&cv, &e), 0, "nothing to save to");
	conv_release(&cv);

	is_int(conv_open(&cv, dir, 0, NULL, NULL, NULL, &e), -1, "a directory is not a history");
	is_int(e.code, AI_EX_IOERR, "found before anything is asked: %s", e.msg);

	/* Under --dry-run nothing is answered: the conversation stays as it was. */
	{
		struct ai_config cfg;
		struct config_overrides ov;
		struct ai_client *c = NULL;
		struct ai_chat_req q;
		struct ai_chat_resp r;

		config_overrides_init(&ov);
		ov.dry_run = true;
		ov.no_cache = true;
		setenv("AI_CONFIG", "/nonexistent/ai-config", 1);
		if (config_load(&cfg, &ov, &e) ||
		    ai_client_init(&c, &(struct ai_client_opts){ .cfg = &cfg, .prog = "t_history" }, &e)) {
			ok(0, "a dry-run client: %s", e.msg);
			return;
		}
		cfg.ledger = false;
		is_int(conv_open(&cv, NULL, 0, "sys", NULL, NULL, &e), 0, "a conversation");
		ai_chat_req_init(&q);
		is_int(conv_ask(&cv, c, &q, "question", &r, &e), 0, "asked under --dry-run");
		ok(r.dry_run, "nothing sent");
		is_int((int)json_object_array_length(cv.msgs), 1, "the question does not stay");
		ai_chat_resp_release(&r);
		conv_release(&cv);
		ai_client_release(c);
		config_release(&cfg);
	}
}

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/*
 * The caller's stop flag, not a program's global, ends a read that waits:
 * a FIFO whose writer never writes nor closes, and an alarm that sets the flag.
 */
static void test_stop(void)
{
	struct sigaction sa;
	struct ai_err e;
	json_object *conv = json_object_new_array();
	const char *p = fresh("fifo");
	pid_t pid;
	int rc, st;

	if (mkfifo(p, 0600)) {
		ok(0, "mkfifo: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		int fd = open(p, O_WRONLY);

		(void)fd;
		pause();
		_exit(0);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;       /* no SA_RESTART: the read returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
	stop_flag = 0;
	alarm(1);
	ai_err_clear(&e);
	rc = history_load(p, 0, conv, &stop_flag, &e);
	alarm(0);
	is_int(rc, -1, "a load stopped by the caller's flag fails");
	is_int(e.code, AI_EX_INTERRUPT, "as interrupted: %s", e.msg);
	is_int((int)json_object_array_length(conv), 0, "nothing is loaded");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	json_object_put(conv);
	signal(SIGALRM, SIG_DFL);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_load_good();
	test_load_bad();
	test_append();
	test_concurrent();
	test_lock();
	test_short_write();
	test_stop();
	test_conv();
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			printf("# could not remove %s\n", dir);
	}
	return tap_done();
}
