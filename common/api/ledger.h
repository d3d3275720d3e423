#ifndef AI_LEDGER_H
#define AI_LEDGER_H
/*
 * ledger.h - the usage ledger: one SQLite row per model call, hit or
 * miss, in $XDG_DATA_HOME/ai/usage.db, and the queries ai-usage and the
 * daily budget make on it.
 *
 * What a row holds: time, program, model, endpoint host, token counts,
 * latency, HTTP status, whether the cache answered, cost and what a hit
 * saved.  Never the API key (there is no field for it, and a host given
 * as "user:secret@host" is stored as "host"); never the prompt unless
 * the caller passes one (--log-prompts).
 *
 * Durability and concurrency: the database is in WAL mode with
 * synchronous=NORMAL, so a commit writes the WAL without an fsync; a
 * power cut may lose the last few rows but never corrupts the file.
 * Each append is one BEGIN IMMEDIATE ... COMMIT; a busy timeout (5 s)
 * makes concurrent writers queue instead of failing, so many programs
 * can append at once.
 *
 * Rollups (schema 2).  Beside the raw rows the ledger keeps one row per
 * hour x program x model x host x status x cached x batch with the
 * count, token sums, cost and savings, the latency sum, and per hour x
 * program x model a latency histogram (log-linear buckets, each within
 * 0.78% of its values; see ledger_hist_bucket) that merges by adding.
 * An append updates them in the same transaction as its raw row, so
 * they never disagree; reports and the budget read only them, so their
 * cost grows with the hours asked about, not with the calls made.
 * Raw rows are kept ledger_keep days (LEDGER_KEEP_DAYS, 0 = for ever)
 * and pruned in small transactions as appends go by; rollups are kept
 * for ever.  Raw rows that reached the file without their rollups (a
 * schema-1 ledger on its first open by this code, an older ai-tools
 * still running, a row inserted by hand) are folded in, in id order
 * and in transactions of LEDGER_FOLD_CHUNK rows, by ledger_fold, which
 * every report runs first; an interrupted fold resumes where it stopped.
 *
 * Day rollups (schema 3).  A month is 720 hours of rollups, so a report
 * of it would read tens of thousands of rows; the same sums per UTC day
 * (hour / 24) make it 30 times fewer.  They are not written by every
 * append: a report compacts the whole UTC days that have ended into
 * them (ledger_compact), and moves a mark, "days_done", past them.  From
 * then on an append, a batch and a fold whose rows fall on a compacted
 * day (a late row, a clock set back, an old row folded) add them to the
 * day rollups too, in the same transaction, so both levels always hold
 * the same sums.  A report reads the days below the mark wholly inside
 * its range from the day rollups, the rest from the hourly ones.
 *
 * One struct ledger is one connection: use it from one thread, and do
 * not copy or move it while open (SQLite holds its address).
 */
#include "ai.h"
#include "clock.h"
#include "buf.h"

struct sqlite3;
struct sqlite3_stmt;

struct ledger {
	struct sqlite3 *db;           /* NULL when closed */
	struct sqlite3_stmt *begin, *commit, *rollback, *insert; /* prepared on first append */
	struct sqlite3_stmt *roll_row, *roll_lat, *fold, *fold_lat, *meta_get, *meta_set;
	struct sqlite3_stmt *spend_row, *fold_spend;
	struct sqlite3_stmt *day_row, *day_lat, *fold_day, *fold_day_lat; /* the day rollups (schema 3) */
	char *path;                   /* owned copy, for messages */
	int busy_ms;
	long keep_days;               /* raw rows older than this are pruned; 0 = never */
	unsigned long appends;        /* by this connection, to pace the pruning */
	int wal_frames;               /* frames in the WAL after this connection's last commit */
};

/* The schema version this code writes (PRAGMA user_version): 1 raw rows,
 * 2 hourly rollups too, 3 cached and reasoning tokens and day rollups. */
#define LEDGER_SCHEMA 3

/* ledger_keep's default: raw rows are kept 30 days. */
#define LEDGER_KEEP_DAYS 30
/* Raw rows folded into the rollups per transaction (first open, catch-up). */
#define LEDGER_FOLD_CHUNK 20000
/* Rows deleted per pruning transaction, every how many appends a
 * connection looks whether pruning is due, and how long it rests once
 * nothing is left to prune. */
#define LEDGER_PRUNE_CHUNK 2000
#define LEDGER_PRUNE_EVERY 64
#define LEDGER_PRUNE_PAUSE_MS (10 * 60 * 1000)

/* Buckets of the latency histogram: values 0 .. 2^40 ms. */
#define LEDGER_HIST_BUCKETS 4352

/* How long an append waits for another writer before giving up. */
#define LEDGER_BUSY_MS 5000

/*
 * One call.  Strings are borrowed for the duration of ledger_append and
 * may be NULL (stored as NULL).  A negative token count means unknown
 * (stored as NULL).
 */
struct ledger_row {
	int64_t ts_ms;                /* when the call started, ms since the epoch */
	const char *program;          /* "ai-summarize" */
	const char *model;            /* as sent, e.g. "gpt-4o-mini" */
	const char *host;             /* endpoint host, e.g. "api.openai.com"; never a URL with credentials */
	long prompt_tokens;
	long completion_tokens;
	long cached_tokens;           /* of prompt_tokens, read from the provider's prompt cache; <0 unknown */
	long reasoning_tokens;        /* of completion_tokens, spent reasoning; <0 unknown */
	long latency_ms;
	long status;                  /* HTTP status; 0 when none was received */
	bool cached;                  /* answered from the response cache */
	bool batch;                   /* billed at the Batch API price */
	double cost;                  /* USD actually spent (0 for a cache hit); NAN = unknown */
	double saved;                 /* for a hit, the cost it avoided; NAN = unknown; ignored on a miss */
	const char *prompt;           /* NULL unless --log-prompts */
	/* Attachments sent as parts of their own (images, files; api/attach.h): the raw
	 * row's attachments column (schema 3); <0 unknown. */
	long attachments;
};

/*
 * Where the ledger lives: $XDG_DATA_HOME/ai/usage.db, or
 * $HOME/.local/share/ai/usage.db when XDG_DATA_HOME is unset, empty or
 * relative (as the XDG spec says).  Appends the path to out.  Fails when
 * neither variable gives an absolute directory.
 */
int ledger_default_path(struct buf *out, struct ai_err *err);

/* False when AI_LEDGER is "0", "no", "off" or "false": ledger turned off. */
bool ledger_enabled(void);

/*
 * Opens (creating if need be) the ledger at path: missing parent
 * directories are made 0700 and a new file 0600 (SQLite gives the -wal
 * and -shm files the same mode).  Cheap when the file is current: no
 * schema work, no journal-mode change.  Refuses, with a message saying
 * what to do, a file that is not an SQLite database (code
 * AI_EX_DATAERR), an SQLite database that is not a ledger
 * (AI_EX_DATAERR), and a ledger with a newer schema (AI_EX_DATAERR).
 * On failure l is left closed; ledger_close on it is harmless.
 */
int ledger_open(struct ledger *l, const char *path, struct ai_err *err);

/*
 * As ledger_open, but never creates the file or its directory: for
 * ai-usage, which should say "no ledger yet" (code AI_EX_NOINPUT)
 * rather than make an empty one in a mistyped place.
 */
int ledger_open_existing(struct ledger *l, const char *path, struct ai_err *err);

/* Changes how long appends wait on another writer (default LEDGER_BUSY_MS). */
void ledger_set_busy_timeout(struct ledger *l, int ms);

/*
 * Appends one row in its own BEGIN IMMEDIATE ... COMMIT.  Fails with a
 * message naming the file and the cause: locked by another process past
 * the timeout (AI_EX_TEMPFAIL), disk full or an I/O error (AI_EX_IOERR),
 * a read-only file (AI_EX_IOERR).  Nothing is half-written on failure.
 */
int ledger_append(struct ledger *l, const struct ledger_row *r, struct ai_err *err);

/*
 * Appends n rows in one transaction (the calls of ai-batch's busy
 * wake-ups, queued by api.c): one commit for all, each row with its
 * rollups (up to 8 rows by their own upserts, more by one grouped
 * fold).  Fails as ledger_append; then no row of the n is written.
 */
int ledger_append_many(struct ledger *l, const struct ledger_row *rows, size_t n, struct ai_err *err);

/*
 * Folds every raw row the rollups do not hold yet, LEDGER_FOLD_CHUNK
 * rows per transaction, calling progress (when not NULL) after each
 * with the rows folded so far and the rows there were to fold.  Safe to
 * interrupt at any point (a killed fold loses at most its current
 * transaction, which the next fold redoes) and to run beside writers
 * and other folds.  Cheap when there is nothing to fold.
 */
int ledger_fold(struct ledger *l, void (*progress)(void *ud, int64_t done, int64_t total), void *ud,
		struct ai_err *err);

/*
 * Compacts every ended UTC day not compacted yet from the hourly
 * rollups into the day rollups, in one transaction (see "Day rollups"
 * above); reports call it first.  Fails as ledger_append; a report that
 * cannot compact (the lock is held, a read-only file) reads hourly
 * rollups instead and loses nothing but time.
 */
int ledger_compact(struct ledger *l, struct ai_err *err);

/* Raw rows are kept this many days (default LEDGER_KEEP_DAYS); 0 keeps them for ever. */
void ledger_set_keep(struct ledger *l, long days);

/*
 * Deletes at most max_rows raw rows older than now_ms minus the keep
 * days, oldest first, in one transaction; *deleted says how many.  Only
 * rows the rollups hold go, and never the newest row.  Appends call it
 * on their own from time to time; tests and tools may call it directly.
 */
int ledger_prune(struct ledger *l, int64_t now_ms, long max_rows, long *deleted, struct ai_err *err);

/* The histogram bucket of a latency in ms, and the smallest value in bucket b. */
int ledger_hist_bucket(int64_t v);
int64_t ledger_hist_lower(int b);

/* Adds a stored histogram (len bytes) to the counts h[LEDGER_HIST_BUCKETS]. */
void ledger_hist_add_blob(uint64_t *h, const void *blob, size_t len);

/*
 * USD spent today (local time, midnight to midnight) in *usd: the sum
 * of the known costs; rows of unknown cost add nothing.  One range of
 * the primary key of a table of spend per hour (today's 24 rows), plus
 * the raw rows not yet folded, normally none.
 */
int ledger_spent_today(struct ledger *l, double *usd, struct ai_err *err);

/*
 * The daily budget: fails with code AI_EX_TEMPFAIL and a message naming
 * today's spend and the limit when today's spend has reached limit_usd
 * (so a call that would start after that is never sent); a limit of 0
 * allows no paid call at all.  A negative or non-finite limit fails
 * with AI_EX_CONFIG.
 */
int ledger_check_budget(struct ledger *l, double limit_usd, struct ai_err *err);

/*
 * As ledger_check_budget, with unwritten_usd more spent today: the known
 * cost of today's calls a writer holds in memory (api.c's queue), so
 * that a check need not write them first.
 */
int ledger_check_budget_with(struct ledger *l, double limit_usd, double unwritten_usd, struct ai_err *err);

/* The local midnight that began today, in ms since the epoch: where "today" starts for the budget. */
int64_t ledger_today_ms(void);

/*
 * One line of ai-usage.  days is the denominator for "per day" figures
 * (requests/day = requests / days, cost/day = cost / days):
 *  - grouped by "day": 1;
 *  - otherwise the number of local calendar days from the first row in
 *    the whole selection (all groups, so per-group figures add up to
 *    the total's) to the end of the range, that end being until_ms or
 *    now, whichever is earlier (or the last row, if later).  A program
 *    used on one day of a week in which others ran every day gets its
 *    requests divided by 7; a ledger begun two days ago gives 2, not
 *    the 7 a "--since 7d" asked for.
 */
struct ledger_group {
	char *key;                    /* owned by the array; program, model, "YYYY-MM-DD" or "total"; "-" for NULL */
	long days;
	long requests;                /* rows, hits included */
	long hits;                    /* rows answered by the cache */
	double hit_rate;              /* hits / requests */
	double avg_latency_ms;        /* over every row, hits included */
	long p50_latency_ms;          /* nearest rank, from the histogram: the lower bound of the */
	long p95_latency_ms;          /* bucket holding the ceil(q n)-th smallest latency, so within */
	long p99_latency_ms;          /* 0.78% below it; exact below 256 ms and for the largest */
	int64_t prompt_tokens;        /* sums of the known counts of the billed calls (not hits), */
	int64_t completion_tokens;    /* so that they and cost add up */
	int64_t hit_prompt_tokens;    /* the same sums over the hits: tokens the cache served */
	int64_t hit_completion_tokens;
	int64_t cached_tokens;        /* of prompt_tokens (billed calls), served from the provider's */
	int64_t reasoning_tokens;     /* prompt cache / spent reasoning; -1 when no billed call says */
	double cost;                  /* sum of the known costs; NAN when no row's cost is known */
	long unknown_cost;            /* rows whose cost is unknown (an unpriced model); a row of
	                                 unknown cost from a loopback host counts as cost 0
	                                 (prices_host_local), as new calls there are priced */
	double saved;                 /* sum of the known savings of hits; 0 without hits, NAN when no hit's saving is known */
	int64_t first_ms, last_ms;    /* earliest and latest row of the group */
};

/*
 * Rows with since_ms <= ts_ms < until_ms (pass 0 and INT64_MAX for no
 * bound; read from the rollups, so a bound inside an hour takes that
 * hour whole, which only a time zone offset by a fraction of an hour
 * gives a midnight), grouped by "program", "model", "day" (local date
 * of the hour), "all" (one group, key "total", for the totals line), or
 * "day,program" and "day,model" (key "YYYY-MM-DD\tprogram": the series
 * ai-usage --chart draws; per-day figures, days 1).  Groups come sorted by
 * key (so days in order).  *out is owned by the caller: free with
 * ledger_groups_free(*out, *n).  No rows gives *out NULL, *n 0.
 */
int ledger_report(struct ledger *l, const char *by, int64_t since_ms, int64_t until_ms,
		  struct ledger_group **out, size_t *n, struct ai_err *err);

/*
 * As ledger_report, with only the rows of one model (compared exactly,
 * as sent) when model is not NULL.  The per-day denominator then starts
 * at that model's first row in the range.
 */
int ledger_report_model(struct ledger *l, const char *by, const char *model, int64_t since_ms,
			int64_t until_ms, struct ledger_group **out, size_t *n, struct ai_err *err);

/*
 * As ledger_report_model, and in the same pass the "all" group into
 * *total (key NULL, not to be freed; requests 0 when no row matched):
 * the table and its total line for the price of one read.
 */
int ledger_report_total(struct ledger *l, const char *by, const char *model, int64_t since_ms,
			int64_t until_ms, struct ledger_group **out, size_t *n, struct ledger_group *total,
			struct ai_err *err);

/* Frees what ledger_report returned. */
void ledger_groups_free(struct ledger_group *g, size_t n);

/*
 * Parses a --since/--until argument to ms since the epoch, in local
 * time: "YYYY-MM-DD" is that date's midnight, or with end=true the next
 * midnight (so "--until 2026-01-31" includes the 31st); "today" and
 * "yesterday" likewise;
 * "Nd" (1 <= N <= 36500) is the midnight that begins the last N days,
 * today included ("7d": today and the 6 days before).  now_ms is the
 * time to count from (wall_ms() in a program).  Fails with
 * AI_EX_USAGE and a message quoting s.
 */
int ledger_parse_time(const char *s, bool end, int64_t now_ms, int64_t *out, struct ai_err *err);


/* Closes the connection and frees everything; l may be closed already. */
void ledger_close(struct ledger *l);

#endif
