#include "closest.h"

/* Words this long or longer are not compared: no option or key is. */
#define CLOSEST_MAX_LEN 64

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* Optimal string alignment distance, in three rows of the usual table. */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t rows[3][CLOSEST_MAX_LEN + 1];
	size_t *pp = rows[0], *p = rows[1], *c = rows[2];

	for (size_t j = 0; j <= lb; j++)
		p[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t *t;

		c[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];

			c[j] = min3(p[j] + 1, c[j - 1] + 1, p[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < c[j])
				c[j] = pp[j - 2] + 1;
		}
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb];
}

const char *closest(const char *w, const char *const *words, size_t n, size_t max)
{
	size_t lw = strlen(w), best = SIZE_MAX;
	const char *pick = NULL;

	if (!lw || lw > CLOSEST_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t lv = strlen(words[i]), d;

		if (lv > CLOSEST_MAX_LEN || (lv > lw ? lv - lw : lw - lv) > max)
			continue;
		d = distance(w, lw, words[i], lv);
		if (d < best) {
			best = d;
			pick = words[i];
		}
	}
	return best <= max && best * 2 < lw ? pick : NULL;
}
