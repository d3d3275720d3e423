#ifndef AI_CLI_H
#define AI_CLI_H
/*
 * cli.h - what every program's main() shares: the common options, one
 * table of options per program (from which --help is printed and the
 * man pages and completions are checked), diagnostics with the program
 * name, number parsing with range checks, input as cat(1) reads it, and
 * output that notices when it was not really written.
 *
 * This is the one part of common/ that prints and exits: it exists to
 * serve main().
 */
#include "ai.h"
#include "buf.h"

struct template;

#include <getopt.h>
#include <signal.h>

/* An option: the long name, has_arg as getopt_long, the short letter (or a
 * value >= 256 for long-only options), the argument's name in --help, and a help line. */
struct cli_opt {
	const char *name;
	int has_arg;
	int val;
	const char *arg;
	const char *help;
};

/* Values of long-only common options; programs number their own from CLI_OPT_PROG. */
enum {
	CLI_OPT_NO_CACHE = 256, CLI_OPT_TIMEOUT, CLI_OPT_RETRIES, CLI_OPT_DRY_RUN,
	CLI_OPT_BASE_URL, CLI_OPT_CACHE_TTL, CLI_OPT_LOG_PROMPTS, CLI_OPT_LIST_OPTIONS,
	CLI_OPT_NO_STDIN, CLI_OPT_LIST_MODELS, CLI_OPT_SCHEMA, CLI_OPT_SCHEMA_MULTI,
	CLI_OPT_PARAM, CLI_OPT_SAVE, CLI_OPT_LIST_TEMPLATES,
	CLI_OPT_PROG = 300
};

/* --markdown, taken where c->text is set; below the programs' own numbers. */
#define CLI_OPT_MARKDOWN (CLI_OPT_PROG - 1)

/* The common options, their values after parsing.  Unset strings are NULL, unset numbers -1. */
struct cli {
	const char *prog;       /* "ai-summarize" */
	const char *usage;      /* "[OPTION]... [FILE]..." */
	const char *summary;    /* one line for --help */
	const struct cli_opt *opts;  /* the program's own options, ended by a zeroed entry */
	/*
	 * Set before cli_parse when the operands are a message (ai-stream,
	 * ai-ask, ai-agent): the first operand ends the options, and -f FILE
	 * and --no-stdin are taken (see cli_read_message).
	 */
	bool message;
	/* Set before cli_parse by a program that answers as data: --schema and --schema-multi
	 * are taken (structured.h loads the schema). */
	bool schema_ok;
	const char *schema;     /* the argument of --schema or --schema-multi, borrowed */
	int schema_multi;
	/* Set before cli_parse by a message program that takes templates (tmplcli.h): -T,
	 * --param, --save and --list-templates.  tmpl is loaded by cli_parse. */
	bool template_ok;
	const char *template_arg, *save;
	const char *params[32];      /* --param NAME=VALUE, borrowed from argv */
	size_t nparams;
	struct template *tmpl;       /* -T's template, owned; NULL without -T */
	const char **files;     /* -f, in order; borrowed from argv */
	size_t nfiles;
	int no_stdin;
	const char *model, *profile, *base_url;
	int json, verbose, quiet, no_cache, dry_run, log_prompts;
	double timeout_s;
	long retries;
	long cache_ttl_s;
	int list_models;
	const char *options[64];     /* -o KEY=VALUE, checked (params.h), borrowed from argv */
	size_t n_options;
	/* Set before cli_parse when the program prints a model's text: --markdown is taken. */
	bool text;
	int markdown;           /* --markdown as an enum ai_markdown (config.h); -1 when not given */
};

extern const char *cli_prog;                 /* for messages; "ai" until cli_init */
extern volatile sig_atomic_t cli_interrupted; /* set by SIGINT, SIGTERM or SIGHUP */
extern volatile sig_atomic_t cli_signal;      /* the signal that set it; 0 when none */

/*
 * Sets the program name, ignores SIGPIPE (so a closed pipe is EPIPE, not a
 * silent death mid-write), sets SIGCHLD to its default, and installs
 * handlers for SIGINT, SIGTERM and SIGHUP.  They kill at once, unless
 * deferred (cli_defer_signals): then they only set cli_interrupted and
 * cli_signal, so network loops stop cleanly, and the program still leaves
 * through exit() (whose handlers write the queued ledger rows), and then
 * dies by that signal: the shell sees 128 + N (130, 143, 129).  A second
 * of the same signal kills at once, and so does SIGALRM 10 s after a
 * deferred SIGTERM or SIGHUP (no program may use alarm(2) for anything
 * else; SIGALRM keeps its default until then).  Killing, they first kill
 * the helper command runcmd.h may be running.
 */
void cli_init(struct cli *c, const char *prog);

/*
 * Holds SIGINT, SIGTERM and SIGHUP (on) or lets them go (off); holds nest.  A
 * program holds them while it has something to save or undo that the
 * flag lets it do: a client's queued ledger rows (setup.c holds them
 * from the first client on), children to kill, a database to leave
 * whole.  When the last hold goes and a SIGTERM or SIGHUP came meanwhile, the
 * program dies by it there (stdout flushed).
 */
void cli_defer_signals(bool on);

/*
 * Holds SIGINT alone (on) or lets it go (off); holds nest.  For a chat
 * whose Ctrl-C at its prompt means a fresh prompt, while SIGTERM and
 * SIGHUP are let go there: held, SIGINT only raises the flag.
 */
void cli_hold_sigint(bool on);

/*
 * A chat that goes on after Ctrl-C: clears the interruption and returns
 * true when it was SIGINT; false (flag kept) for SIGTERM or SIGHUP, which
 * must end the program.
 */
bool cli_interrupt_resume(void);

/*
 * Parses argv with the common options and c->opts.  For each option of the
 * program's own table it calls fn(val, optarg, ud), which returns 0 or
 * exits through cli_usage_error().  Handles -h (usage on stdout, exit 0),
 * -V, and the hidden --list-options (every long option name, one a line:
 * the tests compare it with the man page and completions).  --list-models
 * is run once every option is parsed (setup_list_models), whatever the
 * operands, and exits.  Returns optind.
 */
int cli_parse(struct cli *c, int argc, char **argv,
	      void (*fn)(int val, const char *arg, void *ud), void *ud);

/* Prints "prog: message" to stderr; warn adds nothing, die exits with code. */
void cli_warn(const char *fmt, ...) AI_PRINTF(1, 2);
_Noreturn void cli_die(int code, const char *fmt, ...) AI_PRINTF(2, 3);
/* Prints the error (if any text) and exits with its code (or 70 when it has none). */
_Noreturn void cli_die_err(const struct ai_err *e);
/* "prog: message" plus "Try 'prog --help'." and exit 64. */
_Noreturn void cli_usage_error(const char *fmt, ...) AI_PRINTF(1, 2);

/* Parses a whole decimal integer in [min, max] or exits 64 naming the option. */
long cli_long(const char *opt, const char *s, long min, long max);
/* Parses a finite number in [min, max] or exits 64 naming the option. */
double cli_double(const char *opt, const char *s, double min, double max);
/* Parses a duration: "30", "30s", "500ms", "5m", "2h", "7d" into seconds; exits 64 when bad. */
double cli_duration(const char *opt, const char *s);

/*
 * Reads the files named in argv[0..argc) ("-" is stdin), or stdin when
 * argc is 0, into out (whose max is the cap), as cat does.  The text must be
 * UTF-8 without NUL bytes: otherwise -1 with a message that names the file,
 * line and column (AI_EX_DATAERR).  An unreadable file is AI_EX_NOINPUT,
 * input over the cap AI_EX_DATAERR.
 */
int cli_read_input(int argc, char **argv, struct buf *out, struct ai_err *err);

/*
 * Reads the message of a program whose operands are a message into out
 * (whose max is the cap): each -f file as a block labelled with its name
 * (<file name="NAME">...</file>), then standard input when it is not a
 * terminal (unless --no-stdin, or -f - took it), then the operands joined
 * by spaces; the parts are separated by a blank line, and trailing white
 * space is dropped.  With no operands and no files, standard input is read
 * even from a terminal.  Every part is checked as cli_read_input checks.
 */
int cli_read_message(const struct cli *c, int argc, char **argv, struct buf *out, struct ai_err *err);

/* The answer to a yes-or-no question asked on the terminal. */
enum cli_answer { CLI_NO, CLI_YES, CLI_NOTTY, CLI_INTERRUPTED };

/*
 * Asks question on /dev/tty, never on standard input (which may hold the
 * input, or "yes |"), and reads one line.  Keys typed before the question
 * are discarded first, as sudo and ssh do, so only an answer to it counts.
 * "y" or "yes", in any case, is CLI_YES; anything else CLI_NO; no
 * controlling terminal CLI_NOTTY; Ctrl-C CLI_INTERRUPTED.
 */
enum cli_answer cli_ask_tty(const char *question);

/* How cli_ask_tty_line ended: a line read, end of file, no terminal, Ctrl-C. */
enum cli_line { CLI_LINE, CLI_LINE_EOF, CLI_LINE_NOTTY, CLI_LINE_INTERRUPTED };

/*
 * As cli_ask_tty, but keeps what was typed: one line into line, without
 * its newline, cut at 4 KiB (a line ended by end of file counts as a line
 * when it holds something).  When no line was read, a newline is written
 * to the terminal, so that what follows does not start after the question.
 */
enum cli_line cli_ask_tty_line(const char *question, struct buf *line);

/* On a terminal, says on stderr (unless -q) that standard input is being read and how to end it. */
void cli_note_stdin(void);

/*
 * Reads one document into out as cli_read_input reads a file, but only a
 * regular file: it is opened without blocking, so a FIFO, a device or a
 * socket named as a document is refused at once (AI_EX_NOINPUT, saying
 * what it is) instead of blocking or reading without end.  "-" is stdin,
 * whatever it is.
 */
int cli_read_document(const char *name, struct buf *out, struct ai_err *err);

/*
 * Writes n bytes to stdout and flushes when flush is true.  On EPIPE (the
 * reader went away, as with "| head -1") it exits 0 quietly; on another
 * error it exits 74 with a message.
 */
void cli_write(const void *p, size_t n, bool flush);
void cli_puts(const char *s, bool flush);

/* The last thing main does: checks that stdout was really written (">/dev/full"
 * fails) and returns code, or 74 when the output was lost. */
int cli_finish(int code);

#endif
