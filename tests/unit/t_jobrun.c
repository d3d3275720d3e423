/* t_jobrun.c - a local job's lifecycle (common/batch/jobrun.c), without a runner. */
#include "batch/jobrun.h"
#include "buf.h"
#include "jsonval.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static void put_file(const struct job *j, const char *name, const char *text)
{
	struct ai_err err;
	int fd = jobrun_open(j, name, O_WRONLY | O_CREAT | O_TRUNC, &err);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		printf("# cannot write %s\n", name);
	if (fd >= 0)
		close(fd);
}

static void collect(const char *data, size_t len, void *ud)
{
	buf_add(ud, data, len);
}

static const char *state_now(const struct job *j)
{
	static char st[32];
	struct ai_err err;
	json_object *s = jobrun_status(j, &err);

	snprintf(st, sizeof(st), "%s", s ? jobrun_state(s) : "(error)");
	json_object_put(s);
	return st;
}

static int fail_under_lock(struct job *j, void *ud, struct ai_err *err)
{
	(void)j;
	(void)ud;
	return ai_errf(err, AI_EX_UNAVAILABLE, "the provider said no");
}

int main(void)
{
	char tmpl[] = "/tmp/t_jobrun.XXXXXX", *dir = mkdtemp(tmpl);
	struct batch_stats bs = { .total = 10, .done = 4, .ok = 3, .failed = 1, .replayed = 2,
				  .prompt_tokens = 7, .completion_tokens = 5, .cost = 0.5,
				  .started_ms = 1700000000000, .elapsed_ms = 1000 };
	struct batch_opts bo;
	volatile sig_atomic_t stop = 0;
	struct ai_err err;
	struct job j;
	struct buf b;
	json_object *s;
	int fd;

	if (!dir || setenv("XDG_DATA_HOME", dir, 1))
		return 1;
	ai_err_clear(&err);
	ok(fabs(jobrun_eta_s(&bs) - 3) < 1e-9, "ETA: 6 left at 2 fresh a second is 3 s");
	bs.elapsed_ms = 0;
	ok(isnan(jobrun_eta_s(&bs)), "no rate yet: no ETA");
	bs.elapsed_ms = 1000;

	if (job_new(&j, &err))
		return printf("Bail out! %s\n", err.msg), 1;
	s = jobrun_status_new(&j, "running", &bs, -1);
	ok(s != NULL, "a status object");
	is_str(jv_str(s, "id"), j.id, "id");
	is_str(jv_str(s, "mode"), "local", "mode local");
	is_int(jv_long(s, "total", -1), 10, "total");
	is_int(jv_long(s, "done", -1), 4, "done");
	is_int(jv_long(s, "tokens", -1), 12, "tokens add up");
	is_int(jv_long(s, "eta_s", -1), 3, "eta_s while running");
	is_str(jv_str(s, "started"), "2023-11-14T22:13:20Z", "started in ISO 8601 UTC");
	ok(json_object_object_get_ex(s, "exit", NULL) && !json_object_object_get(s, "exit"),
	   "exit null while running");
	json_object_put(s);
	s = jobrun_status_new(&j, "done", NULL, 1);
	ok(!json_object_object_get(s, "eta_s") && !json_object_object_get(s, "started"),
	   "no stats: eta_s and started null");
	is_int(jobrun_exit_code(s), 1, "the exit code of a finished job");
	json_object_put(s);
	s = json_object_new_object();
	is_int(jobrun_exit_code(s), AI_EX_TEMPFAIL, "no exit code: temporary failure");
	is_str(jobrun_state(s), "", "no state: empty");
	json_object_put(s);

	/* A running state with no runner holding the lock is "stopped", unless the provider runs it. */
	ok(jobrun_set_status(&j, "running", &bs, -1, &err) == 0, "status written");
	is_str(state_now(&j), "stopped", "running without a runner reads as stopped");
	put_file(&j, "remote.json", "{}");
	ok(jobrun_has_file(&j, "remote.json"), "has_file");
	is_str(state_now(&j), "running", "a remote job's state is the provider's to say");
	{
		struct buf p;

		buf_init(&p, 0);
		job_path(&j, "remote.json", &p);
		unlink(p.data);
		buf_release(&p);
	}
	ok(!jobrun_has_file(&j, "remote.json"), "gone");

	/* Cancel a job whose runner is gone; resume queues it again. */
	ok(jobrun_cancel(&j, &err) == 0, "cancel without a runner");
	is_str(state_now(&j), "cancelled", "cancelled");
	ok(jobrun_has_file(&j, "cancelled"), "the mark is left for a runner");
	ok(jobrun_requeue(&j, &err) == 0 && !jobrun_has_file(&j, "cancelled"), "requeue removes the mark");
	is_str(state_now(&j), "queued", "and queues it");
	stop = 1;
	ok(jobrun_wait(&j, &stop, &s, &err) == -1 && err.code == AI_EX_INTERRUPT && !s,
	   "wait stops when told");
	stop = 0;
	jobrun_set_status(&j, "done", &bs, 0, &err);
	ok(jobrun_cancel(&j, &err) == 0, "cancel a done job");
	is_str(state_now(&j), "done", "a done job stays done");
	ok(jobrun_wait(&j, &stop, &s, &err) == 0 && s && !strcmp(jobrun_state(s), "done"),
	   "wait returns a finished job's status");
	json_object_put(s);

	/* results: whole lines only. */
	put_file(&j, "out.jsonl", "{\"id\":1}\n{\"id\":2}\n{\"id\":");
	buf_init(&b, 0);
	ok(jobrun_results(&j, collect, &b, &err) == 0, "results");
	ok(b.len == 18 && !memcmp(b.data, "{\"id\":1}\n{\"id\":2}\n", 18), "a line being written is left out");
	buf_release(&b);

	/* copy_input: the input is checked before anything runs. */
	memset(&bo, 0, sizeof(bo));
	bo.parallel = 1;
	bo.temperature = NAN;
	bo.max_line = 1u << 20;
	fd = open("/dev/null", O_RDONLY);
	ok(jobrun_copy_input(&j, fd, &bo, &err) == 0, "an empty input is copied");
	close(fd);
	{
		int p[2];

		if (pipe(p) == 0) {
			const char *dup = "{\"id\":1,\"text\":\"a\"}\n{\"id\":1,\"text\":\"b\"}\n";

			if (write(p[1], dup, strlen(dup)) != (ssize_t)strlen(dup))
				printf("# short write\n");
			close(p[1]);
			ai_err_clear(&err);
			ok(jobrun_copy_input(&j, p[0], &bo, &err) == -1 && err.code == AI_EX_DATAERR,
			   "duplicate ids are refused: %s", err.msg);
			close(p[0]);
		}
	}
	put_file(&j, "schema.json", "{}");     /* a file no fixed list of names knew */
	ok(job_remove(&j) == 0, "remove the job");
	ok(access(j.dir, F_OK) != 0, "its directory is gone");
	job_release(&j);

	/* delete: refused while queued (a runner about to start), else gone from list at once. */
	{
		char id[64], **ids;
		size_t n;
		bool listed = false;

		ai_err_clear(&err);
		ok(job_new(&j, &err) == 0, "a job to delete");
		snprintf(id, sizeof(id), "%s", j.id);
		put_file(&j, "template", "x");
		ok(jobrun_set_status(&j, "queued", NULL, -1, &err) == 0, "queued");
		ok(jobrun_delete(&j, false, NULL, NULL, &err) == -1 && err.code == AI_EX_TEMPFAIL &&
		   strstr(err.msg, "cancel it first"), "a queued job is not deleted: %s", err.msg);
		ok(access(j.dir, F_OK) == 0, "it is still there");
		ai_err_clear(&err);
		ok(jobrun_set_status(&j, "done", NULL, 0, &err) == 0 && jobrun_delete(&j, false, NULL, NULL, &err) == 0,
		   "a done job is deleted: %s", err.msg);
		ok(access(j.dir, F_OK) != 0, "its directory is gone, hidden name and all");
		job_release(&j);
		ok(job_open(&j, id, &err) == -1 && err.code == AI_EX_NOINPUT, "open says no such job");
		ok(job_list(&ids, &n, &err) == 0, "list");
		for (size_t i = 0; i < n; i++)
			listed |= !!strstr(ids[i], id);
		ok(!listed, "list does not show it");
		job_free_list(ids, n);
	}
	/* A runner's lock: its pid, what a delete meanwhile does to it, an error under the lock. */
	{
		char id[64], left[512];
		int lock = -1;
		struct job again;

		ai_err_clear(&err);
		ok(job_new(&j, &err) == 0, "a job to run");
		snprintf(id, sizeof(id), "%s", j.id);
		ok(job_runner_pid(&j) == -1, "no runner holds its lock");
		ok(jobrun_take(&j, &lock, &err) == 0, "the runner takes the lock: %s", err.msg);
		ok(job_runner_pid(&j) == (long)getpid(), "and its pid is in it");
		ok(job_lock_current(&j, lock), "the lock is the job's");
		ok(jobrun_delete(&j, false, NULL, NULL, &err) == -1 && err.code == AI_EX_TEMPFAIL,
		   "a job whose lock is held is running: %s", err.msg);
		close(lock);
		ok(job_lock(&j, &lock, &err) == 0, "lock it as a delete does");
		ok(job_delete(&j, &err) == 0, "delete it under the lock");
		ok(!job_lock_current(&j, lock), "a runner that waited finds its lock no more the job's");
		close(lock);
		job_release(&j);

		ok(job_new(&j, &err) == 0 && jobrun_set_status(&j, "done", NULL, 0, &err) == 0, "a done job");
		ai_err_clear(&err);
		ok(jobrun_delete(&j, false, fail_under_lock, NULL, &err) == -1 && err.code == AI_EX_UNAVAILABLE,
		   "an error under the lock: %s", err.msg);
		ok(job_open(&again, j.id, &err) == 0, "keeps the job");
		job_release(&again);
		/* A delete cut short: its leftover is swept by the next job_new. */
		snprintf(left, sizeof(left), "%s/ai/jobs/.deleting-%s", dir, id);
		ok(mkdir(left, 0700) == 0, "a leftover of a delete cut short");
		job_release(&j);
		ok(job_new(&j, &err) == 0 && access(left, F_OK) != 0, "job_new sweeps it away");
		ok(job_remove(&j) == 0, "remove the jobs");
		job_release(&j);
	}

	buf_init(&b, 0);
	buf_addf(&b, "%s/ai/jobs", dir);
	rmdir(b.data);
	buf_reset(&b);
	buf_addf(&b, "%s/ai", dir);
	rmdir(b.data);
	buf_release(&b);
	rmdir(dir);
	return tap_done();
}
