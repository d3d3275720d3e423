/*
 * fuzz_shcmd.c - libFuzzer harness for ai-cmd's reply cleaning.
 *
 * The input, cut at its first NUL, is the model's reply.  shcmd_clean
 * must never crash or overrun; a success gives one non-empty line of
 * valid UTF-8 that is a piece of the reply as it was sent (cleaning only
 * narrows, it never writes a byte the model did not) and holds no
 * control or invisible format character; a failure is a data error with
 * a message and leaves the previous command untouched.  Anything else
 * calls abort().
 */
#include "shcmd.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *reply = malloc(size + 1);
	struct buf cmd = BUF_INIT;
	struct ai_err err;

	check(reply != NULL);
	memcpy(reply, data, size);
	reply[size] = '\0';
	check(buf_addstr(&cmd, "before") == 0);
	memset(&err, 0, sizeof(err));
	if (shcmd_clean(reply, &cmd, &err) == 0) {
		const unsigned char *u = (const unsigned char *)cmd.data;

		check(err.code == 0);
		check(cmd.len > 0 && strlen(cmd.data) == cmd.len);
		check(utf8_valid_prefix(cmd.data, cmd.len) == cmd.len);
		check(strstr(reply, cmd.data) != NULL);
		for (size_t i = 0; i < cmd.len; i++) {
			check(u[i] >= 0x20 || u[i] == '\t');
			check(u[i] != 0x7f);
			/* U+0080..U+009F are C2 80..C2 9F; the format characters start E2 80 8B.. and EF BB BF. */
			check(!(u[i] == 0xc2 && i + 1 < cmd.len && u[i + 1] <= 0x9f));
			check(!(u[i] == 0xef && i + 2 < cmd.len && u[i + 1] == 0xbb && u[i + 2] == 0xbf));
		}
		check(!strstr(cmd.data, "\xe2\x80\xae") && !strstr(cmd.data, "\xe2\x80\x8b"));
	} else {
		check(err.code == AI_EX_DATAERR && err.msg[0]);
		check(!strcmp(cmd.data, "before"));
	}
	buf_release(&cmd);
	free(reply);
	return 0;
}
