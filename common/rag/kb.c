/*
 * kb.c - the knowledge-base store (see kb.h for the layout).
 */
#include "rag/kb.h"
#include "sqlretry.h"
#include "api/api.h"
#include "config.h"
#include "rag/vec.h"

#include <math.h>
#include <strings.h>
#include <time.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sodium.h>
#include <sqlite3.h>

#define KB_APP_ID 0x61696b62    /* "aikb": tells our files from other SQLite files */
#define KB_BUSY_MS 60000
#define KB_RRF_K0 60
#define KB_MIN_COSINE 0.3
#define KB_MAX_TERMS 64
/* Bytes read from the vector file at a time into one reused buffer: small
 * enough that the slice stays in the L2 cache between the copy out of the
 * page cache and the scan. */
#define KB_SLICE_BYTES (256u * 1024)

/*
 * The vector file ("<index>.vec"): a 64-byte header (KB_VEC_MAGIC, then
 * the file's id in hex, also kept in the index's meta table so that a
 * vector file is never read against another index), then blocks, each
 *   16-byte header: KB_BLK_MAGIC, count and dim as uint32 (host order)
 *   ids     count int64 chunk ids
 *   scales  count float int8 scales
 *   codes   count * dim int8 codes
 *   f32     count * dim float32 vectors, L2-normalised
 * so that an int8 scan reads the first four parts and a float32 scan the
 * first two and the last.  Blocks are only ever appended; vblocks rows
 * name the offsets of those a committed transaction references.
 */
#define KB_VEC_MAGIC "AIKBVEC1"
#define KB_BLK_MAGIC "AIKBBLK1"
#define KB_VEC_HDR 64
#define KB_BLK_HDR 16

struct kb {
	sqlite3 *db;
	char *path;
	char *vpath;            /* path + ".vec" */
	int vfd;                /* the vector file, opened on first use; -1 before */
	bool vwrite;            /* vfd is open for writing */
};

static const char schema_sql[] =
	"CREATE TABLE collections(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, model TEXT,"
	" dim INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
	"CREATE TABLE documents(id INTEGER PRIMARY KEY, coll INTEGER NOT NULL, source TEXT NOT NULL,"
	" hash TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, chunks INTEGER NOT NULL,"
	" vectors INTEGER NOT NULL, indexed_at INTEGER NOT NULL, UNIQUE(coll, source));"
	"CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" line_start INTEGER NOT NULL, line_end INTEGER NOT NULL);"
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
	"PRAGMA user_version = 2;";

/* ---- SQLite helpers ----------------------------------------------------- */

/* Retried on SQLITE_BUSY within KB_BUSY_MS (see sqlretry.h). */
static int exec_retry(struct kb *kb, const char *sql)
{
	return sqlretry_exec(kb->db, sql, KB_BUSY_MS);
}

static int query_int(struct kb *kb, const char *sql, long long *v)
{
	return sqlretry_query_int(kb->db, sql, v, KB_BUSY_MS);
}

static int db_err(struct kb *kb, int rc, const char *what, struct ai_err *err)
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
static sqlite3_stmt *prep(struct kb *kb, const char *sql, struct ai_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(kb->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK) {
		db_err(kb, rc, "read", err);
		return NULL;
	}
	return st;
}

/* Steps a statement that returns no row (or whose rows are ignored), retried on BUSY. */
static int step_done(sqlite3_stmt *st)
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

/* ---- the vector file ---------------------------------------------------- */

static int vec_damaged(struct kb *kb, const char *why, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR, "vector file '%s' of index '%s' %s: remove both and "
		       "build the index again with ai-index", kb->vpath, kb->path, why);
}

/* Writes p[0..n) at off, whole, or returns -1 with errno. */
static int write_at(int fd, const void *p, size_t n, off_t off)
{
	const char *s = p;

	while (n) {
		ssize_t w = pwrite(fd, s, n, off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		s += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Reads p[0..n) at off, whole: 0, 1 at end of file (a short file), or -1 with errno. */
static int read_at(int fd, void *p, size_t n, off_t off)
{
	char *s = p;

	while (n) {
		ssize_t r = pread(fd, s, n, off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 1;
		s += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/*
 * Opens the vector file, for writing when write, created empty when
 * create.  It is this program's own file, so nothing found in its place is
 * trusted: a symbolic link is not followed (a link planted there would
 * have O_TRUNC empty its target), and anything but a regular file of ours
 * with one link is refused before it is truncated (O_NONBLOCK, so that a
 * FIFO cannot block the open).  Returns the fd, or -1 with err.
 */
static int vec_file_open(struct kb *kb, bool create, bool write, struct ai_err *err)
{
	int flags = (write ? O_RDWR : O_RDONLY) | (create ? O_CREAT : 0);
	int fd = open(kb->vpath, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	const char *what = NULL;
	struct stat st;

	if (fd < 0) {
		if (errno == ENOENT && !create)
			return vec_damaged(kb, "is missing", err);
		if (errno == ELOOP)
			return ai_errf(err, AI_EX_IOERR, "vector file '%s' is a symbolic link; not followed: "
				       "remove it and build the index again", kb->vpath);
		return ai_errf(err, create ? AI_EX_IOERR : AI_EX_NOINPUT, "cannot %s vector file '%s': %s",
			       create ? "create" : "open", kb->vpath, strerror(errno));
	}
	if (fstat(fd, &st))
		what = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		what = "it is not a regular file";
	else if (create && (st.st_nlink != 1 || st.st_uid != geteuid()))
		what = "it has other links or another owner";
	if (!what && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		what = strerror(errno);
	if (!what && create && ftruncate(fd, 0))
		what = strerror(errno);
	if (what) {
		close(fd);
		return ai_errf(err, AI_EX_IOERR, "refused vector file '%s': %s; remove it and build the "
			       "index again", kb->vpath, what);
	}
	return fd;
}

/*
 * Creates the vector file of a new index (inside create_schema's
 * transaction): truncated, a header with a new random id, that id in the
 * meta table.
 */
static int vec_create(struct kb *kb, struct ai_err *err)
{
	unsigned char id[16];
	char hdr[KB_VEC_HDR] = { 0 }, hex[33];
	sqlite3_stmt *st;
	int fd, rc;

	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
	memcpy(hdr, KB_VEC_MAGIC, 8);
	memcpy(hdr + 8, hex, 32);
	if ((fd = vec_file_open(kb, true, true, err)) < 0)
		return -1;
	if (write_at(fd, hdr, sizeof(hdr), 0) || fdatasync(fd)) {
		ai_errf(err, AI_EX_IOERR, "cannot create vector file '%s': %s", kb->vpath, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	rc = sqlite3_prepare_v2(kb->db, "INSERT INTO meta(key, value) VALUES ('vecfile', ?1)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
		rc = step_done(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : db_err(kb, rc, "set up", err);
}

/*
 * Opens the vector file on first use (for appending when write), and
 * checks that it belongs to this index.  Call inside a transaction.
 */
static int vec_open(struct kb *kb, bool write, struct ai_err *err)
{
	char hdr[KB_VEC_HDR];
	sqlite3_stmt *st;
	const unsigned char *id;
	int fd, rc, r;

	if (kb->vfd >= 0 && (kb->vwrite || !write))
		return 0;
	if (kb->vfd >= 0) {
		close(kb->vfd);
		kb->vfd = -1;
	}
	if ((fd = vec_file_open(kb, false, write, err)) < 0)
		return -1;
	if ((r = read_at(fd, hdr, sizeof(hdr), 0)) != 0 || memcmp(hdr, KB_VEC_MAGIC, 8)) {
		close(fd);
		if (r < 0)
			return ai_errf(err, AI_EX_IOERR, "cannot read vector file '%s': %s", kb->vpath,
				       strerror(errno));
		return vec_damaged(kb, "is not one", err);
	}
	if (!(st = prep(kb, "SELECT value FROM meta WHERE key = 'vecfile'", err))) {
		close(fd);
		return -1;
	}
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	r = id && strlen((const char *)id) == 32 && !memcmp(id, hdr + 8, 32);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		close(fd);
		return db_err(kb, rc, "read", err);
	}
	if (!r) {
		close(fd);
		return vec_damaged(kb, "belongs to another index", err);
	}
	kb->vfd = fd;
	kb->vwrite = write;
	return 0;
}

/* Sets WAL, then creates the schema when the file is empty (several processes may race here). */
static int create_schema(struct kb *kb, struct ai_err *err)
{
	struct sqlretry retry;
	long long v = 0, app = 0, tables = 0;
	sqlite3_stmt *st;
	int rc;

	sqlretry_init(&retry, KB_BUSY_MS);
	/*
	 * Only a new, empty file takes this.  The vectors live in the vector
	 * file; 16 KiB pages suit FTS5's segment blobs and chunk texts.
	 */
	sqlite3_exec(kb->db, "PRAGMA page_size = 16384", NULL, NULL, NULL);
	do {
		rc = sqlite3_prepare_v2(kb->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return db_err(kb, rc, "set up", err);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *mode = sqlite3_column_text(st, 0);

			rc = mode && !strcmp((const char *)mode, "wal") ? SQLITE_OK : SQLITE_BUSY;
		}
		sqlite3_finalize(st);
	} while (rc != SQLITE_OK && sqlretry_again(&retry, rc));
	if (rc != SQLITE_OK)
		return db_err(kb, rc, "set up", err);
	if ((rc = exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK)
		return db_err(kb, rc, "set up", err);
	rc = query_int(kb, "PRAGMA user_version", &v);
	if (rc == SQLITE_OK)
		rc = query_int(kb, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = query_int(kb, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		goto fail;
	if (tables > 0 && app != KB_APP_ID) {
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		return not_ours(kb, err);
	}
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
	if (tables == 0 && vec_create(kb, err)) {
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if ((rc = exec_retry(kb, "COMMIT")) == SQLITE_OK)
		return 0;
fail:
	db_err(kb, rc, "set up", err);
	if (!sqlite3_get_autocommit(kb->db))
		sqlite3_exec(kb->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* The checks of a file opened for reading: ours, not newer, not empty. */
static int check_read(struct kb *kb, struct ai_err *err)
{
	long long v = 0, app = 0, tables = 0;
	int rc = query_int(kb, "PRAGMA user_version", &v);

	if (rc == SQLITE_OK)
		rc = query_int(kb, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK)
		rc = query_int(kb, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		return db_err(kb, rc, "open", err);
	if (tables == 0)
		return ai_errf(err, AI_EX_NOINPUT, "no index at '%s': build one with ai-index", kb->path);
	if (app != KB_APP_ID)
		return not_ours(kb, err);
	if (v > KB_SCHEMA)
		return newer_schema(kb, v, err);
	if (v < KB_SCHEMA)
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
		db_err(kb, rc, "open", err);
		goto fail;
	}
	if (mode == KB_WRITE)
		chmod(kb->path, 0600);
	sqlite3_busy_timeout(kb->db, KB_BUSY_MS);
	sqlite3_extended_result_codes(kb->db, 1);
	if (mode == KB_WRITE) {
		if (create_schema(kb, err))
			goto fail;
		if ((rc = exec_retry(kb, "PRAGMA synchronous = NORMAL")) != SQLITE_OK) {
			db_err(kb, rc, "set up", err);
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
static int coll_id(struct kb *kb, const char *coll, int64_t *id, char **model, size_t *dim,
		   struct ai_err *err)
{
	sqlite3_stmt *st = prep(kb, "SELECT id, model, dim FROM collections WHERE name = ?1", err);
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
		return db_err(kb, rc, "read", err);
	return 0;
}

int kb_unchanged(struct kb *kb, const char *coll, const char *source, const char *hash,
		 bool *same, struct ai_err *err)
{
	sqlite3_stmt *st = prep(kb, "SELECT d.hash FROM documents d JOIN collections c ON c.id = d.coll"
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
		return db_err(kb, rc, "read", err);
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
		rc = step_done(st);
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

/* Bytes of a stored block of m vectors of dim. */
static size_t block_bytes(size_t m, size_t dim)
{
	return KB_BLK_HDR + m * (sizeof(int64_t) + sizeof(float)) + m * dim * (1 + sizeof(float));
}

/* Writes one block at off: header, ids, scales, codes, vectors. */
static int write_block(int fd, off_t off, const int64_t *ids, const float *scales, const int8_t *codes,
		       const float *v, size_t m, size_t dim)
{
	char hdr[KB_BLK_HDR];
	uint32_t c = (uint32_t)m, d = (uint32_t)dim;

	memcpy(hdr, KB_BLK_MAGIC, 8);
	memcpy(hdr + 8, &c, 4);
	memcpy(hdr + 12, &d, 4);
	if (write_at(fd, hdr, sizeof(hdr), off))
		return -1;
	off += (off_t)sizeof(hdr);
	if (write_at(fd, ids, m * sizeof(*ids), off))
		return -1;
	off += (off_t)(m * sizeof(*ids));
	if (write_at(fd, scales, m * sizeof(*scales), off))
		return -1;
	off += (off_t)(m * sizeof(*scales));
	if (write_at(fd, codes, m * dim, off))
		return -1;
	off += (off_t)(m * dim);
	return write_at(fd, v, m * dim * sizeof(*v), off);
}

/*
 * Appends the vectors of doc to the vector file in blocks of up to
 * KB_BLOCK, float32 and int8, and names them in vblocks (inside kb_put's
 * transaction).  The bytes reach the disk (fdatasync) before the rows that
 * name them can commit, so a killed or crashed writer leaves at worst
 * unreferenced bytes at the end of the file, never a row naming bytes
 * that are not there.  The flock keeps appenders apart even outside
 * SQLite's write lock.
 */
static int put_blocks(struct kb *kb, int64_t coll, int64_t doc, const int64_t *ids, const float *v,
		      size_t n, size_t dim, struct ai_err *err)
{
	size_t per = n < KB_BLOCK ? n : KB_BLOCK;
	int8_t *codes = malloc(per * dim);
	float *scales = malloc(per * sizeof(float));
	sqlite3_stmt *vs = NULL;
	off_t end = -1, off;
	long long named = 0;
	int rc, r = -1;

	if (!codes || !scales) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (vec_open(kb, true, err))
		goto out;
	if ((rc = sqlite3_prepare_v2(kb->db, "INSERT INTO vblocks(coll, doc, count, dim, off)"
				     " VALUES (?1, ?2, ?3, ?4, ?5)", -1, &vs, NULL)) != SQLITE_OK) {
		db_err(kb, rc, "write", err);
		goto out;
	}
	while (flock(kb->vfd, LOCK_EX) < 0)
		if (errno != EINTR) {
			ai_errf(err, AI_EX_IOERR, "cannot lock vector file '%s': %s", kb->vpath, strerror(errno));
			goto out;
		}
	if ((end = lseek(kb->vfd, 0, SEEK_END)) < 0)
		goto write_fail;
	/* Appending to a file cut short would write over blocks rows still name
	 * (the sum is block_bytes's). */
	if ((rc = query_int(kb, "SELECT coalesce(max(off + 16 + count * (12 + 5 * dim)), 64) FROM vblocks",
			    &named)) != SQLITE_OK) {
		db_err(kb, rc, "write", err);
		flock(kb->vfd, LOCK_UN);
		goto out;
	}
	if ((long long)end < named) {
		vec_damaged(kb, "is cut short", err);
		flock(kb->vfd, LOCK_UN);
		goto out;
	}
	off = end;
	for (size_t at = 0; at < n; at += KB_BLOCK) {
		size_t m = n - at < KB_BLOCK ? n - at : KB_BLOCK;

		for (size_t i = 0; i < m; i++)
			vec_quantize_i8(v + (at + i) * dim, dim, codes + i * dim, &scales[i]);
		if (write_block(kb->vfd, off, ids + at, scales, codes, v + at * dim, m, dim))
			goto write_fail;
		off += (off_t)block_bytes(m, dim);
	}
	if (fdatasync(kb->vfd))
		goto write_fail;
	flock(kb->vfd, LOCK_UN);
	off = end;
	for (size_t at = 0; at < n; at += KB_BLOCK) {
		size_t m = n - at < KB_BLOCK ? n - at : KB_BLOCK;

		sqlite3_bind_int64(vs, 1, coll);
		sqlite3_bind_int64(vs, 2, doc);
		sqlite3_bind_int64(vs, 3, (int64_t)m);
		sqlite3_bind_int64(vs, 4, (int64_t)dim);
		sqlite3_bind_int64(vs, 5, (int64_t)off);
		if ((rc = step_done(vs)) != SQLITE_OK) {
			db_err(kb, rc, "write", err);
			goto out;
		}
		off += (off_t)block_bytes(m, dim);
	}
	r = 0;
	goto out;
write_fail:
	ai_errf(err, AI_EX_IOERR, "cannot write vector file '%s': %s", kb->vpath, strerror(errno));
	/* Nobody else appends while the lock is held: cut back what was written. */
	if (end >= 0 && ftruncate(kb->vfd, end) != 0)
		err->code = AI_EX_IOERR;
	flock(kb->vfd, LOCK_UN);
out:
	sqlite3_finalize(vs);
	free(codes);
	free(scales);
	return r;
}

/* Finds or creates the collection, and checks (or sets) its model and dimension. */
static int put_coll(struct kb *kb, const char *name, const char *model, size_t dim, int64_t *id,
		    struct ai_err *err)
{
	char *have = NULL;
	size_t hdim = 0;
	sqlite3_stmt *st;
	int rc;

	if (coll_id(kb, name, id, &have, &hdim, err))
		return -1;
	if (!*id) {
		rc = sqlite3_prepare_v2(kb->db, "INSERT INTO collections(name, model, dim, created)"
					" VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return db_err(kb, rc, "write", err);
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (model && dim)
			sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, model ? (int64_t)dim : 0);
		sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
		rc = step_done(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_OK)
			return db_err(kb, rc, "write", err);
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
				return db_err(kb, rc, "write", err);
			sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)dim);
			sqlite3_bind_int64(st, 3, *id);
			rc = step_done(st);
			sqlite3_finalize(st);
			if (rc != SQLITE_OK)
				return db_err(kb, rc, "write", err);
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
	if ((rc = exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK) {
		free(v);
		free(ids);
		return db_err(kb, rc, "write", err);
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
	if ((rc = step_done(ds)) != SQLITE_OK)
		goto fail;
	did = sqlite3_last_insert_rowid(kb->db);
	if ((rc = sqlite3_prepare_v2(kb->db, "INSERT INTO chunks(doc, seq, line_start, line_end)"
				     " VALUES (?1, ?2, ?3, ?4)", -1, &cs, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(kb->db, "INSERT INTO chunks_fts(rowid, heading, text, coll)"
				     " VALUES (?1, ?2, ?3, ?4)", -1, &fs, NULL)) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(cs, 1, did);
		sqlite3_bind_int64(cs, 2, (int64_t)i);
		sqlite3_bind_int64(cs, 3, (int64_t)chunks[i].line_start);
		sqlite3_bind_int64(cs, 4, (int64_t)chunks[i].line_end);
		if ((rc = step_done(cs)) != SQLITE_OK)
			goto fail;
		ids[i] = sqlite3_last_insert_rowid(kb->db);
		sqlite3_bind_int64(fs, 1, ids[i]);
		if (chunks[i].heading)
			sqlite3_bind_text(fs, 2, chunks[i].heading, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(fs, 2);
		sqlite3_bind_text64(fs, 3, chunks[i].text, chunks[i].len, SQLITE_STATIC, SQLITE_UTF8);
		sqlite3_bind_int64(fs, 4, cid);
		if ((rc = step_done(fs)) != SQLITE_OK)
			goto fail;
	}
	if (v && n && put_blocks(kb, cid, did, ids, v, n, dim, err))
		goto fail_quiet;
	if ((rc = exec_retry(kb, "COMMIT")) != SQLITE_OK)
		goto fail;
	sqlite3_finalize(old);
	sqlite3_finalize(ds);
	sqlite3_finalize(cs);
	sqlite3_finalize(fs);
	free(v);
	free(ids);
	return 0;
fail:
	db_err(kb, rc, "write", err);
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
	if ((rc = exec_retry(kb, "BEGIN IMMEDIATE")) != SQLITE_OK)
		return db_err(kb, rc, "write", err);
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
		rc = exec_retry(kb, "COMMIT");
	if (rc != SQLITE_OK) {
		db_err(kb, rc, "write", err);
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
	if (coll_id(kb, coll, &id, &s->model, &s->dim, err))
		return -1;
	if (!id)
		return 0;
	s->exists = true;
	if (!(st = prep(kb, "SELECT count(*), coalesce(sum(chunks), 0), coalesce(sum(size), 0),"
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
		return db_err(kb, rc, "read", err);
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
		st = prep(kb, "SELECT d.source, d.hash, d.size, d.mtime, d.chunks, d.indexed_at, d.vectors"
			  " FROM documents d JOIN collections c ON c.id = d.coll WHERE c.name = ?1"
			  " ORDER BY d.source", err);
	else
		st = prep(kb, "SELECT c.name, coalesce(c.model, ''), coalesce(sum(d.size), 0),"
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
		return db_err(kb, rc, "read", err);
	return 0;
}

/* ---- search ------------------------------------------------------------- */

static bool word_byte(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch >= 0x80;
}

/* Words too common to help BM25 rank, dropped from a question that has others. */
static bool stop_word(const char *w, size_t n)
{
	static const char *const stop[] = {
		"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
		"how", "i", "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was",
		"what", "when", "where", "which", "who", "why", "with", "you",
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(stop); i++)
		if (strlen(stop[i]) == n && !strncasecmp(stop[i], w, n))
			return true;
	return false;
}

/*
 * The FTS5 query for a question: its words, each quoted (so no word is read
 * as an operator), joined by OR; stop words dropped unless nothing else is
 * left.  An empty result means there is nothing to search for.
 */
static int fts_query(const char *text, struct buf *q)
{
	for (int pass = 0; pass < 2 && !q->len; pass++) {
		const unsigned char *s = (const unsigned char *)text;
		int terms = 0;

		while (*s && terms < KB_MAX_TERMS) {
			const unsigned char *w;

			while (*s && !word_byte(*s))
				s++;
			if (!*s)
				break;
			for (w = s; *s && word_byte(*s); s++)
				;
			if (!pass && stop_word((const char *)w, (size_t)(s - w)))
				continue;
			if ((q->len && buf_addstr(q, " OR ")) || buf_addch(q, '"') ||
			    buf_add(q, w, (size_t)(s - w)) || buf_addch(q, '"'))
				return -1;
			terms++;
		}
	}
	return 0;
}

/*
 * BM25's top n for the question, best first, into ids/scores (*got of
 * them).  The collection filter is left out when the index holds one
 * collection: FTS5 reads the coll column from its content table for every
 * match, which doubled the time of a question of common words at 100,000
 * chunks.
 */
static int search_bm25(struct kb *kb, int64_t coll, const char *text, size_t n, int64_t *ids,
		       double *scores, size_t *got, struct ai_err *err)
{
	long long colls = 0;
	struct buf q;
	sqlite3_stmt *st;
	int rc;

	*got = 0;
	buf_init(&q, 0);
	if (fts_query(text, &q)) {
		buf_release(&q);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (!q.len) {
		buf_release(&q);
		return 0;
	}
	if ((rc = query_int(kb, "SELECT count(*) FROM collections", &colls)) != SQLITE_OK) {
		buf_release(&q);
		return db_err(kb, rc, "search", err);
	}
	if (!(st = prep(kb, colls == 1 ? "SELECT rowid, rank FROM chunks_fts"
			" WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?3"
			: "SELECT rowid, rank FROM chunks_fts"
			" WHERE chunks_fts MATCH ?1 AND coll = ?2 ORDER BY rank LIMIT ?3", err))) {
		buf_release(&q);
		return -1;
	}
	sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, coll);
	sqlite3_bind_int64(st, 3, (int64_t)n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *got < n) {
		ids[*got] = sqlite3_column_int64(st, 0);
		scores[*got] = sqlite3_column_double(st, 1);
		(*got)++;
	}
	sqlite3_finalize(st);
	buf_release(&q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_err(kb, rc, "search", err);
	return 0;
}

struct block {
	int64_t off;            /* of its header in the vector file */
	size_t count, dim;
};

/* The collection's vector blocks, in file order. */
static int list_blocks(struct kb *kb, int64_t coll, struct block **out, size_t *n, struct ai_err *err)
{
	sqlite3_stmt *st;
	struct block *v = NULL;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!(st = prep(kb, "SELECT off, count, dim FROM vblocks WHERE coll = ?1 ORDER BY off", err)))
		return -1;
	sqlite3_bind_int64(st, 1, coll);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			struct block *nv = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

			if (!nv) {
				rc = SQLITE_NOMEM;
				break;
			}
			v = nv;
		}
		v[*n].off = sqlite3_column_int64(st, 0);
		v[*n].count = (size_t)sqlite3_column_int64(st, 1);
		v[*n].dim = (size_t)sqlite3_column_int64(st, 2);
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		*n = 0;
		return db_err(kb, rc, "search", err);
	}
	*out = v;
	return 0;
}

/* Offsets within a block of m vectors of dim, from its header. */
static size_t ids_at(void)
{
	return KB_BLK_HDR;
}

static size_t scales_at(size_t m)
{
	return KB_BLK_HDR + m * sizeof(int64_t);
}

static size_t codes_at(size_t m)
{
	return scales_at(m) + m * sizeof(float);
}

static size_t f32_at(size_t m, size_t dim)
{
	return codes_at(m) + m * dim;
}

/* Reads n bytes at off into p, or fills err: a short file is a damaged one. */
static int vread(struct kb *kb, void *p, size_t n, int64_t off, struct ai_err *err)
{
	int r = off < 0 ? 1 : read_at(kb->vfd, p, n, (off_t)off);

	if (r < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot read vector file '%s': %s", kb->vpath, strerror(errno));
	if (r > 0)
		return vec_damaged(kb, "is cut short", err);
	return 0;
}

/*
 * Reads block b's header and first part (the header and ids, plus the
 * scales when scales is not NULL) and checks the header against b.
 */
static int read_head(struct kb *kb, const struct block *b, size_t dim, int64_t *ids, float *scales,
		     char *tmp, struct ai_err *err)
{
	size_t m = b->count, n = scales ? codes_at(m) : scales_at(m);
	uint32_t c, d;

	if (b->dim != dim || !m || m > KB_BLOCK)
		return ai_errf(err, AI_EX_DATAERR, "index '%s' is damaged: rebuild it with ai-index", kb->path);
	if (vread(kb, tmp, n, b->off, err))
		return -1;
	memcpy(&c, tmp + 8, 4);
	memcpy(&d, tmp + 12, 4);
	if (memcmp(tmp, KB_BLK_MAGIC, 8) || c != m || d != dim)
		return vec_damaged(kb, "does not match the index", err);
	memcpy(ids, tmp + ids_at(), m * sizeof(int64_t));
	if (scales)
		memcpy(scales, tmp + scales_at(m), m * sizeof(float));
	return 0;
}

/* Most threads a scan uses, and the least vectors worth a thread. */
#define KB_SCAN_THREADS 4
#define KB_SCAN_MIN (4u << 20)

/* One thread's share of a scan: vectors [from, to) of the collection, in block order. */
struct scan_part {
	struct kb *kb;          /* read only: its vector file and paths */
	const struct block *b;
	size_t nb, dim, from, to;
	const float *q;         /* float32 scan */
	const int8_t *qc;       /* int8 scan: the quantised query */
	float qscale;
	struct vec_topk t;      /* owned; hits are chunk ids (float32) or block << 16 | position (int8) */
	struct ai_err err;
	int r;
};

/*
 * Scans p's share: each block's vectors (or codes) read in slices into one
 * small buffer, which the scan reads while it is still in the cache.
 * pread into a reused buffer rather than mmap: a fresh process pays for
 * every page it maps (on this project's VMs about 3 us a 4 KiB page of
 * shadow page-table work, 0.5 s for 614 MB, against 0.11 s to copy it).
 */
static void *scan_part(void *arg)
{
	struct scan_part *p = arg;
	size_t dim = p->dim, es = p->qc ? 1 : sizeof(float);
	size_t per = KB_SLICE_BYTES / (dim * es) ? KB_SLICE_BYTES / (dim * es) : 1, first = 0;
	char *buf = malloc(per * dim * es), *tmp = malloc(codes_at(KB_BLOCK));
	int64_t *ids = malloc(KB_BLOCK * sizeof(int64_t)), *pos = malloc(per * sizeof(int64_t));
	float *scales = malloc(KB_BLOCK * sizeof(float));

	if (!buf || !tmp || !ids || !pos || !scales) {
		p->r = ai_errf(&p->err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nb && first < p->to && !p->r; first += p->b[i++].count) {
		const struct block *bk = &p->b[i];
		size_t lo = p->from > first ? p->from - first : 0;
		size_t hi = p->to - first < bk->count ? p->to - first : bk->count;
		int64_t base = bk->off + (int64_t)(p->qc ? codes_at(bk->count) : f32_at(bk->count, dim));

		if (lo >= hi)
			continue;
		if ((p->r = read_head(p->kb, bk, dim, ids, p->qc ? scales : NULL, tmp, &p->err)))
			break;
		for (size_t at = lo; at < hi; at += per) {
			size_t m = hi - at < per ? hi - at : per;

			if ((p->r = vread(p->kb, buf, m * dim * es, base + (int64_t)(at * dim * es), &p->err)))
				break;
			if (p->qc) {
				for (size_t j = 0; j < m; j++)
					pos[j] = (int64_t)i << 16 | (int64_t)(at + j);
				vec_scan_i8(p->qc, p->qscale, (const int8_t *)buf, scales + at, pos, m, dim, &p->t);
			} else {
				vec_scan_f32(p->q, (const float *)buf, ids + at, m, dim, &p->t);
			}
		}
	}
out:
	free(buf);
	free(tmp);
	free(ids);
	free(pos);
	free(scales);
	return NULL;
}

/*
 * Scans the blocks into t (k slots), in up to KB_SCAN_THREADS threads of
 * at least KB_SCAN_MIN bytes each, one per core: the copy out of the page
 * cache and the scan are both bound by one core's memory bandwidth.
 * Each thread keeps its own top-k; they are merged into t, and as a
 * top-k ranks ties by id the result does not depend on the split.
 */
static int scan_parallel(struct kb *kb, const struct block *b, size_t nb, size_t dim, const float *q,
			 const int8_t *qc, float qscale, struct vec_topk *t, struct ai_err *err)
{
	struct scan_part part[KB_SCAN_THREADS];
	pthread_t th[KB_SCAN_THREADS];
	bool started[KB_SCAN_THREADS] = { false };
	size_t total = 0, n, bytes;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int r = 0;

	for (size_t i = 0; i < nb; i++)
		total += b[i].count;
	bytes = total * dim * (qc ? 1 : sizeof(float));
	n = cores > 1 ? (size_t)cores : 1;
	if (n > KB_SCAN_THREADS)
		n = KB_SCAN_THREADS;
	if (n > bytes / KB_SCAN_MIN)
		n = bytes / KB_SCAN_MIN ? bytes / KB_SCAN_MIN : 1;
	for (size_t i = 0; i < n; i++) {
		memset(&part[i], 0, sizeof(part[i]));
		part[i].kb = kb;
		part[i].b = b;
		part[i].nb = nb;
		part[i].dim = dim;
		part[i].from = total * i / n;
		part[i].to = total * (i + 1) / n;
		part[i].q = q;
		part[i].qc = qc;
		part[i].qscale = qscale;
		if (vec_topk_init(&part[i].t, t->k)) {
			for (size_t j = 0; j < i; j++)
				vec_topk_release(&part[j].t);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	/* The caller's thread takes the first share; a thread that cannot start leaves its share to it. */
	for (size_t i = 1; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, scan_part, &part[i]) == 0;
	scan_part(&part[0]);
	for (size_t i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			scan_part(&part[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (part[i].r && !r) {
			*err = part[i].err;
			r = -1;
		}
		for (size_t j = 0; j < part[i].t.n; j++)
			vec_topk_push(t, part[i].t.v[j].id, part[i].t.v[j].score);
		vec_topk_release(&part[i].t);
	}
	return r;
}

/* The exact float32 scan into t. */
static int scan_f32(struct kb *kb, const struct block *b, size_t nb, const float *q, size_t dim,
		    struct vec_topk *t, struct ai_err *err)
{
	return scan_parallel(kb, b, nb, dim, q, NULL, 0, t, err);
}

/*
 * The int8 scan into a top-k of 4 times the wanted, then exact rescoring
 * of those from their float32 vectors into t.  Hits are numbered block <<
 * 16 | position while scanning, so that a candidate's vector is read
 * straight from its block; reading codes and scales only, an int8 query
 * reads a quarter of the bytes.
 */
static int scan_i8(struct kb *kb, const struct block *b, size_t nb, const float *q, size_t dim,
		   struct vec_topk *t, struct ai_err *err)
{
	int8_t *qc = malloc(dim);
	float qscale, *fv = NULL;
	const float **vp = NULL;
	struct vec_topk c = { NULL, 0, 0 };
	int r = 0;

	if (!qc || vec_topk_init(&c, t->k * 4)) {
		r = ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	vec_quantize_i8(q, dim, qc, &qscale);
	if ((r = scan_parallel(kb, b, nb, dim, NULL, qc, qscale, &c, err)))
		goto out;
	vec_topk_sorted(&c);
	if (!(fv = malloc((c.n ? c.n : 1) * dim * sizeof(float))) || !(vp = calloc(c.n + 1, sizeof(*vp)))) {
		r = ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c.n && !r; i++) {
		const struct block *bk = &b[c.v[i].id >> 16];
		size_t at = (size_t)(c.v[i].id & 0xffff);
		int64_t id;

		r = vread(kb, fv + i * dim, dim * sizeof(float),
			  bk->off + (int64_t)(f32_at(bk->count, dim) + at * dim * sizeof(float)), err);
		if (!r)
			r = vread(kb, &id, sizeof(id), bk->off + (int64_t)(ids_at() + at * sizeof(id)), err);
		if (!r) {
			vp[i] = fv + i * dim;
			c.v[i].id = id;
		}
	}
	if (!r)
		vec_rescore_f32(q, dim, c.v, vp, c.n, t);
out:
	vec_topk_release(&c);
	free(qc);
	free(fv);
	free(vp);
	return r;
}

/* Fills p (id already set) from the chunk's rows. */
static int fill_passage(struct kb *kb, sqlite3_stmt *st, sqlite3_stmt *ft, struct kb_passage *p)
{
	int rc;

	sqlite3_bind_int64(st, 1, p->id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		p->line_start = (size_t)sqlite3_column_int64(st, 0);
		p->line_end = (size_t)sqlite3_column_int64(st, 1);
		if (!(p->source = strdup((const char *)sqlite3_column_text(st, 2))))
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
	sqlite3_bind_int64(ft, 1, p->id);
	if ((rc = sqlite3_step(ft)) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(ft, 0);
		const char *t = (const char *)sqlite3_column_text(ft, 1);

		if ((h && !(p->heading = strdup(h))) || !(p->text = strdup(t ? t : "")))
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(ft);
	(void)kb;
	return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
}

int kb_search(struct kb *kb, const struct kb_query *q, struct kb_results *out, struct ai_err *err)
{
	const char *name = q->coll ? q->coll : KB_DEFAULT_COLLECTION;
	size_t k = q->k ? q->k : 5, cand = q->candidates, nbm = 0, nvec = 0, nb = 0, nf;
	double floor_cos = q->min_cosine == 0 ? KB_MIN_COSINE : q->min_cosine;
	int64_t coll, *bm_ids = NULL, *vec_ids = NULL;
	double *bm_sc = NULL;
	float *qv = NULL;
	char *model = NULL;
	size_t dim;
	struct block *blocks = NULL;
	struct vec_topk t = { NULL, 0, 0 };
	struct vec_hit *fused = NULL;
	sqlite3_stmt *st = NULL, *ft = NULL;
	int rc = -1, src;

	memset(out, 0, sizeof(*out));
	if (!cand)
		cand = k * 4 > 50 ? k * 4 : 50;
	if (cand < k)
		cand = k;
	if (coll_id(kb, name, &coll, &model, &dim, err))
		return -1;
	if (!coll)
		return ai_errf(err, AI_EX_NOINPUT, "index '%s' has no collection '%s': build it with ai-index -c %s",
			       kb->path, name, name);
	/* One read transaction, so that BM25, the vectors and the passages come from one snapshot. */
	if ((src = exec_retry(kb, "BEGIN")) != SQLITE_OK) {
		free(model);
		return db_err(kb, src, "search", err);
	}
	if (q->qvec && dim) {
		if (!q->qmodel || strcmp(q->qmodel, model ? model : "")) {
			ai_errf(err, AI_EX_DATAERR,
				"collection '%s' was indexed with embedding model '%s' but the question was "
				"embedded with '%s': use --embed-model %s, or reindex", name, model ? model : "",
				q->qmodel ? q->qmodel : "", model ? model : "");
			goto out;
		}
		if (q->qdim != dim) {
			ai_errf(err, AI_EX_DATAERR, "collection '%s' holds vectors of dimension %zu but the "
				"question's embedding has %zu", name, dim, q->qdim);
			goto out;
		}
	}
	if (!(bm_ids = malloc(cand * sizeof(*bm_ids))) || !(bm_sc = malloc(cand * sizeof(*bm_sc))) ||
	    !(vec_ids = malloc(cand * sizeof(*vec_ids))) || !(fused = malloc(k * sizeof(*fused)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (!q->no_bm25 && search_bm25(kb, coll, q->text ? q->text : "", cand, bm_ids, bm_sc, &nbm, err))
		goto out;
	if (q->qvec && dim) {
		if (!(qv = malloc(dim * sizeof(float))) || vec_topk_init(&t, cand)) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		memcpy(qv, q->qvec, dim * sizeof(float));
		if (!vec_finite(qv, dim)) {
			ai_errf(err, AI_EX_DATAERR, "the question's embedding holds NaN or infinity");
			goto out;
		}
		vec_normalize(qv, dim);
		if (list_blocks(kb, coll, &blocks, &nb, err) || (nb && vec_open(kb, false, err)) ||
		    (q->int8 ? scan_i8 : scan_f32)(kb, blocks, nb, qv, dim, &t, err))
			goto out;
		vec_topk_sorted(&t);
		for (size_t i = 0; i < t.n; i++)
			if (floor_cos < 0 || t.v[i].score >= floor_cos)
				vec_ids[nvec++] = t.v[i].id;
		out->hybrid = true;
	}
	nf = vec_rrf(bm_ids, nbm, vec_ids, nvec, KB_RRF_K0, fused, k);
	if (nf && !(out->v = calloc(nf, sizeof(*out->v)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (!(st = prep(kb, "SELECT c.line_start, c.line_end, d.source FROM chunks c"
			" JOIN documents d ON d.id = c.doc WHERE c.id = ?1", err)) ||
	    !(ft = prep(kb, "SELECT heading, text FROM chunks_fts WHERE rowid = ?1", err)))
		goto out;
	for (size_t i = 0; i < nf; i++) {
		struct kb_passage *p = &out->v[i];

		p->id = fused[i].id;
		p->score = fused[i].score;
		p->bm25 = p->cosine = NAN;
		for (size_t j = 0; j < nbm; j++)
			if (bm_ids[j] == p->id) {
				p->bm25_rank = (int)j + 1;
				p->bm25 = bm_sc[j];
				break;
			}
		for (size_t j = 0; j < nvec; j++)
			if (vec_ids[j] == p->id) {
				p->vec_rank = (int)j + 1;
				p->cosine = t.v[j].score;
				break;
			}
		out->n++;
		if ((src = fill_passage(kb, st, ft, p)) != SQLITE_OK) {
			db_err(kb, src, "search", err);
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ft);
	sqlite3_exec(kb->db, "COMMIT", NULL, NULL, NULL);
	if (rc)
		kb_results_release(out);
	vec_topk_release(&t);
	free(blocks);
	free(qv);
	free(bm_ids);
	free(bm_sc);
	free(vec_ids);
	free(fused);
	free(model);
	return rc;
}

int kb_retrieve(struct kb *kb, struct ai_client *c, const struct kb_query *q,
		struct kb_results *out, struct ai_err *err)
{
	struct kb_query qq = *q;
	struct kb_stats s;
	struct ai_embed_resp r;
	struct ai_err e;
	const char *text = q->text ? q->text : "";
	char *note = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (kb_stats(kb, q->coll, &s, err))
		return -1;
	if (!s.exists) {
		kb_stats_release(&s);
		return ai_errf(err, AI_EX_NOINPUT, "index '%s' has no collection '%s': build it with ai-index -c %s",
			       kb->path, q->coll ? q->coll : KB_DEFAULT_COLLECTION,
			       q->coll ? q->coll : KB_DEFAULT_COLLECTION);
	}
	if (!c || !s.dim || !s.model) {
		kb_stats_release(&s);
		qq.qvec = NULL;
		qq.no_bm25 = false;
		return kb_search(kb, &qq, out, err);
	}
	if (strcmp(ai_client_embed_model(c), s.model)) {
		ai_errf(err, AI_EX_DATAERR, "collection '%s' was indexed with embedding model '%s', not '%s': "
			"use --embed-model %s, or reindex", q->coll ? q->coll : KB_DEFAULT_COLLECTION, s.model,
			ai_client_embed_model(c), s.model);
		kb_stats_release(&s);
		return -1;
	}
	kb_stats_release(&s);
	ai_err_clear(&e);
	if (ai_embed(c, &text, 1, NULL, &r, &e)) {
		ai_embed_resp_release(&r);
		if (e.code == AI_EX_INTERRUPT || e.code == AI_EX_CONFIG || e.code == AI_EX_OSERR) {
			*err = e;
			return -1;
		}
		{
			struct buf b;

			buf_init(&b, 0);
			if (!buf_addf(&b, "the question could not be embedded (%s); retrieving by BM25 alone",
				      e.msg))
				note = buf_detach(&b, NULL);
			buf_release(&b);
		}
		qq.qvec = NULL;
		qq.no_bm25 = false;
		rc = kb_search(kb, &qq, out, err);
		if (!rc)
			out->note = note;
		else
			free(note);
		return rc;
	}
	if (!r.v || r.n != 1) {
		/* --dry-run: the request was printed and nothing came back. */
		ai_embed_resp_release(&r);
		qq.qvec = NULL;
		qq.no_bm25 = false;
		return kb_search(kb, &qq, out, err);
	}
	qq.qvec = r.v;
	qq.qdim = r.dim;
	qq.qmodel = ai_client_embed_model(c);
	rc = kb_search(kb, &qq, out, err);
	ai_embed_resp_release(&r);
	return rc;
}

void kb_results_release(struct kb_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].source);
		free(r->v[i].heading);
		free(r->v[i].text);
	}
	free(r->v);
	free(r->note);
	memset(r, 0, sizeof(*r));
}
