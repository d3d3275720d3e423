/* tmplcli.c - templates on the command line (see tmplcli.h). */
#include "lib/tmplcli.h"

#include <math.h>

/* Static, so that the template lives (and is reachable) until exit. */
static struct template loaded;

void tmplcli_list(void)
{
	char **names;
	size_t n;
	struct ai_err err;

	ai_err_clear(&err);
	if (template_list(&names, &n, &err))
		cli_die_err(&err);
	for (size_t i = 0; i < n; i++) {
		cli_puts(names[i], false);
		cli_puts("\n", false);
		free(names[i]);
	}
	free(names);
}

void tmplcli_setup(struct cli *c)
{
	struct ai_err err;

	if (c->save && c->template_arg)
		cli_usage_error("--save writes a new template from the options and the message; leave out -T");
	if (!c->template_arg) {
		if (c->nparams)
			cli_usage_error("--param fills a template: give one with -T");
		return;
	}
	ai_err_clear(&err);
	if (template_load(&loaded, c->template_arg, &err))
		cli_die_err(&err);
	c->tmpl = &loaded;
	/* The template's settings are defaults: the command line wins over them. */
	if (!c->model && loaded.model)
		c->model = loaded.model;
	if (loaded.schema && !c->schema_ok)
		cli_usage_error("template '%s' asks for an answer as data (schema:), which %s does not give",
				c->template_arg, c->prog);
	if (!c->schema && loaded.schema) {
		c->schema = loaded.schema;
		c->schema_multi = 0;
	}
}

int tmplcli_fill(const struct cli *c, struct buf *msg, struct ai_err *err)
{
	struct buf out;

	/* Filled without a cap, then held to the input's: a cut prompt would be worse than none. */
	buf_init(&out, 0);
	if (template_fill(c->tmpl, msg->data, c->params, c->nparams, &out, err)) {
		buf_release(&out);
		return -1;
	}
	if (msg->max && out.len > msg->max) {
		buf_release(&out);
		return ai_errf(err, AI_EX_DATAERR, "the filled template is larger than the input limit "
			       "(AI_MAX_INPUT)");
	}
	out.max = msg->max;
	buf_release(msg);
	*msg = out;
	return 0;
}

void tmplcli_save(const struct cli *c, const char *system, double temperature, long max_tokens,
		  const char *prompt)
{
	struct template t;
	struct ai_err err;

	memset(&t, 0, sizeof(t));
	t.system = (char *)system;
	t.model = (char *)c->model;
	t.temperature = temperature;
	t.max_tokens = max_tokens;
	t.schema = c->schema_multi ? NULL : (char *)c->schema;
	t.prompt = (char *)prompt;
	ai_err_clear(&err);
	if (c->schema_multi)
		cli_usage_error("a template keeps --schema, not --schema-multi");
	if (template_save(c->save, &t, &err))
		cli_die_err(&err);
	if (!c->quiet)
		cli_warn("saved template '%s'; use it with -T %s", c->save, c->save);
	exit(cli_finish(0));
}
