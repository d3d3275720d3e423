/*
 * cache_bench.c - what the response cache costs: in-process figures for
 * key, hit, miss, put and an eviction scan, and the end-to-end figure the
 * issue asks for: how much a hit adds to a process start.
 *
 * It compares two children of itself, both linked against the same
 * libraries as the real programs: one that exits at once, one that opens
 * the cache, hashes a 2 KiB request, gets a 2 KiB value and writes it
 * out.  The difference of the medians is the cache's share.
 *
 * Build and run (from the top of the tree, after make):
 *   cc -std=c11 -O2 -Icommon $(pkg-config --cflags libsodium) -o build/cache_bench \
 *      tests/bench/cache_bench.c build/libai.a \
 *      $(pkg-config --libs json-c libsodium sqlite3) -ldl -lm -lpthread
 *   build/cache_bench [DIR]
 * DIR defaults to a fresh directory under /tmp (removed at the end, so a
 * warm page cache is measured; pass a directory on the disk in question
 * to measure there).  A benchmark: it prints figures and never fails.
 */
#include "api/cache.h"
#include "bench.h"
#include "../unit/rmtree.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void request(char *req, size_t n)
{
	for (size_t i = 0; i < n; i++)
		req[i] = (char)('a' + i % 26);
}

/* The child that measures a whole hit: open, key, get, write. */
static int child_hit(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[CACHE_KEY_LEN];
	char req[2048];
	int hit;

	if (cache_open(&c, dir, 0, 0, &err) < 0)
		return 1;
	request(req, sizeof(req));
	cache_key(req, sizeof(req), k);
	hit = cache_get(&c, k, &b);
	if (hit && fwrite(b.data, 1, b.len, stdout) != b.len)
		return 1;
	buf_release(&b);
	cache_close(&c);
	return hit ? 0 : 3;
}

static double spawn_one(const char *self, char *const argv[],
			const posix_spawn_file_actions_t *fa)
{
	double t0 = (bench_now() * 1e6);
	pid_t pid;
	int st;

	if (posix_spawn(&pid, self, fa, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return (bench_now() * 1e6) - t0;
}

/*
 * Medians (m[0], m[1]) and minimums (m[2], m[3]) of n starts of argv a
 * and of argv b, taken in alternation so that a noisy neighbour slows
 * both alike.  All -1 when a child failed.
 */
static void spawn_medians(const char *self, char *const a[], char *const b[], int n,
			  double m[4])
{
	posix_spawn_file_actions_t fa;
	double *ta = malloc(sizeof(double) * (size_t)n), *tb = malloc(sizeof(double) * (size_t)n);
	int bad = 0;

	m[0] = m[1] = m[2] = m[3] = -1;
	if (!ta || !tb) {
		free(ta);
		free(tb);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (int i = 0; i < n; i++) {
		ta[i] = spawn_one(self, a, &fa);
		tb[i] = spawn_one(self, b, &fa);
		bad += ta[i] < 0 || tb[i] < 0;
	}
	posix_spawn_file_actions_destroy(&fa);
	qsort(ta, (size_t)n, sizeof(*ta), bench_cmp_dbl);
	qsort(tb, (size_t)n, sizeof(*tb), bench_cmp_dbl);
	if (!bad) {
		m[0] = ta[n / 2];
		m[1] = tb[n / 2];
		m[2] = ta[0];
		m[3] = tb[0];
	}
	free(ta);
	free(tb);
}

static void bench_sizes(struct cache *c)
{
	static const size_t sizes[] = { 200, 2048, 65536, 1 << 20 };
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[CACHE_KEY_LEN], miss[CACHE_KEY_LEN];
	char req[4096], *v = malloc(1 << 20);
	double t0;
	int n;

	if (!v)
		return;
	memset(v, 'x', 1 << 20);
	request(req, sizeof(req));
	t0 = (bench_now() * 1e6);
	for (int i = 0; i < 10000; i++)
		cache_key(req, sizeof(req), k);
	printf("cache: key of a 4 KiB request   %8.2f us\n", ((bench_now() * 1e6) - t0) / 10000);
	cache_key("absent", 6, miss);
	t0 = (bench_now() * 1e6);
	for (int i = 0; i < 10000; i++)
		cache_get(c, miss, &b);
	printf("cache: miss                     %8.2f us\n", ((bench_now() * 1e6) - t0) / 10000);

	for (size_t s = 0; s < AI_ARRAY_LEN(sizes); s++) {
		n = sizes[s] >= 65536 ? 200 : 2000;
		k[0] = (unsigned char)s;
		t0 = (bench_now() * 1e6);
		for (int i = 0; i < n; i++) {
			k[1] = (unsigned char)i;
			k[2] = (unsigned char)(i >> 8);
			cache_put(c, k, v, sizes[s], &err);
		}
		printf("cache: put %7zu B, new key    %8.2f us\n", sizes[s], ((bench_now() * 1e6) - t0) / n);
		t0 = (bench_now() * 1e6);
		for (int i = 0; i < n; i++)
			cache_put(c, k, v, sizes[s], &err);
		printf("cache: put %7zu B, overwrite  %8.2f us\n", sizes[s], ((bench_now() * 1e6) - t0) / n);
		t0 = (bench_now() * 1e6);
		for (int i = 0; i < n * 5; i++) {
			buf_reset(&b);
			cache_get(c, k, &b);
		}
		printf("cache: hit %7zu B             %8.2f us\n", sizes[s], ((bench_now() * 1e6) - t0) / (n * 5));
	}
	buf_release(&b);
	free(v);
}

static void bench_evict(const char *dir)
{
	struct cache c;
	struct ai_err err;
	unsigned char k[CACHE_KEY_LEN];
	char v[1024];
	double t0;

	memset(v, 'e', sizeof(v));
	if (cache_open(&c, dir, 0, 0, &err) < 0)
		return;
	for (int i = 0; i < 10000; i++) {
		cache_key(&i, sizeof(i), k);
		cache_put(&c, k, v, sizeof(v), &err);
	}
	t0 = (bench_now() * 1e6);
	cache_evict(&c, &err);
	printf("cache: scan of 10000 entries    %8.2f ms\n", ((bench_now() * 1e6) - t0) / 1000);
	c.max_bytes = 5000 * (sizeof(v) + 88);
	t0 = (bench_now() * 1e6);
	cache_evict(&c, &err);
	printf("cache: evict 10000 -> 4375      %8.2f ms\n", ((bench_now() * 1e6) - t0) / 1000);
	cache_close(&c);
}

int main(int argc, char **argv)
{
	char tmpl[] = "/tmp/cache_bench.XXXXXX", dir[PATH_MAX], self[PATH_MAX];
	const char *base;
	struct cache c;
	struct ai_err err;
	unsigned char k[CACHE_KEY_LEN];
	char req[2048], val[2048];
	ssize_t sn;
	int own = 0;

	if (argc == 2 && strcmp(argv[1], "--child-noop") == 0)
		return 0;
	if (argc == 3 && strcmp(argv[1], "--child-hit") == 0)
		return child_hit(argv[2]);

	if (argc > 1) {
		base = argv[1];
	} else {
		base = mkdtemp(tmpl);
		own = 1;
	}
	if (!base) {
		perror("mkdtemp");
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/responses", base);
	if (cache_open(&c, dir, 0, 0, &err) < 0) {
		fprintf(stderr, "cache_bench: %s\n", err.msg);
		return 0;
	}
	bench_sizes(&c);

	/* The end-to-end figure: a process start with and without a hit. */
	request(req, sizeof(req));
	cache_key(req, sizeof(req), k);
	memset(val, 'r', sizeof(val));
	cache_put(&c, k, val, sizeof(val), &err);
	cache_close(&c);
	sn = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sn > 0) {
		char *noop[] = { self, (char *)"--child-noop", NULL };
		char *hit[] = { self, (char *)"--child-hit", dir, NULL };
		double m[4];

		self[sn] = '\0';
		spawn_medians(self, noop, hit, 20, m);   /* warm up */
		spawn_medians(self, noop, hit, 300, m);
		printf("cache: process start, no cache  %8.1f us median, %8.1f us fastest (300 runs)\n",
		       m[0], m[2]);
		printf("cache: process start + hit      %8.1f us median, %8.1f us fastest\n", m[1],
		       m[3]);
		if (m[0] > 0 && m[1] > 0)
			printf("cache: a hit adds               %8.1f us median, %8.1f us fastest "
			       "(budget 1000)\n", m[1] - m[0], m[3] - m[2]);
	}

	snprintf(dir, sizeof(dir), "%s/evict", base);
	bench_evict(dir);
	if (own)
		rm_rf_at(AT_FDCWD, base);
	return 0;
}
