/* t_answer.c - the RAG prompt, its citations, and the one rendering of a passage's lines. */
#include "rag/answer.h"
#include "jsonval.h"
#include "tap.h"

int main(void)
{
	struct kb_passage p[2] = {
		{ .source = "/no/such/dir/a.md", .line_start = 12, .line_end = 12, .heading = "Keys",
		  .text = "one line" },
		{ .source = "b.txt", .line_start = 3, .line_end = 30, .text = "many lines" },
	};
	struct kb_results r = { p, 2, false, NULL };
	bool cited[2] = { false, false };
	char l[PASSAGE_LINES_MAX];
	json_object *m;
	const char *user;

	passage_lines(&p[0], l, sizeof(l));
	is_str(l, "12", "a one-line passage is '12', not '12-12'");
	passage_lines(&p[1], l, sizeof(l));
	is_str(l, "3-30", "a range is 'start-end'");

	is_int(answer_citations("as [1] says, and [2]", cited, 2), 0, "two good citations");
	ok(cited[0] && cited[1], "both are marked");
	cited[0] = cited[1] = false;
	is_int(answer_citations("see [2, 1] and [2][7] and [0], not [x] or []", cited, 2), 2,
	       "[7] and [0] were not given");
	ok(cited[0] && cited[1], "a list and adjacent brackets count");
	cited[0] = cited[1] = false;
	is_int(answer_citations("[99999999999999999999]", cited, 2), 0, "a number too long to be a passage is no citation");
	ok(!cited[0] && !cited[1], "and marks nothing");
	is_int(answer_citations("no brackets at all [", cited, 2), 0, "no citation, no error");

	m = answer_messages("what is [1]?", &r, NULL);
	ok(m && json_object_array_length(m) == 2, "a system and a user message");
	is_str(jv_str(json_object_array_get_idx(m, 0), "role"), "system", "the system message first");
	user = jv_str(json_object_array_get_idx(m, 1), "content");
	ok(user && strstr(user, "[1] /no/such/dir/a.md:12 (Keys)\none line\n\n"), "passage 1 numbered, one line, heading");
	ok(user && strstr(user, "[2] b.txt:3-30\nmany lines\n\n"), "passage 2 without a heading");
	ok(user && strstr(user, "\nQuestion: what is [1]?") && !strstr(user, "Question: what is [1]?\n"),
	   "the question last, as given");
	json_object_put(m);
	{
		struct kb_passage pg = { .source = "/no/such/dir/manual.pdf", .line_start = 40, .line_end = 52,
					 .page = 12, .text = "a page" };
		struct kb_results rp = { &pg, 1, false, NULL };
		struct buf b;

		buf_init(&b, 0);
		ok(passage_cite(&p[1], &b) == 0, "a citation is written");
		is_str(b.data, "b.txt:3-30", "a passage without a page is cited by its lines");
		buf_reset(&b);
		passage_cite(&pg, &b);
		is_str(b.data, "/no/such/dir/manual.pdf p.12", "a PDF's passage by its page, not its lines");
		buf_release(&b);
		m = answer_messages("q", &rp, NULL);
		user = m ? jv_str(json_object_array_get_idx(m, 1), "content") : NULL;
		ok(user && strstr(user, "[1] /no/such/dir/manual.pdf p.12\na page\n\n"), "and so in the prompt");
		json_object_put(m);
	}
	r.n = 0;
	m = answer_messages("anything", &r, NULL);
	ok(m && strstr(jv_str(json_object_array_get_idx(m, 1), "content"), "Question: anything"),
	   "no passages still makes a prompt");
	json_object_put(m);
	return tap_done();
}
