#ifndef AI_STRUCTURED_H
#define AI_STRUCTURED_H
/*
 * structured.h - answers as data: a chat request that asks for JSON
 * matching a schema (--schema), and the checks on what comes back.
 *
 * The request carries response_format {type: json_schema, json_schema:
 * {name, schema, strict: true}}.  A server that refuses that (a 400 that
 * names response_format or json_schema: older vLLM, llama.cpp, many
 * proxies) is asked once more with {type: json_object} and the schema in
 * the system prompt.  Every reply is parsed and validated (schema.h)
 * before anyone prints, caches or journals it; an invalid one is asked
 * again once, with the validator's message; still invalid is a data error
 * (AI_EX_DATAERR) that says where and why.
 *
 * Nothing here prints; the -v note about the fallback goes through the
 * client's warn callback.
 */
#include "ai.h"
#include "api/api.h"
#include "api/schema.h"

struct structured {
	struct schema schema;
	bool multi;             /* --schema-multi: {"items": [objects]} */
	bool fallback;          /* the server refused json_schema: json_object from now on */
	bool own_format;        /* the request's own response_format is sent as it is */
};

/*
 * Loads --schema's argument: "@FILE" reads FILE, else arg is the text;
 * either is JSON Schema or the short form (schema_parse).  An inline
 * schema that does not parse is AI_EX_USAGE, a file that cannot be read
 * AI_EX_NOINPUT, a file that does not parse AI_EX_DATAERR.  The top of a
 * schema must be an object type, as structured outputs want.
 */
int structured_load(struct structured *st, const char *arg, bool multi, struct ai_err *err);
void structured_release(struct structured *st);

/*
 * The schema as one JSON text, {"schema": ROOT, "multi": BOOL}, to keep
 * with a job that checks its answers later (ai-batch submit).  Owned
 * (free); NULL when out of memory.
 */
char *structured_save(const struct structured *st);

/* Loads what structured_save made.  -1 with err (AI_EX_DATAERR) when it is not that. */
int structured_restore(struct structured *st, const char *text, struct ai_err *err);

/*
 * The schema a request names itself: extra's response_format of type
 * json_schema (an ai-batch item's own).  1 with st loaded (its request's
 * response_format is then sent unchanged), 0 when extra names none, -1
 * with err (AI_EX_DATAERR) when the schema does not compile.
 */
int structured_from_request(struct structured *st, json_object *extra, struct ai_err *err);

/* The request fields: base's members (borrowed, may be NULL) and response_format.  Owned. */
json_object *structured_extra(const struct structured *st, json_object *base);

/*
 * The messages to send: msgs itself (a new reference) normally; after a
 * fallback, a copy with the schema added to the first system message (or
 * a new one at the front).  Owned; NULL when out of memory.
 */
json_object *structured_messages(const struct structured *st, json_object *msgs);

/* True when a failed call (resp and its err) is the server refusing response_format. */
bool structured_refused(const struct ai_chat_resp *resp, const struct ai_err *err);

/*
 * Parses content as JSON (white space and a ```json fence around it
 * allowed) and validates it.  0 with *data owned (put with
 * json_object_put); -1 with f filled: a reply that is not JSON says so
 * at pointer "".
 */
int structured_check(const struct structured *st, const char *content, json_object **data,
		     struct schema_fail *f);

/* ai_chat_req.cacheable for a structured request; ud is the struct structured. */
bool structured_cacheable(const char *content, void *ud);

/*
 * The messages for the one repair: msgs (borrowed), the invalid reply as
 * the assistant's turn, and a user turn quoting the validator's message.
 * Owned; NULL when out of memory.
 */
json_object *structured_repair(json_object *msgs, const char *reply, const struct schema_fail *f);

/* "at '/age': expected integer, got string" (or "at the top: ..."), into out (n bytes). */
void structured_describe(const struct schema_fail *f, char *out, size_t n);

/*
 * The whole exchange, synchronously: the request q (its messages and
 * extra borrowed, its model and limits used as they are) with
 * response_format; a refusal falls back once (st->fallback stays set for
 * later calls); an invalid reply is repaired once.  0 with *data owned
 * and resp the last answer (its tokens summed over every call made);
 * -1 with err: the call's own error, or AI_EX_DATAERR with f saying where
 * the last reply failed (resp->content still holds it).  q->stream is
 * honoured but q->on_delta is not called: nothing is shown before it is
 * checked.
 */
int structured_chat(struct ai_client *c, struct structured *st, const struct ai_chat_req *q,
		    struct ai_chat_resp *resp, json_object **data, struct schema_fail *f,
		    struct ai_err *err);

/*
 * For ai-batch's output.  line holds one JSON object (an item's answer
 * line); it is rewritten with "data" (data borrowed) added; under multi,
 * into one line per object of data's "items", joined by '\n', each with
 * its "index" (an empty list: one line, data null, index null).  0 or -1
 * (out of memory, or line is not a JSON object).
 */
int structured_lines(struct buf *line, json_object *data, bool multi);

/* Adds "raw" (the reply that failed its schema) to the "error" object of the error line in line. */
int structured_error_raw(struct buf *line, const char *raw);

#endif
