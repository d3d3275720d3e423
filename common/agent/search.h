#ifndef AI_AGENT_SEARCH_H
#define AI_AGENT_SEARCH_H
/*
 * search.h - the agent's search tool over the index ai-index builds: the
 * retrieval ai-ask uses (BM25 and vectors, fused), each passage with its
 * source and lines so that the model can cite it.
 */
#include "ai.h"
#include "api/api.h"
#include "rag/kb.h"

#include <json-c/json.h>

struct agent_search {
	struct kb *kb;          /* NULL: no search tool */
	const char *coll;       /* borrowed */
	struct ai_client *client;       /* borrowed: embeds the query */
};

/*
 * Opens the index for the search tool.  The one named by path or coll
 * must be there and hold the collection, else -1 with err.  Without
 * either the default index is used when it exists and holds the default
 * collection; when there is none, or it cannot be opened, s->kb stays
 * NULL (no search tool) and 0 is returned, with *why filled in the second
 * case (a warning for the caller to show).  Close with agent_search_close.
 */
int agent_search_open(struct agent_search *s, struct ai_client *client, const char *path,
		      const char *coll, struct ai_err *why, struct ai_err *err);

/* Closes the index (if open). */
void agent_search_close(struct agent_search *s);

/*
 * The agent_search_fn over s (ud): an owned array of passages
 * {source, lines "A-B", heading?, score, text} in *result.  0, or -1
 * with err.
 */
int agent_search_kb(const char *query, long k, json_object **result, struct ai_err *err,
		    void *ud);

#endif
