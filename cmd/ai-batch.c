/*
 * ai-batch - JSON lines in, one JSON line out per item (pattern 3: batch).
 *
 * A Unix filter first (concurrent, rate-limited, retried, resumable with
 * --state), a job system for cron second (submit prints an id at once and
 * runs the batch detached; status, results, wait, list, cancel, resume),
 * and the provider's Batch API for half the price third (submit --remote).
 * The engine is common/batch/batch.c, the spool common/batch/jobs.c, the Batch API
 * common/batch/provbatch.c: this file is options, dispatch and printing.
 */
#include "ai.h"
#include "api/api.h"
#include "batch/batch.h"
#include "lib/cli.h"
#include "closest.h"
#include "batch/jobs.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "batch/provbatch.h"
#include "lib/termout.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	OPT_UNORDERED = CLI_OPT_PROG, OPT_RPM, OPT_TPM, OPT_STATE, OPT_TEMPLATE, OPT_LINES,
	OPT_SYSTEM, OPT_MAX_LINE, OPT_TEMPERATURE, OPT_MAX_TOKENS, OPT_REMOTE, OPT_WINDOW,
	OPT_POLL
};

static const struct cli_opt opts[] = {
	{ "parallel", required_argument, 'P', "N", "requests in flight at once (default 8)" },
	{ "unordered", no_argument, OPT_UNORDERED, NULL, "print each line as its item finishes" },
	{ "rpm", required_argument, OPT_RPM, "N", "at most N requests a minute" },
	{ "tpm", required_argument, OPT_TPM, "N", "at most N tokens a minute (estimated before, counted after)" },
	{ "state", required_argument, OPT_STATE, "FILE", "journal finished items in FILE; run again to resume" },
	{ "template", required_argument, 't', "TEXT", "the prompt, with {{field}} taken from each item" },
	{ "lines", no_argument, OPT_LINES, NULL, "each input line is a plain text item" },
	{ "system", required_argument, OPT_SYSTEM, "TEXT", "a system message before each text item" },
	{ "max-line", required_argument, OPT_MAX_LINE, "BYTES", "longer lines are error items (default 1048576)" },
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of each answer" },
	{ "window", required_argument, OPT_WINDOW, "N", "read at most N items ahead of the oldest unfinished one (default the larger of 1024 and 16 times -P)" },
	{ "remote", no_argument, OPT_REMOTE, NULL, "submit: use the provider's Batch API (half price, 24 h)" },
	{ "poll", required_argument, OPT_POLL, "SECONDS", "wait: check a remote batch this often (default 10)" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	struct batch_opts b;
	bool remote, lines;
	double poll_s;
};

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	(void)sig;
	got_term = 1;
	cli_interrupted = 1;
}

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case 'P': o->b.parallel = (int)cli_long("--parallel", arg, 1, 1024); break;
	case OPT_UNORDERED: o->b.unordered = true; break;
	case OPT_RPM: o->b.rpm = cli_double("--rpm", arg, 0.001, 1e9); break;
	case OPT_TPM: o->b.tpm = cli_double("--tpm", arg, 1, 1e12); break;
	case OPT_STATE: o->b.state = arg; break;
	case 't': o->b.item.tmpl = arg; break;
	case OPT_LINES: o->b.item.mode = JSONL_LINES; break;
	case OPT_SYSTEM: o->b.item.system = arg; break;
	case OPT_MAX_LINE: o->b.max_line = (size_t)cli_long("--max-line", arg, 16, 1L << 30); break;
	case OPT_TEMPERATURE: o->b.temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->b.max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_WINDOW: o->b.window = (size_t)cli_long("--window", arg, 1, 10000000); break;
	case OPT_REMOTE: o->remote = true; break;
	case OPT_POLL: o->poll_s = cli_duration("--poll", arg); break;
	}
}

static void opts_init(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->b.parallel = 8;
	o->b.temperature = NAN;
	o->b.max_line = 1u << 20;
	o->poll_s = 10;
}

static int parse(struct cli *c, struct opts *o, int argc, char **argv)
{
	cli_init(c, "ai-batch");
	c->usage = "[OPTION]... [FILE]\n"
		   "  or:  ai-batch submit [--remote] [OPTION]... [FILE]\n"
		   "  or:  ai-batch status|results|wait|cancel|resume ID\n"
		   "  or:  ai-batch list";
	c->summary = "Send each JSON line of FILE or standard input to the model; print one JSON line per item.";
	c->opts = opts;
	c->schema_ok = true;
	opts_init(o);
	optind = 0;   /* glibc: a full reset, so a runner can parse a second argv */
	return cli_parse(c, argc, argv, on_opt, o);
}

static void install_term(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
}

/* Killed by SIGTERM: say so the Unix way, once the journal is safe. */
static void term_exit(void)
{
	if (!got_term)
		return;
	fflush(stdout);
	signal(SIGTERM, SIG_DFL);
	raise(SIGTERM);
	_exit(AI_EX_TEMPFAIL);
}

static int open_input(int argc, char **argv)
{
	int fd;

	if (argc > 1)
		cli_usage_error("give one input file at most (or none, for standard input)");
	if (!argc || !strcmp(argv[0], "-")) {
		cli_note_stdin();
		return 0;
	}
	fd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		cli_die(AI_EX_NOINPUT, "cannot open '%s': %s", argv[0], strerror(errno));
	return fd;
}

/* ---- the filter ---- */

static void emit_stdout(const char *line, size_t len, void *ud)
{
	(void)ud;
	cli_write(line, len, false);
	cli_write("\n", 1, false);
}

static void flush_stdout(void *ud)
{
	(void)ud;
	cli_write(NULL, 0, true);
}

static void fmt_eta(char *out, size_t n, double s)
{
	if (!isfinite(s) || s < 0)
		snprintf(out, n, "?");
	else if (s >= 3600)
		snprintf(out, n, "%d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
	else
		snprintf(out, n, "%d:%02d", (int)(s / 60), (int)fmod(s, 60));
}

static double eta_s(const struct batch_stats *s)
{
	long fresh = s->done - s->replayed;
	double rate = s->elapsed_ms > 0 ? fresh * 1000.0 / (double)s->elapsed_ms : 0;

	return rate > 0 ? (double)(s->total - s->done) / rate : NAN;
}

/* ud: the struct termout_progress. */
static void progress_tty(const struct batch_stats *s, bool final, void *ud)
{
	double rate = s->elapsed_ms > 0 ? (s->done - s->replayed) * 1000.0 / (double)s->elapsed_ms : 0;
	char eta[32];

	fmt_eta(eta, sizeof(eta), eta_s(s));
	termout_progress(ud, final, "%ld/%ld done, %.1f/s, ETA %s, %ld failed, %ld tokens, $%.4f",
			 s->done, s->total, rate, eta, s->failed,
			 s->prompt_tokens + s->completion_tokens, s->cost);
}

static int run_filter(struct cli *c, struct opts *o, int argc, char **argv)
{
	struct ai_config cfg;
	struct ai_client client;
	struct ai_err err;
	struct batch b;
	struct termout_progress prog;
	struct structured st;
	int fd, code;

	if (o->remote)
		cli_usage_error("--remote is for 'ai-batch submit'");
	ai_err_clear(&err);
	if (c->schema) {
		if (structured_load(&st, c->schema, c->schema_multi, &err))
			cli_die_err(&err);
		o->b.st = &st;
	}
	fd = open_input(argc, argv);
	ai_err_clear(&err);
	setup_client(c, &cfg, &client, &err);
	if (!o->b.item.system)
		o->b.item.system = cfg.system;     /* ai.conf: the default of --system */
	client.parallel = o->b.parallel;
	o->b.emit = emit_stdout;
	o->b.flush = flush_stdout;
	if (!c->quiet && isatty(2)) {
		termout_progress_init(&prog);
		o->b.progress = progress_tty;
		o->b.progress_ms = 200;
		o->b.ud = &prog;
	}
	if (batch_open(&b, &o->b, fd, &err))
		setup_die(&client, &cfg, &err);
	if (batch_run(&b, &client, &err)) {
		batch_close(&b);
		term_exit();
		setup_die(&client, &cfg, &err);
	}
	code = batch_exit_code(&b);
	if (b.st.not_sent > 0 && !c->quiet)
		cli_warn("%ld item%s not sent: %s; once the server answers, run again%s", b.st.not_sent,
			 b.st.not_sent == 1 ? "" : "s", b.down,
			 o->b.state ? " with the same --state to send only what is missing" : "");
	batch_close(&b);
	if (o->b.st)
		structured_release(o->b.st);
	ai_client_release(&client);
	config_release(&cfg);
	if (fd)
		close(fd);
	return cli_finish(code);
}

/* ---- jobs ---- */

static void iso_time(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *status_obj(const struct job *j, const char *state, const struct batch_stats *s,
			       int exit_code)
{
	json_object *o = json_object_new_object();
	char t[32];

	if (!o)
		cli_die(AI_EX_OSERR, "out of memory");
	out_add(o, "id", json_object_new_string(j->id));
	out_add(o, "mode", json_object_new_string("local"));
	out_add(o, "state", json_object_new_string(state));
	out_add(o, "total", json_object_new_int64(s ? s->total : 0));
	out_add(o, "done", json_object_new_int64(s ? s->done : 0));
	out_add(o, "ok", json_object_new_int64(s ? s->ok : 0));
	out_add(o, "failed", json_object_new_int64(s ? s->failed : 0));
	if (s && s->started_ms) {
		iso_time(t, sizeof(t), s->started_ms);
		out_add(o, "started", json_object_new_string(t));
	} else {
		out_add(o, "started", NULL);
	}
	iso_time(t, sizeof(t), (int64_t)time(NULL) * 1000);
	out_add(o, "updated", json_object_new_string(t));
	if (s && !strcmp(state, "running") && isfinite(eta_s(s)))
		out_add(o, "eta_s", json_object_new_int64((int64_t)ceil(eta_s(s))));
	else
		out_add(o, "eta_s", NULL);
	out_add(o, "tokens", json_object_new_int64(s ? s->prompt_tokens + s->completion_tokens : 0));
	out_add(o, "cost", json_object_new_double(s ? s->cost : 0));
	out_add(o, "exit", exit_code >= 0 ? json_object_new_int(exit_code) : NULL);
	out_add(o, "pid", json_object_new_int64((int64_t)getpid()));
	return o;
}

struct runner {
	struct job *j;
	int out;
};

static void write_status(const struct job *j, const char *state, const struct batch_stats *s,
			 int exit_code)
{
	json_object *o = status_obj(j, state, s, exit_code);
	struct ai_err e;

	ai_err_clear(&e);
	if (job_write_status(j, o, &e))
		cli_warn("%s", e.msg);
	json_object_put(o);
}

static void emit_job(const char *line, size_t len, void *ud)
{
	struct runner *r = ud;
	struct buf b;

	/* One write a line, so a reader of out.jsonl never sees half of one. */
	buf_init(&b, 0);
	if (buf_add(&b, line, len) || buf_addch(&b, '\n') ||
	    write(r->out, b.data, b.len) != (ssize_t)b.len)
		cli_warn("cannot write the job's output: %s", strerror(errno));
	buf_release(&b);
}

static void progress_job(const struct batch_stats *s, bool final, void *ud)
{
	struct runner *r = ud;

	if (!final)
		write_status(r->j, "running", s, -1);
}

static bool has_file(const struct job *j, const char *name)
{
	struct buf p;
	bool yes;

	buf_init(&p, 0);
	job_path(j, name, &p);
	yes = p.data && !access(p.data, F_OK);
	buf_release(&p);
	return yes;
}

static int open_in_job(const struct job *j, const char *name, int flags)
{
	struct buf p;
	int fd;

	buf_init(&p, 0);
	if (job_path(j, name, &p))
		cli_die(AI_EX_OSERR, "out of memory");
	fd = open(p.data, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		cli_die(AI_EX_IOERR, "cannot open '%s': %s", p.data, strerror(errno));
	buf_release(&p);
	return fd;
}

/* The detached runner: the batch over the job's input, its journal and its output. */
static int run_job(const char *id)
{
	struct job j;
	struct ai_err err;
	struct cli c;
	struct opts o;
	struct ai_config cfg;
	struct ai_client client;
	struct batch b;
	struct runner r;
	struct buf state;
	int argc, lock, in, code, rc;
	char **argv;

	ai_err_clear(&err);
	if (job_open(&j, id, &err))
		cli_die_err(&err);
	rc = job_lock(&j, &lock, &err);
	if (rc)
		cli_die(AI_EX_TEMPFAIL, "%s", rc > 0 ? "the job is running already" : err.msg);
	if (job_load_args(&j, &argc, &argv, &err))
		cli_die_err(&err);
	parse(&c, &o, argc, argv);
	install_term();
	buf_init(&state, 0);
	job_path(&j, "state", &state);
	o.b.state = state.data;
	in = open_in_job(&j, "input.jsonl", O_RDONLY);
	/* Rewritten from the journal on every run, so a resume never repeats a line. */
	r.out = open_in_job(&j, "out.jsonl", O_WRONLY | O_CREAT | O_TRUNC);
	r.j = &j;
	o.b.emit = emit_job;
	o.b.progress = progress_job;
	o.b.progress_ms = 500;
	o.b.ud = &r;
	setup_client(&c, &cfg, &client, &err);
	if (!o.b.item.system)
		o.b.item.system = cfg.system;     /* ai.conf: the default of --system */
	client.parallel = o.b.parallel;
	write_status(&j, "running", NULL, -1);
	if (batch_open(&b, &o.b, in, &err)) {
		write_status(&j, "failed", NULL, err.code);
		setup_die(&client, &cfg, &err);
	}
	write_status(&j, "running", &b.st, -1);
	rc = batch_run(&b, &client, &err);
	code = rc ? err.code : batch_exit_code(&b);
	if (rc && err.code == AI_EX_INTERRUPT)
		write_status(&j, has_file(&j, "cancelled") ? "cancelled" : "stopped", &b.st, -1);
	else
		write_status(&j, rc ? "failed" : "done", &b.st, code);
	if (rc)
		cli_warn("%s", err.msg);
	batch_close(&b);
	ai_client_release(&client);
	config_release(&cfg);
	close(in);
	close(r.out);
	buf_release(&state);
	job_free_args(argc, argv);
	job_release(&j);
	return code;
}

static int start_runner(struct job *j)
{
	struct ai_err err;
	int r;

	ai_err_clear(&err);
	r = job_detach(j, &err);
	if (r < 0)
		cli_die_err(&err);
	if (r == 0)
		_exit(run_job(j->id));
	return 0;
}

/* Copies the input into the job and checks it (ids, size) before anything is detached. */
static void copy_input(struct job *j, int fd, const struct opts *o)
{
	struct batch b;
	struct ai_err err;
	int out = open_in_job(j, "input.jsonl", O_WRONLY | O_CREAT | O_TRUNC);
	char blk[65536];
	ssize_t n;

	while ((n = read(fd, blk, sizeof(blk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(out, blk, (size_t)n) != n)
			cli_die(AI_EX_IOERR, "cannot copy the input into job '%s': %s", j->id, strerror(errno));
	}
	if (fsync(out) || close(out))
		cli_die(AI_EX_IOERR, "cannot copy the input into job '%s': %s", j->id, strerror(errno));
	out = open_in_job(j, "input.jsonl", O_RDONLY);
	ai_err_clear(&err);
	if (batch_open(&b, &o->b, out, &err))
		cli_die_err(&err);
	batch_close(&b);
	close(out);
}

static int remove_job(struct job *j)
{
	static const char *const files[] = {
		"input.jsonl", "args", "state", "out.jsonl", "status.json", "status.json.tmp", "log",
		"lock", "remote.json", "cancelled", "batch-output.jsonl", "batch-errors.jsonl",
		"requests.jsonl"
	};
	struct buf p;

	buf_init(&p, 0);
	for (size_t i = 0; i < AI_ARRAY_LEN(files); i++) {
		buf_reset(&p);
		job_path(j, files[i], &p);
		unlink(p.data);
	}
	buf_release(&p);
	return rmdir(j->dir);
}

static int cmd_submit(struct cli *c, struct opts *o, int argc, char **argv, int optind_)
{
	struct job j;
	struct ai_err err;
	int fd;

	if (o->b.state)
		cli_usage_error("a job keeps its own state: leave out --state");
	if (c->schema)
		cli_usage_error("--schema checks answers as they come: use it without submit "
				"(ai-batch --schema SCHEMA FILE)");
	fd = open_input(argc - optind_, argv + optind_);
	ai_err_clear(&err);
	if (job_new(&j, &err))
		cli_die_err(&err);
	/* The options are kept for the runner and for resume; the input file is copied. */
	if (job_save_args(&j, optind_ - 1, argv + 1, &err))
		goto fail;
	if (o->remote) {
		struct ai_config cfg;
		struct ai_client client;
		int in;

		copy_input(&j, fd, o);
		in = open_in_job(&j, "input.jsonl", O_RDONLY);
		setup_client(c, &cfg, &client, &err);
		if (!o->b.item.system)
			o->b.item.system = cfg.system;     /* ai.conf: the default of --system */
		if (provbatch_submit(&client, &j, in, &o->b, &err)) {
			close(in);
			ai_client_release(&client);
			config_release(&cfg);
			goto fail;
		}
		close(in);
		ai_client_release(&client);
		config_release(&cfg);
		if (c->dry_run) {
			remove_job(&j);
			job_release(&j);
			return cli_finish(0);
		}
	} else {
		copy_input(&j, fd, o);
		write_status(&j, "queued", NULL, -1);
		start_runner(&j);
	}
	printf("%s\n", j.id);
	job_release(&j);
	return cli_finish(0);
fail:
	remove_job(&j);
	job_release(&j);
	cli_die_err(&err);
}

static bool is_remote(const struct job *j)
{
	return has_file(j, "remote.json");
}

/* The status of a local job, with "stopped" for a runner that died. */
static json_object *local_status(struct job *j)
{
	struct ai_err err;
	json_object *s, *st;

	ai_err_clear(&err);
	if (!(s = job_read_status(j, &err)))
		cli_die_err(&err);
	if (json_object_object_get_ex(s, "state", &st) &&
	    (!strcmp(json_object_get_string(st), "running") ||
	     !strcmp(json_object_get_string(st), "queued")) && !job_running(j)) {
		/* A queued job whose runner has not yet taken the lock is still starting. */
		if (strcmp(json_object_get_string(st), "queued"))
			out_add(s, "state", json_object_new_string("stopped"));
	}
	return s;
}

static const char *state_of(json_object *s)
{
	json_object *v;

	return json_object_object_get_ex(s, "state", &v) ? json_object_get_string(v) : "";
}

static int with_client(struct cli *c, struct job *j, int (*fn)(struct ai_client *, struct job *,
							       struct ai_err *))
{
	struct ai_config cfg;
	struct ai_client client;
	struct ai_err err;
	int rc;

	ai_err_clear(&err);
	setup_client(c, &cfg, &client, &err);
	rc = fn(&client, j, &err);
	if (rc < 0)
		setup_die(&client, &cfg, &err);
	ai_client_release(&client);
	config_release(&cfg);
	return rc;
}

static int print_remote_status(struct ai_client *client, struct job *j, struct ai_err *err)
{
	json_object *s = provbatch_status(client, j, err);

	if (!s)
		return -1;
	out_json_line(s);
	json_object_put(s);
	return 0;
}

static int provbatch_results_out(struct ai_client *client, struct job *j, struct ai_err *err)
{
	return provbatch_results(client, j, emit_stdout, NULL, err);
}

static int provbatch_cancel_it(struct ai_client *client, struct job *j, struct ai_err *err)
{
	return provbatch_cancel(client, j, err);
}

static int cmd_status(struct cli *c, struct job *j)
{
	json_object *s;

	if (is_remote(j))
		return cli_finish(with_client(c, j, print_remote_status));
	s = local_status(j);
	out_json_line(s);
	json_object_put(s);
	return cli_finish(0);
}

static int cmd_results(struct cli *c, struct job *j)
{
	int fd;
	char blk[65536];
	ssize_t n;

	if (is_remote(j))
		return cli_finish(with_client(c, j, provbatch_results_out) ? AI_EX_TEMPFAIL : 0);
	fd = open_in_job(j, "out.jsonl", O_RDONLY | O_CREAT);
	/* Whole lines only: a line being written as we read is left for next time. */
	{
		struct buf pend;

		buf_init(&pend, 0);
		while ((n = read(fd, blk, sizeof(blk))) != 0) {
			char *nl;

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				cli_die(AI_EX_IOERR, "cannot read the results of '%s': %s", j->id, strerror(errno));
			buf_add(&pend, blk, (size_t)n);
			for (nl = pend.data + pend.len; nl > pend.data && nl[-1] != '\n'; nl--)
				;
			if (nl > pend.data) {
				size_t k = (size_t)(nl - pend.data);

				cli_write(pend.data, k, true);
				buf_consume(&pend, k);
			}
		}
		buf_release(&pend);
	}
	close(fd);
	return cli_finish(0);
}

static int job_exit_code(json_object *s)
{
	json_object *v;

	if (json_object_object_get_ex(s, "exit", &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int(v);
	return AI_EX_TEMPFAIL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int cmd_wait(struct cli *c, struct opts *o, struct job *j)
{
	json_object *s;
	const char *st;
	int code;

	if (is_remote(j)) {
		struct ai_config cfg;
		struct ai_client client;
		struct ai_err err;

		ai_err_clear(&err);
		setup_client(c, &cfg, &client, &err);
		code = provbatch_wait(&client, j, (long)(o->poll_s * 1000), &cli_interrupted, &err);
		if (code < 0)
			setup_die(&client, &cfg, &err);
		ai_client_release(&client);
		config_release(&cfg);
		return cli_finish(code);
	}
	for (;;) {
		if (cli_interrupted)
			return AI_EX_INTERRUPT;
		s = local_status(j);
		st = state_of(s);
		if (strcmp(st, "running") && strcmp(st, "queued"))
			break;
		json_object_put(s);
		sleep_ms(100);
	}
	if (c->json)
		out_json_line(s);
	if (!strcmp(st, "done") || !strcmp(st, "failed")) {
		code = job_exit_code(s);
	} else {
		if (!c->quiet)
			cli_warn("job '%s' is %s before its end; 'ai-batch resume %s' goes on with it",
				 j->id, st, j->id);
		code = AI_EX_TEMPFAIL;
	}
	json_object_put(s);
	return cli_finish(code);
}

static int cmd_cancel(struct cli *c, struct job *j)
{
	json_object *s;
	int fd;

	if (is_remote(j))
		return cli_finish(with_client(c, j, provbatch_cancel_it));
	fd = open_in_job(j, "cancelled", O_WRONLY | O_CREAT);
	close(fd);
	s = local_status(j);
	if (job_running(j)) {
		json_object *pid;

		if (json_object_object_get_ex(s, "pid", &pid) && json_object_get_int64(pid) > 1)
			kill((pid_t)json_object_get_int64(pid), SIGTERM);
		for (int i = 0; i < 100 && job_running(j); i++)
			sleep_ms(50);
		if (job_running(j))
			cli_die(AI_EX_TEMPFAIL, "job '%s' did not stop within 5 s", j->id);
	} else if (strcmp(state_of(s), "done")) {
		out_add(s, "state", json_object_new_string("cancelled"));
		job_write_status(j, s, &(struct ai_err){ 0, 0, "" });
	}
	json_object_put(s);
	if (c->json) {
		s = local_status(j);
		out_json_line(s);
		json_object_put(s);
	}
	return cli_finish(0);
}

static int cmd_resume(struct cli *c, struct job *j)
{
	struct buf p;
	json_object *s;

	(void)c;
	if (is_remote(j))
		cli_die(AI_EX_USAGE, "job '%s' runs at the provider: nothing to resume here", j->id);
	if (job_running(j))
		cli_die(AI_EX_TEMPFAIL, "job '%s' is running already", j->id);
	s = local_status(j);
	if (!strcmp(state_of(s), "done")) {
		json_object_put(s);
		if (!c->quiet)
			cli_warn("job '%s' is done already", j->id);
		return cli_finish(0);
	}
	json_object_put(s);
	buf_init(&p, 0);
	job_path(j, "cancelled", &p);
	unlink(p.data);
	buf_release(&p);
	write_status(j, "queued", NULL, -1);
	start_runner(j);
	printf("%s\n", j->id);
	return cli_finish(0);
}

static int cmd_list(struct cli *c)
{
	char **ids;
	size_t n;
	struct ai_err err;

	(void)c;
	ai_err_clear(&err);
	if (job_list(&ids, &n, &err))
		cli_die_err(&err);
	for (size_t i = 0; i < n; i++) {
		struct job j;
		json_object *s;

		if (job_open(&j, ids[i], &err))
			continue;
		ai_err_clear(&err);
		s = job_read_status(&j, &err);
		if (s) {
			if (!is_remote(&j) && !strcmp(state_of(s), "running") && !job_running(&j))
				out_add(s, "state", json_object_new_string("stopped"));
			out_json_line(s);
			json_object_put(s);
		}
		job_release(&j);
	}
	job_free_list(ids, n);
	return cli_finish(0);
}

static const char *const subcommands[] = {
	"submit", "status", "results", "wait", "list", "cancel", "resume", "run-job"
};

/* The command an operand names, or NULL. */
static const char *subcommand(const char *w)
{
	for (size_t i = 0; i < AI_ARRAY_LEN(subcommands); i++)
		if (!strcmp(w, subcommands[i]))
			return subcommands[i];
	return NULL;
}

/*
 * The filter's operands are one file.  A first operand that is no file but
 * nearly a command ("stauts") is a mistyped command, and is called so.
 */
static void check_filter_operands(int n, char **v)
{
	const char *near;

	if (!n || !strcmp(v[0], "-") || !access(v[0], F_OK))
		return;
	near = closest(v[0], subcommands, AI_ARRAY_LEN(subcommands) - 1, 2);
	if (near)
		cli_usage_error("unknown command '%s'; did you mean '%s'?", v[0], near);
	if (n > 1)
		cli_usage_error("unknown command '%s'; the commands are submit, status, results, wait, "
				"cancel, resume and list", v[0]);
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o;
	const char *sub = NULL;
	struct job j;
	struct ai_err err;
	int optind_, code;

	if (argc == 3 && !strcmp(argv[1], "run-job"))
		return run_job(argv[2]);
	/*
	 * The options may stand before the command, after it, or both
	 * (ai-batch -j wait ID): getopt moves the operands to the end, and
	 * the first of them names the command, if it is one.
	 */
	optind_ = parse(&c, &o, argc, argv);
	if (optind_ < argc)
		sub = subcommand(argv[optind_]);
	if (!sub || !strcmp(sub, "run-job")) {
		check_filter_operands(argc - optind_, argv + optind_);
		install_term();
		return run_filter(&c, &o, argc - optind_, argv + optind_);
	}
	optind_++;
	if (!strcmp(sub, "submit"))
		return cmd_submit(&c, &o, argc, argv, optind_);
	if (!strcmp(sub, "list")) {
		if (optind_ != argc)
			cli_usage_error("list takes no operand");
		return cmd_list(&c);
	}
	if (optind_ + 1 != argc)
		cli_usage_error("%s wants one job id", sub);
	ai_err_clear(&err);
	if (job_open(&j, argv[optind_], &err))
		cli_die_err(&err);
	if (!strcmp(sub, "status"))
		code = cmd_status(&c, &j);
	else if (!strcmp(sub, "results"))
		code = cmd_results(&c, &j);
	else if (!strcmp(sub, "wait"))
		code = cmd_wait(&c, &o, &j);
	else if (!strcmp(sub, "cancel"))
		code = cmd_cancel(&c, &j);
	else
		code = cmd_resume(&c, &j);
	job_release(&j);
	return code;
}
