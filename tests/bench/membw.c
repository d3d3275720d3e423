/*
 * membw.c - this machine's single-core memory read bandwidth, and from it
 * the least time a full scan of the knowledge base's float32 vectors can
 * take: 100,000 vectors of 1,536 floats, 614 MB.
 *
 * Usage: membw [MB]   (default 614.4, the vectors' size)
 *
 * Prints human lines and, last, "membw: bound_ms=N gbps=N" for scripts.
 * The buffer is written first so that no page fault is timed; each of 10
 * passes sums it with 8 independent 64-bit lanes (vectorised at -O2),
 * which is as fast as a plain sequential read gets on one core.
 */
#include "ai.h"
#include "bench.h"

#include <time.h>

#define VECS 100000
#define DIMS 1536
#define RUNS 10

int main(int argc, char **argv)
{
	size_t bytes = (size_t)VECS * DIMS * sizeof(float), n, i;
	double t[RUNS], vec_bytes = (double)bytes, gbps, med;
	uint64_t *p, check = 0;

	if (argc > 1) {
		char *end;
		double mb = strtod(argv[1], &end);

		if (*end || !(mb >= 1 && mb <= 16384)) {
			fprintf(stderr, "membw: bad size '%s': give megabytes, 1 to 16384\n", argv[1]);
			return AI_EX_USAGE;
		}
		bytes = (size_t)(mb * 1e6);
	}
	n = bytes / sizeof(*p);
	p = malloc(n * sizeof(*p));
	if (!p) {
		fprintf(stderr, "membw: cannot allocate %zu bytes\n", bytes);
		return AI_EX_OSERR;
	}
	for (i = 0; i < n; i++)
		p[i] = i * 0x9e3779b97f4a7c15u;
	for (i = 0; i < RUNS; i++) {
		double t0 = bench_now();

		check += bench_sum_words(p, n);
		t[i] = bench_now() - t0;
	}
	qsort(t, RUNS, sizeof(t[0]), bench_cmp_dbl);
	med = (t[RUNS / 2 - 1] + t[RUNS / 2]) / 2;
	gbps = (double)(n * sizeof(*p)) / med / 1e9;
	printf("membw: single-core read of %.1f MB: median %.2f ms, best %.2f ms over %d passes\n",
	       (double)(n * sizeof(*p)) / 1e6, med * 1e3, t[0] * 1e3, RUNS);
	printf("membw: %.1f GB/s (median), %.1f GB/s (best)   [checksum %016llx]\n", gbps,
	       (double)(n * sizeof(*p)) / t[0] / 1e9, (unsigned long long)check);
	printf("membw: reading %d x %d float32 (%.1f MB) takes at least %.2f ms at that rate\n",
	       VECS, DIMS, vec_bytes / 1e6, vec_bytes / gbps / 1e6);
	printf("membw: bound_ms=%.2f gbps=%.2f\n", vec_bytes / gbps / 1e6, gbps);
	free(p);
	return 0;
}
