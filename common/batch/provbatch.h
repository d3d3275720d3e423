#ifndef AI_PROVBATCH_H
#define AI_PROVBATCH_H
/*
 * provbatch.h - ai-batch jobs run by the provider's Batch API (submit --remote):
 * half the price, answered within 24 hours.
 *
 * submit writes every sendable item as one request line
 *   {"custom_id": KEY, "method": "POST", "url": "/v1/chat/completions", "body": {...}}
 * (KEY is the item's id as text), uploads them (POST /files, purpose
 * "batch", multipart), creates the batch (POST /batches, window 24h) and
 * keeps the ids in the job's remote.json.  status is GET /batches/ID;
 * results downloads the output and error files once, writes the ledger
 * rows at the batch price once, and prints the lines of the output
 * contract in input order, mapped back by custom_id: an item the provider
 * did not answer (the batch expired, failed or was cancelled) gets an
 * error line, and so does an input line that could not be sent at all.
 */
#include "ai.h"
#include "api/api.h"
#include "batch/batch.h"
#include "batch/jobs.h"

#include <signal.h>

/* Uploads the items on in_fd and creates the batch; under --dry-run shows the requests. */
int provbatch_submit(struct ai_client *c, const struct job *j, int in_fd, const struct batch_opts *o,
		  struct ai_err *err);

/*
 * {id, mode: "remote", state, total, done, ok, failed, started, updated,
 * eta_s, tokens, cost, exit, batch, batch_status}: the fields of a local
 * job's status, state mapped onto its states (batch_status is the
 * provider's own); once the batch is over, the counts, tokens and cost are
 * those of its results, which the first such look downloads and bills, as
 * wait does.  Owned, or NULL.
 */
json_object *provbatch_status(struct ai_client *c, const struct job *j, struct ai_err *err);

/* Prints the results through emit, in input order; nothing while the batch is not over. */
int provbatch_results(struct ai_client *c, const struct job *j,
		   void (*emit)(const char *line, size_t len, void *ud), void *ud, struct ai_err *err);

/*
 * The job's remote.json: {batch_id, input_file_id, ...}, the provider's
 * names of its batch and files.  Owned, or NULL with err.
 */
json_object *provbatch_record(const struct job *j, struct ai_err *err);

/*
 * The provider's side of a job to delete: its batch must be over (else
 * AI_EX_TEMPFAIL: cancel it first), then its files, the input and the
 * batch's output and error files, are deleted (DELETE /files/ID; a file
 * the provider has no more counts as gone).  The batch itself stays: the
 * Batch API deletes none.  *deleted: the files deleted now.
 */
int provbatch_delete_files(struct ai_client *c, const struct job *j, int *deleted, struct ai_err *err);

int provbatch_cancel(struct ai_client *c, const struct job *j, struct ai_err *err);

/*
 * Cancels the batch unless the provider says it is over (or being
 * cancelled): 1 cancelled now, 0 nothing to cancel, -1 with err.
 */
int provbatch_stop(struct ai_client *c, const struct job *j, struct ai_err *err);

/*
 * Polls every poll_ms until the batch is over; returns the exit status
 * (0 all answered, 1 some failed, 75 expired or cancelled, 69 failed), or
 * -1 with err (AI_EX_INTERRUPT when *stop became non-zero).
 */
int provbatch_wait(struct ai_client *c, const struct job *j, long poll_ms,
		volatile sig_atomic_t *stop, struct ai_err *err);

#endif
