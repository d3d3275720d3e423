#ifndef AI_TEMPLATE_H
#define AI_TEMPLATE_H
/*
 * template.h - prompts as files: $XDG_CONFIG_HOME/ai/templates/NAME.
 *
 * A template is plain text: optional header lines first, each
 * "key: value" with key one of system, model, temperature, max_tokens,
 * schema (a blank line may end the header), then the prompt.  In the
 * prompt, {{input}} is the program's input (its message) and {{name}}
 * the value of --param name=value; a prompt without {{input}} gets the
 * input after it, separated by a blank line.
 *
 * The {{name}} engine (template_expand) is the one ai-batch's {{field}}
 * templates use too.  Nothing here prints.
 */
#include "ai.h"
#include "buf.h"

struct template {
	char *system, *model, *schema;  /* owned header values, or NULL */
	double temperature;             /* NAN: not set */
	long max_tokens;                /* 0: not set */
	char *prompt;                   /* owned, never NULL after a load ("" for none) */
};

/* Parses text (len bytes) into t.  -1 with err (AI_EX_DATAERR) naming the bad header line. */
int template_parse(struct template *t, const char *text, size_t len, struct ai_err *err);

/*
 * Loads the template arg names: "@FILE" is that file, anything else a
 * name in the templates directory.  A template that does not exist is
 * AI_EX_NOINPUT (the message says where it was looked for), a bad name
 * AI_EX_USAGE, a bad file AI_EX_DATAERR.
 */
int template_load(struct template *t, const char *arg, struct ai_err *err);

void template_release(struct template *t);

/*
 * Expands {{name}} in tmpl into out, each name (spaces inside the braces
 * trimmed) looked up by fn: it appends the value to out and returns 0, or
 * returns -1 when it has none, and expansion stops with that name copied
 * into missing (n bytes).  Text without a closing "}}" is copied as is.
 */
int template_expand(const char *tmpl, int (*fn)(const char *name, struct buf *out, void *ud),
		    void *ud, struct buf *out, char *missing, size_t n);

/*
 * The prompt of t for input (may be NULL) and params ("name=value"
 * strings, borrowed) into out.  -1 with err (AI_EX_USAGE) naming a
 * parameter the template needs and was not given.
 */
int template_fill(const struct template *t, const char *input, const char *const *params,
		  size_t nparams, struct buf *out, struct ai_err *err);

/* The value of --param name among params ("name=value"; the last wins), borrowed; NULL when none. */
const char *template_param(const char *const *params, size_t nparams, const char *name);

/* Writes t as template name (0600, the directory 0700), replacing one of that name. */
int template_save(const char *name, const struct template *t, struct ai_err *err);

/* Writes t to path as template_save does (0600, written aside and renamed). */
int template_save_path(const char *path, const struct template *t, struct ai_err *err);

/*
 * The names of the saved templates, sorted, into *names (owned: free each
 * and the array); 0 with n 0 when there is no directory.
 */
int template_list(char ***names, size_t *n, struct ai_err *err);

/* 0 when name can name a template: letters, digits, '.', '_', '-', not starting with '.'. */
int template_name_ok(const char *name);

#endif
