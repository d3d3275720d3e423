/*
 * t_sse.c - the event-stream parser against the WHATWG rules.
 *
 * Every case is fed whole, split in two at every byte offset, and byte by
 * byte; each way must give the same events, the same outcome and the same
 * "partial event pending" answer from sse_finish.
 */
#include "net/sse.h"
#include "tap.h"

struct rec {
	struct buf out;     /* the events, one per line, escaped */
	int stop_after;     /* callback returns 1 after this many events; 0 never */
	int nev;
};

static void add_esc(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			buf_addstr(b, "\\n");
		else if (c == '\r')
			buf_addstr(b, "\\r");
		else if (c == '\\')
			buf_addstr(b, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			buf_addf(b, "\\x%02x", c);
		else
			buf_addch(b, (char)c);
	}
}

static int record(const struct sse_event *ev, void *ud)
{
	struct rec *r = ud;

	buf_addch(&r->out, '[');
	add_esc(&r->out, ev->event, strlen(ev->event));
	buf_addstr(&r->out, "] ");
	add_esc(&r->out, ev->data, ev->data_len);
	if (ev->data[ev->data_len] != '\0')
		buf_addstr(&r->out, " NOT-NUL-TERMINATED");
	if (*ev->id) {
		buf_addstr(&r->out, " id=");
		add_esc(&r->out, ev->id, strlen(ev->id));
	}
	if (ev->retry >= 0)
		buf_addf(&r->out, " retry=%ld", ev->retry);
	buf_addch(&r->out, '|');
	r->nev++;
	return r->stop_after && r->nev >= r->stop_after;
}

struct outcome {
	char *events;
	int rc;
	int code;
	bool partial;
};

struct tcase {
	const char *name;
	const char *in;
	size_t len;
	const char *want;    /* expected events */
	int rc;              /* expected result of the feeds: 0 or -1 */
	int code;            /* expected err.code when rc is -1 */
	bool partial;        /* expected from sse_finish */
	size_t max_line, max_event;
	bool no_error_field;
};

/* Feeds in[0..len) in the pieces cut at cuts[0..ncut) (ascending offsets). */
static struct outcome run(const struct tcase *tc, const char *in, size_t len,
			  const size_t *cuts, size_t ncut)
{
	struct sse_parser p;
	struct rec r = { BUF_INIT, 0, 0 };
	struct ai_err err;
	struct outcome o;
	size_t i, at = 0;

	sse_init(&p, tc->max_line, tc->max_event);
	if (tc->no_error_field)
		p.error_field = false;
	buf_addstr(&r.out, "");
	o.rc = 0;
	o.code = 0;
	for (i = 0; i <= ncut; i++) {
		size_t to = i < ncut ? cuts[i] : len;

		o.rc = sse_feed(&p, in + at, to - at, record, &r, &err);
		if (o.rc) {
			o.code = err.code;
			break;
		}
		at = to;
	}
	o.partial = sse_finish(&p);
	sse_release(&p);
	o.events = buf_detach(&r.out, NULL);
	return o;
}

#define S(x) x, sizeof(x) - 1

static const struct tcase cases[] = {
	{ "simple event", S("data: hello\n\n"), "[] hello|", 0, 0, false, 0, 0, false },
	{ "CRLF line ends", S("data: a\r\n\r\ndata: b\r\n\r\n"), "[] a|[] b|", 0, 0, false, 0, 0, false },
	{ "lone CR line ends", S("data: a\r\rdata: b\r\r"), "[] a|[] b|", 0, 0, false, 0, 0, false },
	{ "mixed line ends", S("data: a\r\ndata: b\ndata: c\r\r\ndata: d\n\r"),
	  "[] a\\nb\\nc|[] d|", 0, 0, false, 0, 0, false },
	{ "CR then non-LF", S("data: a\rdata: b\r\n\n"), "[] a\\nb|", 0, 0, false, 0, 0, false },
	{ "multiple data lines", S("data: a\ndata: b\ndata: c\n\n"), "[] a\\nb\\nc|", 0, 0, false, 0, 0, false },
	{ "comment lines", S(": ping\n\ndata: x\n: in the middle\ndata: y\n\n:\n\n"),
	  "[] x\\ny|", 0, 0, false, 0, 0, false },
	{ "field without colon", S("data\n\ndata\ndata\n\n"), "[] |[] \\n|", 0, 0, false, 0, 0, false },
	{ "data:x without space", S("data:x\n\n"), "[] x|", 0, 0, false, 0, 0, false },
	{ "data: x one space", S("data: x\n\n"), "[] x|", 0, 0, false, 0, 0, false },
	{ "data:  x two spaces", S("data:  x\n\n"), "[]  x|", 0, 0, false, 0, 0, false },
	{ "data: trailing space kept", S("data: x \ndata:\ndata: \n\n"), "[] x \\n\\n|", 0, 0, false, 0, 0, false },
	{ "colons in value", S("data: a:b: c\n\n"), "[] a:b: c|", 0, 0, false, 0, 0, false },
	{ "space before colon is another field", S("data : x\n\ndata: y\n\n"), "[] y|", 0, 0, false, 0, 0, false },
	{ "event type, reset after dispatch", S("event: delta\ndata: y\n\ndata: z\n\n"),
	  "[delta] y|[] z|", 0, 0, false, 0, 0, false },
	{ "last event type wins", S("event: a\nevent: b\ndata: y\n\n"), "[b] y|", 0, 0, false, 0, 0, false },
	{ "id persists across events", S("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"),
	  "[] a id=7|[] b id=7|[] c|", 0, 0, false, 0, 0, false },
	{ "id without data is kept", S("id: 1\n\ndata: x\n\n"), "[] x id=1|", 0, 0, false, 0, 0, false },
	{ "id with NUL ignored", S("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"),
	  "[] a id=1|[] b id=1|", 0, 0, false, 0, 0, false },
	{ "retry", S("retry: 3000\ndata: a\n\n"), "[] a retry=3000|", 0, 0, false, 0, 0, false },
	{ "retry with non-digits ignored",
	  S("retry: 30x0\ndata: a\n\nretry: -5\nretry:\nretry: 1 \nretry: 99999999999999999999999\ndata: b\n\n"),
	  "[] a|[] b|", 0, 0, false, 0, 0, false },
	{ "retry alone is not an event but sticks", S("retry:15\n\ndata: a\n\n"),
	  "[] a retry=15|", 0, 0, false, 0, 0, false },
	{ "BOM dropped", S("\xEF\xBB\xBF" "data: a\n\n"), "[] a|", 0, 0, false, 0, 0, false },
	{ "BOM only at the start", S("\xEF\xBB\xBF" "data: a\n\n\xEF\xBB\xBF" "data: b\n\n"),
	  "[] a|", 0, 0, false, 0, 0, false },
	{ "only one BOM dropped", S("\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\ndata: b\n\n"),
	  "[] b|", 0, 0, false, 0, 0, false },
	{ "BOM prefix is line content", S("\xEF\xBB" "data: a\n\ndata: b\n\n"),
	  "[] b|", 0, 0, false, 0, 0, false },
	{ "BOM then blank line", S("\xEF\xBB\xBF\ndata: a\n\n"), "[] a|", 0, 0, false, 0, 0, false },
	{ "UTF-8 kept whole", S("data: h\xC3\xA9llo \xF0\x9F\x98\x80 \xE4\xB8\xAD\n\n"),
	  "[] h\\xc3\\xa9llo \\xf0\\x9f\\x98\\x80 \\xe4\\xb8\\xad|", 0, 0, false, 0, 0, false },
	{ "NUL inside data", S("data: a\0b\n\n"), "[] a\\x00b|", 0, 0, false, 0, 0, false },
	{ "unterminated last event not dispatched", S("data: a\n\ndata: b\n"),
	  "[] a|", 0, 0, true, 0, 0, false },
	{ "unterminated last line", S("data: a\n\ndata: b"), "[] a|", 0, 0, true, 0, 0, false },
	{ "unterminated comment is pending", S("data: a\n\n: keep"), "[] a|", 0, 0, true, 0, 0, false },
	{ "trailing CR ends the last line", S("data: a\r\r"), "[] a|", 0, 0, false, 0, 0, false },
	{ "empty data not dispatched", S("event: x\n\ndata: y\n\n"), "[] y|", 0, 0, false, 0, 0, false },
	{ "extra blank lines", S("\n\ndata: a\n\n\n\n\r\n"), "[] a|", 0, 0, false, 0, 0, false },
	{ "unknown fields ignored", S("foo: bar\ndata: a\nDATA: b\nData: c\nid2: x\n\n"),
	  "[] a|", 0, 0, false, 0, 0, false },
	{ "empty stream", S(""), "", 0, 0, false, 0, 0, false },
	{ "comments only", S(": hi\n: there\n"), "", 0, 0, false, 0, 0, false },
	{ "line at the cap", S("data: 1234\n\n"), "[] 1234|", 0, 0, false, 10, 0, false },
	{ "line over the cap", S("data: ok\n\ndata: 12345\n\ndata: never\n\n"),
	  "[] ok|", -1, AI_EX_DATAERR, true, 10, 0, false },
	{ "unterminated line over the cap", S("data: ok\n\ndata: 123456789"),
	  "[] ok|", -1, AI_EX_DATAERR, true, 10, 0, false },
	{ "BOM prefix counts toward the line cap", S("\xEF\xBB" "data:12345\n\n"),
	  "", -1, AI_EX_DATAERR, true, 10, 0, false },
	{ "event at the cap", S("data: abc\ndata: d\n\n"), "[] abc\\nd|", 0, 0, false, 0, 5, false },
	{ "event over the cap", S("data: a\n\ndata: abc\ndata: de\n\ndata: z\n\n"),
	  "[] a|", -1, AI_EX_DATAERR, true, 0, 5, false },
	{ "llama.cpp error field", S("data: a\n\nerror: {\"message\":\"boom\"}\n\n"),
	  "[] a|[error] {\"message\":\"boom\"}|", 0, 0, false, 0, 0, false },
	{ "error field wins over data", S("data: a\nerror: bad\n\ndata: b\n\n"),
	  "[error] bad|[] b|", 0, 0, false, 0, 0, false },
	{ "error field ignored in strict mode", S("error: boom\n\ndata: a\n\n"),
	  "[] a|", 0, 0, false, 0, 0, true },
	{ "an OpenAI stream",
	  S("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	    ": OPENROUTER PROCESSING\n\n"
	    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	    "data: [DONE]\n\n"),
	  "[] {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}|"
	  "[] {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}|[] [DONE]|",
	  0, 0, false, 0, 0, false },
};

static bool same(const struct outcome *a, const struct outcome *b)
{
	return strcmp(a->events, b->events) == 0 && a->rc == b->rc &&
	       a->code == b->code && a->partial == b->partial;
}

static void run_case(const struct tcase *tc)
{
	size_t len = tc->len;
	struct outcome whole, o;
	size_t k, *cuts;
	bool split_ok = true, bytes_ok;

	whole = run(tc, tc->in, len, NULL, 0);
	is_str(whole.events, tc->want, "%s: events", tc->name);
	is_int(whole.rc, tc->rc, "%s: result", tc->name);
	if (tc->rc)
		is_int(whole.code, tc->code, "%s: error code", tc->name);
	is_int(whole.partial, tc->partial, "%s: partial event pending", tc->name);

	for (k = 0; k <= len; k++) {
		o = run(tc, tc->in, len, &k, 1);
		if (!same(&o, &whole)) {
			if (split_ok)
				printf("# split at %zu: got '%s' rc %d partial %d\n", k, o.events,
				       o.rc, o.partial);
			split_ok = false;
		}
		free(o.events);
	}
	ok(split_ok, "%s: same when split in two at every offset", tc->name);

	cuts = malloc((len ? len : 1) * sizeof(*cuts));
	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	o = run(tc, tc->in, len, cuts, len ? len - 1 : 0);
	bytes_ok = same(&o, &whole);
	if (!bytes_ok)
		printf("# byte by byte: got '%s'\n", o.events);
	ok(bytes_ok, "%s: same fed byte by byte", tc->name);
	free(o.events);
	free(cuts);
	free(whole.events);
}

static int feed_str(struct sse_parser *p, const char *s, struct rec *r, struct ai_err *err)
{
	return sse_feed(p, s, strlen(s), record, r, err);
}

static void test_stop_and_reuse(void)
{
	struct sse_parser p;
	struct rec r = { BUF_INIT, 1, 0 };
	struct ai_err err;

	sse_init(&p, 0, 0);
	err.code = 99;
	is_int(feed_str(&p, "data: a\n\ndata: b\n\n", &r, &err), -1, "callback stop returns -1");
	is_int(err.code, 0, "callback stop: err cleared, callback left nothing");
	is_int(r.nev, 1, "callback stop: no event after the stop");
	is_int(feed_str(&p, "data: c\n\n", &r, &err), -1, "refuses bytes after an error");
	is_int(err.code, AI_EX_SOFTWARE, "used after an error is a software error");
	ok(sse_finish(&p), "finish after a stop: the stream did not end cleanly");
	r.stop_after = 0;
	is_int(feed_str(&p, "id: 5\ndata: c\n\n", &r, &err), 0, "usable again after sse_finish");
	ok(sse_finish(&p) == false, "clean end");
	/* A reconnection: the BOM rule applies again, the last id is kept. */
	is_int(feed_str(&p, "\xEF\xBB\xBF" "data: d\n\n", &r, &err), 0, "second stream");
	ok(strstr(r.out.data, "[] d id=5|") != NULL, "last event id survives a reconnection");
	sse_release(&p);
	buf_release(&r.out);

	/* release then init again works, and an unused parser releases cleanly */
	sse_init(&p, 4, 4);
	sse_release(&p);
	sse_init(&p, 4, 4);
	is_int(sse_feed(&p, "data: 12345\n\n", 13, record, &r, NULL), -1, "NULL err is allowed");
	sse_release(&p);
	buf_release(&r.out);
}

/* Many events through one parser: buffers are reused, nothing leaks. */
static void test_many(void)
{
	struct sse_parser p;
	struct rec r = { BUF_INIT, 0, 0 };
	struct buf in = BUF_INIT;
	struct ai_err err;
	int i, rc = 0;

	for (i = 0; i < 1000; i++)
		buf_addf(&in, "data: {\"n\":%d}\r\n\r\n", i);
	sse_init(&p, 1024, 1024);
	for (i = 0; (size_t)i < in.len && !rc; i += 7)
		rc = sse_feed(&p, in.data + i, (size_t)i + 7 <= in.len ? 7 : in.len - (size_t)i,
			      record, &r, &err);
	is_int(rc, 0, "1000 events in 7-byte pieces");
	is_int(r.nev, 1000, "all 1000 dispatched");
	ok(strstr(r.out.data, "[] {\"n\":999}|") != NULL, "the last one intact");
	sse_release(&p);
	buf_release(&r.out);
	buf_release(&in);
}

int main(void)
{
	size_t i;

	for (i = 0; i < AI_ARRAY_LEN(cases); i++)
		run_case(&cases[i]);
	test_stop_and_reuse();
	test_many();
	return tap_done();
}
