#ifndef AI_KB_H
#define AI_KB_H
/*
 * kb.h - the knowledge base behind ai-index and ai-ask (and ai-agent's
 * search tool): one SQLite file holding collections of documents, their
 * chunks, an FTS5 index for BM25, and embedding vectors for similarity.
 *
 * Layout (schema 3; an index of schema 2 is read as it is and upgraded,
 * in place, when it is next opened for writing):
 *   collections  name, embedding model and dimension (set by the first
 *                vectors stored; later vectors must match)
 *   documents    source, content hash (BLAKE2b-256, hex), size, mtime
 *   chunks       document, sequence number, line range, page (a PDF's,
 *                1-based; 0 for a document without pages)
 *   chunks_fts   FTS5 (heading, text, coll UNINDEXED), rowid = chunk id;
 *                Porter stemming over unicode61
 *   vblocks      the vectors of one document, in blocks of up to KB_BLOCK
 *                vectors: where the block starts in the vector file
 *   meta         the id of the vector file
 * and beside it the vector file, PATH.vec: append-only blocks, each the
 * chunk ids (int64), int8 scales (float), int8 codes and float32 vectors
 * (dim each, L2-normalised, host order), so that a query reads one
 * collection's codes or vectors with a few large reads into one reused
 * buffer, and an int8 query reads a quarter of the bytes.  Blocks reach the
 * disk before the transaction naming them commits: a killed writer leaves
 * unreferenced bytes at the end of the file, never a row naming bytes that
 * are not there.  Replaced and removed documents leave their old blocks
 * unreferenced in the file (nothing compacts it yet).
 *
 * Concurrency: WAL, a busy timeout, and one BEGIN IMMEDIATE transaction per
 * document, so that several writers and any number of readers share a file
 * without errors, and a killed writer leaves every document either wholly
 * in or wholly out.
 *
 * Nothing here prints or exits, nor calls the network (rag/retrieve.h
 * embeds a question, then calls kb_search); every function returns 0 or
 * -1 with err filled.  A struct kb is not shared between threads.
 *
 * The store is three files over a private header (kb_int.h): kb.c the
 * schema, documents and chunks; kb_vecfile.c the vector file;
 * kb_search.c BM25, the vector scan and rank fusion.
 */
#include "ai.h"

#define KB_SCHEMA 3
#define KB_BLOCK 4096           /* most vectors in one stored block */
#define KB_DEFAULT_COLLECTION "default"

struct kb;                      /* opaque */

enum kb_mode {
	KB_READ,                /* the file must exist and be an index (ai-ask, ai-agent) */
	KB_WRITE                /* created (with its directory, 0700, file 0600) when missing */
};

/*
 * Opens the index at path, or at $XDG_DATA_HOME/ai/index.db when path is
 * NULL.  Errors: AI_EX_NOINPUT when KB_READ finds no file or an empty one
 * ("no index at '...': build one with ai-index"); AI_EX_DATAERR when the
 * file is not an SQLite database, is another program's database, or has
 * a schema newer than KB_SCHEMA or older than 2 (the message names both
 * versions; an older one must be rebuilt).  Schema 2 is upgraded to 3 by
 * KB_WRITE, and read as it is by KB_READ.  KB_WRITE creates the vector file with a new
 * index; both modes open it only when vectors are written or searched.
 * *out is owned; close with kb_close.
 */
int kb_open(struct kb **out, const char *path, enum kb_mode mode, struct ai_err *err);

/* Closes kb (NULL is fine). */
void kb_close(struct kb *kb);

/* The path kb was opened at; borrowed, valid until kb_close. */
const char *kb_path(const struct kb *kb);

/* Returns an owned copy of the default path (free with free()), or NULL when no HOME is known. */
char *kb_default_path(void);

/* ---- writing ------------------------------------------------------------ */

/* What is known of a document before it is stored. */
struct kb_doc {
	const char *source;     /* its name: a path, or --source NAME */
	const char *hash;       /* hex content hash, from kb_hash */
	int64_t size;           /* bytes */
	int64_t mtime;          /* seconds since the epoch; 0 when unknown (stdin) */
};

/* One chunk of a document, as the chunker made it. */
struct kb_chunk {
	const char *text;       /* borrowed; need not be NUL-terminated */
	size_t len;
	size_t line_start, line_end;
	const char *heading;    /* borrowed heading path, or NULL */
	size_t page;            /* 1-based page of a paged document (PDF), or 0 */
};

/* Fills hex (65 bytes) with the BLAKE2b-256 of p[0..n) in hex. */
void kb_hash(const void *p, size_t n, char hex[65]);

/*
 * Whether the collection already holds source with this hash: *same is set
 * true when it does (the caller then skips the document).  A missing
 * collection or source gives false.
 */
int kb_unchanged(struct kb *kb, const char *coll, const char *source, const char *hash,
		 bool *same, struct ai_err *err);

/*
 * Stores one document with its n chunks in one transaction, replacing any
 * document of the same source in the collection (created when missing).
 * vecs is NULL (BM25 only) or n vectors of dim floats, row-major, embedded
 * by model; they are checked (finite, non-zero), normalised and stored
 * with their int8 codes.  Refused with AI_EX_DATAERR and the store left
 * unchanged when a vector is not finite or zero, or model or dim differ
 * from the collection's (the message names both).  Busy databases are
 * waited for (up to a minute).  *replaced (may be NULL) says whether an
 * older version was replaced.
 */
int kb_put(struct kb *kb, const char *coll, const struct kb_doc *doc, const struct kb_chunk *chunks,
	   size_t n, const float *vecs, size_t dim, const char *model, bool *replaced,
	   struct ai_err *err);

/* Removes source from the collection, in one transaction; *found says whether it was there. */
int kb_remove(struct kb *kb, const char *coll, const char *source, bool *found, struct ai_err *err);

/* ---- reading ------------------------------------------------------------ */

struct kb_stats {
	char *model;            /* owned or NULL: the collection's embedding model */
	size_t dim;             /* 0 when the collection has no vectors */
	int64_t documents, chunks, bytes, vectors;
	bool exists;
};

/* Fills s for the collection (s->exists false when there is none). */
int kb_stats(struct kb *kb, const char *coll, struct kb_stats *s, struct ai_err *err);
void kb_stats_release(struct kb_stats *s);

/* One stored document, for --list. */
struct kb_doc_info {
	const char *source, *hash;  /* borrowed: valid during the callback only */
	int64_t size, mtime, chunks, indexed_at;
	bool vectors;
};

/*
 * Calls fn once per document of the collection, by source; a non-zero
 * return from fn stops the walk and is returned.  The collection names
 * can be listed with coll NULL: fn then gets one kb_doc_info per
 * collection with source the collection's name and chunks its chunk count.
 */
int kb_list(struct kb *kb, const char *coll, int (*fn)(const struct kb_doc_info *d, void *ud),
	    void *ud, struct ai_err *err);

/* ---- search ------------------------------------------------------------- */

struct kb_passage {
	int64_t id;             /* the chunk's id */
	char *source;           /* owned */
	size_t line_start, line_end;
	size_t page;            /* 1-based page of a PDF's chunk, 0 for a document without pages */
	char *heading;          /* owned or NULL */
	char *text;             /* owned */
	double score;           /* the fused score (weighted RRF; see kb_search) */
	double bm25;            /* SQLite's bm25() (lower is better), NAN when not in the BM25 list */
	double cosine;          /* NAN when not in the vector list */
	int bm25_rank, vec_rank;  /* 1-based, 0 when not in that list */
};

struct kb_results {
	struct kb_passage *v;   /* owned; free with kb_results_release */
	size_t n;
	bool hybrid;            /* vectors took part */
	char *note;             /* owned or NULL: why retrieval fell back to BM25 alone */
};

struct kb_query {
	const char *coll;       /* NULL: KB_DEFAULT_COLLECTION */
	const char *text;       /* the question */
	size_t k;               /* passages wanted (0: 5) */
	size_t candidates;      /* top-N of each list before fusion (0: max(50, 4k)) */
	/* The query's embedding (NULL: BM25 only), qdim floats, from qmodel
	 * (rag_retrieve embeds the question itself, with qmodel). */
	const float *qvec;
	size_t qdim;
	const char *qmodel;
	bool int8;              /* scan the int8 codes and rescore the best exactly */
	/* Vectors alone: leave BM25 out (to measure the scan).  rag_retrieve
	 * clears it when it falls back to BM25 for want of vectors. */
	bool no_bm25;
	/* Vector hits below this cosine are not relevant (0: 0.3; negative: keep all). */
	double min_cosine;
	/* The vector list's weight in the fusion, BM25's being 1 (0: KB_VEC_WEIGHT). */
	double vec_weight;
};

/*
 * The fusion's constants, chosen on tests/fixtures/rag-dev (Debian man
 * pages, questions whose answer page is known) with a weak, a middling
 * and a good embedding: the pair whose hybrid recall@5 fell least below
 * the better of BM25 and the vectors alone, on every embedding.
 */
#define KB_FUSION_K0 5
#define KB_VEC_WEIGHT 0.4

/*
 * The vectors' say in one query's fusion: their weight times the gate,
 * which is KB_VEC_GATE_MIN while the best vector hit stands no more than
 * KB_VEC_GATE_Z deviations above the top 50 (vec_top_zscore), rises in
 * a straight line to 1 one deviation further, and is 1 when there are
 * too few hits to tell.  A fixed weight could not be right on every
 * set: whichever one was chosen on dev, some held-out set and embedding
 * lost one or two questions to BM25, the noise of a weak embedding
 * breaking BM25's near-ties.  The gate lets a query's vectors reorder
 * BM25 only when they look like they know; at KB_VEC_GATE_MIN they can
 * no longer move anything into BM25's top 7, but still fill the list
 * when BM25 finds fewer than k passages.  KB_VEC_GATE_Z is the noise
 * level: the median z of test-embed-weak, an embedding that finds 3-10%
 * of the answers alone, is 2.75-2.81 on the three sets.
 */
#define KB_VEC_GATE_Z 3.0
#define KB_VEC_GATE_MIN 0.1

/*
 * Retrieves the k best passages for q: BM25 over FTS5 and (when q->qvec is
 * given and the collection has vectors) the vector scan, each its top-N,
 * fused by weighted reciprocal rank: a passage scores 1 / (k0 + its BM25
 * rank) plus w / (k0 + its vector rank), k0 KB_FUSION_K0 and w
 * q->vec_weight times the gate above.  With w below 1 the vectors reorder BM25's hits more than
 * they bring in their own, so weak embeddings cannot push BM25's answer
 * out of the top k (plain RRF, k0 60 and w 1, lost a third of BM25's
 * hits with a weak embedding on the development set), while a good one
 * still lifts recall above BM25's.  Refuses (AI_EX_DATAERR, naming both)
 * a query embedded by another model or of another dimension than the
 * collection's.  A collection that does not exist gives AI_EX_NOINPUT.
 * A vector file that is missing, cut short or another index's gives
 * AI_EX_DATAERR, naming the file and saying to build the index again.
 * No match gives n 0, not an error.  out is overwritten; release it.
 */
int kb_search(struct kb *kb, const struct kb_query *q, struct kb_results *out, struct ai_err *err);

void kb_results_release(struct kb_results *r);

/* ---- what was learned ---------------------------------------------------- */

/*
 * The largest chunk, in tokens, that the collection's embeddings server
 * was found to take (ai-index halves its chunks when the server refuses
 * one as too large, and keeps the size for the next run): *tokens is 0
 * when nothing was learned.
 */
int kb_embed_limit(struct kb *kb, const char *coll, size_t *tokens, struct ai_err *err);
/* Records it (KB_WRITE). */
int kb_set_embed_limit(struct kb *kb, const char *coll, size_t tokens, struct ai_err *err);

#endif
