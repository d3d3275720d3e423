#ifndef AI_OUT_H
#define AI_OUT_H
/*
 * out.h - the one writer of the JSON values programs print: a message
 * object, a member added, a line written.  Like cli.h it serves main():
 * out of memory exits (70), and a line goes out through cli_write, whose
 * failures cli_finish reports.
 */
#include "ai.h"
#include <json-c/json.h>

/* Returns a new empty object, owned (free with json_object_put); exits on ENOMEM. */
json_object *out_object(void);

/* Returns a new {"role": role, "content": content} object; exits on ENOMEM. */
json_object *out_message(const char *role, const char *content);

/* Adds val (may be NULL for JSON null) to o under k; exits on ENOMEM. Takes val. */
void out_add(json_object *o, const char *k, json_object *val);

/* Adds the usage object (jv_usage: null for an unknown count) to o; exits on ENOMEM. */
void out_usage(json_object *o, long prompt_tokens, long completion_tokens);

/* Prints j as one line and flushes (JSON lines are flushed one by one). */
void out_json_line(json_object *j);

#endif
