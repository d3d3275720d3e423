#ifndef AI_ATTACHCLI_H
#define AI_ATTACHCLI_H
/*
 * attachcli.h - -a FILE|URL|- and --attach-as text|file, shared by the
 * programs that take attachments (ai-stream, ai-agent, ai-summarize): the
 * options, reading "-" from standard input, and the PDF text through
 * rag/docload (pdftotext by the tool runner), which api/attach cannot
 * call from its layer.  Errors exit with the code api/attach gives.
 */
#include "lib/cli.h"
#include "api/attach.h"

struct ai_config;

#define ATTACHCLI_OPT_AS (CLI_OPT_PROG - 2)

/* The two lines of a program's option table. */
#define ATTACHCLI_OPTS \
	{ "attach", required_argument, 'a', "FILE|URL|-", "attach an image, a PDF or a text file, or an image URL (repeatable)" }, \
	{ "attach-as", required_argument, ATTACHCLI_OPT_AS, "text|file", "send a PDF as its text (default) or as a file" }

struct attachcli {
	const char *src[64];    /* borrowed from argv */
	size_t n;
	enum attach_pdf pdf;
};

/* Takes -a or --attach-as (val 'a' or ATTACHCLI_OPT_AS); usage errors exit 64. */
void attachcli_opt(struct attachcli *a, int val, const char *arg);

/* Options for api/attach from the configuration's caps, with docload's PDF text. */
void attachcli_opts(const struct attachcli *a, const struct ai_config *cfg, struct attach_opts *o);

/*
 * Loads every -a into s (initialised here; released on failure): 0, or -1
 * with err for the first that fails, naming it, for the program to report
 * in its own way (ai-stream's --json gives it an error record).
 */
int attachcli_load(const struct attachcli *a, const struct ai_config *cfg, struct attach_set *s,
		   struct ai_err *err);

/* docload's PDF text, as attach_opts.pdf_text wants it (ai-batch passes it too). */
int attachcli_pdf_text(const char *name, const char *path, struct buf *out, void *ud,
		       struct ai_err *err);

#endif
