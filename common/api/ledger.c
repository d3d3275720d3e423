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
	"CREATE INDEX calls_ts ON calls(ts_ms, cost);";

/*
 * Schema 2 adds the rollups beside the raw rows (see ledger.h).  Keys
 * are NOT NULL ('' stands for a NULL program, model or host) so that
 * the upserts below find their row; the key starts with the hour so a
 * range of hours, the budget's "today" included, is one index range.
 * The latency histogram is kept per hour x program x model, the finest
 * grouping a report asks for: keyed by host, status, cached and batch
 * as well it would multiply the largest column by their product.
 * "folded" is the id of the last raw row the rollups hold: every row
 * above it (written by an older ai-tools, by hand, or before the
 * upgrade) is folded in later, in order, so no row is counted twice or
 * missed whoever wrote it.
 */
static const char upgrade_sql[] =
	"CREATE TABLE IF NOT EXISTS rollup ("
	" hour INTEGER NOT NULL, program TEXT NOT NULL, model TEXT NOT NULL, host TEXT NOT NULL,"
	" status INTEGER NOT NULL, cached INTEGER NOT NULL, batch INTEGER NOT NULL,"
	" n INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,"
	" cost REAL NOT NULL, cost_n INTEGER NOT NULL, saved REAL NOT NULL, saved_n INTEGER NOT NULL,"
	" lat_sum INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
	" PRIMARY KEY(hour, program, model, host, status, cached, batch)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS rollup_lat ("
	" hour INTEGER NOT NULL, program TEXT NOT NULL, model TEXT NOT NULL,"
	" hist BLOB NOT NULL, lat_min INTEGER NOT NULL, lat_max INTEGER NOT NULL,"
	" PRIMARY KEY(hour, program, model)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS spend (hour INTEGER PRIMARY KEY, cost REAL NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ledger_meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO ledger_meta VALUES('folded', 0), ('prune_after', 0);"
	"PRAGMA user_version = 2;";

/*
 * Schema 3: the provider's cached and reasoning token counts, raw and
 * summed (with how many rows knew them, so "unknown" is not "0"), and
 * the day rollups, keyed by UTC day (hour / 24), that ledger_compact
 * fills.  ALTER TABLE ... ADD COLUMN only rewrites the schema, so this
 * is instant whatever the ledger's size; rows from before it read as
 * unknown.
 */
#define ROLLUP_COLS(unit)                                                                             \
	" " unit " INTEGER NOT NULL, program TEXT NOT NULL, model TEXT NOT NULL, host TEXT NOT NULL,"  \
	" status INTEGER NOT NULL, cached INTEGER NOT NULL, batch INTEGER NOT NULL,"                   \
	" n INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,"                \
	" cost REAL NOT NULL, cost_n INTEGER NOT NULL, saved REAL NOT NULL, saved_n INTEGER NOT NULL," \
	" lat_sum INTEGER NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
static const char upgrade3_sql[] =
	"ALTER TABLE calls ADD COLUMN cached_tokens INTEGER;"
	"ALTER TABLE calls ADD COLUMN reasoning_tokens INTEGER;"
	"ALTER TABLE calls ADD COLUMN attachments INTEGER;"
	"ALTER TABLE rollup ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE rollup ADD COLUMN cached_n INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE rollup ADD COLUMN tokens_reason INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE rollup ADD COLUMN reason_n INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE IF NOT EXISTS rollup_day (" ROLLUP_COLS("day")
	" tokens_cached INTEGER NOT NULL, cached_n INTEGER NOT NULL,"
	" tokens_reason INTEGER NOT NULL, reason_n INTEGER NOT NULL,"
	" PRIMARY KEY(day, program, model, host, status, cached, batch)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS rollup_lat_day ("
	" day INTEGER NOT NULL, program TEXT NOT NULL, model TEXT NOT NULL,"
	" hist BLOB NOT NULL, lat_min INTEGER NOT NULL, lat_max INTEGER NOT NULL,"
	" PRIMARY KEY(day, program, model)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO ledger_meta VALUES('days_done', 0);"
	"PRAGMA user_version = 3;";

/* The columns of both rollup tables, named, in the order the statements below give them. */
#define ROLL_NAMES(unit)                                                                       \
	"(" unit ", program, model, host, status, cached, batch, n, tokens_in, tokens_out, cost," \
	" cost_n, saved, saved_n, lat_sum, first_ms, last_ms, tokens_cached, cached_n,"          \
	" tokens_reason, reason_n)"
/* What an upsert adds to a rollup row that is there already. */
#define ROLL_ADD                                                                                   \
	" ON CONFLICT DO UPDATE SET n = n + excluded.n, tokens_in = tokens_in + excluded.tokens_in,"   \
	" tokens_out = tokens_out + excluded.tokens_out, cost = cost + excluded.cost,"                \
	" cost_n = cost_n + excluded.cost_n, saved = saved + excluded.saved,"                         \
	" saved_n = saved_n + excluded.saved_n, lat_sum = lat_sum + excluded.lat_sum,"                \
	" first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms),"    \
	" tokens_cached = tokens_cached + excluded.tokens_cached,"                                    \
	" cached_n = cached_n + excluded.cached_n, tokens_reason = tokens_reason + excluded.tokens_reason," \
	" reason_n = reason_n + excluded.reason_n"
#define LAT_ADD                                                                  \
	" ON CONFLICT DO UPDATE SET hist = ledger_hist_merge(hist, excluded.hist),"  \
	" lat_min = min(lat_min, excluded.lat_min), lat_max = max(lat_max, excluded.lat_max)"

/* One row's share of the rollups: the upserts the append path runs.
 * DAY is "" for the hourly tables and " / 24" for the day ones. */
#define ROLL_ROW(table, unit, DAY)                                                                \
	"INSERT INTO " table ROLL_NAMES(unit) " VALUES(?1 / 3600000" DAY ", ifnull(?2, ''),"          \
	" ifnull(?3, ''), ifnull(?4, ''), ?5, ?6, ?7, 1, max(ifnull(?8, 0), 0),"                       \
	" max(ifnull(?9, 0), 0), ifnull(?10, 0), ?10 IS NOT NULL,"                                   \
	" CASE WHEN ?6 THEN ifnull(?11, 0) ELSE 0 END, ?6 AND ?11 IS NOT NULL, max(?12, 0), ?1, ?1," \
	" max(ifnull(?13, 0), 0), ?13 IS NOT NULL, max(ifnull(?14, 0), 0), ?14 IS NOT NULL)" ROLL_ADD
#define ROLL_LAT(table, unit, DAY)                                                       \
	"INSERT INTO " table " VALUES(?1 / 3600000" DAY ", ifnull(?2, ''), ifnull(?3, ''),"  \
	" ledger_hist1(max(?4, 0)), max(?4, 0), max(?4, 0))" LAT_ADD
static const char roll_row_sql[] = ROLL_ROW("rollup", "hour", "");
static const char roll_lat_sql[] = ROLL_LAT("rollup_lat", "hour", "");
static const char day_row_sql[] = ROLL_ROW("rollup_day", "day", " / 24");
static const char day_lat_sql[] = ROLL_LAT("rollup_lat_day", "day", " / 24");

static const char spend_row_sql[] =
	"INSERT INTO spend VALUES(?1 / 3600000, ?2) ON CONFLICT DO UPDATE SET cost = cost + excluded.cost";

/* The same for the raw rows with ?1 < id <= ?2: the catch-up and the first-open fold.
 * Token counts are summed with total(), in floating point, as sum() would
 * fail on a sum past 2^63 (a row written by hand); the column keeps an
 * exact integer while the sum is below 2^53, and a report reads a larger
 * one as INT64_MAX.  The '+' of the upserts turns to floating point on
 * overflow by itself.  The day statements take only the rows of the
 * days compacted already (day < ?3): the others reach the day rollups
 * when their day is compacted. */
#define FOLD(table, unit, DAY, WHERE)                                                            \
	"INSERT INTO " table ROLL_NAMES(unit) " SELECT ts_ms / 3600000" DAY ", ifnull(program, ''),"  \
	" ifnull(model, ''), ifnull(host, ''), status, cached != 0, batch != 0, count(*),"          \
	" total(max(ifnull(prompt_tokens, 0), 0)),"                                                  \
	" total(max(ifnull(completion_tokens, 0), 0)),"                                              \
	" total(cost), count(cost), total(CASE WHEN cached THEN saved END),"                         \
	" count(CASE WHEN cached THEN saved END), sum(min(max(latency_ms, 0), 1000000000)),"         \
	" min(ts_ms), max(ts_ms), total(max(ifnull(cached_tokens, 0), 0)), count(cached_tokens),"   \
	" total(max(ifnull(reasoning_tokens, 0), 0)), count(reasoning_tokens)"                       \
	" FROM calls WHERE id > ?1 AND id <= ?2" WHERE " GROUP BY 1, 2, 3, 4, 5, 6, 7" ROLL_ADD
#define FOLD_LAT(table, DAY, WHERE)                                                           \
	"INSERT INTO " table " SELECT ts_ms / 3600000" DAY ", ifnull(program, ''), ifnull(model, ''),"  \
	" ledger_hist(max(latency_ms, 0)), min(max(latency_ms, 0)), max(max(latency_ms, 0))"     \
	" FROM calls WHERE id > ?1 AND id <= ?2" WHERE " GROUP BY 1, 2, 3" LAT_ADD
static const char fold_sql[] = FOLD("rollup", "hour", "", "");
static const char fold_lat_sql[] = FOLD_LAT("rollup_lat", "", "");
static const char fold_day_sql[] = FOLD("rollup_day", "day", " / 24", " AND ts_ms / 3600000 / 24 < ?3");
static const char fold_day_lat_sql[] = FOLD_LAT("rollup_lat_day", " / 24", " AND ts_ms / 3600000 / 24 < ?3");
static const char fold_spend_sql[] =
	"INSERT INTO spend SELECT ts_ms / 3600000, total(cost) FROM calls WHERE id > ?1 AND id <= ?2"
	" GROUP BY 1 ON CONFLICT DO UPDATE SET cost = cost + excluded.cost";

/* ledger_compact: the hourly rollups of the hours ?1 <= hour < ?2 (whole UTC days) summed per day. */
static const char compact_sql[] =
	"INSERT INTO rollup_day" ROLL_NAMES("day") " SELECT hour / 24, program, model, host, status,"
	" cached, batch, sum(n), total(tokens_in), total(tokens_out), total(cost), sum(cost_n),"
	" total(saved), sum(saved_n), total(lat_sum), min(first_ms), max(last_ms),"
	" total(tokens_cached), sum(cached_n), total(tokens_reason), sum(reason_n)"
	" FROM rollup WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2, 3, 4, 5, 6, 7";
static const char compact_lat_sql[] =
	"INSERT INTO rollup_lat_day SELECT hour / 24, program, model, ledger_hist_sum(hist),"
	" min(lat_min), max(lat_max) FROM rollup_lat WHERE hour >= ?1 AND hour < ?2 GROUP BY 1, 2, 3";

static const char insert_sql[] =
	"INSERT INTO calls(ts_ms, program, model, host, prompt_tokens, completion_tokens,"
	" latency_ms, status, cached, batch, cost, saved, prompt, cached_tokens, reasoning_tokens,"
	" attachments) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/*
 * The latency histogram: log-linear buckets as in HdrHistogram.  Below
 * 2^HIST_SUB ms every millisecond is its own bucket; above, each power
 * of two is cut into 2^HIST_SUB equal buckets, so a bucket's lower
 * bound is within 2^-HIST_SUB (0.78%) of every value in it.  Values
 * are capped at 2^40 ms (35 years).  Stored as a BLOB of varint pairs
 * (bucket minus the previous bucket, count), buckets ascending: only
 * occupied buckets take room, and two histograms merge by adding counts.
 */
#define HIST_SUB 7
#define HIST_MAXV ((INT64_C(1) << 40) - 1)

int ledger_hist_bucket(int64_t v)
{
	int e;

	if (v <= 0)
		return 0;
	if (v > HIST_MAXV)
		v = HIST_MAXV;
	if (v < (1 << HIST_SUB))
		return (int)v;
	e = 63 - __builtin_clzll((unsigned long long)v);
	return ((e - HIST_SUB) << HIST_SUB) + (int)(v >> (e - HIST_SUB));
}

int64_t ledger_hist_lower(int b)
{
	int s;

	if (b < (2 << HIST_SUB))
		return b;
	s = (b >> HIST_SUB) - 1;
	return (int64_t)(b - (s << HIST_SUB)) << s;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	int shift = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		unsigned char c = *(*p)++;

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
		shift += 7;
	}
	return -1;
}

/* Adds the histogram blob (len bytes) to the dense counts h[LEDGER_HIST_BUCKETS]; a damaged blob adds what it can. */
void ledger_hist_add_blob(uint64_t *h, const void *blob, size_t len)
{
	const unsigned char *p = blob, *end = p + len;
	uint64_t b = 0, d, c;
	bool first = true;

	while (p < end) {
		if (get_varint(&p, end, &d) || get_varint(&p, end, &c))
			return;
		b = first ? d : b + d;
		first = false;
		if (b >= LEDGER_HIST_BUCKETS)
			return;
		h[b] += c;
	}
}

/* Encodes the dense counts as a blob; returns its length (buffer: LEDGER_HIST_BUCKETS * 20 bytes). */
static size_t hist_encode(const uint64_t *h, unsigned char *out)
{
	size_t n = 0;
	int b, prev = 0;
	bool first = true;

	for (b = 0; b < LEDGER_HIST_BUCKETS; b++) {
		if (!h[b])
			continue;
		n += put_varint(out + n, (uint64_t)(first ? b : b - prev));
		n += put_varint(out + n, h[b]);
		prev = b;
		first = false;
	}
	return n;
}

static void result_hist(sqlite3_context *ctx, const uint64_t *h)
{
	unsigned char *out = sqlite3_malloc(LEDGER_HIST_BUCKETS * 20);
	size_t n;

	if (!out) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	n = hist_encode(h, out);
	sqlite3_result_blob(ctx, out, (int)n, sqlite3_free);
}

/* ledger_hist1(v): the histogram of one value (two varints, no dense array). */
static void sql_hist1(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	unsigned char out[20];
	size_t n;

	(void)argc;
	n = put_varint(out, (uint64_t)ledger_hist_bucket(sqlite3_value_int64(argv[0])));
	n += put_varint(out + n, 1);
	sqlite3_result_blob(ctx, out, (int)n, SQLITE_TRANSIENT);
}

/* Decodes a histogram into (bucket, count) pairs, ascending; returns how many. */
static size_t hist_pairs(const void *blob, size_t len, uint32_t *bk, uint64_t *ct, size_t max)
{
	const unsigned char *p = blob, *end = p + len;
	uint64_t b = 0, d, c;
	size_t n = 0;

	while (p < end && n < max) {
		if (get_varint(&p, end, &d) || get_varint(&p, end, &c))
			break;
		b = n ? b + d : d;
		if (b >= LEDGER_HIST_BUCKETS || (n && b <= bk[n - 1]))
			break;
		bk[n] = (uint32_t)b;
		ct[n++] = c;
	}
	return n;
}

/*
 * ledger_hist_merge(a, b): the sum of two histograms, by a merge of
 * their pairs: an append merges one value into an hour's histogram, so
 * this is the ledger's hot path and costs what the blobs hold, not
 * what the bucket range could.
 */
static void sql_hist_merge(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	/* A pair takes two bytes at least: the blobs' sizes bound the work and the memory. */
	size_t la = (size_t)sqlite3_value_bytes(argv[0]), lb = (size_t)sqlite3_value_bytes(argv[1]);
	size_t ma = la / 2 + 1, mb = lb / 2 + 1;
	uint32_t *ba, *bb;
	uint64_t *ca, *cb;
	void *mem;
	unsigned char *out;
	size_t na, nb, i = 0, j = 0, n = 0;
	uint32_t prev = 0;
	bool first = true;

	(void)argc;
	mem = sqlite3_malloc64((ma + mb) * (sizeof(uint32_t) + sizeof(uint64_t)));
	out = sqlite3_malloc64((ma + mb) * 20);
	if (!mem || !out) {
		sqlite3_free(mem);
		sqlite3_free(out);
		sqlite3_result_error_nomem(ctx);
		return;
	}
	ca = mem;
	cb = ca + ma;
	ba = (uint32_t *)(cb + mb);
	bb = ba + ma;
	na = hist_pairs(sqlite3_value_blob(argv[0]), la, ba, ca, ma);
	nb = hist_pairs(sqlite3_value_blob(argv[1]), lb, bb, cb, mb);
	while (i < na || j < nb) {
		uint32_t b;
		uint64_t c;

		if (j >= nb || (i < na && ba[i] < bb[j])) {
			b = ba[i];
			c = ca[i++];
		} else if (i >= na || bb[j] < ba[i]) {
			b = bb[j];
			c = cb[j++];
		} else {
			b = ba[i];
			c = ca[i++] + cb[j++];
		}
		n += put_varint(out + n, first ? b : b - prev);
		n += put_varint(out + n, c);
		prev = b;
		first = false;
	}
	sqlite3_free(mem);
	sqlite3_result_blob(ctx, out, (int)n, sqlite3_free);
}

/* ledger_hist(v): the aggregate, for folding raw rows. */
static void sql_hist_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	uint64_t *h = sqlite3_aggregate_context(ctx, LEDGER_HIST_BUCKETS * sizeof(*h));

	(void)argc;
	if (!h) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	h[ledger_hist_bucket(sqlite3_value_int64(argv[0]))]++;
}

static void sql_hist_final(sqlite3_context *ctx)
{
	uint64_t *h = sqlite3_aggregate_context(ctx, 0);
	static const uint64_t none[LEDGER_HIST_BUCKETS];

	result_hist(ctx, h ? h : none);
}

/* ledger_hist_sum(blob): the aggregate that merges stored histograms, for ledger_compact. */
static void sql_hist_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	uint64_t *h = sqlite3_aggregate_context(ctx, LEDGER_HIST_BUCKETS * sizeof(*h));

	(void)argc;
	if (!h) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	ledger_hist_add_blob(h, sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]));
}

static int register_functions(sqlite3 *db)
{
	int f = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;
	int rc;

	rc = sqlite3_create_function(db, "ledger_hist1", 1, f, NULL, sql_hist1, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ledger_hist_merge", 2, f, NULL, sql_hist_merge, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ledger_hist", 1, f, NULL, NULL, sql_hist_step,
					     sql_hist_final);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ledger_hist_sum", 1, f, NULL, NULL, sql_hist_sum_step,
					     sql_hist_final);
	return rc;
}

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
	long long v = 0, tables = 0;
	struct sqlretry retry;
	int rc;

	/* WAL first, outside a transaction; it persists in the file. */
	rc = sqlretry_wal(l->db, l->busy_ms);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "set up", err);
	/* On a fresh file the process that makes the schema appends at
	 * once, and so may the others that made it with it: a process
	 * queued for the lock here may wait out the busy timeout behind
	 * their appends for a schema that is there already.  So while the
	 * lock is taken, look whether it is, and if so need no lock. */
	sqlite3_busy_timeout(l->db, 0);
	sqlretry_init(&retry, l->busy_ms);
	for (;;) {
		rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY)
			break;
		if (query_int(l, "PRAGMA user_version", &v) == SQLITE_OK && v == LEDGER_SCHEMA)
			break;
		if (!sqlretry_again(&retry, rc))
			break;
	}
	sqlite3_busy_timeout(l->db, l->busy_ms);
	if ((rc & 0xff) == SQLITE_BUSY && v == LEDGER_SCHEMA)
		return 0;
	if (rc != SQLITE_OK)
		return db_err(l, rc, "set up", err);
	v = 0;
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
	/* Schema 1 to 2 adds tables and nothing else, so it is instant
	 * whatever the ledger's size: the old rows are folded in later,
	 * in small transactions (ledger_fold). */
	if (rc == SQLITE_OK && v < 2)
		rc = sqlite3_exec(l->db, upgrade_sql, NULL, NULL, NULL);
	/* So is 2 to 3: columns added, two empty tables; the day rollups
	 * fill at the next report (ledger_compact). */
	if (rc == SQLITE_OK && v < 3)
		rc = sqlite3_exec(l->db, upgrade3_sql, NULL, NULL, NULL);
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
	l->keep_days = LEDGER_KEEP_DAYS;
	rc = register_functions(l->db);
	if (rc == SQLITE_OK)
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
	sqlite3_finalize(l->roll_row);
	sqlite3_finalize(l->roll_lat);
	sqlite3_finalize(l->fold);
	sqlite3_finalize(l->fold_lat);
	sqlite3_finalize(l->spend_row);
	sqlite3_finalize(l->fold_spend);
	sqlite3_finalize(l->meta_get);
	sqlite3_finalize(l->meta_set);
	sqlite3_finalize(l->day_row);
	sqlite3_finalize(l->day_lat);
	sqlite3_finalize(l->fold_day);
	sqlite3_finalize(l->fold_day_lat);
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

static int prepare_all(struct ledger *l)
{
	int rc = prepare(l, "BEGIN IMMEDIATE", &l->begin);

	if (rc == SQLITE_OK)
		rc = prepare(l, "COMMIT", &l->commit);
	if (rc == SQLITE_OK)
		rc = prepare(l, "ROLLBACK", &l->rollback);
	if (rc == SQLITE_OK)
		rc = prepare(l, insert_sql, &l->insert);
	if (rc == SQLITE_OK)
		rc = prepare(l, roll_row_sql, &l->roll_row);
	if (rc == SQLITE_OK)
		rc = prepare(l, roll_lat_sql, &l->roll_lat);
	if (rc == SQLITE_OK)
		rc = prepare(l, spend_row_sql, &l->spend_row);
	if (rc == SQLITE_OK)
		rc = prepare(l, "SELECT v FROM ledger_meta WHERE k = ?1", &l->meta_get);
	if (rc == SQLITE_OK)
		rc = prepare(l, "UPDATE ledger_meta SET v = ?2 WHERE k = ?1", &l->meta_set);
	return rc;
}

static int meta_get(struct ledger *l, const char *k, int64_t *v)
{
	int rc;

	sqlite3_bind_text(l->meta_get, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(l->meta_get);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(l->meta_get, 0) : 0;
	sqlite3_reset(l->meta_get);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int meta_set(struct ledger *l, const char *k, int64_t v)
{
	int rc;

	sqlite3_bind_text(l->meta_set, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_int64(l->meta_set, 2, v);
	rc = sqlite3_step(l->meta_set);
	sqlite3_reset(l->meta_set);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The UTC day of a time, as the SQL above computes it (ts_ms / 3600000 / 24). */
static int64_t utc_day(int64_t ts_ms)
{
	return ts_ms / 3600000 / 24;
}

/*
 * Folds the raw rows a < id <= b into the rollups; inside the caller's
 * transaction.  days_done is the compaction mark: those of the rows on
 * a day below it go to the day rollups too (0: the caller knows none does).
 */
static int fold_range(struct ledger *l, int64_t a, int64_t b, int64_t days_done)
{
	int rc;

	/* Prepared when first needed: a one-shot program seldom folds. */
	rc = prepare(l, fold_sql, &l->fold);
	if (rc == SQLITE_OK)
		rc = prepare(l, fold_lat_sql, &l->fold_lat);
	if (rc == SQLITE_OK)
		rc = prepare(l, fold_spend_sql, &l->fold_spend);
	if (rc == SQLITE_OK && days_done > 0)
		rc = prepare(l, fold_day_sql, &l->fold_day);
	if (rc == SQLITE_OK && days_done > 0)
		rc = prepare(l, fold_day_lat_sql, &l->fold_day_lat);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(l->fold, 1, a);
	sqlite3_bind_int64(l->fold, 2, b);
	sqlite3_bind_int64(l->fold_lat, 1, a);
	sqlite3_bind_int64(l->fold_lat, 2, b);
	sqlite3_bind_int64(l->fold_spend, 1, a);
	sqlite3_bind_int64(l->fold_spend, 2, b);
	rc = step_done(l->fold);
	if (rc == SQLITE_OK)
		rc = step_done(l->fold_lat);
	if (rc == SQLITE_OK)
		rc = step_done(l->fold_spend);
	if (rc == SQLITE_OK && days_done > 0) {
		sqlite3_stmt *st[2] = { l->fold_day, l->fold_day_lat };

		for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
			sqlite3_bind_int64(st[i], 1, a);
			sqlite3_bind_int64(st[i], 2, b);
			sqlite3_bind_int64(st[i], 3, days_done);
			rc = step_done(st[i]);
		}
	}
	if (rc == SQLITE_OK)
		rc = meta_set(l, "folded", b);
	return rc;
}

/* Runs one row's upsert into a rollup table (roll_row_sql or day_row_sql). */
static int roll_one(sqlite3_stmt *st, const struct ledger_row *r, const char *host)
{
	int rc;

	sqlite3_bind_int64(st, 1, r->ts_ms);
	bind_text(st, 2, r->program);
	bind_text(st, 3, r->model);
	bind_text(st, 4, host);
	sqlite3_bind_int64(st, 5, r->status);
	sqlite3_bind_int(st, 6, r->cached);
	sqlite3_bind_int(st, 7, r->batch);
	bind_count(st, 8, r->prompt_tokens);
	bind_count(st, 9, r->completion_tokens);
	bind_money(st, 10, r->cost);
	bind_money(st, 11, r->cached ? r->saved : NAN);
	sqlite3_bind_int64(st, 12, r->latency_ms > 1000000000 ? 1000000000 : r->latency_ms);
	bind_count(st, 13, r->cached_tokens);
	bind_count(st, 14, r->reasoning_tokens);
	rc = step_done(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Runs one row's latency upsert (roll_lat_sql or day_lat_sql). */
static int lat_one(sqlite3_stmt *st, const struct ledger_row *r)
{
	int rc;

	sqlite3_bind_int64(st, 1, r->ts_ms);
	bind_text(st, 2, r->program);
	bind_text(st, 3, r->model);
	sqlite3_bind_int64(st, 4, r->latency_ms);
	rc = step_done(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/*
 * Inserts one raw row and, when the rollups are up to date, adds it to
 * them; inside the caller's transaction.  Rows that someone else left
 * unfolded come first (at most LEDGER_FOLD_CHUNK of them per call, so
 * an append never waits on a long fold); until they are all folded,
 * this row waits too, as the rollups must hold an unbroken run of ids.
 */
static int append_one(struct ledger *l, const struct ledger_row *r, bool direct)
{
	const char *host = r->host;
	char hbuf[256];
	int64_t id, folded, days_done;
	sqlite3_stmt *st;
	int rc;

	/* Credentials in a host ("user:key@host") never reach the file. */
	if (host)
		host = url_host(host, hbuf, sizeof(hbuf));

	st = l->insert;
	sqlite3_bind_int64(st, 1, r->ts_ms);
	bind_text(st, 2, r->program);
	bind_text(st, 3, r->model);
	bind_text(st, 4, host);
	bind_count(st, 5, r->prompt_tokens);
	bind_count(st, 6, r->completion_tokens);
	sqlite3_bind_int64(st, 7, r->latency_ms < 0 ? 0 : r->latency_ms);
	sqlite3_bind_int64(st, 8, r->status);
	sqlite3_bind_int(st, 9, r->cached);
	sqlite3_bind_int(st, 10, r->batch);
	bind_money(st, 11, r->cost);
	bind_money(st, 12, r->cached ? r->saved : NAN);
	bind_text(st, 13, r->prompt);
	bind_count(st, 14, r->cached_tokens);
	bind_count(st, 15, r->reasoning_tokens);
	bind_count(st, 16, r->attachments);
	rc = step_done(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_OK)
		return rc;
	id = sqlite3_last_insert_rowid(l->db);
	if (!direct)
		return SQLITE_OK;
	rc = meta_get(l, "folded", &folded);
	if (rc == SQLITE_OK)
		rc = meta_get(l, "days_done", &days_done);
	if (rc != SQLITE_OK)
		return rc;
	if (folded < id - 1) {
		int64_t to = id - 1 - folded > LEDGER_FOLD_CHUNK ? folded + LEDGER_FOLD_CHUNK : id;

		return fold_range(l, folded, to, days_done);
	}
	if (folded >= id)
		return SQLITE_OK;	/* ids reused after a hand edit: ledger_fold's job */

	rc = roll_one(l->roll_row, r, host);
	if (rc == SQLITE_OK && isfinite(r->cost) && r->cost != 0) {
		sqlite3_bind_int64(l->spend_row, 1, r->ts_ms);
		sqlite3_bind_double(l->spend_row, 2, r->cost);
		rc = step_done(l->spend_row);
	}
	if (rc == SQLITE_OK)
		rc = lat_one(l->roll_lat, r);
	/* A row of a day compacted already (a clock set back, a late
	 * write) joins that day's rollups too. */
	if (rc == SQLITE_OK && utc_day(r->ts_ms) < days_done) {
		rc = prepare(l, day_row_sql, &l->day_row);
		if (rc == SQLITE_OK)
			rc = prepare(l, day_lat_sql, &l->day_lat);
		if (rc == SQLITE_OK)
			rc = roll_one(l->day_row, r, host);
		if (rc == SQLITE_OK)
			rc = lat_one(l->day_lat, r);
	}
	if (rc != SQLITE_OK)
		return rc;
	return meta_set(l, "folded", id);
}

/* Prunes a little when it is due; never fails the append that called it. */
static void maybe_prune(struct ledger *l)
{
	struct ai_err e;
	int64_t due = 0;
	long n = 0;

	if (l->keep_days <= 0 || (l->appends++ % LEDGER_PRUNE_EVERY) != 0)
		return;
	if (meta_get(l, "prune_after", &due) != SQLITE_OK || due > wall_ms())
		return;
	ledger_prune(l, wall_ms(), LEDGER_PRUNE_CHUNK, &n, &e);
}

/*
 * Up to this many rows a transaction adds each row to its rollups by
 * its upserts; above, the rows go in raw and one grouped pass folds
 * them, which builds a dense histogram per group and pays off only
 * when the groups hold many rows each.  See ledger_bench.
 */
#ifndef LEDGER_DIRECT_MAX
#define LEDGER_DIRECT_MAX 8
#endif

int ledger_append_many(struct ledger *l, const struct ledger_row *rows, size_t n, struct ai_err *err)
{
	int rc;

	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	rc = prepare_all(l);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "write", err);
	rc = step_retry(l, l->begin);
	/* A few rows are added to their rollups by their upserts; many
	 * are inserted raw and folded by one grouped pass, which touches
	 * each rollup row once however many of the batch's rows it holds. */
	for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
		rc = append_one(l, &rows[i], n <= LEDGER_DIRECT_MAX);
	if (rc == SQLITE_OK && n > LEDGER_DIRECT_MAX) {
		int64_t folded, days_done, top = sqlite3_last_insert_rowid(l->db), first = INT64_MAX;

		rc = meta_get(l, "folded", &folded);
		if (rc == SQLITE_OK)
			rc = meta_get(l, "days_done", &days_done);
		if (rc == SQLITE_OK) {
			for (size_t i = 0; i < n; i++)
				if (utc_day(rows[i].ts_ms) < first)
					first = utc_day(rows[i].ts_ms);
			/* Rows of today only (nearly always): the day rollups are not
			 * touched; rows left unfolded by others may be older. */
			if (first >= days_done && folded == top - (int64_t)n)
				days_done = 0;
		}
		if (rc == SQLITE_OK && folded < top)
			rc = fold_range(l, folded, top - folded > LEDGER_FOLD_CHUNK + (int64_t)n
					? folded + LEDGER_FOLD_CHUNK : top, days_done);
	}
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->commit);
	if (rc == SQLITE_OK) {
		maybe_prune(l);
		return 0;
	}
	db_err(l, rc, "write", err);
	if (!sqlite3_get_autocommit(l->db)) {
		sqlite3_step(l->rollback);
		sqlite3_reset(l->rollback);
	}
	return -1;
}

int ledger_append(struct ledger *l, const struct ledger_row *r, struct ai_err *err)
{
	return ledger_append_many(l, r, 1, err);
}

int ledger_fold(struct ledger *l, void (*progress)(void *ud, int64_t done, int64_t total), void *ud,
		struct ai_err *err)
{
	int64_t folded, top, start = -1, days_done = 0;
	long long mx;
	int rc;

	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	rc = prepare_all(l);
	if (rc != SQLITE_OK)
		return db_err(l, rc, "fold", err);
	for (;;) {
		int64_t to;

		rc = step_retry(l, l->begin);
		if (rc == SQLITE_OK)
			rc = meta_get(l, "folded", &folded);
		if (rc == SQLITE_OK)
			rc = query_int(l, "SELECT ifnull(max(id), 0) FROM calls", &mx);
		if (rc != SQLITE_OK)
			break;
		top = mx;
		/* Past the newest row: every row was deleted by hand (pruning
		 * keeps the newest) and SQLite numbers again from 1, so the
		 * rows there now are new ones. */
		if (folded > top)
			folded = 0;
		if (start < 0)
			start = folded;
		to = top - folded > LEDGER_FOLD_CHUNK ? folded + LEDGER_FOLD_CHUNK : top;
		if (folded < top)
			rc = meta_get(l, "days_done", &days_done);
		if (folded < top && rc == SQLITE_OK)
			rc = fold_range(l, folded, to, days_done);
		else if (start == 0 && top == 0)
			rc = meta_set(l, "folded", 0);
		if (rc == SQLITE_OK)
			rc = step_retry(l, l->commit);
		if (rc != SQLITE_OK)
			break;
		if (progress && to > folded)
			progress(ud, to - start, top - start);
		if (to >= top)
			break;
	}
	if (rc == SQLITE_OK)
		return 0;
	db_err(l, rc, "fold", err);
	if (!sqlite3_get_autocommit(l->db)) {
		sqlite3_step(l->rollback);
		sqlite3_reset(l->rollback);
	}
	return -1;
}

void ledger_set_keep(struct ledger *l, long days)
{
	l->keep_days = days < 0 ? 0 : days;
}

int ledger_prune(struct ledger *l, int64_t now_ms, long max_rows, long *deleted, struct ai_err *err)
{
	static const char sql[] =
		"DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE ts_ms < ?1 AND id <= ?2"
		" AND id < ?3 ORDER BY ts_ms LIMIT ?4)";
	sqlite3_stmt *st = NULL;
	int64_t folded;
	long long mx;
	int rc;

	*deleted = 0;
	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	if (l->keep_days <= 0)
		return 0;
	rc = prepare_all(l);
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->begin);
	if (rc == SQLITE_OK)
		rc = meta_get(l, "folded", &folded);
	if (rc == SQLITE_OK)
		rc = query_int(l, "SELECT ifnull(max(id), 0) FROM calls", &mx);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		/* Only folded rows go (the rollups hold them), and never the
		 * newest row: SQLite gives a new row max(id) + 1, and an id the
		 * mark has passed would never be folded. */
		sqlite3_bind_int64(st, 1, now_ms - (int64_t)l->keep_days * 86400000);
		sqlite3_bind_int64(st, 2, folded);
		sqlite3_bind_int64(st, 3, mx);
		sqlite3_bind_int64(st, 4, max_rows);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		*deleted = sqlite3_changes(l->db);
	}
	if (rc == SQLITE_OK && *deleted < max_rows)
		rc = meta_set(l, "prune_after", now_ms + LEDGER_PRUNE_PAUSE_MS);
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->commit);
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		return 0;
	*deleted = 0;
	db_err(l, rc, "prune", err);
	if (!sqlite3_get_autocommit(l->db)) {
		sqlite3_step(l->rollback);
		sqlite3_reset(l->rollback);
	}
	return -1;
}

int ledger_compact(struct ledger *l, struct ai_err *err)
{
	sqlite3_stmt *st[2] = { NULL, NULL };
	int64_t done = 0, today = utc_day(wall_ms());
	int rc;

	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	rc = prepare_all(l);
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->begin);
	if (rc == SQLITE_OK)
		rc = meta_get(l, "days_done", &done);
	/* The first compaction starts at day 0: the range below is one of
	 * the key, so the days before the first rollup cost nothing. */
	if (rc == SQLITE_OK && done < today) {
		rc = sqlite3_prepare_v2(l->db, compact_sql, -1, &st[0], NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v2(l->db, compact_lat_sql, -1, &st[1], NULL);
		for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
			sqlite3_bind_int64(st[i], 1, done * 24);
			sqlite3_bind_int64(st[i], 2, today * 24);
			rc = step_done(st[i]);
		}
		if (rc == SQLITE_OK)
			rc = meta_set(l, "days_done", today);
	}
	if (rc == SQLITE_OK)
		rc = step_retry(l, l->commit);
	sqlite3_finalize(st[0]);
	sqlite3_finalize(st[1]);
	if (rc == SQLITE_OK)
		return 0;
	db_err(l, rc, "compact", err);
	if (l->db && !sqlite3_get_autocommit(l->db)) {
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

/* The rollup hour holding t: floor(t / 1 h). */
static int64_t hour_of(int64_t t_ms)
{
	return t_ms / 3600000 - (t_ms % 3600000 < 0);
}

int ledger_spent_today(struct ledger *l, double *usd, struct ai_err *err)
{
	/* The rollups' hours of today, one range of their primary key, and
	 * the raw rows not folded yet (none, but after an upgrade or a
	 * write by an older ai-tools): a range of ids from the mark, with
	 * the '+' keeping SQLite off the index on ts_ms. */
	static const char sql[] =
		"SELECT (SELECT total(cost) FROM spend WHERE hour >= ?3 AND hour < ?4)"
		" + (SELECT total(cost) FROM calls WHERE id > (SELECT v FROM ledger_meta WHERE k = 'folded')"
		" AND +ts_ms >= ?1 AND +ts_ms < ?2)";
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
	sqlite3_bind_int64(st, 3, hour_of(local_midnight_ms(now, 0)));
	sqlite3_bind_int64(st, 4, hour_of(local_midnight_ms(now, 1)));
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

int64_t ledger_today_ms(void)
{
	return local_midnight_ms(wall_ms(), 0);
}

int ledger_check_budget(struct ledger *l, double limit_usd, struct ai_err *err)
{
	return ledger_check_budget_with(l, limit_usd, 0, err);
}

int ledger_check_budget_with(struct ledger *l, double limit_usd, double unwritten_usd, struct ai_err *err)
{
	double spent;
	char s[32], lim[32];

	if (!isfinite(limit_usd) || limit_usd < 0)
		return ai_errf(err, AI_EX_CONFIG, "bad daily budget: want AI_BUDGET_DAILY in USD, 0 or more");
	if (ledger_spent_today(l, &spent, err) < 0)
		return -1;
	if (isfinite(unwritten_usd) && unwritten_usd > 0)
		spent += unwritten_usd;
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

enum by { BY_PROGRAM, BY_MODEL, BY_DAY, BY_ALL, BY_DAY_PROGRAM, BY_DAY_MODEL, BY_BAD };

static enum by parse_by(const char *by)
{
	if (!by)
		return BY_BAD;
	if (strcmp(by, "program") == 0)
		return BY_PROGRAM;
	if (strcmp(by, "model") == 0)
		return BY_MODEL;
	if (strcmp(by, "day") == 0)
		return BY_DAY;
	if (strcmp(by, "all") == 0)
		return BY_ALL;
	if (strcmp(by, "day,program") == 0)
		return BY_DAY_PROGRAM;
	if (strcmp(by, "day,model") == 0)
		return BY_DAY_MODEL;
	return BY_BAD;
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

/* A group being summed: the public part, its histogram and what finishing it needs. */
struct acc {
	struct ledger_group g;
	uint64_t *hist;               /* LEDGER_HIST_BUCKETS counts */
	int64_t lat_sum, lat_min, lat_max;
	bool any_cost;
	long hits_saved;
	long cached_n, reason_n;      /* billed rows that knew their cached / reasoning tokens */
};

struct accs {
	struct acc *v;
	size_t n, alloc;
};

/* The group of key k, made (sorted into place) if new; NULL when out of memory. */
static struct acc *acc_find(struct accs *a, const char *k)
{
	size_t lo = 0, hi = a->n;
	struct acc *g;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->v[mid].g.key, k);

		if (c == 0)
			return &a->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (a->n == a->alloc) {
		size_t na = a->alloc ? 2 * a->alloc : 16;
		struct acc *nv = realloc(a->v, na * sizeof(*nv));

		if (!nv)
			return NULL;
		a->v = nv;
		a->alloc = na;
	}
	memmove(&a->v[lo + 1], &a->v[lo], (a->n - lo) * sizeof(*a->v));
	g = &a->v[lo];
	memset(g, 0, sizeof(*g));
	g->g.key = strdup(k);
	g->hist = calloc(LEDGER_HIST_BUCKETS, sizeof(*g->hist));
	if (!g->g.key || !g->hist) {
		free(g->g.key);
		free(g->hist);
		memmove(&a->v[lo], &a->v[lo + 1], (a->n - lo) * sizeof(*a->v));
		return NULL;
	}
	a->n++;
	g->g.first_ms = INT64_MAX;
	g->g.last_ms = INT64_MIN;
	g->lat_min = INT64_MAX;
	g->lat_max = INT64_MIN;
	return g;
}

/* The nearest-rank q-quantile (q in percent) of a histogram of n values, within [lo, hi]. */
static long hist_rank(const uint64_t *h, long n, int q, int64_t lo, int64_t hi)
{
	uint64_t rank = ((uint64_t)n * (uint64_t)q + 99) / 100, seen = 0;
	int64_t v = hi;

	if (!rank)
		rank = 1;
	for (int b = 0; b < LEDGER_HIST_BUCKETS; b++) {
		seen += h[b];
		if (seen >= rank) {
			v = ledger_hist_lower(b);
			break;
		}
	}
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return (long)v;
}

static void acc_finish(struct acc *a)
{
	struct ledger_group *g = &a->g;

	g->avg_latency_ms = (double)a->lat_sum / (double)g->requests;
	g->p50_latency_ms = hist_rank(a->hist, g->requests, 50, a->lat_min, a->lat_max);
	g->p95_latency_ms = hist_rank(a->hist, g->requests, 95, a->lat_min, a->lat_max);
	g->p99_latency_ms = hist_rank(a->hist, g->requests, 99, a->lat_min, a->lat_max);
	g->hit_rate = (double)g->hits / (double)g->requests;
	if (!a->any_cost)
		g->cost = NAN;
	if (g->hits && !a->hits_saved)
		g->saved = NAN;
	if (!a->cached_n)
		g->cached_tokens = -1;
	if (!a->reason_n)
		g->reasoning_tokens = -1;
}

/* The key of a rollup row for this grouping; buf holds a day's date. */
static const char *group_key(enum by by, const char *program, const char *model, int64_t hour,
			     char *buf, size_t n)
{
	time_t t;
	struct tm tm;

	switch (by) {
	case BY_PROGRAM:
		return *program ? program : "-";
	case BY_MODEL:
		return *model ? model : "-";
	case BY_DAY:
	case BY_DAY_PROGRAM:
	case BY_DAY_MODEL:
		t = (time_t)(hour * 3600);
		localtime_r(&t, &tm);
		strftime(buf, n, "%Y-%m-%d", &tm);
		if (by != BY_DAY) {
			size_t l = strlen(buf);

			snprintf(buf + l, n - l, "\t%s", by == BY_DAY_PROGRAM ? (*program ? program : "-") :
							 (*model ? model : "-"));
		}
		return buf;
	default:
		return "total";
	}
}

static void add_i64(int64_t *sum, int64_t v)
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

/*
 * The ranges a report reads: hours [a0, a1) and [b0, b1) from the
 * hourly rollups, days [d0, d1) from the day rollups.
 */
struct ranges {
	int64_t a0, a1, b0, b1, d0, d1;
};

/*
 * Splits the hours [h0, h1) into the whole UTC days the day rollups hold
 * (below the mark, read inside the caller's transaction) and the hours
 * at either end.  Grouped by day (alone or with a program or model, as
 * --chart groups), a UTC day is one local date only where the zone's
 * offset is a multiple of 24 hours; elsewhere the hourly rollups serve
 * the whole range.
 */
static int day_ranges(struct ledger *l, enum by b, int64_t h0, int64_t h1, struct ranges *r)
{
	long long done = 0, first = 0;
	int64_t d0, d1;
	int rc;

	memset(r, 0, sizeof(*r));
	r->a0 = h0;
	r->a1 = h1;
	rc = query_int(l, "SELECT v FROM ledger_meta WHERE k = 'days_done'", &done);
	if (rc != SQLITE_OK)
		return rc;
	d0 = h0 <= 0 ? 0 : (h0 + 23) / 24;
	d1 = h1 / 24 < done ? h1 / 24 : done;
	if (d0 >= d1)
		return SQLITE_OK;
	if (b == BY_DAY || b == BY_DAY_PROGRAM || b == BY_DAY_MODEL) {
		rc = query_int(l, "SELECT ifnull(min(day), 0) FROM rollup_day", &first);
		if (rc != SQLITE_OK)
			return rc;
		for (int64_t d = d0 > first ? d0 : first; d < d1; d++)
			if (local_day(d * 86400000) != local_day(d * 86400000 + 23 * 3600000))
				return SQLITE_OK;
	}
	r->a1 = d0 * 24;
	r->b0 = d1 * 24;
	r->b1 = h1;
	r->d0 = d0;
	r->d1 = d1;
	return SQLITE_OK;
}

static void bind_ranges(sqlite3_stmt *st, const struct ranges *r, const char *model, int64_t since_ms,
			int64_t until_ms)
{
	sqlite3_bind_int64(st, 1, r->a0);
	sqlite3_bind_int64(st, 2, r->a1);
	bind_text(st, 3, model);
	sqlite3_bind_int64(st, 4, since_ms);
	sqlite3_bind_int64(st, 5, until_ms);
	sqlite3_bind_int64(st, 6, r->b0);
	sqlite3_bind_int64(st, 7, r->b1);
	sqlite3_bind_int64(st, 8, r->d0);
	sqlite3_bind_int64(st, 9, r->d1);
}

/*
 * Reads the rollups of the hours that meet [since_ms, until_ms): whole
 * hours, so a bound inside an hour (only a time zone whose offset is
 * not a whole number of hours puts a midnight there) takes that hour
 * whole.  Two queries, one per table, each one range of its key.
 */
static int report_impl(struct ledger *l, const char *by, const char *model, int64_t since_ms,
		       int64_t until_ms, struct ledger_group **out, size_t *n, struct ledger_group *total,
		       struct ai_err *err);

int ledger_report_model(struct ledger *l, const char *by, const char *model, int64_t since_ms,
			int64_t until_ms, struct ledger_group **out, size_t *n, struct ai_err *err)
{
	return report_impl(l, by, model, since_ms, until_ms, out, n, NULL, err);
}

int ledger_report_total(struct ledger *l, const char *by, const char *model, int64_t since_ms,
			int64_t until_ms, struct ledger_group **out, size_t *n, struct ledger_group *total,
			struct ai_err *err)
{
	memset(total, 0, sizeof(*total));
	return report_impl(l, by, model, since_ms, until_ms, out, n, total, err);
}

static int report_impl(struct ledger *l, const char *by, const char *model, int64_t since_ms,
		       int64_t until_ms, struct ledger_group **out, size_t *n, struct ledger_group *total,
		       struct ai_err *err)
{
	/* Each query reads the rollups and then the raw rows they do not
	 * hold yet, grouped the same way: none when the fold below could
	 * run, but it gives way to a writer holding the lock (ai-usage
	 * must answer then too) and cannot run on a read-only file. */
	static const char sums_sql[] =
		"SELECT hour, program, model, host, cached, n, tokens_in, tokens_out, cost, cost_n,"
		" saved, saved_n, lat_sum, first_ms, last_ms, tokens_cached, cached_n, tokens_reason,"
		" reason_n FROM rollup WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT hour, program, model, host, cached, n, tokens_in, tokens_out, cost,"
		" cost_n, saved, saved_n, lat_sum, first_ms, last_ms, tokens_cached, cached_n,"
		" tokens_reason, reason_n FROM rollup WHERE hour >= ?6 AND hour < ?7"
		" AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT day * 24, program, model, host, cached, n, tokens_in, tokens_out, cost,"
		" cost_n, saved, saved_n, lat_sum, first_ms, last_ms, tokens_cached, cached_n,"
		" tokens_reason, reason_n FROM rollup_day WHERE day >= ?8 AND day < ?9"
		" AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT ts_ms / 3600000, ifnull(program, ''), ifnull(model, ''), ifnull(host, ''),"
		" cached != 0, count(*), total(max(ifnull(prompt_tokens, 0), 0)),"
		" total(max(ifnull(completion_tokens, 0), 0)), total(cost), count(cost),"
		" total(CASE WHEN cached THEN saved END), count(CASE WHEN cached THEN saved END),"
		" sum(min(max(latency_ms, 0), 1000000000)), min(ts_ms), max(ts_ms),"
		" total(max(ifnull(cached_tokens, 0), 0)), count(cached_tokens),"
		" total(max(ifnull(reasoning_tokens, 0), 0)), count(reasoning_tokens) FROM calls"
		" WHERE id > (SELECT v FROM ledger_meta WHERE k = 'folded') AND +ts_ms >= ?4"
		" AND +ts_ms < ?5 AND (?3 IS NULL OR model = ?3) GROUP BY 1, 2, 3, 4, 5";
	static const char lat_sql[] =
		"SELECT hour, program, model, hist, lat_min, lat_max FROM rollup_lat"
		" WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT hour, program, model, hist, lat_min, lat_max FROM rollup_lat"
		" WHERE hour >= ?6 AND hour < ?7 AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT day * 24, program, model, hist, lat_min, lat_max FROM rollup_lat_day"
		" WHERE day >= ?8 AND day < ?9 AND (?3 IS NULL OR model = ?3)"
		" UNION ALL SELECT ts_ms / 3600000, ifnull(program, ''), ifnull(model, ''),"
		" ledger_hist(max(latency_ms, 0)), min(max(latency_ms, 0)), max(max(latency_ms, 0))"
		" FROM calls WHERE id > (SELECT v FROM ledger_meta WHERE k = 'folded') AND +ts_ms >= ?4"
		" AND +ts_ms < ?5 AND (?3 IS NULL OR model = ?3) GROUP BY 1, 2, 3";
	enum by b = parse_by(by);
	struct ranges r;
	struct accs a = { NULL, 0, 0 }, ta = { NULL, 0, 0 };
	const char *lasthost = NULL;
	bool lastlocal = false;
	sqlite3_stmt *st = NULL;
	struct ledger_group *v = NULL;
	int64_t first = INT64_MAX, last = INT64_MIN, end, h0, h1;
	char day[512];
	size_t i;
	int rc;

	*out = NULL;
	*n = 0;
	if (b == BY_BAD)
		return ai_errf(err, AI_EX_USAGE, "cannot group by '%s': want program, model, day, all, day,program or day,model",
			       by ? by : "");
	if (!l->db)
		return ai_errf(err, AI_EX_SOFTWARE, "usage ledger not open");
	/* Rows written by an older ai-tools or by hand join the rollups
	 * first, if the lock is free now; else the queries read them raw. */
	{
		int busy = l->busy_ms;
		struct ai_err e;

		ledger_set_busy_timeout(l, 0);
		ledger_fold(l, NULL, NULL, &e);
		ledger_compact(l, &e);
		ledger_set_busy_timeout(l, busy);
	}
	/* A month of rollups is tens of MB: mapped, they are read without a
	 * system call a page (the connection's cache holds 2 MB): 0.2 s of
	 * CPU for a month at 1M calls a day against 0.3-0.5 s.  The pages
	 * mapped count in the process's RSS but are the page cache's. */
	sqlite3_exec(l->db, "PRAGMA mmap_size = 1073741824", NULL, NULL, NULL);
	h0 = hour_of(since_ms);
	h1 = until_ms == INT64_MAX ? INT64_MAX : hour_of(until_ms - 1) + 1;
	/* One snapshot for the mark and both queries, so that a day being
	 * compacted meanwhile is read once, from one level or the other. */
	rc = exec_retry(l, "BEGIN");
	if (rc != SQLITE_OK)
		goto dberr;
	rc = day_ranges(l, b, h0, h1, &r);
	if (rc != SQLITE_OK)
		goto dberr;

	rc = sqlite3_prepare_v2(l->db, sums_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto dberr;
	bind_ranges(st, &r, model, since_ms, until_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *prog = (const char *)sqlite3_column_text(st, 1);
		const char *mod = (const char *)sqlite3_column_text(st, 2);
		const char *host = (const char *)sqlite3_column_text(st, 3);
		const char *k = group_key(b, prog ? prog : "", mod ? mod : "", sqlite3_column_int64(st, 0),
					  day, sizeof(day));
		bool hit = sqlite3_column_int(st, 4) != 0, local;
		long cnt = (long)sqlite3_column_int64(st, 5);
		long cost_n = (long)sqlite3_column_int64(st, 9), saved_n = (long)sqlite3_column_int64(st, 11);
		int64_t f = sqlite3_column_int64(st, 13), t = sqlite3_column_int64(st, 14);
		int64_t tin = sqlite3_column_int64(st, 6), tout = sqlite3_column_int64(st, 7);
		int64_t lsum = sqlite3_column_int64(st, 12);
		double cost = sqlite3_column_double(st, 8), saved = sqlite3_column_double(st, 10);
		int64_t tcached = sqlite3_column_int64(st, 15), treason = sqlite3_column_int64(st, 17);
		long cached_n = (long)sqlite3_column_int64(st, 16), reason_n = (long)sqlite3_column_int64(st, 18);

		/* Hosts are few and come in runs: ask about each run once. */
		if (!lasthost || !host || strcmp(lasthost, host)) {
			free((void *)lasthost);
			lasthost = host ? strdup(host) : NULL;
			lastlocal = prices_host_local(host);
		}
		local = lastlocal;
		for (int pass = 0; pass < (total ? 2 : 1); pass++) {
			struct acc *g = pass ? acc_find(&ta, "total") : acc_find(&a, k);

			if (!g)
				goto nomem;
			g->g.requests += cnt;
			if (hit) {
				g->g.hits += cnt;
				add_i64(&g->g.hit_prompt_tokens, tin);
				add_i64(&g->g.hit_completion_tokens, tout);
				g->g.saved += saved;
				/* A local server's unpriced hit saved 0 (prices_host_local). */
				g->hits_saved += local ? cnt : saved_n;
			} else {
				add_i64(&g->g.prompt_tokens, tin);
				add_i64(&g->g.completion_tokens, tout);
				add_i64(&g->g.cached_tokens, tcached);
				add_i64(&g->g.reasoning_tokens, treason);
				g->cached_n += cached_n;
				g->reason_n += reason_n;
			}
			g->g.cost += cost;
			if (cost_n || local)
				g->any_cost = true;
			if (!local)
				g->g.unknown_cost += cnt - cost_n;
			g->lat_sum += lsum;
			if (f < g->g.first_ms)
				g->g.first_ms = f;
			if (t > g->g.last_ms)
				g->g.last_ms = t;
		}
		if (f < first)
			first = f;
		if (t > last)
			last = t;
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(l->db, lat_sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto dberr;
	bind_ranges(st, &r, model, since_ms, until_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *prog = (const char *)sqlite3_column_text(st, 1);
		const char *mod = (const char *)sqlite3_column_text(st, 2);
		const char *k = group_key(b, prog ? prog : "", mod ? mod : "", sqlite3_column_int64(st, 0),
					  day, sizeof(day));
		int64_t lo = sqlite3_column_int64(st, 4), hi = sqlite3_column_int64(st, 5);
		const void *blob = sqlite3_column_blob(st, 3);
		size_t blen = (size_t)sqlite3_column_bytes(st, 3);

		for (int pass = 0; pass < (total ? 2 : 1); pass++) {
			struct acc *g = pass ? acc_find(&ta, "total") : acc_find(&a, k);

			if (!g)
				goto nomem;
			ledger_hist_add_blob(g->hist, blob, blen);
			if (lo < g->lat_min)
				g->lat_min = lo;
			if (hi > g->lat_max)
				g->lat_max = hi;
		}
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);

	if (a.n) {
		v = calloc(a.n, sizeof(*v));
		if (!v)
			goto nomem;
	}
	/* The per-day denominator, as ledger.h defines it. */
	end = wall_ms();
	if (until_ms <= end && until_ms > INT64_MIN)
		end = until_ms - 1;
	if (last > end)
		end = last;
	for (i = 0; i < a.n; i++) {
		acc_finish(&a.v[i]);
		v[i] = a.v[i].g;
		v[i].days = b == BY_DAY || b == BY_DAY_PROGRAM || b == BY_DAY_MODEL ? 1 : local_day(end) - local_day(first) + 1;
		free(a.v[i].hist);
	}
	free(a.v);
	if (total && ta.n) {
		acc_finish(&ta.v[0]);
		*total = ta.v[0].g;
		free(total->key);
		total->key = NULL;
		total->days = local_day(end) - local_day(first) + 1;
		free(ta.v[0].hist);
	}
	free(ta.v);
	free((void *)lasthost);
	*out = v;
	*n = a.n;
	return 0;
dberr:
	db_err(l, rc, "read", err);
	goto fail;
nomem:
	ai_errf(err, AI_EX_OSERR, "out of memory");
fail:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	for (i = 0; i < a.n; i++) {
		free(a.v[i].g.key);
		free(a.v[i].hist);
	}
	free(a.v);
	for (i = 0; i < ta.n; i++) {
		free(ta.v[i].g.key);
		free(ta.v[i].hist);
	}
	free(ta.v);
	free((void *)lasthost);
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
