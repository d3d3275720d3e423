/*
 * tap.h - a minimal Test Anything Protocol emitter for the C unit tests.
 *
 * Each test program includes it once, calls ok()/is_int()/is_str() and
 * ends with "return tap_done();".  make check counts the "ok" and
 * "not ok" lines of every program.
 */
#ifndef AI_TAP_H
#define AI_TAP_H
#include "ai.h"

static int tap_n, tap_fail;

static AI_UNUSED AI_PRINTF(2, 3) int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_fail++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!ok(g_ == w_, __VA_ARGS__)) \
		printf("#   got %lld, want %lld  (%s:%d)\n", g_, w_, __FILE__, __LINE__); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int c_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_; \
	if (!ok(c_, __VA_ARGS__)) \
		printf("#   got '%s', want '%s'  (%s:%d)\n", g_ ? g_ : "(null)", \
		       w_ ? w_ : "(null)", __FILE__, __LINE__); \
} while (0)

#define is_dbl(got, want, eps, ...) do { \
	double g_ = (got), w_ = (want); \
	if (!ok((g_ - w_) <= (eps) && (w_ - g_) <= (eps), __VA_ARGS__)) \
		printf("#   got %.17g, want %.17g  (%s:%d)\n", g_, w_, __FILE__, __LINE__); \
} while (0)

static AI_UNUSED int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_fail ? 1 : 0;
}

#endif
