/*
 * out.c - the JSON lines the programs print.
 */
#include "lib/out.h"
#include "lib/cli.h"
#include "jsonval.h"

void out_add(json_object *o, const char *k, json_object *val)
{
	if (json_object_object_add(o, k, val)) {
		json_object_put(val);
		cli_die(AI_EX_OSERR, "out of memory");
	}
}

void out_usage(json_object *o, long prompt_tokens, long completion_tokens)
{
	json_object *u = jv_usage(prompt_tokens, completion_tokens);

	if (!u)
		cli_die(AI_EX_OSERR, "out of memory");
	out_add(o, "usage", u);
}

json_object *out_object(void)
{
	json_object *o = json_object_new_object();

	if (!o)
		cli_die(AI_EX_OSERR, "out of memory");
	return o;
}

json_object *out_message(const char *role, const char *content)
{
	json_object *m = out_object();

	out_add(m, "role", json_object_new_string(role));
	out_add(m, "content", json_object_new_string(content));
	return m;
}

void out_json_line(json_object *j)
{
	size_t n;
	const char *s = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	cli_write(s, n, false);
	cli_write("\n", 1, true);
}
