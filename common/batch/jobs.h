#ifndef AI_JOBS_H
#define AI_JOBS_H
/*
 * jobs.h - the spool of ai-batch jobs, for cron and fire-and-forget use.
 *
 * A job is a directory $XDG_DATA_HOME/ai/jobs/ID (mode 0700) holding:
 *
 *   input.jsonl   the items, copied at submit time
 *   args          the options it was submitted with, NUL-separated
 *   state         the journal of finished items (see journal.h)
 *   out.jsonl     the output lines so far, in order
 *   status.json   {id, mode, state, total, done, ok, failed, started, updated, eta_s, exit, pid, ...}
 *   log           the runner's stderr
 *   lock          held (flock) by the runner while it runs
 *   remote.json   for --remote jobs: the provider's file and batch ids
 *
 * The lock, not the pid, says whether a runner is alive: it is released
 * by the kernel when the runner dies, whatever killed it, and is not
 * fooled by a pid reused after a reboot.
 *
 * Ids sort by time: 20261127T114500-ab12cd (UTC, then 6 random hex digits).
 */
#include "ai.h"
#include "buf.h"

#include <json-c/json.h>
#include <sys/types.h>

struct job {
	char id[64];
	char *dir;              /* owned */
};

/*
 * Creates a new job directory with a fresh id.  Release with job_release.
 * Sweeps away first what deletes cut short left (.deleting-ID).
 */
int job_new(struct job *j, struct ai_err *err);

/* Opens the job id: AI_EX_USAGE for an id that is not one, AI_EX_NOINPUT when it does not exist. */
int job_open(struct job *j, const char *id, struct ai_err *err);
void job_release(struct job *j);

/* Appends the path of the job's file name to out. */
int job_path(const struct job *j, const char *name, struct buf *out);

/* Saves argv[0..argc) (the options) to "args"; loads them back as an owned vector
 * (free with job_free_args), argv[0] being "ai-batch". */
int job_save_args(const struct job *j, int argc, char **argv, struct ai_err *err);
int job_load_args(const struct job *j, int *argc, char ***argv, struct ai_err *err);
void job_free_args(int argc, char **argv);

/* Writes status whole or not at all (fd_replace_file, mode 0600, synced); status is borrowed. */
int job_write_status(const struct job *j, json_object *status, struct ai_err *err);
/* Returns the status, owned (json_object_put), or NULL with err. */
json_object *job_read_status(const struct job *j, struct ai_err *err);

/*
 * Takes the job's lock for a runner: 0 with *fd (keep it open while running),
 * 1 when another runner holds it, -1 on error.
 */
int job_lock(const struct job *j, int *fd, struct ai_err *err);
/* job_lock, tried again for up to wait_ms while another holds it. */
int job_lock_wait(const struct job *j, int *fd, long wait_ms, struct ai_err *err);

/*
 * Writes this process's pid into the lock held on fd, for cancel: the pid
 * in status.json is only whoever wrote the status last.
 */
int job_lock_claim(int fd, struct ai_err *err);

/* Whether the lock held on fd is still the job's (not deleted meanwhile). */
bool job_lock_current(const struct job *j, int fd);

/*
 * The pid a runner holding the job's lock wrote into it: -1 when no runner
 * holds it, 0 when one does but its pid is not (yet) known.
 */
long job_runner_pid(const struct job *j);

/* 1 when a runner holds the job's lock. */
int job_running(const struct job *j);

/* The ids of all jobs, sorted (oldest first), as an owned vector of owned strings. */
int job_list(char ***ids, size_t *n, struct ai_err *err);
void job_free_list(char **ids, size_t n);

/* Removes the job's files and its directory, as far as it can: 0, or -1 with errno. */
int job_remove(const struct job *j);

/*
 * Deletes the job: renames its directory to a hidden name first (.deleting-ID,
 * which list and job_open do not see), then removes it.  The caller makes
 * sure no runner works in it (it holds the lock).  j->dir then names the
 * hidden directory; release j as ever.  -1 with err (AI_EX_IOERR).
 */
int job_delete(struct job *j, struct ai_err *err);

/*
 * Detaches: forks twice and calls setsid, so the runner survives the
 * terminal and is nobody's zombie.  Returns 1 in the caller (after the
 * middle process has exited), 0 in the detached process (stdin from
 * /dev/null, stdout and stderr to the job's log), -1 on error.
 */
int job_detach(const struct job *j, struct ai_err *err);

#endif
