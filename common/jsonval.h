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

/* A new chat message {"role": role, "content": content}; NULL when out of memory. */
json_object *jv_message(const char *role, const char *content);

/*
 * Numbers that may be unknown, written the one way: an unknown number is
 * JSON null (returned as NULL, which jv_add adds as null), never -1, 0 or
 * a missing member.  The others return a new object, or NULL on ENOMEM.
 */

/* A new JSON number for v, or NULL (JSON null) when v is NaN or infinite: an unknown cost. */
json_object *jv_num(double v);

/* The same printed with digits significant digits (%.*g): 0.1+0.2 is 0.3, not 0.30000000000000004. */
json_object *jv_num_g(double v, int digits);

/* A count (tokens, as jv_count reads them) as a JSON integer, or NULL (null) when negative: unknown. */
json_object *jv_count_num(long n);

/* Adds count n to *total; an unknown (negative) n makes the total unknown (-1) for good. */
void jv_count_sum(long *total, long n);

/*
 * The usage object of an answer, the one writer of it:
 * {"prompt_tokens": N|null, "completion_tokens": N|null}, null for a count
 * that is unknown (negative).  Returns new, or NULL on ENOMEM.
 */
json_object *jv_usage(long prompt_tokens, long completion_tokens);

/*
 * The token counts of a chat answer or of one chunk of a stream, as the
 * servers report them; each is -1 while unknown.
 */
struct jv_tokens {
	long prompt, completion;
	long cached;            /* of prompt: read from the server's prompt cache */
	long reasoning;         /* of completion: spent reasoning (o-series, DeepSeek) */
	bool usage;             /* the counts came from a usage object, not from timings */
};

/* Sets every count of t to -1 (unknown), usage to false. */
void jv_tokens_init(struct jv_tokens *t);

/*
 * Reads the counts in j (an answer, or a stream chunk) into t: "usage"
 * with OpenAI's prompt_tokens_details.cached_tokens and
 * completion_tokens_details.reasoning_tokens, else llama.cpp's "timings"
 * (prompt_n + cache_n prompt tokens, cache_n of them cached, predicted_n
 * completion tokens), which its server sends where it sends no usage.  A
 * count j does not give, or gives out of jv_count's range, leaves t's as it
 * was.  Usage wins over timings, in j and in any chunk before or after;
 * later timings replace earlier ones (a stream's last are its totals).
 */
void jv_tokens_read(json_object *j, struct jv_tokens *t);

struct buf;

/*
 * Appends the text of a message's content to out: a string as it is, or
 * an array of part objects ({"type": "text"|"output_text", "text": ...};
 * one without a type is text too), other parts (images, audio, refusal)
 * skipped.  Null adds nothing.  A NUL byte becomes U+FFFD
 * (utf8_add_text).  0, or -1 when out is full (errno EFBIG) or memory runs
 * out (ENOMEM), or when v is another type or an element of the array is
 * not an object (EINVAL; out may then hold the text of the parts before).
 */
int jv_content_text(json_object *v, struct buf *out);

#endif
