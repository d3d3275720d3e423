/*
 * t_attach.c - attachments made content parts (api/attach.h), without a
 * server: images known by their bytes, text, the caps, the URL kept as it
 * is, --dry-run's shortening, and a refusal told apart from other 4xx.
 */
#include "api/attach.h"
#include "buf.h"
#include "jsonval.h"

#include "tap.h"

static void test_image_type(void)
{
	is_str(attach_image_type("\x89PNG\r\n\x1a\n....", 12), "image/png", "PNG signature");
	is_str(attach_image_type("\xff\xd8\xff\xe0", 4), "image/jpeg", "JPEG signature");
	is_str(attach_image_type("GIF87a..", 8), "image/gif", "GIF87a");
	is_str(attach_image_type("RIFF\x10\0\0\0WEBPVP8 ", 16), "image/webp", "WebP");
	ok(!attach_image_type("RIFF\x10\0\0\0WAVEfmt ", 16), "a RIFF that is not WebP is no image");
	ok(!attach_image_type("\x89PN", 3), "a cut signature is no image");
	ok(!attach_image_type("hello.png", 9), "a name is not a signature");
}

static void test_mem(void)
{
	struct attach_opts o = { .max_each = 64, .max_total = 100 };
	struct attach_set s;
	struct ai_err e;
	json_object *c;
	char big[80];

	attach_set_init(&s);
	ai_err_clear(&e);
	is_int(attach_add_mem(&s, "a.png", "\x89PNG\r\n\x1a\nxy", 10, &o, &e), 0, "an image");
	is_int(attach_add_mem(&s, "n.txt", "caf\xc3\xa9\n", 6, &o, &e), 0, "UTF-8 text");
	is_int(attach_add_mem(&s, "b.bin", "\xff\xfe\0\1", 4, &o, &e), -1, "binary refused");
	is_int(e.code, AI_EX_DATAERR, "binary: 65");
	memset(big, 'a', sizeof(big));
	is_int(attach_add_mem(&s, "big.txt", big, sizeof(big), &o, &e), -1, "over the cap");
	ok(strstr(e.msg, "'big.txt' is 80 bytes, over the cap of 64 bytes") != NULL, "names it: %s", e.msg);
	is_int(attach_add_mem(&s, "t1.txt", big, 60, &o, &e), 0, "60 more bytes: 76 in all");
	is_int(attach_add_mem(&s, "t2.txt", big, 30, &o, &e), -1, "over the total");
	ok(strstr(e.msg, "total cap of 100 bytes") != NULL, "says the total: %s", e.msg);
	is_int(attach_add(&s, "https://example.com/x.jpg", &o, &e), 0, "a URL");
	is_int((int)s.n, 4, "four attachments");
	c = attach_content("look", &s);
	is_str(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	       "[{\"type\":\"text\",\"text\":\"look\"},"
	       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgp4eQ==\"}},"
	       "{\"type\":\"text\",\"text\":\"n.txt:\\ncafé\\n\"},"
	       "{\"type\":\"text\",\"text\":\"t1.txt:\\n" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
	       "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/x.jpg\"}}]",
	       "the parts, in order");
	json_object_put(c);
	c = attach_content("plain", NULL);
	is_str(json_object_get_string(c), "plain", "no attachments: a string");
	json_object_put(c);
	attach_set_release(&s);

	/* A PDF with no way to make text, and as a file part. */
	attach_set_init(&s);
	is_int(attach_add_mem(&s, "d.pdf", "%PDF-1.4 x", 10, &o, &e), -1, "a PDF without pdf_text");
	o.pdf = ATTACH_PDF_FILE;
	is_int(attach_add_mem(&s, "dir/d.pdf", "%PDF-1.4 x", 10, &o, &e), 0, "a PDF as a file");
	is_str(json_object_to_json_string_ext(json_object_array_get_idx(s.parts, 0),
					      JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	       "{\"type\":\"file\",\"file\":{\"filename\":\"d.pdf\",\"file_data\":"
	       "\"data:application/pdf;base64,JVBERi0xLjQgeA==\"}}", "the file part");
	attach_set_release(&s);
}

static void test_shorten(void)
{
	char *t;

	t = attach_shorten("{\"url\":\"data:image/png;base64,AAAABBBBCCCCDDDDEEEEFFFF\"}");
	is_str(t, "{\"url\":\"data:image/png;base64,AAAABBBBCCCCDDDD... (24 base64 characters)\"}",
	       "a long run cut");
	free(t);
	t = attach_shorten("x;base64,AB\\/C\" and ;base64,short\"");
	is_str(t, "x;base64,AB\\/C\" and ;base64,short\"", "short runs kept whole");
	free(t);
	t = attach_shorten("a;base64,\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\"");
	is_str(t, "a;base64,\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/\\/... (18 base64 characters)\"",
	       "an escaped slash counts as one character and is never split");
	free(t);
}

static void test_refused(void)
{
	struct ai_err e;

	ai_errf(&e, AI_EX_UNAVAILABLE, "the server answered 400: image_url is not supported");
	e.status = 400;
	ok(attach_refused(&e), "a 400 naming image_url");
	is_int(e.code, AI_EX_DATAERR, "becomes 65");
	ok(strstr(e.msg, "does not take these attachments") && strstr(e.msg, "image_url is not"),
	   "one message, with the server's: %s", e.msg);
	ai_errf(&e, AI_EX_UNAVAILABLE, "the server answered 400: no Vision here");
	e.status = 400;
	ok(attach_refused(&e), "vision, in any case");
	ai_errf(&e, AI_EX_UNAVAILABLE, "the server answered 400: bad temperature");
	e.status = 400;
	ok(!attach_refused(&e), "another 400 stays");
	is_int(e.code, AI_EX_UNAVAILABLE, "and keeps its code");
	ai_errf(&e, AI_EX_TEMPFAIL, "the server answered 503: image service down");
	e.status = 503;
	ok(!attach_refused(&e), "a 5xx is no refusal");
}

static void test_kept(void)
{
	json_object *m = json_tokener_parse("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
		"{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
		"{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":\"data:x\"}}]}");
	json_object *plain = json_tokener_parse("{\"role\":\"assistant\",\"content\":\"ok\"}");
	json_object *k;

	k = attach_kept(m);
	is_str(jv_str(k, "content"), "hi\n\n[image attached]\n\n[file attached: a.pdf]", "parts kept as text");
	is_str(jv_str(k, "role"), "user", "the role stays");
	json_object_put(k);
	k = attach_kept(plain);
	ok(k == plain, "a plain message is itself");
	json_object_put(k);
	json_object_put(m);
	json_object_put(plain);
}

int main(void)
{
	test_kept();
	test_image_type();
	test_mem();
	test_shorten();
	test_refused();
	return tap_done();
}
