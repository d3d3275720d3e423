/* t_ledger - the usage ledger: files and modes, sums, grouping, ranges, budget, failures, concurrency. */
#include "api/ledger.h"
#include "tap.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H (3600 * 1000LL)
#define DAY (24 * H)
/* 2026-01-10 00:00:00 UTC */
#define D0 (1768003200LL * 1000)

static char dir[64];

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int add(struct ledger *l, int64_t ts, const char *prog, const char *model, long in, long out,
	       long lat, bool hit, double cost, double saved)
{
	struct ledger_row r;
	struct ai_err err;

	memset(&r, 0, sizeof(r));
	r.ts_ms = ts;
	r.program = prog;
	r.model = model;
	r.host = "api.openai.com";
	r.prompt_tokens = in;
	r.completion_tokens = out;
	r.latency_ms = lat;
	r.status = 200;
	r.cached = hit;
	r.cost = cost;
	r.saved = saved;
	if (ledger_append(l, &r, &err) < 0) {
		printf("# append: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static long long count_rows(struct ledger *l, const char *where)
{
	char sql[256];
	sqlite3_stmt *st;
	long long n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM calls %s", where);
	if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int mode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) < 0 ? -1 : (int)(sb.st_mode & 07777);
}

static void test_create(void)
{
	char path[256], sub[256], wal[300];
	struct ledger l;
	struct ai_err err;
	long long v = 0;
	sqlite3_stmt *st;

	ai_err_clear(&err);
	path_in(path, sizeof(path), "a/b/usage.db");
	is_int(ledger_open(&l, path, &err), 0, "open creates the ledger and its directories: %s", err.msg);
	is_int(mode_of(path), 0600, "file mode 0600");
	path_in(sub, sizeof(sub), "a/b");
	is_int(mode_of(sub), 0700, "new directory mode 0700");
	path_in(sub, sizeof(sub), "a");
	is_int(mode_of(sub), 0700, "each new directory 0700");
	if (sqlite3_prepare_v2(l.db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	is_int(v, LEDGER_SCHEMA, "user_version set");
	add(&l, D0, "p", "m", 1, 1, 1, false, 0, NAN);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	is_int(mode_of(wal), 0600, "the WAL file is 0600 too (WAL mode on)");
	ledger_close(&l);
	ledger_close(&l);
	ok(1, "closing twice is harmless");

	is_int(ledger_open(&l, path, &err), 0, "reopen a current ledger");
	is_int(count_rows(&l, ""), 1, "the row is still there");
	ledger_close(&l);
	is_int(ledger_open_existing(&l, path, &err), 0, "open_existing on a ledger");
	ledger_close(&l);

	path_in(path, sizeof(path), "none/usage.db");
	is_int(ledger_open_existing(&l, path, &err), -1, "open_existing on a missing file fails");
	is_int(err.code, AI_EX_NOINPUT, "as no input");
	ok(strstr(err.msg, "no usage ledger") && strstr(err.msg, path), "and says so: %s", err.msg);
	path_in(sub, sizeof(sub), "none");
	is_int(mode_of(sub), -1, "and made no directory");

	is_int(ledger_open(&l, "", &err), -1, "empty path refused");
	is_int(ledger_open(&l, NULL, &err), -1, "NULL path refused");
	path_in(path, sizeof(path), "a");
	is_int(ledger_open(&l, path, &err), -1, "a directory is refused");
	ok(strstr(err.msg, path) != NULL, "naming it: %s", err.msg);
	{
		struct ledger_row r;

		memset(&r, 0, sizeof(r));
		is_int(ledger_append(&l, &r, &err), -1, "append on a closed ledger fails, no crash");
	}
}

static void test_bad_files(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	sqlite3 *db;
	FILE *f;
	int i;

	ai_err_clear(&err);
	path_in(path, sizeof(path), "text.db");
	f = fopen(path, "w");
	for (i = 0; i < 200; i++)
		fputs("this is not a database, only text in the wrong place\n", f);
	fclose(f);
	is_int(ledger_open(&l, path, &err), -1, "a text file is refused");
	is_int(err.code, AI_EX_DATAERR, "as bad data");
	ok(strstr(err.msg, "not a usage ledger") && strstr(err.msg, "not an SQLite database") &&
	   strstr(err.msg, path), "clear message: %s", err.msg);
	is_int(ledger_open_existing(&l, path, &err), -1, "ai-usage's open says the same");
	ok(strstr(err.msg, "not an SQLite database") != NULL, "message: %s", err.msg);
	f = fopen(path, "r");
	fseek(f, 0, SEEK_END);
	is_int(ftell(f), 200 * 53, "the file is left alone");
	fclose(f);

	path_in(path, sizeof(path), "other.db");
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES(1)", NULL, NULL, NULL);
	sqlite3_close(db);
	is_int(ledger_open(&l, path, &err), -1, "another program's SQLite database is refused");
	ok(strstr(err.msg, "SQLite database but not a usage ledger") != NULL, "message: %s", err.msg);

	path_in(path, sizeof(path), "newer.db");
	is_int(ledger_open(&l, path, &err), 0, "make a ledger");
	sqlite3_exec(l.db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	ledger_close(&l);
	is_int(ledger_open(&l, path, &err), -1, "a newer schema is refused");
	is_int(err.code, AI_EX_DATAERR, "as bad data");
	ok(strstr(err.msg, "schema 99") && strstr(err.msg, "upgrade ai-tools"), "message: %s", err.msg);
	is_int(ledger_open_existing(&l, path, &err), -1, "by ai-usage's open too");

	path_in(path, sizeof(path), "empty.db");
	f = fopen(path, "w");
	fclose(f);
	is_int(ledger_open_existing(&l, path, &err), 0, "an empty file becomes a ledger");
	ledger_close(&l);
}

static struct ledger_group *find(struct ledger_group *g, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(g[i].key, key) == 0)
			return &g[i];
	return NULL;
}

static void test_report(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct ledger_group *g = NULL, *a, *b, *c;
	size_t n = 0, i;
	int fails = 0;

	ai_err_clear(&err);
	set_tz("UTC");
	path_in(path, sizeof(path), "report.db");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	fails += add(&l, D0 + 1 * H, "ai-summarize", "gpt-4o-mini", 1000, 200, 100, false, 0.01, NAN);
	fails += add(&l, D0 + 2 * H, "ai-summarize", "gpt-4o-mini", 500, 100, 300, false, 0.02, NAN);
	fails += add(&l, D0 + 3 * H, "ai-summarize", "gpt-4o-mini", 500, 100, 1, true, 0, 0.02);
	fails += add(&l, D0 + DAY + H, "ai-summarize", "gpt-4o-mini", 100, 10, 200, false, 0.03, NAN);
	fails += add(&l, D0 + 1 * H, "ai-ask", "llama3", 10, 10, 50, false, NAN, NAN);
	fails += add(&l, D0 + 1 * H, "ai-agent", "qwen", 10, 10, 50, false, NAN, NAN);
	fails += add(&l, D0 + DAY + 2 * H, "ai-ask", "llama3", 10, 10, 70, true, 0, NAN);
	fails += add(&l, D0 + 2 * H, "ai-index", "text-embedding-3-small", 100, 0, 10, false, 0.001, NAN);
	fails += add(&l, D0 + 2 * H, "ai-index", "text-embedding-3-small", -1, -1, 20, false, NAN, NAN);
	fails += add(&l, D0 - DAY, "ai-summarize", "gpt-4o-mini", 1, 1, 5, false, 1, NAN);
	fails += add(&l, D0 + 5 * DAY, "ai-summarize", "gpt-4o-mini", 1, 1, 5, false, 1, NAN);
	fails += add(&l, D0 + 6 * DAY, NULL, NULL, 1, 1, 5, false, NAN, NAN);
	is_int(fails, 0, "12 rows appended");

	is_int(ledger_report(&l, "program", D0, D0 + 2 * DAY, &g, &n, &err), 0, "report by program");
	is_int(n, 4, "four programs in range");
	if (n == 4) {
		is_str(g[0].key, "ai-agent", "sorted by key: first");
		is_str(g[3].key, "ai-summarize", "sorted by key: last");
		ok(isnan(g[0].cost), "every row's cost unknown: NAN");
		is_int(g[0].unknown_cost, 1, "and counted");
	}
	a = find(g, n, "ai-summarize");
	b = find(g, n, "ai-ask");
	c = find(g, n, "ai-index");
	if (ok(a && b && c, "every program present")) {
		is_int(a->requests, 4, "requests, out-of-range rows excluded");
		is_int(a->hits, 1, "hits");
		is_dbl(a->hit_rate, 0.25, 1e-12, "hit rate");
		is_dbl(a->avg_latency_ms, 150.25, 1e-9, "average latency");
		is_int(a->p95_latency_ms, 300, "p95 of 4 rows is the largest (nearest rank 4)");
		is_int(a->prompt_tokens, 1600, "prompt tokens of the billed calls");
		is_int(a->completion_tokens, 310, "completion tokens of the billed calls");
		is_int(a->hit_prompt_tokens, 500, "prompt tokens the cache served");
		is_int(a->hit_completion_tokens, 100, "completion tokens the cache served");
		is_dbl(a->cost, 0.06, 1e-12, "cost");
		is_int(a->unknown_cost, 0, "no unknown cost");
		is_dbl(a->saved, 0.02, 1e-12, "saved by the hit");
		is_int(a->days, 2, "days: first row's date to the end of the range");
		is_int(a->first_ms, D0 + H, "first row");
		is_int(a->last_ms, D0 + DAY + H, "last row");

		is_dbl(b->cost, 0, 0, "an unpriced model's hit cost 0 (known), its miss is unknown");
		is_int(b->unknown_cost, 1, "the miss counted as unknown");
		ok(isnan(b->saved), "a hit of unknown saving: NAN saved");
		is_int(b->hits, 1, "one hit");
		is_int(b->days, 2, "same denominator in every group");

		is_dbl(c->cost, 0.001, 1e-15, "an unknown row does not make a known sum NAN");
		is_int(c->unknown_cost, 1, "but is counted");
		is_int(c->prompt_tokens, 100, "unknown tokens add nothing");
		is_dbl(c->saved, 0, 0, "no hits: nothing saved, not NAN");
		is_dbl(c->hit_rate, 0, 0, "no hits: rate 0");
	}
	ledger_groups_free(g, n);

	is_int(ledger_report_model(&l, "program", "llama3", D0, D0 + 2 * DAY, &g, &n, &err), 0,
	       "report of one model");
	ok(n == 1 && !strcmp(g[0].key, "ai-ask") && g[0].requests == 2, "one program used llama3, twice");
	ledger_groups_free(g, n);
	is_int(ledger_report_model(&l, "all", "gpt-4o", D0, D0 + 2 * DAY, &g, &n, &err), 0,
	       "report of a model with no calls");
	is_int(n, 0, "gpt-4o is not gpt-4o-mini: exact names");
	ledger_groups_free(g, n);
	is_int(ledger_report(&l, "model", D0, D0 + 2 * DAY, &g, &n, &err), 0, "report by model");
	is_int(n, 4, "four models");
	a = find(g, n, "gpt-4o-mini");
	ok(a && a->requests == 4, "gpt-4o-mini requests");
	a = find(g, n, "llama3");
	ok(a && a->requests == 2, "llama3 requests");
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "day", D0, D0 + 2 * DAY, &g, &n, &err), 0, "report by day");
	is_int(n, 2, "two days");
	if (n == 2) {
		is_str(g[0].key, "2026-01-10", "first day");
		is_int(g[0].requests, 7, "first day's requests");
		is_dbl(g[0].cost, 0.031, 1e-12, "first day's cost");
		is_int(g[0].days, 1, "a day group counts one day");
		is_str(g[1].key, "2026-01-11", "second day");
		is_int(g[1].requests, 2, "second day's requests");
		is_int(g[1].p95_latency_ms, 200, "second day's p95");
	}
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "all", D0, D0 + 2 * DAY, &g, &n, &err), 0, "report of the totals");
	is_int(n, 1, "one group");
	if (n == 1) {
		is_str(g[0].key, "total", "key total");
		is_int(g[0].requests, 9, "every row in range");
		is_dbl(g[0].cost, 0.061, 1e-12, "total known cost");
		is_int(g[0].unknown_cost, 3, "total unknown");
		is_dbl(g[0].saved, 0.02, 1e-12, "total saved (unknown savings skipped)");
		is_int(g[0].days, 2, "two days");
	}
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "program", D0 + DAY, D0 + 2 * DAY, &g, &n, &err), 0, "since a day later");
	is_int(n, 2, "only programs with rows then");
	if (n >= 1)
		is_int(g[0].days, 1, "one day in that range");
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "all", D0, D0 + H, &g, &n, &err), 0, "until is exclusive");
	is_int(n, 0, "rows at exactly until are left out");
	ok(g == NULL, "no groups: NULL");
	is_int(ledger_report(&l, "all", D0 + H, D0 + H + 1, &g, &n, &err), 0, "since is inclusive");
	ok(n == 1 && g[0].requests == 3, "rows at exactly since are in");
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "program", 0, INT64_MAX, &g, &n, &err), 0, "unbounded");
	a = find(g, n, "ai-summarize");
	ok(a && a->requests == 6, "every row of the program");
	a = find(g, n, "-");
	ok(a && a->requests == 1, "a NULL program shows as '-'");
	ledger_groups_free(g, n);

	is_int(ledger_report(&l, "host", 0, INT64_MAX, &g, &n, &err), -1, "unknown grouping refused");
	is_int(err.code, AI_EX_USAGE, "as a usage error");
	ok(strstr(err.msg, "'host'") != NULL, "message: %s", err.msg);
	is_int(ledger_report(&l, NULL, 0, INT64_MAX, &g, &n, &err), -1, "NULL grouping refused");

	/* p95 by nearest rank on larger groups, inserted out of order */
	fails = 0;
	for (i = 0; i < 100; i++)
		fails += add(&l, D0 + 10 * DAY, "p100", "m", 1, 1, (long)((i * 37) % 100 + 1), false, 0, NAN);
	for (i = 0; i < 20; i++)
		fails += add(&l, D0 + 10 * DAY, "p20", "m", 1, 1, (long)((i * 7) % 20 + 1), false, 0, NAN);
	fails += add(&l, D0 + 10 * DAY, "p1", "m", 1, 1, 42, false, 0, NAN);
	is_int(fails, 0, "latency rows appended");
	is_int(ledger_report(&l, "program", D0 + 10 * DAY, D0 + 11 * DAY, &g, &n, &err), 0, "report");
	a = find(g, n, "p100");
	ok(a && a->p95_latency_ms == 95, "p95 of 1..100 is 95");
	ok(a && fabs(a->avg_latency_ms - 50.5) < 1e-9, "average of 1..100 is 50.5");
	a = find(g, n, "p20");
	ok(a && a->p95_latency_ms == 19, "p95 of 1..20 is 19 (rank ceil(19.0))");
	a = find(g, n, "p1");
	ok(a && a->p95_latency_ms == 42, "p95 of one row is that row");
	ledger_groups_free(g, n);

	/* the day boundary is local time */
	add(&l, D0 + 20 * DAY + 20 * H, "tz", "m", 1, 1, 1, false, 0, NAN);
	set_tz("JST-9");
	is_int(ledger_report(&l, "day", D0 + 20 * DAY, D0 + 21 * DAY, &g, &n, &err), 0, "by day in JST");
	ok(n == 1 && strcmp(g[0].key, "2026-01-31") == 0, "20:00 UTC is the next day in JST");
	ledger_groups_free(g, n);
	set_tz("UTC");
	is_int(ledger_report(&l, "day", D0 + 20 * DAY, D0 + 21 * DAY, &g, &n, &err), 0, "by day in UTC");
	ok(n == 1 && strcmp(g[0].key, "2026-01-30") == 0, "and the same day in UTC");
	ledger_groups_free(g, n);
	ledger_close(&l);
}

static void test_spent_and_budget(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct ledger_row r;
	int64_t now = wall_ms();
	double usd = -1;
	sqlite3_stmt *st;
	int found = 0;

	ai_err_clear(&err);
	set_tz("UTC");
	path_in(path, sizeof(path), "budget.db");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	is_int(ledger_spent_today(&l, &usd, &err), 0, "spent today on an empty ledger");
	is_dbl(usd, 0, 0, "is 0");
	add(&l, now, "p", "gpt-4o", 1, 1, 1, false, 0.25, NAN);
	add(&l, now, "p", "gpt-4o", 1, 1, 1, false, 0.25, NAN);
	add(&l, now, "p", "llama", 1, 1, 1, false, NAN, NAN);
	add(&l, now, "p", "gpt-4o", 1, 1, 1, true, 0, 5.0);
	add(&l, now - 2 * DAY, "p", "gpt-4o", 1, 1, 1, false, 100, NAN);
	add(&l, now + 2 * DAY, "p", "gpt-4o", 1, 1, 1, false, 100, NAN);
	is_int(ledger_spent_today(&l, &usd, &err), 0, "spent today");
	is_dbl(usd, 0.5, 1e-12, "today's known costs only; other days, hits' savings and unknowns excluded");

	is_int(ledger_check_budget(&l, 1.0, &err), 0, "under the budget: go");
	is_int(ledger_check_budget(&l, 0.5, &err), -1, "spend reached the budget: stop");
	is_int(err.code, AI_EX_TEMPFAIL, "exit 75");
	ok(strstr(err.msg, "$0.50 spent today") && strstr(err.msg, "AI_BUDGET_DAILY is $0.50"),
	   "message names the spend and the limit: %s", err.msg);
	is_int(ledger_check_budget(&l, 0.4, &err), -1, "over the budget: stop");
	is_int(ledger_check_budget(&l, 0, &err), -1, "a zero budget allows nothing");
	is_int(ledger_check_budget(&l, -1, &err), -1, "a negative budget is refused");
	is_int(err.code, AI_EX_CONFIG, "as configuration");
	is_int(ledger_check_budget(&l, NAN, &err), -1, "a NAN budget is refused");
	/* A writer's queue counts too: 0.5 written and 0.25 waiting reach 0.75. */
	is_int(ledger_check_budget_with(&l, 1.0, 0.25, &err), 0, "written and queued under the budget: go");
	is_int(ledger_check_budget_with(&l, 0.75, 0.25, &err), -1, "written and queued reach the budget: stop");
	ok(strstr(err.msg, "$0.75 spent today") != NULL, "the spend named counts the queue: %s", err.msg);
	is_int(ledger_check_budget_with(&l, 1.0, NAN, &err), 0, "a queue of unknown cost adds nothing");
	ok(ledger_today_ms() <= now && now - ledger_today_ms() < 25 * H, "today began at the last local midnight");

	/* what the row keeps, and what it never keeps */
	memset(&r, 0, sizeof(r));
	r.ts_ms = now;
	r.program = "p";
	r.host = "user:sk-SECRET@api.example.com";
	r.prompt_tokens = r.completion_tokens = -1;
	r.cost = NAN;
	r.saved = 1.0; /* on a miss: ignored */
	is_int(ledger_append(&l, &r, &err), 0, "append with credentials in the host");
	r.prompt = "the prompt text";
	r.host = "api.example.com";
	is_int(ledger_append(&l, &r, &err), 0, "append with a logged prompt");
	if (sqlite3_prepare_v2(l.db, "SELECT host, prompt, saved, prompt_tokens FROM calls"
			       " ORDER BY id DESC LIMIT 2", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *host = (const char *)sqlite3_column_text(st, 0);

			found++;
			is_str(host, "api.example.com", "host stored without credentials");
			if (found == 1)
				is_str((const char *)sqlite3_column_text(st, 1), "the prompt text",
				       "prompt stored when given");
			else
				ok(sqlite3_column_type(st, 1) == SQLITE_NULL, "no prompt unless given");
			ok(sqlite3_column_type(st, 2) == SQLITE_NULL, "saved only on a hit");
			ok(sqlite3_column_type(st, 3) == SQLITE_NULL, "unknown tokens stored as NULL");
		}
		sqlite3_finalize(st);
	}
	is_int(found, 2, "both rows read back");
	is_int(count_rows(&l, "WHERE host LIKE '%SECRET%' OR prompt LIKE '%SECRET%'"), 0,
	       "the secret is nowhere in the ledger");
	ledger_close(&l);
}

static void test_write_failures(void)
{
	char path[256], big[20000];
	struct ledger l;
	struct ledger_row r;
	struct ai_err err;
	sqlite3 *holder;
	double t;
	long long before;

	ai_err_clear(&err);
	path_in(path, sizeof(path), "locked.db");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	ledger_set_busy_timeout(&l, 200);
	add(&l, D0, "p", "m", 1, 1, 1, false, 0, NAN);
	sqlite3_open(path, &holder);
	is_int(sqlite3_exec(holder, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
	       "another connection holds the write lock");
	memset(&r, 0, sizeof(r));
	r.ts_ms = D0;
	r.program = "p";
	r.cost = NAN;
	t = now_s();
	is_int(ledger_append(&l, &r, &err), -1, "append fails once the timeout has passed");
	t = now_s() - t;
	ok(t >= 0.19 && t < 2.0, "after waiting the timeout (%.3f s)", t);
	is_int(err.code, AI_EX_TEMPFAIL, "as a temporary failure");
	ok(strstr(err.msg, "locked by another process") && strstr(err.msg, path),
	   "message: %s", err.msg);
	sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL);
	is_int(ledger_append(&l, &r, &err), 0, "append works again when the lock is gone");
	is_int(count_rows(&l, ""), 2, "the failed row left nothing behind");

	/* disk full: cap the file at its current size */
	sqlite3_exec(l.db, "PRAGMA max_page_count = 1", NULL, NULL, NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	r.prompt = big;
	before = count_rows(&l, "");
	is_int(ledger_append(&l, &r, &err), -1, "append fails on a full disk");
	is_int(err.code, AI_EX_IOERR, "as an I/O error");
	ok(strstr(err.msg, "disk full") && strstr(err.msg, path), "message: %s", err.msg);
	is_int(count_rows(&l, ""), before, "nothing half-written");
	r.prompt = NULL;
	sqlite3_exec(l.db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL);
	is_int(ledger_append(&l, &r, &err), 0, "and works once there is room");
	sqlite3_close(holder);
	ledger_close(&l);

	if (geteuid() != 0) {
		chmod(path, 0400);
		if (ledger_open(&l, path, &err) == 0) {
			is_int(ledger_append(&l, &r, &err), -1, "a read-only ledger fails to append");
			ok(strstr(err.msg, "permissions") != NULL, "message: %s", err.msg);
			ledger_close(&l);
		} else {
			ok(strstr(err.msg, path) != NULL, "a read-only ledger fails to open: %s", err.msg);
		}
		chmod(path, 0600);
	} else {
		ok(1, "# SKIP read-only file: running as root");
	}
}

/*
 * nproc processes each append per_proc rows; reopen=true opens, appends
 * and closes for every row, as short-lived programs do.  Returns the
 * number of children that failed; *secs is the wall time.
 */
static int run_procs(const char *path, int nproc, int per_proc, bool reopen, double *secs)
{
	pid_t pids[16];
	int i, failed = 0, status;
	double t;
	/* Recent rows: rows older than ledger_keep would be pruned as they go. */
	int64_t t0 = wall_ms() - 3600 * 1000;

	fflush(stdout); /* or the children print it again */
	t = now_s();
	for (i = 0; i < nproc; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct ledger l;
			struct ai_err err;
			int k, bad = 0;

			if (!reopen && ledger_open(&l, path, &err) < 0) {
				fprintf(stderr, "child %d: %s\n", i, err.msg);
				_exit(2);
			}
			for (k = 0; k < per_proc; k++) {
				if (reopen && ledger_open(&l, path, &err) < 0) {
					fprintf(stderr, "child %d: %s\n", i, err.msg);
					bad++;
					continue;
				}
				if (add(&l, t0 + k, "proc", "gpt-4o-mini", 100, 10, i, false, 0.001, NAN) < 0)
					bad++;
				if (reopen)
					ledger_close(&l);
			}
			if (!reopen)
				ledger_close(&l);
			fflush(stdout);
			_exit(bad ? 1 : 0);
		}
		if (pids[i] < 0)
			failed++;
	}
	for (i = 0; i < nproc; i++) {
		if (pids[i] > 0 && (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0))
			failed++;
	}
	*secs = now_s() - t;
	return failed;
}

static void test_concurrency(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	double secs;

	ai_err_clear(&err);
	/* A fresh path: the eight also race to create the file and schema. */
	path_in(path, sizeof(path), "conc/usage.db");
	is_int(run_procs(path, 8, 200, false, &secs), 0, "8 processes x 200 appends, none failed");
	if (ledger_open(&l, path, &err) == 0) {
		is_int(count_rows(&l, ""), 1600, "exactly 1,600 rows");
		is_int(count_rows(&l, "WHERE latency_ms = 7"), 200, "200 from the last process");
		ledger_close(&l);
	}
	is_int(run_procs(path, 8, 25, true, &secs), 0,
	       "8 processes x 25 open-append-close cycles, none failed");
	if (ledger_open(&l, path, &err) == 0) {
		is_int(count_rows(&l, ""), 1800, "exactly 200 more rows");
		ledger_close(&l);
	}
}

/*
 * One-shot programs (open, append, close) leave the WAL in place while
 * it is small; it must still be checkpointed and stay small, or every
 * open would replay more of it.
 */
static void test_wal_bounded(void)
{
	char path[256], wal[300];
	struct ledger l;
	struct ai_err err;
	struct stat sb;
	int i, fails = 0;
	long long max = 0;

	path_in(path, sizeof(path), "walsize.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	for (i = 0; i < 600; i++) {
		if (ledger_open(&l, path, &err) < 0 ||
		    add(&l, D0 + i, "p", "m", 1, 1, 1, false, 0, NAN) < 0)
			fails++;
		ledger_close(&l);
		if (stat(wal, &sb) == 0 && sb.st_size > max)
			max = sb.st_size;
	}
	is_int(fails, 0, "600 open-append-close cycles");
	ok(max > 0, "the WAL is kept between runs (%lld bytes at most)", max);
	ok(max < 1024 * 1024, "and checkpointed before it grows past 1 MB");
	if (ledger_open(&l, path, &err) == 0) {
		is_int(count_rows(&l, ""), 600, "every row there");
		ledger_close(&l);
	}
}

/* Figures, not tests: printed as TAP comments. */
static void measure(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	double t, secs;
	int i, fails = 0;

	path_in(path, sizeof(path), "speed1.db");
	if (ledger_open(&l, path, &err) < 0)
		return;
	t = now_s();
	for (i = 0; i < 2000; i++)
		fails += add(&l, D0 + i, "speed", "gpt-4o-mini", 100, 10, i, false, 0.001, NAN);
	t = now_s() - t;
	ledger_close(&l);
	is_int(fails, 0, "2,000 appends in one process");
	printf("# one process: %.4f ms per append (2,000 appends in %.3f s)\n", t * 1000 / 2000, t);

	path_in(path, sizeof(path), "speed4.db");
	if (ledger_open(&l, path, &err) < 0)
		return;
	ledger_close(&l);
	is_int(run_procs(path, 4, 500, false, &secs), 0, "4 processes x 500 appends at once");
	printf("# four processes at once: %.4f ms of wall time per append (2,000 in %.3f s)\n",
	       secs * 1000 / 2000, secs);

	path_in(path, sizeof(path), "speedo.db");
	if (ledger_open(&l, path, &err) < 0)
		return;
	ledger_close(&l);
	t = now_s();
	for (i = 0; i < 500; i++) {
		if (ledger_open(&l, path, &err) < 0 ||
		    add(&l, D0 + i, "speed", "gpt-4o-mini", 100, 10, i, false, 0.001, NAN) < 0)
			fails++;
		ledger_close(&l);
	}
	t = now_s() - t;
	is_int(fails, 0, "500 open-append-close cycles");
	printf("# open + append + close (a program's whole use): %.4f ms each\n", t * 1000 / 500);
}

static void test_parse_time(void)
{
	int64_t now = D0 + 5 * H, t = 0;
	struct ai_err err;

	ai_err_clear(&err);
	set_tz("UTC");
	ok(ledger_parse_time("today", false, now, &t, &err) == 0 && t == D0, "today: its midnight");
	ok(ledger_parse_time("today", true, now, &t, &err) == 0 && t == D0 + DAY, "today as end: next midnight");
	ok(ledger_parse_time("yesterday", false, now, &t, &err) == 0 && t == D0 - DAY, "yesterday: its midnight");
	ok(ledger_parse_time("yesterday", true, now, &t, &err) == 0 && t == D0, "yesterday as end: today's midnight");
	is_int(ledger_parse_time("Yesterday", false, now, &t, &err), -1, "Yesterday: the words are lower case");
	ok(ledger_parse_time("1d", false, now, &t, &err) == 0 && t == D0, "1d: today");
	ok(ledger_parse_time("7d", false, now, &t, &err) == 0 && t == D0 - 6 * DAY, "7d: today and 6 before");
	ok(ledger_parse_time("2026-01-31", false, now, &t, &err) == 0 && t == D0 + 21 * DAY, "a date");
	ok(ledger_parse_time("2026-01-31", true, now, &t, &err) == 0 && t == D0 + 22 * DAY,
	   "a date as end includes that day");
	ok(ledger_parse_time("2024-02-29", false, now, &t, &err) == 0, "a leap day");
	ok(ledger_parse_time("2026-12-31", true, now, &t, &err) == 0, "the last day of a year as end");
	set_tz("JST-9");
	ok(ledger_parse_time("2026-01-10", false, now, &t, &err) == 0 && t == D0 - 9 * H,
	   "dates are local midnights");
	set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
	{
		int64_t a = 0, b = 0;

		ledger_parse_time("2026-03-29", false, now, &a, &err);
		ledger_parse_time("2026-03-29", true, now, &b, &err);
		is_int(b - a, 23 * H, "a spring-forward day is 23 hours long");
	}
	set_tz("UTC");

	is_int(ledger_parse_time("2025-02-29", false, now, &t, &err), -1, "no 29 February in 2025");
	is_int(err.code, AI_EX_USAGE, "as a usage error");
	ok(strstr(err.msg, "'2025-02-29'") && strstr(err.msg, "YYYY-MM-DD"), "message: %s", err.msg);
	is_int(ledger_parse_time("2026-04-31", false, now, &t, &err), -1, "no 31 April");
	is_int(ledger_parse_time("2026-13-01", false, now, &t, &err), -1, "no month 13");
	is_int(ledger_parse_time("2026-00-10", false, now, &t, &err), -1, "no month 0");
	is_int(ledger_parse_time("2026-1-1", false, now, &t, &err), -1, "two-digit month and day");
	is_int(ledger_parse_time("2026-01-10x", false, now, &t, &err), -1, "trailing junk");
	is_int(ledger_parse_time("1969-12-31", false, now, &t, &err), -1, "before the epoch");
	is_int(ledger_parse_time("0d", false, now, &t, &err), -1, "0d");
	is_int(ledger_parse_time("36501d", false, now, &t, &err), -1, "too many days");
	is_int(ledger_parse_time("99999999d", false, now, &t, &err), -1, "far too many days");
	is_int(ledger_parse_time("d", false, now, &t, &err), -1, "d alone");
	is_int(ledger_parse_time("7", false, now, &t, &err), -1, "a bare number");
	is_int(ledger_parse_time("7dd", false, now, &t, &err), -1, "7dd");
	is_int(ledger_parse_time("-7d", false, now, &t, &err), -1, "-7d");
	is_int(ledger_parse_time("", false, now, &t, &err), -1, "empty");
	is_int(ledger_parse_time(NULL, false, now, &t, &err), -1, "NULL");
}

static void test_env(void)
{
	struct buf b = BUF_INIT;
	struct ai_err err;

	ai_err_clear(&err);
	setenv("XDG_DATA_HOME", "/x/data", 1);
	setenv("HOME", "/home/u", 1);
	ledger_default_path(&b, &err);
	is_str(b.data, "/x/data/ai/usage.db", "XDG_DATA_HOME first");
	buf_reset(&b);
	setenv("XDG_DATA_HOME", "rel", 1);
	ledger_default_path(&b, &err);
	is_str(b.data, "/home/u/.local/share/ai/usage.db", "a relative XDG_DATA_HOME is ignored");
	buf_reset(&b);
	unsetenv("XDG_DATA_HOME");
	ledger_default_path(&b, &err);
	is_str(b.data, "/home/u/.local/share/ai/usage.db", "HOME otherwise");
	buf_reset(&b);
	unsetenv("HOME");
	is_int(ledger_default_path(&b, &err), -1, "neither: an error");
	ok(strstr(err.msg, "AI_LEDGER=0") != NULL, "saying what to do: %s", err.msg);
	buf_release(&b);

	unsetenv("AI_LEDGER");
	ok(ledger_enabled(), "on by default");
	setenv("AI_LEDGER", "0", 1);
	ok(!ledger_enabled(), "AI_LEDGER=0 turns it off");
	setenv("AI_LEDGER", "off", 1);
	ok(!ledger_enabled(), "AI_LEDGER=off too");
	setenv("AI_LEDGER", "1", 1);
	ok(ledger_enabled(), "AI_LEDGER=1 on");
	unsetenv("AI_LEDGER");
}


/* ---- rollups ---- */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A random call somewhere in the 40 days before end_ms; latencies roughly log-normal. */
static int span_days = 40;
static int64_t seq_step, seq_at;

static void random_row(struct ledger_row *r, int64_t end_ms)
{
	static const char *progs[] = { "ai-summarize", "ai-batch", "ai-ask", NULL };
	static const char *models[] = { "gpt-4o-mini", "gpt-4o", "local-llama" };
	static const char *hosts[] = { "api.openai.com", "127.0.0.1" };
	uint64_t x = rnd();

	memset(r, 0, sizeof(*r));
	/* In time order with random gaps, as calls come (when seq_step is set). */
	if (seq_step)
		r->ts_ms = (seq_at += (int64_t)(x % (uint64_t)(2 * seq_step)));
	else
		r->ts_ms = end_ms - (int64_t)(x % ((uint64_t)span_days * 86400000));
	r->program = progs[rnd() % 4];
	r->model = models[rnd() % 3];
	r->host = hosts[rnd() % 2];
	r->prompt_tokens = (long)(rnd() % 5000) - (rnd() % 20 == 0 ? 5000 : 0); /* some unknown */
	r->completion_tokens = (long)(rnd() % 800);
	r->cached_tokens = rnd() % 4 ? (long)(rnd() % 3000) : -1;
	r->reasoning_tokens = rnd() % 3 ? (long)(rnd() % 500) : -1;
	r->latency_ms = (long)(50 + (rnd() % 400) * (1 + rnd() % 40));
	r->status = rnd() % 10 ? 200 : 429;
	r->cached = rnd() % 5 == 0;
	r->batch = rnd() % 7 == 0;
	r->cost = rnd() % 13 == 0 ? NAN : (double)(rnd() % 100000) / 1e7;
	r->saved = r->cached ? (rnd() % 3 ? (double)(rnd() % 100000) / 1e7 : NAN) : NAN;
}

static int writer(const char *path, int nrows, uint64_t seed, int64_t end_ms)
{
	struct ledger l;
	struct ai_err err;
	struct ledger_row rows[50];

	rng_state ^= seed * 0x9E3779B97F4A7C15ULL;
	if (ledger_open(&l, path, &err) < 0) {
		fprintf(stderr, "writer: open: %s\n", err.msg);
		return 1;
	}
	ledger_set_keep(&l, 0);
	/* Four writers on two loaded cores: what is tested is the sums, not the wait. */
	ledger_set_busy_timeout(&l, 60000);
	seq_step = (int64_t)span_days * 86400000 / nrows;
	seq_at = end_ms - (int64_t)span_days * 86400000;
	for (int done = 0; done < nrows; ) {
		int k = nrows - done < 50 ? nrows - done : 50;

		/* Batches of 50 and single rows, as ai-batch and one-shot programs write. */
		if (rnd() % 8 == 0)
			k = 1;
		for (int j = 0; j < k; j++)
			random_row(&rows[j], end_ms);
		if (ledger_append_many(&l, rows, (size_t)k, &err) < 0) {
			fprintf(stderr, "writer: %s\n", err.msg);
			ledger_close(&l);
			return 1;
		}
		done += k;
	}
	ledger_close(&l);
	return 0;
}

/* Exact sums of the raw rows, as the report defines them, for comparison. */
struct raw_sums {
	long long n, hits, tin, tout, hin, hout, unknown, tcached, treason;
	double cost, saved;
	long long p95;
};

static void raw_sums(sqlite3 *db, const char *where, struct raw_sums *r)
{
	char sql[1024];
	sqlite3_stmt *st;

	memset(r, 0, sizeof(*r));
	snprintf(sql, sizeof(sql),
		 "SELECT count(*), total(cached), total(CASE WHEN NOT cached THEN prompt_tokens END),"
		 " total(CASE WHEN NOT cached THEN completion_tokens END),"
		 " total(CASE WHEN cached THEN prompt_tokens END), total(CASE WHEN cached THEN completion_tokens END),"
		 " total(cost), total(CASE WHEN cached THEN saved END),"
		 " total(cost IS NULL AND host != '127.0.0.1'),"
		 " total(CASE WHEN NOT cached THEN cached_tokens END),"
		 " total(CASE WHEN NOT cached THEN reasoning_tokens END) FROM calls %s", where);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		r->n = sqlite3_column_int64(st, 0);
		r->hits = (long long)sqlite3_column_double(st, 1);
		r->tin = (long long)sqlite3_column_double(st, 2);
		r->tout = (long long)sqlite3_column_double(st, 3);
		r->hin = (long long)sqlite3_column_double(st, 4);
		r->hout = (long long)sqlite3_column_double(st, 5);
		r->cost = sqlite3_column_double(st, 6);
		r->saved = sqlite3_column_double(st, 7);
		r->unknown = (long long)sqlite3_column_double(st, 8);
		r->tcached = (long long)sqlite3_column_double(st, 9);
		r->treason = (long long)sqlite3_column_double(st, 10);
	}
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "SELECT latency_ms FROM calls %s ORDER BY latency_ms LIMIT 1 OFFSET ?1", where);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (r->n * 95 + 99) / 100 - 1);
		if (sqlite3_step(st) == SQLITE_ROW)
			r->p95 = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
}

static void check_total(struct ledger *l, const struct raw_sums *r, const char *what)
{
	struct ledger_group *g = NULL;
	size_t n = 0;
	struct ai_err err;

	if (!ok(ledger_report(l, "all", 0, INT64_MAX, &g, &n, &err) == 0 && n == 1, "%s: report", what))
		return;
	is_int(g->requests, r->n, "%s: requests", what);
	is_int(g->hits, r->hits, "%s: hits", what);
	is_int(g->prompt_tokens, r->tin, "%s: billed tokens in", what);
	is_int(g->completion_tokens, r->tout, "%s: billed tokens out", what);
	is_int(g->hit_prompt_tokens, r->hin, "%s: hit tokens in", what);
	is_int(g->hit_completion_tokens, r->hout, "%s: hit tokens out", what);
	is_int(g->unknown_cost, r->unknown, "%s: calls of unknown cost", what);
	/* A ledger of rows that never knew them (schema 1) reports -1: unknown, not 0. */
	is_int(g->cached_tokens, r->tcached ? r->tcached : g->cached_tokens < 0 ? -1 : 0,
	       "%s: cached tokens in", what);
	is_int(g->reasoning_tokens, r->treason ? r->treason : g->reasoning_tokens < 0 ? -1 : 0,
	       "%s: reasoning tokens", what);
	is_dbl(g->cost, r->cost, 0.005, "%s: cost to the cent", what);
	is_dbl(g->saved, r->saved, 0.005, "%s: saved to the cent", what);
	ok(fabs((double)g->p95_latency_ms - (double)r->p95) <= 0.01 * (double)r->p95,
	   "%s: p95 %ld within 1%% of the exact %lld", what, g->p95_latency_ms, r->p95);
	ledger_groups_free(g, n);
}

static void test_rollups(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct raw_sums r;
	int64_t end = wall_ms();
	pid_t pids[4];
	int i, status, failed = 0;
	const int per = 25000;

	path_in(path, sizeof(path), "rollups.db");
	fflush(stdout);
	/* 100,000 calls over 40 days from four writers at once. */
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(writer(path, per, (uint64_t)i + 1, end));
	}
	for (i = 0; i < 4; i++)
		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			failed++;
	is_int(failed, 0, "four writers of 25,000 calls, batches and single rows");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	is_int(count_rows(&l, ""), 4 * per, "every raw row there");
	raw_sums(l.db, "", &r);
	check_total(&l, &r, "rollups = raw rows");

	/* Pruning under a writer: the rollups do not move. */
	{
		struct ledger_group *before = NULL, *after = NULL;
		size_t nb = 0, na = 0;
		int64_t cut = end - 30 * 86400000LL;
		long gone = 0, total = 0;
		pid_t w;

		ledger_report(&l, "day", 0, cut - 86400000LL, &before, &nb, &err);
		fflush(stdout);
		w = fork();
		if (w == 0) {
			span_days = 1;	/* today's calls, while last month's rows go */
			_exit(writer(path, 2000, 99, end));
		}
		ledger_set_keep(&l, 30);
		do {
			if (ledger_prune(&l, end, 2000, &gone, &err) < 0) {
				ok(0, "prune: %s", err.msg);
				break;
			}
			total += gone;
		} while (gone == 2000);
		waitpid(w, &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a writer ran beside the pruning");
		ok(total > 0, "pruned %ld rows older than 30 days in small transactions", total);
		{
			char where[64];

			snprintf(where, sizeof(where), "WHERE ts_ms < %" PRId64, cut);
			is_int(count_rows(&l, where), 0, "no raw row older than ledger_keep is left");
		}
		ledger_report(&l, "day", 0, cut - 86400000LL, &after, &na, &err);
		is_int(na, nb, "the same days in the rollups");
		for (size_t k = 0; k < na && k < nb; k++)
			if (after[k].requests != before[k].requests || after[k].cost != before[k].cost ||
			    after[k].p95_latency_ms != before[k].p95_latency_ms) {
				ok(0, "day %s changed", after[k].key);
				failed++;
			}
		is_int(failed, 0, "no pruned day's rollup changed");
		ledger_groups_free(before, nb);
		ledger_groups_free(after, na);
	}
	ledger_close(&l);
}

/* A schema-1 ledger (as the previous ai-tools wrote it) of n random rows. */
static int make_schema1(const char *path, int n)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	struct ledger_row r;
	int rc;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db,
			  "PRAGMA journal_mode=WAL; CREATE TABLE calls (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
			  " program TEXT, model TEXT, host TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,"
			  " latency_ms INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 0,"
			  " cached INTEGER NOT NULL DEFAULT 0, batch INTEGER NOT NULL DEFAULT 0, cost REAL,"
			  " saved REAL, prompt TEXT); CREATE INDEX calls_ts ON calls(ts_ms, cost);"
			  " PRAGMA user_version = 1; BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO calls(ts_ms, program, model, host, prompt_tokens,"
			   " completion_tokens, latency_ms, status, cached, batch, cost, saved)"
			   " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", -1, &st, NULL);
	for (int i = 0; rc == SQLITE_OK && i < n; i++) {
		random_row(&r, wall_ms());
		sqlite3_bind_int64(st, 1, r.ts_ms);
		sqlite3_bind_text(st, 2, r.program, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r.model, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r.host, -1, SQLITE_STATIC);
		if (r.prompt_tokens >= 0)
			sqlite3_bind_int64(st, 5, r.prompt_tokens);
		else
			sqlite3_bind_null(st, 5);
		sqlite3_bind_int64(st, 6, r.completion_tokens);
		sqlite3_bind_int64(st, 7, r.latency_ms);
		sqlite3_bind_int64(st, 8, r.status);
		sqlite3_bind_int(st, 9, r.cached);
		sqlite3_bind_int(st, 10, r.batch);
		if (isnan(r.cost))
			sqlite3_bind_null(st, 11);
		else
			sqlite3_bind_double(st, 11, r.cost);
		if (isnan(r.saved))
			sqlite3_bind_null(st, 12);
		else
			sqlite3_bind_double(st, 12, r.saved);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int progress_calls;

static void die_after_first(void *ud, int64_t done, int64_t total)
{
	(void)ud;
	(void)total;
	if (done > 0)
		raise(SIGKILL);	/* as a Ctrl-C or a crash would, mid-fold */
}

static void count_progress(void *ud, int64_t done, int64_t total)
{
	(void)ud;
	(void)done;
	(void)total;
	progress_calls++;
}

static void test_migration(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct raw_sums r;
	int status;
	pid_t pid;
	const int n = 2 * LEDGER_FOLD_CHUNK + 1234;
	long long folded = -1;

	path_in(path, sizeof(path), "schema1.db");
	if (!ok(make_schema1(path, n) == 0, "a schema-1 ledger of %d calls", n))
		return;
	/* The first open upgrades at once (no fold yet); the fold is killed after one chunk. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (ledger_open(&l, path, &err) < 0)
			_exit(2);
		ledger_fold(&l, die_after_first, NULL, &err);
		_exit(3);
	}
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the fold was killed after its first chunk");
	if (!ok(ledger_open(&l, path, &err) == 0, "reopen: %s", err.msg))
		return;
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(l.db, "SELECT v FROM ledger_meta WHERE k = 'folded'", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			folded = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	is_int(folded, LEDGER_FOLD_CHUNK, "one chunk folded and kept, the rest not");
	/* A writer meanwhile: its row waits behind the unfolded ones and is counted once. */
	ledger_set_keep(&l, 0);
	is_int(add(&l, wall_ms(), "ai-late", "gpt-4o", 1, 1, 10, false, 0.5, NAN), 0, "append mid-migration");
	ledger_close(&l);
	ledger_open(&l, path, &err);
	is_int(ledger_fold(&l, count_progress, NULL, &err), 0, "the fold resumes and finishes");
	ok(progress_calls >= 1, "with progress (%d reports)", progress_calls);
	is_int(count_rows(&l, ""), n + 1, "no raw row lost");
	raw_sums(l.db, "", &r);
	check_total(&l, &r, "after an interrupted migration");
	{
		double spent = -1, want = 0;
		sqlite3_stmt *st;
		struct ai_err e;

		ledger_spent_today(&l, &spent, &e);
		if (sqlite3_prepare_v2(l.db, "SELECT total(cost) FROM calls WHERE ts_ms >= ?1", -1, &st, NULL) == SQLITE_OK) {
			int64_t m;

			ledger_parse_time("today", false, wall_ms(), &m, &e);
			sqlite3_bind_int64(st, 1, m);
			if (sqlite3_step(st) == SQLITE_ROW)
				want = sqlite3_column_double(st, 0);
		}
		sqlite3_finalize(st);
		is_dbl(spent, want, 1e-9, "today's spend from the rollups");
	}
	ledger_close(&l);
}


static long long query_ll(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Compares the report by day with the raw rows of each local day: requests, tokens, cost. */
/* Each group of a report by "day", "day,program" or "day,model" against its raw rows. */
static int check_days_by(struct ledger *l, const char *by, const char *what)
{
	struct ledger_group *g = NULL;
	struct ai_err err;
	size_t n = 0;
	int bad = 0;

	if (ledger_report(l, by, 0, INT64_MAX, &g, &n, &err) < 0) {
		ok(0, "%s: report by %s: %s", what, by, err.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char where[256], date[16];
		const char *tab = strchr(g[i].key, '\t'), *col = strchr(by, ',');
		struct raw_sums r;

		snprintf(date, sizeof(date), "%.*s", tab ? (int)(tab - g[i].key) : (int)strlen(g[i].key), g[i].key);
		if (tab && col)	/* "-" is the group of rows without one */
			snprintf(where, sizeof(where), "WHERE date(ts_ms / 1000, 'unixepoch', 'localtime') = '%s'"
				 " AND ifnull(%s, '') = '%s'", date, col + 1, strcmp(tab + 1, "-") ? tab + 1 : "");
		else
			snprintf(where, sizeof(where), "WHERE date(ts_ms / 1000, 'unixepoch', 'localtime') = '%s'", date);
		raw_sums(l->db, where, &r);
		if (g[i].requests != r.n || g[i].prompt_tokens != r.tin || fabs(g[i].cost - r.cost) > 0.005 ||
		    (r.tcached && g[i].cached_tokens != r.tcached)) {
			printf("# %s: %s %s: %ld requests, %" PRId64 " tokens, $%.4f; raw %lld, %lld, $%.4f\n",
			       what, by, g[i].key, g[i].requests, g[i].prompt_tokens, g[i].cost, r.n, r.tin, r.cost);
			bad++;
		}
	}
	is_int(bad, 0, "%s: every group of %zu by %s equals its raw rows", what, n, by);
	ledger_groups_free(g, n);
	return bad;
}

static int check_days(struct ledger *l, const char *what)
{
	return check_days_by(l, "day", what);
}

/*
 * The day rollups: a report compacts the ended days; rows that arrive
 * later for those days (appended singly, in a batch, or written raw by
 * an older ai-tools and folded) reach both levels; grouped by day in a
 * zone whose days are not UTC's, the hourly rollups answer.
 */
static void test_day_rollups(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct raw_sums r;
	struct ledger_row rows[50];
	int64_t end = wall_ms();
	long long today = end / 3600000 / 24, done;
	int bad = 0;

	set_tz("UTC");
	path_in(path, sizeof(path), "days.db");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	ledger_set_keep(&l, 0);
	span_days = 40;
	seq_step = 0;
	for (int i = 0; i < 100 && !bad; i++) {
		size_t k = i % 5 ? 1 : 50;

		for (size_t j = 0; j < k; j++)
			random_row(&rows[j], end);
		bad += ledger_append_many(&l, rows, k, &err) < 0;
	}
	is_int(bad, 0, "calls over 40 days, singly and in batches");
	raw_sums(l.db, "", &r);
	check_total(&l, &r, "first report");
	done = query_ll(l.db, "SELECT v FROM ledger_meta WHERE k = 'days_done'");
	is_int(done, today, "the report compacted every ended UTC day");
	ok(query_ll(l.db, "SELECT count(*) FROM rollup_day") > 0, "into day rollups");
	is_int(query_ll(l.db, "SELECT count(*) FROM rollup_day WHERE day >= (SELECT v FROM ledger_meta WHERE k = 'days_done')"),
	       0, "and no day not ended");
	/* Late rows for compacted days: singly, in batches, and raw as an older ai-tools writes. */
	for (int i = 0; i < 60 && !bad; i++) {
		size_t k = i % 3 ? 1 : 50;

		for (size_t j = 0; j < k; j++)
			random_row(&rows[j], end);
		bad += ledger_append_many(&l, rows, k, &err) < 0;
	}
	is_int(bad, 0, "late calls on compacted days");
	sqlite3_exec(l.db, "INSERT INTO calls(ts_ms, program, model, host, prompt_tokens, completion_tokens,"
		     " latency_ms, status, cached, cost, cached_tokens)"
		     " SELECT ts_ms - 86400000, program, model, host, prompt_tokens, completion_tokens, latency_ms,"
		     " status, cached, cost, cached_tokens FROM calls ORDER BY id LIMIT 300", NULL, NULL, NULL);
	raw_sums(l.db, "", &r);
	check_total(&l, &r, "late rows reach the day rollups");
	check_days(&l, "by UTC day, from day rollups");
	is_int(query_ll(l.db, "SELECT (SELECT sum(n) FROM rollup_day) ="
			" (SELECT sum(n) FROM rollup WHERE hour < 24 * (SELECT v FROM ledger_meta WHERE k = 'days_done'))"),
	       1, "both levels hold the same calls");
	/* Compaction beside a writer of late rows: both levels still agree. */
	{
		pid_t w;
		int status;

		sqlite3_exec(l.db, "DELETE FROM rollup_day; DELETE FROM rollup_lat_day;"
			     " UPDATE ledger_meta SET v = 0 WHERE k = 'days_done'", NULL, NULL, NULL);
		fflush(stdout);
		w = fork();
		if (w == 0)	/* calls over the 40 days, nearly all on compacted days */
			_exit(writer(path, 3000, 7, end));
		for (int i = 0; i < 20; i++) {
			struct ai_err e;

			ledger_compact(&l, &e);
			if (i == 10)
				sqlite3_exec(l.db, "DELETE FROM rollup_day; DELETE FROM rollup_lat_day;"
					     " UPDATE ledger_meta SET v = 0 WHERE k = 'days_done'", NULL, NULL, NULL);
		}
		waitpid(w, &status, 0);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a writer of late rows ran beside compactions");
		raw_sums(l.db, "", &r);
		check_total(&l, &r, "compacted beside a writer");
		check_days(&l, "by UTC day, compacted beside a writer");
	}
	/* A zone of whole hours but not UTC's days: grouped by day, the hourly rollups answer. */
	set_tz("America/New_York");
	check_days(&l, "by New York day");
	/* ai-usage --chart's groupings: a local date and a program or model. */
	check_days_by(&l, "day,program", "by New York day");
	check_days_by(&l, "day,model", "by New York day");
	set_tz("UTC");
	/* A range that starts and ends inside days: hours at the ends, days between. */
	{
		struct ledger_group *g = NULL;
		size_t n = 0;
		int64_t a = end - 20 * DAY - 5 * H, b = end - 3 * DAY + 7 * H;
		char where[128];

		a -= a % H;
		b -= b % H;
		snprintf(where, sizeof(where), "WHERE ts_ms >= %" PRId64 " AND ts_ms < %" PRId64, a, b);
		raw_sums(l.db, where, &r);
		if (ok(ledger_report(&l, "all", a, b, &g, &n, &err) == 0 && n == 1, "a range inside days")) {
			is_int(g->requests, r.n, "its requests");
			is_dbl(g->cost, r.cost, 0.005, "its cost");
			is_int(g->cached_tokens, r.tcached, "its cached tokens");
		}
		ledger_groups_free(g, n);
	}
	ledger_close(&l);
}

/* A schema-2 ledger (the one before this) upgrades in place and reports as before. */
static void test_schema2(void)
{
	char path[256];
	struct ledger l;
	struct ai_err err;
	struct ledger_group *g = NULL;
	size_t n = 0;
	long before_req = -1;
	double before_cost = NAN;

	set_tz("UTC");
	path_in(path, sizeof(path), "schema2.db");
	if (!ok(ledger_open(&l, path, &err) == 0, "open: %s", err.msg))
		return;
	ledger_set_keep(&l, 0);
	for (int i = 0; i < 500; i++) {
		struct ledger_row r;

		random_row(&r, wall_ms());
		r.cached_tokens = r.reasoning_tokens = -1;
		ledger_append(&l, &r, &err);
	}
	if (ledger_report(&l, "all", 0, INT64_MAX, &g, &n, &err) == 0 && n == 1) {
		before_req = g->requests;
		before_cost = g->cost;
	}
	ledger_groups_free(g, n);
	/* Back to what the previous ai-tools made: no new columns, no day rollups, user_version 2. */
	is_int(sqlite3_exec(l.db, "ALTER TABLE calls DROP COLUMN cached_tokens;"
			    "ALTER TABLE calls DROP COLUMN reasoning_tokens; ALTER TABLE calls DROP COLUMN attachments;"
			    "ALTER TABLE rollup DROP COLUMN tokens_cached; ALTER TABLE rollup DROP COLUMN cached_n;"
			    "ALTER TABLE rollup DROP COLUMN tokens_reason; ALTER TABLE rollup DROP COLUMN reason_n;"
			    "DROP TABLE rollup_day; DROP TABLE rollup_lat_day;"
			    "DELETE FROM ledger_meta WHERE k = 'days_done'; PRAGMA user_version = 2",
			    NULL, NULL, NULL), SQLITE_OK, "made a schema-2 ledger");
	ledger_close(&l);
	if (!ok(ledger_open_existing(&l, path, &err) == 0, "reopen upgrades: %s", err.msg))
		return;
	is_int(query_ll(l.db, "PRAGMA user_version"), LEDGER_SCHEMA, "now schema %d", LEDGER_SCHEMA);
	g = NULL;
	n = 0;
	if (ok(ledger_report(&l, "all", 0, INT64_MAX, &g, &n, &err) == 0 && n == 1, "report")) {
		is_int(g->requests, before_req, "the same requests");
		is_dbl(g->cost, before_cost, 1e-9, "the same cost");
		is_int(g->cached_tokens, -1, "cached tokens unknown, not 0");
		is_int(g->reasoning_tokens, -1, "reasoning tokens unknown, not 0");
	}
	ledger_groups_free(g, n);
	{
		struct ledger_row r;

		random_row(&r, wall_ms());
		r.cached = false;
		r.cached_tokens = 123;
		r.reasoning_tokens = 45;
		ledger_append(&l, &r, &err);
	}
	g = NULL;
	n = 0;
	if (ok(ledger_report(&l, "all", 0, INT64_MAX, &g, &n, &err) == 0 && n == 1, "report after a new call")) {
		is_int(g->cached_tokens, 123, "a new call's cached tokens");
		is_int(g->reasoning_tokens, 45, "and reasoning tokens");
	}
	ledger_groups_free(g, n);
	ledger_close(&l);
}

static void test_hist(void)
{
	int bad = 0;

	for (int64_t v = 0; v < 2000000; v += 1 + v / 300) {
		int b = ledger_hist_bucket(v);
		int64_t lo = ledger_hist_lower(b);

		if (b < 0 || b >= LEDGER_HIST_BUCKETS || lo > v || (v && (double)(v - lo) / (double)v > 0.0079) ||
		    ledger_hist_bucket(lo) != b)
			bad++;
	}
	is_int(bad, 0, "every bucket's lower bound within 0.78%% below its values");
	is_int(ledger_hist_bucket(INT64_MAX), LEDGER_HIST_BUCKETS - 1, "huge values land in the last bucket");
	is_int(ledger_hist_bucket(-5), 0, "negative values in the first");
	is_int(ledger_hist_lower(ledger_hist_bucket(255)), 255, "exact below 256 ms");
}

static int rm_rf(const char *path)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/t_ledger.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_create();
	test_bad_files();
	test_report();
	test_spent_and_budget();
	test_write_failures();
	test_concurrency();
	test_wal_bounded();
	test_hist();
	test_rollups();
	test_migration();
	test_day_rollups();
	test_schema2();
	measure();
	test_parse_time();
	test_env();
	if (getenv("T_LEDGER_KEEP"))
		printf("# kept %s\n", dir);
	else
		rm_rf(dir);
	return tap_done();
}
