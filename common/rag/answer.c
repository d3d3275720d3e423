/*
 * answer.c - the RAG prompt and its citations.
 */
#include "rag/answer.h"
#include "buf.h"
#include "jsonval.h"
#include "path.h"

void passage_lines(const struct kb_passage *p, char *out, size_t n)
{
	if (p->line_start == p->line_end)
		snprintf(out, n, "%zu", p->line_start);
	else
		snprintf(out, n, "%zu-%zu", p->line_start, p->line_end);
}

int passage_cite(const struct kb_passage *p, struct buf *b)
{
	char l[PASSAGE_LINES_MAX];

	if (p->page)
		return buf_addf(b, "%s p.%zu", path_display(p->source), p->page);
	passage_lines(p, l, sizeof(l));
	return buf_addf(b, "%s:%s", path_display(p->source), l);
}

static json_object *message(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	if (m && !jv_add(m, "role", json_object_new_string(role)) &&
	    !jv_add(m, "content", json_object_new_string(content)))
		return m;
	json_object_put(m);
	return NULL;
}

json_object *answer_messages(const char *question, const struct kb_results *r, const char *system)
{
	json_object *m = json_object_new_array(), *sys = NULL, *user = NULL;
	struct buf b;
	int bad = 0;

	buf_init(&b, 0);
	bad |= buf_addstr(&b, "Answer the question using only the numbered passages below. Cite the passages "
			  "that support each statement with their numbers in square brackets, like [1] or [2][3]. "
			  "If the passages do not contain the answer, say so plainly instead of guessing.\n\n");
	for (size_t i = 0; i < r->n; i++) {
		bad |= buf_addf(&b, "[%zu] ", i + 1);
		bad |= passage_cite(&r->v[i], &b);
		if (r->v[i].heading)
			bad |= buf_addf(&b, " (%s)", r->v[i].heading);
		bad |= buf_addf(&b, "\n%s\n\n", r->v[i].text);
	}
	bad |= buf_addf(&b, "Question: %s", question);
	if (!bad) {
		struct buf sb;

		buf_init(&sb, 0);
		buf_addstr(&sb, "You answer questions from the passages you are given, citing them. "
			   "You never cite a passage that was not given.");
		if (system && *system)
			buf_addf(&sb, "\n\n%s", system);
		if (sb.data)
			sys = message("system", sb.data);
		buf_release(&sb);
		user = message("user", b.data ? b.data : "");
	}
	buf_release(&b);
	if (!m || !sys || !user) {
		json_object_put(sys);
		json_object_put(user);
		json_object_put(m);
		return NULL;
	}
	/* jv_push takes what it is given, even when it fails. */
	if (jv_push(m, sys)) {
		json_object_put(user);
		json_object_put(m);
		return NULL;
	}
	if (jv_push(m, user)) {
		json_object_put(m);
		return NULL;
	}
	return m;
}

int answer_citations(const char *answer, bool *cited, size_t n)
{
	int bad = 0;

	for (const char *s = answer; (s = strchr(s, '[')); ) {
		const char *p = s + 1;
		size_t v = 0;

		/* "[1]", "[1, 2]", "[1][2]" */
		for (;;) {
			const char *d = p;

			v = 0;
			while (*p >= '0' && *p <= '9' && v < 100000)
				v = v * 10 + (size_t)(*p++ - '0');
			if (p == d)
				break;
			if (*p == ']' || *p == ',') {
				if (v >= 1 && v <= n)
					cited[v - 1] = true;
				else
					bad++;
			}
			if (*p != ',')
				break;
			p++;
			while (*p == ' ')
				p++;
		}
		s++;
	}
	return bad;
}
