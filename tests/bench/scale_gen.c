/*
 * scale_gen - the usage ledger at volume (issue 20).  Prints figures;
 * never fails a build.
 *
 *   scale_gen fill DB N DAYS [KEEP]  appends N calls spread evenly over the
 *                                    DAYS days that end now, in time order,
 *                                    through ledger_append_many (1,000 a
 *                                    transaction), keeping raw rows KEEP days
 *                                    (default 30; pruned as it goes, as in use)
 *   scale_gen budget DB RUNS         ledger_check_budget on an open ledger,
 *                                    RUNS times: CPU per check
 *   scale_gen write DB RUNS          CPU per call appended singly, and per
 *                                    call in 64-row batch wake-ups
 *   scale_gen fold DB                folds what is not folded (a schema-1
 *                                    ledger's first open): rows per second
 *   scale_gen cache DIR N            N answers of 370 bytes put in the
 *                                    response cache at DIR (cap 4 GiB), then
 *                                    read back: bytes on disk an entry, CPU
 *                                    per hit
 *
 * Rows look like a busy day's: five programs, four models, two hosts,
 * 10% hits, 2% errors, latencies log-normal around 800 ms.
 */
#include "api/cache.h"
#include "api/ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static uint64_t s = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

/* A count from the command line: a whole number >= 0, else exit 64. */
static long arg_long(const char *a)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(a, &end, 10);
	if (errno || end == a || *end || v < 0) {
		fprintf(stderr, "scale_gen: '%s' is not a count\n", a);
		exit(64);
	}
	return v;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void row(struct ledger_row *r, int64_t ts)
{
	static const char *progs[] = { "ai-summarize", "ai-batch", "ai-ask", "ai-index", "ai-agent" };
	static const char *models[] = { "gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "o3-mini" };
	static const char *hosts[] = { "api.openai.com", "openrouter.ai" };
	double u1 = ((double)(rnd() >> 11) + 1) / 9007199254740993.0, u2 = (double)(rnd() >> 11) / 9007199254740992.0;

	memset(r, 0, sizeof(*r));
	r->ts_ms = ts;
	r->program = progs[rnd() % 5];
	r->model = models[rnd() % 4];
	r->host = hosts[rnd() % 8 == 0];
	r->prompt_tokens = 200 + (long)(rnd() % 3000);
	r->completion_tokens = (long)(rnd() % 600);
	r->latency_ms = (long)(800 * exp(0.6 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2)));
	r->status = rnd() % 50 ? 200 : 429;
	r->cached = rnd() % 10 == 0;
	r->batch = rnd() % 5 == 0;
	r->cost = r->cached ? 0 : (double)(r->prompt_tokens * 15 + r->completion_tokens * 60) / 1e8;
	r->saved = r->cached ? 0.0002 : NAN;
}

static int fail(const struct ai_err *e)
{
	fprintf(stderr, "scale_gen: %s\n", e->msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct ledger l;
	struct ai_err err;
	static struct ledger_row rows[1000];

	if (argc < 3) {
		fprintf(stderr, "usage: scale_gen fill|budget|write|fold DB [ARGS]\n");
		return 64;
	}
	ai_err_clear(&err);
	if (!strcmp(argv[1], "cache") && argc >= 4) {
		struct cache c;
		struct cache_stats st;
		long n = arg_long(argv[3]);
		char val[370], k[32];
		unsigned char key[CACHE_KEY_LEN];
		struct buf out = BUF_INIT;
		double c0;
		long hits = 0;

		memset(val, 'a', sizeof(val));
		if (cache_open(&c, argv[2], 0, (uint64_t)4 << 30, &err))
			return fail(&err);
		for (long i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "%ld", i);
			cache_key(k, strlen(k), key);
			if (cache_put(&c, key, val, sizeof(val), &err))
				return fail(&err);
		}
		if (cache_stats(&c, &st, &err))
			return fail(&err);
		printf("cache: %" PRIu64 " entries, %.1f MB of answers, %.1f MB on disk: %.0f bytes on disk an entry\n",
		       st.entries, (double)st.bytes / 1e6, (double)(st.bytes_on_disk + st.dir_bytes) / 1e6,
		       (double)(st.bytes_on_disk + st.dir_bytes) / (double)(st.entries ? st.entries : 1));
		c0 = cpu_s();
		for (long i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "%ld", i);
			cache_key(k, strlen(k), key);
			buf_reset(&out);
			hits += cache_get(&c, key, &out);
		}
		printf("cache: %.1f us CPU a hit (%ld of %ld)\n", (cpu_s() - c0) * 1e6 / (double)n, hits, n);
		buf_release(&out);
		cache_close(&c);
		return 0;
	}
	if (ledger_open(&l, argv[2], &err))
		return fail(&err);
	if (!strcmp(argv[1], "fill") && argc >= 5) {
		long long n = atoll(argv[3]), done = 0;
		double days = atof(argv[4]), c0 = cpu_s(), w0 = wall_s();
		int64_t end = wall_ms(), span = (int64_t)(days * 86400000), t0 = end - span;

		ledger_set_keep(&l, argc > 5 ? arg_long(argv[5]) : 30);
		while (done < n) {
			size_t k = n - done < 1000 ? (size_t)(n - done) : 1000;

			for (size_t i = 0; i < k; i++)
				row(&rows[i], t0 + (int64_t)((double)span * (double)(done + (long long)i) / (double)n));
			/* The pruning of a month of use, paced by the rows' own clock. */
			if (ledger_append_many(&l, rows, k, &err))
				return fail(&err);
			if (done % 100000 == 0) {
				long gone;

				do
					ledger_prune(&l, rows[k - 1].ts_ms, LEDGER_PRUNE_CHUNK, &gone, &err);
				while (gone == LEDGER_PRUNE_CHUNK);
			}
			done += (long long)k;
		}
		printf("fill: %lld calls over %g days: %.2f us CPU a call in 1000-row transactions (%.1f s wall)\n",
		       n, days, (cpu_s() - c0) * 1e6 / (double)n, wall_s() - w0);
	} else if (!strcmp(argv[1], "budget") && argc >= 4) {
		long runs = arg_long(argv[3]);
		double c0 = cpu_s(), spent = 0;

		for (long i = 0; i < runs; i++)
			if (ledger_spent_today(&l, &spent, &err))
				return fail(&err);
		printf("budget check: %.1f us CPU a call (today's spend $%.2f)\n", (cpu_s() - c0) * 1e6 / (double)runs, spent);
	} else if (!strcmp(argv[1], "write") && argc >= 4) {
		long runs = arg_long(argv[3]);
		double c0 = cpu_s();

		ledger_set_keep(&l, 0);
		for (long i = 0; i < runs; i++) {
			row(&rows[0], wall_ms());
			if (ledger_append(&l, &rows[0], &err))
				return fail(&err);
		}
		printf("write: %.1f us CPU a call appended singly\n", (cpu_s() - c0) * 1e6 / (double)runs);
		c0 = cpu_s();
		for (long i = 0; i < runs; i += 64) {
			for (int j = 0; j < 64; j++)
				row(&rows[j], wall_ms());
			if (ledger_append_many(&l, rows, 64, &err))
				return fail(&err);
		}
		printf("write: %.1f us CPU a call in 64-call batch wake-ups\n", (cpu_s() - c0) * 1e6 / (double)runs);
	} else if (!strcmp(argv[1], "fold")) {
		double c0 = cpu_s(), w0 = wall_s();

		if (ledger_fold(&l, NULL, NULL, &err))
			return fail(&err);
		printf("fold: %.1f s CPU, %.1f s wall\n", cpu_s() - c0, wall_s() - w0);
	} else {
		fprintf(stderr, "scale_gen: bad arguments\n");
		return 64;
	}
	ledger_close(&l);
	return 0;
}
