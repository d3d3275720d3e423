#ifndef AI_EXTSORT_H
#define AI_EXTSORT_H
/*
 * extsort.h - fixed-size records sorted by a 64-bit key in bounded
 * memory: what ai-batch needs to know about every item (is this id a
 * duplicate? is this item in the journal?) without holding a word per
 * item in memory, so that its memory stays flat whatever the input's
 * length (batch.h).
 *
 * Records are added in any order.  While they fit in the memory given
 * (mem_recs of them), they stay there and are sorted in place; past that,
 * each full buffer is sorted and written as a run to an unlinked
 * temporary file in $TMPDIR, and extsort_finish merges the runs into one
 * sorted run in the same file.  Lookups then binary-search the file with
 * pread(2): what is read sits in the page cache, not in the process.
 *
 * A record starts with its key, a uint64_t in host order; the rest is
 * the caller's.  Records of equal keys come out adjacent, in no set order.
 */
#include "ai.h"

struct extsort {
	size_t rec;             /* bytes a record */
	size_t mem_recs;        /* records held in memory at most */
	unsigned char *buf;     /* mem_recs records */
	size_t n;               /* records in buf */
	int fd;                 /* -1 until the first spill */
	uint64_t *runs;         /* offsets of the runs (records), then their end */
	size_t nruns;
	uint64_t total;         /* records added */
	uint64_t base;          /* after finish: offset (records) of the merged run in fd */
	bool finished;
};

/* Sets x up for records of rec bytes (>= 8), at most mem_recs in memory. */
int extsort_init(struct extsort *x, size_t rec, size_t mem_recs, struct ai_err *err);

/* Adds one record (copied). */
int extsort_add(struct extsort *x, const void *r, struct ai_err *err);

/* Sorts what was added; after it, only lookups and extsort_get. */
int extsort_finish(struct extsort *x, struct ai_err *err);

/*
 * Index of the first record whose key is key, or of the first one past
 * where it would be (then the record there has another key, or the
 * index is x->total).  -1 on a read error.
 */
int64_t extsort_lower(struct extsort *x, uint64_t key, struct ai_err *err);

/* Copies record i (0 <= i < total) of the sorted whole into r. */
int extsort_get(struct extsort *x, uint64_t i, void *r, struct ai_err *err);

/* Calls fn with every record in sorted order (borrowed for the call); fn returns 0 to go on. */
int extsort_each(struct extsort *x, int (*fn)(const void *r, void *ud), void *ud, struct ai_err *err);

void extsort_release(struct extsort *x);

#endif
