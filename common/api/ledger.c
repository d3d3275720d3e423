/*
 * ledger.c - the usage ledger in SQLite.
 *
 * The hot path is ledger_open + ledger_append + ledger_close once per
 * program run, so open does no schema work on a current file (one read
 * of user_version) and append reuses three prepared statements.  WAL
 * mode is set once, when the file is created: it persists in the file.
 */
#include "api/ledger.h"
#include "sqlretry.h"
#include "net/url.h"
#include "api/prices.h"

#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char schema_sql[] =
	"CREATE TABLE calls ("
	" id INTEGER PRIMARY KEY,"
	" ts_ms INTEGER NOT NULL,"
	" program TEXT,"
	" model TEXT,"
	" host TEXT,"
	" prompt_tokens INTEGER,"
	" completion_tokens INTEGER,"
	" latency_ms INTEGER NOT NULL DEFAULT 0,"
	" status INTEGER NOT NULL DEFAULT 0,"
	" cached INTEGER NOT NULL DEFAULT 0,"
	" batch INTEGER NOT NULL DEFAULT 0,"
	" cost REAL,"
	" saved REAL,"
	" prompt TEXT);"
	/* (ts_ms, cost) covers the budget query, which runs before every call. */
	"CREATE INDEX calls_ts ON calls(ts_ms, cost);"
	"PRAGMA user_version = 1;";

static const char insert_sql[] =
	"INSERT INTO calls(ts_ms, program, model, host, prompt_tokens, completion_tokens,"
	" latency_ms, status, cached, batch, cost, saved, prompt)"
	" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

int ledger_default_path(struct buf *out, struct ai_err *err)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int rc;

	if (xdg && xdg[0] == '/')
		rc = buf_addf(out, "%s/ai/usage.db", xdg);
	else if (home && home[0] == '/')
		rc = buf_addf(out, "%s/.local/share/ai/usage.db", home);
	else
		return ai_errf(err, AI_EX_CONFIG,
			       "cannot place the usage ledger: set HOME or XDG_DATA_HOME to an absolute directory, or AI_LEDGER=0");
	if (rc < 0)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

bool ledger_enabled(void)
{
	const char *v = getenv("AI_LEDGER");

	if (!v)
		return true;
	return !(strcmp(v, "0") == 0 || strcmp(v, "no") == 0 || strcmp(v, "off") == 0 ||
		 strcmp(v, "false") == 0);
}

/* Maps an SQLite failure to an exit code and a message naming the file. */
static int db_err(struct ledger *l, int rc, const char *doing, struct ai_err *err)
{
	const char *what = l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
	const char *p = l->path ? l->path : "";

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ai_errf(err, AI_EX_TEMPFAIL,
			       "cannot %s usage ledger '%s': locked by another process for more than %d ms",
			       doing, p, l->busy_ms);
	case SQLITE_NOTADB:
		return ai_errf(err, AI_EX_DATAERR,
			       "'%s' is not a usage ledger (not an SQLite database): move it away and a new one will be made",
			       p);
	case SQLITE_CORRUPT:
		return ai_errf(err, AI_EX_DATAERR,
			       "usage ledger '%s' is damaged (%s): move it away and a new one will be made",
			       p, what);
	case SQLITE_FULL:
		return ai_errf(err, AI_EX_IOERR, "cannot %s usage ledger '%s': disk full", doing, p);
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return ai_errf(err, AI_EX_IOERR, "cannot %s usage ledger '%s': %s (check its permissions)",
			       doing, p, what);
	case SQLITE_NOMEM:
		return ai_errf(err, AI_EX_OSERR, "cannot %s usage ledger '%s': out of memory", doing, p);
	default:
		return ai_errf(err, AI_EX_IOERR, "cannot %s usage ledger '%s': %s", doing, p, what);
	}
}

/* mkdir -p of path's directory, each new directory 0700. */
static int make_parents(const char *path, struct ai_err *err)
{
	char *dir = strdup(path), *p;
	int rc = 0;

	if (!dir)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	p = strrchr(dir, '/');
	if (!p || p == dir)
		goto out;
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
				rc = ai_errf(err, AI_EX_IOERR, "cannot make directory '%s' for the usage ledger: %s",
					     dir, strerror(errno));
				goto out;
			}
			*p = c;
			if (!c)
				break;
		}
	}
out:
	free(dir);
	return rc;
}

/* The store's statements, retried on SQLITE_BUSY within the busy timeout (see sqlretry.h). */
static int exec_retry(struct ledger *l, const char *sql)
{
	return sqlretry_exec(l->db, sql, l->busy_ms);
}

static int query_int(struct ledger *l, const char *sql, long long *v)
{
	return sqlretry_query_int(l->db, sql, v, l->busy_ms);
}

static int newer_schema(struct ledger *l, long long v, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR,
		       "usage ledger '%s' has schema %lld, newer than this ai-tools knows (%d): upgrade ai-tools",
		       l->path, v, LEDGER_SCHEMA);
}

/*
 * Makes the tables in a new (empty) file.  Several processes may get
 * here at once on a fresh file: the one that takes the write lock first
 * creates the schema; the others find user_version set and do nothing.
 */
static int create_schema(struct ledger *l, struct ai_err *err)
{
	sqlite3_stmt *st;
	long long v = 0, tables = 0;
	struct sqlretry retry;
	int rc;
	const unsigned char *mode = NULL;

	/* WAL first, outside a transaction; it persists in the file.
	 * Switching needs the file to itself; while another process holds
	 * it the pragma answers the old mode, so that is retried too. */
	sqlretry_init(&retry, l->busy_ms);
	do {
		rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
		if (rc != SQLITE_OK)
			return db_err(l, rc, "set up", err);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			mode = sqlite3_column_text(st, 0);
			rc = mode && strcmp((const char *)mode, "wal") == 0 ? SQLITE_OK : SQLITE_BUSY;
		}
		sqlite3_finalize(st);
	} while (rc != SQLITE_OK && sqlretry_again(&retry, rc));
	if (rc != SQLITE_OK)
		return db_err(l, rc, "set up", err);
	rc = exec_retry(l, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return db_err(l, rc, "set up", err);
	rc = query_int(l, "PRAGMA user_version", &v);
	if (rc == SQLITE_OK && v == 0)
		rc = query_int(l, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		goto fail;
	if (v > LEDGER_SCHEMA) {
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		return newer_schema(l, v, err);
	}
	if (v == 0 && tables > 0) {
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
		return ai_errf(err, AI_EX_DATAERR,
			       "'%s' is an SQLite database but not a usage ledger: move it away or set another path",
			       l->path);
	}
	if (v == 0)
		rc = sqlite3_exec(l->db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = exec_retry(l, "COMMIT");
	if (rc == SQLITE_OK)
		return 0;
fail:
	db_err(l, rc, "set up", err);
	if (!sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Checkpoints.  SQLite's default is to checkpoint and delete the WAL
 * when the last connection closes.  A program that appends one row and
 * exits is nearly always that last connection, so by default every run
 * would pay four fsyncs (the WAL header, its directory, the WAL before
 * the checkpoint, the database after it): 4 ms and more on a slow disk,
 * against 0.05 ms for the append itself.
 *
 * Leaving the WAL in place on close has its own cost: the next program
 * to open the file is the first connection, rebuilds the WAL index by
 * reading every frame, and cannot reuse a WAL that this recovery marks
 * as not checkpointed, so the WAL would grow for ever.
 *
 * So: no checkpoint on close while the WAL is small (a commit here
 * writes about two frames, so a program's open reads at most
 * CLOSE_CHECKPOINT_FRAMES of them back), and the usual checkpoint on
 * close once it has reached that, which empties it.  The fsyncs are
 * then paid once every thirty or so calls.  On a loaded 2-core VM
 * (tests/bench/ledger_bench.c) a one-shot open + append + close took
 * 20 ms (median) with SQLite's default and 0.55 ms with this; 32, 64,
 * 128 and 256 frames gave 0.53, 0.57, 0.63 and 0.79 ms, and 32 a worse
 * tail.  A wal hook learns the WAL's size at each commit; it replaces
 * SQLite's own auto-checkpoint, so it does that job too, for a program
 * that keeps the ledger open (ai-batch) and so never closes it.
 */
#ifndef CLOSE_CHECKPOINT_FRAMES
#define CLOSE_CHECKPOINT_FRAMES 64
#endif
#define AUTO_CHECKPOINT_FRAMES 1000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct ledger *l = arg;

	l->wal_frames = frames;
	if (frames >= AUTO_CHECKPOINT_FRAMES)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

static int open_common(struct ledger *l, const char *path, bool create, struct ai_err *err)
{
	long long v = 0;
	int rc, fd;
	struct stat sb;

	memset(l, 0, sizeof(*l));
	l->busy_ms = LEDGER_BUSY_MS;
	if (!path || !*path)
		return ai_errf(err, AI_EX_CONFIG, "no path for the usage ledger");
	l->path = strdup(path);
	if (!l->path)
		return ai_errf(err, AI_EX_OSERR, "out of memory");

	if (create) {
		if (make_parents(path, err) < 0)
			goto fail;
		/* Made here rather than by SQLite so that it is 0600 whatever the
		 * umask; SQLite gives the -wal and -shm files the same mode. */
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			ai_errf(err, AI_EX_IOERR, "cannot open usage ledger '%s': %s", path, strerror(errno));
			goto fail;
		}
		close(fd);
	} else if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			ai_errf(err, AI_EX_NOINPUT,
				"no usage ledger at '%s' yet: no model call has been recorded there", path);
		else
			ai_errf(err, AI_EX_NOINPUT, "cannot open usage ledger '%s': %s", path, strerror(errno));
		goto fail;
	} else if (!S_ISREG(sb.st_mode)) {
		ai_errf(err, AI_EX_DATAERR, "usage ledger '%s' is not a regular file", path);
		goto fail;
	}

	rc = sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		db_err(l, rc, "open", err);
		goto fail;
	}
	sqlite3_busy_timeout(l->db, l->busy_ms);
	/* See CLOSE_CHECKPOINT_FRAMES above. */
	sqlite3_db_config(l->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	sqlite3_wal_hook(l->db, wal_hook, l);
	rc = query_int(l, "PRAGMA user_version", &v);
	if (rc != SQLITE_OK) {
		db_err(l, rc, "open", err);
		goto fail;
	}
	if (v > LEDGER_SCHEMA) {
		newer_schema(l, v, err);
		goto fail;
	}
	if (v < LEDGER_SCHEMA && create_schema(l, err) < 0)
		goto fail;
	/* Per connection, not stored in the file: with WAL, NORMAL syncs
	 * only at checkpoints, so a commit costs no fsync; a power cut may
	 * lose the last rows but cannot corrupt the database. */
	rc = exec_retry(l, "PRAGMA synchronous=NORMAL");
	if (rc != SQLITE_OK) {
		db_err(l, rc, "open", err);
		goto fail;
	}
	return 0;
fail:
	ledger_close(l);
	return -1;
}

int ledger_open(struct ledger *l, const char *path, struct ai_err *err)
{
	return open_common(l, path, true, err);
}

int ledger_open_existing(struct ledger *l, const char *path, struct ai_err *err)
{
	return open_common(l, path, false, err);
}

void ledger_set_busy_timeout(struct ledger *l, int ms)
{
	l->busy_ms = ms < 0 ? 0 : ms;
	if (l->db)
		sqlite3_busy_timeout(l->db, l->busy_ms);
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	sqlite3_finalize(l->begin);
	sqlite3_finalize(l->commit);
	sqlite3_finalize(l->rollback);
	sqlite3_finalize(l->insert);
	if (l->db && l->wal_frames >= CLOSE_CHECKPOINT_FRAMES)
		sqlite3_db_config(l->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
	if (l->db)
		sqlite3_close(l->db);
	free(l->path);
	memset(l, 0, sizeof(*l));
}

static int prepare(struct ledger *l, const char *sql, sqlite3_stmt **st)
{
	if (*st)
		return SQLITE_OK;
	return sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* Steps a statement that returns no row, retried on BUSY (see sqlretry.h). */
static int step_retry(struct ledger *l, sqlite3_stmt *st)
{
	return sqlretry_step(st, l->busy_ms);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_count(sqlite3_stmt *st, int i, long v)
{
	if (v >= 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static void bind_money(sqlite3_stmt *st, int i, double v)
{
	if (isfinite(v))
		sqlite3_bind_double(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

int ledger_append(struct ledger *l, const struct ledger_row *r, struct ai_err *err)
{
	const char *host = r->host;
	char hbuf[256];
	int rc;

	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	rc = prepare(l, "BEGIN IMMEDIATE", &l->begin);
	if (rc == SQLITE_OK)
		rc = prepare(l, "COMMIT", &l->commit);
	if (rc == SQLITE_OK)
		rc = prepare(l, "ROLLBACK", &l->rollback);
	if (rc == SQLITE_OK)
		rc = prepare(l, insert_sql, &l->insert);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "write", err);

	/* Credentials in a host ("user:key@host") never reach the file. */
	if (host)
		host = url_host(host, hbuf, sizeof(hbuf));

	sqlite3_bind_int64(l->insert, 1, r->ts_ms);
	bind_text(l->insert, 2, r->program);
	bind_text(l->insert, 3, r->model);
	bind_text(l->insert, 4, host);
	bind_count(l->insert, 5, r->prompt_tokens);
	bind_count(l->insert, 6, r->completion_tokens);
	sqlite3_bind_int64(l->insert, 7, r->latency_ms < 0 ? 0 : r->latency_ms);
	sqlite3_bind_int64(l->insert, 8, r->status);
	sqlite3_bind_int(l->insert, 9, r->cached);
	sqlite3_bind_int(l->insert, 10, r->batch);
	bind_money(l->insert, 11, r->cost);
	bind_money(l->insert, 12, r->cached ? r->saved : NAN);
	bind_text(l->insert, 13, r->prompt);

	rc = step_retry(l, l->begin);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(l->insert);
		sqlite3_reset(l->insert);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->commit);
	sqlite3_clear_bindings(l->insert);
	if (rc == SQLITE_OK)
		return 0;
	db_err(l, rc, "write", err);
	if (!sqlite3_get_autocommit(l->db)) {
		sqlite3_step(l->rollback);
		sqlite3_reset(l->rollback);
	}
	return -1;
}

/* Local midnight that begins the day `offset` days from the one holding t. */
static int64_t local_midnight_ms(int64_t t_ms, int offset)
{
	time_t t = (time_t)(t_ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += offset;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * 1000;
}

int ledger_spent_today(struct ledger *l, double *usd, struct ai_err *err)
{
	static const char sql[] = "SELECT total(cost) FROM calls WHERE ts_ms >= ?1 AND ts_ms < ?2";
	int64_t now = wall_ms();
	sqlite3_stmt *st;
	int rc;

	*usd = 0;
	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "read", err);
	sqlite3_bind_int64(st, 1, local_midnight_ms(now, 0));
	sqlite3_bind_int64(st, 2, local_midnight_ms(now, 1));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*usd = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : db_err(l, rc, "read", err);
}

static void fmt_usd(char *out, size_t n, double v)
{
	snprintf(out, n, v != 0 && fabs(v) < 0.01 ? "$%.4f" : "$%.2f", v);
}

int ledger_check_budget(struct ledger *l, double limit_usd, struct ai_err *err)
{
	double spent;
	char s[32], lim[32];

	if (!isfinite(limit_usd) || limit_usd < 0)
		return ai_errf(err, AI_EX_CONFIG, "bad daily budget: want AI_BUDGET_DAILY in USD, 0 or more");
	if (ledger_spent_today(l, &spent, err) < 0)
		return -1;
	if (spent < limit_usd)
		return 0;
	fmt_usd(s, sizeof(s), spent);
	fmt_usd(lim, sizeof(lim), limit_usd);
	return ai_errf(err, AI_EX_TEMPFAIL,
		       "daily budget reached: %s spent today, AI_BUDGET_DAILY is %s; raise it or wait until tomorrow",
		       s, lim);
}

/* Days from 1970-01-01 to the civil date y-m-d (Howard Hinnant's algorithm). */
static long days_from_civil(long y, int m, int d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static long local_day(int64_t t_ms)
{
	time_t t = (time_t)(t_ms / 1000 - (t_ms % 1000 < 0));
	struct tm tm;

	localtime_r(&t, &tm);
	return days_from_civil(tm.tm_year + 1900L, tm.tm_mon + 1, tm.tm_mday);
}

static const char *key_expr(const char *by)
{
	if (!by)
		return NULL;
	if (strcmp(by, "program") == 0)
		return "program";
	if (strcmp(by, "model") == 0)
		return "model";
	if (strcmp(by, "day") == 0)
		return "date(ts_ms / 1000, 'unixepoch', 'localtime')";
	if (strcmp(by, "all") == 0)
		return "'total'";
	return NULL;
}

void ledger_groups_free(struct ledger_group *g, size_t n)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < n; i++)
		free(g[i].key);
	free(g);
}

/* Closes group g, whose latencies (ascending) are lat[0..g->requests). */
static void finish_group(struct ledger_group *g, const long *lat, double lat_sum,
			 bool any_cost, long hits_saved)
{
	size_t rank = ((size_t)g->requests * 95 + 99) / 100;

	g->avg_latency_ms = lat_sum / (double)g->requests;
	g->p95_latency_ms = lat[rank ? rank - 1 : 0];
	g->hit_rate = (double)g->hits / (double)g->requests;
	if (!any_cost)
		g->cost = NAN;
	if (g->hits && !hits_saved)
		g->saved = NAN;
}

/*
 * Adds a count from the file to a sum, saturating: a row written before
 * counts were bounded, or by hand, must not wrap a total negative (nor
 * trip the sanitizer's overflow check).  Negative counts are not counts.
 */
static void add_count(int64_t *sum, int64_t v)
{
	if (v <= 0)
		return;
	if (__builtin_add_overflow(*sum, v, sum))
		*sum = INT64_MAX;
}

int ledger_report(struct ledger *l, const char *by, int64_t since_ms, int64_t until_ms,
		  struct ledger_group **out, size_t *n, struct ai_err *err)
{
	return ledger_report_model(l, by, NULL, since_ms, until_ms, out, n, err);
}

int ledger_report_model(struct ledger *l, const char *by, const char *model, int64_t since_ms,
			int64_t until_ms, struct ledger_group **out, size_t *n, struct ai_err *err)
{
	const char *expr = key_expr(by);
	struct buf sql = BUF_INIT;
	sqlite3_stmt *st = NULL;
	struct ledger_group *v = NULL, *g = NULL;
	size_t nv = 0, av = 0, nlat = 0, alat = 0, i;
	long *lat = NULL, hits_saved = 0;
	double lat_sum = 0;
	bool any_cost = false;
	int64_t first = INT64_MAX, last = INT64_MIN, end;
	int rc;

	*out = NULL;
	*n = 0;
	if (!expr)
		return ai_errf(err, AI_EX_USAGE, "cannot group by '%s': want program, model, day or all",
			       by ? by : "");
	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	/* Sorted by key, then latency, so one pass makes each group and its
	 * latencies arrive in order for the nearest-rank p95. */
	/* A hit's tokens were not billed: they are summed apart (columns 9
	 * and 10), so that the billed tokens and the cost add up. */
	if (buf_addf(&sql, "SELECT ifnull(%s, '-') AS k, ts_ms, latency_ms,"
		     " CASE WHEN cached THEN NULL ELSE prompt_tokens END,"
		     " CASE WHEN cached THEN NULL ELSE completion_tokens END, cost, cached, saved,"
		     " host, CASE WHEN cached THEN prompt_tokens END,"
		     " CASE WHEN cached THEN completion_tokens END FROM calls"
		     " WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (?3 IS NULL OR model = ?3)"
		     " ORDER BY k, latency_ms", expr) < 0)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	rc = sqlite3_prepare_v2(l->db, sql.data, -1, &st, NULL);
	buf_release(&sql);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "read", err);
	sqlite3_bind_int64(st, 1, since_ms);
	sqlite3_bind_int64(st, 2, until_ms);
	bind_text(st, 3, model);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		int64_t ts = sqlite3_column_int64(st, 1);
		long la = (long)sqlite3_column_int64(st, 2);

		if (!k)
			k = "-";
		if (!g || strcmp(g->key, k) != 0) {
			if (g)
				finish_group(g, lat, lat_sum, any_cost, hits_saved);
			if (nv == av) {
				size_t na = av ? 2 * av : 16;
				struct ledger_group *nvp = realloc(v, na * sizeof(*nvp));

				if (!nvp)
					goto nomem;
				v = nvp;
				av = na;
			}
			g = &v[nv];
			memset(g, 0, sizeof(*g));
			g->key = strdup(k);
			if (!g->key)
				goto nomem;
			nv++;
			g->first_ms = INT64_MAX;
			g->last_ms = INT64_MIN;
			nlat = 0;
			lat_sum = 0;
			any_cost = false;
			hits_saved = 0;
		}
		if (nlat == alat) {
			size_t na = alat ? 2 * alat : 256;
			long *nl = realloc(lat, na * sizeof(*nl));

			if (!nl)
				goto nomem;
			lat = nl;
			alat = na;
		}
		lat[nlat++] = la;
		lat_sum += (double)la;
		g->requests++;
		add_count(&g->prompt_tokens, sqlite3_column_int64(st, 3));
		add_count(&g->completion_tokens, sqlite3_column_int64(st, 4));
		if (sqlite3_column_type(st, 5) == SQLITE_NULL) {
			/* Rows written before a local server's calls were priced 0. */
			if (prices_host_local((const char *)sqlite3_column_text(st, 8)))
				any_cost = true;
			else
				g->unknown_cost++;
		} else {
			g->cost += sqlite3_column_double(st, 5);
			any_cost = true;
		}
		if (sqlite3_column_int(st, 6)) {
			g->hits++;
			g->hit_prompt_tokens += sqlite3_column_int64(st, 9);
			g->hit_completion_tokens += sqlite3_column_int64(st, 10);
			if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
				g->saved += sqlite3_column_double(st, 7);
				hits_saved++;
			} else if (prices_host_local((const char *)sqlite3_column_text(st, 8))) {
				hits_saved++;
			}
		}
		if (ts < g->first_ms)
			g->first_ms = ts;
		if (ts > g->last_ms)
			g->last_ms = ts;
		if (ts < first)
			first = ts;
		if (ts > last)
			last = ts;
	}
	if (rc != SQLITE_DONE) {
		db_err(l, rc, "read", err);
		goto fail;
	}
	if (g)
		finish_group(g, lat, lat_sum, any_cost, hits_saved);
	sqlite3_finalize(st);
	free(lat);

	/* The per-day denominator, as ledger.h defines it. */
	end = wall_ms();
	if (until_ms <= end && until_ms > INT64_MIN)
		end = until_ms - 1;
	if (last > end)
		end = last;
	for (i = 0; i < nv; i++)
		v[i].days = strcmp(by, "day") == 0 ? 1 : local_day(end) - local_day(first) + 1;
	*out = v;
	*n = nv;
	return 0;
nomem:
	ai_errf(err, AI_EX_OSERR, "out of memory");
fail:
	sqlite3_finalize(st);
	free(lat);
	ledger_groups_free(v, nv);
	return -1;
}

int ledger_parse_time(const char *s, bool end, int64_t now_ms, int64_t *out, struct ai_err *err)
{
	const char *p = s;
	long nums[3] = { 0, 0, 0 };
	int i, digits;

	if (!s || !*s)
		goto bad;
	if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
		*out = local_midnight_ms(now_ms, (end ? 1 : 0) - (s[0] == 'y'));
		return 0;
	}
	/* "Nd" */
	for (digits = 0; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		nums[0] = nums[0] * 10 + (*p - '0');
	if (digits && p[0] == 'd' && p[1] == '\0') {
		if (nums[0] < 1 || nums[0] > 36500)
			goto bad;
		*out = local_midnight_ms(now_ms, -(int)(nums[0] - 1));
		return 0;
	}
	/* "YYYY-MM-DD" */
	p = s;
	for (i = 0; i < 3; i++) {
		int want = i ? 2 : 4;

		nums[i] = 0;
		for (digits = 0; *p >= '0' && *p <= '9'; p++, digits++)
			nums[i] = nums[i] * 10 + (*p - '0');
		if (digits != want || *p != (i < 2 ? '-' : '\0'))
			goto bad;
		if (i < 2)
			p++;
	}
	if (nums[0] < 1970 || nums[1] < 1 || nums[1] > 12 || nums[2] < 1 ||
	    nums[2] > days_from_civil(nums[0] + (nums[1] == 12), nums[1] % 12 + 1, 1) -
		      days_from_civil(nums[0], (int)nums[1], 1))
		goto bad;
	{
		struct tm tm;

		memset(&tm, 0, sizeof(tm));
		tm.tm_year = (int)nums[0] - 1900;
		tm.tm_mon = (int)nums[1] - 1;
		tm.tm_mday = (int)nums[2] + (end ? 1 : 0);
		tm.tm_isdst = -1;
		*out = (int64_t)mktime(&tm) * 1000;
	}
	return 0;
bad:
	return ai_errf(err, AI_EX_USAGE, "bad date '%s': want YYYY-MM-DD, today, yesterday, or Nd for the last N days",
		       s ? s : "");
}
