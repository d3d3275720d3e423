/*
 * shcmd.c - a model's reply reduced to the one shell command it holds
 * (see shcmd.h).
 */
#include "shcmd.h"
#include "utf8.h"

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

void shcmd_trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

/* True when the line [s, e) opens or closes a Markdown code fence. */
static bool fence_line(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	return e - s >= 3 && (!strncmp(s, "```", 3) || !strncmp(s, "~~~", 3));
}

/* The end of the line that starts at s, before its newline. */
static const char *line_end(const char *s, const char *e)
{
	const char *nl = memchr(s, '\n', (size_t)(e - s));

	return nl ? nl : e;
}

/* The start of the first fence line in [p, e), or NULL. */
static const char *next_fence(const char *p, const char *e)
{
	for (const char *le; p < e; p = le + 1) {
		le = line_end(p, e);
		if (fence_line(p, le))
			return p;
	}
	return NULL;
}

/*
 * A code point that would make the command on the screen differ from the
 * command that runs: C0 controls but tab, DEL, C1 controls, and the
 * invisible format characters that reorder or hide text (zero-width
 * spaces and joiners, the bidirectional embeddings, overrides and
 * isolates, the byte-order mark): the "Trojan Source" characters.
 */
static bool hidden_char(uint32_t cp)
{
	return (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f) ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff;
}

/* Decodes the valid UTF-8 sequence at *p and advances past it. */
static uint32_t next_cp(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;
	int n;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	n = s[0] >= 0xf0 ? 3 : s[0] >= 0xe0 ? 2 : 1;
	cp = s[0] & (0x3f >> n);
	for (int i = 1; i <= n; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	*p = s + n + 1;
	return cp;
}

/*
 * The reply cut short, for a message that refuses it.  The message is
 * printed through the terminal neutraliser (cli.h), which shows control
 * characters but not the invisible format characters: those become U+FFFD
 * here.  Borrowed from b.
 */
static const char *excerpt(const char *s, size_t n, struct buf *b)
{
	const unsigned char *u = (const unsigned char *)s, *end;
	size_t cut = n < 160 ? n : 160;

	buf_reset(b);
	cut = utf8_valid_prefix(s, cut);
	end = u + utf8_cut(s, cut);
	while (u < end) {
		const unsigned char *from = u;
		uint32_t cp = next_cp(&u);

		if (cp >= 0x200b && hidden_char(cp))
			buf_addstr(b, "\xef\xbf\xbd");
		else
			buf_add(b, from, (size_t)(u - from));
	}
	if (end - (const unsigned char *)s < (ptrdiff_t)n)
		buf_addstr(b, "...");
	return b->data ? b->data : "";
}

int shcmd_clean(const char *reply, struct buf *cmd, struct ai_err *err)
{
	const char *s = reply, *e = reply + strlen(reply), *p, *le, *open;
	struct buf ex = BUF_INIT;
	size_t lines = 0;
	int rc = 0;

	open = next_fence(s, e);
	if (open) {
		/* The fenced block: from the line after the fence to the closing one, or the end. */
		const char *close;

		s = line_end(open, e);
		s += s < e;
		close = next_fence(s, e);
		if (close) {
			p = line_end(close, e);
			if (next_fence(p + (p < e), e)) {
				rc = ai_errf(err, AI_EX_DATAERR, "the model answered with more than one code "
					     "block, not one command: %s", excerpt(reply, strlen(reply), &ex));
				goto out;
			}
			e = close;
		}
	}
	shcmd_trim(&s, &e);
	for (p = s; p < e; p = le + 1) {
		const char *a = p;

		le = line_end(p, e);
		shcmd_trim(&a, &le);
		lines += a < le;
		le = line_end(p, e);
	}
	if (lines > 1) {
		rc = ai_errf(err, AI_EX_DATAERR, "the model answered %zu lines, not one command: %s", lines,
			     excerpt(s, (size_t)(e - s), &ex));
		goto out;
	}
	if (e - s >= 2 && !strncmp(s, "$ ", 2))
		s += 2;
	if (e - s >= 2 && *s == '`' && e[-1] == '`' && !memchr(s + 1, '`', (size_t)(e - s - 2))) {
		s++;
		e--;
	}
	shcmd_trim(&s, &e);
	if (s == e) {
		rc = ai_errf(err, AI_EX_DATAERR, "the model answered no command");
		goto out;
	}
	if (utf8_valid_prefix(s, (size_t)(e - s)) != (size_t)(e - s)) {
		rc = ai_errf(err, AI_EX_DATAERR, "the model's command is not UTF-8 text: %s",
			     excerpt(s, (size_t)(e - s), &ex));
		goto out;
	}
	for (const unsigned char *u = (const unsigned char *)s; u < (const unsigned char *)e;) {
		uint32_t cp = next_cp(&u);

		if (hidden_char(cp)) {
			/* Not quoted: the character would act in the message too. */
			rc = ai_errf(err, AI_EX_DATAERR, "the model's command holds U+%04X, a character "
				     "that would not show as what runs", (unsigned)cp);
			goto out;
		}
	}
	buf_reset(cmd);
	if (buf_add(cmd, s, (size_t)(e - s)))
		rc = ai_errf(err, AI_EX_OSERR, "out of memory");
out:
	buf_release(&ex);
	return rc;
}

