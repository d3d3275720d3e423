/* t_kb.c - tests for the knowledge-base store (common/rag/kb.c). */
#include "rag/kb.h"
#include "rag/retrieve.h"
#include "buf.h"
#include "rag/vec.h"

#include <math.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "tap.h"

static char dir[] = "/tmp/t_kb.XXXXXX";
static char path[256];

static void xpath(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* Puts a document of the given chunk texts; vectors from vecs (NULL: none). */
static int put(struct kb *kb, const char *coll, const char *source, const char *const *texts, size_t n,
	       const float *vecs, size_t dim, const char *model, struct ai_err *err)
{
	struct kb_chunk c[16];
	struct kb_doc d;
	char hash[65];
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		c[i].text = texts[i];
		c[i].len = strlen(texts[i]);
		c[i].line_start = 2 * i + 1;
		c[i].line_end = 2 * i + 2;
		c[i].heading = i ? "Guide > Part" : NULL;
		total += c[i].len;
	}
	kb_hash(texts[0], strlen(texts[0]), hash);
	d.source = source;
	d.hash = hash;
	d.size = (int64_t)total;
	d.mtime = 1700000000;
	return kb_put(kb, coll, &d, c, n, vecs, dim, model, NULL, err);
}

static int count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int on_doc(const struct kb_doc_info *d, void *ud)
{
	struct buf *b = ud;

	buf_addf(b, "%s:%lld;", d->source, (long long)d->chunks);
	return 0;
}

static void test_open_errors(void)
{
	struct kb *kb = NULL;
	struct ai_err err;
	char p[300];
	FILE *f;
	sqlite3 *db;

	xpath(p, sizeof(p), "missing.db");
	ok(kb_open(&kb, p, KB_READ, &err) == -1 && !kb, "reading a missing index fails");
	is_int(err.code, AI_EX_NOINPUT, "as no input");
	ok(strstr(err.msg, "no index at") && strstr(err.msg, "ai-index"), "saying to build one: %s", err.msg);

	xpath(p, sizeof(p), "text.db");
	f = fopen(p, "w");
	fputs("this is not a database, only some text that is long enough to have a header......\n", f);
	fclose(f);
	ok(kb_open(&kb, p, KB_WRITE, &err) == -1, "a text file is refused for writing");
	is_int(err.code, AI_EX_DATAERR, "as bad data");
	ok(strstr(err.msg, "not an ai-index database") != NULL, "clearly: %s", err.msg);
	ok(kb_open(&kb, p, KB_READ, &err) == -1 && strstr(err.msg, "not an ai-index database"),
	   "and for reading: %s", err.msg);

	xpath(p, sizeof(p), "other.db");
	sqlite3_open(p, &db);
	sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
	sqlite3_close(db);
	ok(kb_open(&kb, p, KB_WRITE, &err) == -1 && strstr(err.msg, "SQLite database but not"),
	   "another program's database is refused: %s", err.msg);

	xpath(p, sizeof(p), "newer.db");
	ok(kb_open(&kb, p, KB_WRITE, &err) == 0, "a new index is created");
	kb_close(kb);
	sqlite3_open(p, &db);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	ok(kb_open(&kb, p, KB_READ, &err) == -1 && strstr(err.msg, "schema 99") && strstr(err.msg, "(3)"),
	   "a newer schema is refused, naming both: %s", err.msg);
	ok(kb_open(&kb, p, KB_WRITE, &err) == -1 && err.code == AI_EX_DATAERR, "also for writing");
	sqlite3_open(p, &db);
	sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL);
	sqlite3_close(db);
	ok(kb_open(&kb, p, KB_READ, &err) == -1 && strstr(err.msg, "schema 1") && strstr(err.msg, "older") &&
	   strstr(err.msg, "build it again"), "an older schema (vectors inside SQLite) is refused: %s", err.msg);
	ok(kb_open(&kb, p, KB_WRITE, &err) == -1 && err.code == AI_EX_DATAERR, "also for writing");

	xpath(p, sizeof(p), "empty.db");
	f = fopen(p, "w");
	fclose(f);
	ok(kb_open(&kb, p, KB_READ, &err) == -1 && err.code == AI_EX_NOINPUT, "an empty file is no index");
	xpath(p, sizeof(p), "sub/dir/new.db");
	ok(kb_open(&kb, p, KB_WRITE, &err) == 0, "directories are made for a new index");
	kb_close(kb);
}

static void test_bm25(struct kb *kb)
{
	static const char *const a[] = { "The kettle boils water for tea.", "Green tea steeps for two minutes." };
	static const char *const b[] = { "Bicycles need air in their tyres.", "Oil the chain every month." };
	struct kb_query q = { 0 };
	struct kb_results r;
	struct ai_err err;
	bool same, found;
	char hash[65];
	struct buf l;

	ok(put(kb, NULL, "tea.md", a, 2, NULL, 0, NULL, &err) == 0, "a document is stored");
	ok(put(kb, NULL, "bike.txt", b, 2, NULL, 0, NULL, &err) == 0, "another");
	kb_hash(a[0], strlen(a[0]), hash);
	ok(kb_unchanged(kb, NULL, "tea.md", hash, &same, &err) == 0 && same, "its hash is known");
	ok(kb_unchanged(kb, NULL, "tea.md", "00", &same, &err) == 0 && !same, "another hash is a change");
	ok(kb_unchanged(kb, "nope", "tea.md", hash, &same, &err) == 0 && !same, "another collection knows nothing");

	q.text = "how long does green tea steep?";
	q.k = 5;
	ok(kb_search(kb, &q, &r, &err) == 0, "BM25 search");
	ok(r.n >= 1 && !r.hybrid, "finds passages, not hybrid");
	if (r.n) {
		is_str(r.v[0].source, "tea.md", "the best is from tea.md");
		is_str(r.v[0].text, a[1], "its text");
		is_str(r.v[0].heading, "Guide > Part", "its heading");
		is_int(r.v[0].line_start, 3, "line start");
		is_int(r.v[0].line_end, 4, "line end");
		ok(r.v[0].bm25_rank == 1 && r.v[0].vec_rank == 0 && isnan(r.v[0].cosine), "ranks");
	}
	kb_results_release(&r);
	q.text = "\"quoted\" AND OR NOT ( * chain";
	ok(kb_search(kb, &q, &r, &err) == 0 && r.n == 1, "FTS operators in a question are plain words: %s", err.msg);
	kb_results_release(&r);
	q.text = "zebra";
	ok(kb_search(kb, &q, &r, &err) == 0 && r.n == 0, "no match is no passage, not an error");
	kb_results_release(&r);
	q.text = "";
	ok(kb_search(kb, &q, &r, &err) == 0 && r.n == 0, "an empty question finds nothing");
	kb_results_release(&r);
	q.text = "the";
	ok(kb_search(kb, &q, &r, &err) == 0 && r.n >= 1, "a question of stop words alone still searches");
	kb_results_release(&r);
	q.coll = "absent";
	ok(kb_search(kb, &q, &r, &err) == -1 && err.code == AI_EX_NOINPUT, "a missing collection: %s", err.msg);
	q.coll = NULL;

	/* Replacing a document keeps one copy. */
	ok(put(kb, NULL, "bike.txt", b, 1, NULL, 0, NULL, &err) == 0, "a changed document is replaced");
	is_int(count_rows("SELECT count(*) FROM chunks_fts"), 3, "old chunks are gone from FTS");
	q.text = "chain";
	ok(kb_search(kb, &q, &r, &err) == 0 && r.n == 0, "and from search");
	kb_results_release(&r);

	buf_init(&l, 0);
	ok(kb_list(kb, KB_DEFAULT_COLLECTION, on_doc, &l, &err) == 0, "list");
	is_str(l.data, "bike.txt:1;tea.md:2;", "documents by source with their chunks");
	buf_reset(&l);
	ok(kb_list(kb, NULL, on_doc, &l, &err) == 0, "list collections");
	is_str(l.data, "default:3;", "one collection");
	buf_release(&l);

	ok(kb_remove(kb, NULL, "bike.txt", &found, &err) == 0 && found, "remove");
	ok(kb_remove(kb, NULL, "bike.txt", &found, &err) == 0 && !found, "remove again finds nothing");
	is_int(count_rows("SELECT count(*) FROM chunks"), 2, "its chunks went");
}

/* A vector near axis a (unit), with a little of axis b. */
static void axis(float *v, size_t dim, size_t a, size_t b)
{
	memset(v, 0, dim * sizeof(*v));
	v[a % dim] = 1.0f;
	v[b % dim] += 0.2f;
}

static void test_vectors(struct kb *kb)
{
	enum { D = 8 };
	static const char *const t[] = { "alpha one", "beta two", "gamma three" };
	static const char *const u[] = { "delta four", "epsilon five" };
	float v[3 * D], w[2 * D], q[D], bad[2 * D];
	struct kb_query qq = { 0 };
	struct kb_results r;
	struct kb_stats s;
	struct ai_err err;

	axis(v, D, 0, 1);
	axis(v + D, D, 1, 2);
	axis(v + 2 * D, D, 2, 3);
	axis(w, D, 3, 4);
	axis(w + D, D, 4, 5);
	for (size_t i = 0; i < 3 * D; i++)
		v[i] *= 3;  /* stored normalised whatever comes in */
	ok(put(kb, "vec", "v1", t, 3, v, D, "emb-a", &err) == 0, "vectors are stored: %s", err.msg);
	ok(put(kb, "vec", "v2", u, 2, w, D, "emb-a", &err) == 0, "more");
	ok(kb_stats(kb, "vec", &s, &err) == 0 && s.exists, "stats");
	is_str(s.model, "emb-a", "the collection's model");
	is_int(s.dim, D, "its dimension");
	is_int(s.documents, 2, "documents");
	is_int(s.chunks, 5, "chunks");
	is_int(s.vectors, 5, "vectors");
	kb_stats_release(&s);

	/* Rejected documents leave the store unchanged. */
	memcpy(bad, w, sizeof(bad));
	bad[3] = NAN;
	ok(put(kb, "vec", "v2", u, 2, bad, D, "emb-a", &err) == -1 && err.code == AI_EX_DATAERR &&
	   strstr(err.msg, "NaN"), "NaN is refused: %s", err.msg);
	memset(bad, 0, sizeof(bad));
	ok(put(kb, "vec", "v2", u, 2, bad, D, "emb-a", &err) == -1 && strstr(err.msg, "zero"),
	   "a zero vector is refused: %s", err.msg);
	ok(put(kb, "vec", "v2", u, 1, w, D - 1, "emb-a", &err) == -1 && strstr(err.msg, "dimension 7") &&
	   strstr(err.msg, "dimension 8"), "another dimension is refused, naming both: %s", err.msg);
	ok(put(kb, "vec", "v2", u, 2, w, D, "emb-b", &err) == -1 && strstr(err.msg, "'emb-a'") &&
	   strstr(err.msg, "'emb-b'"), "another model is refused, naming both: %s", err.msg);
	ok(kb_stats(kb, "vec", &s, &err) == 0 && s.documents == 2 && s.chunks == 5 && s.vectors == 5,
	   "and the store is unchanged");
	kb_stats_release(&s);
	is_int(count_rows("SELECT count(*) FROM chunks_fts WHERE coll = (SELECT id FROM collections WHERE name = 'vec')"),
	       5, "FTS too");

	axis(q, D, 1, 1);
	qq.coll = "vec";
	qq.text = "nothing in common";
	qq.k = 2;
	qq.qvec = q;
	qq.qdim = D;
	qq.qmodel = "emb-a";
	for (int i8 = 0; i8 < 2; i8++) {
		qq.int8 = i8;
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.hybrid, "vector search (%s): %s", i8 ? "int8" : "f32", err.msg);
		ok(r.n == 1, "only the passage above the cosine floor");
		if (r.n) {
			is_str(r.v[0].text, "beta two", "the nearest chunk");
			is_dbl(r.v[0].cosine, 1.0 / sqrt(1.04), 1e-5, "its exact cosine");
			ok(r.v[0].vec_rank == 1 && r.v[0].bm25_rank == 0, "ranked by the vectors alone");
		}
		kb_results_release(&r);
	}
	qq.min_cosine = -1;
	qq.int8 = false;
	ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 2, "without a floor, k passages");
	kb_results_release(&r);
	qq.text = "epsilon";
	ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 2, "hybrid");
	if (r.n == 2) {
		/* "epsilon five" is first in BM25 and in the vectors' list somewhere; "beta two" only in vectors. */
		ok(r.v[0].score > r.v[1].score, "fused scores descend");
	}
	kb_results_release(&r);
	qq.no_bm25 = true;
	ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 2 && r.hybrid, "vectors alone");
	for (size_t i = 0; i < r.n; i++)
		ok(r.v[i].bm25_rank == 0 && isnan(r.v[i].bm25) && r.v[i].vec_rank == (int)i + 1, "no BM25 rank");
	kb_results_release(&r);
	qq.no_bm25 = false;
	qq.coll = NULL;
	qq.qvec = NULL;
	ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 0, "BM25 keeps to its collection among several");
	kb_results_release(&r);
	qq.coll = "vec";
	qq.qvec = q;
	qq.qmodel = "emb-b";
	ok(kb_search(kb, &qq, &r, &err) == -1 && strstr(err.msg, "'emb-a'") && strstr(err.msg, "'emb-b'"),
	   "a question embedded by another model is refused, naming both: %s", err.msg);
	qq.qmodel = "emb-a";
	qq.qdim = D - 1;
	ok(kb_search(kb, &qq, &r, &err) == -1 && strstr(err.msg, "dimension"), "another dimension too: %s", err.msg);
	qq.qdim = D;
	ok(rag_retrieve(kb, NULL, &qq, &r, &err) == 0 && !r.hybrid && r.n == 1, "retrieve without a client: BM25");
	kb_results_release(&r);
}

/* Many vectors in several blocks: int8 and f32 agree with a plain scan. */
static void test_blocks(struct kb *kb)
{
	enum { D = 16, N = KB_BLOCK + 100 };
	float *v = malloc((size_t)N * D * sizeof(float)), q[D];
	struct kb_chunk *c = malloc(N * sizeof(*c));
	struct kb_doc d = { "big", "h", 1, 0 };
	struct kb_query qq = { 0 };
	struct kb_results r;
	struct ai_err err;
	uint64_t x = 1;
	int best = -1;
	float bs = -2;

	for (size_t i = 0; i < (size_t)N * D; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (float)((double)(x >> 40) / 8388608.0 - 1.0);
	}
	for (size_t i = 0; i < N; i++) {
		vec_normalize(v + i * D, D);
		c[i].text = "x";
		c[i].len = 1;
		c[i].line_start = c[i].line_end = i + 1;
		c[i].heading = NULL;
	}
	memcpy(q, v + 4100 * D, sizeof(q));
	q[0] += 0.05f;
	vec_normalize(q, D);
	for (int i = 0; i < N; i++) {
		float s = vec_dot(q, v + (size_t)i * D, D);

		if (s > bs) {
			bs = s;
			best = i;
		}
	}
	ok(kb_put(kb, "big", &d, c, N, v, D, "m", NULL, &err) == 0, "%d vectors in two blocks", N);
	is_int(count_rows("SELECT count(*) FROM vblocks WHERE coll = (SELECT id FROM collections WHERE name='big')"), 2,
	       "stored as two blocks");
	qq.coll = "big";
	qq.text = "";
	qq.k = 3;
	qq.qvec = q;
	qq.qdim = D;
	qq.qmodel = "m";
	for (int i8 = 0; i8 < 2; i8++) {
		qq.int8 = i8;
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.n >= 1, "search over blocks (%s)", i8 ? "int8" : "f32");
		if (r.n) {
			is_int(r.v[0].line_start, best + 1, "finds the nearest vector");
			is_dbl(r.v[0].cosine, bs, 1e-5, "with its exact score");
		}
		kb_results_release(&r);
	}
	free(v);
	free(c);
}

/*
 * A collection big enough that a scan is split between threads (on a
 * machine of several cores): the split must not change the answer.
 */
static void test_parallel(struct kb *kb)
{
	enum { D = 768, N = 3 * KB_BLOCK + 7, K = 10 };
	float *v = malloc((size_t)N * D * sizeof(float)), q[D], best[K];
	int64_t want[K];
	struct kb_chunk *c = malloc(N * sizeof(*c));
	struct kb_doc d = { "par", "h", 1, 0 };
	struct kb_query qq = { 0 };
	struct kb_results r;
	struct ai_err err;
	uint64_t x = 7;

	for (size_t i = 0; i < (size_t)N * D; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (float)((double)(x >> 40) / 8388608.0 - 1.0);
	}
	for (size_t i = 0; i < N; i++) {
		vec_normalize(v + i * D, D);
		c[i].text = "y";
		c[i].len = 1;
		c[i].line_start = c[i].line_end = i + 1;
		c[i].heading = NULL;
	}
	memcpy(q, v + 9000 * (size_t)D, sizeof(q));
	for (size_t j = 0; j < D; j += 3)
		q[j] += 0.02f;
	vec_normalize(q, D);
	/* The exact top K by brute force, as line numbers. */
	for (int i = 0; i < K; i++) {
		best[i] = -2;
		want[i] = -1;
	}
	for (int i = 0; i < N; i++) {
		float sc = vec_dot(q, v + (size_t)i * D, D);
		int at = K;

		while (at > 0 && sc > best[at - 1])
			at--;
		if (at == K)
			continue;
		memmove(best + at + 1, best + at, (size_t)(K - 1 - at) * sizeof(*best));
		memmove(want + at + 1, want + at, (size_t)(K - 1 - at) * sizeof(*want));
		best[at] = sc;
		want[at] = i + 1;
	}
	ok(kb_put(kb, "par", &d, c, N, v, D, "m", NULL, &err) == 0, "%d vectors of %d: %s", N, D, err.msg);
	qq.coll = "par";
	qq.text = "";
	qq.k = K;
	qq.candidates = K;
	qq.qvec = q;
	qq.qdim = D;
	qq.qmodel = "m";
	qq.min_cosine = -1;
	for (int i8 = 0; i8 < 2; i8++) {
		int same = 0;

		qq.int8 = i8;
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == K, "a split scan (%s): %s", i8 ? "int8" : "f32", err.msg);
		for (size_t i = 0; i < r.n; i++)
			same += (int64_t)r.v[i].line_start == want[i];
		if (i8)
			ok(same >= K - 2 && r.n && (int64_t)r.v[0].line_start == want[0],
			   "int8 finds the exact best and at least %d of the top %d in place: %d", K - 2, K, same);
		else
			is_int(same, K, "finds the exact top 10, in order");
		if (r.n)
			is_dbl(r.v[0].cosine, best[0], 1e-5, "with the exact score");
		kb_results_release(&r);
	}
	free(v);
	free(c);
}

/* Copies file a to b; 0 or -1. */
static int copy_file(const char *a, const char *b)
{
	FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
	char buf[4096];
	size_t n;
	int r = in && out ? 0 : -1;

	while (!r && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			r = -1;
	if (in)
		fclose(in);
	if (out && fclose(out))
		r = -1;
	return r;
}

/* The vector file beside the index: missing, cut short, another index's, a killed writer's tail. */
static void test_vecfile(void)
{
	enum { D = 8 };
	static const char *const t[] = { "alpha one", "beta two", "gamma three" };
	char p[300], vp[310], other[300], ovp[310], save[330];
	float v[3 * D], q[D];
	struct kb_query qq = { 0 };
	struct kb_results r;
	struct ai_err err;
	struct kb *kb, *kb2;
	struct stat sb;
	off_t size;
	FILE *f;

	xpath(p, sizeof(p), "side.db");
	snprintf(vp, sizeof(vp), "%s.vec", p);
	snprintf(save, sizeof(save), "%s.save", vp);
	xpath(other, sizeof(other), "twin.db");
	snprintf(ovp, sizeof(ovp), "%s.vec", other);
	axis(v, D, 0, 1);
	axis(v + D, D, 1, 2);
	axis(v + 2 * D, D, 2, 3);
	axis(q, D, 1, 1);
	ok(kb_open(&kb, p, KB_WRITE, &err) == 0, "a new index");
	ok(stat(vp, &sb) == 0 && sb.st_size == 64 && (sb.st_mode & 0777) == 0600,
	   "has a vector file of a header alone, mode 0600");
	ok(put(kb, NULL, "a", t, 3, v, D, "m", &err) == 0, "vectors stored: %s", err.msg);
	kb_close(kb);
	ok(stat(vp, &sb) == 0 && sb.st_size == 64 + 16 + 3 * (8 + 4 + D + 4 * D), "the block appended: %lld bytes",
	   (long long)sb.st_size);
	size = sb.st_size;
	ok(kb_open(&kb2, other, KB_WRITE, &err) == 0, "another index: %s", err.msg);
	kb_close(kb2);

	qq.text = "beta";
	qq.k = 2;
	qq.qvec = q;
	qq.qdim = D;
	qq.qmodel = "m";
	ok(copy_file(vp, save) == 0, "saved the vector file");
	for (int c = 0; c < 4; c++) {
		static const char *const what[] = { "missing", "cut short", "another index's", "not one" };
		static const char *const says[] = { "is missing", "is cut short", "belongs to another index",
						     "is not one" };

		if (c == 0)
			unlink(vp);
		else if (c == 1)
			ok(copy_file(save, vp) == 0 && truncate(vp, size - 5) == 0, "cut");
		else if (c == 2)
			ok(copy_file(ovp, vp) == 0, "swapped");
		else if ((f = fopen(vp, "wb"))) {
			fputs("not a vector file at all, but text long enough for a header of sixty-four", f);
			fclose(f);
		}
		ok(kb_open(&kb, p, KB_READ, &err) == 0, "the index opens without its vector file (%s)", what[c]);
		for (int i8 = 0; i8 < 2; i8++) {
			qq.int8 = i8;
			ok(kb_search(kb, &qq, &r, &err) == -1 && err.code == AI_EX_DATAERR && strstr(err.msg, says[c]) &&
			   strstr(err.msg, vp) && strstr(err.msg, "build the index again"),
			   "a vector search says the file %s, and what to do (%s): %s", says[c], i8 ? "int8" : "f32",
			   err.msg);
		}
		qq.qvec = NULL;
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 1, "BM25 alone still works: %s", err.msg);
		kb_results_release(&r);
		qq.qvec = q;
		kb_close(kb);
		ok(kb_open(&kb, p, KB_WRITE, &err) == 0 && put(kb, NULL, "b", t, 1, v, D, "m", &err) == -1 &&
		   err.code == AI_EX_DATAERR && strstr(err.msg, says[c]), "writing vectors is refused too: %s",
		   err.msg);
		kb_close(kb);
	}

	/* A writer killed mid-append leaves bytes nothing names; the next appends after them. */
	ok(copy_file(save, vp) == 0 && (f = fopen(vp, "ab")) && fputs("AIKBBLK1 half a block", f) >= 0 &&
	   fclose(f) == 0, "a torn tail");
	ok(kb_open(&kb, p, KB_WRITE, &err) == 0, "reopened for writing");
	axis(v, D, 5, 6);
	ok(put(kb, NULL, "b", t, 1, v, D, "m", &err) == 0, "another document after the torn tail: %s", err.msg);
	axis(q, D, 5, 5);
	for (int i8 = 0; i8 < 2; i8++) {
		qq.int8 = i8;
		qq.text = "";
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 1, "found (%s): %s", i8 ? "int8" : "f32", err.msg);
		if (r.n)
			is_str(r.v[0].source, "b", "the new document's vector");
		kb_results_release(&r);
	}
	kb_close(kb);
	unlink(save);
}

/*
 * A block whose float32 part is not 4-byte aligned in the file (three
 * vectors of three dims put it at byte 125) is scanned right (a scan in
 * place would be a misaligned read, which the sanitizer build traps), and
 * a file cut short under an open index, between two searches, is found
 * by the next one as an error (a scan of a stale map would be a SIGBUS).
 */
static void test_mapped(void)
{
	enum { D = 3 };
	static const char *const t[] = { "red apple", "green pear", "blue plum" };
	char p[300], vp[310];
	float v[3 * D], q[D];
	struct kb_query qq = { 0 };
	struct kb_results r;
	struct ai_err err;
	struct kb *kb;
	struct stat sb;

	xpath(p, sizeof(p), "mapped.db");
	snprintf(vp, sizeof(vp), "%s.vec", p);
	axis(v, D, 0, 1);
	axis(v + D, D, 1, 2);
	axis(v + 2 * D, D, 2, 0);
	axis(q, D, 1, 1);
	ok(kb_open(&kb, p, KB_WRITE, &err) == 0 && put(kb, NULL, "a", t, 3, v, D, "m", &err) == 0,
	   "three vectors of three dims: %s", err.msg);
	kb_close(kb);
	ok(stat(vp, &sb) == 0 && (64 + 16 + 3 * (8 + 4 + D)) % 4 == 1, "their float32 part is misaligned");
	qq.text = "";
	qq.k = 3;
	qq.qvec = q;
	qq.qdim = D;
	qq.qmodel = "m";
	qq.min_cosine = -1;
	ok(kb_open(&kb, p, KB_READ, &err) == 0, "opened to read");
	for (int i8 = 0; i8 < 2; i8++) {
		qq.int8 = i8;
		ok(kb_search(kb, &qq, &r, &err) == 0 && r.n == 3, "searched (%s): %s", i8 ? "int8" : "f32", err.msg);
		if (r.n == 3) {
			is_int(r.v[0].line_start, 3, "the nearest first");
			is_dbl(r.v[0].cosine, 1 / sqrt(1.04), 1e-6, "with its exact score");
		}
		kb_results_release(&r);
	}
	ok(truncate(vp, sb.st_size - 7) == 0, "the file cut short under the open index");
	for (int i8 = 0; i8 < 2; i8++) {
		qq.int8 = i8;
		ok(kb_search(kb, &qq, &r, &err) == -1 && err.code == AI_EX_DATAERR && strstr(err.msg, "is cut short"),
		   "the next search says so (%s): %s", i8 ? "int8" : "f32", err.msg);
	}
	kb_close(kb);
}

/* The chunk size learned of a collection's server: per collection, replaced, kept across opens. */
static void test_embed_limit(struct kb *kb)
{
	struct ai_err err;
	size_t n = 99;

	ok(kb_embed_limit(kb, "nolimit", &n, &err) == 0 && n == 0, "nothing learned: 0");
	ok(kb_set_embed_limit(kb, "lim", 200, &err) == 0, "set: %s", err.msg);
	ok(kb_set_embed_limit(kb, "lim", 100, &err) == 0, "set again");
	ok(kb_embed_limit(kb, "lim", &n, &err) == 0 && n == 100, "the last one is kept (%zu)", n);
	ok(kb_embed_limit(kb, "lim2", &n, &err) == 0 && n == 0, "another collection has its own");
	ok(kb_embed_limit(kb, "li", &n, &err) == 0 && n == 0, "a prefix of the name is not the name");
}

int main(void)
{
	struct kb *kb;
	struct ai_err err;
	char cmd[300];

	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_open_errors();
	xpath(path, sizeof(path), "index.db");
	ok(kb_open(&kb, path, KB_WRITE, &err) == 0, "open a new index: %s", err.msg);
	is_str(kb_path(kb), path, "its path");
	test_bm25(kb);
	test_vectors(kb);
	test_blocks(kb);
	test_parallel(kb);
	test_embed_limit(kb);
	kb_close(kb);
	test_vecfile();
	test_mapped();
	ok(kb_open(&kb, path, KB_READ, &err) == 0, "reopen for reading");
	{
		size_t n = 0;

		ok(kb_embed_limit(kb, "lim", &n, &err) == 0 && n == 100, "the learned size outlives the run");
	}
	kb_close(kb);
	is_int(count_rows("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1,
	       "integrity_check ok");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
