#ifndef AI_TOOLRUN_H
#define AI_TOOLRUN_H
/*
 * toolrun.h - the user's own tools for ai-agent: the tools file and the runner.
 *
 * A tool is an argv, never a shell string.  The model's arguments reach
 * the tool as one JSON object on its standard input; nothing the model
 * says ever becomes part of a command line (DESIGN.md, agent contract).
 *
 * A tools file is JSON and may hold several tools:
 *
 *   {"tools": [
 *     {"name": "weather", "description": "Current weather for a city",
 *      "parameters": {"type": "object",
 *                     "properties": {"city": {"type": "string"}},
 *                     "required": ["city"]},
 *      "argv": ["/usr/local/bin/weather", "--json"],
 *      "side_effects": false, "timeout_ms": 10000, "env": ["WEATHER_UNITS"]}
 *   ]}
 *
 *   name          required; ^[a-zA-Z0-9_-]{1,64}$ (the API's rule), unique
 *                 within the toolset
 *   argv          required; a non-empty array of strings.  argv[0] is an
 *                 absolute path or a bare command name, looked up in PATH
 *                 when the file is loaded; either way it must be executable
 *                 then.  A relative path with a slash is refused: it would
 *                 depend on the agent's working directory.
 *   description   optional string, default ""
 *   parameters    optional JSON Schema object, default
 *                 {"type":"object","properties":{}}
 *   side_effects  optional boolean, default true: a command is assumed to
 *                 change something unless the file says it does not
 *   timeout_ms    optional integer 1..86400000; when set it overrides the
 *                 caller's limit for this tool
 *   env           optional array of extra variable names to pass through
 *                 (see the environment rules below); a secret-looking name
 *                 is refused at load time
 * Any other key is an error, so a misspelt "timeout" does not pass silently.
 *
 * The environment a tool sees is built from the agent's own by an
 * allow-list: PATH (default "/usr/local/bin:/usr/bin:/bin" when unset),
 * HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR, TERM, NO_COLOR,
 * plus the tool's "env" names.  On top of that, a deny-list always wins:
 * names beginning with OPENAI_ or AI_, ending in _KEY, _TOKEN, _SECRET,
 * _PASSWORD or _PASSWD, or containing APIKEY or API_KEY (all
 * case-insensitive).  A tool that needs a secret reads it from a file of
 * its own.
 */
#include "ai.h"
#include "buf.h"

#include "compat/compat.h"

#include <signal.h>
#include <sys/types.h>

#include <json-c/json.h>

struct mcp_server;

struct tooldef {
	char *name;              /* owned */
	char *description;       /* owned; "" when the file gives none */
	json_object *parameters; /* owned reference; a JSON Schema object */
	char **argv;             /* owned; NULL-terminated, each string owned */
	char *path;              /* owned; the executable: argv[0] resolved to an
	                            absolute path at load time.  May be NULL in a
	                            hand-built tooldef: toolrun then execs argv[0] */
	char **env;              /* owned; NULL-terminated extra names; may be NULL */
	bool side_effects;
	long timeout_ms;         /* 0: use the caller's limit */
	char *file;              /* owned or NULL: the tools file that declares it */
	/* An MCP server's tool (mcp.h): argv and path are NULL, and these are set. */
	struct mcp_server *mcp;  /* borrowed: the server that offers it, or NULL */
	char *remote;            /* owned: its name on that server */
	bool allowed;            /* the server's "allow" list names it: no approval asked */
};

/*
 * An MCP server declared in a tools file, beside the tools:
 *
 *   {"mcp": {"fs": {"command": ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"],
 *                   "allow": ["write_file"], "timeout_ms": 60000},
 *            "remote": {"url": "https://host/mcp", "headers_cmd": "pass show mcp-token"}}}
 *
 *   the key       the server's name, ^[a-zA-Z0-9_-]{1,32}$, unique across the files; its
 *                 tools are offered as NAME_tool
 *   command       a non-empty argv, as a tool's "argv" (resolved in PATH at load time):
 *                 the stdio transport
 *   url           an http or https URL: the Streamable HTTP transport (one of command
 *                 and url, not both)
 *   headers_cmd   with url: a command whose output lines are extra request headers
 *   env           as a tool's: extra variable names passed to the server
 *   allow         tool names (the server's own) that may run without asking: the user's
 *                 decision, where the server's readOnlyHint is only the server's word
 *   timeout_ms    1..86400000: the limit of each call (default: --tool-timeout)
 *   startup_timeout_ms  1..86400000: start, initialize and list tools (default 30000)
 */
struct mcp_decl {
	char *name;              /* owned */
	char *file;              /* owned: the file that declares it */
	struct tooldef cmd;      /* stdio: name, argv, path, env; argv NULL for url */
	char *url;               /* owned or NULL */
	char *headers_cmd;       /* owned or NULL */
	char **allow;            /* owned; NULL-terminated; may be NULL */
	long timeout_ms;         /* 0: the caller's */
	long startup_timeout_ms; /* 0: MCP_STARTUP_TIMEOUT_MS */
};

struct toolset {
	struct tooldef *v;       /* owned */
	size_t n;
	struct mcp_decl *mcp;    /* owned: the MCP servers declared, in loading order */
	size_t nmcp;
};

#define TOOLSET_INIT { NULL, 0, NULL, 0 }

/* Returns the declared MCP server named name, borrowed from ts, or NULL. */
const struct mcp_decl *toolset_find_mcp(const struct toolset *ts, const char *name);

/*
 * Reads the tools file at path and appends its tools and MCP servers to ts
 * (which starts as TOOLSET_INIT or from earlier loads).  All or nothing: on error ts is
 * unchanged.  Errors (code AI_EX_CONFIG) name the file and the tool.
 * Returns 0 or -1.
 */
int toolset_load(struct toolset *ts, const char *path, struct ai_err *err);

/*
 * Loads every regular file named *.json in dir, in strcmp order, as
 * toolset_load does.  A missing directory is not an error (returns 0 with
 * nothing added).  All or nothing across the directory: on error ts is
 * unchanged.
 */
int toolset_load_dir(struct toolset *ts, const char *dir, struct ai_err *err);

/*
 * ai-agent's tools: the user's directory $XDG_CONFIG_HOME/ai/tools (unless
 * no_default), then each of the n files, in order.  A bad file is a
 * configuration error, before any request goes out.  0 or -1, and on
 * error ts holds what loaded before the bad one (release it).
 */
int toolset_load_all(struct toolset *ts, bool no_default, const char *const *files, size_t n,
		     struct ai_err *err);

/* Returns the tool named name, borrowed from ts (valid until ts changes), or NULL. */
const struct tooldef *toolset_find(const struct toolset *ts, const char *name);

/* Frees every tool and leaves ts empty (TOOLSET_INIT) and reusable. */
void toolset_release(struct toolset *ts);

/* Frees what t owns and zeroes it. */
void tooldef_release(struct tooldef *t);

/*
 * Returns the tool as the chat API's tool entry:
 * {"type":"function","function":{"name","description","parameters"}}.
 * Owned by the caller (json_object_put); parameters is a deep copy.
 * NULL on allocation failure.
 */
json_object *tooldef_to_openai(const struct tooldef *t);

/*
 * Limits for one run.  Zero in any field means its default:
 *   timeout_ms     30000; the tool's own timeout_ms wins when it has one
 *   max_output     1 MiB of stdout kept; the rest is read and discarded
 *   cpu_seconds    RLIMIT_CPU not set
 *   max_memory_mb  RLIMIT_AS not set
 *   max_procs      RLIMIT_NPROC not set.  It counts every process of the
 *                  user, not just the tool's, so only a caller that knows
 *                  the user's process count should set it.
 * RLIMIT_CORE is always 0.  A limit is only ever lowered, never raised
 * past the current hard limit.
 * cancel, when not NULL, is polled: once *cancel is non-zero (a SIGINT
 * handler sets it), the tool's process group is killed, reaped, and
 * toolrun fails with AI_EX_INTERRUPT.
 */
struct toolrun_limits {
	long timeout_ms;
	size_t max_output;
	long cpu_seconds;
	long max_memory_mb;
	long max_procs;
	const volatile sig_atomic_t *cancel;
};

#define TOOLRUN_TIMEOUT_MS 30000L
#define TOOLRUN_MAX_OUTPUT ((size_t)1 << 20)
#define TOOLRUN_MAX_STDERR ((size_t)4096)

struct toolrun_result {
	int exit_status;         /* 0..255; -1 when killed by a signal, or unknown */
	int term_signal;         /* the signal, or 0 */
	bool timed_out;          /* the wall-clock limit passed and we killed it */
	bool truncated;          /* stdout passed max_output */
	struct buf out;          /* owned: stdout, at most max_output bytes */
	struct buf err;          /* owned: stderr, at most TOOLRUN_MAX_STDERR bytes */
	long ms;                 /* wall-clock time of the run */
};

/*
 * Runs tool t: fork, then execve of t->path (or argv[0]) with t->argv and
 * the scrubbed environment, in its own process group, with no descriptor
 * but 0-2 inherited, every signal at its default disposition, and the
 * limits in lim (NULL: all defaults).  args_json (may be NULL: "{}") is
 * written to the tool's stdin, which is then closed; a tool that does not
 * read it cannot block us.  When the tool exits, or at the deadline, its
 * whole process group is killed with SIGKILL; the tool is always reaped.
 * A descendant that left the group (setsid) is caught too, on Linux: the
 * calling process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER,
 * once, for good), so orphans of the tool become its children, and after
 * the tool ends every child it did not have before the tool started is
 * killed with SIGKILL and reaped, until none is left.  So nothing the tool
 * started lives on, and the caller should not start children of its own
 * meanwhile in another thread.
 *
 * Returns 0 when the tool ran, whatever its exit status, timeout included:
 * res then holds the result and must be released with
 * toolrun_result_release.  Returns -1 when it could not run (pipe or fork
 * failure, AI_EX_OSERR; execve failure such as "cannot run '/x': No such
 * file or directory", AI_EX_CONFIG; cancelled, AI_EX_INTERRUPT); res is
 * then empty, and releasing it is harmless.  A script without a "#!"
 * line fails with "Exec format error": unlike execvp, there is no
 * fallback to sh.
 *
 * The caller must leave the child to toolrun: with SIGCHLD ignored, or a
 * handler that reaps every child, the output is still returned but the
 * exit status is lost (exit_status -1, term_signal 0).
 *
 * SIGPIPE is blocked in the calling thread only around each write to the
 * tool, and a SIGPIPE raised there is consumed, so the caller's own
 * disposition does not matter.  Every descriptor it creates is
 * close-on-exec, so a fork+exec in another thread does not inherit them.
 */
int toolrun(const struct tooldef *t, const char *args_json, const struct toolrun_limits *lim,
            struct toolrun_result *res, struct ai_err *err);

/*
 * A long-lived child, for a program that speaks a protocol on its standard
 * input and output (an MCP server, mcp.h).  It starts as toolrun starts a
 * tool, with the same environment allow-list, process group, descriptors,
 * signal dispositions and resource limits (lim: only cpu_seconds,
 * max_memory_mb, max_procs count; NULL: RLIMIT_CORE 0 alone), but its
 * three pipes stay open to the caller, non-blocking and close-on-exec.
 */
struct toolproc {
	pid_t pid;              /* 0 once stopped */
	int in;                 /* write end of its stdin; -1 once closed */
	int out, err;           /* read ends of its stdout and stderr */
	int pidfd;              /* readable once it exits; -1 where unsupported */
	bool reaper;            /* we are a subreaper and before is valid */
	struct compat_pids before;      /* our children before it started */
};

/*
 * Starts t as a long-lived child into p.  0, or -1 with err as toolrun
 * fills it (execve failure AI_EX_CONFIG, others AI_EX_OSERR); p is then
 * empty and toolproc_stop on it harmless.
 */
int toolproc_start(struct toolproc *p, const struct tooldef *t, const struct toolrun_limits *lim,
		   struct ai_err *err);

/*
 * Writes all of data to the child's stdin, waiting while the pipe is full
 * until deadline (mono_ms() time) or *cancel (may be NULL).  While it
 * waits, reader(ud) (may be NULL) is called whenever the child's stdout or
 * stderr is readable, to read them: a child blocked writing its own output
 * reads no input, and both would wait for the deadline.  reader returns 0,
 * or -1 to give up (AI_EX_UNAVAILABLE, "its output ended").  SIGPIPE is
 * handled as toolrun handles it.  0, or -1 with err: AI_EX_UNAVAILABLE
 * (closed, or the child stopped reading), AI_EX_TEMPFAIL (deadline),
 * AI_EX_INTERRUPT; the message says what the child did ("it ...").  After
 * -1 part of data may have been written: a line protocol is then out of
 * step, and the caller should stop the child.
 */
int toolproc_write(struct toolproc *p, const char *data, size_t len, long deadline,
		   const volatile sig_atomic_t *cancel, int (*reader)(void *ud), void *ud,
		   struct ai_err *err);

/* True once the child has exited (it stays a zombie until toolproc_stop). */
bool toolproc_exited(struct toolproc *p);

/*
 * Stops the child however it is: closes its stdin, waits up to grace_ms
 * for it to exit, then SIGTERM to its group and grace_ms more, then
 * SIGKILL to the group; reaps it, closes every descriptor, and kills what
 * it left outside its group as toolrun does (every child of ours that was
 * not there when it started: stop several in the reverse order of their
 * start).  p is then empty; stopping it again is harmless.
 */
void toolproc_stop(struct toolproc *p, long grace_ms);

/*
 * Resolves cmd as the tools file's argv[0] is: an absolute path that must
 * be executable, or a bare name looked up in PATH (never against the
 * working directory).  Returns the path, owned (free()), or NULL with err
 * (AI_EX_CONFIG: "command 'x' not found in PATH; ...").
 */
char *toolrun_resolve(const char *cmd, struct ai_err *err);

/* Frees the buffers of res; res stays valid and empty. */
void toolrun_result_release(struct toolrun_result *res);

/*
 * Returns true when the variable name may pass to a tool under the rules
 * above: in the allow-list or in extra (NULL-terminated, may be NULL),
 * and not secret-looking.
 */
bool toolrun_env_allowed(const char *name, size_t len, char *const *extra);

/* Returns true when name looks like a secret and is never passed on. */
bool toolrun_env_secret(const char *name, size_t len);

#endif
