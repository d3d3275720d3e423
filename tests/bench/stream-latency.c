/*
 * stream-latency - how long a streamed chunk takes from leaving the server
 * to being on ai-stream's standard output.
 *
 *   stream-latency AI_STREAM [CHUNKS [SPACING_US [OPTION...]]]
 *
 * Plays a minimal OpenAI-compatible server on 127.0.0.1 in this process,
 * runs AI_STREAM against it with its stdout on a pipe, and sends CHUNKS
 * content deltas SPACING_US apart.  Each delta's content is "T<ns>;", the
 * CLOCK_MONOTONIC time taken just before its write(2); the same loop
 * polls the pipe and, for each timestamp that comes out, records the time
 * it was read.  The difference is the whole path: TCP, libcurl, the SSE
 * parser, chat-stream assembly, the output filter, write(2) and the pipe.
 * Options after SPACING_US go to AI_STREAM (--json, --sse, ...).
 *
 * Prints the median, p90, p99 and maximum; a benchmark, so it exits 0
 * unless it could not run at all.
 */
#include "ai.h"
#include "fdio.h"

#include <fcntl.h>
#include <poll.h>
#include <strings.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define WARMUP 20

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* What came out of the pipe and is not yet a whole "T<digits>;" token. */
struct reader {
	char carry[64];
	size_t ncarry;
	int64_t *lat;
	size_t nlat, cap;
	size_t seen;            /* timestamps seen, warm-up included */
};

static void scan(struct reader *r, const char *p, size_t n, int64_t t)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == 'T') {
			r->ncarry = 0;
			r->carry[r->ncarry++] = c;
		} else if (r->ncarry && c >= '0' && c <= '9' && r->ncarry < sizeof(r->carry) - 1) {
			r->carry[r->ncarry++] = c;
		} else if (r->ncarry > 1 && c == ';') {
			int64_t sent = 0;

			for (size_t k = 1; k < r->ncarry; k++)
				sent = sent * 10 + (r->carry[k] - '0');
			if (r->seen++ >= WARMUP && r->nlat < r->cap)
				r->lat[r->nlat++] = t - sent;
			r->ncarry = 0;
		} else {
			r->ncarry = 0;
		}
	}
}

/* Reads what the pipe has; returns 0 at end of file, -1 on error, 1 otherwise. */
static int drain(int fd, struct reader *r)
{
	char b[65536];
	ssize_t n = read(fd, b, sizeof(b));
	int64_t t = now_ns();

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	if (n == 0)
		return 0;
	scan(r, b, (size_t)n, t);
	return 1;
}

/* Waits for the pipe until deadline (ns), reading whatever comes. */
static int pump(int fd, struct reader *r, int64_t deadline)
{
	for (;;) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int64_t left = deadline - now_ns();
		int rc;

		if (left < 0)
			left = 0;
		/* poll(2) counts in ms: round up, so the schedule is never early. */
		rc = poll(&pf, 1, (int)((left + 999999) / 1000000));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			return 1;
		rc = drain(fd, r);
		if (rc <= 0)
			return rc;
	}
}

/* Reads the request: headers, then Content-Length bytes of body. */
static int read_request(int s)
{
	char b[65536];
	size_t n = 0;
	long want = -1;

	for (;;) {
		struct pollfd pf = { s, POLLIN, 0 };
		ssize_t r;
		char *end;

		if (poll(&pf, 1, 5000) <= 0)
			return -1;
		r = read(s, b + n, sizeof(b) - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		b[n] = '\0';
		end = strstr(b, "\r\n\r\n");
		if (end && want < 0) {
			char *cl = NULL;

			for (char *q = b; q < end && !cl; q++)
				if (!strncasecmp(q, "\r\ncontent-length:", 17))
					cl = q;
			want = cl ? strtol(cl + 17, NULL, 10) : 0;
			want += (long)(end + 4 - b);
		}
		if (want >= 0 && (long)n >= want)
			return 0;
		if (n == sizeof(b) - 1)
			return -1;
	}
}

static void chunk(char *out, size_t cap, const char *content, const char *finish)
{
	if (finish)
		snprintf(out, cap, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"%s\"}]}\n\n"
			 "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
			 "data: [DONE]\n\n", finish);
	else
		snprintf(out, cap, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
			 "\"finish_reason\":null}]}\n\n", content);
}

int main(int argc, char **argv)
{
	const char *bin = argc > 1 ? argv[1] : "bin/ai-stream";
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
			   "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
	long chunks = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	long spacing_us = argc > 3 ? strtol(argv[3], NULL, 10) : 2000;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char home[] = "/tmp/stream-latency.XXXXXX", url[64], msg[256];
	struct reader r;
	int ls, s, pfd[2], one = 1, status = 0;
	int64_t t;
	pid_t pid;

	if (chunks < 1 || chunks > 10000000 || spacing_us < 0) {
		fprintf(stderr, "usage: stream-latency AI_STREAM [CHUNKS [SPACING_US [OPTION...]]]\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4) ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) || !mkdtemp(home) || pipe(pfd)) {
		perror("stream-latency: setup");
		return 71;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", ntohs(a.sin_port));

	pid = fork();
	if (pid == 0) {
		char **av = calloc((size_t)argc + 8, sizeof(*av));
		int k = 0;

		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		close(ls);
		setenv("HOME", home, 1);
		unsetenv("XDG_CONFIG_HOME");
		unsetenv("XDG_CACHE_HOME");
		unsetenv("XDG_DATA_HOME");
		unsetenv("AI_PROFILE");
		setenv("OPENAI_BASE_URL", url, 1);
		setenv("OPENAI_API_KEY", "sk-bench", 1);
		setenv("NO_PROXY", "127.0.0.1", 1);
		av[k++] = "ai-stream";
		av[k++] = "--no-cache";
		av[k++] = "--retries";
		av[k++] = "0";
		for (int i = 4; i < argc; i++)
			av[k++] = argv[i];
		av[k++] = "bench";
		av[k] = NULL;
		execv(bin, av);
		perror("stream-latency: exec");
		_exit(127);
	}
	close(pfd[1]);
	{
		struct pollfd pf = { ls, POLLIN, 0 };

		if (poll(&pf, 1, 5000) <= 0) {
			fprintf(stderr, "stream-latency: %s did not connect\n", bin);
			kill(pid, SIGTERM);
			return 69;
		}
	}
	s = accept(ls, NULL, NULL);
	if (s < 0 || read_request(s)) {
		fprintf(stderr, "stream-latency: no request from %s\n", bin);
		kill(pid, SIGTERM);
		return 69;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	memset(&r, 0, sizeof(r));
	r.cap = (size_t)chunks;
	r.lat = calloc(r.cap, sizeof(*r.lat));
	if (!r.lat)
		return 71;

	chunk(msg, sizeof(msg), "", NULL);
	if (fd_write_all(s, head, strlen(head)) || fd_write_all(s, msg, strlen(msg))) {
		perror("stream-latency: write");
		return 69;
	}
	t = now_ns();
	for (long i = 0; i < chunks + WARMUP; i++) {
		char content[40];

		t += spacing_us * 1000;
		if (pump(pfd[0], &r, t) < 0)
			break;
		snprintf(content, sizeof(content), "T%lld;", (long long)now_ns());
		chunk(msg, sizeof(msg), content, NULL);
		if (fd_write_all(s, msg, strlen(msg)))
			break;
	}
	/* Everything sent: wait (up to 5 s) for the rest to come out. */
	t = now_ns() + 5000000000LL;
	while (r.seen < (size_t)(chunks + WARMUP) && now_ns() < t)
		if (pump(pfd[0], &r, now_ns() + 10000000) <= 0)
			break;
	chunk(msg, sizeof(msg), NULL, "stop");
	(void)fd_write_all(s, msg, strlen(msg));
	close(s);
	while (pump(pfd[0], &r, now_ns() + 1000000000) > 0)
		;
	waitpid(pid, &status, 0);

	if (r.nlat == 0) {
		fprintf(stderr, "stream-latency: no timestamps came out of %s (exit %d)\n", bin,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return 69;
	}
	qsort(r.lat, r.nlat, sizeof(*r.lat), cmp_i64);
	{
		double sum = 0;

		for (size_t i = 0; i < r.nlat; i++)
			sum += (double)r.lat[i];
		printf("chunks %zu (of %ld, after %d warm-up), spacing %ld us, ai-stream exit %d\n",
		       r.nlat, chunks, WARMUP, spacing_us, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		printf("server write -> ai-stream stdout: median %.1f us, p90 %.1f us, p99 %.1f us, "
		       "max %.1f us, mean %.1f us\n",
		       (double)r.lat[r.nlat / 2] / 1e3, (double)r.lat[r.nlat * 90 / 100] / 1e3,
		       (double)r.lat[r.nlat * 99 / 100] / 1e3, (double)r.lat[r.nlat - 1] / 1e3,
		       sum / (double)r.nlat / 1e3);
	}
	free(r.lat);
	{
		char cmd[128];

		/* The temporary HOME holds the ledger ai-stream wrote. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
		if (system(cmd))
			fprintf(stderr, "stream-latency: could not remove %s\n", home);
	}
	return 0;
}
