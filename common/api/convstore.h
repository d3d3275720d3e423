#ifndef AI_CONVSTORE_H
#define AI_CONVSTORE_H
/*
 * convstore.h - the conversations ai-stream keeps: one SQLite database,
 * $XDG_STATE_HOME/ai/conversations/conversations.db, with a row per
 * conversation (id, title, model, when it began and last grew), a row
 * per message, and an FTS5 index over the exchanges (a question and its
 * answer) for the log's full-text search.
 *
 * Why one database rather than a file per conversation: an exchange is
 * one transaction (a reader never sees a question without its answer,
 * and two programs continuing one conversation append whole exchanges),
 * the search is one FTS5 query over every conversation, the list and
 * the pruning are one statement each, and WAL lets ai-usage --log read
 * while ai-stream writes.  The directory is 0700 and the file 0600: it
 * holds everything the user asked.
 *
 * Ids are never reused (AUTOINCREMENT), so an id written down before a
 * --prune never names a newer conversation.
 *
 * One struct convstore is one connection: use it from one thread.
 */
#include "ai.h"

#include <json-c/json.h>

struct sqlite3;

struct convstore {
	struct sqlite3 *db;           /* NULL when closed */
	char *path;                   /* owned copy, for messages */
	int busy_ms;
	int wal_frames;               /* frames in the WAL after this connection's last commit */
	char *found_title, *found_model;  /* convstore_find's strings */
};

/* The schema this code writes (PRAGMA user_version). */
#define CONVSTORE_SCHEMA 1
/* How long a write waits for another writer before giving up. */
#define CONVSTORE_BUSY_MS 5000
/* A title is the first words of the first question: at most this many words and bytes. */
#define CONVSTORE_TITLE_WORDS 8
#define CONVSTORE_TITLE_MAX 60

/*
 * The store's path, owned (free with free()): $XDG_STATE_HOME/ai/
 * conversations/conversations.db, else under ~/.local/state.  -1 with
 * AI_EX_CONFIG when neither gives a directory.
 */
int convstore_default_path(char **out, struct ai_err *err);

/*
 * Opens the store at path.  With create, missing directories are made
 * 0700, a new file 0600, and the schema is made.  Without, a missing file
 * (or one never given its schema) is AI_EX_NOINPUT, "no conversation kept
 * yet", and nothing is created.  A file that is not an SQLite database,
 * or a database that is not a store, or is damaged, is AI_EX_DATAERR with
 * a message saying to move it away; a newer schema AI_EX_DATAERR; a lock
 * held past the busy timeout AI_EX_TEMPFAIL; a file that cannot be opened
 * AI_EX_IOERR.  On failure s is closed; convstore_close on it is harmless.
 */
int convstore_open(struct convstore *s, const char *path, bool create, struct ai_err *err);

void convstore_close(struct convstore *s);

/* One conversation as the list shows it.  Strings are borrowed for the callback's duration. */
struct convstore_info {
	int64_t id;
	const char *title;
	const char *model;            /* the model of its last exchange; may be NULL */
	int64_t created_ms, updated_ms;
	long messages;
};

/*
 * Finds the conversation ref names: an id (digits), else a title, matched
 * exactly (the most recently continued of several with that title); NULL
 * is the most recently continued of all.  Fills *out, whose strings are
 * owned by the store until the next call on it.  Not found is
 * AI_EX_NOINPUT with a message saying what was looked for.
 */
int convstore_find(struct convstore *s, const char *ref, struct convstore_info *out, struct ai_err *err);

/*
 * Appends the messages of conversation id to msgs (a json array,
 * borrowed; the messages added are owned by it), in order, as
 * {"role", "content"} objects the chat API takes.
 */
int convstore_load(struct convstore *s, int64_t id, json_object *msgs, struct ai_err *err);

/*
 * Appends msgs[0..n) (borrowed) to conversation *id in one transaction,
 * and records model (borrowed, may be NULL) as the conversation's.
 * *id == 0 makes a new conversation, titled by the first words of its
 * first user message, and sets *id.  now_ms dates the messages.  Nothing
 * is written on failure.
 */
int convstore_add(struct convstore *s, int64_t *id, const char *model, json_object *const *msgs,
		  size_t n, int64_t now_ms, struct ai_err *err);

/*
 * Calls fn for each conversation, most recently continued first, at most
 * limit (0: all).  fn returns 0 to go on; anything else stops the walk.
 */
int convstore_list(struct convstore *s, long limit, int (*fn)(void *ud, const struct convstore_info *c),
		   void *ud, struct ai_err *err);

/*
 * Calls fn for each message of conversation id in order: its role,
 * content (may be NULL), model (may be NULL) and time.  Borrowed strings.
 */
int convstore_messages(struct convstore *s, int64_t id,
		       int (*fn)(void *ud, const char *role, const char *content, const char *model,
				 int64_t ts_ms),
		       void *ud, struct ai_err *err);

/*
 * Deletes every conversation last continued before before_ms, with its
 * messages and their index entries, in one transaction; *deleted says
 * how many conversations went.
 */
int convstore_prune(struct convstore *s, int64_t before_ms, long *deleted, struct ai_err *err);

/* One exchange of the log: an answer and the question before it.  Borrowed strings. */
struct convstore_entry {
	int64_t conv;
	const char *title;
	const char *model;            /* may be NULL */
	int64_t ts_ms;                /* when the answer was kept */
	const char *prompt;           /* may be NULL: an answer with no question before it */
	const char *reply;
};

/* What the log asks for.  Strings are borrowed. */
struct convstore_query {
	const char *words;            /* NULL or blank: every exchange */
	const char *model;            /* NULL: any; else only this model's answers, as kept */
	int64_t since_ms, until_ms;   /* kept from since_ms to before until_ms (0 and INT64_MAX: all) */
	long limit;                   /* at most this many; 0: all */
};

/*
 * The log: the exchanges q asks for.  Without words, the newest first.
 * With them, only the exchanges whose question and answer between them
 * hold every word (FTS5, words matched as the unicode61 tokenizer splits
 * them, case and diacritics ignored; the words' own punctuation is taken
 * as text, never as FTS5 syntax), best match first.
 */
int convstore_log(struct convstore *s, const struct convstore_query *q,
		  int (*fn)(void *ud, const struct convstore_entry *e), void *ud, struct ai_err *err);

/*
 * Makes the title of a conversation from its first question: its first
 * CONVSTORE_TITLE_WORDS words, runs of white space and control characters
 * made one space, cut at CONVSTORE_TITLE_MAX bytes on a character
 * boundary.  Returns owned (free with free()), or NULL when out of memory.
 * text must be valid UTF-8.
 */
char *convstore_title(const char *text);

#endif
