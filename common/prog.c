#include "prog.h"
#include "models.h"
#include "prices.h"
#include "termout.h"
#include "url.h"

#include <math.h>
#include <unistd.h>

static void on_warn(const char *msg, void *ud)
{
	const struct cli *c = ud;

	if (!c->quiet)
		cli_warn("%s", msg);
}

/* -v: a header line is the server's text, so it is shown, never obeyed (termout.h). */
static void on_debug(const char *line, void *ud)
{
	struct buf b;

	(void)ud;
	buf_init(&b, 0);
	if (!termout_visible(&b, line, strlen(line)) && !buf_addch(&b, '\n'))
		fputs(b.data, stderr);
	buf_release(&b);
}

static void on_dry_run(const char *method, const char *url, const char *const *headers,
		       const char *body, void *ud)
{
	char *shown = strdup(url);

	(void)ud;
	if (!shown)
		cli_die(AI_EX_OSERR, "out of memory");
	printf("%s %s\n", method, url_redact(shown));
	free(shown);
	for (; *headers; headers++)
		printf("%s\n", *headers);
	printf("\n%s\n", body ? body : "");
	fflush(stdout);
}

void prog_setup(struct cli *c, struct ai_config *cfg, struct ai_client *client, struct ai_err *err)
{
	if (config_load(cfg, c, err))
		cli_die_err(err);
	if (!cfg->endpoint_set && !cfg->dry_run)
		cli_die(AI_EX_CONFIG, "no endpoint configured: set OPENAI_API_KEY for OpenAI, or "
			"OPENAI_BASE_URL for a local server (http://localhost:11434/v1 for Ollama); see ai.conf(5)");
	if (ai_client_init(client, c->prog, cfg, err))
		cli_die_err(err);
	client->warn = on_warn;
	client->debug = on_debug;
	client->dry_run = on_dry_run;
	client->ud = c;
	client->http.interrupt = &cli_interrupted;
}

void prog_die(struct ai_client *client, struct ai_config *cfg, const struct ai_err *err)
{
	struct ai_err e = *err;

	ai_client_release(client);
	config_release(cfg);
	fflush(stdout);
	if (e.code == AI_EX_INTERRUPT)
		exit(AI_EX_INTERRUPT);
	cli_die_err(&e);
}

void prog_add(json_object *o, const char *k, json_object *val)
{
	if (json_object_object_add(o, k, val)) {
		json_object_put(val);
		cli_die(AI_EX_OSERR, "out of memory");
	}
}

json_object *prog_message(const char *role, const char *content)
{
	json_object *m = json_object_new_object();

	if (!m)
		cli_die(AI_EX_OSERR, "out of memory");
	prog_add(m, "role", json_object_new_string(role));
	prog_add(m, "content", json_object_new_string(content));
	return m;
}

void prog_print_json(json_object *j)
{
	size_t n;
	const char *s = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	cli_write(s, n, false);
	cli_write("\n", 1, true);
}

json_object *prog_json_double(double v)
{
	return isnan(v) ? NULL : json_object_new_double(v);
}

/*
 * A model id on a terminal passes the neutraliser, on one line: it is the
 * server's text, and one id must not pass for two.
 */
static void print_id(const char *id, bool tty)
{
	struct buf b;

	if (!tty) {
		cli_puts(id, false);
		cli_write("\n", 1, false);
		return;
	}
	buf_init(&b, 0);
	if (termout_visible(&b, id, strlen(id)) || buf_addch(&b, '\n'))
		cli_die(AI_EX_OSERR, "out of memory");
	cli_write(b.data, b.len, false);
	buf_release(&b);
}

int prog_list_models(struct cli *c)
{
	struct ai_config cfg;
	struct ai_client client;
	struct ai_models m;
	struct ai_err err;
	bool tty = isatty(1);
	int rc;

	ai_err_clear(&err);
	prog_setup(c, &cfg, &client, &err);
	rc = ai_models_list(&client, &m, &err);
	if (rc < 0)
		prog_die(&client, &cfg, &err);
	for (size_t i = 0; i < m.n; i++) {
		if (c->json) {
			json_object *j = json_object_new_object();

			if (!j)
				cli_die(AI_EX_OSERR, "out of memory");
			prog_add(j, "id", json_object_new_string(m.v[i].id));
			prog_add(j, "owned_by", m.v[i].owned_by ? json_object_new_string(m.v[i].owned_by) : NULL);
			prog_add(j, "priced", json_object_new_boolean(prices_lookup(m.v[i].id, NULL)));
			prog_print_json(j);
			json_object_put(j);
		} else {
			print_id(m.v[i].id, tty);
		}
	}
	ai_models_release(&m);
	ai_client_release(&client);
	config_release(&cfg);
	return cli_finish(0);
}
