/*
 * sqltool.c - one read-only statement on a SQLite database, for ai-agent.
 *
 * See sqltool.h for the layers of defence.  The reasoning behind the ones
 * that are easy to get wrong:
 *
 * - SQLITE_OPEN_READONLY is the foundation, not mode=ro or
 *   PRAGMA query_only: the former only means something when the path
 *   is read as a URI, and the latter is a setting SQL could undo.
 * - The authorizer is the gate for statements that a read-only
 *   connection can still run: ATTACH (which may create a file), PRAGMA
 *   (which changes connection state), and BEGIN or SAVEPOINT (which
 *   sqlite3_stmt_readonly() calls read-only).  SQLite has no authorizer
 *   code for VACUUM: VACUUM and VACUUM INTO (which writes a new file even
 *   from a read-only database) are refused because
 *   sqlite3_stmt_readonly() is false for them and, were that check gone,
 *   because VACUUM INTO attaches its target and ATTACH is refused.
 * - Two authorizer calls are let through although they are not reads,
 *   both because SQLite makes them on its own behalf: PRAGMA data_version
 *   without an argument (FTS5 reads it; a PRAGMA statement in the query
 *   is refused by looking at its first keyword instead), and an UPDATE
 *   of the schema table, which SQLite 3.40 compiles and discards whenever
 *   a virtual table declares its columns (answered SQLITE_IGNORE, so the
 *   columns would not change even if it ran).
 * - SQLite runs the authorizer for statements it prepares on its own
 *   behalf as well (pragma table-valued functions, FTS internals), so a
 *   pragma cannot be smuggled in as SELECT * FROM pragma_x(...).
 * - Functions are allowed from a list rather than denied by name: a
 *   hostile database file can name an application-defined or
 *   extension function in a view, and new SQLite releases add functions.
 * - The deadline is wall-clock and checked from the progress handler,
 *   so a runaway recursive CTE stops however little I/O it does.  But
 *   the progress handler runs between steps of SQLite's virtual machine,
 *   never inside one function call, and one call can take minutes within
 *   every length limit: printf('%.*c', 2000000000, 'x') loops two
 *   billion times to fail with "string or blob too big", and instr() of
 *   a 2 MB haystack and a 500 KB needle compares for about 40 s.  Capping
 *   printf's widths would leave instr, like, glob and whatever the next
 *   release adds; so the query runs in a child process that is killed at
 *   the deadline (plus a short grace for its own message), which holds
 *   whatever the SQL calls.  The child sends its rows back as JSON.
 */
#include "agent/sqltool.h"
#include "agent/text.h"
#include "buf.h"
#include "clock.h"
#include "fdio.h"
#include "utf8.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How many virtual-machine steps between two looks at the clock. */
#define PROGRESS_STEPS 1000

/*
 * Every function a read-only query may call: SQLite's core scalar,
 * aggregate, window, date, math and JSON functions, and the FTS
 * auxiliaries the knowledge base needs.  Deliberately absent, among
 * others: load_extension, readfile, writefile, edit, fts3_tokenizer,
 * fts5 (returns a pointer), sqlite_compileoption_*, and anything an
 * extension might register.
 */
static const char *const allowed_functions[] = {
	/* core scalar */
	"abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex",
	"ifnull", "iif", "instr", "length", "like", "likelihood", "likely", "lower",
	"ltrim", "max", "min", "nullif", "octet_length", "printf", "quote",
	"random", "randomblob", "replace", "round", "rtrim", "sign", "soundex",
	"sqlite_version", "substr", "substring", "trim", "typeof", "unhex",
	"unicode", "unlikely", "upper", "zeroblob",
	/* aggregate */
	"avg", "count", "group_concat", "string_agg", "sum", "total",
	/* window */
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value",
	/* date and time */
	"date", "time", "datetime", "julianday", "unixepoch", "strftime",
	"timediff", "current_date", "current_time", "current_timestamp",
	/* math */
	"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil",
	"ceiling", "cos", "cosh", "degrees", "exp", "floor", "ln", "log", "log10",
	"log2", "mod", "pi", "pow", "power", "radians", "sin", "sinh", "sqrt",
	"tan", "tanh", "trunc",
	/* JSON: every one returns a new value and changes nothing */
	"json", "json_array", "json_array_length", "json_extract", "json_insert",
	"json_object", "json_patch", "json_quote", "json_remove", "json_replace",
	"json_set", "json_type", "json_valid", "json_group_array",
	"json_group_object", "->", "->>",
	/* full-text search, for the knowledge base */
	"match", "bm25", "highlight", "snippet", "offsets", "matchinfo",
};

struct guard {
	int64_t deadline_ms;          /* mono_ms */
	bool timed_out;
	bool schema_update;           /* the authorizer saw an UPDATE of the schema table */
	char denied[200];             /* why the authorizer said no, first refusal only */
};

static bool function_allowed(const char *name)
{
	size_t i;

	if (!name)
		return false;
	for (i = 0; i < AI_ARRAY_LEN(allowed_functions); i++)
		if (!strcasecmp(allowed_functions[i], name))
			return true;
	return false;
}

static bool is_schema_table(const char *name)
{
	return name && (!strcasecmp(name, "sqlite_master") || !strcasecmp(name, "sqlite_schema") ||
			!strcasecmp(name, "sqlite_temp_master") ||
			!strcasecmp(name, "sqlite_temp_schema"));
}

static const char *action_name(int action, const char *a1)
{
	switch (action) {
	case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TEMP_INDEX: return "CREATE INDEX";
	case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TEMP_TABLE: return "CREATE TABLE";
	case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TRIGGER";
	case SQLITE_CREATE_VIEW: case SQLITE_CREATE_TEMP_VIEW: return "CREATE VIEW";
	case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE";
	case SQLITE_DROP_INDEX: case SQLITE_DROP_TEMP_INDEX: return "DROP INDEX";
	case SQLITE_DROP_TABLE: case SQLITE_DROP_TEMP_TABLE: return "DROP TABLE";
	case SQLITE_DROP_TRIGGER: case SQLITE_DROP_TEMP_TRIGGER: return "DROP TRIGGER";
	case SQLITE_DROP_VIEW: case SQLITE_DROP_TEMP_VIEW: return "DROP VIEW";
	case SQLITE_DROP_VTABLE: return "DROP VIRTUAL TABLE";
	case SQLITE_INSERT: return "INSERT";
	case SQLITE_UPDATE: return "UPDATE";
	case SQLITE_DELETE: return "DELETE";
	case SQLITE_PRAGMA: return "PRAGMA";
	case SQLITE_TRANSACTION: return a1 ? a1 : "a transaction";   /* BEGIN, COMMIT, ROLLBACK */
	case SQLITE_SAVEPOINT:
		if (a1 && !strcmp(a1, "BEGIN"))
			return "SAVEPOINT";
		if (a1 && !strcmp(a1, "ROLLBACK"))
			return "ROLLBACK TO";
		return a1 ? a1 : "SAVEPOINT";                      /* RELEASE */
	case SQLITE_ATTACH: return "ATTACH";
	case SQLITE_DETACH: return "DETACH";
	case SQLITE_ALTER_TABLE: return "ALTER TABLE";
	case SQLITE_REINDEX: return "REINDEX";
	case SQLITE_ANALYZE: return "ANALYZE";
	default: return NULL;
	}
}

static int authorize(void *arg, int action, const char *a1, const char *a2,
		     const char *db, const char *trigger)
{
	struct guard *g = arg;
	const char *what;

	(void)db;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (function_allowed(a2))
			return SQLITE_OK;
		if (!g->denied[0])
			snprintf(g->denied, sizeof(g->denied),
				 "function '%.60s' is not allowed in a read-only query",
				 a2 ? a2 : "?");
		return SQLITE_DENY;
	case SQLITE_PRAGMA:
		/*
		 * FTS5 reads PRAGMA data_version (a counter, no side effect)
		 * to notice changes by other connections; without it the
		 * knowledge base cannot be searched.  A PRAGMA statement
		 * written by the query itself is refused by is_pragma() below.
		 */
		if (a1 && !strcasecmp(a1, "data_version") && !a2)
			return SQLITE_OK;
		break;
	case SQLITE_UPDATE:
		/*
		 * SQLite 3.40 compiles, and throws away, an UPDATE of the
		 * schema table whenever a virtual table declares its columns
		 * (FTS5, json_each, pragma functions), and asks the
		 * authorizer about it.  SQLITE_IGNORE lets that code compile
		 * with the columns left unchanged; a real UPDATE of the
		 * schema by the query is still refused, by
		 * sqlite3_stmt_readonly() below, by the defensive flag and
		 * by the read-only connection.
		 */
		if (is_schema_table(a1) && !trigger) {
			g->schema_update = true;
			return SQLITE_IGNORE;
		}
		break;
	default:
		break;
	}
	if (!g->denied[0]) {
		what = action_name(action, a1);
		if (action == SQLITE_PRAGMA && a1)
			snprintf(g->denied, sizeof(g->denied),
				 "PRAGMA %.60s is not allowed: the database is read-only and "
				 "no PRAGMA may run (read sqlite_schema to see the tables)", a1);
		else if ((action == SQLITE_INSERT || action == SQLITE_DELETE) && is_schema_table(a1))
			snprintf(g->denied, sizeof(g->denied),
				 "changing the schema (CREATE, DROP, ANALYZE) is not allowed: the "
				 "database is read-only, only SELECT may run");
		else if (what)
			snprintf(g->denied, sizeof(g->denied),
				 "%s is not allowed: the database is read-only, only SELECT "
				 "may run", what);
		else
			snprintf(g->denied, sizeof(g->denied),
				 "operation %d is not allowed: the database is read-only, only "
				 "SELECT may run", action);
	}
	return SQLITE_DENY;
}

static int progress(void *arg)
{
	struct guard *g = arg;

	if (mono_ms() >= g->deadline_ms) {
		g->timed_out = true;
		return 1;
	}
	return 0;
}

/*
 * Skips blanks, SQL comments and semicolons.  Returns what follows, or NULL
 * when a comment runs to the end (SQLite accepts an unterminated comment
 * at the end of the text).
 */
static const char *skip_filler(const char *s)
{
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' ||
		       *s == '\v' || *s == ';')
			s++;
		if (s[0] == '-' && s[1] == '-') {
			if (!(s = strchr(s, '\n')))
				return NULL;
		} else if (s[0] == '/' && s[1] == '*') {
			if (!(s = strstr(s + 2, "*/")))
				return NULL;
			s += 2;
		} else {
			return s;
		}
	}
}

/* True when s holds nothing but blanks, comments and semicolons. */
static bool only_filler(const char *s)
{
	s = skip_filler(s);
	return !s || *s == '\0';
}

/* True when the statement's first keyword is PRAGMA (after blanks and comments). */
static bool is_pragma(const char *s)
{
	s = skip_filler(s);
	return s && !strncasecmp(s, "pragma", 6) &&
	       !((s[6] >= 'a' && s[6] <= 'z') || (s[6] >= 'A' && s[6] <= 'Z') ||
		 (s[6] >= '0' && s[6] <= '9') || s[6] == '_' || s[6] == '$' ||
		 (unsigned char)s[6] >= 0x80);
}

/* The error for a failed prepare or step: the authorizer's or the clock's reason first. */
static int fail_sqlite(sqlite3 *db, const struct guard *g, const struct sqltool_opts *o,
		       const char *path, int rc, struct ai_err *err)
{
	const char *msg = sqlite3_errmsg(db);

	if (g->timed_out)
		return ai_errf(err, AI_EX_TEMPFAIL,
			       "query timed out after %ld ms: make it cheaper (a LIMIT, a narrower "
			       "WHERE, no unbounded recursion)", o->timeout_ms);
	if (g->denied[0])
		return ai_errf(err, AI_EX_DATAERR, "query refused: %s", g->denied);
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return ai_errf(err, AI_EX_DATAERR, "'%s' is not a usable SQLite database (sqlite: %s)",
			       path, msg);
	case SQLITE_NOMEM:
		return ai_errf(err, AI_EX_OSERR, "out of memory running the query");
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ai_errf(err, AI_EX_TEMPFAIL, "database '%s' is locked (sqlite: %s): try again later",
			       path, msg);
	case SQLITE_TOOBIG:
		return ai_errf(err, AI_EX_DATAERR,
			       "query failed (sqlite: %s): no value may be longer than %d bytes",
			       msg, SQLRO_MAX_VALUE_LEN);
	default:
		return ai_errf(err, AI_EX_DATAERR, "query failed (sqlite: %s)", msg);
	}
}

static json_object *blob_value(const void *p, size_t n)
{
	char b64[sodium_base64_ENCODED_LEN(SQLRO_BLOB_INLINE, sodium_base64_VARIANT_ORIGINAL)];
	char msg[64];

	if (n > SQLRO_BLOB_INLINE) {
		snprintf(msg, sizeof(msg), "<blob %zu bytes>", n);
		return json_object_new_string(msg);
	}
	sodium_bin2base64(b64, sizeof(b64), p ? p : (const void *)"", n,
			  sodium_base64_VARIANT_ORIGINAL);
	return json_object_new_string(b64);
}

static json_object *column_value(sqlite3_stmt *st, int i, bool *oom)
{
	json_object *v = NULL;
	double d;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v = json_object_new_int64(sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		d = sqlite3_column_double(st, i);
		if (isnan(d))
			return NULL;
		if (isinf(d))
			v = json_object_new_string(d > 0 ? "Infinity" : "-Infinity");
		else
			v = json_object_new_double(d);
		break;
	case SQLITE_TEXT: {
		const char *s = (const char *)sqlite3_column_text(st, i);

		if (!s && sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM) {
			*oom = true;
			return NULL;
		}
		v = text_json(s, (size_t)sqlite3_column_bytes(st, i), TEXT_NUL_KEEP);
		break;
	}
	case SQLITE_BLOB: {
		const void *p = sqlite3_column_blob(st, i);

		v = blob_value(p, (size_t)sqlite3_column_bytes(st, i));
		break;
	}
	default:
		return NULL;    /* SQL NULL is json-c's NULL object */
	}
	if (!v)
		*oom = true;
	return v;
}

/*
 * Adds v under name, or name_2, name_3, ... when a column name repeats.
 * Takes v in every case.  Returns 0 or -1 (out of memory).
 */
static int row_add(json_object *row, const char *name, json_object *v)
{
	struct buf key;
	int n, rc;

	if (!json_object_object_get_ex(row, name, NULL)) {
		if (json_object_object_add(row, name, v) == 0)
			return 0;
		json_object_put(v);
		return -1;
	}
	buf_init(&key, 0);
	for (n = 2; ; n++) {
		buf_reset(&key);
		if (buf_addf(&key, "%s_%d", name, n)) {
			json_object_put(v);
			buf_release(&key);
			return -1;
		}
		if (!json_object_object_get_ex(row, key.data, NULL))
			break;
	}
	rc = json_object_object_add(row, key.data, v);
	if (rc)
		json_object_put(v);
	buf_release(&key);
	return rc ? -1 : 0;
}

static json_object *make_row(sqlite3_stmt *st)
{
	json_object *row = json_object_new_object(), *v;
	int i, ncol = sqlite3_column_count(st);
	const char *name;
	bool oom = false;

	if (!row)
		return NULL;
	for (i = 0; i < ncol; i++) {
		name = sqlite3_column_name(st, i);
		if (!name)
			goto fail;
		v = column_value(st, i, &oom);
		if (oom || row_add(row, name, v))
			goto fail;
	}
	return row;
fail:
	json_object_put(row);
	return NULL;
}

static int configure(sqlite3 *db, struct guard *g, long timeout_ms)
{
	static const int off[] = {
		SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
		SQLITE_DBCONFIG_TRUSTED_SCHEMA,
		SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER,
		SQLITE_DBCONFIG_WRITABLE_SCHEMA,
	};
	size_t i;
	int now = -1;

	/* Each setting is read back: if this SQLite lacks one, refuse rather than run unguarded. */
	for (i = 0; i < AI_ARRAY_LEN(off); i++)
		if (sqlite3_db_config(db, off[i], 0, &now) != SQLITE_OK || now != 0)
			return -1;
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &now) != SQLITE_OK || now != 1)
		return -1;
	if (sqlite3_enable_load_extension(db, 0) != SQLITE_OK)
		return -1;
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQLRO_MAX_VALUE_LEN);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, SQLRO_MAX_SQL_LEN);
	sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 256);
	sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
	if (sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, -1) != 0)
		return -1;
	if (sqlite3_set_authorizer(db, authorize, g) != SQLITE_OK)
		return -1;
	sqlite3_progress_handler(db, PROGRESS_STEPS, progress, g);
	sqlite3_busy_timeout(db, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
	return 0;
}

static void set_deadline(struct guard *g, long ms)
{
	g->deadline_ms = mono_ms() + ms;
}

/* Both ways of running a query start here: the outputs cleared, the caller's options over the defaults. */
static int begin(const char *path, const char *sql, const struct sqltool_opts *opts, struct sqltool_opts *o,
		 json_object **rows, bool *truncated, struct ai_err *err)
{
	if (rows)
		*rows = NULL;
	if (truncated)
		*truncated = false;
	if (!path || !sql || !rows)
		return ai_errf(err, AI_EX_SOFTWARE, "sqltool_query: path, sql and rows are required");
	if (opts) {
		o->cancel = opts->cancel;
		if (opts->timeout_ms > 0)
			o->timeout_ms = opts->timeout_ms;
		if (opts->max_rows > 0)
			o->max_rows = opts->max_rows;
		if (opts->max_bytes > 0)
			o->max_bytes = opts->max_bytes;
	}
	return 0;
}

int sqltool_query_in_process(const char *path, const char *sql, const struct sqltool_opts *opts,
			   json_object **rows, bool *truncated, struct ai_err *err)
{
	struct sqltool_opts o = { SQLRO_DEFAULT_TIMEOUT_MS, SQLRO_DEFAULT_MAX_ROWS,
				SQLRO_DEFAULT_MAX_BYTES, NULL };
	struct guard g;
	struct stat st;
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	const char *tail = NULL;
	json_object *out = NULL, *row;
	size_t used = 2, len;   /* "[" and "]" */
	long n = 0;
	bool cut = false;
	int rc;

	if (begin(path, sql, opts, &o, rows, truncated, err))
		return -1;
	memset(&g, 0, sizeof(g));
	set_deadline(&g, o.timeout_ms);

	if (strnlen(sql, SQLRO_MAX_SQL_LEN + 1) > SQLRO_MAX_SQL_LEN)
		return ai_errf(err, AI_EX_DATAERR, "query longer than %d bytes", SQLRO_MAX_SQL_LEN);
	/* A clearer message than SQLite's "unable to open database file". */
	if (stat(path, &st))
		return ai_errf(err, AI_EX_NOINPUT, "cannot open database '%s': %s", path,
			       errno == ENOENT ? "no such file" : strerror(errno));
	if (S_ISDIR(st.st_mode))
		return ai_errf(err, AI_EX_NOINPUT, "cannot open database '%s': it is a directory", path);

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (!db)
			return ai_errf(err, AI_EX_OSERR, "out of memory opening database '%s'", path);
		ai_errf(err, AI_EX_NOINPUT, "cannot open database '%s' (sqlite: %s)", path,
			sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	if (configure(db, &g, o.timeout_ms)) {
		sqlite3_close(db);
		return ai_errf(err, AI_EX_SOFTWARE,
			       "cannot lock down the SQLite connection (SQLite %s is too old?)",
			       sqlite3_libversion());
	}

	rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
	if (rc != SQLITE_OK) {
		fail_sqlite(db, &g, &o, path, rc, err);
		goto fail;
	}
	if (!stmt) {
		ai_errf(err, AI_EX_DATAERR, "empty query: send one SELECT statement");
		goto fail;
	}
	if (tail && !only_filler(tail)) {
		ai_errf(err, AI_EX_DATAERR,
			"only one statement is allowed: remove everything after the first ';'");
		goto fail;
	}
	if (is_pragma(sql)) {
		ai_errf(err, AI_EX_DATAERR, "query refused: no PRAGMA may run, the database is "
			"read-only (read sqlite_schema to see the tables)");
		goto fail;
	}
	if (!sqlite3_stmt_readonly(stmt)) {
		ai_errf(err, AI_EX_DATAERR, "query refused: %s would write, and the database is "
			"read-only: only SELECT may run", g.schema_update ? "UPDATE of the schema" :
			"the statement");
		goto fail;
	}

	out = json_object_new_array();
	if (!out) {
		ai_errf(err, AI_EX_OSERR, "out of memory running the query");
		goto fail;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n >= o.max_rows) {
			cut = true;
			break;
		}
		row = make_row(stmt);
		if (!row) {
			ai_errf(err, AI_EX_OSERR, "out of memory reading row %ld", n + 1);
			goto fail;
		}
		if (!json_object_to_json_string_length(row, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE, &len)) {
			json_object_put(row);
			ai_errf(err, AI_EX_OSERR, "out of memory reading row %ld", n + 1);
			goto fail;
		}
		len += n > 0;   /* the comma before it */
		if (len > o.max_bytes || used > o.max_bytes - len) {
			json_object_put(row);
			cut = true;
			break;
		}
		if (json_object_array_add(out, row)) {
			json_object_put(row);
			ai_errf(err, AI_EX_OSERR, "out of memory reading row %ld", n + 1);
			goto fail;
		}
		used += len;
		n++;
	}
	if (!cut && rc != SQLITE_DONE) {
		fail_sqlite(db, &g, &o, path, rc, err);
		goto fail;
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	*rows = out;
	if (truncated)
		*truncated = cut;
	return 0;
fail:
	json_object_put(out);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return -1;
}

/* How long after the deadline the child is given to report its own timeout. */
#define KILL_GRACE_MS 300L

/* In the child: runs the query and writes the outcome to fd as one JSON object. */
static _Noreturn void child_query(int fd, const char *path, const char *sql,
				  const struct sqltool_opts *o)
{
	json_object *rows = NULL, *out = json_object_new_object();
	struct ai_err e;
	bool cut = false;
	const char *text;
	size_t n;

	ai_err_clear(&e);
	if (!out)
		_exit(1);
	if (sqltool_query_in_process(path, sql, o, &rows, &cut, &e)) {
		if (json_object_object_add(out, "code", json_object_new_int(e.code)) ||
		    json_object_object_add(out, "error", json_object_new_string(e.msg)))
			_exit(1);
	} else if (json_object_object_add(out, "rows", rows) ||
		   json_object_object_add(out, "truncated", json_object_new_boolean(cut))) {
		_exit(1);
	}
	text = json_object_to_json_string_length(out, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	_exit(!text || fd_write_all(fd, text, n) ? 1 : 0);
}

int sqltool_query(const char *path, const char *sql, const struct sqltool_opts *opts,
		json_object **rows, bool *truncated, struct ai_err *err)
{
	struct sqltool_opts o = { SQLRO_DEFAULT_TIMEOUT_MS, SQLRO_DEFAULT_MAX_ROWS,
				SQLRO_DEFAULT_MAX_BYTES, NULL };
	struct buf got;
	json_object *res = NULL, *v;
	long deadline;
	bool killed = false, interrupted = false, too_big = false;
	int fd[2], status = 0;
	pid_t pid;

	if (begin(path, sql, opts, &o, rows, truncated, err))
		return -1;
	if (pipe(fd))
		return ai_errf_errno(err, AI_EX_OSERR, "cannot run the query: pipe");
	if (fcntl(fd[0], F_SETFD, FD_CLOEXEC) || fcntl(fd[1], F_SETFD, FD_CLOEXEC)) {
		close(fd[0]);
		close(fd[1]);
		return ai_errf_errno(err, AI_EX_OSERR, "cannot run the query");
	}
	deadline = (long)mono_ms() + o.timeout_ms + KILL_GRACE_MS;
	pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return ai_errf_errno(err, AI_EX_OSERR, "cannot run the query: fork");
	}
	if (pid == 0) {
		close(fd[0]);
		child_query(fd[1], path, sql, &o);
	}
	close(fd[1]);
	/* The rows are at most max_bytes of JSON; the rest is the wrapper and a message. */
	buf_init(&got, o.max_bytes + 4096);
	for (;;) {
		struct pollfd p = { fd[0], POLLIN, 0 };
		long left = deadline - (long)mono_ms();
		char chunk[16384];
		ssize_t r;

		if (o.cancel && *o.cancel) {
			interrupted = true;
			break;
		}
		if (left <= 0) {
			killed = true;
			break;
		}
		if (poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left)) < 0 && errno != EINTR) {
			killed = true;
			break;
		}
		if (!p.revents)
			continue;
		r = read(fd[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (buf_add(&got, chunk, (size_t)r)) {
			too_big = true;
			break;
		}
	}
	close(fd[0]);
	if (killed || interrupted || too_big)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (interrupted || too_big) {
		buf_release(&got);
		return interrupted ? ai_errf(err, AI_EX_INTERRUPT, "interrupted") :
		       ai_errf(err, AI_EX_SOFTWARE, "the query's answer is larger than its cap of %zu bytes",
			       o.max_bytes);
	}
	if (killed) {
		buf_release(&got);
		return ai_errf(err, AI_EX_TEMPFAIL,
			       "query timed out after %ld ms: make it cheaper (a LIMIT, a narrower "
			       "WHERE, no unbounded recursion, no huge strings)", o.timeout_ms);
	}
	if (got.len && got.len < INT_MAX)
		res = json_tokener_parse(got.data);
	buf_release(&got);
	if (!res || !WIFEXITED(status) || WEXITSTATUS(status)) {
		json_object_put(res);
		if (WIFSIGNALED(status))
			return ai_errf(err, AI_EX_DATAERR, "the query was stopped by signal %d",
				       WTERMSIG(status));
		return ai_errf(err, AI_EX_OSERR, "out of memory running the query");
	}
	if (json_object_object_get_ex(res, "error", &v)) {
		json_object *c;

		int code = json_object_object_get_ex(res, "code", &c) ? json_object_get_int(c) : 0;

		ai_errf(err, code > 0 ? code : AI_EX_DATAERR, "%s", json_object_get_string(v));
		json_object_put(res);
		return -1;
	}
	if (!json_object_object_get_ex(res, "rows", &v) || !json_object_is_type(v, json_type_array)) {
		json_object_put(res);
		return ai_errf(err, AI_EX_SOFTWARE, "the query's child sent no rows");
	}
	*rows = json_object_get(v);
	if (truncated && json_object_object_get_ex(res, "truncated", &v))
		*truncated = json_object_get_boolean(v);
	json_object_put(res);
	return 0;
}
