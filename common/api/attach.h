#ifndef AI_ATTACH_H
#define AI_ATTACH_H
/*
 * attach.h - attachments (-a FILE|URL|-, ai-batch's "attachments"): what
 * a user hands the model beside the prompt, made the content parts of the
 * user message in the OpenAI shape.
 *
 *  - an image (PNG, JPEG, WebP, GIF, known by its first bytes, never by
 *    its name): {"type":"image_url","image_url":{"url":"data:image/png;base64,..."}}
 *  - an http(s) URL: an image_url part holding the URL itself; it is
 *    passed to the server and never fetched here
 *  - a PDF: its text (ATTACH_PDF_TEXT, through the caller's pdf_text), or
 *    {"type":"file","file":{"filename":NAME,"file_data":"data:application/pdf;base64,..."}}
 *    (ATTACH_PDF_FILE, --attach-as file)
 *  - UTF-8 text: a text part, "NAME:" on its first line
 *
 * Each file is checked against the per-attachment cap with fstat before a
 * byte of it is read, and the sum against the total cap, so a 1 GB file
 * costs an fstat.  The parts live in the request body, so the cache key
 * (the canonical body, api.h) covers their content.
 *
 * Nothing here prints, exits or reads stdin: "-" is read by the program
 * and given to attach_add_mem.  Base64 is libsodium's.
 */
#include "ai.h"

#include <json-c/json.h>

struct buf;

enum attach_pdf { ATTACH_PDF_TEXT, ATTACH_PDF_FILE };

struct attach_opts {
	size_t max_each;        /* bytes of one attachment; 0: ATTACH_MAX_DEFAULT */
	size_t max_total;       /* bytes of them all; 0: ATTACH_MAX_TOTAL_DEFAULT */
	enum attach_pdf pdf;
	/*
	 * ATTACH_PDF_TEXT: appends the text of the PDF called name, at path
	 * (a readable file), to out; 0, or -1 with err.  The library does not
	 * run pdftotext itself: rag/docload does, a layer above this one, and
	 * the program passes it in (cmd/lib/attachcli.h).  NULL: a PDF is
	 * refused unless sent as a file.
	 */
	int (*pdf_text)(const char *name, const char *path, struct buf *out, void *ud,
			struct ai_err *err);
	void *pdf_ud;
};

#define ATTACH_MAX_DEFAULT (20u << 20)
#define ATTACH_MAX_TOTAL_DEFAULT (50u << 20)

/* The attachments of one message. */
struct attach_set {
	json_object *parts;     /* owned array of content parts, NULL until the first */
	size_t n;               /* attachments added */
	size_t total;           /* their bytes, as read (a URL counts 0) */
};

void attach_set_init(struct attach_set *s);
void attach_set_release(struct attach_set *s);

/*
 * Adds src: an http:// or https:// URL, else the path of a regular file
 * (opened without blocking; "-" is not taken here).  0, or -1 with err,
 * whose message names src: AI_EX_NOINPUT when it cannot be opened or is
 * not a regular file, AI_EX_DATAERR over a cap, for a file that is neither
 * an image, a PDF nor UTF-8 text, or a PDF without text; pdf_text's own
 * errors as it gives them.  s is unchanged on error.
 */
int attach_add(struct attach_set *s, const char *src, const struct attach_opts *o,
	       struct ai_err *err);

/*
 * Adds data[0..n), called name in messages and in a PDF's filename (the
 * program read it, from standard input for "-").  A PDF to make text of
 * is written to a temporary file for pdf_text.  Errors as attach_add.
 */
int attach_add_mem(struct attach_set *s, const char *name, const void *data, size_t n,
		   const struct attach_opts *o, struct ai_err *err);

/*
 * The content of a user message: text as a text part, then s's parts (a
 * copy).  With no attachments, a plain string.  Returns owned (json_object_put),
 * or NULL out of memory.
 */
json_object *attach_content(const char *text, const struct attach_set *s);

/* The user message {"role":"user","content":attach_content(text, s)}; returns owned, or NULL
 * out of memory. */
json_object *attach_message(const char *text, const struct attach_set *s);

/*
 * The message msg as it is kept (the --history file, the conversation
 * store): when its content is an array of parts, a copy whose content is
 * their text, with each image or file named in brackets rather than its
 * bytes ("[image: https://...]", "[image attached]", "[file attached: a.pdf]").
 * Returns a new reference (json_object_put), msg itself when there is
 * nothing to change, or NULL out of memory.
 */
json_object *attach_kept(json_object *msg);

/* The MIME type of an image whose first bytes are p[0..n), or NULL when it is none. */
const char *attach_image_type(const void *p, size_t n);

/*
 * When err is a server's refusal of a request with attachments (a 4xx
 * naming image, image_url, vision or multimodal), rewrites it as one clear
 * message with AI_EX_DATAERR and returns true; else leaves it.
 */
bool attach_refused(struct ai_err *err);

/*
 * A copy of a request body with every base64 data URL shortened to its
 * first 16 characters and its length ("data:image/png;base64,iVBORw0KGgoAAAANSUhE... (1234 bytes)"),
 * for --dry-run.  Returns owned (free), or NULL out of memory.
 */
char *attach_shorten(const char *body);

#endif
