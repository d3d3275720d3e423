#ifndef AI_CONFIG_H
#define AI_CONFIG_H
/*
 * config.h - where every setting comes from, the first that has it: a
 * flag, the chosen profile's section of the config file, the environment,
 * the global part of the config file, the built-in default.  A profile that
 * names its own base_url brings its endpoint as a whole: the environment's
 * endpoint, models and key are not mixed into it.  The API key is never taken from the command line: it
 * comes from OPENAI_API_KEY, api_key_cmd (a command that prints it, as git
 * credential helpers do) or api_key_file (mode 0600, the user's own), and
 * lives in libsodium guarded memory that is wiped when released.
 */
#include "ai.h"
#include "api/prices.h"

#include <signal.h>

struct json_object;

/*
 * How long api_key_cmd or redis_password_cmd may run before it is killed
 * with what it started (runcmd.h); each runs with stdin /dev/null.
 */
#define CONFIG_CMD_TIMEOUT_MS 10000
/*
 * The same when stdin or stderr is a terminal (runcmd_interactive): a
 * person may be typing a passphrase for age, gpg, op or sudo.
 */
#define CONFIG_CMD_TTY_TIMEOUT_MS 300000
/* The longest first line (the key, or the password) such a command may print, plus one. */
#define CONFIG_CMD_LINE_MAX 4097

/* When Markdown in model text is rendered (markdown.h): the markdown key, --markdown. */
enum ai_markdown { AI_MARKDOWN_AUTO, AI_MARKDOWN_ALWAYS, AI_MARKDOWN_NEVER };

/*
 * Which embeddings API a server is asked through (the embed_api key):
 * OpenAI's /v1/embeddings, or Ollama's native /api/embed, the one Ollama
 * endpoint that can be told not to cut an input to the model's context
 * (its /v1/embeddings cuts silently and drops a "truncate" field).  auto:
 * Ollama's where the base URL's port is 11434, Ollama's own.
 */
enum ai_embed_api { AI_EMBED_API_AUTO, AI_EMBED_API_OPENAI, AI_EMBED_API_OLLAMA };

struct ai_config {
	char *base_url;        /* owned; without a trailing slash */
	char *model;           /* owned */
	char *embed_model;     /* owned */
	char *profile;         /* owned or NULL */
	char *path;            /* owned: the config file's path (it may not exist) */
	bool have_file;        /* the config file exists */
	bool endpoint_set;     /* a base URL or key was given somewhere, or a config file exists */
	double timeout_s;
	double connect_timeout_s;
	char *ca_cert;         /* owned or NULL: the CA bundle that verifies TLS servers */
	char *azure_api_version; /* owned or NULL: an Azure OpenAI endpoint, this api-version (api.c) */
	char *proxy;           /* owned or NULL: the proxy, unless the environment names one */
	char *no_proxy;        /* owned or NULL (then loopback only): hosts reached directly */
	long retries;
	bool cache;
	long cache_ttl_s;      /* 0: no bound */
	uint64_t cache_max;    /* bytes */
	bool ledger;
	long ledger_keep;      /* days raw ledger rows are kept; 0: for ever */
	double budget_daily;   /* USD; NAN when unset */
	double confirm_over;   /* USD: ai-summarize asks before a run estimated above it; NAN: never */
	double confirm_over_tokens; /* the same in tokens, for a model without a price; NAN: never */
	bool log_prompts;
	bool save;             /* ai-stream keeps its conversations (convstore.h) */
	int markdown;          /* enum ai_markdown: render model text on a terminal */
	int embed_api;         /* enum ai_embed_api */
	bool dry_run;
	int verbose;
	size_t max_input;      /* bytes a program reads at most */
	size_t attach_max;     /* bytes of one attachment (-a), at most */
	size_t attach_max_total; /* bytes of all of a request's attachments, at most */
	/* Defaults of every chat request; a program's own option wins over them. */
	double temperature;    /* NAN when unset */
	long max_tokens;       /* 0 when unset */
	char *system;          /* owned or NULL: the default of --system where a program has it */
	char *mcp;             /* owned or NULL: ai-agent's MCP servers to start, names
	                          separated by spaces or commas (the default of --mcp) */
	struct json_object *params;  /* owned or NULL: more request fields (params.h): the
	                              * config's top_p, seed and option.KEY, then -o */
	char *api_key_cmd;     /* owned or NULL */
	char *api_key_file;    /* owned or NULL */
	char *redis_password_cmd; /* owned or NULL: prints the password of ai-batch --queue's Redis */
	char *key;             /* sodium_malloc'd, or NULL: see config_key() */
	bool key_loaded;
	bool env_key_off;      /* the profile's endpoint is not OPENAI_API_KEY's */
	struct prices prices;  /* the price.MODEL overrides config_set read (prices.h) */
	struct json_object *loaders; /* owned or NULL: loader.EXT = COMMAND, extension (lower
	                              * case) -> command string (rag/docload.h) */
	double loader_timeout_s;     /* a loader's or pdftotext's wall-clock limit (60) */
	const volatile sig_atomic_t *cancel; /* borrowed or NULL: stops api_key_cmd and
	                                      * redis_password_cmd (config_overrides) */
};

/* The keys config_set takes (price.MODEL, option.KEY and loader.EXT aside), NULL-terminated. */
extern const char *const config_known_keys[];

/*
 * What a program's flags say, over everything else.  Plain values, so
 * that the library does not know how a program parses its command line
 * (cmd/lib/setup.c fills them from the common options).  Unset strings
 * are NULL, unset numbers negative (timeout_s: not above 0).
 */
struct config_overrides {
	const char *profile;          /* -p; NULL: AI_PROFILE */
	const char *base_url, *model;
	double timeout_s;
	long retries;
	long cache_ttl_s;
	bool no_cache, log_prompts, dry_run;
	int verbose;
	int markdown;                 /* --markdown: an enum ai_markdown, -1 not given */
	const char *const *options;   /* -o KEY=VALUE (params.h), n_options of them, borrowed */
	size_t n_options;
	const volatile sig_atomic_t *cancel; /* borrowed or NULL: when non-zero, a running
	                                      * api_key_cmd or redis_password_cmd is killed */
};

/* Sets o to "no flag given". */
void config_overrides_init(struct config_overrides *o);

/*
 * Fills cfg from the defaults, the config file, the environment and the
 * flags o (which may be NULL: none).  -1 with AI_EX_CONFIG on a bad config
 * file or value; the message names the file and line.
 */
int config_load(struct ai_config *cfg, const struct config_overrides *o, struct ai_err *err);

/*
 * Returns the API key, borrowed (valid until config_release), or NULL when
 * none is configured: some local servers need none.  Loads it on first use
 * from the environment, api_key_cmd or api_key_file.  -1 with AI_EX_CONFIG
 * when a configured source fails or the key holds a control character.
 */
int config_key(struct ai_config *cfg, const char **key, struct ai_err *err);

/*
 * Runs redis_password_cmd, if set, and returns its first line in *pw
 * (sodium_malloc'd: free with sodium_free), else *pw = NULL.  -1 with
 * AI_EX_CONFIG when the command fails.
 */
int config_redis_password(const struct ai_config *cfg, char **pw, struct ai_err *err);

/* Frees everything; the key's memory is wiped. */
void config_release(struct ai_config *cfg);

/*
 * Parses one "key = value" setting into cfg, as a config-file line would.
 * Exposed for the unit tests.  where names the source for messages.
 */
int config_set(struct ai_config *cfg, const char *key, const char *val, const char *where,
	       struct ai_err *err);

/* Reads a key file: refused unless a regular file of mode 0600 (or stricter) owned by the
 * user.  Returns the first line in sodium_malloc'd memory (free with sodium_free). */
int config_read_key_file(const char *path, char **key, struct ai_err *err);

/* "auto", "always" or "never" as an enum ai_markdown; -1 for anything else. */
int config_parse_markdown(const char *s);

/* Seconds from "30", "30s", "500ms", "5m", "2h" or "7d"; 0, or -1 when it does not parse. */
int config_parse_duration(const char *s, double *seconds);

/* 0 when s can go into an HTTP header: no CR, LF or other control character. */
int config_header_safe(const char *s);

/*
 * Returns an owned path "$XDG_<kind>_HOME/ai/<name>" (kind is "CONFIG", "CACHE", "DATA" or
 * "STATE"), falling back to ~/.config, ~/.cache, ~/.local/share and ~/.local/state.  NULL when no HOME is known.
 */
char *config_xdg_path(const char *kind, const char *name);

/* mkdir -p with the given mode for every directory it creates. */
int config_mkdirs(const char *dir, unsigned mode, struct ai_err *err);

#endif
