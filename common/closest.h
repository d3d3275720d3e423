#ifndef AI_CLOSEST_H
#define AI_CLOSEST_H
/*
 * closest.h - "did you mean": the known word nearest to a mistyped one,
 * for messages about unknown options, commands and configuration keys.
 */
#include "ai.h"

/*
 * Returns the word of words[0..n) nearest to w by optimal string alignment
 * distance (insertions, deletions, substitutions and swaps of two adjacent
 * characters, each 1), when that distance is at most max and less than
 * half of w's length, so that a short word is not "corrected" into an
 * unrelated one; NULL otherwise.  Ties go to the earlier word.  Borrowed:
 * the pointer is one of words.
 */
const char *closest(const char *w, const char *const *words, size_t n, size_t max);

#endif
