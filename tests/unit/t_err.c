/*
 * t_err.c - the error value: ai_errf and ai_errf_errno, which appends the
 * system's reason and leaves errno as it was.
 */
#include "ai.h"

#include "tap.h"

int main(void)
{
	struct ai_err e;
	char longname[300];

	ai_err_clear(&e);
	errno = ENOENT;
	is_int(ai_errf_errno(&e, AI_EX_NOINPUT, "cannot open '%s'", "x.txt"), -1,
	       "ai_errf_errno: returns -1");
	is_int(e.code, AI_EX_NOINPUT, "ai_errf_errno: sets the code");
	is_str(e.msg, "cannot open 'x.txt': No such file or directory",
	       "ai_errf_errno: the message, then ': ' and strerror(errno)");
	is_int(errno, ENOENT, "ai_errf_errno: errno is left as it was");

	errno = EACCES;
	is_int(ai_errf_errno(NULL, AI_EX_IOERR, "x"), -1, "ai_errf_errno: a NULL error still returns -1");
	is_int(errno, EACCES, "ai_errf_errno: a NULL error leaves errno too");

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	errno = ENOSPC;
	ai_errf_errno(&e, AI_EX_IOERR, "cannot write '%s'", longname);
	is_int(strlen(e.msg), sizeof(e.msg) - 1, "ai_errf_errno: a long message is cut at the cap, not overrun");

	ai_errf(&e, AI_EX_USAGE, "plain %d", 1);
	is_str(e.msg, "plain 1", "ai_errf: no reason appended");
	ai_err_clear(&e);
	is_str(e.msg, "", "ai_err_clear: empty");
	is_int(e.code, 0, "ai_err_clear: code 0");
	return tap_done();
}
