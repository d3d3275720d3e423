#include "lib/cli.h"
#include "closest.h"
#include "config.h"
#include "fdio.h"
#include "api/params.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"
#include "runcmd.h"
#include "utf8.h"

#include <fcntl.h>
#include <strings.h>
#include <termios.h>
#include <math.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_prog = "ai";
volatile sig_atomic_t cli_interrupted;
volatile sig_atomic_t cli_signal;

static const struct cli_opt common_opts[] = {
	{ "model", required_argument, 'm', "NAME", "model to use (AI_MODEL)" },
	{ "profile", required_argument, 'p', "NAME", "configuration profile (AI_PROFILE)" },
	{ "base-url", required_argument, CLI_OPT_BASE_URL, "URL", "API endpoint (OPENAI_BASE_URL)" },
	{ "json", no_argument, 'j', NULL, "print JSON instead of text" },
	{ "verbose", no_argument, 'v', NULL, "show the HTTP exchange on stderr, key redacted" },
	{ "quiet", no_argument, 'q', NULL, "no progress or warnings" },
	{ "no-cache", no_argument, CLI_OPT_NO_CACHE, NULL, "neither read nor write the response cache" },
	{ "cache-ttl", required_argument, CLI_OPT_CACHE_TTL, "DURATION", "ignore cached answers older than this" },
	{ "timeout", required_argument, CLI_OPT_TIMEOUT, "SECONDS", "give up on a request after this long (default 600)" },
	{ "retries", required_argument, CLI_OPT_RETRIES, "N", "retries on 408, 409, 429, 5xx and network errors (default 2)" },
	{ "log-prompts", no_argument, CLI_OPT_LOG_PROMPTS, NULL, "keep prompt text in the usage ledger" },
	{ "dry-run", no_argument, CLI_OPT_DRY_RUN, NULL, "print the request instead of sending it" },
	{ "option", required_argument, 'o', "KEY=VALUE", "another chat request parameter (seed=42, stop='[\"x\"]')" },
	{ "list-models", no_argument, CLI_OPT_LIST_MODELS, NULL, "list the models the server offers and exit" },
	{ "help", no_argument, 'h', NULL, "print this help and exit" },
	{ "version", no_argument, 'V', NULL, "print the version and exit" },
	{ NULL, 0, 0, NULL, NULL }
};

/* The options of a program that prints a model's text for a person (c->text). */
static const struct cli_opt text_opts[] = {
	{ "markdown", required_argument, CLI_OPT_MARKDOWN, "WHEN", "render Markdown: auto (on a terminal), always or never" },
	{ NULL, 0, 0, NULL, NULL }
};

/* The options of a program whose operands are a message (c->message). */
static const struct cli_opt message_opts[] = {
	{ "file", required_argument, 'f', "FILE", "add FILE to the message, labelled with its name (- is standard input)" },
	{ "no-stdin", no_argument, CLI_OPT_NO_STDIN, NULL, "do not add piped standard input to the message" },
	{ NULL, 0, 0, NULL, NULL }
};

/* The options of a program that answers as data (c->schema_ok). */
static const struct cli_opt schema_opts[] = {
	{ "schema", required_argument, CLI_OPT_SCHEMA, "SCHEMA", "answer JSON that matches SCHEMA (JSON Schema, @FILE, or 'name, age int')" },
	{ "schema-multi", required_argument, CLI_OPT_SCHEMA_MULTI, "SCHEMA", "answer a list of objects that match SCHEMA" },
	{ NULL, 0, 0, NULL, NULL }
};

/* The options of a message program that takes templates (c->template_ok). */
static const struct cli_opt template_opts[] = {
	{ "use-template", required_argument, 'T', "NAME", "the prompt from template NAME (or @FILE), see ai(7)" },
	{ "param", required_argument, CLI_OPT_PARAM, "NAME=VALUE", "fill {{NAME}} in the template" },
	{ "save", required_argument, CLI_OPT_SAVE, "NAME", "save the options and the message as template NAME, send nothing" },
	{ "list-templates", no_argument, CLI_OPT_LIST_TEMPLATES, NULL, "list the saved templates and exit" },
	{ NULL, 0, 0, NULL, NULL }
};

static bool parse_quiet;        /* -q, for the notes cli.c prints itself */

/*
 * SIGINT, SIGTERM and SIGHUP kill at once, as if the program caught
 * nothing, unless it holds them deferred (cli_defer_signals): from the
 * moment it has a client, whose ledger rows may be queued, or runs a loop
 * that polls the flag and has something to undo (children to kill, an
 * index in a transaction).  A program that never looks at the flag (ai-usage
 * over a large ledger) must still stop on Ctrl-C.  Deferred, they raise
 * the flag: the transfer loop wakes within POLL_MAX_MS (its epoll wait
 * also returns EINTR), every read and wait gives up, and the program
 * leaves through exit(), whose handlers write the ledger rows still
 * queued (setup.c) before exit_by_signal dies by the signal: killed at
 * once, a call that was answered and paid for would be missing from
 * ai-usage.  A second of the same signal before the program is gone is
 * the user insisting: it kills at once.  A termination signal outranks an
 * earlier SIGINT, which ai-stream's chat forgives (cli_interrupt_resume).
 * Whatever kills from here first kills the helper runcmd.h may be running
 * (api_key_cmd), which has a process group of its own and would be left.
 *
 * A flag is only as good as the code that looks at it: a read that
 * began just after the look, or a wait that never looks, would make
 * SIGTERM do nothing.  So a deferred SIGTERM or SIGHUP also starts a
 * grace of CLI_SIGNAL_GRACE_S (longer than the ledger's busy timeout,
 * 5 s), after which SIGALRM kills by the signal, the flush done or not.
 * SIGALRM is caught only from then on: until then it keeps its default,
 * so an alarm inherited across exec (a "perl -e 'alarm 10; exec'" timeout)
 * still kills, and no read is cut short by EINTR for it.
 */
#define CLI_SIGNAL_GRACE_S 10

static volatile sig_atomic_t deferring;  /* holds of cli_defer_signals */
static volatile sig_atomic_t int_held;   /* holds of cli_hold_sigint */

/* Dies by sig now, from a handler (where sig is blocked) or not; async-signal-safe. */
static void die_by(int sig)
{
	sigset_t set;

	runcmd_kill_running();
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

/* die_by outside a handler: what was printed is kept first (stdout may be closed already). */
static void die_flushed(int sig)
{
	fflush(NULL);
	die_by(sig);
	_exit(128 + sig);
}

static void on_grace_over(int sig)
{
	int saved = errno;

	(void)sig;
	if (cli_signal && cli_signal != SIGINT)
		die_by(cli_signal);     /* not blocked here: it kills before raise returns */
	errno = saved;
}

/* Catches SIGALRM and sets it to ring once the grace is over; async-signal-safe. */
static void arm_grace(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_grace_over;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(CLI_SIGNAL_GRACE_S);
}

/* The code it interrupts may be about to read errno: the handler leaves it as it was. */
static void on_signal(int sig)
{
	int saved = errno;

	if (!deferring && !(sig == SIGINT && int_held)) {
		die_by(sig);    /* nothing to save: as if uncaught */
	} else if (cli_interrupted && cli_signal == sig) {
		die_by(sig);
	} else {
		if (!cli_signal || cli_signal == SIGINT) {
			cli_signal = sig;
			if (sig != SIGINT)
				arm_grace();
		}
		cli_interrupted = 1;
	}
	errno = saved;
}

/*
 * Registered first, so run last by exit(): the ledger is written by now.
 * Dies by the signal the Unix way, so a shell sees 128 + N and a loop
 * that ran the program stops as it would for any killed command.
 */
static void exit_by_signal(void)
{
	if (cli_signal && cli_interrupted)
		die_flushed(cli_signal);
}

void cli_defer_signals(bool on)
{
	int sig;

	if (on) {
		deferring++;
		return;
	}
	if (deferring > 0)
		deferring--;
	/* A SIGTERM or SIGHUP held until now: nothing is left to save, so it kills. */
	sig = cli_signal;
	if (deferring || !cli_interrupted || !sig || sig == SIGINT)
		return;
	die_flushed(sig);
}

void cli_hold_sigint(bool on)
{
	if (on)
		int_held++;
	else if (int_held > 0)
		int_held--;
}

bool cli_interrupt_resume(void)
{
	sigset_t set, old;
	bool resumed = false;

	/* A SIGTERM between the look and the clearing would be forgiven with the SIGINT. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	if (cli_signal == SIGINT) {
		cli_signal = 0;
		cli_interrupted = 0;
		resumed = true;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return resumed;
}

/*
 * SIGINT is always caught (a background job of a script starts with it
 * ignored, and kill -INT must still stop it cleanly); SIGTERM and SIGHUP
 * stay ignored when the program was started so (nohup).  SIGCHLD ignored
 * at start would be inherited too, and then waitpid(2) finds no child to
 * wait for (the kernel reaps them): it goes back to its default.
 */
static void catch_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	static bool registered;
	struct sigaction sa, old;

	if (!registered && !atexit(exit_by_signal))
		registered = true;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < AI_ARRAY_LEN(sigs); i++) {
		if (sigs[i] != SIGINT && !sigaction(sigs[i], NULL, &old) && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
	signal(SIGCHLD, SIG_DFL);
}

/*
 * A program started with 0, 1 or 2 closed would hand that number to the
 * next file it opens, and its output or a diagnostic would land in that
 * file.  Open /dev/null in their place first (git's sanitize_stdfds).
 */
static void open_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
		    open("/dev/null", fd ? O_WRONLY : O_RDONLY) < 0)
			_exit(AI_EX_OSERR);
}

/*
 * The API key lives in this process (libcurl keeps copies of the header
 * that carries it), so a core dump would put it on disk, where
 * systemd-coredump or apport keep it for weeks.  No core then, and not
 * dumpable, which also keeps the user's other processes from attaching
 * with ptrace or reading /proc/PID/mem.  An exec makes a command dumpable
 * again; it inherits the core limit of 0 as a soft limit it may raise.
 * AI_ALLOW_CORE=1 keeps the dump for debugging.
 */
static void no_core_dumps(void)
{
	const char *allow = getenv("AI_ALLOW_CORE");
	struct rlimit rl;

	if (allow && !strcmp(allow, "1"))
		return;
	if (!getrlimit(RLIMIT_CORE, &rl)) {
		rl.rlim_cur = 0;
		setrlimit(RLIMIT_CORE, &rl);
	}
	prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
}

void cli_init(struct cli *c, const char *prog)
{
	open_std_fds();
	no_core_dumps();
	catch_signals();
	signal(SIGPIPE, SIG_IGN);
	cli_prog = prog;
	c->prog = prog;
	c->model = c->profile = c->base_url = NULL;
	c->json = c->verbose = c->quiet = c->no_cache = c->dry_run = c->log_prompts = 0;
	c->message = false;
	c->files = NULL;
	c->nfiles = 0;
	c->no_stdin = 0;
	c->schema_ok = false;
	c->schema = NULL;
	c->schema_multi = 0;
	c->template_ok = false;
	c->template_arg = c->save = NULL;
	c->nparams = 0;
	c->tmpl = NULL;
	c->timeout_s = -1;
	c->retries = -1;
	c->cache_ttl_s = -1;
	c->list_models = 0;
	c->n_options = 0;
	c->text = false;
	c->markdown = -1;
}

static void vwarn(const char *fmt, va_list ap)
{
	struct buf msg, b;

	/*
	 * A message often carries text from a server or a model (an error's
	 * message, a name): it is shown, never obeyed, and stays one line
	 * (termout.h says why always, not only on a terminal).
	 */
	buf_init(&msg, 4096);
	buf_vaddf(&msg, fmt, ap);
	/* One write, so lines from processes sharing stderr do not interleave. */
	buf_init(&b, 0);
	buf_addf(&b, "%s: ", cli_prog);
	termout_visible(&b, msg.data ? msg.data : "", msg.len);
	buf_addch(&b, '\n');
	fflush(stdout);
	if (b.data)
		(void)!write(2, b.data, b.len);
	buf_release(&msg);
	buf_release(&b);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void cli_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(code);
}

void cli_die_err(const struct ai_err *e)
{
	if (e->msg[0])
		cli_warn("%s", e->msg);
	exit(e->code ? e->code : AI_EX_SOFTWARE);
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", cli_prog);
	exit(AI_EX_USAGE);
}

static void print_opts(const struct cli_opt *o)
{
	for (; o->name; o++) {
		char left[64];
		int n;

		if (o->val > 32 && o->val < 127)
			n = snprintf(left, sizeof(left), "-%c, --%s", o->val, o->name);
		else
			n = snprintf(left, sizeof(left), "    --%s", o->name);
		if (o->arg && n > 0 && (size_t)n < sizeof(left))
			snprintf(left + n, sizeof(left) - (size_t)n, " %s", o->arg);
		printf("  %-28s %s\n", left, o->help);
	}
}

static void usage(const struct cli *c)
{
	printf("Usage: %s %s\n%s\n\nOptions:\n", c->prog, c->usage, c->summary);
	if (c->opts)
		print_opts(c->opts);
	if (c->text)
		print_opts(text_opts);
	if (c->message)
		print_opts(message_opts);
	if (c->schema_ok)
		print_opts(schema_opts);
	if (c->template_ok)
		print_opts(template_opts);
	printf("\nCommon options:\n");
	print_opts(common_opts);
	printf("\nSee %s(1) and ai(7).\n", c->prog);
}

static size_t count_opts(const struct cli_opt *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

static void add_opts(const struct cli_opt *o, struct option *lo, size_t *nl, struct buf *sh)
{
	for (; o && o->name; o++) {
		lo[*nl].name = o->name;
		lo[*nl].has_arg = o->has_arg;
		lo[*nl].flag = NULL;
		lo[*nl].val = o->val;
		(*nl)++;
		if (o->val > 32 && o->val < 127) {
			buf_addch(sh, (char)o->val);
			if (o->has_arg == required_argument)
				buf_addch(sh, ':');
			else if (o->has_arg == optional_argument)
				buf_addstr(sh, "::");
		}
	}
}

/*
 * The getopt tables live in static storage while options are parsed: a
 * usage error exits from the middle of the parse (from here or from a
 * program's own option function), and memory a global points at is not a
 * leak to LeakSanitizer, whatever the registers held at exit.
 */
static struct option *parse_lo;
static struct buf parse_sh;
static const char **parse_files;    /* c->files: -f operands, kept for the whole run */

/* An unknown --option, with the known one it is nearest to. */
static _Noreturn void unknown_long(const char *arg, const struct option *lo, size_t nl)
{
	const char **names = calloc(nl + 1, sizeof(*names));
	char word[80];
	const char *near = NULL;
	size_t n = strcspn(arg + 2, "=");

	if (names && n < sizeof(word) && !strncmp(arg, "--", 2)) {
		for (size_t i = 0; i < nl; i++)
			names[i] = lo[i].name;
		memcpy(word, arg + 2, n);
		word[n] = '\0';
		near = closest(word, names, nl, 2);
	}
	free(names);
	if (near)
		cli_usage_error("unknown option '%s'; did you mean '--%s'?", arg, near);
	cli_usage_error("unknown option '%s'", arg);
}

int cli_parse(struct cli *c, int argc, char **argv,
	      void (*fn)(int val, const char *arg, void *ud), void *ud)
{
	size_t n = count_opts(common_opts) + count_opts(c->opts) + count_opts(message_opts) +
		   count_opts(text_opts) + count_opts(schema_opts) + count_opts(template_opts) + 2, nl = 0;
	struct option *lo = parse_lo = calloc(n, sizeof(*lo));
	int ch;

	if (!lo || (c->message && !(parse_files = calloc((size_t)argc + 1, sizeof(*parse_files)))))
		cli_die(AI_EX_OSERR, "out of memory");
	buf_init(&parse_sh, 0);
	/*
	 * Options may follow operands (ai-index a.md --json), as with the GNU
	 * tools people use these with; "--" ends the options, for a message
	 * that starts with '-'.  Where the operands are a message, the first
	 * one ends the options, as with env(1), xargs(1) and ssh(1): in
	 * "ai-stream what does ls -la do", -la is part of the question.
	 */
	if (c->message)
		buf_addch(&parse_sh, '+');
	buf_addch(&parse_sh, ':');    /* report a missing argument as ':' */
	add_opts(c->opts, lo, &nl, &parse_sh);
	if (c->text)
		add_opts(text_opts, lo, &nl, &parse_sh);
	if (c->message)
		add_opts(message_opts, lo, &nl, &parse_sh);
	if (c->schema_ok)
		add_opts(schema_opts, lo, &nl, &parse_sh);
	if (c->template_ok)
		add_opts(template_opts, lo, &nl, &parse_sh);
	add_opts(common_opts, lo, &nl, &parse_sh);
	lo[nl].name = "list-options";
	lo[nl].has_arg = no_argument;
	lo[nl].val = CLI_OPT_LIST_OPTIONS;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, parse_sh.data, lo, NULL)) != -1) {
		switch (ch) {
		case 'm': c->model = optarg; break;
		case 'p': c->profile = optarg; break;
		case CLI_OPT_BASE_URL: c->base_url = optarg; break;
		case 'j': c->json = 1; break;
		case 'v': c->verbose++; break;
		case 'q': c->quiet = 1; parse_quiet = true; break;
		case CLI_OPT_NO_CACHE: c->no_cache = 1; break;
		case CLI_OPT_DRY_RUN: c->dry_run = 1; break;
		case CLI_OPT_LOG_PROMPTS: c->log_prompts = 1; break;
		case 'f':
			if (!c->message) {
				fn(ch, optarg, ud);     /* the program's own -f, as ai-summarize's --format */
				break;
			}
			parse_files[c->nfiles++] = optarg;
			c->files = parse_files;
			break;
		case CLI_OPT_NO_STDIN: c->no_stdin = 1; break;
		case CLI_OPT_SCHEMA:
		case CLI_OPT_SCHEMA_MULTI:
			if (c->schema && c->schema_multi != (ch == CLI_OPT_SCHEMA_MULTI))
				cli_usage_error("--schema and --schema-multi exclude each other");
			c->schema = optarg;
			c->schema_multi = ch == CLI_OPT_SCHEMA_MULTI;
			break;
		case 'T': c->template_arg = optarg; break;
		case CLI_OPT_SAVE: c->save = optarg; break;
		case CLI_OPT_LIST_TEMPLATES: tmplcli_list(); goto done;
		case CLI_OPT_PARAM:
			if (!strchr(optarg, '=') || optarg[0] == '=')
				cli_usage_error("--param wants NAME=VALUE, not '%s'", optarg);
			if (c->nparams == AI_ARRAY_LEN(c->params))
				cli_usage_error("too many --param (%zu at most)", AI_ARRAY_LEN(c->params));
			c->params[c->nparams++] = optarg;
			break;
		case CLI_OPT_TIMEOUT:
			c->timeout_s = cli_duration("--timeout", optarg);
			if (c->timeout_s <= 0)
				cli_usage_error("--timeout must be more than 0");
			break;
		case CLI_OPT_RETRIES: c->retries = cli_long("--retries", optarg, 0, 100); break;
		case CLI_OPT_CACHE_TTL: c->cache_ttl_s = (long)cli_duration("--cache-ttl", optarg); break;
		case CLI_OPT_LIST_MODELS: c->list_models = 1; break;
		case CLI_OPT_MARKDOWN:
			if ((c->markdown = config_parse_markdown(optarg)) < 0)
				cli_usage_error("--markdown takes auto, always or never, not '%s'", optarg);
			break;
		case 'o': {
			struct ai_err e;

			if (c->n_options == AI_ARRAY_LEN(c->options))
				cli_usage_error("too many -o options (%zu at most)", AI_ARRAY_LEN(c->options));
			if (params_parse(optarg, NULL, NULL, &e))
				cli_usage_error("%s", e.msg);
			c->options[c->n_options++] = optarg;
			break;
		}
		case 'h':
			usage(c);
			goto done;
		case 'V':
			printf("%s %s\n", c->prog, AI_VERSION);
			goto done;
		case CLI_OPT_LIST_OPTIONS:
			for (size_t i = 0; i < nl; i++)
				printf("--%s\n", lo[i].name);
			goto done;
		case ':':
			cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
		case '?':
			if (optopt)
				cli_usage_error("unknown option '-%c'", optopt);
			unknown_long(argv[optind - 1], lo, nl);
		default:
			fn(ch, optarg, ud);
		}
	}
	free(lo);
	parse_lo = NULL;
	buf_release(&parse_sh);
	if (c->template_ok)
		tmplcli_setup(c);
	if (c->list_models)
		exit(setup_list_models(c));
	return optind;
done:
	/* --help, --version, --list-options: the whole job is done. */
	free(lo);
	parse_lo = NULL;
	buf_release(&parse_sh);
	exit(cli_finish(0));
}

long cli_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno == ERANGE || v < min || v > max)
		cli_usage_error("%s wants a whole number from %ld to %ld, not '%s'", opt, min, max, s);
	return v;
}

double cli_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(v) || v < min || v > max)
		cli_usage_error("%s wants a number from %g to %g, not '%s'", opt, min, max, s);
	return v;
}

double cli_duration(const char *opt, const char *s)
{
	double v;

	if (config_parse_duration(s, &v))
		cli_usage_error("%s wants a duration such as 30, 500ms, 5m, 2h or 7d, not '%s'", opt, s);
	return v;
}

/* A read of one input part: what fd_read_text says, stopped by Ctrl-C. */
static int read_fd(int fd, const char *name, struct buf *out, struct ai_err *err)
{
	return fd_read_text(fd, name, out, &cli_interrupted, err);
}

enum cli_line cli_ask_tty_line(const char *question, struct buf *line)
{
	enum cli_line ans = CLI_LINE;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	buf_reset(line);
	if (fd < 0)
		return CLI_LINE_NOTTY;
	tcflush(fd, TCIFLUSH);
	if (fd_write_all(fd, question, strlen(question))) {
		close(fd);
		return cli_interrupted ? CLI_LINE_INTERRUPTED : CLI_LINE_NOTTY;
	}
	for (;;) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR && !cli_interrupted)
			continue;
		if (r < 0 && cli_interrupted) {
			ans = CLI_LINE_INTERRUPTED;
			break;
		}
		if (r <= 0) {
			ans = line->len ? CLI_LINE : CLI_LINE_EOF;
			break;
		}
		if (ch == '\n')
			break;
		if (line->len + 1 < 4096)
			buf_addch(line, ch);
	}
	/* End of file leaves the cursor after the question: the next line starts on its own. */
	if (ans != CLI_LINE)
		(void)!write(fd, "\n", 1);
	close(fd);
	return ans;
}

enum cli_answer cli_ask_tty(const char *question)
{
	struct buf line = BUF_INIT;
	enum cli_answer ans;

	switch (cli_ask_tty_line(question, &line)) {
	case CLI_LINE_NOTTY:
		ans = CLI_NOTTY;
		break;
	case CLI_LINE_INTERRUPTED:
		ans = CLI_INTERRUPTED;
		break;
	default: {
		char *a = line.data ? line.data + strspn(line.data, " \t\r") : "";

		a[strcspn(a, " \t\r")] = '\0';
		ans = !strcasecmp(a, "y") || !strcasecmp(a, "yes") ? CLI_YES : CLI_NO;
	}
	}
	buf_release(&line);
	return ans;
}

void cli_note_stdin(void)
{
	if (!parse_quiet && isatty(STDIN_FILENO) && isatty(STDERR_FILENO))
		cli_warn("reading standard input; end it with Ctrl-D");
}

int cli_read_input(int argc, char **argv, struct buf *out, struct ai_err *err)
{
	char *dash[] = { "-" };

	if (argc == 0) {
		argc = 1;
		argv = dash;
	}
	for (int i = 0; i < argc; i++) {
		const char *name = argv[i];
		int fd = 0, r;

		if (strcmp(name, "-")) {
			fd = open(name, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", name,
					       strerror(errno));
		} else {
			name = "stdin";
			cli_note_stdin();
		}
		r = read_fd(fd, name, out, err);
		if (fd)
			close(fd);
		if (r)
			return -1;
	}
	return 0;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n\f\v", s[i]))
			return false;
	return true;
}

/* Ends the part before a new one with a blank line. */
static int separate(struct buf *out)
{
	if (!out->len)
		return 0;
	while (out->len && out->data[out->len - 1] == '\n')
		out->data[--out->len] = '\0';
	return buf_addstr(out, "\n\n");
}

static int too_big(struct buf *out, struct ai_err *err)
{
	if (errno == EFBIG)
		return ai_errf(err, AI_EX_DATAERR,
			       "the message is larger than %zu MiB; shorten it or raise AI_MAX_INPUT",
			       out->max >> 20);
	return ai_errf(err, AI_EX_OSERR, "out of memory");
}

/*
 * A file given with -f: a block that names it, so the model can tell the
 * files apart and refer to them.  The name is the user's, as typed.
 */
static int add_file(const char *name, struct buf *out, struct buf *tmp, struct ai_err *err)
{
	char *one[1];

	one[0] = (char *)name;
	buf_reset(tmp);
	if (cli_read_input(1, one, tmp, err))
		return -1;
	if (separate(out) || buf_addf(out, "<file name=\"%s\">\n", strcmp(name, "-") ? name : "stdin") ||
	    buf_add(out, tmp->data ? tmp->data : "", tmp->len) ||
	    (tmp->len && tmp->data[tmp->len - 1] != '\n' && buf_addch(out, '\n')) ||
	    buf_addstr(out, "</file>"))
		return too_big(out, err);
	return 0;
}

int cli_read_message(const struct cli *c, int argc, char **argv, struct buf *out, struct ai_err *err)
{
	struct buf tmp;
	bool stdin_used = false;
	int rc = 0;

	buf_init(&tmp, out->max);
	for (size_t i = 0; i < c->nfiles && !rc; i++) {
		stdin_used |= !strcmp(c->files[i], "-");
		rc = add_file(c->files[i], out, &tmp, err);
	}
	/*
	 * Standard input joins the arguments unless it is a terminal: what is
	 * piped in is what the arguments talk about (git diff | ai-stream 'write
	 * a commit message').  With no arguments and no files it is the message
	 * itself, from a terminal too.
	 */
	if (!rc && !stdin_used && !c->no_stdin && (!isatty(STDIN_FILENO) || (!argc && !c->nfiles))) {
		buf_reset(&tmp);
		rc = cli_read_input(0, NULL, &tmp, err);
		if (!rc && !blank(tmp.data ? tmp.data : "", tmp.len) &&
		    (separate(out) || buf_add(out, tmp.data, tmp.len)))
			rc = too_big(out, err);
	}
	buf_release(&tmp);
	if (rc)
		return -1;
	if (argc && separate(out))
		return too_big(out, err);
	for (int i = 0; i < argc; i++) {
		size_t from = out->len;

		if ((i && buf_addch(out, ' ')) || buf_addstr(out, argv[i]))
			return too_big(out, err);
		if (utf8_valid_prefix(out->data + from, out->len - from) != out->len - from)
			return ai_errf(err, AI_EX_DATAERR, "argument %d is not valid UTF-8", i + 1);
	}
	/* The message ends with its text, not with the newline a file or a pipe ended with. */
	while (out->len && strchr(" \t\r\n\f\v", out->data[out->len - 1]))
		out->data[--out->len] = '\0';
	return c->tmpl ? tmplcli_fill(c, out, err) : 0;
}

/* What a file that is not a regular one is, for a message. */
static const char *file_kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" : "a special file";
}

int cli_read_document(const char *name, struct buf *out, struct ai_err *err)
{
	char *one[1];
	struct stat st;
	int fd, r;

	if (!strcmp(name, "-")) {
		one[0] = (char *)name;
		return cli_read_input(1, one, out, err);
	}
	/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
	if ((fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", name, strerror(errno));
	if (fstat(fd, &st) || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ai_errf(err, AI_EX_NOINPUT, "'%s' is %s, not a regular file: a document must be "
			       "one (or '-' for standard input)", name, file_kind(st.st_mode));
	}
	r = read_fd(fd, name, out, err);
	close(fd);
	return r;
}

void cli_write(const void *p, size_t n, bool flush)
{
	if ((n && fwrite(p, 1, n, stdout) != n) || (flush && fflush(stdout))) {
		if (errno == EPIPE)
			exit(0);
		cli_die(AI_EX_IOERR, "cannot write output: %s", strerror(errno));
	}
}

void cli_puts(const char *s, bool flush)
{
	cli_write(s, strlen(s), flush);
}

int cli_finish(int code)
{
	int bad = ferror(stdout);

	errno = 0;
	if (fclose(stdout))
		bad = 1;
	if (!bad)
		return code;
	if (errno == EPIPE)
		return code;
	cli_warn("cannot write output: %s", errno ? strerror(errno) : "write error");
	return code ? code : AI_EX_IOERR;
}
