/* t_url - credentials in URLs never reach a message. */
#include "net/url.h"
#include "tap.h"

static void test_host(void)
{
	char h[64];

	is_str(url_host("http://127.0.0.1:8080/v1", h, sizeof(h)), "127.0.0.1:8080", "host and port");
	is_str(url_host("https://user:pa:ss@api.example/v1?x=1", h, sizeof(h)), "api.example",
	       "userinfo dropped");
	is_str(url_host("https://a@b@host.example/v1", h, sizeof(h)), "host.example",
	       "the last '@' ends the userinfo");
	is_str(url_host("http://host/p@th", h, sizeof(h)), "host", "an '@' in the path is not userinfo");
	is_str(url_host("user:key@host:1", h, sizeof(h)), "host:1", "a bare authority");
	is_str(url_host("http://[::1]:9/v1", h, sizeof(h)), "[::1]:9", "an IPv6 literal");
	is_str(url_host("http://averyveryverylonghostname.example/", h, 8), "averyve", "truncated to fit");
}

static void test_hostname(void)
{
	char h[16];

	is_str(url_hostname("127.0.0.1:8080", h, sizeof(h)), "127.0.0.1", "the port dropped");
	is_str(url_hostname("user:key@localhost:1", h, sizeof(h)), "localhost", "the userinfo dropped");
	is_str(url_hostname("[::1]:9", h, sizeof(h)), "::1", "an IPv6 literal loses its brackets");
	is_str(url_hostname("host", h, sizeof(h)), "host", "a bare name");
	ok(url_hostname("[::1", h, sizeof(h)) == NULL, "an unclosed bracket");
	ok(url_hostname(":80", h, sizeof(h)) == NULL, "an empty name");
	ok(url_hostname("averyverylonghostname:1", h, sizeof(h)) == NULL, "a name that does not fit");
}

static void test_redact(void)
{
	char s[256];
	char line[] = "* Uses proxy env variable https_proxy == 'bob:pw@proxy:3128'";
	char mail[] = "mail me@example.org or ssh git@host:repo";
	char two[] = "a u:p@h1:1 and v:q@h2";

	is_str(url_redact(line), "* Uses proxy env variable https_proxy == 'proxy:3128'",
	       "a proxy written without a scheme, in a -v line");
	is_str(url_redact(mail), "mail me@example.org or ssh git@host:repo", "an address without ':' before '@' stays");
	is_str(url_redact(two), "a h1:1 and h2", "every bare authority in a text");
	is_str(url_shown("bob:pw@proxy:3128", s, sizeof(s)), "proxy:3128", "a bare proxy value");

	is_str(url_shown("http://u:secret@127.0.0.1:1/v1/chat", s, sizeof(s)), "http://127.0.0.1:1/v1/chat",
	       "one URL");
	is_str(url_shown("https://api.example/v1", s, sizeof(s)), "https://api.example/v1", "no userinfo, unchanged");
	is_str(url_shown("* Uses proxy env variable https_proxy == 'http://bob:pw@proxy:3128'", s, sizeof(s)),
	       "* Uses proxy env variable https_proxy == 'http://proxy:3128'", "inside a -v line");
	is_str(url_shown("a http://x:y@h1/ and https://z@h2?q b", s, sizeof(s)), "a http://h1/ and https://h2?q b",
	       "every URL in a text");
	is_str(url_shown("mail me@example.org", s, sizeof(s)), "mail me@example.org", "an '@' outside a URL stays");
	is_str(url_shown("http://", s, sizeof(s)), "http://", "an empty authority");
	is_str(url_shown("http://u:secret@h/x", s, 11), "http://h/x", "redacted before it is truncated");
	is_str(url_shown("http://u:secret@host.example", s, 10), "http://ho", "truncated after the redaction");
}

int main(void)
{
	test_host();
	test_hostname();
	test_redact();
	return tap_done();
}
