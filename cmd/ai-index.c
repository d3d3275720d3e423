/*
 * ai-index - chunk documents, embed them in batches, store them in the
 * knowledge base (pattern 4, RAG: the write side).
 *
 * Documents come from the files named, --files-from, or stdin (--source).
 * Each is hashed; an unchanged one is skipped, a new or changed one is
 * chunked and its chunks join the current embeddings batch.  Batches of
 * --embed-batch inputs go out --parallel at a time; a document is written
 * (one transaction) as soon as all its chunks have their vectors, so a
 * killed run loses only the documents in flight.
 */
#include "ai.h"
#include "api/api.h"
#include "rag/chunk.h"
#include "lib/cli.h"
#include "rag/kb.h"
#include "path.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "utf8.h"

#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

enum {
	OPT_DB = CLI_OPT_PROG, OPT_FILES_FROM, OPT_SOURCE, OPT_CHUNK_TOKENS, OPT_OVERLAP,
	OPT_EMBED_BATCH, OPT_EMBED_MODEL, OPT_NO_EMBED, OPT_RM, OPT_LIST, OPT_STATS, OPT_FORCE,
	OPT_COLLECTIONS
};

static const struct cli_opt opts[] = {
	{ "collection", required_argument, 'c', "NAME", "the collection to write (default \"default\")" },
	{ "db", required_argument, OPT_DB, "FILE", "the index file (default $XDG_DATA_HOME/ai/index.db)" },
	{ "files-from", required_argument, OPT_FILES_FROM, "FILE", "read the names of the files to index from FILE (- for stdin), one a line" },
	{ "source", required_argument, OPT_SOURCE, "NAME", "the name of the document read from stdin" },
	{ "chunk-tokens", required_argument, OPT_CHUNK_TOKENS, "N", "aim for chunks of N tokens (default 400)" },
	{ "overlap", required_argument, OPT_OVERLAP, "N", "start each chunk N tokens before the last ended (default 15% of --chunk-tokens)" },
	{ "embed-batch", required_argument, OPT_EMBED_BATCH, "N", "texts per embeddings request (default 100)" },
	{ "parallel", required_argument, 'P', "N", "embeddings requests in flight (default 4)" },
	{ "embed-model", required_argument, OPT_EMBED_MODEL, "MODEL", "the embedding model, instead of AI_EMBED_MODEL or embed_model" },
	{ "no-embed", no_argument, OPT_NO_EMBED, NULL, "store no vectors: the index serves BM25 only" },
	{ "force", no_argument, OPT_FORCE, NULL, "reindex documents even when unchanged" },
	{ "rm", required_argument, OPT_RM, "SOURCE", "remove SOURCE from the collection (repeatable)" },
	{ "list", no_argument, OPT_LIST, NULL, "list the collection's documents" },
	{ "stats", no_argument, OPT_STATS, NULL, "print the collection's documents, chunks, bytes and model" },
	{ "collections", no_argument, OPT_COLLECTIONS, NULL, "list the names of the index's collections" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *coll, *db, *files_from, *source, *embed_model;
	long chunk_tokens, overlap, embed_batch, parallel;
	bool no_embed, force, list, stats, collections;
	const char **rm;
	size_t n_rm;
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
	case OPT_FILES_FROM: o->files_from = arg; break;
	case OPT_SOURCE:
		if (!*arg)
			cli_usage_error("--source wants a name");
		o->source = arg;
		break;
	case OPT_CHUNK_TOKENS: o->chunk_tokens = cli_long("--chunk-tokens", arg, 16, 100000); break;
	case OPT_OVERLAP: o->overlap = cli_long("--overlap", arg, 0, 50000); break;
	case OPT_EMBED_BATCH: o->embed_batch = cli_long("--embed-batch", arg, 1, 2048); break;
	case 'P': o->parallel = cli_long("--parallel", arg, 1, 64); break;
	case OPT_EMBED_MODEL: o->embed_model = arg; break;
	case OPT_NO_EMBED: o->no_embed = true; break;
	case OPT_FORCE: o->force = true; break;
	case OPT_LIST: o->list = true; break;
	case OPT_STATS: o->stats = true; break;
	case OPT_COLLECTIONS: o->collections = true; break;
	case OPT_RM: {
		const char **n = realloc(o->rm, (o->n_rm + 1) * sizeof(*n));

		if (!n)
			cli_die(AI_EX_OSERR, "out of memory");
		o->rm = n;
		o->rm[o->n_rm++] = arg;
		break;
	}
	}
}

/* A document between reading and writing. */
struct doc {
	struct doc *next;
	char *source;
	char *text;
	size_t len;
	char hash[65];
	int64_t mtime;
	bool replaced_hint;
	struct chunk_list cl;
	float *vecs;             /* cl.n x dim, filled by the batches */
	size_t queued;           /* chunks handed to batches */
	size_t pending;          /* batches not yet answered */
	bool novec;              /* written without vectors (BM25 only) */
	bool failed;
	struct ai_err err;
};

struct batch {
	struct ix *ix;
	struct doc **docs;       /* per input: its document */
	size_t *rows;            /* per input: its chunk number */
	char **texts;            /* per input: owned text sent */
	size_t n;
	struct ai_embed_resp resp;
};

struct ix {
	struct opts *o;
	struct cli *c;
	struct ai_client *client;  /* NULL: BM25 only */
	struct kb *kb;             /* NULL under --dry-run without an index */
	struct doc *head, **tail;
	struct batch *cur;
	int inflight;
	bool bm25_only, said_bm25;
	size_t dim;
	bool dry_run, progress;
	struct termout_progress prog;
	/* counts */
	long indexed, replaced, unchanged, failed, chunks;
	int first_code;
	int64_t t0;
};

static void bm25_only(struct ix *ix, const char *why)
{
	ix->bm25_only = true;
	if (!ix->said_bm25 && !ix->c->quiet)
		cli_warn("%s: indexing for BM25 only (keyword search, no vectors)", why);
	ix->said_bm25 = true;
}

static void progress(struct ix *ix, bool last)
{
	if (!ix->progress)
		return;
	termout_progress(&ix->prog, last, "%ld indexed, %ld unchanged, %ld failed, %ld chunks",
			 ix->indexed, ix->unchanged, ix->failed, ix->chunks);
}

/* One JSON line (--json) or nothing, per document. */
static void report(struct ix *ix, const struct doc *d, const char *status)
{
	json_object *j;

	if (!ix->c->json)
		return;
	j = json_object_new_object();
	out_add(j, "source", json_object_new_string(d->source));
	out_add(j, "status", json_object_new_string(status));
	out_add(j, "chunks", json_object_new_int64((int64_t)d->cl.n));
	out_add(j, "vectors", json_object_new_boolean(!d->novec && !ix->dry_run && d->cl.n));
	if (d->failed)
		out_add(j, "error", json_object_new_string(d->err.msg));
	out_json_line(j);
	json_object_put(j);
}

static void doc_free(struct doc *d)
{
	free(d->source);
	free(d->text);
	free(d->vecs);
	chunk_list_release(&d->cl);
	free(d);
}

static void fail(struct ix *ix, const char *source, const struct ai_err *e)
{
	cli_warn("'%s': %s", path_display(source), e->msg);
	ix->failed++;
	if (!ix->first_code)
		ix->first_code = e->code ? e->code : AI_EX_SOFTWARE;
}

/* Writes (or, failed, reports) every finished document at the head of the queue. */
static void flush_docs(struct ix *ix, bool all)
{
	while (ix->head && (all || (ix->head->pending == 0 && ix->head->queued == ix->head->cl.n))) {
		struct doc *d = ix->head;
		struct kb_chunk *ch = NULL;
		bool replaced = false;

		ix->head = d->next;
		if (!ix->head)
			ix->tail = &ix->head;
		if (!d->failed && (d->pending || d->queued < d->cl.n))
			d->failed = ai_errf(&d->err, AI_EX_INTERRUPT, "interrupted") != 0;
		if (!d->failed && !ix->dry_run && ix->kb) {
			struct kb_doc kd = { d->source, d->hash, (int64_t)d->len, d->mtime };

			if (d->cl.n && !(ch = calloc(d->cl.n, sizeof(*ch)))) {
				d->failed = ai_errf(&d->err, AI_EX_OSERR, "out of memory") != 0;
			} else {
				for (size_t i = 0; i < d->cl.n; i++) {
					ch[i].text = d->text + d->cl.v[i].off;
					ch[i].len = d->cl.v[i].len;
					ch[i].line_start = d->cl.v[i].line_start;
					ch[i].line_end = d->cl.v[i].line_end;
					ch[i].heading = d->cl.v[i].heading;
				}
				if (kb_put(ix->kb, ix->o->coll, &kd, ch, d->cl.n, d->novec ? NULL : d->vecs,
					   ix->dim, ix->client ? ai_client_embed_model(ix->client) : NULL, &replaced,
					   &d->err))
					d->failed = true;
			}
			free(ch);
		}
		if (d->failed) {
			if (d->err.code != AI_EX_INTERRUPT)
				fail(ix, d->source, &d->err);
			report(ix, d, "failed");
		} else {
			ix->indexed++;
			ix->replaced += replaced;
			ix->chunks += (long)d->cl.n;
			report(ix, d, ix->dry_run ? "dry-run" : replaced ? "replaced" : "indexed");
		}
		progress(ix, false);
		doc_free(d);
	}
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->texts[i]);
	free(b->texts);
	free(b->docs);
	free(b->rows);
	ai_embed_resp_release(&b->resp);
	free(b);
}

static void batch_done(int rc, struct ai_embed_resp *r, struct ai_err *e, void *ud)
{
	struct batch *b = ud;
	struct ix *ix = b->ix;
	struct ai_err bad;

	ix->inflight--;
	ai_err_clear(&bad);
	if (rc && e->code != AI_EX_INTERRUPT && (e->status == 404 || e->status == 400)) {
		/* The server has no embeddings (or refuses this model): BM25 alone. */
		bm25_only(ix, e->msg);
		for (size_t i = 0; i < b->n; i++)
			b->docs[i]->novec = true;
	} else if (rc) {
		bad = *e;
	} else if (ix->dry_run || !r->v) {
		for (size_t i = 0; i < b->n; i++)
			b->docs[i]->novec = true;
	} else if (r->n != b->n) {
		ai_errf(&bad, AI_EX_UNAVAILABLE, "asked for %zu embeddings and got %zu", b->n, r->n);
	} else if (ix->dim && r->dim != ix->dim) {
		ai_errf(&bad, AI_EX_UNAVAILABLE, "embeddings of dimension %zu after earlier ones of %zu",
			r->dim, ix->dim);
	} else {
		ix->dim = r->dim;
		for (size_t i = 0; i < b->n; i++) {
			struct doc *d = b->docs[i];

			if (!d->vecs && !(d->vecs = malloc(d->cl.n * r->dim * sizeof(float)))) {
				d->failed = ai_errf(&d->err, AI_EX_OSERR, "out of memory") != 0;
				continue;
			}
			memcpy(d->vecs + b->rows[i] * r->dim, r->v + i * r->dim, r->dim * sizeof(float));
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct doc *d = b->docs[i];

		if (bad.msg[0] && !d->failed) {
			d->failed = true;
			d->err = bad;
		}
		if (i == 0 || b->docs[i - 1] != d)
			d->pending--;
	}
	batch_free(b);
}

static int start_batch(struct ix *ix, struct ai_err *err)
{
	struct batch *b = ix->cur;

	ix->cur = NULL;
	if (!b)
		return 0;
	if (ix->bm25_only) {
		/* The server turned out to have no embeddings: these documents go without. */
		for (size_t i = 0; i < b->n; i++) {
			b->docs[i]->novec = true;
			if (i == 0 || b->docs[i - 1] != b->docs[i])
				b->docs[i]->pending--;
		}
		batch_free(b);
		return 0;
	}
	ix->inflight++;
	if (ai_embed_start(ix->client, (const char *const *)b->texts, b->n, NULL, &b->resp, batch_done, b,
			   err)) {
		ix->inflight--;
		for (size_t i = 0; i < b->n; i++)
			if (i == 0 || b->docs[i - 1] != b->docs[i])
				b->docs[i]->pending--;
		batch_free(b);
		return -1;
	}
	return 0;
}

/* Waits while the requests in flight are at the limit (or, drain, until none is left). */
static int wait_room(struct ix *ix, bool drain, struct ai_err *err)
{
	while (ix->client && ai_client_pending(ix->client) &&
	       (drain || ix->inflight >= (int)ix->o->parallel)) {
		if (ai_client_step(ix->client, 100, err) < 0)
			return -1;
		flush_docs(ix, false);
	}
	flush_docs(ix, false);
	return 0;
}

/* The text to embed for a chunk: its heading path, then its text, so the context counts. */
static char *embed_text(const struct doc *d, const struct chunk *c)
{
	struct buf b;

	buf_init(&b, 0);
	if ((c->heading && (buf_addstr(&b, c->heading) || buf_addstr(&b, "\n\n"))) ||
	    buf_add(&b, d->text + c->off, c->len))
		cli_die(AI_EX_OSERR, "out of memory");
	return buf_detach(&b, NULL);
}

/* Hands the chunks of d to batches, starting each full one. */
static int queue_chunks(struct ix *ix, struct doc *d, struct ai_err *err)
{
	while (d->queued < d->cl.n) {
		struct batch *b = ix->cur;

		if (!b) {
			size_t cap = (size_t)ix->o->embed_batch;

			if (wait_room(ix, false, err))
				return -1;
			if (ix->bm25_only) {
				d->novec = true;
				d->queued = d->cl.n;
				break;
			}
			if (!(b = calloc(1, sizeof(*b))) || !(b->docs = calloc(cap, sizeof(*b->docs))) ||
			    !(b->rows = calloc(cap, sizeof(*b->rows))) || !(b->texts = calloc(cap, sizeof(*b->texts))))
				cli_die(AI_EX_OSERR, "out of memory");
			b->ix = ix;
			ix->cur = b;
		}
		if (!b->n || b->docs[b->n - 1] != d)
			d->pending++;
		b->docs[b->n] = d;
		b->rows[b->n] = d->queued;
		b->texts[b->n] = embed_text(d, &d->cl.v[d->queued]);
		b->n++;
		d->queued++;
		if (b->n == (size_t)ix->o->embed_batch && start_batch(ix, err))
			return -1;
	}
	return 0;
}

static bool is_markdown(const char *name)
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

/* Reads, hashes, chunks and queues one document: path NULL is stdin. */
static int add_doc(struct ix *ix, const char *path, const char *source, struct ai_err *err)
{
	struct doc *d = calloc(1, sizeof(*d));
	struct buf in;
	struct stat sb;
	char *arg = (char *)(path ? path : "-");
	bool same = false;

	if (!d)
		cli_die(AI_EX_OSERR, "out of memory");
	/*
	 * A file is stored under its canonical path, so that notes/keys.md,
	 * ./keys.md and its absolute path are one document; a --source name
	 * for standard input is kept as given.
	 */
	if (!(d->source = path ? path_canonical(path) : strdup(source)))
		cli_die(AI_EX_OSERR, "cannot name '%s': %s", source, strerror(errno));
	buf_init(&in, ix->client ? ai_client_config(ix->client)->max_input : 32u << 20);
	if (path && stat(path, &sb) == 0) {
		d->mtime = (int64_t)sb.st_mtime;
		if (S_ISDIR(sb.st_mode)) {
			ai_errf(&d->err, AI_EX_NOINPUT, "is a directory: give files, or use find ... | %s --files-from -",
				cli_prog);
			goto failed;
		}
	}
	if (cli_read_document(arg, &in, &d->err))
		goto failed;
	d->len = in.len;
	d->text = buf_detach(&in, NULL);
	kb_hash(d->text, d->len, d->hash);
	if (!ix->o->force && ix->kb && kb_unchanged(ix->kb, ix->o->coll, d->source, d->hash, &same, &d->err))
		goto failed;
	if (same) {
		ix->unchanged++;
		report(ix, d, "unchanged");
		progress(ix, false);
		doc_free(d);
		return 0;
	}
	{
		struct chunk_opts co = { (size_t)ix->o->chunk_tokens, (size_t)ix->o->overlap,
					 is_markdown(d->source) };

		if (chunk_text(d->text, d->len, &co, &d->cl, &d->err))
			goto failed;
	}
	*ix->tail = d;
	ix->tail = &d->next;
	if (!ix->client || ix->bm25_only || ix->o->no_embed) {
		d->novec = true;
		d->queued = d->cl.n;
		flush_docs(ix, false);
		return 0;
	}
	return queue_chunks(ix, d, err);
failed:
	buf_release(&in);
	fail(ix, d->source, &d->err);
	report(ix, d, "failed");
	doc_free(d);
	return 0;
}

/* The names in FILE (or stdin), one a line; blank lines are skipped. */
static int add_files_from(struct ix *ix, const char *file, struct ai_err *err)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (!f)
		return ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", file, strerror(errno));
	while (!rc && !cli_interrupted && (n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (!strcmp(line, "-")) {
			ai_err_clear(err);
			cli_warn("'%s': '-' in a list of files is not standard input; skipped", file);
			continue;
		}
		rc = add_doc(ix, line, line, err);
	}
	if (!rc && ferror(f))
		rc = ai_errf(err, AI_EX_NOINPUT, "cannot read '%s': %s", file, strerror(errno));
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

static int print_doc(const struct kb_doc_info *d, void *ud)
{
	const struct cli *c = ud;

	if (c->json) {
		json_object *j = json_object_new_object();

		out_add(j, "source", json_object_new_string(d->source));
		out_add(j, "hash", json_object_new_string(d->hash ? d->hash : ""));
		out_add(j, "size", json_object_new_int64(d->size));
		out_add(j, "mtime", json_object_new_int64(d->mtime));
		out_add(j, "chunks", json_object_new_int64(d->chunks));
		out_add(j, "vectors", json_object_new_boolean(d->vectors));
		out_add(j, "indexed_at", json_object_new_int64(d->indexed_at));
		out_json_line(j);
		json_object_put(j);
	} else {
		char line[64];

		snprintf(line, sizeof(line), "%8lld %10lld %s ", (long long)d->chunks, (long long)d->size,
			 d->vectors ? "v" : "-");
		cli_puts(line, false);
		cli_puts(path_display(d->source), false);
		cli_puts("\n", false);
	}
	return 0;
}

/* --collections: kb_list with no collection gives one "document" per collection. */
static int print_collection(const struct kb_doc_info *d, void *ud)
{
	const struct cli *c = ud;

	if (c->json) {
		json_object *j = json_object_new_object();

		out_add(j, "collection", json_object_new_string(d->source));
		out_add(j, "chunks", json_object_new_int64(d->chunks));
		out_add(j, "bytes", json_object_new_int64(d->size));
		out_add(j, "vectors", json_object_new_boolean(d->vectors));
		out_add(j, "model", d->hash && *d->hash ? json_object_new_string(d->hash) : NULL);
		out_json_line(j);
		json_object_put(j);
	} else {
		cli_puts(d->source, false);
		cli_puts("\n", false);
	}
	return 0;
}

/*
 * --list and --stats of a collection that is not there exit 66 with the
 * words of ai-ask, rather than print an empty list or zeros that read as
 * "indexed, but nothing in it".
 */
static void need_collection(struct kb *kb, const char *coll)
{
	struct kb_stats s;
	struct ai_err err;
	bool exists;

	if (kb_stats(kb, coll, &s, &err))
		cli_die_err(&err);
	exists = s.exists;
	kb_stats_release(&s);
	if (!exists)
		cli_die(AI_EX_NOINPUT, "index '%s' has no collection '%s': build it with ai-index -c %s",
			kb_path(kb), coll, coll);
}

static void print_stats(struct kb *kb, const struct opts *o, const struct cli *c)
{
	struct kb_stats s;
	struct ai_err err;

	if (kb_stats(kb, o->coll, &s, &err))
		cli_die_err(&err);
	if (c->json) {
		json_object *j = json_object_new_object();

		out_add(j, "index", json_object_new_string(kb_path(kb)));
		out_add(j, "collection", json_object_new_string(o->coll));
		out_add(j, "documents", json_object_new_int64(s.documents));
		out_add(j, "chunks", json_object_new_int64(s.chunks));
		out_add(j, "bytes", json_object_new_int64(s.bytes));
		out_add(j, "vectors", json_object_new_int64(s.vectors));
		out_add(j, "model", s.model ? json_object_new_string(s.model) : NULL);
		out_add(j, "dim", json_object_new_int64((int64_t)s.dim));
		out_json_line(j);
		json_object_put(j);
	} else {
		struct buf b;

		buf_init(&b, 0);
		buf_addf(&b, "index:       %s\ncollection:  %s\ndocuments:   %lld\nchunks:      %lld\n"
			 "bytes:       %lld\nvectors:     %lld\n", kb_path(kb), o->coll, (long long)s.documents,
			 (long long)s.chunks, (long long)s.bytes, (long long)s.vectors);
		if (s.model)
			buf_addf(&b, "model:       %s (%zu dimensions)\n", s.model, s.dim);
		else
			buf_addstr(&b, "model:       none (BM25 only)\n");
		cli_write(b.data, b.len, false);
		buf_release(&b);
	}
	kb_stats_release(&s);
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { KB_DEFAULT_COLLECTION, NULL, NULL, NULL, NULL, 400, -1, 100, 4,
			  false, false, false, false, false, NULL, 0 };
	struct ai_config cfg;
	struct ai_client client;
	struct ai_err err;
	struct ix ix;
	int optind_, code = 0;
	bool online;

	cli_init(&c, "ai-index");
	c.usage = "[OPTION]... [FILE]...";
	c.summary = "Chunk, embed and store documents in the knowledge base for ai-ask.";
	c.opts = opts;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	if (o.overlap < 0)
		o.overlap = o.chunk_tokens * 15 / 100;
	if (o.overlap >= o.chunk_tokens)
		cli_usage_error("--overlap must be smaller than --chunk-tokens");
	if (o.source && (optind_ < argc || o.files_from))
		cli_usage_error("--source names standard input: give it without files or --files-from");
	ai_err_clear(&err);
	memset(&ix, 0, sizeof(ix));
	ix.o = &o;
	ix.c = &c;
	ix.tail = &ix.head;

	/* --list, --stats, --collections and --rm need no endpoint. */
	if (o.list || o.stats || o.collections || o.n_rm) {
		struct kb *kb;

		if (optind_ < argc || o.files_from || o.source)
			cli_usage_error("--list, --stats, --collections and --rm take no documents to index");
		if (kb_open(&kb, o.db, o.n_rm ? KB_WRITE : KB_READ, &err))
			cli_die_err(&err);
		for (size_t i = 0; i < o.n_rm; i++) {
			bool found;
			char *canon = path_canonical(o.rm[i]);

			/* Stored under its canonical path; a --source name or an older index: as given. */
			if (!canon)
				cli_die(AI_EX_OSERR, "cannot name '%s': %s", o.rm[i], strerror(errno));
			if (kb_remove(kb, o.coll, canon, &found, &err) ||
			    (!found && kb_remove(kb, o.coll, o.rm[i], &found, &err))) {
				free(canon);
				cli_die_err(&err);
			}
			free(canon);
			if (!found) {
				cli_warn("'%s' is not in collection '%s'", o.rm[i], o.coll);
				code = AI_EX_PARTIAL;
			} else if (!c.quiet && !c.json) {
				cli_warn("removed '%s'", o.rm[i]);
			}
		}
		if (o.collections && kb_list(kb, NULL, print_collection, &c, &err))
			cli_die_err(&err);
		if (o.list || o.stats)
			need_collection(kb, o.coll);
		if (o.list && kb_list(kb, o.coll, print_doc, &c, &err))
			cli_die_err(&err);
		if (o.stats)
			print_stats(kb, &o, &c);
		kb_close(kb);
		free(o.rm);
		return cli_finish(code);
	}

	if (setup_config(&cfg, &c, &err))
		cli_die_err(&err);
	online = (cfg.endpoint_set || cfg.dry_run) && !o.no_embed;
	config_release(&cfg);
	if (online) {
		setup_client_with(&c, &cfg, &client, &(struct ai_client_opts){ .parallel = (int)o.parallel }, &err);
		ix.client = &client;
		if (o.embed_model) {
			free(cfg.embed_model);
			if (!(cfg.embed_model = strdup(o.embed_model)))
				cli_die(AI_EX_OSERR, "out of memory");
		}
	} else {
		if (setup_config(&cfg, &c, &err))
			cli_die_err(&err);
		bm25_only(&ix, o.no_embed ? "--no-embed" : "no embeddings endpoint configured");
	}
	ix.dry_run = cfg.dry_run;
	ix.progress = !c.quiet && !c.json && isatty(2);
	termout_progress_init(&ix.prog);
	if (ix.dry_run) {
		struct stat sb;
		const char *p = o.db;
		char *def = p ? NULL : kb_default_path();

		if (def)
			p = def;
		if (p && stat(p, &sb) == 0 && kb_open(&ix.kb, p, KB_READ, &err))
			cli_die_err(&err);
		free(def);
	} else if (kb_open(&ix.kb, o.db, KB_WRITE, &err)) {
		cli_die_err(&err);
	}

	if (optind_ < argc) {
		for (int i = optind_; i < argc && !cli_interrupted && !code; i++)
			if (!strcmp(argv[i], "-"))
				cli_usage_error("read standard input with --source NAME, without other files");
			else if (add_doc(&ix, argv[i], argv[i], &err))
				code = -1;
	}
	if (!code && o.files_from && add_files_from(&ix, o.files_from, &err))
		code = -1;
	if (!code && optind_ == argc && !o.files_from) {
		if (!o.source)
			cli_usage_error("give files to index, --files-from FILE, or --source NAME to read standard input");
		if (add_doc(&ix, NULL, o.source, &err))
			code = -1;
	}
	if (!code && start_batch(&ix, &err))
		code = -1;
	if (!code && wait_room(&ix, true, &err))
		code = -1;
	if (cli_interrupted && !code) {
		code = -1;
		ai_errf(&err, AI_EX_INTERRUPT, "interrupted");
	}
	flush_docs(&ix, true);
	progress(&ix, true);
	if (ix.cur)
		batch_free(ix.cur);
	kb_close(ix.kb);
	if (code) {
		free(o.rm);
		if (ix.client)
			setup_die(&client, &cfg, &err);
		cli_die_err(&err);
	}
	if (!c.quiet && !c.json && !ix.progress && !ix.dry_run && (ix.indexed || ix.failed || ix.unchanged))
		cli_warn("%ld indexed (%ld chunk%s), %ld unchanged, %ld failed", ix.indexed, ix.chunks,
			 ix.chunks == 1 ? "" : "s", ix.unchanged, ix.failed);
	if (ix.failed)
		code = ix.indexed || ix.unchanged ? AI_EX_PARTIAL : ix.first_code;
	if (ix.client)
		ai_client_release(&client);
	config_release(&cfg);
	free(o.rm);
	return cli_finish(code);
}
