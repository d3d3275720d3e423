#include "utf8.h"

size_t utf8_valid_prefix(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp;

		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		if (c == 0)
			return i;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (n - i < len)
			return i;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return i;
		i += len;
	}
	return n;
}

size_t utf8_cut(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = n;

	/* Step back over continuation bytes to the lead byte of the last character. */
	while (i > 0 && (s[i - 1] & 0xc0) == 0x80 && n - i < 3)
		i--;
	if (i == 0)
		return 0;
	{
		unsigned c = s[i - 1];
		size_t want = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if (n - (i - 1) >= want)
			return n;
		return i - 1;
	}
}

void utf8_where(const char *s, size_t off, size_t *line, size_t *col)
{
	size_t l = 1, c = 1;

	for (size_t i = 0; i < off; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

int utf8_add_text(struct buf *b, const char *s, size_t n)
{
	static const char repl[] = "\xEF\xBF\xBD";   /* U+FFFD */
	const char *nul;

	while (n && (nul = memchr(s, '\0', n)) != NULL) {
		size_t k = (size_t)(nul - s);

		if (buf_add(b, s, k) || buf_add(b, repl, 3))
			return -1;
		s += k + 1;
		n -= k + 1;
	}
	return n ? buf_add(b, s, n) : 0;
}

/*
 * What binary input looks like, by its first bytes, and what to do about
 * it.  Looked at only when the input is not UTF-8 text already, so a text
 * that happens to start with "BZh" or "GIF8" stays text.
 */
static const struct {
	const char *magic;
	size_t len;
	const char *what, *hint;
} binary_kinds[] = {
	{ "\x89PNG\r\n\x1a\n", 8, "a PNG image", "images are not text" },
	{ "\xff\xd8\xff", 3, "a JPEG image", "images are not text" },
	{ "GIF8", 4, "a GIF image", "images are not text" },
	{ "%PDF-", 5, "a PDF document", "extract its text first: pdftotext FILE -" },
	{ "\x1f\x8b", 2, "gzip data", "decompress it first: zcat FILE" },
	{ "\x28\xb5\x2f\xfd", 4, "zstd data", "decompress it first: zstdcat FILE" },
	{ "\xfd" "7zXZ", 6, "xz data", "decompress it first: xzcat FILE" },
	{ "BZh", 3, "bzip2 data", "decompress it first: bzcat FILE" },
	{ "PK\x03\x04", 4, "a zip archive", "extract the text first: unzip -p FILE" },
	{ "\x7f" "ELF", 4, "an ELF executable", "it is not text" },
	{ "SQLite format 3", 16, "an SQLite database", "query it first: sqlite3 FILE .dump" },
};

/* Says what known binary data p[0..n) looks like, when it looks like any. */
static int check_magic(const char *name, const char *p, size_t n, struct ai_err *err)
{
	for (size_t i = 0; i < AI_ARRAY_LEN(binary_kinds); i++)
		if (n >= binary_kinds[i].len && !memcmp(p, binary_kinds[i].magic, binary_kinds[i].len))
			return ai_errf(err, AI_EX_DATAERR, "binary input: '%s' looks like %s; %s",
				       name, binary_kinds[i].what, binary_kinds[i].hint);
	return 0;
}

int utf8_check_input(const char *name, const char *s, size_t n, struct ai_err *err)
{
	size_t ok, line, col;

	if (!n)
		return 0;       /* nothing read: s may be NULL */
	ok = utf8_valid_prefix(s, n);
	if (ok == n)
		return 0;
	if (check_magic(name, s, n, err))
		return -1;
	utf8_where(s, ok, &line, &col);
	if (s[ok] == '\0')
		return ai_errf(err, AI_EX_DATAERR,
			       "binary input: '%s' has a NUL byte at line %zu, column %zu; it is not text",
			       name, line, col);
	return ai_errf(err, AI_EX_DATAERR,
		       "'%s' is not valid UTF-8 at line %zu, column %zu; convert it first (iconv -f LATIN1 -t UTF-8)",
		       name, line, col);
}
