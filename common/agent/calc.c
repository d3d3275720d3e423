/*
 * calc.c - a recursive-descent evaluator for arithmetic expressions.
 *
 * The input comes from a model, so it is hostile by assumption: its
 * length is checked before anything else, every recursion passes
 * through enter(), which counts nesting against CALC_MAX_DEPTH, and
 * every intermediate value is checked to be finite, so a NaN or an
 * infinity is reported where it first appears rather than printed as
 * an answer.
 */
#include "agent/calc.h"
#include "utf8.h"

#include <locale.h>
#include <math.h>
#include <strings.h>

struct parser {
	const char *s;
	size_t pos;
	int depth;
	struct ai_err *err;
};

enum fn {
	FN_SQRT, FN_LOG, FN_LOG10, FN_EXP, FN_SIN, FN_COS, FN_TAN, FN_ABS,
	FN_ROUND, FN_FLOOR, FN_CEIL, FN_MIN, FN_MAX
};

static const struct {
	const char *name;
	enum fn fn;
	int min_args, max_args;     /* max_args -1: no limit */
} functions[] = {
	{ "sqrt", FN_SQRT, 1, 1 },   { "log", FN_LOG, 1, 1 },
	{ "log10", FN_LOG10, 1, 1 }, { "exp", FN_EXP, 1, 1 },
	{ "sin", FN_SIN, 1, 1 },     { "cos", FN_COS, 1, 1 },
	{ "tan", FN_TAN, 1, 1 },     { "abs", FN_ABS, 1, 1 },
	{ "round", FN_ROUND, 1, 2 }, { "floor", FN_FLOOR, 1, 1 },
	{ "ceil", FN_CEIL, 1, 1 },   { "min", FN_MIN, 1, -1 },
	{ "max", FN_MAX, 1, -1 },
};

static const struct {
	const char *name;
	double value;
} constants[] = {
	{ "pi", 3.14159265358979323846 },
	{ "e", 2.71828182845904523536 },
};

/* The longest name or number quoted back in a message. */
#define QUOTE_MAX 32

static int parse_expr(struct parser *p, double *v);
static int parse_unary(struct parser *p, double *v);

static int fail(struct parser *p, const char *fmt, ...) AI_PRINTF(2, 3);
static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->err)
		return -1;
	p->err->code = AI_EX_DATAERR;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || is_digit(c);
}

static void skip_space(struct parser *p)
{
	while (is_space(p->s[p->pos]))
		p->pos++;
}

/* Reports what stands at p->pos when something else was expected. */
static int unexpected(struct parser *p)
{
	const char *at = p->s + p->pos;
	size_t col = p->pos + 1, n;

	if (*at == '\0')
		return fail(p, "unexpected end of expression at column %zu", col);
	if (is_name_char(*at) || *at == '.') {
		/* A whole word or number reads better than its first byte. */
		for (n = 1; n < QUOTE_MAX && (is_name_char(at[n]) || at[n] == '.'); n++)
			;
		return fail(p, "unexpected '%.*s' at column %zu", (int)n, at, col);
	}
	if ((unsigned char)*at >= 0x80) {
		/* Quote a whole UTF-8 character (a model may write '×' or '√'). */
		for (n = 1; n < 4 && ((unsigned char)at[n] & 0xc0) == 0x80; n++)
			;
		if (utf8_valid_prefix(at, n) == n)
			return fail(p, "unexpected '%.*s' at column %zu", (int)n, at, col);
	}
	if ((unsigned char)*at < 0x20 || (unsigned char)*at >= 0x7f)
		return fail(p, "unexpected byte 0x%02x at column %zu", (unsigned char)*at, col);
	return fail(p, "unexpected '%c' at column %zu", *at, col);
}

/*
 * Every recursive step goes through enter() and leave(): the explicit
 * counter, not the C stack, decides how deep input may nest.
 */
static int enter(struct parser *p, size_t at)
{
	if (p->depth >= CALC_MAX_DEPTH)
		return fail(p, "nesting deeper than %d at column %zu", CALC_MAX_DEPTH, at + 1);
	p->depth++;
	return 0;
}

static void leave(struct parser *p)
{
	p->depth--;
}

/* Rejects a NaN or infinite result of the operation at offset at. */
static int check(struct parser *p, double v, size_t at)
{
	if (isnan(v))
		return fail(p, "result is not a real number at column %zu", at + 1);
	if (isinf(v))
		return fail(p, "result overflows at column %zu", at + 1);
	return 0;
}

static int parse_number(struct parser *p, double *v)
{
	const char *s = p->s + p->pos;
	size_t i = 0, digits = 0;
	char *end;
	double d;

	while (is_digit(s[i])) {
		i++;
		digits++;
	}
	if (s[i] == '.') {
		i++;
		while (is_digit(s[i])) {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return unexpected(p);
	if (s[i] == 'e' || s[i] == 'E') {
		size_t j = i + 1;

		if (s[j] == '+' || s[j] == '-')
			j++;
		if (!is_digit(s[j]))
			return fail(p, "malformed number '%.*s' at column %zu: the exponent needs digits",
				    (int)(j < QUOTE_MAX ? j : QUOTE_MAX), s, p->pos + 1);
		while (is_digit(s[j]))
			j++;
		i = j;
	}
	if ((s[i] == 'x' || s[i] == 'X') && i == 1 && s[0] == '0')
		return fail(p, "hexadecimal numbers are not supported at column %zu", p->pos + 1);
	/*
	 * The scan above accepts exactly the decimal subset of strtod()'s
	 * grammar, so strtod() must stop where the scan stopped; the C
	 * locale is in force (see calc_eval), so '.' is the decimal point.
	 */
	errno = 0;
	d = strtod(s, &end);
	if (end != s + i)
		return fail(p, "malformed number '%.*s' at column %zu",
			    (int)(i < QUOTE_MAX ? i : QUOTE_MAX), s, p->pos + 1);
	if (isinf(d))
		return fail(p, "number '%.*s' at column %zu is too large",
			    (int)(i < QUOTE_MAX ? i : QUOTE_MAX), s, p->pos + 1);
	p->pos += i;
	*v = d;
	return 0;
}

/* Halves away from zero, like round(); digits is a whole number in [-15, 15]. */
static double round_digits(double x, double digits)
{
	double scale = pow(10.0, fabs(digits));

	if (digits == 0)
		return round(x);
	if (digits > 0) {
		/* Beyond 2^52 every double is already a whole number. */
		if (fabs(x) >= 4503599627370496.0)
			return x;
		return round(x * scale) / scale;
	}
	return round(x / scale) * scale;
}

static int apply(struct parser *p, enum fn fn, const char *name, const double *a,
		 double lo, double hi, size_t at, double *v)
{
	double x = a[0], r;

	switch (fn) {
	case FN_SQRT:
		if (x < 0)
			return fail(p, "square root of a negative number at column %zu", at + 1);
		r = sqrt(x);
		break;
	case FN_LOG:
	case FN_LOG10:
		if (x <= 0)
			return fail(p, "'%s' of zero or a negative number at column %zu", name, at + 1);
		r = fn == FN_LOG ? log(x) : log10(x);
		break;
	case FN_EXP: r = exp(x); break;
	case FN_SIN: r = sin(x); break;
	case FN_COS: r = cos(x); break;
	case FN_TAN: r = tan(x); break;
	case FN_ABS: r = fabs(x); break;
	case FN_FLOOR: r = floor(x); break;
	case FN_CEIL: r = ceil(x); break;
	case FN_MIN: r = lo; break;
	case FN_MAX: r = hi; break;
	case FN_ROUND:
		if (!isnan(a[1])) {
			if (a[1] != floor(a[1]) || a[1] < -15 || a[1] > 15)
				return fail(p, "'round' digits must be a whole number from -15 to 15 at column %zu",
					    at + 1);
			r = round_digits(x, a[1]);
		} else {
			r = round(x);
		}
		break;
	default:
		return fail(p, "internal error: function '%s' has no implementation", name);
	}
	if (check(p, r, at))
		return -1;
	*v = r;
	return 0;
}

static int parse_call(struct parser *p, const char *name, size_t nlen, size_t at, double *v)
{
	double a[2] = { NAN, NAN }, lo = INFINITY, hi = -INFINITY, x;
	size_t i, fi = AI_ARRAY_LEN(functions);
	int n = 0;

	for (i = 0; i < AI_ARRAY_LEN(functions); i++)
		if (strlen(functions[i].name) == nlen && !strncasecmp(functions[i].name, name, nlen))
			fi = i;
	if (fi == AI_ARRAY_LEN(functions)) {
		for (i = 0; i < AI_ARRAY_LEN(constants); i++)
			if (strlen(constants[i].name) == nlen &&
			    !strncasecmp(constants[i].name, name, nlen))
				return fail(p, "'%s' at column %zu is a constant, not a function",
					    constants[i].name, at + 1);
		return fail(p, "unknown function '%.*s' at column %zu (known: sqrt log log10 exp "
			    "sin cos tan abs round floor ceil min max)",
			    (int)(nlen < QUOTE_MAX ? nlen : QUOTE_MAX), name, at + 1);
	}
	if (enter(p, p->pos))
		return -1;
	p->pos++;       /* '(' */
	skip_space(p);
	if (p->s[p->pos] != ')') {
		for (;;) {
			if (parse_expr(p, &x))
				return -1;
			if (n < 2)
				a[n] = x;
			if (x < lo)
				lo = x;
			if (x > hi)
				hi = x;
			if (n < INT_MAX)
				n++;
			skip_space(p);
			if (p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->s[p->pos] == ')')
				break;
			if (p->s[p->pos] == '\0')
				return fail(p, "missing ')' to close '%s(' at column %zu",
					    functions[fi].name, at + 1);
			return unexpected(p);
		}
	}
	p->pos++;       /* ')' */
	leave(p);
	if (n < functions[fi].min_args ||
	    (functions[fi].max_args >= 0 && n > functions[fi].max_args)) {
		if (functions[fi].max_args < 0)
			return fail(p, "'%s' at column %zu takes at least %d argument%s, got %d",
				    functions[fi].name, at + 1, functions[fi].min_args,
				    functions[fi].min_args == 1 ? "" : "s", n);
		if (functions[fi].min_args != functions[fi].max_args)
			return fail(p, "'%s' at column %zu takes %d or %d arguments, got %d",
				    functions[fi].name, at + 1, functions[fi].min_args,
				    functions[fi].max_args, n);
		return fail(p, "'%s' at column %zu takes %d argument%s, got %d",
			    functions[fi].name, at + 1, functions[fi].min_args,
			    functions[fi].min_args == 1 ? "" : "s", n);
	}
	return apply(p, functions[fi].fn, functions[fi].name, a, lo, hi, at, v);
}

static int parse_name(struct parser *p, double *v)
{
	const char *name = p->s + p->pos;
	size_t at = p->pos, nlen = 0, i;

	while (is_name_char(name[nlen]))
		nlen++;
	p->pos += nlen;
	skip_space(p);
	if (p->s[p->pos] == '(')
		return parse_call(p, name, nlen, at, v);
	for (i = 0; i < AI_ARRAY_LEN(constants); i++)
		if (strlen(constants[i].name) == nlen && !strncasecmp(constants[i].name, name, nlen)) {
			*v = constants[i].value;
			return 0;
		}
	for (i = 0; i < AI_ARRAY_LEN(functions); i++)
		if (strlen(functions[i].name) == nlen && !strncasecmp(functions[i].name, name, nlen))
			return fail(p, "function '%s' at column %zu needs its arguments in parentheses",
				    functions[i].name, at + 1);
	return fail(p, "unknown name '%.*s' at column %zu (known: pi e)",
		    (int)(nlen < QUOTE_MAX ? nlen : QUOTE_MAX), name, at + 1);
}

static int parse_primary(struct parser *p, double *v)
{
	char c;
	size_t open;

	skip_space(p);
	c = p->s[p->pos];
	if (is_digit(c) || c == '.')
		return parse_number(p, v);
	if (is_name_start(c))
		return parse_name(p, v);
	if (c != '(')
		return unexpected(p);
	open = p->pos;
	if (enter(p, open))
		return -1;
	p->pos++;
	if (parse_expr(p, v))
		return -1;
	skip_space(p);
	if (p->s[p->pos] == '\0')
		return fail(p, "missing ')' to close '(' at column %zu", open + 1);
	if (p->s[p->pos] != ')')
		return unexpected(p);
	p->pos++;
	leave(p);
	return 0;
}

static int parse_power(struct parser *p, double *v)
{
	double base, ex;
	size_t at;

	if (parse_primary(p, &base))
		return -1;
	skip_space(p);
	at = p->pos;
	if (p->s[at] == '^')
		p->pos += 1;
	else if (p->s[at] == '*' && p->s[at + 1] == '*')
		p->pos += 2;
	else {
		*v = base;
		return 0;
	}
	/* The exponent is a unary: 2^-1 works and 2^3^2 is 2^(3^2). */
	if (enter(p, at))
		return -1;
	if (parse_unary(p, &ex))
		return -1;
	leave(p);
	if (base == 0 && ex < 0)
		return fail(p, "division by zero at column %zu (zero to a negative power)", at + 1);
	*v = pow(base, ex);
	return check(p, *v, at);
}

static int parse_unary(struct parser *p, double *v)
{
	size_t at;
	char c;

	skip_space(p);
	at = p->pos;
	c = p->s[at];
	if (c != '-' && c != '+')
		return parse_power(p, v);
	if (enter(p, at))
		return -1;
	p->pos++;
	if (parse_unary(p, v))
		return -1;
	leave(p);
	if (c == '-')
		*v = -*v;
	return 0;
}

static int parse_term(struct parser *p, double *v)
{
	double r;
	size_t at;
	char op;

	if (parse_unary(p, v))
		return -1;
	for (;;) {
		skip_space(p);
		at = p->pos;
		op = p->s[at];
		if (op != '*' && op != '/' && op != '%')
			return 0;
		p->pos++;
		if (parse_unary(p, &r))
			return -1;
		if (op == '*') {
			*v *= r;
		} else if (r == 0) {
			return fail(p, "%s by zero at column %zu", op == '/' ? "division" : "modulo",
				    at + 1);
		} else if (op == '/') {
			*v /= r;
		} else {
			*v = fmod(*v, r);
		}
		if (check(p, *v, at))
			return -1;
	}
}

static int parse_expr(struct parser *p, double *v)
{
	double r;
	size_t at;
	char op;

	if (parse_term(p, v))
		return -1;
	for (;;) {
		skip_space(p);
		at = p->pos;
		op = p->s[at];
		if (op != '+' && op != '-')
			return 0;
		p->pos++;
		if (parse_term(p, &r))
			return -1;
		*v = op == '+' ? *v + r : *v - r;
		if (check(p, *v, at))
			return -1;
	}
}

/*
 * strtod() and printf() follow LC_NUMERIC, which a program may have set
 * to a locale whose decimal point is ','.  uselocale() switches this
 * thread alone to "C" for the duration, without touching the process.
 */
struct c_locale {
	locale_t c, old;
};

static void c_locale_enter(struct c_locale *l)
{
	l->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	l->old = l->c ? uselocale(l->c) : (locale_t)0;
}

static void c_locale_leave(struct c_locale *l)
{
	if (!l->c)
		return;
	uselocale(l->old);
	freelocale(l->c);
}

int calc_eval(const char *expr, double *result, struct ai_err *err)
{
	struct parser p = { expr, 0, 0, err };
	struct c_locale loc;
	double v;
	int rc;

	if (!expr)
		return fail(&p, "no expression given");
	if (strnlen(expr, CALC_MAX_LEN + 1) > CALC_MAX_LEN)
		return fail(&p, "expression longer than %d bytes", CALC_MAX_LEN);
	skip_space(&p);
	if (expr[p.pos] == '\0')
		return fail(&p, "empty expression: give one, such as '2 * (3 + 4)'");
	c_locale_enter(&loc);
	rc = parse_expr(&p, &v);
	c_locale_leave(&loc);
	if (rc)
		return -1;
	skip_space(&p);
	if (expr[p.pos] != '\0')
		return unexpected(&p);
	/* Sums and negations are checked as they happen; this is belt and braces. */
	if (check(&p, v, 0))
		return -1;
	*result = v == 0 ? 0.0 : v;    /* no negative zero */
	return 0;
}

void calc_format(double v, char *out, size_t n)
{
	struct c_locale loc;

	if (!out || n == 0)
		return;
	if (isnan(v)) {
		snprintf(out, n, "nan");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, "%s", v > 0 ? "inf" : "-inf");
		return;
	}
	if (v == 0) {
		snprintf(out, n, "0");
		return;
	}
	c_locale_enter(&loc);
	if (v == floor(v) && fabs(v) <= 9007199254740992.0)
		snprintf(out, n, "%.0f", v);
	else
		snprintf(out, n, "%.15g", v);
	c_locale_leave(&loc);
}
