/*
 * vec.c - the vector-search kernel (see vec.h).
 *
 * The library is built at -O2, where GCC 12 vectorises only loops whose
 * vector code replaces the scalar loop entirely and never reorders a
 * float sum.  So the kernels keep the partial sums in small fixed-size
 * arrays updated by an inner loop of known length: GCC and Clang turn the
 * array into vector registers (SLP), and the reordering is written out in
 * the source, so it is the same on every build.  Measured on 100,000 x 1536
 * vectors (tests/bench/vec-bench.sh), the float32 scan then runs close to
 * the memory bandwidth with plain SSE2.  The int8 scan is bound by the
 * arithmetic instead (widening multiplies), so on x86-64 it also gets an
 * AVX2 clone, chosen once at load time through an ifunc; it roughly halves
 * the time there.
 */
#include "rag/vec.h"

#include <math.h>
#include <sodium.h>

#if defined(__x86_64__) && defined(__GNUC__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VEC_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef VEC_CLONES
#define VEC_CLONES
#endif

/*
 * Products summed per int32 lane before a flush into 64 bits: each int8
 * product is at most 127 * 127 = 16129 in absolute value, and 65536 of
 * them (over all lanes) stay below 2^31.
 */
#define VEC_I8_CHUNK 65536

void vec_normalize(float *v, size_t dim)
{
	double s = 0, inv;
	size_t i;

	/* Double: no overflow or loss for any float input; not a hot path. */
	for (i = 0; i < dim; i++)
		s += (double)v[i] * v[i];
	if (s == 0)
		return;
	inv = 1 / sqrt(s);
	for (i = 0; i < dim; i++)
		v[i] = (float)(v[i] * inv);
}

bool vec_finite(const float *v, size_t dim)
{
	unsigned bad = 0;
	size_t i;

	/* An exponent of all ones is Inf or NaN; no early exit, so it vectorises. */
	for (i = 0; i < dim; i++) {
		uint32_t u;

		memcpy(&u, &v[i], sizeof(u));
		bad |= (u & 0x7f800000u) == 0x7f800000u;
	}
	return !bad;
}

static inline float dot_f32(const float *restrict a, const float *restrict b, size_t n)
{
	float acc[8] = { 0 }, s = 0;
	size_t i, j;

	for (i = 0; i + 8 <= n; i += 8)
		for (j = 0; j < 8; j++)
			acc[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s += a[i] * b[i];
	return s + (((acc[0] + acc[4]) + (acc[1] + acc[5])) +
		    ((acc[2] + acc[6]) + (acc[3] + acc[7])));
}

float vec_dot(const float *a, const float *b, size_t dim)
{
	return dot_f32(a, b, dim);
}

/* Does hit (id, s) rank below hit h? */
static inline bool hit_worse(float s, int64_t id, const struct vec_hit *h)
{
	return s < h->score || (s == h->score && id > h->id);
}

static void sift_down(struct vec_hit *v, size_t n, size_t i)
{
	struct vec_hit x = v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && hit_worse(v[c + 1].score, v[c + 1].id, &v[c]))
			c++;
		if (!hit_worse(v[c].score, v[c].id, &x))
			break;
		v[i] = v[c];
		i = c;
	}
	v[i] = x;
}

int vec_topk_init(struct vec_topk *t, size_t k)
{
	t->v = NULL;
	t->n = 0;
	t->k = 0;
	if (k == 0)
		return 0;
	if (k > SIZE_MAX / sizeof(*t->v)) {
		errno = ENOMEM;
		return -1;
	}
	t->v = malloc(k * sizeof(*t->v));
	if (!t->v)
		return -1;
	t->k = k;
	return 0;
}

void vec_topk_push(struct vec_topk *t, int64_t id, float score)
{
	size_t i;

	if (score != score || t->k == 0)
		return;
	if (t->n == t->k) {
		if (!hit_worse(t->v[0].score, t->v[0].id, &(struct vec_hit){ id, score }))
			return;
		t->v[0].id = id;
		t->v[0].score = score;
		sift_down(t->v, t->n, 0);
		return;
	}
	/* Sift up: the new hit climbs while it is worse than its parent. */
	i = t->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!hit_worse(score, id, &t->v[p]))
			break;
		t->v[i] = t->v[p];
		i = p;
	}
	t->v[i].id = id;
	t->v[i].score = score;
}

/* Would vec_topk_push keep (id, s)?  The cheap test the scans make first. */
static inline bool topk_wants(const struct vec_topk *t, int64_t id, float s)
{
	if (t->n < t->k)
		return true;
	return s > t->v[0].score || (s == t->v[0].score && id < t->v[0].id);
}

static int hit_cmp(const void *pa, const void *pb)
{
	const struct vec_hit *a = pa, *b = pb;

	if (hit_worse(a->score, a->id, b))
		return 1;
	if (hit_worse(b->score, b->id, a))
		return -1;
	return 0;
}

void vec_topk_sorted(struct vec_topk *t)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), hit_cmp);
}

void vec_topk_reset(struct vec_topk *t)
{
	t->n = 0;
}

void vec_topk_release(struct vec_topk *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
	t->k = 0;
}

void vec_scan_f32(const float *q, const float *base, const int64_t *ids, size_t count,
		  size_t dim, struct vec_topk *t)
{
	size_t i;

	if (t->k == 0)
		return;
	for (i = 0; i < count; i++) {
		float s = dot_f32(q, base + i * dim, dim);
		int64_t id = ids ? ids[i] : (int64_t)i;

		if (topk_wants(t, id, s))
			vec_topk_push(t, id, s);
	}
}

void vec_quantize_i8(const float *v, size_t dim, int8_t *codes, float *scale)
{
	float m = 0, inv;
	size_t i;

	for (i = 0; i < dim; i++) {
		float a = fabsf(v[i]);

		m = a > m ? a : m;
	}
	*scale = m / 127;
	if (m == 0) {
		memset(codes, 0, dim);
		return;
	}
	inv = 127 / m;
	for (i = 0; i < dim; i++) {
		long c = lrintf(v[i] * inv);

		codes[i] = (int8_t)(c > 127 ? 127 : c < -127 ? -127 : c);
	}
}

/*
 * The int8 dot product of n <= VEC_I8_CHUNK elements.  Products of two
 * int8 fit in 16 bits, which lets the vectoriser use 16-bit multiplies.
 */
static inline int32_t dot_i8_chunk(const int8_t *restrict a, const int8_t *restrict b,
				   size_t n)
{
	int32_t acc[32] = { 0 }, s = 0;
	size_t i, j;

	for (i = 0; i + 32 <= n; i += 32)
		for (j = 0; j < 32; j++)
			acc[j] += (int16_t)a[i + j] * (int16_t)b[i + j];
	for (; i < n; i++)
		s += a[i] * b[i];
	for (j = 0; j < 32; j++)
		s += acc[j];
	return s;
}

static inline int64_t dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
	int64_t s = 0;

	while (n > VEC_I8_CHUNK) {
		s += dot_i8_chunk(a, b, VEC_I8_CHUNK);
		a += VEC_I8_CHUNK;
		b += VEC_I8_CHUNK;
		n -= VEC_I8_CHUNK;
	}
	return s + dot_i8_chunk(a, b, n);
}

/*
 * Cloned as a static function called by the public one: Clang 14 names
 * the ifunc of an exported target_clones function "NAME.ifunc", which no
 * other file can link to.
 */
VEC_CLONES
static void scan_i8(const int8_t *q, float qscale, const int8_t *codes, const float *scales,
		    const int64_t *ids, size_t count, size_t dim, struct vec_topk *t)
{
	size_t i;

	for (i = 0; i < count; i++) {
		int64_t d = dot_i8(q, codes + i * dim, dim);
		float s = (float)((double)qscale * scales[i] * (double)d);
		int64_t id = ids ? ids[i] : (int64_t)i;

		if (topk_wants(t, id, s))
			vec_topk_push(t, id, s);
	}
}

void vec_scan_i8(const int8_t *q, float qscale, const int8_t *codes, const float *scales,
		 const int64_t *ids, size_t count, size_t dim, struct vec_topk *t)
{
	if (t->k > 0)
		scan_i8(q, qscale, codes, scales, ids, count, dim, t);
}

void vec_rescore_f32(const float *q, size_t dim, const struct vec_hit *cand,
		     const float *const *vecs, size_t n, struct vec_topk *t)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (vecs[i])
			vec_topk_push(t, cand[i].id, dot_f32(q, vecs[i], dim));
}

int vec_from_base64(const char *b64, size_t len, float *out, size_t dim, struct ai_err *err)
{
	unsigned char *p = (unsigned char *)out;
	size_t want, got, pad = 0, i;
	const char *end = NULL;

	if (dim == 0 || dim > SIZE_MAX / 4)
		return ai_errf(err, AI_EX_DATAERR, "embedding dimension %zu is out of range", dim);
	want = dim * 4;
	if (len % 4 != 0)
		return ai_errf(err, AI_EX_DATAERR,
			       "embedding is not valid base64: its length %zu is not a multiple of 4",
			       len);
	if (len >= 4 && b64[len - 1] == '=')
		pad += 1 + (b64[len - 2] == '=');
	got = len / 4 * 3 - pad;
	if (got != want)
		return ai_errf(err, AI_EX_DATAERR,
			       "embedding has %zu bytes, want %zu (%zu float32 values): "
			       "check the embedding model and its dimensions", got, want, dim);
	if (sodium_base642bin(p, want, b64, len, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != want || end != b64 + len)
		return ai_errf(err, AI_EX_DATAERR, "embedding is not valid base64");
	/* Little-endian bytes to host floats; a no-op on little-endian hosts. */
	for (i = 0; i < dim; i++) {
		uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
			     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;

		memcpy(&out[i], &u, sizeof(u));
	}
	return 0;
}

/* Index of the first id in l[0..n), or n. */
static size_t find_id(const int64_t *l, size_t n, int64_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (l[i] == id)
			break;
	return i;
}

/* Inserts (id, s) into out[0..*got), kept best first, at most cap long. */
static void rrf_insert(struct vec_hit *out, size_t *got, size_t cap, int64_t id, double s)
{
	float f = (float)s;
	size_t p = *got;

	/* After every equal score, so ties keep the order of arrival. */
	while (p > 0 && out[p - 1].score < f)
		p--;
	if (p == cap)
		return;
	if (*got < cap)
		(*got)++;
	memmove(&out[p + 1], &out[p], (*got - 1 - p) * sizeof(*out));
	out[p].id = id;
	out[p].score = f;
}

double vec_top_zscore(const struct vec_hit *v, size_t n)
{
	double mean = 0, var = 0;

	if (n > 50)
		n = 50;
	if (n < 10)
		return NAN;
	for (size_t i = 0; i < n; i++)
		mean += v[i].score;
	mean /= (double)n;
	for (size_t i = 0; i < n; i++)
		var += (v[i].score - mean) * (v[i].score - mean);
	var /= (double)n;
	if (!(var > 0))
		return NAN;
	return (v[0].score - mean) / sqrt(var);
}

size_t vec_rrf_weighted(const int64_t *a, size_t na, double wa, const int64_t *b, size_t nb,
			double wb, size_t k0, struct vec_hit *out, size_t out_n)
{
	size_t got = 0, i, j;

	if (out_n == 0)
		return 0;
	for (i = 0; i < na; i++) {
		double s;

		if (find_id(a, i, a[i]) < i)
			continue;
		s = wa / ((double)k0 + (double)i + 1);
		j = find_id(b, nb, a[i]);
		if (j < nb)
			s += wb / ((double)k0 + (double)j + 1);
		rrf_insert(out, &got, out_n, a[i], s);
	}
	for (j = 0; j < nb; j++) {
		if (find_id(b, j, b[j]) < j || find_id(a, na, b[j]) < na)
			continue;
		rrf_insert(out, &got, out_n, b[j], wb / ((double)k0 + (double)j + 1));
	}
	return got;
}

size_t vec_rrf(const int64_t *a, size_t na, const int64_t *b, size_t nb, size_t k0,
	       struct vec_hit *out, size_t out_n)
{
	return vec_rrf_weighted(a, na, 1.0, b, nb, 1.0, k0, out, out_n);
}
