/*
 * cache_sqlite - issue 20's choice for the response cache, measured: the
 * cache of today (one file per entry, common/api/cache.c) against the
 * design the issue proposes (one SQLite file in WAL mode, values as
 * BLOBs, recency in a column), prototyped here with the same promises
 * where they cost something: a hit checks the stored key and a
 * checksum (SQLite's pages carry none), and marks the entry used at most
 * once a minute (as cache.c's futimens), which for SQLite is a write
 * transaction.
 *
 *   cache_sqlite DIR N   N answers of 370 bytes in each, then read back
 *
 * Figures, each store: bytes on disk an entry (allocated blocks), CPU a
 * put (one transaction or one rename each, as a program does), CPU a
 * warm hit in a process that has the cache open, and CPU of a one-shot
 * open + hit + close (what ai-summarize pays on a hit).  A benchmark: it
 * prints figures and never fails a build.
 */
#include "api/cache.h"
#include "bench.h"

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>

#define VLEN 370

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static long arg_long(const char *a)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(a, &end, 10);
	if (errno || end == a || *end || v <= 0) {
		fprintf(stderr, "cache_sqlite: '%s' is not a count\n", a);
		exit(64);
	}
	return v;
}

static void key_of(long i, unsigned char k[CACHE_KEY_LEN])
{
	char s[32];

	snprintf(s, sizeof(s), "%ld", i);
	cache_key(s, strlen(s), k);
}

/* Allocated bytes of the regular files under dir (one level of fan-out, as cache.c makes). */
static uint64_t disk_bytes(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t sum = 0;
	char p[4096];
	struct stat sb;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &sb) < 0)
			continue;
		sum += (uint64_t)sb.st_blocks * 512;
		if (S_ISDIR(sb.st_mode) && depth < 2)
			sum += disk_bytes(p, depth + 1);
	}
	closedir(d);
	return sum;
}

/* ---- the SQLite store ---- */

struct sq {
	sqlite3 *db;
	sqlite3_stmt *get, *touch, *put;
};

static int sq_open(struct sq *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(s->db, 5000);
	/* As the ledger does: no checkpoint and WAL removal (four fsyncs) at every close. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE IF NOT EXISTS entries (key BLOB PRIMARY KEY, value BLOB NOT NULL,"
			 " sum BLOB NOT NULL, written INTEGER NOT NULL, used INTEGER NOT NULL);"
			 "CREATE INDEX IF NOT EXISTS entries_used ON entries(used);", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v3(s->db, "SELECT value, sum, written, used FROM entries WHERE key = ?1", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->get, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "UPDATE entries SET used = ?2 WHERE key = ?1", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->touch, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(s->db, "INSERT OR REPLACE INTO entries VALUES(?1, ?2, ?3, ?4, ?4)", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->put, NULL) != SQLITE_OK)
		return -1;
	return 0;
}

static void sq_close(struct sq *s)
{
	sqlite3_finalize(s->get);
	sqlite3_finalize(s->touch);
	sqlite3_finalize(s->put);
	sqlite3_close(s->db);
}

static int sq_put(struct sq *s, const unsigned char *k, const void *v, size_t n, int64_t now)
{
	unsigned char sum[32];
	int rc;

	crypto_generichash(sum, sizeof(sum), v, n, k, CACHE_KEY_LEN);
	sqlite3_bind_blob(s->put, 1, k, CACHE_KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s->put, 2, v, (int)n, SQLITE_STATIC);
	sqlite3_bind_blob(s->put, 3, sum, sizeof(sum), SQLITE_STATIC);
	sqlite3_bind_int64(s->put, 4, now);
	rc = sqlite3_step(s->put);
	sqlite3_reset(s->put);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_get(struct sq *s, const unsigned char *k, struct buf *out, int64_t now)
{
	unsigned char sum[32];
	int hit = 0;
	int64_t used = 0;

	sqlite3_bind_blob(s->get, 1, k, CACHE_KEY_LEN, SQLITE_STATIC);
	if (sqlite3_step(s->get) == SQLITE_ROW) {
		const void *v = sqlite3_column_blob(s->get, 0);
		int n = sqlite3_column_bytes(s->get, 0);

		crypto_generichash(sum, sizeof(sum), v, (size_t)n, k, CACHE_KEY_LEN);
		if (sqlite3_column_bytes(s->get, 1) == 32 && !memcmp(sum, sqlite3_column_blob(s->get, 1), 32)) {
			hit = buf_add(out, v, (size_t)n) == 0;
			used = sqlite3_column_int64(s->get, 3);
		}
	}
	sqlite3_reset(s->get);
	if (hit && now - used >= 60) {
		sqlite3_bind_blob(s->touch, 1, k, CACHE_KEY_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(s->touch, 2, now);
		sqlite3_step(s->touch);
		sqlite3_reset(s->touch);
	}
	return hit;
}

int main(int argc, char **argv)
{
	char path[4096], fdir[4096];
	char val[VLEN];
	unsigned char k[CACHE_KEY_LEN];
	struct buf out = BUF_INIT;
	struct cache c;
	struct ai_err err;
	struct sq s;
	long n, hits, once = 200;
	double c0;
	int64_t now = (int64_t)time(NULL);

	if (argc < 3) {
		fprintf(stderr, "usage: cache_sqlite DIR N\n");
		return 64;
	}
	n = arg_long(argv[2]);
	memset(val, 'a', sizeof(val));
	snprintf(fdir, sizeof(fdir), "%s/files", argv[1]);
	snprintf(path, sizeof(path), "%s/cache.db", argv[1]);
	if (sodium_init() < 0 || cache_open(&c, fdir, 0, (uint64_t)4 << 30, &err) || sq_open(&s, path)) {
		fprintf(stderr, "cache_sqlite: cannot open the stores in '%s'\n", argv[1]);
		return 1;
	}

	c0 = cpu_s();
	for (long i = 0; i < n; i++) {
		key_of(i, k);
		if (cache_put(&c, k, val, sizeof(val), &err))
			return 1;
	}
	printf("files:  %.1f us CPU a put, ", (cpu_s() - c0) * 1e6 / (double)n);
	printf("%.0f bytes on disk an entry (%ld entries of %d bytes)\n",
	       (double)disk_bytes(fdir, 0) / (double)n, n, VLEN);
	c0 = cpu_s();
	for (long i = 0; i < n; i++) {
		key_of(i, k);
		if (sq_put(&s, k, val, sizeof(val), now))
			return 1;
	}
	printf("sqlite: %.1f us CPU a put, ", (cpu_s() - c0) * 1e6 / (double)n);
	sqlite3_exec(s.db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	printf("%.0f bytes on disk an entry\n", (double)disk_bytes(argv[1], 2) / (double)n);

	/* Warm hits in a process that has the store open; the key hash is in both. */
	hits = 0;
	c0 = cpu_s();
	for (long i = 0; i < n; i++) {
		key_of(i, k);
		buf_reset(&out);
		hits += cache_get(&c, k, &out);
	}
	printf("files:  %.2f us CPU a hit (%ld of %ld)\n", (cpu_s() - c0) * 1e6 / (double)n, hits, n);
	/* The first pass marks each entry used (a write each, as a day-old cache would); the second does not. */
	for (int pass = 0; pass < 2; pass++) {
		hits = 0;
		c0 = cpu_s();
		for (long i = 0; i < n; i++) {
			key_of(i, k);
			buf_reset(&out);
			hits += sq_get(&s, k, &out, now + 3600 * (1 - pass) + 60);
		}
		printf("sqlite: %.2f us CPU a hit%s (%ld of %ld)\n", (cpu_s() - c0) * 1e6 / (double)n,
		       pass ? "" : ", marking it used (once a minute an entry)", hits, n);
	}
	sq_close(&s);
	cache_close(&c);

	/* One-shot: open, hit, close, as ai-summarize does on a hit. */
	c0 = cpu_s();
	for (long i = 0; i < once; i++) {
		key_of(i % n, k);
		buf_reset(&out);
		if (cache_open(&c, fdir, 0, (uint64_t)4 << 30, &err))
			return 1;
		cache_get(&c, k, &out);
		cache_close(&c);
	}
	printf("files:  %.1f us CPU an open + hit + close\n", (cpu_s() - c0) * 1e6 / (double)once);
	c0 = cpu_s();
	for (long i = 0; i < once; i++) {
		key_of(i % n, k);
		buf_reset(&out);
		if (sq_open(&s, path))
			return 1;
		sq_get(&s, k, &out, now + 120);
		sq_close(&s);
	}
	printf("sqlite: %.1f us CPU an open + hit + close\n", (cpu_s() - c0) * 1e6 / (double)once);
	buf_release(&out);
	return 0;
}
