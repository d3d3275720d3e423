#ifndef AI_HISTORY_H
#define AI_HISTORY_H
/*
 * history.h - a conversation kept in a file, one chat message a line.
 *
 * Each line is a JSON object {"role": "...", "content": "..."} (content may
 * be null), the shape the chat API takes, so a loaded history can be sent
 * as it is.  Programs append whole exchanges; several may share one file
 * at once, and a reader never sees half an exchange.
 */
#include "ai.h"

#include <json-c/json.h>
#include <signal.h>

/*
 * Appends the messages in the history file path to conv (a json array,
 * borrowed; each message added is owned by conv).  Blank lines are skipped
 * but counted, and the last line need not end in a newline.  A missing
 * file is an empty history: 0 with nothing added.  The file must be UTF-8
 * text of at most max bytes (0: no cap).
 *
 * Returns 0, or -1 with err: AI_EX_DATAERR for a line that is not a message
 * (the message names the file and the line number), for text that is not
 * UTF-8 (line and column) or a file over max; AI_EX_NOINPUT when the file
 * cannot be opened or read; AI_EX_OSERR when out of memory; AI_EX_INTERRUPT
 * when *stop (if given) is set while it reads.  On failure conv may already
 * hold the messages of the lines before the bad one.
 */
int history_load(const char *path, size_t max, json_object *conv, volatile sig_atomic_t *stop,
		 struct ai_err *err);

/*
 * Checks, before any request is paid for, that history_append will be able
 * to write path: an existing file must be a writable regular file, a new
 * one needs a writable directory.  Creates nothing.  Returns 0, or -1 with
 * err (AI_EX_IOERR) naming the file and what is wrong.
 */
int history_check(const char *path, struct ai_err *err);

/*
 * Appends msgs[0..n) (borrowed) to the history file path as JSON lines,
 * creating it with mode 0600 if need be.  The lines go out in one write(2)
 * under an exclusive flock(2), so concurrent appenders never interleave and
 * a reader sees all of them or none.  A file that does not end in a newline
 * (edited by hand) gets one first.  A short write (disk full, file size
 * limit) is cut back off, so the file never ends with part of an exchange.
 * n == 0 does nothing, not even create the file.
 *
 * Waiting for the lock ends when *stop (if given) is set: the lines are
 * then written without it, in the one write(2), rather than lost.
 *
 * Returns 0, or -1 with err: AI_EX_IOERR when the file cannot be opened or
 * written (the file is then as it was), AI_EX_OSERR when out of memory.
 */
int history_append(const char *path, json_object *const *msgs, size_t n, volatile sig_atomic_t *stop,
		   struct ai_err *err);

#endif
