/*
 * schema.c - JSON Schema, the structured-outputs subset: compiled once into
 * a tree of nodes so that checking a reply is a walk over the value with no
 * keyword looked up by name (a 20-property reply in a few microseconds).
 */
#include "ai.h"
#include "api/schema.h"
#include "buf.h"
#include "jsonval.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>

/* Type bits; integer is a number too, so "number" allows both. */
enum {
	T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_NUM = 16, T_INT = 32, T_STR = 64
};

struct sprop {
	const char *name;       /* borrowed from the schema document */
	struct snode *node;
};

struct snode {
	json_object *json;      /* borrowed: where it came from, to share $ref targets */
	bool never;             /* the schema false */
	unsigned types;         /* 0: any type */
	struct sprop *props;    /* owned, sorted by name */
	size_t nprops;
	const char **req;       /* owned array of borrowed names */
	size_t nreq;
	struct snode *addl;     /* additionalProperties; NULL: anything */
	json_object *enumv;     /* borrowed array, or NULL */
	json_object *constv;    /* borrowed; meaningful when has_const */
	bool has_const;
	struct snode **anyof;   /* owned array */
	size_t nanyof;
	struct snode *items;
	struct snode **prefix;  /* owned array */
	size_t nprefix;
	bool has_min, has_max, has_xmin, has_xmax, has_mult;
	double min, max, xmin, xmax, mult;
	long long minlen, maxlen, minitems, maxitems;   /* -1: none */
	bool has_re;
	regex_t re;
	char *ref;              /* owned: the $ref until it is resolved */
	struct snode *target;
	int mark;               /* the loop check's colour */
};

/* A schema can hold this many nodes: far more than any reply format needs. */
#define MAX_NODES 20000
/* Checking one reply may visit this many (value, node) pairs, then gives up. */
#define MAX_STEPS 1000000L
/* Nesting of checks (value depth plus $ref/anyOf chains) before giving up. */
#define MAX_DEPTH 256

/* The keywords of JSON Schema outside the subset: refused rather than ignored. */
static const char *const unsupported[] = {
	"allOf", "oneOf", "not", "if", "then", "else", "patternProperties", "propertyNames",
	"dependentRequired", "dependentSchemas", "dependencies", "uniqueItems", "contains",
	"minContains", "maxContains", "minProperties", "maxProperties", "unevaluatedItems",
	"unevaluatedProperties", "additionalItems", "$id", "$anchor", "$dynamicRef",
	"$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$vocabulary", "contentSchema",
};

/* Where compiling is, as a JSON pointer into the schema, for error messages. */
struct where {
	char p[200];
	size_t len;
};

static size_t where_push(struct where *w, const char *seg)
{
	size_t old = w->len;
	int n = snprintf(w->p + w->len, sizeof(w->p) - w->len, "/%s", seg);

	if (n > 0)
		w->len = w->len + (size_t)n < sizeof(w->p) ? w->len + (size_t)n : sizeof(w->p) - 1;
	return old;
}

static void where_pop(struct where *w, size_t old)
{
	w->len = old;
	w->p[old] = '\0';
}

static int bad(struct ai_err *err, const struct where *w, const char *fmt, ...) AI_PRINTF(3, 4);
static int bad(struct ai_err *err, const struct where *w, const char *fmt, ...)
{
	char m[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return ai_errf(err, AI_EX_DATAERR, "schema at '%s': %s", w->len ? w->p : "#", m);
}

static struct snode *node_new(struct schema *s, json_object *j, const struct where *w,
			      struct ai_err *err)
{
	struct snode *n;

	if (s->n >= MAX_NODES) {
		bad(err, w, "more than %d subschemas", MAX_NODES);
		return NULL;
	}
	if (s->n == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 16;
		struct snode **p = realloc(s->nodes, na * sizeof(*p));

		if (!p) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			return NULL;
		}
		s->nodes = p;
		s->alloc = na;
	}
	if (!(n = calloc(1, sizeof(*n)))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		return NULL;
	}
	n->json = j;
	n->minlen = n->maxlen = n->minitems = n->maxitems = -1;
	s->nodes[s->n++] = n;
	return n;
}

static void node_free(struct snode *n)
{
	free(n->props);
	free(n->req);
	free(n->anyof);
	free(n->prefix);
	free(n->ref);
	if (n->has_re)
		regfree(&n->re);
	free(n);
}

static bool is_num(json_object *j)
{
	enum json_type t = json_object_get_type(j);

	return t == json_type_int || t == json_type_double;
}

static bool is_int(json_object *j)
{
	double d;

	if (json_object_get_type(j) == json_type_int)
		return true;
	if (json_object_get_type(j) != json_type_double)
		return false;
	d = json_object_get_double(j);
	return isfinite(d) && floor(d) == d;
}

/* A non-negative integer keyword (minLength, ...); -1 when it is not one. */
static long long count_of(json_object *j)
{
	double d;

	if (!is_int(j))
		return -1;
	if (json_object_get_type(j) == json_type_int) {
		int64_t v = json_object_get_int64(j);

		return v < 0 ? -1 : (long long)v;
	}
	d = json_object_get_double(j);
	return d < 0 ? -1 : d > 9e18 ? (long long)9e18 : (long long)d;
}

static unsigned type_bit(const char *t)
{
	static const struct { const char *name; unsigned bit; } tab[] = {
		{ "null", T_NULL }, { "boolean", T_BOOL }, { "object", T_OBJ }, { "array", T_ARR },
		{ "number", T_NUM | T_INT }, { "integer", T_INT }, { "string", T_STR },
	};

	for (size_t i = 0; i < AI_ARRAY_LEN(tab); i++)
		if (!strcmp(t, tab[i].name))
			return tab[i].bit;
	return 0;
}

/*
 * ECMA-262 regex to POSIX ERE, for the part both can say.  What a search
 * for a match accepts does not depend on greed, so lazy quantifiers lose
 * their '?'; \d \w \s become classes.  Anything without a POSIX meaning
 * (lookaround, backreferences, \b, \p{...}) is refused with why set.
 */
static int class_escape(char c, struct buf *o, bool inside, const char **why)
{
	const char *in = NULL, *out = NULL;

	switch (c) {
	case 'd': in = "0-9"; out = "[0-9]"; break;
	case 'D': out = "[^0-9]"; break;
	case 'w': in = "A-Za-z0-9_"; out = "[A-Za-z0-9_]"; break;
	case 'W': out = "[^A-Za-z0-9_]"; break;
	case 's': in = "[:space:]"; out = "[[:space:]]"; break;
	case 'S': out = "[^[:space:]]"; break;
	default: return 1;
	}
	if (inside && !in) {
		*why = "a negated class escape (\\D \\W \\S) inside [...]";
		return -1;
	}
	return buf_addstr(o, inside ? in : out) ? -1 : 0;
}

static int control_escape(char c)
{
	switch (c) {
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	case 'f': return '\f';
	case 'v': return '\v';
	default: return 0;
	}
}

static int ecma_to_ere(const char *p, struct buf *o, const char **why)
{
	bool quant = false;     /* the last thing written was a quantifier */
	bool rep = false;       /* the last thing read was one, a lazy '?' included */

	*why = NULL;
	while (*p) {
		char c = *p++;
		bool after_rep = rep;
		int r;

		rep = false;
		if (c == '?' && quant) {        /* lazy: same set of matches */
			quant = false;
			rep = true;
			continue;
		}
		quant = false;
		if (c == '\\') {
			c = *p++;
			if (!c) {
				*why = "a trailing backslash";
				return -1;
			}
			if ((r = class_escape(c, o, false, why)) <= 0) {
				if (r < 0)
					return -1;
				continue;
			}
			if (control_escape(c)) {
				if (buf_addch(o, (char)control_escape(c)))
					return -1;
			} else if (strchr(".[]{}()*+?^$|\\", c)) {
				if (buf_addch(o, '\\') || buf_addch(o, c))
					return -1;
			} else if (strchr("/-,:=!<>#&~'\"% ", c)) {
				if (buf_addch(o, c))
					return -1;
			} else {
				*why = "an escape POSIX regex has no meaning for (\\b, \\1, \\p, \\u, ...)";
				return -1;
			}
			continue;
		}
		if (c == '(' && *p == '?') {
			if (p[1] != ':') {
				*why = "lookaround or named groups (?...)";
				return -1;
			}
			p += 2;
			if (buf_addch(o, '('))
				return -1;
			continue;
		}
		if (c == '[') {
			/* Collected apart: POSIX wants ']' first and '-' last to be literal. */
			struct buf body;
			bool neg = false, rb = false, hy = false, caret = false;
			int rc = -1;

			buf_init(&body, 0);
			if (*p == '^') {
				neg = true;
				p++;
			}
			if (*p == ']') {
				*why = "an empty class [] or [^]";
				return -1;
			}
			while (*p && *p != ']') {
				c = *p++;
				if (c == '\\') {
					if (!*p)
						break;  /* unterminated: said below, p still on the NUL */
					c = *p++;
					if ((r = class_escape(c, &body, true, why)) <= 0) {
						if (r < 0)
							goto class_out;
						continue;
					}
					if (control_escape(c))
						c = (char)control_escape(c);
					else if (c == ']') {
						rb = true;
						continue;
					} else if (c == '-') {
						hy = true;
						continue;
					} else if (c == '^') {
						caret = true;
						continue;
					} else if (!strchr(".[]{}()*+?$|\\/,:=!<>#&~'\"% ", c)) {
						*why = "an escape inside [...] POSIX regex has no meaning for";
						goto class_out;
					}
				} else if (c == '[' && (*p == ':' || *p == '.' || *p == '=')) {
					*why = "'[:', '[.' or '[=' inside [...], which POSIX reads as a class name";
					goto class_out;
				} else if (c == '^') {
					caret = true;
					continue;
				}
				if (buf_addch(&body, c))
					goto class_out;
			}
			if (*p != ']') {
				*why = "an unterminated [...]";
				goto class_out;
			}
			p++;
			if (caret && !body.len && !rb && !hy && !neg) {
				rc = buf_addstr(o, "\\^");
				goto class_out;
			}
			if (buf_addch(o, '[') || (neg && buf_addch(o, '^')) || (rb && buf_addch(o, ']')) ||
			    buf_add(o, body.data ? body.data : "", body.len) ||
			    (caret && buf_addch(o, '^')) || (hy && buf_addch(o, '-')) || buf_addch(o, ']'))
				goto class_out;
			rc = 0;
class_out:
			buf_release(&body);
			if (rc)
				return -1;
			continue;
		}
		/*
		 * ECMA-262 refuses a quantifier on a quantifier ("a++", "(x)*+",
		 * "a+??": nothing to repeat), and glibc's regcomp would copy the
		 * repeated part again for each one: a stack of them took
		 * gigabytes (the fuzzer's oom-dba544e6).
		 */
		if (after_rep && (c == '*' || c == '+' || c == '?' || c == '{')) {
			*why = "a quantifier on a quantifier (as in '++'), which ECMA-262 refuses";
			return -1;
		}
		if (buf_addch(o, c))
			return -1;
		quant = rep = c == '*' || c == '+' || c == '?' || c == '}';
	}
	return 0;
}

/*
 * glibc's regcomp copies a repeated part once per repetition ("(a{100}){100}"
 * is ten thousand copies, "((a+)+)+..." doubles with each '+'), so a pattern
 * of a few hundred bytes can take minutes and gigabytes to compile.  This
 * estimates that size over the ERE (whose shape ecma_to_ere made), so that
 * such a pattern is refused before regcomp sees it.
 */
#define MAX_RE_COST 20000.0

static double ere_cost(const char **pp, int depth)
{
	const char *p = *pp;
	double cost = 0;

	if (depth > 64)
		return MAX_RE_COST * 2;
	while (*p && *p != ')') {
		double atom = 1, factor = 1;

		if (*p == '|') {
			p++;
			continue;
		}
		if (*p == '(') {
			p++;
			atom = ere_cost(&p, depth + 1);
			if (*p == ')')
				p++;
		} else if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					const char *e = strstr(p + 2, p[1] == ':' ? ":]" : p[1] == '.' ? ".]" : "=]");

					p = e ? e + 2 : p + strlen(p);
				} else
					p++;
			}
			if (*p)
				p++;
		} else if (*p == '\\' && p[1]) {
			p += 2;
		} else
			p++;
		while (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
			if (*p == '{') {
				char *end;
				double m = strtod(p + 1, &end), n = m;

				if (*end == ',')
					n = end[1] == '}' ? m : strtod(end + 1, &end);
				factor *= (m > n ? m : n) + 1;
				p = strchr(p, '}') ? strchr(p, '}') + 1 : p + strlen(p);
			} else {
				factor *= 2;
				p++;
			}
			if (factor > MAX_RE_COST)
				break;
		}
		cost += atom * factor;
		if (cost > MAX_RE_COST)
			break;
	}
	*pp = p;
	return cost;
}

static int compile_pattern(struct snode *n, const char *pat, const struct where *w,
			   struct ai_err *err)
{
	struct buf ere;
	const char *why = NULL;
	int rc;

	buf_init(&ere, 1 << 16);
	if (ecma_to_ere(pat, &ere, &why)) {
		buf_release(&ere);
		if (!why)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		return bad(err, w, "pattern uses %s", why);
	}
	{
		const char *p = ere.data ? ere.data : "";

		if (ere_cost(&p, 0) > MAX_RE_COST) {
			buf_release(&ere);
			return bad(err, w, "pattern repeats too much to compile as a POSIX regex");
		}
		/*
		 * The cost stops at a ')' that closes nothing: ECMA refuses such
		 * a pattern, and what follows it would go to regcomp uncounted.
		 */
		if (*p) {
			buf_release(&ere);
			return bad(err, w, "pattern has a ')' that closes nothing");
		}
	}
	rc = regcomp(&n->re, ere.data ? ere.data : "", REG_EXTENDED | REG_NOSUB);
	buf_release(&ere);
	if (rc) {
		char m[100];

		regerror(rc, &n->re, m, sizeof(m));
		return bad(err, w, "pattern does not compile as a POSIX regex: %s", m);
	}
	n->has_re = true;
	return 0;
}

static struct snode *compile(struct schema *s, json_object *j, struct where *w, struct ai_err *err);

static int compile_list(struct schema *s, json_object *a, struct where *w, struct snode ***out,
			size_t *nout, struct ai_err *err)
{
	size_t len = json_object_array_length(a);

	if (!len)
		return bad(err, w, "must not be empty");
	if (!(*out = calloc(len, sizeof(**out))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < len; i++) {
		char seg[24];
		size_t old;

		snprintf(seg, sizeof(seg), "%zu", i);
		old = where_push(w, seg);
		(*out)[i] = compile(s, json_object_array_get_idx(a, i), w, err);
		where_pop(w, old);
		if (!(*out)[i])
			return -1;
		*nout = i + 1;
	}
	return 0;
}

static int prop_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sprop *)a)->name, ((const struct sprop *)b)->name);
}

static int compile_number(struct snode *n, const char *k, json_object *v, const struct where *w,
			  struct ai_err *err)
{
	double d;

	if (!is_num(v))
		return bad(err, w, "%s must be a number", k);
	d = json_object_get_double(v);
	if (!strcmp(k, "minimum"))
		n->has_min = true, n->min = d;
	else if (!strcmp(k, "maximum"))
		n->has_max = true, n->max = d;
	else if (!strcmp(k, "exclusiveMinimum"))
		n->has_xmin = true, n->xmin = d;
	else if (!strcmp(k, "exclusiveMaximum"))
		n->has_xmax = true, n->xmax = d;
	else {
		if (!(d > 0))
			return bad(err, w, "multipleOf must be greater than 0");
		n->has_mult = true, n->mult = d;
	}
	return 0;
}

static int compile_count(long long *dst, const char *k, json_object *v, const struct where *w,
			 struct ai_err *err)
{
	if ((*dst = count_of(v)) < 0)
		return bad(err, w, "%s must be a non-negative integer", k);
	return 0;
}

static int compile_type(struct snode *n, json_object *v, const struct where *w, struct ai_err *err)
{
	if (json_object_is_type(v, json_type_string)) {
		if (!(n->types = type_bit(json_object_get_string(v))))
			return bad(err, w, "unknown type '%s'", json_object_get_string(v));
		return 0;
	}
	if (!json_object_is_type(v, json_type_array) || !json_object_array_length(v))
		return bad(err, w, "type must be a string or a non-empty array of strings");
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *t = json_object_array_get_idx(v, i);
		unsigned b = json_object_is_type(t, json_type_string) ? type_bit(json_object_get_string(t)) : 0;

		if (!b)
			return bad(err, w, "type lists something that is not a type name");
		n->types |= b;
	}
	return 0;
}

static int compile_props(struct schema *s, struct snode *n, json_object *v, struct where *w,
			 struct ai_err *err)
{
	size_t cnt = 0;

	if (!json_object_is_type(v, json_type_object))
		return bad(err, w, "properties must be an object");
	if (!(n->props = calloc((size_t)json_object_object_length(v) + 1, sizeof(*n->props))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	json_object_object_foreach(v, pk, pv) {
		size_t old = where_push(w, pk);

		n->props[cnt].name = pk;
		n->props[cnt].node = compile(s, pv, w, err);
		where_pop(w, old);
		if (!n->props[cnt].node)
			return -1;
		n->nprops = ++cnt;
	}
	qsort(n->props, n->nprops, sizeof(*n->props), prop_cmp);
	return 0;
}

static int compile_required(struct snode *n, json_object *v, const struct where *w, struct ai_err *err)
{
	size_t len;

	if (!json_object_is_type(v, json_type_array))
		return bad(err, w, "required must be an array of strings");
	len = json_object_array_length(v);
	if (!(n->req = calloc(len + 1, sizeof(*n->req))))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	for (size_t i = 0; i < len; i++) {
		json_object *r = json_object_array_get_idx(v, i);

		if (!json_object_is_type(r, json_type_string))
			return bad(err, w, "required must be an array of strings");
		n->req[n->nreq++] = json_object_get_string(r);
	}
	return 0;
}

/* One keyword k with value v of the schema object being compiled into n. */
static int compile_keyword(struct schema *s, struct snode *n, const char *k, json_object *v,
			   struct where *w, struct ai_err *err)
{
	size_t old;
	int rc = 0;

	for (size_t i = 0; i < AI_ARRAY_LEN(unsupported); i++)
		if (!strcmp(k, unsupported[i]))
			return bad(err, w, "keyword '%s' is not supported (structured outputs leave it out)", k);
	old = where_push(w, k);
	if (!strcmp(k, "type"))
		rc = compile_type(n, v, w, err);
	else if (!strcmp(k, "properties"))
		rc = compile_props(s, n, v, w, err);
	else if (!strcmp(k, "required"))
		rc = compile_required(n, v, w, err);
	else if (!strcmp(k, "additionalProperties"))
		rc = (n->addl = compile(s, v, w, err)) ? 0 : -1;
	else if (!strcmp(k, "items"))
		rc = (n->items = compile(s, v, w, err)) ? 0 : -1;
	else if (!strcmp(k, "prefixItems") || !strcmp(k, "anyOf")) {
		bool pre = k[0] == 'p';

		if (!json_object_is_type(v, json_type_array))
			rc = bad(err, w, "%s must be an array of schemas", k);
		else
			rc = compile_list(s, v, w, pre ? &n->prefix : &n->anyof,
					  pre ? &n->nprefix : &n->nanyof, err);
	} else if (!strcmp(k, "enum")) {
		if (!json_object_is_type(v, json_type_array))
			rc = bad(err, w, "enum must be an array");
		n->enumv = v;
	} else if (!strcmp(k, "const")) {
		n->constv = v;
		n->has_const = true;
	} else if (!strcmp(k, "minimum") || !strcmp(k, "maximum") || !strcmp(k, "exclusiveMinimum") ||
		   !strcmp(k, "exclusiveMaximum") || !strcmp(k, "multipleOf"))
		rc = compile_number(n, k, v, w, err);
	else if (!strcmp(k, "minLength"))
		rc = compile_count(&n->minlen, k, v, w, err);
	else if (!strcmp(k, "maxLength"))
		rc = compile_count(&n->maxlen, k, v, w, err);
	else if (!strcmp(k, "minItems"))
		rc = compile_count(&n->minitems, k, v, w, err);
	else if (!strcmp(k, "maxItems"))
		rc = compile_count(&n->maxitems, k, v, w, err);
	else if (!strcmp(k, "pattern")) {
		if (!json_object_is_type(v, json_type_string))
			rc = bad(err, w, "pattern must be a string");
		else
			rc = compile_pattern(n, json_object_get_string(v), w, err);
	} else if (!strcmp(k, "$ref")) {
		const char *r = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) || r[0] != '#')
			rc = bad(err, w, "only a $ref within the schema (\"#/...\") is supported");
		else if (!(n->ref = strdup(r)))
			rc = ai_errf(err, AI_EX_OSERR, "out of memory");
	} else if (!strcmp(k, "$defs") || !strcmp(k, "definitions")) {
		/* Compiled now so that a mistake in an unused definition is still found. */
		if (!json_object_is_type(v, json_type_object))
			rc = bad(err, w, "%s must be an object", k);
		else {
			json_object_object_foreach(v, dk, dv) {
				size_t o2 = where_push(w, dk);
				struct snode *d = compile(s, dv, w, err);

				where_pop(w, o2);
				if (!d) {
					rc = -1;
					break;
				}
			}
		}
	}
	/* Anything else is an annotation (title, description, format, ...) or unknown: ignored. */
	where_pop(w, old);
	return rc;
}

static struct snode *compile(struct schema *s, json_object *j, struct where *w, struct ai_err *err)
{
	struct snode *n;

	if (json_object_is_type(j, json_type_boolean)) {
		if (!(n = node_new(s, j, w, err)))
			return NULL;
		n->never = !json_object_get_boolean(j);
		return n;
	}
	if (!json_object_is_type(j, json_type_object)) {
		bad(err, w, "a schema must be an object or a boolean");
		return NULL;
	}
	if (!(n = node_new(s, j, w, err)))
		return NULL;
	json_object_object_foreach(j, k, v) {
		if (compile_keyword(s, n, k, v, w, err))
			return NULL;
	}
	return n;
}

/* Decodes one pointer segment (URI fragment: %XX, then ~1 and ~0) into out. */
static int pointer_segment(const char *p, size_t n, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) &&
		    isxdigit((unsigned char)p[i + 2])) {
			char hex[3] = { p[i + 1], p[i + 2], 0 };

			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (buf_addch(out, c))
			return -1;
	}
	/* ~1 before ~0, as RFC 6901 says, so that "~01" is "~1". */
	for (size_t i = 0; out->data && i + 1 < out->len; i++) {
		if (out->data[i] == '~' && (out->data[i + 1] == '1' || out->data[i + 1] == '0')) {
			out->data[i] = out->data[i + 1] == '1' ? '/' : '~';
			memmove(out->data + i + 1, out->data + i + 2, out->len - i - 1);
			out->len--;
		}
	}
	return 0;
}

/* The value the fragment ref ("#/a/b") names in root, borrowed; NULL when none. */
static json_object *resolve(json_object *root, const char *ref)
{
	json_object *cur = root;
	const char *p = ref + 1;
	struct buf seg;

	buf_init(&seg, 4096);
	while (cur && *p) {
		size_t n;

		if (*p != '/') {
			cur = NULL;
			break;
		}
		p++;
		n = strcspn(p, "/");
		if (pointer_segment(p, n, &seg)) {
			cur = NULL;
			break;
		}
		if (json_object_is_type(cur, json_type_object)) {
			json_object *next = NULL;

			if (!json_object_object_get_ex(cur, seg.data ? seg.data : "", &next))
				next = NULL;
			cur = next;
		} else if (json_object_is_type(cur, json_type_array)) {
			char *end;
			long i = seg.len ? strtol(seg.data, &end, 10) : -1;

			cur = (seg.len && !*end && i >= 0 && (size_t)i < json_object_array_length(cur)) ?
				json_object_array_get_idx(cur, (size_t)i) : NULL;
		} else
			cur = NULL;
		p += n;
	}
	buf_release(&seg);
	return cur;
}

/*
 * A loop of $ref and anyOf that never descends into the value ({"$ref":
 * "#"} at the top) would recurse for ever on any value: refused here.
 */
static int check_loops(struct snode *n, int depth, struct ai_err *err)
{
	if (n->mark == 2)
		return 0;
	if (n->mark == 1)
		return ai_errf(err, AI_EX_DATAERR, "schema: a $ref loop that never descends into the value");
	if (depth > MAX_DEPTH)
		return ai_errf(err, AI_EX_DATAERR, "schema: $ref and anyOf nested too deeply");
	n->mark = 1;
	if (n->target && check_loops(n->target, depth + 1, err))
		return -1;
	for (size_t i = 0; i < n->nanyof; i++)
		if (check_loops(n->anyof[i], depth + 1, err))
			return -1;
	n->mark = 2;
	return 0;
}

int schema_compile(struct schema *s, json_object *root, struct ai_err *err)
{
	struct where w = { "", 0 };

	memset(s, 0, sizeof(*s));
	s->root = root;
	if (!root)
		return ai_errf(err, AI_EX_DATAERR, "schema: empty");
	if (!(s->top = compile(s, root, &w, err)))
		goto fail;
	/* $refs resolved after the tree, one at a time: a chain of them is a loop here, not a recursion. */
	for (size_t i = 0; i < s->n; i++) {
		struct snode *n = s->nodes[i], *t = NULL;
		json_object *tj;

		if (!n->ref)
			continue;
		if (!(tj = resolve(root, n->ref))) {
			ai_errf(err, AI_EX_DATAERR, "schema: $ref '%.100s' points nowhere", n->ref);
			goto fail;
		}
		for (size_t k = 0; k < s->n && !t; k++)
			if (s->nodes[k]->json == tj)
				t = s->nodes[k];
		if (!t) {
			struct where rw = { "", 0 };

			snprintf(rw.p, sizeof(rw.p), "%s", n->ref + 1);
			rw.len = strlen(rw.p);
			if (!(t = compile(s, tj, &rw, err)))
				goto fail;
		}
		n->target = t;
	}
	for (size_t i = 0; i < s->n; i++)
		if (check_loops(s->nodes[i], 0, err))
			goto fail;
	return 0;
fail:
	schema_release(s);
	return -1;
}

void schema_release(struct schema *s)
{
	for (size_t i = 0; i < s->n; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	if (s->root)
		json_object_put(s->root);
	memset(s, 0, sizeof(*s));
}

/* ---- validation ---- */

struct vctx {
	struct schema_fail *f;
	char ptr[256];
	size_t plen;
	long steps;
	bool costly;            /* gave up: every check after that failed */
};

static size_t ptr_push(struct vctx *c, const char *seg, size_t n)
{
	size_t old = c->plen;

	if (c->plen + 1 < sizeof(c->ptr))
		c->ptr[c->plen++] = '/';
	for (size_t i = 0; i < n && c->plen + 2 < sizeof(c->ptr); i++) {
		if (seg[i] == '~' || seg[i] == '/') {
			c->ptr[c->plen++] = '~';
			c->ptr[c->plen++] = seg[i] == '~' ? '0' : '1';
		} else
			c->ptr[c->plen++] = seg[i];
	}
	c->ptr[c->plen] = '\0';
	return old;
}

static void ptr_pop(struct vctx *c, size_t old)
{
	c->plen = old;
	c->ptr[old] = '\0';
}

static int fail(struct vctx *c, const char *fmt, ...) AI_PRINTF(2, 3);
static int fail(struct vctx *c, const char *fmt, ...)
{
	va_list ap;

	memcpy(c->f->ptr, c->ptr, c->plen + 1);
	va_start(ap, fmt);
	vsnprintf(c->f->reason, sizeof(c->f->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_double: return is_int(v) ? "integer" : "number";
	case json_type_int: return "integer";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "?";
}

static unsigned type_of(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return T_NULL;
	case json_type_boolean: return T_BOOL;
	case json_type_double: return is_int(v) ? T_INT : T_NUM;
	case json_type_int: return T_INT;
	case json_type_object: return T_OBJ;
	case json_type_array: return T_ARR;
	case json_type_string: return T_STR;
	}
	return 0;
}

static void types_text(unsigned t, char *out, size_t n)
{
	static const char *const names[] = { "null", "boolean", "object", "array", "number",
					     "integer", "string" };
	size_t len = 0;

	out[0] = '\0';
	if ((t & T_NUM) && (t & T_INT))
		t &= ~(unsigned)T_INT;
	for (unsigned i = 0; i < AI_ARRAY_LEN(names); i++)
		if ((t & (1u << i)) && len < n) {
			int w = snprintf(out + len, n - len, "%s%s", len ? " or " : "", names[i]);

			len = w > 0 ? len + (size_t)w : len;
		}
}

/* JSON equality as JSON Schema means it: 1 and 1.0 are the same number. */
static bool json_eq(json_object *a, json_object *b)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);

	if (is_num(a) && is_num(b)) {
		if (ta == json_type_int && tb == json_type_int)
			return json_object_get_int64(a) == json_object_get_int64(b);
		return json_object_get_double(a) == json_object_get_double(b);
	}
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_null:
		return true;
	case json_type_boolean:
		return !json_object_get_boolean(a) == !json_object_get_boolean(b);
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       !memcmp(json_object_get_string(a), json_object_get_string(b),
			       (size_t)json_object_get_string_len(a));
	case json_type_array:
		if (json_object_array_length(a) != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < json_object_array_length(a); i++)
			if (!json_eq(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	case json_type_object:
		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, k, av) {
			json_object *bv;

			if (!json_object_object_get_ex(b, k, &bv) || !json_eq(av, bv))
				return false;
		}
		return true;
	default:
		return false;
	}
}

static size_t code_points(const char *s, size_t n)
{
	size_t cp = 0;

	for (size_t i = 0; i < n; i++)
		cp += ((unsigned char)s[i] & 0xC0) != 0x80;
	return cp;
}

static const struct snode *find_prop(const struct snode *n, const char *k)
{
	size_t lo = 0, hi = n->nprops;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(k, n->props[mid].name);

		if (!c)
			return n->props[mid].node;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int check(struct vctx *c, const struct snode *n, json_object *v, int depth);

static int check_object(struct vctx *c, const struct snode *n, json_object *v, int depth)
{
	for (size_t i = 0; i < n->nreq; i++)
		if (!json_object_object_get_ex(v, n->req[i], NULL))
			return fail(c, "required property '%.100s' is missing", n->req[i]);
	json_object_object_foreach(v, k, mv) {
		const struct snode *p = n->nprops ? find_prop(n, k) : NULL;
		size_t old;

		if (!p && !n->addl)
			continue;
		old = ptr_push(c, k, strlen(k));
		if (!p && n->addl->never)
			return fail(c, "property '%.100s' is not allowed", k);
		if (check(c, p ? p : n->addl, mv, depth + 1))
			return -1;
		ptr_pop(c, old);
	}
	return 0;
}

static int check_array(struct vctx *c, const struct snode *n, json_object *v, int depth)
{
	size_t len = json_object_array_length(v);

	if (n->minitems >= 0 && len < (unsigned long long)n->minitems)
		return fail(c, "%zu items, fewer than minItems %lld", len, n->minitems);
	if (n->maxitems >= 0 && len > (unsigned long long)n->maxitems)
		return fail(c, "%zu items, more than maxItems %lld", len, n->maxitems);
	for (size_t i = 0; i < len; i++) {
		const struct snode *e = i < n->nprefix ? n->prefix[i] : n->items;
		char seg[24];
		size_t old;
		int rc;

		if (!e)
			continue;
		snprintf(seg, sizeof(seg), "%zu", i);
		old = ptr_push(c, seg, strlen(seg));
		rc = e->never ? fail(c, "no item allowed here") :
			check(c, e, json_object_array_get_idx(v, i), depth + 1);
		if (rc)
			return -1;
		ptr_pop(c, old);
	}
	return 0;
}

static int check_number(struct vctx *c, const struct snode *n, json_object *v)
{
	double d = json_object_get_double(v);

	if (n->has_min && d < n->min)
		return fail(c, "%.17g is less than minimum %.17g", d, n->min);
	if (n->has_max && d > n->max)
		return fail(c, "%.17g is greater than maximum %.17g", d, n->max);
	if (n->has_xmin && d <= n->xmin)
		return fail(c, "%.17g is not greater than exclusiveMinimum %.17g", d, n->xmin);
	if (n->has_xmax && d >= n->xmax)
		return fail(c, "%.17g is not less than exclusiveMaximum %.17g", d, n->xmax);
	if (n->has_mult) {
		double q = d / n->mult;

		if (!isfinite(q) || floor(q) != q)
			return fail(c, "%.17g is not a multiple of %.17g", d, n->mult);
	}
	return 0;
}

static int check_string(struct vctx *c, const struct snode *n, json_object *v)
{
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v), cp;

	if (n->minlen >= 0 || n->maxlen >= 0) {
		cp = code_points(s, len);
		if (n->minlen >= 0 && cp < (unsigned long long)n->minlen)
			return fail(c, "%zu characters, fewer than minLength %lld", cp, n->minlen);
		if (n->maxlen >= 0 && cp > (unsigned long long)n->maxlen)
			return fail(c, "%zu characters, more than maxLength %lld", cp, n->maxlen);
	}
	/* A NUL inside the string would end regexec's view of it early: such a string never matches. */
	if (n->has_re && (strlen(s) != len || regexec(&n->re, s, 0, NULL, 0)))
		return fail(c, "does not match the pattern");
	return 0;
}

static int check(struct vctx *c, const struct snode *n, json_object *v, int depth)
{
	unsigned t;

	if (++c->steps > MAX_STEPS || depth > MAX_DEPTH) {
		c->costly = true;
		return fail(c, "too costly");
	}
	if (n->never)
		return fail(c, "no value is allowed here");
	t = type_of(v);
	if (n->types && !(n->types & t)) {
		char want[80];

		types_text(n->types, want, sizeof(want));
		return fail(c, "expected %s, got %s", want, type_name(v));
	}
	if (n->has_const && !json_eq(n->constv, v))
		return fail(c, "not the constant the schema requires");
	if (n->enumv) {
		size_t i, len = json_object_array_length(n->enumv);

		for (i = 0; i < len; i++)
			if (json_eq(json_object_array_get_idx(n->enumv, i), v))
				break;
		if (i == len)
			return fail(c, "not one of the enum's %zu values", len);
	}
	if ((t & (T_NUM | T_INT)) && check_number(c, n, v))
		return -1;
	if (t == T_STR && check_string(c, n, v))
		return -1;
	if (t == T_OBJ && check_object(c, n, v, depth))
		return -1;
	if (t == T_ARR && check_array(c, n, v, depth))
		return -1;
	if (n->target && check(c, n->target, v, depth + 1))
		return -1;
	if (n->nanyof) {
		struct schema_fail best, one, *outer = c->f;
		size_t plen = c->plen;
		bool any = false;

		best.ptr[0] = best.reason[0] = '\0';
		c->f = &one;
		for (size_t i = 0; i < n->nanyof && !any; i++) {
			if (!check(c, n->anyof[i], v, depth + 1))
				any = true;
			else if (i == 0 || strlen(one.ptr) > strlen(best.ptr))
				best = one;
			c->plen = plen;
			c->ptr[plen] = '\0';
		}
		c->f = outer;
		if (!any) {
			/* The branch that got deepest into the value says most about what is wrong. */
			if (strlen(best.ptr) > plen) {
				*c->f = best;
				return -1;
			}
			return fail(c, "matches none of the %zu anyOf schemas", n->nanyof);
		}
	}
	return 0;
}

int schema_validate(const struct schema *s, json_object *v, struct schema_fail *f)
{
	struct vctx c;
	struct schema_fail dummy;

	c.f = f ? f : &dummy;
	c.ptr[0] = '\0';
	c.plen = 0;
	c.steps = 0;
	c.costly = false;
	if (!s->top || !check(&c, s->top, v, 0))
		return 0;
	/* Whatever anyOf made of it, the failure that counts is having given up. */
	if (c.costly)
		snprintf(c.f->reason, sizeof(c.f->reason),
			 "too costly to check (nested too deeply, or anyOf over a deep value)");
	return -1;
}

/* ---- the short form ---- */

static json_object *short_type(const char *t, size_t n)
{
	static const struct { const char *name; const char *type; } tab[] = {
		{ "str", "string" }, { "string", "string" }, { "int", "integer" },
		{ "integer", "integer" }, { "float", "number" }, { "number", "number" },
		{ "bool", "boolean" }, { "boolean", "boolean" },
	};
	json_object *o;

	if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
		json_object *it = short_type(t + 1, n - 2);

		if (!it || !(o = json_object_new_object()))
			return json_object_put(it), NULL;
		if (jv_add(o, "type", json_object_new_string("array")) || jv_add(o, "items", it))
			return json_object_put(o), NULL;
		return o;
	}
	for (size_t i = 0; i < AI_ARRAY_LEN(tab); i++)
		if (strlen(tab[i].name) == n && !memcmp(t, tab[i].name, n)) {
			if (!(o = json_object_new_object()) ||
			    jv_add(o, "type", json_object_new_string(tab[i].type)))
				return json_object_put(o), NULL;
			return o;
		}
	return NULL;
}

static bool space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One field "name [type] [: description]" of s[0..n). */
static int short_field(const char *s, size_t n, json_object *props, json_object *req,
		       struct ai_err *err)
{
	const char *colon = memchr(s, ':', n), *e = colon ? colon : s + n, *p = s, *name, *type;
	size_t nlen, tlen = 0;
	json_object *t;
	char *key;

	while (p < e && space(*p))
		p++;
	name = p;
	while (p < e && !space(*p))
		p++;
	nlen = (size_t)(p - name);
	while (p < e && space(*p))
		p++;
	type = p;
	while (p < e && !space(*p))
		p++;
	tlen = (size_t)(p - type);
	while (p < e && space(*p))
		p++;
	if (!nlen)
		return ai_errf(err, AI_EX_DATAERR, "schema: field '%.*s' has no name", (int)(n > 60 ? 60 : n), s);
	if (p < e)
		return ai_errf(err, AI_EX_DATAERR, "schema: field '%.*s': one name and one type, then ': description'",
			       (int)(nlen > 60 ? 60 : nlen), name);
	if (!(t = tlen ? short_type(type, tlen) : short_type("str", 3)))
		return ai_errf(err, AI_EX_DATAERR,
			       "schema: field '%.*s': unknown type '%.*s' (str, int, float, bool or [type])",
			       (int)(nlen > 60 ? 60 : nlen), name, (int)(tlen > 40 ? 40 : tlen), type);
	if (colon) {
		const char *d = colon + 1, *de = s + n;

		while (d < de && space(*d))
			d++;
		while (de > d && space(de[-1]))
			de--;
		if (de > d && jv_add(t, "description", json_object_new_string_len(d, (int)(de - d))))
			return json_object_put(t), ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	if (!(key = strndup(name, nlen)))
		return json_object_put(t), ai_errf(err, AI_EX_OSERR, "out of memory");
	if (json_object_object_get_ex(props, key, NULL)) {
		ai_errf(err, AI_EX_DATAERR, "schema: field '%.60s' named twice", key);
		free(key);
		json_object_put(t);
		return -1;
	}
	if (jv_add(props, key, t) || jv_push(req, json_object_new_string(key))) {
		free(key);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	free(key);
	return 0;
}

json_object *schema_short(const char *text, size_t len, struct ai_err *err)
{
	json_object *o = json_object_new_object(), *props = json_object_new_object(),
		    *req = json_object_new_array();
	char sep = memchr(text, '\n', len) ? '\n' : ',';
	size_t i = 0, fields = 0;

	if (!o || !props || !req || jv_add(o, "type", json_object_new_string("object"))) {
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto fail;
	}
	if (memchr(text, '\0', len)) {
		ai_errf(err, AI_EX_DATAERR, "schema: holds a NUL byte");
		goto fail;
	}
	while (i < len) {
		const char *f = text + i, *end = memchr(f, sep, len - i);
		size_t n = end ? (size_t)(end - f) : len - i, k = 0;

		while (k < n && space(f[k]))
			k++;
		if (k < n) {
			if (short_field(f, n, props, req, err))
				goto fail;
			fields++;
		}
		i += n + 1;
	}
	if (!fields) {
		ai_errf(err, AI_EX_DATAERR, "schema: no fields ('name, age int, tags [str]')");
		goto fail;
	}
	if (jv_add(o, "properties", props)) {
		props = NULL;
		goto oom;
	}
	props = NULL;
	if (jv_add(o, "required", req)) {
		req = NULL;
		goto oom;
	}
	req = NULL;
	if (jv_add(o, "additionalProperties", json_object_new_boolean(0)))
		goto oom;
	return o;
oom:
	ai_errf(err, AI_EX_OSERR, "out of memory");
fail:
	json_object_put(o);
	json_object_put(props);
	json_object_put(req);
	return NULL;
}

json_object *schema_multi(json_object *schema)
{
	json_object *o = json_object_new_object(), *props = json_object_new_object(),
		    *arr = json_object_new_object(), *req = json_object_new_array();

	if (!o || !props || !arr || !req ||
	    jv_add(arr, "type", json_object_new_string("array")) ||
	    jv_add(arr, "items", schema)) {
		schema = NULL;
		goto fail;
	}
	schema = NULL;
	if (jv_add(props, "items", arr)) {
		arr = NULL;
		goto fail;
	}
	arr = NULL;
	if (jv_push(req, json_object_new_string("items")) ||
	    jv_add(o, "type", json_object_new_string("object")))
		goto fail;
	if (jv_add(o, "properties", props)) {
		props = NULL;
		goto fail;
	}
	props = NULL;
	if (jv_add(o, "required", req)) {
		req = NULL;
		goto fail;
	}
	req = NULL;
	if (jv_add(o, "additionalProperties", json_object_new_boolean(0)))
		goto fail;
	return o;
fail:
	json_object_put(schema);
	json_object_put(o);
	json_object_put(props);
	json_object_put(arr);
	json_object_put(req);
	return NULL;
}

static bool is_word(const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w);

	while (n && space(s[n - 1]))
		n--;
	return n == wl && !memcmp(s, w, wl);
}

int schema_parse(struct schema *s, const char *text, size_t len, bool multi, struct ai_err *err)
{
	size_t i = 0;
	json_object *root;

	memset(s, 0, sizeof(*s));
	while (i < len && space(text[i]))
		i++;
	/* JSON when it looks like JSON; a short form never starts with these. */
	if (i < len && (text[i] == '{' || text[i] == '[' || text[i] == '"' ||
			is_word(text + i, len - i, "true") || is_word(text + i, len - i, "false"))) {
		json_tokener *tok = json_tokener_new_ex(64);
		enum json_tokener_error je;
		bool whole = false;

		if (!tok)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		root = json_tokener_parse_ex(tok, text + i, (int)(len - i > INT_MAX ? INT_MAX : len - i));
		/* A bare literal (true) is only complete once its end is seen: json-c's way is a NUL. */
		if (!root && json_tokener_get_error(tok) == json_tokener_continue) {
			root = json_tokener_parse_ex(tok, "", 1);
			whole = true;
		}
		je = json_tokener_get_error(tok);
		if (root && je == json_tokener_success) {
			size_t used = whole ? len : i + json_tokener_get_parse_end(tok);

			while (used < len && space(text[used]))
				used++;
			if (used < len) {
				json_object_put(root);
				json_tokener_free(tok);
				return ai_errf(err, AI_EX_DATAERR, "schema is not JSON: text after the end");
			}
		} else {
			json_object_put(root);
			json_tokener_free(tok);
			return ai_errf(err, AI_EX_DATAERR, "schema is not JSON: %s",
				       je == json_tokener_continue ? "it ends too soon" :
				       json_tokener_error_desc(je));
		}
		json_tokener_free(tok);
	} else if (!(root = schema_short(text, len, err)))
		return -1;
	if (multi && !(root = schema_multi(root)))
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	return schema_compile(s, root, err);
}
