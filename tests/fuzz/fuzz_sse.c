/*
 * fuzz_sse.c - libFuzzer harness for the event-stream parser and the
 * chat-stream layer over it.
 *
 * The input is an HTTP body.  It is fed whole, split at an offset taken
 * from the data, and (when short) byte by byte; the events, the outcome
 * and sse_finish's answer must be identical every way.  Every event then
 * goes through chatstream twice, with and without its fast path, and the
 * two must agree on everything.  Any difference calls abort().
 */
#include "api/chatstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rec {
	struct buf out;
	struct buf raw;      /* events as (type, data) records for chatstream */
};

static void add_field(struct buf *b, const char *s, size_t n)
{
	buf_addf(b, "%zu:", n);
	buf_add(b, s, n);
}

static int record(const struct sse_event *ev, void *ud)
{
	struct rec *r = ud;

	if (ev->data[ev->data_len] != '\0')
		abort();
	add_field(&r->out, ev->event, strlen(ev->event));
	add_field(&r->out, ev->data, ev->data_len);
	add_field(&r->out, ev->id, strlen(ev->id));
	buf_addf(&r->out, "%ld;", ev->retry);
	add_field(&r->raw, ev->event, strlen(ev->event));
	add_field(&r->raw, ev->data, ev->data_len);
	return 0;
}

struct outcome {
	struct rec r;
	int rc, code;
	bool partial;
};

static void run(const char *in, size_t len, size_t step, size_t cut, size_t max_line,
		size_t max_event, struct outcome *o)
{
	struct sse_parser p;
	struct ai_err err;
	size_t at = 0;

	buf_init(&o->r.out, 0);
	buf_init(&o->r.raw, 0);
	buf_addstr(&o->r.out, "");
	sse_init(&p, max_line, max_event);
	o->rc = 0;
	o->code = 0;
	while (at < len || (at == 0 && len == 0)) {
		size_t n = step ? step : (at < cut ? cut - at : len - at);

		if (n > len - at)
			n = len - at;
		o->rc = sse_feed(&p, in + at, n, record, &o->r, &err);
		if (o->rc) {
			o->code = err.code;
			break;
		}
		at += n;
		if (len == 0)
			break;
	}
	o->partial = sse_finish(&p);
	sse_release(&p);
}

static void same(const struct outcome *a, const struct outcome *b)
{
	if (a->rc != b->rc || a->code != b->code || a->partial != b->partial ||
	    a->r.out.len != b->r.out.len || memcmp(a->r.out.data, b->r.out.data, a->r.out.len))
		abort();
}

static void done(struct outcome *o)
{
	buf_release(&o->r.out);
	buf_release(&o->r.raw);
}

static size_t get_field(const char *s, size_t *at, const char **f)
{
	size_t n = 0;

	while (s[*at] != ':')
		n = n * 10 + (size_t)(s[(*at)++] - '0');
	(*at)++;
	*f = s + *at;
	*at += n;
	return n;
}

static int count_delta(const char *t, size_t n, void *ud)
{
	(void)t;
	*(size_t *)ud += n;
	return 0;
}

/* Every recorded event through chatstream, fast and slow: same results. */
static void chat(const struct buf *raw)
{
	struct chatstream a, b;
	struct ai_err ea, eb;
	size_t at = 0, da = 0, db = 0;
	char *ta, *tb;
	json_object *ja, *jb;

	chatstream_init(&a, 1 << 16);
	chatstream_init(&b, 1 << 16);
	b.no_fast = true;
	a.on_delta = count_delta;
	a.ud = &da;
	b.on_delta = count_delta;
	b.ud = &db;
	while (at < raw->len) {
		struct sse_event ev;
		const char *t, *d;
		size_t tn, dn;
		char type[64];
		int ra, rb;

		tn = get_field(raw->data, &at, &t);
		dn = get_field(raw->data, &at, &d);
		if (tn >= sizeof(type))
			tn = sizeof(type) - 1;
		memcpy(type, t, tn);
		type[tn] = '\0';
		/* d is inside raw, not NUL-terminated there: copy it. */
		{
			char *dd = malloc(dn + 1);

			if (!dd)
				abort();
			memcpy(dd, d, dn);
			dd[dn] = '\0';
			ev.event = type;
			ev.data = dd;
			ev.data_len = dn;
			ev.id = "";
			ev.retry = -1;
			ra = chatstream_event(&a, &ev, &ea);
			rb = chatstream_event(&b, &ev, &eb);
			free(dd);
		}
		if (ra != rb || (ra && (ea.code != eb.code || strcmp(ea.msg, eb.msg))))
			abort();
		if (ra)
			break;
	}
	if (a.content.len != b.content.len ||
	    (a.content.len && memcmp(a.content.data, b.content.data, a.content.len)) ||
	    da != db || da != a.content.len || strcmp(a.finish_reason, b.finish_reason) ||
	    a.prompt_tokens != b.prompt_tokens || a.completion_tokens != b.completion_tokens ||
	    a.done != b.done)
		abort();
	ja = chatstream_tool_calls(&a);
	jb = chatstream_tool_calls(&b);
	ta = ja ? strdup(json_object_to_json_string(ja)) : NULL;
	tb = jb ? strdup(json_object_to_json_string(jb)) : NULL;
	if ((ta == NULL) != (tb == NULL) || (ta && strcmp(ta, tb)))
		abort();
	free(ta);
	free(tb);
	json_object_put(ja);
	json_object_put(jb);
	chatstream_release(&a);
	chatstream_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct outcome whole, split, bytes;
	size_t cut = 0, i, max_line = 0, max_event = 0;

	/* Small caps for some inputs, so the limits are exercised too. */
	if (size && (data[0] & 0x0F) == 0x07) {
		max_line = 40;
		max_event = 100;
	}
	for (i = 0; i < size; i++)
		cut = cut * 31 + data[i];
	cut = size ? cut % (size + 1) : 0;

	run(in, size, 0, size, max_line, max_event, &whole);
	run(in, size, 0, cut, max_line, max_event, &split);
	same(&whole, &split);
	done(&split);
	if (size <= 512) {
		run(in, size, 1, 0, max_line, max_event, &bytes);
		same(&whole, &bytes);
		done(&bytes);
	}
	chat(&whole.r.raw);
	done(&whole);
	return 0;
}
