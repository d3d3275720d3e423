/*
 * ai-summarize - text in, summary out (pattern 1: the API wrapper).
 *
 * Input longer than --max-input-tokens is split on paragraph and sentence
 * boundaries into parts that fit; the parts are summarized concurrently,
 * then their summaries are summarized (map-reduce), until one is left.
 *
 * Big input costs money before anything is printed, so the run is
 * estimated first (tokens by tok_estimate, dollars by the price table):
 * above confirm_over (ai.conf(5)) it asks on the terminal, refuses
 * without one unless --yes, and --dry-run prints the estimate.  On a
 * terminal, the parts' progress shows on stderr.
 */
#include "ai.h"
#include "api/api.h"
#include "api/structured.h"
#include "rag/chunk.h"
#include "lib/cli.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "api/prices.h"

#include <fcntl.h>
#include <math.h>
#include <unistd.h>

enum {
	OPT_WORDS = CLI_OPT_PROG, OPT_LENGTH, OPT_LANG, OPT_FOCUS, OPT_PROMPT, OPT_MAX_INPUT,
	OPT_TEMPERATURE, OPT_MAX_TOKENS, OPT_RAW, OPT_YES
};

static const struct cli_opt opts[] = {
	{ "words", required_argument, OPT_WORDS, "N", "aim for about N words" },
	{ "length", required_argument, OPT_LENGTH, "LEN", "short (50 words), medium (150, default) or long (400)" },
	{ "format", required_argument, 'f', "FORM", "paragraph (default), bullets or line" },
	{ "lang", required_argument, OPT_LANG, "LANG", "write the summary in this language" },
	{ "focus", required_argument, OPT_FOCUS, "TEXT", "what the summary must keep" },
	{ "prompt", required_argument, OPT_PROMPT, "TEXT", "replace the instruction entirely" },
	{ "max-input-tokens", required_argument, OPT_MAX_INPUT, "N", "split input longer than this (default 8000)" },
	{ "parallel", required_argument, 'P', "N", "summarize up to N parts at once (default 4)" },
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of each answer" },
	{ "raw", no_argument, OPT_RAW, NULL, "do not neutralise control characters on a terminal" },
	{ "yes", no_argument, OPT_YES, NULL, "send input estimated above confirm_over without asking" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	long words;
	const char *format, *lang, *focus, *prompt;
	long max_input, parallel, max_tokens;
	double temperature;
	bool raw;
	bool yes;
	struct structured *st;  /* --schema: the final summary is JSON matching it */
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case OPT_WORDS: o->words = cli_long("--words", arg, 1, 100000); break;
	case OPT_LENGTH:
		if (!strcmp(arg, "short"))
			o->words = 50;
		else if (!strcmp(arg, "medium"))
			o->words = 150;
		else if (!strcmp(arg, "long"))
			o->words = 400;
		else
			cli_usage_error("--length wants short, medium or long, not '%s'", arg);
		break;
	case 'f':
		if (strcmp(arg, "paragraph") && strcmp(arg, "bullets") && strcmp(arg, "line"))
			cli_usage_error("--format wants paragraph, bullets or line, not '%s'", arg);
		o->format = arg;
		break;
	case OPT_LANG: o->lang = arg; break;
	case OPT_FOCUS: o->focus = arg; break;
	case OPT_PROMPT: o->prompt = arg; break;
	case OPT_MAX_INPUT: o->max_input = cli_long("--max-input-tokens", arg, 100, 10000000); break;
	case 'P': o->parallel = cli_long("--parallel", arg, 1, 64); break;
	case OPT_TEMPERATURE: o->temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_RAW: o->raw = true; break;
	case OPT_YES: o->yes = true; break;
	}
}

/* The instruction for one request: what to write, for a whole text, a part, or the parts' summaries. */
static void instruction(const struct opts *o, struct buf *b, int stage, size_t part, size_t parts)
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

static json_object *messages(const struct opts *o, const char *text, size_t len, int stage,
			     size_t part, size_t parts)
{
	json_object *m = json_object_new_array(), *sys, *user;
	struct buf b;

	buf_init(&b, 0);
	instruction(o, &b, stage, part, parts);
	buf_addstr(&b, "\n\n");
	buf_add(&b, text, len);
	sys = out_message("system", "You write faithful, concise summaries of the text you are given.");
	user = out_message("user", b.data);
	buf_release(&b);
	if (!m || !sys || !user || json_object_array_add(m, sys) || (sys = NULL) ||
	    json_object_array_add(m, user))
		cli_die(AI_EX_OSERR, "out of memory");
	return m;
}

struct part {
	struct ai_chat_resp resp;
	struct ai_err err;
	int rc;
};

/* The parts' progress on stderr, when it is a terminal and not -q (termout_progress). */
static struct progress {
	bool on;
	size_t done, total;
	long tokens;
	struct termout_progress tp;
} progress;

static void progress_show(void)
{
	struct progress *p = &progress;

	termout_progress(&p->tp, p->done == p->total, "%zu/%zu parts summarized, %ld tokens",
			 p->done, p->total, p->tokens);
}

struct totals {
	long prompt_tokens, completion_tokens;
	double latency_ms;
	bool all_cached;
	bool dry_run;
	char *model;
	size_t parts;
};

static void part_done(int rc, struct ai_chat_resp *r, struct ai_err *e, void *ud)
{
	struct part *p = ud;

	p->rc = rc;
	if (rc)
		p->err = *e;
	if (progress.on && progress.total) {
		progress.done++;
		progress.tokens += (r->prompt_tokens > 0 ? r->prompt_tokens : 0) +
				   (r->completion_tokens > 0 ? r->completion_tokens : 0);
		progress_show();
	}
}

static void add_usage(struct totals *t, const struct ai_chat_resp *r)
{
	if (r->prompt_tokens > 0)
		t->prompt_tokens += r->prompt_tokens;
	if (r->completion_tokens > 0)
		t->completion_tokens += r->completion_tokens;
	t->all_cached &= r->cached;
	t->dry_run |= r->dry_run;
	if (!t->model && r->model)
		t->model = strdup(r->model);
}

/*
 * Summarizes n texts (stage 0: the whole input; 1: parts; 2: combining)
 * concurrently; returns their summaries joined by blank lines in out.
 */
static int summarize_all(struct ai_client *c, const struct opts *o, const char *const *texts,
			 const size_t *lens, size_t n, int stage, struct totals *t, struct buf *out,
			 struct ai_err *err)
{
	struct part *p = calloc(n, sizeof(*p));
	int rc = 0;

	if (!p)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	/* Progress for the parts only: one request needs none. */
	progress.total = n > 1 && !c->cfg->dry_run ? n : 0;
	progress.done = 0;
	if (progress.on && progress.total)
		progress_show();
	for (size_t i = 0; i < n; i++) {
		struct ai_chat_req q;

		ai_chat_req_init(&q);
		q.messages = messages(o, texts[i], lens[i], stage, i + 1, n);
		q.temperature = o->temperature;
		q.max_tokens = o->max_tokens;
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
 * structured_chat; out gets the JSON text, *data the parsed value.
 */
static int summarize_structured(struct ai_client *c, const struct opts *o, const char *text,
				size_t len, int stage, struct totals *t, struct buf *out,
				json_object **data, struct ai_err *err)
{
	struct ai_chat_req q;
	struct ai_chat_resp r;
	struct schema_fail f;
	int rc;

	ai_chat_req_init(&q);
	q.messages = messages(o, text, len, stage, 1, 1);
	q.temperature = o->temperature;
	q.max_tokens = o->max_tokens;
	rc = structured_chat(c, o->st, &q, &r, data, &f, err);
	json_object_put(q.messages);
	if (!rc) {
		add_usage(t, &r);
		if (*data)
			buf_addstr(out, json_object_to_json_string_ext(*data, JSON_C_TO_STRING_PLAIN));
	}
	ai_chat_resp_release(&r);
	return rc;
}

/* Map-reduce: split what does not fit, summarize the parts, and repeat on their summaries. */
static int summarize(struct ai_client *c, const struct opts *o, const char *text, size_t len,
		     struct totals *t, struct buf *out, json_object **data, struct ai_err *err)
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

			rc = o->st ? summarize_structured(c, o, one, l, round ? 2 : 0, t, out, data, err) :
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

/* ---- the estimate and the question ---- */

struct estimate {
	size_t requests;        /* every request of every round */
	size_t parts;           /* of the input, in the first round (1 when it fits) */
	double in, out;         /* tokens, estimated */
	bool priced;            /* the model has a price (listed, or price.MODEL) */
	double usd;             /* NAN when the price is unknown; 0 for a local server's unpriced model */
};

/*
 * Estimates what summarize() will send: the input's parts as
 * chunk_text makes them, each with its instruction; each part's summary
 * at the length the instruction asks for (2 x --words, capped by
 * --max-tokens), those summaries combined the same way until one
 * request holds them.  Every request is counted as paid: parts already
 * in the response cache are free, so this is an upper bound then.
 */
static int estimate(const struct opts *o, const struct ai_client *client, const char *text,
		    size_t len, struct estimate *e, struct ai_err *err)
{
	const char *model = client->cfg->model;
	double t = (double)tok_estimate(text, len), ovh, part_out, final_out, n;
	struct buf b;
	struct price p;

	memset(e, 0, sizeof(*e));
	e->parts = 1;
	buf_init(&b, 0);
	instruction(o, &b, 1, 1000, 1000);
	buf_addstr(&b, "You write faithful, concise summaries of the text you are given.");
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
	e->priced = prices_lookup(model, &p);
	if (e->priced || prices_lookup_at(model, client->host, &p))
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

/* "157 requests (157 parts, then 1 to combine), about 809k tokens in and 42k out, about $0.1450 ..." */
static void describe(const struct estimate *e, const struct ai_client *client, struct buf *b)
{
	char in[32], out[32];

	fmt_tokens(in, sizeof(in), e->in);
	fmt_tokens(out, sizeof(out), e->out);
	buf_addf(b, "%zu request%s", e->requests, e->requests == 1 ? "" : "s");
	if (e->parts > 1)
		buf_addf(b, " (%zu parts, then %zu to combine)", e->parts, e->requests - e->parts);
	buf_addf(b, ", about %s tokens in and %s out", in, out);
	if (e->priced)
		buf_addf(b, ", about $%.4f at the price of %s", e->usd, client->cfg->model);
	else if (!isnan(e->usd))
		buf_addf(b, ", $0 at the local endpoint %s", client->host);
	else
		buf_addf(b, "; no price for '%s' (price.MODEL in ai.conf(5))", client->cfg->model);
}

/* True when the estimate is above what the config lets pass unasked. */
static bool needs_confirm(const struct ai_config *cfg, const struct estimate *e, struct buf *why)
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

/*
 * Before anything is sent: --dry-run prints the estimate; a run above
 * the limit is asked about on the terminal, or refused without one
 * unless --yes.  Refused or declined exits 64 (the command needs --yes).
 */
static void confirm(const struct opts *o, const struct cli *c, struct ai_client *client,
		    const char *text, size_t len)
{
	struct estimate e;
	struct ai_err err;
	struct buf what = BUF_INIT, why = BUF_INIT, q = BUF_INIT;
	enum cli_answer ans;

	ai_err_clear(&err);
	if (estimate(o, client, text, len, &e, &err))
		cli_die_err(&err);
	describe(&e, client, &what);
	if (client->cfg->dry_run) {
		if (!c->quiet)
			cli_warn("estimate: %s", what.data);
	} else if (!o->yes && needs_confirm(client->cfg, &e, &why)) {
		buf_addf(&q, "%s: this input makes %s, more than %s.\nSend it? [y/N] ", cli_prog, what.data,
			 why.data);
		ans = cli_ask_tty(q.data);
		if (ans == CLI_INTERRUPTED)
			exit(AI_EX_INTERRUPT);
		if (ans == CLI_NOTTY)
			cli_die(AI_EX_USAGE, "not sent: %s, more than %s, and there is no terminal to ask on; "
				"pass --yes, or raise the limit in the config (see ai.conf(5))",
				what.data, why.data);
		if (ans != CLI_YES)
			cli_die(AI_EX_USAGE, "not sent");
	}
	buf_release(&what);
	buf_release(&why);
	buf_release(&q);
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { 150, "paragraph", NULL, NULL, NULL, 8000, 4, 0, NAN, false, false, NULL };
	struct ai_config cfg;
	struct ai_client client;
	struct ai_err err;
	struct buf in, out;
	struct structured st;
	json_object *data = NULL;
	struct totals t = { 0, 0, 0, true, false, NULL, 0 };
	int64_t t0 = http_now_ms();
	int optind_;

	cli_init(&c, "ai-summarize");
	c.usage = "[OPTION]... [FILE]...";
	c.summary = "Summarize text from FILEs or standard input.";
	c.opts = opts;
	c.schema_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	ai_err_clear(&err);
	if (c.schema) {
		if (structured_load(&st, c.schema, c.schema_multi, &err))
			cli_die_err(&err);
		o.st = &st;
	}
	setup_client(&c, &cfg, &client, &err);
	client.parallel = (int)o.parallel;

	buf_init(&in, cfg.max_input);
	if (cli_read_input(argc - optind_, argv + optind_, &in, &err))
		cli_die_err(&err);
	if (in.len == strspn(in.data ? in.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no input: give a file or pipe text to standard input");
	confirm(&o, &c, &client, in.data, in.len);
	if (!c.quiet && isatty(STDERR_FILENO)) {
		progress.on = true;
		termout_progress_init(&progress.tp);
	}

	buf_init(&out, 0);
	if (summarize(&client, &o, in.data, in.len, &t, &out, &data, &err))
		setup_die(&client, &cfg, &err);
	if (t.dry_run) {
		/* The requests were printed; nothing was sent. */
	} else if (c.json) {
		json_object *j = json_object_new_object(), *u = json_object_new_object();

		out_add(j, "summary", json_object_new_string(out.data ? out.data : ""));
		if (data)
			out_add(j, "data", json_object_get(data));
		out_add(j, "model", t.model ? json_object_new_string(t.model) : NULL);
		out_add(u, "prompt_tokens", json_object_new_int64(t.prompt_tokens));
		out_add(u, "completion_tokens", json_object_new_int64(t.completion_tokens));
		out_add(j, "usage", u);
		out_add(j, "latency_ms", json_object_new_int64(http_now_ms() - t0));
		out_add(j, "cached", json_object_new_boolean(t.all_cached));
		out_add(j, "parts", json_object_new_int64((int64_t)t.parts));
		out_json_line(j);
		json_object_put(j);
	} else {
		struct termout to;

		/* On a terminal, escape sequences in the summary are shown, not obeyed. */
		termout_init(&to, o.raw);
		termout_write(&to, out.data ? out.data : "", out.len, false);
		termout_end(&to, false);
		if (!out.len || out.data[out.len - 1] != '\n')
			cli_write("\n", 1, false);
		termout_release(&to);
	}
	free(t.model);
	json_object_put(data);
	if (o.st)
		structured_release(o.st);
	buf_release(&in);
	buf_release(&out);
	ai_client_release(&client);
	config_release(&cfg);
	return cli_finish(0);
}
