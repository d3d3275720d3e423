#include "lib/termout.h"
#include "lib/cli.h"
#include "clock.h"

#include <time.h>
#include <unistd.h>

/* A plain progress line on a dumb terminal: at most one this often. */
#define DUMB_EVERY_MS 5000

void termout_init(struct termout *o, bool raw)
{
	o->neutral = !raw && isatty(STDOUT_FILENO);
	termsafe_init(&o->ts);
	buf_init(&o->scratch, 0);
}

void termout_write(struct termout *o, const void *p, size_t n, bool flush)
{
	struct ai_err err;

	if (!o->neutral) {
		cli_write(p, n, flush);
		return;
	}
	buf_reset(&o->scratch);
	if (termsafe_feed(&o->ts, p, n, &o->scratch, &err))
		cli_die_err(&err);
	cli_write(o->scratch.data ? o->scratch.data : "", o->scratch.len, flush);
}

bool termout_end(struct termout *o, bool flush)
{
	struct ai_err err;

	if (!o->neutral || !termsafe_pending(&o->ts))
		return false;
	buf_reset(&o->scratch);
	if (termsafe_flush(&o->ts, &o->scratch, &err))
		cli_die_err(&err);
	cli_write(o->scratch.data, o->scratch.len, flush);
	return true;
}

void termout_release(struct termout *o)
{
	buf_release(&o->scratch);
	termsafe_init(&o->ts);
}

int termout_visible(struct buf *b, const void *s, size_t n)
{
	struct termsafe t;
	struct ai_err err;

	/* Room for the worst case first, so that neither step below can fail half way. */
	if (n > SIZE_MAX / 3 - 3 || buf_grow(b, 3 * n + 3))
		return -1;
	termsafe_init_line(&t);
	if (termsafe_feed(&t, s, n, b, &err) || termsafe_flush(&t, b, &err))
		return -1;
	return 0;
}

void termout_progress_init(struct termout_progress *p)
{
	const char *term = getenv("TERM");

	p->dumb = !term || !*term || !strcmp(term, "dumb");
	p->last_ms = -DUMB_EVERY_MS;
}

void termout_progress(struct termout_progress *p, bool final, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	if (p->dumb) {
		int64_t now = mono_ms();

		if (!final && now - p->last_ms < DUMB_EVERY_MS)
			return;
		p->last_ms = now;
	}
	buf_init(&b, 0);
	/* A redraw: back to the start of the line, clear it, write it anew. */
	if (!p->dumb)
		buf_addstr(&b, "\r\033[K");
	buf_addf(&b, "%s: ", cli_prog);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (final || p->dumb)
		buf_addch(&b, '\n');
	/* One write, as cli_warn does, so that a line is never torn by another writer. */
	if (b.data)
		(void)!write(STDERR_FILENO, b.data, b.len);
	buf_release(&b);
}
