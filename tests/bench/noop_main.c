/*
 * noop_main.c - the fastest possible start of an ai-tools program: main()
 * returns at once, but the binary links the same libraries (json-c,
 * libsodium, SQLite, with --no-as-needed so that the dynamic loader maps
 * and relocates every one of them, as it does for the real programs;
 * libcurl is loaded only when a request goes out).  cache-hit.sh and
 * ledger.sh measure against it.
 */
#include "ai.h"

int main(void)
{
	return 0;
}
