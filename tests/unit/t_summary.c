/* t_summary - the summarize engine without a network: requests under --dry-run, the estimate. */
#include "api/summary.h"
#include "config.h"
#include "tap.h"

#include <math.h>

struct seen {
	int requests;
	int parts_named;        /* bodies that say "This is part i of n" */
};

static void on_dry_run(const char *method, const char *url, const char *const *headers,
		       const char *body, void *ud)
{
	struct seen *s = ud;

	(void)headers;
	s->requests++;
	ok(!strcmp(method, "POST") && strstr(url, "/chat/completions") != NULL, "a chat request: %s", url);
	if (strstr(body, "This is part "))
		s->parts_named++;
}

/* A text of n paragraphs of about 60 tokens each. */
static void long_text(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_addf(b, "Paragraph %d. The tide comes in twice a day and goes out twice a day, "
			 "pulled by the moon and a little by the sun; sailors have always counted on it.\n\n", i);
}

int main(void)
{
	struct ai_config cfg;
	struct ai_client *c = NULL;
	struct ai_err e;
	struct config_overrides ov;
	struct summary_opts o;
	struct summary_estimate est;
	struct summary s;
	struct seen seen = { 0, 0 };
	struct buf text = BUF_INIT, why = BUF_INIT, what = BUF_INIT;

	setenv("AI_CONFIG", "/nonexistent/ai-config", 1);
	unsetenv("OPENAI_BASE_URL");
	unsetenv("AI_MODEL");
	config_overrides_init(&ov);
	ov.dry_run = true;
	ov.base_url = "http://127.0.0.1:9/v1";
	ov.no_cache = true;
	ai_err_clear(&e);
	if (config_load(&cfg, &ov, &e)) {
		printf("Bail out! config_load: %s\n", e.msg);
		return 1;
	}
	cfg.ledger = false;
	if (ai_client_init(&c, &(struct ai_client_opts){ .cfg = &cfg, .prog = "t_summary", .parallel = 4,
							 .dry_run = on_dry_run, .ud = &seen }, &e)) {
		printf("Bail out! ai_client_init: %s\n", e.msg);
		return 1;
	}
	summary_opts_init(&o);
	is_int(o.words, 150, "150 words by default");
	ok(isnan(o.temperature), "the configured temperature by default");

	/* Short input: one request, one part. */
	buf_addstr(&text, "The tide comes in twice a day.");
	is_int(summary_estimate(c, &o, text.data, text.len, &est, &e), 0, "estimate a short text");
	is_int((long)est.requests, 1, "one request");
	is_int((long)est.parts, 1, "one part");
	is_int(summary_run(c, &o, text.data, text.len, &s, &e), 0, "summarize it under --dry-run");
	ok(s.dry_run, "nothing was sent");
	is_str(s.text, "", "and there is no summary");
	is_int(seen.requests, 1, "the one request went to the caller's dry_run callback");
	summary_release(&s);

	/* Long input: split into parts, each named in its request, as many as estimated. */
	buf_reset(&text);
	long_text(&text, 40);
	o.max_input = 300;
	o.words = 20;        /* short enough for the summaries to shrink */
	seen.requests = 0;
	is_int(summary_estimate(c, &o, text.data, text.len, &est, &e), 0, "estimate a long text");
	ok(est.parts > 1, "in parts: %zu", est.parts);
	ok(est.requests > est.parts, "then combined: %zu requests", est.requests);
	ok(est.in > 0 && est.out > 0, "tokens both ways");
	is_int(summary_run(c, &o, text.data, text.len, &s, &e), 0, "summarize it under --dry-run");
	is_int((long)s.parts, (long)est.parts, "the run splits as the estimate said");
	is_int(seen.requests, (long)est.parts, "a dry run shows the first round only");
	is_int(seen.parts_named, (long)est.parts, "each request says which part it is");
	summary_release(&s);

	/* The question before a run: priced or not, the limits of the config. */
	summary_describe(&est, c, &what);
	ok(strstr(what.data, "requests (") != NULL, "described: %s", what.data);
	est.priced = true;
	est.usd = 1.0;
	cfg.confirm_over = 0.5;
	ok(summary_needs_confirm(&cfg, &est, &why), "above confirm_over asks");
	ok(strstr(why.data, "confirm_over ($0.5000)") != NULL, "saying which limit: %s", why.data);
	cfg.confirm_over = NAN;
	buf_reset(&why);
	ok(!summary_needs_confirm(&cfg, &est, &why), "no limit, no question");
	est.priced = false;
	est.in = 1e6;
	cfg.confirm_over_tokens = 1000;
	ok(summary_needs_confirm(&cfg, &est, &why), "an unpriced model is limited in tokens");

	buf_release(&text);
	buf_release(&why);
	buf_release(&what);
	ai_client_release(c);
	config_release(&cfg);
	return tap_done();
}
