/*
 * convstore.c - ai-stream's conversations in SQLite (see convstore.h).
 *
 * ai-stream opens the store once a run and adds an exchange or two, so
 * open does no schema work on a current file (one read of user_version);
 * WAL is set once, when the file is made, and persists in it.
 */
#include "api/convstore.h"
#include "buf.h"
#include "config.h"
#include "jsonval.h"
#include "sqlretry.h"
#include "utf8.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The search indexes exchanges, not messages, as llm's logs do: a question
 * and its answer are one FTS5 row, so "git revert" finds the exchange whose
 * question says git and whose answer says revert.  An exchange is an answer
 * and the question just before it in its conversation (both are written in
 * one transaction, so they are adjacent): the view "exchanges".
 * exchanges_fts is an external-content table over that view: the text is
 * stored once, in messages, and the index is fed by the trigger as each
 * answer is added.  Messages are never updated; a prune removes the index
 * rows itself before the messages, while the view can still give their
 * text (a delete trigger could not: the question may go first).
 * unicode61 with remove_diacritics 2 matches "cafe" to "café", as a person
 * searching a log expects.
 */
static const char schema_sql[] =
	"CREATE TABLE conversations ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" title TEXT NOT NULL,"
	" model TEXT,"
	" created_ms INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL);"
	"CREATE INDEX conversations_updated ON conversations(updated_ms);"
	"CREATE INDEX conversations_title ON conversations(title, updated_ms);"
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" conv INTEGER NOT NULL REFERENCES conversations(id),"
	" seq INTEGER NOT NULL,"
	" role TEXT NOT NULL,"
	" content TEXT,"
	" model TEXT,"
	" ts_ms INTEGER NOT NULL,"
	" UNIQUE(conv, seq));"
	"CREATE VIEW exchanges AS SELECT a.id AS id, a.conv AS conv, a.model AS model, a.ts_ms AS ts_ms,"
	" u.content AS prompt, a.content AS reply FROM messages a"
	" LEFT JOIN messages u ON u.conv = a.conv AND u.seq = a.seq - 1 AND u.role = 'user'"
	" WHERE a.role = 'assistant';"
	"CREATE VIRTUAL TABLE exchanges_fts USING fts5(prompt, reply, content='exchanges', content_rowid='id',"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE TRIGGER exchanges_ai AFTER INSERT ON messages WHEN new.role = 'assistant' BEGIN"
	" INSERT INTO exchanges_fts(rowid, prompt, reply) SELECT id, prompt, reply FROM exchanges"
	" WHERE id = new.id; END;"
	"PRAGMA user_version = 1;";

#define INFO_COLS "c.id, c.title, c.model, c.created_ms, c.updated_ms," \
	" (SELECT count(*) FROM messages m WHERE m.conv = c.id)"

int convstore_default_path(char **out, struct ai_err *err)
{
	*out = config_xdg_path("STATE", "conversations/conversations.db");
	if (!*out)
		return ai_errf(err, AI_EX_CONFIG,
			       "cannot place the conversations: set HOME or XDG_STATE_HOME to an absolute directory, or use --no-save");
	return 0;
}

/* Maps an SQLite failure to an exit code and a message naming the file. */
static int db_err(struct convstore *s, int rc, const char *doing, struct ai_err *err)
{
	const char *what = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
	const char *p = s->path ? s->path : "";

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ai_errf(err, AI_EX_TEMPFAIL,
			       "cannot %s conversation store '%s': locked by another process for more than %d ms",
			       doing, p, s->busy_ms);
	case SQLITE_NOTADB:
		return ai_errf(err, AI_EX_DATAERR,
			       "'%s' is not a conversation store (not an SQLite database): move it away and a new one will be made",
			       p);
	case SQLITE_CORRUPT:
		return ai_errf(err, AI_EX_DATAERR,
			       "conversation store '%s' is damaged (%s): move it away and a new one will be made",
			       p, what);
	case SQLITE_FULL:
		return ai_errf(err, AI_EX_IOERR, "cannot %s conversation store '%s': disk full", doing, p);
	case SQLITE_NOMEM:
		return ai_errf(err, AI_EX_OSERR, "cannot %s conversation store '%s': out of memory", doing, p);
	default:
		return ai_errf(err, AI_EX_IOERR, "cannot %s conversation store '%s': %s", doing, p, what);
	}
}

/*
 * The schema version and the number of tables, read in one statement, so
 * from one snapshot: read apart, a store another program makes meanwhile
 * would look like version 0 with tables, another program's database.
 */
#define STATE_SQL "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)"

static int not_a_store(struct convstore *s, struct ai_err *err)
{
	return ai_errf(err, AI_EX_DATAERR,
		       "'%s' is an SQLite database but not a conversation store: move it away and a new one will be made",
		       s->path);
}

/*
 * Makes the tables in a new file.  Several programs may get here at once:
 * the one that takes the write lock first makes them; the others then find
 * user_version set and do nothing.
 */
static int create_schema(struct convstore *s, struct ai_err *err)
{
	long long v[2] = { 0, 0 };
	int rc;

	rc = sqlretry_wal(s->db, s->busy_ms);
	if (rc != SQLITE_OK)
		return db_err(s, rc, "set up", err);
	rc = sqlretry_exec(s->db, "BEGIN IMMEDIATE", s->busy_ms);
	if (rc != SQLITE_OK)
		return db_err(s, rc, "set up", err);
	rc = sqlretry_query_ints(s->db, STATE_SQL, v, 2, s->busy_ms);
	if (rc == SQLITE_OK && v[0] == 0 && v[1] > 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return not_a_store(s, err);
	}
	if (rc == SQLITE_OK && v[0] == 0)
		rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlretry_exec(s->db, "COMMIT", s->busy_ms);
	if (rc == SQLITE_OK)
		return 0;
	db_err(s, rc, "set up", err);
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Checkpoints, as the usage ledger does them (ledger.c says why at
 * length): SQLite checkpoints and deletes the WAL when the last connection
 * closes, which costs a run of ai-stream, nearly always that last
 * connection, several fsyncs for one exchange.  So the WAL is left in place
 * on close while it is small, and checkpointed on close once it has grown
 * past CLOSE_CHECKPOINT_FRAMES; the hook replaces SQLite's own
 * auto-checkpoint for a connection kept open (ai-stream -i).
 */
#define CLOSE_CHECKPOINT_FRAMES 64
#define AUTO_CHECKPOINT_FRAMES 1000

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct convstore *s = arg;

	s->wal_frames = frames;
	if (frames >= AUTO_CHECKPOINT_FRAMES)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

/* The directory of path, made 0700 with its parents. */
static int make_dir(const char *path, struct ai_err *err)
{
	char *dir = strdup(path), *slash;
	int rc = 0;

	if (!dir)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (config_mkdirs(dir, 0700, err))
			rc = ai_errf(err, AI_EX_IOERR, "cannot keep conversations: %s", err->msg);
	}
	free(dir);
	return rc;
}

int convstore_open(struct convstore *s, const char *path, bool create, struct ai_err *err)
{
	long long state[2] = { 0, 0 }, v;
	struct stat sb;
	int rc;

	memset(s, 0, sizeof(*s));
	s->busy_ms = CONVSTORE_BUSY_MS;
	if (!path || !*path)
		return ai_errf(err, AI_EX_CONFIG, "no path for the conversation store");
	if (!(s->path = strdup(path)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (create) {
		int fd;

		if (make_dir(path, err))
			goto fail;
		/* Made here, not by SQLite, so that it is 0600 whatever the umask
		 * (SQLite gives the -wal and -shm files the same mode); a link
		 * planted in its place is not followed. */
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			ai_errf(err, AI_EX_IOERR, "cannot open conversation store '%s': %s", path, strerror(errno));
			goto fail;
		}
		close(fd);
	} else if (stat(path, &sb) < 0) {
		if (errno == ENOENT)
			ai_errf(err, AI_EX_NOINPUT, "no conversation kept yet (no '%s')", path);
		else
			ai_errf(err, AI_EX_NOINPUT, "cannot open conversation store '%s': %s", path,
				strerror(errno));
		goto fail;
	} else if (!S_ISREG(sb.st_mode)) {
		ai_errf(err, AI_EX_DATAERR, "conversation store '%s' is not a regular file", path);
		goto fail;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		db_err(s, rc, "open", err);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, s->busy_ms);
	/* See CLOSE_CHECKPOINT_FRAMES. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	sqlite3_wal_hook(s->db, wal_hook, s);
	rc = sqlretry_query_ints(s->db, STATE_SQL, state, 2, s->busy_ms);
	if (rc != SQLITE_OK) {
		db_err(s, rc, "open", err);
		goto fail;
	}
	v = state[0];
	if (v > CONVSTORE_SCHEMA) {
		ai_errf(err, AI_EX_DATAERR,
			"conversation store '%s' has schema %lld, newer than this ai-tools knows (%d): upgrade ai-tools",
			path, v, CONVSTORE_SCHEMA);
		goto fail;
	}
	/* Another program's database is refused before anything, WAL included, is changed in it. */
	if (v == 0) {
		if (state[1]) {
			not_a_store(s, err);
			goto fail;
		}
		if (!create) {
			ai_errf(err, AI_EX_NOINPUT, "no conversation kept yet in '%s'", path);
			goto fail;
		}
	}
	if (v == 0 && create_schema(s, err))
		goto fail;
	/* With WAL, NORMAL syncs at checkpoints only: a power cut may lose the
	 * last exchange but cannot damage the file. */
	rc = sqlretry_exec(s->db, "PRAGMA synchronous=NORMAL", s->busy_ms);
	if (rc != SQLITE_OK) {
		db_err(s, rc, "open", err);
		goto fail;
	}
	return 0;
fail:
	convstore_close(s);
	return -1;
}

void convstore_close(struct convstore *s)
{
	if (!s)
		return;
	if (s->db && s->wal_frames >= CLOSE_CHECKPOINT_FRAMES)
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, (int *)NULL);
	if (s->db)
		sqlite3_close(s->db);
	free(s->path);
	free(s->found_title);
	free(s->found_model);
	memset(s, 0, sizeof(*s));
}

/* Steps a statement that yields rows; BUSY is retried before the first row only. */
static int step_row(struct convstore *s, sqlite3_stmt *st, bool first)
{
	struct sqlretry r;
	int rc;

	sqlretry_init(&r, s->busy_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_BUSY && first && sqlretry_again(&r, rc))
		sqlite3_reset(st);
	return rc;
}

static int prepare(struct convstore *s, const char *sql, sqlite3_stmt **st, const char *doing,
		   struct ai_err *err)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);

	if (rc != SQLITE_OK) {
		*st = NULL;
		return db_err(s, rc, doing, err);
	}
	return 0;
}

static const char *col_str(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void fill_info(sqlite3_stmt *st, struct convstore_info *c)
{
	c->id = sqlite3_column_int64(st, 0);
	c->title = col_str(st, 1);
	c->model = col_str(st, 2);
	c->created_ms = sqlite3_column_int64(st, 3);
	c->updated_ms = sqlite3_column_int64(st, 4);
	c->messages = (long)sqlite3_column_int64(st, 5);
}

/* Runs the lookup sql (one row or none) with ?1 bound to ref (or an id). */
static int find_one(struct convstore *s, const char *sql, const char *ref, int64_t id,
		    struct convstore_info *out, bool *found, struct ai_err *err)
{
	sqlite3_stmt *st;
	int rc;

	*found = false;
	if (prepare(s, sql, &st, "read", err))
		return -1;
	if (ref)
		sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = step_row(s, st, true);
	if (rc == SQLITE_ROW) {
		const char *t = col_str(st, 1), *m = col_str(st, 2);

		free(s->found_title);
		free(s->found_model);
		s->found_title = strdup(t ? t : "");
		s->found_model = m ? strdup(m) : NULL;
		if (!s->found_title || (m && !s->found_model)) {
			sqlite3_finalize(st);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
		fill_info(st, out);
		out->title = s->found_title;
		out->model = s->found_model;
		*found = true;
	} else if (rc != SQLITE_DONE) {
		db_err(s, rc, "read", err);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* An id as the list shows it: digits only, no sign, no leading zero, in range. */
static bool parse_id(const char *ref, int64_t *id)
{
	char *end;
	long long v;

	if (!ref[0] || ref[0] == '0' || ref[strspn(ref, "0123456789")] != '\0')
		return false;
	errno = 0;
	v = strtoll(ref, &end, 10);
	if (errno || *end)
		return false;
	*id = v;
	return true;
}

int convstore_find(struct convstore *s, const char *ref, struct convstore_info *out, struct ai_err *err)
{
	bool found = false;
	int64_t id;

	memset(out, 0, sizeof(*out));
	if (!ref) {
		if (find_one(s, "SELECT " INFO_COLS " FROM conversations c ORDER BY c.updated_ms DESC, c.id DESC LIMIT 1",
			     NULL, 0, out, &found, err))
			return -1;
		if (!found)
			return ai_errf(err, AI_EX_NOINPUT, "no conversation to continue: none was kept yet");
		return 0;
	}
	if (parse_id(ref, &id) &&
	    find_one(s, "SELECT " INFO_COLS " FROM conversations c WHERE c.id = ?1", NULL, id, out, &found, err))
		return -1;
	if (!found &&
	    find_one(s, "SELECT " INFO_COLS " FROM conversations c WHERE c.title = ?1"
		     " ORDER BY c.updated_ms DESC, c.id DESC LIMIT 1", ref, 0, out, &found, err))
		return -1;
	if (!found)
		return ai_errf(err, AI_EX_NOINPUT,
			       "no conversation with id or title '%s' (ai-stream --list-conversations lists them)",
			       ref);
	return 0;
}

/*
 * Steps st (prepared and bound) to its end, calling row(st, ctx) for each
 * row; a row that returns non-zero ends the walk early, which is not a
 * failure.  Finalizes st.  A failure is reported by db_err with doing.
 */
static int walk(struct convstore *s, sqlite3_stmt *st, int (*row)(sqlite3_stmt *st, void *ctx), void *ctx,
		const char *doing, struct ai_err *err)
{
	bool first = true;
	int rc;

	while ((rc = step_row(s, st, first)) == SQLITE_ROW) {
		first = false;
		if (row(st, ctx)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_err(s, rc, doing, err);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* convstore_messages' caller, for walk. */
struct messages_walk {
	int (*fn)(void *ud, const char *role, const char *content, const char *model, int64_t ts_ms);
	void *ud;
};

static int message_row(sqlite3_stmt *st, void *ctx)
{
	const struct messages_walk *w = ctx;

	return w->fn(w->ud, col_str(st, 0), col_str(st, 1), col_str(st, 2), sqlite3_column_int64(st, 3));
}

int convstore_messages(struct convstore *s, int64_t id,
		       int (*fn)(void *ud, const char *role, const char *content, const char *model,
				 int64_t ts_ms),
		       void *ud, struct ai_err *err)
{
	struct messages_walk w = { fn, ud };
	sqlite3_stmt *st;

	if (prepare(s, "SELECT role, content, model, ts_ms FROM messages WHERE conv = ?1 ORDER BY seq",
		    &st, "read", err))
		return -1;
	sqlite3_bind_int64(st, 1, id);
	return walk(s, st, message_row, &w, "read", err);
}

/* convstore_load's walk: the array it fills, and whether memory ran out. */
struct load {
	json_object *msgs;
	bool oom;
};

static int load_one(void *ud, const char *role, const char *content, const char *model, int64_t ts_ms)
{
	struct load *l = ud;
	json_object *m = json_object_new_object();

	(void)model;
	(void)ts_ms;
	/* jv_add and jv_push take what they are given, even when they fail. */
	if (!m || jv_add(m, "role", json_object_new_string(role ? role : "user")) ||
	    jv_add(m, "content", content ? json_object_new_string(content) : NULL)) {
		json_object_put(m);
		l->oom = true;
		return -1;
	}
	if (jv_push(l->msgs, m)) {
		l->oom = true;
		return -1;
	}
	return 0;
}

int convstore_load(struct convstore *s, int64_t id, json_object *msgs, struct ai_err *err)
{
	struct load l = { msgs, false };

	if (convstore_messages(s, id, load_one, &l, err))
		return -1;
	if (l.oom)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

char *convstore_title(const char *text)
{
	struct buf b;
	int words = 0;
	bool gap = false;

	buf_init(&b, 0);
	for (const char *p = text; *p && words <= CONVSTORE_TITLE_WORDS; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == 0x7f) {
			gap = b.len > 0;
			continue;
		}
		if (gap || !b.len) {
			if (++words > CONVSTORE_TITLE_WORDS)
				break;
			if (gap && buf_addch(&b, ' '))
				goto oom;
			gap = false;
		}
		if (buf_addch(&b, (char)c))
			goto oom;
		if (b.len >= CONVSTORE_TITLE_MAX + 4)
			break;
	}
	if (b.len > CONVSTORE_TITLE_MAX) {
		b.len = utf8_cut(b.data, CONVSTORE_TITLE_MAX);
		b.data[b.len] = '\0';
	}
	if (!b.len && buf_addstr(&b, "untitled"))
		goto oom;
	return buf_detach(&b, NULL);
oom:
	buf_release(&b);
	return NULL;
}

/* The first user message's text among msgs[0..n), else the first message's, else "". */
static const char *first_question(json_object *const *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *r = jv_str(msgs[i], "role");

		if (r && !strcmp(r, "user") && jv_str(msgs[i], "content"))
			return jv_str(msgs[i], "content");
	}
	return n && jv_str(msgs[0], "content") ? jv_str(msgs[0], "content") : "";
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *t)
{
	return t ? sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int convstore_add(struct convstore *s, int64_t *id, const char *model, json_object *const *msgs,
		  size_t n, int64_t now_ms, struct ai_err *err)
{
	sqlite3_stmt *st = NULL, *ins = NULL;
	char *title = NULL;
	int64_t cid = *id, seq = 0;
	int rc;

	if (!n)
		return 0;
	if (!cid && !(title = convstore_title(first_question(msgs, n))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	rc = sqlretry_exec(s->db, "BEGIN IMMEDIATE", s->busy_ms);
	if (rc != SQLITE_OK) {
		free(title);
		return db_err(s, rc, "save to", err);
	}
	if (!cid) {
		rc = sqlite3_prepare_v2(s->db, "INSERT INTO conversations(title, model, created_ms, updated_ms)"
					" VALUES(?1, ?2, ?3, ?3)", -1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, title, -1, SQLITE_STATIC);
			bind_opt_text(st, 2, model);
			sqlite3_bind_int64(st, 3, now_ms);
			rc = sqlite3_step(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
			cid = sqlite3_last_insert_rowid(s->db);
		}
	} else {
		rc = sqlite3_prepare_v2(s->db, "UPDATE conversations SET model = ifnull(?1, model),"
					" updated_ms = max(updated_ms, ?2) WHERE id = ?3", -1, &st, NULL);
		if (rc == SQLITE_OK) {
			bind_opt_text(st, 1, model);
			sqlite3_bind_int64(st, 2, now_ms);
			sqlite3_bind_int64(st, 3, cid);
			rc = sqlite3_step(st);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
			if (rc == SQLITE_OK && sqlite3_changes(s->db) == 0) {
				sqlite3_finalize(st);
				sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
				return ai_errf(err, AI_EX_NOINPUT,
					       "conversation %" PRId64 " is no longer kept (pruned meanwhile?)", cid);
			}
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "SELECT ifnull(max(seq), 0) FROM messages WHERE conv = ?1", -1, &st,
					NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			seq = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "INSERT INTO messages(conv, seq, role, content, model, ts_ms)"
					" VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &ins, NULL);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		const char *role = jv_str(msgs[i], "role");
		json_object *c = NULL;

		json_object_object_get_ex(msgs[i], "content", &c);
		sqlite3_bind_int64(ins, 1, cid);
		sqlite3_bind_int64(ins, 2, ++seq);
		sqlite3_bind_text(ins, 3, role ? role : "user", -1, SQLITE_STATIC);
		if (json_object_is_type(c, json_type_string))
			sqlite3_bind_text(ins, 4, json_object_get_string(c), json_object_get_string_len(c),
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 4);
		bind_opt_text(ins, 5, role && !strcmp(role, "assistant") ? model : NULL);
		sqlite3_bind_int64(ins, 6, now_ms);
		rc = sqlite3_step(ins);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		sqlite3_reset(ins);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	free(title);
	if (rc == SQLITE_OK)
		rc = sqlretry_exec(s->db, "COMMIT", s->busy_ms);
	if (rc != SQLITE_OK) {
		db_err(s, rc, "save to", err);
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	*id = cid;
	return 0;
}

/* convstore_list's caller, for walk. */
struct list_walk {
	int (*fn)(void *ud, const struct convstore_info *c);
	void *ud;
};

static int list_row(sqlite3_stmt *st, void *ctx)
{
	const struct list_walk *w = ctx;
	struct convstore_info c;

	fill_info(st, &c);
	return w->fn(w->ud, &c);
}

int convstore_list(struct convstore *s, long limit, int (*fn)(void *ud, const struct convstore_info *c),
		   void *ud, struct ai_err *err)
{
	struct list_walk w = { fn, ud };
	sqlite3_stmt *st;

	if (prepare(s, "SELECT " INFO_COLS " FROM conversations c ORDER BY c.updated_ms DESC, c.id DESC LIMIT ?1",
		    &st, "read", err))
		return -1;
	sqlite3_bind_int64(st, 1, limit > 0 ? limit : -1);
	return walk(s, st, list_row, &w, "read", err);
}

/* Runs sql, which yields no row, with ?1 bound to v.  Returns the SQLite code. */
static int run_int(struct convstore *s, const char *sql, int64_t v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int convstore_prune(struct convstore *s, int64_t before_ms, long *deleted, struct ai_err *err)
{
	int rc;

	*deleted = 0;
	rc = sqlretry_exec(s->db, "BEGIN IMMEDIATE", s->busy_ms);
	/* The index rows first, while the view can still give their text (see schema_sql). */
	if (rc == SQLITE_OK)
		rc = run_int(s, "INSERT INTO exchanges_fts(exchanges_fts, rowid, prompt, reply)"
			     " SELECT 'delete', id, prompt, reply FROM exchanges WHERE conv IN"
			     " (SELECT id FROM conversations WHERE updated_ms < ?1)", before_ms);
	if (rc == SQLITE_OK)
		rc = run_int(s, "DELETE FROM messages WHERE conv IN"
			     " (SELECT id FROM conversations WHERE updated_ms < ?1)", before_ms);
	if (rc == SQLITE_OK)
		rc = run_int(s, "DELETE FROM conversations WHERE updated_ms < ?1", before_ms);
	if (rc == SQLITE_OK)
		*deleted = (long)sqlite3_changes(s->db);
	if (rc == SQLITE_OK)
		rc = sqlretry_exec(s->db, "COMMIT", s->busy_ms);
	if (rc != SQLITE_OK) {
		*deleted = 0;
		db_err(s, rc, "prune", err);
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * The query as FTS5 syntax: each word a quoted string (its quotes
 * doubled), so that nothing a person types is taken as an operator, a
 * column filter or a syntax error; the words are ANDed.  Returns 0 with
 * b empty when the query has no word.
 */
static int fts_query(const char *q, struct buf *b)
{
	const char *p = q;

	while (*p) {
		size_t n;

		p += strspn(p, " \t\r\n\f\v");
		n = strcspn(p, " \t\r\n\f\v");
		if (!n)
			break;
		if (b->len && buf_addch(b, ' '))
			return -1;
		if (buf_addch(b, '"'))
			return -1;
		for (size_t i = 0; i < n; i++)
			if ((p[i] == '"' && buf_addch(b, '"')) || buf_addch(b, p[i]))
				return -1;
		if (buf_addch(b, '"'))
			return -1;
		p += n;
	}
	return 0;
}

/* The log: exchanges (see schema_sql), newest first, or with a query best match first. */
static const char log_sql[] =
	"SELECT e.conv, c.title, e.model, e.ts_ms, e.prompt, e.reply"
	" FROM exchanges e JOIN conversations c ON c.id = e.conv WHERE e.ts_ms >= ?3 AND e.ts_ms < ?4"
	" AND (?5 IS NULL OR e.model = ?5) ORDER BY e.id DESC LIMIT ?1";
static const char log_match_sql[] =
	"SELECT e.conv, c.title, e.model, e.ts_ms, e.prompt, e.reply"
	" FROM exchanges_fts f JOIN exchanges e ON e.id = f.rowid JOIN conversations c ON c.id = e.conv"
	" WHERE exchanges_fts MATCH ?2 AND e.ts_ms >= ?3 AND e.ts_ms < ?4 AND (?5 IS NULL OR e.model = ?5)"
	" ORDER BY f.rank, e.id DESC LIMIT ?1";

/* convstore_log's caller, for walk. */
struct log_walk {
	int (*fn)(void *ud, const struct convstore_entry *e);
	void *ud;
};

static int log_row(sqlite3_stmt *st, void *ctx)
{
	const struct log_walk *w = ctx;
	struct convstore_entry e;

	e.conv = sqlite3_column_int64(st, 0);
	e.title = col_str(st, 1);
	e.model = col_str(st, 2);
	e.ts_ms = sqlite3_column_int64(st, 3);
	e.prompt = col_str(st, 4);
	e.reply = col_str(st, 5);
	if (!e.reply)
		e.reply = "";
	return w->fn(w->ud, &e);
}

int convstore_log(struct convstore *s, const struct convstore_query *lq,
		  int (*fn)(void *ud, const struct convstore_entry *e), void *ud, struct ai_err *err)
{
	struct log_walk w = { fn, ud };
	struct buf q;
	sqlite3_stmt *st;
	int rc;

	buf_init(&q, 0);
	if (lq->words && fts_query(lq->words, &q)) {
		buf_release(&q);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (prepare(s, q.len ? log_match_sql : log_sql, &st, "search", err)) {
		buf_release(&q);
		return -1;
	}
	sqlite3_bind_int64(st, 1, lq->limit > 0 ? lq->limit : -1);
	if (q.len)
		sqlite3_bind_text(st, 2, q.data, (int)q.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, lq->since_ms);
	sqlite3_bind_int64(st, 4, lq->until_ms);
	bind_opt_text(st, 5, lq->model);
	rc = walk(s, st, log_row, &w, "search", err);
	buf_release(&q);
	return rc;
}
