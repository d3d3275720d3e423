#ifndef AI_INGEST_H
#define AI_INGEST_H
/*
 * ingest.h - the write side of RAG: documents in, chunks and vectors into
 * the knowledge base (the engine of ai-index).
 *
 * Each document given is chunked, and its chunks join the current
 * embeddings request; full requests go out up to opts.parallel at a time.
 * A document is stored (one kb_put transaction) as soon as all its chunks
 * have their vectors, in the order the documents were given, so that a
 * killed run loses only the documents in flight.  A server that refuses
 * embeddings (400, 404, 501) turns the rest of the run into BM25 only, and says
 * so once through on_bm25_only.
 *
 * A server that refuses an input as too large (llama-server's 500 "input
 * is too large to process", OpenAI's and vLLM's "maximum context length",
 * see net/httperr.h) is not an error of the documents: the run halves its
 * chunk size, says so through on_fit, chunks the documents of that request
 * again and sends them again, and chunks every later document at the new
 * size.  Below INGEST_MIN_TOKENS it gives up, and those documents fail
 * with the server's words.
 *
 * The caller reads the documents (common/ never reads stdin) and hears of
 * each one's fate through on_doc; nothing here prints or exits.
 */
#include "ai.h"

struct ai_client;
struct kb;

/* The smallest chunk size halving goes down to (the least --chunk-tokens takes). */
#define INGEST_MIN_TOKENS 16

struct ingest_opts {
	const char *coll;               /* the collection written */
	size_t chunk_tokens, overlap;   /* chunk_opts' to start with (> 0); the overlap
					 * shrinks with the chunks, in proportion */
	size_t embed_batch;             /* texts per embeddings request, >= 1 */
	int parallel;                   /* embeddings requests in flight, >= 1 */
	const char *embed_model;        /* NULL: the client's configured embedding model */
	bool force;                     /* store documents even when unchanged */
	bool dry_run;                   /* store nothing (the client shows the requests) */
};

enum ingest_status {
	INGEST_INDEXED, INGEST_REPLACED, INGEST_UNCHANGED, INGEST_DRY_RUN, INGEST_FAILED
};

/* The running totals. */
struct ingest_counts {
	long indexed, replaced, unchanged, failed, chunks;
	int first_code;                 /* the exit code of the first failure, 0 without one */
};

/* What became of one document; everything borrowed for the duration of the call. */
struct ingest_report {
	const char *source;
	enum ingest_status status;
	size_t chunks;
	bool vectors;                   /* stored with vectors */
	const struct ai_err *err;       /* INGEST_FAILED: why */
	bool counted;                   /* INGEST_FAILED: counted as a failure; a document
					 * cut off in flight by an interrupt is not */
	const struct ingest_counts *counts;  /* the totals, this document counted */
};

struct ingest_events {
	void (*on_doc)(const struct ingest_report *r, void *ud);
	void (*on_bm25_only)(const char *why, void *ud);  /* once at most; may be NULL */
	/* The chunk size was halved to tokens because of why (the server's refusal);
	 * may be NULL.  Called from inside the run: it must not call back into it. */
	void (*on_fit)(size_t tokens, const struct ai_err *why, void *ud);
	void *ud;
};

struct ingest;                          /* opaque */

/*
 * Starts a run writing into kb (NULL: nothing is stored, as under
 * --dry-run without an index) with embeddings from client (NULL: BM25
 * only).  kb, client, opts and ev are borrowed for the life of the run.
 * *out is owned; end it with ingest_finish, then ingest_free.
 */
int ingest_init(struct ingest **out, struct kb *kb, struct ai_client *client,
		const struct ingest_opts *opts, const struct ingest_events *ev, struct ai_err *err);

/*
 * Adds one document, named source, of text[0..len) (consumed: owned by the
 * run from now on, freed with free()), modified at mtime (0: unknown).
 * An unchanged, unreadable or unchunkable document is reported and counted
 * here and returns 0; -1 is for a failure of the run itself (the
 * embeddings transport), with err filled.
 */
int ingest_add(struct ingest *ig, const char *source, char *text, size_t len, int64_t mtime,
	       struct ai_err *err);

/*
 * A document's text as rag/docload.h made it: text[0..len) (UTF-8, no NUL)
 * and, for a paged document (PDF), where each page starts (pages[i] is
 * the offset of page i + 1, ascending, pages[0] == 0); each page is then
 * chunked on its own and its chunks carry its number.  markdown: chunk
 * with Markdown headings as section titles.
 */
struct ingest_text {
	char *text;
	size_t len;
	size_t *pages;          /* NULL when not paged */
	size_t npages;
	bool markdown;
};

/*
 * ingest_add for a text that is not the file as it is: t's text and pages
 * are consumed (owned by the run, and t emptied, whatever is returned).
 * ingest_add(..., text, len, ...) is ingest_add_text with no pages and
 * markdown by the source's name (.md, .markdown, ...).
 */
int ingest_add_text(struct ingest *ig, const char *source, struct ingest_text *t, int64_t mtime,
		    struct ai_err *err);

/* Whether a document named name is chunked as Markdown (.md, .markdown, ...). */
bool ingest_is_markdown(const char *name);

/* Counts and reports a document the caller could not read (e->msg says why). */
void ingest_failed(struct ingest *ig, const char *source, const struct ai_err *e);

/*
 * Sends what is left and waits for every answer, storing the documents as
 * they complete.  -1 with err for a transport failure or an interrupt.
 */
int ingest_finish(struct ingest *ig, struct ai_err *err);

/*
 * Reports every document still in flight as failed (interrupted), fills
 * *totals (may be NULL) with the final counts and frees the run (NULL is
 * fine: *totals is then zeroed).
 */
void ingest_free(struct ingest *ig, struct ingest_counts *totals);

#endif
