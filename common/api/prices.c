/*
 * prices.c - the price table and its overrides.
 *
 * Why a compiled-in array and a .tsv: the array makes a binary that was
 * never installed (or was copied alone to another machine) price its
 * calls correctly without finding a data file, and costs nothing at
 * start.  common/api/prices.tsv is the same table in the documented file
 * format: it is installed as a template for prices_load() and a user's
 * own file, and t_prices checks, line by line, that it equals this
 * array, so the two cannot drift apart.  Nothing is generated at build
 * time.
 */
#include "api/prices.h"
#include "net/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <strings.h>

/*
 * USD per million tokens, standard (not Batch) tier, from OpenAI's public
 * pricing page as known in mid-2025: input, output, and cached input (the
 * prompt tokens the server read from its prompt cache; NAN where the
 * model has no such discount, so they cost the input price).  Prices
 * change: keep this in step with common/api/prices.tsv, and let users
 * override in the config file.  Dated snapshots ("gpt-4o-2024-08-06")
 * are found by the prefix rule; a snapshot or variant priced
 * differently from its base name has its own line, since the prefix
 * rule would otherwise give it the base price.
 */
static const struct builtin {
	const char *model;
	double in, out, cached;
} builtin[] = {
	{ "gpt-5",                        1.25,   10.00,   0.125 },
	{ "gpt-5-mini",                   0.25,    2.00,   0.025 },
	{ "gpt-5-nano",                   0.05,    0.40,   0.005 },
	{ "gpt-4.1",                      2.00,    8.00,    0.50 },
	{ "gpt-4.1-mini",                 0.40,    1.60,    0.10 },
	{ "gpt-4.1-nano",                 0.10,    0.40,   0.025 },
	{ "gpt-4.5-preview",             75.00,  150.00,   37.50 },
	{ "gpt-4o",                       2.50,   10.00,    1.25 },
	{ "gpt-4o-2024-05-13",            5.00,   15.00,     NAN },
	{ "gpt-4o-realtime-preview",      5.00,   20.00,    2.50 },
	{ "gpt-4o-mini",                  0.15,    0.60,   0.075 },
	{ "gpt-4o-mini-realtime-preview", 0.60,    2.40,    0.30 },
	{ "chatgpt-4o-latest",            5.00,   15.00,     NAN },
	{ "gpt-4-turbo",                 10.00,   30.00,     NAN },
	{ "gpt-4-0125-preview",          10.00,   30.00,     NAN },
	{ "gpt-4-1106-preview",          10.00,   30.00,     NAN },
	{ "gpt-4",                       30.00,   60.00,     NAN },
	{ "gpt-4-32k",                   60.00,  120.00,     NAN },
	{ "gpt-3.5-turbo",                0.50,    1.50,     NAN },
	{ "gpt-3.5-turbo-instruct",       1.50,    2.00,     NAN },
	{ "o1",                          15.00,   60.00,    7.50 },
	{ "o1-mini",                      1.10,    4.40,    0.55 },
	{ "o1-pro",                     150.00,  600.00,     NAN },
	{ "o3",                           2.00,    8.00,    0.50 },
	{ "o3-mini",                      1.10,    4.40,    0.55 },
	{ "o3-pro",                      20.00,   80.00,     NAN },
	{ "o4-mini",                      1.10,    4.40,   0.275 },
	{ "text-embedding-3-small",       0.02,    0.00,     NAN },
	{ "text-embedding-3-large",       0.13,    0.00,     NAN },
	{ "text-embedding-ada-002",       0.10,    0.00,     NAN },
};

struct price_override {
	char *model;
	struct price p;
};

#define MODEL_MAX 200
#define PRICE_MAX 1e6

/*
 * How well the listed name matches model: 0 no match, SIZE_MAX exact,
 * else the length of the prefix (always > 0).
 */
static size_t match(const char *listed, const char *model)
{
	size_t n = strlen(listed);

	if (strncmp(listed, model, n) != 0)
		return 0;
	if (model[n] == '\0')
		return SIZE_MAX;
	return model[n] == '-' ? n : 0;
}

bool prices_lookup(const struct prices *ps, const char *model, struct price *out)
{
	size_t best = 0, i, m;
	struct price p = { 0, 0, NAN };

	if (!model || !*model)
		return false;
	/* Overrides first, and only a strictly better match replaces one,
	 * so an override wins a tie with the built-in entry of its name. */
	for (i = 0; ps && i < ps->n; i++) {
		m = match(ps->v[i].model, model);
		if (m > best) {
			best = m;
			p = ps->v[i].p;
		}
	}
	for (i = 0; i < AI_ARRAY_LEN(builtin); i++) {
		m = match(builtin[i].model, model);
		if (m > best) {
			best = m;
			p.in_per_mtok = builtin[i].in;
			p.out_per_mtok = builtin[i].out;
			p.cached_per_mtok = builtin[i].cached;
		}
	}
	if (!best)
		return false;
	if (out)
		*out = p;
	return true;
}

static int check_name(const char *model, struct ai_err *err)
{
	const unsigned char *s;

	if (!model || !*model)
		return ai_errf(err, AI_EX_CONFIG, "empty model name in a price override");
	if (strlen(model) > MODEL_MAX)
		return ai_errf(err, AI_EX_CONFIG, "model name '%.40s...' too long for a price override",
			       model);
	for (s = (const unsigned char *)model; *s; s++)
		if (*s <= ' ' || *s == 0x7f)
			return ai_errf(err, AI_EX_CONFIG,
				       "model name '%s' in a price override has a space or control character",
				       model);
	return 0;
}

static bool price_ok(double v)
{
	return isfinite(v) && v >= 0 && v <= PRICE_MAX;
}

int prices_override(struct prices *ps, const char *model, double in, double out,
		    struct ai_err *err)
{
	return prices_override_cached(ps, model, in, out, NAN, err);
}

int prices_override_cached(struct prices *ps, const char *model, double in, double out,
			   double cached, struct ai_err *err)
{
	size_t i;
	char *copy;

	if (check_name(model, err) < 0)
		return -1;
	if (!price_ok(in) || !price_ok(out) || !(isnan(cached) || price_ok(cached)))
		return ai_errf(err, AI_EX_CONFIG,
			       "bad price for '%s': want numbers from 0 to 1000000 (USD per million input, output and cached input tokens)",
			       model);
	for (i = 0; i < ps->n; i++) {
		if (strcmp(ps->v[i].model, model) == 0) {
			ps->v[i].p.in_per_mtok = in;
			ps->v[i].p.out_per_mtok = out;
			ps->v[i].p.cached_per_mtok = cached;
			return 0;
		}
	}
	if (ps->n == ps->cap) {
		size_t na = ps->cap ? 2 * ps->cap : 8;
		struct price_override *no = realloc(ps->v, na * sizeof(*no));

		if (!no)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		ps->v = no;
		ps->cap = na;
	}
	copy = strdup(model);
	if (!copy)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	ps->v[ps->n].model = copy;
	ps->v[ps->n].p.in_per_mtok = in;
	ps->v[ps->n].p.out_per_mtok = out;
	ps->v[ps->n].p.cached_per_mtok = cached;
	ps->n++;
	return 0;
}

void prices_release(struct prices *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->v[i].model);
	free(ps->v);
	ps->v = NULL;
	ps->n = ps->cap = 0;
}

/*
 * Parses a plain decimal ("12", "0.15", ".5", "3.") at *s, advancing *s.
 * Written out rather than strtod so that a program that called
 * setlocale() with a decimal comma still reads "0.15".  Digits are
 * gathered as an integer and divided once by a power of ten, which is
 * correctly rounded while both fit in a double exactly (15 significant
 * digits, plenty for a price).
 */
static int parse_decimal(const char **s, double *v)
{
	const char *p = *s;
	double mant = 0, scale = 1;
	int digits = 0;

	while (isdigit((unsigned char)*p)) {
		if (digits < 15)
			mant = mant * 10 + (*p - '0');
		else
			scale /= 10; /* ignore digits past 15: a huge value, rejected later */
		digits++;
		p++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 15) {
				mant = mant * 10 + (*p - '0');
				scale *= 10;
			}
			digits++;
			p++;
		}
	}
	if (!digits)
		return -1;
	*v = scale >= 1 ? mant / scale : mant * (1 / scale);
	*s = p;
	return 0;
}

static const char *skip_blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * Parses "IN OUT [CACHED]" with optional blanks around; a CACHED of "-"
 * or none is NAN (no cached-input discount).  0 or -1.
 */
static int parse_prices(const char *s, double *in, double *out, double *cached)
{
	s = skip_blank(s);
	if (parse_decimal(&s, in) < 0 || (*s != ' ' && *s != '\t'))
		return -1;
	s = skip_blank(s);
	if (parse_decimal(&s, out) < 0)
		return -1;
	*cached = NAN;
	if (*s == ' ' || *s == '\t') {
		s = skip_blank(s);
		if (*s == '-')
			s++;
		else if (*s && parse_decimal(&s, cached) < 0)
			return -1;
	}
	s = skip_blank(s);
	return *s ? -1 : 0;
}

int prices_override_str(struct prices *ps, const char *model, const char *value,
			struct ai_err *err)
{
	double in, out, cached;

	if (check_name(model, err) < 0)
		return -1;
	if (!value || parse_prices(value, &in, &out, &cached) < 0)
		return ai_errf(err, AI_EX_CONFIG,
			       "bad price for '%s': '%s': want 'price.%s = IN OUT [CACHED]', USD per million input, output and cached input tokens, e.g. 0.15 0.60 0.075",
			       model, value ? value : "", model);
	return prices_override_cached(ps, model, in, out, cached, err);
}

/* One parsed line of a price file. */
struct entry {
	char model[MODEL_MAX + 1];
	double in, out, cached;
};

static int parse_line(char *line, struct entry *e, bool *blank)
{
	char *p = line, *name;
	size_t n;

	*blank = false;
	line[strcspn(line, "#\r\n")] = '\0';
	p = (char *)skip_blank(p);
	if (!*p) {
		*blank = true;
		return 0;
	}
	name = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	n = (size_t)(p - name);
	if (n > MODEL_MAX)
		return -1;
	memcpy(e->model, name, n);
	e->model[n] = '\0';
	return parse_prices(p, &e->in, &e->out, &e->cached);
}

int prices_load(struct prices *ps, const char *path, struct ai_err *err)
{
	FILE *f;
	char line[1024];
	struct entry *v = NULL, *nv;
	size_t n = 0, alloc = 0, i;
	long lineno = 0;
	bool blank;
	int rc = 0;

	f = fopen(path, "r");
	if (!f)
		return ai_errf(err, errno == ENOENT ? AI_EX_NOINPUT : AI_EX_CONFIG,
			       "cannot open price file '%s': %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			rc = ai_errf(err, AI_EX_CONFIG, "'%s' line %ld: line too long", path, lineno);
			goto out;
		}
		if (n == alloc) {
			alloc = alloc ? 2 * alloc : 32;
			nv = realloc(v, alloc * sizeof(*v));
			if (!nv) {
				rc = ai_errf(err, AI_EX_OSERR, "out of memory");
				goto out;
			}
			v = nv;
		}
		if (parse_line(line, &v[n], &blank) < 0) {
			rc = ai_errf(err, AI_EX_CONFIG,
				     "'%s' line %ld: want 'MODEL<TAB>INPUT<TAB>OUTPUT[<TAB>CACHED]', USD per million tokens",
				     path, lineno);
			goto out;
		}
		if (blank)
			continue;
		if (check_name(v[n].model, err) < 0 || !price_ok(v[n].in) || !price_ok(v[n].out) ||
		    !(isnan(v[n].cached) || price_ok(v[n].cached))) {
			rc = ai_errf(err, AI_EX_CONFIG, "'%s' line %ld: bad model name or price",
				     path, lineno);
			goto out;
		}
		n++;
	}
	if (ferror(f)) {
		rc = ai_errf(err, AI_EX_CONFIG, "cannot read price file '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++)
		if (prices_override_cached(ps, v[i].model, v[i].in, v[i].out, v[i].cached, err) < 0) {
			rc = -1;
			break;
		}
out:
	free(v);
	fclose(f);
	return rc;
}

double prices_cost(const struct prices *ps, const char *model, long prompt_tokens,
		   long completion_tokens, bool batch)
{
	return prices_cost_cached(ps, model, prompt_tokens, -1, completion_tokens, batch);
}

double prices_cost_cached(const struct prices *ps, const char *model, long prompt_tokens,
			  long cached_tokens, long completion_tokens, bool batch)
{
	struct price p;
	double c;
	long cached = cached_tokens;

	if (prompt_tokens < 0 || completion_tokens < 0 || !prices_lookup(ps, model, &p))
		return NAN;
	/* Unknown, or more than the prompt (a server's bug): none at the cached rate. */
	if (cached < 0 || cached > prompt_tokens || isnan(p.cached_per_mtok))
		cached = 0;
	c = ((double)(prompt_tokens - cached) * p.in_per_mtok +
	     (cached ? (double)cached * p.cached_per_mtok : 0) +
	     (double)completion_tokens * p.out_per_mtok) / 1e6;
	return batch ? c / 2 : c;
}

bool prices_host_local(const char *host)
{
	char name[64];
	struct in_addr a4;
	struct in6_addr a6;

	if (!host || !url_hostname(host, name, sizeof(name)))
		return false;
	if (!strcasecmp(name, "localhost") || !strcasecmp(name, "localhost."))
		return true;
	if (inet_pton(AF_INET, name, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, name, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

bool prices_lookup_at(const struct prices *ps, const char *model, const char *host,
		      struct price *out)
{
	if (prices_lookup(ps, model, out))
		return true;
	if (!prices_host_local(host))
		return false;
	if (out) {
		out->in_per_mtok = out->out_per_mtok = 0;
		out->cached_per_mtok = NAN;
	}
	return true;
}

double prices_cost_at(const struct prices *ps, const char *model, const char *host,
		      long prompt_tokens, long completion_tokens, bool batch)
{
	return prices_cost_cached_at(ps, model, host, prompt_tokens, -1, completion_tokens, batch);
}

double prices_cost_cached_at(const struct prices *ps, const char *model, const char *host,
			     long prompt_tokens, long cached_tokens, long completion_tokens, bool batch)
{
	double c = prices_cost_cached(ps, model, prompt_tokens, cached_tokens, completion_tokens, batch);

	if (isnan(c) && prompt_tokens >= 0 && completion_tokens >= 0 && prices_host_local(host))
		return 0;
	return c;
}

size_t prices_builtin_count(void)
{
	return AI_ARRAY_LEN(builtin);
}

bool prices_builtin(size_t i, const char **name, struct price *p)
{
	if (i >= AI_ARRAY_LEN(builtin))
		return false;
	if (name)
		*name = builtin[i].model;
	if (p) {
		p->in_per_mtok = builtin[i].in;
		p->out_per_mtok = builtin[i].out;
		p->cached_per_mtok = builtin[i].cached;
	}
	return true;
}
