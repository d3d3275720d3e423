#ifndef AI_DOCLOAD_H
#define AI_DOCLOAD_H
/*
 * docload.h - documents that are not text as they are, made text for
 * ai-index: PDF (pdftotext, page by page), HTML (libxml2's HTML parser),
 * and any type the user declares a loader for in ai.conf:
 *
 *     loader.docx = pandoc -t plain
 *
 * A program (pdftotext or a loader) is an argv, never a shell string: the
 * command is split into words at blanks, with '...' and "..." quoting
 * and no other expansion, and the document's path is appended as the
 * last argument, or replaces each word that is exactly "{}".  It runs
 * through the tool runner (agent/toolrun.h, which needs nothing above the
 * base layer): its own process group, a scrubbed environment, the
 * standard input empty, a wall-clock timeout after which its whole group
 * is killed, and a cap on what it prints.
 *
 * Markdown, man pages and every other file are text as they are
 * (DOC_TEXT): the caller reads them itself.
 *
 * Nothing here prints or exits; errors name the document and say why.
 */
#include "ai.h"

#include <signal.h>

struct json_object;
struct ingest_text;

enum doc_kind {
	DOC_TEXT,       /* read as it is */
	DOC_PDF,        /* "%PDF-" in its first KiB, or named *.pdf */
	DOC_HTML,       /* "<!doctype html" or "<html" first, or named *.html, *.htm, *.xhtml */
	DOC_LOADER      /* its extension has a loader.EXT in the configuration */
};

struct docload_opts {
	/* Borrowed or NULL: the configuration's loaders, extension (lower
	 * case, no dot) -> command string (config.h, loaders). */
	struct json_object *loaders;
	long timeout_ms;        /* a program's wall-clock limit; 0: TOOLRUN_TIMEOUT_MS */
	size_t max_output;      /* the most text a document may give; 0: TOOLRUN_MAX_OUTPUT */
	const volatile sig_atomic_t *cancel;  /* polled while a program runs; may be NULL */
};

/* The bytes docload_kind looks at. */
#define DOCLOAD_SNIFF 1024

/*
 * How the document name, whose first bytes are head[0..n) (n may be 0),
 * is read.  A loader declared for its extension wins, then the content,
 * then the name.  For DOC_LOADER, *cmd (may be NULL) is set to the
 * command, borrowed from o->loaders.
 */
enum doc_kind docload_kind(const char *name, const void *head, size_t n,
			   const struct docload_opts *o, const char **cmd);

/*
 * docload_kind of the file at path, after reading its first DOCLOAD_SNIFF
 * bytes (opened without blocking; a file that is not regular is DOC_TEXT,
 * left for the caller's reader to refuse).  0, or -1 with err
 * (AI_EX_NOINPUT) when it cannot be opened.
 */
int docload_sniff(const char *path, const struct docload_opts *o, enum doc_kind *kind,
		  const char **cmd, struct ai_err *err);

/*
 * Makes the text of the file at path, of kind DOC_PDF, DOC_HTML or
 * DOC_LOADER (cmd then the loader's command).  *out is filled with owned
 * text (and pages for a PDF) for ingest_add_text; on error it is left
 * empty.  Errors are the document's: AI_EX_UNAVAILABLE when pdftotext or
 * the loader is not installed or cannot run, AI_EX_TEMPFAIL when it ran
 * past its timeout (killed), AI_EX_DATAERR when it failed, printed
 * nothing, printed more than max_output or what is not UTF-8 text,
 * AI_EX_NOINPUT when the file cannot be read, AI_EX_INTERRUPT when
 * cancelled, AI_EX_CONFIG for a loader command that does not split.
 */
int docload_file(const char *path, enum doc_kind kind, const char *cmd,
		 const struct docload_opts *o, struct ingest_text *out, struct ai_err *err);

/*
 * The text of the HTML document html[0..n), named name in messages: the
 * body's text with scripts, styles, templates, forms and navigation (nav,
 * aside, and the page's header and footer, not those of an article, main or
 * section) left out, headings h1-h6 made Markdown headings ("## Title")
 * so that the chunker keeps them as section titles, paragraphs and other
 * blocks separated by a blank line, list items as "- ".  *out as for
 * docload_file (markdown set).  AI_EX_DATAERR for a page without text.
 */
int docload_html(const char *name, const char *html, size_t n, struct ingest_text *out,
		 struct ai_err *err);

/*
 * Splits cmd into an argv, with path appended or put for "{}".  Returns
 * an owned NULL-terminated array (free with docload_argv_free), or NULL
 * with err (AI_EX_CONFIG: empty, or a quote left open; AI_EX_OSERR).
 */
char **docload_argv(const char *cmd, const char *path, struct ai_err *err);
void docload_argv_free(char **argv);

#endif
