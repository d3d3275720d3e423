/*
 * cache.c - the response cache (see cache.h for the on-disk design).
 */
#include "api/cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Header: magic[8] version[4] flags[4] length[8] key[32] sum[32], little-endian. */
#define HDR_MAGIC "aicache\n"
#define HDR_VERSION 1u
#define HDR_SUMMED 56                  /* bytes of header covered by the checksum */
#define HDR_LEN (HDR_SUMMED + 32)

#define HEX_LEN (CACHE_KEY_LEN * 2)
#define REL_LEN (3 + HEX_LEN + 1)      /* "ab/" + hex + NUL */
#define TMP_PREFIX ".tmp-"
#define TMP_REL_LEN (3 + 5 + 16 + 1)   /* "ab/.tmp-" + 16 hex + NUL */

#define USAGE_FILE ".usage"
#define EVICT_LOCK ".evict.lock"
#define TEMP_MAX_AGE 600               /* seconds before a temp file is a leftover */
#define SCAN_EVERY 86400               /* a put rescans when the last scan is older */
#define ATIME_GRAIN 60                 /* a hit refreshes atime when it is older */

/* The longest directory name we accept, leaving room for "/ab/" + hex. */
#define DIR_MAX (PATH_MAX - REL_LEN - 16)

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void to_hex(char *out, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/* rel = "ab/abcdef..." for key, relative to the cache directory. */
static void entry_name(const unsigned char key[CACHE_KEY_LEN], char rel[REL_LEN])
{
	char hex[HEX_LEN + 1];

	to_hex(hex, key, CACHE_KEY_LEN);
	rel[0] = hex[0];
	rel[1] = hex[1];
	rel[2] = '/';
	memcpy(rel + 3, hex, HEX_LEN + 1);
}

static void checksum(unsigned char sum[32], const unsigned char *hdr, const void *value,
		     size_t n)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, hdr, HDR_SUMMED);
	crypto_generichash_update(&st, value, n);
	crypto_generichash_final(&st, sum, 32);
}

/* mkdir with exactly 0700 whatever the umask; an existing directory is fine. */
static int mkdir_0700(int at, const char *path)
{
	if (mkdirat(at, path, 0700) == 0)
		return fchmodat(at, path, 0700, 0);
	return errno == EEXIST ? 0 : -1;
}

/* mkdir -p: creates path and its missing parents, each 0700. */
static int mkdir_parents(const char *path)
{
	size_t n = strlen(path);
	char *p = malloc(n + 1);
	int r = 0;

	if (!p)
		return -1;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n && r == 0; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		if (p[i - 1] == '/')
			continue;
		p[i] = '\0';
		r = mkdir_0700(AT_FDCWD, p);
		p[i] = path[i];
	}
	free(p);
	return r;
}

int cache_open(struct cache *c, const char *dir, long ttl_s, uint64_t max_bytes,
	       struct ai_err *err)
{
	int fd;

	c->dir = NULL;
	c->dirfd = -1;
	c->ttl_s = ttl_s > 0 ? ttl_s : 0;
	c->max_bytes = max_bytes ? max_bytes : CACHE_DEFAULT_MAX;
	if (!dir || !*dir)
		return ai_errf(err, AI_EX_CONFIG, "cache directory is empty: set XDG_CACHE_HOME or HOME");
	if (strlen(dir) > DIR_MAX)
		return ai_errf(err, AI_EX_CONFIG, "cache directory '%.80s...' is too long", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdir_parents(dir) < 0)
			return ai_errf(err, AI_EX_IOERR, "cannot create cache directory '%s': %s",
				       dir, strerror(errno));
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot open cache directory '%s': %s", dir,
			       strerror(errno));
	c->dir = strdup(dir);
	if (!c->dir) {
		close(fd);
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	c->dirfd = fd;
	return 0;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	if (c->dirfd >= 0)
		close(c->dirfd);
	c->dirfd = -1;
	free(c->dir);
	c->dir = NULL;
}

void cache_key(const void *canonical, size_t len, unsigned char key[CACHE_KEY_LEN])
{
	crypto_generichash(key, CACHE_KEY_LEN, canonical, len, NULL, 0);
}

/* All of iov read (rd) or written, through EINTR and short counts; -1 on error or early EOF. */
static int iov_full(int fd, struct iovec *iov, int cnt, bool rd)
{
	while (cnt > 0) {
		ssize_t r = rd ? readv(fd, iov, cnt) : writev(fd, iov, cnt);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && rd))
			return -1;
		while (cnt > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/*
 * Unlinks a corrupt entry so the next put replaces it, but only if the
 * name still points at the file we read: another process may have
 * renamed a good entry over it in the meantime.
 */
static void drop_corrupt(struct cache *c, const char *rel, const struct stat *seen)
{
	struct stat now;

	if (fstatat(c->dirfd, rel, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == seen->st_ino && now.st_dev == seen->st_dev)
		unlinkat(c->dirfd, rel, 0);
}

long long cache_age(struct cache *c, const unsigned char key[CACHE_KEY_LEN])
{
	char rel[REL_LEN];
	struct stat st;

	if (!c || c->dirfd < 0)
		return -1;
	entry_name(key, rel);
	if (fstatat(c->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
		return -1;
	return (long long)time(NULL) - (long long)st.st_mtime;
}

int cache_get(struct cache *c, const unsigned char key[CACHE_KEY_LEN], struct buf *out)
{
	char rel[REL_LEN];
	unsigned char hdr[HDR_LEN], sum[32];
	struct iovec iov[2];
	struct stat st;
	size_t n, old = out->len;
	int fd;

	if (!c || c->dirfd < 0)
		return 0;
	entry_name(key, rel);
	/* O_NONBLOCK: a FIFO planted under an entry's name must not hang us. */
	fd = openat(c->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto miss;
	if (c->ttl_s > 0 && (long long)st.st_mtime < (long long)time(NULL) - c->ttl_s)
		goto miss;      /* expired for us, maybe not for a caller with a longer TTL */
	if (st.st_size < HDR_LEN)
		goto corrupt;
	if ((uintmax_t)st.st_size - HDR_LEN > SIZE_MAX - 1)
		goto miss;
	n = (size_t)st.st_size - HDR_LEN;
	if (buf_grow(out, n) < 0)
		goto miss;      /* larger than the caller's cap: not the entry's fault */
	iov[0].iov_base = hdr;
	iov[0].iov_len = HDR_LEN;
	iov[1].iov_base = out->data + old;
	iov[1].iov_len = n;
	if (iov_full(fd, iov, 2, true) < 0)
		goto corrupt;
	if (memcmp(hdr, HDR_MAGIC, 8) != 0 || get_le32(hdr + 8) != HDR_VERSION ||
	    get_le32(hdr + 12) != 0 || get_le64(hdr + 16) != (uint64_t)n ||
	    memcmp(hdr + 24, key, CACHE_KEY_LEN) != 0)
		goto corrupt;
	checksum(sum, hdr, out->data + old, n);
	if (memcmp(sum, hdr + HDR_SUMMED, 32) != 0)
		goto corrupt;
	out->len = old + n;
	out->data[out->len] = '\0';
	/*
	 * Recency lives in atime; mtime stays the write time the TTL needs.
	 * A minute is fine enough for LRU, and skipping the update spares a
	 * hot entry an inode write on every hit.
	 */
	if ((long long)st.st_atime < (long long)time(NULL) - ATIME_GRAIN) {
		struct timespec ts[2] = { { 0, UTIME_NOW }, { 0, UTIME_OMIT } };

		futimens(fd, ts);
	}
	close(fd);
	return 1;
corrupt:
	drop_corrupt(c, rel, &st);
miss:
	if (out->data)
		out->data[old] = '\0';
	close(fd);
	return 0;
}

/*
 * The running total lives in DIR/.usage as "TOTAL LASTSCAN\n", both
 * fixed-width decimals, rewritten in place under flock.  A missing or
 * garbled file reads as 0 and 0, which makes the next put scan and
 * rewrite it: the total is a hint, the scan is the truth.
 */
struct usage {
	uint64_t total;
	long long last_scan;
};

static int usage_lock(struct cache *c)
{
	int fd = openat(c->dirfd, USAGE_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static void usage_read(int fd, struct usage *u)
{
	char b[64], *end;
	ssize_t r = pread(fd, b, sizeof(b) - 1, 0);

	u->total = 0;
	u->last_scan = 0;
	if (r <= 0)
		return;
	b[r] = '\0';
	errno = 0;
	u->total = strtoull(b, &end, 10);
	if (errno || *end != ' ') {
		u->total = 0;
		return;
	}
	u->last_scan = strtoll(end + 1, &end, 10);
	if (errno || *end != '\n') {
		u->total = 0;
		u->last_scan = 0;
	}
}

static void usage_write(int fd, const struct usage *u)
{
	char b[64];
	int n = snprintf(b, sizeof(b), "%020" PRIu64 " %020lld\n", u->total, u->last_scan);

	if (n > 0 && pwrite(fd, b, (size_t)n, 0) != n) {
		/* A short write garbles the hint; the next put then rescans. */
	}
}

static void usage_unlock(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

static int needs_scan(const struct cache *c, const struct usage *u, long long now)
{
	return u->total > c->max_bytes || now - u->last_scan > SCAN_EVERY ||
	       u->last_scan - now > SCAN_EVERY;
}

/*
 * Adds delta to the running total; returns 1 when the total passes the
 * cap or the last scan is old, 0 otherwise, -1 when the file cannot be
 * used (then the caller scans, which recreates it).
 */
static int usage_add(struct cache *c, int64_t delta)
{
	struct usage u;
	int fd = usage_lock(c);

	if (fd < 0)
		return -1;
	usage_read(fd, &u);
	if (delta < 0 && (uint64_t)-delta > u.total)
		u.total = 0;
	else
		u.total += (uint64_t)delta;
	usage_write(fd, &u);
	usage_unlock(fd);
	return needs_scan(c, &u, (long long)time(NULL));
}

struct entry {
	uint64_t size;
	struct timespec atime;
	char name[HEX_LEN + 1];
};

static int by_atime(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->atime.tv_sec != y->atime.tv_sec)
		return x->atime.tv_sec < y->atime.tv_sec ? -1 : 1;
	if (x->atime.tv_nsec != y->atime.tv_nsec)
		return x->atime.tv_nsec < y->atime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct scan {
	struct entry *v;
	size_t n, alloc;
	uint64_t total;         /* allocated bytes */
	uint64_t apparent;      /* file lengths */
};

/*
 * What an entry costs the disk: its allocated blocks, not its length (a
 * 400-byte answer takes a 4 KiB block on most file systems, so counting
 * lengths let a 256 MiB cap fill 3 GB).  A file whose blocks are not
 * allocated yet (delayed allocation on some file systems) counts as its
 * length rounded up to the file system's block.
 */
static uint64_t on_disk(const struct stat *st)
{
	uint64_t bs = st->st_blksize > 0 ? (uint64_t)st->st_blksize : 4096;

	if (st->st_blocks > 0)
		return (uint64_t)st->st_blocks * 512;
	return ((uint64_t)st->st_size + bs - 1) / bs * bs;
}

static int scan_add(struct scan *s, const char *name, const struct stat *st)
{
	if (s->n == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 256;
		struct entry *p;

		if (na > SIZE_MAX / sizeof(*p))
			return -1;
		p = realloc(s->v, na * sizeof(*p));
		if (!p)
			return -1;
		s->v = p;
		s->alloc = na;
	}
	s->v[s->n].size = on_disk(st);
	s->v[s->n].atime = st->st_atim;
	memcpy(s->v[s->n].name, name, HEX_LEN + 1);
	s->n++;
	s->total += on_disk(st);
	s->apparent += (uint64_t)st->st_size;
	return 0;
}

/* Lists the entries of one fan-out directory, removing old temp files. */
static int scan_sub(struct cache *c, const char *sub, struct scan *s, long long now)
{
	int fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	struct dirent *d;
	DIR *dp;
	int r = 0;

	if (fd < 0)
		return 0;       /* vanished or not ours: nothing to count */
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return 0;
	}
	while (r == 0 && (d = readdir(dp)) != NULL) {
		struct stat st;

		if (is_hex(d->d_name, HEX_LEN) && memcmp(d->d_name, sub, 2) == 0) {
			if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				r = scan_add(s, d->d_name, &st);
		} else if (strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
			/* A writer renames within seconds; an old temp file is a killed one's. */
			if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode) && now - (long long)st.st_mtime > TEMP_MAX_AGE)
				unlinkat(fd, d->d_name, 0);
		}
	}
	closedir(dp);
	return r;
}

static int evict(struct cache *c, int force, struct ai_err *err)
{
	struct scan s = { NULL, 0, 0, 0, 0 };
	struct usage before, u;
	long long now = (long long)time(NULL);
	int lock, ufd, topfd, r = 0;
	struct dirent *d;
	DIR *top;

	lock = openat(c->dirfd, EVICT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot open '%s/%s': %s", c->dir, EVICT_LOCK,
			       strerror(errno));
	if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
		close(lock);    /* another process is evicting: its scan will do */
		return 0;
	}
	ufd = usage_lock(c);
	if (ufd >= 0) {
		usage_read(ufd, &before);
		usage_unlock(ufd);
	} else {
		before.total = 0;
		before.last_scan = 0;
	}
	/* Many puts may have seen the cap passed at once; the first scan serves all. */
	if (!force && ufd >= 0 && !needs_scan(c, &before, now))
		goto out;

	topfd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	top = topfd >= 0 ? fdopendir(topfd) : NULL;
	if (!top) {
		r = ai_errf(err, AI_EX_IOERR, "cannot read cache directory '%s': %s", c->dir,
			    strerror(errno));
		if (topfd >= 0)
			close(topfd);
		goto out;
	}
	while (r == 0 && (d = readdir(top)) != NULL)
		if (is_hex(d->d_name, 2))
			r = scan_sub(c, d->d_name, &s, now);
	closedir(top);
	if (r < 0) {
		r = ai_errf(err, AI_EX_OSERR, "out of memory scanning cache directory '%s'",
			    c->dir);
		goto out;
	}

	if (s.total > c->max_bytes) {
		/* Down to 7/8 of the cap, so a full cache is not rescanned on every put. */
		uint64_t target = c->max_bytes - c->max_bytes / 8;
		char rel[REL_LEN];

		qsort(s.v, s.n, sizeof(*s.v), by_atime);
		for (size_t i = 0; i < s.n && s.total > target; i++) {
			rel[0] = s.v[i].name[0];
			rel[1] = s.v[i].name[1];
			rel[2] = '/';
			memcpy(rel + 3, s.v[i].name, HEX_LEN + 1);
			if (unlinkat(c->dirfd, rel, 0) == 0 || errno == ENOENT)
				s.total -= s.v[i].size;
		}
	}

	/*
	 * Keep what other processes added while we scanned: they moved the
	 * total on from "before", so apply only our correction to it.
	 */
	ufd = usage_lock(c);
	if (ufd >= 0) {
		usage_read(ufd, &u);
		if (u.total >= before.total)
			u.total = s.total + (u.total - before.total);
		else
			u.total = s.total;
		u.last_scan = now;
		usage_write(ufd, &u);
		usage_unlock(ufd);
	}
out:
	free(s.v);
	flock(lock, LOCK_UN);
	close(lock);
	return r;
}

int cache_stats(struct cache *c, struct cache_stats *st, struct ai_err *err)
{
	struct scan s = { NULL, 0, 0, 0, 0 };
	long long now = (long long)time(NULL);
	int topfd, r = 0;
	struct dirent *d;
	DIR *top;

	memset(st, 0, sizeof(*st));
	if (!c || c->dirfd < 0)
		return ai_errf(err, AI_EX_SOFTWARE, "cache is not open");
	topfd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	top = topfd >= 0 ? fdopendir(topfd) : NULL;
	if (!top) {
		if (topfd >= 0)
			close(topfd);
		return ai_errf(err, AI_EX_IOERR, "cannot read cache directory '%s': %s", c->dir,
			       strerror(errno));
	}
	while (r == 0 && (d = readdir(top)) != NULL)
		if (is_hex(d->d_name, 2)) {
			struct stat ds;

			r = scan_sub(c, d->d_name, &s, now);
			if (fstatat(c->dirfd, d->d_name, &ds, AT_SYMLINK_NOFOLLOW) == 0)
				st->dir_bytes += on_disk(&ds);
		}
	closedir(top);
	free(s.v);
	if (r < 0)
		return ai_errf(err, AI_EX_OSERR, "out of memory scanning cache directory '%s'", c->dir);
	st->entries = s.n;
	st->bytes_on_disk = s.total;
	st->bytes = s.apparent;
	return 0;
}

int cache_evict(struct cache *c, struct ai_err *err)
{
	if (!c || c->dirfd < 0)
		return ai_errf(err, AI_EX_SOFTWARE, "cache is not open");
	return evict(c, 1, err);
}

/* Creates a unique 0600 temp file next to the entry; fills tmp with its name. */
static int make_temp(struct cache *c, const char *rel, char tmp[TMP_REL_LEN])
{
	unsigned char rnd[8];
	int made_dir = 0;

	for (int tries = 0; tries < 16; tries++) {
		int fd;

		randombytes_buf(rnd, sizeof(rnd));
		tmp[0] = rel[0];
		tmp[1] = rel[1];
		tmp[2] = '/';
		memcpy(tmp + 3, TMP_PREFIX, 5);
		to_hex(tmp + 8, rnd, sizeof(rnd));
		fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		if (fd >= 0) {
			/* A umask can only take bits away; 0600 exactly, whatever it is. */
			if (fchmod(fd, 0600) < 0) {
				int e = errno;

				close(fd);
				unlinkat(c->dirfd, tmp, 0);
				errno = e;
				return -1;
			}
			return fd;
		}
		if (errno == ENOENT && !made_dir) {
			char sub[3] = { rel[0], rel[1], '\0' };

			if (mkdir_0700(c->dirfd, sub) < 0)
				return -1;
			made_dir = 1;
			continue;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

int cache_put(struct cache *c, const unsigned char key[CACHE_KEY_LEN], const void *value,
	      size_t n, struct ai_err *err)
{
	char rel[REL_LEN], tmp[TMP_REL_LEN];
	unsigned char hdr[HDR_LEN];
	struct iovec iov[2];
	struct stat old;
	int64_t delta;
	int fd, e;

	if (!c || c->dirfd < 0)
		return ai_errf(err, AI_EX_SOFTWARE, "cache is not open");
	/*
	 * Only the put path needs sodium_init() (for randombytes_buf()): on a
	 * virtual machine its cpuid probing costs ~100 us of every process
	 * start, and BLAKE2b needs no initialisation (the portable code it
	 * then uses was even the faster one where this was measured).
	 */
	if (sodium_init() < 0)
		return ai_errf(err, AI_EX_SOFTWARE, "cannot initialise libsodium");
	if (n > c->max_bytes / 2 || n > (uint64_t)INT64_MAX / 2)
		return 0;       /* would push everything else out: not worth caching */
	entry_name(key, rel);

	memcpy(hdr, HDR_MAGIC, 8);
	put_le32(hdr + 8, HDR_VERSION);
	put_le32(hdr + 12, 0);
	put_le64(hdr + 16, (uint64_t)n);
	memcpy(hdr + 24, key, CACHE_KEY_LEN);
	checksum(hdr + HDR_SUMMED, hdr, value, n);

	fd = make_temp(c, rel, tmp);
	if (fd < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot create a file in cache directory '%s': %s",
			       c->dir, strerror(errno));
	iov[0].iov_base = hdr;
	iov[0].iov_len = HDR_LEN;
	iov[1].iov_base = (void *)(uintptr_t)value;
	iov[1].iov_len = n;
	/* No fsync: a torn file after a crash fails the length or checksum check. */
	if (iov_full(fd, iov, 2, false) < 0) {
		e = errno;
		close(fd);
		goto fail;
	}
	{
		struct stat nst;

		if (fstat(fd, &nst) < 0) {
			e = errno;
			close(fd);
			goto fail;
		}
		delta = (int64_t)on_disk(&nst);
	}
	if (close(fd) < 0) {
		e = errno;
		goto fail;
	}
	if (fstatat(c->dirfd, rel, &old, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(old.st_mode))
		delta -= (int64_t)on_disk(&old);
	if (renameat(c->dirfd, tmp, c->dirfd, rel) < 0) {
		e = errno;
		goto fail;
	}
	if (usage_add(c, delta) != 0)
		return evict(c, 0, err);
	return 0;
fail:
	unlinkat(c->dirfd, tmp, 0);
	return ai_errf(err, AI_EX_IOERR, "cannot write cache entry in '%s': %s", c->dir,
		       strerror(e));
}
