#ifndef AI_ANSWER_H
#define AI_ANSWER_H
/*
 * answer.h - the read side of RAG after retrieval: the prompt that gives
 * the model the passages, the citations read back out of its answer, and
 * the one way a passage's line range is written (ai-ask's prompt, its
 * sources and JSON, ai-agent's search tool).
 */
#include "ai.h"
#include "buf.h"
#include "rag/kb.h"

#include <json-c/json.h>

/* Room for any passage_lines text. */
#define PASSAGE_LINES_MAX 48

/* Writes "12-30", or "12" for a passage of one line, into out (n bytes). */
void passage_lines(const struct kb_passage *p, char *out, size_t n);

/*
 * Appends where p is, as a citation names it, to b: "SOURCE:LINES", or
 * "SOURCE p.12" for a passage of a paged document (a PDF), whose lines
 * are those of its extracted text and mean nothing to a reader.  SOURCE
 * is shown as path_display shows it.  0, or -1 when out of memory.
 */
int passage_cite(const struct kb_passage *p, struct buf *b);

/*
 * The chat messages asking question from the numbered passages of r alone,
 * citing them as [n]: a system message, then a user message holding each
 * passage as "[n] CITATION (HEADING)" (passage_cite) and its text, then the question.
 * system (borrowed, may be NULL: -T's system line) is added to the
 * system message.  Returns an owned array (json_object_put), or NULL when
 * out of memory.
 */
json_object *answer_messages(const char *question, const struct kb_results *r, const char *system);

/*
 * Reads the passage numbers answer cites ("[1]", "[1, 2]", "[1][2]") into
 * cited[0..n) (set true; the caller zeroes it); returns how many citations
 * named a passage that was not given (they are left out).
 */
int answer_citations(const char *answer, bool *cited, size_t n);

#endif
