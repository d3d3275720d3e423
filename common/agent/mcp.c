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
	int64_t awaited;                /* the id of the request waiting, 0 when none */
	/* Streamable HTTP: each message a POST, its answer read as it arrives. */
	bool http;
	char **hdrs;                    /* owned: headers_cmd's "Name: value" lines */
	size_t nhdrs;
	char **hdr_names;               /* owned, NULL-terminated: their names, hidden by -v */
	char session[256];              /* Mcp-Session-Id, or "" */
	json_object *answer;            /* owned: the response to awaited, once a POST's answer held it */
	bool posting_request;           /* the next POST is awaited's request: its answer is read */
	bool reading;                   /* a POST's answer is being read: what is sent is queued */
	char **outq;                    /* owned: messages queued while reading, POSTed after */
	size_t noutq;
	/* Approval: the remote names of its tools that were read-only when it started. */
	char **ro_start;                /* owned, NULL-terminated, or NULL */
	bool started;                   /* its tools were listed once */
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
 * The next message from a stdio server, parsed, into *msg (owned), waiting
 * until deadline.  -1 with err when it cannot be had.  (Over HTTP the
 * messages come with the answer to each POST: http_send.)
 */
static int next_message(struct mcp_server *s, long deadline, json_object **msg, struct ai_err *err)
{
	*msg = NULL;
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
#define HTTP_STEP_MS 20L                /* http_send looks at its queue this often */

static int dispatch(struct mcp_server *s, json_object *msg, long deadline, struct ai_err *err);

/* One POST of http_send's: its headers, request and response. */
struct http_post {
	const char *hdrs[HTTP_HEADER_MAX + 5];
	char sess[300], ver[64];
	char *text;                     /* owned: a queued reply's text, or NULL */
	struct http_req req;
	struct http_resp resp;
	bool done;                      /* its transfer is over: rc and err */
	int rc;
	struct ai_err err;
	struct http_post *next;
};

/* The answer to one POST, read as it arrives (http_send). */
struct http_answer {
	struct mcp_server *s;
	long deadline;
	bool read;                      /* a request's answer: its messages are dispatched */
	bool stopped;                   /* on_body ended the transfer */
	struct http_post post;
	struct sse_parser sse;
	struct buf body;                /* a JSON answer, whole: at most MCP_LINE_MAX */
	struct ai_err err;              /* why on_body stopped it: code 0 when nothing went wrong */
};

/* Sets p up to send text (NULL: none) with method and the session's headers as they are now. */
static void post_init(struct mcp_server *s, struct http_post *p, const char *method, const char *text)
{
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->hdrs[n++] = "Content-Type: application/json";
	p->hdrs[n++] = "Accept: application/json, text/event-stream";
	if (s->session[0]) {
		snprintf(p->sess, sizeof(p->sess), "Mcp-Session-Id: %s", s->session);
		p->hdrs[n++] = p->sess;
	}
	if (s->version[0]) {
		snprintf(p->ver, sizeof(p->ver), "MCP-Protocol-Version: %s", s->version);
		p->hdrs[n++] = p->ver;
	}
	for (size_t i = 0; i < s->nhdrs; i++)
		p->hdrs[n++] = s->hdrs[i];
	p->hdrs[n] = NULL;
	http_resp_init(&p->resp);
	p->req.url = s->d->url;
	p->req.method = method;
	p->req.body = text;
	p->req.body_len = text ? strlen(text) : 0;
	p->req.headers = p->hdrs;
	p->req.capture = "mcp-session-id";
	p->req.redact = (const char *const *)s->hdr_names;
}

/* http_pool's done: the transfer of one POST is over. */
static void post_done(int rc, struct http_resp *resp, struct ai_err *e, void *ud)
{
	struct http_post *p = ud;

	(void)resp;
	p->done = true;
	p->rc = rc;
	if (rc)
		p->err = *e;
}

/*
 * Dispatches the JSON-RPC message text (an object, or a batch array), all
 * of it: a batch's messages after the response awaited too.  1 when the
 * response awaited is in (s->answer; a repeat of it is ignored), 0 when
 * it is not, -1 with a->err.
 */
static int take_text(struct http_answer *a, const char *text, size_t n)
{
	struct mcp_server *s = a->s;
	json_tokener *tok = json_tokener_new();
	json_object *o;
	int rc = 0;
	bool ok;

	if (!tok)
		return ai_errf(&a->err, AI_EX_OSERR, "out of memory");
	o = json_tokener_parse_ex(tok, text, (int)n);
	ok = o && json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (!ok || !(json_object_is_type(o, json_type_object) || json_object_is_type(o, json_type_array))) {
		json_object_put(o);
		return serr(s, AI_EX_UNAVAILABLE, &a->err, "sent an answer that is not a JSON-RPC message");
	}
	for (size_t i = 0; rc >= 0 && i < (json_object_is_type(o, json_type_array) ?
					   json_object_array_length(o) : 1); i++) {
		json_object *m = json_object_is_type(o, json_type_array) ?
				 json_object_array_get_idx(o, i) : o;

		if (!json_object_is_type(m, json_type_object))
			rc = serr(s, AI_EX_UNAVAILABLE, &a->err, "sent a batch that is not JSON-RPC messages");
		else if ((rc = dispatch(s, m, a->deadline, &a->err)) > 0 && !s->answer)
			s->answer = json_object_get(m);
	}
	json_object_put(o);
	return rc < 0 ? -1 : s->answer != NULL;
}

/*
 * sse_feed's callback.  Once the answer is in, the rest of the piece
 * received is still dispatched (a list_changed or a ping sent after it);
 * a message there that breaks the protocol is only noted, since the call
 * has its answer, and ends the reading.
 */
static int on_event(const struct sse_event *ev, void *ud)
{
	struct http_answer *a = ud;

	if (!ev->data_len)
		return 0;
	if (take_text(a, ev->data, ev->data_len) >= 0)
		return 0;
	if (a->s->answer && a->err.code != AI_EX_OSERR) {
		slog(a->s, "note", a->err.msg);
		ai_err_clear(&a->err);
	}
	return -1;
}

/*
 * http.h's on_data: a piece of a 2xx body.  An SSE stream is dispatched
 * event by event as it comes, and ended (non-zero) at the end of the
 * piece in which the awaited response came: a server may keep it open
 * long after (Streamable HTTP allows it), and waiting for its end would
 * wait out the deadline.  A JSON body is kept whole, up to MCP_LINE_MAX.
 * The answer to a notification or a response is not read at all (202 is
 * all it should be).  Nothing here calls libcurl: a reply to the server
 * (a pong) is queued (s->outq) and POSTed by http_send between steps.
 */
static int on_body(const char *p, size_t n, void *ud)
{
	struct http_answer *a = ud;
	struct mcp_server *s = a->s;

	/* A ping on the stream of initialize's answer is answered within the session. */
	if (a->post.resp.captured[0] && !a->post.resp.captured_bad && !s->session[0])
		snprintf(s->session, sizeof(s->session), "%s", a->post.resp.captured);
	if (!a->read) {
		a->stopped = true;
		return 1;
	}
	if (!strncasecmp(a->post.resp.content_type, "text/event-stream", 17)) {
		if (!sse_feed(&a->sse, p, n, on_event, a, &a->err)) {
			if (!s->answer)
				return 0;
		} else if (s->answer && a->err.code && a->err.code != AI_EX_OSERR) {
			/* What came after the answer cannot undo it. */
			slog(s, "note", a->err.code == AI_EX_DATAERR ? "sent a message longer than "
			     "16 MiB after the answer: not read" : a->err.msg);
			ai_err_clear(&a->err);
		} else if (a->err.code == AI_EX_DATAERR) {
			serr(s, AI_EX_UNAVAILABLE, &a->err, "sent a message longer than %zu bytes",
			     MCP_LINE_MAX);
		}
		a->stopped = true;
		return 1;
	}
	if (buf_add(&a->body, p, n)) {
		serr(s, AI_EX_UNAVAILABLE, &a->err, "sent an answer longer than %zu bytes", MCP_LINE_MAX);
		a->stopped = true;
		return 1;
	}
	return 0;
}

/* What the first POST's answer says, once its transfer is over: 0, or -1 with err. */
static int post_answered(struct http_answer *a, struct ai_err *err)
{
	struct mcp_server *s = a->s;
	struct http_resp *resp = &a->post.resp;

	if (a->post.rc && !a->stopped) {
		*err = a->post.err;
		if (err->code != AI_EX_INTERRUPT)
			serr(s, err->code == AI_EX_TEMPFAIL && (long)mono_ms() >= a->deadline ?
			     AI_EX_TEMPFAIL : AI_EX_UNAVAILABLE, err, "%s", a->post.err.msg);
		return -1;
	}
	if (resp->captured[0] && !s->session[0])
		snprintf(s->session, sizeof(s->session), "%s", resp->captured);
	if (resp->captured_bad) {
		/* Sent back cut or with other bytes, it would name another session, or none. */
		return serr(s, AI_EX_UNAVAILABLE, err, "sent an Mcp-Session-Id that is longer than %zu "
			    "bytes or not visible ASCII", sizeof(resp->captured) - 1);
	} else if (a->stopped) {
		/* Ended by on_body (its status was 2xx): the answer is in, or a.err says why not. */
		if (a->err.code)
			return (*err = a->err, -1);
	} else if (resp->status == 404 && s->session[0]) {
		return serr(s, AI_EX_UNAVAILABLE, err, "its session ended (HTTP 404)");
	} else if (resp->status < 200 || resp->status > 299) {
		return serr(s, AI_EX_UNAVAILABLE, err, "answered HTTP %ld", resp->status);
	} else if (!a->read || resp->status == 202 || resp->status == 204) {
		/* Nothing to read: a notification or a response was taken. */
	} else if (!strncasecmp(resp->content_type, "text/event-stream", 17)) {
		/* The stream ended without the answer: its last event may lack the blank line. */
		if (sse_feed(&a->sse, "\n\n", 2, on_event, a, &a->err) && a->err.code)
			return (*err = a->err, -1);
	} else if (a->body.len && take_text(a, a->body.data, a->body.len) < 0) {
		return (*err = a->err, -1);
	}
	return 0;
}

/* Queues text (a reply made while an answer is read) for http_send to POST. */
static int queue_msg(struct mcp_server *s, const char *text, struct ai_err *err)
{
	char **nq = realloc(s->outq, (s->noutq + 1) * sizeof(*nq));

	if (!nq)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	s->outq = nq;
	if (!(s->outq[s->noutq] = strdup(text)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	s->noutq++;
	return 0;
}

/*
 * Moves the replies queued into the pool, each a POST of its own beside
 * the first, with the session's headers as they are now.  -1 only when
 * memory runs out.
 */
static int post_queued(struct mcp_server *s, struct http_pool *pool, struct http_post **replies,
		       struct ai_err *err)
{
	for (size_t i = 0; i < s->noutq; i++) {
		struct http_post *p = malloc(sizeof(*p));

		if (!p) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			for (; i < s->noutq; i++)
				free(s->outq[i]);
			s->noutq = 0;
			return -1;
		}
		post_init(s, p, "POST", s->outq[i]);
		p->text = s->outq[i];
		s->outq[i] = NULL;
		p->next = *replies;
		*replies = p;
		if (http_pool_add(pool, &p->req, &p->resp, post_done, p, err)) {
			for (i++; i < s->noutq; i++)
				free(s->outq[i]);
			s->noutq = 0;
			return -1;
		}
	}
	s->noutq = 0;
	return 0;
}

/*
 * POSTs text (one message) and, when it is a request (s->awaited), reads
 * what the answer holds as it arrives: nothing (202), one JSON body
 * (a message or a batch), or an SSE stream of them, each dispatched; the
 * response awaited lands in s->answer.  method is "DELETE" to end the
 * session (text NULL).  The replies the server's requests get (a pong)
 * are POSTs of their own in the same pool, made between its steps and
 * never from libcurl's callbacks; all of it ends by deadline.  A reply
 * refused fails the request while its answer is not in, and is only
 * noted after.
 */
static int http_send(struct mcp_server *s, const char *method, const char *text, long deadline,
		     struct ai_err *err)
{
	struct http_opts ho;
	struct http_answer a;
	struct http_pool *pool;
	struct http_post *replies = NULL;
	long left = deadline - (long)mono_ms();
	bool taken = false;
	int rc = 0;

	if (left <= 0)
		return serr(s, AI_EX_TEMPFAIL, err, "no answer in time");
	http_opts_init(&ho);
	ho.timeout_ms = left;   /* the whole answer, stream or not: the request's deadline */
	ho.retries = 0;         /* a tools/call is not idempotent: never sent twice */
	ho.max_response = MCP_LINE_MAX;
	/* http.h only reads the flag; its pointer is not const for its other callers. */
	ho.interrupt = (volatile sig_atomic_t *)(uintptr_t)s->o.cancel;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.deadline = deadline;
	a.read = text && s->posting_request;
	s->posting_request = false;
	post_init(s, &a.post, method, text);
	a.post.req.on_data = on_body;
	a.post.req.ud = &a;
	sse_init(&a.sse, MCP_LINE_MAX, MCP_LINE_MAX);
	buf_init(&a.body, MCP_LINE_MAX);
	if (!(pool = http_pool_new(&ho, 4, err)) ||
	    http_pool_add(pool, &a.post.req, &a.post.resp, post_done, &a.post, err)) {
		rc = -1;
		goto out;
	}
	s->reading = a.read;
	for (;;) {
		if (a.post.done && !taken) {
			taken = true;
			if ((rc = post_answered(&a, err)))
				break;
		}
		for (struct http_post *p = replies; p; p = p->next) {
			if (!p->done || p->text == NULL)
				continue;
			if (p->rc || p->resp.status < 200 || p->resp.status > 299) {
				struct ai_err e;

				if (p->rc)
					e = p->err;
				else
					ai_errf(&e, AI_EX_UNAVAILABLE, "HTTP %ld", p->resp.status);
				if (!s->answer) {
					serr(s, e.code == AI_EX_INTERRUPT ? e.code : AI_EX_UNAVAILABLE, err,
					     "refused ai-agent's answer to its request: %s", e.msg);
					rc = -1;
				} else {
					char note[300];

					snprintf(note, sizeof(note), "refused ai-agent's answer to its request: %s",
						 e.msg);
					slog(s, "note", note);
				}
			}
			free(p->text);
			p->text = NULL;         /* dealt with */
		}
		if (rc)
			break;
		if (post_queued(s, pool, &replies, err)) {
			rc = -1;
			break;
		}
		if (!http_pool_pending(pool))
			break;
		/* The answer is in and only replies are left: they share the deadline, not more. */
		if ((left = deadline - (long)mono_ms()) <= 0) {
			if (!taken)
				rc = serr(s, AI_EX_TEMPFAIL, err, "no answer in time");
			break;
		}
		/*
		 * In slices: a step returns only when a transfer ends, and a reply
		 * queued by on_body meanwhile must go out while the stream waits for it.
		 */
		if (http_pool_step(pool, left < HTTP_STEP_MS ? left : HTTP_STEP_MS, err) < 0) {
			rc = -1;
			break;
		}
	}
out:
	s->reading = false;
	for (size_t i = 0; i < s->noutq; i++)
		free(s->outq[i]);
	s->noutq = 0;
	http_pool_free(pool);
	while (replies) {
		struct http_post *p = replies;

		replies = p->next;
		free(p->text);
		http_resp_release(&p->resp);
		free(p);
	}
	sse_release(&a.sse);
	buf_release(&a.body);
	http_resp_release(&a.post.resp);
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
	if (s->http && s->reading)
		return queue_msg(s, text, err);
	if (s->http)
		return http_send(s, "POST", text, deadline, err);
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
		slog(s, "note", "its tool list changed; it is listed again before the next turn");
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
 * What msg (borrowed), come from the server while s->awaited's answer is
 * waited for, is: 1 that answer; 0 something else, dealt with (a request
 * answered, a notification taken, a late answer to a request given up);
 * -1 with err when it breaks the protocol or answering failed.
 */
static int dispatch(struct mcp_server *s, json_object *msg, long deadline, struct ai_err *err)
{
	json_object *v;
	bool has_id = json_object_object_get_ex(msg, "id", &v);
	int64_t got;

	if (jv_str(msg, "method")) {
		if (has_id)
			return answer_request(s, msg, deadline, err);
		take_notification(s, msg);
		return 0;
	}
	if (!has_id || !json_object_is_type(v, json_type_int))
		return serr(s, AI_EX_UNAVAILABLE, err, "sent an answer without a numeric id");
	got = json_object_get_int64(v);
	if (got == s->awaited)
		return 1;
	/* A late answer to a request given up, or a repeat: nothing waits for it. */
	if (got > 0 && got < s->awaited)
		return 0;
	return serr(s, AI_EX_UNAVAILABLE, err, "answered id %lld, which was never asked "
		    "(waiting for %lld)", (long long)got, (long long)s->awaited);
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
	s->awaited = id;
	json_object_put(s->answer);
	s->answer = NULL;
	s->posting_request = true;
	/* Over HTTP the answer comes with the POST, dispatched as it arrives: its failure is the wait's. */
	rc = send_msg(s, m, deadline, err);
	s->posting_request = false;
	json_object_put(m);
	if (rc && !s->http)
		return -1;
	if (s->http) {
		msg = s->answer;
		s->answer = NULL;
		if (rc) {
			json_object_put(msg);   /* an answer in a stream that then went wrong */
			msg = NULL;
		} else if (!msg) {
			rc = serr(s, AI_EX_UNAVAILABLE, err, "its HTTP answer held no response");
		}
	}
	while (!rc && !msg) {
		int r;

		if (next_message(s, deadline, &msg, err)) {
			rc = -1;
			break;
		}
		if ((r = dispatch(s, msg, deadline, err)) > 0)
			break;
		json_object_put(msg);
		msg = NULL;
		if (r < 0)
			return -1;      /* not a wait given up: nothing to cancel */
	}
	if (rc) {
		if (cancellable && (err->code == AI_EX_TEMPFAIL || err->code == AI_EX_INTERRUPT))
			cancel_request(s, id, err->code == AI_EX_TEMPFAIL ? "timeout" :
				       "interrupted by the user");
		if (err->code == AI_EX_TEMPFAIL)
			serr(s, AI_EX_TEMPFAIL, err, "no answer to %s within %ld ms", method,
			     timeout_ms);
		return -1;
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
			/*
			 * Listed again mid-run, a tool is read-only only when it was
			 * so at start: what needed approval, or was not there, cannot
			 * make itself free of it by its own annotation.
			 */
			if (s->started && !v[n].side_effects && !in_list(s->ro_start, v[n].remote))
				v[n].side_effects = true;
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
	/* A name in "allow" that it does not offer is likely a typo: said once, at start. */
	for (char **a = s->d->allow; !s->started && a && *a; a++) {
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
	free(s->outq);
	for (char **r = s->ro_start; r && *r; r++)
		free(*r);
	free(s->ro_start);
	json_object_put(s->answer);
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
	if (!(s->ro_start = calloc(n + 1, sizeof(*s->ro_start))))
		goto fail_tools;
	for (size_t i = 0, k = 0; i < n; i++)
		if (!tools[i].side_effects && !(s->ro_start[k++] = strdup(tools[i].remote)))
			goto fail_tools;
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
	s->started = true;
	m->v[m->n++] = s;
	{
		char note[96];

		snprintf(note, sizeof(note), "started: protocol %s, %zu tools", s->version, n);
		slog(s, "note", note);
	}
	return 0;
fail_tools:
	for (size_t i = 0; i < n; i++)
		tooldef_release(&tools[i]);
	free(tools);
	ai_errf(err, AI_EX_OSERR, "out of memory");
fail:
	if (err->code == AI_EX_TEMPFAIL)
		ai_errf(err, AI_EX_TEMPFAIL, "MCP server '%s' did not start within %ld ms "
			"(startup_timeout_ms)", d->name,
			d->startup_timeout_ms > 0 ? d->startup_timeout_ms : MCP_STARTUP_TIMEOUT_MS);
	server_free(s);
	return -1;
}

#define NOTE_MAX ((size_t)2048)

/* The old tool of s in ts named remote, or NULL. */
static const struct tooldef *old_tool(const struct mcp_server *s, const struct toolset *ts,
				      const char *remote)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].mcp == s && !strcmp(ts->v[i].remote, remote))
			return &ts->v[i];
	return NULL;
}

/* Adds name to the list headed what in b ("; added: a, b"), or "..." once b is nearly full. */
static int note_name(struct buf *b, const char **what, const char *name)
{
	if (b->len > NOTE_MAX - 200)
		return b->data[b->len - 1] == '.' ? 0 : buf_addstr(b, ", ...");
	if (*what) {
		int rc = buf_addf(b, "; %s: %s", *what, name);

		*what = NULL;
		return rc;
	}
	return buf_addf(b, ", %s", name);
}

/*
 * The note for s's tools listed again (new, n of them) in place of its
 * old ones in ts: how many, then each tool added, changed (description,
 * parameters or approval) or gone, by the name the model sees, into b.
 * Names are made of [a-zA-Z0-9_-] (local_name): safe to show.
 */
static int tools_diff(const struct mcp_server *s, const struct toolset *ts,
		      const struct tooldef *v, size_t n, struct buf *b)
{
	const char *added = "added (approval needed unless allowed)", *changed = "changed",
		   *gone = "gone";

	if (buf_addf(b, "listed its tools again: %zu tools", n))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!old_tool(s, ts, v[i].remote) && note_name(b, &added, v[i].name))
			return -1;
	for (size_t i = 0; i < n; i++) {
		const struct tooldef *o = old_tool(s, ts, v[i].remote);

		if (o && (strcmp(o->name, v[i].name) || strcmp(o->description, v[i].description) ||
			  o->side_effects != v[i].side_effects ||
			  !json_object_equal(o->parameters, v[i].parameters)) &&
		    note_name(b, &changed, v[i].name))
			return -1;
	}
	for (size_t i = 0; i < ts->n; i++) {
		size_t j = 0;

		if (ts->v[i].mcp != s)
			continue;
		while (j < n && strcmp(v[j].remote, ts->v[i].remote))
			j++;
		if (j == n && note_name(b, &gone, ts->v[i].name))
			return -1;
	}
	return 0;
}

/*
 * Lists s's tools again and puts them in ts where its old ones were: 1
 * done, 0 when the listing failed (noted; its old tools stay), -1 with
 * err on AI_EX_INTERRUPT or out of memory.
 */
static int relist(struct mcp_server *s, struct toolset *ts, struct ai_err *err)
{
	struct toolset others = TOOLSET_INIT;
	struct tooldef *tools = NULL, *nv;
	size_t n = 0, nold = 0, k = 0;
	bool placed = false;
	struct buf diff;
	struct ai_err e;
	char note[400];
	int rc;

	/* Its new tools may take any name but another tool's (its old ones are going). */
	if (!(others.v = malloc((ts->n ? ts->n : 1) * sizeof(*others.v))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < ts->n; i++) {
		if (ts->v[i].mcp == s)
			nold++;
		else
			others.v[others.n++] = ts->v[i];        /* a view: only its names are read */
	}
	ai_err_clear(&e);
	rc = list_tools(s, &others, (long)mono_ms() + (s->d->startup_timeout_ms > 0 ?
			s->d->startup_timeout_ms : MCP_STARTUP_TIMEOUT_MS), &tools, &n, &e);
	free(others.v);
	if (rc) {
		if (e.code == AI_EX_INTERRUPT || e.code == AI_EX_OSERR)
			return (*err = e, -1);
		snprintf(note, sizeof(note), "its tools could not be listed again, so they stay as "
			 "they were: %s", e.msg);
		slog(s, "note", note);
		return 0;
	}
	buf_init(&diff, NOTE_MAX);
	if (tools_diff(s, ts, tools, n, &diff)) {
		buf_release(&diff);
		for (size_t i = 0; i < n; i++)
			tooldef_release(&tools[i]);
		free(tools);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (!(nv = malloc((ts->n - nold + n ? ts->n - nold + n : 1) * sizeof(*nv)))) {
		buf_release(&diff);
		for (size_t i = 0; i < n; i++)
			tooldef_release(&tools[i]);
		free(tools);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	for (size_t i = 0; i <= ts->n; i++) {
		if (!placed && (i == ts->n || ts->v[i].mcp == s)) {
			memcpy(nv + k, tools, n * sizeof(*tools));
			k += n;
			placed = true;
		}
		if (i == ts->n)
			break;
		if (ts->v[i].mcp == s)
			tooldef_release(&ts->v[i]);
		else
			nv[k++] = ts->v[i];
	}
	free(ts->v);
	free(tools);
	ts->v = nv;
	ts->n = k;
	slog(s, "note", diff.data ? diff.data : "listed its tools again");
	buf_release(&diff);
	return 1;
}

/*
 * Deals with what a stdio server said since its last answer, without
 * waiting: a list_changed or a log message sent after a result, a ping.
 * Requests are answered, notifications taken, stray responses dropped;
 * a failure here is left for its next request to meet.
 */
static void drain_pending(struct mcp_server *s)
{
	for (int round = 0; round < 16 && !s->http && !s->eof; round++) {
		json_object *msg;
		struct ai_err e;
		size_t had;
		bool toolong = false;

		ai_err_clear(&e);
		/* A deadline already past: only the lines already read are taken. */
		while (!next_message(s, 0, &msg, &e)) {
			if (jv_str(msg, "method"))
				dispatch(s, msg, (long)mono_ms() + MCP_STOP_GRACE_MS, &e);
			json_object_put(msg);
		}
		if (e.code == AI_EX_OSERR || s->eof)
			return;
		read_stderr(s);
		had = s->in.len;
		if (read_stdout(s, &toolong) && !toolong)
			return;
		if (s->in.len == had && !toolong)
			return;
	}
}

int mcp_refresh(struct mcp *m, struct toolset *ts, bool *changed, struct ai_err *err)
{
	*changed = false;
	for (size_t i = 0; i < m->n; i++) {
		struct mcp_server *s = m->v[i];
		int rc;

		drain_pending(s);
		if (!s->list_changed)
			continue;
		/* Cleared first: said again while it is listed, it is listed again next time. */
		s->list_changed = false;
		if ((rc = relist(s, ts, err)) < 0)
			return -1;
		if (rc > 0)
			*changed = true;
	}
	return 0;
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
