/* t_vec.c - tests for the vector-search kernel (common/rag/vec.c). */
#include "rag/vec.h"

#include <float.h>
#include <math.h>
#include <sodium.h>

#include "tap.h"

/* splitmix64: a fixed, portable sequence, so a failure can be replayed. */
static uint64_t rng_state = 42;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double rng_unit(void)
{
	return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(void)
{
	return (float)(sqrt(-2 * log(rng_unit())) * cos(6.283185307179586 * rng_unit()));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

/* Best first: score descending, then id ascending, as vec_topk ranks. */
static int hit_cmp(const void *pa, const void *pb)
{
	const struct vec_hit *a = pa, *b = pb;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static void test_dot(void)
{
	float a[3] = { 1, 2, 3 }, b[3] = { 4, 5, 6 };
	float x[37], y[37];
	double want = 0;
	size_t i;

	is_dbl(vec_dot(a, b, 3), 32, 0, "dot of 3 small integers is exact");
	is_dbl(vec_dot(a, b, 0), 0, 0, "dot of dim 0 is 0");
	is_dbl(vec_dot(a, b, 1), 4, 0, "dot of dim 1");
	/* 37 = 4 blocks of 8 and a tail of 5: every path, integers so exact. */
	for (i = 0; i < 37; i++) {
		x[i] = (float)((int)i - 18);
		y[i] = (float)(3 - (int)(i % 7));
		want += (double)x[i] * y[i];
	}
	is_dbl(vec_dot(x, y, 37), want, 0, "dot of dim 37 with a tail is exact");
	is_dbl(vec_dot(x, x, 37), 18 * 19 * 37 / 3.0, 0, "dot of a vector with itself");
}

static void test_normalize(void)
{
	float v[2] = { 3, 4 }, z[5] = { 0 }, r[1536], big[2] = { FLT_MAX, FLT_MAX };
	size_t i;

	vec_normalize(v, 2);
	is_dbl(v[0], 0.6, 1e-7, "normalize 3,4: x is 0.6");
	is_dbl(v[1], 0.8, 1e-7, "normalize 3,4: y is 0.8");
	vec_normalize(z, 5);
	ok(z[0] == 0 && z[4] == 0 && !signbit(z[0]), "a zero vector stays zero");
	vec_normalize(z, 0);
	ok(1, "dim 0 is accepted");
	for (i = 0; i < 1536; i++)
		r[i] = rng_gauss() * 1000;
	vec_normalize(r, 1536);
	is_dbl(vec_dot(r, r, 1536), 1, 1e-5, "a random 1536-dim vector gets unit length");
	vec_normalize(big, 2);
	is_dbl(big[0], sqrt(0.5), 1e-7, "FLT_MAX components do not overflow");
}

static void test_finite(void)
{
	float v[20] = { 0 };

	ok(vec_finite(v, 20), "zeros are finite");
	ok(vec_finite(v, 0), "dim 0 is finite");
	v[3] = FLT_MAX;
	v[4] = -FLT_MAX;
	v[5] = FLT_MIN / 2;
	ok(vec_finite(v, 20), "FLT_MAX and a subnormal are finite");
	v[19] = NAN;
	ok(!vec_finite(v, 20), "a NaN in the last place is found");
	ok(vec_finite(v, 19), "and is outside dim 19");
	v[19] = 0;
	v[0] = INFINITY;
	ok(!vec_finite(v, 20), "+Inf is found");
	v[0] = -INFINITY;
	ok(!vec_finite(v, 20), "-Inf is found");
}

/* Scans base with ids = 1000 + i against q and compares with a full sort. */
static void check_topk(const float *q, const float *base, size_t count, size_t dim, size_t k,
		       const char *what)
{
	struct vec_topk t;
	struct vec_hit *all = xmalloc((count ? count : 1) * sizeof(*all));
	int64_t *ids = xmalloc((count ? count : 1) * sizeof(*ids));
	size_t i, want = k < count ? k : count, bad = 0;

	for (i = 0; i < count; i++) {
		ids[i] = 1000 + (int64_t)i;
		all[i].id = ids[i];
		all[i].score = vec_dot(q, base + i * dim, dim);
	}
	qsort(all, count, sizeof(*all), hit_cmp);
	if (vec_topk_init(&t, k) != 0) {
		ok(0, "%s: vec_topk_init", what);
		return;
	}
	vec_scan_f32(q, base, ids, count, dim, &t);
	vec_topk_sorted(&t);
	is_int(t.n, want, "%s: holds min(k, count)", what);
	for (i = 0; i < t.n && i < want; i++)
		bad += t.v[i].id != all[i].id || t.v[i].score != all[i].score;
	is_int(bad, 0, "%s: same hits in the same order as a full sort", what);
	vec_topk_release(&t);
	free(all);
	free(ids);
}

static void test_topk(void)
{
	size_t dim = 37, count = 1000, i, j;
	float *base = xmalloc(count * dim * sizeof(float)), q[37];
	struct vec_topk t, u;
	int64_t ids[10];
	int bad;

	for (i = 0; i < count * dim; i++)
		base[i] = rng_gauss();
	for (i = 0; i < dim; i++)
		q[i] = rng_gauss();
	check_topk(q, base, count, dim, 1, "k=1");
	check_topk(q, base, count, dim, 10, "k=10");
	check_topk(q, base, count, dim, 1000, "k=count");
	check_topk(q, base, 5, dim, 10, "count<k");
	check_topk(q, base, 0, dim, 10, "count=0");

	/* Ties: 20 distinct rows repeated, so each score appears 50 times. */
	for (i = 20; i < count; i++)
		memcpy(base + i * dim, base + (i % 20) * dim, dim * sizeof(float));
	check_topk(q, base, count, dim, 10, "ties between equal vectors");
	check_topk(q, base, count, dim, 75, "ties across the k boundary");

	/* The result does not depend on push order, and NaN is ignored. */
	vec_topk_init(&t, 3);
	vec_topk_init(&u, 3);
	for (i = 0; i < 10; i++) {
		vec_topk_push(&t, (int64_t)i, (float)(i % 4));
		vec_topk_push(&u, (int64_t)(9 - i), (float)((9 - i) % 4));
	}
	vec_topk_push(&t, 99, NAN);
	vec_topk_sorted(&t);
	vec_topk_sorted(&u);
	ok(t.n == 3 && t.v[0].id == 3 && t.v[1].id == 7 && t.v[2].id == 2,
	   "integer scores with ties: 3, 7 (score 3), then 2 (score 2, lowest id)");
	ok(u.n == 3 && u.v[0].id == 3 && u.v[1].id == 7 && u.v[2].id == 2,
	   "the same pushed in reverse order");
	vec_topk_reset(&t);
	vec_topk_push(&t, 5, NAN);
	vec_topk_push(&t, 6, -INFINITY);
	is_int(t.n, 1, "after reset: a NaN is not kept, -Inf is");
	vec_topk_release(&t);
	vec_topk_release(&u);

	ok(vec_topk_init(&t, 0) == 0 && t.v == NULL, "k=0 allocates nothing");
	vec_topk_push(&t, 1, 1);
	vec_scan_f32(q, base, NULL, count, dim, &t);
	is_int(t.n, 0, "k=0 keeps nothing");
	vec_topk_sorted(&t);
	vec_topk_release(&t);
	errno = 0;
	ok(vec_topk_init(&t, SIZE_MAX) == -1 && errno == ENOMEM, "a huge k fails with ENOMEM");

	/* Scanning block by block equals one scan; NULL ids number the rows. */
	vec_topk_init(&t, 10);
	vec_topk_init(&u, 10);
	vec_scan_f32(q, base, NULL, count, dim, &t);
	for (i = 0; i < count; i += 10) {
		for (j = 0; j < 10; j++)
			ids[j] = (int64_t)(i + j);
		vec_scan_f32(q, base + i * dim, ids, 10, dim, &u);
	}
	vec_topk_sorted(&t);
	vec_topk_sorted(&u);
	bad = t.n != u.n;
	for (i = 0; i < t.n && !bad; i++)
		bad = t.v[i].id != u.v[i].id || t.v[i].score != u.v[i].score;
	ok(!bad && t.n == 10, "100 blocks of 10 give the same top-10 as one scan");
	vec_topk_release(&t);
	vec_topk_release(&u);
	free(base);
}

static void test_quantize(void)
{
	float v[4] = { 1, -0.25f, 0, 0.5f }, z[3] = { 0 }, s, one = 1;
	int8_t c[4], cz[3] = { 1, 1, 1 };
	int8_t q8[3] = { 127, -127, 3 }, b8[6] = { 127, -127, 0, -2, -3, 1 };
	float scales[2] = { 0.5f, 2 };
	size_t n = 200000;
	int8_t *big = xmalloc(n);
	struct vec_topk t;

	vec_quantize_i8(v, 4, c, &s);
	is_dbl(s, 1.0 / 127, 1e-9, "scale is max|x| / 127");
	ok(c[0] == 127 && c[1] == -32 && c[2] == 0 && c[3] == 64,
	   "codes round to nearest: %d %d %d %d", c[0], c[1], c[2], c[3]);
	vec_quantize_i8(z, 3, cz, &s);
	ok(s == 0 && cz[0] == 0 && cz[1] == 0 && cz[2] == 0, "a zero vector: scale 0, codes 0");

	/* Scores are qscale * scale * integer dot: 2 * 127 * 127, then -254 + 381 + 3. */
	vec_topk_init(&t, 2);
	vec_scan_i8(q8, 0.25f, b8, scales, NULL, 2, 3, &t);
	vec_topk_sorted(&t);
	ok(t.n == 2 && t.v[0].id == 0 && t.v[1].id == 1, "int8 scan ranks by score");
	is_dbl(t.v[0].score, 0.25 * 0.5 * 32258, 1e-3, "int8 score of row 0");
	is_dbl(t.v[1].score, 0.25 * 2 * 130, 1e-4, "int8 score of row 1");

	/* 200,000 products of 127 * 127 pass 2^31: the sum must not wrap. */
	memset(big, 127, n);
	vec_topk_reset(&t);
	vec_scan_i8(big, 1, big, &one, NULL, 1, n, &t);
	is_dbl(t.v[0].score, 16129.0 * n, 16129.0 * n * 1e-6, "a long int8 dot does not overflow");
	vec_topk_release(&t);
	free(big);
}

/*
 * Recall of the int8 path: 10,000 clustered unit vectors of 1536 dims,
 * 50 queries near them; int8 top-40 rescored with float32 must find at
 * least 95% of the exact top-10.
 */
static void test_recall(void)
{
	enum { N = 10000, D = 1536, C = 50, Q = 50, K = 10, CAND = 40 };
	float *base = xmalloc((size_t)N * D * sizeof(float));
	float *cent = xmalloc((size_t)C * D * sizeof(float));
	int8_t *codes = xmalloc((size_t)N * D);
	float *scales = xmalloc(N * sizeof(float)), q[D];
	const float *vecs[CAND];
	int8_t qc[D];
	float qs;
	struct vec_topk ex, cand, re;
	size_t i, j, found = 0, qi;
	double maxerr = 0;

	for (i = 0; i < (size_t)C * D; i++)
		cent[i] = rng_gauss();
	for (i = 0; i < N; i++) {
		const float *c = cent + (rng_next() % C) * D;

		for (j = 0; j < D; j++)
			base[i * D + j] = c[j] + 0.7f * rng_gauss();
		vec_normalize(base + i * D, D);
		vec_quantize_i8(base + i * D, D, codes + i * D, &scales[i]);
	}
	vec_topk_init(&ex, K);
	vec_topk_init(&cand, CAND);
	vec_topk_init(&re, K);
	for (qi = 0; qi < Q; qi++) {
		const float *c = cent + (rng_next() % C) * D;

		for (j = 0; j < D; j++)
			q[j] = c[j] + 0.7f * rng_gauss();
		vec_normalize(q, D);
		vec_quantize_i8(q, D, qc, &qs);
		vec_topk_reset(&ex);
		vec_topk_reset(&cand);
		vec_topk_reset(&re);
		vec_scan_f32(q, base, NULL, N, D, &ex);
		vec_scan_i8(qc, qs, codes, scales, NULL, N, D, &cand);
		vec_topk_sorted(&cand);
		for (i = 0; i < cand.n; i++) {
			double e;

			vecs[i] = base + (size_t)cand.v[i].id * D;
			e = fabs(cand.v[i].score - vec_dot(q, vecs[i], D));
			maxerr = e > maxerr ? e : maxerr;
		}
		vec_rescore_f32(q, D, cand.v, vecs, cand.n, &re);
		vec_topk_sorted(&ex);
		vec_topk_sorted(&re);
		for (i = 0; i < ex.n; i++)
			for (j = 0; j < re.n; j++)
				found += ex.v[i].id == re.v[j].id;
	}
	printf("# int8 recall@10 after rescoring 40: %.4f\n", (double)found / (Q * K));
	/* Rounding to steps of max|x| / 127 on both sides errs by about 3e-4
	 * on a typical score here and by about 1e-3 at worst. */
	ok(maxerr < 3e-3, "int8 scores are within 3e-3 of the float32 ones (max %.2g)", maxerr);
	ok((double)found / (Q * K) >= 0.95, "int8 recall@10 >= 0.95 on clustered data (%zu/%d)",
	   found, Q * K);

	/* A NULL vector skips its candidate. */
	vec_topk_reset(&re);
	vecs[0] = NULL;
	vecs[1] = base;
	vec_rescore_f32(q, D, cand.v, vecs, 2, &re);
	ok(re.n == 1 && re.v[0].id == cand.v[1].id, "rescore skips a candidate without a vector");
	vec_topk_release(&ex);
	vec_topk_release(&cand);
	vec_topk_release(&re);
	free(base);
	free(cent);
	free(codes);
	free(scales);
}

static void test_base64(void)
{
	float v[7], out[7] = { 0 }, one;
	unsigned char le[28];
	char b64[64];
	struct ai_err err;
	size_t i;
	int same = 1;

	ai_err_clear(&err);
	is_int(vec_from_base64("AACAPw==", 8, &one, 1, &err), 0, "1.0f decodes");
	is_dbl(one, 1, 0, "as 1.0");
	is_int(vec_from_base64("AAAAwA==", 8, &one, 1, &err), 0, "-2.0f decodes");
	is_dbl(one, -2, 0, "as -2.0");

	for (i = 0; i < 7; i++) {
		uint32_t u;

		v[i] = rng_gauss();
		memcpy(&u, &v[i], 4);
		le[4 * i] = (unsigned char)u;
		le[4 * i + 1] = (unsigned char)(u >> 8);
		le[4 * i + 2] = (unsigned char)(u >> 16);
		le[4 * i + 3] = (unsigned char)(u >> 24);
	}
	sodium_bin2base64(b64, sizeof(b64), le, sizeof(le), sodium_base64_VARIANT_ORIGINAL);
	is_int(vec_from_base64(b64, strlen(b64), out, 7, &err), 0, "7 floats round trip");
	for (i = 0; i < 7; i++)
		same &= memcmp(&v[i], &out[i], 4) == 0;
	ok(same, "bit for bit");

	is_int(vec_from_base64(b64, strlen(b64), out, 8, &err), -1, "too few floats for dim 8");
	is_int(err.code, AI_EX_DATAERR, "is a data error");
	ok(strstr(err.msg, "28 bytes, want 32") != NULL, "says the sizes: %s", err.msg);
	is_int(vec_from_base64(b64, strlen(b64), out, 6, &err), -1, "too many floats for dim 6");
	is_int(vec_from_base64(b64, strlen(b64) - 1, out, 7, &err), -1, "a cut string");
	ok(strstr(err.msg, "multiple of 4") != NULL, "says why: %s", err.msg);
	is_int(vec_from_base64("AACAPw", 6, &one, 1, &err), -1, "missing padding");
	is_int(vec_from_base64("AAC*Pw==", 8, &one, 1, &err), -1, "a bad character");
	is_str(err.msg, "embedding is not valid base64", "says it is not base64");
	is_int(vec_from_base64("AA=APw==", 8, &one, 1, &err), -1, "padding in the middle");
	is_int(vec_from_base64("", 0, &one, 1, &err), -1, "an empty string for dim 1");
	is_int(vec_from_base64("", 0, &one, 0, &err), -1, "dim 0");
	is_int(vec_from_base64("AACA", 4, &one, 1, &err), -1, "3 bytes for 1 float");
}

static void test_rrf(void)
{
	int64_t a[] = { 1, 2, 3 }, b[] = { 3, 1, 4 }, d[] = { 5, 5, 6 }, x[] = { 7 }, y[] = { 8 };
	struct vec_hit out[8];
	size_t n;

	n = vec_rrf(a, 3, b, 3, 60, out, 8);
	is_int(n, 4, "4 distinct ids");
	ok(n == 4 && out[0].id == 1 && out[1].id == 3 && out[2].id == 2 && out[3].id == 4,
	   "order 1, 3, 2, 4");
	is_dbl(out[0].score, 1.0 / 61 + 1.0 / 62, 1e-7, "score of 1 is 1/61 + 1/62");
	is_dbl(out[1].score, 1.0 / 63 + 1.0 / 61, 1e-7, "score of 3 is 1/63 + 1/61");
	is_dbl(out[3].score, 1.0 / 63, 1e-7, "score of 4 is 1/63");
	n = vec_rrf(a, 3, b, 3, 60, out, 2);
	ok(n == 2 && out[0].id == 1 && out[1].id == 3, "out_n 2 keeps the best 2");
	n = vec_rrf(d, 3, NULL, 0, 0, out, 8);
	ok(n == 2 && out[0].id == 5 && out[1].id == 6, "a repeated id counts once");
	is_dbl(out[1].score, 1.0 / 3, 1e-7, "at its own rank (k0 0: 1/3)");
	n = vec_rrf(x, 1, y, 1, 60, out, 8);
	ok(n == 2 && out[0].id == 7 && out[1].id == 8, "a tie keeps a's id first");
	n = vec_rrf(y, 1, x, 1, 60, out, 8);
	ok(n == 2 && out[0].id == 8 && out[1].id == 7, "whichever list is a");
	is_int(vec_rrf(NULL, 0, NULL, 0, 60, out, 8), 0, "two empty lists");
	is_int(vec_rrf(a, 3, b, 3, 60, out, 0), 0, "out_n 0");
	n = vec_rrf(NULL, 0, b, 3, 60, out, 8);
	ok(n == 3 && out[0].id == 3 && out[2].id == 4, "only b");
}

static void test_top_zscore(void)
{
	struct vec_hit v[60];

	for (size_t i = 0; i < 60; i++)
		v[i] = (struct vec_hit){ (int64_t)i, 0.5f };
	ok(isnan(vec_top_zscore(v, 9)), "fewer than 10 scores: too few to tell");
	ok(isnan(vec_top_zscore(v, 20)), "all equal: nothing stands out");
	/* 1 and nineteen 0s: mean 0.05, deviation sqrt(0.0475). */
	v[0].score = 1;
	for (size_t i = 1; i < 20; i++)
		v[i].score = 0;
	is_dbl(vec_top_zscore(v, 20), 0.95 / sqrt(0.0475), 1e-5, "z of a lone best hit");
	/* Only the first 50 count: what lies beyond changes nothing. */
	for (size_t i = 1; i < 60; i++)
		v[i].score = i < 50 ? 0.0f : -100.0f;
	is_dbl(vec_top_zscore(v, 60), vec_top_zscore(v, 50), 1e-9, "scores past the 50th are ignored");
}

static void test_rrf_weighted(void)
{
	int64_t a[] = { 1, 2, 3 }, b[] = { 4, 5, 1 };
	struct vec_hit out[8];
	size_t n;

	n = vec_rrf_weighted(a, 3, 1.0, b, 3, 0.4, 5, out, 8);
	is_int(n, 5, "5 distinct ids");
	ok(n == 5 && out[0].id == 1 && out[1].id == 2 && out[2].id == 3 && out[3].id == 4 && out[4].id == 5,
	   "a weak b reorders a's hits but its own first hit stays below a's third");
	is_dbl(out[0].score, 1.0 / 6 + 0.4 / 8, 1e-7, "score of 1 is 1/6 + 0.4/8");
	is_dbl(out[3].score, 0.4 / 6, 1e-7, "score of 4 is 0.4/6");
	n = vec_rrf_weighted(a, 3, 1.0, b, 3, 1.0, 5, out, 8);
	ok(n == 5 && out[0].id == 1 && out[1].id == 4, "at equal weights b's first hit passes a's second");
	n = vec_rrf_weighted(a, 3, 1.0, b, 3, 1.0, 60, out, 8);
	ok(n == 5 && out[0].id == 1 && out[1].id == 4, "as vec_rrf does");
}

int main(void)
{
	test_dot();
	test_normalize();
	test_rrf_weighted();
	test_top_zscore();
	test_finite();
	test_topk();
	test_quantize();
	test_recall();
	test_base64();
	test_rrf();
	return tap_done();
}
