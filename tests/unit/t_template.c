/* t_template.c - templates: header lines, {{input}} and {{name}}, save and list. */
#include "ai.h"
#include "api/template.h"

#include "tap.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(struct template *t, const char *s, struct ai_err *err)
{
	ai_err_clear(err);
	return template_parse(t, s, strlen(s), err);
}

static char *fill(const struct template *t, const char *input, const char *const *p, size_t n,
		  struct ai_err *err)
{
	struct buf b = BUF_INIT;

	ai_err_clear(err);
	if (template_fill(t, input, p, n, &b, err)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int main(void)
{
	struct template t, u;
	struct ai_err err;
	const char *params[] = { "lang=French", "tone=dry", "lang=German" };
	char dir[] = "/tmp/t_template.XXXXXX", **names;
	size_t n;
	char *s;

	ok(parse(&t, "system: You translate.\nmodel: m1\ntemperature: 0.2\nmax_tokens: 300\n"
		 "schema: text, lang\n\nTranslate into {{lang}} ({{ tone }}):\n{{input}}\n", &err) == 0,
	   "a template with every header parses: %s", err.msg);
	is_str(t.system, "You translate.", "system");
	is_str(t.model, "m1", "model");
	ok(t.temperature == 0.2 && t.max_tokens == 300, "temperature and max_tokens");
	is_str(t.schema, "text, lang", "schema");
	is_str(t.prompt, "Translate into {{lang}} ({{ tone }}):\n{{input}}", "the prompt, the last newline dropped");
	s = fill(&t, "Hello", params, 3, &err);
	is_str(s, "Translate into German (dry):\nHello", "params filled, the last of a name wins");
	free(s);
	ok(!fill(&t, "Hello", params, 1, &err) && err.code == AI_EX_USAGE &&
	   !strcmp(err.msg, "the template needs --param tone=VALUE"), "a missing parameter is named: %s", err.msg);
	template_release(&t);

	ok(parse(&t, "Summarize in three words.", &err) == 0 && !t.system && isnan(t.temperature),
	   "no header: all prompt");
	s = fill(&t, "a long text", NULL, 0, &err);
	is_str(s, "Summarize in three words.\n\na long text", "no {{input}}: the input follows");
	free(s);
	template_release(&t);
	ok(parse(&t, "note: this is prompt text\nsystem: and so is this", &err) == 0 &&
	   !strcmp(t.prompt, "note: this is prompt text\nsystem: and so is this") && !t.system,
	   "a line that is no header ends the header");
	template_release(&t);
	ok(parse(&t, "temperature: hot\nx", &err) == -1 && err.code == AI_EX_DATAERR &&
	   strstr(err.msg, "line 1: temperature"), "a bad header value: %s", err.msg);
	ok(parse(&t, "max_tokens: 0\nx", &err) == -1, "max_tokens 0");

	ok(mkdtemp(dir) != NULL, "a config directory");
	setenv("XDG_CONFIG_HOME", dir, 1);
	ok(template_list(&names, &n, &err) == 0 && n == 0, "no directory: no templates");
	ok(parse(&t, "system: Be brief.\nschema: a int\n\nQ: {{input}}", &err) == 0, "parse to save");
	umask(022);     /* a shell's usual: the file must still be the user's alone */
	ok(template_save("brief", &t, &err) == 0, "saved: %s", err.msg);
	{
		char path[128];
		struct stat st;

		memset(&st, 0, sizeof(st));
		snprintf(path, sizeof(path), "%s/ai/templates/brief", dir);
		stat(path, &st);
		is_int(st.st_mode & 0777, 0600, "saved 0600");
	}
	ok(template_save("../evil", &t, &err) == -1 && err.code == AI_EX_USAGE, "a name with a slash refused");
	ok(template_load(&u, "brief", &err) == 0 && !strcmp(u.system, "Be brief.") &&
	   !strcmp(u.schema, "a int") && !strcmp(u.prompt, "Q: {{input}}"), "saved and loaded back the same");
	template_release(&u);
	ok(template_save("another", &t, &err) == 0, "a second");
	ok(template_list(&names, &n, &err) == 0 && n == 2 && !strcmp(names[0], "another") &&
	   !strcmp(names[1], "brief"), "listed, sorted");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	ok(template_load(&u, "nope", &err) == -1 && err.code == AI_EX_NOINPUT &&
	   strstr(err.msg, "no template 'nope'"), "a template that does not exist: %s", err.msg);
	ok(template_load(&u, "@/nonexistent/x", &err) == -1 && err.code == AI_EX_NOINPUT, "@FILE missing");
	{
		static const char *const ps[] = { "lang=fr", "tone=dry", "lang=de", "x==y" };
		char path[200];

		ok(!strcmp(template_param(ps, 4, "lang"), "de"), "the last --param of a name wins");
		ok(!strcmp(template_param(ps, 4, "x"), "=y") && !template_param(ps, 4, "ton") &&
		   !template_param(ps, 0, "lang"), "a name is matched whole");
		snprintf(path, sizeof(path), "%s/copy", dir);
		ok(template_save_path(path, &t, &err) == 0, "saved to a path: %s", err.msg);
		snprintf(path, sizeof(path), "@%s/copy", dir);
		ok(template_load(&u, path, &err) == 0 && !strcmp(u.system, "Be brief.") &&
		   !strcmp(u.prompt, "Q: {{input}}"), "and loaded back as @FILE");
		template_release(&u);
		ok(unlink(path + 1) == 0, "no file left aside");
	}
	template_release(&t);
	{
		static const char *const rm[] = { "templates/brief", "templates/another", "templates" };
		char path[128];
		int bad = 0;

		for (size_t i = 0; i < AI_ARRAY_LEN(rm); i++) {
			snprintf(path, sizeof(path), "%s/ai/%s", dir, rm[i]);
			bad |= i < 2 ? unlink(path) : rmdir(path);
		}
		snprintf(path, sizeof(path), "%s/ai", dir);
		ok(!bad && !rmdir(path) && !rmdir(dir), "cleaned up");
	}
	return tap_done();
}
