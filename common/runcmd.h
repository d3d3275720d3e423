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

/*
 * Runs cmd through /bin/sh -c with stdin /dev/null, stdout into out
 * (bounded by out's cap), stderr and the environment the program's (a
 * credential helper may need both), SIGPIPE at its default, in a process
 * group of its own.  Waits until deadline_ms (mono_ms, clock.h) or
 * *cancel (may be NULL) becomes non-zero: then the whole group is killed.
 * name is the command's name in messages ("api_key_cmd").  Returns 0
 * with *status (waitpid's), or -1 with err: AI_EX_TEMPFAIL at the
 * deadline, AI_EX_INTERRUPT, AI_EX_CONFIG when it cannot run or prints
 * more than out's cap, AI_EX_OSERR.  What it printed is never quoted in
 * err: it may be a secret.
 */
int runcmd_shell(const char *name, const char *cmd, int64_t deadline_ms,
		 const volatile sig_atomic_t *cancel, struct buf *out, int *status,
		 struct ai_err *err);

#endif
