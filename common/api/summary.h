#ifndef AI_SUMMARY_H
#define AI_SUMMARY_H
/*
 * summary.h - the engine of ai-summarize: text in, a summary out, over
 * the chat API (so through the cache, the budget and the ledger).
 *
 * Input longer than max_input tokens is split on paragraph and sentence
 * boundaries into parts that fit; the parts are summarized concurrently
 * (as many at once as the client's parallel), then their summaries are
 * summarized, until one request holds them.  Big input costs money
 * before anything comes back, so a run can be estimated first.
 */
#include "ai.h"
#include "api/api.h"
#include "api/structured.h"
#include "api/template.h"
#include "buf.h"

struct attach_set;

struct summary_opts {
	long words;                     /* about this many words (summary_opts_init: 150) */
	const char *format;             /* "paragraph" (default), "bullets" or "line" */
	const char *lang, *focus;       /* borrowed or NULL: the language, what to keep */
	const char *prompt;             /* borrowed or NULL: replaces the instruction */
	long max_input;                 /* tokens: longer input is split (8000) */
	long max_tokens;                /* cap on each answer; 0: the configured one */
	double temperature;             /* NAN: the configured one */
	/* Called as the parts of a round are done (done of total, tokens so far), from
	 * done = 0; not for a round of one request, nor under --dry-run.  May be NULL. */
	void (*progress)(size_t done, size_t total, long tokens, void *ud);
	void *ud;
	/* Borrowed or NULL (--schema): the final request asks for JSON matching it, through
	 * structured_chat (checked, repaired once); the parts' summaries stay text. */
	struct structured *st;
	/*
	 * Borrowed or NULL (-T): the template's prompt, filled (template_fill)
	 * with the text and params, is the whole request for a text that fits
	 * and the instruction to combine the parts' summaries; parts are still
	 * summarized with the built-in instruction.  The caller checks first
	 * that params fill it.
	 */
	const struct template *tmpl;
	const char *const *params;      /* "name=value", borrowed */
	size_t nparams;
	const char *system;             /* borrowed or NULL: replaces the built-in system message */
	/* Borrowed or NULL (-a): attachments sent with the request that summarizes the whole
	 * (the text that fits, or the combining of the parts' summaries), not with each part. */
	const struct attach_set *attach;
};

/* Sets o to the defaults above. */
void summary_opts_init(struct summary_opts *o);

/* Appends to b the instruction a text that fits is sent with (what --save keeps). */
void summary_instruction(const struct summary_opts *o, struct buf *b);

struct summary {
	char *text;                     /* owned: the summary ("" under --dry-run); under st, data as JSON text */
	json_object *data;              /* owned or NULL: under st, the summary as checked JSON */
	char *model;                    /* owned or NULL: the model the server named */
	long prompt_tokens, completion_tokens;  /* over every request; -1 when one is unknown */
	bool cached;                    /* every answer came from the cache */
	bool dry_run;                   /* the requests were shown, none sent */
	size_t parts;                   /* the input's parts in the first round (1 when it fits) */
};

/*
 * Summarizes text[0..len) into s (summary_release it, on success only).
 * 0, or -1 with err: a failed request's error, AI_EX_UNAVAILABLE when the
 * summaries of the parts do not shrink, AI_EX_DATAERR when under st the
 * final reply does not match the schema, AI_EX_OSERR when out of memory.
 */
int summary_run(struct ai_client *c, const struct summary_opts *o, const char *text, size_t len,
		struct summary *s, struct ai_err *err);
void summary_release(struct summary *s);

struct summary_estimate {
	size_t requests;        /* every request of every round */
	size_t parts;           /* of the input, in the first round (1 when it fits) */
	double in, out;         /* tokens, estimated */
	bool priced;            /* the model has a price (listed, or price.MODEL) */
	double usd;             /* NAN when the price is unknown; 0 for a local server's unpriced model */
};

/*
 * Estimates what summary_run will send: the input's parts as chunk_text
 * makes them, each with its instruction; each part's summary at the
 * length the instruction asks for (2 x words, capped by max_tokens),
 * those summaries combined the same way until one request holds them.
 * Every request is counted as paid: parts already in the response cache
 * are free, so this is an upper bound then.  0, or -1 with err.
 */
int summary_estimate(const struct ai_client *client, const struct summary_opts *o, const char *text,
		     size_t len, struct summary_estimate *e, struct ai_err *err);

/* Appends e in words to b: "157 requests (157 parts, then 1 to combine), about 809k
 * tokens in and 42k out, about $0.1450 at the price of MODEL". */
void summary_describe(const struct summary_estimate *e, const struct ai_client *client, struct buf *b);

/* True when e is above what cfg lets pass unasked (confirm_over, or confirm_over_tokens for a
 * model without a price); then appends which limit to why. */
bool summary_needs_confirm(const struct ai_config *cfg, const struct summary_estimate *e, struct buf *why);

#endif
