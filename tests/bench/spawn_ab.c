/*
 * spawn_ab.c - the whole-process cost of B over A, measured fairly on a
 * noisy machine: runs the two commands in alternation (A, B, A, B, ...)
 * so that a neighbour's load slows both alike, N times each, stdout and
 * stderr to /dev/null, and prints the median, mean and fastest of each
 * and the differences, in wall time and in CPU time (user + system, from
 * wait4's rusage: on a loaded machine the wall time mostly measures the
 * queue for a CPU, the CPU time what the process itself did).  Used by
 * cache-hit.sh and ledger.sh.
 *
 *   spawn_ab N NAME_A NAME_B CMD_A... -- CMD_B...
 *
 * A child that fails (non-zero exit) is reported and its time kept out.
 * Prints figures; exits 0 unless its arguments are wrong.
 */
#include "ai.h"
#include "bench.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double tv_ms(struct timeval t)
{
	return (double)t.tv_sec * 1e3 + (double)t.tv_usec / 1e3;
}

/* One run of argv; its wall time in ms (and CPU time in *cpu), or -1 when it could not run or failed. */
static double run(char **argv, const posix_spawn_file_actions_t *fa, double *cpu)
{
	double t0 = (bench_now() * 1e3);
	struct rusage ru;
	pid_t pid;
	int st;

	*cpu = -1;
	if (posix_spawnp(&pid, argv[0], fa, NULL, argv, environ) != 0 ||
	    wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	*cpu = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
	return (bench_now() * 1e3) - t0;
}

struct stat3 { double median, mean, min; int n; };

static struct stat3 summary(double *v, int n)
{
	struct stat3 s = { -1, -1, -1, 0 };
	double sum = 0;
	int k = 0;

	for (int i = 0; i < n; i++)
		if (v[i] >= 0)
			v[k++] = v[i];
	if (!k)
		return s;
	qsort(v, (size_t)k, sizeof(*v), bench_cmp_dbl);
	for (int i = 0; i < k; i++)
		sum += v[i];
	s.median = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
	s.mean = sum / k;
	s.min = v[0];
	s.n = k;
	return s;
}

int main(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	char **a, **b = NULL;
	double *ta, *tb, *ca, *cb, dummy;
	struct stat3 sa, sb, csa, csb;
	long n;
	int i;

	if (argc < 7 || (n = strtol(argv[1], NULL, 10)) < 1 || n > 1000000) {
		fputs("usage: spawn_ab N NAME_A NAME_B CMD_A... -- CMD_B...\n", stderr);
		return 64;
	}
	a = argv + 4;
	for (i = 4; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			argv[i] = NULL;
			b = argv + i + 1;
			break;
		}
	if (!b || !*b || !*a) {
		fputs("spawn_ab: want two commands separated by --\n", stderr);
		return 64;
	}
	ta = calloc((size_t)n, sizeof(*ta));
	tb = calloc((size_t)n, sizeof(*tb));
	ca = calloc((size_t)n, sizeof(*ca));
	cb = calloc((size_t)n, sizeof(*cb));
	if (!ta || !tb || !ca || !cb)
		return 71;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	for (i = 0; i < 10; i++) {          /* warm the page cache and the cache entry */
		run(a, &fa, &dummy);
		run(b, &fa, &dummy);
	}
	for (i = 0; i < n; i++) {
		ta[i] = run(a, &fa, &ca[i]);
		tb[i] = run(b, &fa, &cb[i]);
	}
	sa = summary(ta, (int)n);
	sb = summary(tb, (int)n);
	csa = summary(ca, (int)n);
	csb = summary(cb, (int)n);
	if (sa.n < n || sb.n < n)
		printf("spawn_ab: %ld of %s and %ld of %s runs failed\n", n - sa.n, argv[2], n - sb.n, argv[3]);
	if (sa.n && sb.n) {
		printf("%-30s median %8.3f ms  mean %8.3f ms  fastest %8.3f ms  (%d runs)\n", argv[2],
		       sa.median, sa.mean, sa.min, sa.n);
		printf("%-30s median %8.3f ms  mean %8.3f ms  fastest %8.3f ms\n", argv[3], sb.median,
		       sb.mean, sb.min);
		printf("%-30s median %+8.3f ms  mean %+8.3f ms  fastest %+8.3f ms\n", "wall: B - A",
		       sb.median - sa.median, sb.mean - sa.mean, sb.min - sa.min);
		printf("%-30s median %8.3f ms  mean %8.3f ms  least   %8.3f ms\n", "cpu: A", csa.median,
		       csa.mean, csa.min);
		printf("%-30s median %8.3f ms  mean %8.3f ms  least   %8.3f ms\n", "cpu: B", csb.median,
		       csb.mean, csb.min);
		printf("%-30s median %+8.3f ms  mean %+8.3f ms  least   %+8.3f ms\n", "cpu: B - A",
		       csb.median - csa.median, csb.mean - csa.mean, csb.min - csa.min);
	}
	posix_spawn_file_actions_destroy(&fa);
	free(ta);
	free(tb);
	free(ca);
	free(cb);
	return 0;
}
