/*
 * fuzz_calc.c - libFuzzer harness for ai-agent's calculator.
 *
 * The input, cut at its first NUL, is the model's expression.  calc_eval
 * must never crash, hang or overflow the stack (nesting is bounded); a
 * success gives a finite value and leaves err alone, a failure is a
 * data error with a message and leaves the result untouched.  A value
 * is then formatted into buffers of every small size (always terminated,
 * never overrun), and the full text must read back through calc_eval
 * as the same number to 15 significant digits (in the normal range).  Anything else calls
 * abort().
 */
#include "agent/calc.h"

#include <float.h>
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void format(double v)
{
	char text[64], small[16];
	struct ai_err err;
	double back = -1.0;

	calc_format(v, text, sizeof(text));
	check(strlen(text) > 0 && strlen(text) < sizeof(text));
	for (size_t n = 1; n <= sizeof(small); n++) {
		/* Exactly n bytes on the heap, so the sanitizer sees an overrun. */
		char *p = malloc(n);

		check(p != NULL);
		calc_format(v, p, n);
		check(memchr(p, '\0', n) != NULL);
		check(strncmp(p, text, strlen(p)) == 0);
		free(p);
	}
	calc_format(v, small, 0);
	/*
	 * Fifteen digits cannot hold every double: the largest round up past
	 * DBL_MAX and subnormals lose digits, so those need not read back.
	 */
	if (fabs(v) < 1e308 && (v == 0 || fabs(v) >= DBL_MIN)) {
		check(calc_eval(text, &back, &err) == 0);
		check(back == v || fabs(back - v) <= 1e-14 * fabs(v));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *expr = malloc(size + 1);
	struct ai_err err;
	double v = 12345.0;
	int rc;

	check(expr != NULL);
	memcpy(expr, data, size);
	expr[size] = '\0';
	memset(&err, 0, sizeof(err));
	rc = calc_eval(expr, &v, &err);
	if (rc == 0) {
		check(isfinite(v));
		check(err.code == 0);
		format(v);
	} else {
		check(rc == -1 && err.code == AI_EX_DATAERR && err.msg[0]);
		check(v == 12345.0);
	}
	/* The data as eight raw bytes of a double: formatting must cope with anything finite. */
	if (size >= 8) {
		double d;

		memcpy(&d, data, sizeof(d));
		if (isfinite(d))
			format(d);
	}
	free(expr);
	return 0;
}
