#ifndef AI_VEC_H
#define AI_VEC_H
/*
 * vec.h - the vector-search kernel behind ai-ask: dot products, a top-k
 * heap, full scans over float32 or int8 vectors, int8 quantisation,
 * base64 embedding decoding and reciprocal-rank fusion.
 *
 * It works on plain arrays and knows nothing of the store.  Vectors are
 * row-major: vector i of a block of count vectors of dim floats starts at
 * base + i * dim.  The knowledge base keeps vectors L2-normalised, so a dot
 * product is their cosine similarity; a scan reads a block sequentially
 * and pushes every score into one struct vec_topk, so calling a scan once
 * per block gives the best k over all blocks.
 *
 * Two ways to search:
 *   - exact: vec_scan_f32 over the float32 vectors;
 *   - fast: keep int8 codes and one float scale per vector as well
 *     (vec_quantize_i8), quantise the query the same way, vec_scan_i8 into
 *     a top-k of about 4 times the k wanted, then rescore those candidates
 *     with their float32 vectors (vec_rescore_f32) into a top-k of k.
 *     The int8 scan reads a quarter of the bytes.
 *
 * The scans are portable C shaped so that GCC and Clang vectorise them at
 * -O2; on x86-64 with GCC or Clang the int8 scan also has an AVX2 clone
 * chosen at load time.  Nothing here allocates except vec_topk_init.
 */
#include "ai.h"

/* L2-normalises v in place.  A zero vector stays zero.  v should be finite. */
void vec_normalize(float *v, size_t dim);

/* Returns false when any of v[0..dim) is NaN or infinite. */
bool vec_finite(const float *v, size_t dim);

/*
 * Returns the dot product of a and b.  The sum is taken in 8 interleaved
 * partial sums, so it can differ from a left-to-right sum in the last bits.
 */
float vec_dot(const float *a, const float *b, size_t dim);

struct vec_hit {
	int64_t id;
	float score;
};

/*
 * The best k hits seen so far: a min-heap on score (the worst kept hit at
 * v[0]) while pushing; vec_topk_sorted turns it into a list.  Ranking is
 * by score, higher first, and between equal scores by id, lower first, so
 * the result does not depend on the order in which hits were pushed.
 */
struct vec_topk {
	struct vec_hit *v;  /* owned; k slots (NULL when k is 0) */
	size_t n;           /* hits held, <= k */
	size_t k;
};

/* Makes t an empty top-k of k.  Returns 0, or -1 with errno ENOMEM. */
int vec_topk_init(struct vec_topk *t, size_t k);

/*
 * Offers a hit: kept when fewer than k are held or when it ranks above the
 * worst one held (which then goes).  NaN scores are ignored.
 */
void vec_topk_push(struct vec_topk *t, int64_t id, float score);

/*
 * Sorts v[0..n) best first.  t is no longer a heap afterwards: read v, then
 * vec_topk_reset or vec_topk_release it; do not push again before a reset.
 */
void vec_topk_sorted(struct vec_topk *t);

/* Empties t, keeping k and the allocation. */
void vec_topk_reset(struct vec_topk *t);

/* Frees v and leaves t empty with k 0 (pushes are then ignored). */
void vec_topk_release(struct vec_topk *t);

/*
 * Scores the count vectors of base (dim floats each) against q by dot
 * product and pushes each into t with id ids[i], or i (the row number
 * within this call) when ids is NULL.
 */
void vec_scan_f32(const float *q, const float *base, const int64_t *ids, size_t count,
		  size_t dim, struct vec_topk *t);

/*
 * Quantises v to int8 with one scale per vector: scale = max|v[i]| / 127,
 * codes[i] = v[i] / scale rounded to nearest, in -127..127, so that
 * v[i] ~ codes[i] * scale.  A zero vector gives scale 0 and zero codes.
 * v must be finite (see vec_finite).  codes has room for dim bytes.
 */
void vec_quantize_i8(const float *v, size_t dim, int8_t *codes, float *scale);

/*
 * The int8 scan: scores codes vector i (dim bytes, row-major like
 * vec_scan_f32) as qscale * scales[i] * (integer dot product of q and the
 * codes) and pushes it into t with id ids[i], or i when ids is NULL.
 * q and qscale come from vec_quantize_i8 of the query.  The integer dot
 * is exact for any dim.
 */
void vec_scan_i8(const int8_t *q, float qscale, const int8_t *codes, const float *scales,
		 const int64_t *ids, size_t count, size_t dim, struct vec_topk *t);

/*
 * Exact rescoring of int8 candidates: for each i < n with vecs[i] not
 * NULL, pushes (cand[i].id, vec_dot(q, vecs[i], dim)) into t.  vecs[i] is
 * the float32 vector of cand[i] (borrowed; the caller fetches it from its
 * store, a NULL skips the candidate).  Typical use: vec_scan_i8 into a
 * top-k of 4k, vec_topk_sorted, fetch those vectors, rescore into a
 * top-k of k, vec_topk_sorted.
 */
void vec_rescore_f32(const float *q, size_t dim, const struct vec_hit *cand,
		     const float *const *vecs, size_t n, struct vec_topk *t);

/*
 * Decodes an embedding sent with encoding_format=base64: standard base64
 * (with padding) of dim float32 values, little-endian.  Fills out[0..dim)
 * and returns 0, or returns -1 with err set (AI_EX_DATAERR) when b64[0..len)
 * is not base64 or does not hold exactly dim floats; out may then have
 * been written to.  The values are not checked: see vec_finite.
 */
int vec_from_base64(const char *b64, size_t len, float *out, size_t dim, struct ai_err *err);

/*
 * Reciprocal-rank fusion for hybrid retrieval.  a[0..na) and b[0..nb) are
 * ranked id lists, best first (e.g. BM25 and vectors).  An id's fused
 * score is the sum over the lists that hold it of 1 / (k0 + rank), rank
 * counting from 1; only its first place in a list counts.  The usual k0
 * is 60.  Writes the best min(out_n, distinct ids) to out, best first, and
 * returns how many.  Equal scores keep the order of first appearance, a's
 * ids before b's.  Allocates nothing and takes O((na + nb)^2 + (na + nb) *
 * out_n) time: meant for lists of up to a few thousand ids.
 */
size_t vec_rrf(const int64_t *a, size_t na, const int64_t *b, size_t nb, size_t k0,
	       struct vec_hit *out, size_t out_n);

/*
 * How far the best of a ranked list of scores v[0..n) (best first, e.g.
 * cosines) stands out from the list: (v[0] - mean) / standard deviation,
 * over at most the first 50.  A list that is noise (an embedding that
 * does not know the words) has its best hit about 2.8 deviations above
 * the mean of its top 50 on the man pages of tests/fixtures/rag-dev; an
 * embedding that found the answer puts it further out.  Returns NAN when
 * n is below 10 or the scores are all equal: too few to tell.
 */
double vec_top_zscore(const struct vec_hit *v, size_t n);

/*
 * Weighted reciprocal-rank fusion: as vec_rrf, but a rank r in a adds
 * wa / (k0 + r) and in b wb / (k0 + r), so that a list known to be the
 * weaker one (wb < wa) reorders the other's hits more than it brings in
 * its own.  Weights are positive and finite.  vec_rrf is wa = wb = 1.
 */
size_t vec_rrf_weighted(const int64_t *a, size_t na, double wa, const int64_t *b, size_t nb,
			double wb, size_t k0, struct vec_hit *out, size_t out_n);

#endif
