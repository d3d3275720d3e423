#ifndef AI_CALC_H
#define AI_CALC_H
/*
 * calc.h - the arithmetic evaluator behind ai-agent's "calculate" tool.
 *
 * The model hands us a string; we never pass it to a shell, bc or an
 * interpreter.  The grammar, loosest binding first:
 *
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/' | '%') unary)*
 *   unary   := ('-' | '+') unary | power
 *   power   := primary (('^' | '**') unary)?      right-associative
 *   primary := NUMBER | NAME | NAME '(' args ')' | '(' expr ')'
 *
 * so -2^2 is -4, 2^3^2 is 512 and 2^-1 is 0.5.  NUMBER is decimal:
 * 12, 1.5, .5, 1., 1e-3, 2.5E+10 (no hex, no inf, no nan).  Names are
 * matched case-insensitively: the constants pi and e, the functions
 * sqrt log (natural) log10 exp sin cos tan (radians) abs floor ceil,
 * round(x) or round(x, digits) (halves away from zero), and min/max of
 * one or more comma-separated arguments.  % is fmod(): the result has
 * the sign of the dividend.
 *
 * Every error is an error, never a value: division or modulo by zero,
 * a NaN or infinite result anywhere along the way (sqrt(-1), log(0),
 * 1e308*10), a number too large to represent, unknown names, wrong
 * argument counts, trailing input.  Nesting (parentheses, function
 * calls, unary signs, exponent chains) is bounded by an explicit depth
 * counter, so hostile input cannot exhaust the stack.
 */
#include "ai.h"

#define CALC_MAX_LEN 4096   /* bytes of expression accepted */
#define CALC_MAX_DEPTH 256  /* nesting levels accepted */

/*
 * Evaluates the NUL-terminated expression expr and stores the value
 * in *result (always finite).  Returns 0, or -1 with err filled
 * (code AI_EX_DATAERR) and *result untouched.  The message names the
 * problem and, where there is one, the 1-based byte column:
 * "unexpected ')' at column 7", "division by zero at column 3",
 * "unknown function 'foo' at column 1".  Thread-safe; does not depend
 * on the process locale.
 */
int calc_eval(const char *expr, double *result, struct ai_err *err);

/*
 * Formats v the way people expect to read it into out (n bytes, always
 * NUL-terminated when n > 0): integers up to 2^53 in magnitude without
 * a fraction or exponent ("42", "-7", "9007199254740992"), anything
 * else in the shortest "%.15g" form ("0.3", "1e+300", "3.14159265358979").
 * Negative zero prints as "0".  Always uses '.' as decimal point.
 */
void calc_format(double v, char *out, size_t n);

#endif
