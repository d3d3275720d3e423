/*
 * t_cache.c - the response cache: hits and misses, modes, corruption,
 * TTL, LRU eviction, leftovers, many processes at once, killed writers.
 */
#include "api/cache.h"
#include "tap.h"
#include "rmtree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HDR 88   /* header bytes before the value, as cache.h describes */

static char top[64];

/* path = DIR/ab/abcdef... of key k */
static void entry_path(char *path, size_t size, const char *dir, const unsigned char *k)
{
	char hex[65];

	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	snprintf(path, size, "%s/%.2s/%s", dir, hex, hex);
}

static void key_of(unsigned char k[32], const char *s)
{
	cache_key(s, strlen(s), k);
}

static int mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void set_times(const char *path, time_t atime, time_t mtime)
{
	struct timespec ts[2] = { { atime, 0 }, { mtime, 0 } };

	if (atime < 0)
		ts[0].tv_nsec = UTIME_OMIT;
	if (mtime < 0)
		ts[1].tv_nsec = UTIME_OMIT;
	utimensat(AT_FDCWD, path, ts, 0);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		if (write(fd, p, n) != (ssize_t)n)
			perror("write");
		close(fd);
	}
}

/* Counts names in dir/sub starting with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
	DIR *dp = opendir(dir);
	struct dirent *d;
	int n = 0;

	if (!dp)
		return 0;
	while ((d = readdir(dp)) != NULL)
		if (strncmp(d->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(dp);
	return n;
}

/* Counts every entry file (64-hex names) in all fan-out directories, and their bytes. */
static int count_entries(const char *dir, long long *bytes)
{
	DIR *dp = opendir(dir);
	struct dirent *d;
	int n = 0;

	if (bytes)
		*bytes = 0;
	if (!dp)
		return 0;
	while ((d = readdir(dp)) != NULL) {
		char sub[PATH_MAX];
		struct dirent *e;
		DIR *sp;

		if (strlen(d->d_name) != 2)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, d->d_name);
		sp = opendir(sub);
		if (!sp)
			continue;
		while ((e = readdir(sp)) != NULL) {
			if (strlen(e->d_name) == 64) {
				char p[PATH_MAX + 260];
				struct stat st;

				snprintf(p, sizeof(p), "%s/%s", sub, e->d_name);
				n++;
				/* What the disk allocates: the cap counts that (cache.h). */
				if (bytes && stat(p, &st) == 0)
					*bytes += (long long)st.st_blocks * 512;
			}
		}
		closedir(sp);
	}
	closedir(dp);
	return n;
}

static void test_open(void)
{
	struct cache c;
	struct ai_err err;
	char dir[128], p[512];

	ai_err_clear(&err);
	is_int(cache_open(&c, "", 0, 0, &err), -1, "empty directory name is an error");
	ok(err.msg[0] != '\0', "with a message: %s", err.msg);

	snprintf(p, sizeof(p), "%s/afile", top);
	write_file(p, "x", 1);
	snprintf(dir, sizeof(dir), "%s/afile/sub", top);
	ai_err_clear(&err);
	is_int(cache_open(&c, dir, 0, 0, &err), -1, "a file in the way is an error");
	ok(strstr(err.msg, "afile") != NULL, "naming the directory: %s", err.msg);
	cache_close(&c);   /* harmless after a failed open */

	snprintf(dir, sizeof(dir), "%s/xdg/ai/responses", top);
	is_int(cache_open(&c, dir, -5, 0, &err), 0, "open creates missing parents");
	is_int(mode_of(dir), 0700, "cache directory is 0700 under umask 0");
	snprintf(p, sizeof(p), "%s/xdg/ai", top);
	is_int(mode_of(p), 0700, "created parent is 0700 under umask 0");
	snprintf(p, sizeof(p), "%s/xdg", top);
	is_int(mode_of(p), 0700, "created grandparent is 0700 under umask 0");
	is_int(c.ttl_s, 0, "negative ttl means no bound");
	ok(c.max_bytes == CACHE_DEFAULT_MAX, "max 0 means the default");
	cache_close(&c);
	cache_close(&c);   /* twice is harmless */

	/* A hostile umask that would strip the owner's bits must not matter either. */
	umask(0777);
	snprintf(dir, sizeof(dir), "%s/strict/ai", top);
	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open under umask 0777");
	is_int(mode_of(dir), 0700, "cache directory is 0700 under umask 0777");
	{
		unsigned char k[32];
		struct buf b = BUF_INIT;

		key_of(k, "strict");
		is_int(cache_put(&c, k, "v", 1, &err), 0, "put under umask 0777");
		entry_path(p, sizeof(p), dir, k);
		is_int(mode_of(p), 0600, "entry is 0600 under umask 0777");
		is_int(cache_get(&c, k, &b), 1, "and readable");
		buf_release(&b);
	}
	umask(0);
	cache_close(&c);
}

static void test_key(void)
{
	static const unsigned char empty[32] = {
		0x0e, 0x57, 0x51, 0xc0, 0x26, 0xe5, 0x43, 0xb2, 0xe8, 0xab, 0x2e, 0xb0, 0x60, 0x99,
		0xda, 0xa1, 0xd1, 0xe5, 0xdf, 0x47, 0x77, 0x8f, 0x77, 0x87, 0xfa, 0xab, 0x45, 0xcd,
		0xf1, 0x2f, 0xe3, 0xa8
	};
	unsigned char a[32], b[32];

	cache_key("", 0, a);
	ok(memcmp(a, empty, 32) == 0, "key of the empty string is BLAKE2b-256(\"\")");
	key_of(a, "request one");
	key_of(b, "request one");
	ok(memcmp(a, b, 32) == 0, "same request, same key");
	key_of(b, "request one ");
	ok(memcmp(a, b, 32) != 0, "one byte more, another key");
}

static void test_basic(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[32], k2[32];
	char path[256], sub[256];
	const char bin[] = "a\0b\nc\xff";

	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open %s", dir);
	key_of(k, "basic");
	buf_addstr(&b, "prefix:");
	is_int(cache_get(&c, k, &b), 0, "miss on an empty cache");
	is_int(b.len, 7, "a miss leaves out unchanged");
	is_int(cache_put(&c, k, bin, sizeof(bin), &err), 0, "put binary value");
	is_int(cache_get(&c, k, &b), 1, "then a hit");
	is_int(b.len, 7 + sizeof(bin), "value appended after what out held");
	ok(memcmp(b.data, "prefix:", 7) == 0 && memcmp(b.data + 7, bin, sizeof(bin)) == 0,
	   "bytes equal, NULs included");
	is_int(b.data[b.len], 0, "out stays NUL-terminated");

	entry_path(path, sizeof(path), dir, k);
	is_int(mode_of(path), 0600, "entry file is 0600 under umask 0");
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(path, '/') - path), path);
	is_int(mode_of(sub), 0700, "fan-out directory is 0700 under umask 0");
	is_int(count_prefix(sub, ".tmp-"), 0, "no temp file left behind");

	/* overwrite */
	is_int(cache_put(&c, k, "second", 6, &err), 0, "overwrite");
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 1, "hit after overwrite");
	is_str(b.data, "second", "new value served");

	/* empty value */
	key_of(k2, "empty");
	is_int(cache_put(&c, k2, "", 0, &err), 0, "put empty value");
	buf_reset(&b);
	is_int(cache_get(&c, k2, &b), 1, "empty value is a hit");
	is_int(b.len, 0, "of length 0");

	/* out's cap: a value too big for the caller is a miss, and the entry stays */
	{
		struct buf small;

		buf_init(&small, 3);
		is_int(cache_get(&c, k, &small), 0, "value over out's cap is a miss");
		is_int(small.len, 0, "out unchanged");
		ok(exists(path), "and the entry is kept");
		buf_release(&small);
	}

	/* a value larger than half the cap is not stored, silently */
	{
		uint64_t save = c.max_bytes;
		unsigned char k3[32];

		c.max_bytes = 1000;
		key_of(k3, "huge");
		is_int(cache_put(&c, k3, bin, 501, &err), 0, "too large a value: put returns 0");
		buf_reset(&b);
		is_int(cache_get(&c, k3, &b), 0, "but it was not stored");
		c.max_bytes = save;
	}

	/* a hit refreshes atime (recency) and leaves mtime (age) */
	{
		struct stat st;

		set_times(path, 1000, 2000);
		buf_reset(&b);
		is_int(cache_get(&c, k, &b), 1, "hit");
		stat(path, &st);
		ok(st.st_atime > time(NULL) - 60, "hit refreshed atime");
		is_int(st.st_mtime, 2000, "hit left mtime alone");
	}
	buf_release(&b);
	cache_close(&c);
}

static void test_corrupt(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[32], k2[32];
	char path[256], path2[256], value[1000];
	int fd;

	memset(value, 'v', sizeof(value));
	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open %s", dir);
	key_of(k, "corrupt");
	entry_path(path, sizeof(path), dir, k);

	/* truncated inside the value */
	cache_put(&c, k, value, sizeof(value), &err);
	is_int(truncate(path, HDR + 500), 0, "truncate entry");
	is_int(cache_get(&c, k, &b), 0, "truncated entry is a miss");
	ok(!exists(path), "and is unlinked");
	is_int(cache_put(&c, k, value, sizeof(value), &err), 0, "put after truncation");
	is_int(cache_get(&c, k, &b), 1, "works again");
	is_int(b.len, sizeof(value), "full value");

	/* truncated inside the header, and empty */
	is_int(truncate(path, 10), 0, "truncate into the header");
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 0, "header cut short is a miss");
	write_file(path, "", 0);
	is_int(cache_get(&c, k, &b), 0, "empty file is a miss");

	/* garbage */
	{
		unsigned char junk[300];

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (unsigned char)(i * 7 + 3);
		write_file(path, junk, sizeof(junk));
		is_int(cache_get(&c, k, &b), 0, "garbage file is a miss");
		ok(!exists(path), "and is unlinked");
	}

	/* one flipped byte in the value: the checksum catches it */
	cache_put(&c, k, value, sizeof(value), &err);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (pwrite(fd, "w", 1, HDR + 700) != 1)
		perror("pwrite");
	close(fd);
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 0, "flipped byte in the value is a miss");
	is_int(b.len, 0, "nothing appended");
	ok(b.data == NULL || b.data[0] == '\0', "out still a valid empty string");

	/* the length field lies */
	cache_put(&c, k, value, sizeof(value), &err);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (pwrite(fd, "\x01", 1, 16) != 1)
		perror("pwrite");
	close(fd);
	is_int(cache_get(&c, k, &b), 0, "wrong length field is a miss");

	/* wrong magic, wrong version */
	cache_put(&c, k, value, sizeof(value), &err);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (pwrite(fd, "X", 1, 0) != 1)
		perror("pwrite");
	close(fd);
	is_int(cache_get(&c, k, &b), 0, "wrong magic is a miss");
	cache_put(&c, k, value, sizeof(value), &err);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (pwrite(fd, "\x02", 1, 8) != 1)
		perror("pwrite");
	close(fd);
	is_int(cache_get(&c, k, &b), 0, "unknown version is a miss");

	/* an intact entry under another key's name is not that key's answer */
	cache_put(&c, k, value, sizeof(value), &err);
	key_of(k2, "corrupt-other");
	entry_path(path2, sizeof(path2), dir, k2);
	{
		char d2[256];

		snprintf(d2, sizeof(d2), "%.*s", (int)(strrchr(path2, '/') - path2), path2);
		mkdir(d2, 0700);
	}
	is_int(link(path, path2), 0, "entry copied under another key's name");
	is_int(cache_get(&c, k2, &b), 0, "key mismatch is a miss");
	is_int(cache_get(&c, k, &b), 1, "the right key still hits");

	/* a FIFO in place of an entry neither hangs nor fails, and is replaced */
	unlink(path);
	is_int(mkfifo(path, 0600), 0, "fifo in place of an entry");
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 0, "fifo is a miss, without hanging");
	is_int(cache_put(&c, k, "after fifo", 10, &err), 0, "put replaces it");
	is_int(cache_get(&c, k, &b), 1, "hit");
	is_str(b.data, "after fifo", "right value");

	/* a symlink in place of an entry is not followed */
	unlink(path);
	is_int(symlink(path2, path), 0, "symlink in place of an entry");
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 0, "symlink is a miss");

	/* unreadable: only meaningful when not root */
	cache_put(&c, k, value, sizeof(value), &err);
	if (geteuid() != 0) {
		chmod(path, 0);
		is_int(cache_get(&c, k, &b), 0, "unreadable entry is a miss");
		is_int(cache_put(&c, k, "fresh", 5, &err), 0, "and a put replaces it");
		buf_reset(&b);
		is_int(cache_get(&c, k, &b), 1, "hit after replacing it");
	} else {
		ok(1, "# SKIP unreadable entry: running as root");
	}
	buf_release(&b);
	cache_close(&c);
}

static void test_ttl(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[32];
	char path[256];
	time_t now = time(NULL);

	is_int(cache_open(&c, dir, 60, 0, &err), 0, "open with ttl 60");
	key_of(k, "ttl");
	entry_path(path, sizeof(path), dir, k);
	cache_put(&c, k, "aged", 4, &err);
	is_int(cache_get(&c, k, &b), 1, "fresh entry hits");
	set_times(path, -1, now - 30);
	is_int(cache_get(&c, k, &b), 1, "30 s old, ttl 60: hit");
	set_times(path, -1, now - 120);
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 0, "120 s old, ttl 60: miss");
	is_int(b.len, 0, "nothing appended");
	ok(exists(path), "expired entry kept for callers with a longer ttl");
	c.ttl_s = 0;
	is_int(cache_get(&c, k, &b), 1, "no ttl: the old entry hits");
	c.ttl_s = 60;
	cache_put(&c, k, "new", 3, &err);
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 1, "a put renews it");
	is_str(b.data, "new", "with the new value");
	buf_release(&b);
	cache_close(&c);
}

static void test_evict(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[10][32];
	char path[10][256], name[32], value[1000];
	time_t base = time(NULL) - 10000;
	long long bytes, disk = HDR + 1000;

	memset(value, 'e', sizeof(value));
	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open %s", dir);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "evict%d", i);
		key_of(k[i], name);
		entry_path(path[i], sizeof(path[i]), dir, k[i]);
		cache_put(&c, k[i], value, sizeof(value), &err);
		set_times(path[i], base + i, base + i);   /* 0 oldest, 9 newest */
	}
	is_int(count_entries(dir, &bytes), 10, "10 entries stored");
	/* An entry's cost is its allocated blocks: a 1088-byte file takes one 4 KiB block here. */
	disk = bytes / 10;
	ok(disk >= HDR + 1000 && bytes == 10 * disk, "of the expected size (%lld bytes on disk each)", disk);

	/* under the cap: nothing goes */
	is_int(cache_evict(&c, &err), 0, "evict under the cap");
	is_int(count_entries(dir, NULL), 10, "removes nothing");

	/* touch 0, 1, 2 by using them */
	for (int i = 0; i < 3; i++)
		cache_get(&c, k[i], &b);

	/* cap for 5 entries: evicts down to 7/8 of it, which holds 4 */
	c.max_bytes = 5 * disk + 100;
	is_int(cache_evict(&c, &err), 0, "evict over the cap");
	is_int(count_entries(dir, &bytes), 4, "4 entries survive");
	ok(bytes <= (long long)(c.max_bytes - c.max_bytes / 8), "total under 7/8 of the cap");
	for (int i = 0; i < 10; i++) {
		int want = i <= 2 || i == 9;

		is_int(exists(path[i]), want, "entry %d %s", i, want ? "survives" : "evicted");
	}
	{
		char u[256], text[64] = "";
		int fd;

		snprintf(u, sizeof(u), "%s/.usage", dir);
		fd = open(u, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t r = read(fd, text, sizeof(text) - 1);

			text[r > 0 ? r : 0] = '\0';
			close(fd);
		}
		is_int(strtoll(text, NULL, 10), 4 * disk, "running total reset to the truth");
	}

	/* puts alone keep the cache near its cap, without an explicit evict */
	c.max_bytes = 20 * disk;
	for (int i = 0; i < 100; i++) {
		unsigned char kk[32];

		snprintf(name, sizeof(name), "auto%d", i);
		key_of(kk, name);
		cache_put(&c, kk, value, sizeof(value), &err);
	}
	count_entries(dir, &bytes);
	ok(bytes <= (long long)c.max_bytes, "after 100 puts, total %lld is within the cap %llu",
	   bytes, (unsigned long long)c.max_bytes);
	ok(bytes >= (long long)(c.max_bytes / 2), "and the cache was not emptied");

	/* leftover temp files: old ones go, fresh ones (a writer at work) stay */
	{
		char sub[256], old[300], fresh[300], other[300];

		snprintf(sub, sizeof(sub), "%s/%.2s", dir, strrchr(path[9], '/') + 1);
		snprintf(old, sizeof(old), "%s/.tmp-0000000000000001", sub);
		snprintf(fresh, sizeof(fresh), "%s/.tmp-0000000000000002", sub);
		snprintf(other, sizeof(other), "%s/notes.txt", dir);
		write_file(old, "partial", 7);
		write_file(fresh, "partial", 7);
		write_file(other, "mine", 4);
		set_times(old, base, base);
		is_int(cache_evict(&c, &err), 0, "evict");
		ok(!exists(old), "old temp file removed");
		ok(exists(fresh), "fresh temp file kept");
		ok(exists(other), "unknown file left alone");
	}

	/* evict on a closed cache is an error, not a crash */
	cache_close(&c);
	is_int(cache_evict(&c, &err), -1, "evict on a closed cache fails");
	is_int(cache_put(&c, k[0], "x", 1, &err), -1, "put on a closed cache fails");
	is_int(cache_get(&c, k[0], &b), 0, "get on a closed cache misses");
	buf_release(&b);
}

/* A value that says which key it belongs to, its length, and fills the rest. */
static size_t make_value(char *v, int key, size_t len)
{
	int n = snprintf(v, len + 1, "k=%02d n=%06zu|", key, len);

	memset(v + n, 'A' + key, len - (size_t)n);
	return len;
}

static int check_value(const struct buf *b, int key)
{
	int gk;
	size_t n;

	if (b->len < 14 || sscanf(b->data, "k=%2d n=%6zu|", &gk, &n) != 2)
		return 0;
	if (gk != key || n != b->len)
		return 0;
	for (size_t i = 14; i < n; i++)
		if (b->data[i] != 'A' + key)
			return 0;
	return 1;
}

static void test_concurrent(const char *dir)
{
	enum { PROCS = 8, OPS = 200, KEYS = 20, MAXV = 40000 };
	int fds[2], status, bad_exit = 0;
	long hits = 0, bad = 0, puts = 0, failed = 0;
	pid_t pid[PROCS];

	if (pipe(fds) < 0) {
		ok(0, "pipe");
		return;
	}
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			struct cache c;
			struct ai_err err;
			struct buf b = BUF_INIT;
			unsigned char k[KEYS][32];
			char *v = malloc(MAXV + 1), name[32];
			long r[4] = { 0, 0, 0, 0 };
			unsigned seed = (unsigned)getpid();

			close(fds[0]);
			/* Half the writers use a small cap, so evictions run among the readers. */
			if (!v || cache_open(&c, dir, 0, p % 2 ? 300000 : 0, &err) < 0)
				_exit(100);
			for (int i = 0; i < KEYS; i++) {
				snprintf(name, sizeof(name), "shared%d", i);
				key_of(k[i], name);
			}
			for (int op = 0; op < OPS; op++) {
				int key = (int)(rand_r(&seed) % KEYS);

				int hit;

				buf_reset(&b);
				hit = cache_get(&c, k[key], &b);
				if (hit) {
					r[0]++;
					if (!check_value(&b, key))
						r[1]++;
				}
				/* Overwrite a third of the hits too, so writers race readers. */
				if (!hit || rand_r(&seed) % 3 == 0) {
					size_t len = 16 + (size_t)rand_r(&seed) % (MAXV - 16);

					make_value(v, key, len);
					r[2]++;
					if (cache_put(&c, k[key], v, len, &err) < 0)
						r[3]++;
				}
			}
			if (write(fds[1], r, sizeof(r)) != sizeof(r))
				_exit(101);
			_exit(0);
		}
	}
	close(fds[1]);
	for (int p = 0; p < PROCS; p++) {
		long r[4];

		if (read(fds[0], r, sizeof(r)) == sizeof(r)) {
			hits += r[0];
			bad += r[1];
			puts += r[2];
			failed += r[3];
		}
	}
	close(fds[0]);
	for (int p = 0; p < PROCS; p++)
		if (pid[p] < 0 || waitpid(pid[p], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad_exit++;
	is_int(bad_exit, 0, "8 processes x 200 get/put on 20 keys all finished");
	is_int(bad, 0, "no hit returned a torn or mixed value (%ld hits, %ld puts)", hits, puts);
	ok(hits > 0 && puts > 0, "both hits and puts happened");
	is_int(failed, 0, "every put succeeded");
	is_int(count_prefix(dir, ".tmp-"), 0, "no temp file in the top directory");
}

static int count_temps(const char *dir, const char *sub, int make_old)
{
	char p[256];
	DIR *dp;
	struct dirent *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	dp = opendir(p);
	if (!dp)
		return 0;
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, ".tmp-", 5) == 0) {
			char f[600];

			n++;
			snprintf(f, sizeof(f), "%s/%s", p, d->d_name);
			if (make_old)
				set_times(f, 1000, 1000);
		}
	}
	closedir(dp);
	return n;
}

static void test_killed(const char *dir)
{
	enum { BIG = 4 << 20 };
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[32];
	char path[256], sub[3];
	int torn = 0, temps = 0;

	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open %s", dir);
	key_of(k, "killed");
	entry_path(path, sizeof(path), dir, k);
	memcpy(sub, strrchr(path, '/') + 1, 2);
	sub[2] = '\0';

	/* A hand-made partial temp file, as a writer killed mid-write leaves. */
	{
		char tmp[300];
		int fd;

		cache_put(&c, k, "x", 1, &err);   /* creates the fan-out directory */
		unlink(path);
		snprintf(tmp, sizeof(tmp), "%s/%s/.tmp-00000000000000ff", dir, sub);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (write(fd, "aicache\n\x01\0\0\0", 12) != 12)
				perror("write");
			close(fd);
		}
		is_int(cache_get(&c, k, &b), 0, "a partial temp file is never served");
	}

	/* Real writers of a 4 MiB value, killed at different moments. */
	for (int round = 0; round < 6; round++) {
		pid_t pid = fork();

		if (pid == 0) {
			char *v = malloc(BIG);

			if (!v)
				_exit(1);
			for (unsigned i = 0;; i++) {
				memset(v, 'a' + (int)(i % 26), BIG);
				cache_put(&c, k, v, BIG, &err);
			}
		}
		usleep(2000 + 9000 * (useconds_t)round);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		buf_reset(&b);
		if (cache_get(&c, k, &b)) {
			size_t i;

			for (i = 1; i < b.len && b.data[i] == b.data[0]; i++)
				;
			if (b.len != BIG || i != b.len)
				torn++;
		}
	}
	is_int(torn, 0, "after 6 writers were killed mid-put, every hit was whole");
	temps = count_temps(dir, sub, 1);
	ok(temps >= 1, "killed writers left %d temp file(s)", temps);
	c.max_bytes = CACHE_DEFAULT_MAX;
	is_int(cache_evict(&c, &err), 0, "evict");
	is_int(count_temps(dir, sub, 0), 0, "old leftover temp files removed");
	is_int(cache_put(&c, k, "fine", 4, &err), 0, "put after the kills");
	buf_reset(&b);
	is_int(cache_get(&c, k, &b), 1, "hit");
	is_str(b.data, "fine", "right value");
	buf_release(&b);
	cache_close(&c);
}

static void test_speed(const char *dir)
{
	enum { N = 10000 };
	struct cache c;
	struct ai_err err;
	struct buf b = BUF_INIT;
	unsigned char k[32];
	char value[2048];
	struct timespec t0, t1;
	int hits = 0;
	double us;

	memset(value, 'r', sizeof(value));
	is_int(cache_open(&c, dir, 0, 0, &err), 0, "open %s", dir);
	key_of(k, "speed");
	cache_put(&c, k, value, sizeof(value), &err);
	cache_get(&c, k, &b);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++) {
		buf_reset(&b);
		hits += cache_get(&c, k, &b);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / N;
	is_int(hits, N, "10000 warm gets all hit");
	printf("# hit cost: %.2f us per get (2 KiB value, %d gets)\n", us, N);
	ok(us < 1000, "a hit costs well under 1 ms");
	buf_release(&b);
	cache_close(&c);
}

/* The cap counts allocated blocks, with four writers at once; cache_stats sees the same. */
static void test_disk_cap(const char *dir)
{
	struct cache c;
	struct ai_err err;
	struct cache_stats st;
	char value[400], name[64];
	long long bytes, one;
	pid_t pids[4];
	int bad = 0, status, n;

	memset(value, 'd', sizeof(value));
	if (!ok(cache_open(&c, dir, 0, 0, &err) == 0, "open %s", dir))
		return;
	key_of((unsigned char *)name, "probe");
	cache_put(&c, (unsigned char *)name, value, sizeof(value), &err);
	count_entries(dir, &one);
	ok(one >= (long long)(HDR + sizeof(value)), "a %zu-byte entry takes %lld bytes on disk",
	   HDR + sizeof(value), one);
	cache_close(&c);
	fflush(stdout);
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct cache w;
			unsigned char k[32];

			if (cache_open(&w, dir, 0, (uint64_t)(50 * one), &err))
				_exit(1);
			for (int j = 0; j < 150; j++) {
				snprintf(name, sizeof(name), "w%d-%d", i, j);
				key_of(k, name);
				if (cache_put(&w, k, value, sizeof(value), &err))
					_exit(1);
			}
			cache_close(&w);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++)
		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	is_int(bad, 0, "4 writers x 150 entries, none failed");
	n = count_entries(dir, &bytes);
	/* The last put of each writer may land while another evicts: one entry of slack a writer. */
	ok(bytes <= 54 * one, "%d entries, %lld bytes on disk: within the cap of %lld (+4 entries)", n, bytes,
	   50 * one);
	ok(n >= 20, "and the cache was not emptied (%d entries)", n);
	if (ok(cache_open(&c, dir, 0, 0, &err) == 0, "reopen")) {
		is_int(cache_stats(&c, &st, &err), 0, "cache_stats");
		is_int(st.entries, n, "counts the entries");
		is_int(st.bytes_on_disk, bytes, "and their blocks");
		is_int(st.bytes, (long long)n * (long long)(HDR + sizeof(value)), "and their lengths");
		cache_close(&c);
	}
}

int main(void)
{
	char dir[128];

	umask(0);
	snprintf(top, sizeof(top), "/tmp/t_cache.XXXXXX");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	test_open();
	test_key();
	snprintf(dir, sizeof(dir), "%s/basic", top);
	test_basic(dir);
	snprintf(dir, sizeof(dir), "%s/corrupt", top);
	test_corrupt(dir);
	snprintf(dir, sizeof(dir), "%s/ttl", top);
	test_ttl(dir);
	snprintf(dir, sizeof(dir), "%s/evict", top);
	test_evict(dir);
	snprintf(dir, sizeof(dir), "%s/concurrent", top);
	test_concurrent(dir);
	snprintf(dir, sizeof(dir), "%s/killed", top);
	test_killed(dir);
	snprintf(dir, sizeof(dir), "%s/diskcap", top);
	test_disk_cap(dir);
	snprintf(dir, sizeof(dir), "%s/speed", top);
	test_speed(dir);
	rm_rf_at(AT_FDCWD, top);
	return tap_done();
}
