#ifndef AI_SCHEMA_H
#define AI_SCHEMA_H
/*
 * schema.h - a JSON Schema validator for the subset OpenAI's structured
 * outputs define, and llm's short form for writing one.
 *
 * The keywords: type (one or a list), properties, required,
 * additionalProperties, enum, const, anyOf, items, prefixItems, $defs and
 * $ref (a JSON pointer into the same document), minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, minLength and maxLength
 * (in code points), pattern, minItems, maxItems; true and false as
 * schemas.  Annotations (title, description, default, format, ...) and
 * unknown keywords are ignored, as the specification says; the keywords
 * of JSON Schema this subset leaves out (allOf, oneOf, not, $id, ...) are
 * refused when the schema is compiled, so that no constraint the user
 * wrote is silently not checked.
 *
 * pattern is a POSIX extended regex (regcomp), searched unanchored as
 * ECMA-262's test() does; the common ECMA escapes (\d \w \s and their
 * negations, (?:...), lazy quantifiers) are translated, lookaround and
 * backreferences are refused.  Matching is bytewise in the C locale.
 *
 * Pure: nothing here prints, exits or reads a file.
 */
#include "ai.h"

#include <json-c/json.h>

struct snode;

struct schema {
	json_object *root;      /* owned: the schema document */
	struct snode **nodes;   /* owned: every compiled node, for release */
	size_t n, alloc;
	struct snode *top;      /* borrowed from nodes: the root's node */
};

/* Why a value does not match: where in the value, and what is wrong. */
struct schema_fail {
	char ptr[256];          /* RFC 6901 pointer into the value, "" for the whole */
	char reason[200];
};

/*
 * Compiles root (taken, even on failure) into s.  -1 with err
 * (AI_EX_DATAERR) naming the place in the schema when a keyword has the
 * wrong shape, is outside the subset, a $ref leads nowhere or loops
 * without descending into the value, or a pattern does not compile.
 */
int schema_compile(struct schema *s, json_object *root, struct ai_err *err);

/*
 * Parses text as a schema: JSON when it starts with '{' (or is true or
 * false), else the short form (see schema_short).  Then compiles it.
 * multi wraps it as {"items": [schema...]} (see schema_multi).
 */
int schema_parse(struct schema *s, const char *text, size_t len, bool multi, struct ai_err *err);

void schema_release(struct schema *s);

/*
 * 0 when v matches; -1 with f filled when it does not (or when checking it
 * would cost more than a reply can be allowed to: nested anyOf over a deep
 * value).  v is borrowed; s is only read, so one compiled schema serves
 * many threads.
 */
int schema_validate(const struct schema *s, json_object *v, struct schema_fail *f);

/*
 * The short form, as llm writes it: fields separated by commas (or
 * newlines when there is one), each "name [type] [: description]", type
 * one of str (the default), int, float, bool, or [type] for an array of
 * it.  Every field is required and no other is allowed (additionalProperties
 * false), as strict structured outputs need.  Returns owned (put with
 * json_object_put), or NULL with err (AI_EX_DATAERR) naming the field.
 */
json_object *schema_short(const char *text, size_t len, struct ai_err *err);

/*
 * Wraps schema (taken) as an object whose one required member "items" is
 * an array of it: structured outputs want an object at the top.  Owned.
 */
json_object *schema_multi(json_object *schema);

#endif
