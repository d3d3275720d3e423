/*
 * rag_bench.c - helper for tests/bench/rag.sh.
 *
 *   rag_bench build DB N DIM MODEL   writes N chunks (documents of 1,000,
 *                                    so blocks of 1,000 vectors) with random
 *                                    unit vectors and 40-word texts through
 *                                    kb_put, as ai-index would store them
 *   rag_bench recall DB DIM MODEL Q  recall@10 of the int8 path against the
 *                                    exact float32 answer over Q random
 *                                    queries, and the in-process times
 *   rag_bench corpus DIR MB          writes about MB megabytes of Markdown
 *                                    files for the ingest benchmark
 *   rag_bench time N CMD... [-- CMD2...]
 *                                    runs CMD N times after a warm-up (and
 *                                    CMD2 by turns with it, so that both meet
 *                                    the same load) and prints, a line each,
 *                                    "wall_ms best_ms cpu_ms": the median and
 *                                    best wall time, and the median CPU time
 *                                    (user + system of the process and its
 *                                    threads, from wait4), which a loaded
 *                                    machine inflates far less than the wall
 */
#include "rag/kb.h"
#include "rag/vec.h"
#include "bench.h"

#include <math.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#define PER_DOC 1000
#define WORDS 40

/* A vocabulary of 5,000 made-up words with a Zipf-like draw, so BM25 has common and rare terms. */
static void word(char *w, size_t n)
{
	static const char *const syl[] = { "ka", "lo", "mi", "nu", "re", "ta", "vo", "zi", "sen", "dar",
					   "pel", "mor", "qua", "tis", "ben", "gor" };
	uint64_t r = bench_rng_next();
	double u = (double)(r >> 11) / 9007199254740992.0;
	unsigned id = (unsigned)(5000 * u * u * u);
	size_t k = 0;

	do {
		const char *s = syl[id % 16];

		while (*s && k + 1 < n)
			w[k++] = *s++;
		id /= 16;
	} while (id);
	w[k] = '\0';
}

static void text(char *buf, size_t n)
{
	size_t k = 0;

	for (int i = 0; i < WORDS; i++) {
		char w[32];
		size_t l;

		word(w, sizeof(w));
		l = strlen(w);
		if (k + l + 2 >= n)
			break;
		if (k)
			buf[k++] = ' ';
		memcpy(buf + k, w, l);
		k += l;
	}
	buf[k] = '\0';
}

static int build(const char *db, size_t n, size_t dim, const char *model)
{
	struct kb *kb;
	struct ai_err err;
	float *v = malloc(PER_DOC * dim * sizeof(float));
	struct kb_chunk *c = calloc(PER_DOC, sizeof(*c));
	char (*t)[512] = malloc(PER_DOC * sizeof(*t));
	double t0 = bench_now();

	if (!v || !c || !t || kb_open(&kb, db, KB_WRITE, &err)) {
		fprintf(stderr, "rag_bench: %s\n", err.msg);
		return 1;
	}
	for (size_t d = 0; d * PER_DOC < n; d++) {
		size_t m = n - d * PER_DOC < PER_DOC ? n - d * PER_DOC : PER_DOC;
		char src[64], hash[65];
		struct kb_doc doc;

		for (size_t i = 0; i < m; i++) {
			for (size_t j = 0; j < dim; j++)
				v[i * dim + j] = bench_rng_float();
			vec_normalize(v + i * dim, dim);
			text(t[i], sizeof(t[i]));
			c[i].text = t[i];
			c[i].len = strlen(t[i]);
			c[i].line_start = i * 3 + 1;
			c[i].line_end = i * 3 + 3;
		}
		snprintf(src, sizeof(src), "doc%05zu.md", d);
		kb_hash(src, strlen(src), hash);
		doc.source = src;
		doc.hash = hash;
		doc.size = 1;
		doc.mtime = 0;
		if (kb_put(kb, NULL, &doc, c, m, v, dim, model, NULL, &err)) {
			fprintf(stderr, "rag_bench: %s\n", err.msg);
			return 1;
		}
	}
	kb_close(kb);
	printf("rag_bench: built %zu chunks of %zu dims in %.1f s\n", n, dim, bench_now() - t0);
	free(v);
	free(c);
	free(t);
	return 0;
}

static int recall(const char *db, size_t dim, const char *model, int nq)
{
	struct kb *kb;
	struct ai_err err;
	float *q = malloc(dim * sizeof(float));
	double hits = 0, *tf = calloc((size_t)nq, sizeof(double)), *ti = calloc((size_t)nq, sizeof(double));

	if (!q || !tf || !ti || kb_open(&kb, db, KB_READ, &err)) {
		fprintf(stderr, "rag_bench: %s\n", err.msg);
		return 1;
	}
	bench_rng_state = 99;
	for (int i = 0; i < nq; i++) {
		struct kb_query kq = { 0 };
		struct kb_results a, b;
		double t0;

		for (size_t j = 0; j < dim; j++)
			q[j] = bench_rng_float();
		vec_normalize(q, dim);
		kq.text = "";
		kq.k = 10;
		kq.candidates = 10;
		kq.qvec = q;
		kq.qdim = dim;
		kq.qmodel = model;
		kq.min_cosine = -1;
		t0 = bench_now();
		if (kb_search(kb, &kq, &a, &err)) {
			fprintf(stderr, "rag_bench: %s\n", err.msg);
			return 1;
		}
		tf[i] = bench_now() - t0;
		kq.int8 = true;
		t0 = bench_now();
		if (kb_search(kb, &kq, &b, &err)) {
			fprintf(stderr, "rag_bench: %s\n", err.msg);
			return 1;
		}
		ti[i] = bench_now() - t0;
		for (size_t x = 0; x < a.n; x++)
			for (size_t y = 0; y < b.n; y++)
				hits += a.v[x].id == b.v[y].id;
		kb_results_release(&a);
		kb_results_release(&b);
	}
	qsort(tf, (size_t)nq, sizeof(double), bench_cmp_dbl);
	qsort(ti, (size_t)nq, sizeof(double), bench_cmp_dbl);
	printf("rag_bench: in-process kb_search median: float32 %.1f ms, int8+rescore %.1f ms\n",
	       tf[nq / 2] * 1e3, ti[nq / 2] * 1e3);
	printf("rag_bench: int8 recall@10 against exact float32 over %d queries: %.3f\n", nq, hits / (10.0 * nq));
	kb_close(kb);
	free(q);
	free(tf);
	free(ti);
	return 0;
}

static int corpus(const char *dir, double mb)
{
	size_t total = 0, want = (size_t)(mb * 1e6);
	char path[4096], para[600];

	mkdir(dir, 0700);
	for (int f = 0; total < want; f++) {
		FILE *fp;

		snprintf(path, sizeof(path), "%s/f%04d.md", dir, f);
		if (!(fp = fopen(path, "w")))
			return 1;
		for (int s = 0; s < 20; s++) {
			fprintf(fp, "# Section %d\n\n", s);
			for (int p = 0; p < 4; p++) {
				text(para, sizeof(para));
				total += (size_t)fprintf(fp, "%s. %s.\n\n", para, para);
			}
		}
		fclose(fp);
	}
	printf("rag_bench: wrote %.1f MB of Markdown to %s\n", (double)total / 1e6, dir);
	return 0;
}

/* Runs argv once, its output to /dev/null: its wall and CPU seconds, or -1 if it did not exit. */
static int run_once(char **argv, double *wall, double *cpu)
{
	struct rusage ru;
	double t0 = bench_now();
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	*wall = bench_now() - t0;
	*cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	/* Any exit counts (a question matching nothing exits 1); a signal or a failed exec does not. */
	return WIFEXITED(status) && WEXITSTATUS(status) != 127 ? 0 : -1;
}

static int timing(int n, int argc, char **argv)
{
	char **cmd[2] = { argv, NULL };
	double *t[2][2];
	int ncmd = 1;

	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			argv[i] = NULL;
			cmd[1] = argv + i + 1;
			ncmd = 2;
		}
	if (n < 1 || !argv[0] || (cmd[1] && !cmd[1][0])) {
		fprintf(stderr, "rag_bench: time N CMD... [-- CMD2...]\n");
		return 64;
	}
	for (int c = 0; c < ncmd; c++)
		for (int k = 0; k < 2; k++)
			if (!(t[c][k] = calloc((size_t)n, sizeof(double))))
				return 71;
	for (int i = -1; i < n; i++)
		for (int c = 0; c < ncmd; c++) {
			double w, u;

			if (run_once(cmd[c], &w, &u)) {
				fprintf(stderr, "rag_bench: %s failed\n", cmd[c][0]);
				return 1;
			}
			if (i >= 0) {
				t[c][0][i] = w;
				t[c][1][i] = u;
			}
		}
	for (int c = 0; c < ncmd; c++) {
		qsort(t[c][0], (size_t)n, sizeof(double), bench_cmp_dbl);
		qsort(t[c][1], (size_t)n, sizeof(double), bench_cmp_dbl);
		printf("%.1f %.1f %.1f\n", t[c][0][n / 2] * 1e3, t[c][0][0] * 1e3, t[c][1][n / 2] * 1e3);
		free(t[c][0]);
		free(t[c][1]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	bench_rng_state = 11;
	if (argc == 6 && !strcmp(argv[1], "build"))
		return build(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), argv[5]);
	if (argc == 6 && !strcmp(argv[1], "recall"))
		return recall(argv[2], strtoul(argv[3], NULL, 10), argv[4], (int)strtol(argv[5], NULL, 10));
	if (argc >= 4 && !strcmp(argv[1], "time"))
		return timing((int)strtol(argv[2], NULL, 10), argc - 3, argv + 3);
	if (argc == 4 && !strcmp(argv[1], "corpus"))
		return corpus(argv[2], strtod(argv[3], NULL));
	fprintf(stderr, "usage: rag_bench build DB N DIM MODEL | recall DB DIM MODEL Q | corpus DIR MB | "
		"time N CMD... [-- CMD2...]\n");
	return 64;
}
