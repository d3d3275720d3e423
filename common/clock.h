#ifndef AI_CLOCK_H
#define AI_CLOCK_H
/*
 * clock.h - the one clock, in two kinds of milliseconds.
 *
 * mono_ms measures: timeouts, retries, latencies and rates, which must not
 * jump when the system time is set.  wall_ms dates: ledger rows, job
 * status, cache ages, which a person or another process reads as a date.
 * Every time taken in the tree goes through one of them, so a test or a
 * port changes one file.
 */
#include "ai.h"

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
int64_t mono_ms(void);

/* The same clock in microseconds, for latencies shown to the microsecond (ai-stream's
 * ttft_ms: a local server answers within a millisecond). */
int64_t mono_us(void);

/* Milliseconds since the Unix epoch, on CLOCK_REALTIME. */
int64_t wall_ms(void);

#endif
