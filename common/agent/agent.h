#ifndef AI_AGENT_H
#define AI_AGENT_H
/*
 * agent.h - ai-agent's loop: the model answers with tool calls, we run
 * them and send the results back, until it answers in text or the step
 * limit is reached.
 *
 * The tools are fixed before the first turn: the built-ins "calculate"
 * (calc.h), "search" (a caller-supplied backend, the knowledge base of
 * ai-index), "sql" (sqltool.h, read-only) and the user's own commands
 * (toolrun.h).  Nothing a model, a document or a tool says can change
 * that set, the limits, or what needs approval: tool output goes back to
 * the model as data in a "tool" message and is never interpreted here.
 * The one exception is an MCP server's own tools, which the server may
 * change between turns (opts.refresh, mcp_refresh): a tool new mid-run
 * always needs approval, and one that needed it at start still does.
 *
 * Every call is checked before anything runs: the name must be one of the
 * tools offered, the arguments must be one JSON object (a reply cut short
 * by max_tokens may carry "{" only) that matches the tool's parameters
 * (required members present, declared members of the declared type, no
 * others when additionalProperties is false).  Arguments that parsers
 * could read differently are refused too: a key named twice in one
 * object, an integer outside int64, a number too large for a double, a
 * lone UTF-16 surrogate escape, and anything outside RFC 8259 (NaN,
 * comments, single quotes).  A refused call is not an error of the run:
 * it goes back to the model as {"error": "..."}.
 *
 * A user tool gets the arguments re-serialised as compact JSON, the same
 * text the approval callback is shown, never the model's own text.
 *
 * A user tool with side effects runs only when opts.yes is set or the
 * approve callback says yes.  Built-ins never have side effects.  An MCP
 * server's tool (mcp.h) is a user tool whose side_effects its readOnlyHint
 * decides, which also runs when its server's "allow" list names it
 * (tooldef.allowed: the user's word, where the hint is only the server's).
 *
 * Like the rest of common/, this never prints and never reads stdin: the
 * trace and the approval prompt are callbacks that main supplies.
 */
#include "ai.h"
#include "api/api.h"
#include "api/structured.h"
#include "buf.h"
#include "agent/sqltool.h"
#include "agent/toolrun.h"

#include <json-c/json.h>

#define AGENT_DEFAULT_MAX_STEPS 10
#define AGENT_MAX_ARGS ((size_t)64 * 1024)      /* bytes of arguments accepted per call */
#define AGENT_DEFAULT_RESULT_MAX ((size_t)16 * 1024) /* bytes of tool output sent back */
#define AGENT_DEFAULT_TRACE_MAX ((size_t)2048)  /* bytes of each result kept in the trace */

/* The built-in tool names: a user tool may not take one of them. */
extern const char *const agent_builtin_names[];  /* NULL-terminated */

/*
 * The search backend: fills *result with an owned JSON value (an array of
 * passages, each with its source, is what the model expects) for query,
 * at most k passages.  Returns 0, or -1 with err filled; err's message
 * goes back to the model as the tool's error unless its code is
 * AI_EX_INTERRUPT or AI_EX_OSERR, which end the run.
 */
typedef int (*agent_search_fn)(const char *query, long k, json_object **result,
			       struct ai_err *err, void *ud);

/*
 * Asks whether tool t may run with the arguments args: compact JSON, the
 * exact bytes the tool will get on its standard input if the answer is yes.
 * Returns AGENT_APPROVE_YES, _NO (the user said no, or said nothing),
 * _NOTTY (nobody can be asked: no terminal) or _INTERRUPT.
 */
enum { AGENT_APPROVE_NO = 0, AGENT_APPROVE_YES = 1, AGENT_APPROVE_NOTTY = 2, AGENT_APPROVE_INTERRUPT = 3 };
typedef int (*agent_approve_fn)(const struct tooldef *t, const char *args, void *ud);

/*
 * Receives each trace event, a JSON object with "event" ("start", "model",
 * "tool", "end"), "t_ms" (since the start) and the event's own members
 * (see ai-agent(1)).  ev is borrowed for the call.
 */
typedef void (*agent_trace_fn)(json_object *ev, void *ud);

struct attach_set;

struct agent_opts {
	long max_steps;               /* model turns at most; <= 0: AGENT_DEFAULT_MAX_STEPS */
	const char *system;           /* the system prompt; NULL: a built-in one */
	const char *model;            /* NULL: the configuration's */
	double temperature;           /* NAN: the server's default */
	long max_tokens;              /* 0: the server's default */
	const char *sql_db;           /* the sql tool's database, or NULL: no sql tool */
	struct sqltool_opts sql;        /* its limits; zeroes are the defaults */
	agent_search_fn search;       /* NULL: no search tool */
	void *search_ud;
	const struct toolset *user;   /* borrowed; may be NULL */
	bool yes;                     /* approve every side effect */
	agent_approve_fn approve;     /* NULL: nobody can be asked */
	void *approve_ud;
	agent_trace_fn trace;         /* NULL: no trace */
	void *trace_ud;
	struct toolrun_limits lim;    /* for the user's tools (cpu_seconds 0: the tool's
	                                 wall-clock limit, rounded up); lim.cancel also
	                                 stops the loop */
	size_t result_max;            /* bytes of tool output sent back; 0: the default */
	size_t trace_max;             /* bytes of each result in the trace; 0: the default */
	/* Borrowed or NULL (--schema): the loop's final answer is turned into JSON matching
	 * it by one more request, checked and repaired once (structured_chat), so the tool
	 * loop itself stays as it is; res->answer is then that JSON text. */
	struct structured *st;
	/* Borrowed or NULL (-a): the attachments sent with the task (api/attach.h). */
	const struct attach_set *attach;
	/*
	 * NULL, or called before each model turn after the first, when no tool
	 * runs: it may change user's tools (an MCP server said its list changed:
	 * mcp_refresh).  1 when it did (the tools offered are made again), 0,
	 * or -1 with err, which ends the run.
	 */
	int (*refresh)(void *ud, struct ai_err *err);
	void *refresh_ud;
};

/* Sets o to the defaults above (no sql, no search, no user tools, nobody to ask). */
void agent_opts_init(struct agent_opts *o);

/*
 * After the options are read: the limits a user tool runs under, where
 * o leaves them unset.  A tool timeout given applies to SQL too; memory
 * defaults to AGENT_TOOL_MEMORY_MB; processes to what the user runs now
 * plus AGENT_TOOL_PROCS_MARGIN, because RLIMIT_NPROC counts every process
 * of the user: enough for any honest tool, and a fork bomb stops there
 * (it does not bind root, so root gets none).
 */
void agent_opts_limits(struct agent_opts *o);

#define AGENT_TOOL_MEMORY_MB 2048
#define AGENT_TOOL_PROCS_MARGIN 256

/*
 * Checks that no user tool takes a built-in name (or the name of another
 * offered tool), and returns in *tools the "tools" array for the chat
 * request: the built-ins that are on, then the user's tools.  Owned; free
 * with json_object_put.  -1 with AI_EX_CONFIG when a name clashes.
 */
int agent_tools(const struct agent_opts *o, json_object **tools, struct ai_err *err);

/*
 * ai-agent --list-tools: every tool agent_tools offers, in that order, as
 * an owned array (json_object_put) of {name, source ("built-in", "user",
 * "mcp"), server and remote (an MCP tool's server and its own name), file
 * (where a user or MCP tool is declared), side_effects, approval ("not
 * needed", "asks", "allow": the server's allow list, "--yes"),
 * description}.  0, or -1 with err as agent_tools fills it.
 */
int agent_tool_list(const struct agent_opts *o, json_object **list, struct ai_err *err);

/* The outcome of one tool call. */
struct agent_call {
	char *content;          /* owned: the JSON text sent back to the model */
	bool ok;                /* false: a refused or failed call, content is {"error": ...} */
	const char *approval;   /* static: "not needed", "--yes", "yes", "no", "no terminal",
	                           "allow" */
	long ms;                /* time spent running it */
};

/* Frees what c owns and zeroes it. */
void agent_call_release(struct agent_call *c);

/*
 * Checks and runs one tool call: name and args (the arguments as the
 * model sent them, a JSON text; may be NULL: none) against the tools of
 * o.  Returns 0 with *c filled whether the tool succeeded or not; -1 only
 * when the run must end: interrupted (AI_EX_INTERRUPT, the tool killed)
 * or out of memory, with err filled and *c empty.
 */
int agent_call_tool(const struct agent_opts *o, const char *name, const char *args,
		    struct agent_call *c, struct ai_err *err);

/*
 * Validates args against a JSON Schema object, as far as this module
 * checks one (see the top of this file).  Returns 0 or -1 with why filled
 * (n bytes, NUL-terminated) in words for the model.  Exposed for the tests.
 */
int agent_check_args(json_object *schema, json_object *args, char *why, size_t n);

struct agent_result {
	char *answer;           /* owned: the final answer, or NULL (step limit, dry run) */
	char *model;            /* owned: the model that answered last, or NULL */
	long steps;             /* model turns taken */
	long calls;             /* tool calls made */
	long prompt_tokens, completion_tokens;  /* summed over the turns that said */
	double cost;            /* USD; NAN when a turn's price was unknown */
	bool max_steps;         /* the step limit ended the run before an answer */
	bool dry_run;           /* --dry-run: the first request was shown, nothing sent */
	json_object *trace;     /* owned array: one object per tool call made
	                           {step, id, name, arguments, approval, ok, ms} */
};

/* Frees what r owns and zeroes it. */
void agent_result_release(struct agent_result *r);

/*
 * ai-agent --json's object for r, latency ms: {answer, steps, usage
 * {prompt_tokens, completion_tokens}, cost, model, max_steps_reached,
 * calls, latency_ms}.  Returns owned (json_object_put), or NULL when
 * memory runs out.
 */
json_object *agent_result_json(const struct agent_result *r, int64_t ms);

/* The --trace file: one JSON line per event agent_opts.trace is given. */
struct agent_tracefile {
	int fd;
	bool failed;            /* a write failed: the rest is not written */
};

/*
 * Opens path for the trace, "-" being standard error; a file is created
 * (or emptied) mode 0600, since the trace holds the task, tool output and
 * database rows.  0, or -1 with err (AI_EX_IOERR).
 */
int agent_tracefile_open(struct agent_tracefile *t, const char *path, struct ai_err *err);

/*
 * Writes ev as one line.  0, or -1 with errno the first time a write
 * fails; from then on it writes nothing and returns 0, so a caller that
 * warns on -1 warns once.
 */
int agent_tracefile_write(struct agent_tracefile *t, json_object *ev);

/* Closes the file (standard error stays open).  0, or -1 with errno. */
int agent_tracefile_close(struct agent_tracefile *t);

/*
 * Runs task to the end through client c (borrowed).  Returns 0 with *res
 * filled when the model answered, when the step limit was reached
 * (res->max_steps; the caller exits AI_EX_MAXSTEPS) or after a dry run.
 * Returns -1 with err filled when a model call failed (a server that
 * refuses a request with tools is named with its model, since it most
 * likely does not support tool calling), when interrupted
 * (AI_EX_INTERRUPT) or out of memory; *res then holds what was done so
 * far and must still be released.  Under o->st a final answer that
 * stays invalid for the schema is AI_EX_DATAERR.
 */
int agent_run(struct ai_client *c, const struct agent_opts *o, const char *task,
	      struct agent_result *res, struct ai_err *err);

#endif
