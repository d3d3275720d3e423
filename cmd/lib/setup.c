#include "lib/out.h"
#include "lib/setup.h"
#include "api/attach.h"
#include "api/models.h"
#include "api/prices.h"
#include "lib/termout.h"
#include "net/url.h"

#include <math.h>
#include <unistd.h>

/*
 * The clients setup made and not yet released.  A program may exit()
 * while one holds usage ledger rows in memory (cli_write's quiet exit
 * when "ai-batch | head" closes the pipe, a cli_die from a callback):
 * those calls were made and billed, so an atexit handler writes them
 * (ai_client_flush; in a forked child it drops its parent's).  libai
 * registers nothing at exit: the process is the program's.  Main
 * thread only, as setup is.
 */
static struct ai_client **made;
static size_t n_made, made_alloc;
static bool exiting, exit_quiet;

static void flush_at_exit(void)
{
	/* The struct cli a warning would read may be gone with main's frame. */
	exiting = true;
	for (size_t i = 0; i < n_made; i++)
		ai_client_flush(made[i]);
}

static void on_released(struct ai_client *client, void *ud)
{
	(void)ud;
	for (size_t i = 0; i < n_made; i++)
		if (made[i] == client) {
			made[i] = made[--n_made];
			break;
		}
}

/* Keeps client for flush_at_exit; false (out of memory) leaves it to ai_client_release alone. */
static bool keep_made(struct ai_client *client, bool quiet)
{
	static bool registered;

	if (!registered) {
		if (atexit(flush_at_exit))
			return false;
		registered = true;
	}
	if (n_made == made_alloc) {
		size_t na = made_alloc ? 2 * made_alloc : 4;
		struct ai_client **nv = realloc(made, na * sizeof(*nv));

		if (!nv)
			return false;
		made = nv;
		made_alloc = na;
	}
	made[n_made++] = client;
	exit_quiet = quiet;
	return true;
}

static void on_warn(const char *msg, void *ud)
{
	const struct cli *c = exiting ? NULL : ud;

	if (c ? !c->quiet : !exit_quiet)
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
	/* An attachment's base64 would bury the request: its start and its length show it. */
	shown = body ? attach_shorten(body) : NULL;
	printf("\n%s\n", shown ? shown : body ? body : "");
	free(shown);
	fflush(stdout);
}

void setup_overrides(const struct cli *c, struct config_overrides *o)
{
	config_overrides_init(o);
	o->profile = c->profile;
	o->base_url = c->base_url;
	o->model = c->model;
	o->timeout_s = c->timeout_s;
	o->retries = c->retries;
	o->cache_ttl_s = c->cache_ttl_s;
	o->no_cache = c->no_cache;
	o->log_prompts = c->log_prompts;
	o->dry_run = c->dry_run;
	o->verbose = c->verbose;
	o->markdown = c->markdown;
	o->options = c->options;
	o->n_options = c->n_options;
	o->cancel = &cli_interrupted;
}

int setup_config(struct ai_config *cfg, const struct cli *c, struct ai_err *err)
{
	struct config_overrides o;

	setup_overrides(c, &o);
	if (config_load(cfg, &o, err))
		return -1;
	termout_markdown = cfg->markdown;
	return 0;
}

bool setup_client_if(struct cli *c, struct ai_config *cfg, struct ai_client **client, bool want,
		     const struct ai_client_opts *o, struct ai_err *err)
{
	struct ai_client_opts co;

	if (setup_config(cfg, c, err))
		cli_die_err(err);
	if (!want || (!cfg->endpoint_set && !cfg->dry_run))
		return false;
	if (o)
		co = *o;
	else
		memset(&co, 0, sizeof(co));
	co.cfg = cfg;
	co.prog = c->prog;
	co.stop = &cli_interrupted;
	co.warn = on_warn;
	co.debug = on_debug;
	co.dry_run = on_dry_run;
	co.ud = c;
	co.released = on_released;
	/*
	 * From here a call may leave a ledger row in memory: SIGTERM and SIGHUP
	 * only stop the program, which writes it on its way out (cli.h).  The
	 * hold stays to the end: a program ends soon after its client does.
	 */
	cli_defer_signals(true);
	if (ai_client_init(client, &co, err))
		cli_die_err(err);
	keep_made(*client, c->quiet);
	return true;
}

void setup_client_with(struct cli *c, struct ai_config *cfg, struct ai_client **client,
		       const struct ai_client_opts *o, struct ai_err *err)
{
	if (!setup_client_if(c, cfg, client, true, o, err))
		cli_die(AI_EX_CONFIG, "no endpoint configured: set OPENAI_API_KEY for OpenAI, or "
			"OPENAI_BASE_URL for a local server (http://localhost:11434/v1 for Ollama); see ai.conf(5)");
}

void setup_client(struct cli *c, struct ai_config *cfg, struct ai_client **client, struct ai_err *err)
{
	setup_client_with(c, cfg, client, NULL, err);
}

void setup_die(struct ai_client *client, struct ai_config *cfg, const struct ai_err *err)
{
	struct ai_err e = *err;

	ai_client_release(client);
	config_release(cfg);
	fflush(stdout);
	if (e.code == AI_EX_INTERRUPT)
		exit(AI_EX_INTERRUPT);
	cli_die_err(&e);
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

int setup_list_models(struct cli *c)
{
	struct ai_config cfg;
	struct ai_client *client = NULL;
	struct ai_models m;
	struct ai_err err;
	bool tty = isatty(1);
	int rc;

	ai_err_clear(&err);
	setup_client(c, &cfg, &client, &err);
	rc = ai_models_list(client, &m, &err);
	if (rc < 0)
		setup_die(client, &cfg, &err);
	for (size_t i = 0; i < m.n; i++) {
		if (c->json) {
			json_object *j = json_object_new_object();

			if (!j)
				cli_die(AI_EX_OSERR, "out of memory");
			out_add(j, "id", json_object_new_string(m.v[i].id));
			out_add(j, "owned_by", m.v[i].owned_by ? json_object_new_string(m.v[i].owned_by) : NULL);
			out_add(j, "priced", json_object_new_boolean(prices_lookup(&cfg.prices, m.v[i].id, NULL)));
			out_json_line(j);
			json_object_put(j);
		} else {
			print_id(m.v[i].id, tty);
		}
	}
	ai_models_release(&m);
	ai_client_release(client);
	config_release(&cfg);
	return cli_finish(0);
}
