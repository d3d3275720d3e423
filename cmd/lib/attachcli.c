/*
 * attachcli.c - the attachment options of a program (attachcli.h).
 */
#include "lib/attachcli.h"
#include "config.h"
#include "fdio.h"
#include "rag/docload.h"
#include "rag/ingest.h"

#include <unistd.h>

void attachcli_opt(struct attachcli *a, int val, const char *arg)
{
	if (val == ATTACHCLI_OPT_AS) {
		if (!strcmp(arg, "text"))
			a->pdf = ATTACH_PDF_TEXT;
		else if (!strcmp(arg, "file"))
			a->pdf = ATTACH_PDF_FILE;
		else
			cli_usage_error("--attach-as wants text or file, not '%s'", arg);
		return;
	}
	if (!*arg)
		cli_usage_error("-a wants a file, a URL or -");
	if (a->n == AI_ARRAY_LEN(a->src))
		cli_usage_error("at most %zu attachments", AI_ARRAY_LEN(a->src));
	a->src[a->n++] = arg;
}

int attachcli_pdf_text(const char *name, const char *path, struct buf *out, void *ud,
		       struct ai_err *err)
{
	const struct ai_config *cfg = ud;
	struct docload_opts o = { 0 };
	struct ingest_text t = { 0 };
	int rc;

	o.loaders = cfg ? cfg->loaders : NULL;
	o.timeout_ms = cfg ? (long)(cfg->loader_timeout_s * 1000) : 0;
	o.cancel = &cli_interrupted;
	/* The loader is a child to kill, not to leave behind, on SIGTERM (cli.h). */
	cli_defer_signals(true);
	rc = docload_file(path, DOC_PDF, NULL, &o, &t, err);
	cli_defer_signals(false);
	if (rc) {
		/* Its message names path: for "-" that is a temporary file. */
		if (strcmp(name, path)) {
			char was[sizeof(err->msg)];

			memcpy(was, err->msg, sizeof(was));
			ai_errf(err, err->code, "attachment '%s': %s", name, was);
		}
		return -1;
	}
	rc = buf_add(out, t.text ? t.text : "", t.len) ? ai_errf(err, AI_EX_OSERR, "out of memory") : 0;
	free(t.text);
	free(t.pages);
	return rc;
}

void attachcli_opts(const struct attachcli *a, const struct ai_config *cfg, struct attach_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_each = cfg->attach_max;
	o->max_total = cfg->attach_max_total;
	o->pdf = a->pdf;
	o->pdf_text = attachcli_pdf_text;
	o->pdf_ud = (void *)cfg;
}

int attachcli_load(const struct attachcli *a, const struct ai_config *cfg, struct attach_set *s,
		   struct ai_err *err)
{
	struct attach_opts o;
	bool stdin_used = false;
	size_t i;

	attachcli_opts(a, cfg, &o);
	attach_set_init(s);
	for (i = 0; i < a->n; i++) {
		int rc;

		if (!strcmp(a->src[i], "-")) {
			size_t cap = o.max_each ? o.max_each : ATTACH_MAX_DEFAULT;
			struct buf b;

			if (stdin_used)
				cli_usage_error("-a - is given twice: standard input is read once");
			stdin_used = true;
			/* One byte over the cap is enough to know it is over. */
			buf_init(&b, cap + 1);
			if (fd_read_all(STDIN_FILENO, &b, &cli_interrupted)) {
				if (errno == EFBIG)
					ai_errf(err, AI_EX_DATAERR, "attachment '-' is over the cap of %.1f MiB "
						"per attachment (attach_max in ai.conf)", (double)cap / 1048576.0);
				else
					ai_errf_errno(err, errno == ENOMEM ? AI_EX_OSERR :
						      errno == EINTR ? AI_EX_INTERRUPT : AI_EX_NOINPUT,
						      "cannot read attachment '-'");
				rc = -1;
			} else {
				rc = attach_add_mem(s, "-", b.data ? b.data : "", b.len, &o, err);
			}
			buf_release(&b);
		} else {
			rc = attach_add(s, a->src[i], &o, err);
		}
		if (rc) {
			attach_set_release(s);
			return -1;
		}
	}
	return 0;
}
