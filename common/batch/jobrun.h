#ifndef AI_JOBRUN_H
#define AI_JOBRUN_H
/*
 * jobrun.h - the life of a local ai-batch job over the spool of jobs.h:
 * the input copied in, the status.json written as the batch runs, the
 * runner itself, and what status, results, wait, cancel and resume do to
 * a job.  ai-batch keeps the options, the dispatch and the printing.
 *
 * status.json of a local job:
 *   {"id", "mode": "local", "state", "total", "done", "ok", "failed",
 *    "started" (ISO 8601 UTC or null), "updated", "eta_s" (while running,
 *    else null), "tokens", "cost", "exit" (the exit status once over, else
 *    null), "pid" (of the process that wrote it)}
 * with state one of queued, running, done, failed, stopped (the runner
 * died or was interrupted; resume goes on), cancelled.
 *
 * Nothing here prints or exits: warnings go to a callback, errors back
 * in err.
 */
#include "ai.h"
#include "batch/batch.h"
#include "batch/jobs.h"

#include <json-c/json.h>
#include <signal.h>

struct ai_client;

/* Seconds left at the rate so far (items replayed from the journal not counted), NAN when unknown. */
double jobrun_eta_s(const struct batch_stats *s);

/*
 * A status object as above for state, with the counts of s (NULL: zeros)
 * and exit_code (negative: null).  Owned (json_object_put), NULL when out
 * of memory.
 */
json_object *jobrun_status_new(const struct job *j, const char *state, const struct batch_stats *s,
			       int exit_code);

/* Writes that status into the job. */
int jobrun_set_status(const struct job *j, const char *state, const struct batch_stats *s,
		      int exit_code, struct ai_err *err);

/*
 * The job's status as status.json says, except that a local job said to
 * be running with no runner alive is "stopped".  Owned, or NULL with err.
 */
json_object *jobrun_status(const struct job *j, struct ai_err *err);

/* The "state" of a status ("" when missing); borrowed from s. */
const char *jobrun_state(json_object *s);

/* The "exit" of a finished job's status; AI_EX_TEMPFAIL when there is none. */
int jobrun_exit_code(json_object *s);

/* Whether the job holds the file name (remote.json: run by the provider). */
bool jobrun_has_file(const struct job *j, const char *name);

/* Opens the job's file name (mode 0600 when created); the fd, or -1 with err (AI_EX_IOERR). */
int jobrun_open(const struct job *j, const char *name, int flags, struct ai_err *err);

/*
 * Copies the input on fd into the job's input.jsonl (synced), then reads
 * it once through batch_open with o, so that bad ids or size are refused
 * before anything is detached.  Interrupted (o->stop set while it waits for
 * input), it gives up with AI_EX_INTERRUPT.
 */
int jobrun_copy_input(const struct job *j, int fd, const struct batch_opts *o, struct ai_err *err);

/*
 * The runner: the batch of o over the job's input.jsonl, with its journal
 * ("state") and its output (out.jsonl, rewritten from the journal each
 * run, one write a line), through c, writing status.json as it goes.  o's
 * state, emit, progress and ud are set here.  Returns the job's exit code
 * (err filled when the run failed or was interrupted: the state is then
 * failed, stopped or cancelled), or -1 with err when the batch could not
 * start (state failed).  warn (may be NULL) hears of status or output
 * that could not be written.
 */
int jobrun_run(const struct job *j, struct ai_client *c, struct batch_opts *o,
	       void (*warn)(const char *msg, void *ud), void *ud, struct ai_err *err);

/*
 * Hands every whole line of the job's output so far to emit (a line being
 * written is left for the next look).
 */
int jobrun_results(const struct job *j, void (*emit)(const char *data, size_t len, void *ud), void *ud,
		   struct ai_err *err);

/*
 * Waits until the job is no longer queued or running; *final is its last
 * status (owned).  -1 with err (AI_EX_INTERRUPT) once *stop is set.
 */
int jobrun_wait(const struct job *j, volatile sig_atomic_t *stop, json_object **final, struct ai_err *err);

/*
 * Cancels a local job: marks it (a runner yet to start stops at the mark),
 * stops the runner that holds the job's lock (SIGTERM to the pid it wrote
 * there, once status.json says that pid runs the job; then up to 5 s:
 * AI_EX_TEMPFAIL if the lock is still held), or marks a job not done
 * cancelled.
 */
int jobrun_cancel(const struct job *j, struct ai_err *err);

/*
 * Takes the job's lock for its runner, waiting up to 5 s for a short
 * holder (a delete deciding, a look at the job): 0 with *lock (keep it
 * open while running; the runner's pid is written into it), 1 when there
 * is nothing to run (the job was deleted meanwhile, or cancelled before
 * it started: its status then says so), -1 with err (AI_EX_TEMPFAIL when
 * another runner holds it).
 */
int jobrun_take(const struct job *j, int *lock, struct ai_err *err);

/*
 * Deletes a local job or the local record of a --remote one (jobs.h's
 * job_delete), under the job's lock so that no runner starts meanwhile.
 * A job running or queued (a runner about to start) is refused with
 * AI_EX_TEMPFAIL, unless force: then it is cancelled first.  under_lock
 * (may be NULL) runs under the lock just before the files go, and an
 * error from it keeps the job: the provider's side of a --remote job is
 * the caller's to deal with there.
 */
int jobrun_delete(struct job *j, bool force, int (*under_lock)(struct job *j, void *ud, struct ai_err *err),
		  void *ud, struct ai_err *err);

/* Makes a stopped or cancelled job queued again, for a new runner. */
int jobrun_requeue(const struct job *j, struct ai_err *err);

#endif
