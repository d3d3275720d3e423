/*
 * template.c - prompts as files (see template.h).
 */
#include "ai.h"
#include "api/template.h"
#include "config.h"
#include "fdio.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* A template larger than this is a mistake, not a prompt. */
#define TEMPLATE_MAX (1u << 20)

static const char *const header_keys[] = { "system", "model", "temperature", "max_tokens", "schema" };

int template_name_ok(const char *name)
{
	if (!name[0] || name[0] == '.' || strlen(name) > 100)
		return -1;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return -1;
	return 0;
}

/* Which header key the line starting at s (n bytes) sets, or -1 when it is no header line. */
static int header_key(const char *s, size_t n, const char **value, size_t *vlen)
{
	for (size_t i = 0; i < AI_ARRAY_LEN(header_keys); i++) {
		size_t k = strlen(header_keys[i]);

		if (n > k && !memcmp(s, header_keys[i], k) && s[k] == ':') {
			const char *v = s + k + 1, *e = s + n;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
				e--;
			*value = v;
			*vlen = (size_t)(e - v);
			return (int)i;
		}
	}
	return -1;
}

static int set_header(struct template *t, int key, const char *v, size_t n, long lineno,
		      struct ai_err *err)
{
	char *s = strndup(v, n), *end;

	if (!s)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	switch (key) {
	case 0: free(t->system); t->system = s; return 0;
	case 1: free(t->model); t->model = s; return 0;
	case 4: free(t->schema); t->schema = s; return 0;
	case 2:
		errno = 0;
		t->temperature = strtod(s, &end);
		if (!n || *end || errno || !(t->temperature >= 0 && t->temperature <= 2)) {
			free(s);
			return ai_errf(err, AI_EX_DATAERR, "template line %ld: temperature wants a number "
				       "from 0 to 2", lineno);
		}
		break;
	default:
		errno = 0;
		t->max_tokens = strtol(s, &end, 10);
		if (!n || *end || errno || t->max_tokens < 1 || t->max_tokens > 10000000) {
			free(s);
			return ai_errf(err, AI_EX_DATAERR, "template line %ld: max_tokens wants a whole "
				       "number from 1 to 10000000", lineno);
		}
	}
	free(s);
	return 0;
}

int template_parse(struct template *t, const char *text, size_t len, struct ai_err *err)
{
	size_t i = 0;
	long lineno = 0;

	memset(t, 0, sizeof(*t));
	t->temperature = NAN;
	if (memchr(text, '\0', len)) {
		ai_errf(err, AI_EX_DATAERR, "template holds a NUL byte");
		goto fail;
	}
	/* Header lines, as long as they are; a blank line ends them and is dropped. */
	while (i < len) {
		const char *line = text + i, *nl = memchr(line, '\n', len - i), *v;
		size_t n = nl ? (size_t)(nl - line) : len - i, vlen;
		int key;

		lineno++;
		if (!n || (n == 1 && line[0] == '\r')) {
			i += n + 1;
			break;
		}
		if ((key = header_key(line, n, &v, &vlen)) < 0)
			break;
		if (set_header(t, key, v, vlen, lineno, err))
			goto fail;
		i += n + 1;
	}
	if (i > len)
		i = len;
	if (!(t->prompt = strndup(text + i, len - i))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto fail;
	}
	/* The file's last newline is the file's, not the prompt's. */
	{
		size_t pl = strlen(t->prompt);

		while (pl && (t->prompt[pl - 1] == '\n' || t->prompt[pl - 1] == '\r'))
			t->prompt[--pl] = '\0';
	}
	return 0;
fail:
	template_release(t);
	return -1;
}

void template_release(struct template *t)
{
	free(t->system);
	free(t->model);
	free(t->schema);
	free(t->prompt);
	memset(t, 0, sizeof(*t));
	t->temperature = NAN;
}

int template_load(struct template *t, const char *arg, struct ai_err *err)
{
	char *path = NULL, rel[128];
	struct buf text;
	struct stat st;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	t->temperature = NAN;
	if (arg[0] == '@') {
		path = strdup(arg + 1);
	} else {
		if (template_name_ok(arg))
			return ai_errf(err, AI_EX_USAGE, "'%.100s' is no template name (letters, digits, "
				       "'.', '_' and '-'; @FILE for a file)", arg);
		snprintf(rel, sizeof(rel), "templates/%s", arg);
		path = config_xdg_path("CONFIG", rel);
	}
	if (!path)
		return ai_errf(err, AI_EX_CONFIG, "no HOME: cannot find the templates");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && arg[0] != '@')
			ai_errf(err, AI_EX_NOINPUT, "no template '%.100s' (looked for %.120s; "
				"--list-templates lists them)", arg, path);
		else
			ai_errf(err, AI_EX_NOINPUT, "cannot open template '%.120s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		ai_errf(err, AI_EX_NOINPUT, "template '%.120s' is not a regular file", path);
		free(path);
		return -1;
	}
	buf_init(&text, TEMPLATE_MAX);
	if (fd_read_all(fd, &text, NULL)) {
		ai_errf(err, errno == EFBIG ? AI_EX_DATAERR : AI_EX_NOINPUT, "cannot read template "
			"'%.120s': %s", path, errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		close(fd);
		buf_release(&text);
		free(path);
		return -1;
	}
	close(fd);
	rc = template_parse(t, text.data ? text.data : "", text.len, err);
	buf_release(&text);
	free(path);
	return rc;
}

int template_expand(const char *tmpl, int (*fn)(const char *name, struct buf *out, void *ud),
		    void *ud, struct buf *out, char *missing, size_t n)
{
	const char *s = tmpl;

	while (*s) {
		const char *open = strstr(s, "{{"), *close, *a, *b;
		char name[128];
		size_t nl;

		if (!open || !(close = strstr(open + 2, "}}"))) {
			buf_addstr(out, s);
			break;
		}
		buf_add(out, s, (size_t)(open - s));
		for (a = open + 2; *a == ' '; a++)
			;
		for (b = close; b > a && b[-1] == ' '; b--)
			;
		nl = (size_t)(b - a);
		if (nl >= sizeof(name))
			nl = sizeof(name) - 1;
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (fn(name, out, ud)) {
			snprintf(missing, n, "%s", name);
			return -1;
		}
		s = close + 2;
	}
	return 0;
}

struct fill {
	const char *input;
	const char *const *params;
	size_t nparams;
	bool used_input;
};

static int fill_one(const char *name, struct buf *out, void *ud)
{
	struct fill *f = ud;
	const char *v;

	if (!strcmp(name, "input")) {
		f->used_input = true;
		return buf_addstr(out, f->input ? f->input : "") ? -1 : 0;
	}
	if ((v = template_param(f->params, f->nparams, name)))
		return buf_addstr(out, v) ? -1 : 0;
	return -1;
}

const char *template_param(const char *const *params, size_t nparams, const char *name)
{
	size_t nl = strlen(name);

	/* The last --param of a name wins, as the last of an option does. */
	for (size_t i = nparams; i-- > 0;)
		if (!strncmp(params[i], name, nl) && params[i][nl] == '=')
			return params[i] + nl + 1;
	return NULL;
}

int template_fill(const struct template *t, const char *input, const char *const *params,
		  size_t nparams, struct buf *out, struct ai_err *err)
{
	struct fill f = { input, params, nparams, false };
	char missing[128];

	if (template_expand(t->prompt ? t->prompt : "", fill_one, &f, out, missing, sizeof(missing)))
		return ai_errf(err, AI_EX_USAGE, "the template needs --param %s=VALUE", missing);
	if (!f.used_input && input && input[strspn(input, " \t\r\n")]) {
		if (out->len)
			buf_addstr(out, "\n\n");
		buf_addstr(out, input);
	}
	return 0;
}

/* t as a template file's text into b; -1 with err for what a file cannot hold. */
static int format(const struct template *t, struct buf *b, struct ai_err *err)
{
	if (t->system && strchr(t->system, '\n'))
		return ai_errf(err, AI_EX_USAGE, "a template's system: is one line; the system message has several");
	if (t->schema && strchr(t->schema, '\n'))
		return ai_errf(err, AI_EX_USAGE, "a template's schema: is one line; use --schema @FILE");
	if (t->system)
		buf_addf(b, "system: %s\n", t->system);
	if (t->model)
		buf_addf(b, "model: %s\n", t->model);
	if (!isnan(t->temperature))
		buf_addf(b, "temperature: %g\n", t->temperature);
	if (t->max_tokens)
		buf_addf(b, "max_tokens: %ld\n", t->max_tokens);
	if (t->schema)
		buf_addf(b, "schema: %s\n", t->schema);
	if (b->len)
		buf_addch(b, '\n');
	buf_addstr(b, t->prompt ? t->prompt : "");
	if (buf_addch(b, '\n'))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
}

int template_save_path(const char *path, const struct template *t, struct ai_err *err)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = format(t, &b, err);
	/* Written aside and renamed, so a reader never sees half a template. */
	if (!rc)
		rc = fd_replace_file(path, b.data, b.len, 0600, err);
	buf_release(&b);
	return rc;
}

int template_save(const char *name, const struct template *t, struct ai_err *err)
{
	char *dir = config_xdg_path("CONFIG", "templates");
	struct buf path;
	int rc = -1;

	buf_init(&path, 0);
	if (template_name_ok(name)) {
		ai_errf(err, AI_EX_USAGE, "'%.100s' is no template name (letters, digits, '.', '_' and '-')",
			name);
		goto out;
	}
	if (!dir) {
		ai_errf(err, AI_EX_CONFIG, "no HOME: cannot save the template");
		goto out;
	}
	if (config_mkdirs(dir, 0700, err))
		goto out;
	if (buf_addf(&path, "%s/%s", dir, name)) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	rc = template_save_path(path.data, t, err);
out:
	free(dir);
	buf_release(&path);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int template_list(char ***names, size_t *n, struct ai_err *err)
{
	char *dir = config_xdg_path("CONFIG", "templates");
	DIR *d;
	struct dirent *e;
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!dir)
		return 0;
	if (!(d = opendir(dir))) {
		int e0 = errno;

		free(dir);
		if (e0 == ENOENT)
			return 0;
		return ai_errf(err, AI_EX_NOINPUT, "cannot read the templates directory: %s", strerror(e0));
	}
	while ((e = readdir(d))) {
		if (template_name_ok(e->d_name))
			continue;
		if (*n == cap) {
			char **p = realloc(*names, (cap = cap ? cap * 2 : 16) * sizeof(*p));

			if (!p)
				break;
			*names = p;
		}
		if (!((*names)[*n] = strdup(e->d_name)))
			break;
		(*n)++;
	}
	closedir(d);
	free(dir);
	if (*n)
		qsort(*names, *n, sizeof(**names), name_cmp);
	return 0;
}
