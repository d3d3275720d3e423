#include "net/url.h"

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

const char *url_hostname(const char *authority, char *out, size_t n)
{
	const char *end, *at = strrchr(authority, '@');
	size_t l;

	if (at)
		authority = at + 1;
	if (*authority == '[') {
		authority++;
		if (!(end = strchr(authority, ']')))
			return NULL;
	} else {
		end = authority + strcspn(authority, ":");
	}
	l = (size_t)(end - authority);
	if (l == 0 || l >= n)
		return NULL;
	memcpy(out, authority, l);
	out[l] = '\0';
	return out;
}

/*
 * A proxy may be written without a scheme ("user:pass@proxy:3128", as
 * http_proxy often is), and libcurl's -v lines quote it so: a word whose
 * part before an '@' holds a ':' and no '/' is such an authority.  An
 * e-mail address (no ':') is left alone.
 */
static void redact_bare(char *s)
{
	static const char stops[] = " \t\r\n\"'<>()[]`=,;";
	char *at = s;

	while ((at = strchr(at, '@')) != NULL) {
		char *w = at;
		bool colon = false, slash = false;

		while (w > s && !strchr(stops, w[-1])) {
			w--;
			colon |= *w == ':';
			slash |= *w == '/';
		}
		if (colon && !slash && w < at) {
			memmove(w, at + 1, strlen(at + 1) + 1);
			at = w;
		} else {
			at++;
		}
	}
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
	redact_bare(s);
	return s;
}

const char *url_shown(const char *url, char *out, size_t n)
{
	size_t o = 0;

	/* A proxy without a scheme is an authority from its first byte. */
	if (!strstr(url, "://"))
		url += userinfo_len(url, authority_len(url));
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
