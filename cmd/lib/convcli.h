#ifndef AI_CONVCLI_H
#define AI_CONVCLI_H
/*
 * convcli.h - the kept conversations (api/convstore.h) on the command
 * line: ai-stream's --list-conversations, --show and --prune, and
 * ai-usage --log.  Each prints to stdout (JSON lines with --json, text
 * otherwise, model and user text made safe on a terminal), exits on
 * failure with the store's code (65 damaged, 66 not found, 74 I/O,
 * 75 locked), and returns the exit code for main (output checked, as
 * cli_finish does).  Like cli.h it prints and exits: it serves main().
 */
#include "lib/cli.h"
#include "api/convstore.h"

/* The store's path: $XDG_STATE_HOME/ai/conversations/conversations.db.  Owned; exits when
 * there is no home to put it in. */
char *convcli_path(void);

/*
 * -C (ref NULL: the last continued) or --conversation ref: opens the store
 * into s and finds the conversation into ci (its strings owned by s).  0,
 * or -1 with err, s closed: AI_EX_NOINPUT when there is no such
 * conversation, or none at all; the store's own codes otherwise.
 */
int convcli_resume(struct convstore *s, const char *ref, struct convstore_info *ci, struct ai_err *err);

/*
 * Opens the store into s, making it if need be, to keep this run's
 * exchanges.  Keeping is not what the run was asked for: a store that
 * cannot be opened is said on stderr (unless -q) and false returned.
 */
bool convcli_open_keep(const struct cli *c, struct convstore *s);

/* --list-conversations: one line a conversation, most recently continued first. */
int convcli_list(const struct cli *c);

/* --show REF: the conversation REF (an id or a title) names, every message. */
int convcli_show(const struct cli *c, const char *ref);

/* --prune AGE: removes the conversations not continued in the last AGE ("30d"); a bare
 * number, which would be seconds, is refused as a likely mistake. */
int convcli_prune(const struct cli *c, const char *age);

/*
 * ai-usage --log [QUERY]...: the exchanges q asks for (api/convstore.h),
 * its words the operands argv[0..argc) joined by spaces; -m (c->model)
 * keeps one model's.
 */
int convcli_log(const struct cli *c, int argc, char **argv, struct convstore_query *q);

#endif
