/*
 * extsort.c - see extsort.h.  The merge reads each run through a buffer
 * of MERGE_BUF records and picks the least head by a linear scan: runs
 * are few (one per mem_recs records), so a heap would not pay.
 */
#include "batch/extsort.h"
#include "fdio.h"

#include <fcntl.h>
#include <unistd.h>

#define MERGE_BUF 512

static uint64_t key_of(const void *r)
{
	uint64_t k;

	memcpy(&k, r, sizeof(k));
	return k;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = key_of(a), y = key_of(b);

	return x < y ? -1 : x > y;
}

int extsort_init(struct extsort *x, size_t rec, size_t mem_recs, struct ai_err *err)
{
	memset(x, 0, sizeof(*x));
	x->fd = -1;
	x->rec = rec < 8 ? 8 : rec;
	x->mem_recs = mem_recs < 2 ? 2 : mem_recs;
	x->buf = malloc(x->rec * x->mem_recs);
	if (!x->buf)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

static int tmp_open(struct extsort *x, struct ai_err *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];

	if (!dir || !*dir)
		dir = "/tmp";
	if ((size_t)snprintf(path, sizeof(path), "%s/ai-batch-sort.XXXXXX", dir) >= sizeof(path))
		return ai_errf(err, AI_EX_IOERR, "TMPDIR is too long");
	x->fd = mkstemp(path);
	if (x->fd < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot create a temporary file in '%s': %s (set TMPDIR)",
			       dir, strerror(errno));
	unlink(path);
	return 0;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
	unsigned char *c = p;

	while (n) {
		ssize_t got = pread(fd, c, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

/* Sorts the buffer and appends it to the file as one more run. */
static int spill(struct extsort *x, struct ai_err *err)
{
	uint64_t *nr;

	if (x->fd < 0 && tmp_open(x, err))
		return -1;
	qsort(x->buf, x->n, x->rec, cmp_key);
	if (!(nr = realloc(x->runs, (x->nruns + 2) * sizeof(*nr))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	x->runs = nr;
	if (!x->nruns)
		x->runs[0] = 0;
	if (lseek(x->fd, (off_t)(x->runs[x->nruns] * x->rec), SEEK_SET) < 0 ||
	    fd_write_all(x->fd, x->buf, x->n * x->rec))
		return ai_errf(err, AI_EX_IOERR, "cannot write a temporary file: %s", strerror(errno));
	x->runs[x->nruns + 1] = x->runs[x->nruns] + x->n;
	x->nruns++;
	x->n = 0;
	return 0;
}

int extsort_add(struct extsort *x, const void *r, struct ai_err *err)
{
	if (x->n == x->mem_recs && spill(x, err))
		return -1;
	memcpy(x->buf + x->n * x->rec, r, x->rec);
	x->n++;
	x->total++;
	return 0;
}

/* Merges the runs into one, written after them; x->base is where it starts. */
static int merge(struct extsort *x, struct ai_err *err)
{
	size_t k = x->nruns, per = MERGE_BUF, outn = 0;
	uint64_t *pos = calloc(k, sizeof(*pos)), *lim = calloc(k, sizeof(*lim));
	size_t *have = calloc(k, sizeof(*have)), *at = calloc(k, sizeof(*at));
	unsigned char *in = malloc(k * per * x->rec), *out = malloc(per * x->rec);
	uint64_t woff = x->runs[k];
	int rc = -1;

	if (!pos || !lim || !have || !at || !in || !out) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		pos[i] = x->runs[i];
		lim[i] = x->runs[i + 1];
	}
	x->base = woff;
	for (;;) {
		size_t best = k;

		for (size_t i = 0; i < k; i++) {
			if (at[i] == have[i] && pos[i] < lim[i]) {
				size_t m = lim[i] - pos[i] < per ? (size_t)(lim[i] - pos[i]) : per;

				if (pread_all(x->fd, in + i * per * x->rec, m * x->rec, pos[i] * x->rec)) {
					ai_errf(err, AI_EX_IOERR, "cannot read a temporary file: %s", strerror(errno));
					goto out;
				}
				pos[i] += m;
				have[i] = m;
				at[i] = 0;
			}
			if (at[i] < have[i] &&
			    (best == k || key_of(in + (i * per + at[i]) * x->rec) <
						  key_of(in + (best * per + at[best]) * x->rec)))
				best = i;
		}
		if (best == k || outn == per) {
			if (outn && (lseek(x->fd, (off_t)(woff * x->rec), SEEK_SET) < 0 ||
				     fd_write_all(x->fd, out, outn * x->rec))) {
				ai_errf(err, AI_EX_IOERR, "cannot write a temporary file: %s", strerror(errno));
				goto out;
			}
			woff += outn;
			outn = 0;
			if (best == k)
				break;
		}
		memcpy(out + outn * x->rec, in + (best * per + at[best]) * x->rec, x->rec);
		outn++;
		at[best]++;
	}
	rc = 0;
out:
	free(pos);
	free(lim);
	free(have);
	free(at);
	free(in);
	free(out);
	return rc;
}

int extsort_finish(struct extsort *x, struct ai_err *err)
{
	if (x->finished)
		return 0;
	x->finished = true;
	if (x->fd < 0) {
		qsort(x->buf, x->n, x->rec, cmp_key);
		return 0;
	}
	if (x->n && spill(x, err))
		return -1;
	/* The records live in the file now; the buffer is given back. */
	free(x->buf);
	x->buf = NULL;
	if (x->nruns == 1) {
		x->base = 0;
		return 0;
	}
	return merge(x, err);
}

int extsort_get(struct extsort *x, uint64_t i, void *r, struct ai_err *err)
{
	if (x->fd < 0) {
		memcpy(r, x->buf + i * x->rec, x->rec);
		return 0;
	}
	if (pread_all(x->fd, r, x->rec, (x->base + i) * x->rec))
		return ai_errf(err, AI_EX_IOERR, "cannot read a temporary file: %s", strerror(errno));
	return 0;
}

int64_t extsort_lower(struct extsort *x, uint64_t key, struct ai_err *err)
{
	uint64_t lo = 0, hi = x->total;
	unsigned char r[256];
	unsigned char *rp = x->rec <= sizeof(r) ? r : malloc(x->rec);

	if (!rp) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return -1;
	}
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (extsort_get(x, mid, rp, err)) {
			if (rp != r)
				free(rp);
			return -1;
		}
		if (key_of(rp) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (rp != r)
		free(rp);
	return (int64_t)lo;
}

int extsort_each(struct extsort *x, int (*fn)(const void *r, void *ud), void *ud, struct ai_err *err)
{
	unsigned char *blk;
	uint64_t i = 0;
	int rc = 0;

	if (x->fd < 0) {
		for (; i < x->total && !rc; i++)
			rc = fn(x->buf + i * x->rec, ud);
		return rc;
	}
	if (!(blk = malloc(MERGE_BUF * x->rec)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	while (i < x->total && !rc) {
		size_t m = x->total - i < MERGE_BUF ? (size_t)(x->total - i) : MERGE_BUF;

		if (pread_all(x->fd, blk, m * x->rec, (x->base + i) * x->rec)) {
			rc = ai_errf(err, AI_EX_IOERR, "cannot read a temporary file: %s", strerror(errno));
			break;
		}
		for (size_t k = 0; k < m && !rc; k++)
			rc = fn(blk + k * x->rec, ud);
		i += m;
	}
	free(blk);
	return rc;
}

void extsort_release(struct extsort *x)
{
	if (x->fd >= 0)
		close(x->fd);
	free(x->buf);
	free(x->runs);
	memset(x, 0, sizeof(*x));
	x->fd = -1;
}
