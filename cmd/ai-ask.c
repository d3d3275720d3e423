/*
 * ai-ask - answer a question from the knowledge base, citing the passages
 * (pattern 4, RAG: the read side).
 *
 * Retrieval is kb_retrieve's: BM25 and vector similarity, each its top-N,
 * fused by reciprocal rank.  The k passages are numbered in the prompt and
 * the model is asked to answer from them alone, citing them as [n]; the
 * answer is printed, then the sources it cited.  Nothing relevant: no model
 * call at all.
 */
#include "ai.h"
#include "api/api.h"
#include "jsonval.h"
#include "lib/cli.h"
#include "rag/kb.h"
#include "path.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"

#include <math.h>
#include <unistd.h>

enum {
	OPT_DB = CLI_OPT_PROG, OPT_RETRIEVE_ONLY, OPT_STREAM, OPT_INT8, OPT_NO_EMBED, OPT_NO_BM25, OPT_EMBED_MODEL,
	OPT_CANDIDATES, OPT_MIN_SIM, OPT_TEMPERATURE, OPT_MAX_TOKENS, OPT_RAW
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
	{ "temperature", required_argument, OPT_TEMPERATURE, "T", "sampling temperature, 0 to 2" },
	{ "max-tokens", required_argument, OPT_MAX_TOKENS, "N", "cap the length of the answer" },
	{ "raw", no_argument, OPT_RAW, NULL, "do not neutralise control characters on a terminal" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *coll, *db, *embed_model;
	long k, candidates, max_tokens;
	double min_sim, temperature;
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
	case OPT_TEMPERATURE: o->temperature = cli_double("--temperature", arg, 0, 2); break;
	case OPT_MAX_TOKENS: o->max_tokens = cli_long("--max-tokens", arg, 1, 10000000); break;
	case OPT_RAW: o->raw = true; break;
	}
}

/* "12-30", or "12" for one line. */
static void lines(const struct kb_passage *p, char *out, size_t n)
{
	if (p->line_start == p->line_end)
		snprintf(out, n, "%zu", p->line_start);
	else
		snprintf(out, n, "%zu-%zu", p->line_start, p->line_end);
}

static void print_passages(const struct kb_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct kb_passage *p = &r->v[i];
		json_object *j = json_object_new_object();
		char l[64];

		lines(p, l, sizeof(l));
		out_add(j, "n", json_object_new_int64((int64_t)i + 1));
		out_add(j, "source", json_object_new_string(p->source));
		out_add(j, "lines", json_object_new_string(l));
		out_add(j, "line_start", json_object_new_int64((int64_t)p->line_start));
		out_add(j, "line_end", json_object_new_int64((int64_t)p->line_end));
		out_add(j, "heading", p->heading ? json_object_new_string(p->heading) : NULL);
		out_add(j, "score", json_object_new_double(p->score));
		out_add(j, "bm25", jv_num(p->bm25));
		out_add(j, "cosine", jv_num(p->cosine));
		out_add(j, "text", json_object_new_string(p->text));
		out_json_line(j);
		json_object_put(j);
	}
}

static json_object *messages(const char *question, const struct kb_results *r)
{
	json_object *m = json_object_new_array(), *sys, *user;
	struct buf b;

	buf_init(&b, 0);
	buf_addstr(&b, "Answer the question using only the numbered passages below. Cite the passages "
		   "that support each statement with their numbers in square brackets, like [1] or [2][3]. "
		   "If the passages do not contain the answer, say so plainly instead of guessing.\n\n");
	for (size_t i = 0; i < r->n; i++) {
		char l[64];

		lines(&r->v[i], l, sizeof(l));
		buf_addf(&b, "[%zu] %s:%s", i + 1, path_display(r->v[i].source), l);
		if (r->v[i].heading)
			buf_addf(&b, " (%s)", r->v[i].heading);
		buf_addf(&b, "\n%s\n\n", r->v[i].text);
	}
	buf_addf(&b, "Question: %s", question);
	sys = out_message("system", "You answer questions from the passages you are given, citing them. "
			   "You never cite a passage that was not given.");
	user = out_message("user", b.data ? b.data : "");
	buf_release(&b);
	if (!m || json_object_array_add(m, sys) || (sys = NULL) || json_object_array_add(m, user))
		cli_die(AI_EX_OSERR, "out of memory");
	return m;
}

/*
 * The passage numbers the answer cites, as flags in cited[0..n); returns
 * how many citations named a passage that was not given (they are left out).
 */
static int citations(const char *answer, bool *cited, size_t n)
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

/* --stream: each piece of the answer the moment it arrives (ud: the struct termout). */
static int on_delta(const char *text, size_t n, void *ud)
{
	termout_write(ud, text, n, true);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { KB_DEFAULT_COLLECTION, NULL, NULL, 5, 0, 0, 0, NAN,
			  false, false, false, false, false, false };
	struct ai_config cfg;
	struct ai_client client;
	struct ai_client *cl = NULL;
	struct ai_err err;
	struct buf q, query;
	struct kb *kb;
	struct kb_query kq;
	struct kb_results r;
	int optind_, code = 0;
	bool online, *cited;
	size_t ncited = 0;

	cli_init(&c, "ai-ask");
	c.text = true;          /* --markdown (termout.h) */
	c.usage = "[OPTION]... [QUESTION]...";
	c.summary = "Answer a question from the knowledge base built by ai-index, citing its sources.";
	c.opts = opts;
	c.message = true;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	ai_err_clear(&err);

	/*
	 * The model gets the whole message (files, piped input, the question);
	 * retrieval searches by the question in the arguments when there is
	 * one, not by a piped document it is about.
	 */
	buf_init(&q, 1u << 20);
	buf_init(&query, 1u << 20);
	if (cli_read_message(&c, argc - optind_, argv + optind_, &q, &err))
		cli_die_err(&err);
	if (q.len == strspn(q.data ? q.data : "", " \t\r\n\f\v"))
		cli_die(AI_EX_NOINPUT, "no question: give it as arguments or on standard input");
	if (optind_ < argc) {
		struct cli words = c;

		words.nfiles = 0;
		words.no_stdin = 1;
		if (cli_read_message(&words, argc - optind_, argv + optind_, &query, &err))
			cli_die_err(&err);
	}

	if (o.no_bm25 && o.no_embed)
		cli_usage_error("--no-bm25 and --no-embed leave nothing to retrieve by");
	if (config_load(&cfg, &c, &err))
		cli_die_err(&err);
	online = cfg.endpoint_set || cfg.dry_run;
	config_release(&cfg);
	if (online || !o.retrieve_only) {
		/* Without an endpoint this stops with how to configure one. */
		setup_client(&c, &cfg, &client, &err);
		cl = &client;
		if (o.embed_model) {
			free(cfg.embed_model);
			if (!(cfg.embed_model = strdup(o.embed_model)))
				cli_die(AI_EX_OSERR, "out of memory");
		}
	} else if (config_load(&cfg, &c, &err)) {
		cli_die_err(&err);
	}

	if (kb_open(&kb, o.db, KB_READ, &err)) {
		if (cl)
			setup_die(cl, &cfg, &err);
		cli_die_err(&err);
	}
	memset(&kq, 0, sizeof(kq));
	kq.coll = o.coll;
	kq.text = query.len ? query.data : q.data;
	kq.k = (size_t)o.k;
	kq.candidates = (size_t)o.candidates;
	kq.int8 = o.int8;
	kq.no_bm25 = o.no_bm25;
	kq.min_cosine = o.min_sim;
	if (kb_retrieve(kb, o.no_embed ? NULL : cl, &kq, &r, &err)) {
		kb_close(kb);
		if (cl)
			setup_die(cl, &cfg, &err);
		cli_die_err(&err);
	}
	kb_close(kb);
	if (r.note && !c.quiet)
		cli_warn("%s", r.note);

	if (o.retrieve_only) {
		print_passages(&r);
		if (!r.n && !c.quiet)
			cli_warn("nothing in collection '%s' is relevant to the question", o.coll);
		code = r.n ? 0 : AI_EX_PARTIAL;
	} else if (!r.n) {
		if (c.json) {
			json_object *j = json_object_new_object();

			out_add(j, "answer", NULL);
			out_add(j, "sources", json_object_new_array());
			out_json_line(j);
			json_object_put(j);
		}
		if (!c.quiet)
			cli_warn("nothing in collection '%s' is relevant to the question; the model was not asked",
				 o.coll);
		code = AI_EX_PARTIAL;
	} else {
		struct ai_chat_req req;
		struct ai_chat_resp resp;
		struct termout to;
		int bad;

		/* On a terminal, escape sequences in the answer are shown, not obeyed. */
		termout_init(&to, o.raw);
		ai_chat_req_init(&req);
		req.messages = messages(q.data, &r);
		req.temperature = o.temperature;
		req.max_tokens = o.max_tokens;
		req.stream = o.stream && !c.json;
		req.on_delta = req.stream ? on_delta : NULL;
		req.ud = &to;
		if (ai_chat(cl, &req, &resp, &err)) {
			json_object_put(req.messages);
			termout_end(&to, false);
			if (req.stream && resp.partial)
				cli_write("\n", 1, true);
			termout_release(&to);
			ai_chat_resp_release(&resp);
			kb_results_release(&r);
			buf_release(&q);
			setup_die(cl, &cfg, &err);
		}
		json_object_put(req.messages);
		if (resp.dry_run)
			goto done;
		if (!(cited = calloc(r.n, sizeof(*cited))))
			cli_die(AI_EX_OSERR, "out of memory");
		bad = citations(resp.content, cited, r.n);
		for (size_t i = 0; i < r.n; i++)
			ncited += cited[i];
		if (bad && !c.quiet)
			cli_warn("the answer cites %d passage number%s that %s not given; left out of the sources",
				 bad, bad == 1 ? "" : "s", bad == 1 ? "was" : "were");
		if (c.json) {
			json_object *j = json_object_new_object(), *src = json_object_new_array(),
				    *u = json_object_new_object();

			out_add(j, "answer", json_object_new_string(resp.content));
			for (size_t i = 0; i < r.n; i++) {
				json_object *s = json_object_new_object();
				char l[64];

				lines(&r.v[i], l, sizeof(l));
				out_add(s, "n", json_object_new_int64((int64_t)i + 1));
				out_add(s, "source", json_object_new_string(r.v[i].source));
				out_add(s, "lines", json_object_new_string(l));
				out_add(s, "score", json_object_new_double(r.v[i].score));
				out_add(s, "cited", json_object_new_boolean(cited[i]));
				if (json_object_array_add(src, s))
					cli_die(AI_EX_OSERR, "out of memory");
			}
			out_add(j, "sources", src);
			out_add(u, "prompt_tokens", json_object_new_int64(resp.prompt_tokens));
			out_add(u, "completion_tokens", json_object_new_int64(resp.completion_tokens));
			out_add(j, "usage", u);
			out_add(j, "model", resp.model ? json_object_new_string(resp.model) : NULL);
			out_add(j, "retrieval", json_object_new_string(r.hybrid ? "hybrid" : "bm25"));
			out_json_line(j);
			json_object_put(j);
		} else {
			size_t n = strlen(resp.content);
			struct buf out;

			buf_init(&out, 0);
			if (!req.stream)
				termout_write(&to, resp.content, n, false);
			termout_end(&to, false);
			if (!n || resp.content[n - 1] != '\n')
				buf_addch(&out, '\n');
			buf_addstr(&out, "\nSources:\n");
			for (size_t i = 0; i < r.n; i++) {
				char l[64];

				if (ncited && !cited[i])
					continue;
				lines(&r.v[i], l, sizeof(l));
				buf_addf(&out, "[%zu] %s:%s\n", i + 1, path_display(r.v[i].source), l);
			}
			cli_write(out.data, out.len, true);
			buf_release(&out);
		}
		free(cited);
done:
		termout_release(&to);
		ai_chat_resp_release(&resp);
	}
	kb_results_release(&r);
	buf_release(&q);
	buf_release(&query);
	if (cl)
		ai_client_release(cl);
	config_release(&cfg);
	return cli_finish(code);
}
