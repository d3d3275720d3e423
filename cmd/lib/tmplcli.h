#ifndef AI_TMPLCLI_H
#define AI_TMPLCLI_H
/*
 * tmplcli.h - templates on the command line (template.h): -T NAME|@FILE,
 * --param NAME=VALUE, --save NAME and --list-templates, for the programs
 * whose operands are a message (c->template_ok).  cli_parse and
 * cli_read_message call these; a program applies the template's system,
 * temperature and max_tokens to its own options (c->tmpl), and calls
 * tmplcli_save for --save.  Like cli.c, this prints and exits.
 */
#include "lib/cli.h"
#include "api/template.h"

/* --list-templates: the saved templates' names, one a line, on stdout. */
void tmplcli_list(void);

/*
 * After the options: loads -T's template into c->tmpl (exits with its
 * error when it cannot: 66 for one that does not exist), and takes its
 * model and schema where -m and --schema did not say.
 */
void tmplcli_setup(struct cli *c);

/* Replaces msg with the template's prompt filled from it and --param. */
int tmplcli_fill(const struct cli *c, struct buf *msg, struct ai_err *err);

/* --save NAME: writes the template of these options and prompt, says so on stderr, exits 0. */
_Noreturn void tmplcli_save(const struct cli *c, const char *system, double temperature,
			    long max_tokens, const char *prompt);

#endif
