#include "agent/text.h"
#include "buf.h"
#include "utf8.h"

json_object *text_json(const char *s, size_t n, enum text_nul nul)
{
	struct buf b;
	json_object *j = NULL;
	size_t ok;

	if (!s)
		return json_object_new_string("");
	if (n > INT_MAX)        /* json-c counts in int */
		n = INT_MAX;
	if (utf8_valid_prefix(s, n) == n)
		return json_object_new_string_len(s, (int)n);
	buf_init(&b, 0);
	while (n) {
		/* utf8_valid_prefix stops at a NUL too, valid or not. */
		ok = utf8_valid_prefix(s, n);
		if (buf_add(&b, s, ok))
			goto out;
		s += ok;
		n -= ok;
		if (!n)
			break;
		if (*s == '\0' && nul == TEXT_NUL_KEEP ? buf_add(&b, "\0", 1)
						       : buf_addstr(&b, "\xef\xbf\xbd"))
			goto out;
		s++;
		n--;
	}
	j = json_object_new_string_len(b.data ? b.data : "", (int)b.len);
out:
	buf_release(&b);
	return j;
}
