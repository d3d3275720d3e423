/* t_sqltool.c - unit tests of the read-only SQL tool, against a hostile model. */
#include "agent/sqltool.h"
#include "tap.h"

#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];            /* the test's own temporary directory */
static char dbpath[128];        /* the test database */
static const char *target = dbpath; /* the database query() and refused() run on */

static void path_in_dir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static bool exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Reads a whole file into an owned buffer (free()), or NULL. */
static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	char *data = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)n + 1);
		if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return data;
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "setup failed: %s: %s\n", sql, msg ? msg : "?");
		exit(1);
	}
}

/* The test database: every column type, a view a hostile file might hold, an FTS5 index. */
static void make_db(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int i;

	path_in_dir(dbpath, sizeof(dbpath), "test.db");
	if (sqlite3_open(dbpath, &db) != SQLITE_OK) {
		fprintf(stderr, "cannot create %s\n", dbpath);
		exit(1);
	}
	exec_or_die(db,
		"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, note);"
		"INSERT INTO t VALUES (1, 'apple', 1.25, x'00ff10', NULL);"
		"INSERT INTO t VALUES (2, 'pear \"quoted\" / caf\xc3\xa9', -0.5, x'', 'n');"
		"INSERT INTO t VALUES (9223372036854775807, 'big', 1e300, NULL, 42);"
		"INSERT INTO t VALUES (-9223372036854775808, 'bad utf8 \xff\xfe end', 0.0, "
		"  zeroblob(2000), 1);"
		"CREATE TABLE many(n INTEGER, pad TEXT);"
		"CREATE VIEW evil AS SELECT load_extension('/nonexistent') AS x;"
		"CREATE VIRTUAL TABLE docs USING fts5(body);"
		"INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dogs sleep');");
	if (sqlite3_prepare_v2(db, "INSERT INTO many VALUES (?, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')",
			       -1, &st, NULL) != SQLITE_OK)
		exit(1);
	exec_or_die(db, "BEGIN");
	for (i = 0; i < 5000; i++) {
		sqlite3_bind_int(st, 1, i);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	exec_or_die(db, "COMMIT");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* sql made printable on one TAP line: control bytes become '?', long text is cut. */
static const char *shown(const char *sql)
{
	static char out[64];
	size_t i;

	if (!sql)
		return "(null)";
	for (i = 0; i + 1 < sizeof(out) && sql[i]; i++)
		out[i] = (unsigned char)sql[i] < 0x20 ? '?' : sql[i];
	out[i] = '\0';
	return out;
}

/* Runs sql with opts o, expecting success; returns the owned rows or NULL. */
static json_object *query(const char *sql, const struct sqltool_opts *o, bool *cut)
{
	struct ai_err err = { 0, 0, "" };
	json_object *rows = NULL;
	bool dummy;

	if (sqltool_query(target, sql, o, &rows, cut ? cut : &dummy, &err)) {
		ok(0, "query succeeds: %s", shown(sql));
		printf("#   error: %s\n", err.msg);
		return NULL;
	}
	return rows;
}

/* Runs sql on path, expecting failure with a message containing want and the given code. */
static void refused_on(const char *path, const char *sql, const char *want, int code)
{
	struct ai_err err = { 0, 0, "" };
	json_object *rows = (json_object *)&err;    /* must be reset to NULL */
	bool cut = true;
	int rc = sqltool_query(path, sql, NULL, &rows, &cut, &err);

	if (!ok(rc == -1 && rows == NULL && !cut && strstr(err.msg, want) && err.code == code,
		"refused '%s': %s", shown(sql), want))
		printf("#   rc %d, code %d, message '%s'\n", rc, err.code, err.msg);
	if (rc == 0)
		json_object_put(rows);
}

static void refused(const char *sql, const char *want)
{
	refused_on(target, sql, want, AI_EX_DATAERR);
}

static const char *field_str(json_object *rows, size_t i, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(json_object_array_get_idx(rows, i), key, &v))
		return "(missing)";
	return json_object_get_string(v);
}

static void test_types(void)
{
	json_object *rows, *r, *v;
	bool cut = true;

	rows = query("SELECT * FROM t ORDER BY name", NULL, &cut);
	if (!rows)
		return;
	is_int(json_object_array_length(rows), 4, "four rows");
	ok(!cut, "not truncated");
	r = json_object_array_get_idx(rows, 0);
	ok(json_object_object_get_ex(r, "id", &v) && json_object_is_type(v, json_type_int) &&
	   json_object_get_int64(v) == 1, "integer as int64");
	ok(json_object_object_get_ex(r, "price", &v) && json_object_is_type(v, json_type_double) &&
	   json_object_get_double(v) == 1.25, "real as double");
	ok(json_object_object_get_ex(r, "name", &v) && json_object_is_type(v, json_type_string),
	   "text as string");
	is_str(json_object_get_string(v), "apple", "text value");
	ok(json_object_object_get_ex(r, "data", &v) && json_object_is_type(v, json_type_string),
	   "small blob as string");
	is_str(json_object_get_string(v), "AP8Q", "small blob in base64");
	ok(json_object_object_get_ex(r, "note", &v) && v == NULL, "NULL as JSON null");
	is_str(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
	       "{\"id\":1,\"name\":\"apple\",\"price\":1.25,\"data\":\"AP8Q\",\"note\":null}",
	       "columns in order");
	is_str(field_str(rows, 3, "name"), "pear \"quoted\" / caf\xc3\xa9", "quotes and UTF-8 kept");
	is_str(field_str(rows, 3, "data"), "", "empty blob as empty base64");
	ok(json_object_object_get_ex(json_object_array_get_idx(rows, 2), "id", &v) &&
	   json_object_get_int64(v) == INT64_MAX, "INT64_MAX survives");
	ok(json_object_object_get_ex(json_object_array_get_idx(rows, 1), "id", &v) &&
	   json_object_get_int64(v) == INT64_MIN, "INT64_MIN survives");
	is_str(field_str(rows, 1, "name"), "bad utf8 \xef\xbf\xbd\xef\xbf\xbd end",
	       "invalid UTF-8 replaced by U+FFFD");
	is_str(field_str(rows, 1, "data"), "<blob 2000 bytes>", "a large blob is described");
	ok(json_object_object_get_ex(json_object_array_get_idx(rows, 2), "price", &v) &&
	   json_object_get_double(v) == 1e300, "a large real");
	json_object_put(rows);

	rows = query("SELECT 1 AS a, 2 AS a, 3 AS a, 9e999 AS inf, -9e999 AS ninf, "
		     "'a' || char(0) || 'b' AS nul, 0.1 + 0.2 AS sum", NULL, NULL);
	if (rows) {
		is_str(json_object_to_json_string_ext(json_object_array_get_idx(rows, 0),
						      JSON_C_TO_STRING_PLAIN),
		       "{\"a\":1,\"a_2\":2,\"a_3\":3,\"inf\":\"Infinity\",\"ninf\":\"-Infinity\","
		       "\"nul\":\"a\\u0000b\",\"sum\":0.30000000000000004}",
		       "repeated names, infinities and NUL");
		json_object_put(rows);
	}

	rows = query("  -- a comment first\n SELECT count(*) AS n FROM many; ;  /* trailing */ ",
		     NULL, NULL);
	if (rows) {
		is_str(field_str(rows, 0, "n"), "5000", "comments and semicolons around one statement");
		json_object_put(rows);
	}
	rows = query("SELECT n FROM many WHERE 0", NULL, &cut);
	if (rows) {
		ok(json_object_array_length(rows) == 0 && !cut, "no rows is an empty array");
		json_object_put(rows);
	}
	rows = query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10) "
		     "SELECT sum(x) AS s, json_object('k', max(x)) AS j, upper('a') AS u, "
		     "date('2024-01-31', '+1 day') AS d, sqrt(16) AS r FROM c", NULL, NULL);
	if (rows) {
		is_str(json_object_to_json_string_ext(json_object_array_get_idx(rows, 0),
						      JSON_C_TO_STRING_PLAIN),
		       "{\"s\":55,\"j\":\"{\\\"k\\\":10}\",\"u\":\"A\",\"d\":\"2024-02-01\",\"r\":4.0}",
		       "a bounded recursive CTE and allowed functions");
		json_object_put(rows);
	}
	rows = query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 't'", NULL, NULL);
	if (rows) {
		is_str(field_str(rows, 0, "name"), "t", "the schema can be read");
		json_object_put(rows);
	}
	rows = query("SELECT rowid, body FROM docs WHERE docs MATCH 'fox' ORDER BY bm25(docs)",
		     NULL, NULL);
	if (rows) {
		is_str(field_str(rows, 0, "body"), "the quick brown fox", "full-text search works");
		json_object_put(rows);
	}
	rows = query("EXPLAIN QUERY PLAN SELECT * FROM t WHERE id = 1", NULL, NULL);
	ok(rows && json_object_array_length(rows) >= 1, "EXPLAIN QUERY PLAN is allowed");
	json_object_put(rows);
	rows = query("SELECT sum(value) AS s FROM json_each('[1, 2, 3]')", NULL, NULL);
	if (rows) {
		is_str(field_str(rows, 0, "s"), "6", "table-valued json_each works");
		json_object_put(rows);
	}
}

static void test_refused(void)
{
	char attach[256], vacuum[256], sql[512], other[256];

	refused("INSERT INTO t(name) VALUES ('x')", "INSERT is not allowed");
	refused("UPDATE t SET name = 'x'", "UPDATE is not allowed");
	refused("DELETE FROM t", "DELETE is not allowed");
	refused("UPDATE sqlite_master SET sql = 'x'", "table sqlite_master may not be modified");
	refused("UPDATE sqlite_schema SET type='table', name='t', tbl_name='t', rootpage=0, "
		"sql='x' WHERE rowid=1", "may not be modified");
	refused("DELETE FROM sqlite_master", "may not be modified");
	refused("DROP TABLE t", "changing the schema (CREATE, DROP, ANALYZE) is not allowed");
	refused("DROP VIEW evil", "changing the schema");
	refused("CREATE TABLE u(x)", "changing the schema");
	refused("CREATE TEMP TABLE u(x)", "changing the schema");
	refused("CREATE INDEX i ON t(name)", "changing the schema");
	refused("CREATE VIEW v AS SELECT 1", "changing the schema");
	refused("CREATE VIRTUAL TABLE v USING fts5(x)", "changing the schema");
	refused("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END", "not allowed");
	refused("ALTER TABLE t ADD COLUMN z", "ALTER TABLE is not allowed");
	refused("ANALYZE", "not allowed");
	refused("REINDEX", "REINDEX is not allowed");
	refused("ATTACH DATABASE '/tmp/x' AS x", "ATTACH is not allowed");
	path_in_dir(attach, sizeof(attach), "attached.db");
	snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS x", attach);
	refused(sql, "ATTACH is not allowed");
	ok(!exists(attach), "ATTACH created no file");
	refused("DETACH DATABASE main", "DETACH is not allowed");
	refused("PRAGMA query_only=0", "PRAGMA query_only is not allowed");
	refused("PRAGMA writable_schema=1", "PRAGMA writable_schema is not allowed");
	refused("PRAGMA journal_mode=WAL", "PRAGMA journal_mode is not allowed");
	refused("PRAGMA table_info(t)", "PRAGMA table_info is not allowed");
	refused("SELECT * FROM pragma_table_info('t')", "PRAGMA table_info is not allowed");
	refused("SELECT * FROM pragma_query_only(0)", "pragma_query_only");
	refused("SELECT * FROM pragma_query_only", "PRAGMA query_only is not allowed");
	refused("PRAGMA data_version", "no PRAGMA may run");
	refused("/* hidden */ -- also\n pragma\tdata_version;", "no PRAGMA may run");
	refused("SELECT * FROM pragma_data_version('x')", "pragma_data_version");
	refused("SELECT load_extension('x')", "function 'load_extension' is not allowed");
	refused("SELECT readfile('/etc/passwd')", "readfile");
	refused("SELECT writefile('/tmp/z', 'x')", "writefile");
	refused("SELECT sqlite_compileoption_get(0)", "function 'sqlite_compileoption_get' is not allowed");
	refused("SELECT fts3_tokenizer('simple')", "function 'fts3_tokenizer' is not allowed");
	refused("SELECT * FROM evil", "load_extension");
	refused("VACUUM", "refused");
	path_in_dir(vacuum, sizeof(vacuum), "y.db");
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", vacuum);
	refused(sql, "refused");
	ok(!exists(vacuum), "VACUUM INTO created no file");
	if (!exists("/tmp/y.db")) {
		refused("VACUUM INTO '/tmp/y.db'", "refused");
		ok(!exists("/tmp/y.db"), "VACUUM INTO '/tmp/y.db' created no file");
	}
	refused("BEGIN", "BEGIN is not allowed");
	refused("BEGIN IMMEDIATE", "BEGIN is not allowed");
	refused("COMMIT", "COMMIT is not allowed");
	refused("SAVEPOINT s", "SAVEPOINT is not allowed");
	refused("RELEASE s", "RELEASE is not allowed");
	refused("SELECT 1; DROP TABLE t", "only one statement is allowed");
	refused("SELECT 1; -- fine\n SELECT 2", "only one statement is allowed");
	refused("SELECT 1 /* */ ; PRAGMA query_only=0", "only one statement is allowed");
	refused("INSERT INTO t(name) VALUES ('x'); SELECT 1", "INSERT is not allowed");
	refused("WITH x AS (SELECT 1) DELETE FROM t", "DELETE is not allowed");
	refused("REPLACE INTO t(id) VALUES (1)", "INSERT is not allowed");
	refused("", "empty query");
	refused(" ;; -- nothing\n", "empty query");
	refused("SELEC 1", "query failed (sqlite: near \"SELEC\": syntax error)");
	refused("SELECT nope FROM t", "query failed (sqlite: no such column: nope)");
	refused("SELECT * FROM nope", "no such table: nope");
	refused("SELECT replace(hex(zeroblob(3000000)), '0', 'ab')", "no value may be longer than");
	refused("SELECT zeroblob(100000000)", "no value may be longer than");
	refused_on(dbpath, NULL, "required", AI_EX_SOFTWARE);
	refused_on(NULL, "SELECT 1", "required", AI_EX_SOFTWARE);

	/* A long SQL text is refused before SQLite sees it. */
	{
		size_t n = SQLRO_MAX_SQL_LEN + 10;
		char *big = malloc(n + 1);

		if (!big)
			abort();
		memset(big, ' ', n);
		memcpy(big, "SELECT 1", 8);
		big[n] = '\0';
		refused(big, "query longer than");
		free(big);
	}

	path_in_dir(other, sizeof(other), "missing.db");
	refused_on(other, "SELECT 1", "no such file", AI_EX_NOINPUT);
	ok(!exists(other), "a missing database is not created");
	refused_on(dir, "SELECT 1", "is a directory", AI_EX_NOINPUT);
	path_in_dir(other, sizeof(other), "notadb.db");
	{
		FILE *f = fopen(other, "w");

		if (f) {
			for (int i = 0; i < 200; i++)
				fputs("this is not a database, just text. ", f);
			fclose(f);
		}
	}
	refused_on(other, "SELECT 1 FROM sqlite_schema", "is not a usable SQLite database", AI_EX_DATAERR);
	refused_on(other, "SELECT 1 FROM sqlite_schema", "file is not a database", AI_EX_DATAERR);
	unlink(other);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_limits(void)
{
	struct sqltool_opts o = { 300, 0, 0, NULL };
	struct ai_err err = { 0, 0, "" };
	json_object *rows = NULL;
	bool cut = false;
	double t0, ms;
	int rc;

	t0 = now_ms();
	rc = sqltool_query(dbpath, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
			 "SELECT count(*) FROM c", &o, &rows, &cut, &err);
	ms = now_ms() - t0;
	ok(rc == -1 && rows == NULL, "a runaway recursive CTE fails");
	is_str(err.msg, "query timed out after 300 ms: make it cheaper (a LIMIT, a narrower "
	       "WHERE, no unbounded recursion)", "with a timeout message");
	is_int(err.code, AI_EX_TEMPFAIL, "as a temporary failure");
	ok(ms >= 290 && ms < 1500, "within the limit (%.0f ms for 300 ms)", ms);
	printf("# runaway CTE stopped after %.1f ms (limit 300 ms)\n", ms);

	o.timeout_ms = 200;
	t0 = now_ms();
	rc = sqltool_query(dbpath, "SELECT count(*) FROM many a, many b, many c", &o, &rows, &cut, &err);
	ms = now_ms() - t0;
	ok(rc == -1 && strstr(err.msg, "timed out after 200 ms") && ms < 1200,
	   "a cross join times out too (%.0f ms)", ms);

	o = (struct sqltool_opts){ 0, 10, 0, NULL };
	rows = query("SELECT n FROM many ORDER BY n", &o, &cut);
	if (rows) {
		is_int(json_object_array_length(rows), 10, "row cap: 10 rows");
		ok(cut, "row cap sets truncated");
		is_str(field_str(rows, 9, "n"), "9", "the first rows, in order");
		json_object_put(rows);
	}
	rows = query("SELECT n FROM many ORDER BY n LIMIT 10", &o, &cut);
	if (rows) {
		ok(json_object_array_length(rows) == 10 && !cut,
		   "exactly max_rows rows are not truncated");
		json_object_put(rows);
	}

	/*
	 * A row {"n":N,"pad":"x...x"} is 56 bytes for N < 10 and 57 up to 99:
	 * "[" + 10 * 56 + 7 * 57 + 16 commas + "]" = 977 bytes, and an 18th row would pass 1000.
	 */
	o = (struct sqltool_opts){ 0, 0, 1000, NULL };
	rows = query("SELECT n, pad FROM many ORDER BY n", &o, &cut);
	if (rows) {
		const char *s = json_object_to_json_string_ext(rows, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
		ok(cut, "byte cap sets truncated");
		ok(strlen(s) <= 1000, "the output fits the byte cap (%zu bytes)", strlen(s));
		ok(strlen(s) > 1000 - 70, "and uses it (%zu bytes)", strlen(s));
		is_int(json_object_array_length(rows), 17, "17 whole rows");
		json_object_put(rows);
	}
	o = (struct sqltool_opts){ 0, 0, 10, NULL };
	rows = query("SELECT n, pad FROM many", &o, &cut);
	if (rows) {
		ok(json_object_array_length(rows) == 0 && cut,
		   "a first row larger than the cap gives an empty, truncated result");
		json_object_put(rows);
	}
	rows = query("SELECT n FROM many", NULL, &cut);
	if (rows) {
		ok(json_object_array_length(rows) == SQLRO_DEFAULT_MAX_ROWS && cut,
		   "default row cap %ld", SQLRO_DEFAULT_MAX_ROWS);
		json_object_put(rows);
	}
	rc = sqltool_query(dbpath, "SELECT 1 AS one", NULL, &rows, NULL, NULL);
	ok(rc == 0 && rows && json_object_array_length(rows) == 1,
	   "NULL truncated and NULL err are allowed");
	json_object_put(rows);
}

/*
 * A database in WAL mode with rows still in the log, as ai-index leaves
 * its knowledge base while a writer is open: the reader sees them, and
 * the main file is not touched (SQLite itself may create the -shm file).
 */
static void test_wal(void)
{
	char wal[160], walfile[176], shm[176];
	sqlite3 *w = NULL;
	json_object *rows;
	char *before, *after;
	size_t nb = 0, na = 0;

	path_in_dir(wal, sizeof(wal), "wal.db");
	snprintf(walfile, sizeof(walfile), "%s-wal", wal);
	snprintf(shm, sizeof(shm), "%s-shm", wal);
	if (sqlite3_open(wal, &w) != SQLITE_OK) {
		ok(0, "create a WAL database");
		return;
	}
	exec_or_die(w, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
		    "CREATE TABLE k(v); INSERT INTO k VALUES ('in the log');");
	before = slurp(wal, &nb);
	target = wal;
	rows = query("SELECT v FROM k", NULL, NULL);
	if (rows) {
		is_str(field_str(rows, 0, "v"), "in the log", "rows still in the WAL are read");
		json_object_put(rows);
	}
	refused("INSERT INTO k VALUES ('x')", "INSERT is not allowed");
	after = slurp(wal, &na);
	ok(before && after && na == nb && memcmp(before, after, nb) == 0,
	   "the WAL database's main file is unchanged");
	target = dbpath;
	free(before);
	free(after);
	sqlite3_close(w);
	unlink(wal);
	unlink(walfile);
	unlink(shm);
}

/* Nothing but the database itself may be left in the directory. */
static void test_dir_clean(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int others = 0;

	if (!d) {
		ok(0, "open the test directory");
		return;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "test.db")) {
			printf("# unexpected file %s\n", e->d_name);
			others++;
		}
	closedir(d);
	is_int(others, 0, "no file was created beside the database (journal, WAL, attach, vacuum)");
}

int main(void)
{
	char *before, *after;
	size_t nb = 0, na = 0;
	struct stat st0, st1;

	snprintf(dir, sizeof(dir), "/tmp/t_sqltool.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_db();
	before = slurp(dbpath, &nb);
	stat(dbpath, &st0);
	ok(before && nb > 0, "read the database (%zu bytes)", nb);

	test_types();
	test_refused();
	test_limits();
	test_wal();

	after = slurp(dbpath, &na);
	stat(dbpath, &st1);
	ok(after && na == nb && memcmp(before, after, nb) == 0,
	   "the database file's bytes are unchanged after all of it");
	ok(st0.st_mtime == st1.st_mtime, "and its modification time too");
	test_dir_clean();
	free(before);
	free(after);
	unlink(dbpath);
	rmdir(dir);
	return tap_done();
}
