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
#include "lib/cli.h"
#include "rag/docload.h"
#include "rag/ingest.h"
#include "rag/kb.h"
#include "path.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"

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
	{ "chunk-tokens", required_argument, OPT_CHUNK_TOKENS, "N", "aim for chunks of N tokens (default 400, or the size the collection's server was found to take)" },
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
	bool chunk_given;       /* --chunk-tokens: not the size learned of the server */
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
	case OPT_CHUNK_TOKENS:
		o->chunk_tokens = cli_long("--chunk-tokens", arg, INGEST_MIN_TOKENS, 100000);
		o->chunk_given = true;
		break;
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

/* What main shares with the callbacks. */
struct run {
	const struct cli *c;
	struct ingest *ig;
	size_t max_input;
	bool progress;
	struct termout_progress prog;
	struct kb *kb;          /* where what is learned of the server is kept; NULL: nowhere */
	const char *coll;
	struct docload_opts dl; /* PDF, HTML and the configuration's loaders */
};

static void progress(struct run *r, const struct ingest_counts *n, bool last)
{
	if (!r->progress)
		return;
	termout_progress(&r->prog, last, "%ld indexed, %ld unchanged, %ld failed, %ld chunks",
			 n->indexed, n->unchanged, n->failed, n->chunks);
}

/* A warning for a failed document, one JSON line (--json) per document, the progress line. */
static void on_doc(const struct ingest_report *d, void *ud)
{
	static const char *const status[] = {
		[INGEST_INDEXED] = "indexed", [INGEST_REPLACED] = "replaced",
		[INGEST_UNCHANGED] = "unchanged", [INGEST_DRY_RUN] = "dry-run", [INGEST_FAILED] = "failed"
	};
	struct run *r = ud;

	if (d->counted)
		cli_warn("'%s': %s", path_display(d->source), d->err->msg);
	if (r->c->json) {
		json_object *j = json_object_new_object();

		out_add(j, "source", json_object_new_string(d->source));
		out_add(j, "status", json_object_new_string(status[d->status]));
		out_add(j, "chunks", json_object_new_int64((int64_t)d->chunks));
		out_add(j, "vectors", json_object_new_boolean(d->vectors));
		if (d->status == INGEST_FAILED)
			out_add(j, "error", json_object_new_string(d->err->msg));
		out_json_line(j);
		json_object_put(j);
	}
	progress(r, d->counts, false);
}

static void on_bm25_only(const char *why, void *ud)
{
	const struct run *r = ud;

	if (!r->c->quiet)
		cli_warn("%s: indexing for BM25 only (keyword search, no vectors)", why);
}

/*
 * The server refused a chunk as too large: the run goes on in smaller ones,
 * and the collection keeps the size for the next run (--chunk-tokens
 * still overrides it).
 */
static void on_fit(size_t tokens, const struct ai_err *why, void *ud)
{
	const struct run *r = ud;
	struct ai_err err;

	if (!r->c->quiet)
		cli_warn("%s: chunks of at most %zu tokens from now on", why->msg, tokens);
	if (r->kb && kb_set_embed_limit(r->kb, r->coll, tokens, &err))
		cli_warn("cannot keep the chunk size for the next run: %s", err.msg);
}

/*
 * Chunks as large as the collection's server was found to take, unless
 * --chunk-tokens says otherwise; the overlap shrinks in proportion.
 */
static void learned_size(struct kb *kb, struct opts *o)
{
	struct ai_err err;
	size_t lim;

	if (!kb || o->chunk_given)
		return;
	if (kb_embed_limit(kb, o->coll, &lim, &err))
		cli_die_err(&err);
	if (lim >= INGEST_MIN_TOKENS && lim < (size_t)o->chunk_tokens) {
		o->overlap = o->overlap * (long)lim / o->chunk_tokens;
		o->chunk_tokens = (long)lim;
	}
}

/* Reads one document (path NULL: stdin, named source) and hands it to the run. */
static int add_doc(struct run *r, const char *path, const char *source, struct ai_err *err)
{
	struct buf in;
	struct stat sb;
	struct ai_err e;
	int64_t mtime = 0;
	struct ingest_text t = { NULL, 0, NULL, 0, false };
	enum doc_kind kind = DOC_TEXT;
	const char *cmd = NULL;
	int rc;
	/*
	 * A file is stored under its canonical path, so that notes/keys.md,
	 * ./keys.md and its absolute path are one document; a --source name
	 * for standard input is kept as given.
	 */
	char *name = path ? path_canonical(path) : strdup(source);

	if (!name)
		cli_die(AI_EX_OSERR, "cannot name '%s': %s", source, strerror(errno));
	ai_err_clear(&e);
	buf_init(&in, r->max_input);
	if (path && stat(path, &sb) == 0) {
		mtime = (int64_t)sb.st_mtime;
		if (S_ISDIR(sb.st_mode))
			ai_errf(&e, AI_EX_NOINPUT, "is a directory: give files, or use find ... | %s --files-from -",
				cli_prog);
	}
	if (!e.msg[0] && path)
		docload_sniff(path, &r->dl, &kind, &cmd, &e);
	if (!e.msg[0] && (!path || kind == DOC_TEXT))
		cli_read_document(path ? path : "-", &in, &e);
	/*
	 * Standard input has passed as text: of the other kinds only HTML is
	 * text too (a PDF's bytes would have been refused, with what to do).
	 */
	if (!e.msg[0] && !path && docload_kind(source, in.data, in.len, &r->dl, NULL) == DOC_HTML)
		docload_html(source, in.data ? in.data : "", in.len, &t, &e);
	else if (!e.msg[0] && path && kind != DOC_TEXT)
		/* The canonical path, absolute: a name starting with '-' is no option to a loader. */
		docload_file(name, kind, cmd, &r->dl, &t, &e);
	if (e.msg[0]) {
		buf_release(&in);
		ingest_failed(r->ig, name, &e);
		free(name);
		return 0;
	}
	if (!t.text) {
		t.markdown = ingest_is_markdown(name);
		if (!(t.text = buf_detach(&in, &t.len)))
			cli_die(AI_EX_OSERR, "out of memory");
	}
	buf_release(&in);
	rc = ingest_add_text(r->ig, name, &t, mtime, err);
	free(name);
	return rc;
}

/* The names in FILE (or stdin), one a line; blank lines are skipped. */
static int add_files_from(struct run *r, const char *file, struct ai_err *err)
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
		rc = add_doc(r, line, line, err);
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

/* --list, --stats, --collections and --rm: the index alone, no endpoint. */
static int manage(const struct opts *o, const struct cli *c)
{
	struct ai_err err;
	struct kb *kb;
	int code = 0;

	if (kb_open(&kb, o->db, o->n_rm ? KB_WRITE : KB_READ, &err))
		cli_die_err(&err);
	for (size_t i = 0; i < o->n_rm; i++) {
		bool found;
		char *canon = path_canonical(o->rm[i]);

		/* Stored under its canonical path; a --source name or an older index: as given. */
		if (!canon)
			cli_die(AI_EX_OSERR, "cannot name '%s': %s", o->rm[i], strerror(errno));
		if (kb_remove(kb, o->coll, canon, &found, &err) ||
		    (!found && kb_remove(kb, o->coll, o->rm[i], &found, &err)))
			cli_die_err(&err);
		free(canon);
		if (!found) {
			cli_warn("'%s' is not in collection '%s'", o->rm[i], o->coll);
			code = AI_EX_PARTIAL;
		} else if (!c->quiet && !c->json) {
			cli_warn("removed '%s'", o->rm[i]);
		}
	}
	if (o->collections && kb_list(kb, NULL, print_collection, (void *)c, &err))
		cli_die_err(&err);
	if (o->list || o->stats)
		need_collection(kb, o->coll);
	if (o->list && kb_list(kb, o->coll, print_doc, (void *)c, &err))
		cli_die_err(&err);
	if (o->stats)
		print_stats(kb, o, c);
	kb_close(kb);
	return code;
}

/* The index to write, or under --dry-run the one there is (NULL: none yet). */
static struct kb *open_index(const char *db, bool dry_run)
{
	struct ai_err err;
	struct kb *kb = NULL;
	struct stat sb;
	char *def = db ? NULL : kb_default_path();
	const char *p = def ? def : db;

	if (dry_run ? p && stat(p, &sb) == 0 && kb_open(&kb, p, KB_READ, &err)
		    : kb_open(&kb, db, KB_WRITE, &err))
		cli_die_err(&err);
	free(def);
	return kb;
}

/* Every document named: arguments, --files-from, or standard input as --source. */
static int add_all(struct run *r, const struct opts *o, int argc, char **argv, int optind_,
		   struct ai_err *err)
{
	for (int i = optind_; i < argc && !cli_interrupted; i++)
		if (!strcmp(argv[i], "-"))
			cli_usage_error("read standard input with --source NAME, without other files");
		else if (add_doc(r, argv[i], argv[i], err))
			return -1;
	if (o->files_from && add_files_from(r, o->files_from, err))
		return -1;
	if (optind_ == argc && !o->files_from) {
		if (!o->source)
			cli_usage_error("give files to index, --files-from FILE, or --source NAME to read standard input");
		return add_doc(r, NULL, o->source, err);
	}
	return 0;
}

static void check_opts(struct opts *o, bool files)
{
	if (o->overlap < 0)
		o->overlap = o->chunk_tokens * 15 / 100;
	if (o->overlap >= o->chunk_tokens)
		cli_usage_error("--overlap must be smaller than --chunk-tokens");
	if (o->source && (files || o->files_from))
		cli_usage_error("--source names standard input: give it without files or --files-from");
	if ((o->list || o->stats || o->collections || o->n_rm) && (files || o->files_from || o->source))
		cli_usage_error("--list, --stats, --collections and --rm take no documents to index");
}

/* The last line without --json or a progress line: what the run did. */
static void summary(const struct ingest_counts *n)
{
	if (n->indexed || n->failed || n->unchanged)
		cli_warn("%ld indexed (%ld chunk%s), %ld unchanged, %ld failed", n->indexed, n->chunks,
			 n->chunks == 1 ? "" : "s", n->unchanged, n->failed);
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { KB_DEFAULT_COLLECTION, NULL, NULL, NULL, NULL, 400, -1, 100, 4,
			  false, false, false, false, false, NULL, 0, false };
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_err err;
	struct ingest_opts io;
	struct ingest_events ev = { on_doc, on_bm25_only, on_fit, NULL };
	struct run r = { &c, NULL, 32u << 20, false, { 0 }, NULL, NULL, { NULL, 0, 0, NULL } };
	struct ingest_counts n;
	struct kb *kb;
	int optind_, code = 0;
	bool online;

	cli_init(&c, "ai-index");
	c.usage = "[OPTION]... [FILE]...";
	c.summary = "Chunk, embed and store documents in the knowledge base for ai-ask.";
	c.opts = opts;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	check_opts(&o, optind_ < argc);
	if (o.list || o.stats || o.collections || o.n_rm) {
		code = manage(&o, &c);
		free(o.rm);
		return cli_finish(code);
	}

	ai_err_clear(&err);
	online = setup_client_if(&c, &cfg, &client, !o.no_embed,
				 &(struct ai_client_opts){ .parallel = (int)o.parallel }, &err);
	if (online) {
		r.max_input = cfg.max_input;
	} else if (!c.quiet) {
		cli_warn("%s: indexing for BM25 only (keyword search, no vectors)",
			 o.no_embed ? "--no-embed" : "no embeddings endpoint configured");
	}
	kb = open_index(o.db, cfg.dry_run);
	learned_size(kb, &o);
	io = (struct ingest_opts){ o.coll, (size_t)o.chunk_tokens, (size_t)o.overlap, (size_t)o.embed_batch,
				   (int)o.parallel, o.embed_model, o.force, cfg.dry_run };
	ev.ud = &r;
	r.kb = cfg.dry_run ? NULL : kb;
	r.coll = o.coll;
	r.progress = !c.quiet && !c.json && isatty(2);
	r.dl.loaders = cfg.loaders;
	r.dl.timeout_ms = (long)(cfg.loader_timeout_s * 1000);
	r.dl.max_output = r.max_input;
	r.dl.cancel = &cli_interrupted;
	/*
	 * Without embeddings there is no client to hold SIGTERM (setup.c), but
	 * the loaders are children to kill and the index is written in
	 * transactions: the loop below stops on the flag, and what was indexed
	 * is kept.
	 */
	cli_defer_signals(true);
	termout_progress_init(&r.prog);
	if (ingest_init(&r.ig, kb, online ? client : NULL, &io, &ev, &err))
		cli_die_err(&err);

	if (add_all(&r, &o, argc, argv, optind_, &err) || ingest_finish(r.ig, &err))
		code = -1;
	else if (cli_interrupted)
		code = ai_errf(&err, AI_EX_INTERRUPT, "interrupted");
	ingest_free(r.ig, &n);
	progress(&r, &n, true);
	kb_close(kb);
	free(o.rm);
	if (code && online)
		setup_die(client, &cfg, &err);
	if (code)
		cli_die_err(&err);
	if (!c.quiet && !c.json && !r.progress && !cfg.dry_run)
		summary(&n);
	if (n.failed)
		code = n.indexed || n.unchanged ? AI_EX_PARTIAL : n.first_code;
	if (online)
		ai_client_release(client);
	config_release(&cfg);
	return cli_finish(code);
}
