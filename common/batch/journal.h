#ifndef AI_JOURNAL_H
#define AI_JOURNAL_H
/*
 * journal.h - the resumable state of a batch (ai-batch --state FILE).
 *
 * An append-only file of JSON lines.  The first names the input it was
 * made from:
 *
 *     {"ai_batch_journal":1,"input":"blake2b-256:HEX"}
 *
 * and every other line is the output line of one finished item, exactly
 * as it was printed.  Lines are appended in groups and made durable with
 * fdatasync(2) before any of them counts (before it is printed): a batch
 * killed at any point loses at most the items it had not yet synced, and
 * those are sent again.  A last line cut short by the kill is cut off
 * when the journal is opened again.
 *
 * The index is 24 bytes an item of earlier runs (a 64-bit hash of the id,
 * the line's offset and length), sorted by extsort.h: in memory up to
 * 128k items, past that in an unlinked temporary file searched with
 * pread, so a journal of any length costs the process a few MB.  The
 * lines stay in the journal and are read back one at a time when
 * replayed.  Lines added in this run are not indexed (ids are unique,
 * and an item is looked up before it is sent).
 */
#include "ai.h"
#include "buf.h"

struct extsort;

struct journal {
	int fd;
	char *path;             /* owned */
	size_t n;               /* finished items recorded */
	/* private */
	struct extsort *idx;     /* the lines of earlier runs, by id hash */
	uint64_t end;           /* offset of the next line, pending lines not counted */
	struct buf pending;     /* appended, not yet written and synced */
};

/*
 * Opens (creating it, mode 0600) the journal at path for the input named
 * input_id ("blake2b-256:HEX").  An existing journal for another input is
 * refused (AI_EX_DATAERR), as is one that is not a journal at all; a torn
 * last line is cut off.  Release with journal_close.
 */
int journal_open(struct journal *j, const char *path, const char *input_id, struct ai_err *err);

/* Closes the file and frees the index; pending lines not synced are dropped. */
void journal_close(struct journal *j);

/*
 * Looks up the item whose id (as text) is key: 1 with its line in out
 * (appended, without the newline), 0 when it is not in the journal, -1 on
 * a read error.
 */
int journal_find(struct journal *j, const char *key, struct buf *out, struct ai_err *err);

/* Appends the line of a finished item (without newline) to the pending group. */
int journal_add(struct journal *j, const char *key, const char *line, size_t len,
		struct ai_err *err);

/* Writes the pending group and fdatasyncs it: only then do its items count. */
int journal_sync(struct journal *j, struct ai_err *err);

/* The id of a journal or output line as text ("7", "a1"): 0, or -1 when it has none. */
int journal_line_key(const char *line, size_t len, struct buf *key);

#endif
