#ifndef AI_URL_H
#define AI_URL_H
/*
 * url.h - URLs as the programs show them: without credentials.
 *
 * A base URL or a proxy may carry "user:password@" (RFC 3986 userinfo).
 * libcurl sends it where it belongs; nothing else may show it: no error
 * message, --dry-run line, -v line or ledger row.  Every URL or host that
 * reaches a message or an output goes through one of these functions.
 */
#include "ai.h"

/*
 * Writes the host[:port] of url ("scheme://[userinfo@]host[:port]/...")
 * into out (n > 0 bytes, truncated to fit), the userinfo dropped, and
 * returns out.  A string without "://" is taken as an authority
 * ("user:key@host" gives "host").
 */
const char *url_host(const char *url, char *out, size_t n);

/*
 * Writes the bare host name of an authority "[userinfo@]host[:port]" (as
 * url_host gives it; "[v6addr]:port" loses its brackets) into out (n
 * bytes), and returns out; NULL when the name is empty or does not fit.
 */
const char *url_hostname(const char *authority, char *out, size_t n);

/*
 * Drops the userinfo of every URL ("scheme://user:pass@host" becomes
 * "scheme://host") in the NUL-terminated text s, in place, and that of a
 * bare authority ("user:pass@proxy:3128", as a proxy may be written);
 * returns s.
 * The rest of the text is left as it was, so it serves for a whole
 * message or -v line as well as for a single URL.
 */
char *url_redact(char *s);

/* Copies url into out (n > 0 bytes, truncated to fit) and redacts it there; returns out.
 * A url without "://" is taken as an authority ("user:pass@proxy:3128" gives "proxy:3128"). */
const char *url_shown(const char *url, char *out, size_t n);

#endif
