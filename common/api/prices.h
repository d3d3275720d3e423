#ifndef AI_PRICES_H
#define AI_PRICES_H
/*
 * prices.h - what a model call costs, in USD per million tokens.
 *
 * The table is compiled in (prices.c), so a binary that was never
 * installed still knows it; common/api/prices.tsv holds the same figures in
 * the format prices_load() reads, and a test keeps the two equal.  The
 * user overrides or adds models from the config file
 * ("price.MODEL = IN OUT") through prices_override() or a whole file
 * through prices_load().  An unknown model has no cost (NAN), never a
 * guessed one.
 *
 * The override list is process-global and not thread-safe: set it up
 * once at start, before any call is made.
 */
#include "ai.h"

struct price {
	double in_per_mtok;     /* USD per million prompt (input) tokens */
	double out_per_mtok;    /* USD per million completion (output) tokens */
	double cached_per_mtok; /* USD per million prompt tokens read from the server's prompt
	                         * cache (cached_tokens); NAN: no discount, the input price */
};

/* The user's overrides; the built-in table is shared and read-only. */
struct prices {
	struct price_override *v;       /* owned */
	size_t n, cap;
};

#define PRICES_INIT { NULL, 0, 0 }

/* Frees every override of ps and empties it; the built-in table stays. */
void prices_release(struct prices *ps);

/*
 * Looks model up in ps's overrides (ps may be NULL: the built-in table
 * only) and the built-in table.  A listed name matches when it equals model, or when
 * it is a prefix of model followed by '-' ("gpt-4o-mini-2024-07-18"
 * matches "gpt-4o-mini"; "gpt-4o-mini" never matches "gpt-4o", and
 * "gpt-4o" never matches "gpt-4").  The most specific match wins: an
 * exact match, else the longest prefix; between an override and a
 * built-in entry of the same name the override wins.  So an override of
 * "gpt-4o" does not change "gpt-4o-mini", which has its own entry.
 * Returns true and fills out (which may be NULL) when the model is known.
 */
bool prices_lookup(const struct prices *ps, const char *model, struct price *out);

/*
 * Adds or replaces an override in ps, e.g. from the config line
 * "price.my-model = 0.5 1.5".  model is copied.  Fails (-1, err filled,
 * code AI_EX_CONFIG) on an empty name or one with spaces or control
 * characters, or a price that is negative, not finite or absurd (above
 * 1e6 USD per million tokens).
 */
int prices_override(struct prices *ps, const char *model, double in, double out,
		    struct ai_err *err);

/* The same with a cached-input price (NAN: none, the input price). */
int prices_override_cached(struct prices *ps, const char *model, double in, double out,
			   double cached, struct ai_err *err);

/*
 * Parses the value of a config line "price.MODEL = IN OUT [CACHED]"
 * ("0.5 1.5" or "0.5 1.5 0.25", spaces or tabs between; plain decimals,
 * independent of the locale; CACHED "-" or left out: no cached-input
 * price) and adds it as an override.  Fails like prices_override, and on
 * a value that is not two or three numbers.
 */
int prices_override_str(struct prices *ps, const char *model, const char *value,
			struct ai_err *err);

/*
 * Reads a price file in the prices.tsv format as overrides of ps: one
 * "MODEL IN OUT [CACHED]" a line (tabs or spaces between; CACHED as in
 * prices_override_str), '#' starts a comment,
 * blank lines are skipped.  All or nothing: on the first bad line it
 * fails with "'PATH' line N: ..." and adds none of the file.  A missing
 * file fails with code AI_EX_NOINPUT, so a caller can treat an optional
 * file's absence as no error.
 */
int prices_load(struct prices *ps, const char *path, struct ai_err *err);

/*
 * Cost of one call in USD: tokens times the price per million.  NAN
 * when the model is unknown or a token count is negative (unknown).
 * batch=true halves it (OpenAI's Batch API price), computed here rather
 * than listed.
 */
double prices_cost(const struct prices *ps, const char *model, long prompt_tokens,
		   long completion_tokens, bool batch);

/*
 * The same, cached_tokens of the prompt tokens priced at the model's
 * cached-input price (struct price).  A cached count that is unknown
 * (negative) or larger than the prompt prices none of it so; a model
 * without a cached-input price charges the input price for them.
 */
double prices_cost_cached(const struct prices *ps, const char *model, long prompt_tokens,
			  long cached_tokens, long completion_tokens, bool batch);

/*
 * True when host (an endpoint's authority as the ledger records it:
 * "127.0.0.1:8080", "localhost", "[::1]:11434", perhaps after
 * "user@") is a loopback address: 127.0.0.0/8, ::1 or "localhost".
 * A model served there runs on this machine and costs no money.
 */
bool prices_host_local(const char *host);

/*
 * As prices_lookup, but a model without a price served by a loopback
 * host (prices_host_local) is priced 0 instead of unknown: a local
 * server (Ollama, llama.cpp) bills nothing, and asking the user for
 * price.MODEL there is noise.  A listed or overridden price still wins,
 * so price.MODEL can give a local model a cost.
 */
bool prices_lookup_at(const struct prices *ps, const char *model, const char *host,
		      struct price *out);

/* As prices_cost and prices_cost_cached, with the loopback default of prices_lookup_at. */
double prices_cost_at(const struct prices *ps, const char *model, const char *host,
		      long prompt_tokens, long completion_tokens, bool batch);
double prices_cost_cached_at(const struct prices *ps, const char *model, const char *host,
			     long prompt_tokens, long cached_tokens, long completion_tokens, bool batch);

/*
 * The compiled-in table, for tests and "ai-usage --prices": entry i
 * (0 <= i < prices_builtin_count()) in *name (borrowed, static) and *p.
 * Returns false when i is out of range.
 */
size_t prices_builtin_count(void);
bool prices_builtin(size_t i, const char **name, struct price *p);

#endif
