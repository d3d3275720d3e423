/*
 * ai-stream - a chat reply printed token by token as it arrives (pattern 2:
 * streaming), alone or as a conversation kept in a history file.
 *
 * Every delta is written and flushed the moment the API layer hands it
 * over.  On a terminal the model's text passes through a filter that makes
 * control characters visible, so a reply cannot move the cursor, retitle
 * the window or hide text (ESC, CSI, OSC); with --json the deltas become
 * JSON lines, with --sse text/event-stream frames for a CGI script.
 *
 * The retry policy lives in the transport, which never retries once a byte
 * was delivered: a stream cut short keeps what was printed, says why and
 * exits 75 (69 for an error the server sent in the stream), and the history
 * file is written only for a complete exchange.
 *
 * Every complete exchange is kept in the conversation store (convstore.h)
 * unless --no-save or save = no: -C and --conversation continue a kept
 * conversation, and --list-conversations, --show and --prune look after
 * them (convcli.h).  Keeping is a side effect the user did not ask for
 * this time, as the usage ledger is: a store that cannot be written is
 * said on stderr and the answer stands.  Under -C or --conversation the
 * store is the input, and its failures are the program's.
 */
#include "ai.h"
#include "api/api.h"
#include "api/structured.h"
#include "lib/attachcli.h"
#include "lib/cli.h"
#include "lib/convcli.h"
#include "api/convstore.h"
#include "api/history.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"
#include "clock.h"
#include "jsonval.h"
#include "termsafe.h"
#include "utf8.h"

#include <math.h>
#include <unistd.h>

enum {
	OPT_SYSTEM = CLI_OPT_PROG, OPT_HISTORY, OPT_SSE, OPT_RAW, OPT_IDLE, OPT_TEMPERATURE,
	OPT_MAX_TOKENS, OPT_SHOW_REASONING, OPT_CONVERSATION, OPT_NO_SAVE, OPT_LIST_CONV, OPT_SHOW, OPT_PRUNE
};

static const struct cli_opt opts[] = {
	{ "system", required_argument, OPT_SYSTEM, "TEXT", "the system message" },
	{ "history", required_argument, OPT_HISTORY, "FILE", "continue the conversation in FILE (JSON lines) and append to it" },
	{ "interactive", no_argument, 'i', NULL, "read a message a line at a time, answer each" },
	{ "sse", no_argument, OPT_SSE, NULL, "write text/event-stream frames (for CGI)" },
	{ "raw", no_argument, OPT_RAW, NULL, "do not neutralise control characters on a terminal" },
	{ "idle-timeout", required_argument, OPT_IDLE, "SECONDS", "give up when the stream is silent this long (default 60)" },
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of each answer" },
	{ "show-reasoning", no_argument, OPT_SHOW_REASONING, NULL, "print a reasoning model's reasoning on standard error" },
	{ "continue", no_argument, 'C', NULL, "continue the last kept conversation" },
	{ "conversation", required_argument, OPT_CONVERSATION, "ID|TITLE", "continue the kept conversation ID (or TITLE), with its model unless -m" },
	{ "no-save", no_argument, OPT_NO_SAVE, NULL, "do not keep this exchange in the conversations" },
	{ "list-conversations", no_argument, OPT_LIST_CONV, NULL, "list the kept conversations, last continued first, and exit" },
	{ "show", required_argument, OPT_SHOW, "ID|TITLE", "print a kept conversation and exit" },
	{ "prune", required_argument, OPT_PRUNE, "AGE", "remove the conversations not continued in AGE (30d) and exit" },
	ATTACHCLI_OPTS,
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *system, *history;
	bool interactive, sse, raw;
	bool show_reasoning;
	bool cont, no_save, list_conv;
	const char *conversation, *show, *prune;
	bool quiet;             /* -q: not even "answer interrupted" */
	double idle_s;
	double temperature;
	long max_tokens;
	struct attachcli att;   /* -a, --attach-as: sent with the first message */
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case OPT_SYSTEM: o->system = arg; break;
	case OPT_HISTORY: o->history = arg; break;
	case 'i': o->interactive = true; break;
	case OPT_SSE: o->sse = true; break;
	case OPT_RAW: o->raw = true; break;
	case OPT_SHOW_REASONING: o->show_reasoning = true; break;
	case OPT_IDLE:
		o->idle_s = cli_duration("--idle-timeout", arg);
		if (o->idle_s < 0.001)
			cli_usage_error("--idle-timeout must be at least 1ms");
		break;
	case OPT_TEMPERATURE: o->temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case 'C': o->cont = true; break;
	case OPT_CONVERSATION:
		if (!*arg)
			cli_usage_error("--conversation wants an id or a title");
		o->conversation = arg;
		break;
	case OPT_NO_SAVE: o->no_save = true; break;
	case OPT_LIST_CONV: o->list_conv = true; break;
	case OPT_SHOW:
		if (!*arg)
			cli_usage_error("--show wants an id or a title");
		o->show = arg;
		break;
	case OPT_PRUNE: o->prune = arg; break;
	case 'a': case ATTACHCLI_OPT_AS: attachcli_opt(&o->att, val, arg); break;
	}
}

/* ---- output ---- */

enum mode { MODE_TEXT, MODE_JSON, MODE_SSE };

/* Where one answer goes, and what was seen of it. */
struct sink {
	enum mode mode;
	bool tty;               /* stdout is a terminal */
	bool lines;             /* -i: every answer ends its line, whatever happened */
	bool cgi;               /* --sse under a web server: CGI headers first */
	bool headers_sent;
	struct termout text;    /* the text, made safe on a terminal unless --raw */
	bool any;               /* a delta was written */
	char last;              /* its last byte, in text mode */
	double t0, t_first;     /* monotonic ms: request start, first delta (0: none yet) */
	int64_t conv_id;        /* the kept conversation the answer joined; 0: none */
	struct buf scratch;
	/* A reasoning model's reasoning: on stderr (--show-reasoning), in records (--json). */
	bool show_reasoning;
	bool dim;               /* stderr is a terminal that takes SGR: the reasoning dimmed */
	bool thinking;          /* reasoning was written to stderr and not yet ended */
	struct termsafe rsafe;  /* reasoning is model text: made safe, terminal or not */
	const struct structured *st;    /* --schema's: the done record carries the answer as data */
};

/* Under CGI the frames follow a header; a failure before any frame gets a status too. */
static void cgi_headers(struct sink *s, int fail_code)
{
	if (!s->cgi || s->headers_sent)
		return;
	s->headers_sent = true;
	if (fail_code == AI_EX_TEMPFAIL)
		cli_puts("Status: 503 Service Unavailable\r\n", false);
	else if (fail_code == AI_EX_USAGE || fail_code == AI_EX_DATAERR || fail_code == AI_EX_NOINPUT)
		cli_puts("Status: 400 Bad Request\r\n", false);
	else if (fail_code)
		cli_puts("Status: 502 Bad Gateway\r\n", false);
	cli_puts("Content-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
		 "X-Accel-Buffering: no\r\n\r\n", false);
}

/* One record: a JSON line, or an SSE frame whose data is that line. */
static void emit(struct sink *s, json_object *j)
{
	size_t n;
	const char *t;

	if (s->mode == MODE_JSON) {
		out_json_line(j);
		return;
	}
	t = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	buf_reset(&s->scratch);
	buf_addstr(&s->scratch, "data: ");
	buf_add(&s->scratch, t, n);
	buf_addstr(&s->scratch, "\n\n");
	if (!s->scratch.data)
		cli_die(AI_EX_OSERR, "out of memory");
	cli_write(s->scratch.data, s->scratch.len, true);
}

/* A piece of the answer as a record: {"type": type, key: text}. */
static void emit_piece(struct sink *s, const char *type, const char *key, const char *text, size_t n)
{
	json_object *j = out_object();

	cgi_headers(s, 0);
	out_add(j, "type", json_object_new_string(type));
	out_add(j, key, json_object_new_string_len(text, (int)n));
	emit(s, j);
	json_object_put(j);
}

/* Ends the reasoning on stderr: its last character, the dimming, its line. */
static void reasoning_end(struct sink *s)
{
	struct ai_err e;

	if (!s->thinking)
		return;
	s->thinking = false;
	buf_reset(&s->scratch);
	if (termsafe_flush(&s->rsafe, &s->scratch, &e) ||
	    buf_addstr(&s->scratch, s->dim ? "\033[0m\n" : "\n"))
		cli_die(AI_EX_OSERR, "out of memory");
	fwrite(s->scratch.data, 1, s->scratch.len, stderr);
	fflush(stderr);
}

/*
 * Reasoning is never the answer: with --show-reasoning it goes to stderr
 * as it arrives; --json (and --sse with --show-reasoning) gives it records
 * of its own, {"type": "reasoning", "reasoning": TEXT}.
 */
static int on_reasoning(const char *text, size_t n, void *ud)
{
	struct sink *s = ud;
	struct ai_err e;

	if (!n)
		return 0;
	if (s->mode == MODE_TEXT) {
		if (!s->show_reasoning)
			return 0;
		buf_reset(&s->scratch);
		if ((!s->thinking && s->dim && buf_addstr(&s->scratch, "\033[2m")) ||
		    termsafe_feed(&s->rsafe, text, n, &s->scratch, &e))
			cli_die(AI_EX_OSERR, "out of memory");
		s->thinking = true;
		fwrite(s->scratch.data, 1, s->scratch.len, stderr);
		fflush(stderr);
		return 0;
	}
	if (s->mode == MODE_JSON || s->show_reasoning)
		emit_piece(s, "reasoning", "reasoning", text, n);
	return 0;
}

static int on_delta(const char *text, size_t n, void *ud)
{
	struct sink *s = ud;

	if (!n)
		return 0;
	reasoning_end(s);
	if (!s->t_first)
		s->t_first = (double)mono_us() / 1e3;
	s->any = true;
	if (s->mode == MODE_TEXT) {
		termout_write(&s->text, text, n, true);
		s->last = text[n - 1];
		return 0;
	}
	emit_piece(s, "delta", "content", text, n);
	return 0;
}

static void sink_start(struct sink *s)
{
	s->any = false;
	s->last = 0;
	s->t0 = (double)mono_us() / 1e3;
	s->t_first = 0;
	s->conv_id = 0;
}

/* Milliseconds to the microsecond, printed as such rather than with 17 digits. */
static json_object *json_ms(double ms)
{
	char t[32];

	snprintf(t, sizeof(t), "%.3f", ms);
	return json_object_new_double_s(ms, t);
}

static void add_times(const struct sink *s, json_object *j)
{
	out_add(j, "ttft_ms", s->t_first ? json_ms(s->t_first - s->t0) : NULL);
	out_add(j, "total_ms", json_ms((double)mono_us() / 1e3 - s->t0));
}

/* The usage record's cached_tokens and reasoning_tokens, null when the server did not say. */
static void usage_details(json_object *j, const struct ai_chat_resp *r)
{
	json_object *u;

	if (!json_object_object_get_ex(j, "usage", &u))
		return;
	out_add(u, "cached_tokens", jv_count_num(r->cached_tokens));
	out_add(u, "reasoning_tokens", jv_count_num(r->reasoning_tokens));
}

/* Ends one answer: the last record, or a newline so that what follows starts a line. */
static void sink_end(struct sink *s, int rc, const struct ai_chat_resp *r, const struct ai_err *e)
{
	json_object *j;

	reasoning_end(s);
	if (s->mode == MODE_TEXT) {
		/* The answer may have stopped inside a character. */
		if (termout_end(&s->text, false))
			s->last = 0;
		/* A failure leaves the text as it came, unless a person is reading it. */
		if (s->any && s->last != '\n' && (!rc || s->tty || s->lines))
			cli_write("\n", 1, true);
		return;
	}
	j = out_object();
	cgi_headers(s, rc ? (e->code ? e->code : AI_EX_SOFTWARE) : 0);
	if (!rc) {
		out_add(j, "type", json_object_new_string("done"));
		out_add(j, "finish_reason", r->finish_reason ? json_object_new_string(r->finish_reason) : NULL);
		out_usage(j, r->prompt_tokens, r->completion_tokens);
		usage_details(j, r);
		out_add(j, "model", r->model ? json_object_new_string(r->model) : NULL);
		out_add(j, "cached", json_object_new_boolean(r->cached));
		if (s->st) {
			json_object *data = NULL;
			struct schema_fail f;

			/* Checked once already (conv_ask): parsed again for the record, not trusted blind. */
			if (!structured_check(s->st, r->content ? r->content : "", &data, &f))
				out_add(j, "data", data);
		}
		if (s->conv_id)
			out_add(j, "conversation", json_object_new_int64(s->conv_id));
	} else {
		out_add(j, "type", json_object_new_string("error"));
		out_add(j, "message", json_object_new_string(e->msg[0] ? e->msg : "failed"));
		out_add(j, "exit", json_object_new_int(e->code ? e->code : AI_EX_SOFTWARE));
		out_add(j, "partial", json_object_new_boolean(s->any));
	}
	add_times(s, j);
	emit(s, j);
	json_object_put(j);
}

/* A failure before any answer (bad input): its record in --json/--sse, then the message. */
static _Noreturn void sink_die(struct sink *s, const struct ai_err *e)
{
	if (s->mode != MODE_TEXT)
		sink_end(s, -1, NULL, e);
	fflush(stdout);
	cli_die_err(e);
}

/* ---- one exchange ---- */

struct chat {
	struct ai_client *client;
	struct opts *o;
	struct sink *sink;
	struct conv cv;         /* the conversation and its --history file */
	bool resumed;           /* -C or --conversation: the store is the input */
};

/*
 * Keeps the exchange in the conversation store (conv_keep).  Under -C or
 * --conversation a failure is the program's: said, and its exit code
 * returned.  Otherwise keeping was not asked for: the failure is said once
 * (unless -q), the store let go, and the answer stands.
 */
static int keep(struct chat *ch, struct ai_err *err)
{
	if (!conv_keep(&ch->cv, err)) {
		ch->sink->conv_id = ch->cv.store ? ch->cv.store_id : 0;
		return 0;
	}
	if (ch->resumed) {
		cli_warn("%s", err->msg);
		return err->code;
	}
	if (!ch->o->quiet)
		cli_warn("conversation not kept: %s", err->msg);
	ch->cv.store = NULL;
	ai_err_clear(err);
	return 0;
}

/* Asks for the answer to text and streams it into the sink (conv_ask). */
static int exchange(struct chat *ch, const char *text, struct ai_chat_resp *resp, struct ai_err *err)
{
	struct ai_chat_req q;

	ai_chat_req_init(&q);
	q.temperature = ch->o->temperature;
	q.max_tokens = ch->o->max_tokens;
	q.stream = true;
	q.on_delta = on_delta;
	q.on_reasoning = on_reasoning;
	q.ud = ch->sink;
	sink_start(ch->sink);
	if (!conv_ask(&ch->cv, ch->client, &q, text, resp, err))
		return 0;
	/* A model that cannot see the attachments is told once; a retry would get the same. */
	if (ch->cv.attach)
		attach_refused(err);
	return -1;
}

/* ---- input ---- */

static void strip_newlines(struct buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

static bool blank(const char *s)
{
	return s[strspn(s, " \t\r\n\f\v")] == '\0';
}

/* Under CGI the request body is CONTENT_LENGTH bytes, and the server need not close the pipe. */
static int read_cgi_body(const char *cl, struct buf *out, struct ai_err *err)
{
	char *end;
	unsigned long long want;
	char chunk[65536];

	errno = 0;
	want = strtoull(cl, &end, 10);
	if (end == cl || *end || errno || cl[0] == '-')
		return ai_errf(err, AI_EX_USAGE, "bad CONTENT_LENGTH '%s'", cl);
	if (out->max && want > out->max)
		return ai_errf(err, AI_EX_DATAERR, "request body is larger than %zu MiB", out->max >> 20);
	while (out->len < want) {
		size_t n = want - out->len < sizeof(chunk) ? (size_t)(want - out->len) : sizeof(chunk);
		ssize_t r = read(0, chunk, n);

		if (r < 0 && errno == EINTR && !cli_interrupted)
			continue;
		if (r < 0)
			return ai_errf(err, cli_interrupted ? AI_EX_INTERRUPT : AI_EX_NOINPUT,
				       "cannot read the request body: %s", strerror(errno));
		if (r == 0)
			return ai_errf(err, AI_EX_NOINPUT, "request body ended after %zu of %llu bytes",
				       out->len, want);
		if (buf_add(out, chunk, (size_t)r))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (utf8_valid_prefix(out->data ? out->data : "", out->len) != out->len)
		return ai_errf(err, AI_EX_DATAERR, "the request body is not UTF-8 text without NUL bytes");
	return 0;
}

/*
 * The message: under CGI the request body; otherwise the -f files, piped
 * standard input and the arguments (cli_read_message).  With -i standard
 * input is the conversation, so only the files and the arguments make the
 * first message.
 */
static int read_message(const struct cli *c, const struct opts *o, int argc, char **argv,
			struct buf *out, struct ai_err *err)
{
	const char *cl = getenv("CONTENT_LENGTH");

	if (!argc && o->sse && getenv("GATEWAY_INTERFACE") && cl && *cl) {
		if (read_cgi_body(cl, out, err))
			return -1;
		strip_newlines(out);
		return 0;
	}
	if (o->interactive) {
		struct cli first = *c;

		first.no_stdin = 1;
		return cli_read_message(&first, argc, argv, out, err);
	}
	return cli_read_message(c, argc, argv, out, err);
}

/* ---- main ---- */

static int report(struct chat *ch, int rc, struct ai_chat_resp *resp, struct ai_err *err)
{
	sink_end(ch->sink, rc, resp, err);
	if (rc && err->code != AI_EX_INTERRUPT) {
		fflush(stdout);
		if (err->msg[0])
			cli_warn("%s", err->msg);
	}
	return rc ? (err->code ? err->code : AI_EX_SOFTWARE) : 0;
}

/*
 * -i: a line at a time until end of input; Ctrl-C stops an answer or clears
 * the line.  first is the first message, from the arguments; context (the
 * -f files, when there are no arguments) goes before the first line typed.
 */
static int interactive(struct chat *ch, const char *first, const char *context, struct ai_err *err)
{
	bool prompt = isatty(0);
	char *line = NULL;
	size_t cap = 0;
	int code = 0;
	struct buf with;

	buf_init(&with, 0);

	for (;;) {
		struct ai_chat_resp resp;
		const char *text = first;
		ssize_t n = 0;
		int rc;

		/* A SIGTERM that came during the last answer ends the chat here. */
		if (cli_interrupted && !cli_interrupt_resume()) {
			code = AI_EX_INTERRUPT;
			break;
		}
		if (!text) {
			if (prompt)
				fputs("> ", stderr);
			errno = 0;
			/*
			 * At the prompt nothing is owed: the last answer's ledger row was
			 * written when its call ended (no call pending, api.c), and the
			 * history saved.  So SIGTERM and SIGHUP are let go while the line
			 * is read: they kill at once, even one that came just before the
			 * read began (a flag looked at before it would miss that one, and
			 * the read would wait for the 10 s alarm).  Ctrl-C, held on its
			 * own, still only raises the flag: a fresh prompt.
			 */
			cli_hold_sigint(true);
			cli_defer_signals(false);
			n = getline(&line, &cap, stdin);
			cli_defer_signals(true);
			cli_hold_sigint(false);
			if (n < 0) {
				if (cli_interrupted) {
					if (!cli_interrupt_resume()) {
						code = AI_EX_INTERRUPT;  /* SIGTERM or SIGHUP: the chat ends */
						break;
					}
					/* Ctrl-C at the prompt: a fresh line, as a shell does. */
					clearerr(stdin);
					if (prompt)
						fputc('\n', stderr);
					continue;
				}
				if (ferror(stdin)) {
					cli_warn("cannot read standard input: %s", strerror(errno));
					code = AI_EX_NOINPUT;
				}
				if (prompt)
					fputc('\n', stderr);
				break;
			}
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			if (blank(line))
				continue;
			if (utf8_valid_prefix(line, (size_t)n) != (size_t)n) {
				cli_warn("that line is not valid UTF-8 text; not sent");
				continue;
			}
			text = line;
			if (context) {
				buf_reset(&with);
				if (buf_addstr(&with, context) || buf_addstr(&with, "\n\n") || buf_addstr(&with, line))
					cli_die(AI_EX_OSERR, "out of memory");
				text = with.data;
				context = NULL;
			}
		}
		first = NULL;
		rc = exchange(ch, text, &resp, err);
		if (!rc && !resp.dry_run) {
			int k;

			if (conv_save(&ch->cv, err)) {
				cli_warn("%s", err->msg);
				code = err->code;
			}
			if ((k = keep(ch, err)))
				code = k;
		}
		if (rc && err->code == AI_EX_INTERRUPT) {
			sink_end(ch->sink, rc, &resp, err);
			if (!cli_interrupt_resume()) {
				ai_chat_resp_release(&resp);
				code = AI_EX_INTERRUPT;  /* SIGTERM or SIGHUP: the chat ends */
				break;
			}
			if (!ch->o->quiet)
				cli_warn("answer interrupted");
		} else if (!resp.dry_run) {
			int c = report(ch, rc, &resp, err);

			if (c)
				code = c;
		}
		ai_chat_resp_release(&resp);
	}
	free(line);
	buf_release(&with);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { .idle_s = 60, .temperature = NAN };
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err err;
	struct sink sink;
	struct chat ch;
	struct structured st, *stp = NULL;
	struct convstore store;
	struct convstore_info ci;
	bool have_store = false;
	struct buf msg;
	struct attach_set att;
	int optind_, code = 0;

	cli_init(&c, "ai-stream");
	c.text = true;          /* --markdown (termout.h) */
	c.usage = "[OPTION]... [MESSAGE]...";
	c.summary = "Stream a model's answer to MESSAGE (or standard input) as it arrives.";
	c.opts = opts;
	c.message = true;
	c.schema_ok = true;
	c.template_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	/* -T's settings are defaults the options win over. */
	if (c.tmpl) {
		if (!o.system)
			o.system = c.tmpl->system;
		if (isnan(o.temperature))
			o.temperature = c.tmpl->temperature;
		if (!o.max_tokens)
			o.max_tokens = c.tmpl->max_tokens;
	}
	/* The actions on the kept conversations need no message and no endpoint. */
	if (o.list_conv + !!o.show + !!o.prune > 1)
		cli_usage_error("--list-conversations, --show and --prune are three actions; choose one");
	if (o.list_conv || o.show || o.prune) {
		if (optind_ < argc || c.nfiles)
			cli_usage_error("--%s takes no message", o.list_conv ? "list-conversations" :
					o.show ? "show" : "prune");
		return o.list_conv ? convcli_list(&c) : o.show ? convcli_show(&c, o.show) :
		       convcli_prune(&c, o.prune);
	}
	if (o.cont && o.conversation)
		cli_usage_error("-C continues the last conversation, --conversation a given one; choose one");
	if (o.history && (o.cont || o.conversation))
		cli_usage_error("--history FILE is a conversation of its own; it cannot go with %s",
				o.cont ? "-C" : "--conversation");
	if (o.sse && c.json)
		cli_usage_error("--sse and --json are two output formats; choose one");
	if (o.sse && o.interactive)
		cli_usage_error("--sse answers one message; it cannot be --interactive");
	o.quiet = c.quiet;
	ai_err_clear(&err);

	memset(&sink, 0, sizeof(sink));
	buf_init(&sink.scratch, 0);
	sink.mode = o.sse ? MODE_SSE : c.json ? MODE_JSON : MODE_TEXT;
	sink.tty = isatty(1);
	sink.lines = o.interactive;
	termout_init(&sink.text, o.raw);
	sink.show_reasoning = o.show_reasoning;
	sink.dim = isatty(2) && termout_sgr();
	termsafe_init(&sink.rsafe);
	sink.cgi = o.sse && getenv("GATEWAY_INTERFACE");
	sink_start(&sink);

	/* The conversation to continue, found before the client is set up: its model is the default. */
	if (o.cont || o.conversation) {
		if (convcli_resume(&store, o.conversation, &ci, &err))
			sink_die(&sink, &err);
		have_store = true;
		if (!c.model && ci.model)
			c.model = ci.model;
	}

	setup_client_with(&c, &cfg, &client,
			  &(struct ai_client_opts){ .idle_timeout_ms = (long)ceil(o.idle_s * 1000) }, &err);

	/* Before the message: "-a -" is standard input, and the message then comes from the operands. */
	for (size_t i = 0; i < o.att.n; i++)
		if (!strcmp(o.att.src[i], "-") && o.interactive)
			cli_usage_error("-a - reads standard input, where -i reads the messages; attach a file");
		else if (!strcmp(o.att.src[i], "-") && optind_ == argc && !c.nfiles)
			cli_usage_error("-a - reads standard input: give the message as arguments");
	if (attachcli_load(&o.att, &cfg, &att, &err))
		sink_die(&sink, &err);
	buf_init(&msg, cfg.max_input);
	if (read_message(&c, &o, argc - optind_, argv + optind_, &msg, &err))
		sink_die(&sink, &err);
	if (c.save)
		tmplcli_save(&c, o.system, o.temperature, o.max_tokens, msg.data ? msg.data : "");
	if (!o.interactive && blank(msg.data ? msg.data : ""))
		sink_die(&sink, (ai_errf(&err, AI_EX_NOINPUT,
					 "no message: give it as arguments or on standard input"), &err));

	/* A store that cannot be opened costs this exchange its keeping, not its answer. */
	if (!have_store && !o.no_save && cfg.save && !cfg.dry_run)
		have_store = convcli_open_keep(&c, &store);

	memset(&ch, 0, sizeof(ch));
	if (c.schema) {
		if (structured_load(&st, c.schema, c.schema_multi, &err))
			sink_die(&sink, &err);
		stp = &st;
		sink.st = stp;
	}
	ch.client = client;
	ch.o = &o;
	ch.sink = &sink;
	ch.resumed = o.cont || o.conversation;
	if (ch.resumed ? conv_open_stored(&ch.cv, &store, ci.id, o.system, cfg.system, &cli_interrupted, &err) :
	    conv_open(&ch.cv, o.history, cfg.max_input, o.system, cfg.system, &cli_interrupted, &err))
		sink_die(&sink, &err);
	ch.cv.st = stp;
	if (have_store && !o.no_save && cfg.save && !cfg.dry_run)
		ch.cv.store = &store;
	ch.cv.model = cfg.model;
	ch.cv.attach = &att;

	if (o.interactive) {
		const char *m = blank(msg.data ? msg.data : "") ? NULL : msg.data;

		/* Files alone are context for the first line typed, not a message of their own. */
		if (optind_ == argc && c.nfiles)
			code = interactive(&ch, NULL, m, &err);
		else
			code = interactive(&ch, m, NULL, &err);
	} else {
		struct ai_chat_resp resp;
		int rc = exchange(&ch, msg.data, &resp, &err);

		/* Kept first, so that the done record can say where. */
		if (!resp.dry_run) {
			int kc = 0;

			if (!rc && conv_save(&ch.cv, &err)) {
				cli_warn("%s", err.msg);
				kc = err.code;
			}
			if (!rc) {
				int k = keep(&ch, &err);

				if (k && !kc)
					kc = k;
			}
			code = report(&ch, rc, &resp, &err);
			if (!code)
				code = kc;
		}
		ai_chat_resp_release(&resp);
	}
	conv_release(&ch.cv);
	attach_set_release(&att);
	if (have_store)
		convstore_close(&store);
	if (stp)
		structured_release(stp);
	buf_release(&msg);
	buf_release(&sink.scratch);
	termout_release(&sink.text);
	ai_client_release(client);
	config_release(&cfg);
	if (code == AI_EX_INTERRUPT) {
		fflush(stdout);
		return AI_EX_INTERRUPT;
	}
	return cli_finish(code);
}
