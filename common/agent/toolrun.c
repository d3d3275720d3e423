/*
 * toolrun.c - the tools file loader and the runner for the user's own tools.
 *
 * The runner is the one place where ai-agent starts another program, so
 * it is written for the worst tool: one that ignores its input, prints
 * without end, forks children that outlive it, or never exits.  It never
 * involves a shell: execve of a fixed argv, the model's arguments on stdin.
 */
#include "agent/toolrun.h"

#include "clock.h"
#include "compat/compat.h"
#include "config.h"
#include "fdio.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TOOLS_FILE_MAX ((size_t)4 << 20)
#define TOOL_NAME_MAX 64
#define TOOL_TIMEOUT_MAX 86400000L
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* After the tool exits, how long we keep reading what is left in the
 * pipes.  Only a descendant that escaped the process group (setsid) can
 * hold them open that long. */
#define DRAIN_GRACE_MS 200L

/* ------------------------------------------------------------------ */
/* The environment rules                                               */

static bool ci_prefix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (toupper((unsigned char)s[i]) != p[i])
			return false;
	return true;
}

static bool ci_suffix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && ci_prefix(s + len - n, n, p);
}

static bool ci_contains(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	for (size_t i = 0; i + n <= len; i++)
		if (ci_prefix(s + i, len - i, p))
			return true;
	return false;
}

bool toolrun_env_secret(const char *name, size_t len)
{
	static const char *const prefix[] = { "OPENAI_", "AI_" };
	static const char *const suffix[] = { "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD" };
	static const char *const infix[] = { "APIKEY", "API_KEY" };

	for (size_t i = 0; i < AI_ARRAY_LEN(prefix); i++)
		if (ci_prefix(name, len, prefix[i]))
			return true;
	for (size_t i = 0; i < AI_ARRAY_LEN(suffix); i++)
		if (ci_suffix(name, len, suffix[i]))
			return true;
	for (size_t i = 0; i < AI_ARRAY_LEN(infix); i++)
		if (ci_contains(name, len, infix[i]))
			return true;
	return false;
}

static bool name_is(const char *name, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(name, s, len) == 0;
}

bool toolrun_env_allowed(const char *name, size_t len, char *const *extra)
{
	static const char *const allow[] = {
		"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
		"TERM", "NO_COLOR"
	};

	if (len == 0 || toolrun_env_secret(name, len))
		return false;
	if (len > 3 && memcmp(name, "LC_", 3) == 0)
		return true;
	for (size_t i = 0; i < AI_ARRAY_LEN(allow); i++)
		if (name_is(name, len, allow[i]))
			return true;
	for (size_t i = 0; extra && extra[i]; i++)
		if (name_is(name, len, extra[i]))
			return true;
	return false;
}

/*
 * Returns an owned array (free() it, not its strings) of the entries of
 * environ a tool may see; the strings are borrowed from environ and valid
 * until the next setenv.  NULL on allocation failure.
 */
static char **scrubbed_env(char *const *extra)
{
	size_t n = 0, k = 0;
	bool have_path = false;
	char **env;

	for (char **e = environ; e && *e; e++)
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');

		if (!eq || !toolrun_env_allowed(*e, (size_t)(eq - *e), extra))
			continue;
		if (eq - *e == 4 && memcmp(*e, "PATH", 4) == 0)
			have_path = true;
		env[k++] = *e;
	}
	if (!have_path)
		env[k++] = (char *)"PATH=" DEFAULT_PATH;
	env[k] = NULL;
	return env;
}

/* ------------------------------------------------------------------ */
/* The tools file                                                      */

void tooldef_release(struct tooldef *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->description);
	if (t->parameters)
		json_object_put(t->parameters);
	for (size_t i = 0; t->argv && t->argv[i]; i++)
		free(t->argv[i]);
	free(t->argv);
	free(t->path);
	for (size_t i = 0; t->env && t->env[i]; i++)
		free(t->env[i]);
	free(t->env);
	free(t->remote);
	free(t->file);
	memset(t, 0, sizeof(*t));
}

static void mcp_decl_release(struct mcp_decl *d)
{
	free(d->name);
	free(d->file);
	tooldef_release(&d->cmd);
	free(d->url);
	free(d->headers_cmd);
	for (size_t i = 0; d->allow && d->allow[i]; i++)
		free(d->allow[i]);
	free(d->allow);
	memset(d, 0, sizeof(*d));
}

void toolset_release(struct toolset *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		tooldef_release(&ts->v[i]);
	free(ts->v);
	ts->v = NULL;
	ts->n = 0;
	for (size_t i = 0; i < ts->nmcp; i++)
		mcp_decl_release(&ts->mcp[i]);
	free(ts->mcp);
	ts->mcp = NULL;
	ts->nmcp = 0;
}

const struct mcp_decl *toolset_find_mcp(const struct toolset *ts, const char *name)
{
	for (size_t i = 0; i < ts->nmcp; i++)
		if (strcmp(ts->mcp[i].name, name) == 0)
			return &ts->mcp[i];
	return NULL;
}

const struct tooldef *toolset_find(const struct toolset *ts, const char *name)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->v[i].name, name) == 0)
			return &ts->v[i];
	return NULL;
}

/* Where a tool error happened: the file, and the tool's (or MCP server's) name or index. */
struct where {
	const char *file;
	const char *name;   /* NULL until the name is known to be valid */
	size_t idx;
	const char *kind;   /* NULL: "tool"; "MCP server" */
};

static AI_PRINTF(3, 4) int tool_err(struct ai_err *err, const struct where *w, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!w->file)
		return ai_errf(err, AI_EX_CONFIG, "%s", what);
	if (w->name)
		return ai_errf(err, AI_EX_CONFIG, "tools file '%s', %s '%s': %s", w->file,
			       w->kind ? w->kind : "tool", w->name, what);
	return ai_errf(err, AI_EX_CONFIG, "tools file '%s', tool #%zu: %s", w->file, w->idx + 1, what);
}

static bool valid_tool_name(const char *s, size_t len)
{
	if (len < 1 || len > TOOL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isascii(c) && (isalnum(c) || c == '_' || c == '-')))
			return false;
	}
	return true;
}

static bool valid_env_name(const char *s, size_t len)
{
	if (len < 1 || !(isascii((unsigned char)s[0]) &&
			 (isalpha((unsigned char)s[0]) || s[0] == '_')))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isascii(c) && (isalnum(c) || c == '_')))
			return false;
	}
	return true;
}

static bool is_exec_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/*
 * Resolves argv[0] to an absolute executable, as execvp would but once,
 * now, and never against the working directory: empty and relative PATH
 * entries are skipped.  Returns owned or NULL with err filled.
 */
static char *resolve_cmd(const char *cmd, const struct where *w, struct ai_err *err)
{
	const char *path, *p;
	struct buf b;

	if (cmd[0] == '/') {
		if (is_exec_file(cmd))
			return strdup(cmd);
		if (access(cmd, X_OK) == 0)
			errno = EACCES;     /* a directory, say */
		tool_err(err, w, "cannot run '%s': %s", cmd, strerror(errno));
		return NULL;
	}
	if (strchr(cmd, '/')) {
		tool_err(err, w, "argv[0] '%s' must be an absolute path or a command name found in PATH", cmd);
		return NULL;
	}
	path = getenv("PATH");
	if (!path)
		path = DEFAULT_PATH;
	buf_init(&b, PATH_MAX);
	for (p = path; ; ) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		buf_reset(&b);
		if (n > 0 && p[0] == '/' && buf_add(&b, p, n) == 0 && buf_addch(&b, '/') == 0 &&
		    buf_addstr(&b, cmd) == 0 && is_exec_file(b.data))
			return buf_detach(&b, NULL);
		if (!end)
			break;
		p = end + 1;
	}
	buf_release(&b);
	tool_err(err, w, "command '%s' not found in PATH; give its absolute path", cmd);
	return NULL;
}

char *toolrun_resolve(const char *cmd, struct ai_err *err)
{
	const struct where w = { NULL, NULL, 0, NULL };

	return resolve_cmd(cmd, &w, err);
}

/* Returns an owned NULL-terminated copy of a JSON array of strings, or NULL with *bad set. */
static char **string_array(json_object *a, size_t *bad, bool *oom)
{
	size_t n = json_object_array_length(a);
	char **v = calloc(n + 1, sizeof(*v));

	*oom = false;
	if (!v) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(a, i);

		if (!json_object_is_type(s, json_type_string) ||
		    strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s)) {
			*bad = i;
			goto fail;
		}
		v[i] = strdup(json_object_get_string(s));
		if (!v[i]) {
			*oom = true;
			goto fail;
		}
	}
	return v;
fail:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static int parse_argv(json_object *a, struct tooldef *t, const struct where *w, struct ai_err *err)
{
	size_t bad = 0;
	bool oom;

	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) == 0)
		return tool_err(err, w, "\"argv\" must be a non-empty array of strings");
	t->argv = string_array(a, &bad, &oom);
	if (!t->argv) {
		if (oom)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		return tool_err(err, w, "argv[%zu] is not a string", bad);
	}
	if (t->argv[0][0] == '\0')
		return tool_err(err, w, "argv[0] is empty");
	t->path = resolve_cmd(t->argv[0], w, err);
	return t->path ? 0 : -1;
}

static int parse_env(json_object *a, struct tooldef *t, const struct where *w, struct ai_err *err)
{
	size_t bad = 0;
	bool oom;

	if (!json_object_is_type(a, json_type_array))
		return tool_err(err, w, "\"env\" must be an array of variable names");
	t->env = string_array(a, &bad, &oom);
	if (!t->env) {
		if (oom)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		return tool_err(err, w, "env[%zu] is not a string", bad);
	}
	for (size_t i = 0; t->env[i]; i++) {
		size_t n = strlen(t->env[i]);

		if (!valid_env_name(t->env[i], n))
			return tool_err(err, w, "env '%s' is not a variable name", t->env[i]);
		if (toolrun_env_secret(t->env[i], n))
			return tool_err(err, w, "env '%s' looks like a secret and is never passed to a "
					"tool; let the tool read it from a file", t->env[i]);
	}
	return 0;
}

static json_object *empty_schema(void)
{
	json_object *o = json_object_new_object(), *p = json_object_new_object();
	json_object *type = json_object_new_string("object");

	if (!o || !p || !type || json_object_object_add(o, "type", type)) {
		json_object_put(type);
		goto fail;
	}
	if (json_object_object_add(o, "properties", p))
		goto fail;
	return o;
fail:
	json_object_put(p);
	json_object_put(o);
	return NULL;
}

/* Refuses a member of o whose key is not one of known[0..n): a misspelt key is said, not ignored. */
static int check_keys(json_object *o, const char *const *known, size_t n, const struct where *w,
		      struct ai_err *err)
{
	json_object_object_foreach(o, key, val) {
		size_t i;

		(void)val;
		for (i = 0; i < n; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (i == n)
			return tool_err(err, w, "unknown key \"%s\"", key);
	}
	return 0;
}

/* The integer member key of o, when present, as 1..TOOL_TIMEOUT_MAX ms into *out. */
static int parse_ms(json_object *o, const char *key, long *out, const struct where *w,
		    struct ai_err *err)
{
	json_object *v;
	int64_t ms;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return tool_err(err, w, "\"%s\" must be an integer", key);
	ms = json_object_get_int64(v);
	if (ms < 1 || ms > TOOL_TIMEOUT_MAX)
		return tool_err(err, w, "\"%s\" must be from 1 to %ld", key, TOOL_TIMEOUT_MAX);
	*out = (long)ms;
	return 0;
}

/* Fills t from the JSON object o; on error t holds what was parsed (release it). */
static int parse_tool(json_object *o, struct where *w, struct tooldef *t, struct ai_err *err)
{
	static const char *const known[] = {
		"name", "description", "parameters", "argv", "side_effects", "timeout_ms", "env"
	};
	json_object *v;

	memset(t, 0, sizeof(*t));
	t->side_effects = true;
	if (!json_object_is_type(o, json_type_object))
		return tool_err(err, w, "not a JSON object");

	if (!json_object_object_get_ex(o, "name", &v))
		return tool_err(err, w, "\"name\" is missing");
	if (!json_object_is_type(v, json_type_string) ||
	    !valid_tool_name(json_object_get_string(v), (size_t)json_object_get_string_len(v)))
		return tool_err(err, w, "\"name\" must be 1 to 64 of the characters a-z A-Z 0-9 _ -");
	t->name = strdup(json_object_get_string(v));
	t->file = strdup(w->file);
	if (!t->name || !t->file)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	w->name = t->name;

	if (check_keys(o, known, AI_ARRAY_LEN(known), w, err))
		return -1;

	if (json_object_object_get_ex(o, "description", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return tool_err(err, w, "\"description\" must be a string");
		t->description = strdup(json_object_get_string(v));
	} else {
		t->description = strdup("");
	}
	if (!t->description)
		return ai_errf(err, AI_EX_OSERR, "out of memory");

	if (json_object_object_get_ex(o, "parameters", &v)) {
		if (!json_object_is_type(v, json_type_object))
			return tool_err(err, w, "\"parameters\" must be a JSON Schema object");
		t->parameters = json_object_get(v);
	} else {
		t->parameters = empty_schema();
		if (!t->parameters)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
	}

	if (json_object_object_get_ex(o, "side_effects", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return tool_err(err, w, "\"side_effects\" must be true or false");
		t->side_effects = json_object_get_boolean(v);
	}

	if (parse_ms(o, "timeout_ms", &t->timeout_ms, w, err))
		return -1;

	if (json_object_object_get_ex(o, "env", &v) && parse_env(v, t, w, err))
		return -1;

	if (!json_object_object_get_ex(o, "argv", &v))
		return tool_err(err, w, "\"argv\" is missing");
	return parse_argv(v, t, w, err);
}

/* Reads a whole file of at most TOOLS_FILE_MAX bytes into b. */
static int read_file(const char *path, struct buf *b, struct ai_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return ai_errf_errno(err, AI_EX_CONFIG, "cannot open tools file '%s'", path);
	buf_init(b, TOOLS_FILE_MAX);
	if (!fd_read_all(fd, b, NULL)) {
		close(fd);
		return 0;
	}
	if (errno == EFBIG)
		ai_errf(err, AI_EX_CONFIG, "tools file '%s' is larger than %zu bytes", path, TOOLS_FILE_MAX);
	else if (errno == ENOMEM)
		ai_errf(err, AI_EX_OSERR, "out of memory");
	else
		ai_errf_errno(err, AI_EX_CONFIG, "cannot read tools file '%s'", path);
	close(fd);
	buf_release(b);
	return -1;
}

/* Parses the file's text; returns an owned object or NULL with err filled. */
static json_object *parse_file(const char *path, const struct buf *b, struct ai_err *err)
{
	struct json_tokener *tok = json_tokener_new();
	enum json_tokener_error jerr;
	json_object *root;
	size_t end, line = 1;

	if (!tok) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	root = json_tokener_parse_ex(tok, b->data ? b->data : "", (int)b->len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (end > b->len)
		end = b->len;
	for (size_t i = 0; i < end; i++)
		if (b->data[i] == '\n')
			line++;
	if (!root || jerr != json_tokener_success) {
		json_object_put(root);
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			ai_errf(err, AI_EX_CONFIG, "tools file '%s' is not valid JSON: it ends too early",
				path);
		else
			ai_errf(err, AI_EX_CONFIG, "tools file '%s' is not valid JSON: %s at line %zu",
				path, json_tokener_error_desc(jerr), line);
		return NULL;
	}
	for (size_t i = end; i < b->len; i++) {
		if (!isspace((unsigned char)b->data[i])) {
			json_object_put(root);
			ai_errf(err, AI_EX_CONFIG, "tools file '%s' is not valid JSON: "
				"unexpected text after the object at line %zu", path, line);
			return NULL;
		}
		if (b->data[i] == '\n')
			line++;
	}
	return root;
}

/* ---- MCP servers declared beside the tools ---- */

static int parse_str(json_object *o, const char *key, char **out, const struct where *w,
		     struct ai_err *err)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return tool_err(err, w, "\"%s\" must be a non-empty string", key);
	*out = strdup(json_object_get_string(v));
	return *out ? 0 : ai_errf(err, AI_EX_OSERR, "out of memory");
}

/* Fills d from the declaration o of the server name; on error d holds what was parsed. */
static int parse_mcp(const char *name, json_object *o, const char *file, struct mcp_decl *d,
		     struct ai_err *err)
{
	static const char *const known[] = {
		"command", "url", "headers_cmd", "env", "allow", "timeout_ms", "startup_timeout_ms"
	};
	struct where w = { file, name, 0, "MCP server" };
	json_object *v;

	memset(d, 0, sizeof(*d));
	if (!valid_tool_name(name, strlen(name)) || strlen(name) > 32)
		return ai_errf(err, AI_EX_CONFIG, "tools file '%s': the MCP server name '%.64s' must be "
			       "1 to 32 of the characters a-z A-Z 0-9 _ -", file, name);
	d->name = strdup(name);
	d->file = strdup(file);
	d->cmd.name = strdup(name);
	if (!d->name || !d->file || !d->cmd.name)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (!json_object_is_type(o, json_type_object))
		return tool_err(err, &w, "not a JSON object");
	if (check_keys(o, known, AI_ARRAY_LEN(known), &w, err))
		return -1;
	if (parse_str(o, "url", &d->url, &w, err) ||
	    parse_str(o, "headers_cmd", &d->headers_cmd, &w, err) ||
	    parse_ms(o, "timeout_ms", &d->timeout_ms, &w, err) ||
	    parse_ms(o, "startup_timeout_ms", &d->startup_timeout_ms, &w, err))
		return -1;
	if (d->url && strncmp(d->url, "http://", 7) && strncmp(d->url, "https://", 8))
		return tool_err(err, &w, "\"url\" must begin with http:// or https://");
	if (json_object_object_get_ex(o, "allow", &v)) {
		size_t bad = 0;
		bool oom;

		if (!json_object_is_type(v, json_type_array))
			return tool_err(err, &w, "\"allow\" must be an array of tool names");
		d->allow = string_array(v, &bad, &oom);
		if (!d->allow)
			return oom ? ai_errf(err, AI_EX_OSERR, "out of memory") :
			       tool_err(err, &w, "allow[%zu] is not a string", bad);
	}
	if (json_object_object_get_ex(o, "env", &v) && parse_env(v, &d->cmd, &w, err))
		return -1;
	if (d->headers_cmd && !d->url)
		return tool_err(err, &w, "\"headers_cmd\" is for a server at a \"url\"");
	if (json_object_object_get_ex(o, "command", &v)) {
		if (d->url)
			return tool_err(err, &w, "give \"command\" (stdio) or \"url\" (HTTP), not both");
		return parse_argv(v, &d->cmd, &w, err);
	}
	if (!d->url)
		return tool_err(err, &w, "\"command\" or \"url\" is missing");
	if (d->cmd.env)
		return tool_err(err, &w, "\"env\" is for a server started with \"command\"");
	return 0;
}

/* Appends the servers of the "mcp" object to ts: all or nothing. */
static int load_mcp(struct toolset *ts, json_object *mcp, const char *path, struct ai_err *err)
{
	size_t n = (size_t)json_object_object_length(mcp), done = 0;
	struct mcp_decl *v;

	if (!n)
		return 0;
	v = realloc(ts->mcp, (ts->nmcp + n) * sizeof(*v));
	if (!v)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	ts->mcp = v;
	{
		json_object_object_foreach(mcp, key, val) {
			struct mcp_decl *d = &v[ts->nmcp + done];

			if (parse_mcp(key, val, path, d, err)) {
				mcp_decl_release(d);
				goto fail;
			}
			for (size_t j = 0; j < ts->nmcp + done; j++) {
				if (strcmp(v[j].name, d->name) == 0) {
					ai_errf(err, AI_EX_CONFIG, "tools file '%s': the MCP server '%s' "
						"is already declared in '%s'", path, d->name, v[j].file);
					mcp_decl_release(d);
					goto fail;
				}
			}
			done++;
		}
	}
	ts->nmcp += n;
	return 0;
fail:
	while (done > 0)
		mcp_decl_release(&v[ts->nmcp + --done]);
	return -1;
}

int toolset_load(struct toolset *ts, const char *path, struct ai_err *err)
{
	struct buf b;
	json_object *root, *tools = NULL, *mcp = NULL;
	struct tooldef *v;
	size_t n, done = 0, nmcp0 = ts->nmcp;

	if (read_file(path, &b, err))
		return -1;
	root = parse_file(path, &b, err);
	buf_release(&b);
	if (!root)
		return -1;
	if (!json_object_is_type(root, json_type_object) ||
	    (json_object_object_get_ex(root, "tools", &tools) &&
	     !json_object_is_type(tools, json_type_array)) ||
	    (json_object_object_get_ex(root, "mcp", &mcp) &&
	     !json_object_is_type(mcp, json_type_object)) || (!tools && !mcp)) {
		json_object_put(root);
		return ai_errf(err, AI_EX_CONFIG, "tools file '%s' must hold an object "
			       "{\"tools\": [...]} or {\"mcp\": {...}}, or both", path);
	}
	if (mcp && load_mcp(ts, mcp, path, err)) {
		json_object_put(root);
		return -1;
	}
	n = tools ? json_object_array_length(tools) : 0;
	if (n == 0) {
		json_object_put(root);
		return 0;
	}
	v = realloc(ts->v, (ts->n + n) * sizeof(*v));
	if (!v) {
		json_object_put(root);
		goto fail_mcp;
	}
	ts->v = v;
	/* The new tools go after ts->n but count only once all are valid. */
	for (done = 0; done < n; done++) {
		struct tooldef *t = &v[ts->n + done];
		struct where w = { path, NULL, done, NULL };

		if (parse_tool(json_object_array_get_idx(tools, done), &w, t, err)) {
			tooldef_release(t);
			goto fail;
		}
		for (size_t j = 0; j < ts->n + done; j++) {
			if (strcmp(v[j].name, t->name) == 0) {
				tool_err(err, &w, "a tool of that name is already defined");
				tooldef_release(t);
				goto fail;
			}
		}
	}
	ts->n += n;
	json_object_put(root);
	return 0;
fail:
	while (done > 0)
		tooldef_release(&v[ts->n + --done]);
	json_object_put(root);
	/* All or nothing: the servers of this file go too. */
	while (ts->nmcp > nmcp0)
		mcp_decl_release(&ts->mcp[--ts->nmcp]);
	return -1;
fail_mcp:
	while (ts->nmcp > nmcp0)
		mcp_decl_release(&ts->mcp[--ts->nmcp]);
	return ai_errf(err, AI_EX_OSERR, "out of memory");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int toolset_load_dir(struct toolset *ts, const char *dir, struct ai_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, alloc = 0, n0 = ts->n, nmcp0 = ts->nmcp;
	struct buf path;
	int rc = -1;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return ai_errf_errno(err, AI_EX_CONFIG, "cannot open tools directory '%s'", dir);
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (n == alloc) {
			char **nn = realloc(names, (alloc ? alloc * 2 : 16) * sizeof(*nn));

			if (!nn)
				goto oom;
			names = nn;
			alloc = alloc ? alloc * 2 : 16;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto oom;
		n++;
	}
	if (errno) {
		ai_errf_errno(err, AI_EX_CONFIG, "cannot read tools directory '%s'", dir);
		goto out;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	buf_init(&path, 0);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct stat st;

		buf_reset(&path);
		if (buf_addstr(&path, dir) || buf_addch(&path, '/') || buf_addstr(&path, names[i])) {
			buf_release(&path);
			goto oom;
		}
		/* Skip what is not a regular file (a directory named x.json, a dangling link). */
		if (stat(path.data, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		rc = toolset_load(ts, path.data, err);
	}
	buf_release(&path);
	if (rc) {
		while (ts->n > n0)
			tooldef_release(&ts->v[--ts->n]);
		while (ts->nmcp > nmcp0)
			mcp_decl_release(&ts->mcp[--ts->nmcp]);
	}
	goto out;
oom:
	rc = ai_errf(err, AI_EX_OSERR, "out of memory");
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int toolset_load_all(struct toolset *ts, bool no_default, const char *const *files, size_t n,
		     struct ai_err *err)
{
	if (!no_default) {
		char *dir = config_xdg_path("CONFIG", "tools");
		int rc = dir ? toolset_load_dir(ts, dir, err) : 0;

		free(dir);
		if (rc)
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (toolset_load(ts, files[i], err))
			return -1;
	return 0;
}

json_object *tooldef_to_openai(const struct tooldef *t)
{
	json_object *o = json_object_new_object(), *f = json_object_new_object();
	json_object *type = json_object_new_string("function");
	json_object *name = json_object_new_string(t->name);
	json_object *desc = json_object_new_string(t->description ? t->description : "");
	json_object *params = NULL;

	if (t->parameters && json_object_deep_copy(t->parameters, &params, NULL) != 0)
		params = NULL;
	if (!params)
		params = t->parameters ? NULL : empty_schema();
	if (!o || !f || !type || !name || !desc || !params)
		goto fail;
	/* Each add takes its value only on success: clear the pointer once owned. */
	if (json_object_object_add(f, "name", name))
		goto fail;
	name = NULL;
	if (json_object_object_add(f, "description", desc))
		goto fail;
	desc = NULL;
	if (json_object_object_add(f, "parameters", params))
		goto fail;
	params = NULL;
	if (json_object_object_add(o, "type", type))
		goto fail;
	type = NULL;
	if (json_object_object_add(o, "function", f))
		goto fail;
	return o;
fail:
	json_object_put(params);
	json_object_put(desc);
	json_object_put(name);
	json_object_put(type);
	json_object_put(f);
	json_object_put(o);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The runner                                                          */

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * Moves fd above 2, keeping it close-on-exec: if the caller runs with
 * stdin closed, a pipe could land on 0, and the child's dup2 onto 0..2
 * would then clobber it.
 */
static int move_high(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -1;
	close(*fd);
	*fd = nfd;
	return 0;
}

/* Both ends close-on-exec and above 2. */
static int cloexec_pipe(int fd[2])
{
	if (compat_pipe_cloexec(fd))
		return -1;
	if (move_high(&fd[0]) || move_high(&fd[1]))
		goto fail;
	return 0;
fail:
	close(fd[0]);
	close(fd[1]);
	fd[0] = fd[1] = -1;
	return -1;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Everything the child needs, computed before fork: after fork it may only
 * make async-signal-safe calls, so no malloc, no getenv. */
struct child_plan {
	const char *path;
	char *const *argv;
	char *const *envp;
	int in_r, out_w, err_w, st_w;
	long maxfd;
	struct { int res; struct rlimit rl; } lim[4];
	int nlim;
	bool die_with_parent;   /* a long-lived child (toolproc) */
	pid_t parent;
};

enum { STAGE_RLIMIT = 1, STAGE_EXEC = 2, STAGE_SETUP = 3 };

static void add_limit(struct child_plan *p, int res, rlim_t soft, rlim_t hard)
{
	struct rlimit cur;

	if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
		if (hard > cur.rlim_max)
			hard = cur.rlim_max;
		if (soft > hard)
			soft = hard;
	}
	p->lim[p->nlim].res = res;
	p->lim[p->nlim].rl.rlim_cur = soft;
	p->lim[p->nlim].rl.rlim_max = hard;
	p->nlim++;
}

static void plan_limits(struct child_plan *p, const struct toolrun_limits *lim)
{
	p->nlim = 0;
	add_limit(p, RLIMIT_CORE, 0, 0);
	if (!lim)
		return;
	if (lim->cpu_seconds > 0)
		/* SIGXCPU at the soft limit, SIGKILL a second later at the hard one. */
		add_limit(p, RLIMIT_CPU, (rlim_t)lim->cpu_seconds, (rlim_t)lim->cpu_seconds + 1);
	if (lim->max_memory_mb > 0) {
		rlim_t mb = (rlim_t)lim->max_memory_mb;
		rlim_t bytes = mb > (RLIM_INFINITY - 1) / (1024 * 1024) ? RLIM_INFINITY - 1
									: mb * 1024 * 1024;

		add_limit(p, RLIMIT_AS, bytes, bytes);
	}
	if (lim->max_procs > 0)
		add_limit(p, RLIMIT_NPROC, (rlim_t)lim->max_procs, (rlim_t)lim->max_procs);
}

static void child_report(int fd, int stage, int e)
{
	int msg[2];
	ssize_t AI_UNUSED r;

	msg[0] = stage;
	msg[1] = e;
	r = write(fd, msg, sizeof(msg));
}

/* In the child: only async-signal-safe calls from here to execve. */
static void run_child(const struct child_plan *p)
{
	struct sigaction sa;
	sigset_t none;

	/* Its own process group, so that one kill reaches everything it starts. */
	setpgid(0, 0);
	if (p->die_with_parent) {
		/* A server lives as long as we do, not longer, even when we are SIGKILLed;
		 * a parent that died before the request leaves us to init: go now. */
		compat_die_with_parent(SIGKILL);
		if (getppid() != p->parent)
			_exit(127);
	}

	/* Handlers are reset by execve, but ignored signals stay ignored: the
	 * programs ignore SIGPIPE, and a tool's own pipelines need it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (dup2(p->in_r, 0) < 0 || dup2(p->out_w, 1) < 0 || dup2(p->err_w, 2) < 0) {
		child_report(p->st_w, STAGE_SETUP, errno);
		_exit(127);
	}
	for (int i = 0; i < p->nlim; i++) {
		if (setrlimit(p->lim[i].res, &p->lim[i].rl) != 0) {
			child_report(p->st_w, STAGE_RLIMIT, errno);
			_exit(127);
		}
	}

	/* No descriptor but 0-2 reaches the tool.  The status pipe stays
	 * until execve closes it (it is close-on-exec). */
	compat_close_from(3, p->st_w, p->maxfd);

	execve(p->path, p->argv, p->envp);
	child_report(p->st_w, STAGE_EXEC, errno);
	_exit(127);
}

/* Reads the child's status pipe: 0 when execve succeeded, else -1 with *stage, *e. */
static int read_status(int fd, int *stage, int *e)
{
	int msg[2];
	size_t got = 0;

	while (got < sizeof(msg)) {
		ssize_t r = read(fd, (char *)msg + got, sizeof(msg) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got < sizeof(msg))
		return 0;
	*stage = msg[0];
	*e = msg[1];
	return -1;
}

/*
 * Writes what it can of data to *fd without blocking; closes *fd when all
 * is written or the tool will not take it (EPIPE: the tool did not want
 * its input, which is its right).  SIGPIPE is blocked around the write and
 * consumed if raised, whatever the caller's disposition.
 */
static void feed(int *fd, const char *data, size_t len, size_t *off)
{
	sigset_t pipeset, old, pend;
	bool was_pending;

	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipeset, &old);
	while (*off < len) {
		size_t n = len - *off > 65536 ? 65536 : len - *off;
		ssize_t w = write(*fd, data + *off, n);

		if (w > 0) {
			*off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0 && errno == EPIPE && !was_pending) {
			struct timespec zero = { 0, 0 };

			while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
				;
		}
		*off = len;     /* give up on the rest */
	}
	if (*off >= len)
		close_fd(fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Reads what is available from *fd into b up to cap, discarding the rest
 * (setting *trunc); closes *fd at end of file.  Bounded per call so that a
 * tool that prints without end cannot keep us from the deadline.
 */
static void drain(int *fd, struct buf *b, size_t cap, bool *trunc)
{
	char chunk[65536];

	for (int round = 0; round < 16; round++) {
		ssize_t r = read(*fd, chunk, sizeof(chunk));

		if (r > 0) {
			size_t keep = b->len < cap ? cap - b->len : 0;

			if (keep > (size_t)r)
				keep = (size_t)r;
			if (keep && buf_add(b, chunk, keep))
				keep = 0;
			if (keep < (size_t)r && trunc)
				*trunc = true;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_fd(fd);   /* end of file, or an error we treat as one */
		return;
	}
}

/*
 * True once the child has exited.  *lost is set when it can no longer be
 * waited for: the caller ignores SIGCHLD (children are then reaped by the
 * kernel) or reaped it with a waitpid(-1) of its own.
 */
static bool child_exited(pid_t pid, bool *lost)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	/* WNOWAIT: leave it a zombie, so that its pid, which is also the
	 * process group's id, cannot be reused before we kill the group. */
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		if (errno != ECHILD)
			return false;
		*lost = true;
		return true;
	}
	return si.si_pid == pid;
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);    /* ESRCH: nothing left, fine */
	kill(pid, SIGKILL);     /* in case it left its group */
}

/* Returns 0, or -1 when the child was already reaped by someone else. */
static int reap(pid_t pid, int *status)
{
	pid_t r;

	while ((r = waitpid(pid, status, 0)) < 0 && errno == EINTR)
		;
	return r == pid ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* What a tool leaves outside its process group                        */

/*
 * One kill of the tool's process group reaches everything it starts,
 * except a descendant that left the group (setsid, setpgid): killing the
 * group cannot find it, and once its parent dies it is init's.  So the
 * caller becomes a child subreaper: an orphaned descendant becomes our
 * child instead of init's, and after the tool ends every child we did not
 * have before it started is killed and reaped, again and again, until
 * none is left (killing one orphans its own children, which then come to
 * us too).  Where compat_become_subreaper fails, the process group is all
 * that holds.
 */

#define ORPHAN_PASSES 1000      /* a fork bomb outside the group stops at RLIMIT_NPROC */

/* Kills and reaps every child of ours that is not in before: what the tool left behind. */
static void kill_orphans(const struct compat_pids *before)
{
	struct compat_pids now = { NULL, 0, 0 };

	for (int pass = 0; pass < ORPHAN_PASSES; pass++) {
		size_t found = 0;

		if (compat_list_children(&now) && !now.n)
			break;
		for (size_t i = 0; i < now.n; i++) {
			if (compat_pids_has(before, now.v[i]))
				continue;
			kill(now.v[i], SIGKILL);
			now.v[found++] = now.v[i];
		}
		if (!found)
			break;
		/* Ours, so waiting cannot block long: each was just sent SIGKILL. */
		for (size_t i = 0; i < found; i++)
			while (waitpid(now.v[i], NULL, 0) < 0 && errno == EINTR)
				;
	}
	compat_pids_release(&now);
}

void toolrun_result_release(struct toolrun_result *res)
{
	if (!res)
		return;
	buf_release(&res->out);
	buf_release(&res->err);
}

/*
 * One run of a tool, shared by the steps below: toolrun is run_prepare,
 * run_spawn, run_pump (which watches the clock and the limits in
 * run_watch), run_collect, then run_release whatever happened.
 */
struct run {
	const struct tooldef *t;
	struct toolrun_result *res;
	struct child_plan plan;
	char **envp;
	int in[2], out[2], errp[2], st[2];
	int pidfd, status;
	pid_t pid;
	size_t cap;             /* how much stdout is kept */
	long timeout, start, deadline, grace_end;
	const volatile sig_atomic_t *cancel;
	const char *args;       /* the model's arguments, fed to stdin */
	size_t args_len, args_off;
	bool exited, killed, cancelled, lost;
	bool keep_stdin;        /* a long-lived child (toolproc): its stdin stays open */
	struct compat_pids before;      /* our children before the tool started */
	bool reaper;
};

/* Fills r and the child's plan; nothing to release on failure. */
static int run_prepare(struct run *r, const struct tooldef *t, const char *args_json,
		       const struct toolrun_limits *lim, struct toolrun_result *res,
		       struct ai_err *err)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	r->res = res;
	r->in[0] = r->in[1] = r->out[0] = r->out[1] = -1;
	r->errp[0] = r->errp[1] = r->st[0] = r->st[1] = -1;
	r->pidfd = -1;
	r->cap = lim && lim->max_output ? lim->max_output : TOOLRUN_MAX_OUTPUT;
	r->timeout = t->timeout_ms > 0 ? t->timeout_ms
		: lim && lim->timeout_ms > 0 ? lim->timeout_ms : TOOLRUN_TIMEOUT_MS;
	r->cancel = lim ? lim->cancel : NULL;
	r->args = args_json ? args_json : "{}";
	r->args_len = strlen(r->args);

	memset(res, 0, sizeof(*res));
	res->exit_status = -1;
	buf_init(&res->out, r->cap);
	buf_init(&res->err, TOOLRUN_MAX_STDERR);
	if (!t->argv || !t->argv[0])
		return ai_errf(err, AI_EX_SOFTWARE, "tool '%s' has no argv", t->name ? t->name : "");
	if (r->cancel && *r->cancel)
		return ai_errf(err, AI_EX_INTERRUPT, "tool '%s' interrupted", t->name ? t->name : "");

	r->plan.path = t->path ? t->path : t->argv[0];
	r->plan.argv = t->argv;
	r->plan.maxfd = sysconf(_SC_OPEN_MAX);
	if (r->plan.maxfd < 0 || r->plan.maxfd > (1L << 20))
		r->plan.maxfd = 1L << 20;
	plan_limits(&r->plan, lim);
	r->envp = scrubbed_env(t->env);
	if (!r->envp)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	r->plan.envp = r->envp;
	return 0;
}

/* Forks and execs the tool; 0 once execve succeeded, else -1 with err. */
static int run_spawn(struct run *r, struct ai_err *err)
{
	const char *path = r->plan.path;
	int stage = 0, e = 0;

	if (cloexec_pipe(r->in) || cloexec_pipe(r->out) || cloexec_pipe(r->errp) ||
	    cloexec_pipe(r->st))
		return ai_errf_errno(err, AI_EX_OSERR, "cannot run '%s': pipe", path);
	r->plan.in_r = r->in[0];
	r->plan.out_w = r->out[1];
	r->plan.err_w = r->errp[1];
	r->plan.st_w = r->st[1];

	/* What is ours before the tool starts is not the tool's to have left behind. */
	r->reaper = compat_become_subreaper() && compat_list_children(&r->before) == 0;
	r->start = (long)mono_ms();
	r->pid = fork();
	if (r->pid < 0)
		return ai_errf_errno(err, AI_EX_OSERR, "cannot run '%s': fork", path);
	if (r->pid == 0)
		run_child(&r->plan);

	/* Both sides set the group, so neither the kill nor the exec can race it. */
	setpgid(r->pid, r->pid);
	close_fd(&r->in[0]);
	close_fd(&r->out[1]);
	close_fd(&r->errp[1]);
	close_fd(&r->st[1]);
	if (read_status(r->st[0], &stage, &e)) {
		reap(r->pid, &r->status);
		errno = e;
		if (stage == STAGE_EXEC)
			return ai_errf_errno(err, AI_EX_CONFIG, "cannot run '%s'", path);
		if (stage == STAGE_RLIMIT)
			return ai_errf_errno(err, AI_EX_OSERR, "cannot set resource limits for '%s'", path);
		return ai_errf_errno(err, AI_EX_OSERR, "cannot start '%s'", path);
	}
	close_fd(&r->st[0]);
	set_nonblock(r->in[1]);
	set_nonblock(r->out[0]);
	set_nonblock(r->errp[0]);
	if (r->args_len == 0 && !r->keep_stdin)
		close_fd(&r->in[1]);
	/* A pidfd becomes readable when the child exits, so poll needs no tick. */
	r->pidfd = compat_pidfd_open(r->pid);
	r->deadline = r->start + r->timeout;
	return 0;
}

/*
 * The clock and the limits, once a turn: cancels, notices the exit, kills
 * at the deadline.  False when the pump is done; else *wait is how long
 * the next poll may sleep.
 */
static bool run_watch(struct run *r, long *wait)
{
	long now;

	if (r->cancel && *r->cancel) {
		kill_group(r->pid);
		r->cancelled = true;
		return false;
	}
	if (!r->exited && child_exited(r->pid, &r->lost)) {
		r->exited = true;
		/* Whatever it left behind in its group goes with it. */
		kill(-r->pid, SIGKILL);
		close_fd(&r->in[1]);
		r->grace_end = (long)mono_ms() + DRAIN_GRACE_MS;
	}
	now = (long)mono_ms();
	if (r->exited && (r->out[0] < 0 && r->errp[0] < 0))
		return false;
	if (r->exited && now >= r->grace_end)
		return false;
	if (!r->exited && !r->killed && now >= r->deadline) {
		r->res->timed_out = true;
		r->killed = true;
		kill_group(r->pid);
	}
	if (r->exited)
		*wait = r->grace_end - now;
	else if (r->killed)
		*wait = 10;
	else
		*wait = r->deadline - now;
	if (r->pidfd < 0 && !r->exited && *wait > 10)
		*wait = 10;
	if (r->cancel && *wait > 50)
		*wait = 50;
	if (*wait < 0)
		*wait = 0;
	return true;
}

/* Feeds stdin and drains stdout and stderr until run_watch says stop; -1 when poll fails. */
static int run_pump(struct run *r, struct ai_err *err)
{
	long wait;

	while (run_watch(r, &wait)) {
		struct pollfd pfd[4];
		nfds_t np = 0;
		int pin = -1, pout = -1, perr = -1;

		if (r->in[1] >= 0) {
			pin = (int)np;
			pfd[np++] = (struct pollfd){ r->in[1], POLLOUT, 0 };
		}
		if (r->out[0] >= 0) {
			pout = (int)np;
			pfd[np++] = (struct pollfd){ r->out[0], POLLIN, 0 };
		}
		if (r->errp[0] >= 0) {
			perr = (int)np;
			pfd[np++] = (struct pollfd){ r->errp[0], POLLIN, 0 };
		}
		if (r->pidfd >= 0 && !r->exited)
			pfd[np++] = (struct pollfd){ r->pidfd, POLLIN, 0 };
		if (poll(pfd, np, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			ai_errf_errno(err, AI_EX_OSERR, "cannot run '%s': poll", r->plan.path);
			kill_group(r->pid);
			reap(r->pid, &r->status);
			return -1;
		}
		if (pin >= 0 && pfd[pin].revents)
			feed(&r->in[1], r->args, r->args_len, &r->args_off);
		if (pout >= 0 && pfd[pout].revents)
			drain(&r->out[0], &r->res->out, r->cap, &r->res->truncated);
		if (perr >= 0 && pfd[perr].revents)
			drain(&r->errp[0], &r->res->err, TOOLRUN_MAX_STDERR, NULL);
	}
	return 0;
}

/* Reaps the tool and says how it ended. */
static int run_collect(struct run *r, struct ai_err *err)
{
	struct toolrun_result *res = r->res;

	if (reap(r->pid, &r->status))
		r->lost = true;
	res->ms = (long)mono_ms() - r->start;
	if (r->cancelled)
		return ai_errf(err, AI_EX_INTERRUPT, "tool '%s' interrupted",
			       r->t->name ? r->t->name : r->plan.path);
	if (r->lost) {
		/* Its output is here, but not how it ended. */
	} else if (WIFEXITED(r->status)) {
		res->exit_status = WEXITSTATUS(r->status);
	} else if (WIFSIGNALED(r->status)) {
		res->term_signal = WTERMSIG(r->status);
	}
	return 0;
}

/* Closes what is open and kills what the tool left outside its group. */
static void run_release(struct run *r)
{
	for (int i = 0; i < 2; i++) {
		close_fd(&r->in[i]);
		close_fd(&r->out[i]);
		close_fd(&r->errp[i]);
		close_fd(&r->st[i]);
	}
	close_fd(&r->pidfd);
	if (r->reaper)
		kill_orphans(&r->before);
	compat_pids_release(&r->before);
	free(r->envp);
}

int toolrun(const struct tooldef *t, const char *args_json, const struct toolrun_limits *lim,
            struct toolrun_result *res, struct ai_err *err)
{
	struct run r;
	int rc = -1;

	if (run_prepare(&r, t, args_json, lim, res, err))
		return -1;
	if (!run_spawn(&r, err) && !run_pump(&r, err))
		rc = run_collect(&r, err);
	run_release(&r);
	if (rc)
		toolrun_result_release(res);
	return rc;
}

/* ------------------------------------------------------------------ */
/* A long-lived child (an MCP server)                                  */

int toolproc_start(struct toolproc *p, const struct tooldef *t, const struct toolrun_limits *lim,
		   struct ai_err *err)
{
	struct toolrun_result res;
	struct run r;
	int rc;

	memset(p, 0, sizeof(*p));
	p->in = p->out = p->err = p->pidfd = -1;
	if (run_prepare(&r, t, "", lim, &res, err)) {
		toolrun_result_release(&res);
		return -1;
	}
	r.keep_stdin = true;
	r.plan.die_with_parent = true;
	r.plan.parent = getpid();
	rc = run_spawn(&r, err);
	toolrun_result_release(&res);
	if (rc) {
		run_release(&r);
		return -1;
	}
	p->pid = r.pid;
	p->in = r.in[1];
	p->out = r.out[0];
	p->err = r.errp[0];
	p->pidfd = r.pidfd;
	r.in[1] = r.out[0] = r.errp[0] = r.pidfd = -1;
	p->reaper = r.reaper;
	p->before = r.before;
	memset(&r.before, 0, sizeof(r.before));
	r.reaper = false;
	run_release(&r);
	return 0;
}

bool toolproc_exited(struct toolproc *p)
{
	bool lost = false;

	if (p->pid <= 0)
		return true;
	return child_exited(p->pid, &lost);
}

/* Waits up to ms for the child to exit; true when it has. */
static bool toolproc_wait_exit(struct toolproc *p, long ms)
{
	long end = (long)mono_ms() + ms;

	for (;;) {
		long now = (long)mono_ms();
		struct pollfd pfd = { p->pidfd, POLLIN, 0 };

		if (toolproc_exited(p))
			return true;
		if (now >= end)
			return false;
		if (p->pidfd >= 0) {
			if (poll(&pfd, 1, (int)(end - now)) < 0 && errno != EINTR)
				return toolproc_exited(p);
		} else {
			struct timespec ts = { 0, 10 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
}

void toolproc_stop(struct toolproc *p, long grace_ms)
{
	int status;

	if (p->pid > 0) {
		/* The polite way first: end of input is how an MCP stdio server is told to stop. */
		close_fd(&p->in);
		if (!toolproc_wait_exit(p, grace_ms)) {
			kill(-p->pid, SIGTERM);
			kill(p->pid, SIGTERM);
			if (!toolproc_wait_exit(p, grace_ms))
				kill_group(p->pid);
		}
		/* Whatever is left of its group goes with it, as for a tool. */
		kill(-p->pid, SIGKILL);
		reap(p->pid, &status);
		p->pid = 0;
	}
	close_fd(&p->in);
	close_fd(&p->out);
	close_fd(&p->err);
	close_fd(&p->pidfd);
	if (p->reaper)
		kill_orphans(&p->before);
	p->reaper = false;
	compat_pids_release(&p->before);
}

int toolproc_write(struct toolproc *p, const char *data, size_t len, long deadline,
		   const volatile sig_atomic_t *cancel, int (*reader)(void *ud), void *ud,
		   struct ai_err *err)
{
	sigset_t pipeset, old, pend;
	bool was_pending;
	size_t off = 0;
	int rc = 0;

	if (p->in < 0)
		return ai_errf(err, AI_EX_UNAVAILABLE, "its input is closed");
	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	sigemptyset(&pend);
	sigpending(&pend);
	was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipeset, &old);
	while (off < len) {
		ssize_t w = write(p->in, data + off, len - off > 65536 ? 65536 : len - off);
		long now;
		struct pollfd pfd[3] = { { p->in, POLLOUT, 0 } };
		nfds_t np = 1;

		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EPIPE && !was_pending) {
				struct timespec zero = { 0, 0 };

				while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
					;
			}
			rc = ai_errf(err, AI_EX_UNAVAILABLE, "it no longer reads its input");
			break;
		}
		if (cancel && *cancel) {
			rc = ai_errf(err, AI_EX_INTERRUPT, "interrupted");
			break;
		}
		now = (long)mono_ms();
		if (now >= deadline) {
			rc = ai_errf(err, AI_EX_TEMPFAIL, "it did not read its input in time");
			break;
		}
		if (reader) {
			if (p->out >= 0)
				pfd[np++] = (struct pollfd){ p->out, POLLIN, 0 };
			if (p->err >= 0)
				pfd[np++] = (struct pollfd){ p->err, POLLIN, 0 };
		}
		if (poll(pfd, np, (int)(deadline - now < 50 ? deadline - now : 50)) > 0 && np > 1 &&
		    (pfd[1].revents || (np > 2 && pfd[2].revents)) && reader(ud)) {
			rc = ai_errf(err, AI_EX_UNAVAILABLE, "its output ended");
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
