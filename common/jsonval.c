#include "jsonval.h"
#include "buf.h"
#include "utf8.h"

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

void jv_tokens_init(struct jv_tokens *t)
{
	t->prompt = t->completion = t->cached = t->reasoning = -1;
	t->usage = false;
}

/* Sets *dst to member k of o when it is a believable count. */
static void take_count(json_object *o, const char *k, long *dst)
{
	long v = jv_count(o, k);

	if (v >= 0)
		*dst = v;
}

void jv_tokens_read(json_object *j, struct jv_tokens *t)
{
	json_object *u, *d;

	if (json_object_object_get_ex(j, "usage", &u) && json_object_is_type(u, json_type_object)) {
		take_count(u, "prompt_tokens", &t->prompt);
		take_count(u, "completion_tokens", &t->completion);
		if (json_object_object_get_ex(u, "prompt_tokens_details", &d))
			take_count(d, "cached_tokens", &t->cached);
		if (json_object_object_get_ex(u, "completion_tokens_details", &d))
			take_count(d, "reasoning_tokens", &t->reasoning);
		t->usage = true;
		return;
	}
	/*
	 * llama.cpp's own figures: prompt_n counts only the tokens it had to
	 * evaluate, cache_n those it reused.  Read only while no usage was
	 * seen, so a stream's usage chunk is never overwritten by them.
	 */
	if (!t->usage && json_object_object_get_ex(j, "timings", &d) &&
	    json_object_is_type(d, json_type_object)) {
		long pn = jv_count(d, "prompt_n"), cn = jv_count(d, "cache_n"), gn = jv_count(d, "predicted_n");

		if (pn >= 0 && cn >= 0 && pn + cn <= JV_MAX_TOKENS) {
			t->prompt = pn + cn;
			t->cached = cn;
		}
		if (gn >= 0)
			t->completion = gn;
	}
}

int jv_content_text(json_object *v, struct buf *out)
{
	size_t i, n;

	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return utf8_add_text(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	if (!json_object_is_type(v, json_type_array)) {
		errno = EINVAL;
		return -1;
	}
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(v, i), *tv;
		const char *type = jv_str(p, "type");

		if (!json_object_is_type(p, json_type_object)) {
			/* Not a part: a shape no server sends, taken for no answer (hostile-net.bats). */
			errno = EINVAL;
			return -1;
		}
		if (type && strcmp(type, "text") && strcmp(type, "output_text")) {
			continue;   /* an image, audio, a refusal part: not text of the answer */
		} else if (!json_object_object_get_ex(p, "text", &tv) ||
			   !json_object_is_type(tv, json_type_string)) {
			continue;
		}
		if (utf8_add_text(out, json_object_get_string(tv), (size_t)json_object_get_string_len(tv)))
			return -1;
	}
	return 0;
}
