/*
 * ai.h - the project header: every source file includes it first.
 *
 * It sets the feature macros once (POSIX 2008 plus the BSD/GNU extras
 * that glibc hides behind _DEFAULT_SOURCE), pulls in the system headers
 * nearly every file needs, and defines the two things every module
 * shares: the exit codes and the error value.
 */
#ifndef AI_H
#define AI_H

#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AI_VERSION "0.1.0"

#if defined(__GNUC__)
#define AI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AI_UNUSED __attribute__((unused))
#else
#define AI_PRINTF(f, a)
#define AI_UNUSED
#endif

#define AI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Exit status, from sysexits.h, defined once here and listed in ai(7).
 * All are below 126 and none is 255, so xargs(1) never stops on them.
 */
enum ai_exit {
	AI_EX_OK = 0,
	AI_EX_PARTIAL = 1,       /* a batch finished with some items failed */
	AI_EX_MAXSTEPS = 2,      /* ai-agent: step limit reached before an answer */
	AI_EX_USAGE = 64,        /* bad command line */
	AI_EX_DATAERR = 65,      /* bad input data */
	AI_EX_NOINPUT = 66,      /* no input, or an input file cannot be read */
	AI_EX_UNAVAILABLE = 69,  /* the service refused or failed for good */
	AI_EX_SOFTWARE = 70,     /* internal error */
	AI_EX_OSERR = 71,        /* out of memory, fork failed, ... */
	AI_EX_IOERR = 74,        /* cannot write output */
	AI_EX_TEMPFAIL = 75,     /* temporary failure: a later retry may work */
	AI_EX_CONFIG = 78,       /* configuration error: no key, bad config file */
	AI_EX_INTERRUPT = 130    /* SIGINT */
};

/*
 * The error value every common/ function fills instead of printing.
 * code is an enum ai_exit for main to use; status is the HTTP status
 * when one was received (0 otherwise).
 */
struct ai_err {
	int code;
	long status;
	char msg[256];
};

/* Fills e (which may be NULL) and returns -1, so "return ai_errf(...)" reads well. */
int ai_errf(struct ai_err *e, int code, const char *fmt, ...) AI_PRINTF(3, 4);

/*
 * As ai_errf, then appends ": " and strerror(errno) as errno was on entry
 * (git's error_errno, sbase's trailing ':').  The message names what
 * failed, the system says why: ai_errf_errno(err, AI_EX_IOERR, "cannot
 * write '%s'", path) gives "cannot write 'x': No space left on device".
 * errno is left as it was, so a caller may still test it.  Returns -1.
 */
int ai_errf_errno(struct ai_err *e, int code, const char *fmt, ...) AI_PRINTF(3, 4);

/* Clears e to "no error". */
void ai_err_clear(struct ai_err *e);

#endif
