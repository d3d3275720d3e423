/*
 * ai-batch - JSON lines in, one JSON line out per item (pattern 3: batch).
 *
 * A Unix filter first (concurrent, rate-limited, retried, resumable with
 * --state), a job system for cron second (submit prints an id at once and
 * runs the batch detached; status, results, wait, list, cancel, resume),
 * and the provider's Batch API for half the price third (submit --remote).
 * The engine is common/batch/batch.c, the spool common/batch/jobs.c, a
 * local job's lifecycle common/batch/jobrun.c, the Batch API
 * common/batch/provbatch.c: this file is options, dispatch and printing.
 */
#include "ai.h"
#include "api/api.h"
#include "api/params.h"
#include "batch/batch.h"
#include "lib/attachcli.h"
#include "lib/cli.h"
#include "closest.h"
#include "fdio.h"
#include "compat/compat.h"
#include "batch/jobrun.h"
#include "batch/jobs.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "batch/provbatch.h"
#include "batch/redisq.h"
#include "jsonval.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <unistd.h>

enum {
	OPT_UNORDERED = CLI_OPT_PROG, OPT_RPM, OPT_TPM, OPT_STATE, OPT_TEMPLATE, OPT_LINES,
	OPT_SYSTEM, OPT_MAX_LINE, OPT_TEMPERATURE, OPT_MAX_TOKENS, OPT_REMOTE, OPT_WINDOW,
	OPT_POLL, OPT_QUEUE, OPT_CLAIM_IDLE, OPT_MAX_DELIVERIES, OPT_FORCE
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
	{ "queue", required_argument, OPT_QUEUE, "URL", "jobs in Redis (redis://[[USER]:PASS@]HOST[:PORT][/DB]) for workers on any host" },
	{ "claim-idle", required_argument, OPT_CLAIM_IDLE, "SECONDS", "worker: take over items another worker left this long (default 60)" },
	{ "max-deliveries", required_argument, OPT_MAX_DELIVERIES, "N", "worker: an item taken N times without a result is poison (default 5)" },
	{ "force", no_argument, OPT_FORCE, NULL, "delete: a job still running too, cancelled first (a --remote batch at the provider too)" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	struct batch_opts b;
	bool remote, lines;
	double poll_s;
	const char *queue;
	double claim_idle_s;
	long max_deliveries;
	bool force;
};

/*
 * Items' "attachments" are made parts as -a makes them, with ai.conf's caps
 * (and PDFs as text); the options live as long as the program, cfg as long
 * as the run.
 */
static void use_attach(struct jsonl_opts *item, const struct ai_config *cfg)
{
	static struct attach_opts ao;

	attachcli_opts(&(struct attachcli){ .pdf = ATTACH_PDF_TEXT }, cfg, &ao);
	item->attach = &ao;
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
	case OPT_QUEUE: o->queue = arg; break;
	case OPT_CLAIM_IDLE: o->claim_idle_s = cli_duration("--claim-idle", arg); break;
	case OPT_MAX_DELIVERIES: o->max_deliveries = cli_long("--max-deliveries", arg, 1, 1000); break;
	case OPT_FORCE: o->force = true; break;
	}
}

static void opts_init(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->b.parallel = 8;
	o->b.temperature = NAN;
	o->b.max_line = 1u << 20;
	o->poll_s = 10;
	o->claim_idle_s = 60;
	o->max_deliveries = 5;
}

/* -T's prompt with --param filled in now and the item's fields left for each item. */
struct prefill {
	const struct cli *c;
	bool named;             /* the prompt names the item's text or a field of it */
};

static int prefill(const char *name, struct buf *out, void *ud)
{
	struct prefill *pf = ud;
	const char *v = template_param(pf->c->params, pf->c->nparams, name);

	if (v)
		return buf_addstr(out, v) ? -1 : 0;
	pf->named = true;
	/* {{input}} is the item's text, as {{text}} names it in --template. */
	return buf_addf(out, "{{%s}}", strcmp(name, "input") ? name : "text") ? -1 : 0;
}

/*
 * -T: the template's prompt is --template's, each {{name}} that no
 * --param gives taken from the item; a prompt that names nothing of the
 * item gets its text after it, as elsewhere the input.  The header lines
 * are defaults that the options win over.  The prompt lives until exit.
 */
static void use_template(const struct cli *c, struct opts *o)
{
	static struct buf prompt = BUF_INIT;
	struct prefill pf = { c, false };
	char missing[128];

	if (!c->tmpl)
		return;
	if (o->b.item.tmpl)
		cli_usage_error("-T and --template both give the prompt; choose one");
	for (size_t i = 0; i < c->nparams; i++)
		if (strstr(c->params[i], "{{"))
			cli_usage_error("a --param value of ai-batch cannot hold '{{': it would name a field");
	buf_reset(&prompt);
	if (template_expand(c->tmpl->prompt, prefill, &pf, &prompt, missing, sizeof(missing)) ||
	    (!pf.named && buf_addstr(&prompt, prompt.len ? "\n\n{{text}}" : "{{text}}")))
		cli_die(AI_EX_OSERR, "out of memory");
	o->b.item.tmpl = prompt.data;
	if (!o->b.item.system)
		o->b.item.system = c->tmpl->system;
	if (isnan(o->b.temperature))
		o->b.temperature = c->tmpl->temperature;
	if (!o->b.max_tokens)
		o->b.max_tokens = c->tmpl->max_tokens;
}

static int parse(struct cli *c, struct opts *o, int argc, char **argv)
{
	int optind_;

	cli_init(c, "ai-batch");
	c->usage = "[OPTION]... [FILE]\n"
		   "  or:  ai-batch submit [--remote] [OPTION]... [FILE]\n"
		   "  or:  ai-batch status|results|wait|cancel|resume ID\n"
		   "  or:  ai-batch delete [--force] ID\n"
		   "  or:  ai-batch list\n"
		   "  or:  ai-batch --queue URL submit|worker|status|results|wait|cancel|delete|list [ID]";
	c->summary = "Send each JSON line of FILE or standard input to the model; print one JSON line per item.";
	c->opts = opts;
	c->schema_ok = true;
	c->template_ok = true;
	opts_init(o);
	compat_getopt_reset();  /* so a runner can parse a second argv */
	optind_ = cli_parse(c, argc, argv, on_opt, o);
	use_template(c, o);
	return optind_;
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

/* ud: the struct termout_progress. */
static void progress_tty(const struct batch_stats *s, bool final, void *ud)
{
	double rate = s->elapsed_ms > 0 ? (s->done - s->replayed) * 1000.0 / (double)s->elapsed_ms : 0;
	char eta[32];

	fmt_eta(eta, sizeof(eta), jobrun_eta_s(s));
	termout_progress(ud, final, "%ld/%ld done, %.1f/s, ETA %s, %ld failed, %ld tokens, $%.4f",
			 s->done, s->total, rate, eta, s->failed,
			 s->prompt_tokens + s->completion_tokens, s->cost);
}

static int run_filter(struct cli *c, struct opts *o, int argc, char **argv)
{
	struct ai_config cfg;
	struct ai_client *client = NULL;
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
	setup_client_with(c, &cfg, &client, &(struct ai_client_opts){ .parallel = o->b.parallel }, &err);
	if (!o->b.item.system)
		o->b.item.system = cfg.system;     /* ai.conf: the default of --system */
	use_attach(&o->b.item, &cfg);
	o->b.emit = emit_stdout;
	o->b.flush = flush_stdout;
	o->b.stop = &cli_interrupted;
	if (!c->quiet && isatty(2)) {
		termout_progress_init(&prog);
		o->b.progress = progress_tty;
		o->b.progress_ms = 200;
		o->b.ud = &prog;
	}
	if (batch_open(&b, &o->b, fd, &err))
		setup_die(client, &cfg, &err);
	if (batch_run(&b, client, &err)) {
		batch_close(&b);
		setup_die(client, &cfg, &err);
	}
	code = batch_exit_code(&b);
	if (b.st.not_sent > 0 && !c->quiet)
		cli_warn("%ld item%s not sent: %s; once the server answers, run again%s", b.st.not_sent,
			 b.st.not_sent == 1 ? "" : "s", b.down,
			 o->b.state ? " with the same --state to send only what is missing" : "");
	batch_close(&b);
	if (o->b.st)
		structured_release(o->b.st);
	ai_client_release(client);
	config_release(&cfg);
	if (fd)
		close(fd);
	return cli_finish(code);
}

/* ---- jobs ---- */

static void warn_line(const char *msg, void *ud)
{
	(void)ud;
	cli_warn("%s", msg);
}

static void set_status(const struct job *j, const char *state)
{
	struct ai_err e;

	ai_err_clear(&e);
	if (jobrun_set_status(j, state, NULL, -1, &e))
		cli_warn("%s", e.msg);
}

/* The detached runner: its stderr is the job's log. */
/* A job submitted with --schema: its own copy, kept by keep_args. */
static int restore_schema(const struct job *j, struct structured *st, struct ai_err *err)
{
	struct buf text = BUF_INIT;
	int fd, rc;

	if (!jobrun_has_file(j, "schema.json"))
		return 0;
	if ((fd = jobrun_open(j, "schema.json", O_RDONLY, err)) < 0)
		return -1;
	if (fd_read_all(fd, &text, NULL) || !text.data) {
		close(fd);
		buf_release(&text);
		return ai_errf(err, AI_EX_IOERR, "cannot read the job's schema");
	}
	close(fd);
	rc = structured_restore(st, text.data, err);
	buf_release(&text);
	return rc;
}

static int run_job(const char *id)
{
	struct structured st;
	struct job j;
	struct ai_err err;
	struct cli c;
	struct opts o;
	struct ai_config cfg;
	struct ai_client *client = NULL;
	int argc, lock, code, rc;
	char **argv;

	ai_err_clear(&err);
	if (job_open(&j, id, &err))
		cli_die_err(&err);
	rc = jobrun_take(&j, &lock, &err);
	if (rc < 0)
		cli_die_err(&err);
	if (rc > 0) {
		job_release(&j);
		return 0;       /* deleted or cancelled before it started: nothing to run */
	}
	if (job_load_args(&j, &argc, &argv, &err))
		cli_die_err(&err);
	parse(&c, &o, argc, argv);
	if (restore_schema(&j, &st, &err))
		cli_die_err(&err);
	if (jobrun_has_file(&j, "schema.json"))
		o.b.st = &st;
	setup_client_with(&c, &cfg, &client, &(struct ai_client_opts){ .parallel = o.b.parallel }, &err);
	if (!o.b.item.system)
		o.b.item.system = cfg.system;     /* ai.conf: the default of --system */
	use_attach(&o.b.item, &cfg);
	if ((code = jobrun_run(&j, client, &o.b, warn_line, NULL, &err)) < 0)
		setup_die(client, &cfg, &err);
	if (err.msg[0])
		cli_warn("%s", err.msg);
	if (o.b.st)
		structured_release(o.b.st);
	ai_client_release(client);
	config_release(&cfg);
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

/*
 * The job keeps the options for its runner and for resume, with its own
 * copies of -T's template and --schema's schema: the runner works from "/"
 * (a relative @FILE would be lost), and a file changed after the submit
 * must not change a job half done.  The copy of the template is named by
 * one more -T, which wins as the last does.
 */
static int keep_args(const struct cli *c, const struct structured *st, const struct job *j,
		     int argc, char **argv, struct ai_err *err)
{
	char **v = calloc((size_t)argc + 3, sizeof(*v));
	struct buf at = BUF_INIT, p = BUF_INIT;
	char *text = NULL;
	int rc = -1, fd, n = 0, nopt = 0;

	if (!v)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	/* The options end at a "--" (getopt moved it before the operands). */
	while (nopt < argc && strcmp(argv[nopt], "--"))
		nopt++;
	memcpy(v, argv, (size_t)nopt * sizeof(*v));
	n = nopt;
	if (c->tmpl) {
		if (job_path(j, "template", &p) || buf_addf(&at, "@%s", p.data)) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		if (template_save_path(p.data, c->tmpl, err))
			goto out;
		v[n++] = "-T";
		v[n++] = at.data;
	}
	memcpy(v + n, argv + nopt, (size_t)(argc - nopt) * sizeof(*v));
	n += argc - nopt;
	if (st) {
		if (!(text = structured_save(st))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		if ((fd = jobrun_open(j, "schema.json", O_WRONLY | O_CREAT | O_TRUNC, err)) < 0)
			goto out;
		if (fd_write_all(fd, text, strlen(text)) || fsync(fd)) {
			ai_errf(err, AI_EX_IOERR, "cannot write the job's schema: %s", strerror(errno));
			close(fd);
			goto out;
		}
		close(fd);
	}
	rc = job_save_args(j, n, v, err);
out:
	free(text);
	free(v);
	buf_release(&at);
	buf_release(&p);
	return rc;
}

static int cmd_submit(struct cli *c, struct opts *o, int argc, char **argv, int optind_)
{
	struct job j;
	struct ai_err err;
	struct structured st;
	int fd;

	if (o->b.state)
		cli_usage_error("a job keeps its own state: leave out --state");
	ai_err_clear(&err);
	if (c->schema) {
		if (structured_load(&st, c->schema, c->schema_multi, &err))
			cli_die_err(&err);
		o->b.st = &st;
	}
	fd = open_input(argc - optind_, argv + optind_);
	/*
	 * Held until the job is whole: killed between job_new and its status,
	 * it would be left half made, invisible to list and never removed.
	 * Interrupted, it is removed (fail) before the program dies by the signal.
	 */
	cli_defer_signals(true);
	if (job_new(&j, &err))
		cli_die_err(&err);
	/* The options are kept for the runner and for resume; the input file is copied. */
	if (keep_args(c, o->b.st, &j, optind_ - 1, argv + 1, &err) || jobrun_copy_input(&j, fd, &o->b, &err))
		goto fail;
	if (o->remote) {
		struct ai_config cfg;
		struct ai_client *client = NULL;
		int in, rc;

		if ((in = jobrun_open(&j, "input.jsonl", O_RDONLY, &err)) < 0)
			goto fail;
		setup_client(c, &cfg, &client, &err);
		if (!o->b.item.system)
			o->b.item.system = cfg.system;     /* ai.conf: the default of --system */
		use_attach(&o->b.item, &cfg);
		rc = provbatch_submit(client, &j, in, &o->b, &err);
		close(in);
		ai_client_release(client);
		config_release(&cfg);
		if (rc)
			goto fail;
		cli_defer_signals(false);
		if (c->dry_run) {
			job_remove(&j);
			job_release(&j);
			if (o->b.st)
				structured_release(o->b.st);
			return cli_finish(0);
		}
	} else {
		if (cli_interrupted) {
			ai_errf(&err, AI_EX_INTERRUPT, "interrupted");
			goto fail;
		}
		set_status(&j, "queued");
		cli_defer_signals(false);
		start_runner(&j);
	}
	if (o->b.st)
		structured_release(o->b.st);
	printf("%s\n", j.id);
	job_release(&j);
	return cli_finish(0);
fail:
	job_remove(&j);
	job_release(&j);
	cli_die_err(&err);
}

static bool is_remote(const struct job *j)
{
	return jobrun_has_file(j, "remote.json");
}

static json_object *status_or_die(const struct job *j)
{
	struct ai_err err;
	json_object *s;

	ai_err_clear(&err);
	if (!(s = jobrun_status(j, &err)))
		cli_die_err(&err);
	return s;
}

static void print_status(const struct job *j)
{
	json_object *s = status_or_die(j);

	out_json_line(s);
	json_object_put(s);
}

/* A job the provider runs: status, results, wait or cancel, through a client; the exit code. */
static int remote(struct cli *c, const struct opts *o, const struct job *j, const char *sub)
{
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err err;
	json_object *s = NULL;
	int rc;

	ai_err_clear(&err);
	setup_client(c, &cfg, &client, &err);
	if (!strcmp(sub, "status"))
		rc = (s = provbatch_status(client, j, &err)) ? 0 : -1;
	else if (!strcmp(sub, "results"))
		rc = provbatch_results(client, j, emit_stdout, NULL, &err);
	else if (!strcmp(sub, "wait"))
		rc = provbatch_wait(client, j, (long)(o->poll_s * 1000), &cli_interrupted, &err);
	else
		rc = provbatch_cancel(client, j, &err);
	if (rc < 0)
		setup_die(client, &cfg, &err);
	if (s) {
		out_json_line(s);
		json_object_put(s);
	}
	ai_client_release(client);
	config_release(&cfg);
	/* Results of a batch not yet over: try again later. */
	return !strcmp(sub, "results") && rc ? AI_EX_TEMPFAIL : rc;
}

static int cmd_status(const struct job *j)
{
	print_status(j);
	return cli_finish(0);
}

static void write_out(const char *data, size_t len, void *ud)
{
	(void)ud;
	cli_write(data, len, true);
}

static int cmd_results(struct job *j)
{
	struct ai_err err;

	ai_err_clear(&err);
	if (jobrun_results(j, write_out, NULL, &err))
		cli_die_err(&err);
	return cli_finish(0);
}

static int cmd_wait(struct cli *c, struct job *j)
{
	json_object *s;
	struct ai_err err;
	const char *st;
	int code;

	ai_err_clear(&err);
	if (jobrun_wait(j, &cli_interrupted, &s, &err)) {
		if (err.code == AI_EX_INTERRUPT)
			return AI_EX_INTERRUPT;
		cli_die_err(&err);
	}
	st = jobrun_state(s);
	if (c->json)
		out_json_line(s);
	if (!strcmp(st, "done") || !strcmp(st, "failed")) {
		code = jobrun_exit_code(s);
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
	struct ai_err err;

	ai_err_clear(&err);
	if (jobrun_cancel(j, &err))
		cli_die_err(&err);
	if (c->json)
		print_status(j);
	return cli_finish(0);
}

/* What a --remote job's delete does at the provider, under the job's lock. */
struct remote_delete {
	struct cli *c;
	bool force;
	int files;              /* deleted there, -1 when none was asked for */
	int stopped;            /* --force: 1 the batch was cancelled, 0 it was over, -1 unknown */
};

static int delete_at_provider(struct job *j, void *ud, struct ai_err *err)
{
	struct remote_delete *d = ud;
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err e;

	setup_client(d->c, &cfg, &client, err);
	if (!d->force) {
		if (provbatch_delete_files(client, j, &d->files, err))
			setup_die(client, &cfg, err);
	} else {
		/* Best effort: a --force delete goes on whatever the provider says. */
		ai_err_clear(&e);
		if ((d->stopped = provbatch_stop(client, j, &e)) < 0)
			cli_warn("cannot cancel the batch at the provider: %s", e.msg);
	}
	ai_client_release(client);
	config_release(&cfg);
	return 0;
}

/*
 * Deletes a local job, or a --remote one: under the job's lock, its files
 * at the provider first (under --force, the batch is cancelled instead if
 * not over, and the files kept), then the local record.  The Batch API
 * deletes no batch; the ids that the local record held are printed, even
 * under -q, for they are known nowhere else from now on.
 */
static int cmd_delete(struct cli *c, const struct opts *o, struct job *j)
{
	struct remote_delete d = { c, o->force, -1, -1 };
	struct ai_err err;
	json_object *rj = NULL;
	const char *bid, *fid;

	ai_err_clear(&err);
	if (is_remote(j) && !(rj = provbatch_record(j, &err)))
		cli_die_err(&err);
	if (jobrun_delete(j, o->force, rj ? delete_at_provider : NULL, &d, &err))
		cli_die_err(&err);
	if (rj) {
		bid = jv_str(rj, "batch_id") ? jv_str(rj, "batch_id") : "(none)";
		fid = jv_str(rj, "input_file_id") ? jv_str(rj, "input_file_id") : "(none)";
		if (d.files >= 0)
			cli_warn("job '%s' is deleted, and %d of its files at the provider; batch %s stays "
				 "there (the Batch API deletes no batch)", j->id, d.files, bid);
		else
			cli_warn("job '%s' is deleted here only: the provider keeps batch %s%s and its "
				 "files (the input is %s)", j->id, bid,
				 d.stopped > 0 ? ", cancelled now," : "", fid);
	}
	json_object_put(rj);
	return cli_finish(0);
}

static int cmd_resume(struct cli *c, struct job *j)
{
	struct ai_err err;
	json_object *s;
	bool done;

	if (is_remote(j))
		cli_die(AI_EX_USAGE, "job '%s' runs at the provider: nothing to resume here", j->id);
	if (job_running(j))
		cli_die(AI_EX_TEMPFAIL, "job '%s' is running already", j->id);
	s = status_or_die(j);
	done = !strcmp(jobrun_state(s), "done");
	json_object_put(s);
	if (done) {
		if (!c->quiet)
			cli_warn("job '%s' is done already", j->id);
		return cli_finish(0);
	}
	ai_err_clear(&err);
	if (jobrun_requeue(j, &err))
		cli_warn("%s", err.msg);
	start_runner(j);
	printf("%s\n", j->id);
	return cli_finish(0);
}

static int cmd_list(void)
{
	char **ids;
	size_t n;
	struct ai_err err;

	ai_err_clear(&err);
	if (job_list(&ids, &n, &err))
		cli_die_err(&err);
	for (size_t i = 0; i < n; i++) {
		struct job j;
		json_object *s;

		if (job_open(&j, ids[i], &err))
			continue;
		ai_err_clear(&err);
		if ((s = jobrun_status(&j, &err))) {
			out_json_line(s);
			json_object_put(s);
		}
		job_release(&j);
	}
	job_free_list(ids, n);
	return cli_finish(0);
}

/* ---- jobs in Redis (--queue): the work is in common/batch/redisq.c ---- */

static void note_line(const char *msg, void *ud)
{
	(void)ud;
	cli_warn("%s", msg);
}

/* Connects to --queue (or AI_BATCH_QUEUE), with redis_password_cmd's password; exits on failure. */
static void queue_open(struct cli *c, struct opts *o, struct redisq *q)
{
	struct ai_config cfg;
	struct ai_err err;
	char *pw = NULL;
	const char *url = o->queue ? o->queue : getenv("AI_BATCH_QUEUE");
	int rc;

	if (!url || !*url)
		cli_usage_error("worker needs --queue URL (or AI_BATCH_QUEUE)");
	ai_err_clear(&err);
	if (setup_config(&cfg, c, &err))
		cli_die_err(&err);
	/* redis_password_cmd runs in a group of its own: a SIGTERM must kill it first (runcmd.h). */
	cli_defer_signals(true);
	rc = config_redis_password(&cfg, &pw, &err);
	config_release(&cfg);
	if (rc)
		cli_die_err(&err);
	cli_defer_signals(false);
	/* A password in argv shows in ps(1): the environment or ai.conf keep it out. */
	if (o->queue && strchr(o->queue, '@') && !c->quiet)
		cli_warn("a password in --queue shows in ps(1); set AI_BATCH_QUEUE or "
			 "redis_password_cmd in ai.conf instead");
	rc = redisq_open(q, url, pw, &cli_interrupted, &err);
	if (pw)
		sodium_free(pw);
	if (rc)
		cli_die_err(&err);
}

/*
 * What a job in Redis carries, and all a worker takes from it: anyone who
 * can write to Redis can write a job, so a worker must not take --base-url
 * (its key would go there), -T @FILE or --schema @FILE (its own files),
 * --profile, --dry-run, -h or a bad value (it would exit) from one.  These
 * are the options that shape the requests; the rest are the worker's own.
 * A number is checked here with the range on_opt gives it, so that parse()
 * never exits on a job's value.  "--schema-saved" is structured_save's text,
 * not a file name.
 */
static const struct job_opt {
	const char *name;
	bool number, integer;
	double lo, hi;
} job_opts[] = {
	{ "--model", false, false, 0, 0 },
	{ "--system", false, false, 0, 0 },
	{ "--template", false, false, 0, 0 },
	{ "--option", false, false, 0, 0 },
	{ "--schema-saved", false, false, 0, 0 },
	{ "--temperature", true, false, 0, 2 },
	{ "--max-tokens", true, true, 1, 10000000 },
	{ "--rpm", true, false, 0.001, 1e9 },
	{ "--tpm", true, false, 1, 1e12 },
	{ "--max-line", true, true, 16, 1L << 30 },
};

#define JOB_OPTIONS_MAX 32      /* -o a job may carry: the worker's own need room in cli.options */

static void job_arg(json_object *a, const char *name, const char *value)
{
	if (jv_push(a, json_object_new_string(name)) || jv_push(a, json_object_new_string(value)))
		cli_die(AI_EX_OSERR, "out of memory");
}

static void job_num(json_object *a, const char *name, double v)
{
	char s[64];

	snprintf(s, sizeof(s), "%.17g", v);
	job_arg(a, name, s);
}

/*
 * The options a job is stored with, as pairs of a name of job_opts and its
 * value, taken from what submit parsed: -T's prompt already expanded with
 * its --param (a worker on another host has not the template, nor the
 * file), --schema compiled (structured_save), never --queue (it may hold
 * a password) nor --lines (the items are stored as JSON objects).
 */
static json_object *job_args(const struct cli *c, const struct opts *o, const struct structured *st)
{
	json_object *a = json_object_new_array();

	if (!a)
		cli_die(AI_EX_OSERR, "out of memory");
	if (c->n_options > JOB_OPTIONS_MAX)
		cli_usage_error("a job in Redis carries %d -o options at most", JOB_OPTIONS_MAX);
	if (c->model)
		job_arg(a, "--model", c->model);
	if (o->b.item.system)
		job_arg(a, "--system", o->b.item.system);
	if (o->b.item.tmpl)
		job_arg(a, "--template", o->b.item.tmpl);
	for (size_t i = 0; i < c->n_options; i++)
		job_arg(a, "--option", c->options[i]);
	if (!isnan(o->b.temperature))
		job_num(a, "--temperature", o->b.temperature);
	if (o->b.max_tokens)
		job_num(a, "--max-tokens", (double)o->b.max_tokens);
	if (o->b.rpm > 0)
		job_num(a, "--rpm", o->b.rpm);
	if (o->b.tpm > 0)
		job_num(a, "--tpm", o->b.tpm);
	if (o->b.max_line != 1u << 20)
		job_num(a, "--max-line", (double)o->b.max_line);
	if (st) {
		char *text = structured_save(st);

		if (!text)
			cli_die(AI_EX_OSERR, "out of memory");
		job_arg(a, "--schema-saved", text);   /* multi or not: inside */
		free(text);
	}
	return a;
}

/* Whether s is a whole number in [lo, hi] (an integer where integer). */
static bool job_num_ok(const char *s, bool integer, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	return *s && !*end && !errno && isfinite(v) && v >= lo && v <= hi && (!integer || v == floor(v));
}

/*
 * Checks a job's args against job_opts: -1 with err (AI_EX_DATAERR, saying
 * which) when one is not a job's or its value is bad.
 */
static int job_args_check(json_object *args, struct ai_err *err)
{
	size_t n = json_object_array_length(args), nopt = 0;

	if (n % 2)
		return ai_errf(err, AI_EX_DATAERR, "the job's options are not name and value pairs");
	for (size_t i = 0; i < n; i += 2) {
		json_object *k = json_object_array_get_idx(args, i), *v = json_object_array_get_idx(args, i + 1);
		const struct job_opt *jo = NULL;
		const char *name, *val;

		if (!json_object_is_type(k, json_type_string) || !json_object_is_type(v, json_type_string))
			return ai_errf(err, AI_EX_DATAERR, "the job's options are not strings");
		name = json_object_get_string(k);
		val = json_object_get_string(v);
		if ((size_t)json_object_get_string_len(v) != strlen(val))
			return ai_errf(err, AI_EX_DATAERR, "the job's %.40s holds a NUL byte", name);
		for (size_t j = 0; j < AI_ARRAY_LEN(job_opts) && !jo; j++)
			if (!strcmp(name, job_opts[j].name))
				jo = &job_opts[j];
		if (!jo)
			return ai_errf(err, AI_EX_DATAERR, "'%.40s' is not an option a job may carry", name);
		if (jo->number && !job_num_ok(val, jo->integer, jo->lo, jo->hi))
			return ai_errf(err, AI_EX_DATAERR, "the job's %s '%.40s' is not a number from %g to %g",
				       name, val, jo->lo, jo->hi);
		if (!strcmp(name, "--option")) {
			if (++nopt > JOB_OPTIONS_MAX)
				return ai_errf(err, AI_EX_DATAERR, "the job carries more than %d -o options",
					       JOB_OPTIONS_MAX);
			if (params_parse(val, NULL, NULL, err))
				return -1;
		}
	}
	return 0;
}

/* A worker's view of one job: its options (then the worker's own) parsed as a runner's. */
struct queue_job {
	struct cli c;
	struct opts o;
	struct ai_config cfg;
	char **argv;
	int argc;
	int wargc;              /* the worker's own options, which win over the job's */
	char **wargv;
	int parallel;           /* the worker's -P */
	struct structured st;   /* the job's --schema, when has_st */
	bool has_st;
};

/*
 * Opens a job for the worker: -1 with err when its options are refused
 * (redisq gives its items an error line and goes on), never an exit.
 */
static int queue_job_open(json_object *args, struct batch_opts *bo, struct ai_client **client,
			  void *ud, struct ai_err *err)
{
	struct queue_job *j = ud;
	size_t n = json_object_array_length(args);
	const char *saved = NULL;

	if (job_args_check(args, err))
		return -1;
	if (!(j->argv = calloc(n + (size_t)j->wargc + 2, sizeof(*j->argv))))
		cli_die(AI_EX_OSERR, "out of memory");
	j->argc = 0;
	j->argv[j->argc++] = "ai-batch";
	for (size_t i = 0; i < n; i += 2) {
		const char *name = json_object_get_string(json_object_array_get_idx(args, i));
		const char *val = json_object_get_string(json_object_array_get_idx(args, i + 1));

		if (!strcmp(name, "--schema-saved")) {  /* not an option: loaded below */
			saved = val;
			continue;
		}
		j->argv[j->argc++] = (char *)name;
		j->argv[j->argc++] = (char *)val;
	}
	for (int i = 0; i < j->wargc; i++)
		j->argv[j->argc++] = j->wargv[i];
	/* Strings of args live until the job closes: the caller keeps args; copy to be sure. */
	for (int i = 1; i < j->argc; i++)
		if (!(j->argv[i] = strdup(j->argv[i])))
			cli_die(AI_EX_OSERR, "out of memory");
	parse(&j->c, &j->o, j->argc, j->argv);
	j->has_st = false;
	if (saved) {
		if (structured_restore(&j->st, saved, err))
			goto refused;
	} else if (j->c.schema && structured_load(&j->st, j->c.schema, j->c.schema_multi, err)) {
		goto refused;
	}
	if (saved || j->c.schema) {
		j->has_st = true;
		j->o.b.st = &j->st;
	}
	/* The worker's -P, not the job's: it sizes the client as it sizes the engine. */
	setup_client_with(&j->c, &j->cfg, client, &(struct ai_client_opts){ .parallel = j->parallel },
			  err);
	if (!j->o.b.item.system)
		j->o.b.item.system = j->cfg.system;
	use_attach(&j->o.b.item, &j->cfg);
	*bo = j->o.b;
	return 0;
refused:
	for (int i = 1; i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	j->argv = NULL;
	return -1;
}

static void queue_job_close(struct ai_client *client, void *ud)
{
	struct queue_job *j = ud;

	ai_client_release(client);
	config_release(&j->cfg);
	if (j->has_st)
		structured_release(&j->st);
	j->has_st = false;
	for (int i = 1; i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	j->argv = NULL;
}

static int queue_worker(struct cli *c, struct opts *o, struct redisq *q, int argc, char **argv,
			int optind_)
{
	struct queue_job j;
	struct redisq_worker_stats st;
	struct ai_err err;
	int rc;
	const char *job = optind_ < argc ? argv[optind_] : NULL;

	if (argc - optind_ > 1)
		cli_usage_error("worker takes one job id at most");
	memset(&j, 0, sizeof(j));
	j.wargv = argv + 1;
	j.wargc = optind_ - 2;  /* the options before "worker", as getopt ordered them */
	j.parallel = o->b.parallel;
	/* Between jobs it has no client, but claims to give back and stats to print (cli.h). */
	cli_defer_signals(true);
	ai_err_clear(&err);
	rc = redisq_work(q, &(struct redisq_worker_opts){
				 .parallel = o->b.parallel, .claim_idle_ms = (long)(o->claim_idle_s * 1000),
				 .max_deliveries = o->max_deliveries, .job = job,
				 .job_open = queue_job_open, .job_close = queue_job_close,
				 .note = c->verbose ? note_line : NULL, .ud = &j },
			 &st, &err);
	if (!c->quiet)
		cli_warn("%ld items run, %ld lines stored, %ld requeued, %ld poison, %ld refused; %ld Redis "
			 "round trips (%.2f an item), %ld reconnects", st.items, st.stored, st.requeued, st.poison,
			 st.refused,
			 q->round_trips, st.items ? (double)q->round_trips / (double)st.items : 0.0,
			 q->reconnects);
	redisq_close(q);
	if (rc) {
		if (err.code == AI_EX_INTERRUPT)
			return AI_EX_INTERRUPT;
		cli_die_err(&err);
	}
	return cli_finish(0);
}

static int queue_main(struct cli *c, struct opts *o, const char *sub, int argc, char **argv, int optind_)
{
	struct redisq q;
	struct ai_err err;
	json_object *s = NULL;
	struct structured st;
	bool has_st = false;
	int code = 0;

	if (o->remote)
		cli_usage_error("--remote and --queue do not go together");
	if (o->b.state)
		cli_usage_error("a job keeps its own state: leave out --state");
	if (!strcmp(sub, "resume"))
		cli_usage_error("a job in Redis needs no resume: start a worker (ai-batch worker --queue URL)");
	if (!strcmp(sub, "submit") && c->schema) {
		ai_err_clear(&err);     /* refused here, not by every worker */
		if (structured_load(&st, c->schema, c->schema_multi, &err))
			cli_die_err(&err);
		has_st = true;
	}
	if ((!strcmp(sub, "list") && optind_ != argc) ||
	    (strcmp(sub, "list") && strcmp(sub, "submit") && strcmp(sub, "worker") && optind_ + 1 != argc))
		cli_usage_error(!strcmp(sub, "list") ? "list takes no operand" : "%s wants one job id", sub);
	queue_open(c, o, &q);
	ai_err_clear(&err);
	if (!strcmp(sub, "worker"))
		return queue_worker(c, o, &q, argc, argv, optind_);
	if (!strcmp(sub, "submit")) {
		char id[64];
		json_object *a = job_args(c, o, has_st ? &st : NULL);
		int fd = open_input(argc - optind_, argv + optind_);

		if (has_st)
			structured_release(&st);
		if (redisq_submit(&q, fd, &o->b, a, id, sizeof(id), &err))
			goto fail;
		json_object_put(a);
		printf("%s\n", id);
	} else if (!strcmp(sub, "list")) {
		char **ids;
		size_t n;

		if (redisq_list(&q, &ids, &n, &err))
			goto fail;
		for (size_t i = 0; i < n; i++) {
			if ((s = redisq_status(&q, ids[i], &err)))
				out_json_line(s);
			json_object_put(s);
			s = NULL;
			free(ids[i]);
		}
		free(ids);
	} else if (!strcmp(sub, "status")) {
		if (!(s = redisq_status(&q, argv[optind_], &err)))
			goto fail;
		out_json_line(s);
	} else if (!strcmp(sub, "results")) {
		int r = redisq_results(&q, argv[optind_], emit_stdout, NULL, &err);

		if (r < 0)
			goto fail;
		if (r > 0) {
			if (!c->quiet)
				cli_warn("job '%s' is not finished: these are the lines so far", argv[optind_]);
			code = AI_EX_TEMPFAIL;
		}
	} else if (!strcmp(sub, "wait")) {
		if (redisq_wait(&q, argv[optind_], &s, &err)) {
			if (err.code == AI_EX_INTERRUPT)
				return AI_EX_INTERRUPT;
			goto fail;
		}
		if (c->json)
			out_json_line(s);
		if (!strcmp(redisq_state(s), "cancelled")) {
			if (!c->quiet)
				cli_warn("job '%s' was cancelled", argv[optind_]);
			code = AI_EX_TEMPFAIL;
		} else {
			code = jv_long(s, "failed", 0) ? AI_EX_PARTIAL : 0;
		}
	} else if (!strcmp(sub, "delete")) {
		if (redisq_delete(&q, argv[optind_], o->force, &err))
			goto fail;
	} else if (!strcmp(sub, "cancel")) {
		if (redisq_cancel(&q, argv[optind_], &err))
			goto fail;
		if (c->json && (s = redisq_status(&q, argv[optind_], &err)))
			out_json_line(s);
	}
	json_object_put(s);
	redisq_close(&q);
	return cli_finish(code);
fail:
	redisq_close(&q);
	cli_die_err(&err);
}

static const char *const subcommands[] = {
	"submit", "status", "results", "wait", "list", "cancel", "delete", "resume", "worker", "run-job"
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
				"cancel, delete, resume and list", v[0]);
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
	if (c.save)
		tmplcli_save(&c, o.b.item.system, o.b.temperature, o.b.max_tokens,
			     o.b.item.tmpl ? o.b.item.tmpl : "");
	if (optind_ < argc)
		sub = subcommand(argv[optind_]);
	/* Before the path is chosen: the filter and --queue would otherwise take them silently. */
	if (o.force && (!sub || strcmp(sub, "delete")))
		cli_usage_error("--force is for 'ai-batch delete'");
	if (c.dry_run && sub && !strcmp(sub, "delete"))
		cli_usage_error("delete has no --dry-run: 'ai-batch status ID' shows the job");
	if (!sub || !strcmp(sub, "run-job")) {
		check_filter_operands(argc - optind_, argv + optind_);
		if (o.queue)
			cli_usage_error("--queue wants a command: submit, worker, status, results, wait, "
					"cancel, delete or list");
		return run_filter(&c, &o, argc - optind_, argv + optind_);
	}
	optind_++;
	/* AI_BATCH_QUEUE sends the job commands to Redis, but for a --remote job. */
	if (o.queue || (getenv("AI_BATCH_QUEUE") && !o.remote) || !strcmp(sub, "worker"))
		return queue_main(&c, &o, sub, argc, argv, optind_);
	if (!strcmp(sub, "submit"))
		return cmd_submit(&c, &o, argc, argv, optind_);
	if (!strcmp(sub, "list")) {
		if (optind_ != argc)
			cli_usage_error("list takes no operand");
		return cmd_list();
	}
	if (optind_ + 1 != argc)
		cli_usage_error("%s wants one job id", sub);
	ai_err_clear(&err);
	if (job_open(&j, argv[optind_], &err))
		cli_die_err(&err);
	if (!strcmp(sub, "delete"))
		code = cmd_delete(&c, &o, &j);
	else if (is_remote(&j) && strcmp(sub, "resume"))
		code = cli_finish(remote(&c, &o, &j, sub));
	else if (!strcmp(sub, "status"))
		code = cmd_status(&j);
	else if (!strcmp(sub, "results"))
		code = cmd_results(&j);
	else if (!strcmp(sub, "wait"))
		code = cmd_wait(&c, &j);
	else if (!strcmp(sub, "cancel"))
		code = cmd_cancel(&c, &j);
	else
		code = cmd_resume(&c, &j);
	job_release(&j);
	return code;
}
