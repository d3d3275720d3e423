/*
 * ai-agent - a task in, an answer out, through a tool-calling loop
 * (pattern 5: the agent).  The engine lives in common/agent/ (the loop,
 * the tools, the search tool, the trace file); this file reads the
 * options, asks for approval on the terminal, and prints the answer.
 */
#include "ai.h"
#include "agent/agent.h"
#include "agent/mcp.h"
#include "agent/search.h"
#include "api/api.h"
#include "api/structured.h"
#include "clock.h"
#include "jsonval.h"
#include "lib/attachcli.h"
#include "lib/cli.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"
#include "agent/text.h"
#include "agent/toolrun.h"

#include <math.h>
#include <unistd.h>

enum {
	OPT_MAX_STEPS = CLI_OPT_PROG, OPT_TOOLS, OPT_NO_DEFAULT_TOOLS, OPT_DB_SQL, OPT_DB, OPT_TRACE,
	OPT_TOOL_TIMEOUT, OPT_TOOL_MEMORY, OPT_MAX_OUTPUT, OPT_SYSTEM, OPT_TEMPERATURE,
	OPT_MAX_TOKENS, OPT_RAW, OPT_MCP, OPT_LIST_TOOLS
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
	{ "mcp", required_argument, OPT_MCP, "NAME", "start the MCP server NAME declared in a tools file (repeatable)" },
	{ "list-tools", no_argument, OPT_LIST_TOOLS, NULL, "print every tool offered and where it comes from, then exit" },
	ATTACHCLI_OPTS,
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	struct agent_opts a;
	const char *tools[64];
	size_t ntools;
	const char *mcp[64];
	size_t nmcp;
	bool no_default_tools, raw, list_tools;
	const char *coll, *kb_path, *trace;
	struct attachcli att;   /* -a, --attach-as: sent with the task */
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
	case 'a': case ATTACHCLI_OPT_AS: attachcli_opt(&o->att, val, arg); break;
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
	case OPT_MCP:
		if (o->nmcp == AI_ARRAY_LEN(o->mcp))
			cli_usage_error("--mcp: at most %zu servers", AI_ARRAY_LEN(o->mcp));
		o->mcp[o->nmcp++] = arg;
		break;
	case OPT_LIST_TOOLS: o->list_tools = true; break;
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
	if (t->mcp) {
		/* The server's names, not ours: what it will be asked to do. */
		buf_addstr(&q, "tool '");
		add_visible(&q, t->remote, 200);
		buf_addf(&q, "' of the MCP server '%s'", mcp_server_name(t->mcp));
	}
	for (size_t i = 0; t->argv && t->argv[i]; i++) {
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
			 "give --yes to allow it%s", q.data ? q.data : "",
			 t->mcp ? ", or name it in the server's \"allow\" list" : "");
		buf_release(&q);
	}
	return a == CLI_YES ? AGENT_APPROVE_YES : a == CLI_NOTTY ? AGENT_APPROVE_NOTTY :
	       a == CLI_INTERRUPTED ? AGENT_APPROVE_INTERRUPT : AGENT_APPROVE_NO;
}

static void trace_line(json_object *ev, void *ud)
{
	if (agent_tracefile_write(ud, ev))
		cli_warn("cannot write the trace: %s", strerror(errno));
}

/* Without --trace, the steps so far in short, for a run that hit the step limit. */
static void print_steps(const struct agent_result *r)
{
	size_t n = json_object_array_length(r->trace);

	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(r->trace, i), *v;
		const char *name = jv_str(c, "name"), *args = jv_str(c, "arguments");
		struct buf b;

		/* The name is the model's choice too, not necessarily a tool's. */
		buf_init(&b, 0);
		buf_addf(&b, "  step %ld: ", jv_long(c, "step", 0));
		add_visible(&b, name ? name : "", 64);
		buf_addch(&b, ' ');
		add_visible(&b, args ? args : "", 200);
		buf_addf(&b, ": %s\n", json_object_object_get_ex(c, "ok", &v) &&
			 json_object_get_boolean(v) ? "ok" : "failed");
		if (b.data)
			fputs(b.data, stderr);
		buf_release(&b);
	}
}

/* Everything one run holds, so that main reads as its steps. */
struct run {
	struct cli c;
	struct opts o;
	struct ai_config cfg;
	struct ai_client *client;
	struct toolset ts;
	struct agent_search srch;
	struct agent_tracefile tr;
	struct structured st;   /* --schema's, when o.a.st points to it */
	struct mcp mcp;         /* the MCP servers started */
	int64_t t0;             /* the start, for the trace's mcp events */
};

/* ---- MCP servers -------------------------------------------------------- */

/* The one run, for the atexit handler: servers are stopped however ai-agent ends. */
static struct run *the_run;

static void stop_servers(void)
{
	if (the_run)
		mcp_stop_all(&the_run->mcp);
}

/* A server's stderr and notes: with -v on stderr, made visible; always in the trace. */
static void mcp_log(const char *server, const char *kind, const char *text, void *ud)
{
	struct run *r = ud;

	if (r->c.verbose) {
		struct buf b;

		buf_init(&b, 0);
		add_visible(&b, text, 2000);
		cli_warn("MCP server '%s' %s: %s", server, kind, b.data ? b.data : "");
		buf_release(&b);
	}
	if (r->o.trace && r->tr.fd >= 0) {
		json_object *ev = json_object_new_object();

		if (ev && !jv_add(ev, "event", json_object_new_string("mcp")) &&
		    !jv_add(ev, "server", json_object_new_string(server)) &&
		    !jv_add(ev, "t_ms", json_object_new_int64(mono_ms() - r->t0)) &&
		    !jv_add(ev, "kind", json_object_new_string(kind)) &&
		    !jv_add(ev, "text", text_json(text, strlen(text), TEXT_NUL_REPLACE)))
			trace_line(ev, &r->tr);
		json_object_put(ev);
	}
}

/* agent_opts.refresh: an MCP server whose tool list changed is listed again. */
static int refresh_tools(void *ud, struct ai_err *err)
{
	struct run *r = ud;
	bool changed;

	if (mcp_refresh(&r->mcp, &r->ts, &changed, err))
		return -1;
	return changed;
}

/* Starts the servers --mcp names, else those of the configuration's mcp key. */
static void start_servers(struct run *r)
{
	struct mcp_opts mo = { &cli_interrupted, mcp_log, r };
	const char *names[64];
	size_t n = 0;
	char *list = NULL;
	struct ai_err err;

	if (r->o.nmcp) {
		memcpy(names, r->o.mcp, r->o.nmcp * sizeof(*names));
		n = r->o.nmcp;
	} else if (r->cfg.mcp) {
		if (!(list = strdup(r->cfg.mcp)))
			cli_die(AI_EX_OSERR, "out of memory");
		for (char *p = list; *p && n < AI_ARRAY_LEN(names); ) {
			size_t len = strcspn(p, " \t,");

			if (len)
				names[n++] = p;
			p += len;
			if (*p)
				*p++ = '\0';
		}
	}
	ai_err_clear(&err);
	/* Servers are children to stop, not to leave behind: --list-tools has no client to hold SIGTERM (cli.h). */
	if (n)
		cli_defer_signals(true);
	for (size_t i = 0; i < n; i++) {
		const struct mcp_decl *d = toolset_find_mcp(&r->ts, names[i]);

		for (size_t j = 0; j < i; j++)
			if (!strcmp(names[j], names[i]))
				cli_die(AI_EX_USAGE, "the MCP server '%s' is named twice", names[i]);
		if (!d)
			cli_die(AI_EX_CONFIG, "no MCP server named '%s' is declared: declare it under "
				"\"mcp\" in a tools file (see ai-agent(1))", names[i]);
		if (mcp_start(&r->mcp, d, &mo, &r->ts, &err)) {
			free(list);
			cli_die_err(&err);
		}
	}
	free(list);
}

/* --list-tools: one line a tool offered (or one JSON line with --json), then exit. */
static int list_tools(struct run *r)
{
	json_object *list = NULL;
	struct ai_err err;

	ai_err_clear(&err);
	if (agent_tool_list(&r->o.a, &list, &err))
		cli_die_err(&err);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *j = json_object_array_get_idx(list, i);
		const char *server = jv_str(j, "server"), *file = jv_str(j, "file");
		struct buf b;

		if (r->c.json) {
			out_json_line(j);
			continue;
		}
		/* NAME, where it comes from, what running it takes: tab-separated. */
		buf_init(&b, 0);
		add_visible(&b, jv_str(j, "name"), 64);
		buf_addf(&b, "\t%s", jv_str(j, "source"));
		if (server) {
			buf_addf(&b, " %s:", server);
			add_visible(&b, jv_str(j, "remote"), 200);
		}
		if (file) {
			buf_addch(&b, ' ');
			add_visible(&b, file, 1000);
		}
		buf_addf(&b, "\t%s\n", jv_str(j, "approval"));
		if (b.data)
			cli_write(b.data, b.len, false);
		buf_release(&b);
	}
	json_object_put(list);
	return AI_EX_OK;
}

/*
 * The tools first (a bad tools file is a configuration error, before any
 * request), then the client, the search tool, the limits and the trace.
 */
static void gather(struct run *r)
{
	struct agent_opts *a = &r->o.a;
	struct ai_err err, why;

	ai_err_clear(&err);
	ai_err_clear(&why);
	if (toolset_load_all(&r->ts, r->o.no_default_tools, r->o.tools, r->o.ntools, &err))
		cli_die_err(&err);
	a->user = &r->ts;
	if (a->sql_db && access(a->sql_db, R_OK)) {
		ai_errf_errno(&err, AI_EX_NOINPUT, "cannot read the database '%s'", a->sql_db);
		cli_die_err(&err);
	}
	/* Listing the tools asks no model: it needs no endpoint. */
	if (r->o.list_tools)
		setup_client_if(&r->c, &r->cfg, &r->client, false, NULL, &err);
	else
		setup_client(&r->c, &r->cfg, &r->client, &err);
	if (!a->system)
		a->system = r->cfg.system;     /* ai.conf's system: the default of --system */
	if (agent_search_open(&r->srch, r->client, r->o.kb_path, r->o.coll, &why, &err))
		cli_die_err(&err);
	if (why.msg[0] && !r->c.quiet)
		cli_warn("%s", why.msg);
	if (r->srch.kb) {
		a->search = agent_search_kb;
		a->search_ud = &r->srch;
	}
	a->model = r->c.model;
	a->lim.cancel = &cli_interrupted;
	if (r->o.trace) {
		if (agent_tracefile_open(&r->tr, r->o.trace, &err))
			cli_die_err(&err);
		a->trace = trace_line;
		a->trace_ud = &r->tr;
	}
	/* After the trace, which gets their stderr; before the limits, which they do not take. */
	start_servers(r);
	if (r->mcp.n) {
		a->refresh = refresh_tools;
		a->refresh_ud = r;
	}
	agent_opts_limits(a);
	a->approve = approve_tty;
	a->approve_ud = &r->c;
}

/* The answer, or the --json object; and what a run that hit the step limit did. */
static int report(const struct run *r, const struct agent_result *res, int64_t ms)
{
	if (res->dry_run) {
		/* The request was printed; nothing was sent. */
	} else if (r->c.json) {
		json_object *j = agent_result_json(res, ms);

		if (!j)
			cli_die(AI_EX_OSERR, "out of memory");
		out_json_line(j);
		json_object_put(j);
	} else if (res->answer) {
		struct termout to;
		size_t n = strlen(res->answer);

		/* On a terminal, escape sequences in the answer are shown, not obeyed. */
		termout_init(&to, r->o.raw);
		termout_write(&to, res->answer, n, false);
		termout_end(&to, false);
		if (!n || res->answer[n - 1] != '\n')
			cli_write("\n", 1, false);
		termout_release(&to);
	}
	if (!res->max_steps)
		return AI_EX_OK;
	cli_warn("no answer after %ld steps: raise --max-steps, or see what happened with --trace",
		 res->steps);
	if (!r->o.trace && !r->c.json)
		print_steps(res);
	return AI_EX_MAXSTEPS;
}

static void release(struct run *r)
{
	mcp_stop_all(&r->mcp);
	toolset_release(&r->ts);
	agent_search_close(&r->srch);
	if (r->o.a.st)
		structured_release(r->o.a.st);
	if (agent_tracefile_close(&r->tr))
		cli_warn("cannot write the trace '%s': %s", r->o.trace, strerror(errno));
}

int main(int argc, char **argv)
{
	static struct run r = { .ts = TOOLSET_INIT, .tr = { -1, false }, .mcp = MCP_INIT };
	struct agent_result res;
	struct ai_err err;
	struct buf task;
	struct attach_set att;
	int64_t t0 = mono_ms();
	int optind_, rc, code = AI_EX_OK;

	r.t0 = t0;
	agent_opts_init(&r.o.a);
	cli_init(&r.c, "ai-agent");
	r.c.text = true;        /* --markdown (termout.h) */
	r.c.usage = "[OPTION]... [TASK]...";
	r.c.summary = "Do a task with a model that calls tools: calculate, search, sql and yours.";
	r.c.opts = opts;
	r.c.message = true;
	r.c.schema_ok = true;
	r.c.template_ok = true;
	optind_ = cli_parse(&r.c, argc, argv, on_opt, &r.o);
	ai_err_clear(&err);
	/* -T's settings are defaults the options win over. */
	if (r.c.tmpl) {
		if (!r.o.a.system)
			r.o.a.system = r.c.tmpl->system;
		if (isnan(r.o.a.temperature))
			r.o.a.temperature = r.c.tmpl->temperature;
		if (!r.o.a.max_tokens)
			r.o.a.max_tokens = r.c.tmpl->max_tokens;
	}
	if (r.c.schema) {
		if (structured_load(&r.st, r.c.schema, r.c.schema_multi, &err))
			cli_die_err(&err);
		r.o.a.st = &r.st;
	}
	the_run = &r;
	atexit(stop_servers);
	gather(&r);
	if (r.o.list_tools) {
		code = list_tools(&r);
		release(&r);
		ai_client_release(r.client);
		config_release(&r.cfg);
		return cli_finish(code);
	}

	/* Before the task: "-a -" is standard input, and the task then comes from the operands. */
	for (size_t i = 0; i < r.o.att.n; i++)
		if (!strcmp(r.o.att.src[i], "-") && optind_ == argc && !r.c.nfiles)
			cli_usage_error("-a - reads standard input: give the task as arguments");
	if (attachcli_load(&r.o.att, &r.cfg, &att, &err))
		cli_die_err(&err);
	r.o.a.attach = &att;
	buf_init(&task, r.cfg.max_input);
	if (cli_read_message(&r.c, argc - optind_, argv + optind_, &task, &err))
		cli_die_err(&err);
	if (r.c.save)
		tmplcli_save(&r.c, r.o.a.system, r.o.a.temperature, r.o.a.max_tokens,
			     task.data ? task.data : "");
	if (task.len == strspn(task.data ? task.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no task: give it as arguments or on standard input");

	rc = agent_run(r.client, &r.o.a, task.data, &res, &err);
	if (!rc)
		code = report(&r, &res, mono_ms() - t0);
	agent_result_release(&res);
	attach_set_release(&att);
	buf_release(&task);
	release(&r);
	if (rc)
		setup_die(r.client, &r.cfg, &err);
	ai_client_release(r.client);
	config_release(&r.cfg);
	return cli_finish(code);
}
