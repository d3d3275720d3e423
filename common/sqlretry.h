#ifndef AI_SQLRETRY_H
#define AI_SQLRETRY_H
/*
 * sqlretry.h - what the SQLite stores (the usage ledger, the knowledge base)
 * share: retrying on SQLITE_BUSY within a time limit.
 *
 * The busy handler (sqlite3_busy_timeout) waits out ordinary lock
 * contention, but in WAL mode SQLite can still answer BUSY at once (a
 * reader meeting a recovery or a journal-mode change in another process),
 * and that must not surface as "database is locked" after a millisecond.
 */
#include "ai.h"

#include <sqlite3.h>

/* A retry loop's state: when it started, the next pause, the limit. */
struct sqlretry {
	int64_t start_ms;
	long pause_ms;
	long limit_ms;
};

void sqlretry_init(struct sqlretry *r, long limit_ms);

/*
 * True, after a short sleep (1 ms doubling to 32 ms), when rc is
 * SQLITE_BUSY (any extended code) and the limit has not passed.
 */
bool sqlretry_again(struct sqlretry *r, int rc);

/* sqlite3_exec, retried on BUSY for up to limit_ms.  Returns the SQLite code. */
int sqlretry_exec(sqlite3 *db, const char *sql, long limit_ms);

/* Runs a statement that yields one integer (a PRAGMA, a count), retried on BUSY. */
int sqlretry_query_int(sqlite3 *db, const char *sql, long long *v, long limit_ms);

/* The same for a row of n integers into v[0..n): read in one statement, so from one snapshot. */
int sqlretry_query_ints(sqlite3 *db, const char *sql, long long *v, int n, long limit_ms);

/*
 * Puts the database in WAL mode (outside a transaction; it persists in the
 * file).  Switching needs the file to itself: while another connection has
 * it the pragma answers the old mode, and that is retried like BUSY.
 */
int sqlretry_wal(sqlite3 *db, long limit_ms);

/* Steps a statement that yields no row, then resets it; retried on BUSY. */
int sqlretry_step(sqlite3_stmt *st, long limit_ms);

#endif
