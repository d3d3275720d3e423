/*
 * t_schema_suite.c - common/api/schema.c against the official
 * JSON-Schema-Test-Suite, one TAP line per keyword file with its pass count.
 *
 * draft2020-12 comes from the Debian package json-schema-test-suite when the
 * installed version has it, else from the copy in tests/fixtures (Debian 12's
 * package stops at draft7).  The package's draft7 files of the keywords whose
 * meaning 2020-12 kept are run too.  A test group whose schema uses a keyword
 * outside the subset (the compiler refuses it) is skipped and counted, not
 * failed: refusing is the promised behaviour for those.
 *
 *	t_schema_suite [-v]     -v lists every skipped group and why
 */
#include "ai.h"
#include "api/schema.h"

#include "tap.h"

#include <sys/stat.h>

#define PKG "/usr/share/json-schema-test-suite/tests/"
#define COPY "tests/fixtures/json-schema-test-suite/"

static const char *const files2020[] = {
	"type", "properties", "required", "additionalProperties", "enum", "const", "anyOf",
	"items", "prefixItems", "defs", "ref", "minimum", "maximum", "exclusiveMinimum",
	"exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern", "minItems",
	"maxItems", "boolean_schema", "infinite-loop-detection",
};

/* draft7 files whose keywords mean in 2020-12 what they meant then. */
static const char *const files7[] = {
	"type", "properties", "required", "additionalProperties", "enum", "const", "anyOf",
	"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
	"maxLength", "pattern", "minItems", "maxItems", "boolean_schema",
};

static int verbose;
static long all_pass, all_fail, all_skip;

/* A compile error that means "outside the subset", not "a bug". */
static bool unsupported(const char *msg)
{
	return strstr(msg, "is not supported") || strstr(msg, "only a $ref within") ||
	       strstr(msg, "pattern uses") || strstr(msg, "points nowhere");
}

static void run_file(const char *dir, const char *name, const char *label)
{
	char path[512];
	json_object *doc;
	long pass = 0, failed = 0, skip = 0;

	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	if (!(doc = json_object_from_file(path))) {
		ok(0, "%s/%s: cannot read %s", label, name, path);
		return;
	}
	for (size_t g = 0; g < json_object_array_length(doc); g++) {
		json_object *grp = json_object_array_get_idx(doc, g), *sj = NULL, *tests = NULL;
		struct schema s;
		struct ai_err err;
		size_t nt;

		json_object_object_get_ex(grp, "schema", &sj);
		json_object_object_get_ex(grp, "tests", &tests);
		nt = json_object_array_length(tests);
		ai_err_clear(&err);
		if (schema_compile(&s, json_object_get(sj), &err)) {
			if (unsupported(err.msg)) {
				skip += (long)nt;
				if (verbose)
					printf("# skip %s/%s '%s': %s\n", label, name,
					       json_object_get_string(json_object_object_get(grp, "description")),
					       err.msg);
			} else {
				failed += (long)nt;
				printf("# %s/%s '%s': does not compile: %s\n", label, name,
				       json_object_get_string(json_object_object_get(grp, "description")), err.msg);
			}
			continue;
		}
		for (size_t t = 0; t < nt; t++) {
			json_object *tc = json_object_array_get_idx(tests, t);
			struct schema_fail f;
			bool want = json_object_get_boolean(json_object_object_get(tc, "valid"));
			bool got = schema_validate(&s, json_object_object_get(tc, "data"), &f) == 0;

			if (got == want) {
				pass++;
				continue;
			}
			failed++;
			printf("# %s/%s '%s' / '%s': got %s, want %s%s%s%s\n", label, name,
			       json_object_get_string(json_object_object_get(grp, "description")),
			       json_object_get_string(json_object_object_get(tc, "description")),
			       got ? "valid" : "invalid", want ? "valid" : "invalid",
			       got ? "" : " (", got ? "" : f.reason, got ? "" : ")");
		}
		schema_release(&s);
	}
	json_object_put(doc);
	ok(failed == 0, "%s/%s: %ld passed, %ld failed, %ld skipped (outside the subset)",
	   label, name, pass, failed, skip);
	all_pass += pass;
	all_fail += failed;
	all_skip += skip;
}

static bool is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
	const char *d2020 = is_dir(PKG "draft2020-12") ? PKG "draft2020-12" : COPY "draft2020-12";

	verbose = argc > 1 && !strcmp(argv[1], "-v");
	for (size_t i = 0; i < AI_ARRAY_LEN(files2020); i++)
		run_file(d2020, files2020[i], "draft2020-12");
	if (is_dir(PKG "draft7"))
		for (size_t i = 0; i < AI_ARRAY_LEN(files7); i++)
			run_file(PKG "draft7", files7[i], "draft7");
	else
		printf("# the json-schema-test-suite package is not installed: draft7 not run\n");
	printf("# JSON-Schema-Test-Suite: %ld passed, %ld failed, %ld skipped\n",
	       all_pass, all_fail, all_skip);
	return tap_done();
}
