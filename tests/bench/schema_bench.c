/*
 * schema_bench.c - what checking a structured reply costs (issue 12: under
 * 5 us for a 20-property schema).
 *
 * The schema has 20 properties of every kind the short form and strict
 * structured outputs use (strings with lengths and a pattern, integers with
 * bounds, numbers, booleans, an enum, a nullable union, arrays of strings,
 * a nested object through $ref), all required, no others allowed.  Figures:
 * validation alone (the reply already parsed, which the API layer does
 * anyway), parse + validation, and compiling the schema (once a run).
 * Medians of ROUNDS rounds of N calls each, in wall time and in the
 * thread's CPU time: on a machine shared with other work the wall time
 * counts the waits for a core too, and the CPU time is the cost itself.
 *
 *   build/bench/schema_bench [N] [ROUNDS]
 * A benchmark: it prints figures and never fails.
 */
#include "ai.h"
#include "api/schema.h"
#include "bench.h"

static const char schema_text[] =
	"{\"type\":\"object\",\"additionalProperties\":false,"
	"\"$defs\":{\"addr\":{\"type\":\"object\",\"additionalProperties\":false,"
	"\"required\":[\"city\",\"zip\"],\"properties\":{\"city\":{\"type\":\"string\"},"
	"\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}}}},"
	"\"required\":[\"id\",\"name\",\"email\",\"age\",\"score\",\"active\",\"role\",\"tags\","
	"\"nick\",\"address\",\"created\",\"rating\",\"visits\",\"country\",\"lang\",\"notes\","
	"\"verified\",\"plan\",\"balance\",\"phones\"],"
	"\"properties\":{"
	"\"id\":{\"type\":\"integer\",\"minimum\":1},"
	"\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
	"\"email\":{\"type\":\"string\",\"pattern\":\"^[^@ ]+@[^@ ]+\\\\.[a-z]+$\"},"
	"\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
	"\"score\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
	"\"active\":{\"type\":\"boolean\"},"
	"\"role\":{\"enum\":[\"admin\",\"user\",\"guest\"]},"
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":10},"
	"\"nick\":{\"type\":[\"string\",\"null\"]},"
	"\"address\":{\"$ref\":\"#/$defs/addr\"},"
	"\"created\":{\"type\":\"string\",\"format\":\"date-time\"},"
	"\"rating\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5},"
	"\"visits\":{\"type\":\"integer\"},"
	"\"country\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":2},"
	"\"lang\":{\"enum\":[\"en\",\"fr\",\"de\",\"es\"]},"
	"\"notes\":{\"type\":\"string\"},"
	"\"verified\":{\"type\":\"boolean\"},"
	"\"plan\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},"
	"\"balance\":{\"type\":\"number\"},"
	"\"phones\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}";

static const char reply[] =
	"{\"id\":42,\"name\":\"Ada Lovelace\",\"email\":\"ada@example.org\",\"age\":36,"
	"\"score\":0.93,\"active\":true,\"role\":\"admin\",\"tags\":[\"math\",\"engines\",\"notes\"],"
	"\"nick\":null,\"address\":{\"city\":\"London\",\"zip\":\"12345\"},"
	"\"created\":\"1843-07-01T00:00:00Z\",\"rating\":5,\"visits\":1024,\"country\":\"GB\","
	"\"lang\":\"en\",\"notes\":\"wrote the first program for the Analytical Engine\","
	"\"verified\":true,\"plan\":\"pro\",\"balance\":12.5,\"phones\":[\"+44 20 0000 0000\"]}";

/* The calling thread's CPU seconds: what the work cost, whatever else the machine runs. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 15;
	double val[64], parse[64], comp[64], cval[64], cparse[64], t, ct;
	struct schema s;
	struct schema_fail f;
	struct ai_err err;
	json_object *v = json_tokener_parse(reply);
	volatile int sink = 0;

	if (n < 1 || rounds < 1 || rounds > 64 || !v) {
		fprintf(stderr, "usage: schema_bench [N] [ROUNDS<=64]\n");
		return 0;
	}
	if (schema_parse(&s, schema_text, strlen(schema_text), false, &err)) {
		fprintf(stderr, "schema_bench: %s\n", err.msg);
		return 0;
	}
	if (schema_validate(&s, v, &f)) {
		fprintf(stderr, "schema_bench: the reply does not match: %s %s\n", f.ptr, f.reason);
		return 0;
	}
	for (int r = 0; r < rounds; r++) {
		t = bench_now();
		ct = cpu_now();
		for (long i = 0; i < n; i++)
			sink += schema_validate(&s, v, &f);
		cval[r] = (cpu_now() - ct) / (double)n * 1e6;
		val[r] = (bench_now() - t) / (double)n * 1e6;
		t = bench_now();
		ct = cpu_now();
		for (long i = 0; i < n; i++) {
			json_object *p = json_tokener_parse(reply);

			sink += schema_validate(&s, p, &f);
			json_object_put(p);
		}
		cparse[r] = (cpu_now() - ct) / (double)n * 1e6;
		parse[r] = (bench_now() - t) / (double)n * 1e6;
		t = bench_now();
		for (long i = 0; i < n / 10 + 1; i++) {
			struct schema c;

			if (!schema_parse(&c, schema_text, strlen(schema_text), false, &err))
				schema_release(&c);
		}
		comp[r] = (bench_now() - t) / (double)(n / 10 + 1) * 1e6;
	}
	printf("schema: 20-property schema, %zu-byte reply, %ld calls x %d rounds (median)\n",
	       strlen(reply), n, rounds);
	printf("schema: validate          %8.3f us/reply wall, %8.3f us CPU   (goal < 5 us)\n",
	       median(val, rounds), median(cval, rounds));
	printf("schema: parse + validate  %8.3f us/reply wall, %8.3f us CPU\n", median(parse, rounds),
	       median(cparse, rounds));
	printf("schema: compile schema    %8.3f us/run\n", median(comp, rounds));
	schema_release(&s);
	json_object_put(v);
	return sink == 12345678;
}
