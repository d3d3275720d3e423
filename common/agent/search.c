#include "agent/search.h"
#include "jsonval.h"
#include "rag/answer.h"
#include "rag/retrieve.h"

#include <unistd.h>

int agent_search_kb(const char *query, long k, json_object **result, struct ai_err *err, void *ud)
{
	struct agent_search *s = ud;
	struct kb_query q;
	struct kb_results r;
	json_object *a;

	*result = NULL;
	memset(&q, 0, sizeof(q));
	q.coll = s->coll;
	q.text = query;
	q.k = (size_t)k;
	memset(&r, 0, sizeof(r));
	if (rag_retrieve(s->kb, s->client, &q, &r, err))
		return -1;
	if (!(a = json_object_new_array())) {
		kb_results_release(&r);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct kb_passage *p = &r.v[i];
		json_object *o = json_object_new_object();
		char lines[PASSAGE_LINES_MAX], score[32];

		passage_lines(p, lines, sizeof(lines));
		snprintf(score, sizeof(score), "%.4g", p->score);
		if (!o || jv_add(o, "source", json_object_new_string(p->source)) ||
		    jv_add(o, "lines", json_object_new_string(lines)) ||
		    (p->page && jv_add(o, "page", json_object_new_int64((int64_t)p->page))) ||
		    (p->heading && jv_add(o, "heading", json_object_new_string(p->heading))) ||
		    jv_add(o, "score", json_object_new_double_s(p->score, score)) ||
		    jv_add(o, "text", json_object_new_string(p->text)) || jv_push(a, o)) {
			json_object_put(a);
			kb_results_release(&r);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	kb_results_release(&r);
	*result = a;
	return 0;
}

int agent_search_open(struct agent_search *s, struct ai_client *client, const char *path,
		      const char *coll, struct ai_err *why, struct ai_err *err)
{
	char *def = NULL;
	struct kb_stats st;
	int rc = 0;

	s->kb = NULL;
	s->client = client;
	s->coll = coll ? coll : KB_DEFAULT_COLLECTION;
	if (!path && !coll) {
		def = kb_default_path();
		if (!def || access(def, F_OK)) {
			free(def);
			return 0;
		}
	}
	if (kb_open(&s->kb, path ? path : def, KB_READ, err)) {
		free(def);
		s->kb = NULL;
		if (path || coll)
			return -1;
		ai_errf(why, err->code, "no search tool: %s", err->msg);
		ai_err_clear(err);
		return 0;
	}
	free(def);
	memset(&st, 0, sizeof(st));
	if (kb_stats(s->kb, s->coll, &st, err))
		rc = -1;
	else if (!st.exists && (path || coll))
		rc = ai_errf(err, AI_EX_NOINPUT, "no collection '%s' in '%s': build one with ai-index -c %s",
			     s->coll, kb_path(s->kb), s->coll);
	if (rc || !st.exists)
		agent_search_close(s);
	kb_stats_release(&st);
	return rc;
}

void agent_search_close(struct agent_search *s)
{
	kb_close(s->kb);
	s->kb = NULL;
}
