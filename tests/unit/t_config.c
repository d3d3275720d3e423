/* t_config - where settings come from, and how the key is guarded. */
#include "lib/cli.h"
#include "lib/setup.h"
#include "config.h"
#include "tap.h"

#include <math.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/t_config.XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void clear_env(void)
{
	static const char *v[] = { "OPENAI_API_KEY", "OPENAI_BASE_URL", "AI_MODEL", "AI_PROFILE",
				   "AI_CONFIG", "AI_TIMEOUT", "AI_RETRIES", "AI_CACHE", "AI_LEDGER",
				   "AI_BUDGET_DAILY", "AI_EMBED_MODEL", "AI_CACHE_MAX", "AI_CACHE_TTL",
				   "AI_MAX_INPUT" };

	for (size_t i = 0; i < AI_ARRAY_LEN(v); i++)
		unsetenv(v[i]);
}

static void test_defaults(void)
{
	struct ai_config c;
	struct ai_err e;
	char path[256];

	snprintf(path, sizeof(path), "%s/none", dir);
	setenv("AI_CONFIG", path, 1);
	is_int(config_load(&c, NULL, &e), 0, "no config file is fine");
	is_str(c.base_url, "https://api.openai.com/v1", "default base URL");
	is_str(c.model, "gpt-4o-mini", "default model");
	is_int(c.retries, 2, "two retries by default");
	ok(c.cache && c.ledger, "cache and ledger on by default");
	ok(isnan(c.budget_daily), "no budget by default");
	ok(!c.endpoint_set, "nothing configured");
	config_release(&c);
}

static void test_precedence(void)
{
	struct ai_config c;
	struct ai_err e;
	struct cli cl;
	char path[256];

	snprintf(path, sizeof(path), "%s/config", dir);
	write_file(path,
		   "# comment\n"
		   "model = file-model\n"
		   "timeout = 30\n"
		   "retries = 4\n"
		   "base_url = http://file.example/v1/\n"
		   "[profile p1]\n"
		   "model = p1-model\n"
		   "cache = off\n"
		   "[profile p2]\n"
		   "model = p2-model\n", 0600);
	setenv("AI_CONFIG", path, 1);
	is_int(config_load(&c, NULL, &e), 0, "the file loads");
	is_str(c.model, "file-model", "file beats default");
	is_str(c.base_url, "http://file.example/v1", "the trailing slash is dropped");
	is_dbl(c.timeout_s, 30, 0, "timeout from the file");
	ok(c.endpoint_set, "a config file counts as configured");
	config_release(&c);

	setenv("AI_PROFILE", "p1", 1);
	is_int(config_load(&c, NULL, &e), 0, "with a profile");
	is_str(c.model, "p1-model", "the profile beats the global part");
	ok(!c.cache, "the profile's other settings apply");
	is_int(c.retries, 4, "global settings the profile leaves alone stay");
	config_release(&c);

	setenv("AI_MODEL", "env-model", 1);
	is_int(config_load(&c, NULL, &e), 0, "with the environment and a profile");
	is_str(c.model, "p1-model", "a chosen profile beats the environment");
	config_release(&c);
	unsetenv("AI_PROFILE");
	is_int(config_load(&c, NULL, &e), 0, "with the environment, no profile");
	is_str(c.model, "env-model", "the environment beats the global part of the file");
	config_release(&c);
	setenv("AI_PROFILE", "p1", 1);

	cli_init(&cl, "t_config");
	cl.model = "flag-model";
	cl.profile = "p2";
	cl.retries = 0;
	cl.no_cache = 1;
	is_int(setup_config(&c, &cl, &e), 0, "with flags");
	is_str(c.model, "flag-model", "a flag beats the environment");
	is_str(c.profile, "p2", "-p beats AI_PROFILE");
	is_int(c.retries, 0, "--retries 0 is honoured");
	ok(!c.cache, "--no-cache");
	config_release(&c);
	unsetenv("AI_MODEL");

	setenv("AI_PROFILE", "nosuch", 1);
	is_int(config_load(&c, NULL, &e), -1, "an unknown profile fails");
	is_int(e.code, AI_EX_CONFIG, "as a configuration error");
	ok(strstr(e.msg, "'nosuch'") != NULL, "naming it: %s", e.msg);
	config_release(&c);
	unsetenv("AI_PROFILE");

	setenv("AI_RETRIES", "many", 1);
	is_int(config_load(&c, NULL, &e), -1, "a bad environment value fails");
	ok(strstr(e.msg, "AI_RETRIES") != NULL, "naming the variable: %s", e.msg);
	config_release(&c);
	unsetenv("AI_RETRIES");
}

/* The flags as plain values: the library needs no struct cli. */
static void test_overrides(void)
{
	struct ai_config c;
	struct ai_err e;
	struct config_overrides o;
	const char *opts[] = { "top_p=0.5", "seed=7" };
	const char *bad[] = { "nokey" };
	json_object *v;

	clear_env();
	setenv("AI_CONFIG", "/nonexistent/ai-config", 1);
	config_overrides_init(&o);
	is_int(config_load(&c, &o, &e), 0, "no flag given");
	is_int(c.retries, 2, "retries keep the default");
	ok(c.timeout_s == 600, "the timeout keeps the default");
	ok(c.cache && !c.dry_run && !c.verbose, "nothing turned on or off");
	config_release(&c);

	o.base_url = "http://127.0.0.1:9/v1/";
	o.model = "m-flag";
	o.timeout_s = 3.5;
	o.retries = 0;
	o.cache_ttl_s = 60;
	o.no_cache = true;
	o.log_prompts = true;
	o.dry_run = true;
	o.verbose = 2;
	o.options = opts;
	o.n_options = 2;
	is_int(config_load(&c, &o, &e), 0, "every flag given");
	is_str(c.base_url, "http://127.0.0.1:9/v1", "--base-url, its slash dropped");
	is_str(c.model, "m-flag", "-m");
	ok(c.timeout_s == 3.5, "--timeout");
	is_int(c.retries, 0, "--retries 0");
	is_int(c.cache_ttl_s, 60, "--cache-ttl");
	ok(!c.cache && c.log_prompts && c.dry_run, "--no-cache, --log-prompts, --dry-run");
	is_int(c.verbose, 2, "-vv");
	ok(c.params && json_object_object_get_ex(c.params, "seed", &v) && json_object_get_int(v) == 7,
	   "-o seed=7");
	ok(json_object_object_get_ex(c.params, "top_p", &v) && json_object_get_double(v) == 0.5,
	   "-o top_p=0.5");
	config_release(&c);

	config_overrides_init(&o);
	o.options = bad;
	o.n_options = 1;
	is_int(config_load(&c, &o, &e), -1, "a bad -o fails");
	config_release(&c);
	config_overrides_init(&o);
	o.base_url = "ftp://x";
	is_int(config_load(&c, &o, &e), -1, "a bad --base-url fails");
	ok(strstr(e.msg, "--base-url") != NULL, "naming the flag: %s", e.msg);
	config_release(&c);
	unsetenv("AI_CONFIG");
}

/* A profile with its own endpoint is chosen as a whole: no endpoint, model or key from the environment. */
static void test_profile_endpoint(void)
{
	struct ai_config c;
	struct ai_err e;
	const char *key;
	char path[256];

	clear_env();
	snprintf(path, sizeof(path), "%s/endpoint", dir);
	write_file(path,
		   "model = global-model\n"
		   "[profile local]\n"
		   "base_url = http://127.0.0.1:11434/v1\n"
		   "model = llama3.2\n"
		   "[profile same]\n"
		   "base_url = https://env.example/v1/\n"
		   "[profile tuned]\n"
		   "timeout = 5\n", 0600);
	setenv("AI_CONFIG", path, 1);
	setenv("OPENAI_BASE_URL", "https://env.example/v1", 1);
	setenv("AI_MODEL", "env-model", 1);
	setenv("OPENAI_API_KEY", "sk-env", 1);
	setenv("AI_TIMEOUT", "9", 1);

	setenv("AI_PROFILE", "local", 1);
	is_int(config_load(&c, NULL, &e), 0, "a profile with its own endpoint");
	is_str(c.base_url, "http://127.0.0.1:11434/v1", "its endpoint, not OPENAI_BASE_URL");
	is_str(c.model, "llama3.2", "its model, not AI_MODEL");
	is_dbl(c.timeout_s, 9, 0, "settings it does not name still come from the environment");
	is_int(config_key(&c, &key, &e), 0, "the key is looked up");
	ok(key == NULL, "OPENAI_API_KEY is not sent to the profile's endpoint");
	config_release(&c);

	setenv("AI_PROFILE", "same", 1);
	is_int(config_load(&c, NULL, &e), 0, "a profile naming the environment's endpoint");
	is_str(c.model, "global-model", "the model is the file's, not the environment's");
	is_int(config_key(&c, &key, &e), 0, "the key is looked up");
	is_str(key, "sk-env", "OPENAI_API_KEY goes to the endpoint it is set for");
	config_release(&c);

	setenv("AI_PROFILE", "tuned", 1);
	is_int(config_load(&c, NULL, &e), 0, "a profile without an endpoint");
	is_str(c.base_url, "https://env.example/v1", "the environment's endpoint");
	is_str(c.model, "env-model", "and its model");
	is_dbl(c.timeout_s, 5, 0, "the profile's timeout beats AI_TIMEOUT");
	is_int(config_key(&c, &key, &e), 0, "the key is looked up");
	is_str(key, "sk-env", "with the environment's key");
	config_release(&c);
	clear_env();
}

/* Quoted values lose their quotes, as git config's do; a bad quote is an error with the line. */
static void test_quotes(void)
{
	static const struct { const char *line, *model, *want_err; } cases[] = {
		{ "model = \"gpt-4o\"\n", "gpt-4o", NULL },
		{ "model = 'gpt-4o'\n", "gpt-4o", NULL },
		{ "model = \"a \\\"b\\\" \\\\ c\"\n", "a \"b\" \\ c", NULL },
		{ "model = \"\"\n", "", NULL },
		{ "model = gpt\"4o\"\n", "gpt\"4o\"", NULL },
		{ "model = \"gpt-4o\n", NULL, ":1: the quoted value has no closing \"" },
		{ "model = \"gpt\" x\n", NULL, ":1: text after the closing quote" },
		{ "model = \"a\\qb\"\n", NULL, ":1: unknown escape" },
	};
	char path[256];

	clear_env();
	snprintf(path, sizeof(path), "%s/quotes", dir);
	setenv("AI_CONFIG", path, 1);
	for (size_t i = 0; i < AI_ARRAY_LEN(cases); i++) {
		struct ai_config c;
		struct ai_err e;
		int r;

		write_file(path, cases[i].line, 0600);
		ai_err_clear(&e);
		r = config_load(&c, NULL, &e);
		if (cases[i].model) {
			is_int(r, 0, "quoted line %zu loads", i);
			is_str(c.model, cases[i].model, "quoted line %zu", i);
		} else {
			is_int(r, -1, "quoted line %zu is refused", i);
			ok(strstr(e.msg, cases[i].want_err) != NULL, "with '%s': %s", cases[i].want_err, e.msg);
		}
		config_release(&c);
	}
	unsetenv("AI_CONFIG");
}

static void test_known_keys(void)
{
	struct ai_config c;
	struct ai_err e;
	char path[256];

	clear_env();
	snprintf(path, sizeof(path), "%s/known", dir);
	setenv("AI_CONFIG", path, 1);
	write_file(path, "", 0600);
	config_load(&c, NULL, &e);
	for (size_t i = 0; config_known_keys[i]; i++) {
		ai_err_clear(&e);
		config_set(&c, config_known_keys[i], "x", "test", &e);
		ok(!strstr(e.msg, "unknown setting"), "'%s' is a setting config_set takes", config_known_keys[i]);
	}
	config_release(&c);
	unsetenv("AI_CONFIG");
}

static void test_bad_files(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "model gpt\n", ":1: expected 'key = value'" },
		{ "colour = blue\n", ":1: unknown setting 'colour'" },
		{ "temprature = 0.2\n", ":1: unknown setting 'temprature'; did you mean 'temperature'?" },
		{ "[profile a]\nmodel = x\n[profile b]\n[profile a]\n", ":4: profile 'a' is defined twice (first at line 1)" },
		{ "\n\nretries = -1\n", ":3: bad value '-1' for retries" },
		{ "[profile]\n", "expected '[profile NAME]'" },
		{ "[profile a b]\n", "expected '[profile NAME]'" },
		{ "api_key = sk-1\n", "api_key_cmd" },
		{ "base_url = ftp://x\n", "http:// or https://" },
		{ "base_url = http://x\r\n", NULL },
		{ "cache_max = lots\n", "cache_max" },
		{ "price.m = 1\n", "price" },
	};
	char path[256];

	snprintf(path, sizeof(path), "%s/bad", dir);
	setenv("AI_CONFIG", path, 1);
	for (size_t i = 0; i < AI_ARRAY_LEN(cases); i++) {
		struct ai_config c;
		struct ai_err e;
		int r;

		write_file(path, cases[i].text, 0600);
		ai_err_clear(&e);
		r = config_load(&c, NULL, &e);
		if (!cases[i].want) {
			is_int(r, 0, "a CRLF line end is trimmed");
			is_str(c.base_url, "http://x", "and the value is clean");
		} else {
			ok(r == -1 && e.code == AI_EX_CONFIG && strstr(e.msg, cases[i].want),
			   "bad file %zu refused: %s", i, e.msg);
		}
		config_release(&c);
	}
	unsetenv("AI_CONFIG");
}

static void test_key_file(void)
{
	char path[256], *k;
	struct ai_err e;

	snprintf(path, sizeof(path), "%s/key", dir);
	write_file(path, "sk-file-key\nsecond line\n", 0600);
	is_int(config_read_key_file(path, &k, &e), 0, "a 0600 key file is read");
	is_str(k, "sk-file-key", "its first line");
	sodium_free(k);
	chmod(path, 0400);
	is_int(config_read_key_file(path, &k, &e), 0, "0400 is fine too");
	sodium_free(k);
	chmod(path, 0640);
	is_int(config_read_key_file(path, &k, &e), -1, "a group-readable key file is refused");
	ok(strstr(e.msg, "chmod 600") != NULL, "saying how to fix it: %s", e.msg);
	chmod(path, 0604);
	is_int(config_read_key_file(path, &k, &e), -1, "a world-readable key file is refused");
	snprintf(path, sizeof(path), "%s/keylink", dir);
	{
		char target[256];

		snprintf(target, sizeof(target), "%s/key", dir);
		chmod(target, 0600);
		symlink(target, path);
	}
	is_int(config_read_key_file(path, &k, &e), -1, "a symlink is refused");
	is_int(config_read_key_file(dir, &k, &e), -1, "a directory is refused");
	snprintf(path, sizeof(path), "%s/missing", dir);
	is_int(config_read_key_file(path, &k, &e), -1, "a missing file is an error");
	ok(k == NULL, "and gives no key");
}

static void test_key_sources(void)
{
	struct ai_config c;
	struct ai_err e;
	const char *k;
	char path[256], text[512];

	snprintf(path, sizeof(path), "%s/kconf", dir);
	setenv("AI_CONFIG", path, 1);
	write_file(path, "api_key_cmd = printf 'sk-from-cmd\\nignored'\n", 0600);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), 0, "api_key_cmd runs");
	is_str(k, "sk-from-cmd", "its first line is the key");
	config_release(&c);

	setenv("OPENAI_API_KEY", "sk-env", 1);
	config_load(&c, NULL, &e);
	config_key(&c, &k, &e);
	is_str(k, "sk-env", "OPENAI_API_KEY beats api_key_cmd");
	config_release(&c);
	unsetenv("OPENAI_API_KEY");

	write_file(path, "api_key_cmd = exit 3\n", 0600);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), -1, "a failing api_key_cmd is an error");
	ok(strstr(e.msg, "status 3") != NULL, "with its status: %s", e.msg);
	config_release(&c);

	snprintf(text, sizeof(text), "api_key_file = %s/key\n", dir);
	write_file(path, text, 0600);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), 0, "api_key_file");
	is_str(k, "sk-file-key", "read from the file");
	config_release(&c);

	setenv("OPENAI_API_KEY", "sk-bad\r\nX-Evil: 1", 1);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), -1, "a key with CR LF is refused");
	ok(strstr(e.msg, "control character") != NULL, "%s", e.msg);
	ok(strstr(e.msg, "sk-bad") == NULL, "and the message does not show it");
	config_release(&c);
	setenv("OPENAI_API_KEY", "sk-tab\tx", 1);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), -1, "a key with a tab is refused");
	config_release(&c);
	unsetenv("OPENAI_API_KEY");

	write_file(path, "", 0600);
	config_load(&c, NULL, &e);
	is_int(config_key(&c, &k, &e), 0, "no key at all is not an error");
	ok(k == NULL, "local servers need none");
	config_release(&c);
	unsetenv("AI_CONFIG");
}

static void test_header_safe(void)
{
	is_int(config_header_safe("sk-abc_123.XYZ"), 0, "a plain key is safe");
	is_int(config_header_safe("a\rb"), -1, "CR is not");
	is_int(config_header_safe("a\nb"), -1, "LF is not");
	is_int(config_header_safe("a\x7f"), -1, "DEL is not");
	is_int(config_header_safe("a\x01"), -1, "other controls are not");
}

static void test_paths(void)
{
	char *p;
	struct ai_err e;
	struct stat st;
	char sub[300];

	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	p = config_xdg_path("CACHE", "responses");
	is_str(p, "/x/cache/ai/responses", "XDG_CACHE_HOME");
	free(p);
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", "/home/u", 1);
	p = config_xdg_path("CACHE", NULL);
	is_str(p, "/home/u/.cache/ai", "a relative XDG path is ignored, as the spec says");
	free(p);
	unsetenv("XDG_DATA_HOME");
	p = config_xdg_path("DATA", "usage.db");
	is_str(p, "/home/u/.local/share/ai/usage.db", "the data fallback");
	free(p);
	umask(0);
	snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
	is_int(config_mkdirs(sub, 0700, &e), 0, "mkdir -p");
	ok(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700, "mode 0700 whatever the umask");
	umask(022);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	clear_env();
	test_defaults();
	test_precedence();
	test_overrides();
	test_profile_endpoint();
	test_quotes();
	test_known_keys();
	test_bad_files();
	test_key_file();
	test_key_sources();
	test_header_safe();
	test_paths();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			return 1;
	}
	return tap_done();
}
