#include "api/params.h"
#include "jsonval.h"

#include <math.h>

/* Request fields the programs set themselves, and what to use instead. */
static const struct { const char *key, *instead; } owned[] = {
	{ "model", "use -m/--model or 'model' in ai.conf" },
	{ "messages", NULL },
	{ "stream", NULL },
	{ "stream_options", NULL },
	{ "tools", NULL },
	{ "tool_choice", NULL },
	{ "parallel_tool_calls", NULL },
	{ "functions", NULL },
	{ "function_call", NULL },
	{ "n", "the programs read one choice" },
	{ "temperature", "use --temperature or 'temperature' in ai.conf" },
	{ "max_tokens", "use --max-tokens or 'max_tokens' in ai.conf" },
	{ "max_completion_tokens", "use --max-tokens or 'max_tokens' in ai.conf" },
};

int params_key_ok(const char *key, struct ai_err *err)
{
	if (!*key || strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
	    strlen(key))
		return ai_errf(err, AI_EX_USAGE,
			       "'%.64s' is not a request parameter name (letters, digits, '_' and '-')", key);
	for (size_t i = 0; i < AI_ARRAY_LEN(owned); i++)
		if (!strcmp(key, owned[i].key))
			return ai_errf(err, AI_EX_USAGE, "'%s' is set by the program itself, not with -o%s%s",
				       key, owned[i].instead ? ": " : "",
				       owned[i].instead ? owned[i].instead : "");
	return 0;
}

int params_value(const char *what, const char *s, json_object **val, struct ai_err *err)
{
	json_tokener *tok = json_tokener_new();
	json_object *j = NULL;
	size_t n = strlen(s);
	bool ok = false;

	if (val)
		*val = NULL;
	if (!tok)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	/* Strict: no trailing commas or single quotes; NaN and Infinity are refused below. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	if (n && n < INT_MAX) {
		/* The length counts the NUL, which ends a bare number ("42"). */
		j = json_tokener_parse_ex(tok, s, (int)n + 1);
		ok = json_tokener_get_error(tok) == json_tokener_success &&
		     json_tokener_get_parse_end(tok) >= n &&
		     !(json_object_is_type(j, json_type_double) && !isfinite(json_object_get_double(j)));
	}
	json_tokener_free(tok);
	if (!ok) {
		json_object_put(j);
		if (*s == '[' || *s == '{')
			return ai_errf(err, AI_EX_USAGE, "%s: '%.64s' is not valid JSON", what, s);
		j = json_object_new_string(s);
		if (!j)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (val)
		*val = j;
	else
		json_object_put(j);
	return 0;
}

int params_parse(const char *kv, char **key, json_object **val, struct ai_err *err)
{
	const char *eq = strchr(kv, '=');
	char *k;

	if (!eq)
		return ai_errf(err, AI_EX_USAGE, "-o wants KEY=VALUE, not '%.64s'", kv);
	if (!(k = strndup(kv, (size_t)(eq - kv))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (params_key_ok(k, err) || params_value(k, eq + 1, val, err)) {
		free(k);
		return -1;
	}
	if (key)
		*key = k;
	else
		free(k);
	return 0;
}

int params_set(json_object **obj, const char *key, json_object *val, struct ai_err *err)
{
	if (!*obj && !(*obj = json_object_new_object())) {
		json_object_put(val);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (jv_add(*obj, key, val))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}
