#ifndef AI_KB_INT_H
#define AI_KB_INT_H
/*
 * kb_int.h - private to the knowledge-base store: what its three files
 * share.  kb.c is the schema, the documents and their chunks; kb_vecfile.c
 * the vector file's format; kb_search.c BM25, the vector scan and their
 * fusion.  Nothing outside common/rag/kb*.c includes this.
 */
#include "rag/kb.h"

#include <sqlite3.h>

#define KB_BUSY_MS 60000        /* how long a busy database is waited for */

struct kb {
	sqlite3 *db;
	char *path;
	char *vpath;            /* path + ".vec" */
	int vfd;                /* the vector file, opened on first use; -1 before */
	bool vwrite;            /* vfd is open for writing */
	bool nopage;            /* schema 2, opened to read: chunks have no page column */
};

/* One stored block of vectors, as vblocks names it. */
struct kb_block {
	int64_t off;            /* of its header in the vector file */
	size_t count, dim;
};

/* ---- SQLite helpers and collections (kb.c) ---- */

/* Retried on SQLITE_BUSY within KB_BUSY_MS (see sqlretry.h). */
int kb_exec_retry(struct kb *kb, const char *sql);

int kb_query_int(struct kb *kb, const char *sql, long long *v);

int kb_db_err(struct kb *kb, int rc, const char *what, struct ai_err *err);

/* Prepares sql or fills err. */
sqlite3_stmt *kb_prep(struct kb *kb, const char *sql, struct ai_err *err);

/* Steps a statement that returns no row (or whose rows are ignored), retried on BUSY. */
int kb_step_done(sqlite3_stmt *st);

/* The collection's id, or 0 when there is none. */
int kb_coll_id(struct kb *kb, const char *coll, int64_t *id, char **model, size_t *dim,
	       struct ai_err *err);

/* ---- the vector file (kb_vecfile.c) ---- */

/*
 * Creates the vector file of a new index (inside create_schema's
 * transaction): truncated, a header with a new random id, that id in the
 * meta table.
 */
int kb_vec_create(struct kb *kb, struct ai_err *err);

/*
 * Opens the vector file on first use (for appending when write), and
 * checks that it belongs to this index.  Call inside a transaction.
 */
int kb_vec_open(struct kb *kb, bool write, struct ai_err *err);

/*
 * Appends the vectors of doc to the vector file in blocks of up to
 * KB_BLOCK, float32 and int8, and names them in vblocks (inside kb_put's
 * transaction).  The bytes reach the disk (fdatasync) before the rows that
 * name them can commit, so a killed or crashed writer leaves at worst
 * unreferenced bytes at the end of the file, never a row naming bytes
 * that are not there.  The flock keeps appenders apart even outside
 * SQLite's write lock.
 */
int kb_put_blocks(struct kb *kb, int64_t coll, int64_t doc, const int64_t *ids, const float *v,
		  size_t n, size_t dim, struct ai_err *err);

/* The collection's vector blocks, in file order. */
int kb_list_blocks(struct kb *kb, int64_t coll, struct kb_block **out, size_t *n, struct ai_err *err);

/* Offsets within a block of m vectors of dim, from its header. */
size_t kb_ids_at(void);

size_t kb_codes_at(size_t m);

size_t kb_f32_at(size_t m, size_t dim);

/* Reads n bytes at off into p, or fills err: a short file is a damaged one. */
int kb_vread(struct kb *kb, void *p, size_t n, int64_t off, struct ai_err *err);

/*
 * Reads block b's header and first part (the header and ids, plus the
 * scales when scales is not NULL) and checks the header against b.
 */
int kb_read_head(struct kb *kb, const struct kb_block *b, size_t dim, int64_t *ids, float *scales,
		 char *tmp, struct ai_err *err);

#endif
