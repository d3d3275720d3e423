/*
 * kb_vecfile.c - the knowledge base's vector file: its header, appending
 * blocks of vectors, and reading them back.
 */
#include "rag/kb_int.h"
#include "rag/vec.h"

#include <math.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <sodium.h>

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
int kb_vec_create(struct kb *kb, struct ai_err *err)
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
		rc = kb_step_done(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : kb_db_err(kb, rc, "set up", err);
}

/*
 * Opens the vector file on first use (for appending when write), and
 * checks that it belongs to this index.  Call inside a transaction.
 */
int kb_vec_open(struct kb *kb, bool write, struct ai_err *err)
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
	if (!(st = kb_prep(kb, "SELECT value FROM meta WHERE key = 'vecfile'", err))) {
		close(fd);
		return -1;
	}
	rc = sqlite3_step(st);
	id = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	r = id && strlen((const char *)id) == 32 && !memcmp(id, hdr + 8, 32);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		close(fd);
		return kb_db_err(kb, rc, "read", err);
	}
	if (!r) {
		close(fd);
		return vec_damaged(kb, "belongs to another index", err);
	}
	kb->vfd = fd;
	kb->vwrite = write;
	return 0;
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
int kb_put_blocks(struct kb *kb, int64_t coll, int64_t doc, const int64_t *ids, const float *v,
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
	if (kb_vec_open(kb, true, err))
		goto out;
	if ((rc = sqlite3_prepare_v2(kb->db, "INSERT INTO vblocks(coll, doc, count, dim, off)"
				     " VALUES (?1, ?2, ?3, ?4, ?5)", -1, &vs, NULL)) != SQLITE_OK) {
		kb_db_err(kb, rc, "write", err);
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
	if ((rc = kb_query_int(kb, "SELECT coalesce(max(off + 16 + count * (12 + 5 * dim)), 64) FROM vblocks",
			    &named)) != SQLITE_OK) {
		kb_db_err(kb, rc, "write", err);
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
		if ((rc = kb_step_done(vs)) != SQLITE_OK) {
			kb_db_err(kb, rc, "write", err);
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


/* The collection's vector blocks, in file order. */
int kb_list_blocks(struct kb *kb, int64_t coll, struct kb_block **out, size_t *n, struct ai_err *err)
{
	sqlite3_stmt *st;
	struct kb_block *v = NULL;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!(st = kb_prep(kb, "SELECT off, count, dim FROM vblocks WHERE coll = ?1 ORDER BY off", err)))
		return -1;
	sqlite3_bind_int64(st, 1, coll);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			struct kb_block *nv = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

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
		return kb_db_err(kb, rc, "search", err);
	}
	*out = v;
	return 0;
}

/* Offsets within a block of m vectors of dim, from its header. */
size_t kb_ids_at(void)
{
	return KB_BLK_HDR;
}

static size_t scales_at(size_t m)
{
	return KB_BLK_HDR + m * sizeof(int64_t);
}

size_t kb_codes_at(size_t m)
{
	return scales_at(m) + m * sizeof(float);
}

size_t kb_f32_at(size_t m, size_t dim)
{
	return kb_codes_at(m) + m * dim;
}

/* Reads n bytes at off into p, or fills err: a short file is a damaged one. */
int kb_vread(struct kb *kb, void *p, size_t n, int64_t off, struct ai_err *err)
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
int kb_read_head(struct kb *kb, const struct kb_block *b, size_t dim, int64_t *ids, float *scales,
		 char *tmp, struct ai_err *err)
{
	size_t m = b->count, n = scales ? kb_codes_at(m) : scales_at(m);
	uint32_t c, d;

	if (b->dim != dim || !m || m > KB_BLOCK)
		return ai_errf(err, AI_EX_DATAERR, "index '%s' is damaged: rebuild it with ai-index", kb->path);
	if (kb_vread(kb, tmp, n, b->off, err))
		return -1;
	memcpy(&c, tmp + 8, 4);
	memcpy(&d, tmp + 12, 4);
	if (memcmp(tmp, KB_BLK_MAGIC, 8) || c != m || d != dim)
		return vec_damaged(kb, "does not match the index", err);
	memcpy(ids, tmp + kb_ids_at(), m * sizeof(int64_t));
	if (scales)
		memcpy(scales, tmp + scales_at(m), m * sizeof(float));
	return 0;
}
