/*
 * mcp.c - the MCP client: a server as a long-lived child (toolproc), one
 * JSON-RPC request at a time, every wait bounded (mcp.h).
 */
#include "agent/mcp.h"

#include "clock.h"
#include "jsonval.h"
#include "net/http.h"
#include "net/sse.h"
#include "runcmd.h"
#include "utf8.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const mcp_versions[] = { "2025-06-18", "2025-03-26", "2024-11-05", NULL };

#define STDERR_LINE_MAX ((size_t)4096)
#define STDERR_LINES_MAX 100            /* logged per request: a chatty server floods no log */
#define READ_CHUNK ((size_t)65536)

struct mcp_server {
	const struct mcp_decl *d;       /* borrowed */
	struct toolproc proc;
	struct buf in;                  /* stdout read, not yet a whole line */
	size_t scanned;                 /* in's bytes known to hold no newline */
	bool skipping;                  /* discarding the rest of an over-long line */
	struct buf eline;               /* stderr, not yet a whole line */
	bool eskipping;
	int elines;                     /* stderr lines logged since the last request */
	bool eof;                       /* its stdout ended, or it was stopped */
	bool toolong;                   /* a line past MCP_LINE_MAX was dropped while writing */
	int64_t next_id;
	char version[16];
	bool list_changed;
	struct mcp_opts o;
	/* Streamable HTTP: each message a POST; the answers wait in queue. */
	bool http;
	char **hdrs;                    /* owned: headers_cmd's "Name: value" lines */
	size_t nhdrs;
	char **hdr_names;               /* owned, NULL-terminated: their names, hidden by -v */
	char session[256];              /* Mcp-Session-Id, or "" */
	json_object *queue;             /* owned array of messages not yet read */
	size_t qhead;
};

const char *mcp_server_name(const struct mcp_server *s) { return s->d->name; }
const char *mcp_server_version(const struct mcp_server *s) { return s->version; }
const char *mcp_server_file(const struct mcp_server *s) { return s->d->file; }
bool mcp_server_list_changed(const struct mcp_server *s) { return s->list_changed; }

static void slog(struct mcp_server *s, const char *kind, const char *text)
{
	if (s->o.log)
		s->o.log(s->d->name, kind, text, s->o.log_ud);
}

/* Fills err with "MCP server 'NAME': what" and code; returns -1. */
static AI_PRINTF(4, 5) int serr(struct mcp_server *s, int code, struct ai_err *err,
				const char *fmt, ...);
static int serr(struct mcp_server *s, int code, struct ai_err *err, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return ai_errf(err, code, "MCP server '%s': %s", s->d->name, what);
}

/* ---- reading ------------------------------------------------------------ */

/* Logs one stderr line, up to STDERR_LINES_MAX a request, then says the rest are not. */
static void log_stderr(struct mcp_server *s, const char *text)
{
	if (s->elines < STDERR_LINES_MAX)
		slog(s, "stderr", text);
	else if (s->elines == STDERR_LINES_MAX)
		slog(s, "note", "its further stderr lines until the next request are not logged");
	if (s->elines <= STDERR_LINES_MAX)
		s->elines++;
}

/* Hands each whole stderr line to the log; a line past STDERR_LINE_MAX is cut. */
static void take_stderr(struct mcp_server *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (!s->eskipping)
				log_stderr(s, s->eline.data ? s->eline.data : "");
			buf_reset(&s->eline);
			s->eskipping = false;
		} else if (!s->eskipping) {
			if (s->eline.len >= STDERR_LINE_MAX - 1) {
				log_stderr(s, s->eline.data);
				buf_reset(&s->eline);
				s->eskipping = true;
			} else {
				buf_addch(&s->eline, p[i]);
			}
		}
	}
}

static void read_stderr(struct mcp_server *s)
{
	char chunk[4096];

	for (int round = 0; round < 16 && s->proc.err >= 0; round++) {
		ssize_t r = read(s->proc.err, chunk, sizeof(chunk));

		if (r > 0) {
			take_stderr(s, chunk, (size_t)r);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* Its last line may have no newline: it is logged all the same. */
		if (s->eline.len && !s->eskipping)
			log_stderr(s, s->eline.data);
		buf_reset(&s->eline);
		close(s->proc.err);
		s->proc.err = -1;
	}
}

/* Reads what stdout has; a line past MCP_LINE_MAX is dropped (-1, *toolong). */
static int read_stdout(struct mcp_server *s, bool *toolong)
{
	char chunk[READ_CHUNK];

	for (int round = 0; round < 16; round++) {
		ssize_t r = read(s->proc.out, chunk, sizeof(chunk));
		const char *p = chunk;
		size_t n;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r <= 0) {
			s->eof = true;
			return 0;
		}
		n = (size_t)r;
		if (s->skipping) {
			const char *nl = memchr(p, '\n', n);

			if (!nl)
				continue;
			s->skipping = false;
			n -= (size_t)(nl + 1 - p);
			p = nl + 1;
		}
		if (s->in.len + n > MCP_LINE_MAX && !memchr(p, '\n', n)) {
			/* No line this long is worth holding: drop it, and the rest of it as it comes. */
			buf_reset(&s->in);
			s->scanned = 0;
			s->skipping = true;
			*toolong = true;
			return -1;
		}
		if (buf_add(&s->in, p, n))
			return -1;
		if (memchr(p, '\n', n))
			return 0;
	}
	return 0;
}

/*
 * The next message from the server, parsed, into *msg (owned), waiting
 * until deadline.  -1 with err when it cannot be had.
 */
static int next_message(struct mcp_server *s, long deadline, json_object **msg, struct ai_err *err)
{
	*msg = NULL;
	if (s->http) {
		if (s->queue && s->qhead < json_object_array_length(s->queue)) {
			*msg = json_object_get(json_object_array_get_idx(s->queue, s->qhead++));
			return 0;
		}
		return serr(s, AI_EX_UNAVAILABLE, err, "its HTTP answer held no response");
	}
	for (;;) {
		char *nl = s->in.len > s->scanned ? memchr(s->in.data + s->scanned, '\n',
							   s->in.len - s->scanned) : NULL;
		struct pollfd pfd[3];
		nfds_t np = 0;
		long now, wait;
		bool toolong = false;

		if (nl) {
			size_t len = (size_t)(nl - s->in.data), end = len;
			json_tokener *tok;
			json_object *o;
			bool ok;

			while (end > 0 && (s->in.data[end - 1] == '\r' || s->in.data[end - 1] == ' ' ||
					   s->in.data[end - 1] == '\t'))
				end--;
			if (end == 0) {
				buf_consume(&s->in, len + 1);
				s->scanned = 0;
				continue;
			}
			if (!(tok = json_tokener_new()))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			o = json_tokener_parse_ex(tok, s->in.data, (int)end);
			ok = o && json_tokener_get_error(tok) == json_tokener_success &&
			     json_tokener_get_parse_end(tok) == end &&
			     json_object_is_type(o, json_type_object);
			json_tokener_free(tok);
			if (!ok) {
				/* A banner or a stray print: noted, and the answer still awaited. */
				char note[STDERR_LINE_MAX];

				json_object_put(o);
				snprintf(note, sizeof(note), "skipped a line on its output that is not "
					 "a JSON-RPC message: %.*s", (int)(end < 200 ? end : 200), s->in.data);
				buf_consume(&s->in, len + 1);
				s->scanned = 0;
				slog(s, "note", note);
				continue;
			}
			buf_consume(&s->in, len + 1);
			s->scanned = 0;
			*msg = o;
			return 0;
		}
		s->scanned = s->in.len;
		if (s->toolong) {
			s->toolong = false;
			return serr(s, AI_EX_UNAVAILABLE, err,
				    "sent a message longer than %zu bytes", MCP_LINE_MAX);
		}
		if (s->eof) {
			read_stderr(s);
			return serr(s, AI_EX_UNAVAILABLE, err, "exited (its output ended)");
		}
		if (s->o.cancel && *s->o.cancel)
			return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
		now = (long)mono_ms();
		if (now >= deadline)
			return serr(s, AI_EX_TEMPFAIL, err, "no answer in time");
		wait = deadline - now;
		if (s->o.cancel && wait > 50)
			wait = 50;
		pfd[np++] = (struct pollfd){ s->proc.out, POLLIN, 0 };
		if (s->proc.err >= 0)
			pfd[np++] = (struct pollfd){ s->proc.err, POLLIN, 0 };
		if (poll(pfd, np, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			return ai_errf_errno(err, AI_EX_OSERR, "poll");
		}
		if (np > 1 && pfd[1].revents)
			read_stderr(s);
		if (pfd[0].revents && read_stdout(s, &toolong)) {
			if (toolong)
				return serr(s, AI_EX_UNAVAILABLE, err,
					    "sent a message longer than %zu bytes", MCP_LINE_MAX);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
}


/* ---- Streamable HTTP ---------------------------------------------------- */

#define HTTP_HEADER_MAX 32

/* Appends the JSON-RPC message text (an object, or a batch array) to the queue. */
static int enqueue(struct mcp_server *s, const char *text, size_t n, struct ai_err *err)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;
	bool ok;

	if (!tok)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)n);
	ok = o && json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (!ok || !(json_object_is_type(o, json_type_object) || json_object_is_type(o, json_type_array))) {
		json_object_put(o);
		return serr(s, AI_EX_UNAVAILABLE, err, "sent an answer that is not a JSON-RPC message");
	}
	if (!s->queue && !(s->queue = json_object_new_array())) {
		json_object_put(o);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (json_object_is_type(o, json_type_object))
		return jv_push(s->queue, o) ? ai_errf(err, AI_EX_OSERR, "out of memory") : 0;
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		json_object *m = json_object_array_get_idx(o, i);

		if (!json_object_is_type(m, json_type_object) || jv_push(s->queue, json_object_get(m))) {
			json_object_put(o);
			return serr(s, AI_EX_UNAVAILABLE, err, "sent a batch that is not JSON-RPC messages");
		}
	}
	json_object_put(o);
	return 0;
}

struct sse_ctx {
	struct mcp_server *s;
	struct ai_err *err;
};

static int on_event(const struct sse_event *ev, void *ud)
{
	struct sse_ctx *c = ud;

	if (!ev->data_len)
		return 0;
	return enqueue(c->s, ev->data, ev->data_len, c->err) ? -1 : 0;
}

/*
 * POSTs text (one message) and queues what the answer holds: nothing
 * (202), one JSON body, or the events of an SSE body.  method is "DELETE"
 * to end the session (text NULL).
 */
static int http_send(struct mcp_server *s, const char *method, const char *text, long deadline,
		     struct ai_err *err)
{
	const char *hdrs[HTTP_HEADER_MAX + 5];
	char sess[300], ver[64];
	struct http_opts ho;
	struct http_req req;
	struct http_resp resp;
	size_t n = 0;
	long left = deadline - (long)mono_ms();
	int rc = 0;

	if (left <= 0)
		return serr(s, AI_EX_TEMPFAIL, err, "no answer in time");
	hdrs[n++] = "Content-Type: application/json";
	hdrs[n++] = "Accept: application/json, text/event-stream";
	if (s->session[0]) {
		snprintf(sess, sizeof(sess), "Mcp-Session-Id: %s", s->session);
		hdrs[n++] = sess;
	}
	if (s->version[0]) {
		snprintf(ver, sizeof(ver), "MCP-Protocol-Version: %s", s->version);
		hdrs[n++] = ver;
	}
	for (size_t i = 0; i < s->nhdrs; i++)
		hdrs[n++] = s->hdrs[i];
	hdrs[n] = NULL;
	http_opts_init(&ho);
	ho.timeout_ms = left;
	ho.retries = 0;         /* a tools/call is not idempotent: never sent twice */
	ho.max_response = MCP_LINE_MAX;
	/* http.h only reads the flag; its pointer is not const for its other callers. */
	ho.interrupt = (volatile sig_atomic_t *)(uintptr_t)s->o.cancel;
	memset(&req, 0, sizeof(req));
	req.url = s->d->url;
	req.method = method;
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	req.headers = hdrs;
	req.capture = "mcp-session-id";
	req.redact = (const char *const *)s->hdr_names;
	http_resp_init(&resp);
	if (http_do(&ho, &req, &resp, err)) {
		http_resp_release(&resp);
		if (err->code == AI_EX_INTERRUPT)
			return -1;
		return serr(s, err->code == AI_EX_TEMPFAIL && (long)mono_ms() >= deadline ?
			    AI_EX_TEMPFAIL : AI_EX_UNAVAILABLE, err, "%s", err->msg);
	}
	if (resp.captured[0] && !s->session[0])
		snprintf(s->session, sizeof(s->session), "%s", resp.captured);
	if (resp.captured_bad) {
		/* Sent back cut or with other bytes, it would name another session, or none. */
		rc = serr(s, AI_EX_UNAVAILABLE, err, "sent an Mcp-Session-Id that is longer than %zu "
			  "bytes or not visible ASCII", sizeof(resp.captured) - 1);
	} else if (resp.status == 404 && s->session[0]) {
		rc = serr(s, AI_EX_UNAVAILABLE, err, "its session ended (HTTP 404)");
	} else if (resp.status < 200 || resp.status > 299) {
		rc = serr(s, AI_EX_UNAVAILABLE, err, "answered HTTP %ld", resp.status);
	} else if (resp.status == 202 || resp.status == 204 || !resp.body.len || !text) {
		/* Nothing to read: a notification or a response was taken. */
	} else if (!strncasecmp(resp.content_type, "text/event-stream", 17)) {
		struct sse_parser p;
		struct sse_ctx c = { s, err };

		sse_init(&p, MCP_LINE_MAX, MCP_LINE_MAX);
		if (sse_feed(&p, resp.body.data, resp.body.len, on_event, &c, err))
			rc = -1;
		else if (sse_feed(&p, "\n\n", 2, on_event, &c, err))
			rc = -1;
		sse_release(&p);
	} else {
		rc = enqueue(s, resp.body.data, resp.body.len, err);
	}
	http_resp_release(&resp);
	return rc;
}

/* True when line (n bytes) is "Name: value", Name made of RFC 9110 token characters. */
static bool header_line(const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);

	if (!colon || colon == line)
		return false;
	for (const char *p = line; p < colon; p++)
		if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
			return false;
	return true;
}

/*
 * headers_cmd through runcmd_shell (stdin /dev/null, its own process
 * group, killed at deadline or on cancel); its own failures name the server.
 */
static int run_shell(struct mcp_server *s, const char *cmd, long deadline, struct buf *out,
		     int *status, struct ai_err *err)
{
	if (!runcmd_shell("headers_cmd", cmd, deadline, s->o.cancel, 0, out, status, err))
		return 0;
	if (err->code == AI_EX_TEMPFAIL || err->code == AI_EX_CONFIG)
		return serr(s, err->code, err, "%s", err->msg);
	return -1;
}

/*
 * headers_cmd through the shell, as api_key_cmd is (it is the user's own
 * configuration), with an empty stdin, until deadline (run_shell).  Its output is one line, a header or a bare token sent
 * as "Authorization: Bearer", or lines that are all "Name: value": any
 * other line (a stray message, a second token) is refused rather than
 * sent.  Lines are never quoted in the error: they may be secrets.
 */
static int run_headers_cmd(struct mcp_server *s, long deadline, struct ai_err *err)
{
	struct buf out;
	size_t nlines = 0, bad = 0;
	int st = -1;

	buf_init(&out, HTTP_HEADER_MAX * 4096);
	if (run_shell(s, s->d->headers_cmd, deadline, &out, &st, err)) {
		buf_release(&out);
		return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		buf_release(&out);
		return serr(s, AI_EX_CONFIG, err, "headers_cmd failed (status %d): check it in '%s'",
			    !WIFEXITED(st) ? -1 : WEXITSTATUS(st), s->d->file);
	}
	if (!(s->hdrs = calloc(HTTP_HEADER_MAX, sizeof(*s->hdrs))) ||
	    !(s->hdr_names = calloc(HTTP_HEADER_MAX + 1, sizeof(*s->hdr_names)))) {
		buf_release(&out);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	/* Twice through its lines: to count those not blank, then to take them. */
	for (int pass = 0; pass < 2 && !bad; pass++) {
		for (size_t off = 0, no = 1; off < out.len && !bad; no++) {
			char *line = out.data + off, *nl = memchr(line, '\n', out.len - off), *hdr;
			size_t len = nl ? (size_t)(nl - line) : out.len - off;
			struct buf b;

			off += len + (nl != NULL);
			while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
				       line[len - 1] == '\t'))
				len--;
			if (!len)
				continue;
			if (!pass) {
				nlines++;
				continue;
			}
			for (size_t i = 0; i < len && !bad; i++)
				if ((unsigned char)line[i] < 0x20 ? line[i] != '\t' : line[i] == 0x7f)
					bad = no;
			if (bad || (nlines > 1 && !header_line(line, len)) ||
			    s->nhdrs == HTTP_HEADER_MAX) {
				bad = no;
				break;
			}
			buf_init(&b, 0);
			if (header_line(line, len) ? buf_add(&b, line, len) :
			    buf_addf(&b, "Authorization: Bearer %.*s", (int)len, line)) {
				buf_release(&b);
				buf_release(&out);
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			}
			hdr = s->hdrs[s->nhdrs] = buf_detach(&b, NULL);
			/* Every header it gives may be a secret: -v shows none of their values. */
			s->hdr_names[s->nhdrs++] = strndup(hdr, strcspn(hdr, ":"));
			if (!s->hdr_names[s->nhdrs - 1]) {
				buf_release(&out);
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			}
		}
	}
	buf_release(&out);
	if (bad)
		return serr(s, AI_EX_CONFIG, err, "headers_cmd printed line %zu, which is not "
			    "\"Name: value\" (only a single line may be a bare token), or more than %d "
			    "headers: check it in '%s'", bad, HTTP_HEADER_MAX, s->d->file);
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

/* toolproc_write's drain: reads what the server says while it is written to. */
static int drain(void *ud)
{
	struct mcp_server *s = ud;
	bool toolong = false;

	read_stderr(s);
	if (!s->eof && read_stdout(s, &toolong) && toolong)
		s->toolong = true;
	return s->eof ? -1 : 0;
}

/* Sends msg (borrowed) as one line. */
static int send_msg(struct mcp_server *s, json_object *msg, long deadline, struct ai_err *err)
{
	const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	struct buf line;
	struct ai_err e;
	int rc;

	if (!text)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (s->http) {
		/* What the last answer held and was read is done with. */
		if (s->queue && s->qhead >= json_object_array_length(s->queue)) {
			json_object_put(s->queue);
			s->queue = NULL;
			s->qhead = 0;
		}
		return http_send(s, "POST", text, deadline, err);
	}
	buf_init(&line, 0);
	if (buf_addstr(&line, text) || buf_addch(&line, '\n')) {
		buf_release(&line);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	ai_err_clear(&e);
	rc = toolproc_write(&s->proc, line.data, line.len, deadline, s->o.cancel, drain, s, &e);
	buf_release(&line);
	if (!rc)
		return 0;
	/*
	 * Part of the line may be in its input: the next message would be glued
	 * to it.  Nothing said to it from here on could be trusted: it is stopped.
	 */
	read_stderr(s);
	toolproc_stop(&s->proc, MCP_STOP_GRACE_MS);
	s->eof = true;
	if (e.code == AI_EX_INTERRUPT)
		return ai_errf(err, e.code, "interrupted");
	return serr(s, e.code, err, e.code == AI_EX_TEMPFAIL ? "%s; it was stopped" : "%s", e.msg);
}

/* A new {"jsonrpc":"2.0"} with method (may be NULL) and params (taken; may be NULL). */
static json_object *new_msg(const char *method, json_object *params)
{
	json_object *m = json_object_new_object();

	if (!m || jv_add(m, "jsonrpc", json_object_new_string("2.0")) ||
	    (method && jv_add(m, "method", json_object_new_string(method)))) {
		json_object_put(m);
		json_object_put(params);
		return NULL;
	}
	if (params && jv_add(m, "params", params)) {
		json_object_put(m);
		return NULL;
	}
	return m;
}

static int notify(struct mcp_server *s, const char *method, json_object *params, long deadline,
		  struct ai_err *err)
{
	json_object *m = new_msg(method, params);
	int rc;

	if (!m)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	rc = send_msg(s, m, deadline, err);
	json_object_put(m);
	return rc;
}

/* Tells the server that request id is given up; errors are ignored: it may be gone. */
static void cancel_request(struct mcp_server *s, int64_t id, const char *reason)
{
	json_object *p = json_object_new_object();
	struct ai_err e;

	if (!p || jv_add(p, "requestId", json_object_new_int64(id)) ||
	    jv_add(p, "reason", json_object_new_string(reason))) {
		json_object_put(p);
		return;
	}
	ai_err_clear(&e);
	/* Sent even after Ctrl-C: a short deadline of its own, not the cancel flag. */
	{
		const volatile sig_atomic_t *c = s->o.cancel;

		s->o.cancel = NULL;
		notify(s, "notifications/cancelled", p, (long)mono_ms() + 200, &e);
		s->o.cancel = c;
	}
}

/* Answers a request the server made: ping with {}, anything else "method not found". */
static int answer_request(struct mcp_server *s, json_object *msg, long deadline, struct ai_err *err)
{
	const char *method = jv_str(msg, "method");
	json_object *id, *m = new_msg(NULL, NULL);
	int rc;

	if (!m || !json_object_object_get_ex(msg, "id", &id) ||
	    jv_add(m, "id", json_object_get(id))) {
		json_object_put(m);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (method && !strcmp(method, "ping")) {
		rc = jv_add(m, "result", json_object_new_object());
	} else {
		json_object *e = json_object_new_object();

		rc = !e || jv_add(e, "code", json_object_new_int(-32601)) ||
		     jv_add(e, "message", json_object_new_string("method not found"));
		rc = rc ? (json_object_put(e), -1) : jv_add(m, "error", e);
	}
	if (rc) {
		json_object_put(m);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	rc = send_msg(s, m, deadline, err);
	json_object_put(m);
	return rc;
}

/* A notification from the server: the tool list changed, a log message; the rest ignored. */
static void take_notification(struct mcp_server *s, json_object *msg)
{
	const char *method = jv_str(msg, "method");
	json_object *params = NULL, *data;

	json_object_object_get_ex(msg, "params", &params);
	if (!strcmp(method, "notifications/tools/list_changed")) {
		s->list_changed = true;
		slog(s, "note", "its tool list changed; the tools offered stay those listed at start");
	} else if (!strcmp(method, "notifications/message") && params) {
		const char *level = jv_str(params, "level");
		struct buf b;

		buf_init(&b, STDERR_LINE_MAX);
		if (json_object_object_get_ex(params, "data", &data))
			buf_addf(&b, "%s: %.3000s", level ? level : "log",
				 json_object_is_type(data, json_type_string) ? json_object_get_string(data)
				 : json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
		if (b.data)
			slog(s, "log", b.data);
		buf_release(&b);
	}
}

/*
 * One request: sends method with params (taken), waits for the answer
 * with its id until timeout_ms from now, and returns its "result" object
 * in *result (owned).  A request given up is cancelled (cancellable: not
 * for initialize, which must not be).
 */
static int request(struct mcp_server *s, const char *method, json_object *params, long timeout_ms,
		   bool cancellable, json_object **result, struct ai_err *err)
{
	int64_t id = ++s->next_id;
	long deadline = (long)mono_ms() + timeout_ms;
	json_object *m = new_msg(method, params), *msg = NULL, *v;
	int rc;

	*result = NULL;
	s->elines = 0;
	if (!m || jv_add(m, "id", json_object_new_int64(id))) {
		json_object_put(m);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	/* Over HTTP the answer comes with the POST: its failure is the wait's. */
	rc = send_msg(s, m, deadline, err);
	json_object_put(m);
	if (rc && !s->http)
		return -1;
	for (;;) {
		bool has_id;

		json_object_put(msg);
		msg = NULL;
		if (rc || next_message(s, deadline, &msg, err)) {
			if (cancellable && (err->code == AI_EX_TEMPFAIL || err->code == AI_EX_INTERRUPT))
				cancel_request(s, id, err->code == AI_EX_TEMPFAIL ? "timeout" :
					       "interrupted by the user");
			if (err->code == AI_EX_TEMPFAIL)
				serr(s, AI_EX_TEMPFAIL, err, "no answer to %s within %ld ms", method,
				     timeout_ms);
			return -1;
		}
		has_id = json_object_object_get_ex(msg, "id", &v);
		if (jv_str(msg, "method")) {
			if (has_id) {
				if (answer_request(s, msg, deadline, err)) {
					json_object_put(msg);
					return -1;
				}
			} else {
				take_notification(s, msg);
			}
			continue;
		}
		if (!has_id || !json_object_is_type(v, json_type_int)) {
			json_object_put(msg);
			return serr(s, AI_EX_UNAVAILABLE, err, "sent an answer without a numeric id");
		}
		if (json_object_get_int64(v) != id) {
			int64_t got = json_object_get_int64(v);

			/* A late answer to a request given up, or a repeat: nothing waits for it. */
			if (got > 0 && got < id)
				continue;
			json_object_put(msg);
			return serr(s, AI_EX_UNAVAILABLE, err, "answered id %lld, which was never asked "
				    "(waiting for %lld)", (long long)got, (long long)id);
		}
		break;
	}
	if (json_object_object_get_ex(msg, "error", &v)) {
		const char *what = jv_str(v, "message");
		char text[300];

		snprintf(text, sizeof(text), "%s", what ? what : json_object_to_json_string(v));
		json_object_put(msg);
		return serr(s, AI_EX_UNAVAILABLE, err, "%s failed: %s", method, text);
	}
	if (!json_object_object_get_ex(msg, "result", &v) || !json_object_is_type(v, json_type_object)) {
		json_object_put(msg);
		return serr(s, AI_EX_UNAVAILABLE, err, "answered %s without a result object", method);
	}
	*result = json_object_get(v);
	json_object_put(msg);
	return 0;
}

/* ---- start -------------------------------------------------------------- */

static int initialize(struct mcp_server *s, long deadline, struct ai_err *err)
{
	json_object *p = json_object_new_object(), *info = json_object_new_object(), *res;
	const char *v;
	long left = deadline - (long)mono_ms();

	if (!p || !info || jv_add(info, "name", json_object_new_string("ai-agent")) ||
	    jv_add(info, "version", json_object_new_string(AI_VERSION)) ||
	    jv_add(p, "protocolVersion", json_object_new_string(mcp_versions[0])) ||
	    jv_add(p, "capabilities", json_object_new_object())) {
		json_object_put(p);
		json_object_put(info);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (jv_add(p, "clientInfo", info)) {
		json_object_put(p);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (request(s, "initialize", p, left > 0 ? left : 1, false, &res, err))
		return -1;
	v = jv_str(res, "protocolVersion");
	for (size_t i = 0; v && mcp_versions[i]; i++) {
		if (!strcmp(v, mcp_versions[i])) {
			snprintf(s->version, sizeof(s->version), "%s", v);
			break;
		}
	}
	if (!s->version[0]) {
		char seen[40];

		snprintf(seen, sizeof(seen), "%s", v ? v : "(none)");
		for (char *c = seen; *c; c++)
			if (!isprint((unsigned char)*c))
				*c = '?';
		json_object_put(res);
		return serr(s, AI_EX_CONFIG, err, "speaks MCP protocol version '%s'; ai-agent speaks "
			    "%s, %s and %s", seen, mcp_versions[0], mcp_versions[1], mcp_versions[2]);
	}
	json_object_put(res);
	return notify(s, "notifications/initialized", NULL, deadline, err);
}

/* The model's name for the server's tool: SERVER_tool made to fit ^[a-zA-Z0-9_-]{1,64}$. */
static char *local_name(const char *server, const char *tool)
{
	struct buf b;
	char *s;

	buf_init(&b, 0);
	if (buf_addf(&b, "%s_%s", server, tool))
		return (buf_release(&b), NULL);
	s = buf_detach(&b, NULL);
	for (char *c = s; *c; c++)
		if (!(isascii((unsigned char)*c) && (isalnum((unsigned char)*c) || *c == '_' || *c == '-')))
			*c = '_';
	if (strlen(s) > 64)
		s[64] = '\0';
	return s;
}

static bool in_list(char *const *list, const char *s)
{
	for (size_t i = 0; list && list[i]; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* Fills t from the tools/list entry o; 0, 1 to skip it (no usable name), -1 on ENOMEM. */
static int take_tool(struct mcp_server *s, json_object *o, struct tooldef *t)
{
	const char *name = jv_str(o, "name"), *desc = jv_str(o, "description");
	json_object *schema = NULL, *ann;

	memset(t, 0, sizeof(*t));
	if (!name || !*name || strlen(name) > 256)
		return 1;
	t->name = local_name(s->d->name, name);
	t->remote = strdup(name);
	t->description = strdup(desc ? desc : "");
	if (!t->name || !t->remote || !t->description)
		return -1;
	if (json_object_object_get_ex(o, "inputSchema", &schema) &&
	    json_object_is_type(schema, json_type_object)) {
		t->parameters = json_object_get(schema);
	} else {
		t->parameters = json_tokener_parse("{\"type\":\"object\",\"properties\":{}}");
		if (!t->parameters)
			return -1;
	}
	t->side_effects = true;
	if (json_object_object_get_ex(o, "annotations", &ann)) {
		json_object *ro;

		if (json_object_object_get_ex(ann, "readOnlyHint", &ro) &&
		    json_object_is_type(ro, json_type_boolean) && json_object_get_boolean(ro))
			t->side_effects = false;
	}
	t->allowed = in_list(s->d->allow, name);
	t->timeout_ms = s->d->timeout_ms;
	t->mcp = s;
	return 0;
}

static bool name_taken(const struct toolset *ts, const struct tooldef *v, size_t n, const char *name)
{
	if (toolset_find(ts, name))
		return true;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, name))
			return true;
	return false;
}

/* Lists the tools, page by page, into *v (owned array of *n). */
static int list_tools(struct mcp_server *s, const struct toolset *ts, long deadline,
		      struct tooldef **out, size_t *nout, struct ai_err *err)
{
	struct tooldef *v = NULL;
	size_t n = 0;
	char *cursor = NULL;
	int pages = 0;

	for (;;) {
		json_object *p = json_object_new_object(), *res, *tools;
		long left = deadline - (long)mono_ms();

		if (!p || (cursor && jv_add(p, "cursor", json_object_new_string(cursor)))) {
			json_object_put(p);
			goto oom;
		}
		free(cursor);
		cursor = NULL;
		if (request(s, "tools/list", p, left > 0 ? left : 1, true, &res, err))
			goto fail;
		if (!json_object_object_get_ex(res, "tools", &tools) ||
		    !json_object_is_type(tools, json_type_array)) {
			json_object_put(res);
			serr(s, AI_EX_UNAVAILABLE, err, "answered tools/list without a tools array");
			goto fail;
		}
		for (size_t i = 0; i < json_object_array_length(tools); i++) {
			struct tooldef *nv;
			int r;

			if (n == MCP_MAX_TOOLS) {
				json_object_put(res);
				serr(s, AI_EX_UNAVAILABLE, err, "offers more than %d tools", MCP_MAX_TOOLS);
				goto fail;
			}
			if (!(nv = realloc(v, (n + 1) * sizeof(*v)))) {
				json_object_put(res);
				goto oom;
			}
			v = nv;
			r = take_tool(s, json_object_array_get_idx(tools, i), &v[n]);
			if (r < 0) {
				tooldef_release(&v[n]);
				json_object_put(res);
				goto oom;
			}
			if (r > 0) {
				tooldef_release(&v[n]);
				slog(s, "note", "a tool without a usable name was left out");
				continue;
			}
			if (name_taken(ts, v, n, v[n].name)) {
				/* Its other tools are still worth having: this one is left out. */
				char note[300];

				snprintf(note, sizeof(note), "its tool '%.100s' would be offered as '%s', "
					 "which another tool already is: left out", v[n].remote, v[n].name);
				slog(s, "note", note);
				tooldef_release(&v[n]);
				continue;
			}
			n++;
		}
		if (jv_str(res, "nextCursor") && *jv_str(res, "nextCursor"))
			cursor = strdup(jv_str(res, "nextCursor"));
		json_object_put(res);
		if (!cursor)
			break;
		if (++pages == MCP_MAX_PAGES) {
			serr(s, AI_EX_UNAVAILABLE, err, "pages tools/list past %d pages", MCP_MAX_PAGES);
			goto fail;
		}
	}
	/* A name in "allow" that it does not offer is likely a typo: said, not fatal. */
	for (char **a = s->d->allow; a && *a; a++) {
		size_t i = 0;

		while (i < n && strcmp(v[i].remote, *a))
			i++;
		if (i == n) {
			char note[200];

			snprintf(note, sizeof(note), "\"allow\" names '%.100s', a tool it does not offer",
				 *a);
			slog(s, "note", note);
		}
	}
	*out = v;
	*nout = n;
	return 0;
oom:
	ai_errf(err, AI_EX_OSERR, "out of memory");
fail:
	free(cursor);
	for (size_t i = 0; i < n; i++)
		tooldef_release(&v[i]);
	free(v);
	return -1;
}

static void server_free(struct mcp_server *s)
{
	if (!s)
		return;
	if (s->http && s->session[0]) {
		struct ai_err e;

		/* The session ends with us; a server that does not allow it (405) is fine. */
		ai_err_clear(&e);
		s->o.cancel = NULL;
		http_send(s, "DELETE", NULL, (long)mono_ms() + 2000, &e);
	}
	for (size_t i = 0; i < s->nhdrs; i++) {
		free(s->hdrs[i]);
		free(s->hdr_names ? s->hdr_names[i] : NULL);
	}
	free(s->hdrs);
	free(s->hdr_names);
	json_object_put(s->queue);
	toolproc_stop(&s->proc, MCP_STOP_GRACE_MS);
	buf_release(&s->in);
	buf_release(&s->eline);
	free(s);
}

int mcp_start(struct mcp *m, const struct mcp_decl *d, const struct mcp_opts *o,
	      struct toolset *ts, struct ai_err *err)
{
	struct mcp_server *s, **nv;
	struct tooldef *tools = NULL, *tv;
	size_t n = 0;
	long deadline = (long)mono_ms() + (d->startup_timeout_ms > 0 ? d->startup_timeout_ms :
					     MCP_STARTUP_TIMEOUT_MS);

	if (!(nv = realloc(m->v, (m->n + 1) * sizeof(*nv))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	m->v = nv;
	if (!(s = calloc(1, sizeof(*s))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	s->d = d;
	if (o)
		s->o = *o;
	buf_init(&s->in, MCP_LINE_MAX + READ_CHUNK);
	buf_init(&s->eline, STDERR_LINE_MAX + 1);
	s->proc.pid = 0;
	s->proc.in = s->proc.out = s->proc.err = s->proc.pidfd = -1;
	if (d->url) {
		s->http = true;
		if (d->headers_cmd && run_headers_cmd(s, deadline, err))
			goto fail;
	} else if (toolproc_start(&s->proc, &d->cmd, NULL, err)) {
		/* No memory limit: a server is a runtime (node, python) that reserves far more
		 * address space than it uses, and RLIMIT_AS would stop it at start. */
		struct ai_err e = *err;

		ai_errf(err, e.code, "MCP server '%s': %s", d->name, e.msg);
		goto fail;
	}
	if (initialize(s, deadline, err))
		goto fail;
	if (list_tools(s, ts, deadline, &tools, &n, err))
		goto fail;
	if (n) {
		if (!(tv = realloc(ts->v, (ts->n + n) * sizeof(*tv)))) {
			for (size_t i = 0; i < n; i++)
				tooldef_release(&tools[i]);
			free(tools);
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto fail;
		}
		ts->v = tv;
		memcpy(ts->v + ts->n, tools, n * sizeof(*tools));
		ts->n += n;
	}
	free(tools);
	m->v[m->n++] = s;
	{
		char note[96];

		snprintf(note, sizeof(note), "started: protocol %s, %zu tools", s->version, n);
		slog(s, "note", note);
	}
	return 0;
fail:
	if (err->code == AI_EX_TEMPFAIL)
		ai_errf(err, AI_EX_TEMPFAIL, "MCP server '%s' did not start within %ld ms "
			"(startup_timeout_ms)", d->name,
			d->startup_timeout_ms > 0 ? d->startup_timeout_ms : MCP_STARTUP_TIMEOUT_MS);
	server_free(s);
	return -1;
}

void mcp_stop_all(struct mcp *m)
{
	while (m->n > 0)
		server_free(m->v[--m->n]);
	free(m->v);
	m->v = NULL;
}

/* ---- calls -------------------------------------------------------------- */

void mcp_result_release(struct mcp_result *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* The size of what base64 text b64 decodes to. */
static size_t b64_size(const char *b64)
{
	size_t n = b64 ? strlen(b64) : 0, pad = 0;

	while (n > pad && pad < 2 && b64[n - 1 - pad] == '=')
		pad++;
	return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) - (n % 4 ? 0 : pad);
}

/* Appends one content item to b as text for the model. */
static int add_content(struct buf *b, json_object *c)
{
	const char *type = jv_str(c, "type");
	json_object *r;

	if (b->len && buf_addch(b, '\n'))
		return -1;
	if (!type)
		return buf_addstr(b, "[content without a type]");
	if (!strcmp(type, "text"))
		return buf_addstr(b, jv_str(c, "text") ? jv_str(c, "text") : "");
	if (!strcmp(type, "image") || !strcmp(type, "audio"))
		return buf_addf(b, "[%s: %.100s, %zu bytes, not shown]", type,
				jv_str(c, "mimeType") ? jv_str(c, "mimeType") : "unknown type",
				b64_size(jv_str(c, "data")));
	if (!strcmp(type, "resource_link"))
		return buf_addf(b, "[resource link: %.500s%s%.100s]",
				jv_str(c, "uri") ? jv_str(c, "uri") : "",
				jv_str(c, "mimeType") ? ", " : "",
				jv_str(c, "mimeType") ? jv_str(c, "mimeType") : "");
	if (!strcmp(type, "resource") && json_object_object_get_ex(c, "resource", &r)) {
		const char *text = jv_str(r, "text");

		if (buf_addf(b, "[resource: %.500s, %.100s, %zu bytes]",
			     jv_str(r, "uri") ? jv_str(r, "uri") : "",
			     jv_str(r, "mimeType") ? jv_str(r, "mimeType") : "unknown type",
			     text ? strlen(text) : b64_size(jv_str(r, "blob"))))
			return -1;
		return text ? buf_addch(b, '\n') || buf_addstr(b, text) : 0;
	}
	return buf_addf(b, "[%.40s content, not shown]", type);
}

int mcp_call(const struct tooldef *t, const char *args_json, long timeout_ms, size_t max_output,
	     struct mcp_result *res, struct ai_err *err)
{
	struct mcp_server *s = t->mcp;
	json_object *p = json_object_new_object(), *args, *out = NULL, *content, *v;
	long t0 = (long)mono_ms();
	struct buf b;
	size_t n;

	memset(res, 0, sizeof(*res));
	if (!p)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	/*
	 * Alive while its output is open, not while the child started is: a
	 * launcher (a shell, npx) may fork the server and exit.
	 */
	if (!s->http && s->eof) {
		json_object_put(p);
		return serr(s, AI_EX_UNAVAILABLE, err, "is no longer running");
	}
	if (!(args = json_tokener_parse(args_json && *args_json ? args_json : "{}"))) {
		json_object_put(p);
		return ai_errf(err, AI_EX_DATAERR, "its arguments are not JSON");
	}
	if (jv_add(p, "name", json_object_new_string(t->remote))) {
		json_object_put(args);
		json_object_put(p);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (jv_add(p, "arguments", args)) {     /* takes args, even on failure */
		json_object_put(p);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (t->timeout_ms > 0)
		timeout_ms = t->timeout_ms;
	if (timeout_ms <= 0)
		timeout_ms = TOOLRUN_TIMEOUT_MS;
	if (request(s, "tools/call", p, timeout_ms, true, &out, err))
		return -1;
	res->ms = (long)mono_ms() - t0;
	/* Only true itself: json_object_get_boolean would call the string "false" true. */
	res->is_error = json_object_object_get_ex(out, "isError", &v) &&
			json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
	buf_init(&b, 0);
	if (json_object_object_get_ex(out, "content", &content) &&
	    json_object_is_type(content, json_type_array) && json_object_array_length(content)) {
		for (size_t i = 0; i < json_object_array_length(content); i++)
			if (add_content(&b, json_object_array_get_idx(content, i)))
				goto oom;
	} else if (json_object_object_get_ex(out, "structuredContent", &v)) {
		if (buf_addstr(&b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)))
			goto oom;
	}
	json_object_put(out);
	if (!max_output)
		max_output = TOOLRUN_MAX_OUTPUT;
	n = b.len;
	if (n > max_output) {
		size_t keep = utf8_valid_prefix(b.data, max_output);

		n = keep < max_output ? keep : utf8_cut(b.data, max_output);
		res->truncated = true;
	}
	res->text = buf_detach(&b, NULL);
	if (!res->text)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	res->text[n] = '\0';
	return 0;
oom:
	json_object_put(out);
	buf_release(&b);
	return ai_errf(err, AI_EX_OSERR, "out of memory");
}
