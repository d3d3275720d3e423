/*
 * mcp-faultserver - an MCP stdio server that misbehaves on request, for
 * tests/bats/mcp.bats: what the reference servers never do.
 *
 *   mcp-faultserver [--log FILE] [--version V] [--pages N] [--hang-init]
 *                   [--ignore-term] [--clash] [--no-tools-cap] [--banner]
 *
 * It speaks newline-delimited JSON-RPC 2.0 on stdin and stdout and logs
 * every line it receives to FILE (one line each, flushed), so a test can
 * assert what the client sent, or that it never sent a tools/call.
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
 *   changed   sends notifications/tools/list_changed, then answers "changed"
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
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *logfile;
static const char *version;
static int pages = 1;
static bool hang_init, ignore_term, clash;

static void send_line(json_object *o)
{
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), stdout);
	fputc('\n', stdout);
	fflush(stdout);
	json_object_put(o);
}

static json_object *reply(json_object *id)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
	json_object_object_add(o, "id", json_object_get(id));
	return o;
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
	json_object_object_add(t, "description", json_object_new_string(name));
	json_object_object_add(t, "inputSchema", json_tokener_parse(
		"{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}}}"));
	if (ro)
		json_object_object_add(t, "annotations", json_tokener_parse("{\"readOnlyHint\":true}"));
	return t;
}

static const char *const tools[] = {
	"echo", "write", "fail", "media", "die", "wrongid", "malformed", "huge", "hang", "ping",
	"changed", "noisy", "weird.name/x", "flood", "stall", "strfalse", "lastword", NULL
};

static void list(json_object *id, json_object *params)
{
	json_object *c = params ? json_object_object_get(params, "cursor") : NULL;
	int page = c ? (int)strtol(json_object_get_string(c) + 1, NULL, 10) : 0;
	int n = 0, per;
	json_object *r = json_object_new_object(), *a = json_object_new_array();

	while (tools[n])
		n++;
	per = (n + pages - 1) / pages;
	for (int i = page * per; i < n && i < (page + 1) * per; i++)
		json_object_array_add(a, tool(tools[i], !strcmp(tools[i], "echo")));
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
		fputs("{\"jsonrpc\":\"2.0\",\"id\":", stdout);
		fputs(json_object_to_json_string(id), stdout);
		fputs(",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"", stdout);
		for (int i = 0; i < 50; i++)
			if (fwrite(buf, 1, 1 << 20, stdout) != 1 << 20)
				exit(1);
		fputs("\"}]}}\n", stdout);
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
		send_line(json_tokener_parse("{\"jsonrpc\":\"2.0\",\"method\":"
					     "\"notifications/tools/list_changed\"}"));
		result(id, text_result("changed", false));
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

int main(int argc, char **argv)
{
	char *line;

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
	while ((line = readline_()) != NULL) {
		json_object *m = json_tokener_parse(line), *id, *params;
		const char *method;

		if (!m)
			continue;
		method = json_object_get_string(json_object_object_get(m, "method"));
		params = json_object_object_get(m, "params");
		if (!method || !json_object_object_get_ex(m, "id", &id)) {
			json_object_put(m);
			continue;
		}
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
		json_object_put(m);
	}
	if (ignore_term)
		for (;;)
			pause();
	return 0;
}
