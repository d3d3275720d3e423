/*
 * t_chatstream.c - assembling streamed chat replies, as real servers send
 * them (COMPAT.md), and the fast path checked against json-c on every
 * input: each stream runs twice, once with the fast path and once
 * without, and both runs must agree on everything.
 */
#include "api/chatstream.h"
#include "tap.h"

struct res {
	int rc;
	int code;
	char msg[256];
	char *content;
	size_t content_len;
	char *deltas;          /* every on_delta piece, each followed by '|' */
	int ndeltas;
	char finish[32];
	long pt, ct;
	long cached, reasoning_tokens;
	char *reasoning;       /* every on_reasoning piece, each followed by '|' */
	char *refusal;
	bool done;
	char *tools;           /* chatstream_tool_calls as JSON text, or "(none)" */
	long fast;             /* chunks read by the fast path */
	int stop_at;           /* on_delta returns AI_EX_IOERR at this call (1-based); 0 never */
};

struct dctx {
	struct buf b;
	int n, stop_at;
	struct buf r;           /* the reasoning pieces */
};

static int on_delta(const char *text, size_t len, void *ud)
{
	struct dctx *d = ud;

	buf_add(&d->b, text, len);
	buf_addch(&d->b, '|');
	d->n++;
	return d->stop_at && d->n == d->stop_at ? AI_EX_IOERR : 0;
}

static int on_reasoning(const char *text, size_t len, void *ud)
{
	struct dctx *d = ud;

	buf_add(&d->r, text, len);
	buf_addch(&d->r, '|');
	return 0;
}

/* Runs an SSE body through sse + chatstream, ending it; fast or slow path. */
static struct res run(const char *body, size_t len, bool fast, size_t max_content, int stop_at)
{
	struct chatstream cs;
	struct sse_parser p;
	struct dctx d = { BUF_INIT, 0, stop_at, BUF_INIT };
	struct ai_err err;
	struct res r;
	json_object *tc;

	memset(&r, 0, sizeof(r));
	ai_err_clear(&err);
	chatstream_init(&cs, max_content);
	cs.no_fast = !fast;
	cs.on_delta = on_delta;
	cs.on_reasoning = on_reasoning;
	cs.ud = &d;
	sse_init(&p, 1 << 16, 1 << 20);
	buf_addstr(&d.b, "");
	buf_addstr(&d.r, "");
	r.rc = chatstream_feed(&cs, &p, body, len, &err);
	if (r.rc == 0)
		r.rc = chatstream_end(&cs, &p, &err);
	r.code = r.rc ? err.code : 0;
	memcpy(r.msg, r.rc ? err.msg : "", r.rc ? sizeof(r.msg) : 1);
	r.content_len = cs.content.len;
	r.content = buf_detach(&cs.content, NULL);
	r.deltas = buf_detach(&d.b, NULL);
	r.ndeltas = d.n;
	memcpy(r.finish, cs.finish_reason, sizeof(r.finish));
	r.pt = cs.prompt_tokens;
	r.ct = cs.completion_tokens;
	r.cached = cs.cached_tokens;
	r.reasoning_tokens = cs.reasoning_tokens;
	r.reasoning = buf_detach(&d.r, NULL);
	buf_addstr(&cs.refusal, "");
	r.refusal = buf_detach(&cs.refusal, NULL);
	r.done = cs.done;
	r.fast = cs.fast_chunks;
	tc = chatstream_tool_calls(&cs);
	r.tools = strdup(tc ? json_object_to_json_string_ext(tc, JSON_C_TO_STRING_PLAIN) : "(none)");
	json_object_put(tc);
	chatstream_release(&cs);
	sse_release(&p);
	return r;
}

static void res_free(struct res *r)
{
	free(r->content);
	free(r->deltas);
	free(r->tools);
	free(r->reasoning);
	free(r->refusal);
}

static bool res_same(const struct res *a, const struct res *b)
{
	return a->rc == b->rc && a->code == b->code && strcmp(a->msg, b->msg) == 0 &&
	       a->content_len == b->content_len &&
	       memcmp(a->content, b->content, a->content_len) == 0 &&
	       strcmp(a->deltas, b->deltas) == 0 && a->ndeltas == b->ndeltas &&
	       strcmp(a->finish, b->finish) == 0 && a->pt == b->pt && a->ct == b->ct &&
	       a->done == b->done && strcmp(a->tools, b->tools) == 0 && a->cached == b->cached &&
	       a->reasoning_tokens == b->reasoning_tokens && strcmp(a->reasoning, b->reasoning) == 0 &&
	       strcmp(a->refusal, b->refusal) == 0;
}

static int nsame, ndiff;

/* Both paths; reports a disagreement, returns the fast path's result. */
static struct res both(const char *body, size_t len, size_t max_content, int stop_at)
{
	struct res f = run(body, len, true, max_content, stop_at);
	struct res s = run(body, len, false, max_content, stop_at);

	if (res_same(&f, &s)) {
		nsame++;
	} else {
		ndiff++;
		if (ndiff <= 5)
			printf("# paths disagree on: %.*s\n#  fast: rc %d '%s' deltas '%s' finish '%s'\n"
			       "#  slow: rc %d '%s' deltas '%s' finish '%s'\n", (int)(len > 300 ? 300 : len),
			       body, f.rc, f.msg, f.deltas, f.finish, s.rc, s.msg, s.deltas, s.finish);
	}
	res_free(&s);
	return f;
}

static struct res go(const char *body)
{
	return both(body, strlen(body), 0, 0);
}

/* ---- server shapes (COMPAT.md) ---- */

static void test_openai(void)
{
	struct res r = go(
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
		"\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_x\",\"choices\":[{\"index\":0,"
		"\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
		"\"finish_reason\":null}],\"usage\":null}\n\n"
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
		"\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
		"\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
		"data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},"
		"\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
		"data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
		"\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
		"data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
		"\"completion_tokens\":2,\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n"
		"data: [DONE]\n\n");

	is_int(r.rc, 0, "openai: complete");
	is_str(r.content, "Hello world", "openai: content");
	is_str(r.deltas, "Hello| world|", "openai: one on_delta per non-empty delta");
	is_str(r.finish, "stop", "openai: finish_reason");
	is_int(r.pt, 12, "openai: usage-only chunk gives prompt tokens");
	is_int(r.ct, 2, "openai: completion tokens");
	ok(r.done, "openai: [DONE] seen");
	is_str(r.tools, "(none)", "openai: no tool calls");
	is_int(r.fast, 4, "openai: the four plain chunks took the fast path");
	res_free(&r);
}

static void test_llama(void)
{
	/* content null first, finish on the last content chunk, usage and
	 * timings in it, a different id on every chunk, CRLF line ends */
	struct res r = go(
		"data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\","
		"\"content\":null}}],\"created\":1,\"id\":\"chatcmpl-a\",\"model\":\"m\",\"object\":"
		"\"chat.completion.chunk\"}\r\n\r\n"
		"data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"Hi\"}}],"
		"\"id\":\"chatcmpl-b\"}\r\n\r\n"
		"data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{\"content\":\"!\"}}],"
		"\"id\":\"chatcmpl-c\",\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":5,"
		"\"total_tokens\":7},\"timings\":{\"prompt_n\":5,\"predicted_per_second\":41.5}}\r\n\r\n"
		"data: [DONE]\r\n\r\n");

	is_int(r.rc, 0, "llama.cpp: complete");
	is_str(r.content, "Hi!", "llama.cpp: content");
	is_int(r.ndeltas, 2, "llama.cpp: content null gives no delta");
	is_str(r.finish, "length", "llama.cpp: finish on the last content chunk");
	is_int(r.pt, 5, "llama.cpp: usage in the final chunk");
	is_int(r.ct, 2, "llama.cpp: completion tokens");
	res_free(&r);
}

static void test_no_role_no_finish(void)
{
	const char *body =
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"id\":\"1\"}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"\"}}],\"id\":\"2\"}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"id\":\"3\"}\n\n";
	struct res r = go(body);
	struct buf b = BUF_INIT;

	is_str(r.content, "ab", "no role delta, no finish: content");
	is_str(r.deltas, "a|b|", "empty content delta: no on_delta call");
	is_str(r.finish, "", "no finish_reason: stays empty");
	is_int(r.pt, -1, "no usage: -1");
	is_int(r.rc, -1, "no [DONE] and no finish: incomplete");
	is_int(r.code, AI_EX_TEMPFAIL, "incomplete stream is a temporary failure");
	res_free(&r);

	buf_addf(&b, "%sdata: [DONE]\n\n", body);
	r = go(b.data);
	is_int(r.rc, 0, "no finish_reason but [DONE]: complete");
	res_free(&r);

	buf_reset(&b);
	buf_addf(&b, "%sdata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", body);
	r = go(b.data);
	is_int(r.rc, -1, "finish_reason but no [DONE]: incomplete (the usage chunk may be lost)");
	ok(strstr(r.msg, "without [DONE]") != NULL, "says [DONE] is missing: %s", r.msg);
	res_free(&r);

	buf_addstr(&b, "data: {\"choices\":[{\"delta\":{\"content\":\"x");
	r = go(b.data);
	is_int(r.rc, -1, "cut inside an event: incomplete even after a finish_reason");
	ok(strstr(r.msg, "cut short") != NULL, "says the stream was cut short: %s", r.msg);
	is_str(r.content, "ab", "what arrived before the cut is kept");
	res_free(&r);
	buf_release(&b);
}

static void test_escapes(void)
{
	struct res r = go(
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\\nb\\\"c\\\\d\\/e\\tf\\r\\b\\f\"}}]}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\u4E2D\\ud83d\\ude00\\u0041\"}}]}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"raw \xc3\xa9 \xf0\x9f\x98\x80\"}}]}\n\n"
		"data: [DONE]\n\n");

	is_str(r.content, "a\nb\"c\\d/e\tf\r\b\f" "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" "A"
	       "raw \xc3\xa9 \xf0\x9f\x98\x80", "escapes and surrogate pairs decode exactly");
	is_int(r.fast, 3, "common escapes stay on the fast path");
	res_free(&r);

	/* What json-c alone decides: the fast path must step aside. */
	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"x\\ud83dy\\ude00z\"}}]}\n\n");
	is_str(r.content, "x\xef\xbf\xbdy\xef\xbf\xbdz", "lone surrogates become U+FFFD (as json-c does)");
	is_int(r.fast, 0, "lone surrogate: slow path");
	res_free(&r);
	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}\n\n");
	/* A NUL would end the answer as a C string downstream: U+FFFD keeps what follows. */
	is_int((long)r.content_len, 5, "\\u0000 becomes U+FFFD");
	is_str(r.content, "a\xef\xbf\xbd" "b", "  and the text after it is kept");
	is_int(r.fast, 0, "\\u0000: slow path");
	res_free(&r);
	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}\n\n");
	is_str(r.content, "b", "duplicate key: the last wins, as in json-c");
	res_free(&r);
}

static void test_tools(void)
{
	struct res r = go(
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
		"\"tool_calls\":[{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":"
		"{\"name\":\"get_weather\",\"arguments\":\"\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"\","
		"\"type\":\"function\",\"function\":{\"name\":\"calc\",\"arguments\":\"{\\\"e\\\"\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
		"{\"arguments\":\"{\\\"city\\\": \"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"\","
		"\"function\":{\"arguments\":\":\\\"1+1\\\"}\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
		"{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n"
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
		"data: [DONE]\n\n");

	is_int(r.rc, 0, "tool calls: complete");
	is_str(r.tools,
	       "[{\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
	       "\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
	       "{\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":\"calc\","
	       "\"arguments\":\"{\\\"e\\\":\\\"1+1\\\"}\"}}]",
	       "two tool calls interleaved by index, id \"\" kept");
	is_str(r.finish, "tool_calls", "finish_reason tool_calls");
	is_str(r.content, "", "no content");
	res_free(&r);

	/* content beside tool_calls; a gap in the indexes; no index at all */
	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"Let me check.\",\"tool_calls\":[{\"index\":2,"
	       "\"id\":\"c2\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n"
	       "data: [DONE]\n\n");
	is_str(r.content, "Let me check.", "leftover text beside tool_calls kept");
	is_str(r.tools, "[{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]",
	       "unused indexes are skipped");
	res_free(&r);

	r = go("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\","
	       "\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n"
	       "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n"
	       "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\","
	       "\"arguments\":{\"y\":2}}}]}}]}\n\n"
	       "data: [DONE]\n\n");
	is_str(r.tools,
	       "[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}},"
	       "{\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"y\\\":2}\"}}]",
	       "without index: a new id starts a new call; object arguments kept as text");
	res_free(&r);

	r = go("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":64,\"id\":\"x\"}]}}]}\n\n");
	is_int(r.rc, -1, "tool call index 64 refused");
	is_int(r.code, AI_EX_DATAERR, "as bad data");
	res_free(&r);
	r = go("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1,\"id\":\"x\"}]}}]}\n\n");
	is_int(r.code, AI_EX_DATAERR, "negative tool call index refused");
	res_free(&r);
}

static void test_errors(void)
{
	struct res r = go(
		"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"
		"data: {\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":\"unavailable_error\"}}\n\n");

	is_int(r.rc, -1, "error object: fails");
	is_int(r.code, AI_EX_UNAVAILABLE, "error object: service unavailable");
	ok(strstr(r.msg, "'Loading model'") != NULL, "error object: message quoted: %s", r.msg);
	is_str(r.content, "par", "text before the error is kept");
	res_free(&r);

	r = go("data: {\"error\":\"out of\\ncredits\"}\n\n");
	is_int(r.code, AI_EX_UNAVAILABLE, "error string: service unavailable");
	ok(strstr(r.msg, "'out of credits'") != NULL, "error string quoted, newline made a space: %s", r.msg);
	res_free(&r);

	r = go("data: {\"error\":{\"code\":500}}\n\n");
	ok(strstr(r.msg, "{\"code\":500}") != NULL, "error without message: its JSON: %s", r.msg);
	res_free(&r);

	r = go("data: {\"error\":null,\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n");
	is_int(r.rc, 0, "error: null is no error");
	is_str(r.content, "ok", "error: null, content read");
	res_free(&r);

	r = go("event: error\ndata: {\"message\":\"overloaded\"}\n\n");
	is_int(r.code, AI_EX_UNAVAILABLE, "event: error");
	ok(strstr(r.msg, "'overloaded'") != NULL, "event: error message: %s", r.msg);
	res_free(&r);

	r = go("event: error\ndata: plain text\n\n");
	ok(strstr(r.msg, "'plain text'") != NULL, "event: error with text data: %s", r.msg);
	res_free(&r);

	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
	       "error: {\"code\":500,\"message\":\"context full\",\"type\":\"server_error\"}\n\n");
	is_int(r.code, AI_EX_UNAVAILABLE, "llama.cpp error: field line");
	ok(strstr(r.msg, "'context full'") != NULL, "llama.cpp error message: %s", r.msg);
	res_free(&r);

	{
		char big[600];

		memset(big, 'x', sizeof(big));
		memcpy(big, "data: {\"error\":\"\xc3\xa9", 18);
		memcpy(big + sizeof(big) - 6, "\"}\n\n", 5);
		r = go(big);
		ok(strlen(r.msg) < sizeof(r.msg) && strstr(r.msg, "...'") != NULL,
		   "long error message cut, marked: %.40s", r.msg);
		res_free(&r);
	}
}

static void test_bad_data(void)
{
	static const char *const bad[] = {
		"data: {not json}\n\n", "data: {\"choices\":[}\n\n", "data: {\"a\":1} x\n\n",
		"data: {\"a\":1}{}\n\n", "data: \"text\"\n\n", "data: [1,2]\n\n", "data: 12\n\n",
		"data: null\n\n", "data: {\"a\":\n\n", "data: {\"a\":1}\0\n\n", "data: [DONE] \n\n",
	};
	size_t i;
	struct res r;

	for (i = 0; i < AI_ARRAY_LEN(bad); i++) {
		size_t len = strlen(bad[i]);

		if (i == 9)
			len = 16;
		r = both(bad[i], len, 0, 0);
		is_int(r.code, AI_EX_DATAERR, "not a JSON object: '%.*s'", (int)(len - 2), bad[i]);
		ok(strstr(r.msg, "stream data is not") != NULL, "  says so: %s", r.msg);
		res_free(&r);
	}

	r = go("data: \n\ndata:  \t\n\nevent: ping\ndata: {}\n\n: c\n\n"
	       "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n"
	       "data: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\ndata: garbage\n\n");
	is_int(r.rc, 0, "blank data, pings and anything after [DONE] ignored");
	is_str(r.content, "a", "  content");
	res_free(&r);
}

static void test_limits_and_abort(void)
{
	const char *body =
		"data: {\"choices\":[{\"delta\":{\"content\":\"abc\"}}]}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"def\"}}]}\n\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"g\"}}]}\n\ndata: [DONE]\n\n";
	struct res r;

	r = both(body, strlen(body), 7, 0);
	is_int(r.rc, 0, "reply at the cap");
	res_free(&r);
	r = both(body, strlen(body), 5, 0);
	is_int(r.code, AI_EX_DATAERR, "reply over the cap");
	ok(strstr(r.msg, "over 5 bytes") != NULL, "  says the cap: %s", r.msg);
	ok(!strstr(r.msg, "raise"), "  and advises nothing that nothing does: %s", r.msg);
	is_str(r.deltas, "abc|", "  nothing past the cap printed");
	res_free(&r);
	r = both(body, strlen(body), 0, 2);
	is_int(r.rc, -1, "on_delta abort");
	is_int(r.code, AI_EX_IOERR, "  with the callback's code");
	is_str(r.content, "abcdef", "  content up to the abort");
	res_free(&r);
}

/* ---- reasoning models and the shapes of issue 14 ---- */

static void test_reasoning(void)
{
	struct res r;

	/* DeepSeek, vLLM, llama.cpp: reasoning_content, then content; null on the content deltas. */
	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
	       "\"reasoning_content\":\"think\"}}]}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"ing\"}}]}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\",\"reasoning_content\":null}}]}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	       "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":30,"
	       "\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":"
	       "{\"reasoning_tokens\":28}}}\n\ndata: [DONE]\n\n");
	is_int(r.rc, 0, "reasoning_content: complete");
	is_str(r.content, "42", "  never part of the answer");
	is_str(r.reasoning, "think|ing|", "  handed to on_reasoning as it arrives");
	is_int(r.pt, 9, "  usage after an empty choices chunk: prompt");
	is_int(r.cached, 4, "  cached_tokens from prompt_tokens_details");
	is_int(r.reasoning_tokens, 28, "  reasoning_tokens from completion_tokens_details");
	is_int(r.fast, 4, "  every chunk but the usage one on the fast path");
	res_free(&r);

	/* OpenRouter and Ollama: "reasoning". */
	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"hm\"}}]}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\n"
	       "data: [DONE]\n\n");
	is_str(r.content, "ok", "reasoning: not the answer");
	is_str(r.reasoning, "hm|", "  but the reasoning");
	is_int(r.cached, -1, "  no usage: cached unknown");
	res_free(&r);

	/* A refusal arrives as deltas of its own, content null. */
	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
	       "\"refusal\":\"I can\"}}]}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"not.\"},\"finish_reason\":\"stop\"}]}\n\n"
	       "data: [DONE]\n\n");
	is_str(r.refusal, "I cannot.", "refusal deltas joined");
	is_str(r.content, "", "  and no answer");
	res_free(&r);

	/* Content as a list of parts. */
	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
	       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"b\"}]}}]}\n\n"
	       "data: [DONE]\n\n");
	is_str(r.content, "ab", "content parts: the text parts joined");
	is_str(r.deltas, "ab|", "  as one delta");
	res_free(&r);

	/* llama.cpp without usage: its timings, the last of them. */
	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}],\"timings\":{\"cache_n\":3,"
	       "\"prompt_n\":1,\"predicted_n\":1}}\n\n"
	       "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"timings\":"
	       "{\"cache_n\":35,\"prompt_n\":1,\"prompt_ms\":1.3,\"predicted_n\":3}}\n\ndata: [DONE]\n\n");
	is_int(r.pt, 36, "timings: prompt_n + cache_n prompt tokens");
	is_int(r.cached, 35, "  cache_n of them cached");
	is_int(r.ct, 3, "  predicted_n completion tokens, from the last timings");
	res_free(&r);

	/* Usage wins over timings, before or after them. */
	r = go("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2},"
	       "\"timings\":{\"cache_n\":0,\"prompt_n\":99,\"predicted_n\":99}}\n\n"
	       "data: {\"choices\":[],\"timings\":{\"cache_n\":0,\"prompt_n\":77,\"predicted_n\":77}}\n\n"
	       "data: [DONE]\n\n");
	is_int(r.pt, 5, "usage wins over timings");
	is_int(r.ct, 2, "  also over later timings");
	res_free(&r);

	/* A count no model could use is unknown, not believed. */
	r = go("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
	       "\"prompt_tokens_details\":{\"cached_tokens\":-3},\"completion_tokens_details\":"
	       "{\"reasoning_tokens\":1e99}}}\n\ndata: [DONE]\n\n");
	is_int(r.cached, -1, "a negative cached_tokens is unknown");
	is_int(r.reasoning_tokens, -1, "an absurd reasoning_tokens is unknown");
	res_free(&r);
}

static void test_shapes(void)
{
	struct res r;

	r = go("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}},"
	       "{\"index\":1,\"delta\":{\"content\":\"B\"}}]}\n\ndata: [DONE]\n\n");
	is_str(r.content, "A", "n>1: only choice 0");
	res_free(&r);
	r = go("data: {\"x\":{\"y\":[1,-2.5,true,false,null,{\"z\":\"\\u00e9\"}]},\"choices\":[{\"delta\":"
	       "{\"content\":\"ok\",\"audio_note\":\"hmm\",\"extra\":[[]]},\"logprobs\":{\"content\":"
	       "[{\"token\":\"ok\",\"logprob\":-0.1,\"bytes\":[111,107]}]},\"index\":0}],\"usage\":null,"
	       "\"\":{}}\n\ndata: [DONE]\n\n");
	is_str(r.content, "ok", "unknown fields anywhere ignored");
	is_int(r.fast, 1, "  and read on the fast path");
	res_free(&r);
	r = go("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":"
	       "\"a_very_long_finish_reason_that_goes_on_and_on\"}]}\n\n");
	is_str(r.finish, "a_very_long_finish_reason_that_", "long finish_reason cut at 31 bytes");
	res_free(&r);
	r = go("data: {\"choices\":[{\"index\":\"0\",\"delta\":{\"content\":\"s\"}},{\"index\":0,\"delta\":"
	       "{\"content\":\"n\"}}],\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":3}}\n\n");
	is_str(r.content, "n", "index must be the number 0");
	is_int(r.pt, -1, "non-integer usage ignored");
	is_int(r.ct, 3, "integer usage read");
	res_free(&r);
}

/* Through chatstream_feed in pieces of every size: same deltas, same reply. */
static void test_pieces(void)
{
	static const char body[] =
		"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\"caf\xc3\xa9 \\ud83d\\ude00\"}}]}\r\n\r\n"
		"data: {\"choices\":[{\"delta\":{\"content\":\" ok\"},\"finish_reason\":\"stop\"}]}\r\n\r\n"
		"data: [DONE]\r\n\r\n";
	size_t len = sizeof(body) - 1, step, at;
	bool all = true;

	for (step = 1; step <= len; step++) {
		struct chatstream cs;
		struct sse_parser p;
		struct dctx d = { BUF_INIT, 0, 0, BUF_INIT };
		struct ai_err err;
		int rc = 0;

		chatstream_init(&cs, 0);
		cs.on_delta = on_delta;
		cs.ud = &d;
		sse_init(&p, 0, 0);
		for (at = 0; at < len && !rc; at += step)
			rc = chatstream_feed(&cs, &p, body + at, len - at < step ? len - at : step, &err);
		if (!rc)
			rc = chatstream_end(&cs, &p, &err);
		if (rc || !d.b.data || strcmp(d.b.data, "caf\xc3\xa9 \xf0\x9f\x98\x80| ok|") != 0 ||
		    strcmp(cs.finish_reason, "stop") != 0 || !cs.done) {
			if (all)
				printf("# pieces of %zu: rc %d deltas '%s'\n", step, rc, d.b.data);
			all = false;
		}
		buf_release(&d.b);
		sse_release(&p);
		chatstream_release(&cs);
	}
	ok(all, "chatstream_feed in pieces of every size gives the same reply");
}

/* ---- the fast path against json-c, on many generated and mutated chunks ---- */

static unsigned long rng = 12345;

static unsigned rnd(unsigned n)
{
	rng = rng * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)((rng >> 33) % n);
}

static const char *const pieces[] = {
	" word", "Hello", "", "\\n", "\\\"", "\\\\", "\\/", "\\t", "\\u00e9", "\\u4e2d", "\\ud83d\\ude00",
	"\\ud83d", "\\ude00", "\\u0000", "\\u001f", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xff", "\\x", "'",
	"\\uZZZZ", "\\u12", " ", "{", "}", "[", "]", ":", ",",
};

static const char *const templates[] = {
	"{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
	"\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_x\",\"choices\":[{\"index\":0,"
	"\"delta\":{\"content\":\"%s\"},\"logprobs\":null,\"finish_reason\":null}]}",
	"{\"choices\":[{\"delta\":{\"content\":\"%s\"},\"finish_reason\":\"stop\",\"index\":0}],"
	"\"usage\":null}",
	"{\"choices\":[{\"finish_reason\":\"%s\",\"index\":0,\"delta\":{}}],\"created\":-0.5}",
	" {\"choices\" : [ { \"delta\" : { \"role\" : \"assistant\" , \"content\" : \"%s\" } } ] } \r\n",
	"{\"choices\":[{\"delta\":{\"content\":\"%s\",\"tool_calls\":[{\"index\":0,\"function\":"
	"{\"arguments\":\"x\"}}]}}]}",
	"{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},\"x\":\"%s\"}",
	"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
	"\"reasoning_content\":\"%s\"},\"finish_reason\":null}]}",
	"{\"choices\":[{\"delta\":{\"reasoning\":\"%s\",\"content\":\"\"}}]}",
	"{\"choices\":[{\"delta\":{\"reasoning\":null,\"reasoning_content\":\"%s\"}}]}",
};

static void add_chunk(struct buf *b, const char *json, size_t n)
{
	buf_addstr(b, "data: ");
	buf_add(b, json, n);
	buf_addstr(b, "\n\n");
}

static void test_differential(void)
{
	struct buf body = BUF_INIT, json = BUF_INIT, word = BUF_INIT;
	int i, j, mutated = 0;
	struct res r;
	long fast = 0;

	nsame = ndiff = 0;
	for (i = 0; i < 6000; i++) {
		const char *t = templates[rnd(AI_ARRAY_LEN(templates))];
		int np = 1 + (int)rnd(4);

		buf_reset(&word);
		for (j = 0; j < np; j++)
			buf_addstr(&word, pieces[rnd(AI_ARRAY_LEN(pieces))]);
		buf_reset(&json);
		buf_addf(&json, t, word.data);
		/* Half the time, damage it: flip, drop, insert or cut a byte. */
		if (rnd(2)) {
			size_t at = rnd((unsigned)json.len);
			static const char junk[] = "\"\\{}[],:0-1.eE nul\x01\x7f\xc3";

			mutated++;
			switch (rnd(4)) {
			case 0:
				json.data[at] = junk[rnd(sizeof(junk) - 1)];
				break;
			case 1:
				memmove(json.data + at, json.data + at + 1, json.len - at);
				json.len--;
				break;
			case 2:
				buf_addch(&json, ' ');
				memmove(json.data + at + 1, json.data + at, json.len - at - 1);
				json.data[at] = junk[rnd(sizeof(junk) - 1)];
				break;
			default:
				json.len = at;
				break;
			}
		}
		buf_reset(&body);
		add_chunk(&body, "{\"choices\":[{\"delta\":{\"content\":\"pre\"}}]}", 41);
		add_chunk(&body, json.data, json.len);
		buf_addstr(&body, "data: [DONE]\n\n");
		r = both(body.data, body.len, 0, 0);
		fast += r.fast - 1;   /* not counting the "pre" chunk */
		res_free(&r);
	}
	is_int(ndiff, 0, "fast path and json-c agree on %d generated chunks (%d damaged)", nsame + ndiff,
	       mutated);
	ok(fast > 1500, "the fast path read many of them (%ld chunks)", fast);
	buf_release(&body);
	buf_release(&json);
	buf_release(&word);
}

int main(void)
{
	test_openai();
	test_llama();
	test_no_role_no_finish();
	test_escapes();
	test_tools();
	test_errors();
	test_bad_data();
	test_limits_and_abort();
	test_shapes();
	test_reasoning();
	test_pieces();
	is_int(ndiff, 0, "fast and slow paths agreed on every stream above (%d)", nsame);
	test_differential();
	return tap_done();
}
