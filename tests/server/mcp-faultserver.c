/*
 * mcp-faultserver - an MCP stdio server that misbehaves on request, for
 * tests/bats/mcp.bats: what the reference servers never do.
 *
 *   mcp-faultserver [--log FILE] [--version V] [--pages N] [--hang-init]
 *                   [--ignore-term] [--clash] [--no-tools-cap] [--banner]
 *                   [--http PORT] [--ping-init]
 *
 * It speaks newline-delimited JSON-RPC 2.0 on stdin and stdout and logs
 * every line it receives to FILE (one line each, flushed), so a test can
 * assert what the client sent, or that it never sent a tools/call.
 *
 *   --http PORT     speak Streamable HTTP on 127.0.0.1:PORT instead (any
 *                   path), saying "listening on PORT" on stdout once it is.
 *                   Every request is answered as an SSE stream that stays
 *                   open after the answer, until the client closes it (or
 *                   60 s pass), as the spec allows; "ping" pings the client
 *                   on that stream and answers once the pong is POSTed.
 *                   initialize gives Mcp-Session-Id "fault-1", and a later
 *                   POST without it gets 400.  Notifications and responses
 *                   get 202, DELETE 200.  The log holds each POST's body.
 *   --ping-init     (--http) ping the client on initialize's stream first, and
 *                   answer initialize once the pong is POSTed in the session
 *
 *   --version V     answer initialize with protocolVersion V (default: the client's)
 *   --pages N       spread tools/list over N pages (cursors "p1", "p2", ...)
 *   --hang-init     never answer initialize
 *   --banner        print a line that is not JSON on stdout first, as some servers do
 *   --ignore-term   ignore SIGTERM and keep running after stdin ends (the
 *                   client must SIGKILL it)
 *   --clash         also offer "a.b" and "a_b", which sanitise to one name
 *
 * Its tools (tools/call by name):
 *   echo      readOnlyHint: answers the arguments as text
 *   write     no hint (side effects): answers "wrote"
 *   fail      answers isError with text "it failed"
 *   media     an image, a resource and a resource link
 *   die       exits 3 before answering
 *   wrongid   answers with another id
 *   malformed writes a line that is not JSON, then answers "after the noise"
 *   huge      writes a 50 MB line
 *   hang      never answers
 *   ping      pings the client first, then answers "ponged" once it answered
 *   changed   sends notifications/tools/list_changed, then answers "changed";
 *             from then on tools/list offers "added" too (readOnlyHint), which
 *             answers "added", and "write" becomes readOnlyHint (and says so
 *             in its description); with
 *             {"text": "badlist"}, tools/list answers an error from then on
 *             instead
 *   changedafter  as changed, but the notification comes after the result,
 *             in the same write (the same piece of the HTTP stream)
 *   batchping one message that is a batch: the result ("batched"), then a
 *             ping "srv-2" to the client
 *   noisy     writes "noise on stderr" to stderr, then answers "quiet"
 *   flood     shrinks its input pipe to 4 KiB, answers "flooded", then writes
 *             512 KiB of lines to stderr before it reads on (the client must
 *             read them while it writes)
 *   strfalse  answers with "isError": "false" (a string, not a boolean)
 *   lastword  writes "last words" to stderr without a newline, then exits 3
 *   stall     shrinks its input pipe to 4 KiB, answers "stalled", then reads
 *             nothing for 3 s
 */
#define _GNU_SOURCE             /* F_SETPIPE_SZ */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static FILE *logfile;
static const char *version;
static int pages = 1;
static bool hang_init, ignore_term, clash, changed, badlist, ping_init;
static int out_fd = -1;         /* --http: the stream messages go to, as SSE events */

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;         /* the client went: what it misses is its own doing */
		p += w;
		n -= (size_t)w;
	}
}

/* Text as it is, to the stream (--http) or stdout. */
static void raw(const char *text)
{
	if (out_fd >= 0)
		write_all(out_fd, text, strlen(text));
	else
		fputs(text, stdout);
}

static void send_line(json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	if (out_fd >= 0) {
		write_all(out_fd, "event: message\ndata: ", 21);
		write_all(out_fd, text, strlen(text));
		write_all(out_fd, "\n\n", 2);
	} else {
		fputs(text, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	json_object_put(o);
}

static json_object *reply(json_object *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", json_object_get(id));
	return o;
}

/* Two messages in one write, so that the client reads them in one piece. */
static void send_two(json_object *a, json_object *b)
{
	const char *ta = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
	const char *tb = json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(ta) + strlen(tb) + 64;
	char *buf = malloc(n);

	if (!buf)
		exit(1);
	if (out_fd >= 0) {
		snprintf(buf, n, "event: message\ndata: %s\n\nevent: message\ndata: %s\n\n", ta, tb);
		write_all(out_fd, buf, strlen(buf));
	} else {
		snprintf(buf, n, "%s\n%s\n", ta, tb);
		write_all(1, buf, strlen(buf));
	}
	free(buf);
	json_object_put(a);
	json_object_put(b);
}

static void result(json_object *id, json_object *res)
{
	json_object *o = reply(id);

	json_object_object_add(o, "result", res);
	send_line(o);
}

static json_object *text_result(const char *text, bool is_error)
{
	json_object *r = json_object_new_object(), *c = json_object_new_array();
	json_object *t = json_object_new_object();

	json_object_object_add(t, "type", json_object_new_string("text"));
	json_object_object_add(t, "text", json_object_new_string(text));
	json_object_array_add(c, t);
	json_object_object_add(r, "content", c);
	if (is_error)
		json_object_object_add(r, "isError", json_object_new_boolean(1));
	return r;
}

static json_object *tool(const char *name, bool ro)
{
	json_object *t = json_object_new_object();

	json_object_object_add(t, "name", json_object_new_string(name));
	json_object_object_add(t, "description", json_object_new_string(
		changed && !strcmp(name, "write") ? "write, now read-only" : name));
	json_object_object_add(t, "inputSchema", json_tokener_parse(
		"{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}}}"));
	if (ro)
		json_object_object_add(t, "annotations", json_tokener_parse("{\"readOnlyHint\":true}"));
	return t;
}

static const char *const tools[] = {
	"echo", "write", "fail", "media", "die", "wrongid", "malformed", "huge", "hang", "ping",
	"changed", "noisy", "weird.name/x", "flood", "stall", "strfalse", "lastword", "changedafter",
	"batchping", NULL
};

static void list(json_object *id, json_object *params)
{
	json_object *c = params ? json_object_object_get(params, "cursor") : NULL;
	int page = c ? (int)strtol(json_object_get_string(c) + 1, NULL, 10) : 0;
	int n = 0, per;
	json_object *r = json_object_new_object(), *a = json_object_new_array();

	if (badlist) {
		json_object *o = reply(id);

		json_object_object_add(o, "error", json_tokener_parse(
			"{\"code\":-32603,\"message\":\"the list is broken\"}"));
		send_line(o);
		json_object_put(r);
		json_object_put(a);
		return;
	}
	while (tools[n])
		n++;
	per = (n + pages - 1) / pages;
	for (int i = page * per; i < n && i < (page + 1) * per; i++)
		json_object_array_add(a, tool(tools[i], !strcmp(tools[i], "echo") ||
					      (changed && !strcmp(tools[i], "write"))));
	if (changed && page == pages - 1)
		json_object_array_add(a, tool("added", true));
	if (clash && page == pages - 1) {
		json_object_array_add(a, tool("a.b", true));
		json_object_array_add(a, tool("a_b", true));
	}
	json_object_object_add(r, "tools", a);
	if (page + 1 < pages) {
		char cur[16];

		snprintf(cur, sizeof(cur), "p%d", page + 1);
		json_object_object_add(r, "nextCursor", json_object_new_string(cur));
	}
	result(id, r);
}

static json_object *media(void)
{
	return json_tokener_parse(
		"{\"content\":[{\"type\":\"text\",\"text\":\"here\"},"
		"{\"type\":\"image\",\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"},"
		"{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///x.txt\",\"mimeType\":\"text/plain\","
		"\"text\":\"inside\"}},"
		"{\"type\":\"resource_link\",\"uri\":\"file:///y\",\"name\":\"y\"}]}");
}

static char *readline_(void)
{
	static char *line;
	static size_t cap;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0)
		return NULL;
	if (logfile) {
		fputs(line, logfile);
		if (n == 0 || line[n - 1] != '\n')
			fputc('\n', logfile);
		fflush(logfile);
	}
	return line;
}

static void call(json_object *id, json_object *params)
{
	const char *name = json_object_get_string(json_object_object_get(params, "name"));
	json_object *args = json_object_object_get(params, "arguments");

	if (!name)
		name = "";
	if (!strcmp(name, "echo")) {
		result(id, text_result(json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN), false));
	} else if (!strcmp(name, "write")) {
		result(id, text_result("wrote", false));
	} else if (!strcmp(name, "fail")) {
		result(id, text_result("it failed", true));
	} else if (!strcmp(name, "media")) {
		result(id, media());
	} else if (!strcmp(name, "die")) {
		exit(3);
	} else if (!strcmp(name, "wrongid")) {
		json_object *bad = json_object_new_int64(json_object_get_int64(id) + 100);

		result(bad, text_result("wrong", false));
		json_object_put(bad);
	} else if (!strcmp(name, "malformed")) {
		fputs("this is {not json\n", stdout);
		fflush(stdout);
		result(id, text_result("after the noise", false));
	} else if (!strcmp(name, "huge")) {
		char *buf = malloc(1 << 20);

		memset(buf, 'x', 1 << 20);
		/* Over HTTP, one SSE event of 50 MB: the client closes the stream midway. */
		if (out_fd >= 0)
			write_all(out_fd, "event: message\ndata: ", 21);
		raw("{\"jsonrpc\":\"2.0\",\"id\":");
		raw(json_object_to_json_string(id));
		raw(",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"");
		for (int i = 0; i < 50; i++) {
			if (out_fd >= 0)
				write_all(out_fd, buf, 1 << 20);
			else if (fwrite(buf, 1, 1 << 20, stdout) != 1 << 20)
				exit(1);
		}
		raw(out_fd >= 0 ? "\"}]}}\n\n" : "\"}]}}\n");
		fflush(stdout);
		free(buf);
	} else if (!strcmp(name, "hang")) {
		/* Never answers; goes on reading, so the cancellation is logged. */
	} else if (!strcmp(name, "ping")) {
		char *l;

		send_line(json_tokener_parse("{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}"));
		l = readline_();
		if (!l || !strstr(l, "\"srv-1\""))
			exit(4);
		result(id, text_result("ponged", false));
	} else if (!strcmp(name, "changed")) {
		const char *t = json_object_get_string(json_object_object_get(args, "text"));

		if (t && !strcmp(t, "badlist"))
			badlist = true;
		else
			changed = true;
		send_line(json_tokener_parse("{\"jsonrpc\":\"2.0\",\"method\":"
					     "\"notifications/tools/list_changed\"}"));
		result(id, text_result("changed", false));
	} else if (!strcmp(name, "changedafter")) {
		json_object *o = reply(id);

		changed = true;
		json_object_object_add(o, "result", text_result("changed after", false));
		send_two(o, json_tokener_parse("{\"jsonrpc\":\"2.0\",\"method\":"
					       "\"notifications/tools/list_changed\"}"));
	} else if (!strcmp(name, "batchping")) {
		json_object *o = reply(id), *b = json_object_new_array();

		json_object_object_add(o, "result", text_result("batched", false));
		json_object_array_add(b, o);
		json_object_array_add(b, json_tokener_parse(
			"{\"jsonrpc\":\"2.0\",\"id\":\"srv-2\",\"method\":\"ping\"}"));
		send_line(b);
	} else if (!strcmp(name, "added") && changed) {
		result(id, text_result("added", false));
	} else if (!strcmp(name, "noisy")) {
		fputs("noise on stderr\n", stderr);
		fflush(stderr);
		result(id, text_result("quiet", false));
	} else if (!strcmp(name, "flood")) {
		/* A one-page input pipe: a message past 4 KiB fills it (tool arguments stop at 64 KiB). */
		fcntl(0, F_SETPIPE_SZ, 4096);
		result(id, text_result("flooded", false));
		for (int i = 0; i < 8192; i++)
			fprintf(stderr, "flood %05d %50s\n", i, "");
		fflush(stderr);
	} else if (!strcmp(name, "strfalse")) {
		json_object *r = text_result("not an error", false);

		json_object_object_add(r, "isError", json_object_new_string("false"));
		result(id, r);
	} else if (!strcmp(name, "lastword")) {
		fputs("last words", stderr);
		exit(3);
	} else if (!strcmp(name, "stall")) {
		fcntl(0, F_SETPIPE_SZ, 4096);
		result(id, text_result("stalled", false));
		sleep(3);
	} else {
		json_object *o = reply(id);

		json_object_object_add(o, "error", json_tokener_parse(
			"{\"code\":-32602,\"message\":\"unknown tool\"}"));
		send_line(o);
	}
}

/* Answers the message m (borrowed) when it is a request. */
static void handle(json_object *m)
{
	const char *method = json_object_get_string(json_object_object_get(m, "method"));
	json_object *params = json_object_object_get(m, "params"), *id;

	if (!method || !json_object_object_get_ex(m, "id", &id))
		return;
	if (!strcmp(method, "initialize")) {
		if (!hang_init) {
			json_object *r = json_object_new_object();
			const char *v = version ? version : json_object_get_string(
				json_object_object_get(params, "protocolVersion"));

			json_object_object_add(r, "protocolVersion", json_object_new_string(v));
			json_object_object_add(r, "capabilities", json_tokener_parse(
				"{\"tools\":{\"listChanged\":true}}"));
			json_object_object_add(r, "serverInfo", json_tokener_parse(
				"{\"name\":\"mcp-faultserver\",\"version\":\"1\"}"));
			result(id, r);
		}
	} else if (!strcmp(method, "tools/list")) {
		list(id, params);
	} else if (!strcmp(method, "tools/call")) {
		call(id, params);
	} else if (!strcmp(method, "ping")) {
		result(id, json_object_new_object());
	}
}

/* ---- --http ------------------------------------------------------------- */

#define MAX_CONNS 32
#define HOLD_S 60

struct conn {
	int fd;
	char *req;              /* what was read of the request */
	size_t len;
	time_t since;           /* when its stream was opened */
	bool streaming;         /* answered; held open until the client closes it */
	json_object *deferred;  /* owned: the request answered once a pong comes */
};

static struct conn conns[MAX_CONNS];
static int nconns;

static void conn_close(int i)
{
	close(conns[i].fd);
	free(conns[i].req);
	json_object_put(conns[i].deferred);
	conns[i] = conns[--nconns];
}

static void respond(int fd, const char *status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", status, strlen(body));

	write_all(fd, head, (size_t)n);
	write_all(fd, body, strlen(body));
}

/* The value of header name in the request head (up to end), or NULL; static storage. */
static const char *header(const char *req, const char *end, const char *name)
{
	static char v[256];
	size_t nl = strlen(name);

	for (const char *p = strstr(req, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
		size_t n;

		if (strncasecmp(p + 2, name, nl) || p[2 + nl] != ':')
			continue;
		p += 3 + nl;
		while (*p == ' ')
			p++;
		n = strcspn(p, "\r");
		snprintf(v, sizeof(v), "%.*s", (int)(n < sizeof(v) ? n : sizeof(v) - 1), p);
		return v;
	}
	return NULL;
}

/* A whole request is in conns[i]: answers it. */
static void serve(int i)
{
	struct conn *c = &conns[i];
	char *end = strstr(c->req, "\r\n\r\n");
	const char *body = end + 4, *sess = header(c->req, end, "Mcp-Session-Id");
	json_object *m, *id;
	const char *method, *tool;

	if (!strncmp(c->req, "DELETE ", 7)) {
		respond(c->fd, "200 OK", "");
		conn_close(i);
		return;
	}
	if (logfile) {
		fprintf(logfile, "%s\n", body);
		fflush(logfile);
	}
	m = json_tokener_parse(body);
	method = m ? json_object_get_string(json_object_object_get(m, "method")) : NULL;
	if (!m || (!(method && !strcmp(method, "initialize")) && (!sess || strcmp(sess, "fault-1")))) {
		respond(c->fd, "400 Bad Request", m ? "no session" : "not json");
		json_object_put(m);
		conn_close(i);
		return;
	}
	if (!method || !json_object_object_get_ex(m, "id", &id)) {
		/* A notification, or a response: a pong lets the call waiting for it answer. */
		respond(c->fd, "202 Accepted", "");
		if (!method && json_object_object_get_ex(m, "id", &id) &&
		    !strcmp(json_object_get_string(id), "srv-1"))
			for (int j = 0; j < nconns; j++)
				if (conns[j].deferred) {
					json_object *d = conns[j].deferred;

					out_fd = conns[j].fd;
					if (!strcmp(json_object_get_string(json_object_object_get(d, "method")),
						    "tools/call"))
						result(json_object_object_get(d, "id"), text_result("ponged", false));
					else
						handle(d);
					out_fd = -1;
					json_object_put(d);
					conns[j].deferred = NULL;
				}
		json_object_put(m);
		conn_close(i);
		return;
	}
	{
		char head[256];
		int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
				 "Cache-Control: no-cache\r\n%s\r\n", !strcmp(method, "initialize") ?
				 "Mcp-Session-Id: fault-1\r\n" : "");

		write_all(c->fd, head, (size_t)n);
	}
	c->streaming = true;
	c->since = time(NULL);
	out_fd = c->fd;
	tool = json_object_get_string(json_object_object_get(json_object_object_get(m, "params"), "name"));
	if ((!strcmp(method, "tools/call") && tool && !strcmp(tool, "ping")) ||
	    (ping_init && !strcmp(method, "initialize"))) {
		send_line(json_tokener_parse("{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}"));
		c->deferred = json_object_get(m);
	} else {
		handle(m);
	}
	out_fd = -1;
	json_object_put(m);
}

/* Reads what conns[i] sent; serves a request once it is whole. */
static void conn_read(int i)
{
	struct conn *c = &conns[i];
	char chunk[65536], *end, *nr;
	ssize_t r = read(c->fd, chunk, sizeof(chunk));
	const char *cl;

	if (r <= 0 || c->streaming) {
		/* The client closed (or spoke on a stream it only reads): done with it. */
		if (r <= 0)
			conn_close(i);
		return;
	}
	if (!(nr = realloc(c->req, c->len + (size_t)r + 1)))
		exit(1);
	c->req = nr;
	memcpy(c->req + c->len, chunk, (size_t)r);
	c->len += (size_t)r;
	c->req[c->len] = '\0';
	if (!(end = strstr(c->req, "\r\n\r\n")))
		return;
	cl = header(c->req, end, "Content-Length");
	if (c->len - (size_t)(end + 4 - c->req) < (cl ? strtoul(cl, NULL, 10) : 0))
		return;
	serve(i);
}

static int serve_http(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, ls = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16)) {
		perror("mcp-faultserver: listen");
		return 1;
	}
	printf("listening on %d\n", port);
	fflush(stdout);
	for (;;) {
		struct pollfd p[MAX_CONNS + 1];
		time_t now = time(NULL);

		for (int i = nconns - 1; i >= 0; i--)
			if (conns[i].streaming && now - conns[i].since >= HOLD_S)
				conn_close(i);
		p[0] = (struct pollfd){ ls, nconns < MAX_CONNS ? POLLIN : 0, 0 };
		for (int i = 0; i < nconns; i++)
			p[i + 1] = (struct pollfd){ conns[i].fd, POLLIN, 0 };
		if (poll(p, (nfds_t)nconns + 1, 1000) < 0 && errno != EINTR)
			return 1;
		/* From the last: conn_close moves the last connection into the slot it frees. */
		for (int i = nconns - 1; i >= 0; i--)
			if (p[i + 1].revents)
				conn_read(i);
		if (p[0].revents & POLLIN) {
			int fd = accept(ls, NULL, NULL);

			if (fd >= 0)
				conns[nconns++] = (struct conn){ .fd = fd };
		}
	}
}

int main(int argc, char **argv)
{
	char *line;
	int http_port = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--log") && i + 1 < argc)
			logfile = fopen(argv[++i], "a");
		else if (!strcmp(argv[i], "--version") && i + 1 < argc)
			version = argv[++i];
		else if (!strcmp(argv[i], "--pages") && i + 1 < argc)
			pages = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--banner"))
			puts("mcp-faultserver: ready");
		else if (!strcmp(argv[i], "--hang-init"))
			hang_init = true;
		else if (!strcmp(argv[i], "--ignore-term"))
			ignore_term = true;
		else if (!strcmp(argv[i], "--http") && i + 1 < argc)
			http_port = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--ping-init"))
			ping_init = true;
		else if (!strcmp(argv[i], "--clash"))
			clash = true;
		else {
			fprintf(stderr, "mcp-faultserver: unknown argument '%s'\n", argv[i]);
			return 64;
		}
	}
	if (pages < 1)
		pages = 1;
	if (ignore_term)
		signal(SIGTERM, SIG_IGN);
	if (http_port)
		return serve_http(http_port);
	while ((line = readline_()) != NULL) {
		json_object *m = json_tokener_parse(line);

		if (m)
			handle(m);
		json_object_put(m);
	}
	if (ignore_term)
		for (;;)
			pause();
	return 0;
}
