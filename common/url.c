#include "url.h"

/* Where the authority that starts at s ends: at the path, query, fragment, or text around a URL. */
static size_t authority_len(const char *s)
{
	return strcspn(s, "/?#\\ \t\r\n\"'<>[]`");
}

/* The userinfo's length including its '@' (the last one, as RFC 3986 parses), or 0. */
static size_t userinfo_len(const char *auth, size_t n)
{
	for (size_t i = n; i > 0; i--)
		if (auth[i - 1] == '@')
			return i;
	return 0;
}

const char *url_host(const char *url, char *out, size_t n)
{
	const char *s = strstr(url, "://");
	size_t l, u;

	s = s ? s + 3 : url;
	l = strcspn(s, "/?#");
	u = userinfo_len(s, l);
	s += u;
	l -= u;
	if (l >= n)
		l = n - 1;
	memcpy(out, s, l);
	out[l] = '\0';
	return out;
}

char *url_redact(char *s)
{
	char *p = s;

	while ((p = strstr(p, "://")) != NULL) {
		char *a = p + 3;
		size_t u = userinfo_len(a, authority_len(a));

		if (u)
			memmove(a, a + u, strlen(a + u) + 1);
		p = a;
	}
	return s;
}

const char *url_shown(const char *url, char *out, size_t n)
{
	size_t o = 0;

	/* Redacted while copied, so a truncation can never keep half a password. */
	while (*url && o + 1 < n) {
		if (!strncmp(url, "://", 3)) {
			size_t k = 3 < n - 1 - o ? 3 : n - 1 - o;

			memcpy(out + o, url, k);
			o += k;
			url += 3;
			url += userinfo_len(url, authority_len(url));
			continue;
		}
		out[o++] = *url++;
	}
	out[o] = '\0';
	return out;
}
