#include "batch/journal.h"
#include "fdio.h"
#include "batch/jsonl.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#define HEADER_KEY "ai_batch_journal"
#define MAX_JOURNAL_LINE (64u << 20)

struct journal_ent {
	uint64_t h;             /* 0: empty slot */
	uint64_t off;
	uint32_t len;
};

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

static int index_put(struct journal *j, uint64_t h, uint64_t off, uint32_t len)
{
	size_t i;

	if ((j->n + 1) * 2 > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 1024;
		struct journal_ent *t = calloc(cap, sizeof(*t));

		if (!t)
			return -1;
		for (size_t k = 0; k < j->cap; k++)
			if (j->tab[k].h) {
				size_t s = (size_t)(j->tab[k].h & (cap - 1));

				while (t[s].h)
					s = (s + 1) & (cap - 1);
				t[s] = j->tab[k];
			}
		free(j->tab);
		j->tab = t;
		j->cap = cap;
	}
	/* Equal hashes go on probing: journal_find tells them apart by the id itself. */
	i = (size_t)(h & (j->cap - 1));
	while (j->tab[i].h)
		i = (i + 1) & (j->cap - 1);
	j->tab[i].h = h;
	j->tab[i].off = off;
	j->tab[i].len = len;
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
		if (index_put(j, key_hash(key.data), r.offset, (uint32_t)len)) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
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
	rc = 0;
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
	if (!(j->path = strdup(path)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
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
	free(j->tab);
	buf_release(&j->pending);
	memset(j, 0, sizeof(*j));
	j->fd = -1;
}

int journal_find(struct journal *j, const char *key, struct buf *out, struct ai_err *err)
{
	uint64_t h;
	size_t i;
	struct buf line, k;
	int rc = 0;

	if (!j->cap)
		return 0;
	h = key_hash(key);
	buf_init(&line, 0);
	buf_init(&k, 0);
	for (i = (size_t)(h & (j->cap - 1)); j->tab[i].h; i = (i + 1) & (j->cap - 1)) {
		ssize_t got;

		if (j->tab[i].h != h)
			continue;
		buf_reset(&line);
		buf_reset(&k);
		if (buf_grow(&line, j->tab[i].len + 1)) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			break;
		}
		do
			got = pread(j->fd, line.data, j->tab[i].len, (off_t)j->tab[i].off);
		while (got < 0 && errno == EINTR);
		if (got != (ssize_t)j->tab[i].len) {
			rc = ai_errf(err, AI_EX_IOERR, "cannot read '%s': %s", j->path,
				     got < 0 ? strerror(errno) : "it was cut short");
			break;
		}
		line.len = j->tab[i].len;
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
	uint64_t off = j->end + j->pending.len;

	if (buf_add(&j->pending, line, len) || buf_addch(&j->pending, '\n') ||
	    index_put(j, key_hash(key), off, (uint32_t)len))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
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
