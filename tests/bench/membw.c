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

#include <time.h>

#define VECS 100000
#define DIMS 1536
#define RUNS 10

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t sum_words(const uint64_t *restrict p, size_t n)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
	size_t i;

	/* Scalar lanes, which GCC packs into vector registers (SLP); an array
	 * of lanes would be kept in memory at -O2 and halve the rate. */
	for (i = 0; i + 8 <= n; i += 8) {
		s0 += p[i];
		s1 += p[i + 1];
		s2 += p[i + 2];
		s3 += p[i + 3];
		s4 += p[i + 4];
		s5 += p[i + 5];
		s6 += p[i + 6];
		s7 += p[i + 7];
	}
	for (; i < n; i++)
		s0 += p[i];
	return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

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
		double t0 = now();

		check += sum_words(p, n);
		t[i] = now() - t0;
	}
	qsort(t, RUNS, sizeof(t[0]), cmp_dbl);
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
