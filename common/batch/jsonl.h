#ifndef AI_JSONL_H
#define AI_JSONL_H
/*
 * jsonl.h - JSON-lines items for ai-batch: reading lines with a size cap,
 * turning a line into a chat request, the output line of an item, and a
 * set of ids for finding duplicates in a million-line input.
 *
 * An item is a JSON string (the text), or an object with "id" and "text",
 * or "id" and "messages" (a whole chat request: its other fields pass
 * through), or, under a template, any object whose fields the template
 * names as {{field}}.  In line mode every line is a text.  An item without
 * an id gets its line number.  A line that cannot become a request still
 * becomes an item, one that carries its error, so that it gets its own
 * error line and the rest of the batch goes on.
 */
#include "ai.h"
#include "buf.h"
#include "api/structured.h"

#include <json-c/json.h>

/* ---- lines ---- */

/*
 * Reads lines from a file descriptor through a fixed block buffer.  A line
 * over max bytes is not kept: it is reported once, with too_long set and
 * no text, and the reader goes on at the next line.  CRLF is read as LF;
 * blank lines (only spaces, tabs and CR) are skipped but counted.
 */
struct jsonl_reader {
	int fd;                 /* borrowed */
	size_t max;             /* longest line kept, in bytes */
	long lineno;            /* 1-based number of the line last returned */
	uint64_t offset;        /* file offset of the start of the line last returned */
	/* Called with every byte read, in order (the input's hash), or NULL. */
	void (*on_bytes)(const void *p, size_t n, void *ud);
	void *ud;
	/* private */
	char *blk;
	size_t blen, bpos;
	uint64_t boff;          /* file offset of blk[0] */
	struct buf line;
	bool eof;
};

/* Sets r up over fd; returns -1 (ENOMEM) with err. */
int jsonl_reader_init(struct jsonl_reader *r, int fd, size_t max, struct ai_err *err);
void jsonl_reader_release(struct jsonl_reader *r);

/*
 * The next non-blank line: 1 with *line (borrowed until the next call; NUL-
 * terminated, without its newline) and *len, or with *too_long set and an
 * empty line; 0 at the end; -1 when reading fails (AI_EX_NOINPUT, errno in msg).
 */
int jsonl_next(struct jsonl_reader *r, const char **line, size_t *len, bool *too_long,
	       struct ai_err *err);

/* ---- items ---- */

enum jsonl_mode { JSONL_JSON, JSONL_LINES };

struct attach_opts;

struct jsonl_opts {
	enum jsonl_mode mode;
	const char *tmpl;       /* "Classify: {{text}}", or NULL */
	const char *system;     /* a system message put before text items, or NULL */
	/* Borrowed or NULL: how a text item's "attachments" (an array of files and URLs, as
	 * -a takes them) are made content parts (api/attach.h); NULL: the field is refused. */
	const struct attach_opts *attach;
};

struct jsonl_item {
	json_object *id;        /* owned: the item's id (a string or an integer) or its line number */
	char *key;              /* owned: the id as text (a string as is, a number in decimal):
				 * duplicates are found by it, and it is the Batch API's custom_id */
	long lineno;
	bool auto_id;           /* the line gave no id: id is its line number */
	json_object *messages;  /* owned array, or NULL when the item is bad */
	json_object *extra;     /* owned object of other request fields ("messages" items), or NULL */
	const char *model;      /* borrowed from extra: the item's own model, or NULL */
	char *text;             /* owned: the user text of a text item, for the token estimate */
	bool bad;               /* the item cannot be sent: error says why */
	char error[200];
	size_t attachments;     /* its "attachments", in its messages as content parts */
};

/*
 * Fills it from one line (len bytes; too_long for a line over the cap).
 * Always gives an item with an id and a key, bad or not; -1 only when
 * memory runs out.  Release with jsonl_item_release.
 */
int jsonl_parse(const char *line, size_t len, bool too_long, long lineno,
		const struct jsonl_opts *o, struct jsonl_item *it, struct ai_err *err);
void jsonl_item_release(struct jsonl_item *it);

/*
 * Expands {{name}} in tmpl from the fields of obj (a string field as is,
 * another value as JSON text; {{text}} of a string item is the string,
 * passed as str with obj NULL).  Spaces inside the braces are allowed.
 * -1 with a message in why (n bytes) when a named field is missing.
 */
int jsonl_template(const char *tmpl, json_object *obj, const char *str, struct buf *out,
		   char *why, size_t n);

/*
 * The id as text into out: a string as is, an integer in decimal; -1 when id is
 * neither (or an empty string).
 */
int jsonl_id_key(json_object *id, struct buf *out);

/*
 * The output line of an item (no newline), appended to out:
 *   {"id", "output", "finish_reason", ["tool_calls",] "usage": {"prompt_tokens",
 *    "completion_tokens"}, "model", "cached", "ms"}
 * ("tool_calls" only when the model called tools), or
 *   {"id", "error": {"status", "type", "message"}, "attempts"}.
 * id and tool_calls are borrowed; strings are copied.  -1 when memory runs out.
 */
struct jsonl_answer {
	const char *output;
	const char *finish_reason;      /* NULL: null */
	json_object *tool_calls;        /* an array, or NULL */
	long prompt_tokens, completion_tokens;  /* -1: absent */
	const char *model;
	bool cached;
	double ms;
};
int jsonl_ok_line(struct buf *out, json_object *id, const struct jsonl_answer *a);
int jsonl_err_line(struct buf *out, json_object *id, long status, const char *type,
		   const char *message, int attempts);

/*
 * --schema: out holds an item's answer line (jsonl_ok_line); content, the
 * answer, is checked against st.  Valid: the line gets "data" (under
 * multi, one line per object, structured_lines).  Invalid: out is
 * replaced by an error line of type schema_invalid that says where and
 * why, with the reply kept as "raw".  *ok says which; -1 when memory runs out.
 */
int jsonl_schema_line(struct buf *out, const struct structured *st, json_object *id, long status,
		      const char *content, int attempts, bool *ok);

/* ---- a set of ids ---- */

/*
 * 64-bit hashes of the keys, in an open-addressing table (8 bytes an id at
 * most half full): a million ids take 16 MiB.  Two keys of one hash count as
 * one, so a hit means "probably seen": confirm it exactly when it matters.
 */
struct jsonl_idset {
	uint64_t *tab;          /* 0 marks an empty slot */
	size_t cap, n;
	unsigned char hkey[16]; /* SipHash key */
};

void jsonl_idset_init(struct jsonl_idset *s);
void jsonl_idset_release(struct jsonl_idset *s);
/* Adds key; 1 when it was (probably) there already, 0 when new, -1 on ENOMEM. */
int jsonl_idset_add(struct jsonl_idset *s, const char *key, size_t len);
/* 1 when key is (probably) in s. */
int jsonl_idset_has(const struct jsonl_idset *s, const char *key, size_t len);
/* The hash of key, as the set uses it (never 0). */
uint64_t jsonl_idset_hash(const struct jsonl_idset *s, const char *key, size_t len);

#endif
