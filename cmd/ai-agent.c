/*
 * ai-agent - a task in, an answer out, through a tool-calling loop
 * (pattern 5: the agent).  The loop lives in common/agent/agent.c; this file
 * gathers the tools, asks for approval on the terminal, writes the trace
 * and prints the answer.
 */
#include "ai.h"
#include "agent/agent.h"
#include "api/api.h"
#include "api/structured.h"
#include "jsonval.h"
#include "lib/cli.h"
#include "rag/kb.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"
#include "agent/toolrun.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	OPT_MAX_STEPS = CLI_OPT_PROG, OPT_TOOLS, OPT_NO_DEFAULT_TOOLS, OPT_DB_SQL, OPT_DB, OPT_TRACE,
	OPT_TOOL_TIMEOUT, OPT_TOOL_MEMORY, OPT_MAX_OUTPUT, OPT_SYSTEM, OPT_TEMPERATURE,
	OPT_MAX_TOKENS, OPT_RAW
};

static const struct cli_opt opts[] = {
	{ "max-steps", required_argument, OPT_MAX_STEPS, "N", "give up after N model turns (default 10; exit 2)" },
	{ "tools", required_argument, OPT_TOOLS, "FILE", "offer the tools declared in FILE (repeatable)" },
	{ "no-default-tools", no_argument, OPT_NO_DEFAULT_TOOLS, NULL, "do not load ~/.config/ai/tools/*.json" },
	{ "yes", no_argument, 'y', NULL, "run tools with side effects without asking" },
	{ "db-sql", required_argument, OPT_DB_SQL, "FILE", "offer read-only SQL on this SQLite database" },
	{ "collection", required_argument, 'c', "NAME", "search this collection of the index (default \"default\")" },
	{ "db", required_argument, OPT_DB, "FILE", "the index to search (default $XDG_DATA_HOME/ai/index.db)" },
	{ "trace", required_argument, OPT_TRACE, "FILE", "write every step as JSON lines to FILE (- for stderr)" },
	{ "tool-timeout", required_argument, OPT_TOOL_TIMEOUT, "DUR", "stop a tool or SQL query after this long (default 30s, 5s for SQL)" },
	{ "tool-memory", required_argument, OPT_TOOL_MEMORY, "MB", "address-space limit of a user tool (default 2048)" },
	{ "max-output", required_argument, OPT_MAX_OUTPUT, "BYTES", "tool output sent back at most (default 16384)" },
	{ "system", required_argument, OPT_SYSTEM, "TEXT", "replace the system prompt" },
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of each model turn" },
	{ "raw", no_argument, OPT_RAW, NULL, "do not neutralise control characters on a terminal" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	struct agent_opts a;
	const char *tools[64];
	size_t ntools;
	bool no_default_tools, raw;
	const char *coll, *kb_path, *trace;
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case OPT_MAX_STEPS: o->a.max_steps = cli_long("--max-steps", arg, 1, 1000); break;
	case OPT_TOOLS:
		if (o->ntools == AI_ARRAY_LEN(o->tools))
			cli_usage_error("--tools: at most %zu files", AI_ARRAY_LEN(o->tools));
		o->tools[o->ntools++] = arg;
		break;
	case OPT_NO_DEFAULT_TOOLS: o->no_default_tools = true; break;
	case 'y': o->a.yes = true; break;
	case OPT_DB_SQL: o->a.sql_db = arg; break;
	case 'c': o->coll = arg; break;
	case OPT_DB: o->kb_path = arg; break;
	case OPT_TRACE: o->trace = arg; break;
	case OPT_TOOL_TIMEOUT: {
		double s = cli_duration("--tool-timeout", arg);

		if (s < 0.001 || s > 86400)
			cli_usage_error("--tool-timeout wants 1ms to 1d, not '%s'", arg);
		o->a.lim.timeout_ms = (long)(s * 1000 + 0.5);
		break;
	}
	case OPT_TOOL_MEMORY: o->a.lim.max_memory_mb = cli_long("--tool-memory", arg, 16, 1L << 30); break;
	case OPT_MAX_OUTPUT: o->a.result_max = (size_t)cli_long("--max-output", arg, 256, 16L << 20); break;
	case OPT_SYSTEM: o->a.system = arg; break;
	case OPT_TEMPERATURE: o->a.temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->a.max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_RAW: o->raw = true; break;
	}
}

/* ---- approval on the terminal ------------------------------------------ */

/*
 * Appends at most max bytes of s to b on one line with every control
 * character made visible (termout.h), so that text from a model cannot
 * drive the terminal.
 */
static void add_visible(struct buf *b, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (termout_visible(b, s, n < max ? n : max))
		return;
	if (n > max)
		buf_addstr(b, "...");
}

/*
 * Asks on /dev/tty, never on stdin: a task piped in, or "yes |", must not
 * approve anything.  No controlling terminal means nobody can be asked.
 */
static int approve_tty(const struct tooldef *t, const char *args, void *ud)
{
	const struct cli *c = ud;
	struct buf q;
	enum cli_answer a;

	buf_init(&q, 0);
	buf_addf(&q, "%s: the model wants to run '%s' (", cli_prog, t->name);
	for (size_t i = 0; t->argv[i]; i++) {
		if (i)
			buf_addch(&q, ' ');
		add_visible(&q, t->argv[i], 200);
	}
	buf_addstr(&q, ") with\n  ");
	/* All of it (at most AGENT_MAX_ARGS bytes): what is approved is exactly what runs. */
	add_visible(&q, args, strlen(args));
	buf_addstr(&q, "\nRun it? [y/N] ");
	a = cli_ask_tty(q.data ? q.data : "");
	buf_release(&q);
	if (a == CLI_NOTTY && !c->quiet) {
		/* Said here, not only in --trace: a cron job's log must show why nothing ran. */
		buf_init(&q, 0);
		add_visible(&q, t->name, 200);
		cli_warn("the tool '%s' has side effects and was not run: there is no terminal to ask on; "
			 "give --yes to allow it", q.data ? q.data : "");
		buf_release(&q);
	}
	return a == CLI_YES ? AGENT_APPROVE_YES : a == CLI_NOTTY ? AGENT_APPROVE_NOTTY :
	       a == CLI_INTERRUPTED ? AGENT_APPROVE_INTERRUPT : AGENT_APPROVE_NO;
}

/* ---- the trace ---------------------------------------------------------- */

struct tracer {
	FILE *f;
	bool failed;
};

static void trace_line(json_object *ev, void *ud)
{
	struct tracer *t = ud;
	size_t n;
	const char *s = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (t->failed)
		return;
	if (fwrite(s, 1, n, t->f) != n || putc('\n', t->f) == EOF || fflush(t->f)) {
		cli_warn("cannot write the trace: %s", strerror(errno));
		t->failed = true;
	}
}

static FILE *trace_open(const char *path)
{
	int fd;
	FILE *f;

	if (!strcmp(path, "-"))
		return stderr;
	/* 0600: the trace holds the task, tool output and database rows. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		cli_die(AI_EX_IOERR, "cannot open the trace '%s': %s", path, strerror(errno));
	return f;
}

/* ---- search ---------------------------------------------------------- */

struct search {
	struct kb *kb;
	const char *coll;
	struct ai_client *client;
};

/*
 * The search tool's backend: ai-ask's retrieval (BM25 and vectors, fused),
 * each passage with its source and lines so that the model can cite it.
 */
static int search_kb(const char *query, long k, json_object **result, struct ai_err *err, void *ud)
{
	struct search *s = ud;
	struct kb_query q;
	struct kb_results r;
	json_object *a;

	*result = NULL;
	memset(&q, 0, sizeof(q));
	q.coll = s->coll;
	q.text = query;
	q.k = (size_t)k;
	memset(&r, 0, sizeof(r));
	if (kb_retrieve(s->kb, s->client, &q, &r, err))
		return -1;
	if (!(a = json_object_new_array())) {
		kb_results_release(&r);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct kb_passage *p = &r.v[i];
		json_object *o = json_object_new_object();
		char lines[64], score[32];

		snprintf(lines, sizeof(lines), "%zu-%zu", p->line_start, p->line_end);
		snprintf(score, sizeof(score), "%.4g", p->score);
		out_add(o, "source", json_object_new_string(p->source));
		out_add(o, "lines", json_object_new_string(lines));
		if (p->heading)
			out_add(o, "heading", json_object_new_string(p->heading));
		out_add(o, "score", json_object_new_double_s(p->score, score));
		out_add(o, "text", json_object_new_string(p->text));
		if (json_object_array_add(a, o)) {
			json_object_put(o);
			json_object_put(a);
			kb_results_release(&r);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	kb_results_release(&r);
	*result = a;
	return 0;
}

/*
 * Opens the index for the search tool: the one named by --db or -c must
 * be there; without them the default index is used when it exists.
 */
static void search_open(struct search *s, const char *path, const char *coll, bool quiet)
{
	char *def = NULL;
	struct kb_stats st;
	struct ai_err err;

	ai_err_clear(&err);
	s->coll = coll ? coll : KB_DEFAULT_COLLECTION;
	if (!path && !coll) {
		def = kb_default_path();
		if (!def || access(def, F_OK)) {
			free(def);
			return;
		}
	}
	if (kb_open(&s->kb, path ? path : def, KB_READ, &err)) {
		free(def);
		if (path || coll)
			cli_die_err(&err);
		if (!quiet)
			cli_warn("no search tool: %s", err.msg);
		s->kb = NULL;
		return;
	}
	free(def);
	memset(&st, 0, sizeof(st));
	if (kb_stats(s->kb, s->coll, &st, &err))
		cli_die_err(&err);
	if (!st.exists && (path || coll))
		cli_die(AI_EX_NOINPUT, "no collection '%s' in '%s': build one with ai-index -c %s",
			s->coll, kb_path(s->kb), s->coll);
	if (!st.exists) {
		kb_close(s->kb);
		s->kb = NULL;
	}
	kb_stats_release(&st);
}

/* ---- limits ------------------------------------------------------------- */

/*
 * RLIMIT_NPROC counts every process of the user, so the tool's limit is
 * what the user runs now plus a margin: enough for any honest tool, and a
 * fork bomb stops there.  (It does not bind root.)
 */
static long user_procs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	uid_t uid = getuid();
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat st;
		char path[300];

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (!stat(path, &st) && st.st_uid == uid)
			n++;
	}
	closedir(d);
	return n;
}

/* ---- output ------------------------------------------------------------- */

/*
 * --schema: the loop's final answer, turned into JSON matching the schema by
 * one more request (checked, repaired once: structured_chat), so the tool
 * loop itself stays as it is.  The answer is replaced by the JSON text; the
 * turn's tokens join the totals.  0 or -1 with err (AI_EX_DATAERR: invalid).
 */
static int answer_as_data(struct ai_client *c, struct structured *st, const char *task,
			  struct agent_result *r, struct ai_err *err)
{
	struct ai_chat_req q;
	struct ai_chat_resp resp;
	struct schema_fail f;
	json_object *data = NULL, *m = json_object_new_array();
	struct buf u = BUF_INIT;
	int rc;

	buf_addf(&u, "Task:\n%s\n\nAnswer found:\n%s", task, r->answer);
	if (!m || !u.data ||
	    json_object_array_add(m, out_message("system", "Give the answer found for the task as "
						 "JSON that follows the given schema.")) ||
	    json_object_array_add(m, out_message("user", u.data))) {
		json_object_put(m);
		buf_release(&u);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	buf_release(&u);
	ai_chat_req_init(&q);
	q.messages = m;
	q.model = r->model;
	rc = structured_chat(c, st, &q, &resp, &data, &f, err);
	json_object_put(m);
	if (resp.prompt_tokens > 0)
		r->prompt_tokens += resp.prompt_tokens;
	if (resp.completion_tokens > 0)
		r->completion_tokens += resp.completion_tokens;
	if (!rc && data) {
		free(r->answer);
		r->answer = strdup(json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
		if (!r->answer)
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	json_object_put(data);
	ai_chat_resp_release(&resp);
	return rc;
}

static void print_json(const struct agent_result *r, int64_t ms)
{
	json_object *j = json_object_new_object(), *u = json_object_new_object();

	out_add(j, "answer", r->answer ? json_object_new_string(r->answer) : NULL);
	out_add(j, "steps", json_object_new_int64(r->steps));
	out_add(u, "prompt_tokens", json_object_new_int64(r->prompt_tokens));
	out_add(u, "completion_tokens", json_object_new_int64(r->completion_tokens));
	out_add(j, "usage", u);
	out_add(j, "cost", jv_num(r->cost));
	out_add(j, "model", r->model ? json_object_new_string(r->model) : NULL);
	out_add(j, "max_steps_reached", json_object_new_boolean(r->max_steps));
	out_add(j, "calls", json_object_get(r->trace));
	out_add(j, "latency_ms", json_object_new_int64(ms));
	out_json_line(j);
	json_object_put(j);
}

/* Without --trace, the steps so far in short, for a run that hit the step limit. */
static void print_steps(const struct agent_result *r)
{
	size_t n = json_object_array_length(r->trace);

	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(r->trace, i), *v;
		const char *name = "", *args = "";
		long step = 0;
		bool ok = false;
		struct buf b;

		if (json_object_object_get_ex(c, "name", &v))
			name = json_object_get_string(v);
		if (json_object_object_get_ex(c, "arguments", &v))
			args = json_object_get_string(v);
		if (json_object_object_get_ex(c, "step", &v))
			step = (long)json_object_get_int64(v);
		if (json_object_object_get_ex(c, "ok", &v))
			ok = json_object_get_boolean(v);
		/* The name is the model's choice too, not necessarily a tool's. */
		buf_init(&b, 0);
		buf_addf(&b, "  step %ld: ", step);
		add_visible(&b, name, 64);
		buf_addch(&b, ' ');
		add_visible(&b, args, 200);
		buf_addf(&b, ": %s\n", ok ? "ok" : "failed");
		if (b.data)
			fputs(b.data, stderr);
		buf_release(&b);
	}
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o;
	struct ai_config cfg;
	struct ai_client client;
	struct ai_err err;
	struct toolset ts = TOOLSET_INIT;
	struct agent_result res;
	struct tracer tr = { NULL, false };
	struct search srch = { NULL, NULL, NULL };
	struct buf task;
	struct structured st;
	int64_t t0 = http_now_ms();
	int optind_, code = AI_EX_OK;
	long procs;

	memset(&o, 0, sizeof(o));
	agent_opts_init(&o.a);
	cli_init(&c, "ai-agent");
	c.usage = "[OPTION]... [TASK]...";
	c.summary = "Do a task with a model that calls tools: calculate, search, sql and yours.";
	c.opts = opts;
	c.message = true;
	c.schema_ok = true;
	c.template_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	ai_err_clear(&err);
	/* -T's settings are defaults the options win over. */
	if (c.tmpl) {
		if (!o.a.system)
			o.a.system = c.tmpl->system;
		if (isnan(o.a.temperature))
			o.a.temperature = c.tmpl->temperature;
		if (!o.a.max_tokens)
			o.a.max_tokens = c.tmpl->max_tokens;
	}
	if (c.schema && structured_load(&st, c.schema, c.schema_multi, &err))
		cli_die_err(&err);

	/* The tools first: a bad tools file is a configuration error, before any request. */
	if (!o.no_default_tools) {
		char *dir = config_xdg_path("CONFIG", "tools");

		if (dir && toolset_load_dir(&ts, dir, &err)) {
			free(dir);
			cli_die_err(&err);
		}
		free(dir);
	}
	for (size_t i = 0; i < o.ntools; i++)
		if (toolset_load(&ts, o.tools[i], &err))
			cli_die_err(&err);
	o.a.user = &ts;
	if (o.a.sql_db && access(o.a.sql_db, R_OK))
		cli_die(AI_EX_NOINPUT, "cannot read the database '%s': %s", o.a.sql_db, strerror(errno));

	setup_client(&c, &cfg, &client, &err);
	if (!o.a.system)
		o.a.system = cfg.system;     /* ai.conf's system: the default of --system */
	srch.client = &client;
	search_open(&srch, o.kb_path, o.coll, c.quiet);
	if (srch.kb) {
		o.a.search = search_kb;
		o.a.search_ud = &srch;
	}
	o.a.model = c.model;
	o.a.lim.cancel = &cli_interrupted;
	if (o.a.lim.timeout_ms)
		o.a.sql.timeout_ms = o.a.lim.timeout_ms;
	if (!o.a.lim.max_memory_mb)
		o.a.lim.max_memory_mb = 2048;
	if ((procs = user_procs()) > 0 && getuid() != 0)
		o.a.lim.max_procs = procs + 256;
	o.a.approve = approve_tty;
	o.a.approve_ud = &c;
	if (o.trace) {
		tr.f = trace_open(o.trace);
		o.a.trace = trace_line;
		o.a.trace_ud = &tr;
	}

	buf_init(&task, cfg.max_input);
	if (cli_read_message(&c, argc - optind_, argv + optind_, &task, &err))
		cli_die_err(&err);
	if (c.save)
		tmplcli_save(&c, o.a.system, o.a.temperature, o.a.max_tokens, task.data ? task.data : "");
	if (task.len == strspn(task.data ? task.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no task: give it as arguments or on standard input");

	if (agent_run(&client, &o.a, task.data, &res, &err) ||
	    (c.schema && res.answer && !res.dry_run &&
	     answer_as_data(&client, &st, task.data, &res, &err))) {
		agent_result_release(&res);
		buf_release(&task);
		toolset_release(&ts);
		if (tr.f && tr.f != stderr)
			fclose(tr.f);
		kb_close(srch.kb);
		setup_die(&client, &cfg, &err);
	}
	if (res.dry_run) {
		/* The request was printed; nothing was sent. */
	} else if (c.json) {
		print_json(&res, http_now_ms() - t0);
	} else if (res.answer) {
		struct termout to;
		size_t n = strlen(res.answer);

		/* On a terminal, escape sequences in the answer are shown, not obeyed. */
		termout_init(&to, o.raw);
		termout_write(&to, res.answer, n, false);
		termout_end(&to, false);
		if (!n || res.answer[n - 1] != '\n')
			cli_write("\n", 1, false);
		termout_release(&to);
	}
	if (res.max_steps) {
		code = AI_EX_MAXSTEPS;
		cli_warn("no answer after %ld steps: raise --max-steps, or see what happened with --trace",
			 res.steps);
		if (!o.trace && !c.json)
			print_steps(&res);
	}
	agent_result_release(&res);
	if (c.schema)
		structured_release(&st);
	buf_release(&task);
	toolset_release(&ts);
	kb_close(srch.kb);
	if (tr.f && tr.f != stderr && fclose(tr.f))
		cli_warn("cannot write the trace '%s': %s", o.trace, strerror(errno));
	ai_client_release(&client);
	config_release(&cfg);
	return cli_finish(code);
}
