#ifndef AI_MCP_H
#define AI_MCP_H
/*
 * mcp.h - the Model Context Protocol client of ai-agent: an MCP server's
 * tools offered to the model beside the built-ins and the user's own.
 *
 * A server is declared in a tools file (toolrun.h, struct mcp_decl) and
 * started by name.  The stdio transport runs it as a long-lived child
 * through the tool runner (toolproc: the same environment allow-list,
 * process group and limits as a tool) and speaks newline-delimited
 * JSON-RPC 2.0 on its stdin and stdout; its stderr lines go to the log
 * callback.  The Streamable HTTP transport POSTs each message through
 * net/http.h (never retried) and reads the answer: nothing (202), one JSON
 * message or batch, or an SSE stream of them (net/sse.h), dispatched as it
 * arrives and closed at the end of the piece in which the answer awaited
 * came (the server may keep it open after): what came with the answer, a
 * list_changed or a ping, is still dealt with.  Only messages on a
 * request's own stream are seen: no GET stream is opened, so what a
 * server sends between requests never arrives.  A reply to the server's
 * request (a pong) is a POST of its own, made between steps of the
 * transfer, never from inside libcurl's callbacks.  The Mcp-Session-Id
 * given at initialize goes with every later message, and the session is
 * DELETEd at stop.  headers_cmd runs once, through the
 * shell as api_key_cmd does.  Start: "initialize" (the versions in mcp_versions, the
 * server's answer accepted only when it is one of them), then
 * "notifications/initialized", then "tools/list" page by page.
 *
 * Everything the server sends is data: a line that is not JSON-RPC, an
 * answer to an id never asked, a line longer than MCP_LINE_MAX, a server
 * that exits or never answers all end the one request with an error (the
 * model is told), never a hang: every wait has a deadline and polls the
 * cancel flag.  A request given up (deadline, Ctrl-C) is followed by
 * "notifications/cancelled", and a late answer to it is ignored.
 * Requests from the server are answered: "ping" with {}, every other one
 * with "method not found" (this client offers no sampling, roots or
 * elicitation).  "notifications/tools/list_changed" is noted (logged and
 * in mcp_server_list_changed), and mcp_refresh lists the tools again:
 * ai-agent calls it before each model turn (agent.h, agent_opts.refresh).
 * A stdio server's output is read then too, without waiting, so that a
 * notification written after a result is not missed.
 *
 * Like the rest of common/, this never prints: what a caller may want to
 * show goes to the log callback.
 */
#include "ai.h"
#include "buf.h"
#include "agent/toolrun.h"

#include <signal.h>

#include <json-c/json.h>

#define MCP_STARTUP_TIMEOUT_MS 30000L
#define MCP_LINE_MAX ((size_t)16 << 20)    /* bytes of one JSON-RPC message at most */
#define MCP_MAX_PAGES 100                  /* tools/list pages followed at most */
#define MCP_MAX_TOOLS 1000                 /* tools taken from one server at most */
#define MCP_STOP_GRACE_MS 1000L            /* after stdin closes, then after SIGTERM */

/* The protocol versions spoken, newest (the one asked for) first; NULL-terminated. */
extern const char *const mcp_versions[];

/*
 * Receives a line the server wrote to stderr (kind "stderr"), a log
 * message it sent (kind "log"), or a note about it (kind "note", e.g. its
 * tool list changed).  All strings borrowed for the call; text is the
 * server's and not neutralised.
 */
typedef void (*mcp_log_fn)(const char *server, const char *kind, const char *text, void *ud);

struct mcp_opts {
	const volatile sig_atomic_t *cancel;    /* may be NULL; polled while waiting */
	mcp_log_fn log;                         /* may be NULL */
	void *log_ud;
};

/* The servers started, in order. */
struct mcp {
	struct mcp_server **v;  /* owned */
	size_t n;
};

#define MCP_INIT { NULL, 0 }

/*
 * Starts the server d (borrowed; must outlive m), initializes it and lists
 * its tools, within d->startup_timeout_ms, then appends each tool to ts
 * as a tooldef with mcp set: named SERVER_tool (every character outside
 * a-z A-Z 0-9 _ - made '_', at most 64), its inputSchema as parameters,
 * side_effects unless its annotations say readOnlyHint, allowed when d's
 * allow list names it.  A name that clashes with a tool already in ts is a
 * configuration error.  0, or -1 with err (AI_EX_CONFIG: cannot run, a
 * name clash, a protocol version not spoken; AI_EX_UNAVAILABLE: it
 * exited or broke the protocol; AI_EX_TEMPFAIL: too slow;
 * AI_EX_INTERRUPT), with the server stopped and ts unchanged.  An HTTP
 * server (d->url) is reached the same way, through its URL.
 */
int mcp_start(struct mcp *m, const struct mcp_decl *d, const struct mcp_opts *o,
	      struct toolset *ts, struct ai_err *err);

/*
 * What one tools/call returned.  text is the content as text for the
 * model: text parts as they are, images, audio and resources described
 * (type, size, URI); cut at max_output bytes on a character boundary.
 */
struct mcp_result {
	char *text;             /* owned */
	bool is_error;          /* the server's isError */
	bool truncated;
	long ms;
};

void mcp_result_release(struct mcp_result *r);

/*
 * Calls the tool t (t->mcp set) with args_json (one JSON object's text),
 * waiting at most timeout_ms (t's server's timeout_ms wins when set).
 * 0 with *res filled when the server answered, isError included.  -1 with
 * err otherwise: AI_EX_INTERRUPT when cancelled (the run ends), AI_EX_OSERR
 * out of memory, any other code an error to tell the model (an error
 * answer, a timeout, a broken or dead server).
 */
int mcp_call(const struct tooldef *t, const char *args_json, long timeout_ms, size_t max_output,
	     struct mcp_result *res, struct ai_err *err);

/* Borrowed from s: its name, the protocol version agreed, where it was declared. */
const char *mcp_server_name(const struct mcp_server *s);
const char *mcp_server_version(const struct mcp_server *s);
const char *mcp_server_file(const struct mcp_server *s);

/* True when the server said its tool list changed since its tools were last listed. */
bool mcp_server_list_changed(const struct mcp_server *s);

/*
 * First reads what each stdio server wrote since its last answer, without
 * waiting: its requests are answered, its notifications taken, a stray
 * response dropped.  Then, for each server in m that said its tool list
 * changed since it was last listed: lists its tools again, as mcp_start
 * does (within its startup_timeout_ms), and puts them in ts in place of
 * its old ones, where they were, with a note naming each tool added,
 * changed or gone.  Approval does not loosen: a tool is free of it
 * (side_effects false) only when it was read-only at start and still
 * says readOnlyHint; a tool new mid-run needs allow, -y or y whatever its
 * annotations say.  *changed is set when ts changed.  A server whose listing
 * fails keeps its old tools, and the reason goes to the log as a note.  0,
 * or -1 with err only when interrupted (AI_EX_INTERRUPT) or out of memory
 * (AI_EX_OSERR).  No tool of ts may be running: pointers into ts->v die.
 */
int mcp_refresh(struct mcp *m, struct toolset *ts, bool *changed, struct ai_err *err);

/*
 * Stops every server (stdin closed, then SIGTERM, then SIGKILL to its
 * group: toolproc_stop), the last started first, and frees m, leaving it
 * MCP_INIT.  The tools in the toolset that point at them must not be
 * called after this.
 */
void mcp_stop_all(struct mcp *m);

#endif
