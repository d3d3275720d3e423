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
