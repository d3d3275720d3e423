#include "prog.h"

#include <math.h>
#include <unistd.h>

static void on_warn(const char *msg, void *ud)
{
	const struct cli *c = ud;

	if (!c->quiet)
		cli_warn("%s", msg);
}

static void on_debug(const char *line, void *ud)
{
	(void)ud;
	fprintf(stderr, "%s\n", line);
}

static void on_dry_run(const char *method, const char *url, const char *const *headers,
		       const char *body, void *ud)
{
	(void)ud;
	printf("%s %s\n", method, url);
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
