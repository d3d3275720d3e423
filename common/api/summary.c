/*
 * summary.c - the engine of ai-summarize: map-reduce over the chat API.
 *
 * Input longer than max_input tokens is split on paragraph and sentence
 * boundaries (chunk.h) into parts that fit; the parts are summarized
 * concurrently, then their summaries are summarized, until one is left.
 */
#include "api/summary.h"
#include "api/attach.h"
#include "api/prices.h"
#include "jsonval.h"
#include "chunk.h"

#include <math.h>

#define SYSTEM_PROMPT "You write faithful, concise summaries of the text you are given."

/* The instruction for one request: what to write, for a whole text, a part, or the parts' summaries. */
static void instruction(const struct summary_opts *o, struct buf *b, int stage, size_t part, size_t parts)
{
	if (o->prompt && stage == 0) {
		buf_addstr(b, o->prompt);
		return;
	}
	if (stage == 1)
		buf_addf(b, "This is part %zu of %zu of a longer text. Summarize this part so that the "
			 "summaries of all parts can later be combined. ", part, parts);
	else if (stage == 2)
		buf_addstr(b, "These are summaries of consecutive parts of one text. Combine them into "
			   "a single summary of the whole text. ");
	if (o->prompt && stage == 2) {
		buf_addstr(b, o->prompt);
		return;
	}
	if (stage != 1) {
		if (!strcmp(o->format, "line"))
			buf_addstr(b, "Summarize it in one line of at most 25 words. ");
		else if (!strcmp(o->format, "bullets"))
			buf_addf(b, "Summarize it as a list of bullet points starting with '- ', about %ld words in all. ",
				 o->words);
		else
			buf_addf(b, "Summarize it in one paragraph of about %ld words. ", o->words);
	} else {
		buf_addf(b, "Keep it under %ld words. ", o->words * 2);
	}
	if (o->focus)
		buf_addf(b, "Focus on: %s. ", o->focus);
	if (o->lang)
		buf_addf(b, "Write the summary in %s. ", o->lang);
	if (o->st && stage != 1)
		buf_addstr(b, "Reply with the summary as JSON that follows the given schema.");
	else
		buf_addstr(b, "Reply with the summary only, without a preamble.");
}

/*
 * The user message of a request under -T: the template filled with text
 * (the combining round first says what the text is).  -1 when out of
 * memory or when a parameter is missing, which the caller checked.
 */
static int from_template(const struct summary_opts *o, struct buf *b, const char *text, size_t len,
			 int stage)
{
	struct ai_err e;
	char *t;
	int rc;

	/* The input's last newline is the file's, not a line of the prompt. */
	while (len && strchr(" \t\r\n", text[len - 1]))
		len--;
	t = strndup(text, len);

	if (!t)
		return -1;
	if (stage == 2)
		instruction(&(struct summary_opts){ .prompt = "" }, b, 2, 1, 1);
	rc = template_fill(o->tmpl, t, o->params, o->nparams, b, &e);
	free(t);
	return rc;
}

/* The messages of one request; returns owned, NULL when out of memory. */
static json_object *messages(const struct summary_opts *o, const char *text, size_t len, int stage,
			     size_t part, size_t parts)
{
	json_object *m = json_object_new_array();
	struct buf b;
	int bad;

	buf_init(&b, 0);
	if (o->tmpl && stage != 1) {
		bad = from_template(o, &b, text, len, stage);
	} else {
		instruction(o, &b, stage, part, parts);
		bad = buf_addstr(&b, "\n\n") || buf_add(&b, text, len);
	}
	if (bad || !b.data || !m || jv_push(m, jv_message("system", o->system ? o->system : SYSTEM_PROMPT)) ||
	    jv_push(m, stage == 1 || !o->attach ? jv_message("user", b.data) : attach_message(b.data, o->attach))) {
		json_object_put(m);
		m = NULL;
	}
	buf_release(&b);
	return m;
}

/* One round's progress, told to the caller as the parts are done. */
struct progress {
	const struct summary_opts *o;
	size_t done, total;
	long tokens;
};

struct part {
	struct ai_chat_resp resp;
	struct ai_err err;
	int rc;
	struct progress *pr;
};

static void part_done(int rc, struct ai_chat_resp *r, struct ai_err *e, void *ud)
{
	struct part *p = ud;
	struct progress *pr = p->pr;

	p->rc = rc;
	if (rc)
		p->err = *e;
	if (pr->o->progress && pr->total) {
		pr->done++;
		pr->tokens += (r->prompt_tokens > 0 ? r->prompt_tokens : 0) +
			      (r->completion_tokens > 0 ? r->completion_tokens : 0);
		pr->o->progress(pr->done, pr->total, pr->tokens, pr->o->ud);
	}
}

static void add_usage(struct summary *t, const struct ai_chat_resp *r)
{
	/* A part whose count the server did not say makes the total unknown (null), not smaller. */
	jv_count_sum(&t->prompt_tokens, r->prompt_tokens);
	jv_count_sum(&t->completion_tokens, r->completion_tokens);
	t->cached &= r->cached;
	t->dry_run |= r->dry_run;
	if (!t->model && r->model)
		t->model = strdup(r->model);
}

/*
 * Summarizes n texts (stage 0: the whole input; 1: parts; 2: combining)
 * concurrently; returns their summaries joined by blank lines in out.
 */
static int summarize_all(struct ai_client *c, const struct summary_opts *o, const char *const *texts,
			 const size_t *lens, size_t n, int stage, struct summary *t, struct buf *out,
			 struct ai_err *err)
{
	struct part *p = calloc(n, sizeof(*p));
	struct progress pr = { o, 0, 0, 0 };
	int rc = 0;

	if (!p)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	/* Progress for the parts only: one request needs none. */
	pr.total = n > 1 && !ai_client_config(c)->dry_run ? n : 0;
	if (o->progress && pr.total)
		o->progress(0, pr.total, 0, o->ud);
	for (size_t i = 0; i < n; i++) {
		struct ai_chat_req q;

		ai_chat_req_init(&q);
		if (!(q.messages = messages(o, texts[i], lens[i], stage, i + 1, n))) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			break;
		}
		q.temperature = o->temperature;
		q.max_tokens = o->max_tokens;
		p[i].pr = &pr;
		rc = ai_chat_start(c, &q, &p[i].resp, part_done, &p[i], err);
		json_object_put(q.messages);
		if (rc)
			break;
	}
	if (!rc)
		rc = ai_client_run(c, err);
	for (size_t i = 0; i < n; i++) {
		if (!rc && p[i].rc) {
			*err = p[i].err;
			rc = -1;
		}
		if (!rc) {
			add_usage(t, &p[i].resp);
			if (out->len)
				buf_addstr(out, "\n\n");
			buf_addstr(out, p[i].resp.content);
		}
		ai_chat_resp_release(&p[i].resp);
	}
	free(p);
	return rc;
}

/*
 * The last request under --schema: asked, checked and repaired by
 * structured_chat; out gets the JSON text, t->data the parsed value.
 */
static int summarize_structured(struct ai_client *c, const struct summary_opts *o, const char *text,
				size_t len, int stage, struct summary *t, struct buf *out,
				struct ai_err *err)
{
	struct ai_chat_req q;
	struct ai_chat_resp r;
	struct schema_fail f;
	int rc;

	ai_chat_req_init(&q);
	if (!(q.messages = messages(o, text, len, stage, 1, 1)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	q.temperature = o->temperature;
	q.max_tokens = o->max_tokens;
	rc = structured_chat(c, o->st, &q, &r, &t->data, &f, err);
	json_object_put(q.messages);
	if (!rc) {
		add_usage(t, &r);
		if (t->data)
			buf_addstr(out, json_object_to_json_string_ext(t->data, JSON_C_TO_STRING_PLAIN));
	}
	ai_chat_resp_release(&r);
	return rc;
}

/* Map-reduce: split what does not fit, summarize the parts, and repeat on their summaries. */
static int summarize(struct ai_client *c, const struct summary_opts *o, const char *text, size_t len,
		     struct summary *t, struct buf *out, struct ai_err *err)
{
	struct buf cur, next;
	int stage = 0, rc = 0;

	buf_init(&cur, 0);
	buf_init(&next, 0);
	buf_add(&cur, text, len);
	for (int round = 0; !rc; round++) {
		struct chunk_opts co = { (size_t)o->max_input, 0, false };
		struct chunk_list cl = { NULL, 0 };
		const char **texts;
		size_t *lens;

		if (tok_estimate(cur.data, cur.len) <= (size_t)o->max_input) {
			const char *one = cur.data;
			size_t l = cur.len;

			rc = o->st ? summarize_structured(c, o, one, l, round ? 2 : 0, t, out, err) :
				summarize_all(c, o, &one, &l, 1, round ? 2 : 0, t, out, err);
			t->parts += round ? 0 : 1;
			break;
		}
		if (chunk_text(cur.data, cur.len, &co, &cl, err))
			break;
		texts = calloc(cl.n, sizeof(*texts));
		lens = calloc(cl.n, sizeof(*lens));
		if (!texts || !lens) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
		} else {
			for (size_t i = 0; i < cl.n; i++) {
				texts[i] = cur.data + cl.v[i].off;
				lens[i] = cl.v[i].len;
			}
			if (!round)
				t->parts = cl.n;
			stage = 1;
			buf_reset(&next);
			rc = summarize_all(c, o, texts, lens, cl.n, stage, t, &next, err);
		}
		free(texts);
		free(lens);
		chunk_list_release(&cl);
		if (rc || t->dry_run)
			break;
		/* Summaries that do not shrink would loop for ever. */
		if (next.len >= cur.len) {
			rc = ai_errf(err, AI_EX_UNAVAILABLE,
				     "the summaries of the parts are no shorter than the parts; "
				     "raise --max-input-tokens or lower --words");
			break;
		}
		buf_reset(&cur);
		buf_add(&cur, next.data, next.len);
	}
	buf_release(&cur);
	buf_release(&next);
	return rc;
}

void summary_opts_init(struct summary_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->words = 150;
	o->format = "paragraph";
	o->max_input = 8000;
	o->temperature = NAN;
}

void summary_instruction(const struct summary_opts *o, struct buf *b)
{
	instruction(o, b, 0, 1, 1);
}

int summary_run(struct ai_client *c, const struct summary_opts *o, const char *text, size_t len,
		struct summary *s, struct ai_err *err)
{
	struct buf out;
	int rc;

	memset(s, 0, sizeof(*s));
	s->cached = true;
	buf_init(&out, 0);
	rc = summarize(c, o, text, len, s, &out, err);
	if (!rc && !(s->text = out.data ? buf_detach(&out, NULL) : strdup(""))) {
		buf_release(&out);
		rc = ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	buf_release(&out);
	if (rc)
		summary_release(s);
	return rc;
}

void summary_release(struct summary *s)
{
	free(s->text);
	free(s->model);
	json_object_put(s->data);
	memset(s, 0, sizeof(*s));
}

int summary_estimate(const struct ai_client *client, const struct summary_opts *o, const char *text,
		     size_t len, struct summary_estimate *e, struct ai_err *err)
{
	const char *model = ai_client_model(client);
	double t = (double)tok_estimate(text, len), ovh, part_out, final_out, n;
	struct buf b;
	const struct prices *ps;
	struct price p;

	memset(e, 0, sizeof(*e));
	e->parts = 1;
	buf_init(&b, 0);
	instruction(o, &b, 1, 1000, 1000);
	buf_addstr(&b, SYSTEM_PROMPT);
	ovh = (double)tok_estimate(b.data, b.len) + 10;   /* and the message framing */
	buf_release(&b);
	part_out = (double)o->words * 2 * 4 / 3;
	final_out = (double)(strcmp(o->format, "line") ? o->words : 25) * 4 / 3;
	if (o->max_tokens) {
		part_out = fmin(part_out, (double)o->max_tokens);
		final_out = fmin(final_out, (double)o->max_tokens);
	}
	for (int round = 0; round < 32; round++) {
		if (t <= (double)o->max_input) {
			e->requests++;
			e->in += t + ovh;
			e->out += final_out;
			break;
		}
		if (round == 0) {
			struct chunk_opts co = { (size_t)o->max_input, 0, false };
			struct chunk_list cl = CHUNK_LIST_INIT;

			if (chunk_text(text, len, &co, &cl, err))
				return -1;
			n = (double)cl.n;
			e->parts = cl.n;
			chunk_list_release(&cl);
		} else {
			n = ceil(t / (double)o->max_input);
		}
		e->requests += (size_t)n;
		e->in += t + n * ovh;
		e->out += n * part_out;
		if (n * part_out >= t)
			break;          /* the summaries would not shrink: the run stops there too */
		t = n * part_out;
	}
	ps = &ai_client_config(client)->prices;
	e->priced = prices_lookup(ps, model, &p);
	if (e->priced || prices_lookup_at(ps, model, ai_client_host(client), &p))
		e->usd = (e->in * p.in_per_mtok + e->out * p.out_per_mtok) / 1e6;
	else
		e->usd = NAN;
	return 0;
}

/* Tokens as people read them: 950, 12k, 3.4M. */
static void fmt_tokens(char *out, size_t n, double v)
{
	if (v < 10000)
		snprintf(out, n, "%.0f", v);
	else if (v < 10e6)
		snprintf(out, n, "%.0fk", v / 1000);
	else
		snprintf(out, n, "%.1fM", v / 1e6);
}

void summary_describe(const struct summary_estimate *e, const struct ai_client *client, struct buf *b)
{
	char in[32], out[32];

	fmt_tokens(in, sizeof(in), e->in);
	fmt_tokens(out, sizeof(out), e->out);
	buf_addf(b, "%zu request%s", e->requests, e->requests == 1 ? "" : "s");
	if (e->parts > 1)
		buf_addf(b, " (%zu parts, then %zu to combine)", e->parts, e->requests - e->parts);
	buf_addf(b, ", about %s tokens in and %s out", in, out);
	if (e->priced)
		buf_addf(b, ", about $%.4f at the price of %s", e->usd, ai_client_model(client));
	else if (!isnan(e->usd))
		buf_addf(b, ", $0 at the local endpoint %s", ai_client_host(client));
	else
		buf_addf(b, "; no price for '%s' (price.MODEL in ai.conf(5))", ai_client_model(client));
}

bool summary_needs_confirm(const struct ai_config *cfg, const struct summary_estimate *e, struct buf *why)
{
	/* A local model costs no money, but 800k tokens keep it busy for
	 * long: without a listed price the limit is in tokens. */
	if (e->priced && !isnan(cfg->confirm_over) && e->usd > cfg->confirm_over) {
		buf_addf(why, "confirm_over ($%.4f)", cfg->confirm_over);
		return true;
	}
	if (!e->priced && !isnan(cfg->confirm_over_tokens) &&
	    e->in + e->out > cfg->confirm_over_tokens) {
		buf_addf(why, "confirm_over_tokens (%.0f)", cfg->confirm_over_tokens);
		return true;
	}
	return false;
}

