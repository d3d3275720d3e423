#ifndef AI_JSONVAL_H
#define AI_JSONVAL_H
/*
 * jsonval.h - the json-c wrappers every module uses, written once.
 *
 * json-c's json_object_object_add and json_object_array_add take the
 * value only when they succeed; these take it always (releasing it on
 * failure), so a caller can chain them without leaking.  The getters
 * lend: what they return lives as long as the object it came from.
 */
#include "ai.h"

#include <json-c/json.h>

/*
 * Adds v to object o under k.  Takes v, even on failure.  A NULL v adds
 * JSON null, as json-c does (so pass jv_num(NAN) for an unknown number).
 * 0 or -1.
 */
int jv_add(json_object *o, const char *k, json_object *v);

/* Appends v to array a.  Takes v, even on failure; a NULL v fails.  0 or -1. */
int jv_push(json_object *a, json_object *v);

/* The string member k of o, borrowed; NULL when o is NULL, k is missing or not a string. */
const char *jv_str(json_object *o, const char *k);

/* The integer (or integral double) member k of o; dflt when missing or not a number. */
long jv_long(json_object *o, const char *k, long dflt);

/* The most tokens one answer can report and be believed: far beyond any context window. */
#define JV_MAX_TOKENS 1000000000L

/*
 * A token count a server reported as member k of o (a usage object): an
 * integer from 0 to JV_MAX_TOKENS, else -1 (unknown).  A count no model
 * could have used is a lie or a bug, and believing it would book a fortune
 * to the ledger and stop every program at the daily budget; unknown books
 * nothing.
 */
long jv_count(json_object *o, const char *k);

/* A new JSON number for v, or NULL (JSON null) when v is NaN or infinite: an unknown cost. */
json_object *jv_num(double v);

#endif
