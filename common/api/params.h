#ifndef AI_PARAMS_H
#define AI_PARAMS_H
/*
 * params.h - extra chat request parameters the user passes through:
 * "-o KEY=VALUE" on the command line and "option.KEY = VALUE" (plus the
 * top_p and seed shorthands) in ai.conf.  They go into the body of every
 * chat request, and so into its cache key, beside the fields the
 * programs set themselves; a field a program sets wins over them.
 *
 * A value is typed as JSON where it parses as JSON ("42" a number,
 * "[\"a\"]" an array, "true" a boolean, "null" null) and is a string
 * otherwise ("low"); a value that starts like an array or object but
 * does not parse is refused rather than sent as a string.
 */
#include "ai.h"

#include <json-c/json.h>

/*
 * Parses the value of one parameter.  Returns 0 and, when val is not NULL,
 * a new reference in *val (NULL for JSON null); -1 with AI_EX_USAGE in err
 * when the value is broken JSON.  what names the source for the message.
 */
int params_value(const char *what, const char *s, json_object **val, struct ai_err *err);

/*
 * Checks a parameter name: letters, digits, '_' and '-', and not one the
 * programs own (model, messages, stream, tools, temperature, ...: those have
 * their own options).  0, or -1 with AI_EX_USAGE and a message that says
 * what to use instead.
 */
int params_key_ok(const char *key, struct ai_err *err);

/*
 * Parses "KEY=VALUE" (a -o argument).  On success, when key is not NULL,
 * *key is an owned copy of KEY (free it) and *val a new reference to the
 * value (NULL for JSON null).  With key and val NULL it only checks.
 * -1 with AI_EX_USAGE in err on a missing '=', a bad or reserved key, or a
 * broken JSON value.
 */
int params_parse(const char *kv, char **key, json_object **val, struct ai_err *err);

/*
 * Sets key to val (taken, even on failure; NULL is JSON null) in *obj,
 * creating the object on first use; a later value for a key replaces the
 * earlier one.  0, or -1 with AI_EX_OSERR.
 */
int params_set(json_object **obj, const char *key, json_object *val, struct ai_err *err);

#endif
