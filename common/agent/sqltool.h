#ifndef AI_SQLTOOL_H
#define AI_SQLTOOL_H
/*
 * sqltool.h - read-only SQL queries on a SQLite database, for ai-agent's
 * SQL tool, safe against a hostile model.
 *
 * The SQL text comes from a model and is treated as an attack.  Writing
 * is refused by several independent layers, none of which depends on
 * the SQL text being honest:
 *   - the connection is opened SQLITE_OPEN_READONLY (never created);
 *   - an authorizer allows only SELECT, reading columns, recursive CTEs
 *     and functions from a fixed allow-list, and refuses everything
 *     else: every PRAGMA, ATTACH/DETACH, INSERT/UPDATE/DELETE, CREATE,
 *     DROP, ALTER, ANALYZE, REINDEX, transactions and savepoints,
 *     load_extension() and friends (sqltool.c explains the two internal
 *     calls SQLite makes that are let through);
 *   - extension loading is off, the connection is "defensive", the
 *     schema is untrusted (functions in views and triggers of a hostile
 *     database file are held to the same rules), no database may be
 *     attached, and values and SQL text are length-limited;
 *   - exactly one statement runs: anything after it other than blanks,
 *     comments and semicolons is refused before it is stepped;
 *   - sqlite3_stmt_readonly() must agree (this is what stops VACUUM and
 *     VACUUM INTO, for which SQLite has no authorizer code), and a
 *     statement whose first keyword is PRAGMA is refused outright.
 * A wall-clock deadline, a row cap and a byte cap bound the work and the
 * output.  The query runs in a child process (fork, no exec), which is
 * killed with SIGKILL shortly after the deadline: no single function call
 * (printf with a two-billion-character width, instr on megabytes) can
 * hold it past its time.
 */
#include "ai.h"

#include <signal.h>

#include <json-c/json.h>

#define SQLRO_DEFAULT_TIMEOUT_MS 5000L
#define SQLRO_DEFAULT_MAX_ROWS 1000L
#define SQLRO_DEFAULT_MAX_BYTES ((size_t)64 * 1024)
#define SQLRO_MAX_SQL_LEN 100000            /* bytes of SQL text accepted */
#define SQLRO_MAX_VALUE_LEN (4 * 1024 * 1024) /* longest string or blob SQLite may build */
#define SQLRO_BLOB_INLINE 1024              /* longer blobs are shown as "<blob N bytes>" */

struct sqltool_opts {
	long timeout_ms;    /* wall-clock limit for the whole call; <= 0: the default */
	long max_rows;      /* rows returned at most; <= 0: the default */
	size_t max_bytes;   /* bytes of compact JSON returned at most; 0: the default */
	const volatile sig_atomic_t *cancel;  /* borrowed or NULL: when it becomes non-zero, the query
					 * is stopped and AI_EX_INTERRUPT returned */
};

/*
 * Runs ONE statement (sql, NUL-terminated) on the database file at path,
 * read-only.  o may be NULL for the defaults above.
 *
 * On success returns 0, *rows is an owned json-c array (release it with
 * json_object_put()) with one object per row, in column order, mapping
 * column name to value: integers as int64, reals as double (an infinite
 * real as the string "Infinity" or "-Infinity", which JSON cannot hold),
 * text as a string (invalid UTF-8 replaced by U+FFFD), blobs of up to
 * SQLRO_BLOB_INLINE bytes as a base64 string (RFC 4648, with padding)
 * and longer ones as the string "<blob N bytes>", NULL as null.  A
 * column name met twice gets a suffix: "a", "a_2", "a_3".  *truncated
 * (if truncated is not NULL) says whether a cap stopped the output
 * early: the rows returned are then a prefix of the result.  Rows are
 * never cut in half: the byte cap counts each row's compact JSON plus
 * one byte for the separating comma, and a row that would pass it is
 * left out.
 *
 * On failure returns -1, *rows is NULL and err says why in words meant
 * for the model, quoting SQLite's own message where there is one:
 * AI_EX_NOINPUT when the file is missing or cannot be opened,
 * AI_EX_DATAERR for a refused or failing statement or a file that is
 * not a database, AI_EX_TEMPFAIL when the deadline passed or the
 * database stayed locked, AI_EX_OSERR when memory ran out.
 *
 * The database file is never created or written.  Each call forks; the
 * child opens its own connection and ends with _exit, so the caller's
 * open connections, stdio buffers and atexit handlers are not touched.
 * The caller must leave that child to sqltool_query (SIGCHLD not ignored,
 * no waitpid(-1) meanwhile).
 */
int sqltool_query(const char *path, const char *sql, const struct sqltool_opts *o,
		json_object **rows, bool *truncated, struct ai_err *err);

/*
 * The same in the calling process, for fuzzing and tests: every layer
 * above holds, but the deadline only between SQLite's steps, not inside
 * one function call.  Thread-safe as long as SQLite itself is.
 */
int sqltool_query_in_process(const char *path, const char *sql, const struct sqltool_opts *o,
			   json_object **rows, bool *truncated, struct ai_err *err);

#endif
