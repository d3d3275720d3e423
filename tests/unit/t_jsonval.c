/* t_jsonval - the json-c wrappers: ownership on failure, lenient getters. */
#include "jsonval.h"
#include "tap.h"

#include <math.h>

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
	json_object_put(o);
	json_object_put(a);
	return tap_done();
}
