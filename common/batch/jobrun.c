/*
 * jobrun.c - a local job's lifecycle (see jobrun.h for status.json).
 */
#include "batch/jobrun.h"
#include "buf.h"
#include "jsonval.h"

#include <fcntl.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

double jobrun_eta_s(const struct batch_stats *s)
{
	long fresh = s->done - s->replayed;
	double rate = s->elapsed_ms > 0 ? fresh * 1000.0 / (double)s->elapsed_ms : 0;

	return rate > 0 ? (double)(s->total - s->done) / rate : NAN;
}

static void iso_time(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_object *jobrun_status_new(const struct job *j, const char *state, const struct batch_stats *s,
			       int exit_code)
{
	json_object *o = json_object_new_object();
	char t[32], u[32];
	int bad = 0;

	if (!o)
		return NULL;
	if (s && s->started_ms)
		iso_time(t, sizeof(t), s->started_ms);
	iso_time(u, sizeof(u), (int64_t)time(NULL) * 1000);
	bad |= jv_add(o, "id", json_object_new_string(j->id));
	bad |= jv_add(o, "mode", json_object_new_string("local"));
	bad |= jv_add(o, "state", json_object_new_string(state));
	bad |= jv_add(o, "total", json_object_new_int64(s ? s->total : 0));
	bad |= jv_add(o, "done", json_object_new_int64(s ? s->done : 0));
	bad |= jv_add(o, "ok", json_object_new_int64(s ? s->ok : 0));
	bad |= jv_add(o, "failed", json_object_new_int64(s ? s->failed : 0));
	bad |= jv_add(o, "started", s && s->started_ms ? json_object_new_string(t) : NULL);
	bad |= jv_add(o, "updated", json_object_new_string(u));
	if (s && !strcmp(state, "running") && isfinite(jobrun_eta_s(s)))
		bad |= jv_add(o, "eta_s", json_object_new_int64((int64_t)ceil(jobrun_eta_s(s))));
	else
		bad |= jv_add(o, "eta_s", NULL);
	bad |= jv_add(o, "tokens", json_object_new_int64(s ? s->prompt_tokens + s->completion_tokens : 0));
	bad |= jv_add(o, "cost", json_object_new_double(s ? s->cost : 0));
	bad |= jv_add(o, "exit", exit_code >= 0 ? json_object_new_int(exit_code) : NULL);
	bad |= jv_add(o, "pid", json_object_new_int64((int64_t)getpid()));
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int jobrun_set_status(const struct job *j, const char *state, const struct batch_stats *s,
		      int exit_code, struct ai_err *err)
{
	json_object *o = jobrun_status_new(j, state, s, exit_code);
	int rc;

	if (!o)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	rc = job_write_status(j, o, err);
	json_object_put(o);
	return rc;
}

const char *jobrun_state(json_object *s)
{
	json_object *v;

	return json_object_object_get_ex(s, "state", &v) ? json_object_get_string(v) : "";
}

bool jobrun_has_file(const struct job *j, const char *name)
{
	struct buf p;
	bool yes;

	buf_init(&p, 0);
	job_path(j, name, &p);
	yes = p.data && !access(p.data, F_OK);
	buf_release(&p);
	return yes;
}

json_object *jobrun_status(const struct job *j, struct ai_err *err)
{
	json_object *s = job_read_status(j, err);

	/* A queued job whose runner has not yet taken the lock is still starting. */
	if (s && !strcmp(jobrun_state(s), "running") && !jobrun_has_file(j, "remote.json") &&
	    !job_running(j) && jv_add(s, "state", json_object_new_string("stopped"))) {
		json_object_put(s);
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	return s;
}

int jobrun_exit_code(json_object *s)
{
	json_object *v;

	if (json_object_object_get_ex(s, "exit", &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int(v);
	return AI_EX_TEMPFAIL;
}

int jobrun_open(const struct job *j, const char *name, int flags, struct ai_err *err)
{
	struct buf p;
	int fd;

	buf_init(&p, 0);
	if (job_path(j, name, &p))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	fd = open(p.data, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		ai_errf(err, AI_EX_IOERR, "cannot open '%s': %s", p.data, strerror(errno));
	buf_release(&p);
	return fd;
}

int jobrun_copy_input(const struct job *j, int fd, const struct batch_opts *o, struct ai_err *err)
{
	struct batch b;
	int out = jobrun_open(j, "input.jsonl", O_WRONLY | O_CREAT | O_TRUNC, err);
	char blk[65536];
	ssize_t n = 0;

	if (out < 0)
		return -1;
	/* The flag is looked at before each read too: a signal between two reads cuts none short. */
	while ((o->stop && *o->stop) || (n = read(fd, blk, sizeof(blk))) != 0) {
		if ((o->stop && *o->stop) || (n < 0 && errno == EINTR)) {
			if (!o->stop || !*o->stop)
				continue;
			ai_errf(err, AI_EX_INTERRUPT, "interrupted copying the input into job '%s'", j->id);
			close(out);
			return -1;
		}
		if (n < 0 || write(out, blk, (size_t)n) != n) {
			ai_errf(err, AI_EX_IOERR, "cannot copy the input into job '%s': %s", j->id, strerror(errno));
			close(out);
			return -1;
		}
	}
	if (fsync(out) | close(out))
		return ai_errf(err, AI_EX_IOERR, "cannot copy the input into job '%s': %s", j->id, strerror(errno));
	if ((out = jobrun_open(j, "input.jsonl", O_RDONLY, err)) < 0)
		return -1;
	if (batch_open(&b, o, out, err)) {
		close(out);
		return -1;
	}
	batch_close(&b);
	close(out);
	return 0;
}

/* ---- the runner ---- */

struct runner {
	const struct job *j;
	int out;
	void (*warn)(const char *msg, void *ud);
	void *ud;
};

static void warn(const struct runner *r, const char *msg)
{
	if (r->warn)
		r->warn(msg, r->ud);
}

static void set_status(const struct runner *r, const char *state, const struct batch_stats *s, int code)
{
	struct ai_err e;

	ai_err_clear(&e);
	if (jobrun_set_status(r->j, state, s, code, &e))
		warn(r, e.msg);
}

static void emit_job(const char *line, size_t len, void *ud)
{
	struct runner *r = ud;
	struct buf b;

	/* One write a line, so a reader of out.jsonl never sees half of one. */
	buf_init(&b, 0);
	if (buf_add(&b, line, len) || buf_addch(&b, '\n') ||
	    write(r->out, b.data, b.len) != (ssize_t)b.len) {
		struct ai_err e;

		ai_errf(&e, AI_EX_IOERR, "cannot write the job's output: %s", strerror(errno));
		warn(r, e.msg);
	}
	buf_release(&b);
}

static void progress_job(const struct batch_stats *s, bool final, void *ud)
{
	if (!final)
		set_status(ud, "running", s, -1);
}

int jobrun_run(const struct job *j, struct ai_client *c, struct batch_opts *o,
	       void (*warn_fn)(const char *msg, void *ud), void *ud, struct ai_err *err)
{
	struct runner r = { j, -1, warn_fn, ud };
	struct batch b;
	struct buf state;
	int in, rc, code = -1;

	buf_init(&state, 0);
	if (job_path(j, "state", &state))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if ((in = jobrun_open(j, "input.jsonl", O_RDONLY, err)) < 0)
		goto out;
	/* Rewritten from the journal on every run, so a resume never repeats a line. */
	if ((r.out = jobrun_open(j, "out.jsonl", O_WRONLY | O_CREAT | O_TRUNC, err)) < 0)
		goto out;
	o->state = state.data;
	o->emit = emit_job;
	o->progress = progress_job;
	o->progress_ms = 500;
	o->ud = &r;
	set_status(&r, "running", NULL, -1);
	if (batch_open(&b, o, in, err)) {
		set_status(&r, "failed", NULL, err->code);
		goto out;
	}
	set_status(&r, "running", &b.st, -1);
	rc = batch_run(&b, c, err);
	code = rc ? err->code : batch_exit_code(&b);
	if (rc && err->code == AI_EX_INTERRUPT)
		set_status(&r, jobrun_has_file(j, "cancelled") ? "cancelled" : "stopped", &b.st, -1);
	else
		set_status(&r, rc ? "failed" : "done", &b.st, code);
	batch_close(&b);
out:
	o->state = NULL;
	if (in >= 0)
		close(in);
	if (r.out >= 0)
		close(r.out);
	buf_release(&state);
	return code;
}

/* ---- looking at a job ---- */

int jobrun_results(const struct job *j, void (*emit)(const char *data, size_t len, void *ud), void *ud,
		   struct ai_err *err)
{
	int fd = jobrun_open(j, "out.jsonl", O_RDONLY | O_CREAT, err), rc = 0;
	struct buf pend;
	char blk[65536];
	ssize_t n;

	if (fd < 0)
		return -1;
	/* Whole lines only: a line being written as we read is left for next time. */
	buf_init(&pend, 0);
	while ((n = read(fd, blk, sizeof(blk))) != 0) {
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ai_errf(err, AI_EX_IOERR, "cannot read the results of '%s': %s", j->id, strerror(errno));
			break;
		}
		if (buf_add(&pend, blk, (size_t)n)) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			break;
		}
		for (nl = pend.data + pend.len; nl > pend.data && nl[-1] != '\n'; nl--)
			;
		if (nl > pend.data) {
			size_t k = (size_t)(nl - pend.data);

			emit(pend.data, k, ud);
			buf_consume(&pend, k);
		}
	}
	buf_release(&pend);
	close(fd);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int jobrun_wait(const struct job *j, volatile sig_atomic_t *stop, json_object **final, struct ai_err *err)
{
	json_object *s;
	const char *st;

	*final = NULL;
	for (;;) {
		if (*stop)
			return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
		if (!(s = jobrun_status(j, err)))
			return -1;
		st = jobrun_state(s);
		if (strcmp(st, "running") && strcmp(st, "queued"))
			break;
		json_object_put(s);
		sleep_ms(100);
	}
	*final = s;
	return 0;
}

/* The status, state cancelled unless the job is done; the mark is what counts if it cannot be written. */
static void mark_cancelled(const struct job *j)
{
	struct ai_err ignored;
	json_object *s = job_read_status(j, &ignored);

	if (s && strcmp(jobrun_state(s), "done") && !jv_add(s, "state", json_object_new_string("cancelled")))
		job_write_status(j, s, &ignored);
	json_object_put(s);
}

/* Whether status.json says that pid runs the job: the pid in the lock alone may be a stale one. */
static bool runs_it(const struct job *j, long pid)
{
	struct ai_err ignored;
	json_object *s = job_read_status(j, &ignored), *p;
	bool yes = s && !strcmp(jobrun_state(s), "running") && json_object_object_get_ex(s, "pid", &p) &&
		   json_object_get_int64(p) == pid;

	json_object_put(s);
	return yes;
}

int jobrun_cancel(const struct job *j, struct ai_err *err)
{
	int fd = jobrun_open(j, "cancelled", O_WRONLY | O_CREAT, err);
	bool seen = false, killed = false;
	long pid;

	if (fd < 0)
		return -1;
	close(fd);
	/*
	 * A runner that takes the lock from now on finds the mark and stops;
	 * one that holds it is sent SIGTERM once it is known to be the one
	 * running (it wrote its pid into the lock, then "running" with it).
	 */
	for (int i = 0; (pid = job_runner_pid(j)) >= 0; i++) {
		seen = true;
		if (pid > 0 && !killed && runs_it(j, pid))
			killed = !kill((pid_t)pid, SIGTERM);
		if (i == 100)
			return ai_errf(err, AI_EX_TEMPFAIL, "job '%s' did not stop within 5 s", j->id);
		sleep_ms(50);
	}
	/* A runner stopped by the mark wrote its own status, with its counts. */
	if (!seen)
		mark_cancelled(j);
	return 0;
}

int jobrun_take(const struct job *j, int *lock, struct ai_err *err)
{
	int r = job_lock_wait(j, lock, 5000, err);

	if (r < 0 && access(j->dir, F_OK) && errno == ENOENT)
		return 1;       /* deleted before this runner came to its lock */
	if (r < 0)
		return -1;
	if (r > 0)
		return ai_errf(err, AI_EX_TEMPFAIL, "job '%s' is running already", j->id);
	/* A delete may have held the lock while this runner waited for it. */
	if (!job_lock_current(j, *lock)) {
		close(*lock);
		return 1;
	}
	if (jobrun_has_file(j, "cancelled")) {
		mark_cancelled(j);
		close(*lock);
		return 1;
	}
	if (job_lock_claim(*lock, err)) {
		close(*lock);
		return -1;
	}
	return 0;
}

int jobrun_requeue(const struct job *j, struct ai_err *err)
{
	struct buf p;

	buf_init(&p, 0);
	if (job_path(j, "cancelled", &p))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	unlink(p.data);
	buf_release(&p);
	return jobrun_set_status(j, "queued", NULL, -1, err);
}

/* Whether the job waits for a runner that has not yet taken the lock. */
static bool queued(const struct job *j)
{
	struct ai_err ignored;
	json_object *s;
	bool yes;

	if (jobrun_has_file(j, "remote.json") || !(s = job_read_status(j, &ignored)))
		return false;
	yes = !strcmp(jobrun_state(s), "queued");
	json_object_put(s);
	return yes;
}

int jobrun_delete(struct job *j, bool force, int (*under_lock)(struct job *j, void *ud, struct ai_err *err),
		  void *ud, struct ai_err *err)
{
	int lock = -1, r, rc;

	/*
	 * Looked at before the lock is taken too: a runner about to start
	 * waits for the lock a while, but need not wait for a refusal.
	 */
	if (!force && queued(j))
		goto about_to_run;
	/* Held through the delete: no runner starts in the job while it goes. */
	r = job_lock_wait(j, &lock, 1000, err);
	if (r < 0)
		return -1;
	if (r > 0) {
		if (!force)
			return ai_errf(err, AI_EX_TEMPFAIL, "job '%s' is running: cancel it first "
				       "(ai-batch cancel %s), or delete it with --force", j->id, j->id);
		if (jobrun_cancel(j, err))
			return -1;
		if ((r = job_lock_wait(j, &lock, 1000, err)) != 0)
			return r < 0 ? -1 : ai_errf(err, AI_EX_TEMPFAIL, "job '%s' did not stop", j->id);
	}
	if (!force && queued(j)) {
		close(lock);
		goto about_to_run;
	}
	if (under_lock && under_lock(j, ud, err)) {
		close(lock);
		return -1;
	}
	ai_err_clear(err);      /* a status that cannot be read does not keep a job */
	rc = job_delete(j, err);
	close(lock);
	return rc;
about_to_run:
	return ai_errf(err, AI_EX_TEMPFAIL, "job '%s' is about to run: cancel it first "
		       "(ai-batch cancel %s), or delete it with --force", j->id, j->id);
}
