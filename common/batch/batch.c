#include "batch/batch.h"
#include "api/attach.h"
#include "batch/extsort.h"
#include "chunk.h"
#include "fdio.h"

#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUSPECTS 4096
/* Id hashes held in memory while the input is scanned (8 bytes each):
 * past that they are sorted to a temporary file, so a long input costs
 * disk, not memory (extsort.h). */
#define SCAN_MEM_IDS (256 * 1024)

enum slot_state { S_FREE, S_PARSED, S_RUNNING, S_DONE, S_GONE, S_RESEND };

struct batch_slot {
	struct batch *b;
	enum slot_state state;
	struct jsonl_item it;
	struct ai_chat_resp resp;
	struct buf line;
	long est;
	bool ok;
	json_object *fix;       /* --schema: the messages of the one repair (owned), or NULL */
	bool repaired, fell_back;
	struct structured ist;  /* the item's own response_format json_schema, when has_ist */
	bool has_ist;
};

/* The schema an item's answer is checked against: its own, else --schema's, else none. */
static struct structured *slot_st(const struct batch *b, struct batch_slot *s)
{
	return s->has_ist ? &s->ist : b->o.st;
}

/* ---- reading the input once: spool, hash, count, ids ---- */

static int spool(int in, int *out, volatile sig_atomic_t *stop, struct ai_err *err)
{
	const char *dir = getenv("TMPDIR");
	struct buf path;
	char *blk = malloc(64 * 1024);
	int fd = -1;
	ssize_t n;

	buf_init(&path, 0);
	if (!blk || buf_addf(&path, "%s/ai-batch.XXXXXX", dir && *dir ? dir : "/tmp")) {
		free(blk);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	fd = mkstemp(path.data);
	if (fd < 0) {
		ai_errf(err, AI_EX_IOERR, "cannot create a temporary file in '%s': %s (set TMPDIR)",
			dir && *dir ? dir : "/tmp", strerror(errno));
		goto fail;
	}
	unlink(path.data);
	/* Not for the helpers it starts (api_key_cmd): the spool holds the user's input.
	 * One thread, so nothing spawns between mkstemp and this (mkostemp is a GNU name). */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	for (;;) {
		/* A signal's EINTR comes back here: a pipe that stays silent must not hold it. */
		if (stop && *stop) {
			ai_errf(err, AI_EX_INTERRUPT, "interrupted");
			goto fail;
		}
		n = read(in, blk, 64 * 1024);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ai_errf(err, AI_EX_NOINPUT, "cannot read the input: %s", strerror(errno));
			goto fail;
		}
		if (!n)
			break;
		if (fd_write_all(fd, blk, (size_t)n)) {
			ai_errf(err, AI_EX_IOERR, "cannot copy the input to a temporary file: %s",
				strerror(errno));
			goto fail;
		}
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		ai_errf(err, AI_EX_IOERR, "cannot read back the temporary copy: %s", strerror(errno));
		goto fail;
	}
	free(blk);
	buf_release(&path);
	*out = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(blk);
	buf_release(&path);
	return -1;
}

static void hash_bytes(const void *p, size_t n, void *ud)
{
	crypto_generichash_update(ud, p, n);
}

struct suspect { uint64_t h; char *key; long line; bool auto_id; };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Second look at the ids whose hash was seen twice: a real duplicate, or a collision. */
static int confirm_duplicates(struct batch *b, struct jsonl_idset *set, uint64_t *sus, size_t ns,
			      struct ai_err *err)
{
	struct jsonl_reader r;
	struct suspect *seen = NULL;
	size_t nseen = 0, cap = 0;
	const char *line;
	size_t len;
	bool too_long;
	int got, rc = 0;

	qsort(sus, ns, sizeof(*sus), cmp_u64);
	if (lseek(b->fd, (off_t)b->start_off, SEEK_SET) < 0)
		return ai_errf(err, AI_EX_NOINPUT, "cannot read the input again: %s", strerror(errno));
	if (jsonl_reader_init(&r, b->fd, b->o.max_line, err))
		return -1;
	while (!rc && (got = jsonl_next(&r, &line, &len, &too_long, err)) == 1) {
		struct jsonl_item it;
		uint64_t h;

		if (jsonl_parse(line, len, too_long, r.lineno, &b->o.item, &it, err)) {
			rc = -1;
			break;
		}
		h = jsonl_idset_hash(set, it.key, strlen(it.key));
		if (bsearch(&h, sus, ns, sizeof(*sus), cmp_u64)) {
			for (size_t i = 0; i < nseen; i++)
				if (seen[i].h == h && !strcmp(seen[i].key, it.key)) {
					if (seen[i].auto_id || it.auto_id)
						/* An id-less line's id is its line number: say so. */
						rc = ai_errf(err, AI_EX_DATAERR, "line %ld has no id, so its "
							     "id is its line number, %s; line %ld gives "
							     "the same id: give every line an id, or none; "
							     "nothing was sent",
							     it.auto_id ? r.lineno : seen[i].line, it.key,
							     it.auto_id ? seen[i].line : r.lineno);
					else
						rc = ai_errf(err, AI_EX_DATAERR, "duplicate id '%.80s' on lines "
							     "%ld and %ld: ids must be unique; nothing was sent",
							     it.key, seen[i].line, r.lineno);
					break;
				}
			if (!rc) {
				if (nseen == cap) {
					struct suspect *n = realloc(seen, (cap = cap ? cap * 2 : 16) * sizeof(*n));

					if (!n) {
						jsonl_item_release(&it);
						rc = ai_errf(err, AI_EX_OSERR, "out of memory");
						break;
					}
					seen = n;
				}
				seen[nseen].h = h;
				seen[nseen].line = r.lineno;
				seen[nseen].auto_id = it.auto_id;
				seen[nseen].key = it.key;
				it.key = NULL;
				nseen++;
			}
		}
		jsonl_item_release(&it);
	}
	if (got < 0)
		rc = -1;
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].key);
	free(seen);
	jsonl_reader_release(&r);
	return rc;
}

/* Collects the hashes seen twice (adjacent once sorted), up to MAX_SUSPECTS. */
struct dups {
	uint64_t prev, *sus;
	size_t ns;
	bool any;
	int oom;
};

static int find_dups(const void *r, void *ud)
{
	struct dups *d = ud;
	uint64_t h;

	memcpy(&h, r, sizeof(h));
	if (d->any && h == d->prev && (!d->ns || d->sus[d->ns - 1] != h) && d->ns < MAX_SUSPECTS) {
		uint64_t *n = realloc(d->sus, (d->ns + 1) * sizeof(*n));

		if (!n) {
			d->oom = 1;
			return 1;
		}
		(d->sus = n)[d->ns++] = h;
	}
	d->prev = h;
	d->any = true;
	return 0;
}

static int scan(struct batch *b, struct ai_err *err)
{
	crypto_generichash_state hs;
	unsigned char h[32];
	struct jsonl_reader r;
	struct jsonl_idset set;         /* for its keyed hash only: nothing is added */
	struct extsort ids;
	struct dups d = { 0, NULL, 0, false, 0 };
	const char *line;
	size_t len;
	bool too_long;
	int got, rc = 0;
	static const char hex[] = "0123456789abcdef";

	crypto_generichash_init(&hs, NULL, 0, sizeof(h));
	if (extsort_init(&ids, sizeof(uint64_t), SCAN_MEM_IDS, err))
		return -1;
	if (jsonl_reader_init(&r, b->fd, b->o.max_line, err)) {
		extsort_release(&ids);
		return -1;
	}
	r.on_bytes = hash_bytes;
	r.ud = &hs;
	jsonl_idset_init(&set);
	while ((got = jsonl_next(&r, &line, &len, &too_long, err)) == 1) {
		struct jsonl_item it;
		uint64_t ih;

		if (jsonl_parse(line, len, too_long, r.lineno, &b->o.item, &it, err)) {
			rc = -1;
			break;
		}
		b->st.total++;
		ih = jsonl_idset_hash(&set, it.key, strlen(it.key));
		rc = extsort_add(&ids, &ih, err);
		jsonl_item_release(&it);
		if (rc)
			break;
	}
	if (got < 0)
		rc = -1;
	jsonl_reader_release(&r);
	/* Equal hashes are adjacent once sorted: those ids get a second look. */
	if (!rc)
		rc = extsort_finish(&ids, err);
	if (!rc)
		rc = extsort_each(&ids, find_dups, &d, err);
	if (d.oom)
		rc = ai_errf(err, AI_EX_OSERR, "out of memory");
	extsort_release(&ids);
	if (!rc && d.ns)
		rc = confirm_duplicates(b, &set, d.sus, d.ns, err);
	free(d.sus);
	jsonl_idset_release(&set);
	crypto_generichash_final(&hs, h, sizeof(h));
	{
		size_t o = strlen("blake2b-256:");

		memcpy(b->input_id, "blake2b-256:", o);
		for (size_t i = 0; i < sizeof(h); i++) {
			b->input_id[o++] = hex[h[i] >> 4];
			b->input_id[o++] = hex[h[i] & 15];
		}
		b->input_id[o] = '\0';
	}
	return rc;
}

int batch_open(struct batch *b, const struct batch_opts *o, int fd, struct ai_err *err)
{
	struct stat st;
	off_t off;

	memset(b, 0, sizeof(*b));
	b->o = *o;
	b->fd = -1;
	if (b->o.parallel < 1)
		b->o.parallel = 1;
	if (!b->o.window)
		b->o.window = b->o.parallel * 16 > 1024 ? (size_t)b->o.parallel * 16 : 1024;
	if (!b->o.max_line)
		b->o.max_line = 1u << 20;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (off = lseek(fd, 0, SEEK_CUR)) >= 0) {
		b->fd = fd;
		b->start_off = (uint64_t)off;
	} else {
		if (spool(fd, &b->fd, b->o.stop, err))
			return -1;
		b->own_fd = true;
	}
	if (scan(b, err))
		goto fail;
	if (b->o.state) {
		if (journal_open(&b->j, b->o.state, b->input_id, err))
			goto fail;
		b->journal = true;
	}
	if (lseek(b->fd, (off_t)b->start_off, SEEK_SET) < 0) {
		ai_errf(err, AI_EX_NOINPUT, "cannot read the input again: %s", strerror(errno));
		goto fail;
	}
	return 0;
fail:
	batch_close(b);
	return -1;
}

void batch_close(struct batch *b)
{
	if (b->ring) {
		for (size_t i = 0; i < b->cap; i++) {
			jsonl_item_release(&b->ring[i].it);
			ai_chat_resp_release(&b->ring[i].resp);
			buf_release(&b->ring[i].line);
		}
		free(b->ring);
		b->ring = NULL;
	}
	if (b->journal)
		journal_close(&b->j);
	b->journal = false;
	if (b->own_fd && b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->own_fd = false;
}

int batch_exit_code(const struct batch *b)
{
	if (!b->st.failed)
		return AI_EX_OK;
	if (b->st.ok)
		return AI_EX_PARTIAL;
	return b->fail_temp == b->st.failed ? AI_EX_TEMPFAIL : AI_EX_UNAVAILABLE;
}

/* ---- running ---- */

static bool line_is_error(const char *line, size_t len)
{
	json_object *j = json_tokener_parse(line), *e;
	bool bad = j && json_object_object_get_ex(j, "error", &e);

	(void)len;
	json_object_put(j);
	return bad;
}

static void limits_refill(struct batch *b, int64_t now)
{
	if (b->o.tpm > 0) {
		b->tpm_level += (double)(now - b->tpm_t) * b->o.tpm / 60000.0;
		if (b->tpm_level > b->o.tpm)
			b->tpm_level = b->o.tpm;
		b->tpm_t = now;
	}
}

/* How long the next request must wait: ours and the server's limits. */
static long limits_wait(struct batch *b, long est, int64_t now)
{
	int64_t w = 0;

	if (b->server_until > now)
		w = b->server_until - now;
	if (b->o.rpm > 0 && b->rpm_next > now && b->rpm_next - now > w)
		w = b->rpm_next - now;
	if (b->o.tpm > 0) {
		double need = est < b->o.tpm ? (double)est : b->o.tpm;

		limits_refill(b, now);
		if (b->tpm_level < need) {
			int64_t t = (int64_t)ceil((need - b->tpm_level) * 60000.0 / b->o.tpm);

			if (t > w)
				w = t;
		}
	}
	return (long)w;
}

static void limits_take(struct batch *b, long est, int64_t now)
{
	if (b->o.rpm > 0) {
		double iv = 60000.0 / b->o.rpm;

		if (b->rpm_next < now)
			b->rpm_next = now;
		b->rpm_next += (int64_t)(iv + 0.5);
	}
	if (b->o.tpm > 0)
		b->tpm_level -= (double)est;
}

/* The server's own signals slow the whole batch, not just the item that met them. */
static void limits_server(struct batch *b, const struct ai_chat_resp *r)
{
	int64_t now = mono_ms(), until = 0;

	if (r->status == 429 && r->retry_after_ms > 0)
		until = now + r->retry_after_ms;
	if ((r->rl_remaining_requests == 0 || r->rl_remaining_tokens == 0) && r->rl_reset_ms > 0) {
		if (now + r->rl_reset_ms > until)
			until = now + r->rl_reset_ms;
	} else if (r->rl_remaining_requests > 0 && r->rl_remaining_requests < b->o.parallel &&
		   r->rl_reset_ms > 0) {
		/* Few left: spread them over what remains of the window. */
		int64_t t = now + r->rl_reset_ms / r->rl_remaining_requests;

		if (t > until)
			until = t;
	}
	if (until > b->server_until) {
		b->server_until = until;
		ai_client_pause(b->c, (long)(until - now));
		if (b->o.pause)
			b->o.pause((long)(until - now), b->o.ud);
	}
}

static const char *error_type(const struct ai_chat_resp *r, const struct ai_err *e)
{
	if (r->error_type[0])
		return r->error_type;
	if (e->code == AI_EX_CONFIG)
		return "authentication_error";
	if (r->attempts == 0)
		return "not_sent";      /* the daily budget, or a server that stopped answering */
	if (r->status == 429)
		return "rate_limit_error";
	if (r->status >= 500)
		return "server_error";
	if (r->status >= 400)
		return "invalid_request_error";
	if (e->code == AI_EX_TEMPFAIL)
		return strstr(e->msg, "--timeout") ? "timeout" : "connection_error";
	return "api_error";
}

/* Requests in a row with no answer at all after which the rest is not sent (batch.h). */
static long down_after(const struct batch *b)
{
	return b->o.parallel > 8 ? 2L * b->o.parallel : 16L;
}

/*
 * --schema: a refusal of response_format is asked again once in json_object
 * mode, an answer that fails the schema once with the validator's message;
 * the slot waits in S_RESEND for the run loop to send it.  True when so.
 */
static bool schema_again(struct batch *b, struct batch_slot *s, int rc, struct ai_chat_resp *r,
			 const struct ai_err *e)
{
	struct structured *st = slot_st(b, s);
	struct schema_fail f;
	json_object *data = NULL;

	if (rc) {
		if (s->fell_back || !structured_refused(r, e))
			return false;
		if (!st->fallback)
			ai_client_verbose(b->c, "the server refused response_format json_schema; "
					  "asking with json_object and the schema in the system prompt");
		st->fallback = true;
		s->fell_back = true;
	} else {
		if (s->repaired || !structured_check(st, r->content, &data, &f)) {
			json_object_put(data);
			return false;
		}
		if (!(s->fix = structured_repair(s->it.messages, r->content, &f)))
			return false;
		s->repaired = true;
		/* The answer that failed was paid for all the same. */
		if (r->prompt_tokens > 0)
			b->st.prompt_tokens += r->prompt_tokens;
		if (r->completion_tokens > 0)
			b->st.completion_tokens += r->completion_tokens;
		if (!isnan(r->cost))
			b->st.cost += r->cost;
	}
	ai_chat_resp_release(r);
	memset(r, 0, sizeof(*r));       /* released twice otherwise, if the run ends before the resend */
	s->state = S_RESEND;
	b->resend++;
	return true;
}

/* --schema: the answer's line gets its data, or becomes a schema_invalid error keeping the reply. */
static int schema_line(struct batch *b, struct batch_slot *s, const struct ai_chat_resp *r)
{
	return jsonl_schema_line(&s->line, slot_st(b, s), s->it.id, r->status, r->content, r->attempts,
				 &s->ok);
}

static void slot_done(int rc, struct ai_chat_resp *r, struct ai_err *e, void *ud)
{
	struct batch_slot *s = ud;
	struct batch *b = s->b;
	bool journal = false;
	int bad;

	b->st.inflight--;
	if (rc && e->code == AI_EX_INTERRUPT) {
		s->state = S_GONE;
		return;
	}
	if (r->dry_run) {
		s->state = S_GONE;
		b->st.done++;
		return;
	}
	if (slot_st(b, s) && schema_again(b, s, rc, r, e))
		return;
	if (!rc) {
		long real = (r->prompt_tokens > 0 ? r->prompt_tokens : 0) +
			    (r->completion_tokens > 0 ? r->completion_tokens : 0);

		struct jsonl_answer a = {
			.output = r->content, .finish_reason = r->finish_reason,
			.tool_calls = r->tool_calls, .prompt_tokens = r->prompt_tokens,
			.completion_tokens = r->completion_tokens, .model = r->model,
			.cached = r->cached, .ms = r->latency_ms
		};

		bad = jsonl_ok_line(&s->line, s->it.id, &a);
		s->ok = true;
		if (!bad && slot_st(b, s))
			bad = schema_line(b, s, r);
		if (s->ok)
			b->st.ok++;
		else
			b->st.failed++;
		if (r->prompt_tokens > 0)
			b->st.prompt_tokens += r->prompt_tokens;
		if (r->completion_tokens > 0)
			b->st.completion_tokens += r->completion_tokens;
		if (!isnan(r->cost))
			b->st.cost += r->cost;
		if (b->o.tpm > 0 && real > 0 && !r->cached)
			b->tpm_level -= (double)(real - s->est);
		journal = true;
	} else {
		long status = r->status > 0 ? r->status : e->status;

		/* A model that cannot see the item's attachments: one clear message. */
		if (s->it.attachments)
			attach_refused(e);
		bad = jsonl_err_line(&s->line, s->it.id, status, error_type(r, e), e->msg, r->attempts);
		b->st.failed++;
		if (e->code == AI_EX_TEMPFAIL)
			b->fail_temp++;
		/* Sent (attempts > 0: not a budget or ledger refusal) and no answer at all. */
		if (e->code == AI_EX_TEMPFAIL && status <= 0 && r->attempts > 0 &&
		    ++b->down_streak >= down_after(b) && !b->down[0])
			snprintf(b->down, sizeof(b->down), "the last %ld requests got no answer (%s)",
				 b->down_streak, e->msg);
		/*
		 * A refusal (a 4xx, see ai_http_error) is final; what may pass on
		 * another try is left for a resume, and so is a 2xx answer of the
		 * wrong shape: a broken or hostile server's, not a verdict.
		 */
		journal = e->code == AI_EX_UNAVAILABLE && status >= 400 && status < 500;
	}
	if (r->status > 0)
		b->down_streak = 0;
	limits_server(b, r);
	b->st.done++;
	if (bad) {
		if (!b->fatal.code)
			ai_errf(&b->fatal, AI_EX_OSERR, "out of memory");
		s->state = S_GONE;
		return;
	}
	if (journal && b->journal && !b->fatal.code)
		journal_add(&b->j, s->it.key, s->line.data, s->line.len, &b->fatal);
	s->state = S_DONE;
}

static void slot_clear(struct batch_slot *s)
{
	jsonl_item_release(&s->it);
	ai_chat_resp_release(&s->resp);
	json_object_put(s->fix);
	s->fix = NULL;
	s->repaired = s->fell_back = false;
	if (s->has_ist)
		structured_release(&s->ist);
	s->has_ist = false;
	buf_reset(&s->line);
	s->ok = false;
	s->est = 0;
	s->state = S_FREE;
}

/* Tries to start a parsed item: 0 started (or finished at once), >0 ms to wait, -1 error. */
static long slot_send(struct batch *b, struct batch_slot *s, struct ai_err *err)
{
	int64_t now = mono_ms();
	struct ai_chat_req q;
	long w;
	struct ai_err e;
	json_object *sx = NULL, *sm = NULL;

	ai_err_clear(&e);
	if (b->down[0]) {
		ai_errf(&e, AI_EX_TEMPFAIL, "not sent: %s", b->down);
		s->state = S_RUNNING;
		b->st.inflight++;
		b->st.not_sent++;
		slot_done(-1, &s->resp, &e, s);
		return 0;
	}
	if (!s->est) {
		if (s->it.text) {
			s->est = (long)tok_estimate(s->it.text, strlen(s->it.text));
		} else {
			size_t n;
			const char *t = json_object_to_json_string_length(s->it.messages,
									  JSON_C_TO_STRING_PLAIN, &n);

			s->est = (long)tok_estimate(t, n);
		}
		s->est += 8 + (b->o.max_tokens > 0 ? b->o.max_tokens : 0);
	}
	if ((w = limits_wait(b, s->est, now)) > 0)
		return w;
	if (b->o.admit && (w = b->o.admit(s->est, b->o.ud)) != 0) {
		if (w > 0)
			return w;
		/* Withdrawn (a queue's job deleted): this item and the rest go unsent. */
		snprintf(b->down, sizeof(b->down), "the work was withdrawn");
		return slot_send(b, s, err);
	}
	limits_take(b, s->est, now);
	ai_chat_req_init(&q);
	q.messages = s->it.messages;
	q.model = s->it.model;
	q.extra = s->it.extra;
	q.temperature = b->o.temperature;
	q.max_tokens = b->o.max_tokens;
	if (slot_st(b, s)) {
		struct structured *st = slot_st(b, s);

		/* Serialised by ai_chat_start at once: they go when it returns. */
		sx = structured_extra(st, s->it.extra);
		sm = structured_messages(st, s->fix ? s->fix : s->it.messages);
		if (!sx || !sm) {
			json_object_put(sx);
			json_object_put(sm);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
		q.extra = sx;
		q.messages = sm;
		q.cacheable = structured_cacheable;
		q.cacheable_ud = st;
	}
	s->state = S_RUNNING;
	b->st.inflight++;
	b->st.sent++;
	if (ai_chat_start(b->c, &q, &s->resp, slot_done, s, &e)) {
		json_object_put(sx);
		json_object_put(sm);
		if (e.code == AI_EX_OSERR) {
			*err = e;
			return -1;
		}
		/* Not sent (a budget reached, a key that cannot be read): the item's error. */
		slot_done(-1, &s->resp, &e, s);
		return 0;
	}
	json_object_put(sx);
	json_object_put(sm);
	return 0;
}

/* Reads the next item into its slot: replayed, bad (done at once), or parsed to send. */
static int slot_read(struct batch *b, struct jsonl_reader *r, struct batch_slot *s, bool *eof,
		     struct ai_err *err)
{
	const char *line;
	size_t len;
	bool too_long;
	int got = jsonl_next(r, &line, &len, &too_long, err);

	if (!got && b->o.more && !b->no_more) {
		if (b->o.more(b->o.ud) > 0) {
			r->eof = false;         /* lines were appended: read on */
			got = jsonl_next(r, &line, &len, &too_long, err);
		} else {
			b->no_more = true;
		}
	}
	if (got <= 0) {
		*eof = true;
		return got;
	}
	if (jsonl_parse(line, len, too_long, r->lineno, &b->o.item, &s->it, err))
		return -1;
	if (b->journal) {
		int f = journal_find(&b->j, s->it.key, &s->line, err);

		if (f < 0)
			return -1;
		if (f) {
			s->ok = !line_is_error(s->line.data, s->line.len);
			if (s->ok)
				b->st.ok++;
			else
				b->st.failed++;
			b->st.replayed++;
			b->st.done++;
			s->state = S_DONE;
			return 1;
		}
	}
	/* An item that names its own response_format json_schema is checked against it. */
	if (!s->it.bad) {
		struct ai_err se;
		int own;

		ai_err_clear(&se);
		own = structured_from_request(&s->ist, s->it.extra, &se);
		if (own < 0) {
			s->it.bad = true;
			snprintf(s->it.error, sizeof(s->it.error), "%.190s", se.msg);
		}
		s->has_ist = own > 0;
	}
	if (s->it.bad) {
		if (jsonl_err_line(&s->line, s->it.id, 0, "invalid_input", s->it.error, 0))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		b->st.failed++;
		b->st.done++;
		s->state = S_DONE;
		return 1;
	}
	s->state = S_PARSED;
	return 1;
}

static void emit(struct batch *b, struct batch_slot *s)
{
	if (b->o.emit)
		b->o.emit(s->line.data ? s->line.data : "", s->line.len, b->o.ud);
	b->emitted = true;
}

/* Sends the slots --schema asks again, oldest first: 0, >0 ms to wait, -1 error. */
static long resend(struct batch *b, uint64_t head, uint64_t tail, struct ai_err *err)
{
	for (uint64_t i = head; i < tail && b->resend && b->st.inflight < b->o.parallel; i++) {
		struct batch_slot *s = &b->ring[i % b->cap];
		long w;

		if (s->state != S_RESEND)
			continue;
		b->resend--;
		w = slot_send(b, s, err);
		if (w > 0)
			b->resend++;    /* held by the limits: still waiting */
		if (w)
			return w;
	}
	return 0;
}

/* The lines of one wake-up leave together: one write, not one a line. */
static void flush(struct batch *b)
{
	if (b->emitted && b->o.flush)
		b->o.flush(b->o.ud);
	b->emitted = false;
}

int batch_run(struct batch *b, struct ai_client *c, struct ai_err *err)
{
	struct jsonl_reader r;
	uint64_t head = 0, tail = 0;       /* the oldest item not emitted; the next to read */
	uint64_t parsed = UINT64_MAX;      /* an item read but held by the limits */
	bool eof = false, interrupted = false;
	int64_t t0 = mono_ms(), last_progress = 0;
	volatile sig_atomic_t *stop = ai_client_stop(c);
	int rc = 0;

	b->c = c;
	b->st.started_ms = wall_ms();
	b->cap = b->o.window;
	b->tpm_t = t0;
	b->tpm_level = b->o.tpm;
	if (!(b->ring = calloc(b->cap, sizeof(*b->ring))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < b->cap; i++) {
		b->ring[i].b = b;
		buf_init(&b->ring[i].line, 0);
	}
	if (jsonl_reader_init(&r, b->fd, b->o.max_line, err))
		return -1;
	ai_err_clear(&b->fatal);
	for (;;) {
		long wait = 0;
		int pending;

		if (stop && *stop) {
			interrupted = true;
			break;
		}
		/* Feed: start what the window, the parallelism and the limits allow. */
		for (;;) {
			if (b->resend && b->st.inflight < b->o.parallel) {
				long w = resend(b, head, tail, err);

				if (w < 0) {
					rc = -1;
					goto out;
				}
				if (w > 0) {
					wait = w;
					break;
				}
			}
			if (parsed != UINT64_MAX) {
				long w;

				if (b->st.inflight >= b->o.parallel)
					break;
				w = slot_send(b, &b->ring[parsed % b->cap], err);
				if (w < 0) {
					rc = -1;
					goto out;
				}
				if (w > 0) {
					wait = w;
					break;
				}
				parsed = UINT64_MAX;
			}
			if (eof || tail - head >= b->cap || b->st.inflight >= b->o.parallel)
				break;
			{
				struct batch_slot *s = &b->ring[tail % b->cap];
				int got = slot_read(b, &r, s, &eof, err);

				if (got < 0) {
					rc = -1;
					goto out;
				}
				if (!got)
					break;
				if (s->state == S_PARSED)
					parsed = tail;
				tail++;
			}
		}
		pending = ai_client_pending(c);
		if (pending) {
			long t = wait > 0 && wait < 250 ? wait : 250;

			if (ai_client_step(c, t, err) < 0) {
				interrupted = true;
				break;
			}
		} else if (wait > 0) {
			struct timespec ts = { 0, (wait > 100 ? 100 : wait) * 1000000L };

			nanosleep(&ts, NULL);
		}
		/* Journal the finished ones (one fdatasync for the group), then emit. */
		if (b->journal && !b->fatal.code)
			journal_sync(&b->j, &b->fatal);
		if (b->fatal.code) {
			*err = b->fatal;
			rc = -1;
			goto out;
		}
		if (b->o.unordered) {
			for (uint64_t i = head; i < tail; i++) {
				struct batch_slot *s = &b->ring[i % b->cap];

				if (s->state == S_DONE) {
					emit(b, s);
					s->state = S_GONE;
				}
			}
		}
		while (head < tail) {
			struct batch_slot *s = &b->ring[head % b->cap];

			if (s->state != S_DONE && s->state != S_GONE)
				break;
			if (s->state == S_DONE)
				emit(b, s);
			slot_clear(s);
			head++;
		}
		flush(b);
		b->st.elapsed_ms = mono_ms() - t0;
		if (b->o.progress && b->o.progress_ms > 0 && mono_ms() - last_progress >= b->o.progress_ms) {
			last_progress = mono_ms();
			b->o.progress(&b->st, false, b->o.ud);
		}
		if (eof && head == tail && parsed == UINT64_MAX && !ai_client_pending(c))
			break;
	}
	if (interrupted) {
		/* The aborted calls were answered "interrupted" and left no line; the finished
		 * ones are journaled first, then printed: in order, up to an item not
		 * finished (a resume replays them all from the journal anyway). */
		if (ai_client_pending(c))
			ai_client_step(c, 0, err);
		if (b->journal)
			journal_sync(&b->j, &b->fatal);
		for (uint64_t i = head; i < tail; i++) {
			struct batch_slot *s = &b->ring[i % b->cap];

			if (!b->o.unordered && s->state != S_DONE && s->state != S_GONE)
				break;
			if (s->state == S_DONE) {
				emit(b, s);
				s->state = S_GONE;
			}
		}
		rc = ai_errf(err, AI_EX_INTERRUPT, "interrupted");
	}
out:
	flush(b);
	b->st.elapsed_ms = mono_ms() - t0;
	if (b->o.progress)
		b->o.progress(&b->st, true, b->o.ud);
	jsonl_reader_release(&r);
	return rc;
}

int batch_each_item(int fd, const struct jsonl_opts *o, size_t max_line,
		    int (*fn)(struct jsonl_item *it, void *ud), void *ud, struct ai_err *err)
{
	struct jsonl_reader r;
	const char *line;
	size_t len;
	bool too_long;
	int got = 0, rc = 0;

	if (jsonl_reader_init(&r, fd, max_line ? max_line : 1u << 20, err))
		return -1;
	while (!rc && (got = jsonl_next(&r, &line, &len, &too_long, err)) == 1) {
		struct jsonl_item it;

		if (jsonl_parse(line, len, too_long, r.lineno, o, &it, err)) {
			rc = -1;
			break;
		}
		rc = fn(&it, ud);
		jsonl_item_release(&it);
	}
	if (!rc && got < 0)
		rc = -1;
	jsonl_reader_release(&r);
	return rc;
}
