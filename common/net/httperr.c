/*
 * httperr.c - the texts of the errors real servers send that no retry can
 * fix.  Each entry was seen from the server named (or is in its source);
 * its sample is the body that server sends, and tests/unit/t_http.c checks
 * every entry against its own sample.  Add a row when a server is found
 * labelling a permanent error as temporary; a text must be specific enough
 * that no temporary error of any server contains it.
 */
#include "net/httperr.h"

#include <ctype.h>

#define SCAN_MAX (64u << 10)

static const struct http_known_error known[] = {
	/*
	 * llama-server embeds a whole input in one physical batch (-ub, 512
	 * tokens by default) and answers 500 to a larger one
	 * (tests/fixtures/compat/err-embd-too-large).
	 */
	{ "llama.cpp", "input is too large to process", HTTP_ERR_TOO_LARGE,
	  "{\"error\":{\"code\":500,\"message\":\"input is too large to process. increase the "
	  "physical batch size\",\"type\":\"server_error\"}}" },
	/* Newer builds: a prompt over the context (-c), 400 with type exceed_context_size_error. */
	{ "llama.cpp", "exceeds the available context size", HTTP_ERR_TOO_LARGE,
	  "{\"error\":{\"code\":400,\"message\":\"the request exceeds the available context size, "
	  "try increasing it\",\"type\":\"exceed_context_size_error\"}}" },
	/* A body its JSON parser refuses, or lacking a field: 500 (new-err-badjson, old-err-nomsg). */
	{ "llama.cpp", "[json.exception.", HTTP_ERR_PERMANENT,
	  "{\"error\":{\"code\":500,\"message\":\"[json.exception.out_of_range.403] key 'messages' "
	  "not found\",\"type\":\"server_error\"}}" },
	/* Embeddings asked of a server started without --embeddings: 501. */
	{ "llama.cpp", "does not support embeddings", HTTP_ERR_PERMANENT,
	  "{\"error\":{\"code\":501,\"message\":\"This server does not support embeddings. Start it "
	  "with `--embeddings`\",\"type\":\"not_supported_error\"}}" },
	/* OpenAI (400, code context_length_exceeded); vLLM answers the same words. */
	{ "OpenAI", "maximum context length", HTTP_ERR_TOO_LARGE,
	  "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens, however "
	  "you requested 9000 tokens (9000 in your messages). Please reduce the length of the "
	  "messages.\",\"type\":\"invalid_request_error\",\"param\":\"messages\","
	  "\"code\":\"context_length_exceeded\"}}" },
	{ "OpenAI", "context_length_exceeded", HTTP_ERR_TOO_LARGE,
	  "{\"error\":{\"message\":\"Your input exceeds the context window of this model. Please "
	  "adjust your input and try again.\",\"type\":\"invalid_request_error\",\"param\":\"input\","
	  "\"code\":\"context_length_exceeded\"}}" },
	/* A key without credit: 429, and no wait brings credit back. */
	{ "OpenAI", "insufficient_quota", HTTP_ERR_PERMANENT,
	  "{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and "
	  "billing details.\",\"type\":\"insufficient_quota\",\"param\":null,"
	  "\"code\":\"insufficient_quota\"}}" },
	/* vLLM's other wording, for a prompt over --max-model-len (400). */
	{ "vLLM", "longer than the maximum model length", HTTP_ERR_TOO_LARGE,
	  "{\"object\":\"error\",\"message\":\"The decoder prompt (length 9000) is longer than the "
	  "maximum model length of 8192. Make sure that `max_model_len` is no smaller than the "
	  "number of text tokens.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}" },
	/* Ollama's /api/embed with truncate false (older: "input length exceeds maximum context length"). */
	{ "Ollama", "input length exceeds", HTTP_ERR_TOO_LARGE,
	  "{\"error\":\"the input length exceeds the context length\"}" },
	/* A model larger than the machine: 500 until someone frees memory or picks another. */
	{ "Ollama", "model requires more system memory", HTTP_ERR_PERMANENT,
	  "{\"error\":\"model requires more system memory (12.5 GiB) than is available (7.1 GiB)\"}" },
};

const struct http_known_error *http_known_errors(size_t *n)
{
	*n = AI_ARRAY_LEN(known);
	return known;
}

/* Whether needle (NUL-terminated, lowercase-insensitive) occurs in p[0..n). */
static bool contains(const char *p, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; m && i + m <= n; i++) {
		size_t j = 0;

		while (j < m && tolower((unsigned char)p[i + j]) == tolower((unsigned char)needle[j]))
			j++;
		if (j == m)
			return true;
	}
	return false;
}

enum http_verdict http_error_verdict(long status, const char *body, size_t len,
				     const char **family)
{
	if (family)
		*family = NULL;
	if (status < 400 || !body)
		return HTTP_ERR_UNKNOWN;
	if (len > SCAN_MAX)
		len = SCAN_MAX;
	for (size_t i = 0; i < AI_ARRAY_LEN(known); i++)
		if (contains(body, len, known[i].text)) {
			if (family)
				*family = known[i].family;
			return known[i].verdict;
		}
	return HTTP_ERR_UNKNOWN;
}
