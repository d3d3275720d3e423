#ifndef AI_SETUP_H
#define AI_SETUP_H
/*
 * setup.h - the glue every program's main() repeats otherwise: load the
 * configuration, set up the API client with its diagnostics, build the
 * small JSON values programs print, and end on an error.  Like cli.h, it
 * prints and exits, because it serves main().
 */
#include "ai.h"
#include "api/api.h"
#include "lib/cli.h"
#include "config.h"

#include <json-c/json.h>

/* The common options of c as the configuration's flags (borrowed from c). */
void setup_overrides(const struct cli *c, struct config_overrides *o);

/* config_load with the common options of c over everything else. */
int setup_config(struct ai_config *cfg, const struct cli *c, struct ai_err *err);

/*
 * Loads cfg from c, refuses to go on without an endpoint (exit 78, saying in
 * one line how to configure one) unless --dry-run, and initialises client with
 * warnings and -v lines to stderr and --dry-run requests to stdout.
 */
void setup_client(struct cli *c, struct ai_config *cfg, struct ai_client **client, struct ai_err *err);

/* The same with the program's own client options in o (parallel, idle_timeout_ms,
 * models, batch_price; may be NULL): cfg, prog, the stop flag and the callbacks are
 * set here, whatever o says. */
void setup_client_with(struct cli *c, struct ai_config *cfg, struct ai_client **client,
		       const struct ai_client_opts *o, struct ai_err *err);

/*
 * The same for a program that can do without the API (ai-index for BM25,
 * ai-ask --retrieve-only): loads cfg once, and sets client up only when
 * want and an endpoint is configured (or --dry-run), returning whether it
 * did, with o as setup_client_with takes it.  Exits on a broken
 * configuration.
 */
bool setup_client_if(struct cli *c, struct ai_config *cfg, struct ai_client **client, bool want,
		     const struct ai_client_opts *o, struct ai_err *err);

/*
 * --list-models: sets up as setup_client does, asks the server for its models
 * and prints one id a line, or with --json one JSON line a model:
 * {"id", "owned_by" (null when the server did not say), "priced" (whether
 * the price table knows the model)}.  Returns the exit code for main
 * (output checked, as cli_finish does); exits on failure.
 */
int setup_list_models(struct cli *c);

/* Reports err and exits with its code, after releasing client and cfg. */
_Noreturn void setup_die(struct ai_client *client, struct ai_config *cfg, const struct ai_err *err);

#endif
