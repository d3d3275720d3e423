/* t_ingest.c - the ingest pipeline (common/rag/ingest.c) without a network: BM25 only. */
#include "rag/ingest.h"
#include "rag/kb.h"
#include "tap.h"

#include <unistd.h>

struct seen {
	int n;
	enum ingest_status last;
	char source[64];
	size_t chunks;
	bool vectors, counted;
	char err[256];
};

static void on_doc(const struct ingest_report *r, void *ud)
{
	struct seen *s = ud;

	s->n++;
	s->last = r->status;
	snprintf(s->source, sizeof(s->source), "%s", r->source);
	s->chunks = r->chunks;
	s->vectors = r->vectors;
	s->counted = r->counted;
	snprintf(s->err, sizeof(s->err), "%s", r->err ? r->err->msg : "");
}

static int add(struct ingest *ig, const char *source, const char *text, struct ai_err *err)
{
	return ingest_add(ig, source, strdup(text), strlen(text), 1700000000, err);
}

int main(void)
{
	static const char *const files[] = { "", ".vec", "-wal", "-shm" };
	char tmpl[] = "/tmp/t_ingest.XXXXXX", *dir = mkdtemp(tmpl), path[256];
	struct ingest_opts o = { "notes", 400, 60, 100, 4, NULL, false, false };
	struct seen s;
	struct ingest_events ev = { on_doc, NULL, NULL, &s };
	struct ingest_counts n;
	struct ingest *ig;
	struct kb *kb;
	struct kb_stats st;
	struct ai_err err, bad;

	if (!dir)
		return 1;
	snprintf(path, sizeof(path), "%s/index.db", dir);
	ai_err_clear(&err);
	memset(&s, 0, sizeof(s));
	if (kb_open(&kb, path, KB_WRITE, &err))
		return printf("Bail out! %s\n", err.msg), 1;

	ok(ingest_init(&ig, kb, NULL, &o, &ev, &err) == 0, "a run without a client");
	ok(add(ig, "a.md", "# Keys\n\nThe red key opens the cellar.\n", &err) == 0, "add a document");
	is_int(s.n, 1, "without a client it is stored at once");
	is_int(s.last, INGEST_INDEXED, "indexed");
	is_str(s.source, "a.md", "named as given");
	ok(s.chunks >= 1 && !s.vectors, "chunked, no vectors");
	ok(add(ig, "b.txt", "", &err) == 0, "an empty document");
	ai_errf(&bad, AI_EX_NOINPUT, "cannot open 'c.txt': No such file or directory");
	ingest_failed(ig, "c.txt", &bad);
	is_int(s.last, INGEST_FAILED, "a document the caller could not read is reported failed");
	ok(s.counted && strstr(s.err, "cannot open"), "counted, with the caller's reason");
	ok(ingest_finish(ig, &err) == 0, "finish");
	ingest_free(ig, &n);
	ok(n.failed == 1 && n.first_code == AI_EX_NOINPUT, "one failure, its code kept");
	ok(n.indexed == 2 && n.unchanged == 0, "two indexed");

	/* Again: unchanged is skipped, --force stores it again (replaced). */
	memset(&s, 0, sizeof(s));
	ok(ingest_init(&ig, kb, NULL, &o, &ev, &err) == 0, "a second run");
	add(ig, "a.md", "# Keys\n\nThe red key opens the cellar.\n", &err);
	is_int(s.last, INGEST_UNCHANGED, "the same text is unchanged");
	add(ig, "a.md", "# Keys\n\nThe blue key opens the attic.\n", &err);
	is_int(s.last, INGEST_REPLACED, "a new text replaces the old");
	ingest_free(ig, &n);
	ok(n.unchanged == 1 && n.indexed == 1 && n.replaced == 1, "counted: unchanged 1, indexed 1, replaced 1");

	o.force = true;
	ok(ingest_init(&ig, kb, NULL, &o, &ev, &err) == 0, "--force");
	add(ig, "a.md", "# Keys\n\nThe blue key opens the attic.\n", &err);
	is_int(s.last, INGEST_REPLACED, "--force stores an unchanged document again");
	ingest_free(ig, NULL);

	/* Dry run: reported, nothing stored. */
	o.force = false;
	o.dry_run = true;
	ok(ingest_init(&ig, kb, NULL, &o, &ev, &err) == 0, "dry run");
	add(ig, "d.md", "nothing stored\n", &err);
	is_int(s.last, INGEST_DRY_RUN, "reported as dry-run");
	ingest_free(ig, &n);
	ok(kb_stats(kb, "notes", &st, &err) == 0 && st.documents == 2, "the dry run stored nothing");
	kb_stats_release(&st);
	ingest_free(NULL, &n);
	ok(n.indexed == 0 && n.failed == 0, "freeing NULL zeroes the totals");
	kb_close(kb);
	for (size_t i = 0; i < AI_ARRAY_LEN(files); i++) {
		snprintf(path, sizeof(path), "%s/index.db%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return tap_done();
}
