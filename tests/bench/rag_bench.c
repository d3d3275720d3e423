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
 */
#include "rag/kb.h"
#include "rag/vec.h"
#include "bench.h"

#include <math.h>
#include <time.h>
#include <sys/stat.h>

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

int main(int argc, char **argv)
{
	bench_rng_state = 11;
	if (argc == 6 && !strcmp(argv[1], "build"))
		return build(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), argv[5]);
	if (argc == 6 && !strcmp(argv[1], "recall"))
		return recall(argv[2], strtoul(argv[3], NULL, 10), argv[4], (int)strtol(argv[5], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "corpus"))
		return corpus(argv[2], strtod(argv[3], NULL));
	fprintf(stderr, "usage: rag_bench build DB N DIM MODEL | recall DB DIM MODEL Q | corpus DIR MB\n");
	return 64;
}
