/* t_calc.c - unit tests of the calculator behind ai-agent's "calculate" tool. */
#include "agent/calc.h"
#include "tap.h"

#include <locale.h>
#include <math.h>

/* expr made printable on one TAP line: control bytes become '?', long input is cut. */
static const char *shown(const char *expr)
{
	static char out[48];
	size_t i;

	if (!expr)
		return "(null)";
	for (i = 0; i + 1 < sizeof(out) && expr[i]; i++)
		out[i] = (unsigned char)expr[i] < 0x20 ? '?' : expr[i];
	out[i] = '\0';
	return out;
}

/* Evaluates expr, which must succeed with a value within eps of want. */
static void val(const char *expr, double want, double eps)
{
	struct ai_err err = { 0, 0, "" };
	double v = NAN;
	int rc = calc_eval(expr, &v, &err);

	if (!ok(rc == 0 && fabs(v - want) <= eps, "'%s' = %.17g", shown(expr), want))
		printf("#   rc %d, got %.17g, error '%s'\n", rc, v, err.msg);
}

/* Evaluates expr, which must fail with a message containing want. */
static void bad(const char *expr, const char *want)
{
	struct ai_err err = { 0, 0, "" };
	double v = 12345;
	int rc = calc_eval(expr, &v, &err);

	if (!ok(rc == -1 && strstr(err.msg, want) && err.code == AI_EX_DATAERR && v == 12345,
		"'%s' fails with '%s'", shown(expr), want))
		printf("#   rc %d, value %.17g, message '%s'\n", rc, v, err.msg);
}

static void fmt(double v, const char *want)
{
	char out[64];

	calc_format(v, out, sizeof(out));
	is_str(out, want, "format %.17g", v);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char *s = malloc(hl + ul * n + tl + 1), *q;

	if (!s)
		abort();
	memcpy(s, head, hl);
	q = s + hl;
	for (i = 0; i < n; i++, q += ul)
		memcpy(q, unit, ul);
	memcpy(q, tail, tl + 1);
	return s;
}

static void test_arithmetic(void)
{
	val("1+2", 3, 0);
	val("2+3*4", 14, 0);
	val("(2+3)*4", 20, 0);
	val("10-4-3", 3, 0);             /* left-associative */
	val("100/10/5", 2, 0);
	val("2*3/4", 1.5, 0);
	val("7%3", 1, 0);
	val("-7%3", -1, 0);              /* sign of the dividend, as fmod */
	val("7.5%2", 1.5, 0);
	val("1+7%3*2", 3, 0);            /* % binds like * */
	val("2^10", 1024, 0);
	val("2**10", 1024, 0);
	val("2^3^2", 512, 0);            /* right-associative */
	val("(2^3)^2", 64, 0);
	val("2*3^2", 18, 0);             /* ^ binds tighter than * */
	val("2^-1", 0.5, 0);
	val("2^-2^2", 0.0625, 0);        /* 2^(-(2^2)) */
	val("0^0", 1, 0);
	val("4^0.5", 2, 0);
	val("0.1+0.2", 0.3, 1e-15);
	val("1e3", 1000, 0);
	val("1E3", 1000, 0);
	val("1e-3", 0.001, 1e-18);
	val("2.5e+2", 250, 0);
	val(".5", 0.5, 0);
	val("5.", 5, 0);
	val("007", 7, 0);
	val("1e-400", 0, 0);             /* underflow is a value, zero */
	val("1e308/10*10", 1e308, 1e293);
}

static void test_unary(void)
{
	val("-2", -2, 0);
	val("+2", 2, 0);
	val("--2", 2, 0);
	val("-(-2)", 2, 0);
	val("2*-3", -6, 0);
	val("2--3", 5, 0);
	val("2+-+-3", 5, 0);
	val("-2^2", -4, 0);              /* unary minus binds looser than ^ */
	val("(-2)^2", 4, 0);
	val("-2^-2", -0.25, 0);
	val("-(3)", -3, 0);
	val("- 3", -3, 0);
	val("-pi", -M_PI, 0);
}

static void test_whitespace(void)
{
	val("  1 +\t2 \n* 3  ", 7, 0);
	val("\r\n( 1 )", 1, 0);
	val("max ( 1 , 2 )", 2, 0);
	val("sqrt\t(4)", 2, 0);
	val("2 ** 3", 8, 0);
}

static void test_functions(void)
{
	val("sqrt(16)", 4, 0);
	val("sqrt(2)", 1.4142135623730951, 1e-15);
	val("log(e)", 1, 1e-15);
	val("log(1)", 0, 0);
	val("log10(1000)", 3, 1e-15);
	val("exp(0)", 1, 0);
	val("exp(1)", M_E, 1e-15);
	val("sin(0)", 0, 0);
	val("sin(pi/2)", 1, 1e-15);
	val("cos(0)", 1, 0);
	val("cos(pi)", -1, 1e-15);
	val("tan(pi/4)", 1, 1e-15);
	val("abs(-3.5)", 3.5, 0);
	val("abs(3.5)", 3.5, 0);
	val("round(2.5)", 3, 0);
	val("round(-2.5)", -3, 0);       /* halves away from zero */
	val("round(2.4)", 2, 0);
	val("round(3.14159, 2)", 3.14, 1e-15);
	val("round(1234.5, -2)", 1200, 0);
	val("round(1e300, 3)", 1e300, 0);
	val("floor(-2.5)", -3, 0);
	val("floor(2.5)", 2, 0);
	val("ceil(-2.5)", -2, 0);
	val("ceil(2.1)", 3, 0);
	val("min(3)", 3, 0);
	val("min(3, 1, 2)", 1, 0);
	val("max(3, 1, 2)", 3, 0);
	val("max(-1, -5)", -1, 0);
	val("min(1+1, 2*3, 2^0)", 1, 0);
	val("sqrt(sqrt(256))", 4, 0);
	val("SQRT(4) + Max(1,2)", 4, 0);   /* names are case-insensitive */
	val("pi", M_PI, 0);
	val("e", M_E, 0);
	val("PI * 2", 2 * M_PI, 0);
	val("2*pi*e", 2 * M_PI * M_E, 1e-14);
}

static void test_errors(void)
{
	char *s;

	bad("", "empty expression");
	bad("   \t\n", "empty expression");
	bad(NULL, "no expression");
	bad("1/0", "division by zero at column 2");
	bad("1/(2-2)", "division by zero at column 2");
	bad("5%0", "modulo by zero at column 2");
	bad("0^-1", "division by zero at column 2");
	bad("sqrt(-1)", "square root of a negative number at column 1");
	bad("log(0)", "'log' of zero or a negative number at column 1");
	bad("log10(-1)", "'log10' of zero or a negative number");
	bad("1e308*10", "result overflows at column 6");
	bad("1e308+1e308", "result overflows at column 6");
	bad("-1e308-1e308", "result overflows");
	bad("exp(1000)", "result overflows at column 1");
	bad("10^400", "result overflows at column 3");
	bad("(-8)^(1/3)", "not a real number at column 5");
	bad("1e400", "too large");
	bad("(1+2))", "unexpected ')' at column 6");
	bad("(1+2)) * 3", "unexpected ')' at column 6");
	bad("((1)", "missing ')' to close '(' at column 1");
	bad("1+", "unexpected end of expression at column 3");
	bad("1 2", "unexpected '2' at column 3");
	bad("2 3 4", "unexpected '3' at column 3");
	bad("1+2 foo", "unexpected 'foo' at column 5");
	bad("2(3)", "unexpected '(' at column 2");
	bad("1,000", "unexpected ',' at column 2");
	bad("*2", "unexpected '*' at column 1");
	bad("2 * * 3", "unexpected '*' at column 5");
	bad("1.2.3", "unexpected '.3' at column 4");
	bad("1e", "malformed number '1e'");
	bad("1e+", "malformed number '1e+'");
	bad(".", "unexpected '.' at column 1");
	bad("0x10", "hexadecimal");
	bad("inf", "unknown name 'inf'");
	bad("nan", "unknown name 'nan'");
	bad("x + 1", "unknown name 'x' at column 1");
	bad("foo(1)", "unknown function 'foo' at column 1");
	bad("pi(2)", "'pi' at column 1 is a constant, not a function");
	bad("sqrt", "function 'sqrt' at column 1 needs its arguments in parentheses");
	bad("sqrt()", "'sqrt' at column 1 takes 1 argument, got 0");
	bad("sqrt(1, 2)", "'sqrt' at column 1 takes 1 argument, got 2");
	bad("1 + log(1,2,3)", "'log' at column 5 takes 1 argument, got 3");
	bad("min()", "'min' at column 1 takes at least 1 argument, got 0");
	bad("round(1,2,3)", "'round' at column 1 takes 1 or 2 arguments, got 3");
	bad("round(1, 0.5)", "'round' digits must be a whole number");
	bad("round(1, 99)", "'round' digits must be a whole number");
	bad("max(1,)", "unexpected ')' at column 7");
	bad("max(1 2)", "unexpected '2' at column 7");
	bad("max(1", "missing ')' to close 'max(' at column 1");
	bad("2 $ 3", "unexpected '$' at column 3");
	bad("2 \x01 3", "unexpected byte 0x01 at column 3");
	bad("2 \xff 3", "unexpected byte 0xff at column 3");
	bad("2 \xc3\x97 3", "unexpected '\xc3\x97' at column 3");   /* U+00D7 multiplication sign */

	/* Nesting: an explicit bound, whatever the construct. */
	s = malloc(256 * 2 + 2);
	if (!s)
		abort();
	memset(s, '(', 256);
	s[256] = '1';
	memset(s + 257, ')', 256);
	s[513] = '\0';
	val(s, 1, 0);                              /* 256 levels are allowed */
	free(s);
	s = repeat("", "(", 257, "1");
	bad(s, "nesting deeper than 256 at column 257");
	free(s);
	s = repeat("", "-", 300, "1");
	bad(s, "nesting deeper than 256");
	free(s);
	s = repeat("", "sqrt(", 300, "1");
	bad(s, "nesting deeper than 256");
	free(s);
	s = repeat("2", "^2", 300, "");
	bad(s, "nesting deeper than 256");
	free(s);
	s = repeat("", "-", 256, "1");
	val(s, 1, 0);                              /* an even number of minus signs */
	free(s);
	/*
	 * 10,000 '(' must give a bounded error and never touch the stack
	 * deeply: under ASan a recursion this deep would overflow.
	 */
	s = repeat("", "(", 10000, "");
	bad(s, "longer than 4096 bytes");
	free(s);
	s = repeat("", "(", 4000, "1");
	bad(s, "nesting deeper than 256 at column 257");
	free(s);
	s = repeat("", "-", 4096, "");
	bad(s, "nesting deeper than 256");
	free(s);

	/* Length: the bound is exact, and 100 KB is refused before parsing. */
	s = repeat("1", "+1", 2047, " ");          /* 1 + 2*2047 + 1 = 4096 bytes */
	ok(strlen(s) == 4096, "the 4096-byte expression is 4096 bytes");
	val(s, 2048, 0);
	free(s);
	s = repeat("1", "+1", 2048, "");           /* 4097 bytes */
	bad(s, "expression longer than 4096 bytes");
	free(s);
	s = repeat("", "1+", 50 * 1024, "1");      /* about 100 KB */
	bad(s, "expression longer than 4096 bytes");
	free(s);
}

static void test_err_null(void)
{
	double v = 0;

	ok(calc_eval("1/0", &v, NULL) == -1, "a NULL error pointer is allowed");
	ok(calc_eval("6*7", &v, NULL) == 0 && v == 42, "and success needs no error pointer");
	ok(calc_eval("-0", &v, NULL) == 0 && v == 0 && !signbit(v), "-0 evaluates to plain 0");
}

static void test_format(void)
{
	char small[4];

	fmt(0, "0");
	fmt(-0.0, "0");
	fmt(42, "42");
	fmt(-7, "-7");
	fmt(1e15, "1000000000000000");
	fmt(9007199254740992.0, "9007199254740992");      /* 2^53 */
	fmt(-9007199254740992.0, "-9007199254740992");
	fmt(9007199254740994.0, "9.00719925474099e+15");  /* past 2^53 */
	fmt(1e300, "1e+300");
	fmt(0.5, "0.5");
	fmt(-0.25, "-0.25");
	fmt(0.1 + 0.2, "0.3");
	fmt(1.0 / 3, "0.333333333333333");
	fmt(M_PI, "3.14159265358979");
	fmt(1e-7, "1e-07");
	fmt(123456.789, "123456.789");
	fmt(NAN, "nan");
	fmt(INFINITY, "inf");
	fmt(-INFINITY, "-inf");
	calc_format(123456, small, sizeof(small));
	is_str(small, "123", "format truncates to the buffer and terminates it");
	calc_format(1, NULL, 0);
	ok(1, "format into a NULL buffer of size 0 does nothing");
}

/* A locale whose decimal point is ',' must not change parsing or output. */
static void test_locale(void)
{
	static const char *const names[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8" };
	const char *set = NULL;
	size_t i;
	double v = 0;
	char out[32];

	for (i = 0; i < AI_ARRAY_LEN(names) && !set; i++)
		set = setlocale(LC_NUMERIC, names[i]);
	ok(calc_eval("1.5*2.25", &v, NULL) == 0 && v == 3.375, "1.5*2.25 under locale %s",
	   set ? set : "C");
	calc_format(3.375, out, sizeof(out));
	is_str(out, "3.375", "format under locale %s uses '.'", set ? set : "C");
	setlocale(LC_NUMERIC, "C");
}

int main(void)
{
	test_arithmetic();
	test_unary();
	test_whitespace();
	test_functions();
	test_errors();
	test_err_null();
	test_format();
	test_locale();
	return tap_done();
}
