#ifndef AI_RUNCMD_H
#define AI_RUNCMD_H
/*
 * runcmd.h - a short shell command of the user's own configuration, run
 * for what it prints: api_key_cmd, redis_password_cmd, an MCP server's
 * headers_cmd.  Such a helper must not read the program's stdin (the
 * user's piped data), must not outlive a deadline, and must not leave
 * what it started behind.
 */
#include "ai.h"
#include "buf.h"

#include <signal.h>

/* runcmd_shell's flags. */
enum {
	/*
	 * Output past out's cap is read and dropped instead of being an error
	 * (up to RUNCMD_DROP_MAX in all): the caller keeps only the first line,
	 * and a helper such as "pass show" prints notes after the secret.
	 */
	RUNCMD_FIRST_LINE = 1
};

/* What RUNCMD_FIRST_LINE reads at most before it gives up (AI_EX_CONFIG). */
#define RUNCMD_DROP_MAX (1024 * 1024)

/*
 * Runs cmd through /bin/sh -c with stdin /dev/null, stdout into out
 * (bounded by out's cap), stderr and the environment the program's (a
 * credential helper may need both), no other descriptor of the program,
 * SIGPIPE at its default, and in a process group of its own, unless the
 * program's group is the terminal's foreground group: a helper that asks
 * for a password on /dev/tty (age, gpg, op, sudo) must be in the
 * foreground group, or SIGTTIN/SIGTTOU stop it.  Waits until deadline_ms
 * (mono_ms, clock.h) or *cancel (may be NULL) becomes non-zero: then the
 * command is killed (the whole group when it has its own).  Once the
 * shell has exited, what is still being written is read for up to 100 ms
 * and no longer (a command that left a daemon holding its stdout).
 * flags: RUNCMD_FIRST_LINE or 0.  name is the command's name in messages
 * ("api_key_cmd").  Returns 0 with *status (waitpid's), or -1 with err:
 * AI_EX_TEMPFAIL at the deadline, AI_EX_INTERRUPT, AI_EX_CONFIG when it
 * cannot run or prints more than out's cap, AI_EX_OSERR.  What it printed
 * is never quoted in err: it may be a secret.
 */
int runcmd_shell(const char *name, const char *cmd, int64_t deadline_ms,
		 const volatile sig_atomic_t *cancel, unsigned flags, struct buf *out, int *status,
		 struct ai_err *err);

/*
 * True when a person may be answering a helper's prompt: stdin or stderr
 * is a terminal.  A caller then gives the helper a much longer deadline.
 */
bool runcmd_interactive(void);

/*
 * Kills the command runcmd_shell is running now, if any (its group when
 * it has one), with SIGKILL.  Async-signal-safe: for a signal handler
 * about to end the program, which would otherwise leave it behind.
 */
void runcmd_kill_running(void);

#endif
