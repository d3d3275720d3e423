/*
 * ingest.c - documents in, chunks and vectors into the knowledge base.
 *
 * A document waits in a queue (in the order given) until every embeddings
 * request holding one of its chunks has been answered; the head of the
 * queue is then stored, so documents reach the index in order and a
 * killed run loses only those in flight.
 *
 * A server that refuses an input as too large (net/httperr.h) makes the
 * run halve its chunk size (down to INGEST_MIN_TOKENS) and chunk the
 * documents of that request again; each new chunking is a generation of
 * the document, and answers for an older one are dropped.
 */
#include "rag/ingest.h"
#include "api/api.h"
#include "buf.h"
#include "chunk.h"
#include "rag/kb.h"

#include <strings.h>

/* A document between reading and writing. */
struct doc {
	struct doc *next;
	char *source;
	char *text;
	size_t len;
	char hash[65];
	int64_t mtime;
	size_t *pages;           /* owned or NULL: where each page starts in text (a PDF's) */
	size_t npages;
	bool markdown;           /* chunked with its Markdown headings */
	struct chunk_list cl;
	float *vecs;             /* cl.n x dim, filled by the requests */
	size_t queued;           /* chunks handed to requests */
	size_t pending;          /* requests not yet answered */
	unsigned gen;            /* how many times it was chunked again, smaller */
	size_t target;           /* the chunk size of this generation, in tokens */
	struct doc *redo_next;   /* on the run's list of documents to queue again */
	bool on_redo;
	bool novec;              /* written without vectors (BM25 only) */
	bool failed;
	struct ai_err err;
};

/* One embeddings request: which chunk of which document each input is. */
struct embed_req {
	struct ingest *ig;
	struct doc **docs;       /* per input: its document */
	size_t *rows;            /* per input: its chunk number */
	unsigned *gens;          /* per input: its document's generation then */
	size_t *targets;         /* per input: the chunk size it was cut to */
	char **texts;            /* per input: owned text sent */
	size_t n;
	struct ai_embed_resp resp;
};

struct ingest {
	const struct ingest_opts *o;
	const struct ingest_events *ev;
	struct ai_client *client;  /* NULL: BM25 only */
	struct kb *kb;             /* NULL: nothing stored */
	const char *model;         /* the embedding model named to the store */
	struct doc *head, **tail;
	struct doc *redo, **redo_tail;  /* chunked again: to queue again */
	size_t fit;                /* the chunk size now: opts' until the server refuses one */
	struct embed_req *cur;
	int inflight;
	bool bm25_only;
	size_t dim;
	struct ingest_counts n;
};

static void bm25_only(struct ingest *ig, const char *why)
{
	if (!ig->bm25_only && ig->ev->on_bm25_only)
		ig->ev->on_bm25_only(why, ig->ev->ud);
	ig->bm25_only = true;
}

static void report(struct ingest *ig, const struct doc *d, enum ingest_status st, bool counted)
{
	struct ingest_report r = { d->source, st, d->cl.n, !d->novec && !ig->o->dry_run && d->cl.n,
				   d->failed ? &d->err : NULL, counted, &ig->n };

	if (ig->ev->on_doc)
		ig->ev->on_doc(&r, ig->ev->ud);
}

static void doc_free(struct doc *d)
{
	free(d->source);
	free(d->text);
	free(d->pages);
	free(d->vecs);
	chunk_list_release(&d->cl);
	free(d);
}

static void count_failed(struct ingest *ig, const struct ai_err *e)
{
	ig->n.failed++;
	if (!ig->n.first_code)
		ig->n.first_code = e->code ? e->code : AI_EX_SOFTWARE;
}

/* Reports d as failed (counted unless cut off by an interrupt), then frees it. */
static void doc_failed(struct ingest *ig, struct doc *d, bool count)
{
	if (count)
		count_failed(ig, &d->err);
	d->failed = true;
	report(ig, d, INGEST_FAILED, count);
	doc_free(d);
}

/* The 1-based page holding text offset off (0 for a document without pages). */
static size_t page_of(const struct doc *d, size_t off)
{
	size_t lo = 0, hi = d->npages;

	/* The last page starting at or before off. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->pages[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int store(struct ingest *ig, struct doc *d, bool *replaced)
{
	struct kb_doc kd = { d->source, d->hash, (int64_t)d->len, d->mtime };
	struct kb_chunk *ch = NULL;
	int rc;

	if (d->cl.n && !(ch = calloc(d->cl.n, sizeof(*ch))))
		return ai_errf(&d->err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < d->cl.n; i++) {
		ch[i].text = d->text + d->cl.v[i].off;
		ch[i].len = d->cl.v[i].len;
		ch[i].line_start = d->cl.v[i].line_start;
		ch[i].line_end = d->cl.v[i].line_end;
		ch[i].heading = d->cl.v[i].heading;
		ch[i].page = page_of(d, d->cl.v[i].off);
	}
	rc = kb_put(ig->kb, ig->o->coll, &kd, ch, d->cl.n, d->novec ? NULL : d->vecs, ig->dim,
		    ig->model, replaced, &d->err);
	free(ch);
	return rc;
}

/* Stores (or, failed, reports) every finished document at the head of the queue. */
static void flush_docs(struct ingest *ig, bool all)
{
	while (ig->head && (all || (ig->head->pending == 0 && ig->head->queued == ig->head->cl.n))) {
		struct doc *d = ig->head;
		bool replaced = false;

		ig->head = d->next;
		if (!ig->head)
			ig->tail = &ig->head;
		if (!d->failed && (d->pending || d->queued < d->cl.n))
			d->failed = ai_errf(&d->err, AI_EX_INTERRUPT, "interrupted") != 0;
		if (!d->failed && !ig->o->dry_run && ig->kb && store(ig, d, &replaced))
			d->failed = true;
		if (d->failed) {
			doc_failed(ig, d, d->err.code != AI_EX_INTERRUPT);
			continue;
		}
		ig->n.indexed++;
		ig->n.replaced += replaced;
		ig->n.chunks += (long)d->cl.n;
		report(ig, d, ig->o->dry_run ? INGEST_DRY_RUN : replaced ? INGEST_REPLACED : INGEST_INDEXED, false);
		doc_free(d);
	}
}

static void req_free(struct embed_req *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->texts[i]);
	free(b->texts);
	free(b->docs);
	free(b->rows);
	free(b->gens);
	free(b->targets);
	ai_embed_resp_release(&b->resp);
	free(b);
}

/* The request b will not be answered: its documents stop waiting for it. */
static void req_drop(struct embed_req *b, bool novec)
{
	for (size_t i = 0; i < b->n; i++) {
		if (novec)
			b->docs[i]->novec = true;
		if (i == 0 || b->docs[i - 1] != b->docs[i])
			b->docs[i]->pending--;
	}
	req_free(b);
}

static int queue_chunks(struct ingest *ig, struct doc *d, struct ai_err *err);

/*
 * Chunks each page of d on its own, so that a chunk never spans two pages
 * and its citation names one; the chunks' offsets and lines are then
 * shifted to be of the whole text.
 */
static int chunk_pages(struct doc *d, const struct chunk_opts *co, struct chunk_list *cl)
{
	size_t line = 0, at = 0;

	*cl = (struct chunk_list)CHUNK_LIST_INIT;
	for (size_t p = 0; p < d->npages; p++) {
		size_t from = d->pages[p], to = p + 1 < d->npages ? d->pages[p + 1] : d->len;
		struct chunk_list pc = CHUNK_LIST_INIT;
		struct chunk *v;

		for (; at < from; at++)
			line += d->text[at] == '\n';
		if (chunk_text(d->text + from, to - from, co, &pc, &d->err))
			goto fail;
		if (!pc.n)
			continue;
		if (!(v = realloc(cl->v, (cl->n + pc.n) * sizeof(*v)))) {
			chunk_list_release(&pc);
			ai_errf(&d->err, AI_EX_OSERR, "out of memory");
			goto fail;
		}
		cl->v = v;
		for (size_t i = 0; i < pc.n; i++) {
			pc.v[i].off += from;
			pc.v[i].line_start += line;
			pc.v[i].line_end += line;
			cl->v[cl->n++] = pc.v[i];
		}
		free(pc.v);     /* the headings moved to cl */
	}
	return 0;
fail:
	chunk_list_release(cl);
	return -1;
}

/* Chunks d at the run's size now, the overlap in the same proportion as asked. */
static int chunk_doc(struct ingest *ig, struct doc *d, struct chunk_list *cl)
{
	const struct ingest_opts *o = ig->o;
	struct chunk_opts co = { ig->fit, o->chunk_tokens ? o->overlap * ig->fit / o->chunk_tokens : 0,
				 d->markdown };

	d->target = ig->fit;
	if (d->npages)
		return chunk_pages(d, &co, cl);
	return chunk_text(d->text, d->len, &co, cl, &d->err);
}

/* d again, in smaller chunks: its vectors so far go, and it waits on ig->redo to be queued. */
static void rechunk(struct ingest *ig, struct doc *d)
{
	struct chunk_list cl = CHUNK_LIST_INIT;

	if (chunk_doc(ig, d, &cl)) {
		/* Out of memory: nothing more of d is sent, and it is reported when its turn comes. */
		d->failed = true;
		d->queued = d->cl.n;
		return;
	}
	chunk_list_release(&d->cl);
	d->cl = cl;
	free(d->vecs);
	d->vecs = NULL;
	d->gen++;
	d->queued = 0;
	if (!d->on_redo) {
		d->on_redo = true;
		d->redo_next = NULL;
		*ig->redo_tail = d;
		ig->redo_tail = &d->redo_next;
	}
}

/*
 * The server refused an input of b as too large (e says how).  Which one
 * it does not say: when b's inputs were cut to the size now, that size is
 * halved (down to INGEST_MIN_TOKENS; below it the documents fail with the
 * server's words in *bad), and every document of b is chunked again at
 * the size now.  Inputs of a document chunked again since are not looked at.
 */
static void split(struct ingest *ig, struct embed_req *b, const struct ai_err *e, struct ai_err *bad)
{
	size_t biggest = 0;

	for (size_t i = 0; i < b->n; i++)
		if (!b->docs[i]->failed && b->gens[i] == b->docs[i]->gen && b->targets[i] > biggest)
			biggest = b->targets[i];
	if (!biggest)
		return;
	if (biggest <= ig->fit) {
		if (ig->fit / 2 < INGEST_MIN_TOKENS) {
			ai_errf(bad, e->code, "%.160s (even in chunks of %zu tokens)", e->msg, ig->fit);
			bad->status = e->status;
			return;
		}
		ig->fit /= 2;
		if (ig->ev->on_fit)
			ig->ev->on_fit(ig->fit, e, ig->ev->ud);
	}
	for (size_t i = 0; i < b->n; i++) {
		struct doc *d = b->docs[i];

		if (!d->failed && b->gens[i] == d->gen)
			rechunk(ig, d);
	}
}

/* Queues again every document chunked again (a failed one is only reported). */
static int requeue(struct ingest *ig, struct ai_err *err)
{
	while (ig->redo) {
		struct doc *d = ig->redo;

		ig->redo = d->redo_next;
		if (!ig->redo)
			ig->redo_tail = &ig->redo;
		d->redo_next = NULL;
		d->on_redo = false;
		if (d->failed || ig->bm25_only) {
			if (ig->bm25_only)
				d->novec = true;
			d->queued = d->cl.n;
			continue;
		}
		if (queue_chunks(ig, d, err))
			return -1;
	}
	flush_docs(ig, false);
	return 0;
}

static void req_done(int rc, struct ai_embed_resp *r, struct ai_err *e, void *ud)
{
	struct embed_req *b = ud;
	struct ingest *ig = b->ig;
	struct ai_err bad;

	ig->inflight--;
	ai_err_clear(&bad);
	if (rc && e->code != AI_EX_INTERRUPT && r->too_large) {
		split(ig, b, e, &bad);
	} else if (rc && e->code != AI_EX_INTERRUPT &&
		   (e->status == 404 || e->status == 400 || e->status == 501)) {
		/* The server has no embeddings (llama-server without --embeddings: 501),
		 * or refuses this model: BM25 alone. */
		bm25_only(ig, e->msg);
		for (size_t i = 0; i < b->n; i++)
			b->docs[i]->novec = true;
	} else if (rc) {
		bad = *e;
	} else if (ig->o->dry_run || !r->v) {
		for (size_t i = 0; i < b->n; i++)
			b->docs[i]->novec = true;
	} else if (r->n != b->n) {
		ai_errf(&bad, AI_EX_UNAVAILABLE, "asked for %zu embeddings and got %zu", b->n, r->n);
	} else if (ig->dim && r->dim != ig->dim) {
		ai_errf(&bad, AI_EX_UNAVAILABLE, "embeddings of dimension %zu after earlier ones of %zu",
			r->dim, ig->dim);
	} else {
		ig->dim = r->dim;
		for (size_t i = 0; i < b->n; i++) {
			struct doc *d = b->docs[i];

			if (d->failed || b->gens[i] != d->gen)
				continue;   /* chunked again since: these vectors are of old chunks */
			if (!d->vecs && !(d->vecs = malloc(d->cl.n * r->dim * sizeof(float)))) {
				d->failed = ai_errf(&d->err, AI_EX_OSERR, "out of memory") != 0;
				continue;
			}
			memcpy(d->vecs + b->rows[i] * r->dim, r->v + i * r->dim, r->dim * sizeof(float));
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct doc *d = b->docs[i];

		if (bad.msg[0] && !d->failed && b->gens[i] == d->gen) {
			d->failed = true;
			d->err = bad;
		}
	}
	req_drop(b, false);
}

static int start_req(struct ingest *ig, struct ai_err *err)
{
	struct embed_req *b = ig->cur;

	ig->cur = NULL;
	if (!b)
		return 0;
	if (ig->bm25_only) {
		/* The server turned out to have no embeddings: these documents go without. */
		req_drop(b, true);
		return 0;
	}
	ig->inflight++;
	if (ai_embed_start(ig->client, (const char *const *)b->texts, b->n, ig->o->embed_model, &b->resp,
			   req_done, b, err)) {
		ig->inflight--;
		req_drop(b, false);
		return -1;
	}
	return 0;
}

/* Waits while the requests in flight are at the limit (or, drain, until none is left). */
static int wait_room(struct ingest *ig, bool drain, struct ai_err *err)
{
	while (ig->client && ai_client_pending(ig->client) &&
	       (drain || ig->inflight >= ig->o->parallel)) {
		if (ai_client_step(ig->client, 100, err) < 0)
			return -1;
		flush_docs(ig, false);
	}
	flush_docs(ig, false);
	return 0;
}

/* The text to embed for a chunk: its heading path, then its text, so the context counts. */
static char *embed_text(const struct doc *d, const struct chunk *c)
{
	struct buf b;

	buf_init(&b, 0);
	if ((c->heading && (buf_addstr(&b, c->heading) || buf_addstr(&b, "\n\n"))) ||
	    buf_add(&b, d->text + c->off, c->len)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

static struct embed_req *req_new(struct ingest *ig)
{
	size_t cap = ig->o->embed_batch;
	struct embed_req *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ig = ig;
	if (!(b->docs = calloc(cap, sizeof(*b->docs))) || !(b->rows = calloc(cap, sizeof(*b->rows))) ||
	    !(b->gens = calloc(cap, sizeof(*b->gens))) || !(b->targets = calloc(cap, sizeof(*b->targets))) ||
	    !(b->texts = calloc(cap, sizeof(*b->texts)))) {
		req_free(b);
		return NULL;
	}
	return b;
}

/* Hands the chunks of d to requests, starting each full one. */
static int queue_chunks(struct ingest *ig, struct doc *d, struct ai_err *err)
{
	while (d->queued < d->cl.n) {
		struct embed_req *b = ig->cur;

		if (!b) {
			if (wait_room(ig, false, err))
				return -1;
			if (ig->bm25_only) {
				d->novec = true;
				d->queued = d->cl.n;
				break;
			}
			if (!(b = ig->cur = req_new(ig)))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
		if (!(b->texts[b->n] = embed_text(d, &d->cl.v[d->queued])))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		if (!b->n || b->docs[b->n - 1] != d)
			d->pending++;
		b->docs[b->n] = d;
		b->rows[b->n] = d->queued;
		b->gens[b->n] = d->gen;
		b->targets[b->n] = d->target;
		b->n++;
		d->queued++;
		if (b->n == ig->o->embed_batch && start_req(ig, err))
			return -1;
	}
	return 0;
}

bool ingest_is_markdown(const char *name)
{
	static const char *const ext[] = { ".md", ".markdown", ".mdown", ".mkd", ".mdx", ".rmd", ".qmd" };
	size_t n = strlen(name);

	for (size_t i = 0; i < AI_ARRAY_LEN(ext); i++) {
		size_t m = strlen(ext[i]);

		if (n > m && !strcasecmp(name + n - m, ext[i]))
			return true;
	}
	return false;
}

int ingest_init(struct ingest **out, struct kb *kb, struct ai_client *client,
		const struct ingest_opts *opts, const struct ingest_events *ev, struct ai_err *err)
{
	struct ingest *ig = calloc(1, sizeof(*ig));

	*out = NULL;
	if (!ig)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	ig->o = opts;
	ig->ev = ev;
	ig->kb = kb;
	ig->client = client;
	/* Without a client no vector is stored, and no model is named. */
	ig->model = !client ? NULL : opts->embed_model ? opts->embed_model : ai_client_embed_model(client);
	ig->tail = &ig->head;
	ig->redo_tail = &ig->redo;
	ig->fit = opts->chunk_tokens;
	*out = ig;
	return 0;
}

void ingest_failed(struct ingest *ig, const char *source, const struct ai_err *e)
{
	struct doc *d = calloc(1, sizeof(*d));

	/* Without memory for the report, the document is still counted. */
	if (!d || !(d->source = strdup(source))) {
		free(d);
		count_failed(ig, e);
		return;
	}
	d->err = *e;
	doc_failed(ig, d, true);
}

int ingest_add(struct ingest *ig, const char *source, char *text, size_t len, int64_t mtime,
	       struct ai_err *err)
{
	struct ingest_text t = { text, len, NULL, 0, ingest_is_markdown(source) };

	return ingest_add_text(ig, source, &t, mtime, err);
}

int ingest_add_text(struct ingest *ig, const char *source, struct ingest_text *t, int64_t mtime,
		    struct ai_err *err)
{
	struct doc *d = calloc(1, sizeof(*d));
	bool same = false;

	if (!d || !(d->source = strdup(source))) {
		free(d);
		free(t->text);
		free(t->pages);
		*t = (struct ingest_text){ NULL, 0, NULL, 0, false };
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	d->text = t->text;
	d->len = t->len;
	d->pages = t->pages;
	d->npages = t->npages;
	d->markdown = t->markdown;
	*t = (struct ingest_text){ NULL, 0, NULL, 0, false };
	d->mtime = mtime;
	kb_hash(d->text, d->len, d->hash);
	if (!ig->o->force && ig->kb &&
	    kb_unchanged(ig->kb, ig->o->coll, d->source, d->hash, &same, &d->err)) {
		doc_failed(ig, d, true);
		return 0;
	}
	if (same) {
		ig->n.unchanged++;
		report(ig, d, INGEST_UNCHANGED, false);
		doc_free(d);
		return 0;
	}
	if (chunk_doc(ig, d, &d->cl)) {
		doc_failed(ig, d, true);
		return 0;
	}
	*ig->tail = d;
	ig->tail = &d->next;
	if (!ig->client || ig->bm25_only) {
		d->novec = true;
		d->queued = d->cl.n;
		flush_docs(ig, false);
		return 0;
	}
	return queue_chunks(ig, d, err) || requeue(ig, err) ? -1 : 0;
}

int ingest_finish(struct ingest *ig, struct ai_err *err)
{
	/* An answer waited for here may have a document chunked again: queue it, wait again. */
	do {
		if (requeue(ig, err) || start_req(ig, err) || wait_room(ig, true, err))
			return -1;
	} while (ig->redo);
	return 0;
}


void ingest_free(struct ingest *ig, struct ingest_counts *totals)
{
	if (totals)
		memset(totals, 0, sizeof(*totals));
	if (!ig)
		return;
	flush_docs(ig, true);
	if (totals)
		*totals = ig->n;
	if (ig->cur)
		req_free(ig->cur);
	free(ig);
}
