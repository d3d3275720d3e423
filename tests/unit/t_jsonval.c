/* t_jsonval - the json-c wrappers: ownership on failure, lenient getters. */
#include "jsonval.h"
#include "buf.h"
#include "tap.h"

#include <math.h>

/* The text jv_content_text makes of JSON text j, or "(fail)". */
static char *content_of(const char *j)
{
	json_object *v = json_tokener_parse(j);
	struct buf b;
	char *s;

	buf_init(&b, 64);
	buf_addstr(&b, "");
	s = jv_content_text(v, &b) ? strdup("(fail)") : buf_detach(&b, NULL);
	buf_release(&b);
	json_object_put(v);
	return s;
}

/* Content as text or parts, and the token counts servers report. */
static void test_answer_shapes(void)
{
	struct jv_tokens t;
	json_object *j;
	char *s;

	is_str(s = content_of("\"plain\""), "plain", "content as a string");
	free(s);
	is_str(s = content_of("[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\"},"
			      "{\"type\":\"output_text\",\"text\":\"c\"},{\"text\":\"d\"},"
			      "{\"type\":\"refusal\",\"refusal\":\"no\"},{\"type\":\"text\",\"text\":7}]"),
	       "acd", "parts: text, output_text and untyped text; the rest skipped");
	free(s);
	is_str(s = content_of("{\"text\":\"x\"}"), "(fail)", "an object is no content");
	free(s);
	is_str(s = content_of("[{\"type\":\"text\",\"text\":\"a\"},\"b\"]"), "(fail)",
	       "nor a list with something other than parts");
	free(s);
	is_str(s = content_of("\"0123456789012345678901234567890123456789012345678901234567890123456789\""),
	       "(fail)", "over the buffer's cap fails");
	free(s);
	is_str(s = content_of("null"), "", "null is nothing");
	free(s);

	jv_tokens_init(&t);
	j = json_tokener_parse("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
			       "\"prompt_tokens_details\":{\"cached_tokens\":4},"
			       "\"completion_tokens_details\":{\"reasoning_tokens\":3}},"
			       "\"timings\":{\"prompt_n\":1,\"cache_n\":1,\"predicted_n\":1}}");
	jv_tokens_read(j, &t);
	ok(t.prompt == 10 && t.completion == 5 && t.cached == 4 && t.reasoning == 3 && t.usage,
	   "usage and its details, over timings");
	json_object_put(j);
	jv_tokens_init(&t);
	j = json_tokener_parse("{\"timings\":{\"prompt_n\":18,\"cache_n\":4,\"predicted_n\":16}}");
	jv_tokens_read(j, &t);
	ok(t.prompt == 22 && t.completion == 16 && t.cached == 4 && t.reasoning == -1 && !t.usage,
	   "llama.cpp's timings: prompt_n + cache_n, cache_n cached, predicted_n");
	json_object_put(j);
	jv_tokens_init(&t);
	j = json_tokener_parse("{\"timings\":{\"prompt_n\":-1,\"cache_n\":4,\"predicted_n\":\"x\"},"
			       "\"usage\":null}");
	jv_tokens_read(j, &t);
	ok(t.prompt == -1 && t.completion == -1 && t.cached == -1, "garbage timings are unknown, not 0");
	json_object_put(j);
}

int main(void)
{
	json_object *o = json_tokener_parse("{\"s\":\"x\",\"i\":42,\"d\":7.0,\"f\":7.5,\"n\":null,"
					    "\"b\":true,\"big\":1e300}");
	json_object *a = json_object_new_array();

	is_str(jv_str(o, "s"), "x", "a string member");
	ok(jv_str(o, "i") == NULL, "a number is not a string");
	ok(jv_str(o, "missing") == NULL, "a missing member");
	ok(jv_str(NULL, "s") == NULL, "a NULL object");
	is_int(jv_long(o, "i", -1), 42, "an integer");
	is_int(jv_long(o, "d", -1), 7, "an integral double");
	is_int(jv_long(o, "f", -1), -1, "a fraction gives the default");
	is_int(jv_long(o, "big", -1), -1, "a huge double gives the default");
	is_int(jv_long(o, "s", -3), -3, "a string gives the default");
	is_int(jv_long(o, "n", -4), -4, "null gives the default");
	is_int(jv_add(o, "new", json_object_new_int(1)), 0, "add");
	is_int(jv_long(o, "new", 0), 1, "and read back");
	is_int(jv_add(o, "null", NULL), 0, "adding NULL adds null");
	ok(json_object_object_get_ex(o, "null", NULL), "which is present");
	/* On failure the value is released: under ASan a leak here fails the run. */
	is_int(jv_add(NULL, "k", json_object_new_string("leak?")), -1, "add to no object fails");
	is_int(jv_push(NULL, json_object_new_string("leak?")), -1, "push to no array fails");
	is_int(jv_push(a, NULL), -1, "pushing NULL fails");
	is_int(jv_push(a, json_object_new_int(3)), 0, "push");
	is_int((long)json_object_array_length(a), 1, "one element");
	ok(jv_num(NAN) == NULL, "NaN is null");
	ok(jv_num(INFINITY) == NULL, "infinity is null");
	{
		json_object *n = jv_num(0.25);

		is_dbl(json_object_get_double(n), 0.25, 0, "a number");
		json_object_put(n);
	}
	/* Numbers that may be unknown: one policy, null. */
	ok(jv_num_g(NAN, 8) == NULL, "jv_num_g: NaN is null");
	{
		json_object *n = jv_num_g(0.1 + 0.2, 10);

		is_str(json_object_to_json_string(n), "0.3", "jv_num_g prints 10 significant digits");
		json_object_put(n);
		n = jv_num_g(1.0 / 3, 8);
		is_str(json_object_to_json_string(n), "0.33333333", "and 8");
		json_object_put(n);
	}
	ok(jv_count_num(-1) == NULL, "an unknown count is null");
	{
		json_object *n = jv_count_num(0);

		is_str(json_object_to_json_string(n), "0", "zero is a count");
		json_object_put(n);
	}
	{
		long t = 0;

		jv_count_sum(&t, 5);
		jv_count_sum(&t, 7);
		is_int(t, 12, "known counts add up");
		jv_count_sum(&t, -1);
		is_int(t, -1, "an unknown part makes the total unknown");
		jv_count_sum(&t, 3);
		is_int(t, -1, "for good");
	}
	{
		json_object *u = jv_usage(30, 2);

		is_str(json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN),
		       "{\"prompt_tokens\":30,\"completion_tokens\":2}", "a usage object");
		json_object_put(u);
		u = jv_usage(-1, 2);
		is_str(json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN),
		       "{\"prompt_tokens\":null,\"completion_tokens\":2}", "an unknown count is null, not -1 or missing");
		json_object_put(u);
		u = jv_usage(-1, -1);
		is_str(json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN),
		       "{\"prompt_tokens\":null,\"completion_tokens\":null}", "both unknown");
		json_object_put(u);
	}
	json_object_put(o);
	json_object_put(a);
	test_answer_shapes();
	return tap_done();
}
