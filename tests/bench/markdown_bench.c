/*
 * markdown_bench.c - what rendering Markdown costs a streamed answer.
 *
 *  - latency: the time from a newline's arrival to its rendered line, for
 *    each kind of line (a paragraph line of about 300 bytes with emphasis,
 *    code and a link; a list item; a code line; the line that ends a
 *    table of 20 rows, which renders the whole table).  The rest of the
 *    line is fed first, untimed, as the deltas before the newline would
 *    be; then the piece holding the newline is timed through the whole
 *    terminal path: termsafe_feed, then markdown_feed.  Median, 99th
 *    percentile and maximum.  Goal (issue 18): under 1 ms.
 *  - throughput: a 1 MiB answer of mixed Markdown rendered in 16-byte
 *    pieces (stream deltas) and whole, plain prose too, in MB/s of input
 *    on one core (CPU time, not wall time).  Goal: at least 100 MB/s.
 *
 * Build and run (tests/bench/markdown.sh does both):
 *   cc -std=c11 -O2 -Icommon -o build/bench/markdown_bench tests/bench/markdown_bench.c build/libai.a
 * A benchmark: it prints figures and never fails.
 */
#include "markdown.h"
#include "termsafe.h"
#include "bench.h"

#include <stdlib.h>

static const char para[] =
	"The **grinder** matters more than the machine: a *finer* grind slows the shot, "
	"and `18 g` in should give about `36 g` out in 25 to 30 seconds; see the "
	"[brewing guide](https://example.com/guide) for the ratios, and ~~ignore~~ the "
	"old advice about tamping pressure, which changes little once the grind is right.\n";
static const char item[] = "- **Dose**: 18 g, weighed, not scooped; *always* the same basket\n";
static const char code[] = "    for (size_t i = 0; i < n; i++) sum += weights[i] * x[i]; /* dot */\n";

/* CPU seconds of this process: on a loaded machine the wall clock measures the others. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void add(struct buf *b, const char *s)
{
	if (buf_addstr(b, s))
		exit(1);
}

/* A mixed answer of at least n bytes: headings, prose, lists, code, tables, quotes. */
static void make_doc(struct buf *b, size_t n)
{
	while (b->len < n) {
		add(b, "## Pulling a better shot\n\n");
		add(b, para);
		add(b, para);
		add(b, "\n");
		add(b, item);
		add(b, item);
		add(b, "  1. nested *step* with `code`\n\n");
		add(b, "```c\n");
		for (int i = 0; i < 8; i++)
			add(b, code);
		add(b, "```\n\n| grind | time | taste |\n|:--|--:|:-:|\n");
		for (int i = 0; i < 6; i++)
			add(b, "| **fine** | 32 s | bitter |\n");
		add(b, "\n> A quote with *emphasis* and a [link](https://e.example).\n\n---\n\n");
	}
}

static void render_all(const char *s, size_t n, size_t piece, struct buf *out)
{
	struct markdown m;
	struct termsafe ts;
	struct buf safe;
	struct ai_err e;

	buf_init(&safe, 0);
	termsafe_init(&ts);
	markdown_init(&m, 100, true);
	for (size_t at = 0; at < n; at += piece) {
		size_t k = n - at < piece ? n - at : piece;

		buf_reset(&safe);
		buf_reset(out);
		if (termsafe_feed(&ts, s + at, k, &safe, &e) ||
		    markdown_feed(&m, safe.data, safe.len, out, &e))
			exit(1);
	}
	if (markdown_end(&m, out, &e))
		exit(1);
	markdown_release(&m);
	buf_release(&safe);
}

static void throughput(const char *what, const char *s, size_t n, size_t piece)
{
	struct buf out;
	double t0, t;
	int reps = 0;

	buf_init(&out, 0);
	t0 = cpu_now();
	do {
		render_all(s, n, piece, &out);
		reps++;
	} while ((t = cpu_now() - t0) < 1.0);
	printf("throughput %-34s %8.1f MB/s  (%d x %.1f MiB in %.2f s of CPU)\n", what,
	       (double)n * reps / t / 1e6, reps, (double)n / (1 << 20), t);
	buf_release(&out);
}

/*
 * Latency of lines of one kind: before (untimed) sets the context, then
 * for each of runs lines, line minus its newline goes in untimed and the
 * newline is timed.  A table's last row is timed with the blank line
 * after it (the newline that ends the table).
 */
static void latency(const char *what, const char *before, const char *line, int runs)
{
	struct markdown m;
	struct termsafe ts;
	struct buf safe, out;
	struct ai_err e;
	double *d = malloc((size_t)runs * sizeof(*d));
	size_t n = strlen(line);

	buf_init(&safe, 0);
	buf_init(&out, 0);
	termsafe_init(&ts);
	markdown_init(&m, 100, true);
	for (int r = 0; r < runs; r++) {
		double t0;

		buf_reset(&out);
		if (before && markdown_feed(&m, before, strlen(before), &out, &e))
			exit(1);
		if (markdown_feed(&m, line, n - 1, &out, &e))
			exit(1);
		buf_reset(&out);
		t0 = bench_now();
		buf_reset(&safe);
		if (termsafe_feed(&ts, "\n", 1, &safe, &e) || markdown_feed(&m, safe.data, safe.len, &out, &e))
			exit(1);
		d[r] = bench_now() - t0;
		if (!out.len)
			printf("(nothing rendered for %s)\n", what);
	}
	qsort(d, (size_t)runs, sizeof(*d), bench_cmp_dbl);
	printf("latency    %-34s median %7.2f us  p99 %7.2f us  max %7.2f us  (%d lines)\n", what,
	       d[runs / 2] * 1e6, d[runs * 99 / 100] * 1e6, d[runs - 1] * 1e6, runs);
	markdown_release(&m);
	buf_release(&safe);
	buf_release(&out);
	free(d);
}

int main(void)
{
	struct buf doc, prose, table;

	buf_init(&doc, 0);
	buf_init(&prose, 0);
	buf_init(&table, 0);
	make_doc(&doc, 1 << 20);
	while (prose.len < (1 << 20))
		add(&prose, "Plain prose without any markup at all, the commonest kind of line in an answer "
		    "and the one every reader sees, wrapped at the terminal's width as it goes.\n");
	add(&table, "\n| grind | time | taste |\n|:--|--:|:-:|\n");
	for (int i = 0; i < 19; i++)
		add(&table, "| **fine** | 32 s | bitter |\n");
	add(&table, "| medium | 27 s | sweet |\n");

	latency("paragraph line (300 B)", NULL, para, 20000);
	latency("list item", NULL, item, 20000);
	latency("code line", "```c\n", code, 20000);
	latency("end of a 20-row table", table.data, "\n", 2000);

	throughput("mixed Markdown, 16-byte pieces", doc.data, doc.len, 16);
	throughput("mixed Markdown, whole", doc.data, doc.len, doc.len);
	throughput("plain prose, 16-byte pieces", prose.data, prose.len, 16);
	buf_release(&doc);
	buf_release(&prose);
	buf_release(&table);
	return 0;
}
