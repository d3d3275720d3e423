#ifndef AI_BENCH_H
#define AI_BENCH_H
/*
 * bench.h - the few helpers the benchmark programs in tests/bench share:
 * a monotonic clock, a comparison for qsort, a seeded generator (splitmix64)
 * and the memory read that stands for "reading these bytes" in the RAG
 * bounds.  Header-only: each benchmark is one file compiled by its script.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic seconds. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* For qsort over doubles, ascending. */
static inline int bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* splitmix64: the same sequence for the same seed, on every machine. */
static uint64_t bench_rng_state = 1;

static inline uint64_t bench_rng_next(void)
{
	uint64_t z = (bench_rng_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Uniform in [-1, 1): a unit vector of these points in a random direction
 * up to the cube's corners, which is random enough for timing and recall. */
static inline float bench_rng_float(void)
{
	return (float)((double)(bench_rng_next() >> 40) / 8388608.0 - 1.0);
}

/*
 * Reads n words and sums them: the cheapest read of memory there is, the
 * bound a vector scan is set beside.  Scalar lanes, which GCC packs into
 * vector registers (SLP); an array of lanes would be kept in memory at -O2
 * and halve the rate.
 */
static inline uint64_t bench_sum_words(const uint64_t *restrict p, size_t n)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
	size_t i;

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

#endif
