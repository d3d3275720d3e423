/* t_convstore - the conversation store: titles, adding and loading, finding, pruning, the log's search, bad files. */
#include "api/convstore.h"
#include "jsonval.h"
#include "tap.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <sys/stat.h>

static char dir[] = "/tmp/t_convstore.XXXXXX";
static char path[512];

/* A fresh store path in the scratch directory (borrowed until the next call). */
static const char *fresh(const char *name)
{
	char wal[600];

	snprintf(path, sizeof(path), "%s/%s/c.db", dir, name);
	unlink(path);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	return path;
}

static void title_is(const char *text, const char *want, const char *what)
{
	char *t = convstore_title(text);

	is_str(t, want, "title: %s", what);
	free(t);
}

/* Adds a question and its answer to *id as one exchange. */
static int exchange(struct convstore *s, int64_t *id, const char *model, const char *q, const char *a,
		    int64_t now, struct ai_err *e)
{
	json_object *m[2] = { jv_message("user", q), jv_message("assistant", a) };
	int rc = convstore_add(s, id, model, m, 2, now, e);

	json_object_put(m[0]);
	json_object_put(m[1]);
	return rc;
}

/* The log as "prompt>reply|..." for a query. */
static char logged[4096];

static int log_one(void *ud, const struct convstore_entry *e)
{
	size_t n = strlen(logged);

	(void)ud;
	snprintf(logged + n, sizeof(logged) - n, "%s%s>%s", n ? "|" : "", e->prompt ? e->prompt : "-", e->reply);
	return 0;
}

static const char *log_of(struct convstore *s, const char *q, long limit)
{
	struct ai_err e;

	logged[0] = '\0';
	if (convstore_log(s, &(struct convstore_query){ .words = q, .until_ms = INT64_MAX, .limit = limit },
			  log_one, NULL, &e))
		snprintf(logged, sizeof(logged), "error %d: %s", e.code, e.msg);
	return logged;
}

static long long query_int(const char *p, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

/* Runs sql on the file p; 0, or -1 (said) when it fails. */
static int exec_sql(const char *p, const char *sql)
{
	sqlite3 *db;
	int rc = 0;

	if (sqlite3_open_v2(p, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		printf("# cannot run '%s' on '%s': %s\n", sql, p, sqlite3_errmsg(db));
		rc = -1;
	}
	sqlite3_close(db);
	return rc;
}

/* out = prefix then n copies of s (out has room). */
static const char *repeat(char *out, const char *prefix, const char *s, int n)
{
	size_t len = strlen(prefix), k = strlen(s);

	memcpy(out, prefix, len);
	for (int i = 0; i < n; i++, len += k)
		memcpy(out + len, s, k);
	out[len] = '\0';
	return out;
}

static void test_titles(void)
{
	title_is("how do I undo a git commit", "how do I undo a git commit", "short, as it is");
	title_is("  one\t\ttwo\n\nthree\x1b[31m four\x7f", "one two three [31m four", "runs of space and controls");
	title_is("a b c d e f g h i j k", "a b c d e f g h", "eight words");
	title_is("", "untitled", "empty");
	title_is(" \n\t ", "untitled", "blank");
	{
		char in[200], want[200];

		title_is(repeat(in, "", "\xc3\xa9", 40), repeat(want, "", "\xc3\xa9", 30),
			 "60 bytes, cut between characters (e-acute is 2 bytes)");
		title_is(repeat(in, "x", "\xc3\xa9", 39), repeat(want, "x", "\xc3\xa9", 29),
			 "a cut inside a character falls back to its start");
	}
}

static void test_store(void)
{
	struct convstore s;
	struct convstore_info ci;
	struct ai_err e;
	json_object *msgs;
	int64_t a = 0, b = 0, c = 0;
	long n;
	const char *p = fresh("one");
	struct stat st;

	is_int(convstore_open(&s, p, false, &e), -1, "no store: not made when only read");
	is_int(e.code, AI_EX_NOINPUT, "no store is no input");
	ok(access(p, F_OK) < 0, "nothing was made");
	is_int(convstore_open(&s, p, true, &e), 0, "made");
	ok(!stat(p, &st) && (st.st_mode & 0777) == 0600, "the file is 0600");
	is_int(query_int(p, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"), 1, "in WAL mode");
	is_int(convstore_find(&s, NULL, &ci, &e), -1, "nothing to continue yet");
	is_int(e.code, AI_EX_NOINPUT, "as no input");

	{
		json_object *m[3] = { jv_message("system", "Be brief."), jv_message("user", "first question here"),
				      json_object_new_object() };

		/* An answer with null content (a server that sent none). */
		jv_add(m[2], "role", json_object_new_string("assistant"));
		jv_add(m[2], "content", NULL);

		is_int(convstore_add(&s, &a, "m1", m, 3, 1000, &e), 0, "a new conversation");
		for (int i = 0; i < 3; i++)
			json_object_put(m[i]);
	}
	is_int(a, 1, "its id");
	is_int(exchange(&s, &b, "m2", "second topic", "answer two", 2000, &e), 0, "another");
	is_int(b, 2, "the next id");
	is_int(exchange(&s, &a, "m3", "follow up", "answer three", 3000, &e), 0, "the first one continued");
	is_int(a, 1, "same id");

	is_int(convstore_find(&s, NULL, &ci, &e), 0, "the last continued");
	is_int(ci.id, 1, "is the first");
	is_str(ci.title, "first question here", "its title: the first question's words");
	is_str(ci.model, "m3", "its model: the last exchange's");
	is_int(ci.messages, 5, "its messages");
	is_int(ci.created_ms, 1000, "begun");
	is_int(ci.updated_ms, 3000, "continued");
	is_int(convstore_find(&s, "2", &ci, &e), 0, "by id");
	is_str(ci.title, "second topic", "the second");
	is_int(convstore_find(&s, "second topic", &ci, &e), 0, "by title");
	is_int(ci.id, 2, "the second again");
	is_int(convstore_find(&s, "02", &ci, &e), -1, "a leading zero is no id, nor a title");
	is_int(e.code, AI_EX_NOINPUT, "not found is no input");
	is_int(convstore_find(&s, "99999999999999999999", &ci, &e), -1, "an id out of range");

	msgs = json_object_new_array();
	is_int(convstore_load(&s, 1, msgs, &e), 0, "loaded");
	is_str(json_object_to_json_string_ext(msgs, JSON_C_TO_STRING_PLAIN),
	       "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"first question here\"},"
	       "{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\",\"content\":\"follow up\"},"
	       "{\"role\":\"assistant\",\"content\":\"answer three\"}]",
	       "in order, a null content kept");
	json_object_put(msgs);

	/* The log: exchanges, newest first; a search over the questions and answers. */
	is_str(log_of(&s, NULL, 0), "follow up>answer three|second topic>answer two|first question here>",
	       "the log, newest first");
	is_str(log_of(&s, "  ", 2), "follow up>answer three|second topic>answer two", "a blank query, a limit");
	{
		struct ai_err e2;

		logged[0] = '\0';
		is_int(convstore_log(&s, &(struct convstore_query){ .since_ms = 2000, .until_ms = 3000 },
				     log_one, NULL, &e2), 0, "a range of time");
		is_str(logged, "second topic>answer two", "from since to before until");
		logged[0] = '\0';
		is_int(convstore_log(&s, &(struct convstore_query){ .words = "answer", .since_ms = 2500,
				     .until_ms = INT64_MAX }, log_one, NULL, &e2), 0, "a search in a range");
		is_str(logged, "follow up>answer three", "finds only what is in it");
		logged[0] = '\0';
		is_int(convstore_log(&s, &(struct convstore_query){ .words = "answer", .model = "m2",
				     .until_ms = INT64_MAX }, log_one, NULL, &e2), 0, "a search of one model");
		is_str(logged, "second topic>answer two", "finds only its answers");
	}
	is_str(log_of(&s, "THREE", 0), "follow up>answer three", "a word of an answer, any case");
	is_str(log_of(&s, "topic two", 0), "second topic>answer two", "words from the question and the answer");
	is_str(log_of(&s, "topic three", 0), "", "every word must be in one exchange");
	is_str(log_of(&s, "brief", 0), "", "a system message is no exchange");
	is_str(log_of(&s, "\"topic\" NEAR( * AND - ^ col:x", 0), "", "FTS5 syntax is only text");
	is_str(log_of(&s, "\"topic\"", 0), "second topic>answer two", "quotes are text");

	/* Pruning: only what was not continued since, with its index entries; ids are not reused. */
	is_int(convstore_prune(&s, 2500, &n, &e), 0, "pruned");
	is_int(n, 1, "one conversation");
	is_int(convstore_find(&s, "2", &ci, &e), -1, "it is gone");
	is_str(log_of(&s, "topic", 0), "", "and not found by the search");
	is_int(query_int(p, "SELECT count(*) FROM messages WHERE conv = 2"), 0, "its messages are gone");
	is_int(exec_sql(p, "INSERT INTO exchanges_fts(exchanges_fts) VALUES('integrity-check')"), 0,
	       "the index agrees with the messages left");
	is_int(exchange(&s, &c, NULL, "third", "answer", 4000, &e), 0, "a new one after the prune");
	is_int(c, 3, "gets a new id");
	is_int(exchange(&s, &b, "m2", "more", "answer", 5000, &e), -1, "a pruned one cannot grow");
	is_int(e.code, AI_EX_NOINPUT, "as no input");
	is_int(query_int(p, "SELECT count(*) FROM messages WHERE conv = 2"), 0, "and nothing was written");
	convstore_close(&s);
	convstore_close(&s);

	is_int(convstore_open(&s, p, false, &e), 0, "opened to read");
	is_int(convstore_find(&s, NULL, &ci, &e), 0, "the last");
	is_int(ci.id, 3, "is the new one");
	ok(ci.model == NULL, "without a model");
	convstore_close(&s);
}

static void test_bad_files(void)
{
	struct convstore s;
	struct ai_err e;
	const char *p = fresh("bad");
	char junk[4096];
	int fd;

	is_int(convstore_open(&s, p, true, &e), 0, "made");
	convstore_close(&s);
	exec_sql(p, "PRAGMA user_version = 9");
	is_int(convstore_open(&s, p, true, &e), -1, "a newer schema");
	is_int(e.code, AI_EX_DATAERR, "is bad data");
	ok(strstr(e.msg, "upgrade") != NULL, "saying to upgrade: %s", e.msg);

	p = fresh("junk");
	memset(junk, 'x', sizeof(junk));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk), "a file of junk");
	close(fd);
	is_int(convstore_open(&s, p, true, &e), -1, "is refused");
	is_int(e.code, AI_EX_DATAERR, "as bad data");
	ok(strstr(e.msg, "move it away") != NULL, "saying what to do: %s", e.msg);

	p = fresh("foreign");
	exec_sql(p, "CREATE TABLE t(x)");
	is_int(convstore_open(&s, p, true, &e), -1, "another program's database");
	is_int(e.code, AI_EX_DATAERR, "is refused");
	is_int(query_int(p, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'delete'"), 1,
	       "and left in its journal mode");
	is_int(query_int(p, "SELECT count(*) FROM sqlite_master"), 1, "with its one table");
}

int main(void)
{
	char sub[600];

	if (!mkdtemp(dir))
		return 1;
	for (const char *const *n = (const char *const[]){ "one", "bad", "junk", "foreign", NULL }; *n; n++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, *n);
		if (mkdir(sub, 0700))
			return 1;
	}
	test_titles();
	test_store();
	test_bad_files();
	snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
	if (system(sub))
		printf("# could not remove %s\n", dir);
	return tap_done();
}
