/* t_extsort - records sorted by key in bounded memory: in memory, spilled in runs and merged. */
#include "batch/extsort.h"
#include "tap.h"

static uint64_t st = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	st ^= st << 13;
	st ^= st >> 7;
	st ^= st << 17;
	return st;
}

struct rec {
	uint64_t key;
	uint64_t val;
};

static int check_sorted(const void *r, void *ud)
{
	const struct rec *x = r;
	uint64_t *prev = ud;

	if (x->key < prev[0] || x->val != ~x->key)
		prev[1]++;
	prev[0] = x->key;
	prev[2]++;
	return 0;
}

static void one(size_t n, size_t mem, const char *what)
{
	struct extsort x;
	struct ai_err err;
	uint64_t seen[3] = { 0, 0, 0 }, keys[5];
	int bad = 0;

	if (!ok(extsort_init(&x, sizeof(struct rec), mem, &err) == 0, "%s: init", what))
		return;
	for (size_t i = 0; i < n; i++) {
		/* Keys from a small range too, so that equal keys occur. */
		struct rec r;

		r.key = i % 3 ? rnd() : rnd() % 1000;
		r.val = ~r.key;
		if (i < 5)
			keys[i] = r.key;
		if (extsort_add(&x, &r, &err))
			bad++;
	}
	is_int(bad, 0, "%s: %zu records added", what, n);
	is_int(extsort_finish(&x, &err), 0, "%s: finished", what);
	is_int(x.total, n, "%s: all counted", what);
	is_int(extsort_each(&x, check_sorted, seen, &err), 0, "%s: read in order", what);
	is_int(seen[1], 0, "%s: ascending and whole", what);
	is_int(seen[2], n, "%s: every record once", what);
	for (size_t i = 0; i < 5 && i < n; i++) {
		int64_t at = extsort_lower(&x, keys[i], &err);
		struct rec r = { 0, 0 };

		ok(at >= 0 && extsort_get(&x, (uint64_t)at, &r, &err) == 0 && r.key == keys[i],
		   "%s: key %zu found", what, i);
		if (at > 0) {
			extsort_get(&x, (uint64_t)at - 1, &r, &err);
			ok(r.key < keys[i], "%s: and it is the first of its key", what);
		}
	}
	{
		int64_t at = extsort_lower(&x, UINT64_MAX, &err);
		struct rec r;

		ok(at == (int64_t)n || (extsort_get(&x, (uint64_t)at, &r, &err) == 0 && r.key == UINT64_MAX),
		   "%s: a key past the last gives the end", what);
	}
	ok(mem >= n ? x.fd < 0 : x.fd >= 0, "%s: %s", what, mem >= n ? "kept in memory" : "spilled to a file");
	extsort_release(&x);
}

int main(void)
{
	one(0, 16, "empty");
	one(1000, 4096, "in memory");
	one(1000, 1000, "exactly full");
	one(10007, 1000, "eleven runs");
	one(5000, 2, "2500 runs of two");
	return tap_done();
}
