/*
 * fuzz_sqltool.c - libFuzzer harness for the read-only SQL guard.
 *
 * The input, cut at its first NUL, is the model's SQL.  It runs through
 * sqltool_query on a scratch database (tables, a view naming a forbidden
 * function, an FTS5 table) with a short deadline.  Whatever the answer,
 * the database file must stay byte for byte the same and its directory
 * must hold nothing new (no journal, no WAL, no VACUUM INTO or ATTACH
 * target).  A statement the guard accepts is then run again on a
 * writable copy with no guard at all: it must change nothing there
 * either, so the guard's own classification (one statement, no PRAGMA,
 * sqlite3_stmt_readonly, the authorizer) is tested, not only the
 * read-only connection underneath it.  Anything else calls abort().
 */
#include "agent/sqltool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEADLINE_MS 100

static void check(int cond)
{
	if (!cond)
		abort();
}

static char dir[64], dbpath[96], copypath[96];
static unsigned char *pristine;
static size_t pristine_len;

static void exec(sqlite3 *db, const char *sql)
{
	check(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	check(fd >= 0 && fstat(fd, &st) == 0);
	p = malloc((size_t)st.st_size + 1);
	check(p != NULL && read(fd, p, (size_t)st.st_size) == st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void put(const char *path, const unsigned char *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	check(fd >= 0 && write(fd, p, len) == (ssize_t)len);
	close(fd);
}

static void cleanup(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[400];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static void setup(void)
{
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "/tmp/fuzz_sqltool.XXXXXX");
	check(mkdtemp(dir) != NULL);
	atexit(cleanup);
	snprintf(dbpath, sizeof(dbpath), "%s/scratch.db", dir);
	snprintf(copypath, sizeof(copypath), "%s/copy.db", dir);
	check(sqlite3_open(dbpath, &db) == SQLITE_OK);
	exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, note);"
		 "INSERT INTO t VALUES (1, 'apple', 1.25, x'00ff10', NULL);"
		 "INSERT INTO t VALUES (2, 'caf\xc3\xa9 \xff', -0.5, zeroblob(1500), 'n');"
		 "CREATE TABLE many(n INTEGER, pad TEXT);"
		 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
		 "INSERT INTO many SELECT i, printf('%040d', i) FROM c;"
		 "CREATE INDEX many_n ON many(n);"
		 "CREATE VIEW evil AS SELECT load_extension('/nonexistent') AS x;"
		 "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM many; END;"
		 "CREATE VIRTUAL TABLE docs USING fts5(body);"
		 "INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dogs sleep');");
	check(sqlite3_close(db) == SQLITE_OK);
	pristine = slurp(dbpath, &pristine_len);
	put(copypath, pristine, pristine_len);
}

/* The directory holds the two databases and nothing else; both are unchanged. */
static void unchanged(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned char *now;
	size_t len;

	check(d != NULL);
	while ((e = readdir(d)))
		check(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		      !strcmp(e->d_name, "scratch.db") || !strcmp(e->d_name, "copy.db"));
	closedir(d);
	now = slurp(dbpath, &len);
	check(len == pristine_len && memcmp(now, pristine, len) == 0);
	free(now);
	now = slurp(copypath, &len);
	check(len == pristine_len && memcmp(now, pristine, len) == 0);
	free(now);
}

static int stop_at(void *arg)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1000 + now.tv_nsec / 1000000 > *(long long *)arg;
}

/* The accepted statement on a writable connection with no guard: it must not write. */
static void unguarded(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	struct timespec now;
	long long deadline;

	clock_gettime(CLOCK_MONOTONIC, &now);
	deadline = now.tv_sec * 1000 + now.tv_nsec / 1000000 + DEADLINE_MS;
	check(sqlite3_open_v2(copypath, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQLRO_MAX_VALUE_LEN);
	sqlite3_progress_handler(db, 1000, stop_at, &deadline);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && st) {
		check(sqlite3_stmt_readonly(st));
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	}
	sqlite3_finalize(st);
	check(sqlite3_total_changes(db) == 0);
	check(sqlite3_close(db) == SQLITE_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqltool_opts o = { DEADLINE_MS, 50, 4096, NULL };
	json_object *rows = (json_object *)&o;
	struct ai_err err;
	bool cut;
	char *sql;
	int rc;

	if (!pristine)
		setup();
	sql = malloc(size + 1);
	check(sql != NULL);
	memcpy(sql, data, size);
	sql[size] = '\0';
	memset(&err, 0, sizeof(err));
	rc = sqltool_query(dbpath, sql, &o, &rows, &cut, &err);
	if (rc == 0) {
		check(json_object_is_type(rows, json_type_array));
		check(json_object_array_length(rows) <= 50);
		json_object_put(rows);
		unguarded(sql);
	} else {
		check(rc == -1 && !rows && err.msg[0]);
		check(err.code == AI_EX_DATAERR || err.code == AI_EX_TEMPFAIL ||
		      err.code == AI_EX_OSERR);
	}
	unchanged();
	free(sql);
	return 0;
}
