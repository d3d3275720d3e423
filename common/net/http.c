#include "net/http.h"
#include "net/httperr.h"
#include "net/url.h"
#include "compat/compat.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_RETRY_AFTER_MS HTTP_MAX_SERVER_WAIT_MS
#define BACKOFF_BASE_MS 500L
#define BACKOFF_MAX_MS 8000L
#define POLL_MAX_MS 100     /* how often an interrupt is noticed at the latest */
#define HTTP_IDLE_TIMEOUT_MS 60000L

/*
 * libcurl is loaded when the first request is about to go out, not when a
 * program starts: mapping and relocating it and the thirty-odd libraries
 * it needs (TLS, HTTP/2, IDN, LDAP, Kerberos, ...) costs 10-20 ms, several
 * times everything else a start does, and a cache hit, ai-usage, or an
 * offline ai-ask --retrieve-only never talks to the network.  (systemd
 * loads its optional libraries the same way.)  The pointers take their
 * types from curl.h; calls go through sym_curl_*, which gives up curl.h's
 * compile-time check of curl_easy_setopt's argument types (typecheck-gcc.h):
 * every setopt here passes long, a pointer or a function of the documented
 * type.
 */
#define CURL_SYMS(X) \
	X(curl_version_info) X(curl_global_init) X(curl_easy_init) X(curl_easy_setopt) \
	X(curl_easy_getinfo) X(curl_easy_cleanup) X(curl_easy_reset) X(curl_easy_strerror) \
	X(curl_multi_init) X(curl_multi_setopt) X(curl_multi_add_handle) \
	X(curl_multi_remove_handle) X(curl_multi_socket_action) X(curl_multi_info_read) \
	X(curl_multi_cleanup) X(curl_slist_append) X(curl_slist_free_all) X(curl_getdate)
#define CURL_MIN_VERSION 0x075500       /* 7.85: CURLOPT_PROTOCOLS_STR */
#define CURL_MIN_VERSION_TEXT "7.85"

#define DECLARE_SYM(f) static __typeof__(f) *sym_##f;
CURL_SYMS(DECLARE_SYM)
#undef DECLARE_SYM

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;
static char curl_why[320];

static void curl_load_once(void)
{
	const curl_version_info_data *v;
	void *h = NULL, *sym;

	for (size_t i = 0; !h && compat_libcurl_names[i]; i++)
		h = dlopen(compat_libcurl_names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(curl_why, sizeof(curl_why), "cannot load libcurl (%s): %s; install it "
			 "(" COMPAT_LIBCURL_PACKAGE ")", compat_libcurl_names[0], dlerror());
		return;
	}
#define RESOLVE_SYM(f) \
	if (!(sym = dlsym(h, #f))) { \
		snprintf(curl_why, sizeof(curl_why), "the libcurl found has no %s: libcurl " \
			 CURL_MIN_VERSION_TEXT " or later is needed", #f); \
		dlclose(h); \
		return; \
	} \
	memcpy(&sym_##f, &sym, sizeof(sym));
	CURL_SYMS(RESOLVE_SYM)
#undef RESOLVE_SYM
	v = sym_curl_version_info(CURLVERSION_NOW);
	if (!v || v->version_num < CURL_MIN_VERSION) {
		snprintf(curl_why, sizeof(curl_why), "libcurl %s is too old: " CURL_MIN_VERSION_TEXT
			 " or later is needed", v && v->version ? v->version : "?");
		dlclose(h);
		return;
	}
	if (sym_curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(curl_why, sizeof(curl_why), "cannot initialise libcurl");
		return;
	}
	curl_ok = true;
}

/* 0 once libcurl is loaded and initialised; -1 with err (AI_EX_OSERR) when it cannot be. */
static int curl_load(struct ai_err *err)
{
	pthread_once(&curl_once, curl_load_once);
	if (curl_ok)
		return 0;
	if (err)
		ai_errf(err, AI_EX_OSERR, "%s", curl_why);
	return -1;
}

struct http_xfer {
	struct http_pool *pool;
	const struct http_req *req;
	struct http_resp *resp;
	http_done_fn done;
	void *ud;
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	int64_t start_ms;       /* the first attempt's start */
	int64_t due_ms;         /* when a waiting transfer may start */
	int64_t attempt_ms;     /* this attempt's start */
	int64_t active_ms;      /* the last byte received (idle timer) */
	bool running, idle_expired, too_big, aborted;
	struct ai_err err;      /* filled by an on_data abort */
	size_t fd_off;          /* to_fd: bytes written by this attempt */
	int fd_errno;           /* to_fd: emptying the file failed */
	struct http_xfer *next;
	struct http_xfer **prevp;  /* in the active list: what points at this one */
};

/*
 * The pool drives libcurl with curl_multi_socket_action over epoll: libcurl
 * tells which sockets to watch (on_socket) and when it next needs time
 * (on_timer), and each wake-up hands libcurl only the sockets that are
 * ready.  curl_multi_perform with curl_multi_poll would run every transfer
 * and rebuild the poll set on every wake-up, O(parallel) work inside
 * libcurl per event; at -P 64 that was a third of ai-batch's CPU.  (Our own
 * bookkeeping still walks the lists of waiting and running transfers.)
 */
struct http_pool {
	CURLM *multi;
	struct http_opts o;
	int epfd;
	int64_t timer_ms;            /* when libcurl wants CURL_SOCKET_TIMEOUT, -1: never */
	int max, running, queued;
	int64_t pause_until_ms;
	struct http_xfer *waiting;   /* not started, or waiting for a retry */
	struct http_xfer *active;    /* in the multi handle */
	CURL **spare;                /* easy handles of finished transfers, for reuse (max) */
	int nspare;
	uint64_t rnd;
};

/*
 * How long a stream may be silent: idle_timeout_ms, or timeout_ms when
 * that is smaller, so --timeout bounds a stream's silence in every program
 * (as the OpenAI SDKs' read timeout does) while a long answer that keeps
 * coming is never cut.  0: no limit (both were switched off).
 */
static long stream_idle_ms(const struct http_opts *o)
{
	long i = o->idle_timeout_ms, t = o->timeout_ms;

	if (i <= 0)
		return t > 0 ? t : 0;
	return t > 0 && t < i ? t : i;
}

/* 64 MiB, or AI_MAX_RESPONSE ("65536", "512K", "2M"): the one place it is read. */
static size_t max_response(void)
{
	const char *v = getenv("AI_MAX_RESPONSE");
	unsigned long long n;
	char *end;

	if (v && *v >= '0' && *v <= '9') {
		errno = 0;
		n = strtoull(v, &end, 10);
		if (*end == 'K' || *end == 'M' || *end == 'G') {
			int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : 30;

			n = n > (SIZE_MAX / 2) >> shift ? 0 : n << shift;
			end++;
		}
		if (!*end && !errno && n > 0 && n <= SIZE_MAX / 2)
			return (size_t)n;
	}
	return 64u << 20;
}

void http_opts_init(struct http_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 10000;
	o->timeout_ms = 600000;
	o->idle_timeout_ms = HTTP_IDLE_TIMEOUT_MS;
	o->retries = 2;
	o->max_response = max_response();
}

void http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	r->retry_after_ms = r->rl_remaining_requests = r->rl_remaining_tokens = r->rl_reset_ms = -1;
}

void http_resp_release(struct http_resp *r)
{
	buf_release(&r->body);
}

bool http_retryable_status(long s)
{
	return s == 408 || s == 409 || s == 429 || s >= 500;
}

long http_server_wait_ms(double ms)
{
	/*
	 * One rule for every wait a server asks for (Retry-After,
	 * retry-after-ms, x-ratelimit-reset-*): a wait longer than the cap is
	 * not believed, as openai-python ignores a Retry-After over 60 s.  A
	 * hostile or broken server must not park a batch for a day; the
	 * program's own backoff applies instead, and a limit that really lasts
	 * hours ends the run with 75 for a later retry.
	 */
	if (!isfinite(ms) || ms < 0 || ms > (double)HTTP_MAX_SERVER_WAIT_MS)
		return -1;
	return (long)ms;
}

long http_parse_count(const char *s)
{
	char *end;
	long long v;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	if (*end || errno == ERANGE || v > LONG_MAX)
		return -1;
	return (long)v;
}

long http_parse_retry_after(const char *ra, const char *ra_ms, int64_t now_s)
{
	char *end;

	if (ra_ms && *ra_ms) {
		double v;

		errno = 0;
		v = strtod(ra_ms, &end);
		while (*end == ' ' || *end == '\t')
			end++;
		if (end != ra_ms && !*end && errno != ERANGE)
			return http_server_wait_ms(v);
	}
	if (ra && *ra) {
		const char *p = ra;
		long long v;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p >= '0' && *p <= '9') {
			errno = 0;
			v = strtoll(p, &end, 10);
			while (*end == ' ' || *end == '\t')
				end++;
			if (*end || errno == ERANGE)
				return -1;
			return http_server_wait_ms((double)v * 1000);
		}
		{
			/* An HTTP date: libcurl parses every form RFC 9110 allows. */
			time_t t;

			if (curl_load(NULL))
				return -1;
			t = sym_curl_getdate(p, NULL);
			if (t == (time_t)-1)
				return -1;
			return t <= now_s ? 0 : http_server_wait_ms((double)(t - now_s) * 1000);
		}
	}
	return -1;
}

long http_retry_delay_ms(int n, long after_ms, double rnd)
{
	double d;

	if (after_ms >= 0)
		return after_ms > MAX_RETRY_AFTER_MS ? MAX_RETRY_AFTER_MS : after_ms;
	if (n < 1)
		n = 1;
	d = BACKOFF_BASE_MS * pow(2.0, n - 1);
	if (d > BACKOFF_MAX_MS)
		d = BACKOFF_MAX_MS;
	return (long)(d * (1.0 - 0.25 * rnd));
}

static double pool_rand(struct http_pool *p)
{
	/* xorshift64*: jitter needs spread between processes, not secrecy. */
	p->rnd ^= p->rnd >> 12;
	p->rnd ^= p->rnd << 25;
	p->rnd ^= p->rnd >> 27;
	return (double)((p->rnd * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

long http_parse_reset(const char *s)
{
	double total = 0;
	bool any = false;

	while (*s && *s != '\r' && *s != '\n') {
		char *end;
		double v = strtod(s, &end);

		if (end == s || !isfinite(v) || v < 0)
			return -1;
		s = end;
		if (!strncmp(s, "ms", 2)) {
			total += v;
			s += 2;
		} else if (*s == 's') {
			total += v * 1000;
			s++;
		} else if (*s == 'm') {
			total += v * 60000;
			s++;
		} else if (*s == 'h') {
			total += v * 3600000;
			s++;
		} else if (!*s || *s == '\r' || *s == '\n' || *s == ' ') {
			total += v * 1000;   /* bare seconds */
		} else {
			return -1;
		}
		any = true;
		while (*s == ' ')
			s++;
	}
	return any ? http_server_wait_ms(total) : -1;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
	struct http_xfer *x = ud;
	struct http_resp *r = x->resp;
	size_t len = size * n;
	char v[256];
	const char *colon;
	size_t nl, vl;

	if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
		/* A new response (after a 100 Continue, or a new attempt): forget the last one's. */
		r->retry_after_ms = r->rl_remaining_requests = r->rl_remaining_tokens = r->rl_reset_ms = -1;
		r->content_type[0] = '\0';
		r->captured[0] = '\0';
		r->captured_bad = false;
		return len;
	}
	colon = memchr(line, ':', len);
	if (!colon)
		return len;
	nl = (size_t)(colon - line);
	colon++;
	while (colon < line + len && (*colon == ' ' || *colon == '\t'))
		colon++;
	vl = (size_t)(line + len - colon);
	while (vl && (colon[vl - 1] == '\r' || colon[vl - 1] == '\n' || colon[vl - 1] == ' '))
		vl--;
	if (vl >= sizeof(v))
		vl = sizeof(v) - 1;
	memcpy(v, colon, vl);
	v[vl] = '\0';
#define IS(h) (nl == sizeof(h) - 1 && !strncasecmp(line, h, nl))
	if (IS("retry-after")) {
		long ms = http_parse_retry_after(v, NULL, wall_ms() / 1000);

		if (ms >= 0 && r->retry_after_ms < 0)
			r->retry_after_ms = ms;
	} else if (IS("retry-after-ms")) {
		long ms = http_parse_retry_after(NULL, v, 0);

		if (ms >= 0)
			r->retry_after_ms = ms;   /* the finer one wins */
	} else if (IS("content-type")) {
		size_t cl = vl < sizeof(r->content_type) ? vl : sizeof(r->content_type) - 1;

		memcpy(r->content_type, v, cl);
		r->content_type[cl] = '\0';
	} else if (IS("x-ratelimit-remaining-requests")) {
		r->rl_remaining_requests = http_parse_count(v);
	} else if (IS("x-ratelimit-remaining-tokens")) {
		r->rl_remaining_tokens = http_parse_count(v);
	} else if (IS("x-ratelimit-reset-requests") || IS("x-ratelimit-reset-tokens")) {
		long ms = http_parse_reset(v);

		if (ms > r->rl_reset_ms)
			r->rl_reset_ms = ms;
	}
	if (x->req->capture && nl == strlen(x->req->capture) && !strncasecmp(line, x->req->capture, nl)) {
		/* Kept whole or not at all: a value cut, or with bytes a header cannot carry back, is flagged. */
		size_t whole = (size_t)(line + len - colon);

		while (whole && (colon[whole - 1] == '\r' || colon[whole - 1] == '\n' || colon[whole - 1] == ' '))
			whole--;
		r->captured[0] = '\0';
		r->captured_bad = whole >= sizeof(r->captured);
		for (size_t i = 0; i < whole && !r->captured_bad; i++)
			r->captured_bad = (unsigned char)colon[i] < 0x21 || (unsigned char)colon[i] > 0x7e;
		if (!r->captured_bad) {
			memcpy(r->captured, colon, whole);
			r->captured[whole] = '\0';
		}
	}
#undef IS
	return len;
}

/* A piece of a download (http_req.to_fd) to the caller's file, where it is bounded by fd_max. */
static size_t write_fd(struct http_xfer *x, const char *p, size_t len)
{
	const struct http_req *q = x->req;
	size_t done = 0;

	if (q->fd_max && len > q->fd_max - x->fd_off) {
		x->too_big = true;
		return 0;
	}
	errno = x->fd_errno;
	while (!errno && done < len) {
		ssize_t w = pwrite(q->fd, p + done, len - done, (off_t)(x->fd_off + done));

		if (w > 0)
			done += (size_t)w;
		else if (w == 0)
			errno = EIO;
		else if (errno == EINTR)
			errno = 0;
	}
	if (errno) {
		ai_errf(&x->err, AI_EX_IOERR, "cannot write the download: %s", strerror(errno));
		x->aborted = true;
		return 0;
	}
	x->fd_off += len;
	return len;
}

/* A download starts over with each attempt: what an earlier one wrote goes. */
static void fd_restart(struct http_xfer *x)
{
	x->fd_off = 0;
	x->fd_errno = x->req->to_fd && ftruncate(x->req->fd, 0) ? errno : 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct http_xfer *x = ud;
	size_t len = size * n;
	long status = 0;

	x->active_ms = mono_ms();
	if (!x->resp->body.len && !x->resp->delivered && !x->fd_off)
		x->resp->ttfb_ms = (double)(x->active_ms - x->attempt_ms);
	sym_curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (x->req->to_fd && status >= 200 && status < 300)
		return write_fd(x, p, len);
	if (x->req->on_data && status >= 200 && status < 300) {
		x->resp->delivered = true;
		if (x->req->on_data(p, len, x->req->ud)) {
			x->aborted = true;
			return 0;
		}
		return len;
	}
	if (buf_add(&x->resp->body, p, len)) {
		x->too_big = true;
		return 0;
	}
	return len;
}

/*
 * Hands one -v line to the caller without the proxy's credentials: its
 * Proxy-Authorization header, and the userinfo of any URL (libcurl names
 * the proxy it takes from the environment, password and all).
 */
static void debug_line(const struct http_opts *o, struct buf *b)
{
	static const char pa[] = "Proxy-Authorization:";
	const size_t pl = sizeof(pa) - 1, at = 2;   /* after the "> " prefix */

	if (b->len > at + pl && !strncasecmp(b->data + at, pa, pl)) {
		b->len = at;
		b->data[at] = '\0';
		buf_addstr(b, "Proxy-Authorization: [redacted]");
	}
	url_redact(b->data);
	b->len = strlen(b->data);
	o->debug(b->data, o->debug_ud);
}

/* True when line (n bytes) is "Name: ..." with Name in names (NULL-terminated; may be NULL). */
static bool redacted(const char *const *names, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);

	for (; names && *names && colon; names++)
		if (strlen(*names) == (size_t)(colon - line) &&
		    !strncasecmp(line, *names, (size_t)(colon - line)))
			return true;
	return false;
}

/* -v: the exchange on stderr through the caller's function, the bearer token redacted. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	struct http_xfer *x = ud;
	const struct http_opts *o = &x->pool->o;
	const char *pfx;
	struct buf b;

	(void)h;
	switch (type) {
	case CURLINFO_TEXT: pfx = "* "; break;
	case CURLINFO_HEADER_IN: pfx = "< "; break;
	case CURLINFO_HEADER_OUT: pfx = "> "; break;
	case CURLINFO_DATA_OUT:
		if (o->verbose < 2)
			return 0;
		pfx = "> ";
		break;
	default:
		return 0;
	}
	buf_init(&b, 1u << 20);
	while (size) {
		const char *nlp = memchr(data, '\n', size);
		size_t l = nlp ? (size_t)(nlp - data) + 1 : size, show = l;

		while (show && (data[show - 1] == '\n' || data[show - 1] == '\r'))
			show--;
		buf_reset(&b);
		buf_addstr(&b, pfx);
		if (show > 14 && !strncasecmp(data, "authorization:", 14))
			buf_addstr(&b, "Authorization: [redacted]");
		else if (show > 8 && !strncasecmp(data, "api-key:", 8))   /* Azure OpenAI's */
			buf_addstr(&b, "api-key: [redacted]");
		else if (type == CURLINFO_HEADER_OUT && redacted(x->req->redact, data, show))
			buf_addf(&b, "%.*s: [redacted]", (int)((const char *)memchr(data, ':', show) - data),
				 data);
		else
			buf_add(&b, data, show);
		if (show && o->debug)
			debug_line(o, &b);
		data += l;
		size -= l;
	}
	buf_release(&b);
	return 0;
}

/*
 * Trust and proxies.  libcurl reads the proxy variables but, unlike the
 * curl tool, not CURL_CA_BUNDLE or SSL_CERT_FILE: config.c reads those
 * into ca_cert.  Loopback never goes through a proxy unless no_proxy says
 * otherwise: a local model server behind a corporate proxy setting would
 * be sent to the proxy, which cannot reach it.
 */
static void setup_net(CURL *e, const struct http_opts *o)
{
	if (o->ca_cert)
		sym_curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_cert);
	if (o->proxy)
		sym_curl_easy_setopt(e, CURLOPT_PROXY, o->proxy);
	sym_curl_easy_setopt(e, CURLOPT_NOPROXY, o->no_proxy ? o->no_proxy : "localhost,127.0.0.1,::1");
}

static int setup_easy(struct http_xfer *x, struct ai_err *err)
{
	const struct http_req *q = x->req;
	const struct http_opts *o = &x->pool->o;
	CURL *e = x->easy;

	if (q->headers)
		for (const char *const *h = q->headers; *h; h++) {
			struct curl_slist *n = sym_curl_slist_append(x->hdrs, *h);

			if (!n)
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			x->hdrs = n;
		}
	sym_curl_easy_setopt(e, CURLOPT_URL, q->url);
	sym_curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	sym_curl_easy_setopt(e, CURLOPT_USERAGENT, "ai-tools/" AI_VERSION);
	sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	sym_curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	sym_curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	if (!q->stream && o->timeout_ms > 0)
		sym_curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	sym_curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	sym_curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	sym_curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	setup_net(e, o);
	if (q->body || (q->method && !strcmp(q->method, "POST"))) {
		sym_curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		sym_curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	if (q->method && strcmp(q->method, "POST") && strcmp(q->method, "GET"))
		sym_curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
	if (o->verbose && o->debug) {
		sym_curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
		sym_curl_easy_setopt(e, CURLOPT_DEBUGDATA, x);
		sym_curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	}
	return 0;
}

/* libcurl's socket callback: keep the epoll set equal to what it wants watched. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_pool *p = userp;

	(void)e;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		compat_poller_watch(p->epfd, s, 0);
		return 0;
	}
	return compat_poller_watch(p->epfd, s, (what & CURL_POLL_IN ? COMPAT_IN : 0u) |
				   (what & CURL_POLL_OUT ? COMPAT_OUT : 0u)) ? -1 : 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct http_pool *p = userp;

	(void)m;
	/* 0 is "at once": due whatever the clock says by the time it is checked. */
	p->timer_ms = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : mono_ms() + timeout_ms;
	return 0;
}

struct http_pool *http_pool_new(const struct http_opts *o, int max_parallel, struct ai_err *err)
{
	struct http_pool *p;

	if (curl_load(err))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p)
		p->max = max_parallel < 1 ? 1 : max_parallel;
	if (!p || !(p->spare = calloc((size_t)p->max, sizeof(*p->spare))) ||
	    !(p->multi = sym_curl_multi_init())) {
		if (p)
			free(p->spare);
		free(p);
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	p->epfd = compat_poller_open();
	if (p->epfd < 0) {
		ai_errf(err, AI_EX_OSERR, "epoll_create1: %s", strerror(errno));
		sym_curl_multi_cleanup(p->multi);
		free(p->spare);
		free(p);
		return NULL;
	}
	p->timer_ms = -1;
	sym_curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	sym_curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
	sym_curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	sym_curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
	p->o = *o;
	p->rnd = (uint64_t)mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)p;
	if (!p->rnd)
		p->rnd = 1;
	sym_curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p->max);
	sym_curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)p->max + 4);
	return p;
}

static void push_active(struct http_pool *p, struct http_xfer *x)
{
	x->next = p->active;
	if (x->next)
		x->next->prevp = &x->next;
	x->prevp = &p->active;
	p->active = x;
}

static void unlink_active(struct http_xfer *x)
{
	*x->prevp = x->next;
	if (x->next)
		x->next->prevp = x->prevp;
	x->next = NULL;
	x->prevp = NULL;
}

static void xfer_free(struct http_xfer *x)
{
	struct http_pool *p = x->pool;

	/* libcurl's copy of the headers holds the key: wipe it before freeing. */
	for (struct curl_slist *s = x->hdrs; s; s = s->next)
		sodium_memzero(s->data, strlen(s->data));
	sym_curl_slist_free_all(x->hdrs);
	/* A handle kept for the next transfer saves its allocation and buffers. */
	if (x->easy && p->nspare < p->max) {
		sym_curl_easy_reset(x->easy);
		p->spare[p->nspare++] = x->easy;
	} else if (x->easy) {
		sym_curl_easy_cleanup(x->easy);
	}
	free(x);
}

void http_pool_free(struct http_pool *p)
{
	if (!p)
		return;
	while (p->active) {
		struct http_xfer *x = p->active;

		unlink_active(x);
		sym_curl_multi_remove_handle(p->multi, x->easy);
		xfer_free(x);
	}
	while (p->waiting) {
		struct http_xfer *x = p->waiting;

		p->waiting = x->next;
		xfer_free(x);
	}
	while (p->nspare)
		sym_curl_easy_cleanup(p->spare[--p->nspare]);
	free(p->spare);
	sym_curl_multi_cleanup(p->multi);
	close(p->epfd);
	free(p);
}

int http_pool_add(struct http_pool *p, const struct http_req *req, struct http_resp *resp,
		  http_done_fn done, void *ud, struct ai_err *err)
{
	struct http_xfer *x = calloc(1, sizeof(*x)), **tail;

	if (x)
		x->easy = p->nspare ? p->spare[--p->nspare] : sym_curl_easy_init();
	if (!x || !x->easy) {
		free(x);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	x->pool = p;
	x->req = req;
	x->resp = resp;
	x->done = done;
	x->ud = ud;
	if (setup_easy(x, err)) {
		xfer_free(x);
		return -1;
	}
	buf_init(&resp->body, p->o.max_response);
	resp->attempts = 0;
	resp->status = 0;
	resp->delivered = false;
	x->start_ms = x->due_ms = mono_ms();
	/* FIFO: append, so requests start in the order they were added. */
	for (tail = &p->waiting; *tail; tail = &(*tail)->next)
		;
	*tail = x;
	p->queued++;
	return 0;
}

int http_pool_pending(const struct http_pool *p)
{
	return p->queued + p->running;
}

void http_pool_pause(struct http_pool *p, long ms)
{
	int64_t until = mono_ms() + ms;

	if (until > p->pause_until_ms)
		p->pause_until_ms = until;
}

long http_pool_paused_ms(const struct http_pool *p)
{
	int64_t now = mono_ms();

	return p->pause_until_ms > now ? (long)(p->pause_until_ms - now) : 0;
}

static void start_due(struct http_pool *p, int64_t now)
{
	struct http_xfer **pp = &p->waiting;

	if (now < p->pause_until_ms)
		return;
	while (*pp && p->running < p->max) {
		struct http_xfer *x = *pp;

		if (x->due_ms > now) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		buf_reset(&x->resp->body);
		x->errbuf[0] = '\0';
		x->attempt_ms = x->active_ms = now;
		x->idle_expired = x->too_big = x->aborted = false;
		fd_restart(x);
		x->resp->attempts++;
		x->running = true;
		push_active(p, x);
		p->queued--;
		p->running++;
		sym_curl_multi_add_handle(p->multi, x->easy);
	}
}

static void finish(struct http_pool *p, struct http_xfer *x, int rc, struct ai_err *e)
{
	x->resp->ms = (double)(mono_ms() - x->start_ms);
	x->done(rc, x->resp, e, x->ud);
	(void)p;
	xfer_free(x);
}

static void requeue(struct http_pool *p, struct http_xfer *x, long delay)
{
	x->due_ms = mono_ms() + delay;
	x->next = p->waiting;
	p->waiting = x;
	p->queued++;
}

/*
 * An answer over the cap.  The limit is ours, not a refusal by the server
 * (69 would tell a script never to try again): 75, as for an answer broken
 * in any other way.
 */
static void too_big_err(struct ai_err *e, const char *host, size_t cap)
{
	if (cap % (1u << 20) == 0)
		ai_errf(e, AI_EX_TEMPFAIL, "the answer from %s is larger than %zu MiB", host, cap >> 20);
	else
		ai_errf(e, AI_EX_TEMPFAIL, "the answer from %s is larger than %zu bytes", host, cap);
}

/* Failures of TLS verification: the server's certificate, or our CA setup; never temporary. */
static bool tls_refused(CURLcode cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
	       cc == CURLE_SSL_INVALIDCERTSTATUS || cc == CURLE_SSL_CRL_BADFILE ||
	       cc == CURLE_SSL_CERTPROBLEM;
}

/* A transfer ended (cc) or was cut by us: decide between done and a retry. */
static void completed(struct http_pool *p, struct http_xfer *x, CURLcode cc)
{
	const struct http_opts *o = &p->o;
	struct http_resp *r = x->resp;
	bool can_retry = !r->delivered && r->attempts <= o->retries;
	struct ai_err e;
	char host[256];

	ai_err_clear(&e);
	sym_curl_multi_remove_handle(p->multi, x->easy);
	unlink_active(x);
	x->running = false;
	p->running--;
	if (cc == CURLE_OK && !x->idle_expired) {
		sym_curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r->status);
		/* A 5xx whose text says that it can never succeed (httperr.c) is final. */
		if (http_retryable_status(r->status) && can_retry &&
		    http_error_verdict(r->status, r->body.data, r->body.len, NULL) == HTTP_ERR_UNKNOWN) {
			long d = http_retry_delay_ms(r->attempts, r->retry_after_ms, pool_rand(p));

			if (r->status == 429 && r->retry_after_ms >= 0)
				http_pool_pause(p, d);
			requeue(p, x, d);
			return;
		}
		if (r->status == 429 && r->retry_after_ms >= 0)
			http_pool_pause(p, http_retry_delay_ms(1, r->retry_after_ms, 0));
		finish(p, x, 0, NULL);
		return;
	}
	if (x->aborted) {
		e = x->err;
		if (!e.code)
			ai_errf(&e, AI_EX_SOFTWARE, "transfer aborted");
		finish(p, x, -1, &e);
		return;
	}
	url_host(x->req->url, host, sizeof(host));   /* never with the "user:password@" */
	url_redact(x->errbuf);   /* libcurl may quote a proxy URL with its password */
	if (x->too_big) {
		too_big_err(&e, host, x->req->to_fd ? x->req->fd_max : o->max_response);
		finish(p, x, -1, &e);
		return;
	}
	if (x->idle_expired)
		ai_errf(&e, AI_EX_TEMPFAIL, "no data from %s for %.1f s (%s)", host,
			(double)stream_idle_ms(o) / 1000,
			stream_idle_ms(o) != o->idle_timeout_ms ? "--timeout" :
			o->idle_timeout_ms != HTTP_IDLE_TIMEOUT_MS ? "--idle-timeout" :
			"a silent stream is given up after this long; --timeout sets less");
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		ai_errf(&e, AI_EX_TEMPFAIL, "no answer from %s within %.1f s (--timeout)", host,
			(double)o->timeout_ms / 1000);
	else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
		 cc == CURLE_COULDNT_RESOLVE_PROXY)
		ai_errf(&e, AI_EX_TEMPFAIL, "cannot connect to %s: %s; is the server running?", host,
			x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc));
	else if (tls_refused(cc)) {
		/*
		 * Permanent: the same certificate fails again, so no retry, and 78
		 * says "fix the setup".  Which CA bundle was asked is the one thing
		 * a user behind TLS interception needs to know.
		 */
		const char *ca = o->ca_cert;

		if (!ca)
			sym_curl_easy_getinfo(x->easy, CURLINFO_CAINFO, &ca);
		ai_errf(&e, AI_EX_CONFIG, "cannot verify the TLS certificate of %s: %s (CA file '%s'%s)",
			host, x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc),
			ca && *ca ? ca : "libcurl's built-in store",
			o->ca_cert ? "" : "; a private CA goes in ca_cert or CURL_CA_BUNDLE");
		finish(p, x, -1, &e);
		return;
	} else if (r->delivered)
		ai_errf(&e, AI_EX_TEMPFAIL, "the connection to %s broke mid-answer: %s", host,
			x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc));
	else
		ai_errf(&e, AI_EX_TEMPFAIL, "request to %s failed: %s", host,
			x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc));
	/* A timeout is retried too (the SDKs do), but never after output was delivered. */
	if (can_retry && cc != CURLE_UNSUPPORTED_PROTOCOL && cc != CURLE_URL_MALFORMAT) {
		requeue(p, x, http_retry_delay_ms(r->attempts, -1, pool_rand(p)));
		return;
	}
	if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
		e.code = AI_EX_CONFIG;
	finish(p, x, -1, &e);
}

static long next_wake(struct http_pool *p, int64_t now)
{
	long t = POLL_MAX_MS;

	for (struct http_xfer *x = p->waiting; x; x = x->next) {
		int64_t due = x->due_ms > p->pause_until_ms ? x->due_ms : p->pause_until_ms;

		if (p->running < p->max && due - now < t)
			t = due - now < 0 ? 0 : (long)(due - now);
	}
	if (stream_idle_ms(&p->o) > 0)
		for (struct http_xfer *x = p->active; x; x = x->next)
			if (x->req->stream) {
				int64_t d = x->active_ms + stream_idle_ms(&p->o) - now;

				if (d < t)
					t = d < 0 ? 0 : (long)d;
			}
	return t;
}

static void abort_all(struct http_pool *p)
{
	struct ai_err e;

	ai_errf(&e, AI_EX_INTERRUPT, "interrupted");
	while (p->active) {
		struct http_xfer *x = p->active;

		unlink_active(x);
		sym_curl_multi_remove_handle(p->multi, x->easy);
		p->running--;
		finish(p, x, -1, &e);
	}
	while (p->waiting) {
		struct http_xfer *x = p->waiting;

		p->waiting = x->next;
		p->queued--;
		finish(p, x, -1, &e);
	}
}

/* Waits up to wait_ms for socket events and hands each to libcurl. */
static void wait_events(struct http_pool *p, long wait_ms)
{
	struct compat_event ev[64];
	int still, n = compat_poller_wait(p->epfd, ev, (int)AI_ARRAY_LEN(ev), wait_ms);

	for (int i = 0; i < n; i++) {
		int mask = 0;

		if (ev[i].events & COMPAT_IN)
			mask |= CURL_CSELECT_IN;
		if (ev[i].events & COMPAT_OUT)
			mask |= CURL_CSELECT_OUT;
		if (ev[i].events & COMPAT_ERR)
			mask |= CURL_CSELECT_ERR;
		sym_curl_multi_socket_action(p->multi, ev[i].fd, mask, &still);
	}
}

int http_pool_step(struct http_pool *p, long timeout_ms, struct ai_err *err)
{
	int64_t now = mono_ms(), end = now + (timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		int still, left, finished = 0;
		CURLMsg *m;
		long wait;

		if (p->o.interrupt && *p->o.interrupt) {
			abort_all(p);
			return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
		}
		start_due(p, now);
		if (p->timer_ms >= 0 && now >= p->timer_ms) {
			p->timer_ms = -1;
			sym_curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &still);
		}
		while ((m = sym_curl_multi_info_read(p->multi, &left))) {
			if (m->msg == CURLMSG_DONE) {
				struct http_xfer *x;
				CURLcode cc = m->data.result;

				sym_curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
				completed(p, x, cc);
				finished++;
			}
		}
		now = mono_ms();
		if (stream_idle_ms(&p->o) > 0) {
			for (struct http_xfer *x = p->active, *nx; x; x = nx) {
				nx = x->next;
				if (x->req->stream && now - x->active_ms >= stream_idle_ms(&p->o)) {
					x->idle_expired = true;
					completed(p, x, CURLE_OPERATION_TIMEDOUT);
					finished++;
				}
			}
		}
		if (!http_pool_pending(p))
			return 0;
		if (finished || now >= end)
			return http_pool_pending(p);
		start_due(p, now);
		wait = next_wake(p, now);
		if (p->timer_ms >= 0 && p->timer_ms - now < wait)
			wait = p->timer_ms <= now ? 0 : (long)(p->timer_ms - now);
		if (wait > end - now)
			wait = (long)(end - now);
		wait_events(p, wait);
		now = mono_ms();
	}
}

int http_pool_run(struct http_pool *p, struct ai_err *err)
{
	while (http_pool_pending(p))
		if (http_pool_step(p, 1000000, err) < 0)
			return -1;
	return 0;
}

struct one {
	int rc;
	struct ai_err *err;
};

static void one_done(int rc, struct http_resp *resp, struct ai_err *e, void *ud)
{
	struct one *o = ud;

	(void)resp;
	o->rc = rc;
	if (rc && o->err)
		*o->err = *e;
}

int http_do(const struct http_opts *o, const struct http_req *req, struct http_resp *resp,
	    struct ai_err *err)
{
	struct http_pool *p = http_pool_new(o, 1, err);
	struct one st = { 0, err };
	int rc;

	if (!p)
		return -1;
	if (http_pool_add(p, req, resp, one_done, &st, err)) {
		http_pool_free(p);
		return -1;
	}
	rc = http_pool_run(p, err);
	http_pool_free(p);
	return rc ? rc : st.rc;
}
