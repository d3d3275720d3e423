/*
 * sse.c - the incremental event-stream parser (see sse.h).
 *
 * Line ends are found with memchr, two searches (LF and CR) whose results
 * are remembered until the scan passes them, so a feed costs O(n) however
 * its lines end.  A complete line that lies wholly inside one feed is
 * interpreted in place; only a line split across feeds is copied into
 * p->line.  The data buffer is reused from event to event, so a steady
 * stream allocates nothing.
 */
#include "net/sse.h"

static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };

void sse_init(struct sse_parser *p, size_t max_line, size_t max_event)
{
	p->max_line = max_line ? max_line : SIZE_MAX - 2;
	p->max_event = max_event ? max_event : SIZE_MAX - 2;
	buf_init(&p->line, p->max_line);
	/* +1: the data buffer holds a LF after the last line until dispatch. */
	buf_init(&p->data, p->max_event + 1);
	buf_init(&p->event, p->max_line);
	buf_init(&p->id, p->max_line);
	buf_init(&p->error, p->max_line);
	p->retry = -1;
	p->error_field = true;
	p->got_error = false;
	p->started = false;
	p->bom = 0;
	p->cr = false;
	p->failed = false;
}

void sse_release(struct sse_parser *p)
{
	buf_release(&p->line);
	buf_release(&p->data);
	buf_release(&p->event);
	buf_release(&p->id);
	buf_release(&p->error);
}

static int too_big(struct sse_parser *p, struct ai_err *err, bool line)
{
	p->failed = true;
	if (errno == ENOMEM)
		return ai_errf(err, AI_EX_OSERR, "out of memory reading the event stream");
	if (line)
		return ai_errf(err, AI_EX_DATAERR,
			       "event stream line over %zu bytes; is this really text/event-stream?",
			       p->max_line);
	return ai_errf(err, AI_EX_DATAERR, "event stream event over %zu bytes", p->max_event);
}

static int set_buf(struct buf *b, const char *s, size_t n)
{
	buf_reset(b);
	return buf_add(b, s, n);
}

/* The standard's "dispatch the event" step. */
static int dispatch(struct sse_parser *p, sse_event_fn fn, void *ud)
{
	struct sse_event ev;
	int rc;

	if (p->got_error) {
		/* The llama.cpp extension: the error wins over any data. */
		ev.event = "error";
		ev.data = p->error.data ? p->error.data : "";
		ev.data_len = p->error.len;
	} else {
		if (p->data.len == 0) {
			buf_reset(&p->event);
			return 0;
		}
		/* Drop the LF that follows the last data line. */
		p->data.data[--p->data.len] = '\0';
		ev.event = p->event.len ? p->event.data : "";
		ev.data = p->data.data;
		ev.data_len = p->data.len;
	}
	ev.id = p->id.len ? p->id.data : "";
	ev.retry = p->retry;
	rc = fn(&ev, ud);
	buf_reset(&p->data);
	buf_reset(&p->event);
	buf_reset(&p->error);
	p->got_error = false;
	return rc;
}

/* Interprets one complete line, without its line end. */
static int process_line(struct sse_parser *p, const char *s, size_t n,
			sse_event_fn fn, void *ud, struct ai_err *err)
{
	const char *colon, *val;
	size_t flen, vlen;

	if (n == 0) {
		if (dispatch(p, fn, ud)) {
			p->failed = true;
			return -1;
		}
		return 0;
	}
	if (s[0] == ':')
		return 0;
	/* Nearly every line is "data: ..."; spare it the search for the colon. */
	if (n >= 5 && memcmp(s, "data:", 5) == 0)
		colon = s + 4;
	else
		colon = memchr(s, ':', n);
	if (colon) {
		flen = (size_t)(colon - s);
		val = colon + 1;
		vlen = n - flen - 1;
		if (vlen && *val == ' ') {
			val++;
			vlen--;
		}
	} else {
		flen = n;
		val = s + n;
		vlen = 0;
	}

	switch (flen) {
	case 4:
		if (memcmp(s, "data", 4) == 0) {
			if (buf_grow(&p->data, vlen + 1))
				return too_big(p, err, false);
			if (vlen)
				memcpy(p->data.data + p->data.len, val, vlen);
			p->data.len += vlen;
			p->data.data[p->data.len++] = '\n';
			p->data.data[p->data.len] = '\0';
		}
		break;
	case 5:
		if (memcmp(s, "event", 5) == 0) {
			if (set_buf(&p->event, val, vlen))
				return too_big(p, err, true);
		} else if (memcmp(s, "retry", 5) == 0) {
			long r = 0;
			size_t i;

			for (i = 0; i < vlen; i++) {
				unsigned d = (unsigned char)val[i] - '0';

				if (d > 9 || r > (LONG_MAX - (long)d) / 10)
					break;
				r = r * 10 + (long)d;
			}
			/* Digits only (and at least one); anything else is ignored. */
			if (vlen && i == vlen)
				p->retry = r;
		} else if (memcmp(s, "error", 5) == 0 && p->error_field) {
			if (set_buf(&p->error, val, vlen))
				return too_big(p, err, true);
			p->got_error = true;
		}
		break;
	case 2:
		if (memcmp(s, "id", 2) == 0 && !memchr(val, '\0', vlen)) {
			if (set_buf(&p->id, val, vlen))
				return too_big(p, err, true);
		}
		break;
	default:
		break;  /* unknown fields are ignored */
	}
	return 0;
}

/* The byte-stream part: line ends, the carried partial line. */
static int process(struct sse_parser *p, const char *s, size_t n,
		   sse_event_fn fn, void *ud, struct ai_err *err)
{
	const char *end = s + n;
	const char *lf = NULL, *cr = NULL;  /* next LF / CR at or after s; end if none */

	if (n && p->cr) {
		p->cr = false;
		if (*s == '\n')
			s++;
	}
	while (s < end) {
		const char *eol, *next;

		/* The blank line after each event: no search needed. */
		if (*s == '\n' && !p->line.len) {
			if (process_line(p, s, 0, fn, ud, err))
				return -1;
			s++;
			continue;
		}
		if (!lf || lf < s) {
			lf = memchr(s, '\n', (size_t)(end - s));
			if (!lf)
				lf = end;
		}
		if (!cr || cr < s) {
			cr = memchr(s, '\r', (size_t)(end - s));
			if (!cr)
				cr = end;
		}
		eol = lf < cr ? lf : cr;
		if (eol == end) {
			if (buf_add(&p->line, s, (size_t)(end - s)))
				return too_big(p, err, true);
			break;
		}
		next = eol + 1;
		if (*eol == '\r') {
			if (next == end)
				p->cr = true;
			else if (*next == '\n')
				next++;
		}
		if (p->line.len) {
			if (buf_add(&p->line, s, (size_t)(eol - s)))
				return too_big(p, err, true);
			if (process_line(p, p->line.data, p->line.len, fn, ud, err))
				return -1;
			buf_reset(&p->line);
		} else {
			if ((size_t)(eol - s) > p->max_line) {
				errno = EFBIG;
				return too_big(p, err, true);
			}
			if (process_line(p, s, (size_t)(eol - s), fn, ud, err))
				return -1;
		}
		s = next;
	}
	return 0;
}

int sse_feed(struct sse_parser *p, const char *bytes, size_t n,
	     sse_event_fn fn, void *ud, struct ai_err *err)
{
	ai_err_clear(err);
	if (p->failed)
		return ai_errf(err, AI_EX_SOFTWARE,
			       "event stream parser used after an error; call sse_finish first");

	/* A BOM at the very start of the stream is dropped, even when split. */
	while (!p->started && n) {
		if ((unsigned char)*bytes != bom[p->bom]) {
			/* Not a BOM: the bytes held back are ordinary line content. */
			p->started = true;
			if (p->bom && buf_add(&p->line, bom, p->bom))
				return too_big(p, err, true);
			p->bom = 0;
			break;
		}
		bytes++;
		n--;
		if (++p->bom == 3) {
			p->started = true;
			p->bom = 0;
		}
	}
	if (!n)
		return 0;
	return process(p, bytes, n, fn, ud, err);
}

bool sse_finish(struct sse_parser *p)
{
	bool pending = p->failed || p->line.len || p->data.len || p->bom || p->got_error;

	buf_reset(&p->line);
	buf_reset(&p->data);
	buf_reset(&p->event);
	buf_reset(&p->error);
	p->got_error = false;
	p->started = false;
	p->bom = 0;
	p->cr = false;
	p->failed = false;
	return pending;
}
