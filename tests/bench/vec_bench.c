/*
 * vec_bench.c - the vector-search kernel on a knowledge base of 100,000
 * random unit vectors of 1,536 dims (614 MB of float32), in memory.
 *
 * Usage: vec_bench [BOUND_MS]
 *
 * BOUND_MS is the time membw took to read the float32 vectors once; it is
 * printed beside the scan for reference.  The ratio that counts is taken
 * against a plain read of the same vectors timed right before each scan
 * (as membw reads), so that other load on the machine slows both alike.
 * Times are medians over RUNS queries:
 *   - float32: a full scan into a top-10;
 *   - int8: quantising the query, a full int8 scan into a top-40, and
 *     float32 rescoring of those 40 into a top-10;
 * and recall@10 of the int8 path against the exact top-10 over QUERIES
 * queries.  Targets (issue): float32 within 1.6x the read bound, int8
 * under 25 ms with recall@10 >= 0.95.
 */
#include "rag/vec.h"
#include "bench.h"

#include <sys/resource.h>
#include <time.h>

#define N 100000
#define D 1536
#define RUNS 21
#define QUERIES 50
#define K 10
#define CAND 40

static void random_unit(float *v)
{
	size_t j;

	for (j = 0; j < D; j++)
		v[j] = bench_rng_float();
	vec_normalize(v, D);
}

static double median(double *t, size_t n)
{
	qsort(t, n, sizeof(*t), bench_cmp_dbl);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

struct kb {
	float *f32;     /* N x D */
	int8_t *i8;     /* N x D */
	float *scales;  /* N */
};

/* The int8 path for one query: the best K into out (sorted). */
static void search_i8(const struct kb *kb, const float *q, struct vec_topk *cand,
		      struct vec_topk *out)
{
	const float *vecs[CAND];
	int8_t qc[D];
	float qs;
	size_t i;

	vec_quantize_i8(q, D, qc, &qs);
	vec_topk_reset(cand);
	vec_topk_reset(out);
	vec_scan_i8(qc, qs, kb->i8, kb->scales, NULL, N, D, cand);
	vec_topk_sorted(cand);
	for (i = 0; i < cand->n; i++)
		vecs[i] = kb->f32 + (size_t)cand->v[i].id * D;
	vec_rescore_f32(q, D, cand->v, vecs, cand->n, out);
	vec_topk_sorted(out);
}

int main(int argc, char **argv)
{
	struct kb kb;
	struct vec_topk ex, cand, re;
	double bound = 0, tf[RUNS], ti[RUNS], tr[RUNS], ratio[RUNS], t0, mf, mi, mr, mratio;
	double f32_mb, i8_mb;
	uint64_t check = 0;
	float *queries;
	size_t i, j, found = 0;
	struct rusage ru;

	bench_rng_state = 7;
	if (argc > 1) {
		char *end;

		bound = strtod(argv[1], &end);
		if (*end || !(bound > 0)) {
			fprintf(stderr, "vec_bench: bad bound '%s': give milliseconds\n", argv[1]);
			return AI_EX_USAGE;
		}
	}
	kb.f32 = malloc((size_t)N * D * sizeof(float));
	kb.i8 = malloc((size_t)N * D);
	kb.scales = malloc(N * sizeof(float));
	queries = malloc((size_t)QUERIES * D * sizeof(float));
	if (!kb.f32 || !kb.i8 || !kb.scales || !queries || vec_topk_init(&ex, K) ||
	    vec_topk_init(&cand, CAND) || vec_topk_init(&re, K)) {
		fprintf(stderr, "vec_bench: out of memory\n");
		return AI_EX_OSERR;
	}
	t0 = bench_now();
	for (i = 0; i < N; i++) {
		random_unit(kb.f32 + i * D);
		vec_quantize_i8(kb.f32 + i * D, D, kb.i8 + i * D, &kb.scales[i]);
	}
	for (i = 0; i < QUERIES; i++)
		random_unit(queries + i * D);
	f32_mb = (double)N * D * sizeof(float) / 1e6;
	i8_mb = ((double)N * D + N * sizeof(float)) / 1e6;
	printf("vec: %d random unit vectors x %d dims: float32 %.1f MB, int8 %.1f MB "
	       "(made in %.1f s)\n", N, D, f32_mb, i8_mb, bench_now() - t0);

	/* One untimed pass of each, then RUNS timed queries. */
	vec_scan_f32(queries, kb.f32, NULL, N, D, &ex);
	search_i8(&kb, queries, &cand, &re);
	for (i = 0; i < RUNS; i++) {
		const float *q = queries + (i % QUERIES) * D;

		t0 = bench_now();
		check += bench_sum_words((const uint64_t *)(const void *)kb.f32, (size_t)N * D / 2);
		tr[i] = bench_now() - t0;
		vec_topk_reset(&ex);
		t0 = bench_now();
		vec_scan_f32(q, kb.f32, NULL, N, D, &ex);
		vec_topk_sorted(&ex);
		tf[i] = bench_now() - t0;
		ratio[i] = tf[i] / tr[i];
		t0 = bench_now();
		search_i8(&kb, q, &cand, &re);
		ti[i] = bench_now() - t0;
	}
	mf = median(tf, RUNS) * 1e3;
	mi = median(ti, RUNS) * 1e3;
	mr = median(tr, RUNS) * 1e3;
	mratio = median(ratio, RUNS);
	printf("vec: plain read of the float32 vectors: median %.2f ms (best %.2f), %.1f GB/s"
	       "   [checksum %016llx]\n", mr, tr[0] * 1e3, f32_mb / mr, (unsigned long long)check);
	if (bound > 0)
		printf("vec: membw's bound for the same bytes, measured before: %.2f ms\n", bound);
	printf("vec: float32 scan, top-%d: median %.2f ms (best %.2f, worst %.2f) over %d queries, "
	       "%.1f GB/s\n", K, mf, tf[0] * 1e3, tf[RUNS - 1] * 1e3, RUNS, f32_mb / mf);
	printf("vec: float32 scan / plain read, query by query: median %.2fx, best %.2fx "
	       "(target <= 1.6x): %s\n", mratio, ratio[0], mratio <= 1.6 ? "met" : "MISSED");
	printf("vec: int8 scan top-%d + float32 rescore to top-%d: median %.2f ms "
	       "(best %.2f, worst %.2f) (target < 25 ms): %s\n", CAND, K, mi, ti[0] * 1e3,
	       ti[RUNS - 1] * 1e3, mi < 25 ? "met" : "MISSED");

	for (i = 0; i < QUERIES; i++) {
		const float *q = queries + i * D;

		vec_topk_reset(&ex);
		vec_scan_f32(q, kb.f32, NULL, N, D, &ex);
		vec_topk_sorted(&ex);
		search_i8(&kb, q, &cand, &re);
		for (j = 0; j < ex.n; j++) {
			size_t m;

			for (m = 0; m < re.n; m++)
				found += ex.v[j].id == re.v[m].id;
		}
	}
	printf("vec: int8 recall@%d against exact float32: %.4f over %d queries "
	       "(target >= 0.95): %s\n", K, (double)found / (QUERIES * K), QUERIES,
	       found >= 0.95 * QUERIES * K ? "met" : "MISSED");

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("vec: peak RSS %.1f MB = %.2fx the vector bytes (%.1f MB float32 + %.1f MB "
		       "int8, all in memory at once here)\n", (double)ru.ru_maxrss * 1024 / 1e6,
		       (double)ru.ru_maxrss * 1024 / 1e6 / (f32_mb + i8_mb), f32_mb, i8_mb);
	vec_topk_release(&ex);
	vec_topk_release(&cand);
	vec_topk_release(&re);
	free(kb.f32);
	free(kb.i8);
	free(kb.scales);
	free(queries);
	return 0;
}
