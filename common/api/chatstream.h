#ifndef AI_CHATSTREAM_H
#define AI_CHATSTREAM_H
/*
 * chatstream.h - assembles a streamed OpenAI chat completion from its
 * server-sent events: the reply text, the finish reason, token usage and
 * tool calls, tolerating what real servers send (each shape is a case in
 * tests/unit/t_chatstream.c, "server shapes"): a role delta with content
 * null, "" or none; empty deltas; usage in a chunk of its own or in the
 * last one; no finish_reason; tool-call deltas by index with id "";
 * unknown fields anywhere; llama.cpp's "error:" field lines; a reasoning
 * model's thoughts ("reasoning_content" from DeepSeek, vLLM and llama.cpp,
 * "reasoning" from OpenRouter and Ollama), kept apart from the answer;
 * a "refusal" delta; content as an array of parts; llama.cpp's "timings"
 * where it sends no usage.
 *
 * Most chunks are plain content deltas.  They are read by a small strict
 * scanner that understands only that shape and hands anything else
 * (tool calls, errors, usage, unusual escapes, odd numbers, duplicate
 * keys) to json-c, so both ways give exactly the same result.
 *
 * Typical use, from a transport's write callback:
 *
 *	chatstream_init(&cs, 1 << 24);
 *	cs.on_delta = print_delta; cs.ud = stdout;
 *	sse_init(&p, 1 << 20, 1 << 24);
 *	... chatstream_feed(&cs, &p, bytes, n, &err) for each piece ...
 *	chatstream_end(&cs, &p, &err);   (-1 when the stream was cut short)
 *	sse_release(&p); chatstream_release(&cs);
 */
#include "ai.h"
#include "buf.h"
#include "net/sse.h"
#include <json-c/json.h>

#define CHATSTREAM_MAX_TOOLS 64

/* One tool call assembled from its deltas. */
struct chatstream_tool {
	struct buf id;        /* "" when the server sent none or "" */
	struct buf name;      /* the first non-empty name sent */
	struct buf arguments; /* the pieces of function.arguments, joined; raw model text */
	bool used;            /* some delta named this index */
};

struct chatstream {
	struct buf content;            /* the assistant text so far */
	char finish_reason[32];        /* "" until one is seen; longer ones are cut */
	long prompt_tokens;            /* -1 until a usage object gives it */
	long completion_tokens;        /* -1 until a usage object gives it */
	long cached_tokens;            /* of prompt_tokens, from the prompt cache; -1 unknown */
	long reasoning_tokens;         /* of completion_tokens, spent reasoning; -1 unknown */
	struct buf reasoning;          /* the model's reasoning so far, never part of content */
	struct buf refusal;            /* the model's refusal so far ("refusal" deltas) */
	bool done;                     /* "data: [DONE]" was seen */
	long chunks;                   /* JSON chunks read (not counting [DONE]) */

	/* Tool calls by index; NULL until the first tool-call delta. */
	struct chatstream_tool *tools; /* owned, CHATSTREAM_MAX_TOOLS slots */
	size_t ntools;                 /* highest index used + 1 */

	/*
	 * Called with each non-empty piece of content as it arrives (already
	 * appended to content).  Non-zero aborts: chatstream_event returns -1
	 * with err->code set to the value returned when positive (for example
	 * AI_EX_IOERR), AI_EX_SOFTWARE otherwise.  May be NULL.
	 */
	int (*on_delta)(const char *text, size_t len, void *ud);
	/* The same for each piece of reasoning (appended to reasoning).  May be NULL. */
	int (*on_reasoning)(const char *text, size_t len, void *ud);
	void *ud;

	/* Private. */
	size_t max_content;
	bool no_fast;                  /* tests: always take the json-c path */
	bool usage_seen;               /* the counts came from a usage object (jv_tokens) */
	long fast_chunks;              /* chunks the fast path read (tests, benchmarks) */
	json_tokener *tok;
	struct buf scratch;
};

/*
 * Initialises cs; max_content caps the reply text and each tool call's
 * arguments (0: no cap).  Set on_delta and ud afterwards.  Release with
 * chatstream_release.
 */
void chatstream_init(struct chatstream *cs, size_t max_content);

/*
 * Takes one event of the stream.  Returns 0, or -1 with err filled:
 *   - an error from the server: {"error":{...}} or "error":"text" in the
 *     data, or an event of type "error" (AI_EX_UNAVAILABLE, its message
 *     quoted);
 *   - data that is not a JSON object, or a tool-call index out of range
 *     (AI_EX_DATAERR);
 *   - the reply over max_content (AI_EX_DATAERR);
 *   - on_delta returned non-zero (see on_delta); out of memory (AI_EX_OSERR).
 * "[DONE]" sets done; events after it, events of other types than
 * "message", and data that is only white space are ignored.
 */
int chatstream_event(struct chatstream *cs, const struct sse_event *ev, struct ai_err *err);

/*
 * Convenience: feeds n bytes of the HTTP body to p and every event it
 * completes to cs.  Returns 0, or -1 with err filled by either.
 */
int chatstream_feed(struct chatstream *cs, struct sse_parser *p, const char *bytes,
		    size_t n, struct ai_err *err);

/*
 * Ends the stream (calls sse_finish(p)).  Returns 0 when the reply is
 * complete: "[DONE]" was seen, or a finish_reason was and no event was
 * left half-sent.  Otherwise -1 with AI_EX_TEMPFAIL ("stream ended before
 * the reply was complete"): what was received stays in cs.
 */
int chatstream_end(struct chatstream *cs, struct sse_parser *p, struct ai_err *err);

/*
 * Returns the tool calls in the shape of an OpenAI assistant message,
 * [{"id":..., "type":"function", "function":{"name":..., "arguments":...}}]
 * in index order (unused indexes skipped), or NULL when there are none
 * (or memory ran out).  Returns owned; free with json_object_put.
 */
json_object *chatstream_tool_calls(const struct chatstream *cs);

/* Frees everything cs owns; cs can be used again after chatstream_init. */
void chatstream_release(struct chatstream *cs);

#endif
