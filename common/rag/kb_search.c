/*
 * kb_search.c - search in the knowledge base: BM25 over FTS5, the vector
 * scan (float32 or int8, on several threads), and their fusion by
 * weighted reciprocal rank (kb.h says why weighted).
 */
#include "rag/kb_int.h"
#include "buf.h"
#include "rag/vec.h"

#include <math.h>
#include <pthread.h>
#include <strings.h>
#include <unistd.h>

#define KB_MIN_COSINE 0.3
#define KB_MAX_TERMS 64
/* Bytes read from the vector file at a time into one reused buffer: small
 * enough that the slice stays in the L2 cache between the copy out of the
 * page cache and the scan. */
#define KB_SLICE_BYTES (256u * 1024)

/* ---- search ------------------------------------------------------------- */

static bool word_byte(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch >= 0x80;
}

/* Words too common to help BM25 rank, dropped from a question that has others. */
static bool stop_word(const char *w, size_t n)
{
	static const char *const stop[] = {
		"a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
		"how", "i", "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was",
		"what", "when", "where", "which", "who", "why", "with", "you",
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(stop); i++)
		if (strlen(stop[i]) == n && !strncasecmp(stop[i], w, n))
			return true;
	return false;
}

/*
 * The FTS5 query for a question: its words, each quoted (so no word is read
 * as an operator), joined by OR; stop words dropped unless nothing else is
 * left.  An empty result means there is nothing to search for.
 */
static int fts_query(const char *text, struct buf *q)
{
	for (int pass = 0; pass < 2 && !q->len; pass++) {
		const unsigned char *s = (const unsigned char *)text;
		int terms = 0;

		while (*s && terms < KB_MAX_TERMS) {
			const unsigned char *w;

			while (*s && !word_byte(*s))
				s++;
			if (!*s)
				break;
			for (w = s; *s && word_byte(*s); s++)
				;
			if (!pass && stop_word((const char *)w, (size_t)(s - w)))
				continue;
			if ((q->len && buf_addstr(q, " OR ")) || buf_addch(q, '"') ||
			    buf_add(q, w, (size_t)(s - w)) || buf_addch(q, '"'))
				return -1;
			terms++;
		}
	}
	return 0;
}

/*
 * BM25's top n for the question, best first, into ids/scores (*got of
 * them).  The collection filter is left out when the index holds one
 * collection: FTS5 reads the coll column from its content table for every
 * match, which doubled the time of a question of common words at 100,000
 * chunks.
 */
static int search_bm25(struct kb *kb, int64_t coll, const char *text, size_t n, int64_t *ids,
		       double *scores, size_t *got, struct ai_err *err)
{
	long long colls = 0;
	struct buf q;
	sqlite3_stmt *st;
	int rc;

	*got = 0;
	buf_init(&q, 0);
	if (fts_query(text, &q)) {
		buf_release(&q);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (!q.len) {
		buf_release(&q);
		return 0;
	}
	if ((rc = kb_query_int(kb, "SELECT count(*) FROM collections", &colls)) != SQLITE_OK) {
		buf_release(&q);
		return kb_db_err(kb, rc, "search", err);
	}
	if (!(st = kb_prep(kb, colls == 1 ? "SELECT rowid, rank FROM chunks_fts"
			" WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?3"
			: "SELECT rowid, rank FROM chunks_fts"
			" WHERE chunks_fts MATCH ?1 AND coll = ?2 ORDER BY rank LIMIT ?3", err))) {
		buf_release(&q);
		return -1;
	}
	sqlite3_bind_text(st, 1, q.data, (int)q.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, coll);
	sqlite3_bind_int64(st, 3, (int64_t)n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *got < n) {
		ids[*got] = sqlite3_column_int64(st, 0);
		scores[*got] = sqlite3_column_double(st, 1);
		(*got)++;
	}
	sqlite3_finalize(st);
	buf_release(&q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return kb_db_err(kb, rc, "search", err);
	return 0;
}

/* Most threads a scan uses, and the least vectors worth a thread. */
#define KB_SCAN_THREADS 4
#define KB_SCAN_MIN (4u << 20)

/* One thread's share of a scan: vectors [from, to) of the collection, in block order. */
struct scan_part {
	struct kb *kb;          /* read only: its vector file and paths */
	const struct kb_block *b;
	size_t nb, dim, from, to;
	const float *q;         /* float32 scan */
	const int8_t *qc;       /* int8 scan: the quantised query */
	float qscale;
	struct vec_topk t;      /* owned; hits are chunk ids (float32) or block << 16 | position (int8) */
	struct ai_err err;
	int r;
};

/*
 * Scans p's share: each block's vectors (or codes) read in slices into one
 * small buffer, which the scan reads while it is still in the cache.
 * pread into a reused buffer rather than mmap.  Mapped (tried again on
 * Linux 6.18, whose fault-around maps the page cache's large folios in
 * about 9,000 faults for 614 MB), the scan was no faster: the copy is
 * where the vectors first leave memory, and mapped, the scan stalls on the
 * same reads instead.  A map would also count the whole file in the
 * process's RSS (605 MB against 13) and turn a file cut short during a
 * search into a SIGBUS rather than this file's "cut short" error.
 */
static void *scan_part(void *arg)
{
	struct scan_part *p = arg;
	size_t dim = p->dim, es = p->qc ? 1 : sizeof(float);
	size_t per = KB_SLICE_BYTES / (dim * es) ? KB_SLICE_BYTES / (dim * es) : 1, first = 0;
	char *buf = malloc(per * dim * es), *tmp = malloc(kb_codes_at(KB_BLOCK));
	int64_t *ids = malloc(KB_BLOCK * sizeof(int64_t)), *pos = malloc(per * sizeof(int64_t));
	float *scales = malloc(KB_BLOCK * sizeof(float));

	if (!buf || !tmp || !ids || !pos || !scales) {
		p->r = ai_errf(&p->err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->nb && first < p->to && !p->r; first += p->b[i++].count) {
		const struct kb_block *bk = &p->b[i];
		size_t lo = p->from > first ? p->from - first : 0;
		size_t hi = p->to - first < bk->count ? p->to - first : bk->count;
		int64_t base = bk->off + (int64_t)(p->qc ? kb_codes_at(bk->count) : kb_f32_at(bk->count, dim));

		if (lo >= hi)
			continue;
		if ((p->r = kb_read_head(p->kb, bk, dim, ids, p->qc ? scales : NULL, tmp, &p->err)))
			break;
		for (size_t at = lo; at < hi; at += per) {
			size_t m = hi - at < per ? hi - at : per;

			if ((p->r = kb_vread(p->kb, buf, m * dim * es, base + (int64_t)(at * dim * es), &p->err)))
				break;
			if (p->qc) {
				for (size_t j = 0; j < m; j++)
					pos[j] = (int64_t)i << 16 | (int64_t)(at + j);
				vec_scan_i8(p->qc, p->qscale, (const int8_t *)buf, scales + at, pos, m, dim, &p->t);
			} else {
				vec_scan_f32(p->q, (const float *)buf, ids + at, m, dim, &p->t);
			}
		}
	}
out:
	free(buf);
	free(tmp);
	free(ids);
	free(pos);
	free(scales);
	return NULL;
}

/*
 * Scans the blocks into t (k slots), in up to KB_SCAN_THREADS threads of
 * at least KB_SCAN_MIN bytes each, one per core: the copy out of the page
 * cache and the scan are both bound by one core's memory bandwidth.
 * Each thread keeps its own top-k; they are merged into t, and as a
 * top-k ranks ties by id the result does not depend on the split.
 */
static int scan_parallel(struct kb *kb, const struct kb_block *b, size_t nb, size_t dim, const float *q,
			 const int8_t *qc, float qscale, struct vec_topk *t, struct ai_err *err)
{
	struct scan_part part[KB_SCAN_THREADS];
	pthread_t th[KB_SCAN_THREADS];
	bool started[KB_SCAN_THREADS] = { false };
	size_t total = 0, n, bytes;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int r = 0;

	for (size_t i = 0; i < nb; i++)
		total += b[i].count;
	bytes = total * dim * (qc ? 1 : sizeof(float));
	n = cores > 1 ? (size_t)cores : 1;
	if (n > KB_SCAN_THREADS)
		n = KB_SCAN_THREADS;
	if (n > bytes / KB_SCAN_MIN)
		n = bytes / KB_SCAN_MIN ? bytes / KB_SCAN_MIN : 1;
	for (size_t i = 0; i < n; i++) {
		memset(&part[i], 0, sizeof(part[i]));
		part[i].kb = kb;
		part[i].b = b;
		part[i].nb = nb;
		part[i].dim = dim;
		part[i].from = total * i / n;
		part[i].to = total * (i + 1) / n;
		part[i].q = q;
		part[i].qc = qc;
		part[i].qscale = qscale;
		if (vec_topk_init(&part[i].t, t->k)) {
			for (size_t j = 0; j < i; j++)
				vec_topk_release(&part[j].t);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	/* The caller's thread takes the first share; a thread that cannot start leaves its share to it. */
	for (size_t i = 1; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, scan_part, &part[i]) == 0;
	scan_part(&part[0]);
	for (size_t i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			scan_part(&part[i]);
	}
	for (size_t i = 0; i < n; i++) {
		if (part[i].r && !r) {
			*err = part[i].err;
			r = -1;
		}
		for (size_t j = 0; j < part[i].t.n; j++)
			vec_topk_push(t, part[i].t.v[j].id, part[i].t.v[j].score);
		vec_topk_release(&part[i].t);
	}
	return r;
}

/* The exact float32 scan into t. */
static int scan_f32(struct kb *kb, const struct kb_block *b, size_t nb, const float *q, size_t dim,
		    struct vec_topk *t, struct ai_err *err)
{
	return scan_parallel(kb, b, nb, dim, q, NULL, 0, t, err);
}

/*
 * The int8 scan into a top-k of 4 times the wanted, then exact rescoring
 * of those from their float32 vectors into t.  Hits are numbered block <<
 * 16 | position while scanning, so that a candidate's vector is read
 * straight from its block; reading codes and scales only, an int8 query
 * reads a quarter of the bytes.
 */
static int scan_i8(struct kb *kb, const struct kb_block *b, size_t nb, const float *q, size_t dim,
		   struct vec_topk *t, struct ai_err *err)
{
	int8_t *qc = malloc(dim);
	float qscale, *fv = NULL;
	const float **vp = NULL;
	struct vec_topk c = { NULL, 0, 0 };
	int r = 0;

	if (!qc || vec_topk_init(&c, t->k * 4)) {
		r = ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	vec_quantize_i8(q, dim, qc, &qscale);
	if ((r = scan_parallel(kb, b, nb, dim, NULL, qc, qscale, &c, err)))
		goto out;
	vec_topk_sorted(&c);
	if (!(fv = malloc((c.n ? c.n : 1) * dim * sizeof(float))) || !(vp = calloc(c.n + 1, sizeof(*vp)))) {
		r = ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c.n && !r; i++) {
		const struct kb_block *bk = &b[c.v[i].id >> 16];
		size_t at = (size_t)(c.v[i].id & 0xffff);
		int64_t id;

		r = kb_vread(kb, fv + i * dim, dim * sizeof(float),
			  bk->off + (int64_t)(kb_f32_at(bk->count, dim) + at * dim * sizeof(float)), err);
		if (!r)
			r = kb_vread(kb, &id, sizeof(id), bk->off + (int64_t)(kb_ids_at() + at * sizeof(id)), err);
		if (!r) {
			vp[i] = fv + i * dim;
			c.v[i].id = id;
		}
	}
	if (!r)
		vec_rescore_f32(q, dim, c.v, vp, c.n, t);
out:
	vec_topk_release(&c);
	free(qc);
	free(fv);
	free(vp);
	return r;
}

/* A whole vector scan, for a thread of its own while BM25 runs in the caller's. */
struct scan_job {
	struct kb *kb;
	const struct kb_block *b;
	size_t nb;
	const float *q;
	size_t dim;
	bool int8;
	struct vec_topk *t;
	struct ai_err err;
	int r;
};

static void *scan_job_run(void *arg)
{
	struct scan_job *j = arg;

	j->r = (j->int8 ? scan_i8 : scan_f32)(j->kb, j->b, j->nb, j->q, j->dim, j->t, &j->err);
	return NULL;
}

/* Fills p (id already set) from the chunk's rows. */
static int fill_passage(struct kb *kb, sqlite3_stmt *st, sqlite3_stmt *ft, struct kb_passage *p)
{
	int rc;

	sqlite3_bind_int64(st, 1, p->id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		p->line_start = (size_t)sqlite3_column_int64(st, 0);
		p->line_end = (size_t)sqlite3_column_int64(st, 1);
		p->page = (size_t)sqlite3_column_int64(st, 3);
		if (!(p->source = strdup((const char *)sqlite3_column_text(st, 2))))
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
	sqlite3_bind_int64(ft, 1, p->id);
	if ((rc = sqlite3_step(ft)) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(ft, 0);
		const char *t = (const char *)sqlite3_column_text(ft, 1);

		if ((h && !(p->heading = strdup(h))) || !(p->text = strdup(t ? t : "")))
			rc = SQLITE_NOMEM;
	}
	sqlite3_reset(ft);
	(void)kb;
	return rc == SQLITE_ROW ? SQLITE_OK : rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
}

/* The share of the vectors' weight that one query's z earns (kb.h). */
static double vec_gate(double z)
{
	double g = z - KB_VEC_GATE_Z;

	if (isnan(z))
		return 1;
	return g >= 1 ? 1 : g <= KB_VEC_GATE_MIN ? KB_VEC_GATE_MIN : g;
}

int kb_search(struct kb *kb, const struct kb_query *q, struct kb_results *out, struct ai_err *err)
{
	const char *name = q->coll ? q->coll : KB_DEFAULT_COLLECTION;
	size_t k = q->k ? q->k : 5, cand = q->candidates, nbm = 0, nvec = 0, nb = 0, nf;
	double floor_cos = q->min_cosine == 0 ? KB_MIN_COSINE : q->min_cosine;
	double wvec = q->vec_weight > 0 ? q->vec_weight : KB_VEC_WEIGHT;
	int64_t coll, *bm_ids = NULL, *vec_ids = NULL;
	double *bm_sc = NULL;
	float *qv = NULL;
	char *model = NULL;
	size_t dim;
	struct kb_block *blocks = NULL;
	struct vec_topk t = { NULL, 0, 0 };
	struct vec_hit *fused = NULL;
	sqlite3_stmt *st = NULL, *ft = NULL;
	struct scan_job job;
	pthread_t scanner;
	bool scanning = false;
	int rc = -1, src;

	memset(out, 0, sizeof(*out));
	if (!cand)
		cand = k * 4 > 50 ? k * 4 : 50;
	if (cand < k)
		cand = k;
	if (kb_coll_id(kb, name, &coll, &model, &dim, err))
		return -1;
	if (!coll)
		return ai_errf(err, AI_EX_NOINPUT, "index '%s' has no collection '%s': build it with ai-index -c %s",
			       kb->path, name, name);
	/* One read transaction, so that BM25, the vectors and the passages come from one snapshot. */
	if ((src = kb_exec_retry(kb, "BEGIN")) != SQLITE_OK) {
		free(model);
		return kb_db_err(kb, src, "search", err);
	}
	if (q->qvec && dim) {
		if (!q->qmodel || strcmp(q->qmodel, model ? model : "")) {
			ai_errf(err, AI_EX_DATAERR,
				"collection '%s' was indexed with embedding model '%s' but the question was "
				"embedded with '%s': use --embed-model %s, or reindex", name, model ? model : "",
				q->qmodel ? q->qmodel : "", model ? model : "");
			goto out;
		}
		if (q->qdim != dim) {
			ai_errf(err, AI_EX_DATAERR, "collection '%s' holds vectors of dimension %zu but the "
				"question's embedding has %zu", name, dim, q->qdim);
			goto out;
		}
	}
	if (!(bm_ids = malloc(cand * sizeof(*bm_ids))) || !(bm_sc = malloc(cand * sizeof(*bm_sc))) ||
	    !(vec_ids = malloc(cand * sizeof(*vec_ids))) || !(fused = malloc(k * sizeof(*fused)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (q->qvec && dim) {
		if (!(qv = malloc(dim * sizeof(float))) || vec_topk_init(&t, cand)) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		memcpy(qv, q->qvec, dim * sizeof(float));
		if (!vec_finite(qv, dim)) {
			ai_errf(err, AI_EX_DATAERR, "the question's embedding holds NaN or infinity");
			goto out;
		}
		vec_normalize(qv, dim);
		if (kb_list_blocks(kb, coll, &blocks, &nb, err) || (nb && kb_vec_open(kb, false, err)))
			goto out;
		job = (struct scan_job){ .kb = kb, .b = blocks, .nb = nb, .q = qv, .dim = dim, .int8 = q->int8, .t = &t };
		/* The scan reads only the vector file, BM25 only SQLite: BM25 runs meanwhile. */
		if (!q->no_bm25 && nb)
			scanning = pthread_create(&scanner, NULL, scan_job_run, &job) == 0;
		if (!scanning)
			scan_job_run(&job);
	}
	if (!q->no_bm25 && search_bm25(kb, coll, q->text ? q->text : "", cand, bm_ids, bm_sc, &nbm, err)) {
		if (scanning)
			pthread_join(scanner, NULL);
		goto out;
	}
	if (q->qvec && dim) {
		if (scanning)
			pthread_join(scanner, NULL);
		if (job.r) {
			*err = job.err;
			goto out;
		}
		vec_topk_sorted(&t);
		wvec *= vec_gate(vec_top_zscore(t.v, t.n));
		for (size_t i = 0; i < t.n; i++)
			if (floor_cos < 0 || t.v[i].score >= floor_cos)
				vec_ids[nvec++] = t.v[i].id;
		out->hybrid = true;
	}
	nf = vec_rrf_weighted(bm_ids, nbm, 1.0, vec_ids, nvec, wvec, KB_FUSION_K0, fused, k);
	if (nf && !(out->v = calloc(nf, sizeof(*out->v)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (!(st = kb_prep(kb, kb->nopage ? "SELECT c.line_start, c.line_end, d.source, 0 FROM chunks c"
			   " JOIN documents d ON d.id = c.doc WHERE c.id = ?1"
			   : "SELECT c.line_start, c.line_end, d.source, c.page FROM chunks c"
			   " JOIN documents d ON d.id = c.doc WHERE c.id = ?1", err)) ||
	    !(ft = kb_prep(kb, "SELECT heading, text FROM chunks_fts WHERE rowid = ?1", err)))
		goto out;
	for (size_t i = 0; i < nf; i++) {
		struct kb_passage *p = &out->v[i];

		p->id = fused[i].id;
		p->score = fused[i].score;
		p->bm25 = p->cosine = NAN;
		for (size_t j = 0; j < nbm; j++)
			if (bm_ids[j] == p->id) {
				p->bm25_rank = (int)j + 1;
				p->bm25 = bm_sc[j];
				break;
			}
		for (size_t j = 0; j < nvec; j++)
			if (vec_ids[j] == p->id) {
				p->vec_rank = (int)j + 1;
				p->cosine = t.v[j].score;
				break;
			}
		out->n++;
		if ((src = fill_passage(kb, st, ft, p)) != SQLITE_OK) {
			kb_db_err(kb, src, "search", err);
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ft);
	sqlite3_exec(kb->db, "COMMIT", NULL, NULL, NULL);
	if (rc)
		kb_results_release(out);
	vec_topk_release(&t);
	free(blocks);
	free(qv);
	free(bm_ids);
	free(bm_sc);
	free(vec_ids);
	free(fused);
	free(model);
	return rc;
}

void kb_results_release(struct kb_results *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].source);
		free(r->v[i].heading);
		free(r->v[i].text);
	}
	free(r->v);
	free(r->note);
	memset(r, 0, sizeof(*r));
}
