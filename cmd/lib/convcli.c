/*
 * convcli.c - the kept conversations on the command line (convcli.h).
 */
#include "lib/convcli.h"
#include "lib/out.h"
#include "lib/termout.h"
#include "clock.h"
#include "config.h"

#include <inttypes.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

char *convcli_path(void)
{
	struct ai_err err;
	char *p;

	ai_err_clear(&err);
	if (convstore_default_path(&p, &err))
		cli_die_err(&err);
	return p;
}

int convcli_resume(struct convstore *s, const char *ref, struct convstore_info *ci, struct ai_err *err)
{
	char *path = convcli_path();
	int rc = convstore_open(s, path, false, err);

	if (!rc)
		rc = convstore_find(s, ref, ci, err);
	else if (err->code == AI_EX_NOINPUT)
		ai_errf(err, AI_EX_NOINPUT, "no conversation to continue: none was kept yet");
	if (rc)
		convstore_close(s);
	free(path);
	return rc;
}

bool convcli_open_keep(const struct cli *c, struct convstore *s)
{
	struct ai_err err;
	char *path = NULL;
	bool ok;

	ai_err_clear(&err);
	ok = !convstore_default_path(&path, &err) && !convstore_open(s, path, true, &err);
	if (!ok && !c->quiet)
		cli_warn("conversation not kept: %s", err.msg);
	free(path);
	return ok;
}

/* Opens the store to read it; false (after a note unless quiet) when none was kept yet. */
static bool open_existing(const struct cli *c, struct convstore *s, char *path)
{
	struct ai_err err;

	struct stat st;

	ai_err_clear(&err);
	if (!convstore_open(s, path, false, &err))
		return true;
	/* No file, or one made but never given its schema, holds nothing; anything else is a failure. */
	if (err.code != AI_EX_NOINPUT || (stat(path, &st) ? errno != ENOENT : st.st_size > 0))
		cli_die_err(&err);
	if (!c->quiet)
		cli_warn("%s", err.msg);
	return false;
}

/* Local "YYYY-MM-DD HH:MM" of ms since the epoch. */
static void fmt_time(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M", &tm))
		snprintf(out, n, "?");
}

/* A one-line field (a title, a model) as visible text, whatever it holds. */
static void add_visible(struct buf *b, const char *s)
{
	if (termout_visible(b, s ? s : "-", strlen(s ? s : "-")))
		cli_die(AI_EX_OSERR, "out of memory");
}

static json_object *opt_string(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/*
 * Writes b, whose last append returned added, to stdout, and releases it;
 * out of memory exits.  Only the last append is checked here: a line
 * whose earlier append ran out of memory is printed short, as before.
 */
static void put_buf(struct buf *b, int added)
{
	if (added < 0)
		cli_die(AI_EX_OSERR, "out of memory");
	cli_write(b->data, b->len, false);
	buf_release(b);
}

/* Text from a person or a model, on stdout: made safe on a terminal, exact in a pipe. */
static void put_text(const char *s)
{
	struct termout t;

	termout_init(&t, false);
	termout_write(&t, s ? s : "", strlen(s ? s : ""), false);
	if (termout_end(&t, false) || (s && *s && s[strlen(s) - 1] != '\n'))
		cli_puts("\n", false);
	termout_release(&t);
}

/* ---- --list-conversations ---- */

static int list_one(void *ud, const struct convstore_info *ci)
{
	const struct cli *c = ud;
	json_object *j;
	struct buf b = BUF_INIT;
	char when[32];

	if (c->json) {
		j = out_object();
		out_add(j, "id", json_object_new_int64(ci->id));
		out_add(j, "title", json_object_new_string(ci->title ? ci->title : ""));
		out_add(j, "model", opt_string(ci->model));
		out_add(j, "messages", json_object_new_int64(ci->messages));
		out_add(j, "created_ms", json_object_new_int64(ci->created_ms));
		out_add(j, "updated_ms", json_object_new_int64(ci->updated_ms));
		out_json_line(j);
		json_object_put(j);
		return 0;
	}
	fmt_time(when, sizeof(when), ci->updated_ms);
	if (buf_addf(&b, "%-6" PRId64 " %s  %4ld  ", ci->id, when, ci->messages) < 0)
		cli_die(AI_EX_OSERR, "out of memory");
	add_visible(&b, ci->model);
	buf_addstr(&b, "  ");
	add_visible(&b, ci->title);
	put_buf(&b, buf_addch(&b, '\n'));
	return 0;
}

int convcli_list(const struct cli *c)
{
	struct convstore s;
	struct ai_err err;
	char *path = convcli_path();

	ai_err_clear(&err);
	if (!open_existing(c, &s, path)) {
		free(path);
		return cli_finish(0);
	}
	if (convstore_list(&s, 0, list_one, (void *)c, &err)) {
		convstore_close(&s);
		free(path);
		cli_die_err(&err);
	}
	convstore_close(&s);
	free(path);
	return cli_finish(0);
}

/* ---- --show ---- */

struct show {
	const struct cli *c;
	json_object *msgs;      /* --json: the messages */
};

static int show_one(void *ud, const char *role, const char *content, const char *model, int64_t ts_ms)
{
	struct show *sh = ud;
	struct buf b = BUF_INIT;

	if (sh->c->json) {
		json_object *m = out_object();

		out_add(m, "role", json_object_new_string(role ? role : ""));
		out_add(m, "content", opt_string(content));
		out_add(m, "model", opt_string(model));
		out_add(m, "ts_ms", json_object_new_int64(ts_ms));
		if (json_object_array_add(sh->msgs, m)) {
			json_object_put(m);
			cli_die(AI_EX_OSERR, "out of memory");
		}
		return 0;
	}
	buf_addstr(&b, "\n## ");
	add_visible(&b, role);
	put_buf(&b, buf_addstr(&b, "\n\n"));
	put_text(content);
	return 0;
}

int convcli_show(const struct cli *c, const char *ref)
{
	struct convstore s;
	struct convstore_info ci;
	struct show sh = { c, NULL };
	struct ai_err err;
	char *path = convcli_path();
	int rc;

	ai_err_clear(&err);
	if (!convstore_open(&s, path, false, &err))
		rc = convstore_find(&s, ref, &ci, &err);
	else
		rc = -1;
	free(path);
	if (rc) {
		if (err.code == AI_EX_NOINPUT && !s.db)
			ai_errf(&err, AI_EX_NOINPUT, "no conversation '%s': none was kept yet", ref);
		convstore_close(&s);
		cli_die_err(&err);
	}
	if (c->json) {
		if (!(sh.msgs = json_object_new_array()))
			cli_die(AI_EX_OSERR, "out of memory");
	} else {
		struct buf b = BUF_INIT;
		char when[32];

		fmt_time(when, sizeof(when), ci.updated_ms);
		buf_addf(&b, "# %" PRId64 ": ", ci.id);
		add_visible(&b, ci.title);
		buf_addstr(&b, "\n\nModel: ");
		add_visible(&b, ci.model);
		put_buf(&b, buf_addf(&b, ", %ld messages, last %s\n", ci.messages, when));
	}
	if (convstore_messages(&s, ci.id, show_one, &sh, &err)) {
		convstore_close(&s);
		cli_die_err(&err);
	}
	if (c->json) {
		json_object *j = out_object();

		out_add(j, "id", json_object_new_int64(ci.id));
		out_add(j, "title", json_object_new_string(ci.title));
		out_add(j, "model", opt_string(ci.model));
		out_add(j, "created_ms", json_object_new_int64(ci.created_ms));
		out_add(j, "updated_ms", json_object_new_int64(ci.updated_ms));
		out_add(j, "messages", sh.msgs);
		out_json_line(j);
		json_object_put(j);
	}
	convstore_close(&s);
	return cli_finish(0);
}

/* ---- --prune ---- */

int convcli_prune(const struct cli *c, const char *age)
{
	struct convstore s;
	struct ai_err err;
	double secs = cli_duration("--prune", age);
	char *path;
	long n = 0;

	/* "--prune 30" would be 30 seconds: everything but this minute's. */
	if (!age[strspn(age, "0123456789.")])
		cli_usage_error("--prune wants an age with its unit, such as 30d or 12h, not '%s'", age);
	if (secs < 1)
		cli_usage_error("--prune wants an age of at least 1s, such as 30d, not '%s'", age);
	path = convcli_path();
	ai_err_clear(&err);
	if (open_existing(c, &s, path)) {
		if (convstore_prune(&s, wall_ms() - (int64_t)(secs * 1000), &n, &err)) {
			convstore_close(&s);
			free(path);
			cli_die_err(&err);
		}
		convstore_close(&s);
	}
	free(path);
	if (c->json) {
		json_object *j = out_object();

		out_add(j, "pruned", json_object_new_int64(n));
		out_json_line(j);
		json_object_put(j);
	} else {
		struct buf b = BUF_INIT;

		put_buf(&b, buf_addf(&b, "%ld conversation%s pruned\n", n, n == 1 ? "" : "s"));
	}
	return cli_finish(0);
}

/* ---- ai-usage --log ---- */

static int log_one(void *ud, const struct convstore_entry *e)
{
	const struct cli *c = ud;
	struct buf b = BUF_INIT;
	char when[32];

	if (c->json) {
		json_object *j = out_object();

		out_add(j, "conversation", json_object_new_int64(e->conv));
		out_add(j, "title", json_object_new_string(e->title ? e->title : ""));
		out_add(j, "model", opt_string(e->model));
		out_add(j, "ts_ms", json_object_new_int64(e->ts_ms));
		out_add(j, "prompt", opt_string(e->prompt));
		out_add(j, "response", json_object_new_string(e->reply));
		out_json_line(j);
		json_object_put(j);
		return 0;
	}
	/* The shape of llm's logs, which the people this is for know. */
	fmt_time(when, sizeof(when), e->ts_ms);
	buf_addf(&b, "# %s    conversation: %" PRId64 "\n\nModel: ", when, e->conv);
	add_visible(&b, e->model);
	put_buf(&b, buf_addstr(&b, "\n\n## Prompt\n\n"));
	put_text(e->prompt);
	cli_puts("\n## Response\n\n", false);
	put_text(e->reply);
	cli_puts("\n", false);
	return 0;
}

int convcli_log(const struct cli *c, int argc, char **argv, struct convstore_query *lq)
{
	struct convstore s;
	struct buf q = BUF_INIT;
	struct ai_err err;
	char *path = convcli_path();
	int rc;

	for (int i = 0; i < argc; i++)
		if ((i && buf_addch(&q, ' ')) || buf_addstr(&q, argv[i]))
			cli_die(AI_EX_OSERR, "out of memory");
	ai_err_clear(&err);
	if (!open_existing(c, &s, path)) {
		free(path);
		buf_release(&q);
		return cli_finish(0);
	}
	free(path);
	lq->words = q.data;
	lq->model = c->model;
	rc = convstore_log(&s, lq, log_one, (void *)c, &err);
	convstore_close(&s);
	buf_release(&q);
	if (rc)
		cli_die_err(&err);
	return cli_finish(0);
}
