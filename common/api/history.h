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
#include "api/api.h"
#include "api/convstore.h"
#include "api/structured.h"

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

/*
 * A conversation: the messages sent with each question (a system message
 * if any, the history file's or the stored conversation's messages, the
 * exchanges so far), the history file the exchanges are appended to, and
 * the conversation store (convstore.h) that keeps them.
 */
struct attach_set;

struct conv {
	json_object *msgs;      /* owned array */
	const char *history;    /* borrowed or NULL: no file */
	bool store_system;      /* a new file: its first exchange brings the system message */
	volatile sig_atomic_t *stop;
	/* Borrowed or NULL (--schema): each answer is JSON matching it, asked, checked and
	 * repaired once by structured_chat; set by the caller after conv_open. */
	struct structured *st;
	/* Borrowed or NULL (--no-save): where conv_keep keeps the exchanges; set by the caller. */
	struct convstore *store;
	int64_t store_id;       /* the stored conversation; 0 until its first exchange is kept */
	size_t kept;            /* msgs[0..kept) are in the store (or are not to go there) */
	const char *model;      /* borrowed: the model kept with each exchange */
	/* Borrowed or NULL (-a): the attachments of the next message, whose content is then
	 * an array of parts (attach.h); conv_ask sends them once and sets this to NULL. */
	const struct attach_set *attach;
};

/*
 * Starts cv from the history file (borrowed, may be NULL; checked writable
 * first, so that a file that cannot be written is found before an answer is
 * paid for; loaded up to max bytes).  system (borrowed, may be NULL) is the
 * system message: it wins over the history's own for the requests, but the
 * file keeps its own.  dflt_system (ai.conf's system) is used only when
 * neither system nor the history has one.  0, or -1 with err as
 * history_check and history_load fail; cv is then released.
 */
int conv_open(struct conv *cv, const char *history, size_t max, const char *system,
	      const char *dflt_system, volatile sig_atomic_t *stop, struct ai_err *err);

/*
 * As conv_open, but from stored conversation id (its messages loaded from
 * store, borrowed) rather than a history file.  The exchanges that follow
 * are kept in the same conversation when cv->store is set.  0, or -1 with
 * err as convstore_load fails; cv is then released.
 */
int conv_open_stored(struct conv *cv, struct convstore *store, int64_t id, const char *system,
		     const char *dflt_system, volatile sig_atomic_t *stop, struct ai_err *err);

/*
 * Asks the conversation's next question, text, with the request's other
 * fields (temperature, max_tokens, stream, on_delta) taken from q (its
 * messages are ignored).  On success (dry run aside) the exchange joins
 * the conversation; on failure the conversation is as it was.  Returns
 * as ai_chat; resp is the caller's to release either way.  Under cv->st
 * the answer goes through structured_chat: nothing is shown before it is
 * checked, then q->on_delta gets the checked JSON in one piece; a reply
 * that stays invalid is AI_EX_DATAERR.
 */
int conv_ask(struct conv *cv, struct ai_client *c, const struct ai_chat_req *q, const char *text,
	     struct ai_chat_resp *resp, struct ai_err *err);

/* Appends the last exchange (and the system message of a new file) to the history file,
 * when there is one.  0, or -1 with err as history_append. */
int conv_save(struct conv *cv, struct ai_err *err);

/*
 * Keeps the messages not yet kept (the first time: the system message and
 * what the history file brought too) in cv->store, in one transaction,
 * when there is a store: a new stored conversation on the first call, the
 * same one after.  0, or -1 with err as convstore_add; the messages are
 * then offered again with the next exchange's.
 */
int conv_keep(struct conv *cv, struct ai_err *err);

void conv_release(struct conv *cv);

#endif
