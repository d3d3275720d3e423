/* chart.c - cost and requests per day as bars and as an HTML page: see chart.h. */
#include "chart.h"

#include <math.h>
#include <time.h>

/* Money as ai-usage writes it everywhere: four decimals, <$0.0001 for a crumb. */
void chart_usd(char *out, size_t n, double v)
{
	if (isnan(v))
		snprintf(out, n, "-");
	else if (v > 0 && v < 0.00005)
		snprintf(out, n, "<$0.0001");
	else
		snprintf(out, n, "$%.4f", v == 0 ? 0.0 : v);
}

int chart_init(struct chart *c, int64_t since_ms, int64_t until_ms, size_t max_days, struct ai_err *err)
{
	time_t t;
	struct tm tm;
	size_t cap = 0;

	memset(c, 0, sizeof(*c));
	/* Only the latest max_days are kept: start a little before them, not in 1970. */
	if (max_days < 1000000 && until_ms - since_ms > (int64_t)(max_days + 2) * 86400000)
		since_ms = until_ms - (int64_t)(max_days + 2) * 86400000;
	t = (time_t)((since_ms < 0 ? 0 : since_ms) / 1000);
	if (!localtime_r(&t, &tm))
		return ai_errf(err, AI_EX_SOFTWARE, "cannot read the local time of %lld", (long long)t);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	for (;;) {
		time_t d;

		tm.tm_isdst = -1;
		d = mktime(&tm);
		if (d == (time_t)-1 || (int64_t)d * 1000 >= until_ms)
			break;
		if (c->ndays == cap) {
			void *p;

			cap = cap ? 2 * cap : 32;
			p = realloc(c->days, cap * sizeof(*c->days));
			if (!p) {
				chart_release(c);
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			}
			c->days = p;
		}
		strftime(c->days[c->ndays++], sizeof(*c->days), "%Y-%m-%d", &tm);
		tm.tm_mday++;
		tm.tm_hour = 0;
	}
	if (c->ndays > max_days) {
		memmove(c->days, c->days + (c->ndays - max_days), max_days * sizeof(*c->days));
		c->ndays = max_days;
	}
	if (c->ndays) {
		c->requests = calloc(c->ndays, sizeof(*c->requests));
		c->cost = calloc(c->ndays, sizeof(*c->cost));
		if (!c->requests || !c->cost) {
			chart_release(c);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	return 0;
}

/* Widens the grid by one column for key. */
static int add_key(struct chart *c, const char *key)
{
	size_t k = c->nkeys, w = k + 1;
	long *req = calloc(c->ndays * w, sizeof(*req));
	double *cost = calloc(c->ndays * w, sizeof(*cost));
	char **keys = realloc(c->keys, w * sizeof(*keys));
	char *dup = strdup(key);

	if (keys)
		c->keys = keys;
	if (!req || !cost || !keys || !dup) {
		free(req);
		free(cost);
		free(dup);
		return -1;
	}
	for (size_t d = 0; d < c->ndays; d++) {
		for (size_t i = 0; i < k; i++) {
			req[d * w + i] = c->requests[d * k + i];
			cost[d * w + i] = c->cost[d * k + i];
		}
		cost[d * w + k] = NAN;  /* no cost known yet */
	}
	free(c->requests);
	free(c->cost);
	c->requests = req;
	c->cost = cost;
	c->keys[k] = dup;
	c->nkeys = w;
	return 0;
}

int chart_add(struct chart *c, const char *day, const char *key, long requests, double cost,
	      struct ai_err *err)
{
	size_t lo = 0, hi = c->ndays, k;
	int cmp = 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		cmp = strcmp(c->days[mid], day);
		if (cmp == 0) {
			lo = mid;
			break;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (cmp != 0)
		return 0;
	for (k = 0; k < c->nkeys; k++)
		if (strcmp(c->keys[k], key) == 0)
			break;
	if (k == c->nkeys && add_key(c, key))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	c->requests[lo * c->nkeys + k] += requests;
	/* NAN (unknown) stays NAN until a known cost is added: then the known part counts. */
	if (!isnan(cost))
		c->cost[lo * c->nkeys + k] = isnan(c->cost[lo * c->nkeys + k]) ? cost :
						c->cost[lo * c->nkeys + k] + cost;
	return 0;
}

void chart_release(struct chart *c)
{
	for (size_t k = 0; k < c->nkeys; k++)
		free(c->keys[k]);
	free(c->keys);
	free(c->days);
	free(c->requests);
	free(c->cost);
	memset(c, 0, sizeof(*c));
}

/* The columns in key order (they are made in the order first seen). */
static size_t *key_order(const struct chart *c)
{
	size_t *o = malloc((c->nkeys ? c->nkeys : 1) * sizeof(*o));

	if (!o)
		return NULL;
	for (size_t i = 0; i < c->nkeys; i++) {
		size_t j = i;

		while (j > 0 && strcmp(c->keys[o[j - 1]], c->keys[i]) > 0) {
			o[j] = o[j - 1];
			j--;
		}
		o[j] = i;
	}
	return o;
}

static double cell(const struct chart *c, enum chart_what what, size_t d, size_t k)
{
	double v = what == CHART_COST ? c->cost[d * c->nkeys + k] : (double)c->requests[d * c->nkeys + k];

	return isnan(v) || v < 0 ? 0 : v;
}

/* The total of the largest day (0 for none), the top of the scale. */
static double tallest_day(const struct chart *c, enum chart_what what)
{
	double max = 0;

	for (size_t d = 0; d < c->ndays; d++) {
		double t = 0;

		for (size_t k = 0; k < c->nkeys; k++)
			t += cell(c, what, d, k);
		if (t > max)
			max = t;
	}
	return max;
}

/* The day's figure as its line shows it. */
static void day_label(const struct chart *c, enum chart_what what, size_t d, char *out, size_t n)
{
	double sum = 0;
	long req = 0;
	bool known = false;

	for (size_t k = 0; k < c->nkeys; k++) {
		double v = c->cost[d * c->nkeys + k];

		req += c->requests[d * c->nkeys + k];
		if (!isnan(v)) {
			sum += v;
			known = true;
		}
	}
	if (what == CHART_REQUESTS)
		snprintf(out, n, "%ld", req);
	else
		chart_usd(out, n, known || !req ? sum : NAN);
}

static const int palette[] = { 32, 33, 34, 35, 36, 31, 92, 93, 94, 95, 96, 91 };
static const char *const shades[] = { "\u2588", "\u2593", "\u2592", "\u2591" };
static const char ascii[] = "#=+%*o:@";
/* Eighths of a cell, 1 to 7. */
static const char *const eighths[] = { "", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589" };

#define NPAL (sizeof(palette) / sizeof(palette[0]))
#define NSHADE (sizeof(shades) / sizeof(shades[0]))
#define NASCII (sizeof(ascii) - 1)

/* The i-th key's glyph: a full cell of its colour, shade or character. */
static int glyph(struct buf *out, size_t i, unsigned flags, size_t cells, size_t part8)
{
	int rc = 0;

	if (!cells && !part8)
		return 0;
	if (flags & CHART_COLOR)
		rc |= buf_addf(out, "\033[%dm", palette[i % NPAL]);
	for (size_t j = 0; j < cells; j++) {
		if (!(flags & CHART_UTF8))
			rc |= buf_addch(out, ascii[i % NASCII]);
		else
			rc |= buf_addstr(out, (flags & CHART_COLOR) ? shades[0] : shades[i % NSHADE]);
	}
	if (part8)
		rc |= buf_addstr(out, eighths[part8]);
	if (flags & CHART_COLOR)
		rc |= buf_addstr(out, "\033[0m");
	return rc;
}

/* Eighths are drawn only where the key's glyph is a full block. */
static bool has_eighths(size_t i, unsigned flags)
{
	return (flags & CHART_UTF8) && ((flags & CHART_COLOR) || i % NSHADE == 0);
}

/* Display width of a legend key: its code points (keys are program and model names). */
static size_t cols(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static int legend(struct buf *out, const struct chart *c, const size_t *ord, size_t col, int width,
		  unsigned flags)
{
	int rc = 0;

	for (size_t i = 0; i < c->nkeys; i++) {
		const char *k = c->keys[ord[i]];
		size_t w = 2 + 1 + cols(k);

		if (col + w > (size_t)width && col > 2) {
			rc |= buf_addstr(out, "\n ");
			col = 1;
		}
		rc |= buf_addstr(out, "  ");
		rc |= glyph(out, i, flags, 1, 0);
		rc |= buf_addf(out, " %s", k);
		col += w;
	}
	return rc | buf_addch(out, '\n');
}

int chart_text(struct buf *out, const struct chart *c, enum chart_what what, int width, unsigned flags)
{
	const char *title = what == CHART_COST ? "cost per day" : "requests per day";
	size_t *ord = key_order(c), valw = 1, barw;
	double max;
	char v[64];
	int rc = 0;

	if (!ord)
		return -1;
	if (width < 40)
		width = 40;
	max = tallest_day(c, what);
	for (size_t d = 0; d < c->ndays; d++) {
		day_label(c, what, d, v, sizeof(v));
		if (strlen(v) > valw)
			valw = strlen(v);
	}
	/* "MM-DD " + bar + " " + value */
	barw = (size_t)width > 6 + 1 + valw + 10 ? (size_t)width - 6 - 1 - valw : 10;
	rc |= buf_addstr(out, title);
	rc |= legend(out, c, ord, strlen(title), width, flags);
	for (size_t d = 0; d < c->ndays; d++) {
		double cum = 0, scale = max > 0 ? (double)barw / max : 0;
		size_t drawn = 0, nonzero = 0, first = 0;

		for (size_t i = 0; i < c->nkeys; i++)
			if (cell(c, what, d, ord[i]) > 0 && !nonzero++)
				first = i;
		rc |= buf_addf(out, "%s ", c->days[d] + 5);
		if (nonzero == 1 && has_eighths(first, flags)) {
			long e = lround(cell(c, what, d, ord[first]) * scale * 8);

			if (e == 0)
				e = 1;
			rc |= glyph(out, first, flags, (size_t)e / 8, (size_t)e % 8);
			drawn = ((size_t)e + 7) / 8;
		} else {
			for (size_t i = 0; i < c->nkeys; i++) {
				double x = cell(c, what, d, ord[i]);
				size_t end;

				if (x <= 0)
					continue;
				cum += x;
				end = (size_t)lround(cum * scale);
				if (end > drawn) {
					rc |= glyph(out, i, flags, end - drawn, 0);
					drawn = end;
				}
			}
			/* A day too small for a cell still shows. */
			if (nonzero && !drawn) {
				if (has_eighths(first, flags))
					rc |= glyph(out, first, flags, 0, 1);
				else
					rc |= glyph(out, first, flags, 1, 0);
				drawn = 1;
			}
		}
		day_label(c, what, d, v, sizeof(v));
		rc |= buf_addf(out, "%*s %*s\n", (int)(barw > drawn ? barw - drawn : 0), "", (int)valw, v);
	}
	free(ord);
	return rc ? -1 : 0;
}

/* ---- HTML ---- */

static int add_esc(struct buf *out, const char *s)
{
	int rc = 0;

	for (; *s; s++) {
		switch (*s) {
		case '<': rc |= buf_addstr(out, "&lt;"); break;
		case '>': rc |= buf_addstr(out, "&gt;"); break;
		case '&': rc |= buf_addstr(out, "&amp;"); break;
		case '"': rc |= buf_addstr(out, "&quot;"); break;
		case '\'': rc |= buf_addstr(out, "&#39;"); break;
		default:
			/* No control character is allowed in XML 1.0 text. */
			rc |= (unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ?
				      buf_addstr(out, "\xef\xbf\xbd") :
				      buf_addch(out, *s);
		}
	}
	return rc;
}

static const char *const hcolor[] = { "#2e7d32", "#f9a825", "#1565c0", "#8e24aa", "#00838f", "#c62828",
				      "#66bb6a", "#ffd54f", "#64b5f6", "#ce93d8", "#4dd0e1", "#ef9a9a" };
#define NHCOLOR (sizeof(hcolor) / sizeof(hcolor[0]))

#define SVG_H 220
#define SVG_TOP 16
#define SVG_BOTTOM 40
#define SVG_LEFT 70
#define BAR_W 18
#define BAR_GAP 6

static int svg(struct buf *out, const struct chart *c, const size_t *ord, enum chart_what what)
{
	const char *name = what == CHART_COST ? "cost per day" : "requests per day";
	int plot = SVG_H - SVG_TOP - SVG_BOTTOM;
	size_t w = SVG_LEFT + c->ndays * (BAR_W + BAR_GAP) + BAR_GAP;
	double max;
	char v[64];
	int rc = 0;

	max = tallest_day(c, what);
	rc |= buf_addf(out, "<h2>%s</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%zu\" height=\"%d\""
			    " viewBox=\"0 0 %zu %d\" role=\"img\" aria-label=\"%s\">\n",
		       what == CHART_COST ? "Cost per day" : "Requests per day", w, SVG_H, w, SVG_H, name);
	if (what == CHART_COST)
		chart_usd(v, sizeof(v), max);
	else
		snprintf(v, sizeof(v), "%.0f", max);
	rc |= buf_addf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%zu\" y2=\"%d\" stroke=\"#888\"/>\n"
			    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%s</text>\n"
			    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">0</text>\n",
		       SVG_LEFT, SVG_TOP + plot, w, SVG_TOP + plot, SVG_LEFT - 4, SVG_TOP + 10, v, SVG_LEFT - 4,
		       SVG_TOP + plot);
	for (size_t d = 0; d < c->ndays; d++) {
		double cum = 0;
		size_t x = SVG_LEFT + BAR_GAP + d * (BAR_W + BAR_GAP);

		day_label(c, what, d, v, sizeof(v));
		rc |= buf_addf(out, "<g class=\"day\"><title>%s: %s</title>", c->days[d], v);
		for (size_t i = 0; i < c->nkeys; i++) {
			double val = cell(c, what, d, ord[i]), y0, y1;

			if (val <= 0 || max <= 0)
				continue;
			y0 = SVG_TOP + plot - cum / max * plot;
			cum += val;
			y1 = SVG_TOP + plot - cum / max * plot;
			rc |= buf_addf(out, "<rect x=\"%zu\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>",
				       x, y1, BAR_W, y0 - y1 < 0.5 ? 0.5 : y0 - y1, hcolor[i % NHCOLOR]);
			rc |= add_esc(out, c->keys[ord[i]]);
			if (what == CHART_COST) {
				chart_usd(v, sizeof(v), val);
				rc |= buf_addf(out, " %s: %s</title></rect>", c->days[d], v);
			} else {
				rc |= buf_addf(out, " %s: %.0f</title></rect>", c->days[d], val);
			}
		}
		/* Every day labelled when they fit, else every seventh. */
		if (c->ndays <= 14 || d % 7 == 0 || d + 1 == c->ndays)
			rc |= buf_addf(out, "<text x=\"%zu\" y=\"%d\" font-size=\"10\" transform=\"rotate(45 %zu %d)\">%s</text>",
				       x, SVG_TOP + plot + 12, x, SVG_TOP + plot + 12, c->days[d] + 5);
		rc |= buf_addstr(out, "</g>\n");
	}
	return rc | buf_addstr(out, "</svg>\n");
}

int chart_html(struct buf *out, const struct chart *c, const char *title)
{
	size_t *ord = key_order(c);
	int rc = 0;

	if (!ord)
		return -1;
	rc |= buf_addstr(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>");
	rc |= add_esc(out, title);
	rc |= buf_addstr(out, "</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}"
			      "ul.legend{list-style:none;padding:0}ul.legend li{display:inline-block;margin-right:1.5em}"
			      "ul.legend span{display:inline-block;width:.8em;height:.8em;margin-right:.3em}</style>\n"
			      "</head>\n<body>\n<h1>");
	rc |= add_esc(out, title);
	rc |= buf_addstr(out, "</h1>\n");
	if (c->ndays)
		rc |= buf_addf(out, "<p>%s to %s</p>\n", c->days[0], c->days[c->ndays - 1]);
	rc |= buf_addstr(out, "<ul class=\"legend\">\n");
	for (size_t i = 0; i < c->nkeys; i++) {
		rc |= buf_addf(out, "<li><span style=\"background:%s\"></span>", hcolor[i % NHCOLOR]);
		rc |= add_esc(out, c->keys[ord[i]]);
		rc |= buf_addstr(out, "</li>\n");
	}
	rc |= buf_addstr(out, "</ul>\n");
	rc |= svg(out, c, ord, CHART_COST);
	rc |= svg(out, c, ord, CHART_REQUESTS);
	rc |= buf_addstr(out, "</body>\n</html>\n");
	free(ord);
	return rc ? -1 : 0;
}
