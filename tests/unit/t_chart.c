/* t_chart.c - bars per day: scaling, stacking, eighths, slivers, ASCII, colour, and the HTML page. */
#include "chart.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

static int64_t at(const char *day)
{
	struct tm tm = { 0 };

	if (sscanf(day, "%d-%d-%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
		abort();
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * 1000;
}

static size_t count(const char *s, const char *what)
{
	size_t n = 0;

	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The line of the day "MM-DD" in a text chart, without its newline. */
static char *line_of(const char *text, const char *mmdd, char *out, size_t n)
{
	const char *p = strstr(text, mmdd), *e;

	if (!p) {
		snprintf(out, n, "%s", "");
		return out;
	}
	e = strchr(p, '\n');
	snprintf(out, n, "%.*s", (int)(e ? e - p : (ptrdiff_t)strlen(p)), p);
	return out;
}

int main(void)
{
	struct chart c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	char l[512];

	setenv("TZ", "UTC", 1);
	tzset();
	ai_err_clear(&err);

	/* Days: the one holding since up to the one holding until - 1. */
	is_int(chart_init(&c, at("2024-01-10"), at("2024-01-13"), 366, &err), 0, "init");
	is_int((long)c.ndays, 3, "three days");
	is_str(c.days[0], "2024-01-10", "first day");
	is_str(c.days[2], "2024-01-12", "last day");
	chart_release(&c);
	is_int(chart_init(&c, 0, at("2024-01-13"), 7, &err), 0, "init from 1970 with a cap");
	is_int((long)c.ndays, 7, "the cap keeps the latest days");
	is_str(c.days[6], "2024-01-12", "ending at the last");
	chart_release(&c);
	/* Across a change to summer time, every day once. */
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	is_int(chart_init(&c, at("2024-03-30"), at("2024-04-02"), 366, &err), 0, "init over DST");
	is_int((long)c.ndays, 3, "three days over the change");
	is_str(c.days[1], "2024-03-31", "the short day is there");
	chart_release(&c);
	setenv("TZ", "UTC", 1);
	tzset();

	chart_init(&c, at("2024-01-10"), at("2024-01-13"), 366, &err);
	is_int(chart_add(&c, "2024-01-10", "b", 2, 0.5, &err), 0, "add");
	chart_add(&c, "2024-01-11", "a", 4, 1.0, &err);
	chart_add(&c, "2024-01-11", "b", 4, 1.0, &err);
	chart_add(&c, "2024-01-12", "a", 1, 0.001, &err);
	is_int(chart_add(&c, "2023-12-31", "a", 99, 99, &err), 0, "a day outside is ignored");
	chart_add(&c, "2024-01-12", "c", 1, NAN, &err);
	is_int((long)c.nkeys, 3, "three keys");

	/* ASCII: one character per key in key order (a, b, c), the largest day full width. */
	chart_text(&b, &c, CHART_COST, 40, 0);
	is_str(line_of(b.data, "01-11", l, sizeof(l)),
	       "01-11 #############============= $2.0000",
	       "the largest day fills the bar (40 - 6 - 1 - 7 = 26 cells), a then b");
	is_str(line_of(b.data, "01-10", l, sizeof(l)),
	       "01-10 =======                    $0.5000", "a quarter of it: 6.5 cells, rounded");
	/* $0.001 is under half a cell: a sliver still shows. */
	is_str(line_of(b.data, "01-12", l, sizeof(l)),
	       "01-12 #                          $0.0010", "a crumb is a sliver, not nothing");
	ok(strstr(b.data, "cost per day  # a  = b  + c\n") != NULL, "title and legend");
	ok(!strchr(b.data, '\033'), "no escape without CHART_COLOR");
	buf_reset(&b);

	chart_text(&b, &c, CHART_REQUESTS, 40, 0);
	is_str(line_of(b.data, "01-12", l, sizeof(l)),
	       "01-12 ####++++                         2", "requests: a day of two keys, stacked");
	buf_reset(&b);

	/* UTF-8: blocks and shades; eighths where one key stands alone in a full block. */
	chart_text(&b, &c, CHART_COST, 40, CHART_UTF8);
	ok(count(b.data, "\u2588") > 10, "full blocks for the first key");
	ok(count(b.data, "\u2593") > 10, "a shade for the second");
	is_str(line_of(b.data, "01-12", l, sizeof(l)), "01-12 \u258f                          $0.0010",
	       "a crumb is an eighth of a cell");
	buf_reset(&b);

	/* Colour: the key's colour around its run, reset after. */
	chart_text(&b, &c, CHART_COST, 40, CHART_UTF8 | CHART_COLOR);
	ok(strstr(b.data, "\033[32m\u2588") != NULL, "first key green");
	ok(strstr(b.data, "\033[33m\u2588") != NULL, "second key yellow, a full block too");
	is_int((long)count(b.data, "\033[0m"), (long)count(b.data, "\033[3"), "every colour is reset");
	buf_reset(&b);

	/* An unknown cost alone shows "-"; known with unknown shows the known part. */
	chart_release(&c);
	chart_init(&c, at("2024-01-10"), at("2024-01-11"), 366, &err);
	chart_add(&c, "2024-01-10", "x", 3, NAN, &err);
	chart_text(&b, &c, CHART_COST, 40, 0);
	is_str(line_of(b.data, "01-10", l, sizeof(l)), "01-10                                  -",
	       "only unknown costs: -");
	buf_reset(&b);
	chart_add(&c, "2024-01-10", "x", 1, 0.25, &err);
	chart_text(&b, &c, CHART_COST, 40, 0);
	ok(strstr(b.data, "$0.2500") != NULL, "the known part counts once known");
	buf_reset(&b);

	/* HTML: one group a day per chart, names escaped, nothing from elsewhere. */
	chart_add(&c, "2024-01-10", "<script>alert(1)</script>", 1, 1.0, &err);
	is_int(chart_html(&b, &c, "t & <u>"), 0, "html");
	is_int((long)count(b.data, "<g class=\"day\">"), 2, "a bar group a day, in each of two charts");
	ok(!strstr(b.data, "<script"), "a hostile name is escaped");
	ok(strstr(b.data, "&lt;script&gt;") != NULL, "and shown");
	ok(strstr(b.data, "<title>t &amp; &lt;u&gt;</title>") != NULL, "the title escaped");
	ok(!strstr(b.data, "src=") && !strstr(b.data, "href="), "nothing loaded from elsewhere");
	buf_reset(&b);

	/* No keys at all: the days still show, empty. */
	chart_release(&c);
	chart_init(&c, at("2024-01-10"), at("2024-01-12"), 366, &err);
	is_int(chart_text(&b, &c, CHART_REQUESTS, 40, 0), 0, "an empty grid draws");
	is_str(line_of(b.data, "01-11", l, sizeof(l)), "01-11                                  0", "an empty day");
	chart_release(&c);
	chart_release(&c);
	buf_release(&b);
	return tap_done();
}
