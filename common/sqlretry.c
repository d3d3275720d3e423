#include "sqlretry.h"
#include "clock.h"

#include <time.h>

void sqlretry_init(struct sqlretry *r, long limit_ms)
{
	r->start_ms = mono_ms();
	r->pause_ms = 1;
	r->limit_ms = limit_ms;
}

bool sqlretry_again(struct sqlretry *r, int rc)
{
	struct timespec ts;

	if ((rc & 0xff) != SQLITE_BUSY || mono_ms() - r->start_ms >= r->limit_ms)
		return false;
	ts.tv_sec = r->pause_ms / 1000;
	ts.tv_nsec = (r->pause_ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	if (r->pause_ms < 32)
		r->pause_ms *= 2;
	return true;
}

int sqlretry_exec(sqlite3 *db, const char *sql, long limit_ms)
{
	struct sqlretry r;
	int rc;

	sqlretry_init(&r, limit_ms);
	while ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK && sqlretry_again(&r, rc))
		;
	return rc;
}

int sqlretry_query_int(sqlite3 *db, const char *sql, long long *v, long limit_ms)
{
	return sqlretry_query_ints(db, sql, v, 1, limit_ms);
}

int sqlretry_query_ints(sqlite3 *db, const char *sql, long long *v, int n, long limit_ms)
{
	struct sqlretry r;
	sqlite3_stmt *st;
	int rc;

	sqlretry_init(&r, limit_ms);
	do {
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK)
			continue;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			for (int i = 0; i < n; i++)
				v[i] = sqlite3_column_int64(st, i);
			rc = SQLITE_OK;
		}
		sqlite3_finalize(st);
	} while (rc != SQLITE_OK && sqlretry_again(&r, rc));
	return rc;
}

int sqlretry_wal(sqlite3 *db, long limit_ms)
{
	struct sqlretry r;
	sqlite3_stmt *st;
	int rc;

	sqlretry_init(&r, limit_ms);
	do {
		rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *mode = sqlite3_column_text(st, 0);

			rc = mode && !strcmp((const char *)mode, "wal") ? SQLITE_OK : SQLITE_BUSY;
		}
		sqlite3_finalize(st);
	} while (rc != SQLITE_OK && sqlretry_again(&r, rc));
	return rc;
}

int sqlretry_step(sqlite3_stmt *st, long limit_ms)
{
	struct sqlretry r;
	int rc;

	sqlretry_init(&r, limit_ms);
	do {
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			return SQLITE_OK;
	} while (sqlretry_again(&r, rc));
	return rc;
}
