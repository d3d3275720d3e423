#ifndef AI_SHCMD_H
#define AI_SHCMD_H
/*
 * shcmd.h - a model's reply reduced to the one shell command it holds,
 * or refused, for ai-cmd: what runs must be what a person read.
 */
#include "ai.h"
#include "buf.h"

/*
 * Reduces reply to the one command it holds, into cmd (reset first, and
 * left as it was on failure): white space trimmed; of a reply with a code
 * fence, the fenced lines alone (the prose around them is dropped; two
 * fences are refused); a "$ " prompt sign or backticks around the whole
 * line dropped.  Returns 0, or -1 with err (AI_EX_DATAERR) when what is
 * left is not one line of visible text: two lines or more, nothing, bytes
 * that are not UTF-8, or a character that would not show as what runs (a
 * control character but tab, a C1 control, a zero-width or bidirectional
 * format character, a byte-order mark).  A quoted excerpt in err.msg may
 * hold control characters: print it through the terminal neutraliser.
 */
int shcmd_clean(const char *reply, struct buf *cmd, struct ai_err *err);

/* Narrows [*s, *e) to drop white space at both ends. */
void shcmd_trim(const char **s, const char **e);

#endif
