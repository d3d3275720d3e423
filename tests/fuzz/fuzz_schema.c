/*
 * fuzz_schema.c - libFuzzer harness for the JSON Schema validator.
 *
 * The input is a schema (JSON or the short form), a NUL, then a JSON value.
 * schema_parse must never crash, hang or overflow the stack: it compiles or
 * fails with a message.  A compiled schema must check the value in bounded
 * work, say the same thing twice, and on a failure give a reason and a
 * pointer that is "" or starts with "/".  The first byte's low bit asks for
 * the multi form.  Anything else calls abort().
 */
#include "api/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul = memchr(data, '\0', size);
	size_t slen = nul ? (size_t)(nul - text) : size;
	struct schema s;
	struct ai_err err;
	bool multi = size && (data[0] & 1);

	memset(&err, 0, sizeof(err));
	if (schema_parse(&s, text, slen, multi, &err)) {
		check(err.code != 0 && err.msg[0]);
		return 0;
	}
	if (nul) {
		json_tokener *tok = json_tokener_new_ex(64);
		json_object *v;
		size_t vlen = size - slen - 1;

		check(tok != NULL);
		v = json_tokener_parse_ex(tok, nul + 1, (int)(vlen > INT_MAX ? INT_MAX : vlen));
		if (v || json_tokener_get_error(tok) == json_tokener_success) {
			struct schema_fail f1, f2;
			int r1 = schema_validate(&s, v, &f1), r2 = schema_validate(&s, v, &f2);

			check(r1 == r2 && (r1 == 0 || r1 == -1));
			if (r1) {
				check(f1.reason[0] && strlen(f1.reason) < sizeof(f1.reason));
				check(f1.ptr[0] == '\0' || f1.ptr[0] == '/');
				check(!strcmp(f1.ptr, f2.ptr) && !strcmp(f1.reason, f2.reason));
			}
		}
		json_object_put(v);
		json_tokener_free(tok);
	}
	schema_release(&s);
	return 0;
}
