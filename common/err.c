#include "ai.h"

static void err_vset(struct ai_err *e, int code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int ai_errf(struct ai_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	va_start(ap, fmt);
	err_vset(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

int ai_errf_errno(struct ai_err *e, int code, const char *fmt, ...)
{
	int saved = errno;      /* vsnprintf may change it */
	va_list ap;
	size_t n;

	if (!e)
		return -1;
	va_start(ap, fmt);
	err_vset(e, code, fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

void ai_err_clear(struct ai_err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->status = 0;
	e->msg[0] = '\0';
}
