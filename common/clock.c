#include "clock.h"

#include <time.h>

static int64_t us_of(clockid_t id)
{
	struct timespec ts;

	/* Cannot fail for these two clocks on any system that has them. */
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_ms(void)
{
	return us_of(CLOCK_MONOTONIC) / 1000;
}

int64_t mono_us(void)
{
	return us_of(CLOCK_MONOTONIC);
}

int64_t wall_ms(void)
{
	return us_of(CLOCK_REALTIME) / 1000;
}
