#include "jsonval.h"

#include <math.h>

int jv_add(json_object *o, const char *k, json_object *v)
{
	if (!o || json_object_object_add(o, k, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

int jv_push(json_object *a, json_object *v)
{
	if (!a || !v || json_object_array_add(a, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

const char *jv_str(json_object *o, const char *k)
{
	json_object *v;

	return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

long jv_long(json_object *o, const char *k, long dflt)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v))
		return dflt;
	if (json_object_is_type(v, json_type_int))
		return (long)json_object_get_int64(v);
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);

		return isfinite(d) && d == floor(d) && fabs(d) < 9e18 ? (long)d : dflt;
	}
	return dflt;
}

long jv_count(json_object *o, const char *k)
{
	long v = jv_long(o, k, -1);

	return v >= 0 && v <= JV_MAX_TOKENS ? v : -1;
}

json_object *jv_num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : NULL;
}

json_object *jv_num_g(double v, int digits)
{
	char text[48];

	if (!isfinite(v))
		return NULL;
	snprintf(text, sizeof(text), "%.*g", digits, v);
	return json_object_new_double_s(v, text);
}

json_object *jv_count_num(long n)
{
	return n < 0 ? NULL : json_object_new_int64(n);
}

void jv_count_sum(long *total, long n)
{
	if (*total < 0 || n < 0)
		*total = -1;
	else
		*total += n;
}

/* Adds count n under k, null when unknown; -1 on ENOMEM (a NULL from json-c is not "unknown"). */
static int add_count(json_object *o, const char *k, long n)
{
	json_object *v = NULL;

	if (n >= 0 && !(v = json_object_new_int64(n)))
		return -1;
	return jv_add(o, k, v);
}

json_object *jv_usage(long prompt_tokens, long completion_tokens)
{
	json_object *u = json_object_new_object();

	if (!u || add_count(u, "prompt_tokens", prompt_tokens) ||
	    add_count(u, "completion_tokens", completion_tokens)) {
		json_object_put(u);
		return NULL;
	}
	return u;
}

json_object *jv_message(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	if (!m || jv_add(m, "role", json_object_new_string(role)) ||
	    jv_add(m, "content", json_object_new_string(content))) {
		json_object_put(m);
		return NULL;
	}
	return m;
}
