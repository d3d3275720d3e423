/* t_schema.c - the validator's messages, the short form, regex translation, refusals. */
#include "ai.h"
#include "api/schema.h"
#include "api/structured.h"
#include "buf.h"

#include "tap.h"

/* Compiles text (JSON or short form); 0 or -1, the message in err. */
static int load(struct schema *s, const char *text, bool multi, struct ai_err *err)
{
	ai_err_clear(err);
	return schema_parse(s, text, strlen(text), multi, err);
}

/* Validates the JSON text v against s; fills f. */
static int val(const struct schema *s, const char *v, struct schema_fail *f)
{
	json_object *j = json_tokener_parse(v);
	int rc;

	memset(f, 0, sizeof(*f));
	rc = schema_validate(s, j, f);
	json_object_put(j);
	return rc;
}

static void short_form(void)
{
	struct schema s;
	struct schema_fail f;
	struct ai_err err;
	json_object *j;

	j = schema_short("name, age int, tags [str]", 25, &err);
	ok(j != NULL, "short form parses");
	is_str(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
	       "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
	       "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":"
	       "{\"type\":\"string\"}}},\"required\":[\"name\",\"age\",\"tags\"],"
	       "\"additionalProperties\":false}", "short form: every field required, no others");
	json_object_put(j);

	j = schema_short("name: the full name\nscore float: 0 to 1, higher is better\n",
			 strlen("name: the full name\nscore float: 0 to 1, higher is better\n"), &err);
	ok(j && !strcmp(json_object_get_string(json_object_object_get(json_object_object_get(
		json_object_object_get(j, "properties"), "score"), "description")), "0 to 1, higher is better"),
	   "newlines separate fields, so a description may hold commas");
	json_object_put(j);

	ok(load(&s, "name, age int, ok bool, m [[int]]", false, &err) == 0, "nested arrays");
	ok(val(&s, "{\"name\":\"a\",\"age\":3,\"ok\":true,\"m\":[[1],[2,3]]}", &f) == 0, "a matching value");
	ok(val(&s, "{\"name\":\"a\",\"age\":3.5,\"ok\":true,\"m\":[]}", &f) == -1, "3.5 is not an int");
	is_str(f.ptr, "/age", "pointer to the bad member");
	is_str(f.reason, "expected integer, got number", "reason names both types");
	ok(val(&s, "{\"name\":\"a\",\"age\":3,\"ok\":true,\"m\":[[1],[2,\"x\"]]}", &f) == -1, "deep");
	is_str(f.ptr, "/m/1/1", "pointer through arrays");
	ok(val(&s, "{\"name\":\"a\",\"age\":3,\"ok\":true}", &f) == -1 &&
	   !strcmp(f.reason, "required property 'm' is missing") && !strcmp(f.ptr, ""),
	   "missing member: reason at the object");
	ok(val(&s, "{\"name\":\"a\",\"age\":3,\"ok\":true,\"m\":[],\"x/y~\":1}", &f) == -1, "extra member");
	is_str(f.ptr, "/x~1y~0", "pointer escapes / and ~");
	is_str(f.reason, "property 'x/y~' is not allowed", "extra member named");
	schema_release(&s);

	ok(load(&s, "name, age integer, x complex", false, &err) == -1 && err.code == AI_EX_DATAERR &&
	   strstr(err.msg, "unknown type 'complex'"), "unknown short type is an error: %s", err.msg);
	ok(load(&s, "a, a int", false, &err) == -1 && strstr(err.msg, "named twice"), "duplicate field");
	ok(load(&s, " , ,", false, &err) == -1 && strstr(err.msg, "no fields"), "no fields");
	ok(load(&s, "a int extra", false, &err) == -1, "three words in a field");

	ok(load(&s, "name, n int", true, &err) == 0, "multi");
	ok(val(&s, "{\"items\":[{\"name\":\"a\",\"n\":1},{\"name\":\"b\",\"n\":2}]}", &f) == 0, "multi: array of objects");
	ok(val(&s, "{\"items\":[{\"name\":\"a\",\"n\":1},{\"name\":\"b\"}]}", &f) == -1 &&
	   !strcmp(f.ptr, "/items/1"), "multi: pointer into the array (%s)", f.ptr);
	ok(val(&s, "[{\"name\":\"a\",\"n\":1}]", &f) == -1, "multi: a bare array is not the object");
	schema_release(&s);
}

static void keywords(void)
{
	struct schema s;
	struct schema_fail f;
	struct ai_err err;

	ok(load(&s, "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":2,"
		"\"maxLength\":3,\"pattern\":\"^\\\\d+(?:-\\\\w+)*?$\"},\"e\":{\"enum\":[1,\"a\",null]},"
		"\"n\":{\"type\":[\"number\",\"null\"],\"minimum\":0,\"maximum\":10},"
		"\"c\":{\"const\":{\"k\":[1,2]}},\"r\":{\"$ref\":\"#/$defs/pos\"},"
		"\"t\":{\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":\"integer\"},\"minItems\":1},"
		"\"u\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"object\",\"properties\":{\"z\":{\"type\":\"integer\"}}}]}},"
		"\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":1}}}", false, &err) == 0,
	   "a schema of every keyword compiles: %s", err.msg);
	ok(val(&s, "{\"s\":\"12\",\"e\":\"a\",\"n\":null,\"c\":{\"k\":[1,2.0]},\"r\":3,\"t\":[\"x\",1,2],\"u\":\"q\"}", &f) == 0,
	   "all match (1 equals 1.0 in const): %s %s", f.ptr, f.reason);
	ok(val(&s, "{\"s\":\"1a\"}", &f) == -1 && !strcmp(f.reason, "does not match the pattern"), "\\d translated");
	ok(val(&s, "{\"s\":\"1-a\"}", &f) == 0, "(?:...) and a lazy quantifier translated");
	ok(val(&s, "{\"s\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &f) == -1 && strstr(f.reason, "4 characters"),
	   "maxLength counts code points: %s", f.reason);
	ok(val(&s, "{\"e\":2}", &f) == -1 && !strcmp(f.reason, "not one of the enum's 3 values"), "enum");
	ok(val(&s, "{\"n\":11}", &f) == -1 && strstr(f.reason, "greater than maximum 10"), "maximum: %s", f.reason);
	ok(val(&s, "{\"n\":\"1\"}", &f) == -1 && !strcmp(f.reason, "expected null or number, got string"),
	   "type union named: %s", f.reason);
	ok(val(&s, "{\"r\":0}", &f) == -1 && !strcmp(f.ptr, "/r"), "$ref into $defs");
	ok(val(&s, "{\"t\":[1]}", &f) == -1 && !strcmp(f.ptr, "/t/0"), "prefixItems");
	ok(val(&s, "{\"t\":[\"a\",\"b\"]}", &f) == -1 && !strcmp(f.ptr, "/t/1"), "items after prefixItems");
	ok(val(&s, "{\"t\":[]}", &f) == -1 && strstr(f.reason, "minItems"), "minItems");
	ok(val(&s, "{\"u\":{\"z\":\"no\"}}", &f) == -1 && !strcmp(f.ptr, "/u/z"),
	   "anyOf: the branch that got deepest explains (%s: %s)", f.ptr, f.reason);
	ok(val(&s, "{\"u\":1}", &f) == -1 && !strcmp(f.reason, "matches none of the 2 anyOf schemas"), "anyOf: none");
	ok(val(&s, "{\"c\":{\"k\":[2,1]}}", &f) == -1, "const compares arrays in order");
	schema_release(&s);

	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"^[\\\\w.\\\\-]+$\"}", false, &err) == 0, "class escapes in []");
	ok(val(&s, "\"a-b.c_9\"", &f) == 0 && val(&s, "\"a b\"", &f) == -1, "[\\w.\\-] as ECMA means it");
	schema_release(&s);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"a\\\\.b\"}", false, &err) == 0 &&
	   val(&s, "\"xa.bx\"", &f) == 0 && val(&s, "\"axb\"", &f) == -1, "unanchored search, escaped dot");
	schema_release(&s);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"x\"}", false, &err) == 0, "a NUL in a string");
	ok(val(&s, "\"a\\u0000x\"", &f) == -1, "a string with a NUL never matches a pattern");
	schema_release(&s);
}

static void refusals(void)
{
	struct schema s;
	struct ai_err err;

	ok(load(&s, "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":[{}]}}}", false, &err) == -1 &&
	   !strcmp(err.msg, "schema at '/properties/a': keyword 'oneOf' is not supported "
		   "(structured outputs leave it out)"), "unsupported keyword named with its place: %s", err.msg);
	ok(load(&s, "{\"type\":\"objet\"}", false, &err) == -1 && strstr(err.msg, "unknown type 'objet'"),
	   "unknown type");
	ok(load(&s, "{\"$ref\":\"#/$defs/nope\"}", false, &err) == -1 && strstr(err.msg, "points nowhere"),
	   "dangling $ref");
	ok(load(&s, "{\"$ref\":\"https://example.com/s.json\"}", false, &err) == -1, "remote $ref refused");
	ok(load(&s, "{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"anyOf\":[{\"$ref\":\"#/$defs/a\"}]}},"
		"\"$ref\":\"#/$defs/a\"}", false, &err) == -1 && strstr(err.msg, "loop"),
	   "a $ref loop that never descends is refused: %s", err.msg);
	ok(load(&s, "{\"type\":\"object\",\"properties\":{\"kid\":{\"$ref\":\"#\"}}}", false, &err) == 0,
	   "a recursive schema that descends is fine");
	schema_release(&s);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"(?=a)\"}", false, &err) == -1 &&
	   strstr(err.msg, "lookaround"), "lookahead refused: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"\\\\bword\"}", false, &err) == -1, "\\b refused");
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"a(\"}", false, &err) == -1 &&
	   strstr(err.msg, "does not compile"), "a bad regex: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"a)((b{100}){100}){100}\"}",
		false, &err) == -1 && strstr(err.msg, "closes nothing"),
	   "a ')' that closes nothing is refused, not a way past the cost: %s", err.msg);
	/* ECMA-262's "nothing to repeat": a stack of quantifiers, which regcomp would copy each time. */
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"a++\"}", false, &err) == -1 &&
	   strstr(err.msg, "quantifier on a quantifier"), "a++ refused: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"(ab)*{2}\"}", false, &err) == -1 &&
	   strstr(err.msg, "quantifier on a quantifier"), "(ab)*{2} refused: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"a+??\"}", false, &err) == -1 &&
	   strstr(err.msg, "quantifier on a quantifier"), "a+?? refused: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"^a+?b{1,2}?c*?$\"}", false, &err) == 0,
	   "lazy quantifiers still taken: %s", err.msg);
	schema_release(&s);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"(a{200}){200}\"}", false, &err) == -1 &&
	   strstr(err.msg, "repeats too much"), "a pattern glibc would copy 40000 times: %s", err.msg);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"}",
		false, &err) == -1, "stacked quantifiers that double with each '+' (found by the fuzzer)");
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"^[a-z]{2,8}(-[A-Z]{2})?$\"}", false, &err) == 0,
	   "an ordinary counted pattern compiles");
	schema_release(&s);
	ok(load(&s, "{\"type\":\"string\",\"pattern\":\"[a\\\\\"}", false, &err) == -1 &&
	   strstr(err.msg, "unterminated"), "a class ending in a backslash (read past the end once): %s", err.msg);
	ok(load(&s, "{\"minLength\":-1}", false, &err) == -1, "negative minLength");
	ok(load(&s, "{\"type\":\"object\"", false, &err) == -1 && strstr(err.msg, "not JSON"),
	   "truncated JSON: %s", err.msg);
	ok(load(&s, "{\"type\":\"object\"} x", false, &err) == -1 && strstr(err.msg, "after the end"),
	   "text after the JSON");
	ok(load(&s, "[1]", false, &err) == -1 && strstr(err.msg, "object or a boolean"), "an array is no schema");
	ok(load(&s, "true", false, &err) == 0, "true is a schema");
	schema_release(&s);
}

static void costly(void)
{
	struct schema s;
	struct schema_fail f;
	struct ai_err err;
	struct buf v;
	json_object *j;
	int rc;

	/* Two branches that both descend: 2^depth paths over a deep array. */
	ok(load(&s, "{\"anyOf\":[{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}},"
		"{\"type\":\"array\",\"items\":{\"$ref\":\"#\"},\"maxItems\":5}]}", false, &err) == 0,
	   "a schema that descends in two ways");
	buf_init(&v, 0);
	for (int i = 0; i < 30; i++)
		buf_addstr(&v, "[");
	buf_addstr(&v, "1");
	for (int i = 0; i < 30; i++)
		buf_addstr(&v, "]");
	j = json_tokener_parse(v.data);
	ok(j != NULL, "the deep value parses");
	rc = schema_validate(&s, j, &f);
	ok(rc == -1 && strstr(f.reason, "too costly"), "bounded work on a deep value: %s", f.reason);
	json_object_put(j);
	buf_release(&v);
	schema_release(&s);
}

/* What ai-batch submit keeps with a job: saved and restored, it checks the same. */
static void saved(void)
{
	struct structured st, back;
	struct schema_fail f;
	struct ai_err err;
	json_object *d = NULL;
	char *text;

	ok(structured_load(&st, "w, n int", true, &err) == 0, "a multi schema loads: %s", err.msg);
	text = structured_save(&st);
	ok(text && strstr(text, "\"multi\":true"), "saved with its multi: %s", text ? text : "(null)");
	ok(structured_restore(&back, text, &err) == 0 && back.multi, "restored: %s", err.msg);
	ok(structured_check(&back, "{\"items\": [{\"w\": \"a\", \"n\": 1}]}", &d, &f) == 0,
	   "a valid list passes, not wrapped twice: %s", f.reason);
	json_object_put(d);
	ok(structured_check(&back, "{\"items\": [{\"w\": \"a\", \"n\": \"x\"}]}", &d, &f) == -1 &&
	   !strcmp(f.ptr, "/items/0/n"), "an invalid one fails where it did: %s", f.ptr);
	structured_release(&back);
	ok(structured_restore(&back, "{\"schema\": 1}", &err) == -1 && err.code == AI_EX_DATAERR,
	   "a damaged copy is refused");
	ok(structured_restore(&back, "not json", &err) == -1, "so is one that is no JSON");
	free(text);
	structured_release(&st);
}

int main(void)
{
	saved();
	short_form();
	keywords();
	refusals();
	costly();
	return tap_done();
}
