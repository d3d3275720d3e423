#include "api/history.h"
#include "api/attach.h"
#include "buf.h"
#include "clock.h"
#include "fdio.h"
#include "jsonval.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

/* A message as the chat API takes it: a string role and a string or null content. */
static bool is_message(json_object *m)
{
	json_object *v;

	return m && json_object_is_type(m, json_type_object) &&
	       json_object_object_get_ex(m, "role", &v) && json_object_is_type(v, json_type_string) &&
	       json_object_object_get_ex(m, "content", &v) &&
	       (json_object_is_type(v, json_type_string) || json_object_is_type(v, json_type_null));
}

int history_load(const char *path, size_t max, json_object *conv, volatile sig_atomic_t *stop,
		 struct ai_err *err)
{
	struct buf b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t line = 0;
	int rc = 0;

	/* Only a file that is not there at all is an empty history. */
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return ai_errf(err, AI_EX_NOINPUT, "cannot open history '%s': %s", path, strerror(errno));
	}
	buf_init(&b, max);
	rc = fd_read_text(fd, path, &b, stop, err);
	close(fd);
	if (rc) {
		buf_release(&b);
		return -1;
	}
	for (char *p = b.data ? b.data : "", *nl; *p && !rc; p = nl ? nl + 1 : p + strlen(p)) {
		json_object *m;

		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		line++;
		if (p[strspn(p, " \t\r")] == '\0')
			continue;
		m = json_tokener_parse(p);
		if (!is_message(m)) {
			json_object_put(m);
			rc = ai_errf(err, AI_EX_DATAERR,
				     "history '%s' line %zu is not a message: want {\"role\": \"...\", \"content\": \"...\"}",
				     path, line);
		} else if (json_object_array_add(conv, m)) {
			json_object_put(m);
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
		}
	}
	buf_release(&b);
	return rc;
}

/* The lines to append, with a newline first when the file's last byte is not one. */
static int lines(json_object *const *msgs, size_t n, bool newline_first, struct buf *b)
{
	if (newline_first && buf_addch(b, '\n'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *t = json_object_to_json_string_length(msgs[i], JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE, &len);

		if (!t || buf_add(b, t, len) || buf_addch(b, '\n'))
			return -1;
	}
	return 0;
}

int history_check(const char *path, struct ai_err *err)
{
	struct stat st;
	char *dir, *slash;
	int r;

	if (!stat(path, &st)) {
		if (!S_ISREG(st.st_mode))
			return ai_errf(err, AI_EX_IOERR, "history '%s' is not a regular file", path);
		if (access(path, W_OK))
			return ai_errf(err, AI_EX_IOERR, "cannot write history '%s': %s", path, strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return ai_errf(err, AI_EX_IOERR, "cannot open history '%s': %s", path, strerror(errno));
	if (!(dir = strdup(path)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	slash = strrchr(dir, '/');
	if (!slash)
		r = access(".", W_OK | X_OK);
	else if (slash == dir)
		r = access("/", W_OK | X_OK);
	else {
		*slash = '\0';
		r = access(dir, W_OK | X_OK);
	}
	if (r) {
		int e = errno;

		r = ai_errf(err, AI_EX_IOERR, "cannot create history '%s': %s%s", path, strerror(e),
			    e == ENOENT ? "; create its directory first" : "");
	}
	free(dir);
	return r;
}

int history_append(const char *path, json_object *const *msgs, size_t n, volatile sig_atomic_t *stop,
		   struct ai_err *err)
{
	struct buf b;
	struct stat st;
	ssize_t w;
	int fd, rc = 0;
	char last = '\n';

	if (!n)
		return 0;
	/* Made once outside the lock, to learn early that memory is short. */
	buf_init(&b, 0);
	if (lines(msgs, n, false, &b)) {
		buf_release(&b);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	/* O_RDWR, not O_WRONLY: the last byte is read back to see whether it is a newline. */
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_release(&b);
		return ai_errf(err, AI_EX_IOERR, "cannot open history '%s': %s", path, strerror(errno));
	}
	while (flock(fd, LOCK_EX) && errno == EINTR && !(stop && *stop))
		;
	if (fstat(fd, &st)) {
		rc = ai_errf(err, AI_EX_IOERR, "cannot append to history '%s': %s", path, strerror(errno));
		goto out;
	}
	/* A file that does not end in a newline (edited by hand) gets one first. */
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
		buf_reset(&b);
		if (lines(msgs, n, true, &b)) {
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
	}
	w = write(fd, b.data, b.len);
	if (w < 0 || (size_t)w != b.len) {
		int e = w < 0 ? errno : ENOSPC;

		if (w > 0 && ftruncate(fd, st.st_size))
			e = errno;
		rc = ai_errf(err, AI_EX_IOERR, "cannot append to history '%s': %s", path, strerror(e));
	}
out:
	close(fd);
	buf_release(&b);
	return rc;
}

/* The role of message i of a, or "". */
static const char *role_of(json_object *a, size_t i)
{
	const char *r = i < json_object_array_length(a) ? jv_str(json_object_array_get_idx(a, i), "role") : NULL;

	return r ? r : "";
}

/*
 * The system message of the requests, once cv->msgs holds what was loaded:
 * system (--system) wins over the loaded one for the requests, which the
 * file or store keeps; dflt_system (ai.conf's) only when neither has one.
 */
static int conv_system(struct conv *cv, const char *system, const char *dflt_system, struct ai_err *err)
{
	if (!system && dflt_system && strcmp(role_of(cv->msgs, 0), "system"))
		system = dflt_system;
	if (!system)
		return 0;
	cv->store_system = json_object_array_length(cv->msgs) == 0;
	if (!strcmp(role_of(cv->msgs, 0), "system")) {
		json_object *m = jv_message("system", system);

		if (!m || json_object_array_put_idx(cv->msgs, 0, m)) {
			json_object_put(m);
			goto oom;
		}
	} else {
		json_object *a = json_object_new_array();

		if (!a || jv_push(a, jv_message("system", system))) {
			json_object_put(a);
			goto oom;
		}
		for (size_t i = 0; i < json_object_array_length(cv->msgs); i++)
			if (jv_push(a, json_object_get(json_object_array_get_idx(cv->msgs, i)))) {
				json_object_put(a);
				goto oom;
			}
		json_object_put(cv->msgs);
		cv->msgs = a;
	}
	return 0;
oom:
	return ai_errf(err, AI_EX_OSERR, "out of memory");
}

int conv_open(struct conv *cv, const char *history, size_t max, const char *system,
	      const char *dflt_system, volatile sig_atomic_t *stop, struct ai_err *err)
{
	memset(cv, 0, sizeof(*cv));
	cv->history = history;
	cv->stop = stop;
	if (!(cv->msgs = json_object_new_array()))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if ((history && (history_check(history, err) || history_load(history, max, cv->msgs, stop, err))) ||
	    conv_system(cv, system, dflt_system, err)) {
		conv_release(cv);
		return -1;
	}
	return 0;
}

int conv_open_stored(struct conv *cv, struct convstore *store, int64_t id, const char *system,
		     const char *dflt_system, volatile sig_atomic_t *stop, struct ai_err *err)
{
	memset(cv, 0, sizeof(*cv));
	cv->stop = stop;
	if (!(cv->msgs = json_object_new_array()))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (convstore_load(store, id, cv->msgs, err) || conv_system(cv, system, dflt_system, err)) {
		conv_release(cv);
		return -1;
	}
	/* What was loaded is kept already; a --system given now is for these requests only. */
	cv->store_system = false;
	cv->store_id = id;
	cv->kept = json_object_array_length(cv->msgs);
	return 0;
}

int conv_ask(struct conv *cv, struct ai_client *c, const struct ai_chat_req *q, const char *text,
	     struct ai_chat_resp *resp, struct ai_err *err)
{
	struct ai_chat_req r = *q;
	size_t n = json_object_array_length(cv->msgs);
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (jv_push(cv->msgs, cv->attach ? attach_message(text, cv->attach) : jv_message("user", text)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	r.messages = cv->msgs;
	if (cv->st) {
		json_object *data = NULL;
		struct schema_fail f;

		/* Nothing is shown before it is checked: the JSON comes as one piece. */
		rc = structured_chat(c, cv->st, &r, resp, &data, &f, err);
		if (!rc && data && q->on_delta) {
			const char *t = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);

			q->on_delta(t, strlen(t), q->ud);
		}
		json_object_put(data);
	} else {
		rc = ai_chat(c, &r, resp, err);
	}
	if (rc || resp->dry_run) {
		json_object_array_del_idx(cv->msgs, n, 1);
		return rc;
	}
	cv->attach = NULL;
	if (jv_push(cv->msgs, jv_message("assistant", resp->content ? resp->content : ""))) {
		json_object_array_del_idx(cv->msgs, n, json_object_array_length(cv->msgs) - n);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	return 0;
}

/*
 * What is kept of m[0..n) (the file, the store): each message as
 * attach_kept makes it, so an attachment's bytes stay in this exchange's
 * requests and never fill the history.  Each m[i] becomes a reference of
 * its own, put back by unkept; on failure the ones not made are NULL.
 */
static int kept(json_object **m, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (!(m[i] = rc ? NULL : attach_kept(m[i])))
			rc = -1;
	return rc;
}

static void unkept(json_object **m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_put(m[i]);
}

int conv_save(struct conv *cv, struct ai_err *err)
{
	json_object *m[3];
	size_t len = json_object_array_length(cv->msgs), k = 0;
	int rc;

	if (!cv->history)
		return 0;
	if (cv->store_system)
		m[k++] = json_object_array_get_idx(cv->msgs, 0);
	m[k++] = json_object_array_get_idx(cv->msgs, len - 2);
	m[k++] = json_object_array_get_idx(cv->msgs, len - 1);
	rc = kept(m, k) ? ai_errf(err, AI_EX_OSERR, "out of memory") :
	     history_append(cv->history, m, k, cv->stop, err);
	unkept(m, k);
	if (rc)
		return -1;
	cv->store_system = false;
	return 0;
}

int conv_keep(struct conv *cv, struct ai_err *err)
{
	size_t len = json_object_array_length(cv->msgs), n;
	json_object **m;
	int rc;

	if (!cv->store || cv->kept >= len)
		return 0;
	n = len - cv->kept;
	if (!(m = calloc(n, sizeof(*m))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < n; i++)
		m[i] = json_object_array_get_idx(cv->msgs, cv->kept + i);
	rc = kept(m, n) ? ai_errf(err, AI_EX_OSERR, "out of memory") :
	     convstore_add(cv->store, &cv->store_id, cv->model, m, n, wall_ms(), err);
	unkept(m, n);
	free(m);
	if (!rc)
		cv->kept = len;
	return rc;
}

void conv_release(struct conv *cv)
{
	json_object_put(cv->msgs);
	memset(cv, 0, sizeof(*cv));
}
