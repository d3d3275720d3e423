#ifndef AI_PATH_H
#define AI_PATH_H
/*
 * path.h - one name for one file: the knowledge base keys a document by
 * its canonical path, so notes/keys.md, ./keys.md and /home/me/notes/keys.md
 * are the same document; people read it back relative to where they are.
 */
#include "ai.h"

/*
 * Returns the canonical absolute path of path, owned (free with free()):
 * realpath(3) when the file exists, else the path made absolute against
 * the current directory with "." and ".." and repeated slashes resolved by
 * their names (a file that was removed keeps the name it was stored under).
 * NULL with errno when out of memory or the current directory is unknown.
 */
char *path_canonical(const char *path);

/*
 * Returns abs relative to the current directory when it lies inside it
 * ("notes/keys.md"), else abs itself.  Borrowed: a pointer into abs.
 */
const char *path_display(const char *abs);

#endif
