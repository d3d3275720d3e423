#include "config.h"
#include "buf.h"
#include "clock.h"
#include "closest.h"
#include "api/params.h"
#include "api/prices.h"
#include "net/url.h"
#include "runcmd.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#define DEFAULT_BASE_URL "https://api.openai.com/v1"
#define DEFAULT_MODEL "gpt-4o-mini"
#define DEFAULT_EMBED_MODEL "text-embedding-3-small"

static int set_str(char **dst, const char *val)
{
	char *p = strdup(val);

	if (!p)
		return -1;
	free(*dst);
	*dst = p;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "0") || !strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false")) {
		*out = false;
		return 0;
	}
	return -1;
}

int config_parse_markdown(const char *v)
{
	if (!strcmp(v, "auto"))
		return AI_MARKDOWN_AUTO;
	if (!strcmp(v, "always"))
		return AI_MARKDOWN_ALWAYS;
	if (!strcmp(v, "never"))
		return AI_MARKDOWN_NEVER;
	return -1;
}

static int parse_num(const char *v, double min, double max, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || errno == ERANGE || !isfinite(d) || d < min || d > max)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -1;
	*out = d;
	return 0;
}

int config_parse_duration(const char *v, double *out)
{
	char *end;
	double d, mul;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || errno == ERANGE || !isfinite(d) || d < 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "ms"))
		mul = 0.001;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else
		return -1;
	if (d * mul >= 1e9)
		return -1;
	*out = d * mul;
	return 0;
}

/* Bytes from "1048576", "512K", "256M", "2G". */
static int parse_size(const char *v, uint64_t *out)
{
	char *end;
	double d, mul = 1;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || errno == ERANGE || !isfinite(d) || d < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1024.0; end++; break;
	case 'M': mul = 1024.0 * 1024; end++; break;
	case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	default: return -1;
	}
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (*end || d * mul > 1e15)
		return -1;
	*out = (uint64_t)(d * mul);
	return 0;
}

int config_header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -1;
	return 0;
}

/* The keys config_set takes, for "did you mean" (t_config checks each is taken). */
const char *const config_known_keys[] = {
	"base_url", "model", "embed_model", "api_key_cmd", "api_key_file", "temperature", "markdown",
	"max_tokens", "system", "top_p", "seed", "timeout", "connect_timeout", "retries", "cache",
	"cache_ttl", "cache_max", "ledger", "ledger_keep", "log_prompts", "budget_daily", "max_input", "ca_cert",
	"proxy", "no_proxy", "confirm_over", "confirm_over_tokens", "mcp", "azure_api_version", "embed_api",
	"redis_password_cmd", "save", "loader_timeout", "attach_max", "attach_max_total", NULL
};

/*
 * loader.EXT = COMMAND (ai-index's documents of that extension, rag/docload.h):
 * the extension is kept in lower case, without a dot; an empty command
 * removes the loader.
 */
static int set_loader(struct ai_config *cfg, const char *ext, const char *val, const char *where,
		      struct ai_err *err)
{
	char low[33];
	size_t n = strlen(ext);
	json_object *v;

	if (!n || n >= sizeof(low) || strspn(ext, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					      "0123456789_+-") != n)
		return ai_errf(err, AI_EX_CONFIG, "%s: loader.%s: the extension must be 1 to 32 letters, "
			       "digits, '_', '+' or '-', without its dot", where, ext);
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)ext[i]);
	if (!cfg->loaders && !(cfg->loaders = json_object_new_object()))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (!*val) {
		json_object_object_del(cfg->loaders, low);
		return 0;
	}
	if (!(v = json_object_new_string(val)) || json_object_object_add(cfg->loaders, low, v)) {
		json_object_put(v);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	return 0;
}

/*
 * ca_cert, proxy and no_proxy: 1 when key is none of them, else 0 or -1.
 * An empty value unsets (no_proxy = "" is kept: every host through the proxy).
 */
static int set_net(struct ai_config *cfg, const char *key, const char *val, const char *where,
		   struct ai_err *err)
{
	char **dst = !strcmp(key, "ca_cert") ? &cfg->ca_cert : !strcmp(key, "proxy") ? &cfg->proxy :
		     !strcmp(key, "no_proxy") ? &cfg->no_proxy : NULL;

	if (!dst)
		return 1;
	if (config_header_safe(val) || (dst == &cfg->proxy && strchr(val, ' '))) {
		char shown[160];

		return ai_errf(err, AI_EX_CONFIG, "%s: bad value '%s' for %s (see ai.conf(5))", where,
			       url_shown(val, shown, sizeof(shown)), key);
	}
	if (!*val && dst != &cfg->no_proxy) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	return set_str(dst, val) ? ai_errf(err, AI_EX_OSERR, "out of memory") : 0;
}

/*
 * The variables the curl tool reads, as defaults under ca_cert and
 * no_proxy: CURL_CA_BUNDLE, else SSL_CERT_FILE; no_proxy, else NO_PROXY.
 * The config file beats them, as ~/.curlrc does for curl: they are often
 * set for a whole machine, a profile's ca_cert for one endpoint.  (proxy
 * needs nothing here: without it libcurl reads http_proxy and the rest.)
 */
static int net_from_env(struct ai_config *cfg, struct ai_err *err)
{
	static const struct { const char *env, *key; } map[] = {
		{ "CURL_CA_BUNDLE", "ca_cert" }, { "SSL_CERT_FILE", "ca_cert" },
		{ "no_proxy", "no_proxy" }, { "NO_PROXY", "no_proxy" },
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(map); i++) {
		const char *v = getenv(map[i].env);
		bool set = !strcmp(map[i].key, "ca_cert") ? cfg->ca_cert != NULL : cfg->no_proxy != NULL;

		if (!set && v && *v && set_net(cfg, map[i].key, v, map[i].env, err))
			return -1;
	}
	return 0;
}

int config_set(struct ai_config *cfg, const char *key, const char *val, const char *where,
	       struct ai_err *err)
{
	double d;
	int r = 0;

	if ((r = set_net(cfg, key, val, where, err)) <= 0)
		return r;
	r = 0;
	if (!strcmp(key, "base_url")) {
		size_t n;

		if (config_header_safe(val) || strchr(val, ' ') ||
		    (strncmp(val, "http://", 7) && strncmp(val, "https://", 8))) {
			char shown[160];

			return ai_errf(err, AI_EX_CONFIG, "%s: base_url must be an http:// or https:// URL, not '%s'",
				       where, url_shown(val, shown, sizeof(shown)));
		}
		r = set_str(&cfg->base_url, val);
		n = cfg->base_url ? strlen(cfg->base_url) : 0;
		while (n > 0 && cfg->base_url[n - 1] == '/')
			cfg->base_url[--n] = '\0';
		cfg->endpoint_set = true;
	} else if (!strcmp(key, "azure_api_version")) {
		/* It goes into every URL's query: a date and a word ("2024-10-21", "2025-04-01-preview"). */
		if (strspn(val, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(val) ||
		    strlen(val) > 40)
			goto bad;
		if (!*val) {
			free(cfg->azure_api_version);
			cfg->azure_api_version = NULL;
		} else {
			r = set_str(&cfg->azure_api_version, val);
		}
	} else if (!strcmp(key, "model")) {
		r = set_str(&cfg->model, val);
	} else if (!strcmp(key, "embed_model")) {
		r = set_str(&cfg->embed_model, val);
	} else if (!strcmp(key, "api_key_cmd")) {
		r = set_str(&cfg->api_key_cmd, val);
		cfg->endpoint_set = true;
	} else if (!strcmp(key, "redis_password_cmd")) {
		r = set_str(&cfg->redis_password_cmd, val);
	} else if (!strcmp(key, "api_key_file")) {
		r = set_str(&cfg->api_key_file, val);
		cfg->endpoint_set = true;
	} else if (!strncmp(key, "price.", 6) && key[6]) {
		if (prices_override_str(&cfg->prices, key + 6, val, err)) {
			char m[sizeof(err->msg)];

			memcpy(m, err->msg, sizeof(m));
			return ai_errf(err, AI_EX_CONFIG, "%s: %s", where, m);
		}
	} else if (!strcmp(key, "temperature")) {
		if (parse_num(val, 0, 2, &d))
			goto bad;
		cfg->temperature = d;
	} else if (!strcmp(key, "max_tokens")) {
		if (parse_num(val, 1, 10000000, &d) || d != floor(d))
			goto bad;
		cfg->max_tokens = (long)d;
	} else if (!strcmp(key, "system")) {
		r = set_str(&cfg->system, val);
	} else if (!strcmp(key, "mcp")) {
		r = set_str(&cfg->mcp, val);
	} else if (!strcmp(key, "top_p")) {
		if (parse_num(val, 0, 1, &d))
			goto bad;
		return params_set(&cfg->params, key, json_object_new_double(d), err);
	} else if (!strcmp(key, "seed")) {
		long long v;
		char *end;

		errno = 0;
		v = strtoll(val, &end, 10);
		if (end == val || *end || errno == ERANGE)
			goto bad;
		return params_set(&cfg->params, key, json_object_new_int64(v), err);
	} else if (!strncmp(key, "option.", 7)) {
		json_object *v;

		if (params_key_ok(key + 7, err) || params_value(key, val, &v, err)) {
			char m[sizeof(err->msg)];

			memcpy(m, err->msg, sizeof(m));
			return ai_errf(err, err->code == AI_EX_OSERR ? AI_EX_OSERR : AI_EX_CONFIG,
				       "%s: %s", where, m);
		}
		return params_set(&cfg->params, key + 7, v, err);
	} else if (!strcmp(key, "api_key")) {
		return ai_errf(err, AI_EX_CONFIG,
			       "%s: api_key is not read from the config file; use api_key_cmd or api_key_file (mode 0600)",
			       where);
	} else if (!strcmp(key, "timeout")) {
		if (config_parse_duration(val, &d) || d <= 0)
			goto bad;
		cfg->timeout_s = d;
	} else if (!strcmp(key, "connect_timeout")) {
		if (config_parse_duration(val, &d) || d <= 0)
			goto bad;
		cfg->connect_timeout_s = d;
	} else if (!strcmp(key, "retries")) {
		if (parse_num(val, 0, 100, &d) || d != floor(d))
			goto bad;
		cfg->retries = (long)d;
	} else if (!strcmp(key, "cache")) {
		if (parse_bool(val, &cfg->cache))
			goto bad;
	} else if (!strcmp(key, "cache_ttl")) {
		if (config_parse_duration(val, &d))
			goto bad;
		cfg->cache_ttl_s = (long)d;
	} else if (!strcmp(key, "cache_max")) {
		if (parse_size(val, &cfg->cache_max))
			goto bad;
	} else if (!strcmp(key, "ledger")) {
		if (parse_bool(val, &cfg->ledger))
			goto bad;
	} else if (!strcmp(key, "ledger_keep")) {
		/* Whole days; 0 keeps raw rows for ever (the rollups always are). */
		if (parse_num(val, 0, 36500, &d) || d != (long)d)
			goto bad;
		cfg->ledger_keep = (long)d;
	} else if (!strcmp(key, "log_prompts")) {
		if (parse_bool(val, &cfg->log_prompts))
			goto bad;
	} else if (!strcmp(key, "save")) {
		if (parse_bool(val, &cfg->save))
			goto bad;
	} else if (!strcmp(key, "embed_api")) {
		if (!strcmp(val, "auto"))
			cfg->embed_api = AI_EMBED_API_AUTO;
		else if (!strcmp(val, "openai"))
			cfg->embed_api = AI_EMBED_API_OPENAI;
		else if (!strcmp(val, "ollama"))
			cfg->embed_api = AI_EMBED_API_OLLAMA;
		else
			goto bad;
	} else if (!strcmp(key, "markdown")) {
		if ((cfg->markdown = config_parse_markdown(val)) < 0)
			goto bad;
	} else if (!strcmp(key, "budget_daily")) {
		if (!*val) {
			cfg->budget_daily = NAN;
			return 0;
		}
		if (parse_num(val, 0, 1e9, &d))
			goto bad;
		cfg->budget_daily = d;
	} else if (!strcmp(key, "confirm_over") || !strcmp(key, "confirm_over_tokens")) {
		/* Empty turns the question off; see ai.conf(5). */
		bool tokens = !strcmp(key, "confirm_over_tokens");
		double *to = tokens ? &cfg->confirm_over_tokens : &cfg->confirm_over;

		if (!*val) {
			*to = NAN;
			return 0;
		}
		if (parse_num(val, 0, tokens ? 1e12 : 1e9, &d) || (tokens && d != floor(d)))
			goto bad;
		*to = d;
	} else if (!strncmp(key, "loader.", 7)) {
		return set_loader(cfg, key + 7, val, where, err);
	} else if (!strcmp(key, "loader_timeout")) {
		if (config_parse_duration(val, &d) || d <= 0 || d > 86400)
			goto bad;
		cfg->loader_timeout_s = d;
	} else if (!strcmp(key, "max_input")) {
		uint64_t sz;

		if (parse_size(val, &sz) || sz < 1 || sz > SIZE_MAX / 2)
			goto bad;
		cfg->max_input = (size_t)sz;
	} else if (!strcmp(key, "attach_max") || !strcmp(key, "attach_max_total")) {
		uint64_t sz;

		if (parse_size(val, &sz) || sz < 1 || sz > SIZE_MAX / 4)
			goto bad;
		if (!strcmp(key, "attach_max"))
			cfg->attach_max = (size_t)sz;
		else
			cfg->attach_max_total = (size_t)sz;
	} else {
		const char *near = closest(key, config_known_keys, AI_ARRAY_LEN(config_known_keys) - 1, 2);

		if (near)
			return ai_errf(err, AI_EX_CONFIG, "%s: unknown setting '%s'; did you mean '%s'?",
				       where, key, near);
		return ai_errf(err, AI_EX_CONFIG, "%s: unknown setting '%s' (see ai.conf(5))", where, key);
	}
	if (r)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return 0;
bad:
	return ai_errf(err, AI_EX_CONFIG, "%s: bad value '%s' for %s (see ai.conf(5))", where, val, key);
}

char *config_xdg_path(const char *kind, const char *name)
{
	char var[32];
	const char *base, *home = getenv("HOME");
	const char *fallback = !strcmp(kind, "CONFIG") ? ".config" :
			       !strcmp(kind, "CACHE") ? ".cache" :
			       !strcmp(kind, "STATE") ? ".local/state" : ".local/share";
	struct buf b;

	snprintf(var, sizeof(var), "XDG_%s_HOME", kind);
	base = getenv(var);
	buf_init(&b, 0);
	if (base && base[0] == '/')
		buf_addf(&b, "%s/ai", base);
	else if (home && *home)
		buf_addf(&b, "%s/%s/ai", home, fallback);
	else
		return NULL;
	if (name && *name)
		buf_addf(&b, "/%s", name);
	return buf_detach(&b, NULL);
}

int config_mkdirs(const char *dir, unsigned mode, struct ai_err *err)
{
	char *p = strdup(dir);
	struct stat st;

	if (!p)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, (mode_t)mode) == 0) {
				chmod(p, (mode_t)mode);   /* the umask must not loosen it */
			} else if (errno != EEXIST || stat(p, &st) || !S_ISDIR(st.st_mode)) {
				int e = errno == EEXIST ? ENOTDIR : errno;

				ai_errf(err, AI_EX_CONFIG, "cannot create directory '%s': %s", p, strerror(e));
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * A value in double quotes is read as git config reads one: the quotes go,
 * and \" \\ \n \t inside stand for themselves; single quotes go too, with
 * nothing escaped inside.  Anything after the closing quote is an error, so
 * that a quote typed by mistake is not sent to the server.  Unquoted values
 * are taken as they are.  Rewrites v in place; 0, or -1 with err.
 */
static int unquote(char *v, const char *where, struct ai_err *err)
{
	char q = v[0], *r = v + 1, *w = v;

	if (q != '"' && q != '\'')
		return 0;
	for (; *r && *r != q; r++) {
		if (q == '"' && *r == '\\') {
			switch (*++r) {
			case '"': case '\\': *w++ = *r; break;
			case 'n': *w++ = '\n'; break;
			case 't': *w++ = '\t'; break;
			default:
				return ai_errf(err, AI_EX_CONFIG, "%s: unknown escape '\\%c' in a quoted value",
					       where, *r ? *r : ' ');
			}
			continue;
		}
		*w++ = *r;
	}
	if (*r != q)
		return ai_errf(err, AI_EX_CONFIG, "%s: the quoted value has no closing %c", where, q);
	if (r[1])
		return ai_errf(err, AI_EX_CONFIG, "%s: text after the closing quote: '%s'", where, r + 1);
	*w = '\0';
	return 0;
}

/* What the first pass learnt of the chosen profile's section. */
struct profile_info {
	bool found;
	bool endpoint;          /* it sets base_url: the endpoint and its key are the profile's */
};

enum pass { PASS_GLOBAL, PASS_PROFILE };

/*
 * Reads one pass of the config file: PASS_GLOBAL applies the lines before
 * any section (and checks every line, and that no profile is defined
 * twice), PASS_PROFILE the chosen profile's section.  config_load runs the
 * environment between the two, so a profile beats the environment.
 */
static int read_file(struct ai_config *cfg, const char *profile, enum pass pass,
		     struct profile_info *pi, struct ai_err *err)
{
	FILE *f = fopen(cfg->path, "r");
	char *line = NULL, where[PATH_MAX + 32];
	size_t cap = 0, lineno = 0, nsect = 0, cap_sect = 0;
	struct { char name[128]; size_t line; } *sect = NULL;
	bool in_profile = false, in_section = false;
	int rc = 0;

	if (!f) {
		if (errno == ENOENT && !profile)
			return 0;
		if (errno == ENOENT)
			return ai_errf(err, AI_EX_CONFIG,
				       "profile '%s' not found: there is no config file '%s'",
				       profile, cfg->path);
		return ai_errf(err, AI_EX_CONFIG, "cannot read '%s': %s", cfg->path, strerror(errno));
	}
	cfg->have_file = true;
	cfg->endpoint_set = true;
	while (!rc && getline(&line, &cap, f) > 0) {
		char *s = trim(line), *eq, *key, *val;

		lineno++;
		snprintf(where, sizeof(where), "%s:%zu", cfg->path, lineno);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char name[128], close = 0;

			if (sscanf(s, "[profile %127[^] \t]%c", name, &close) != 2 || close != ']' ||
			    strcmp(s + strlen(s) - 1, "]")) {
				rc = ai_errf(err, AI_EX_CONFIG, "%s: expected '[profile NAME]'", where);
				break;
			}
			in_section = true;
			in_profile = profile && !strcmp(name, profile);
			if (pass != PASS_GLOBAL)
				continue;
			pi->found |= in_profile;
			/* Two sections of one name would merge without a word: refuse them. */
			for (size_t i = 0; i < nsect; i++)
				if (!strcmp(sect[i].name, name)) {
					rc = ai_errf(err, AI_EX_CONFIG,
						     "%s: profile '%s' is defined twice (first at line %zu); merge the two sections",
						     where, name, sect[i].line);
					break;
				}
			if (!rc && nsect == cap_sect) {
				void *t = realloc(sect, (cap_sect = cap_sect ? 2 * cap_sect : 8) * sizeof(*sect));

				if (!t)
					rc = ai_errf(err, AI_EX_OSERR, "out of memory");
				else
					sect = t;
			}
			if (!rc) {
				memcpy(sect[nsect].name, name, sizeof(name));
				sect[nsect++].line = lineno;
			}
			continue;
		}
		if (!(eq = strchr(s, '='))) {
			rc = ai_errf(err, AI_EX_CONFIG, "%s: expected 'key = value'", where);
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (pass == PASS_GLOBAL && in_profile && !strcmp(key, "base_url"))
			pi->endpoint = true;
		if (pass == PASS_GLOBAL ? in_section : !in_profile)
			continue;
		rc = unquote(val, where, err) || config_set(cfg, key, val, where, err) ? -1 : 0;
	}
	free(line);
	free(sect);
	fclose(f);
	if (!rc && pass == PASS_GLOBAL && profile && !pi->found)
		rc = ai_errf(err, AI_EX_CONFIG, "profile '%s' not found in '%s'", profile, cfg->path);
	return rc;
}

/*
 * The environment.  When the chosen profile names its own endpoint, the
 * environment's endpoint (OPENAI_BASE_URL) and its models are not mixed
 * with it: the profile is chosen as a whole, as aichat's client:model.
 */
static int from_env(struct ai_config *cfg, bool profile_endpoint, struct ai_err *err)
{
	static const struct { const char *env, *key; } map[] = {
		{ "OPENAI_BASE_URL", "base_url" }, { "AI_MODEL", "model" },
		{ "AI_EMBED_MODEL", "embed_model" }, { "AI_TIMEOUT", "timeout" },
		{ "AI_RETRIES", "retries" }, { "AI_CACHE", "cache" },
		{ "AI_CACHE_TTL", "cache_ttl" }, { "AI_CACHE_MAX", "cache_max" },
		{ "AI_LEDGER", "ledger" }, { "AI_BUDGET_DAILY", "budget_daily" },
		{ "AI_MAX_INPUT", "max_input" },
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(map); i++) {
		const char *v = getenv(map[i].env);

		if (profile_endpoint && (!strcmp(map[i].key, "base_url") || !strcmp(map[i].key, "model") ||
					 !strcmp(map[i].key, "embed_model")))
			continue;
		if (v && *v && config_set(cfg, map[i].key, v, map[i].env, err))
			return -1;
	}
	if (getenv("OPENAI_API_KEY") && *getenv("OPENAI_API_KEY"))
		cfg->endpoint_set = true;
	return 0;
}

void config_overrides_init(struct config_overrides *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_s = -1;
	o->retries = -1;
	o->cache_ttl_s = -1;
	o->markdown = -1;
}

int config_load(struct ai_config *cfg, const struct config_overrides *c, struct ai_err *err)
{
	const char *profile = c && c->profile ? c->profile : getenv("AI_PROFILE");
	const char *path = getenv("AI_CONFIG");
	struct profile_info pi = { false, false };
	int r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_s = 600;
	cfg->connect_timeout_s = 10;
	cfg->retries = 2;
	cfg->cache = true;
	cfg->cache_max = 512ull << 20;
	cfg->ledger = true;
	cfg->save = true;
	cfg->ledger_keep = 30;
	cfg->budget_daily = NAN;
	cfg->confirm_over = 0.50;
	cfg->confirm_over_tokens = 200000;
	cfg->temperature = NAN;
	cfg->max_input = 32u << 20;
	cfg->attach_max = 20u << 20;
	cfg->attach_max_total = 50u << 20;
	cfg->loader_timeout_s = 60;
	if (set_str(&cfg->base_url, DEFAULT_BASE_URL) || set_str(&cfg->model, DEFAULT_MODEL) ||
	    set_str(&cfg->embed_model, DEFAULT_EMBED_MODEL))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (profile && !*profile)
		profile = NULL;
	if (profile && !(cfg->profile = strdup(profile)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	cfg->path = path && *path ? strdup(path) : config_xdg_path("CONFIG", "config");
	if (!cfg->path)
		return ai_errf(err, AI_EX_CONFIG, "cannot find the config directory: set HOME or XDG_CONFIG_HOME");
	if (read_file(cfg, cfg->profile, PASS_GLOBAL, &pi, err) || from_env(cfg, pi.endpoint, err) ||
	    (cfg->profile && read_file(cfg, cfg->profile, PASS_PROFILE, NULL, err)) ||
	    net_from_env(cfg, err))
		return -1;
	/*
	 * OPENAI_API_KEY is the key of the environment's endpoint (OPENAI_BASE_URL,
	 * else OpenAI's): it is not sent to another endpoint a profile names.
	 */
	if (pi.endpoint) {
		const char *eb = getenv("OPENAI_BASE_URL");
		size_t n = eb && *eb ? strlen(eb) : 0;

		if (!n)
			eb = DEFAULT_BASE_URL, n = strlen(eb);
		while (n > 0 && eb[n - 1] == '/')
			n--;
		cfg->env_key_off = strlen(cfg->base_url) != n || strncmp(cfg->base_url, eb, n);
	}
	if (!c)
		return 0;
	if (c->base_url && config_set(cfg, "base_url", c->base_url, "--base-url", err))
		return -1;
	if (c->model && set_str(&cfg->model, c->model))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (c->timeout_s > 0)
		cfg->timeout_s = c->timeout_s;
	if (c->retries >= 0)
		cfg->retries = c->retries;
	if (c->no_cache)
		cfg->cache = false;
	if (c->cache_ttl_s >= 0)
		cfg->cache_ttl_s = c->cache_ttl_s;
	if (c->log_prompts)
		cfg->log_prompts = true;
	if (c->markdown >= 0)
		cfg->markdown = c->markdown;
	/* -o after the file: a flag wins over the config. */
	for (size_t i = 0; i < c->n_options; i++) {
		char *k;
		json_object *v;

		if (params_parse(c->options[i], &k, &v, err))
			return -1;
		r = params_set(&cfg->params, k, v, err);
		free(k);
		if (r)
			return -1;
	}
	cfg->dry_run = c->dry_run;
	cfg->verbose = c->verbose;
	cfg->cancel = c->cancel;
	return 0;
}

/* Guarded memory for the key: libsodium must be initialised before its first allocation. */
static char *key_alloc(size_t n)
{
	if (sodium_init() < 0)
		return NULL;
	return sodium_malloc(n);
}

int config_read_key_file(const char *path, char **key, struct ai_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *k;
	ssize_t n;

	*key = NULL;
	if (fd < 0)
		return ai_errf(err, AI_EX_CONFIG, "cannot open key file '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ai_errf(err, AI_EX_CONFIG, "key file '%s' is not a regular file", path);
	}
	if (st.st_uid != getuid() || (st.st_mode & 077)) {
		close(fd);
		return ai_errf(err, AI_EX_CONFIG,
			       "key file '%s' must be yours and private; run: chmod 600 '%s'", path, path);
	}
	if (!(k = key_alloc(4097))) {
		close(fd);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	n = read(fd, k, 4096);
	close(fd);
	if (n < 0) {
		sodium_free(k);
		return ai_errf(err, AI_EX_CONFIG, "cannot read key file '%s': %s", path, strerror(errno));
	}
	k[n] = '\0';
	k[strcspn(k, "\r\n")] = '\0';
	*key = k;
	return 0;
}

/*
 * Runs api_key_cmd through the shell (it is the user's own configuration, as
 * a git credential helper is) and keeps the first line it prints.  It runs
 * as runcmd.h runs a helper: with stdin /dev/null, for it must not eat the
 * data piped to the program, in a group of its own, killed with what it
 * started after CONFIG_CMD_TIMEOUT_MS (a helper waiting for a password
 * prompt nobody sees would hang a cron job for ever), or
 * CONFIG_CMD_TTY_TIMEOUT_MS when a person may be typing one.  What follows
 * the first line (a "pass show" entry's notes) is read and dropped.  The
 * output buffer is allocated once, so no realloc leaves a copy of the key
 * behind, and wiped.
 */
static int secret_from_cmd(const char *name, const char *cmd, const char *where,
			   const volatile sig_atomic_t *cancel, char **key, struct ai_err *err)
{
	int timeout_ms = runcmd_interactive() ? CONFIG_CMD_TTY_TIMEOUT_MS : CONFIG_CMD_TIMEOUT_MS;
	struct buf out;
	char *k = NULL;
	size_t n = 0;
	int st = -1, r = 0;

	*key = NULL;
	buf_init(&out, CONFIG_CMD_LINE_MAX);
	if (buf_grow(&out, CONFIG_CMD_LINE_MAX))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (runcmd_shell(name, cmd, mono_ms() + timeout_ms, cancel, RUNCMD_FIRST_LINE, &out, &st, err)) {
		char why[sizeof(err->msg)];

		sodium_memzero(out.data, out.alloc);
		buf_release(&out);
		/* A helper that hangs may wait on a vault that is slow today: 75, as a timeout is. */
		if (err->code == AI_EX_TEMPFAIL)
			return ai_errf(err, AI_EX_TEMPFAIL, "%s did not finish in %d s and was killed: check it in '%s'",
				       name, timeout_ms / 1000, where);
		if (err->code == AI_EX_CONFIG) {
			snprintf(why, sizeof(why), "%s", err->msg);
			return ai_errf(err, AI_EX_CONFIG, "%s: check it in '%s'", why, where);
		}
		return -1;
	}
	/* out.data holds out.len bytes and no terminating NUL: buf_grow writes none. */
	while (n < out.len && out.data[n] != '\n' && out.data[n] != '\r')
		n++;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		r = ai_errf(err, AI_EX_CONFIG, "%s failed (status %d): check it in '%s'", name,
			    !WIFEXITED(st) ? -1 : WEXITSTATUS(st), where);
	else if (!n)
		r = ai_errf(err, AI_EX_CONFIG, "%s printed %s: check it in '%s'", name,
			    out.len ? "an empty first line" : "nothing", where);
	else if (n == out.max)
		r = ai_errf(err, AI_EX_CONFIG, "%s printed a first line longer than %zu bytes: check it in '%s'",
			    name, out.max - 1, where);
	else if (!(k = key_alloc(n + 1)))
		r = ai_errf(err, AI_EX_OSERR, "out of memory");
	if (k) {
		memcpy(k, out.data, n);
		k[n] = '\0';
	}
	sodium_memzero(out.data, out.alloc);
	buf_release(&out);
	*key = k;
	return r;
}

static int key_from_cmd(const char *cmd, const char *where, const volatile sig_atomic_t *cancel,
			char **key, struct ai_err *err)
{
	return secret_from_cmd("api_key_cmd", cmd, where, cancel, key, err);
}

int config_redis_password(const struct ai_config *cfg, char **pw, struct ai_err *err)
{
	*pw = NULL;
	if (!cfg->redis_password_cmd)
		return 0;
	return secret_from_cmd("redis_password_cmd", cfg->redis_password_cmd, cfg->path, cfg->cancel, pw,
			       err);
}

int config_key(struct ai_config *cfg, const char **key, struct ai_err *err)
{
	const char *env = cfg->env_key_off ? NULL : getenv("OPENAI_API_KEY");

	*key = NULL;
	if (!cfg->key_loaded) {
		int r = 0;

		if (env && *env) {
			size_t n = strlen(env);

			if (!(cfg->key = key_alloc(n + 1)))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
			memcpy(cfg->key, env, n + 1);
		} else if (cfg->api_key_cmd) {
			r = key_from_cmd(cfg->api_key_cmd, cfg->path, cfg->cancel, &cfg->key, err);
		} else if (cfg->api_key_file) {
			r = config_read_key_file(cfg->api_key_file, &cfg->key, err);
		}
		if (r)
			return -1;
		if (cfg->key && config_header_safe(cfg->key)) {
			sodium_free(cfg->key);
			cfg->key = NULL;
			return ai_errf(err, AI_EX_CONFIG,
				       "the API key holds a control character (CR, LF, ...); check how it is set");
		}
		if (cfg->key && !*cfg->key) {
			sodium_free(cfg->key);
			cfg->key = NULL;
		}
		cfg->key_loaded = true;
	}
	*key = cfg->key;
	return 0;
}

void config_release(struct ai_config *cfg)
{
	prices_release(&cfg->prices);
	free(cfg->base_url);
	free(cfg->model);
	free(cfg->embed_model);
	free(cfg->ca_cert);
	free(cfg->azure_api_version);
	free(cfg->proxy);
	free(cfg->no_proxy);
	free(cfg->profile);
	free(cfg->path);
	free(cfg->api_key_cmd);
	free(cfg->api_key_file);
	free(cfg->redis_password_cmd);
	free(cfg->system);
	free(cfg->mcp);
	json_object_put(cfg->params);
	json_object_put(cfg->loaders);
	if (cfg->key)
		sodium_free(cfg->key);
	memset(cfg, 0, sizeof(*cfg));
}
