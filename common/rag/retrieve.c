/*
 * retrieve.c - embed the question, then ask the store.
 */
#include "rag/retrieve.h"
#include "api/api.h"
#include "buf.h"
#include "config.h"

/* BM25 alone: no vector, and BM25 back on even if it was left out. */
static int bm25_alone(struct kb *kb, const struct kb_query *q, struct kb_results *out, struct ai_err *err)
{
	struct kb_query qq = *q;

	qq.qvec = NULL;
	qq.no_bm25 = false;
	return kb_search(kb, &qq, out, err);
}

/* "the question could not be embedded (...)": owned, or NULL when out of memory. */
static char *fallback_note(const struct ai_err *e)
{
	struct buf b;
	char *note = NULL;

	buf_init(&b, 0);
	if (!buf_addf(&b, "the question could not be embedded (%s); retrieving by BM25 alone", e->msg))
		note = buf_detach(&b, NULL);
	buf_release(&b);
	return note;
}

int rag_retrieve(struct kb *kb, struct ai_client *c, const struct kb_query *q,
		 struct kb_results *out, struct ai_err *err)
{
	const char *coll = q->coll ? q->coll : KB_DEFAULT_COLLECTION;
	const char *text = q->text ? q->text : "";
	const char *model = q->qmodel ? q->qmodel : c ? ai_client_embed_model(c) : NULL;
	struct kb_query qq = *q;
	struct kb_stats s;
	struct ai_embed_resp r;
	struct ai_err e;
	char *note;
	int rc;

	memset(out, 0, sizeof(*out));
	if (kb_stats(kb, q->coll, &s, err))
		return -1;
	if (!s.exists) {
		kb_stats_release(&s);
		return ai_errf(err, AI_EX_NOINPUT, "index '%s' has no collection '%s': build it with ai-index -c %s",
			       kb_path(kb), coll, coll);
	}
	if (!c || !s.dim || !s.model) {
		kb_stats_release(&s);
		return bm25_alone(kb, q, out, err);
	}
	if (strcmp(model, s.model)) {
		ai_errf(err, AI_EX_DATAERR, "collection '%s' was indexed with embedding model '%s', not '%s': "
			"use --embed-model %s, or reindex", coll, s.model, model, s.model);
		kb_stats_release(&s);
		return -1;
	}
	kb_stats_release(&s);
	ai_err_clear(&e);
	if (ai_embed(c, &text, 1, model, &r, &e)) {
		ai_embed_resp_release(&r);
		if (e.code == AI_EX_INTERRUPT || e.code == AI_EX_CONFIG || e.code == AI_EX_OSERR) {
			*err = e;
			return -1;
		}
		note = fallback_note(&e);
		if ((rc = bm25_alone(kb, q, out, err)))
			free(note);
		else
			out->note = note;
		return rc;
	}
	if (!r.v || r.n != 1) {
		/* --dry-run: the request was printed and nothing came back. */
		ai_embed_resp_release(&r);
		return bm25_alone(kb, q, out, err);
	}
	qq.qvec = r.v;
	qq.qdim = r.dim;
	qq.qmodel = model;
	rc = kb_search(kb, &qq, out, err);
	ai_embed_resp_release(&r);
	return rc;
}
