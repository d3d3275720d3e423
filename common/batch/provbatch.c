#include "batch/provbatch.h"
#include "fdio.h"
#include "jsonval.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE (512u << 20)   /* the largest result file read back */




static int save(const struct job *j, const char *name, const char *data, size_t n,
		struct ai_err *err)
{
	struct buf p;
	int fd, rc = 0;

	buf_init(&p, 0);
	if (job_path(j, name, &p))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	fd = open(p.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (n && write(fd, data, n) != (ssize_t)n) || fsync(fd))
		rc = ai_errf(err, AI_EX_IOERR, "cannot write '%s': %s", p.data, strerror(errno));
	if (fd >= 0 && close(fd) && !rc)
		rc = ai_errf(err, AI_EX_IOERR, "cannot write '%s': %s", p.data, strerror(errno));
	buf_release(&p);
	return rc;
}

static int load(const struct job *j, const char *name, struct buf *out, struct ai_err *err)
{
	struct buf p;
	int fd;

	buf_init(&p, 0);
	if (job_path(j, name, &p))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	fd = open(p.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ai_errf(err, AI_EX_NOINPUT, "cannot open '%s': %s", p.data, strerror(errno));
		buf_release(&p);
		return -1;
	}
	buf_release(&p);
	if (fd_read_all(fd, out, NULL)) {
		ai_errf(err, AI_EX_IOERR, "cannot read job '%s': %s", j->id,
			errno == EFBIG ? "too large" : strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static json_object *load_json(const struct job *j, const char *name, struct ai_err *err)
{
	struct buf b;
	json_object *o;

	buf_init(&b, 1u << 20);
	if (load(j, name, &b, err)) {
		buf_release(&b);
		return NULL;
	}
	o = b.data ? json_tokener_parse(b.data) : NULL;
	buf_release(&b);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		ai_errf(err, AI_EX_DATAERR, "job '%s': %s is damaged", j->id, name);
		return NULL;
	}
	return o;
}

json_object *provbatch_record(const struct job *j, struct ai_err *err)
{
	return load_json(j, "remote.json", err);
}

static int save_json(const struct job *j, const char *name, json_object *o, struct ai_err *err)
{
	size_t n;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);

	return save(j, name, s, n, err);
}

/* ---- submit ---- */

struct build {
	struct ai_client *c;
	const struct batch_opts *o;
	struct buf *out;
	long n;
	struct ai_err *err;
};

static int add_request(struct jsonl_item *it, void *ud)
{
	struct build *b = ud;
	struct ai_chat_req q;
	json_object *line, *body, *extra = NULL;
	const char *s;
	size_t n;
	int rc = -1;

	if (it->bad)
		return 0;   /* its error line comes with the results */
	ai_chat_req_init(&q);
	q.messages = it->messages;
	q.model = it->model;
	q.extra = it->extra;
	q.temperature = b->o->temperature;
	q.max_tokens = b->o->max_tokens;
	/* --schema: every request asks for it; the results are checked as they are read. */
	if (b->o->st && !(q.extra = extra = structured_extra(b->o->st, it->extra)))
		return ai_errf(b->err, AI_EX_OSERR, "out of memory");
	body = ai_chat_body(b->c, &q);
	line = json_object_new_object();
	if (body && line && !jv_add(line, "custom_id", json_object_new_string(it->key)) &&
	    !jv_add(line, "method", json_object_new_string("POST")) &&
	    !jv_add(line, "url", json_object_new_string("/v1/chat/completions"))) {
		rc = jv_add(line, "body", body);
		body = NULL;
	}
	if (!rc && (s = json_object_to_json_string_length(line, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n)))
		rc = buf_add(b->out, s, n) || buf_addch(b->out, '\n');
	json_object_put(body);
	json_object_put(line);
	json_object_put(extra);
	if (rc)
		return ai_errf(b->err, AI_EX_OSERR, "out of memory");
	b->n++;
	return 0;
}

static bool contains(const char *h, size_t hn, const char *needle)
{
	size_t n = strlen(needle);

	for (const char *p = h; hn >= n && (p = memchr(p, needle[0], hn - n + 1 - (size_t)(p - h)));
	     p++)
		if (!memcmp(p, needle, n))
			return true;
	return false;
}

static int upload(struct ai_client *c, const struct buf *file, char **id, struct ai_err *err)
{
	unsigned char r[16];
	char boundary[64], ctype[128];
	const char *hdrs[2] = { ctype, NULL };
	struct buf body;
	struct http_resp resp;
	json_object *j;
	int rc;

	/* A random boundary that the file does not contain. */
	do {
		randombytes_buf(r, sizeof(r));
		memcpy(boundary, "ai-batch-", 9);
		sodium_bin2hex(boundary + 9, sizeof(boundary) - 9, r, sizeof(r));
	} while (file->len && contains(file->data, file->len, boundary));
	snprintf(ctype, sizeof(ctype), "Content-Type: multipart/form-data; boundary=%s", boundary);
	buf_init(&body, 0);
	if (buf_addf(&body, "--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
		     "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"requests.jsonl\"\r\n"
		     "Content-Type: application/jsonl\r\n\r\n", boundary, boundary) ||
	    buf_add(&body, file->data ? file->data : "", file->len) ||
	    buf_addf(&body, "\r\n--%s--\r\n", boundary)) {
		buf_release(&body);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	http_resp_init(&resp);
	rc = ai_api_request(c, "POST", "/files", hdrs, body.data, body.len, &resp, err);
	buf_release(&body);
	if (rc) {
		http_resp_release(&resp);
		return rc;
	}
	j = json_tokener_parse(resp.body.data ? resp.body.data : "");
	http_resp_release(&resp);
	if (!jv_str(j, "id")) {
		json_object_put(j);
		return ai_errf(err, AI_EX_UNAVAILABLE, "the file upload's answer has no id");
	}
	*id = strdup(jv_str(j, "id"));
	json_object_put(j);
	return *id ? 0 : ai_errf(err, AI_EX_OSERR, "out of memory");
}

int provbatch_submit(struct ai_client *c, const struct job *j, int in_fd, const struct batch_opts *o,
		  struct ai_err *err)
{
	struct buf file;
	struct build b = { c, o, &file, 0, err };
	struct http_resp resp;
	json_object *req = NULL, *ans = NULL, *rj = NULL;
	char *file_id = NULL, *schema = NULL;
	const char *hdrs[] = { "Content-Type: application/json", NULL };
	int rc = -1, r;

	buf_init(&file, 0);
	http_resp_init(&resp);
	if (batch_each_item(in_fd, &o->item, o->max_line, add_request, &b, err))
		goto out;
	if (o->st && !(schema = structured_save(o->st))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	rj = json_object_new_object();
	if (!rj || jv_add(rj, "mode", json_object_new_string(o->item.mode == JSONL_LINES ? "lines" : "json")) ||
	    (o->item.tmpl && jv_add(rj, "template", json_object_new_string(o->item.tmpl))) ||
	    (o->item.system && jv_add(rj, "system", json_object_new_string(o->item.system))) ||
	    (schema && jv_add(rj, "schema", json_object_new_string(schema))) ||
	    jv_add(rj, "max_line", json_object_new_int64((int64_t)o->max_line)) ||
	    jv_add(rj, "requests", json_object_new_int64(b.n))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	if (b.n) {
		if ((r = upload(c, &file, &file_id, err)) != 0) {
			rc = r > 0 ? 0 : -1;   /* a dry run shows the upload and stops there */
			goto out;
		}
		req = json_object_new_object();
		if (!req || jv_add(req, "input_file_id", json_object_new_string(file_id)) ||
		    jv_add(req, "endpoint", json_object_new_string("/v1/chat/completions")) ||
		    jv_add(req, "completion_window", json_object_new_string("24h"))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		{
			size_t n;
			const char *s = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &n);

			if (ai_api_request(c, "POST", "/batches", hdrs, s, n, &resp, err))
				goto out;
		}
		ans = json_tokener_parse(resp.body.data ? resp.body.data : "");
		if (!jv_str(ans, "id")) {
			ai_errf(err, AI_EX_UNAVAILABLE, "the answer to creating the batch has no id");
			goto out;
		}
		if (jv_add(rj, "input_file_id", json_object_new_string(file_id)) ||
		    jv_add(rj, "batch_id", json_object_new_string(jv_str(ans, "id")))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
	}
	rc = save_json(j, "remote.json", rj, err);
out:
	free(file_id);
	free(schema);
	json_object_put(req);
	json_object_put(ans);
	json_object_put(rj);
	http_resp_release(&resp);
	buf_release(&file);
	return rc;
}

/* ---- status ---- */

/* What the results of a batch that is over add up to. */
struct tally {
	long ok, failed;
	int64_t tokens;         /* prompt and completion tokens of the answers */
	double cost;            /* at the batch price */
};

static int results_run(struct ai_client *c, const struct job *j,
		       void (*emit)(const char *line, size_t len, void *ud), void *ud,
		       struct tally *t, struct ai_err *err);

static json_object *get_batch(struct ai_client *c, const char *batch_id, struct ai_err *err)
{
	struct http_resp resp;
	struct buf path;
	json_object *b = NULL;
	int rc;

	buf_init(&path, 0);
	if (buf_addf(&path, "/batches/%s", batch_id)) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	http_resp_init(&resp);
	rc = ai_api_request(c, "GET", path.data, NULL, NULL, 0, &resp, err);
	if (!rc) {
		b = json_tokener_parse(resp.body.data ? resp.body.data : "");
		if (!b || !jv_str(b, "status")) {
			json_object_put(b);
			b = NULL;
			ai_errf(err, AI_EX_UNAVAILABLE, "the batch '%s' answer has no status", batch_id);
		}
	} else if (rc > 0) {
		ai_errf(err, AI_EX_OK, "dry run");
	}
	http_resp_release(&resp);
	buf_release(&path);
	return b;
}

static bool terminal(const char *st)
{
	return !strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "expired") ||
	       !strcmp(st, "cancelled");
}

static void iso(char *out, size_t n, long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * The state ai-batch(1) documents for a provider's batch state, so that a
 * script reads a remote job as it reads a local one: validating is queued;
 * in_progress, finalizing and any state not known yet are running;
 * completed is done; expired, like failed, is failed; cancelling is
 * cancelled.
 */
static const char *job_state(const char *st)
{
	if (!strcmp(st, "validating"))
		return "queued";
	if (!strcmp(st, "completed"))
		return "done";
	if (!strcmp(st, "failed") || !strcmp(st, "expired"))
		return "failed";
	if (!strcmp(st, "cancelled") || !strcmp(st, "cancelling"))
		return "cancelled";
	return "running";
}

/* What wait exits with for a batch over in state st, with these answers. */
static int over_code(const char *st, long ok, long failed)
{
	if (!strcmp(st, "failed"))
		return AI_EX_UNAVAILABLE;
	if (strcmp(st, "completed"))
		return AI_EX_TEMPFAIL;
	return !failed ? AI_EX_OK : ok ? AI_EX_PARTIAL : AI_EX_UNAVAILABLE;
}

static void no_emit(const char *line, size_t len, void *ud)
{
	(void)line;
	(void)len;
	(void)ud;
}

json_object *provbatch_status(struct ai_client *c, const struct job *j, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err), *b = NULL, *o = NULL, *rc_ = NULL;
	const char *bid, *st = "completed";
	struct tally t = { 0, 0, 0, 0 };
	long total, done, failed;
	int code = -1;
	char ts[32];

	if (!rj)
		return NULL;
	bid = jv_str(rj, "batch_id");
	if (bid && !(b = get_batch(c, bid, err)))
		goto out;
	if (b) {
		st = jv_str(b, "status");
		json_object_object_get_ex(b, "request_counts", &rc_);
	}
	total = rc_ ? jv_long(rc_, "total", -1) : 0;
	done = rc_ ? jv_long(rc_, "completed", -1) : 0;
	failed = rc_ ? jv_long(rc_, "failed", -1) : 0;
	if (!b || terminal(st)) {
		/*
		 * Over: count the lines as results will print them (an input line
		 * that could not be sent included), and the tokens and cost, as
		 * wait does; the first look downloads the results and bills them.
		 */
		if (results_run(c, j, no_emit, NULL, &t, err))
			goto out;
		total = t.ok + t.failed;
		done = t.ok;
		failed = t.failed;
		code = over_code(st, t.ok, t.failed);
	}
	if (!(o = json_object_new_object()))
		goto oom;
	if (jv_add(o, "id", json_object_new_string(j->id)) ||
	    jv_add(o, "mode", json_object_new_string("remote")) ||
	    jv_add(o, "state", json_object_new_string(job_state(st))) ||
	    jv_add(o, "total", json_object_new_int64(total > 0 ? total : 0)) ||
	    jv_add(o, "done", json_object_new_int64((done > 0 ? done : 0) + (failed > 0 ? failed : 0))) ||
	    jv_add(o, "ok", json_object_new_int64(done > 0 ? done : 0)) ||
	    jv_add(o, "failed", json_object_new_int64(failed > 0 ? failed : 0)))
		goto oom;
	if (b && jv_long(b, "created_at", -1) > 0) {
		iso(ts, sizeof(ts), jv_long(b, "created_at", -1));
		if (jv_add(o, "started", json_object_new_string(ts)))
			goto oom;
	} else {
		json_object_object_add(o, "started", NULL);
	}
	iso(ts, sizeof(ts), (long)time(NULL));
	if (jv_add(o, "updated", json_object_new_string(ts)))
		goto oom;
	json_object_object_add(o, "eta_s", NULL);
	if (jv_add(o, "tokens", json_object_new_int64(t.tokens)) ||
	    jv_add(o, "cost", json_object_new_double(t.cost)))
		goto oom;
	json_object_object_add(o, "exit", code >= 0 ? json_object_new_int(code) : NULL);
	if (bid && (jv_add(o, "batch", json_object_new_string(bid)) ||
		    jv_add(o, "batch_status", json_object_new_string(st))))
		goto oom;
	goto out;
oom:
	json_object_put(o);
	o = NULL;
	ai_errf(err, AI_EX_OSERR, "out of memory");
out:
	json_object_put(b);
	json_object_put(rj);
	return o;
}
/*
 * Removes the temporary files (.NAME.XXXXXX, fdio.h) of downloads that a
 * kill or a power cut stopped: each is up to MAX_FILE, and a runner is
 * the job directory's only writer, so none of them is in use.
 */
static void drop_leftovers(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	size_t n = strlen(name);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] == '.' && !strncmp(e->d_name + 1, name, n) && e->d_name[n + 1] == '.' &&
		    strlen(e->d_name + n + 2) == 6)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}


/* ---- results ---- */

/*
 * Downloads a result file into the job as name.  It goes straight to disk
 * (written aside and renamed when whole, by fd_replace_open), not through
 * memory: a result file may be far larger than any answer (OpenAI allows
 * 200 MB), up to what results_run reads back.
 */
static int download(struct ai_client *c, const struct job *j, const char *file_id,
		    const char *name, struct ai_err *err)
{
	struct buf url, path;
	struct fd_replace out;
	int rc = -1;

	buf_init(&url, 0);
	buf_init(&path, 0);
	if (buf_addf(&url, "/files/%s/content", file_id) || job_path(j, name, &path)) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	drop_leftovers(j->dir, name);
	if (fd_replace_open(&out, path.data, 0600, err))
		goto out;
	rc = ai_api_download(c, url.data, out.fd, MAX_FILE, err);
	if (rc)
		fd_replace_abort(&out);         /* failed, or --dry-run (1): nothing written */
	else
		rc = fd_replace_commit(&out, err);
out:
	buf_release(&url);
	buf_release(&path);
	return rc < 0 ? -1 : 0;
}

struct results {
	struct ai_client *c;
	struct buf data;        /* the output and error files, one after the other */
	json_object *index;     /* custom_id -> offset of its line in data */
	const char *status;     /* the batch's */
	bool account;
	void (*emit)(const char *line, size_t len, void *ud);
	void *ud;
	struct buf line;
	struct ai_err *err;
	struct structured *st;  /* submitted with --schema: each answer is checked, or NULL */
	long failed, ok;
	int64_t tokens;
	double cost;
};

static int index_lines(struct results *r, size_t from)
{
	size_t i = from;

	while (i < r->data.len) {
		char *nl = memchr(r->data.data + i, '\n', r->data.len - i);
		size_t end = nl ? (size_t)(nl - r->data.data) : r->data.len;
		json_tokener *tok = json_tokener_new();
		json_object *l = tok ? json_tokener_parse_ex(tok, r->data.data + i, (int)(end - i)) : NULL;
		const char *cid = jv_str(l, "custom_id");

		if (cid && jv_add(r->index, cid, json_object_new_int64((int64_t)i))) {
			json_object_put(l);
			json_tokener_free(tok);
			return ai_errf(r->err, AI_EX_OSERR, "out of memory");
		}
		json_object_put(l);
		if (tok)
			json_tokener_free(tok);
		i = end + 1;
	}
	return 0;
}

static int result_line(struct results *r, struct jsonl_item *it, const char *text)
{
	json_object *l = json_tokener_parse(text), *resp = NULL, *body = NULL, *e = NULL;
	bool good = true;
	long status;
	int rc;

	if (l)
		json_object_object_get_ex(l, "response", &resp);
	if (resp && json_object_is_type(resp, json_type_object))
		json_object_object_get_ex(resp, "body", &body);
	status = jv_long(resp, "status_code", -1);
	if (status >= 200 && status < 300 && body) {
		json_object *ch, *c0 = NULL, *msg = NULL, *u = NULL;
		long pt, ct;

		if (json_object_object_get_ex(body, "choices", &ch) && json_object_is_type(ch, json_type_array))
			c0 = json_object_array_get_idx(ch, 0);
		if (c0)
			json_object_object_get_ex(c0, "message", &msg);
		json_object_object_get_ex(body, "usage", &u);
		pt = jv_count(u, "prompt_tokens");
		ct = jv_count(u, "completion_tokens");
		if (r->account) {
			double cost = ai_account_batch_result(r->c, jv_str(body, "model"), pt, ct, status);

			r->cost += isfinite(cost) ? cost : 0;
		}
		r->tokens += (pt > 0 ? pt : 0) + (ct > 0 ? ct : 0);
		{
			json_object *calls = NULL;
			struct jsonl_answer a = {
				.output = jv_str(msg, "content"), .finish_reason = jv_str(c0, "finish_reason"),
				.prompt_tokens = pt, .completion_tokens = ct, .model = jv_str(body, "model")
			};

			if (msg && json_object_object_get_ex(msg, "tool_calls", &calls))
				a.tool_calls = calls;
			rc = jsonl_ok_line(&r->line, it->id, &a);
		}
		/* --schema: checked as ai-batch's engine checks; no second ask in a batch that is over. */
		if (!rc && r->st && (rc = jsonl_schema_line(&r->line, r->st, it->id, status,
							    jv_str(msg, "content"), 1, &good)) == 0 && !good) {
			r->failed++;
			json_object_put(l);
			return 0;
		}
		r->ok++;
	} else {
		json_object *be = NULL;

		if (body)
			json_object_object_get_ex(body, "error", &be);
		if (l)
			json_object_object_get_ex(l, "error", &e);
		if (!be || !json_object_is_type(be, json_type_object))
			be = e && json_object_is_type(e, json_type_object) ? e : NULL;
		if (r->account)
			ai_account_batch_result(r->c, NULL, -1, -1, status);
		rc = jsonl_err_line(&r->line, it->id, status,
				    jv_str(be, "type") ? jv_str(be, "type") : jv_str(be, "code") ? jv_str(be, "code") :
				    "batch_error",
				    jv_str(be, "message") ? jv_str(be, "message") : "the batch failed this request", 1);
		r->failed++;
	}
	json_object_put(l);
	return rc;
}

static int each_result(struct jsonl_item *it, void *ud)
{
	struct results *r = ud;
	json_object *off;
	int rc;

	buf_reset(&r->line);
	if (it->bad) {
		rc = jsonl_err_line(&r->line, it->id, 0, "invalid_input", it->error, 0);
		r->failed++;
	} else if (json_object_object_get_ex(r->index, it->key, &off)) {
		const char *text = r->data.data + json_object_get_int64(off);
		const char *nl = strchr(text, '\n');
		char *copy = nl ? strndup(text, (size_t)(nl - text)) : strdup(text);

		if (!copy)
			return ai_errf(r->err, AI_EX_OSERR, "out of memory");
		rc = result_line(r, it, copy);
		free(copy);
	} else {
		char msg[160];

		snprintf(msg, sizeof(msg), "the batch ended (%s) without an answer for this item",
			 r->status);
		rc = jsonl_err_line(&r->line, it->id, 0, "batch_not_processed", msg, 0);
		r->failed++;
	}
	if (rc)
		return ai_errf(r->err, AI_EX_OSERR, "out of memory");
	r->emit(r->line.data, r->line.len, r->ud);
	return 0;
}

static int results_run(struct ai_client *c, const struct job *j,
		       void (*emit)(const char *line, size_t len, void *ud), void *ud,
		       struct tally *t, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err), *b = NULL, *v;
	struct structured st;
	struct results r;
	struct jsonl_opts io;
	struct buf p;
	int fd, rc = -1;
	const char *bid;

	memset(&r, 0, sizeof(r));
	buf_init(&r.data, MAX_FILE);
	buf_init(&r.line, 0);
	buf_init(&p, 0);
	r.c = c;
	r.emit = emit;
	r.ud = ud;
	r.err = err;
	r.status = "completed";
	if (!rj)
		goto out;
	bid = jv_str(rj, "batch_id");
	if (bid) {
		if (!(b = get_batch(c, bid, err)))
			goto out;
		r.status = jv_str(b, "status");
		if (!terminal(r.status)) {
			rc = 0;     /* no results before the end */
			goto out;
		}
		if (!json_object_object_get_ex(rj, "downloaded", &v)) {
			if ((jv_str(b, "output_file_id") &&
			     download(c, j, jv_str(b, "output_file_id"), "batch-output.jsonl", err)) ||
			    (jv_str(b, "error_file_id") &&
			     download(c, j, jv_str(b, "error_file_id"), "batch-errors.jsonl", err)))
				goto out;
			/* Billed once: the ledger rows are written on the first download only. */
			r.account = true;
		}
		if (jv_str(b, "output_file_id") && load(j, "batch-output.jsonl", &r.data, err))
			goto out;
		if (r.data.len && r.data.data[r.data.len - 1] != '\n')
			buf_addch(&r.data, '\n');
		if (jv_str(b, "error_file_id") && load(j, "batch-errors.jsonl", &r.data, err))
			goto out;
	}
	if (!(r.index = json_object_new_object()) || index_lines(&r, 0))
		goto out;
	memset(&io, 0, sizeof(io));
	io.mode = jv_str(rj, "mode") && !strcmp(jv_str(rj, "mode"), "lines") ? JSONL_LINES : JSONL_JSON;
	io.tmpl = jv_str(rj, "template");
	io.system = jv_str(rj, "system");
	if (jv_str(rj, "schema")) {
		if (structured_restore(&st, jv_str(rj, "schema"), err))
			goto out;
		r.st = &st;
	}
	if (job_path(j, "input.jsonl", &p) || (fd = open(p.data, O_RDONLY | O_CLOEXEC)) < 0) {
		ai_errf(err, AI_EX_NOINPUT, "job '%s' has lost its input", j->id);
		goto out;
	}
	rc = batch_each_item(fd, &io, (size_t)jv_long(rj, "max_line", -1), each_result, &r, err);
	close(fd);
	if (!rc && r.account) {
		/* The cost is known only when billed: kept for every later look. */
		jv_add(rj, "downloaded", json_object_new_boolean(1));
		jv_add(rj, "cost", json_object_new_double(r.cost));
		rc = save_json(j, "remote.json", rj, err);
	} else if (json_object_object_get_ex(rj, "cost", &v)) {
		r.cost = json_object_get_double(v);
	}
	if (t) {
		t->ok = r.ok;
		t->failed = r.failed;
		t->tokens = r.tokens;
		t->cost = isfinite(r.cost) && r.cost > 0 ? r.cost : 0;
	}
out:
	if (r.st)
		structured_release(r.st);
	json_object_put(r.index);
	json_object_put(b);
	json_object_put(rj);
	buf_release(&r.data);
	buf_release(&r.line);
	buf_release(&p);
	return rc;
}

int provbatch_results(struct ai_client *c, const struct job *j,
		   void (*emit)(const char *line, size_t len, void *ud), void *ud, struct ai_err *err)
{
	return results_run(c, j, emit, ud, NULL, err);
}

int provbatch_cancel(struct ai_client *c, const struct job *j, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err);
	struct http_resp resp;
	struct buf path;
	int rc = 0;

	if (!rj)
		return -1;
	buf_init(&path, 0);
	http_resp_init(&resp);
	if (jv_str(rj, "batch_id")) {
		if (buf_addf(&path, "/batches/%s/cancel", jv_str(rj, "batch_id")))
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
		else
			rc = ai_api_request(c, "POST", path.data, NULL, "", 0, &resp, err) < 0 ? -1 : 0;
	}
	http_resp_release(&resp);
	buf_release(&path);
	json_object_put(rj);
	return rc;
}

int provbatch_stop(struct ai_client *c, const struct job *j, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err), *b = NULL;
	const char *st;
	int rc = -1;

	if (!rj)
		return -1;
	if (!jv_str(rj, "batch_id")) {
		rc = 0;
		goto out;
	}
	if (!(b = get_batch(c, jv_str(rj, "batch_id"), err)))
		goto out;
	st = jv_str(b, "status") ? jv_str(b, "status") : "";
	if (terminal(st) || !strcmp(st, "cancelling"))
		rc = 0;
	else
		rc = provbatch_cancel(c, j, err) ? -1 : 1;
out:
	json_object_put(b);
	json_object_put(rj);
	return rc;
}

/* DELETE /files/ID: 1 deleted, 0 the provider has it no more (404), -1 with err. */
static int delete_file(struct ai_client *c, const char *id, struct ai_err *err)
{
	struct http_resp resp;
	struct buf path;
	int rc;

	/* A name the provider gave: it must stay one segment of the path. */
	if (!*id || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(id))
		return ai_errf(err, AI_EX_DATAERR, "'%.60s' is not a file id", id);
	buf_init(&path, 0);
	if (buf_addf(&path, "/files/%s", id)) {
		buf_release(&path);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	http_resp_init(&resp);
	rc = ai_api_request(c, "DELETE", path.data, NULL, NULL, 0, &resp, err);
	if (rc < 0 && err->status == 404) {
		ai_err_clear(err);
		rc = 0;
	} else if (!rc) {
		rc = 1;
	}
	http_resp_release(&resp);
	buf_release(&path);
	return rc;
}

int provbatch_delete_files(struct ai_client *c, const struct job *j, int *deleted, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err), *b = NULL;
	const char *ids[3] = { NULL, NULL, NULL }, *st;
	int rc = -1;

	*deleted = 0;
	if (!rj)
		return -1;
	if (jv_str(rj, "batch_id")) {
		if (!(b = get_batch(c, jv_str(rj, "batch_id"), err)))
			goto out;
		st = jv_str(b, "status");
		if (!terminal(st)) {
			ai_errf(err, AI_EX_TEMPFAIL, "job '%s' is %s at the provider: cancel it first "
				"(ai-batch cancel %s), or delete it with --force", j->id, job_state(st), j->id);
			goto out;
		}
		ids[1] = jv_str(b, "output_file_id");
		ids[2] = jv_str(b, "error_file_id");
	}
	ids[0] = jv_str(rj, "input_file_id");
	for (size_t i = 0; i < AI_ARRAY_LEN(ids); i++) {
		int r = ids[i] ? delete_file(c, ids[i], err) : 0;

		if (r < 0)
			goto out;
		*deleted += r;
	}
	rc = 0;
out:
	json_object_put(b);
	json_object_put(rj);
	return rc;
}

int provbatch_wait(struct ai_client *c, const struct job *j, long poll_ms,
		volatile sig_atomic_t *stop, struct ai_err *err)
{
	json_object *rj = load_json(j, "remote.json", err), *b = NULL;
	char *bid;
	const char *st;
	struct tally t = { 0, 0, 0, 0 };
	int code;

	if (!rj)
		return -1;
	bid = jv_str(rj, "batch_id") ? strdup(jv_str(rj, "batch_id")) : NULL;
	json_object_put(rj);
	for (; bid;) {
		if (!(b = get_batch(c, bid, err))) {
			free(bid);
			return -1;
		}
		if (terminal(jv_str(b, "status")))
			break;
		json_object_put(b);
		b = NULL;
		for (long waited = 0; waited < poll_ms; waited += 50) {
			struct timespec ts = { 0, 50000000L };

			if (stop && *stop) {
				free(bid);
				return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
			}
			nanosleep(&ts, NULL);
		}
	}
	free(bid);
	st = b ? jv_str(b, "status") : "completed";
	code = strcmp(st, "completed") ? over_code(st, 0, 0) : 0;
	json_object_put(b);
	if (code)
		return code;
	/* Count the answers the way results will print them (and bill them, once). */
	if (results_run(c, j, no_emit, NULL, &t, err))
		return -1;
	return over_code("completed", t.ok, t.failed);
}
