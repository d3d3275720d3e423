/*
 * sse_bench.c - what reading a chat stream costs per event.
 *
 * Builds a recorded-shaped stream (OpenAI chunk layout, varied words,
 * some escapes and non-ASCII text), then times, per event:
 *   - SSE framing alone (sse_feed with a callback that does nothing);
 *   - framing + content extraction (chatstream_feed, fast path on);
 *   - the same with the fast path off (json-c for every chunk);
 *   - a bare json-c DOM parse of each chunk, for comparison.
 * The body is fed in 16 KiB pieces, as libcurl's write callback would.
 * Prints figures; never fails.  Usage: sse_bench [chunks]
 */
#include "api/chatstream.h"
#include "bench.h"
#include <time.h>

static const char *const words[] = {
	" the", " model", " streams", " tokens", " quickly", ",", ".", " and", " then",
	" caf\xc3\xa9", " \xe4\xb8\xad\xe6\x96\x87", "\\n", "\\n\\n", " \\\"quoted\\\"", " a\\\\b",
	" \\u00e9t\\u00e9", " \\ud83d\\ude00", " 42", " tab\\tbed", " reply",
};

static size_t nevents;

static int count(const struct sse_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	nevents++;
	return 0;
}

static int sink(const char *t, size_t n, void *ud)
{
	(void)t;
	*(size_t *)ud += n;
	return 0;
}

#define PIECE 16384

int main(int argc, char **argv)
{
	long nchunks = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	struct buf body = BUF_INIT;
	struct sse_parser p;
	struct ai_err err;
	double t, best_frame = 1e9, best_fast = 1e9, best_slow = 1e9, best_dom = 1e9;
	size_t off, out = 0;
	long i, fast_chunks = 0;
	int rep;

	if (nchunks < 1)
		nchunks = 200000;
	for (i = 0; i < nchunks; i++) {
		buf_addf(&body,
			 "data: {\"id\":\"chatcmpl-%ld\",\"object\":\"chat.completion.chunk\","
			 "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_x\","
			 "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
			 "\"finish_reason\":null}]}\n\n",
			 i / 1000, words[(size_t)(i * 7 + i / 3) % AI_ARRAY_LEN(words)]);
	}
	buf_addstr(&body, "data: [DONE]\n\n");
	printf("stream: %ld chunks, %zu bytes (%.0f bytes/event), fed in %d-byte pieces\n",
	       nchunks, body.len, (double)body.len / (double)(nchunks + 1), PIECE);

	for (rep = 0; rep < 5; rep++) {
		nevents = 0;
		sse_init(&p, 1 << 20, 1 << 24);
		t = bench_now();
		for (off = 0; off < body.len; off += PIECE)
			sse_feed(&p, body.data + off, body.len - off < PIECE ? body.len - off : PIECE,
				 count, NULL, &err);
		t = bench_now() - t;
		sse_finish(&p);
		sse_release(&p);
		if (t < best_frame)
			best_frame = t;
	}
	printf("framing alone:              %8.1f ns/event  (%zu events)\n",
	       best_frame * 1e9 / (double)nevents, nevents);

	for (rep = 0; rep < 6; rep++) {
		struct chatstream cs;
		bool slow = rep % 2;

		chatstream_init(&cs, 0);
		cs.no_fast = slow;
		cs.on_delta = sink;
		cs.ud = &out;
		sse_init(&p, 1 << 20, 1 << 24);
		t = bench_now();
		for (off = 0; off < body.len; off += PIECE)
			if (chatstream_feed(&cs, &p, body.data + off,
					    body.len - off < PIECE ? body.len - off : PIECE, &err)) {
				printf("error: %s\n", err.msg);
				break;
			}
		t = bench_now() - t;
		if (!slow)
			fast_chunks = cs.fast_chunks;
		chatstream_end(&cs, &p, &err);
		sse_release(&p);
		chatstream_release(&cs);
		if (slow && t < best_slow)
			best_slow = t;
		if (!slow && t < best_fast)
			best_fast = t;
	}
	printf("framing + content (fast):   %8.3f us/event  (%ld of %ld chunks on the fast path)\n",
	       best_fast * 1e6 / (double)(nchunks + 1), fast_chunks, nchunks);
	printf("framing + content (json-c): %8.3f us/event\n", best_slow * 1e6 / (double)(nchunks + 1));

	/* Bare DOM parse of each chunk's JSON (one reused tokener: json-c's best case). */
	for (rep = 0; rep < 3; rep++) {
		const char *s = body.data, *e = body.data + body.len;
		json_tokener *tok = json_tokener_new();
		long n = 0;

		t = bench_now();
		while (s < e && n < nchunks) {
			const char *nl = memchr(s, '\n', (size_t)(e - s));
			json_object *o;

			json_tokener_reset(tok);
			o = json_tokener_parse_ex(tok, s + 6, (int)(nl - s - 6));
			json_object_put(o);
			n++;
			s = nl + 2;
		}
		t = bench_now() - t;
		json_tokener_free(tok);
		if (t < best_dom)
			best_dom = t;
	}
	printf("json-c DOM parse per chunk: %8.3f us/chunk\n", best_dom * 1e6 / (double)nchunks);
	printf("targets: framing < 100 ns/event, framing + content <= 2.5 us/event\n");
	buf_release(&body);
	return 0;
}
