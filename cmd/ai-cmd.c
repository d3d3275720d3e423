/*
 * ai-cmd - plain words in, one shell command out, run only when a person
 * says so.
 *
 * The model is told the shell ($SHELL, or --shell) and the system (uname,
 * os-release) and asked for one command on one line.  Its reply is
 * cleaned (a code fence, a `$ ` prompt, backticks around it) or refused:
 * several lines, no command, or a character that would not show as what
 * runs (a control character, a bidirectional override) exit 65.
 *
 * Written to a pipe, a file or $(...), the command is printed alone and
 * never run.  On a terminal it is shown through the neutraliser and the
 * question is read from /dev/tty, never standard input: Execute runs it
 * with `$SHELL -c` in the current directory and exits with its status,
 * Describe asks the model what it does, Revise sends a correction, and
 * Abort (also Enter and end of file) runs nothing.
 *
 * A program of its own rather than an ai-agent mode: it does one job, its
 * output composes ($(ai-cmd ...), the shell key bindings), and it needs
 * none of the agent's tool-running machinery, only one fork and exec that
 * a person asked for.
 */
#include "ai.h"
#include "api/api.h"
#include "clock.h"
#include "compat/compat.h"
#include "fdio.h"
#include "lib/cli.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"
#include "shcmd.h"
#include "utf8.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <sys/select.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OPT_SHELL = CLI_OPT_PROG };

static const struct cli_opt opts[] = {
	{ "shell", required_argument, OPT_SHELL, "SHELL", "write the command for SHELL and run it with SHELL -c (default $SHELL, else /bin/sh)" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *shell;      /* the path (or a name execvp finds) */
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	if (val == OPT_SHELL) {
		if (!*arg)
			cli_usage_error("--shell wants a shell, not an empty string");
		o->shell = arg;
	}
}

/* The shell's name for the model: "bash" from "/usr/bin/bash". Borrowed from shell. */
static const char *shell_name(const char *shell)
{
	const char *s = strrchr(shell, '/');

	return s && s[1] ? s + 1 : shell;
}

/*
 * The system, as the model needs it to choose between GNU and BSD options
 * or apt and dnf: "Linux 6.1.0 x86_64 (Debian GNU/Linux 12 (bookworm))".
 * os-release is optional; only its PRETTY_NAME is read, and a line at most.
 */
static void describe_os(struct buf *b)
{
	struct utsname u;
	FILE *f = fopen("/etc/os-release", "re");
	char line[256];

	if (uname(&u) == 0)
		buf_addf(b, "%s %s %s", u.sysname, u.release, u.machine);
	else
		buf_addstr(b, "a Unix system");
	for (int i = 0; f && i < 64 && fgets(line, sizeof(line), f); i++) {
		char *v;
		size_t n;

		if (strncmp(line, "PRETTY_NAME=", 12))
			continue;
		v = line + 12;
		n = strcspn(v, "\n");
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v++;
			n -= 2;
		}
		if (n && utf8_valid_prefix(v, n) == n)
			buf_addf(b, " (%.*s)", (int)n, v);
		break;
	}
	if (f)
		fclose(f);
}

static void add_message(json_object *conv, const char *role, const char *content)
{
	if (json_object_array_add(conv, out_message(role, content)))
		cli_die(AI_EX_OSERR, "out of memory");
}

/* One chat call over msgs (borrowed).  The cache and the ledger come with ai_chat. */
/* t: -T's template (its temperature and max_tokens), or NULL. */
static int ask_model(struct ai_client *c, const struct template *t, json_object *msgs,
		     struct ai_chat_resp *r, struct ai_err *err)
{
	struct ai_chat_req q;

	ai_chat_req_init(&q);
	q.messages = msgs;
	if (t) {
		q.temperature = t->temperature;
		q.max_tokens = t->max_tokens;
	}
	return ai_chat(c, &q, r, err);
}

/* ---- the terminal ---- */

/* The text of line with white space trimmed, for comparing answers.  Borrowed from line. */
static const char *answer_text(struct buf *line)
{
	const char *s = line->data ? line->data : "", *e = s + line->len;

	shcmd_trim(&s, &e);
	buf_consume(line, (size_t)(s - (line->data ? line->data : "")));
	line->len = (size_t)(e - s);
	if (line->data)
		line->data[line->len] = '\0';
	return line->data ? line->data : "";
}

/* Model text on the terminal: made safe (termout), and ended with a newline. */
static void show(const char *text)
{
	struct termout to;
	size_t n = strlen(text);

	termout_init(&to, false);
	termout_write(&to, text, n, false);
	termout_end(&to, false);
	if (!n || text[n - 1] != '\n')
		cli_write("\n", 1, false);
	termout_release(&to);
	fflush(stdout);
}

/* How long the command may outlive a SIGTERM or SIGHUP before it is passed on (run). */
#define FORWARD_GRACE_MS 300

/*
 * Runs cmd with shell -c in the current directory and returns its exit
 * status as a shell reports it (128 + N for a signal).  The command gets
 * the default SIGPIPE back (cli_init ignores it, and an ignored signal
 * stays ignored across exec, so "yes | head" would complain); SIGINT and
 * SIGQUIT reach it, not this process, which waits as system(3) does;
 * a SIGTERM or SIGHUP sent to this process alone is passed on.
 */
static int run(const char *shell, const char *cmd)
{
	char *argv[] = { (char *)shell, "-c", (char *)cmd, NULL };
	struct sigaction ign, old_int, old_quit;
	sigset_t block, unblocked;
	bool forwarded = false;
	int64_t signalled = 0;
	int status, pfd;
	pid_t pid;

	fflush(stdout);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid = fork();
	if (pid < 0)
		cli_die(AI_EX_OSERR, "cannot start '%s': %s", shell, strerror(errno));
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execvp(shell, argv);
		cli_warn("cannot run '%s': %s", shell, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	/*
	 * A SIGTERM or SIGHUP sent to the whole group (kill %1, timeout(1), a
	 * hangup) has reached the command already, and a second one is a
	 * force-quit to many programs (ours among them: the ledger row is
	 * lost).  The sender cannot be told apart (si_pid names the shell in
	 * both cases), so the signal is passed on only when the command is
	 * still there FORWARD_GRACE_MS later.  TERM and HUP are blocked but
	 * while pselect waits on the command's pidfd, so one that comes at any
	 * moment wakes the wait and nothing wakes it else; without a pidfd
	 * (an old kernel), waitpid is polled every 20 ms.
	 */
	pfd = compat_pidfd_open(pid);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	for (;;) {
		struct timespec tick = { 0, 20 * 1000 * 1000 }, *wait = NULL;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			cli_die(AI_EX_OSERR, "cannot wait for '%s': %s", shell, strerror(errno));
		if (cli_interrupted && cli_signal != SIGINT && !forwarded) {
			int64_t left;

			if (!signalled)
				signalled = mono_ms();
			left = FORWARD_GRACE_MS - (mono_ms() - signalled);
			if (left <= 0) {
				kill(pid, cli_signal);
				forwarded = true;
			} else {
				tick = (struct timespec){ left / 1000, (long)(left % 1000) * 1000000L };
				wait = &tick;
			}
		}
		if (pfd >= 0) {
			fd_set rd;

			FD_ZERO(&rd);
			FD_SET(pfd, &rd);
			pselect(pfd + 1, &rd, NULL, NULL, wait, &unblocked);
		} else {
			sigprocmask(SIG_SETMASK, &unblocked, NULL);
			nanosleep(&tick, NULL);
			sigprocmask(SIG_BLOCK, &block, NULL);
		}
	}
	sigprocmask(SIG_SETMASK, &unblocked, NULL);
	if (pfd >= 0)
		close(pfd);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- main ---- */

struct session {
	struct ai_config *cfg;
	struct ai_client *client;
	const char *shell;
	const struct template *tmpl;    /* -T's, or NULL */
	struct buf os;
	json_object *conv;      /* system, request, then each command and correction */
	struct buf cmd;         /* the command now proposed */
	struct ai_chat_resp last;
	bool released;          /* the client and config, before Execute */
};

/*
 * Asks for a command over s->conv into s->cmd.  A failed call exits; a
 * reply that is not one command returns -1 with err and leaves s->cmd as
 * it was.
 */
static int propose(struct session *s, struct ai_err *err)
{
	ai_err_clear(err);
	ai_chat_resp_release(&s->last);
	memset(&s->last, 0, sizeof(s->last));
	if (ask_model(s->client, s->tmpl, s->conv, &s->last, err))
		setup_die(s->client, s->cfg, err);
	if (s->last.dry_run)
		return 0;
	return shcmd_clean(s->last.content, &s->cmd, err);
}

/* Describe: a short explanation of the command from the model, on the terminal. */
static void explain(struct session *s)
{
	json_object *m = json_object_new_array();
	struct ai_chat_resp r;
	struct ai_err err;
	struct buf q = BUF_INIT;

	if (!m)
		cli_die(AI_EX_OSERR, "out of memory");
	buf_addf(&q, "Explain briefly, in plain text without Markdown and in at most five short lines, "
		 "what this %s command does on %s. Say so first if it deletes, overwrites or sends "
		 "anything.\n\n%s", shell_name(s->shell), s->os.data, s->cmd.data);
	add_message(m, "system", "You explain shell commands to the person about to run them.");
	add_message(m, "user", q.data);
	memset(&r, 0, sizeof(r));
	ai_err_clear(&err);
	if (ask_model(s->client, NULL, m, &r, &err))
		setup_die(s->client, s->cfg, &err);
	show(r.content);
	ai_chat_resp_release(&r);
	json_object_put(m);
	buf_release(&q);
}

/* Revise: the correction typed, sent after the command it corrects.  False when the command is unchanged. */
static bool revise(struct session *s, struct buf *line)
{
	struct buf q = BUF_INIT;
	struct ai_err err;
	enum cli_line a = cli_ask_tty_line("Revise: ", line);

	if (a == CLI_LINE_INTERRUPTED)
		exit(AI_EX_INTERRUPT);
	if (a != CLI_LINE || !*answer_text(line))
		return false;
	buf_addf(&q, "Change the command: %s\nReply with the whole new command alone, on one line.",
		 line->data);
	add_message(s->conv, "assistant", s->cmd.data);
	add_message(s->conv, "user", q.data);
	buf_release(&q);
	if (propose(s, &err)) {
		/* A typed correction should not cost the command: say why, and ask again. */
		cli_warn("%s; the command is unchanged", err.msg);
		json_object_array_del_idx(s->conv, json_object_array_length(s->conv) - 2, 2);
		return false;
	}
	return true;
}

/*
 * The question, until an answer ends it: returns the exit status (the
 * command's after Execute; 1 after Abort, so that "ai-cmd ... && next"
 * does not go on).
 */
static int confirm(struct session *s)
{
	struct buf line = BUF_INIT;
	int code = -1;

	show(s->cmd.data);
	while (code < 0) {
		enum cli_line a = cli_ask_tty_line("Execute, Describe, Revise or Abort? [e/d/r/A] ", &line);
		const char *t = answer_text(&line);

		if (a == CLI_LINE_INTERRUPTED)
			exit(AI_EX_INTERRUPT);
		if (a == CLI_LINE_NOTTY) {
			cli_warn("not run: there is no terminal to ask on");
			code = 1;
		} else if (a == CLI_LINE_EOF || !*t || !strcasecmp(t, "a") || !strcasecmp(t, "abort")) {
			code = 1;
		} else if (!strcasecmp(t, "e") || !strcasecmp(t, "execute")) {
			/* Nothing of ours is open in the command: the ledger and cache close first. */
			ai_client_release(s->client);
			config_release(s->cfg);
			s->released = true;
			code = run(s->shell, s->cmd.data);
		} else if (!strcasecmp(t, "d") || !strcasecmp(t, "describe")) {
			explain(s);
		} else if (!strcasecmp(t, "r") || !strcasecmp(t, "revise")) {
			if (revise(s, &line))
				show(s->cmd.data);
		} else {
			cli_warn("answer e to execute, d to describe, r to revise, or a (or Enter) to abort");
		}
	}
	buf_release(&line);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { NULL };
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err err;
	struct session s;
	struct buf in, sys;
	int optind_, code = 0;

	cli_init(&c, "ai-cmd");
	c.usage = "[OPTION]... [DESCRIPTION]...";
	c.summary = "Suggest one shell command for DESCRIPTION (or standard input); run it only on Execute.";
	c.opts = opts;
	c.message = true;
	c.template_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	if (!o.shell) {
		o.shell = getenv("SHELL");
		if (!o.shell || !*o.shell)
			o.shell = "/bin/sh";
	}
	ai_err_clear(&err);
	setup_client(&c, &cfg, &client, &err);
	/*
	 * A command is shown as it will run, never rendered: a '*' or '_'
	 * taken for emphasis would show one command and run another.
	 */
	termout_markdown = AI_MARKDOWN_NEVER;

	buf_init(&in, cfg.max_input);
	if (cli_read_message(&c, argc - optind_, argv + optind_, &in, &err))
		cli_die_err(&err);
	if (c.save)
		tmplcli_save(&c, NULL, NAN, 0, in.data ? in.data : "");
	if (in.len == strspn(in.data ? in.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no description: say what the command should do, as arguments "
			"or on standard input");

	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	s.client = client;
	s.shell = o.shell;
	s.tmpl = c.tmpl;
	describe_os(&s.os);
	s.conv = json_object_new_array();
	if (!s.conv)
		cli_die(AI_EX_OSERR, "out of memory");
	buf_init(&sys, 0);
	buf_addf(&sys, "You turn a request into one command for the %s shell on %s, run in the user's "
		 "current directory. Reply with the command alone, on one line: no explanation, no "
		 "Markdown, no code fence, no prompt sign. Join several steps with pipes, && or ; on "
		 "that line. When details are missing, choose the most likely meaning.",
		 shell_name(o.shell), s.os.data);
	/* -T's system line adds to the rules above; it cannot lift them. */
	if (c.tmpl && c.tmpl->system)
		buf_addf(&sys, "\n\n%s", c.tmpl->system);
	add_message(s.conv, "system", sys.data);
	add_message(s.conv, "user", in.data);
	if (propose(&s, &err))
		setup_die(client, &cfg, &err);

	if (s.last.dry_run) {
		/* The request was printed; nothing was sent. */
	} else if (c.json) {
		json_object *j = json_object_new_object(), *u = json_object_new_object();

		out_add(j, "command", json_object_new_string(s.cmd.data));
		out_add(j, "shell", json_object_new_string(shell_name(o.shell)));
		out_add(j, "model", s.last.model ? json_object_new_string(s.last.model) : NULL);
		out_add(u, "prompt_tokens", json_object_new_int64(s.last.prompt_tokens));
		out_add(u, "completion_tokens", json_object_new_int64(s.last.completion_tokens));
		out_add(j, "usage", u);
		out_add(j, "cached", json_object_new_boolean(s.last.cached));
		out_json_line(j);
		json_object_put(j);
	} else if (!isatty(STDOUT_FILENO)) {
		/* For $(...), a pipe or a file: the command alone, never run. */
		cli_write(s.cmd.data, s.cmd.len, false);
		cli_write("\n", 1, false);
	} else {
		code = confirm(&s);
	}
	ai_chat_resp_release(&s.last);
	json_object_put(s.conv);
	buf_release(&s.cmd);
	buf_release(&s.os);
	buf_release(&sys);
	buf_release(&in);
	if (!s.released) {
		ai_client_release(client);
		config_release(&cfg);
	}
	return cli_finish(code);
}
