/* t_prices - the price table: lookups, the prefix rule, costs, overrides, price files. */
#include "api/prices.h"
#include "config.h"
#include "tap.h"

#include <math.h>
#include <unistd.h>

/* The overrides every test here reads and writes, as a configuration holds them. */
static struct prices ps = PRICES_INIT;

static double in_of(const char *model)
{
	struct price p;

	return prices_lookup(&ps, model, &p) ? p.in_per_mtok : -1;
}

static double out_of(const char *model)
{
	struct price p;

	return prices_lookup(&ps, model, &p) ? p.out_per_mtok : -1;
}

static void test_lookup(void)
{
	is_dbl(in_of("gpt-4o"), 2.50, 1e-12, "gpt-4o exact: input");
	is_dbl(out_of("gpt-4o"), 10.00, 1e-12, "gpt-4o exact: output");
	is_dbl(in_of("gpt-4o-mini"), 0.15, 1e-12, "gpt-4o-mini is its own entry, not gpt-4o");
	is_dbl(in_of("gpt-4o-mini-2024-07-18"), 0.15, 1e-12, "dated snapshot takes the longest prefix");
	is_dbl(in_of("gpt-4o-2024-08-06"), 2.50, 1e-12, "gpt-4o snapshot by prefix");
	is_dbl(in_of("gpt-4o-2024-05-13"), 5.00, 1e-12, "a snapshot listed with its own price");
	is_dbl(in_of("gpt-4.1-mini-2025-04-14"), 0.40, 1e-12, "gpt-4.1-mini snapshot");
	is_dbl(in_of("gpt-4.1-nano"), 0.10, 1e-12, "gpt-4.1-nano is not gpt-4.1");
	is_dbl(in_of("gpt-4-turbo-2024-04-09"), 10.00, 1e-12, "gpt-4-turbo snapshot is not gpt-4");
	is_dbl(in_of("gpt-4-0613"), 30.00, 1e-12, "gpt-4 snapshot");
	is_dbl(in_of("o3-mini"), 1.10, 1e-12, "o3-mini is not o3");
	is_dbl(in_of("o3"), 2.00, 1e-12, "o3");
	is_dbl(in_of("o4-mini-2025-04-16"), 1.10, 1e-12, "o4-mini snapshot");
	is_dbl(in_of("gpt-3.5-turbo-0125"), 0.50, 1e-12, "gpt-3.5-turbo snapshot");
	is_dbl(in_of("text-embedding-3-small"), 0.02, 1e-12, "embedding input price");
	is_dbl(out_of("text-embedding-3-large"), 0.0, 0, "embedding output price is 0");
	is_dbl(in_of("text-embedding-ada-002"), 0.10, 1e-12, "ada-002");

	ok(!prices_lookup(&ps, "gpt-4omni", NULL), "no prefix match without a '-' after it");
	ok(!prices_lookup(&ps, "o1x", NULL), "o1x is not o1");
	ok(!prices_lookup(&ps, "gpt", NULL), "a prefix of a listed name is not a match");
	ok(!prices_lookup(&ps, "GPT-4O", NULL), "names are case-sensitive");
	ok(!prices_lookup(&ps, "llama3.1:8b", NULL), "an unknown model is unknown");
	ok(!prices_lookup(&ps, "openai/gpt-4o", NULL), "a router's prefixed name is not guessed");
	ok(!prices_lookup(&ps, "", NULL), "empty name unknown");
	ok(!prices_lookup(&ps, NULL, NULL), "NULL name unknown");
	ok(prices_lookup(&ps, "gpt-4o", NULL), "out may be NULL");
}

static void test_cost(void)
{
	is_dbl(prices_cost(&ps, "gpt-4o-mini", 1000000, 1000000, false), 0.75, 1e-12,
	       "1M in + 1M out on gpt-4o-mini is $0.75");
	is_dbl(prices_cost(&ps, "gpt-4o-mini", 1000000, 1000000, true), 0.375, 1e-12,
	       "batch halves it");
	is_dbl(prices_cost(&ps, "gpt-4o", 1200, 300, false), 0.006, 1e-12, "1200 in, 300 out on gpt-4o");
	is_dbl(prices_cost(&ps, "text-embedding-3-small", 1000, 0, false), 0.00002, 1e-15, "embedding cost");
	is_dbl(prices_cost(&ps, "gpt-4o", 0, 0, false), 0.0, 0, "no tokens cost nothing");
	ok(isnan(prices_cost(&ps, "llama3", 10, 10, false)), "unknown model: NAN, never a made-up cost");
	ok(isnan(prices_cost(&ps, "llama3", 10, 10, true)), "unknown model batch: NAN");
	ok(isnan(prices_cost(&ps, "gpt-4o", -1, 10, false)), "unknown prompt tokens: NAN");
	ok(isnan(prices_cost(&ps, "gpt-4o", 10, -1, false)), "unknown completion tokens: NAN");
	ok(isnan(prices_cost(&ps, NULL, 10, 10, false)), "NULL model: NAN");
}

static void test_override(void)
{
	struct ai_err err;

	ai_err_clear(&err);
	is_int(prices_override(&ps, "gpt-4o", 1, 2, &err), 0, "override gpt-4o");
	is_dbl(in_of("gpt-4o"), 1.0, 0, "override beats the built-in entry");
	is_dbl(in_of("gpt-4o-2024-08-06"), 1.0, 0, "and wins the tie on a prefix match");
	is_dbl(in_of("gpt-4o-mini"), 0.15, 1e-12, "but does not change gpt-4o-mini");
	is_dbl(in_of("gpt-4o-2024-05-13"), 5.00, 1e-12, "nor a more specific built-in snapshot");
	is_int(prices_override(&ps, "gpt-4o", 3, 4, &err), 0, "override again");
	is_dbl(out_of("gpt-4o"), 4.0, 0, "the second override replaces the first");

	is_int(prices_override_str(&ps, "my-model", " 0.5\t1.5 ", &err), 0, "override_str a new model");
	is_dbl(in_of("my-model"), 0.5, 0, "new model input");
	is_dbl(out_of("my-model-v2"), 1.5, 0, "new model by prefix");
	is_int(prices_override_str(&ps, "m2", "12 .25", &err), 0, "integer and leading-dot decimals");
	is_dbl(out_of("m2"), 0.25, 0, "'.25' read");
	is_int(prices_override_str(&ps, "m3", "3. 1000000", &err), 0, "trailing dot, the maximum");
	is_dbl(in_of("m3"), 3.0, 0, "'3.' read");
	is_dbl(prices_cost(&ps, "my-model", 2000000, 1000000, true), 1.25, 1e-12, "override cost, batch");

	is_int(prices_override(&ps, "", 1, 1, &err), -1, "empty name refused");
	is_int(err.code, AI_EX_CONFIG, "as a configuration error");
	is_int(prices_override(&ps, "a b", 1, 1, &err), -1, "name with a space refused");
	is_int(prices_override(&ps, "a\tb", 1, 1, &err), -1, "name with a tab refused");
	is_int(prices_override(&ps, NULL, 1, 1, &err), -1, "NULL name refused");
	is_int(prices_override(&ps, "x", -1, 1, &err), -1, "negative price refused");
	is_int(prices_override(&ps, "x", 1, NAN, &err), -1, "NAN price refused");
	is_int(prices_override(&ps, "x", INFINITY, 1, &err), -1, "infinite price refused");
	is_int(prices_override(&ps, "x", 2e6, 1, &err), -1, "absurd price refused");
	ok(strstr(err.msg, "'x'") != NULL, "message names the model: %s", err.msg);
	ok(!prices_lookup(&ps, "x", NULL), "nothing added by the refused overrides");

	is_int(prices_override_str(&ps, "x", "0.5", &err), -1, "one number refused");
	ok(strstr(err.msg, "price.x = IN OUT") != NULL, "message says the form: %s", err.msg);
	is_int(prices_override_str(&ps, "x", "a b", &err), -1, "words refused");
	is_int(prices_override_str(&ps, "x", "0.5 1.5 2 3", &err), -1, "four numbers refused");
	is_int(prices_override_str(&ps, "x", "-1 2", &err), -1, "a sign refused");
	is_int(prices_override_str(&ps, "x", "1,5 2", &err), -1, "a decimal comma refused");
	is_int(prices_override_str(&ps, "x", "0.51.5", &err), -1, "no separator refused");
	is_int(prices_override_str(&ps, "x", "", &err), -1, "empty value refused");
	is_int(prices_override_str(&ps, "x", NULL, &err), -1, "NULL value refused");
	is_int(prices_override_str(&ps, "x", "1e3 1", &err), -1, "exponents are not part of the format");
	is_int(prices_override_str(&ps, "x", "9999999 1", &err), -1, "above the maximum refused");
	ok(!prices_lookup(&ps, "x", NULL), "still nothing added");

	prices_release(&ps);
	is_dbl(in_of("gpt-4o"), 2.50, 1e-12, "clearing restores the built-in price");
	ok(!prices_lookup(&ps, "my-model", NULL), "and forgets added models");
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void test_load(void)
{
	char dir[] = "/tmp/t_prices.XXXXXX", path[256];
	struct ai_err err;

	ai_err_clear(&err);
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/p.tsv", dir);
	write_file(path, "# comment\n\nlocal-llm\t0\t0\n  gpt-4o  7.5 \t 8 # trailing comment\r\nz\t1\t2");
	is_int(prices_load(&ps, path, &err), 0, "load a price file: %s", err.msg);
	ok(prices_lookup(&ps, "local-llm", NULL), "zero-priced local model is known");
	is_dbl(prices_cost(&ps, "local-llm", 100, 100, false), 0.0, 0, "and costs 0, not unknown");
	is_dbl(in_of("gpt-4o"), 7.5, 0, "file entries override built-ins");
	is_dbl(out_of("z"), 2.0, 0, "last line without a newline read");
	prices_release(&ps);

	write_file(path, "good\t1\t2\n# c\nbad\t1\n");
	is_int(prices_load(&ps, path, &err), -1, "a bad line fails the load");
	ok(strstr(err.msg, "line 3") != NULL, "message names the line: %s", err.msg);
	ok(!prices_lookup(&ps, "good", NULL), "all or nothing: the good line was not added");

	write_file(path, "bad name\t1\t2\n");
	is_int(prices_load(&ps, path, &err), -1, "a name with a space fails (three fields expected)");

	write_file(path, "big\t1\t2000000\n");
	is_int(prices_load(&ps, path, &err), -1, "an absurd price fails");
	ok(strstr(err.msg, "line 1") != NULL, "message names the line: %s", err.msg);

	unlink(path);
	is_int(prices_load(&ps, path, &err), -1, "a missing file fails");
	is_int(err.code, AI_EX_NOINPUT, "with AI_EX_NOINPUT, so a caller may ignore it");
	rmdir(dir);
}

/* Prompt tokens read from the server's cache, at the cached-input price. */
static void test_cached(void)
{
	struct prices own = PRICES_INIT;
	struct price p;
	struct ai_err err;
	char path[512], dir[] = "/tmp/t_prices_cached.XXXXXX";

	/* gpt-4o: 2.50 in, 10 out, 1.25 cached. */
	is_dbl(prices_cost_cached(NULL, "gpt-4o", 1000000, 400000, 0, false), 2.0, 1e-12,
	       "400k of 1M prompt tokens cached on gpt-4o: 0.6 x 2.50 + 0.4 x 1.25");
	is_dbl(prices_cost_cached(NULL, "gpt-4o", 1000000, 400000, 1000000, true), 6.0, 1e-12,
	       "  batch halves all of it");
	is_dbl(prices_cost_cached(NULL, "gpt-4o", 1000000, -1, 0, false), 2.5, 1e-12,
	       "unknown cached count: all at the input price");
	is_dbl(prices_cost_cached(NULL, "gpt-4o", 100, 101, 0, false), 0.00025, 1e-15,
	       "more cached than prompted (a server's bug): none at the cached price");
	is_dbl(prices_cost_cached(NULL, "gpt-4-turbo", 1000000, 1000000, 0, false), 10.0, 1e-12,
	       "a model without a cached price charges the input price");
	ok(isnan(prices_cost_cached(NULL, "llama3", 10, 5, 1, false)), "unknown model: NAN");
	is_dbl(prices_cost_cached_at(NULL, "llama3", "127.0.0.1:8080", 10, 5, 1, false), 0, 0,
	       "  but free on a loopback host");
	is_dbl(prices_cost(NULL, "gpt-4o", 1000000, 0, false), 2.5, 1e-12,
	       "prices_cost knows nothing cached");

	is_int(prices_override_str(&own, "m", "1 2 0.5", &err), 0, "price.m = 1 2 0.5: %s", err.msg);
	ok(prices_lookup(&own, "m", &p) && p.cached_per_mtok == 0.5, "  the cached price is kept");
	is_dbl(prices_cost_cached(&own, "m", 2000000, 1000000, 0, false), 1.5, 1e-12, "  and used");
	is_int(prices_override_str(&own, "m", "1 2", &err), 0, "two numbers still do");
	ok(prices_lookup(&own, "m", &p) && isnan(p.cached_per_mtok), "  with no cached price");
	is_int(prices_override_str(&own, "m", "1 2 -", &err), 0, "'-' is no cached price");
	is_int(prices_override_str(&own, "m", "1 2 x", &err), -1, "a third word that is no number fails");
	is_int(prices_override_str(&own, "m", "1 2 3 4", &err), -1, "four numbers fail");
	is_int(prices_override_str(&own, "m", "1 2 2000000", &err), -1, "an absurd cached price fails");

	if (ok(mkdtemp(dir) != NULL, "temp dir")) {
		snprintf(path, sizeof(path), "%s/p.tsv", dir);
		write_file(path, "a\t1\t2\t0.25\nb\t1\t2\t-\nc 1 2\n");
		is_int(prices_load(&own, path, &err), 0, "a price file with a CACHED column: %s", err.msg);
		ok(prices_lookup(&own, "a", &p) && p.cached_per_mtok == 0.25, "  read");
		ok(prices_lookup(&own, "b", &p) && isnan(p.cached_per_mtok), "  '-' read as none");
		ok(prices_lookup(&own, "c", &p) && isnan(p.cached_per_mtok), "  a line without it as none");
		unlink(path);
		rmdir(dir);
	}
	prices_release(&own);
}

/* The .tsv shipped in common/ must hold exactly the compiled-in table. */
static void test_tsv_matches_builtin(void)
{
	char path[512], line[512];
	const char *slash = strrchr(__FILE__, '/');
	size_t i = 0, n = prices_builtin_count(), bad = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%.*s/../../common/api/prices.tsv",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	f = fopen(path, "r");
	if (!ok(f != NULL, "open %s", path))
		return;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		const char *name;
		struct price bp;
		double in, out, cached;
		size_t len;

		if (*line == '#' || *line == '\n')
			continue;
		len = strcspn(p, "\t");
		in = strtod(p + len, &end);
		out = strtod(end, &end);
		end += strspn(end, "\t");
		cached = *end == '-' ? NAN : strtod(end, &end);
		if (!prices_builtin(i, &name, &bp) || strlen(name) != len ||
		    strncmp(name, p, len) != 0 || in != bp.in_per_mtok || out != bp.out_per_mtok ||
		    !(cached == bp.cached_per_mtok || (isnan(cached) && isnan(bp.cached_per_mtok)))) {
			printf("# prices.tsv entry %zu differs from prices.c: %s", i, line);
			bad++;
		}
		i++;
	}
	fclose(f);
	is_int(i, n, "prices.tsv has as many entries as prices.c");
	is_int(bad, 0, "and every entry equals the compiled-in one");
	ok(n >= 20, "the table lists the current common models");
}

static void test_local(void)
{
	static const char *const local[] = {
		"127.0.0.1", "127.0.0.1:8080", "127.255.0.9:1", "localhost", "LOCALHOST:11434",
		"[::1]", "[::1]:8000", "[0:0:0:0:0:0:0:1]:80", "user@127.0.0.1:8080", "u:k@localhost",
	};
	static const char *const remote[] = {
		"api.openai.com", "128.0.0.1", "10.0.0.1:8080", "127.example.com", "localhost.evil.com",
		"localhostx", "[::2]:80", "[::1", "", "127.0.0.1.nip.io",
	};
	struct price p = { 9, 9, 9 };

	for (size_t i = 0; i < AI_ARRAY_LEN(local); i++)
		ok(prices_host_local(local[i]), "%s is loopback", local[i]);
	for (size_t i = 0; i < AI_ARRAY_LEN(remote); i++)
		ok(!prices_host_local(remote[i]), "'%s' is not loopback", remote[i]);
	ok(!prices_host_local(NULL), "NULL is not loopback");
	ok(prices_lookup_at(&ps, "llama3", "127.0.0.1:11434", &p) && p.in_per_mtok == 0 && p.out_per_mtok == 0,
	   "an unpriced model at a loopback host is free");
	ok(!prices_lookup_at(&ps, "llama3", "api.example.com", &p), "elsewhere it has no price");
	ok(prices_lookup_at(&ps, "gpt-4o-mini", "localhost", &p) && p.in_per_mtok == 0.15,
	   "a listed price wins at a loopback host");
	ok(prices_cost_at(&ps, "llama3", "[::1]:8080", 1000, 1000, false) == 0, "cost 0 at ::1");
	ok(isnan(prices_cost_at(&ps, "llama3", "example.com", 1000, 1000, false)), "unknown elsewhere");
	ok(isnan(prices_cost_at(&ps, "llama3", "localhost", -1, 1000, false)), "unknown tokens stay unknown");
}

/* Two sets of overrides, as two configurations hold them, price apart: nothing is global. */
static void test_apart(void)
{
	struct prices a = PRICES_INIT, b = PRICES_INIT;
	struct ai_err err;

	ai_err_clear(&err);
	is_int(prices_override(&a, "gpt-4o", 100, 200, &err), 0, "apart: override in a");
	is_int(prices_override_str(&b, "only-b", "1 2", &err), 0, "apart: a model only b knows");
	is_dbl(prices_cost(&a, "gpt-4o", 1000000, 0, false), 100, 1e-9, "apart: a has its price");
	is_dbl(prices_cost(&b, "gpt-4o", 1000000, 0, false), 2.5, 1e-9, "apart: b keeps the built-in");
	is_dbl(prices_cost(NULL, "gpt-4o", 1000000, 0, false), 2.5, 1e-9, "apart: NULL is the built-in table");
	ok(!prices_lookup(&a, "only-b", NULL), "apart: a does not see b's model");
	ok(prices_lookup(&b, "only-b", NULL), "apart: b does");
	prices_release(&a);
	is_dbl(prices_cost(&a, "gpt-4o", 1000000, 0, false), 2.5, 1e-9, "apart: release forgets the override");
	prices_release(&b);
	ok(!b.v && !b.n, "apart: release leaves it empty");
}

/* config_set's price.MODEL goes into that configuration, and config_release frees it. */
static void test_config(void)
{
	struct ai_config c1, c2;
	struct ai_err err;

	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));
	ai_err_clear(&err);
	is_int(config_set(&c1, "price.conf-model", "0.5 1.5", "test", &err), 0, "config: price.MODEL is set");
	ok(prices_lookup(&c1.prices, "conf-model", NULL), "config: in that configuration's prices");
	ok(!prices_lookup(&c2.prices, "conf-model", NULL), "config: not in another's");
	ok(!prices_lookup(&ps, "conf-model", NULL), "config: nor anywhere global");
	is_int(config_set(&c1, "price.conf-model", "x", "test", &err), -1, "config: a bad price fails");
	ok(strstr(err.msg, "test: bad price for 'conf-model'") != NULL, "config: naming where: %s", err.msg);
	config_release(&c1);
	ok(!c1.prices.n, "config: config_release frees the overrides");
	config_release(&c2);
}

int main(void)
{
	test_apart();
	test_config();
	test_lookup();
	test_cost();
	test_local();
	test_override();
	test_load();
	test_cached();
	test_tsv_matches_builtin();
	prices_release(&ps);
	return tap_done();
}
