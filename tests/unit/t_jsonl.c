/* Unit tests of jsonl.c and journal.c: lines, items, templates, output lines, id sets, the journal. */
#include "ai.h"
#include "batch/journal.h"
#include "batch/jsonl.h"
#include "tap.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

static int pipe_of(const char *s, size_t n)
{
	char path[] = "/tmp/t_jsonl.XXXXXX";
	int fd = mkstemp(path);

	unlink(path);
	if (write(fd, s, n) != (ssize_t)n)
		return -1;
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static void test_reader(void)
{
	static const char in[] = "one\r\n\n  \r\ntwo\n0123456789abcdef\nlast";
	struct jsonl_reader r;
	struct ai_err e;
	const char *l;
	size_t n;
	bool big;
	int fd = pipe_of(in, sizeof(in) - 1);

	ai_err_clear(&e);
	ok(!jsonl_reader_init(&r, fd, 10, &e), "reader init");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 1, "a line");
	is_str(l, "one", "CRLF read as LF");
	is_int(r.lineno, 1, "line 1");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 1, "blank lines skipped");
	is_str(l, "two", "the next line");
	is_int(r.lineno, 4, "blank lines counted");
	is_int(r.offset, 10, "its offset");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 1, "an over-long line");
	ok(big && n == 0, "reported as too long, without its text");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 1, "an unterminated last line");
	ok(!big && !strcmp(l, "last"), "is read");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 0, "then the end");
	is_int(jsonl_next(&r, &l, &n, &big, &e), 0, "and it stays the end");
	jsonl_reader_release(&r);
	close(fd);
}

static void item(const char *line, const struct jsonl_opts *o, struct jsonl_item *it)
{
	struct ai_err e;

	ai_err_clear(&e);
	if (jsonl_parse(line, strlen(line), false, 7, o, it, &e))
		ok(0, "parse '%s'", line);
}

static const char *user(const struct jsonl_item *it)
{
	size_t n = it->messages ? json_object_array_length(it->messages) : 0;
	json_object *m = n ? json_object_array_get_idx(it->messages, n - 1) : NULL, *c;

	return m && json_object_object_get_ex(m, "content", &c) ? json_object_get_string(c) : NULL;
}

static void test_items(void)
{
	struct jsonl_opts o = { .mode = JSONL_JSON };
	struct jsonl_item it;

	item("\"hello\"", &o, &it);
	ok(!it.bad, "a string is an item");
	is_str(it.key, "7", "without an id it gets its line number");
	is_str(user(&it), "hello", "the string is the text");
	jsonl_item_release(&it);

	item("{\"id\":\"a\",\"text\":\"t\",\"label\":\"x\"}", &o, &it);
	ok(!it.bad && !it.extra, "a text item sends no other fields");
	is_str(it.key, "a", "its id");
	jsonl_item_release(&it);

	item("{\"id\":42,\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"model\":\"m\","
	     "\"stream\":true,\"temperature\":0}", &o, &it);
	ok(!it.bad, "a chat request");
	is_str(it.key, "42", "an integer id as text");
	is_str(it.model, "m", "its model");
	ok(it.extra && !json_object_object_get_ex(it.extra, "stream", NULL) &&
	   json_object_object_get_ex(it.extra, "temperature", NULL), "other fields pass, stream does not");
	jsonl_item_release(&it);

	item("{\"id\":\"x\"}", &o, &it);
	ok(it.bad && strstr(it.error, "no text"), "no text: %s", it.error);
	is_str(it.key, "x", "a bad item keeps its id");
	jsonl_item_release(&it);

	item("{\"id\":1.5,\"text\":\"a\"}", &o, &it);
	ok(it.bad && !strcmp(it.key, "7"), "a fractional id is refused, the line number used");
	jsonl_item_release(&it);
	item("{\"id\":\"\",\"text\":\"a\"}", &o, &it);
	ok(it.bad, "an empty id is refused");
	jsonl_item_release(&it);
	item("{\"id\":\"a\",\"text\":\"\"}", &o, &it);
	ok(it.bad, "an empty text is refused");
	jsonl_item_release(&it);
	item("{\"id\":1} x", &o, &it);
	ok(it.bad && strstr(it.error, "is not JSON: unexpected 'x' at column 10, after the value"),
	   "trailing text: %s", it.error);
	jsonl_item_release(&it);
	item("not json", &o, &it);
	ok(it.bad && strstr(it.error, "unexpected 'o' at column 2; --lines reads plain text") &&
	   !strstr(it.error, "null expected"), "prose, in our words: %s", it.error);
	jsonl_item_release(&it);
	item("{\"text\":\"\xc3\xa9\" 1}", &o, &it);
	ok(it.bad && strstr(it.error, "at column 13"), "columns count characters: %s", it.error);
	jsonl_item_release(&it);
	item("{\"id\":1", &o, &it);
	ok(it.bad && strstr(it.error, "ends too early"), "cut short: %s", it.error);
	jsonl_item_release(&it);
	item("[1]", &o, &it);
	ok(it.bad && strstr(it.error, "array"), "an array: %s", it.error);
	jsonl_item_release(&it);
	item("\"\xff\"", &o, &it);
	ok(it.bad && strstr(it.error, "UTF-8"), "invalid UTF-8: %s", it.error);
	jsonl_item_release(&it);
	{
		struct ai_err e;

		ai_err_clear(&e);
		jsonl_parse("", 0, true, 3, &o, &it, &e);
		ok(it.bad && strstr(it.error, "longer than"), "too long: %s", it.error);
		jsonl_item_release(&it);
	}

	o.tmpl = "Rate {{ text }} in {{lang}} ({{n}})";
	o.system = "sys";
	item("{\"id\":\"r\",\"text\":\"this\",\"lang\":\"en\",\"n\":[1]}", &o, &it);
	is_str(user(&it), "Rate this in en ([1])", "template: strings as is, others as JSON");
	is_int(json_object_array_length(it.messages), 2, "the system message first");
	jsonl_item_release(&it);
	item("{\"id\":\"r\",\"text\":\"this\"}", &o, &it);
	ok(it.bad && strstr(it.error, "'lang'"), "a missing field: %s", it.error);
	jsonl_item_release(&it);

	o.mode = JSONL_LINES;
	o.tmpl = NULL;
	o.system = NULL;
	item("{\"not\": \"json to me\"}", &o, &it);
	is_str(user(&it), "{\"not\": \"json to me\"}", "line mode: the line is the text");
	is_str(it.key, "7", "line mode: the line number");
	jsonl_item_release(&it);
}

static void test_lines(void)
{
	struct buf b;
	json_object *id = json_object_new_string("a\"b");
	struct jsonl_answer a = {
		.output = "out \"q\"", .finish_reason = "stop", .prompt_tokens = 3, .completion_tokens = 4,
		.model = "m", .ms = 12.6
	};
	json_object *calls = json_tokener_parse("[{\"id\":\"c1\",\"type\":\"function\","
						"\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]");

	buf_init(&b, 0);
	ok(!jsonl_ok_line(&b, id, &a), "ok line");
	is_str(b.data, "{\"id\":\"a\\\"b\",\"output\":\"out \\\"q\\\"\",\"finish_reason\":\"stop\","
	       "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},\"model\":\"m\",\"cached\":false,"
	       "\"ms\":13}", "its text");
	buf_reset(&b);
	a.output = "";
	a.finish_reason = NULL;
	a.tool_calls = calls;
	a.prompt_tokens = -1;
	ok(!jsonl_ok_line(&b, id, &a), "ok line with tool calls");
	is_str(b.data, "{\"id\":\"a\\\"b\",\"output\":\"\",\"finish_reason\":null,\"tool_calls\":[{\"id\":"
	       "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}],"
	       "\"usage\":{\"completion_tokens\":4},\"model\":\"m\",\"cached\":false,\"ms\":13}",
	       "its text: the calls as the server sent them, absent counts left out");
	json_object_put(calls);
	buf_reset(&b);
	ok(!jsonl_err_line(&b, id, 0, NULL, "boom", 2), "error line");
	is_str(b.data, "{\"id\":\"a\\\"b\",\"error\":{\"status\":null,\"type\":\"error\",\"message\":\"boom\"},"
	       "\"attempts\":2}", "its text");
	buf_release(&b);
	json_object_put(id);
}

static void test_idset(void)
{
	struct jsonl_idset s;
	char k[32];
	int dups = 0;

	jsonl_idset_init(&s);
	ok(!jsonl_idset_has(&s, "a", 1), "empty set");
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "id-%d", i);

		dups += jsonl_idset_add(&s, k, (size_t)n);
	}
	is_int(dups, 0, "100000 distinct ids, no false duplicate");
	is_int(jsonl_idset_add(&s, "id-99999", 8), 1, "a real duplicate");
	ok(jsonl_idset_has(&s, "id-5", 4) && !jsonl_idset_has(&s, "id-x", 4), "has");
	jsonl_idset_release(&s);
}

static void test_journal(void)
{
	char path[] = "/tmp/t_journal.XXXXXX";
	int fd = mkstemp(path);
	struct journal j;
	struct ai_err e;
	struct buf b;
	const char *l1 = "{\"id\":\"a\",\"output\":\"x\"}", *l2 = "{\"id\":5,\"output\":\"y\"}";

	close(fd);
	unlink(path);
	ai_err_clear(&e);
	buf_init(&b, 0);
	ok(!journal_open(&j, path, "h1", &e), "a new journal");
	ok(!journal_add(&j, "a", l1, strlen(l1), &e) && !journal_add(&j, "5", l2, strlen(l2), &e),
	   "add two");
	ok(!journal_sync(&j, &e), "sync");
	journal_close(&j);

	ok(journal_open(&j, path, "h2", &e) && e.code == AI_EX_DATAERR && strstr(e.msg, "hash differs"),
	   "another input is refused: %s", e.msg);
	ai_err_clear(&e);
	ok(!journal_open(&j, path, "h1", &e), "the same input reopens");
	is_int(j.n, 2, "two items");
	is_int(journal_find(&j, "a", &b, &e), 1, "find a");
	is_str(b.data, l1, "its line");
	buf_reset(&b);
	is_int(journal_find(&j, "5", &b, &e), 1, "find 5");
	is_int(journal_find(&j, "b", &b, &e), 0, "b is not there");
	journal_close(&j);

	/* A kill in the middle of a write leaves a torn line: it is cut off. */
	fd = open(path, O_WRONLY | O_APPEND);
	ok(write(fd, "{\"id\":\"c\",\"outp", 15) == 15, "tear the last line");
	close(fd);
	ok(!journal_open(&j, path, "h1", &e), "opens after a torn write");
	is_int(j.n, 2, "the torn line does not count");
	is_int(journal_find(&j, "c", &b, &e), 0, "c is not there");
	ok(!journal_add(&j, "c", "{\"id\":\"c\"}", 10, &e) && !journal_sync(&j, &e), "append after repair");
	journal_close(&j);
	ok(!journal_open(&j, path, "h1", &e), "reopen");
	buf_reset(&b);
	is_int(journal_find(&j, "c", &b, &e), 1, "c was appended on a clean line");
	journal_close(&j);

	/* Damage in the middle is refused rather than guessed at. */
	fd = open(path, O_WRONLY | O_APPEND);
	ok(write(fd, "garbage\n{\"id\":\"d\"}\n", 20) == 20, "damage");
	close(fd);
	ok(journal_open(&j, path, "h1", &e) && strstr(e.msg, "damaged"), "damage refused: %s", e.msg);
	unlink(path);

	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ok(write(fd, "hello\n", 6) == 6, "a file that is no journal");
	close(fd);
	ok(journal_open(&j, path, "h1", &e) && strstr(e.msg, "not an ai-batch state"), "refused: %s", e.msg);
	unlink(path);
	buf_release(&b);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_reader();
	test_items();
	test_lines();
	test_idset();
	test_journal();
	return tap_done();
}
