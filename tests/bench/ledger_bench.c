/*
 * ledger_bench - what the usage ledger costs a model call.  Prints
 * figures; never fails a build.
 *
 *   cc -std=c11 -O2 -Icommon -o build/ledger_bench tests/bench/ledger_bench.c \
 *      build/libai.a $(pkg-config --libs sqlite3) -lm
 *   build/ledger_bench [DIR] [N]
 *
 * Three figures, in a fresh ledger under DIR (default /tmp):
 *  - append: N appends on one open connection (a long-running program,
 *    e.g. ai-batch);
 *  - cycle: N open + append + close, one at a time (what each run of a
 *    short-lived program such as ai-summarize pays);
 *  - 4 procs: four processes appending N/4 each at once, wall time per
 *    append.
 * Medians and 90th percentiles as well as means, because a shared
 * machine's fsync times have a long tail.
 */
#include "api/ledger.h"
#include "bench.h"

#include <math.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, double *v, int n)
{
	double sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += v[i];
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	printf("%-34s mean %7.3f ms  median %7.3f ms  p90 %7.3f ms  max %7.3f ms\n", what,
	       sum / n, v[n / 2], v[(n * 9) / 10], v[n - 1]);
}

static void fill(struct ledger_row *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->ts_ms = wall_ms();
	r->program = "ai-summarize";
	r->model = "gpt-4o-mini";
	r->host = "api.openai.com";
	r->prompt_tokens = 1200 + i;
	r->completion_tokens = 300;
	r->latency_ms = 800;
	r->status = 200;
	r->cost = 0.00036;
	r->saved = NAN;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int n = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2000, i, p;
	char path[512];
	double *v, t, t0;
	struct ledger l;
	struct ledger_row r;
	struct ai_err err;

	if (n < 8)
		n = 8;
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return 1;
	snprintf(path, sizeof(path), "%s/ledger_bench.%ld.db", dir, (long)getpid());

	if (ledger_open(&l, path, &err) < 0) {
		fprintf(stderr, "ledger_bench: %s\n", err.msg);
		return 1;
	}
	for (i = 0; i < n; i++) {
		fill(&r, i);
		t = (bench_now() * 1e3);
		if (ledger_append(&l, &r, &err) < 0) {
			fprintf(stderr, "ledger_bench: %s\n", err.msg);
			return 1;
		}
		v[i] = (bench_now() * 1e3) - t;
	}
	ledger_close(&l);
	report("append (connection open)", v, n);

	for (i = 0; i < n; i++) {
		fill(&r, i);
		t = (bench_now() * 1e3);
		if (ledger_open(&l, path, &err) < 0 || ledger_append(&l, &r, &err) < 0) {
			fprintf(stderr, "ledger_bench: %s\n", err.msg);
			return 1;
		}
		ledger_close(&l);
		v[i] = (bench_now() * 1e3) - t;
	}
	report("open + append + close", v, n);

	t0 = (bench_now() * 1e3);
	fflush(stdout);
	for (p = 0; p < 4; p++) {
		if (fork() == 0) {
			if (ledger_open(&l, path, &err) < 0)
				_exit(1);
			for (i = 0; i < n / 4; i++) {
				fill(&r, i);
				if (ledger_append(&l, &r, &err) < 0)
					_exit(1);
			}
			ledger_close(&l);
			_exit(0);
		}
	}
	for (p = 0; p < 4; p++)
		wait(NULL);
	t = (bench_now() * 1e3) - t0;
	printf("%-34s %.3f ms of wall time per append (%d in %.0f ms)\n", "4 processes at once", t / (n / 4 * 4),
	       n / 4 * 4, t);

	{
		char side[600];

		unlink(path);
		snprintf(side, sizeof(side), "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", path);
		unlink(side);
	}
	free(v);
	return 0;
}
