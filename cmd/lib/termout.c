#include "lib/termout.h"
#include "lib/cli.h"
#include "clock.h"

#include <time.h>
#include <unistd.h>

#include <sys/ioctl.h>

/* A plain progress line on a dumb terminal: at most one this often. */
#define DUMB_EVERY_MS 5000

int termout_markdown = AI_MARKDOWN_AUTO;

void termout_init(struct termout *o, bool raw)
{
	o->neutral = !raw && isatty(STDOUT_FILENO);
	o->raw = raw;
	o->md = 0;
	termsafe_init(&o->ts);
	buf_init(&o->scratch, 0);
	buf_init(&o->rendered, 0);
	memset(&o->m, 0, sizeof(o->m));
}

/* The terminal's width, else $COLUMNS (a pipe under --markdown=always), else 80. */
static int term_width(void)
{
	struct winsize ws;
	const char *e = getenv("COLUMNS");
	char *end;
	long n;

	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col > 0)
		return ws.ws_col;
	if (e && *e) {
		errno = 0;
		n = strtol(e, &end, 10);
		if (!errno && !*end && n > 0 && n <= 10000)
			return (int)n;
	}
	return 80;
}

/* Colour and bold only where wanted and understood: not under NO_COLOR, not on TERM=dumb. */
static bool want_sgr(void)
{
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

	return !(nc && *nc) && term && *term && strcmp(term, "dumb");
}

bool termout_sgr(void)
{
	return want_sgr();
}

static void decide(struct termout *o)
{
	if (o->md)
		return;
	if (termout_markdown == AI_MARKDOWN_ALWAYS ||
	    (termout_markdown == AI_MARKDOWN_AUTO && o->neutral)) {
		o->md = 1;
		o->neutral = true;
		markdown_init(&o->m, term_width(), want_sgr());
	} else {
		o->md = -1;
	}
}

/* Renders the safe text in o->scratch (and ends it when end) and writes it; returns the last byte written. */
static int render(struct termout *o, bool end, bool flush)
{
	struct ai_err err;

	buf_reset(&o->rendered);
	if (markdown_feed(&o->m, o->scratch.data ? o->scratch.data : "", o->scratch.len,
			  &o->rendered, &err) ||
	    (end && markdown_end(&o->m, &o->rendered, &err)))
		cli_die_err(&err);
	if (!o->rendered.len)
		return -1;
	cli_write(o->rendered.data, o->rendered.len, flush);
	return (unsigned char)o->rendered.data[o->rendered.len - 1];
}

void termout_write(struct termout *o, const void *p, size_t n, bool flush)
{
	struct ai_err err;

	decide(o);
	if (!o->neutral) {
		cli_write(p, n, flush);
		return;
	}
	buf_reset(&o->scratch);
	if (termsafe_feed(&o->ts, p, n, &o->scratch, &err))
		cli_die_err(&err);
	if (o->md > 0)
		render(o, false, flush);
	else
		cli_write(o->scratch.data ? o->scratch.data : "", o->scratch.len, flush);
}

bool termout_end(struct termout *o, bool flush)
{
	struct ai_err err;
	int last;

	decide(o);
	if (!o->neutral)
		return false;
	buf_reset(&o->scratch);
	if (termsafe_pending(&o->ts) && termsafe_flush(&o->ts, &o->scratch, &err))
		cli_die_err(&err);
	if (o->md > 0) {
		last = render(o, true, flush);
		return last >= 0 && last != '\n';
	}
	if (!o->scratch.len)
		return false;
	cli_write(o->scratch.data, o->scratch.len, flush);
	return true;
}

void termout_release(struct termout *o)
{
	buf_release(&o->scratch);
	buf_release(&o->rendered);
	if (o->md > 0)
		markdown_release(&o->m);
	o->md = 0;
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
