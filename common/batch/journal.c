#include "batch/journal.h"
#include "batch/extsort.h"
#include "fdio.h"
#include "batch/jsonl.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#define HEADER_KEY "ai_batch_journal"
#define MAX_JOURNAL_LINE (64u << 20)

/* An index record (extsort.h): the id's hash first, as the key. */
struct journal_ent {
	uint64_t h;
	uint64_t off;
	uint64_t len;
};

/* Index records held in memory while a journal is loaded (24 bytes each). */
#define INDEX_MEM_ENTS (128 * 1024)

static const unsigned char hkey[crypto_shorthash_KEYBYTES];   /* a fixed key: the file is ours */

static uint64_t key_hash(const char *key)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)key, strlen(key), hkey);
	memcpy(&v, h, sizeof(v));
	return v ? v : 1;
}

int journal_line_key(const char *line, size_t len, struct buf *key)
{
	json_tokener *tok = json_tokener_new();
	json_object *j = tok && len <= INT_MAX ? json_tokener_parse_ex(tok, line, (int)len) : NULL, *id;
	int rc = -1;

	if (j && json_object_is_type(j, json_type_object) && json_object_object_get_ex(j, "id", &id))
		rc = jsonl_id_key(id, key);
	json_object_put(j);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

static int index_put(struct journal *j, uint64_t h, uint64_t off, uint32_t len, struct ai_err *err)
{
	struct journal_ent e = { h, off, len };

	if (extsort_add(j->idx, &e, err))
		return -1;
	j->n++;
	return 0;
}

/* Reads the existing journal: checks the header, indexes the lines, cuts a torn tail. */
static int load(struct journal *j, const char *input_id, uint64_t size, struct ai_err *err)
{
	struct jsonl_reader r;
	struct buf key;
	const char *line;
	size_t len;
	bool too_long, header = false;
	uint64_t good = 0;
	int rc = -1, got;

	if (jsonl_reader_init(&r, j->fd, MAX_JOURNAL_LINE, err))
		return -1;
	buf_init(&key, 0);
	while ((got = jsonl_next(&r, &line, &len, &too_long, err)) == 1) {
		bool complete = r.offset + len < size;   /* its newline was written */

		if (!header) {
			json_object *h = json_tokener_parse(line), *v;

			if (!h || !json_object_object_get_ex(h, HEADER_KEY, &v) ||
			    !json_object_object_get_ex(h, "input", &v) || !complete) {
				json_object_put(h);
				ai_errf(err, AI_EX_DATAERR, "'%s' is not an ai-batch state file; "
					"give a new --state file", j->path);
				goto out;
			}
			if (strcmp(json_object_get_string(v), input_id)) {
				json_object_put(h);
				ai_errf(err, AI_EX_DATAERR, "the input is not the one '%s' was made from "
					"(its hash differs); give the same input, or a new --state file",
					j->path);
				goto out;
			}
			json_object_put(h);
			header = true;
			good = r.offset + len + 1;
			continue;
		}
		buf_reset(&key);
		if (too_long || !complete || journal_line_key(line, len, &key)) {
			if (!complete)
				break;          /* torn by a kill: cut off below */
			ai_errf(err, AI_EX_DATAERR, "'%s' is damaged at line %ld; give a new --state file",
				j->path, r.lineno);
			goto out;
		}
		if (index_put(j, key_hash(key.data), r.offset, (uint32_t)len, err))
			goto out;
		good = r.offset + len + 1;
	}
	if (got < 0)
		goto out;
	if (!header) {
		ai_errf(err, AI_EX_DATAERR, "'%s' is not an ai-batch state file; give a new --state file",
			j->path);
		goto out;
	}
	if (good < size && ftruncate(j->fd, (off_t)good)) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot repair '%s'", j->path);
		goto out;
	}
	j->end = good;
	rc = extsort_finish(j->idx, err);
out:
	buf_release(&key);
	jsonl_reader_release(&r);
	return rc;
}

int journal_open(struct journal *j, const char *path, const char *input_id, struct ai_err *err)
{
	struct stat st;

	memset(j, 0, sizeof(*j));
	buf_init(&j->pending, 0);
	j->fd = -1;
	if (!(j->path = strdup(path)) || !(j->idx = malloc(sizeof(*j->idx)))) {
		free(j->path);
		j->path = NULL;
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (extsort_init(j->idx, sizeof(struct journal_ent), INDEX_MEM_ENTS, err)) {
		free(j->idx);
		j->idx = NULL;
		journal_close(j);
		return -1;
	}
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0 || fstat(j->fd, &st)) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot open '%s'", path);
		journal_close(j);
		return -1;
	}
	if (st.st_size > 0) {
		if (load(j, input_id, (uint64_t)st.st_size, err)) {
			journal_close(j);
			return -1;
		}
	} else {
		struct buf h;
		int bad;

		buf_init(&h, 0);
		bad = buf_addf(&h, "{\"" HEADER_KEY "\":1,\"input\":\"%s\"}\n", input_id) ||
		      fd_write_all(j->fd, h.data, h.len) || fdatasync(j->fd);
		j->end = h.len;
		buf_release(&h);
		if (bad) {
			ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", path);
			journal_close(j);
			return -1;
		}
	}
	if (lseek(j->fd, (off_t)j->end, SEEK_SET) < 0) {
		ai_errf_errno(err, AI_EX_IOERR, "cannot seek in '%s'", path);
		journal_close(j);
		return -1;
	}
	return 0;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	if (j->idx) {
		extsort_release(j->idx);
		free(j->idx);
	}
	buf_release(&j->pending);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

int journal_find(struct journal *j, const char *key, struct buf *out, struct ai_err *err)
{
	uint64_t h;
	int64_t i;
	struct buf line, k;
	int rc = 0;

	if (!j->idx || !j->idx->total)
		return 0;
	h = key_hash(key);
	if ((i = extsort_lower(j->idx, h, err)) < 0)
		return -1;
	buf_init(&line, 0);
	buf_init(&k, 0);
	/* Equal hashes are adjacent: the id itself tells them apart. */
	for (; (uint64_t)i < j->idx->total; i++) {
		struct journal_ent e;
		ssize_t got;

		if (extsort_get(j->idx, (uint64_t)i, &e, err)) {
			rc = -1;
			break;
		}
		if (e.h != h)
			break;
		buf_reset(&line);
		buf_reset(&k);
		if (buf_grow(&line, e.len + 1)) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			break;
		}
		do
			got = pread(j->fd, line.data, e.len, (off_t)e.off);
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)e.len) {
			rc = ai_errf(err, AI_EX_IOERR, "cannot read '%s': %s", j->path,
				     got < 0 ? strerror(errno) : "it was cut short");
			break;
		}
		line.len = e.len;
		line.data[line.len] = '\0';
		if (!journal_line_key(line.data, line.len, &k) && !strcmp(k.data, key)) {
			rc = buf_add(out, line.data, line.len) ? ai_errf(err, AI_EX_OSERR, "out of memory") : 1;
			break;
		}
	}
	buf_release(&line);
	buf_release(&k);
	return rc;
}

int journal_add(struct journal *j, const char *key, const char *line, size_t len,
		struct ai_err *err)
{
	/* Not indexed: an item is looked up once a run, before it is sent,
	 * and ids are unique, so only the lines of earlier runs are looked
	 * up; the index stays the size the journal had at open. */
	(void)key;
	if (buf_add(&j->pending, line, len) || buf_addch(&j->pending, '\n'))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	j->n++;
	return 0;
}

int journal_sync(struct journal *j, struct ai_err *err)
{
	if (!j->pending.len)
		return 0;
	if (fd_write_all(j->fd, j->pending.data, j->pending.len) || fdatasync(j->fd))
		return ai_errf_errno(err, AI_EX_IOERR, "cannot write '%s'", j->path);
	j->end += j->pending.len;
	buf_reset(&j->pending);
	return 0;
}
