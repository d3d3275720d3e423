/*
 * kb.c - the knowledge-base store: the schema, opening and checking an
 * index, documents and their chunks (see kb.h for the layout).  The vector
 * file is kb_vecfile.c's, search kb_search.c's.
 */
#include "rag/kb_int.h"
#include "buf.h"
#include "config.h"
#include "sqlretry.h"
#include "rag/vec.h"

#include <math.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#define KB_APP_ID 0x61696b62    /* "aikb": tells our files from other SQLite files */

static const char schema_sql[] =
	"CREATE TABLE collections(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, model TEXT,"
	" dim INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
	"CREATE TABLE documents(id INTEGER PRIMARY KEY, coll INTEGER NOT NULL, source TEXT NOT NULL,"
	" hash TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, chunks INTEGER NOT NULL,"
	" vectors INTEGER NOT NULL, indexed_at INTEGER NOT NULL, UNIQUE(coll, source));"
	"CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" line_start INTEGER NOT NULL, line_end INTEGER NOT NULL, page INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX chunks_doc ON chunks(doc);"
	"CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, coll UNINDEXED,"
	" tokenize = 'porter unicode61 remove_diacritics 2');"
	"CREATE TABLE vblocks(id INTEGER PRIMARY KEY, coll INTEGER NOT NULL, doc INTEGER NOT NULL,"
	" count INTEGER NOT NULL, dim INTEGER NOT NULL, off INTEGER NOT NULL);"
	"CREATE INDEX vblocks_coll ON vblocks(coll, off);"
	"CREATE INDEX vblocks_doc ON vblocks(doc);"
	"CREATE INDEX vblocks_off ON vblocks(off);"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"PRAGMA application_id = 1634298722;"
	"PRAGMA user_version = 3;";

/*
 * Schema 2 to 3: the page of a chunk (a PDF's; 0 for a document without
 * pages), a column whose default is right for every chunk stored before.
 */
static const char migrate2_sql[] =
	"ALTER TABLE chunks ADD COLUMN page INTEGER NOT NULL DEFAULT 0;"
	"PRAGMA user_version = 3;";

/* ---- SQLite helpers ----------------------------------------------------- */

/* Retried on SQLITE_BUSY within KB_BUSY_MS (see sqlretry.h). */
int kb_exec_retry(struct kb *kb, const char *sql)
{
	return sqlretry_exec(kb->db, sql, KB_BUSY_MS);
}

int kb_query_int(struct kb *kb, const char *sql, long long *v)
{
	return sqlretry_query_int(kb->db, sql, v, KB_BUSY_MS);
}

int kb_db_err(struct kb *kb, int rc, const char *what, struct ai_err *err)
{
	int code = AI_EX_SOFTWARE;

	switch (rc & 0xff) {
	case SQLITE_NOTADB:
		return ai_errf(err, AI_EX_DATAERR, "'%s' is not an ai-index database: give another --db",
			       kb->path);
	case SQLITE_CORRUPT:
		return ai_errf(err, AI_EX_DATAERR, "index '%s' is damaged: rebuild it with ai-index",
			       kb->path);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = AI_EX_TEMPFAIL;
		break;
	case SQLITE_NOMEM:
		code = AI_EX_OSERR;
		break;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_READONLY:
		code = AI_EX_NOINPUT;
		break;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		code = AI_EX_IOERR;
		break;
	}
	return ai_errf(err, code, "cannot %s index '%s': %s", what, kb->path,
		       kb->db ? sqlite3_errmsg(kb->db) : sqlite3_errstr(rc));
}

/* Prepares sql or fills err. */
sqlite3_stmt *kb_prep(struct kb *kb, const char *sql, struct ai_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(kb->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		kb_db_err(kb, rc, "read", err);
		return NULL;
	}
	return st;
}

/* Steps a statement that returns no row (or whose rows are ignored), retried on BUSY. */
int kb_step_done(sqlite3_stmt *st)
{
	struct sqlretry retry;
	int rc;

	sqlretry_init(&retry, KB_BUSY_MS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	while (rc != SQLITE_DONE && sqlretry_again(&retry, rc)) {
		sqlite3_reset(st);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- open --------------------------------------------------------------- */

char *kb_default_path(void)
{
	return config_xdg_path("DATA", "index.db");
}

const char *kb_path(const struct kb *kb)
{
	return kb->path;
}

static int newer_schema(struct kb *kb, long long v, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR,
		       "index '%s' has schema %lld, newer than this ai-tools reads (%d): upgrade ai-tools",
		       kb->path, v, KB_SCHEMA);
}

static int older_schema(struct kb *kb, long long v, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR,
		       "index '%s' has schema %lld, older than this ai-tools reads (%d): remove it and "
		       "build it again with ai-index", kb->path, v, KB_SCHEMA);
}

static int not_ours(struct kb *kb, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR,
		       "'%s' is an SQLite database but not an ai-index database: give another --db",
		       kb->path);
}

/* Sets WAL, then creates the schema when the file is empty (several processes may race here). */
static int create_schema(struct kb *kb, struct ai_err *err)
{
	long long v = 0, app = 0, tables = 0;
	int rc;

	/*
	 * Only a new, empty file takes this.  The vectors live in the vector
	 * file; 16 KiB pages suit FTS5's segment blobs and chunk texts.
	 */
	sqlite3_exec(kb->db, "PRAGMA page_size = 16384", NULL, NULL, NULL);
	rc = sqlretry_wal(kb->db, KB_BUSY_MS);
	if (rc != SQLITE_OK)
		return kb_db_err(kb, rc, "set up", err);
	if ((rc = kb_exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK)
		return kb_db_err(kb, rc, "set up", err);
	rc = kb_query_int(kb, "PRAGMA user_version", &v);
	if (rc == SQLITE_OK)
		rc = kb_query_int(kb, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = kb_query_int(kb, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		goto fail;
	if (tables > 0 && app != KB_APP_ID) {
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		return not_ours(kb, err);
	}
	if (tables > 0 && v == 2 && (rc = sqlite3_exec(kb->db, migrate2_sql, NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	if (tables > 0 && v == 2)
		v = KB_SCHEMA;
	if (v > KB_SCHEMA || (tables > 0 && v < KB_SCHEMA)) {
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		return v > KB_SCHEMA ? newer_schema(kb, v, err) : older_schema(kb, v, err);
	}
	if (tables == 0 && (rc = sqlite3_exec(kb->db, schema_sql, NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	if (tables == 0 && (rc = sqlite3_exec(kb->db, "INSERT INTO chunks_fts(chunks_fts, rank)"
					      " VALUES ('rank', 'bm25(2.0, 1.0)')", NULL, NULL, NULL)) != SQLITE_OK)
		goto fail;
	/* Still inside the transaction: a process killed before COMMIT leaves an
	 * empty file that the next one sets up again, vector file and all. */
	if (tables == 0 && kb_vec_create(kb, err)) {
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if ((rc = kb_exec_retry(kb, "COMMIT")) == SQLITE_OK)
		return 0;
fail:
	kb_db_err(kb, rc, "set up", err);
	if (!sqlite3_get_autocommit(kb->db))
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * The checks of a file opened for reading: ours, not newer, not empty.
 * The three figures come from one statement, so from one snapshot: read
 * one by one, a writer creating the schema meanwhile could show tables
 * but no application id yet, and a good index be called another's.
 */
static int check_read(struct kb *kb, struct ai_err *err)
{
	long long f[3] = { 0, 0, 0 };
	int rc = sqlretry_query_ints(kb->db, "SELECT (SELECT user_version FROM pragma_user_version),"
				     " (SELECT application_id FROM pragma_application_id),"
				     " (SELECT count(*) FROM sqlite_master)", f, 3, KB_BUSY_MS);
	long long v = f[0], app = f[1], tables = f[2];

	if (rc != SQLITE_OK)
		return kb_db_err(kb, rc, "open", err);
	if (tables == 0)
		return ai_errf(err, AI_EX_NOINPUT, "no index at '%s': build one with ai-index", kb->path);
	if (app != KB_APP_ID)
		return not_ours(kb, err);
	if (v > KB_SCHEMA)
		return newer_schema(kb, v, err);
	/* Schema 2 is read as it is (its chunks have no page), and upgraded by the next write. */
	kb->nopage = v == 2;
	if (v < 2)
		return older_schema(kb, v, err);
	return 0;
}

int kb_open(struct kb **out, const char *path, enum kb_mode mode, struct ai_err *err)
{
	struct kb *kb = calloc(1, sizeof(*kb));
	int rc;

	*out = NULL;
	if (!kb)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	kb->vfd = -1;
	kb->path = path ? strdup(path) : kb_default_path();
	if (!kb->path) {
		free(kb);
		return path ? ai_errf(err, AI_EX_OSERR, "out of memory")
			    : ai_errf(err, AI_EX_CONFIG, "no HOME: give the index with --db FILE");
	}
	{
		size_t n = strlen(kb->path);

		if (!(kb->vpath = malloc(n + 5))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto fail;
		}
		memcpy(kb->vpath, kb->path, n);
		memcpy(kb->vpath + n, ".vec", 5);
	}
	if (mode == KB_READ) {
		struct stat sb;

		if (stat(kb->path, &sb) != 0) {
			ai_errf(err, AI_EX_NOINPUT, errno == ENOENT ? "no index at '%s': build one with ai-index"
				: "cannot open index '%s': %s", kb->path, strerror(errno));
			goto fail;
		}
		if (!S_ISREG(sb.st_mode)) {
			ai_errf(err, AI_EX_NOINPUT, "index '%s' is not a regular file", kb->path);
			goto fail;
		}
	} else {
		char *dir = strdup(kb->path), *slash;
		int r = 0;

		if (!dir) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto fail;
		}
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			r = config_mkdirs(dir, 0700, err);
		}
		free(dir);
		if (r)
			goto fail;
	}
	rc = sqlite3_open_v2(kb->path, &kb->db,
			     SQLITE_OPEN_READWRITE | (mode == KB_WRITE ? SQLITE_OPEN_CREATE : 0), NULL);
	if (rc != SQLITE_OK) {
		kb_db_err(kb, rc, "open", err);
		goto fail;
	}
	if (mode == KB_WRITE)
		chmod(kb->path, 0600);
	sqlite3_busy_timeout(kb->db, KB_BUSY_MS);
	sqlite3_extended_result_codes(kb->db, 1);
	if (mode == KB_WRITE) {
		if (create_schema(kb, err))
			goto fail;
		if ((rc = kb_exec_retry(kb, "PRAGMA synchronous = NORMAL")) != SQLITE_OK) {
			kb_db_err(kb, rc, "set up", err);
			goto fail;
		}
	} else if (check_read(kb, err)) {
		goto fail;
	}
	*out = kb;
	return 0;
fail:
	kb_close(kb);
	return -1;
}

void kb_close(struct kb *kb)
{
	if (!kb)
		return;
	sqlite3_close_v2(kb->db);
	if (kb->vfd >= 0)
		close(kb->vfd);
	free(kb->path);
	free(kb->vpath);
	free(kb);
}

/* ---- writing ------------------------------------------------------------ */

void kb_hash(const void *p, size_t n, char hex[65])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), p, n, NULL, 0);
	sodium_bin2hex(hex, 65, h, sizeof(h));
}

/* The collection's id, or 0 when there is none. */
int kb_coll_id(struct kb *kb, const char *coll, int64_t *id, char **model, size_t *dim,
	       struct ai_err *err)
{
	sqlite3_stmt *st = kb_prep(kb, "SELECT id, model, dim FROM collections WHERE name = ?1", err);
	struct sqlretry retry;
	int rc;

	sqlretry_init(&retry, KB_BUSY_MS);
	*id = 0;
	if (model)
		*model = NULL;
	if (dim)
		*dim = 0;
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, coll ? coll : KB_DEFAULT_COLLECTION, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE && sqlretry_again(&retry, rc))
		sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		if (model && sqlite3_column_text(st, 1) &&
		    !(*model = strdup((const char *)sqlite3_column_text(st, 1))))
			rc = SQLITE_NOMEM;
		if (dim)
			*dim = (size_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return kb_db_err(kb, rc, "read", err);
	return 0;
}

int kb_unchanged(struct kb *kb, const char *coll, const char *source, const char *hash,
		 bool *same, struct ai_err *err)
{
	sqlite3_stmt *st = kb_prep(kb, "SELECT d.hash FROM documents d JOIN collections c ON c.id = d.coll"
				" WHERE c.name = ?1 AND d.source = ?2", err);
	struct sqlretry retry;
	int rc;

	sqlretry_init(&retry, KB_BUSY_MS);
	*same = false;
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, coll ? coll : KB_DEFAULT_COLLECTION, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) != SQLITE_ROW && rc != SQLITE_DONE && sqlretry_again(&retry, rc))
		sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		*same = sqlite3_column_text(st, 0) && !strcmp((const char *)sqlite3_column_text(st, 0), hash);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return kb_db_err(kb, rc, "read", err);
	return 0;
}

/* Deletes document doc with its chunks, text and vectors (inside a transaction). */
static int delete_doc(struct kb *kb, int64_t doc)
{
	static const char *const sql[] = {
		"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE doc = ?1)",
		"DELETE FROM chunks WHERE doc = ?1",
		"DELETE FROM vblocks WHERE doc = ?1",
		"DELETE FROM documents WHERE id = ?1",
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(sql); i++) {
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(kb->db, sql[i], -1, &st, NULL);

		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(st, 1, doc);
		rc = kb_step_done(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/* Checks and normalises the n vectors into an owned copy; NULL with err on bad input. */
static float *checked_vectors(const float *vecs, size_t n, size_t dim, struct ai_err *err)
{
	float *v;

	if (!dim || n > SIZE_MAX / dim / sizeof(float)) {
		ai_errf(err, AI_EX_DATAERR, "embeddings of dimension %zu cannot be stored", dim);
		return NULL;
	}
	if (!(v = malloc(n * dim * sizeof(float) + 1))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	memcpy(v, vecs, n * dim * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		float *x = v + i * dim;
		double norm = 0;

		if (!vec_finite(x, dim)) {
			ai_errf(err, AI_EX_DATAERR, "embedding %zu holds NaN or infinity", i + 1);
			free(v);
			return NULL;
		}
		for (size_t j = 0; j < dim; j++)
			norm += (double)x[j] * x[j];
		if (!(norm > 0) || !isfinite(norm)) {
			ai_errf(err, AI_EX_DATAERR, "embedding %zu is a zero vector", i + 1);
			free(v);
			return NULL;
		}
		vec_normalize(x, dim);
	}
	return v;
}

/* Finds or creates the collection, and checks (or sets) its model and dimension. */
static int put_coll(struct kb *kb, const char *name, const char *model, size_t dim, int64_t *id,
		    struct ai_err *err)
{
	char *have = NULL;
	size_t hdim = 0;
	sqlite3_stmt *st;
	int rc;

	if (kb_coll_id(kb, name, id, &have, &hdim, err))
		return -1;
	if (!*id) {
		rc = sqlite3_prepare_v2(kb->db, "INSERT INTO collections(name, model, dim, created)"
					" VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return kb_db_err(kb, rc, "write", err);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (model && dim)
			sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, model ? (int64_t)dim : 0);
		sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
		rc = kb_step_done(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_OK)
			return kb_db_err(kb, rc, "write", err);
		*id = sqlite3_last_insert_rowid(kb->db);
		return 0;
	}
	if (model && dim) {
		if (have && strcmp(have, model)) {
			ai_errf(err, AI_EX_DATAERR,
				"collection '%s' was indexed with embedding model '%s', not '%s': "
				"use --embed-model %s, or another collection", name, have, model, have);
			free(have);
			return -1;
		}
		if (have && hdim != dim) {
			free(have);
			return ai_errf(err, AI_EX_DATAERR,
				       "embeddings of dimension %zu, but collection '%s' holds dimension %zu",
				       dim, name, hdim);
		}
		if (!have) {
			rc = sqlite3_prepare_v2(kb->db, "UPDATE collections SET model = ?1, dim = ?2 WHERE id = ?3",
						-1, &st, NULL);
			if (rc != SQLITE_OK)
				return kb_db_err(kb, rc, "write", err);
			sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)dim);
			sqlite3_bind_int64(st, 3, *id);
			rc = kb_step_done(st);
			sqlite3_finalize(st);
			if (rc != SQLITE_OK)
				return kb_db_err(kb, rc, "write", err);
		}
	}
	free(have);
	return 0;
}

int kb_put(struct kb *kb, const char *coll, const struct kb_doc *doc, const struct kb_chunk *chunks,
	   size_t n, const float *vecs, size_t dim, const char *model, bool *replaced,
	   struct ai_err *err)
{
	sqlite3_stmt *ds = NULL, *cs = NULL, *fs = NULL, *old = NULL;
	float *v = NULL;
	int64_t *ids = NULL, cid = 0, did;
	int rc;

	if (replaced)
		*replaced = false;
	if (!coll)
		coll = KB_DEFAULT_COLLECTION;
	if (vecs && !model)
		return ai_errf(err, AI_EX_SOFTWARE, "kb_put: vectors without a model");
	if (vecs && n && !(v = checked_vectors(vecs, n, dim, err)))
		return -1;
	if (!(ids = malloc((n ? n : 1) * sizeof(*ids)))) {
		free(v);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if ((rc = kb_exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		free(v);
		free(ids);
		return kb_db_err(kb, rc, "write", err);
	}
	if (put_coll(kb, coll, v ? model : NULL, v ? dim : 0, &cid, err))
		goto fail_quiet;
	rc = sqlite3_prepare_v2(kb->db, "SELECT id FROM documents WHERE coll = ?1 AND source = ?2", -1, &old, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(old, 1, cid);
	sqlite3_bind_text(old, 2, doc->source, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(old)) == SQLITE_ROW) {
		int64_t prev = sqlite3_column_int64(old, 0);

		if (replaced)
			*replaced = true;
		if ((rc = delete_doc(kb, prev)) != SQLITE_OK)
			goto fail;
	} else if (rc != SQLITE_DONE) {
		goto fail;
	}
	if ((rc = sqlite3_prepare_v2(kb->db, "INSERT INTO documents(coll, source, hash, size, mtime, chunks,"
				     " vectors, indexed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &ds,
				     NULL)) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(ds, 1, cid);
	sqlite3_bind_text(ds, 2, doc->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(ds, 3, doc->hash ? doc->hash : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ds, 4, doc->size);
	sqlite3_bind_int64(ds, 5, doc->mtime);
	sqlite3_bind_int64(ds, 6, (int64_t)n);
	sqlite3_bind_int64(ds, 7, v ? (int64_t)n : 0);
	sqlite3_bind_int64(ds, 8, (int64_t)time(NULL));
	if ((rc = kb_step_done(ds)) != SQLITE_OK)
		goto fail;
	did = sqlite3_last_insert_rowid(kb->db);
	if ((rc = sqlite3_prepare_v2(kb->db, "INSERT INTO chunks(doc, seq, line_start, line_end, page)"
				     " VALUES (?1, ?2, ?3, ?4, ?5)", -1, &cs, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(kb->db, "INSERT INTO chunks_fts(rowid, heading, text, coll)"
				     " VALUES (?1, ?2, ?3, ?4)", -1, &fs, NULL)) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(cs, 1, did);
		sqlite3_bind_int64(cs, 2, (int64_t)i);
		sqlite3_bind_int64(cs, 3, (int64_t)chunks[i].line_start);
		sqlite3_bind_int64(cs, 4, (int64_t)chunks[i].line_end);
		sqlite3_bind_int64(cs, 5, (int64_t)chunks[i].page);
		if ((rc = kb_step_done(cs)) != SQLITE_OK)
			goto fail;
		ids[i] = sqlite3_last_insert_rowid(kb->db);
		sqlite3_bind_int64(fs, 1, ids[i]);
		if (chunks[i].heading)
			sqlite3_bind_text(fs, 2, chunks[i].heading, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(fs, 2);
		sqlite3_bind_text64(fs, 3, chunks[i].text, chunks[i].len, SQLITE_STATIC, SQLITE_UTF8);
		sqlite3_bind_int64(fs, 4, cid);
		if ((rc = kb_step_done(fs)) != SQLITE_OK)
			goto fail;
	}
	if (v && n && kb_put_blocks(kb, cid, did, ids, v, n, dim, err))
		goto fail_quiet;
	if ((rc = kb_exec_retry(kb, "COMMIT")) != SQLITE_OK)
		goto fail;
	sqlite3_finalize(old);
	sqlite3_finalize(ds);
	sqlite3_finalize(cs);
	sqlite3_finalize(fs);
	free(v);
	free(ids);
	return 0;
fail:
	kb_db_err(kb, rc, "write", err);
fail_quiet:
	sqlite3_finalize(old);
	sqlite3_finalize(ds);
	sqlite3_finalize(cs);
	sqlite3_finalize(fs);
	sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
	free(v);
	free(ids);
	return -1;
}

int kb_remove(struct kb *kb, const char *coll, const char *source, bool *found, struct ai_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*found = false;
	if ((rc = kb_exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK)
		return kb_db_err(kb, rc, "write", err);
	rc = sqlite3_prepare_v2(kb->db, "SELECT d.id FROM documents d JOIN collections c ON c.id = d.coll"
				" WHERE c.name = ?1 AND d.source = ?2", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, coll ? coll : KB_DEFAULT_COLLECTION, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, source, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*found = true;
			rc = delete_doc(kb, sqlite3_column_int64(st, 0));
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = kb_exec_retry(kb, "COMMIT");
	if (rc != SQLITE_OK) {
		kb_db_err(kb, rc, "write", err);
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		*found = false;
		return -1;
	}
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

int kb_stats(struct kb *kb, const char *coll, struct kb_stats *s, struct ai_err *err)
{
	sqlite3_stmt *st;
	int64_t id;
	int rc;

	memset(s, 0, sizeof(*s));
	if (kb_coll_id(kb, coll, &id, &s->model, &s->dim, err))
		return -1;
	if (!id)
		return 0;
	s->exists = true;
	if (!(st = kb_prep(kb, "SELECT count(*), coalesce(sum(chunks), 0), coalesce(sum(size), 0),"
			" coalesce(sum(vectors), 0) FROM documents WHERE coll = ?1", err))) {
		kb_stats_release(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s->documents = sqlite3_column_int64(st, 0);
		s->chunks = sqlite3_column_int64(st, 1);
		s->bytes = sqlite3_column_int64(st, 2);
		s->vectors = sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		kb_stats_release(s);
		return kb_db_err(kb, rc, "read", err);
	}
	return 0;
}

void kb_stats_release(struct kb_stats *s)
{
	free(s->model);
	s->model = NULL;
}

int kb_list(struct kb *kb, const char *coll, int (*fn)(const struct kb_doc_info *d, void *ud),
	    void *ud, struct ai_err *err)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if (coll)
		st = kb_prep(kb, "SELECT d.source, d.hash, d.size, d.mtime, d.chunks, d.indexed_at, d.vectors"
			  " FROM documents d JOIN collections c ON c.id = d.coll WHERE c.name = ?1"
			  " ORDER BY d.source", err);
	else
		st = kb_prep(kb, "SELECT c.name, coalesce(c.model, ''), coalesce(sum(d.size), 0),"
			  " c.created, coalesce(sum(d.chunks), 0), c.created, coalesce(sum(d.vectors), 0)"
			  " FROM collections c LEFT JOIN documents d ON d.coll = c.id GROUP BY c.id"
			  " ORDER BY c.name", err);
	if (!st)
		return -1;
	if (coll)
		sqlite3_bind_text(st, 1, coll, -1, SQLITE_STATIC);
	while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct kb_doc_info d;

		d.source = (const char *)sqlite3_column_text(st, 0);
		d.hash = (const char *)sqlite3_column_text(st, 1);
		d.size = sqlite3_column_int64(st, 2);
		d.mtime = sqlite3_column_int64(st, 3);
		d.chunks = sqlite3_column_int64(st, 4);
		d.indexed_at = sqlite3_column_int64(st, 5);
		d.vectors = sqlite3_column_int64(st, 6) > 0;
		r = fn(&d, ud);
	}
	sqlite3_finalize(st);
	if (r)
		return r;
	if (rc != SQLITE_DONE)
		return kb_db_err(kb, rc, "read", err);
	return 0;
}


/* ---- what was learned of the collection's embeddings server -------------- */

/*
 * Kept in meta under "embed_tokens:" and the collection's name, so that the
 * schema stays 2: an index written by an older ai-index simply has none.
 */
static void limit_key(const char *coll, struct buf *b)
{
	buf_init(b, 0);
	buf_addstr(b, "embed_tokens:");
	buf_addstr(b, coll);
}

int kb_embed_limit(struct kb *kb, const char *coll, size_t *tokens, struct ai_err *err)
{
	struct sqlretry retry;
	sqlite3_stmt *st;
	struct buf key;
	int rc;

	*tokens = 0;
	if (!(st = kb_prep(kb, "SELECT value FROM meta WHERE key = ?1", err)))
		return -1;
	limit_key(coll, &key);
	sqlite3_bind_text(st, 1, key.data ? key.data : "", -1, SQLITE_TRANSIENT);
	buf_release(&key);
	sqlretry_init(&retry, KB_BUSY_MS);
	while ((rc = sqlite3_step(st)) != SQLITE_ROW && sqlretry_again(&retry, rc))
		sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		char *end;
		unsigned long long n;

		/* Anything but a plain positive count is ignored: the default applies. */
		errno = 0;
		n = v && *v >= '1' && *v <= '9' ? strtoull(v, &end, 10) : 0;
		if (n && !*end && !errno && n <= SIZE_MAX)
			*tokens = (size_t)n;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return kb_db_err(kb, rc, "read", err);
	return 0;
}

int kb_set_embed_limit(struct kb *kb, const char *coll, size_t tokens, struct ai_err *err)
{
	sqlite3_stmt *st = NULL;
	struct buf key;
	int rc;

	rc = sqlite3_prepare_v2(kb->db, "INSERT INTO meta(key, value) VALUES (?1, ?2)"
				" ON CONFLICT(key) DO UPDATE SET value = excluded.value", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		limit_key(coll, &key);
		sqlite3_bind_text(st, 1, key.data ? key.data : "", -1, SQLITE_TRANSIENT);
		buf_release(&key);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)tokens);
		rc = kb_step_done(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : kb_db_err(kb, rc, "write", err);
}
