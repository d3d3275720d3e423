/*
 * ai-usage - the usage ledger as a table (pattern 7: the cost monitor).
 *
 * Reads the ledger every model call writes (common/api/ledger.h) and prints,
 * per program, model or day: requests per day, average and p95 latency,
 * the tokens billed, cost per day, cache hit rate, the dollars hits saved
 * and the tokens they served, then the totals and a month's projection.
 * -m MODEL, a common option meaning "the model to use" elsewhere, here
 * keeps only that model's calls.  It makes no model call, so it
 * needs no endpoint or key.
 */
#include "ai.h"
#include "lib/cli.h"
#include "lib/convcli.h"
#include "lib/out.h"
#include "lib/setup.h"
#include "lib/termout.h"
#include "chart.h"
#include "fdio.h"
#include "jsonval.h"
#include "config.h"
#include "api/cache.h"
#include "api/convstore.h"
#include "api/ledger.h"
#include "api/prices.h"

#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <json-c/json.h>

enum { OPT_SINCE = CLI_OPT_PROG, OPT_UNTIL, OPT_BY, OPT_DB, OPT_PRICES, OPT_CACHE_STATS, OPT_CHART, OPT_HTML, OPT_LOG };

static const struct cli_opt opts[] = {
	{ "since", required_argument, OPT_SINCE, "DATE", "from DATE on: YYYY-MM-DD, today, yesterday, or Nd for the last N days" },
	{ "until", required_argument, OPT_UNTIL, "DATE", "up to DATE, that day included" },
	{ "by", required_argument, OPT_BY, "KEY", "one row per program (default), model or day" },
	{ "db", required_argument, OPT_DB, "FILE", "read this ledger instead of $XDG_DATA_HOME/ai/usage.db" },
	{ "prices", no_argument, OPT_PRICES, NULL, "print the price table (USD per million tokens) and exit" },
	{ "cache-stats", no_argument, OPT_CACHE_STATS, NULL, "print the response cache's entries, bytes on disk and hit rate, and exit" },
	{ "chart", no_argument, OPT_CHART, NULL, "draw cost and requests per day as bars, per program (--by model: per model); the last 30 days unless --since" },
	{ "html", required_argument, OPT_HTML, "FILE", "write the same charts as one self-contained HTML page to FILE (- for stdout)" },
	{ "log", no_argument, OPT_LOG, NULL, "print ai-stream's kept prompts and replies, newest first, or those holding every word of QUERY" },
	{ "limit", required_argument, 'n', "N", "with --log, at most N exchanges (default 20; 0: all)" },
	{ NULL, 0, 0, NULL, NULL }
};

struct opts {
	const char *since, *until, *by, *db, *html;
	bool prices, cache_stats, chart, by_given;
	bool log;
	long limit;             /* --log's -n; -1 when not given */
};

static void on_opt(int val, const char *arg, void *ud)
{
	struct opts *o = ud;

	switch (val) {
	case OPT_SINCE: o->since = arg; break;
	case OPT_UNTIL: o->until = arg; break;
	case OPT_BY:
		if (strcmp(arg, "program") && strcmp(arg, "model") && strcmp(arg, "day"))
			cli_usage_error("--by wants program, model or day, not '%s'", arg);
		o->by = arg;
		o->by_given = true;
		break;
	case OPT_DB:
		if (!*arg)
			cli_usage_error("--db wants a file name");
		o->db = arg;
		break;
	case OPT_PRICES: o->prices = true; break;
	case OPT_CACHE_STATS: o->cache_stats = true; break;
	case OPT_CHART: o->chart = true; break;
	case OPT_HTML:
		if (!*arg)
			cli_usage_error("--html wants a file name, or - for stdout");
		o->html = arg;
		break;
	case OPT_LOG: o->log = true; break;
	case 'n': o->limit = cli_long("-n", arg, 0, 1000000000); break;
	}
}

/* ---- formatting ---- */

#define NCOLS 11
#define CELL 40

/* A number with at most dec decimals, trailing zeros dropped: 12, 3.5, 33.3. */
static void fmt_num(char *out, size_t n, double v, int dec)
{
	char *dot;
	size_t l;

	snprintf(out, n, "%.*f", dec, v);
	dot = strchr(out, '.');
	if (!dot)
		return;
	l = strlen(out);
	while (l > 0 && out[l - 1] == '0')
		out[--l] = '\0';
	if (l > 0 && out[l - 1] == '.')
		out[--l] = '\0';
	if (!strcmp(out, "-0"))
		snprintf(out, n, "0");
}

static double per_day(double v, long days)
{
	return days > 0 ? v / (double)days : v;
}

/* The cells of one table row; cost cells carry a '*' when some calls have no price. */
static void row_cells(const struct ledger_group *g, const char *key, char c[NCOLS][CELL])
{
	char usd[CELL - 1], pct[CELL - 1];

	snprintf(c[0], CELL, "%.*s", CELL - 1, key);
	fmt_num(c[1], CELL, per_day((double)g->requests, g->days), 1);
	fmt_num(c[2], CELL, g->avg_latency_ms, 0);
	snprintf(c[3], CELL, "%ld", g->p95_latency_ms);
	snprintf(c[4], CELL, "%" PRId64, g->prompt_tokens);
	if (g->cached_tokens < 0)
		snprintf(c[10], CELL, "-");
	else
		snprintf(c[10], CELL, "%" PRId64, g->cached_tokens);
	snprintf(c[5], CELL, "%" PRId64, g->completion_tokens);
	snprintf(c[9], CELL, "%" PRId64, g->hit_prompt_tokens + g->hit_completion_tokens);
	chart_usd(usd, sizeof(usd), per_day(g->cost, g->days));
	snprintf(c[6], CELL, "%s%s", usd, g->unknown_cost && !isnan(g->cost) ? "*" : "");
	fmt_num(pct, sizeof(pct), 100.0 * g->hit_rate, 1);
	snprintf(c[7], CELL, "%s%%", pct);
	chart_usd(c[8], CELL, g->saved);
}

/* Prints rows of cells: aligned on a terminal (text left, numbers right), else tab-separated. */
static void print_table(char (*cells)[NCOLS][CELL], size_t rows, int ncols, bool aligned)
{
	size_t w[NCOLS] = { 0 };
	struct buf line = BUF_INIT;

	for (size_t r = 0; r < rows; r++)
		for (int i = 0; i < NCOLS; i++)
			if (strlen(cells[r][i]) > w[i])
				w[i] = strlen(cells[r][i]);
	for (size_t r = 0; r < rows; r++) {
		buf_reset(&line);
		for (int i = 0; i < ncols; i++) {
			if (!aligned)
				buf_addf(&line, "%s%s", i ? "\t" : "", cells[r][i]);
			else if (i == 0)
				buf_addf(&line, "%-*s", (int)w[i], cells[r][i]);
			else
				buf_addf(&line, "  %*s", (int)w[i], cells[r][i]);
		}
		/* The first column is padded; trailing spaces would be noise. */
		while (line.len && line.data[line.len - 1] == ' ')
			line.data[--line.len] = '\0';
		buf_addch(&line, '\n');
		cli_write(line.data, line.len, false);
	}
	buf_release(&line);
}

/* ---- JSON ---- */

/* A number printed with 10 significant digits (0.1+0.2 is 0.3), or null when unknown. */
static json_object *jnum(double v)
{
	return jv_num_g(v, 10);
}

/*
 * Dollars in plain decimal notation, rounded to a billionth of a dollar
 * (a thousandth of a token at the cheapest prices), trailing zeros
 * dropped: 0.00001545, never 1.5449999999999996e-05 or 1.545e-05.
 */
static json_object *jusd(double v)
{
	char s[48];

	if (isnan(v) || isinf(v) || fabs(v) >= 1e15)
		return jnum(v);
	fmt_num(s, sizeof(s), v, 9);
	return json_object_new_double_s(strtod(s, NULL), s);
}

static json_object *group_json(const struct ledger_group *g, const char *by, bool total)
{
	json_object *j = out_object();

	out_add(j, by, total ? NULL : json_object_new_string(g->key));
	out_add(j, "total", json_object_new_boolean(total));
	out_add(j, "days", json_object_new_int64(g->days));
	out_add(j, "requests", json_object_new_int64(g->requests));
	out_add(j, "requests_per_day", jnum(per_day((double)g->requests, g->days)));
	out_add(j, "avg_ms", jnum(round(g->avg_latency_ms * 10) / 10));
	out_add(j, "p50_ms", json_object_new_int64(g->p50_latency_ms));
	out_add(j, "p95_ms", json_object_new_int64(g->p95_latency_ms));
	out_add(j, "p99_ms", json_object_new_int64(g->p99_latency_ms));
	out_add(j, "tokens_in", json_object_new_int64(g->prompt_tokens));
	out_add(j, "tokens_out", json_object_new_int64(g->completion_tokens));
	out_add(j, "tokens_cached", g->cached_tokens < 0 ? NULL : json_object_new_int64(g->cached_tokens));
	out_add(j, "tokens_reasoning", g->reasoning_tokens < 0 ? NULL : json_object_new_int64(g->reasoning_tokens));
	out_add(j, "hit_tokens_in", json_object_new_int64(g->hit_prompt_tokens));
	out_add(j, "hit_tokens_out", json_object_new_int64(g->hit_completion_tokens));
	out_add(j, "cost", jusd(g->cost));
	out_add(j, "cost_per_day", jusd(per_day(g->cost, g->days)));
	out_add(j, "unknown_cost", json_object_new_int64(g->unknown_cost));
	out_add(j, "hits", json_object_new_int64(g->hits));
	out_add(j, "hit_rate", jnum(g->hit_rate));
	out_add(j, "saved", jusd(g->saved));
	return j;
}

/* ---- --prices ---- */

static int print_prices(const struct prices *ps, bool json)
{
	size_t n = prices_builtin_count();
	char (*cells)[NCOLS][CELL] = calloc(n + 1, sizeof(*cells));
	bool tty = isatty(STDOUT_FILENO);

	if (!cells)
		cli_die(AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *name;
		struct price p;

		if (!prices_builtin(i, &name, &p))
			continue;
		/* The config file's price.MODEL overrides apply here as to every call. */
		prices_lookup(ps, name, &p);
		if (json) {
			json_object *j = out_object();

			out_add(j, "model", json_object_new_string(name));
			out_add(j, "in_per_mtok", jnum(p.in_per_mtok));
			out_add(j, "out_per_mtok", jnum(p.out_per_mtok));
			out_json_line(j);
			json_object_put(j);
		} else {
			snprintf(cells[i + 1][0], CELL, "%.*s", CELL - 1, name);
			fmt_num(cells[i + 1][1], CELL, p.in_per_mtok, 4);
			fmt_num(cells[i + 1][2], CELL, p.out_per_mtok, 4);
		}
	}
	if (!json) {
		snprintf(cells[0][0], CELL, "MODEL");
		snprintf(cells[0][1], CELL, "IN/MTOK");
		snprintf(cells[0][2], CELL, "OUT/MTOK");
		print_table(cells, n + 1, 3, tty);
	}
	free(cells);
	return 0;
}

/* ---- --cache-stats ---- */

/*
 * The response cache as the disk sees it (entries, allocated bytes,
 * against the cap) and, from the ledger (the range given, all of it by
 * default), how often it answered.  A missing ledger leaves the hit
 * rate out; a missing cache is an empty one.
 */
static int print_cache_stats(const struct opts *o, const struct cli *c, const struct ai_config *cfg,
			     const char *ledger_path, int64_t since, int64_t until)
{
	char *dir = config_xdg_path("CACHE", "responses");
	struct cache_stats st;
	struct cache ch;
	struct ai_err err;
	struct ledger l;
	struct ledger_group *g = NULL;
	size_t n = 0;
	long requests = -1, hits = 0;

	ai_err_clear(&err);
	if (!dir)
		cli_die(AI_EX_CONFIG, "no cache directory: set HOME or XDG_CACHE_HOME");
	memset(&st, 0, sizeof(st));
	if (access(dir, F_OK) == 0) {
		if (cache_open(&ch, dir, 0, cfg->cache_max, &err) || cache_stats(&ch, &st, &err)) {
			free(dir);
			cli_die_err(&err);
		}
		cache_close(&ch);
	}
	if (!ledger_open_existing(&l, ledger_path, &err)) {
		ledger_set_busy_timeout(&l, 100);
		if (!ledger_report(&l, "all", since, until, &g, &n, &err) && n == 1) {
			requests = g->requests;
			hits = g->hits;
		}
		ledger_groups_free(g, n);
		ledger_close(&l);
	}
	if (c->json) {
		json_object *j = out_object();

		out_add(j, "cache", json_object_new_string(dir));
		out_add(j, "entries", json_object_new_int64((int64_t)st.entries));
		out_add(j, "bytes_on_disk", json_object_new_int64((int64_t)st.bytes_on_disk));
		out_add(j, "bytes", json_object_new_int64((int64_t)st.bytes));
		out_add(j, "max_bytes", json_object_new_int64((int64_t)cfg->cache_max));
		out_add(j, "requests", requests < 0 ? NULL : json_object_new_int64(requests));
		out_add(j, "hits", requests < 0 ? NULL : json_object_new_int64(hits));
		out_add(j, "hit_rate", requests <= 0 ? NULL : jnum((double)hits / (double)requests));
		out_json_line(j);
		json_object_put(j);
	} else {
		struct buf b = BUF_INIT;
		char pct[32];

		buf_addf(&b, "cache: %s\nentries: %" PRIu64 "\non disk: %" PRIu64 " bytes of %" PRIu64
			 " allowed (%" PRIu64 " bytes of answers)\n", dir, st.entries, st.bytes_on_disk,
			 cfg->cache_max, st.bytes);
		if (requests > 0) {
			fmt_num(pct, sizeof(pct), 100.0 * (double)hits / (double)requests, 1);
			buf_addf(&b, "hit rate: %s%% (%ld of %ld calls%s)\n", pct, hits, requests,
				 o->since || o->until ? " in that range" : " in the ledger");
		} else {
			buf_addstr(&b, "hit rate: - (no calls in the ledger)\n");
		}
		cli_write(b.data, b.len, false);
		buf_release(&b);
	}
	free(dir);
	return 0;
}

/* ---- the report ---- */

/* True when the one day of the totals t is today, so not over yet. */
static bool local_today(const struct ledger_group *t)
{
	struct ai_err e;
	int64_t midnight;

	ai_err_clear(&e);
	return !ledger_parse_time("today", false, wall_ms(), &midnight, &e) &&
	       t->last_ms >= midnight;
}

/*
 * -m MODEL matched no row: says so (unless -q) and names the models that
 * are in the range, since a name that nearly matches is the usual cause.
 */
static int no_such_model(struct ledger *l, const struct cli *c, const struct opts *o,
			 int64_t since, int64_t until, struct ai_err *err)
{
	struct ledger_group *g = NULL;
	size_t n = 0;
	struct buf b = BUF_INIT;

	if (c->quiet)
		return 0;
	if (ledger_report(l, "model", since, until, &g, &n, err))
		return -1;
	buf_addf(&b, "no calls of model '%s' recorded in '%s'%s", c->model, l->path,
		 o->since || o->until ? " in that range" : "");
	for (size_t i = 0; i < n && i < 20; i++)
		buf_addf(&b, "%s'%s'", i ? ", " : "; the models there: ", g[i].key);
	if (n > 20)
		buf_addstr(&b, ", ...");
	cli_warn("%s", b.data);
	buf_release(&b);
	ledger_groups_free(g, n);
	return 0;
}

static const char *key_header(const char *by)
{
	return !strcmp(by, "model") ? "MODEL" : !strcmp(by, "day") ? "DAY" : "PROGRAM";
}

static int report(struct ledger *l, const struct opts *o, const struct cli *c,
		  const struct ai_config *cfg, int64_t since, int64_t until, size_t *lines,
		  struct ai_err *err)
{
	struct ledger_group *g = NULL, tot, *t = &tot;
	size_t n = 0;
	double month;
	int rc = -1;

	/* The rows and the total line in one read of the rollups. */
	if (ledger_report_total(l, o->by, c->model, since, until, &g, &n, &tot, err))
		goto out;
	if (!n || !tot.requests) {
		rc = c->model ? no_such_model(l, c, o, since, until, err) : 0;
		if (!c->model && !c->quiet)
			cli_warn("no calls recorded in '%s'%s", l->path,
				 o->since || o->until ? " in that range" : " yet");
		goto out;
	}
	month = per_day(t->cost, t->days) * 30;
	if (c->json) {
		for (size_t i = 0; i < n; i++) {
			json_object *j = group_json(&g[i], o->by, false);

			out_json_line(j);
			json_object_put(j);
		}
		{
			json_object *j = group_json(t, o->by, true);

			out_add(j, "projected_month", jusd(month));
			out_add(j, "projected_from_days", json_object_new_int64(t->days));
			out_json_line(j);
			json_object_put(j);
		}
	} else {
		static const char *const head[NCOLS] = {
			NULL, "REQ/DAY", "AVG_MS", "P95_MS", "TOKENS_IN", "TOKENS_OUT", "COST/DAY",
			"HIT%", "SAVED", "HIT_TOKENS", "CACHED_IN"
		};
		char (*cells)[NCOLS][CELL] = calloc(n + 2, sizeof(*cells));
		char usd[32];

		if (!cells)
			cli_die(AI_EX_OSERR, "out of memory");
		for (int i = 0; i < NCOLS; i++)
			snprintf(cells[0][i], CELL, "%s", i ? head[i] : key_header(o->by));
		for (size_t i = 0; i < n; i++)
			row_cells(&g[i], g[i].key, cells[i + 1]);
		row_cells(t, "total", cells[n + 1]);
		print_table(cells, n + 2, NCOLS, isatty(STDOUT_FILENO));
		*lines = n + 2 + 1 + (t->unknown_cost != 0) + !isnan(cfg->budget_daily);
		free(cells);
		chart_usd(usd, sizeof(usd), month);
		{
			struct buf b = BUF_INIT;

			/* Thirty times the daily average, and on how many days that
			 * average rests: one afternoon makes a rough guess, and says so. */
			buf_addf(&b, "projected month: %s (30 x the average of %ld day%s%s)\n", usd,
				 t->days, t->days == 1 ? "" : "s",
				 t->days == 1 && local_today(t) ? ", today so far" : "");
			cli_write(b.data, b.len, false);
			buf_release(&b);
		}
		if (t->unknown_cost) {
			struct buf b = BUF_INIT;

			buf_addf(&b, "* %ld call%s of models without a price %s not counted; "
				 "add price.MODEL to the config (see ai.conf(5))\n", t->unknown_cost,
				 t->unknown_cost == 1 ? "" : "s", t->unknown_cost == 1 ? "is" : "are");
			cli_write(b.data, b.len, false);
			buf_release(&b);
		}
	}
	if (!c->json && !isnan(cfg->budget_daily)) {
		double spent;
		char s[32], lim[32];
		struct buf b = BUF_INIT;

		if (ledger_spent_today(l, &spent, err))
			goto out;
		chart_usd(s, sizeof(s), spent);
		chart_usd(lim, sizeof(lim), cfg->budget_daily);
		buf_addf(&b, "daily budget: %s, spent today: %s\n", lim, s);
		cli_write(b.data, b.len, false);
		buf_release(&b);
	}
	rc = 0;
out:
	ledger_groups_free(g, n);
	return rc;
}

/* ---- charts ---- */

/*
 * The chart's grid from the ledger: per day and program (or model, with
 * --by model), from --since (else the last 30 days) to --until (else
 * now), the latest max_days days.
 */
static int load_chart(struct ledger *l, const struct opts *o, const struct cli *c, int64_t since,
		      int64_t until, size_t max_days, struct chart *ch, struct ai_err *err)
{
	const char *by = strcmp(o->by, "model") ? "day,program" : "day,model";
	struct ledger_group *g = NULL;
	int64_t now = wall_ms();
	size_t n = 0;
	int rc = 0;

	if (!o->since && ledger_parse_time("30d", false, now, &since, err))
		return -1;
	if (until > now)
		until = now + 1;
	if (chart_init(ch, since, until, max_days, err))
		return -1;
	if (ledger_report_model(l, by, c->model, since, until, &g, &n, err)) {
		chart_release(ch);
		return -1;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		const char *tab = strchr(g[i].key, '\t');
		char day[16];

		if (!tab || (size_t)(tab - g[i].key) >= sizeof(day))
			continue;
		memcpy(day, g[i].key, (size_t)(tab - g[i].key));
		day[tab - g[i].key] = '\0';
		rc = chart_add(ch, day, tab + 1, g[i].requests, g[i].cost, err);
	}
	ledger_groups_free(g, n);
	if (rc)
		chart_release(ch);
	return rc;
}

/* Block characters where the locale is UTF-8, colour where stdout is a terminal that wants it. */
static unsigned chart_flags(void)
{
	const char *cs;
	unsigned f = 0;

	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	if (cs && strcmp(cs, "UTF-8") == 0)
		f |= CHART_UTF8;
	if (isatty(STDOUT_FILENO) && termout_sgr())
		f |= CHART_COLOR;
	return f;
}

/* Days of the chart with at least one call. */
static size_t chart_days_used(const struct chart *ch)
{
	size_t used = 0;

	for (size_t d = 0; d < ch->ndays; d++)
		for (size_t k = 0; k < ch->nkeys; k++)
			if (ch->requests[d * ch->nkeys + k]) {
				used++;
				break;
			}
	return used;
}

/* --chart and --html FILE. */
static int charts(struct ledger *l, const struct opts *o, const struct cli *c, int64_t since,
		  int64_t until, struct ai_err *err)
{
	struct chart ch;
	struct buf b = BUF_INIT;
	int rc = 0;

	/* A year of days at most: a bar a day is unreadable beyond it. */
	if (load_chart(l, o, c, since, until, 366, &ch, err))
		return -1;
	if (!chart_days_used(&ch) && !c->quiet)
		cli_warn("no calls recorded in '%s' in the days charted", l->path);
	if (o->chart) {
		unsigned f = chart_flags();
		int w = termout_width();

		if (chart_text(&b, &ch, CHART_COST, w, f) || buf_addch(&b, '\n') ||
		    chart_text(&b, &ch, CHART_REQUESTS, w, f))
			cli_die(AI_EX_OSERR, "out of memory");
		cli_write(b.data, b.len, false);
		buf_reset(&b);
	}
	if (o->html) {
		if (chart_html(&b, &ch, "ai-usage: cost and requests per day"))
			cli_die(AI_EX_OSERR, "out of memory");
		if (strcmp(o->html, "-") == 0)
			cli_write(b.data, b.len, false);
		else {
			/* Held: killed mid-write, it would leave its hidden .FILE.XXXXXX behind. */
			cli_defer_signals(true);
			rc = fd_replace_file(o->html, b.data, b.len, 0666, err);
			cli_defer_signals(false);
		}
	}
	buf_release(&b);
	chart_release(&ch);
	return rc;
}

/*
 * The default view on a terminal ends with the cost of the last 14 days
 * as bars, when the terminal has the room for them below the table and
 * there are two days or more to compare.
 */
static void chart_below(struct ledger *l, const struct opts *o, const struct cli *c, int64_t since,
			int64_t until, size_t lines)
{
	struct winsize ws;
	struct chart ch;
	struct buf b = BUF_INIT;
	struct ai_err err;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || ws.ws_col < 60 || ws.ws_row < lines + 14 + 4)
		return;
	ai_err_clear(&err);
	if (load_chart(l, o, c, since, until, 14, &ch, &err))
		return;
	if (chart_days_used(&ch) >= 2 && !buf_addch(&b, '\n') &&
	    !chart_text(&b, &ch, CHART_COST, ws.ws_col, chart_flags()))
		cli_write(b.data, b.len, false);
	buf_release(&b);
	chart_release(&ch);
}

/* Progress of the first fold of a large ledger, on a terminal only: one line rewritten. */
static bool fold_shown;

static void fold_progress(void *ud, int64_t done, int64_t total)
{
	(void)ud;
	if (total <= LEDGER_FOLD_CHUNK)
		return;		/* one transaction: nothing to wait for */
	fprintf(stderr, "\rai-usage: adding the ledger's rows to its hourly rollups: %" PRId64 " of %" PRId64 " (%d%%)",
		done, total, total ? (int)(100 * done / total) : 100);
	fold_shown = true;
}

int main(int argc, char **argv)
{
	struct cli c;
	struct opts o = { .by = "program", .limit = -1 };
	struct ai_config cfg;
	struct ai_err err;
	struct ledger l;
	struct buf path = BUF_INIT;
	int64_t now, since = 0, until = INT64_MAX;
	int optind_, rc;

	cli_init(&c, "ai-usage");
	c.usage = "[OPTION]...\n       ai-usage --log [-n N] [QUERY]...";
	c.summary = "Show what the model calls recorded in the usage ledger cost, per program, model or day.\n"
		    "-m MODEL keeps only the calls of that model (exactly as sent).";
	c.opts = opts;
	optind_ = cli_parse(&c, argc, argv, on_opt, &o);
	if (o.log && (o.db || o.prices || o.cache_stats || o.chart || o.html || strcmp(o.by, "program")))
		cli_usage_error("--log reads the kept conversations: --db, --by, --prices, --cache-stats, --chart and --html do not go with it");
	if (!o.log && o.limit >= 0)
		cli_usage_error("-n goes with --log");
	if (optind_ < argc && !o.log)
		cli_usage_error("unexpected argument '%s'; use --db FILE to read another ledger", argv[optind_]);
	ai_err_clear(&err);
	now = wall_ms();
	if ((o.since && ledger_parse_time(o.since, false, now, &since, &err)) ||
	    (o.until && ledger_parse_time(o.until, true, now, &until, &err)))
		cli_usage_error("%s", err.msg);
	if ((o.chart || o.html) && c.json)
		cli_usage_error("--chart and --html draw; for the figures use --json --by day");
	if ((o.chart || o.html) && strcmp(o.by, "day") == 0)
		cli_usage_error("--chart draws a bar per day; --by wants program or model with it");
	if (since >= until)
		cli_usage_error("--since '%s' is not before --until '%s'", o.since ? o.since : "",
				o.until ? o.until : "");
	/* The log reads the conversation store, not the ledger; its operands are the query. */
	if (o.log)
		return convcli_log(&c, argc - optind_, argv + optind_, &(struct convstore_query){
			.since_ms = since, .until_ms = until, .limit = o.limit < 0 ? 20 : o.limit });
	/* The config gives price overrides (--prices) and the daily budget; no endpoint is needed. */
	if (setup_config(&cfg, &c, &err))
		cli_die_err(&err);
	if (o.prices) {
		print_prices(&cfg.prices, c.json);
		config_release(&cfg);
		return cli_finish(0);
	}
	if (o.db) {
		rc = buf_addstr(&path, o.db);
	} else {
		rc = ledger_default_path(&path, &err);
		if (rc && !err.msg[0])
			ai_errf(&err, AI_EX_OSERR, "out of memory");
	}
	if (rc) {
		config_release(&cfg);
		if (!err.msg[0])
			ai_errf(&err, AI_EX_OSERR, "out of memory");
		cli_die_err(&err);
	}
	if (o.cache_stats) {
		print_cache_stats(&o, &c, &cfg, path.data, since, until);
		buf_release(&path);
		config_release(&cfg);
		return cli_finish(0);
	}
	if (ledger_open_existing(&l, path.data, &err)) {
		/* Nothing recorded yet is no error; a --db FILE that is missing is. */
		if (err.code == AI_EX_NOINPUT && !o.db && access(path.data, F_OK) < 0 && errno == ENOENT) {
			if (!c.quiet)
				cli_warn("no usage recorded yet at '%s'%s", path.data,
					 cfg.ledger ? "" : " (the ledger is turned off: AI_LEDGER=0 or ledger = no)");
			buf_release(&path);
			config_release(&cfg);
			return cli_finish(0);
		}
		buf_release(&path);
		config_release(&cfg);
		cli_die_err(&err);
	}
	/* A ledger from before the rollups (or rows an older ai-tools
	 * wrote since) is folded in now, with progress on a terminal.  It
	 * may be interrupted: the next run goes on where this one stopped.
	 * If another writer holds the lock, the report reads the rows that
	 * are left raw instead. */
	ledger_set_keep(&l, cfg.ledger_keep);
	/* A report never waits on a writer: a fold that cannot have the lock at once is left for later. */
	ledger_set_busy_timeout(&l, 100);
	if (ledger_fold(&l, isatty(STDERR_FILENO) && !c.quiet ? fold_progress : NULL, &c, &err)) {
		if (err.code != AI_EX_TEMPFAIL)
			cli_die_err(&err);
		ai_err_clear(&err);
	}
	if (fold_shown)
		fputs("\n", stderr);
	if (o.chart || o.html) {
		rc = charts(&l, &o, &c, since, until, &err);
	} else {
		size_t lines = 0;

		rc = report(&l, &o, &c, &cfg, since, until, &lines, &err);
		if (!rc && lines && !c.json && !o.by_given && isatty(STDOUT_FILENO))
			chart_below(&l, &o, &c, since, until, lines);
	}
	ledger_close(&l);
	buf_release(&path);
	config_release(&cfg);
	if (rc)
		cli_die_err(&err);
	return cli_finish(0);
}
