/*
 * conv_bench - what keeping conversations costs ai-stream, and what the
 * log's search costs ai-usage --log.  Prints figures; never fails a build.
 *
 *   conv_bench [DIR] [N]
 *
 * In a fresh store under DIR (default /tmp):
 *  - keep: N runs of open + one exchange + close, as each ai-stream run
 *    pays (the answer itself aside);
 *  - the store grown to N exchanges of about 60 words each (made-up words,
 *    a few common, most rare), then its bytes on disk per exchange;
 *  - log: the 20 newest; a search for a common word (best 20 of many); a
 *    rare word; two words; each repeated, medians.
 */
#include "api/convstore.h"
#include "buf.h"
#include "clock.h"
#include "jsonval.h"
#include "bench.h"

#include <sys/stat.h>
#include <unistd.h>

static void report(const char *what, double *v, int n)
{
	double sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	printf("%-40s mean %8.3f ms  median %8.3f ms  p90 %8.3f ms\n", what, sum / n, v[n / 2],
	       v[(n * 9) / 10]);
}

/* A made-up word: w0..w9 are common, the rest of 50000 rare. */
static void word(char *out, size_t n)
{
	uint64_t r = bench_rng_next();
	unsigned k = (unsigned)(r % 4) ? (unsigned)((r >> 8) % 50000) : (unsigned)((r >> 8) % 10);

	snprintf(out, n, "w%u", k);
}

static char *text(int words)
{
	struct buf b;
	char w[16];

	buf_init(&b, 0);
	for (int i = 0; i < words; i++) {
		word(w, sizeof(w));
		buf_addf(&b, "%s%s", i ? " " : "", w);
	}
	return buf_detach(&b, NULL);
}

static int hits;

static int count(void *ud, const struct convstore_entry *e)
{
	(void)ud;
	(void)e;
	hits++;
	return 0;
}

static void search(struct convstore *s, const char *what, const char *words, int reps)
{
	double v[64];
	char label[80];
	struct ai_err err;

	for (int i = 0; i < reps; i++) {
		double t = bench_now();

		hits = 0;
		if (convstore_log(s, &(struct convstore_query){ .words = words, .until_ms = INT64_MAX, .limit = 20 },
				  count, NULL, &err)) {
			printf("conv_bench: %s\n", err.msg);
			return;
		}
		v[i] = (bench_now() - t) * 1e3;
	}
	snprintf(label, sizeof(label), "log %s (%d shown)", what, hits);
	report(label, v, reps);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20000, keep = n < 500 ? n : 500;
	char path[512], side[600];
	struct convstore s;
	struct ai_err err;
	struct stat st;
	double *v = calloc((size_t)keep, sizeof(*v)), t0, bytes = 0;
	int64_t id = 0;

	if (!v || n < 1)
		return 0;
	snprintf(path, sizeof(path), "%s/conv_bench.%d/conversations.db", dir, (int)getpid());
	for (int i = 0; i < keep; i++) {
		char *q = text(12), *a = text(60);
		json_object *m[2] = { jv_message("user", q), jv_message("assistant", a) };
		double t = bench_now();
		int64_t cid = 0;

		if (convstore_open(&s, path, true, &err) || convstore_add(&s, &cid, "gpt-4o-mini", m, 2, wall_ms(), &err)) {
			printf("conv_bench: %s\n", err.msg);
			return 0;
		}
		convstore_close(&s);
		v[i] = (bench_now() - t) * 1e3;
		json_object_put(m[0]);
		json_object_put(m[1]);
		free(q);
		free(a);
	}
	printf("# conv_bench: %d exchanges, store under %s\n", n, dir);
	report("keep: open + 1 exchange + close", v, keep);

	if (convstore_open(&s, path, true, &err)) {
		printf("conv_bench: %s\n", err.msg);
		return 0;
	}
	t0 = bench_now();
	for (int i = keep; i < n; i++) {
		char *q = text(12), *a = text(60);
		json_object *m[2] = { jv_message("user", q), jv_message("assistant", a) };

		/* A conversation of ten exchanges, then the next. */
		if (i % 10 == 0)
			id = 0;
		if (convstore_add(&s, &id, "gpt-4o-mini", m, 2, wall_ms(), &err)) {
			printf("conv_bench: %s\n", err.msg);
			return 0;
		}
		json_object_put(m[0]);
		json_object_put(m[1]);
		free(q);
		free(a);
	}
	if (n > keep)
		printf("%-40s %8.3f ms an exchange\n", "adding on an open store", (bench_now() - t0) * 1e3 / (n - keep));
	for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
		snprintf(side, sizeof(side), "%s%s", path, suffix);
		if (!stat(side, &st))
			bytes += (double)st.st_blocks * 512;
	}
	printf("%-40s %8.0f bytes an exchange (%.1f MiB on disk)\n", "store size", bytes / n, bytes / 1048576);
	search(&s, "newest", NULL, 15);
	search(&s, "common word", "w3", 15);
	search(&s, "rare word", "w31337", 15);
	search(&s, "two words", "w3 w7", 15);
	convstore_close(&s);
	free(v);
	return 0;
}
