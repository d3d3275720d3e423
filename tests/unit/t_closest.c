/* t_closest.c - "did you mean": the nearest word, and no guess when none is near. */
#include "closest.h"
#include "tap.h"

int main(void)
{
	static const char *const cmds[] = { "submit", "status", "results", "wait", "list", "cancel", "resume" };
	static const char *const keys[] = { "model", "base_url", "api_key_cmd", "temperature", "max_tokens" };
	size_t n = AI_ARRAY_LEN(cmds);

	is_str(closest("stauts", cmds, n, 2), "status", "a swap of two letters is one edit");
	is_str(closest("resluts", cmds, n, 2), "results", "a swap inside a longer word");
	is_str(closest("lsit", cmds, n, 2), "list", "a short word with a swap");
	is_str(closest("cancle", cmds, n, 2), "cancel", "cancle");
	is_str(closest("submitt", cmds, n, 2), "submit", "one letter too many");
	is_str(closest("status", cmds, n, 2), "status", "the word itself");
	is_str(closest("wiat", cmds, n, 2), "wait", "wiat");
	ok(closest("xyz", cmds, n, 2) == NULL, "nothing near: no guess");
	ok(closest("at", cmds, n, 2) == NULL, "a two-letter word is not turned into wait");
	ok(closest("", cmds, n, 2) == NULL, "the empty word");
	ok(closest("report.jsonl", cmds, n, 2) == NULL, "a file name is no command");
	is_str(closest("temprature", keys, AI_ARRAY_LEN(keys), 2), "temperature", "a missing letter in a key");
	is_str(closest("base-url", keys, AI_ARRAY_LEN(keys), 2), "base_url", "a dash for an underscore");
	is_str(closest("max_token", keys, AI_ARRAY_LEN(keys), 2), "max_tokens", "max_token");
	ok(closest("colour", keys, AI_ARRAY_LEN(keys), 2) == NULL, "no key near colour");
	{
		char longw[200];

		memset(longw, 'a', sizeof(longw) - 1);
		longw[sizeof(longw) - 1] = '\0';
		ok(closest(longw, cmds, n, 2) == NULL, "a word past the length limit is not compared");
	}
	return tap_done();
}
