/*
 * ai-summarize - text in, summary out (pattern 1: the API wrapper).
 *
 * Input longer than --max-input-tokens is split on paragraph and sentence
 * boundaries into parts that fit; the parts are summarized concurrently,
 * then their summaries are summarized (map-reduce), until one is left:
 * that engine is summary.h's; this file is options, input and output.
 *
 * Big input costs money before anything is printed, so the run is
 * estimated first (tokens by tok_estimate, dollars by the price table):
 * above confirm_over (ai.conf(5)) it asks on the terminal, refuses
 * without one unless --yes, and --dry-run prints the estimate.  On a
 * terminal, the parts' progress shows on stderr.
 */
#include "ai.h"
#include "api/api.h"
#include "api/summary.h"
#include "lib/attachcli.h"
#include "lib/cli.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"

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
	ATTACHCLI_OPTS,
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	struct summary_opts s;
	long parallel;
	bool raw;
	bool yes;
	struct attachcli att;   /* -a, --attach-as: with the request that summarizes the whole */
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case OPT_WORDS: o->s.words = cli_long("--words", arg, 1, 100000); break;
	case OPT_LENGTH:
		if (!strcmp(arg, "short"))
			o->s.words = 50;
		else if (!strcmp(arg, "medium"))
			o->s.words = 150;
		else if (!strcmp(arg, "long"))
			o->s.words = 400;
		else
			cli_usage_error("--length wants short, medium or long, not '%s'", arg);
		break;
	case 'f':
		if (strcmp(arg, "paragraph") && strcmp(arg, "bullets") && strcmp(arg, "line"))
			cli_usage_error("--format wants paragraph, bullets or line, not '%s'", arg);
		o->s.format = arg;
		break;
	case OPT_LANG: o->s.lang = arg; break;
	case 'a': case ATTACHCLI_OPT_AS: attachcli_opt(&o->att, val, arg); break;
	case OPT_FOCUS: o->s.focus = arg; break;
	case OPT_PROMPT: o->s.prompt = arg; break;
	case OPT_MAX_INPUT: o->s.max_input = cli_long("--max-input-tokens", arg, 100, 10000000); break;
	case 'P': o->parallel = cli_long("--parallel", arg, 1, 64); break;
	case OPT_TEMPERATURE: o->s.temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->s.max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_RAW: o->raw = true; break;
	case OPT_YES: o->yes = true; break;
	}
}

/* The parts' progress on stderr, when it is a terminal and not -q (termout_progress). */
static void progress(size_t done, size_t total, long tokens, void *ud)
{
	termout_progress(ud, done == total, "%zu/%zu parts summarized, %ld tokens", done, total, tokens);
}

/*
 * Before anything is sent: --dry-run prints the estimate; a run above
 * the limit is asked about on the terminal, or refused without one
 * unless --yes.  Refused or declined exits 64 (the command needs --yes).
 */
static void confirm(const struct opts *o, const struct cli *c, struct ai_client *client,
		    const char *text, size_t len)
{
	struct summary_estimate e;
	struct ai_err err;
	struct buf what = BUF_INIT, why = BUF_INIT, q = BUF_INIT;
	enum cli_answer ans;

	ai_err_clear(&err);
	if (summary_estimate(client, &o->s, text, len, &e, &err))
		cli_die_err(&err);
	summary_describe(&e, client, &what);
	if (ai_client_config(client)->dry_run) {
		if (!c->quiet)
			cli_warn("estimate: %s", what.data);
	} else if (!o->yes && summary_needs_confirm(ai_client_config(client), &e, &why)) {
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

/* The summary as text: on a terminal, escape sequences in it are shown, not obeyed. */
static void print_text(const char *s, bool raw)
{
	struct termout to;
	size_t n = strlen(s);

	termout_init(&to, raw);
	termout_write(&to, s, n, false);
	termout_end(&to, false);
	if (!n || s[n - 1] != '\n')
		cli_write("\n", 1, false);
	termout_release(&to);
}

static void print_json(const struct summary *s, int64_t ms)
{
	json_object *j = json_object_new_object();

	out_add(j, "summary", json_object_new_string(s->text));
	if (s->data)
		out_add(j, "data", json_object_get(s->data));
	out_add(j, "model", s->model ? json_object_new_string(s->model) : NULL);
	out_usage(j, s->prompt_tokens, s->completion_tokens);
	out_add(j, "latency_ms", json_object_new_int64(ms));
	out_add(j, "cached", json_object_new_boolean(s->cached));
	out_add(j, "parts", json_object_new_int64((int64_t)s->parts));
	out_json_line(j);
	json_object_put(j);
}

/*
 * -T: the template's prompt is the request (summary.h says where), its
 * header lines defaults that the options win over.  A missing --param is
 * found here, before anything is read or sent.  --save keeps the
 * instruction these options make, and exits.
 */
static void use_template(const struct cli *c, struct opts *o)
{
	struct ai_err err;
	struct buf b = BUF_INIT;

	ai_err_clear(&err);
	if (c->save) {
		if (o->s.prompt)
			buf_addstr(&b, o->s.prompt);
		else
			summary_instruction(&o->s, &b);
		tmplcli_save(c, NULL, o->s.temperature, o->s.max_tokens, b.data ? b.data : "");
	}
	if (!c->tmpl)
		return;
	if (o->s.prompt)
		cli_usage_error("--prompt and -T both give the instruction; choose one");
	if (template_fill(c->tmpl, "", c->params, c->nparams, &b, &err))
		cli_die_err(&err);
	buf_release(&b);
	o->s.tmpl = c->tmpl;
	o->s.params = c->params;
	o->s.nparams = c->nparams;
	o->s.system = c->tmpl->system;
	if (isnan(o->s.temperature))
		o->s.temperature = c->tmpl->temperature;
	if (!o->s.max_tokens)
		o->s.max_tokens = c->tmpl->max_tokens;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { .parallel = 4 };
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err err;
	struct buf in;
	struct attach_set att;
	struct summary s;
	struct structured st;
	struct termout_progress tp;
	int64_t t0 = mono_ms();
	int optind_;

	summary_opts_init(&o.s);
	cli_init(&c, "ai-summarize");
	c.text = true;          /* --markdown (termout.h) */
	c.usage = "[OPTION]... [FILE]...";
	c.summary = "Summarize text from FILEs or standard input.";
	c.opts = opts;
	c.schema_ok = true;
	c.template_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	ai_err_clear(&err);
	use_template(&c, &o);
	if (c.schema) {
		if (structured_load(&st, c.schema, c.schema_multi, &err))
			cli_die_err(&err);
		o.s.st = &st;
	}
	setup_client_with(&c, &cfg, &client, &(struct ai_client_opts){ .parallel = (int)o.parallel }, &err);

	/* With -a and no FILE the attachments are the input: standard input is read only for "-a -". */
	if (attachcli_load(&o.att, &cfg, &att, &err))
		cli_die_err(&err);
	if (att.n)
		o.s.attach = &att;
	buf_init(&in, cfg.max_input);
	if ((!att.n || optind_ < argc) && cli_read_input(argc - optind_, argv + optind_, &in, &err))
		cli_die_err(&err);
	if (!att.n && in.len == strspn(in.data ? in.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no input: give a file or pipe text to standard input");
	confirm(&o, &c, client, in.data, in.len);
	if (!c.quiet && isatty(STDERR_FILENO)) {
		termout_progress_init(&tp);
		o.s.progress = progress;
		o.s.ud = &tp;
	}

	if (summary_run(client, &o.s, in.data ? in.data : "", in.len, &s, &err)) {
		/* A model that cannot see the attachments: said once, exit 65. */
		if (att.n && attach_refused(&err))
			cli_die_err(&err);
		setup_die(client, &cfg, &err);
	}
	/* Under --dry-run the requests were printed, and nothing was sent. */
	if (!s.dry_run && c.json)
		print_json(&s, mono_ms() - t0);
	else if (!s.dry_run)
		print_text(s.text, o.raw);
	summary_release(&s);
	if (o.s.st)
		structured_release(o.s.st);
	buf_release(&in);
	attach_set_release(&att);
	ai_client_release(client);
	config_release(&cfg);
	return cli_finish(0);
}
