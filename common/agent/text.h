#ifndef AI_AGENT_TEXT_H
#define AI_AGENT_TEXT_H
/*
 * text.h - untrusted bytes (a tool's output, a database's text) as a JSON
 * string that is always valid UTF-8, whatever the bytes were.
 *
 * One function for the agent's tool results and the SQL tool's values,
 * which once had a copy each that drifted apart on NUL.
 */
#include "ai.h"

#include <json-c/json.h>

/* What becomes of a NUL byte: both are safe in JSON ("\u0000" or U+FFFD). */
enum text_nul {
	TEXT_NUL_REPLACE,       /* U+FFFD: tool output, where a NUL is noise */
	TEXT_NUL_KEEP           /* kept ("\u0000"): a database value is what it is */
};

/*
 * A new JSON string of s[0..n) with every invalid UTF-8 sequence replaced
 * by U+FFFD, and NUL as nul says; a NULL s is "".  Returns owned (free
 * with json_object_put), or NULL when memory runs out.
 */
json_object *text_json(const char *s, size_t n, enum text_nul nul);

#endif
