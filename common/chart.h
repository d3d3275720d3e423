#ifndef AI_CHART_H
#define AI_CHART_H
/*
 * chart.h - cost and requests per day as pictures: bars for a terminal,
 * and one self-contained HTML page (inline SVG) for a mail from cron.
 *
 * A struct chart is a grid: one row per local calendar day of a range,
 * one column per key (a program or a model), and in each cell the
 * requests and the cost of that key on that day.  ai-usage fills it from
 * the ledger's report (ledger_report, by "day,program" or "day,model");
 * this file only draws it, into a struct buf, and knows nothing of the
 * ledger.
 *
 * Text: one line a day, "MM-DD <bar> <value>", the bar stacked from the
 * keys' shares in key order and scaled so that the largest day fills
 * the width given.  With UTF-8 the bars are block characters (eighths
 * of a cell where one key is drawn alone); in colour each key has its
 * colour, without it its own shade; in ASCII its own character.  A day
 * with a value too small for a cell still shows a sliver, so no day
 * that cost something reads as free.
 *
 * HTML: a complete document, no script, no style sheet or font from
 * elsewhere, one SVG bar chart for cost and one for requests, one <rect>
 * per day and key with a <title> giving the figure, the keys in a legend.
 * Every string from the ledger is escaped.
 */
#include "ai.h"
#include "buf.h"

/* What a chart shows. */
enum chart_what { CHART_COST, CHART_REQUESTS };

/* How a terminal chart may draw. */
#define CHART_UTF8  1u          /* block characters; else ASCII only */
#define CHART_COLOR 2u          /* SGR colours; else one shade or character per key */

struct chart {
	size_t ndays, nkeys;
	char (*days)[11];       /* "YYYY-MM-DD", oldest first */
	char **keys;            /* sorted; owned */
	long *requests;         /* ndays x nkeys, row-major */
	double *cost;           /* ndays x nkeys; NAN where unknown */
};

/*
 * Makes the rows: every local day from the one holding since_ms to the
 * one holding until_ms - 1, at most max_days (the latest ones kept).
 * No keys yet.  Fails only for want of memory (AI_EX_OSERR).
 */
int chart_init(struct chart *c, int64_t since_ms, int64_t until_ms, size_t max_days, struct ai_err *err);

/*
 * Adds what a key did on a day ("YYYY-MM-DD"); a day outside the rows
 * is ignored, a key not seen yet becomes a column.  Adding twice adds up.
 */
int chart_add(struct chart *c, const char *day, const char *key, long requests, double cost,
	      struct ai_err *err);

/* Frees everything; c may be zeroed or already released. */
void chart_release(struct chart *c);

/*
 * Appends a titled bar chart of what, width columns wide (at least 40
 * are used), to out.  flags: CHART_UTF8, CHART_COLOR.
 */
int chart_text(struct buf *out, const struct chart *c, enum chart_what what, int width, unsigned flags);

/* Money as ai-usage shows it: "$1.2500", "<$0.0001" for a crumb, "-" for NAN. */
void chart_usd(char *out, size_t n, double v);

/* Appends the HTML report (see above), title as its heading, to out. */
int chart_html(struct buf *out, const struct chart *c, const char *title);

#endif
