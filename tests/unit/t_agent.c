/*
 * t_agent.c - ai-agent's checks and dispatch, without a model: argument
 * validation against a schema, the tools array, refusals, approval, and
 * the results each built-in gives back.
 *
 * Runs from the repository root (tests/run cds there): the user tool is
 * tests/fixtures/agent/record.sh.
 */
#include "agent/agent.h"
#include "agent/search.h"
#include "agent/text.h"
#include "agent/toolrun.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "tap.h"

static int asked;
static int answer;

static int approve(const struct tooldef *t, const char *args, void *ud)
{
	(void)t;
	(void)ud;
	asked++;
	ok(args && args[0] == '{', "approve: gets the arguments as compact JSON");
	return answer;
}

static int search_ok(const char *query, long k, json_object **result, struct ai_err *err, void *ud)
{
	json_object *a = json_object_new_array(), *p = json_object_new_object();

	(void)err;
	(void)ud;
	json_object_object_add(p, "source", json_object_new_string("doc.txt"));
	json_object_object_add(p, "text", json_object_new_string(query));
	json_object_object_add(p, "k", json_object_new_int64(k));
	json_object_array_add(a, p);
	*result = a;
	return 0;
}

static int search_fail(const char *query, long k, json_object **result, struct ai_err *err, void *ud)
{
	(void)query;
	(void)k;
	(void)ud;
	*result = NULL;
	return ai_errf(err, AI_EX_NOINPUT, "no collection 'x'");
}

/* Runs one call; returns its content (owned by the caller) and fills *okp. */
static char *call(const struct agent_opts *o, const char *name, const char *args, bool *okp,
		  const char **approval)
{
	struct agent_call c;
	struct ai_err err;
	char *s;

	ai_err_clear(&err);
	if (agent_call_tool(o, name, args, &c, &err)) {
		*okp = false;
		return strdup(err.msg);
	}
	*okp = c.ok;
	if (approval)
		*approval = c.approval;
	s = c.content;
	c.content = NULL;
	agent_call_release(&c);
	return s;
}

static void check(const struct agent_opts *o, const char *name, const char *args, bool want_ok,
		  const char *want, const char *what)
{
	bool okv;
	char *got = call(o, name, args, &okv, NULL);

	is_int(okv, want_ok, "%s", what);
	is_str(got, want, "%s", what);
	free(got);
}

static void test_check_args(void)
{
	json_object *schema = json_tokener_parse(
		"{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"},"
		"\"n\":{\"type\":\"number\"},\"i\":{\"type\":\"integer\"},\"b\":{\"type\":\"boolean\"},"
		"\"u\":{\"type\":[\"string\",\"null\"]},\"a\":{\"type\":\"array\"}},"
		"\"required\":[\"s\"],\"additionalProperties\":false}");
	struct { const char *args; int rc; const char *why; } cases[] = {
		{ "{\"s\":\"x\"}", 0, NULL },
		{ "{\"s\":\"x\",\"n\":1.5,\"i\":3,\"b\":true,\"u\":null,\"a\":[]}", 0, NULL },
		{ "{\"s\":\"x\",\"i\":3.0}", 0, NULL },
		{ "{\"s\":\"x\",\"n\":2}", 0, NULL },
		{ "{}", -1, "the argument 's' is required" },
		{ "{\"s\":1}", -1, "the argument 's' must be a string, not integer" },
		{ "{\"s\":\"x\",\"i\":3.5}", -1, "the argument 'i' must be an integer, not number" },
		{ "{\"s\":\"x\",\"b\":\"true\"}", -1, "the argument 'b' must be a boolean, not string" },
		{ "{\"s\":\"x\",\"u\":5}", -1, "the argument 'u' must be string or null, not integer" },
		{ "{\"s\":\"x\",\"z\":1}", -1, "unknown argument 'z'" },
		{ "[]", -1, "the arguments must be a JSON object, not array" },
		{ "null", -1, "the arguments must be a JSON object, not null" },
	};
	char why[200];

	for (size_t i = 0; i < AI_ARRAY_LEN(cases); i++) {
		json_object *a = json_tokener_parse(cases[i].args);

		why[0] = '\0';
		is_int(agent_check_args(schema, a, why, sizeof(why)), cases[i].rc, "%s", cases[i].args);
		if (cases[i].why)
			is_str(why, cases[i].why, "%s", cases[i].args);
		json_object_put(a);
	}
	/* No schema, or a schema without rules: any object passes. */
	{
		json_object *a = json_tokener_parse("{\"anything\":[1,2]}");

		is_int(agent_check_args(NULL, a, why, sizeof(why)), 0, "no schema: an object passes");
		json_object_put(a);
	}
	json_object_put(schema);
}

static void test_tools(void)
{
	struct agent_opts o;
	struct toolset ts = TOOLSET_INIT;
	struct tooldef defs[2];
	char *argv[] = { (char *)"tests/fixtures/agent/record.sh", NULL };
	json_object *tools = NULL;
	struct ai_err err;

	agent_opts_init(&o);
	ai_err_clear(&err);
	is_int(agent_tools(&o, &tools, &err), 0, "tools: the built-ins alone");
	is_int((int)json_object_array_length(tools), 1, "tools: only calculate without sql or search");
	json_object_put(tools);

	o.search = search_ok;
	memset(defs, 0, sizeof(defs));
	defs[0].name = (char *)"mine";
	defs[0].description = (char *)"";
	defs[0].argv = argv;
	defs[0].parameters = json_tokener_parse("{\"type\":\"object\"}");
	ts.v = defs;
	ts.n = 1;
	o.user = &ts;
	is_int(agent_tools(&o, &tools, &err), 0, "tools: built-ins and a user tool");
	is_int((int)json_object_array_length(tools), 3, "tools: calculate, search, mine");
	is_str(json_object_get_string(json_object_object_get(json_object_object_get(
		json_object_array_get_idx(tools, 2), "function"), "name")), "mine", "tools: user tools last");
	json_object_put(tools);

	defs[0].name = (char *)"sql";   /* taken even when the sql tool is off */
	tools = NULL;
	is_int(agent_tools(&o, &tools, &err), -1, "tools: a built-in name is refused");
	is_int(err.code, AI_EX_CONFIG, "tools: as a configuration error");
	is_str(err.msg, "the tool 'sql' takes the name of a built-in tool; rename it", "tools: message");
	ok(tools == NULL, "tools: nothing returned on error");

	defs[0].name = (char *)"twin";
	defs[1] = defs[0];
	ts.n = 2;
	is_int(agent_tools(&o, &tools, &err), -1, "tools: a name twice is refused");
	json_object_put(defs[0].parameters);
}

static void test_calls(void)
{
	struct agent_opts o;
	struct toolset ts = TOOLSET_INIT;
	struct tooldef t;
	char *argv[] = { (char *)"tests/fixtures/agent/record.sh", NULL };
	char big[AGENT_MAX_ARGS + 100];
	const char *approval = NULL;
	bool okv;
	char *s;

	agent_opts_init(&o);
	check(&o, "calculate", "{\"expression\":\"6*7\"}", true, "{\"result\":42}", "calculate");
	check(&o, "calculate", "{\"expression\":\"0.1+0.2\"}", true, "{\"result\":0.3}", "calculate: shortest form");
	check(&o, "calculate", "  {\"expression\":\"1\"}\n", true, "{\"result\":1}", "calculate: blanks around");
	check(&o, "calculate", "{\"expression\":\"1/0\"}", false,
	      "{\"error\":\"division by zero at column 2\"}", "calculate: division by zero");
	check(&o, "calculate", "{", false,
	      "{\"error\":\"the arguments are not valid JSON: send one JSON object\"}", "cut-off arguments");
	check(&o, "calculate", "", false, "{\"error\":\"the argument 'expression' is required\"}",
	      "empty arguments are {}");
	check(&o, "calculate", NULL, false, "{\"error\":\"the argument 'expression' is required\"}",
	      "no arguments are {}");
	check(&o, "nope", "{}", false,
	      "{\"error\":\"unknown tool 'nope': use one of the tools offered\"}", "unknown tool");
	check(&o, NULL, "{}", false, "{\"error\":\"unknown tool '': use one of the tools offered\"}",
	      "no name");
	check(&o, "sql", "{\"query\":\"SELECT 1\"}", false,
	      "{\"error\":\"unknown tool 'sql': use one of the tools offered\"}", "sql is off without a database");
	check(&o, "search", "{\"query\":\"x\"}", false,
	      "{\"error\":\"unknown tool 'search': use one of the tools offered\"}", "search is off without a backend");
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	s = call(&o, "calculate", big, &okv, NULL);
	ok(!okv && strstr(s, "too long"), "arguments over AGENT_MAX_ARGS are refused");
	free(s);

	o.search = search_ok;
	check(&o, "search", "{\"query\":\"q\",\"k\":3}", true,
	      "{\"passages\":[{\"source\":\"doc.txt\",\"text\":\"q\",\"k\":3}]}", "search: passages");
	check(&o, "search", "{\"query\":\"q\"}", true,
	      "{\"passages\":[{\"source\":\"doc.txt\",\"text\":\"q\",\"k\":5}]}", "search: k defaults to 5");
	check(&o, "search", "{\"query\":\"q\",\"k\":0}", false,
	      "{\"error\":\"'k' must be between 1 and 20\"}", "search: k bounded");
	o.search = search_fail;
	check(&o, "search", "{\"query\":\"q\"}", false,
	      "{\"error\":\"search failed: no collection 'x'\"}", "search: a backend error goes to the model");

	/* A user tool with side effects and nobody to ask. */
	memset(&t, 0, sizeof(t));
	t.name = (char *)"rec";
	t.argv = argv;
	t.side_effects = true;
	ts.v = &t;
	ts.n = 1;
	o.user = &ts;
	s = call(&o, "rec", "{\"a\":1}", &okv, &approval);
	ok(!okv && strstr(s, "needs approval: run with --yes or from a terminal"), "side effects: no terminal, refused");
	is_str(approval, "no terminal", "side effects: approval recorded");
	free(s);
	o.approve = approve;
	answer = AGENT_APPROVE_NO;
	asked = 0;
	s = call(&o, "rec", "{\"a\":1}", &okv, &approval);
	ok(!okv && strstr(s, "the user declined"), "side effects: declined");
	is_int(asked, 1, "side effects: asked once");
	is_str(approval, "no", "side effects: no");
	free(s);
	answer = AGENT_APPROVE_YES;
	s = call(&o, "rec", "{\"a\":1}", &okv, &approval);
	ok(okv && strstr(s, "\"exit_status\":0") && strstr(s, "{\\\"a\\\":1}"), "side effects: approved and run");
	is_str(approval, "yes", "side effects: yes");
	free(s);
	answer = AGENT_APPROVE_INTERRUPT;
	{
		struct agent_call c;
		struct ai_err err;

		ai_err_clear(&err);
		is_int(agent_call_tool(&o, "rec", "{}", &c, &err), -1, "interrupted at the prompt: the run ends");
		is_int(err.code, AI_EX_INTERRUPT, "interrupted: code");
		ok(c.content == NULL, "interrupted: nothing to release");
	}
	o.yes = true;
	asked = 0;
	s = call(&o, "rec", "{}", &okv, &approval);
	ok(okv && asked == 0, "--yes: runs without asking");
	is_str(approval, "--yes", "--yes: recorded");
	free(s);
	/* Malformed arguments never reach the prompt or the tool. */
	o.yes = false;
	asked = 0;
	s = call(&o, "rec", "[1]", &okv, NULL);
	ok(!okv && asked == 0, "malformed arguments: refused before approval");
	free(s);
	/* Cancelled before the run: nothing starts. */
	{
		static volatile sig_atomic_t cancel = 1;
		struct agent_call c;
		struct ai_err err;

		o.yes = true;
		o.lim.cancel = &cancel;
		ai_err_clear(&err);
		is_int(agent_call_tool(&o, "rec", "{}", &c, &err), -1, "cancelled: the run ends");
		is_int(err.code, AI_EX_INTERRUPT, "cancelled: interrupt");
		o.lim.cancel = NULL;
	}
	/* No side effects: never asked. */
	t.side_effects = false;
	o.yes = false;
	asked = 0;
	s = call(&o, "rec", "{}", &okv, &approval);
	ok(okv && asked == 0, "no side effects: runs without asking");
	is_str(approval, "not needed", "no side effects: recorded");
	free(s);
}

static void test_sql(void)
{
	char path[] = "/tmp/t_agent.XXXXXX";
	int fd = mkstemp(path);
	struct agent_opts o;
	json_object *tools = NULL;
	struct ai_err err;
	char cmd[300];
	bool okv;
	char *s;

	if (fd < 0) {
		ok(0, "mkstemp");
		return;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "sqlite3 %s 'CREATE TABLE t(a INTEGER, b TEXT); "
		 "INSERT INTO t VALUES (1, \"x\")'", path);
	if (system(cmd) != 0) {
		ok(1, "# skip: no sqlite3 command");
		unlink(path);
		return;
	}
	agent_opts_init(&o);
	o.sql_db = path;
	ai_err_clear(&err);
	is_int(agent_tools(&o, &tools, &err), 0, "sql: offered with a database");
	ok(strstr(json_object_to_json_string(tools), "CREATE TABLE t(a INTEGER, b TEXT)") != NULL,
	   "sql: the schema is in the description");
	json_object_put(tools);
	check(&o, "sql", "{\"query\":\"SELECT a, b FROM t\"}", true,
	      "{\"rows\":[{\"a\":1,\"b\":\"x\"}],\"truncated\":false}", "sql: rows as JSON");
	s = call(&o, "sql", "{\"query\":\"DELETE FROM t\"}", &okv, NULL);
	ok(!okv && strstr(s, "\"error\""), "sql: a write is a tool error");
	free(s);
	o.sql_db = "/nonexistent/db";
	is_int(agent_tools(&o, &tools, &err), -1, "sql: a missing database fails at the start");
	ok(strstr(err.msg, "cannot read the database '/nonexistent/db'") != NULL, "sql: message names it");
	unlink(path);
}

/* text_json: one cleaner for tool output (NUL replaced) and SQL values (NUL kept). */
static void test_text_json(void)
{
	json_object *j;
	size_t n;
	const char *s;

	j = text_json("plain", 5, TEXT_NUL_REPLACE);
	is_str(json_object_get_string(j), "plain", "text_json: valid UTF-8 is kept as it is");
	json_object_put(j);
	j = text_json(NULL, 3, TEXT_NUL_KEEP);
	is_str(json_object_get_string(j), "", "text_json: NULL is the empty string");
	json_object_put(j);
	j = text_json("a\xff" "b", 3, TEXT_NUL_KEEP);
	is_str(json_object_get_string(j), "a\xef\xbf\xbd" "b", "text_json: a bad byte becomes U+FFFD");
	json_object_put(j);
	j = text_json("a\0b\xc3", 4, TEXT_NUL_REPLACE);
	is_str(json_object_get_string(j), "a\xef\xbf\xbd" "b\xef\xbf\xbd",
	       "text_json: tool output loses its NUL and a cut character to U+FFFD");
	json_object_put(j);
	j = text_json("a\0b\xc3", 4, TEXT_NUL_KEEP);
	s = json_object_get_string(j);
	n = (size_t)json_object_get_string_len(j);
	ok(n == 6 && !memcmp(s, "a\0b\xef\xbf\xbd", 6),
	   "text_json: a database value keeps its NUL, and a cut character is U+FFFD");
	is_str(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN), "\"a\\u0000b\xef\xbf\xbd\"",
	       "text_json: a kept NUL is written as \\u0000");
	json_object_put(j);
}

/* What ai-agent's main used to do itself: tools, limits, search, the trace, the --json object. */
static void test_engine_parts(void)
{
	struct toolset ts = TOOLSET_INIT;
	struct agent_opts o;
	struct agent_result r;
	struct agent_search s;
	struct agent_tracefile tf;
	struct ai_err err, why;
	char dir[] = "/tmp/t_agent.XXXXXX", path[64], tools[64];
	const char *files[] = { tools, "tests/fixtures/agent/nope.json" };
	static const char tools_json[] = "{\"tools\": [{\"name\": \"echo\", \"description\": \"d\", "
		"\"argv\": [\"/bin/echo\"], \"side_effects\": false}]}";
	json_object *j, *ev;
	struct stat st;
	char got[256];
	ssize_t n;
	int fd;

	ai_err_clear(&err);
	ai_err_clear(&why);
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(tools, sizeof(tools), "%s/tools.json", dir);
	fd = open(tools, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, tools_json, sizeof(tools_json) - 1) == (ssize_t)sizeof(tools_json) - 1,
	   "a tools file");
	close(fd);
	is_int(toolset_load_all(&ts, true, files, 1, &err), 0, "load_all: a good tools file loads");
	ok(ts.n > 0, "load_all: its tools are there");
	toolset_release(&ts);
	is_int(toolset_load_all(&ts, true, files, 2, &err), -1, "load_all: a missing file fails");
	is_int(err.code, AI_EX_CONFIG, "load_all: as a configuration error");
	toolset_release(&ts);

	agent_opts_init(&o);
	o.lim.timeout_ms = 1234;
	agent_opts_limits(&o);
	is_int(o.sql.timeout_ms, 1234, "limits: a tool timeout given applies to SQL too");
	is_int(o.lim.max_memory_mb, AGENT_TOOL_MEMORY_MB, "limits: memory defaults");
	ok(getuid() == 0 ? o.lim.max_procs == 0 : o.lim.max_procs > AGENT_TOOL_PROCS_MARGIN,
	   "limits: processes are what the user runs plus a margin (none for root)");
	o.lim.max_memory_mb = 16;
	agent_opts_limits(&o);
	is_int(o.lim.max_memory_mb, 16, "limits: a memory limit given stays");

	is_int(agent_search_open(&s, NULL, "/nonexistent/index.db", NULL, &why, &err), -1,
	       "search_open: an index named that is not there fails");
	ok(!s.kb && !why.msg[0], "search_open: no search tool, no warning");
	agent_search_close(&s);

	/* An unknown count (-1) is null, as every usage object writes it (jv_usage). */
	memset(&r, 0, sizeof(r));
	r.answer = (char *)"42";
	r.steps = 3;
	r.prompt_tokens = 10;
	r.completion_tokens = -1;
	r.cost = NAN;
	j = agent_result_json(&r, 7);
	is_str(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
	       "{\"answer\":\"42\",\"steps\":3,\"usage\":{\"prompt_tokens\":10,"
	       "\"completion_tokens\":null},\"cost\":null,\"model\":null,"
	       "\"max_steps_reached\":false,\"calls\":null,\"latency_ms\":7}",
	       "result_json: the --json object, fields in order");
	json_object_put(j);

	snprintf(path, sizeof(path), "%s/trace", dir);
	is_int(agent_tracefile_open(&tf, path, &err), 0, "tracefile: opens");
	ok(!stat(path, &st) && (st.st_mode & 0777) == 0600, "tracefile: mode 0600");
	ev = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string("a/b"));
	is_int(agent_tracefile_write(&tf, ev), 0, "tracefile: a line");
	is_int(agent_tracefile_write(&tf, ev), 0, "tracefile: another");
	is_int(agent_tracefile_close(&tf), 0, "tracefile: closes");
	fd = open(path, O_RDONLY);
	n = read(fd, got, sizeof(got) - 1);
	close(fd);
	got[n > 0 ? n : 0] = '\0';
	is_str(got, "{\"event\":\"a/b\"}\n{\"event\":\"a/b\"}\n", "tracefile: JSON lines, slashes plain");
	is_int(agent_tracefile_open(&tf, dir, &err), -1, "tracefile: a directory cannot be the trace");
	ok(strstr(err.msg, "cannot open the trace '") && strstr(err.msg, "': Is a directory"),
	   "tracefile: the error names the file and the reason");
	if (agent_tracefile_open(&tf, "/dev/full", &err) == 0) {
		is_int(agent_tracefile_write(&tf, ev), -1, "tracefile: a failed write says so");
		is_int(errno, ENOSPC, "tracefile: with errno");
		is_int(agent_tracefile_write(&tf, ev), 0, "tracefile: once: later lines are dropped quietly");
		agent_tracefile_close(&tf);
	}
	json_object_put(ev);
	unlink(path);
	unlink(tools);
	rmdir(dir);
}

int main(void)
{
	test_engine_parts();
	test_text_json();
	test_check_args();
	test_tools();
	test_calls();
	test_sql();
	return tap_done();
}
