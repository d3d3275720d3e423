#ifndef AI_RETRIEVE_H
#define AI_RETRIEVE_H
/*
 * retrieve.h - retrieval for RAG: the question is embedded through the API
 * layer (so the cache and the ledger apply), then the store is searched
 * with it.  The store itself (kb.h) never calls the network.
 */
#include "ai.h"
#include "rag/kb.h"

struct ai_client;

/*
 * kb_search for q, embedding the question first through c with
 * q->qmodel (NULL: c's configured embedding model), when the collection
 * has vectors; c NULL or a collection without vectors: BM25 alone.  When
 * the embeddings request fails for want of the service (no endpoint, a
 * network error, 404, 5xx), retrieval goes on with BM25 alone and
 * out->note says why; a model that differs from the index's is an error
 * (AI_EX_DATAERR), and so is a missing collection (AI_EX_NOINPUT).
 * q->qvec and q->qdim are ignored.  This is the call for ai-ask and
 * ai-agent's search tool.  out is overwritten; release it with
 * kb_results_release.
 */
int rag_retrieve(struct kb *kb, struct ai_client *c, const struct kb_query *q,
		 struct kb_results *out, struct ai_err *err);

#endif
