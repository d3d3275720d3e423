/* t_http - the retry policy: which answers are retried, how long to wait. */
#include "net/http.h"
#include "net/httperr.h"
#include "tap.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_statuses(void)
{
	static const long yes[] = { 408, 409, 429, 500, 502, 503, 504, 599 };
	static const long no[] = { 200, 201, 301, 400, 401, 403, 404, 413, 422 };

	for (size_t i = 0; i < AI_ARRAY_LEN(yes); i++)
		ok(http_retryable_status(yes[i]), "%ld is retried", yes[i]);
	for (size_t i = 0; i < AI_ARRAY_LEN(no); i++)
		ok(!http_retryable_status(no[i]), "%ld is not retried", no[i]);
}

static void test_retry_after(void)
{
	int64_t now = 1700000000;   /* Tue, 14 Nov 2023 22:13:20 GMT */

	is_int(http_parse_retry_after("1", NULL, now), 1000, "delta seconds");
	is_int(http_parse_retry_after("0", NULL, now), 0, "zero");
	is_int(http_parse_retry_after("  7 ", NULL, now), 7000, "surrounding blanks");
	is_int(http_parse_retry_after("120", NULL, now), 120000, "two minutes");
	is_int(http_parse_retry_after("-1", NULL, now), -1, "negative is ignored");
	is_int(http_parse_retry_after("1.5", NULL, now), -1, "a fraction is not a delta-seconds");
	is_int(http_parse_retry_after("soon", NULL, now), -1, "garbage is ignored");
	is_int(http_parse_retry_after("", NULL, now), -1, "empty is ignored");
	is_int(http_parse_retry_after(NULL, NULL, now), -1, "absent");
	is_int(http_parse_retry_after("99999999999999999999", NULL, now), -1, "overflow is ignored");
	is_int(http_parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", NULL, now), 10000, "an HTTP date 10 s ahead");
	is_int(http_parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", NULL, now), 0, "an HTTP date in the past");
	is_int(http_parse_retry_after("Tuesday, 14-Nov-23 22:13:25 GMT", NULL, now), 5000, "an RFC 850 date");
	is_int(http_parse_retry_after(NULL, "250", now), 250, "retry-after-ms");
	is_int(http_parse_retry_after(NULL, "12.7", now), 12, "retry-after-ms with a fraction");
	is_int(http_parse_retry_after("30", "200", now), 200, "retry-after-ms wins over Retry-After");
	is_int(http_parse_retry_after("3", "x", now), 3000, "a bad retry-after-ms falls back");
	is_int(http_parse_retry_after(NULL, "-5", now), -1, "negative ms is ignored");
}

static void test_delays(void)
{
	is_int(http_retry_delay_ms(1, -1, 0), 500, "first retry waits 0.5 s");
	is_int(http_retry_delay_ms(2, -1, 0), 1000, "then 1 s");
	is_int(http_retry_delay_ms(3, -1, 0), 2000, "then 2 s");
	is_int(http_retry_delay_ms(5, -1, 0), 8000, "capped at 8 s");
	is_int(http_retry_delay_ms(30, -1, 0), 8000, "still capped far out");
	is_int(http_retry_delay_ms(1, -1, 0.999999), 375, "jitter takes off at most a quarter");
	for (int i = 0; i < 1000; i++) {
		double r = i / 1000.0;
		long d = http_retry_delay_ms(2, -1, r);

		if (d < 750 || d > 1000) {
			ok(0, "jitter out of range: %ld for %g", d, r);
			return;
		}
	}
	ok(1, "jittered delays stay within [0.75, 1] of the base");
	is_int(http_retry_delay_ms(1, 3000, 0.5), 3000, "Retry-After is honoured exactly");
	is_int(http_retry_delay_ms(1, 0, 0.5), 0, "Retry-After: 0 means now");
	is_int(http_retry_delay_ms(1, 500000, 0), 120000, "Retry-After is capped at 120 s");
}

/* A request to a closed port fails without a response: -1, a temporary failure. */
static void test_refused(void)
{
	struct http_opts o;
	struct http_req q = { 0 };
	struct http_resp r;
	struct ai_err e;

	http_opts_init(&o);
	o.retries = 0;
	o.connect_timeout_ms = 2000;
	q.url = "http://127.0.0.1:1/v1/models";
	http_resp_init(&r);
	ai_err_clear(&e);
	is_int(http_do(&o, &q, &r, &e), -1, "connection refused fails");
	is_int(e.code, AI_EX_TEMPFAIL, "as a temporary failure");
	ok(strstr(e.msg, "cannot connect to 127.0.0.1:1") != NULL, "naming the host: %s", e.msg);
	is_int(r.attempts, 1, "one attempt with retries 0");
	http_resp_release(&r);

	o.retries = 1;
	http_resp_init(&r);
	is_int(http_do(&o, &q, &r, &e), -1, "refused again");
	is_int(r.attempts, 2, "two attempts with retries 1");
	ok(r.ms >= 350, "the retry waited the backoff (%.0f ms)", r.ms);
	http_resp_release(&r);

	q.url = "ftp://127.0.0.1/x";
	o.retries = 3;
	http_resp_init(&r);
	is_int(http_do(&o, &q, &r, &e), -1, "another protocol is refused");
	is_int(r.attempts, 1, "and not retried");
	is_int(e.code, AI_EX_CONFIG, "as a configuration error");
	http_resp_release(&r);
}

/* Finding 3 of issue 19: one cap and one parser for every server-given wait. */
static void test_server_waits(void)
{
	int64_t now = 1700000000;

	is_int(http_parse_retry_after("100000", NULL, now), -1, "Retry-After over the cap is not believed");
	is_int(http_parse_retry_after("121", NULL, now), -1, "121 s is over the cap");
	is_int(http_parse_retry_after(NULL, "120001", now), -1, "retry-after-ms over the cap");
	is_int(http_parse_retry_after(NULL, "999999999999", now), -1, "huge retry-after-ms");
	is_int(http_parse_retry_after(NULL, "nan", now), -1, "NaN retry-after-ms");
	is_int(http_parse_retry_after("Tue, 14 Nov 2023 23:13:20 GMT", NULL, now), -1,
	       "an HTTP date an hour ahead");
	is_int(http_parse_reset("1s"), 1000, "reset 1s");
	is_int(http_parse_reset("6m0s"), -1, "reset 6m0s is over the cap");
	is_int(http_parse_reset("1m30s"), 90000, "reset 1m30s");
	is_int(http_parse_reset("20ms"), 20, "reset 20ms");
	is_int(http_parse_reset("0.5s"), 500, "reset 0.5s");
	is_int(http_parse_reset("2"), 2000, "reset in bare seconds");
	is_int(http_parse_reset("999999999999ms"), -1, "reset of 31 years is not believed");
	is_int(http_parse_reset("1000000s"), -1, "reset of 11 days is not believed");
	is_int(http_parse_reset("soon"), -1, "garbage reset");
	is_int(http_parse_reset("inf"), -1, "infinite reset");
	is_int(http_parse_reset(""), -1, "empty reset");
	is_int(http_parse_count("42"), 42, "a count");
	is_int(http_parse_count("0"), 0, "zero is a count");
	is_int(http_parse_count(" 7 "), 7, "blanks around a count");
	is_int(http_parse_count("garbage"), -1, "garbage is not zero");
	is_int(http_parse_count("12abc"), -1, "trailing garbage is not a count");
	is_int(http_parse_count("-3"), -1, "a negative count is ignored");
	is_int(http_parse_count(""), -1, "an empty count is ignored");
	is_int(http_parse_count("99999999999999999999999"), -1, "an overflowing count is ignored");
	is_int(http_server_wait_ms(120000), 120000, "the cap itself is believed");
	is_int(http_server_wait_ms(120000.5), -1, "past the cap is not");
	is_int(http_server_wait_ms(-1), -1, "negative is not");
}

/*
 * The table of permanent errors: every entry is found in its own sample
 * (whatever status labels it, 5xx included) and names its family; the
 * temporary errors real servers send match no entry.
 */
static void test_known_errors(void)
{
	static const char *const temporary[] = {
		"{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":\"unavailable_error\"}}",
		("{\"error\":{\"message\":\"Rate limit reached for gpt-4o in organization org-x on "
		 "tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in "
		 "2s.\",\"type\":\"tokens\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}"),
		"{\"error\":\"server busy, please try again.  maximum pending requests exceeded\"}",
		("{\"error\":{\"message\":\"The server had an error while processing your request. "
		 "Sorry about that!\",\"type\":\"server_error\"}}"),
		"<html><body><h1>502 Bad Gateway</h1></body></html>",
		"",
	};
	size_t n;
	const struct http_known_error *k = http_known_errors(&n);
	const char *fam;

	ok(n >= 8, "the table has its entries (%zu)", n);
	for (size_t i = 0; i < n; i++) {
		const char *s = k[i].sample;
		enum http_verdict v = http_error_verdict(500, s, strlen(s), &fam);

		ok(v == k[i].verdict && fam && !strcmp(fam, k[i].family),
		   "%s: \"%s\" is %s, even labelled 500", k[i].family, k[i].text,
		   k[i].verdict == HTTP_ERR_TOO_LARGE ? "too large" : "permanent");
		ok(v != HTTP_ERR_UNKNOWN && http_error_verdict(400, s, strlen(s), NULL) == v,
		   "%s: \"%s\" has the same verdict labelled 400", k[i].family, k[i].text);
		is_int(http_error_verdict(200, s, strlen(s), NULL), HTTP_ERR_UNKNOWN,
		       "%s: \"%s\" in a 200 is no error", k[i].family, k[i].text);
	}
	for (size_t i = 0; i < AI_ARRAY_LEN(temporary); i++)
		is_int(http_error_verdict(503, temporary[i], strlen(temporary[i]), &fam), HTTP_ERR_UNKNOWN,
		       "temporary error %zu matches no entry", i);
	ok(fam == NULL, "no family for a body that matches nothing");
	is_int(http_error_verdict(500, NULL, 0, NULL), HTTP_ERR_UNKNOWN, "no body: unknown");
	{
		/* Case ignored; the body need not be NUL-terminated, and is read only to its length. */
		static const char body[] = "{\"error\":\"INPUT IS TOO LARGE TO PROCESS\"}XXXX";

		is_int(http_error_verdict(500, body, sizeof(body) - 5, NULL), HTTP_ERR_TOO_LARGE,
		       "case is ignored");
		is_int(http_error_verdict(500, body, 20, NULL), HTTP_ERR_UNKNOWN,
		       "a text cut by the length is not found");
	}
}

static void keep_line(const char *line, void *ud)
{
	buf_addf(ud, "%s\n", line);
}

/* -v never shows the value of a header the caller names in req.redact (MCP's headers_cmd). */
static void test_redact(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	const char *hdrs[] = { "X-Secret: sekrit-7", "Authorization: Bearer tok-1", "X-Plain: shown", NULL };
	const char *const names[] = { "x-secret", NULL };
	char url[64];
	struct http_opts o;
	struct http_req q = { 0 };
	struct http_resp r;
	struct ai_err e;
	struct buf log;

	/* A listener that never answers: the request headers are sent, then the time runs out. */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		ok(0, "a listening socket");
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/mcp", ntohs(a.sin_port));
	buf_init(&log, 0);
	http_opts_init(&o);
	o.retries = 0;
	o.timeout_ms = 500;
	o.verbose = 1;
	o.debug = keep_line;
	o.debug_ud = &log;
	q.url = url;
	q.headers = hdrs;
	q.redact = names;
	http_resp_init(&r);
	ai_err_clear(&e);
	is_int(http_do(&o, &q, &r, &e), -1, "no answer in time");
	ok(log.data && strstr(log.data, "> X-Secret: [redacted]"), "a named header is redacted");
	ok(log.data && !strstr(log.data, "sekrit-7") && !strstr(log.data, "tok-1"), "its value never shown");
	ok(log.data && strstr(log.data, "> X-Plain: shown"), "another header is shown");
	http_resp_release(&r);
	buf_release(&log);
	close(fd);
}

int main(void)
{
	test_known_errors();
	test_statuses();
	test_retry_after();
	test_server_waits();
	test_delays();
	test_refused();
	test_redact();
	return tap_done();
}
