#ifndef AI_CACHE_H
#define AI_CACHE_H
/*
 * cache.h - the response cache: opaque values stored under a 32-byte key.
 *
 * The one API function every model call goes through asks it first; a
 * hit answers without touching the network.  The key is BLAKE2b-256 of
 * the canonical request (cache_key()); the value is whatever bytes the
 * caller wants replayed.
 *
 * On disk: one file per entry, DIR/ab/abcdef...(64 hex), the two-level
 * fan-out keeping directories small.  Each file is an 88-byte header
 * (magic, version, value length, the key, a BLAKE2b-256 checksum of the
 * header and value) followed by the value.  Directories are 0700 and
 * files 0600 whatever the umask.
 *
 * Safe with many processes at once: an entry is written to a unique
 * temporary file in the same directory and renamed over its final name,
 * so a reader sees the old entry or the new one, never a mix.  A killed
 * writer leaves only a temporary file, which is never read and which
 * eviction removes once it is ten minutes old.  There is no fsync: after
 * a power loss a renamed file may be empty or torn, and the length and
 * checksum checks turn it into a miss, which is all a cache needs.
 *
 * Age and recency come from the file times: mtime is when the entry was
 * written (the TTL bound), atime when it was last used (set explicitly
 * by a hit when it is more than a minute old, so noatime and relatime
 * mounts do not matter, and a hot entry costs no inode write per hit).
 *
 * Size: DIR/.usage holds an approximate running total, updated under
 * flock(2) on every put; only when it passes max_bytes (or the last full
 * scan is a day old) does a put scan the directory and evict the least
 * recently used entries down to 7/8 of max_bytes, so a cache at its cap
 * is not rescanned on every put.  Eviction ignores the TTL, which is the
 * reader's bound, not the cache's: processes may use different ones.  DIR/.evict.lock keeps it to one
 * evicting process at a time.  Sizes are what the disk allocates (st_blocks,
 * header included), not file lengths: a 400-byte entry costs a 4 KiB block
 * on most file systems, and the cap is a promise about the disk.
 *
 * Why files and not one SQLite database (issue 20 proposed WAL, values
 * as BLOBs, recency in a column; tests/bench/cache_sqlite.c measures
 * both with 20,000 answers of 370 bytes on a loaded 2-core VM): SQLite
 * packs them in 575 bytes on disk an entry against 4,253 here and puts
 * one in 29 us of CPU against 92, but a warm hit costs the same 5.6 us,
 * a hit that marks its entry used is a write transaction (29 us, where a
 * futimens is one system call), and a one-shot program's open + hit +
 * close costs 355 us against 6, the common case of the shell tools.
 * The cap counts allocated blocks, so the disk promise holds either way;
 * what files give up is entries per MiB of cap.
 *
 * Not thread-safe for one struct cache used from several threads at
 * once; separate processes and separate structs are fine.
 */
#include "ai.h"
#include "buf.h"

#define CACHE_KEY_LEN 32
#define CACHE_DEFAULT_MAX ((uint64_t)256 << 20)   /* 256 MiB */

struct cache {
	char *dir;           /* owned; the directory given to cache_open() */
	long ttl_s;          /* entries older than this are misses; 0: no bound */
	uint64_t max_bytes;  /* the size cap; never 0 after cache_open() */
	int dirfd;           /* owned; the open cache directory */
};

/*
 * Opens the cache directory dir (usually $XDG_CACHE_HOME/ai/responses;
 * the caller decides), creating it and any missing parents with mode
 * 0700 whatever the umask.  Existing directories are left as they are.
 * ttl_s < 0 is taken as 0 (no bound); max_bytes 0 means
 * CACHE_DEFAULT_MAX.  Both may be changed in c afterwards.  Costs one
 * open(2) when the directory exists.  Returns 0, or -1 with err; on
 * failure c needs no cache_close() (but it is harmless).
 */
int cache_open(struct cache *c, const char *dir, long ttl_s, uint64_t max_bytes,
	       struct ai_err *err);

/* Releases what cache_open() took; c is left closed and may be opened again. */
void cache_close(struct cache *c);

/* key = BLAKE2b-256 of the canonical request bytes (len may be 0). */
void cache_key(const void *canonical, size_t len, unsigned char key[CACHE_KEY_LEN]);

/*
 * Looks key up.  Returns 1 on a hit, with the value appended to out
 * (respecting out's cap), or 0 on a miss, with out unchanged.  Never
 * fails: a missing, unreadable, truncated, corrupt (bad magic, version,
 * key, length or checksum), expired (older than ttl_s) or too large
 * entry is a miss.  A corrupt entry is unlinked so that it is replaced;
 * an expired one is left for callers with a longer TTL.  A hit marks
 * the entry as recently used.  Cost on a hit: open, fstat, one read,
 * close, and a futimens at most once a minute per entry.
 */
int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct buf *out);

/* Seconds since the entry for key was written, or -1 when there is none (for -v). */
long long cache_age(struct cache *c, const unsigned char key[CACHE_KEY_LEN]);

/*
 * Stores n bytes of value under key, replacing any entry there,
 * atomically (see above).  A value larger than half of max_bytes is not
 * stored (it would evict everything else) and that is not an error.
 * May run the eviction scan when the running total passes max_bytes.
 * Returns 0, or -1 with err when the entry could not be written
 * (nothing half-written is left visible) or the eviction it ran failed;
 * a caller reports it once and goes on without the cache.
 */
int cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *value,
	      size_t n, struct ai_err *err);

/*
 * Scans the whole cache: removes temporary files left by killed writers
 * (older than ten minutes), then, while the total passes max_bytes,
 * removes the least recently used entries until the total is at most
 * 7/8 of max_bytes; it also resets the running total to what it found.
 * Returns 0 without doing anything when another process is evicting.
 * Returns 0, or -1 with err.
 */
int cache_evict(struct cache *c, struct ai_err *err);

/* What cache_stats() finds. */
struct cache_stats {
	uint64_t entries;
	uint64_t bytes_on_disk;   /* allocated to the entries (what max_bytes bounds) */
	uint64_t bytes;           /* the entries' lengths */
	uint64_t dir_bytes;       /* allocated to the fan-out directories themselves */
};

/*
 * Counts the entries and what they take on disk, by a scan of the whole
 * directory (as the eviction does, temporary files of killed writers
 * removed on the way).  Returns 0, or -1 with err.
 */
int cache_stats(struct cache *c, struct cache_stats *st, struct ai_err *err);

#endif
