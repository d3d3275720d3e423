/* t_shcmd.c - a model's reply reduced to one shell command, or refused. */
#include "shcmd.h"
#include "buf.h"
#include "tap.h"

/* The command shcmd_clean makes of reply, or NULL when it refuses it (with err's code then 65). */
static const char *clean(const char *reply, struct buf *b, struct ai_err *e)
{
	ai_err_clear(e);
	if (shcmd_clean(reply, b, e))
		return e->code == AI_EX_DATAERR ? NULL : "wrong code";
	return b->data;
}

int main(void)
{
	struct buf b = BUF_INIT;
	struct ai_err e;
	static const struct { const char *reply, *want, *what; } cases[] = {
		{ "ls -la", "ls -la", "a bare command is itself" },
		{ "  ls -la\n\n", "ls -la", "white space at both ends goes" },
		{ "```bash\nls -la\n```", "ls -la", "a fence with a language" },
		{ "Here:\n```\nls -la\n```\nThat lists them.", "ls -la", "prose around a fence goes" },
		{ "~~~\nls\n~~~", "ls", "a tilde fence" },
		{ "```sh\nls", "ls", "an unclosed fence ends at the end" },
		{ "$ du -sh *", "du -sh *", "a prompt sign" },
		{ "`ls -1`", "ls -1", "backticks around the line" },
		{ "echo `date` now", "echo `date` now", "backticks inside stay" },
		{ "`a` and `b`", "`a` and `b`", "two code spans are not one wrapper" },
		{ "printf 'a\tb'", "printf 'a\tb'", "a tab is visible enough" },
		{ "ls\r\n", "ls", "a CRLF ending" },
		{ "echo h\xc3\xa9llo", "echo h\xc3\xa9llo", "UTF-8 passes" },
		{ "cd /tmp\nls", NULL, "two lines" },
		{ "```\nls\n```\n```\nrm x\n```", NULL, "two code blocks" },
		{ "", NULL, "nothing" },
		{ "```\n```", NULL, "an empty fence" },
		{ "``", NULL, "empty backticks" },
		{ "ls \x1b[2J", NULL, "an escape sequence" },
		{ "ls\rrm -rf x", NULL, "a carriage return mid-line" },
		{ "ls \x7f", NULL, "DEL" },
		{ "echo \xc2\x85", NULL, "a C1 control" },
		{ "ls \xe2\x80\xae-l", NULL, "a right-to-left override" },
		{ "rm\xe2\x80\x8b -rf x", NULL, "a zero-width space" },
		{ "\xef\xbb\xbfls", NULL, "a byte-order mark" },
		{ "echo \xff", NULL, "a byte that is not UTF-8" },
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(cases); i++)
		is_str(clean(cases[i].reply, &b, &e), cases[i].want, "%s", cases[i].what);

	/* A refusal leaves the command as it was: a revision that fails keeps the last one. */
	clean("ls", &b, &e);
	clean("a\nb", &b, &e);
	is_str(b.data, "ls", "a refusal leaves cmd unchanged");
	ok(strstr(e.msg, "2 lines") != NULL, "the refusal says why");

	/* The excerpt in a refusal shows no invisible format character. */
	clean("x\n\xe2\x80\xae y", &b, &e);
	ok(!strstr(e.msg, "\xe2\x80\xae") && strstr(e.msg, "\xef\xbf\xbd"),
	   "an override in the excerpt becomes U+FFFD");
	buf_release(&b);
	return tap_done();
}
