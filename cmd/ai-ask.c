/*
 * ai-ask - answer a question from the knowledge base, citing the passages
 * (pattern 4, RAG: the read side).
 *
 * Retrieval is rag_retrieve's: BM25 and vector similarity, each its top-N,
 * fused by weighted reciprocal rank.  The k passages are numbered in the prompt
 * (answer.h) and the model is asked to answer from them alone, citing them
 * as [n]; the answer is printed, then the sources it cited.  Nothing relevant: no model
 * call at all.
 */
#include "ai.h"
#include "api/api.h"
#include "jsonval.h"
#include "lib/cli.h"
#include "rag/answer.h"
#include "rag/retrieve.h"
#include "path.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "lib/tmplcli.h"

#include <math.h>
#include <unistd.h>

enum {
	OPT_DB = CLI_OPT_PROG, OPT_RETRIEVE_ONLY, OPT_STREAM, OPT_INT8, OPT_NO_EMBED, OPT_NO_BM25, OPT_EMBED_MODEL,
	OPT_CANDIDATES, OPT_MIN_SIM, OPT_VEC_WEIGHT, OPT_TEMPERATURE, OPT_MAX_TOKENS, OPT_RAW
};

static const struct cli_opt opts[] = {
	{ "collection", required_argument, 'c', "NAME", "the collection to search (default: default)" },
	{ "db", required_argument, OPT_DB, "FILE", "the index file (default: $XDG_DATA_HOME/ai/index.db)" },
	{ "top", required_argument, 'k', "K", "give the model the K best passages (default 5)" },
	{ "candidates", required_argument, OPT_CANDIDATES, "N", "take the best N of BM25 and of the vectors before fusing (default the larger of 50 and 4 times --top)" },
	{ "retrieve-only", no_argument, OPT_RETRIEVE_ONLY, NULL, "print the passages as JSON lines; no chat call" },
	{ "stream", no_argument, OPT_STREAM, NULL, "print the answer as it arrives" },
	{ "int8", no_argument, OPT_INT8, NULL, "scan int8-quantised vectors, then rescore the best exactly" },
	{ "no-embed", no_argument, OPT_NO_EMBED, NULL, "retrieve by BM25 alone, without embedding the question" },
	{ "no-bm25", no_argument, OPT_NO_BM25, NULL, "retrieve by the vectors alone, without BM25" },
	{ "embed-model", required_argument, OPT_EMBED_MODEL, "MODEL", "the embedding model (must be the index's)" },
	{ "min-similarity", required_argument, OPT_MIN_SIM, "X", "ignore vector hits with a cosine below X (default 0.3)" },
	{ "vector-weight", required_argument, OPT_VEC_WEIGHT, "W", "weigh the vector ranking W against BM25's 1 in the fusion (default 0.4)" },
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of the answer" },
	{ "raw", no_argument, OPT_RAW, NULL, "do not neutralise control characters on a terminal" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *coll, *db, *embed_model;
	const char *system;     /* -T's system line, borrowed, or NULL */
	long k, candidates, max_tokens;
	double min_sim, vec_weight, temperature;
	bool retrieve_only, stream, int8, no_embed, no_bm25, raw;
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case 'c':
		if (!*arg)
			cli_usage_error("--collection wants a name");
		o->coll = arg;
		break;
	case OPT_DB: o->db = arg; break;
	case 'k': o->k = cli_long("--top", arg, 1, 100); break;
	case OPT_CANDIDATES: o->candidates = cli_long("--candidates", arg, 1, 10000); break;
	case OPT_RETRIEVE_ONLY: o->retrieve_only = true; break;
	case OPT_STREAM: o->stream = true; break;
	case OPT_INT8: o->int8 = true; break;
	case OPT_NO_EMBED: o->no_embed = true; break;
	case OPT_NO_BM25: o->no_bm25 = true; break;
	case OPT_EMBED_MODEL: o->embed_model = arg; break;
	case OPT_MIN_SIM: o->min_sim = cli_double("--min-similarity", arg, -1, 1); break;
	case OPT_VEC_WEIGHT: o->vec_weight = cli_double("--vector-weight", arg, 0.01, 100); break;
	case OPT_TEMPERATURE: o->temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_RAW: o->raw = true; break;
	}
}

static void print_passages(const struct kb_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct kb_passage *p = &r->v[i];
		json_object *j = json_object_new_object();
		char l[PASSAGE_LINES_MAX];

		passage_lines(p, l, sizeof(l));
		out_add(j, "n", json_object_new_int64((int64_t)i + 1));
		out_add(j, "source", json_object_new_string(p->source));
		out_add(j, "lines", json_object_new_string(l));
		out_add(j, "line_start", json_object_new_int64((int64_t)p->line_start));
		out_add(j, "line_end", json_object_new_int64((int64_t)p->line_end));
		out_add(j, "page", p->page ? json_object_new_int64((int64_t)p->page) : NULL);
		out_add(j, "heading", p->heading ? json_object_new_string(p->heading) : NULL);
		out_add(j, "score", json_object_new_double(p->score));
		out_add(j, "bm25", jv_num(p->bm25));
		out_add(j, "cosine", jv_num(p->cosine));
		out_add(j, "text", json_object_new_string(p->text));
		out_json_line(j);
		json_object_put(j);
	}
}

/* --json: the answer, every passage given (and whether it was cited), usage. */
static void print_json(const struct ai_chat_resp *resp, const struct kb_results *r, const bool *cited)
{
	json_object *j = json_object_new_object(), *src = json_object_new_array();

	out_add(j, "answer", json_object_new_string(resp->content));
	for (size_t i = 0; i < r->n; i++) {
		json_object *s = json_object_new_object();
		char l[PASSAGE_LINES_MAX];

		passage_lines(&r->v[i], l, sizeof(l));
		out_add(s, "n", json_object_new_int64((int64_t)i + 1));
		out_add(s, "source", json_object_new_string(r->v[i].source));
		out_add(s, "lines", json_object_new_string(l));
		out_add(s, "page", r->v[i].page ? json_object_new_int64((int64_t)r->v[i].page) : NULL);
		out_add(s, "score", json_object_new_double(r->v[i].score));
		out_add(s, "cited", json_object_new_boolean(cited[i]));
		if (json_object_array_add(src, s))
			cli_die(AI_EX_OSERR, "out of memory");
	}
	out_add(j, "sources", src);
	out_usage(j, resp->prompt_tokens, resp->completion_tokens);
	out_add(j, "model", resp->model ? json_object_new_string(resp->model) : NULL);
	out_add(j, "retrieval", json_object_new_string(r->hybrid ? "hybrid" : "bm25"));
	out_json_line(j);
	json_object_put(j);
}

/* The answer (unless it was streamed), then the sources it cited (all of them when it cited none). */
static void print_text(struct termout *to, const char *answer, bool streamed, const struct kb_results *r,
		       const bool *cited)
{
	size_t n = strlen(answer), ncited = 0;
	struct buf out;

	for (size_t i = 0; i < r->n; i++)
		ncited += cited[i];
	buf_init(&out, 0);
	if (!streamed)
		termout_write(to, answer, n, false);
	termout_end(to, false);
	if (!n || answer[n - 1] != '\n')
		buf_addch(&out, '\n');
	buf_addstr(&out, "\nSources:\n");
	for (size_t i = 0; i < r->n; i++) {
		if (ncited && !cited[i])
			continue;
		buf_addf(&out, "[%zu] ", i + 1);
		passage_cite(&r->v[i], &out);
		buf_addch(&out, '\n');
	}
	cli_write(out.data, out.len, true);
	buf_release(&out);
}

/* --stream: each piece of the answer the moment it arrives (ud: the struct termout). */
static int on_delta(const char *text, size_t n, void *ud)
{
	termout_write(ud, text, n, true);
	return 0;
}

/* Asks the model question from the passages of r, and prints its answer with the sources. */
static int answer(const struct cli *c, const struct opts *o, struct ai_client *cl, const char *question,
		  const struct kb_results *r, struct ai_err *err)
{
	struct ai_chat_req req;
	struct ai_chat_resp resp;
	struct termout to;
	bool *cited;
	int bad, rc;

	/* On a terminal, escape sequences in the answer are shown, not obeyed. */
	termout_init(&to, o->raw);
	ai_chat_req_init(&req);
	if (!(req.messages = answer_messages(question, r, o->system)))
		cli_die(AI_EX_OSERR, "out of memory");
	req.temperature = o->temperature;
	req.max_tokens = o->max_tokens;
	req.stream = o->stream && !c->json;
	req.on_delta = req.stream ? on_delta : NULL;
	req.ud = &to;
	rc = ai_chat(cl, &req, &resp, err);
	json_object_put(req.messages);
	if (rc) {
		termout_end(&to, false);
		if (req.stream && resp.partial)
			cli_write("\n", 1, true);
	} else if (!resp.dry_run) {
		if (!(cited = calloc(r->n, sizeof(*cited))))
			cli_die(AI_EX_OSERR, "out of memory");
		bad = answer_citations(resp.content, cited, r->n);
		if (bad && !c->quiet)
			cli_warn("the answer cites %d passage number%s that %s not given; left out of the sources",
				 bad, bad == 1 ? "" : "s", bad == 1 ? "was" : "were");
		if (c->json)
			print_json(&resp, r, cited);
		else
			print_text(&to, resp.content, req.stream, r, cited);
		free(cited);
	}
	termout_release(&to);
	ai_chat_resp_release(&resp);
	return rc;
}

/* No passage: the model is not asked (--json: a null answer), and the exit says so. */
static int nothing_relevant(const struct cli *c, const struct opts *o)
{
	if (c->json && !o->retrieve_only) {
		json_object *j = json_object_new_object();

		out_add(j, "answer", NULL);
		out_add(j, "sources", json_object_new_array());
		out_json_line(j);
		json_object_put(j);
	}
	if (!c->quiet)
		cli_warn("nothing in collection '%s' is relevant to the question%s", o->coll,
			 o->retrieve_only ? "" : "; the model was not asked");
	return AI_EX_PARTIAL;
}

/*
 * The model gets the whole message (files, piped input, the question, in
 * -T's template); retrieval searches by the question in the arguments when
 * there is one, not by a piped document it is about nor by the template's
 * words.
 */
static void read_question(struct cli *c, int argc, char **argv, struct buf *q, struct buf *query)
{
	struct ai_err err;
	struct cli plain = *c;

	buf_init(q, 1u << 20);
	buf_init(query, 1u << 20);
	plain.tmpl = NULL;
	if (cli_read_message(&plain, argc, argv, q, &err))
		cli_die_err(&err);
	if (q->len == strspn(q->data ? q->data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no question: give it as arguments or on standard input");
	if (argc > 0) {
		plain.nfiles = 0;
		plain.no_stdin = 1;
		if (cli_read_message(&plain, argc, argv, query, &err))
			cli_die_err(&err);
	} else if (c->tmpl && buf_add(query, q->data, q->len)) {
		cli_die(AI_EX_DATAERR, "the question is larger than 1 MiB");
	}
	if (c->save)
		tmplcli_save(c, NULL, NAN, 0, q->data);
	if (c->tmpl && tmplcli_fill(c, q, &err))
		cli_die_err(&err);
}

/*
 * -T's system line joins the built-in one, which asks for the citations;
 * its temperature and max_tokens are defaults the options win over.
 */
static void use_template(const struct cli *c, struct opts *o)
{
	if (!c->tmpl)
		return;
	o->system = c->tmpl->system;
	if (isnan(o->temperature))
		o->temperature = c->tmpl->temperature;
	if (!o->max_tokens)
		o->max_tokens = c->tmpl->max_tokens;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { .coll = KB_DEFAULT_COLLECTION, .k = 5, .temperature = NAN };
	struct ai_config cfg;
	struct ai_client *client = NULL, *cl = NULL;
	struct ai_err err;
	struct buf q, query;
	struct kb *kb;
	struct kb_query kq;
	struct kb_results r;
	int optind_, code = 0;

	cli_init(&c, "ai-ask");
	c.text = true;          /* --markdown (termout.h) */
	c.usage = "[OPTION]... [QUESTION]...";
	c.summary = "Answer a question from the knowledge base built by ai-index, citing its sources.";
	c.opts = opts;
	c.message = true;
	c.template_ok = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	ai_err_clear(&err);
	use_template(&c, &o);
	read_question(&c, argc - optind_, argv + optind_, &q, &query);
	if (o.no_bm25 && o.no_embed)
		cli_usage_error("--no-bm25 and --no-embed leave nothing to retrieve by");
	/* --retrieve-only can do without an endpoint; an answer cannot (this stops with how to set one). */
	if (o.retrieve_only)
		setup_client_if(&c, &cfg, &client, true, NULL, &err);
	else
		setup_client(&c, &cfg, &client, &err);
	cl = client;

	kq = (struct kb_query){ .coll = o.coll, .text = query.len ? query.data : q.data, .k = (size_t)o.k,
				.candidates = (size_t)o.candidates, .qmodel = o.embed_model, .int8 = o.int8,
				.no_bm25 = o.no_bm25, .min_cosine = o.min_sim,
				.vec_weight = o.vec_weight };
	if (kb_open(&kb, o.db, KB_READ, &err) || rag_retrieve(kb, o.no_embed ? NULL : cl, &kq, &r, &err)) {
		kb_close(kb);
		if (cl)
			setup_die(cl, &cfg, &err);
		cli_die_err(&err);
	}
	kb_close(kb);
	if (r.note && !c.quiet)
		cli_warn("%s", r.note);

	if (o.retrieve_only)
		print_passages(&r);
	if (!r.n)
		code = nothing_relevant(&c, &o);
	else if (!o.retrieve_only)
		code = answer(&c, &o, cl, q.data, &r, &err);
	kb_results_release(&r);
	buf_release(&q);
	buf_release(&query);
	if (code < 0)
		setup_die(cl, &cfg, &err);
	if (cl)
		ai_client_release(cl);
	config_release(&cfg);
	return cli_finish(code);
}
