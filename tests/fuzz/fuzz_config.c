/*
 * fuzz_config.c - libFuzzer harness for the config file (ai.conf(5)).
 *
 * config_load reads only a named file, so the input is written to a
 * scratch file that AI_CONFIG names; the first byte chooses the profile
 * asked for (none, or one of two names).  The environment the loader
 * also reads is cleared once, so only the file counts.  A load either
 * fails with a configuration error and a message, or gives settings that
 * keep the promises config.c makes: a header-safe base URL without a
 * trailing slash, a model, positive timeouts, retries within 0..100,
 * a positive input cap, a budget that is unset (NaN) or within 0..1e9.
 * Each line's value also goes through config_parse_duration, whose
 * result must be finite, not negative and under 1e9 seconds.  Anything
 * else calls abort().
 */
#include "config.h"

#include <math.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static char scratch_path[64];
static int scratch = -1;

static void remove_scratch(void)
{
	if (scratch_path[0])
		unlink(scratch_path);
}

static void setup(void)
{
	static const char *const vars[] = {
		"OPENAI_BASE_URL", "OPENAI_API_KEY", "AI_MODEL", "AI_EMBED_MODEL", "AI_TIMEOUT",
		"AI_RETRIES", "AI_CACHE", "AI_CACHE_TTL", "AI_CACHE_MAX", "AI_LEDGER",
		"AI_BUDGET_DAILY", "AI_MAX_INPUT", "AI_PROFILE",
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(vars); i++)
		unsetenv(vars[i]);
	snprintf(scratch_path, sizeof(scratch_path), "/tmp/fuzz_config.XXXXXX");
	check((scratch = mkstemp(scratch_path)) >= 0);
	atexit(remove_scratch);
	check(setenv("AI_CONFIG", scratch_path, 1) == 0);
}

static void durations(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *p, *nl;

	check(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	for (p = s; p; p = nl ? nl + 1 : NULL) {
		char *eq;
		double d = -1;

		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		eq = strchr(p, '=');
		if (config_parse_duration(eq ? eq + 1 : p, &d) == 0)
			check(isfinite(d) && d >= 0 && d < 1e9);
		(void)config_header_safe(p);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const profiles[] = { NULL, "work", "p1", "" };
	struct ai_config cfg;
	struct ai_err err;
	const char *profile;
	int rc;

	if (size < 1)
		return 0;
	if (scratch < 0)
		setup();
	profile = profiles[data[0] % AI_ARRAY_LEN(profiles)];
	data++;
	size--;
	if (profile)
		check(setenv("AI_PROFILE", profile, 1) == 0);
	else
		unsetenv("AI_PROFILE");
	check(ftruncate(scratch, 0) == 0);
	check(size == 0 || pwrite(scratch, data, size, 0) == (ssize_t)size);

	memset(&err, 0, sizeof(err));
	rc = config_load(&cfg, NULL, &err);
	if (rc == 0) {
		size_t n;

		check(cfg.base_url && cfg.model && cfg.embed_model && cfg.path && cfg.have_file);
		n = strlen(cfg.base_url);
		check(config_header_safe(cfg.base_url) == 0 && !strchr(cfg.base_url, ' '));
		check(n == 0 || cfg.base_url[n - 1] != '/');
		check(cfg.timeout_s > 0 && cfg.connect_timeout_s > 0);
		check(cfg.retries >= 0 && cfg.retries <= 100);
		check(cfg.max_input >= 1 && cfg.cache_ttl_s >= 0);
		check(isnan(cfg.budget_daily) || (cfg.budget_daily >= 0 && cfg.budget_daily <= 1e9));
		check(!cfg.key && !cfg.key_loaded);
	} else {
		check(rc == -1 && (err.code == AI_EX_CONFIG || err.code == AI_EX_OSERR) &&
		      err.msg[0]);
	}
	config_release(&cfg);
	durations(data, size);
	return 0;
}
