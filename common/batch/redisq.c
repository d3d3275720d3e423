#include "batch/redisq.h"
#include "batch/jsonl.h"
#include "buf.h"
#include "clock.h"
#include "fdio.h"
#include "jsonval.h"
#include "net/url.h"

#include <hiredis/hiredis.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PFX "ai-batch:"
#define GROUP "workers"
#define SUBMIT_PIPE 1000        /* commands a submit sends in one round trip */
#define CONNECT_MS 2000
#define COMMAND_S 30            /* a reply later than this: the connection is taken as lost */
#define BACKOFF_MAX_MS 5000
#define PAUSE_LOOK_MS 100       /* how stale a worker's view of the server's pause may be */

/* ---- the scripts (loaded on every connection: a restarted Redis has none) ---- */

/* Redis' clock in ms: every worker of a job reads the same one. */
#define NOW_MS "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

/*
 * TAKE: KEYS meta items tries res rl; ARGV group consumer parallel idle mode ("0": our own
 * pending, after a (re)start; ">": reclaimed, else new).  Returns {state, total, done,
 * pause_ms, then entry, key, line, deliveries for each item}.  Items with a line already
 * (finished by a worker that died before its XACK reached us) are acked, not returned.
 */
static const char take_lua[] =
	"local st = redis.call('HGET', KEYS[1], 'state') "
	"if not st then return {'gone'} end "
	"local total = tonumber(redis.call('HGET', KEYS[1], 'total')) or 0 "
	"local done = redis.call('HLEN', KEYS[4]) "
	NOW_MS
	"local u = tonumber(redis.call('HGET', KEYS[5], 'until')) or 0 "
	"local out = {st, tostring(total), tostring(done), tostring(u > now and u - now or 0)} "
	"if st == 'cancelled' or done >= total then return out end "
	/* A quarter of what is left, between count and 16 times it: long chunks keep the
	 * engine's slots full (each chunk ends with a tail), short ones share a small job. */
	"local want = math.floor((total - done) / 4) "
	"local lo = tonumber(ARGV[3]) "
	"if want < lo then want = lo elseif want > 16 * lo then want = 16 * lo end "
	"local got = {} "
	"if ARGV[5] == '0' then "
	"  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', KEYS[2], '0') "
	"  if r and r[1] then got = r[1][2] end "
	"else "
	"  local cur = redis.call('HGET', KEYS[1], 'cursor') or '0-0' "
	"  local c = redis.call('XAUTOCLAIM', KEYS[2], ARGV[1], ARGV[2], ARGV[4], cur, 'COUNT', want) "
	"  redis.call('HSET', KEYS[1], 'cursor', c[1]) "
	"  got = c[2] "
	"  if #got == 0 then "
	"    local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', KEYS[2], '>') "
	"    if r and r[1] then got = r[1][2] end "
	"  end "
	"end "
	"for _, e in ipairs(got) do "
	"  local f = e[2] "
	"  if f and type(f[2]) == 'string' and redis.call('HEXISTS', KEYS[4], f[2]) == 0 then "
	"    local n = redis.call('HINCRBY', KEYS[3], f[2], 1) "
	/* Four values an item, always: a nil would shift every later group (an entry
	 * written by another hand); its empty line becomes its error line. */
	"    table.insert(out, e[1]) table.insert(out, f[2]) table.insert(out, type(f[4]) == 'string' and f[4] or '') "
	"    table.insert(out, tostring(n)) "
	"  else "
	"    redis.call('XACK', KEYS[2], ARGV[1], e[1]) "
	"  end "
	"end "
	"return out";

/* STORE: KEYS res meta items active; ARGV group entry key line ok(1/0) job.  The line and
 * the XACK together: an item is pending or has its line, never neither.  -1 when the job is
 * gone (deleted): nothing is written, so a worker mid-job recreates no key of it. */
static const char store_lua[] =
	"if not redis.call('HGET', KEYS[2], 'state') then return -1 end "
	"if redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4]) == 1 then "
	"  redis.call('HINCRBY', KEYS[2], ARGV[5] == '1' and 'ok' or 'failed', 1) "
	"  if redis.call('HLEN', KEYS[1]) >= (tonumber(redis.call('HGET', KEYS[2], 'total')) or 0) then "
	"    redis.call('SREM', KEYS[4], ARGV[6]) "
	"  end "
	"end "
	"if ARGV[2] ~= '' then redis.call('XACK', KEYS[3], ARGV[1], ARGV[2]) end "
	"return 0";

/* REQUEUE: KEYS items tries; ARGV group entry key line uncount(1: not a delivery).  Only
 * while the entry is still pending, so a retried pipeline adds it once. */
static const char requeue_lua[] =
	"if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
	"  redis.call('XADD', KEYS[1], '*', 'k', ARGV[3], 'line', ARGV[4]) "
	"  if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[2], ARGV[3], -1) end "
	"  return 1 "
	"end "
	"return 0";

/*
 * BUCKET: KEYS rl meta; ARGV rpm tpm est want.  > 0: the ms to wait; "gone" when the job is
 * (deleted: the bucket is not made again); else -G: G requests granted
 * (est tokens taken for one), up to want when only --rpm binds, so that a worker under a
 * high limit need not ask for every request.  The request bucket holds 100 ms of the
 * budget, at least one (at 600 a minute or less, requests are spaced, as the filter's
 * --rpm spaces them); the token bucket a minute's worth.
 */
static const char bucket_lua[] =
	"if not redis.call('HGET', KEYS[2], 'state') then return 'gone' end "
	NOW_MS
	"local h = redis.call('HMGET', KEYS[1], 'r', 'rt', 'k', 'kt', 'until') "
	"local u = tonumber(h[5]) or 0 "
	"if u > now then return u - now end "
	"local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) "
	"local r, k, w, g = 0, 0, 0, 1 "
	"local cap = math.max(1, rpm / 600) "
	"if rpm > 0 then "
	"  r = math.min(cap, (tonumber(h[1]) or cap) + (now - (tonumber(h[2]) or now)) * rpm / 60000) "
	"  if r < 1 then w = math.ceil((1 - r) * 60000 / rpm) end "
	"end "
	"if tpm > 0 then "
	"  k = math.min(tpm, (tonumber(h[3]) or tpm) + (now - (tonumber(h[4]) or now)) * tpm / 60000) "
	"  local need = math.min(est, tpm) "
	"  if k < need then w = math.max(w, math.ceil((need - k) * 60000 / tpm)) end "
	"end "
	"if w > 0 then return w end "
	"if rpm > 0 and tpm <= 0 then g = math.max(1, math.min(tonumber(ARGV[4]), math.floor(r))) end "
	"redis.call('HSET', KEYS[1], 'r', tostring(r - g), 'rt', tostring(now), 'k', tostring(k - est), "
	"  'kt', tostring(now)) "
	"redis.call('PEXPIRE', KEYS[1], 86400000) "
	"return -g";

/* PAUSE: KEYS rl meta; ARGV ms.  The server said wait: every worker of the job waits;
 * "gone" when the job is. */
static const char pause_lua[] =
	"if not redis.call('HGET', KEYS[2], 'state') then return 'gone' end "
	NOW_MS
	"local u = now + tonumber(ARGV[1]) "
	"if u > (tonumber(redis.call('HGET', KEYS[1], 'until')) or 0) then "
	"  redis.call('HSET', KEYS[1], 'until', tostring(u)) "
	"end "
	"redis.call('PEXPIRE', KEYS[1], 86400000) "
	"return 0";

/*
 * BEAT: KEYS items; ARGV group consumer entry...  Resets the idle time of
 * the entries still pending with this consumer, and of no other: one that
 * another worker reclaimed meanwhile (a pause longer than the idle time)
 * stays its.  XCLAIM with min-idle 0 alone would take it back.
 */
static const char beat_lua[] =
	"local n = 0 "
	"for i = 3, #ARGV do "
	"  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1) "
	"  if p[1] and p[1][2] == ARGV[2] then "
	"    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID') "
	"    n = n + 1 "
	"  end "
	"end "
	"return n";

/*
 * DELETE: KEYS meta items keys res tries rl jobs active; ARGV id force(1/0) group.  Every key of
 * the job at once, so a worker sees the whole job or none of it (each of its scripts first
 * looks for the job's state).  Returns "deleted", "none" (no such job), or the state of a
 * job not over nor cancelled, which only force deletes.  Keys left without the job's hash
 * (by a worker older than this check) are deleted too.
 */
static const char delete_lua[] =
	"local st = redis.call('HGET', KEYS[1], 'state') "
	"if not st then "
	"  if not redis.call('ZSCORE', KEYS[7], ARGV[1]) and redis.call('SISMEMBER', KEYS[8], ARGV[1]) == 0 "
	"     and redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]) == 0 then "
	"    return 'none' "
	"  end "
	"elseif ARGV[2] ~= '1' and st ~= 'cancelled' then "
	"  local done = redis.call('HLEN', KEYS[4]) "
	"  if done < (tonumber(redis.call('HGET', KEYS[1], 'total')) or 0) then "
	/* The state as status names it: running once a worker took an item. */
	"    local p = redis.pcall('XPENDING', KEYS[2], ARGV[3]) "
	"    if st == 'queued' and (done > 0 or (type(p) == 'table' and (tonumber(p[1]) or 0) > 0)) then "
	"      st = 'running' "
	"    end "
	"    return st "
	"  end "
	"end "
	"redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]) "
	"redis.call('ZREM', KEYS[7], ARGV[1]) "
	"redis.call('SREM', KEYS[8], ARGV[1]) "
	"return 'deleted'";

/*
 * CANCEL: KEYS meta active; ARGV id.  Writes only into a job that exists, so
 * a cancel racing a delete does not bring back a hash of the job deleted.
 * Returns "cancelled" or "none".
 */
static const char cancel_lua[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return 'none' end "
	"redis.call('HSET', KEYS[1], 'state', 'cancelled') "
	"redis.call('SREM', KEYS[2], ARGV[1]) "
	"return 'cancelled'";

enum { SC_TAKE, SC_STORE, SC_REQUEUE, SC_BUCKET, SC_PAUSE, SC_BEAT, SC_DELETE, SC_CANCEL, SC_N };
static const char *const scripts[SC_N] = { take_lua, store_lua, requeue_lua, bucket_lua, pause_lua,
					   beat_lua, delete_lua, cancel_lua };
static char shas[SC_N][41];

/* ---- commands: a pipeline sent in one round trip, again after a reconnect ---- */

struct pipe {
	char **cmd;
	size_t *len;
	size_t n, cap;
};

static void pipe_init(struct pipe *p)
{
	memset(p, 0, sizeof(*p));
}

static void pipe_reset(struct pipe *p)
{
	for (size_t i = 0; i < p->n; i++)
		redisFreeCommand(p->cmd[i]);
	p->n = 0;
}

static void pipe_release(struct pipe *p)
{
	pipe_reset(p);
	free(p->cmd);
	free(p->len);
	pipe_init(p);
}

/* Adds one command of argc words (lens: their lengths, or NULL for C strings). */
static int pipe_add(struct pipe *p, int argc, const char **argv, const size_t *lens, struct ai_err *err)
{
	size_t l[24], *dyn = NULL;
	char *c;
	int n;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **nc = realloc(p->cmd, cap * sizeof(*nc));
		size_t *nl;

		if (!nc)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		p->cmd = nc;
		if (!(nl = realloc(p->len, cap * sizeof(*nl))))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		p->len = nl;
		p->cap = cap;
	}
	if (!lens) {
		size_t *t = l;

		if ((size_t)argc > AI_ARRAY_LEN(l) && !(t = dyn = malloc((size_t)argc * sizeof(*t))))
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		for (int i = 0; i < argc; i++)
			t[i] = strlen(argv[i]);
		lens = t;
	}
	n = redisFormatCommandArgv(&c, argc, argv, lens);
	free(dyn);
	if (n < 0)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	p->cmd[p->n] = c;
	p->len[p->n++] = (size_t)n;
	return 0;
}

#define PIPE(p, err, ...) pipe_add((p), (int)AI_ARRAY_LEN(((const char *[]){ __VA_ARGS__ })), \
				   (const char *[]){ __VA_ARGS__ }, NULL, (err))

static void drop(struct redisq *q)
{
	if (q->ctx)
		redisFree(q->ctx);
	q->ctx = NULL;
}

/* A script's error: the server has forgotten it (SCRIPT FLUSH, a failover to a replica). */
static bool noscript(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8);
}

/* An error reply that a moment's wait cures: a Redis still loading its data after a restart. */
static bool transient(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR &&
	       (!strncmp(r->str, "LOADING", 7) || !strncmp(r->str, "BUSY", 4) ||
		!strncmp(r->str, "TRYAGAIN", 8) || !strncmp(r->str, "MASTERDOWN", 10));
}

static int reply_err(const redisReply *r, const char *what, struct ai_err *err)
{
	return ai_errf(err, AI_EX_UNAVAILABLE, "redis: %s: %.160s", what,
		       r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

/* One command on the connection as it is, no retry: the reply (owned) or NULL. */
static redisReply *cmd1(struct redisq *q, int argc, const char **argv)
{
	return redisCommandArgv(q->ctx, argc, argv, NULL);
}

static int load_scripts(struct redisq *q, struct ai_err *err);

/* Connects, authenticates, selects the database and loads the scripts.  1: try again later. */
static int connect_once(struct redisq *q, struct ai_err *err)
{
	struct timeval tv = { CONNECT_MS / 1000, (CONNECT_MS % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(q->host, q->port, tv);
	redisReply *r;
	char db[16];

	if (!c)
		return ai_errf(err, AI_EX_OSERR, "out of memory");
	if (c->err) {
		ai_errf(err, AI_EX_UNAVAILABLE, "cannot connect to %s: %s", q->url, c->errstr);
		redisFree(c);
		return 1;
	}
	q->ctx = c;
	tv.tv_sec = COMMAND_S;
	tv.tv_usec = 0;
	redisSetTimeout(c, tv);
	redisEnableKeepAlive(c);
	if (q->pass) {
		r = q->user ? cmd1(q, 3, (const char *[]){ "AUTH", q->user, q->pass }) :
			      cmd1(q, 2, (const char *[]){ "AUTH", q->pass });
		if (!r || r->type == REDIS_REPLY_ERROR) {
			bool t = !r || transient(r);

			if (t)
				ai_errf(err, AI_EX_UNAVAILABLE, "lost %s while logging in", q->url);
			else
				ai_errf(err, AI_EX_CONFIG, "%s refused the password: %.120s", q->url, r->str);
			freeReplyObject(r);
			drop(q);
			return t ? 1 : -1;
		}
		freeReplyObject(r);
	}
	snprintf(db, sizeof(db), "%d", q->db);
	r = q->db ? cmd1(q, 2, (const char *[]){ "SELECT", db }) :
		    cmd1(q, 1, (const char *[]){ "PING" });
	if (!r || r->type == REDIS_REPLY_ERROR) {
		bool t = !r || transient(r);

		if (!r)
			ai_errf(err, AI_EX_UNAVAILABLE, "lost %s: %s", q->url, q->ctx ? ((redisContext *)q->ctx)->errstr : "");
		else if (!strncmp(r->str, "NOAUTH", 6))
			ai_errf(err, AI_EX_CONFIG, "%s wants a password: give it in the URL "
				"(redis://:PASSWORD@host) or as redis_password_cmd in ai.conf", q->url);
		else
			reply_err(r, q->db ? "SELECT" : "PING", err);
		freeReplyObject(r);
		drop(q);
		return t ? 1 : -1;
	}
	freeReplyObject(r);
	return load_scripts(q, err);
}

/*
 * Loads the scripts on the connection (on every connect: a restarted Redis
 * has none; after a SCRIPT FLUSH, again).  1: try again later, the
 * connection dropped; -1 with err.
 */
static int load_scripts(struct redisq *q, struct ai_err *err)
{
	redisReply *r;

	for (int i = 0; i < SC_N; i++) {
		r = cmd1(q, 3, (const char *[]){ "SCRIPT", "LOAD", scripts[i] });
		if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
			bool t = !r || transient(r);

			if (t)
				ai_errf(err, AI_EX_UNAVAILABLE, "lost %s", q->url);
			else
				reply_err(r, "SCRIPT LOAD", err);
			freeReplyObject(r);
			drop(q);
			return t ? 1 : -1;
		}
		memcpy(shas[i], r->str, 40);
		shas[i][40] = '\0';
		freeReplyObject(r);
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool stopped(const struct redisq *q)
{
	return q->stop && *q->stop;
}

/*
 * Sends p and reads its replies into *out (owned: free each, then the
 * vector).  A lost connection, or a Redis still loading, is waited out
 * with backoff when q->patient, and the whole pipeline is sent again: the
 * caller makes every pipeline idempotent.  Error replies are returned as
 * replies.  *q->stop ends only the waiting: on a live connection the
 * pipeline is sent once whatever it says, so that the lines of the items
 * finished when SIGTERM came (paid for) are stored, not run again.
 */
static int rq_send(struct redisq *q, struct pipe *p, redisReply ***out, bool patient, struct ai_err *err)
{
	long backoff = 100;
	redisReply **r = calloc(p->n ? p->n : 1, sizeof(*r));
	struct ai_err *caller = err, lost;
	bool reloaded = false;

	/* What went wrong on the way is the caller's only if it is the end. */
	ai_err_clear(&lost);
	err = &lost;

	*out = NULL;
	if (!r)
		return ai_errf(caller, AI_EX_OSERR, "out of memory");
	for (;;) {
		size_t got = 0, again = 0;     /* again: 1 + the index of a transient reply */
		bool forgot = false;
		int c = 0;

		if (!q->ctx && stopped(q)) {
			free(r);
			return ai_errf(caller, AI_EX_INTERRUPT, "interrupted");
		}
		if (!q->ctx && (c = connect_once(q, err)) < 0) {
			free(r);
			*caller = lost;
			return -1;
		}
		if (!c) {
			q->round_trips++;
			for (size_t i = 0; i < p->n; i++)
				if (redisAppendFormattedCommand(q->ctx, p->cmd[i], p->len[i]) != REDIS_OK)
					break;
			for (; got < p->n; got++) {
				void *rep = NULL;

				if (redisGetReply(q->ctx, &rep) != REDIS_OK)
					break;
				r[got] = rep;
				if (!again && transient(rep))
					again = got + 1;
				forgot = forgot || noscript(rep);
			}
			if (got == p->n && !again && forgot && !reloaded) {
				/* Loaded again and sent once more (every pipeline is idempotent);
				 * a second NOSCRIPT is the caller's error reply. */
				for (size_t i = 0; i < got; i++) {
					freeReplyObject(r[i]);
					r[i] = NULL;
				}
				reloaded = true;
				if ((c = load_scripts(q, err)) < 0) {
					free(r);
					*caller = lost;
					return -1;
				}
				if (!c)
					continue;
				/* Lost while loading (dropped, err said so): waited out as any loss. */
			} else if (got == p->n && !again) {
				*out = r;
				return 0;
			}
			if (q->ctx) {
				if (got < p->n)
					ai_errf(err, AI_EX_UNAVAILABLE, "lost %s: %s", q->url,
						((redisContext *)q->ctx)->errstr[0] ?
						((redisContext *)q->ctx)->errstr : "connection closed");
				else
					ai_errf(err, AI_EX_UNAVAILABLE, "%s is not ready: %.120s", q->url,
						r[again - 1]->str);
				for (size_t i = 0; i < got; i++) {
					freeReplyObject(r[i]);
					r[i] = NULL;
				}
				drop(q);
			}
		}
		if (!patient) {
			free(r);
			*caller = lost;
			return -1;
		}
		if (stopped(q)) {
			free(r);
			return ai_errf(caller, AI_EX_INTERRUPT, "interrupted");
		}
		q->reconnects++;
		sleep_ms(backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
}

static void replies_free(redisReply **r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		freeReplyObject(r[i]);
	free(r);
}

/* ---- the URL ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Decodes the %XX of s[0, n) (RFC 3986: a password may hold '@', ':' or
 * '/' only so) into *out, NUL-terminated: sodium_malloc'd when secret,
 * else malloc'd.  0; 1 for a %00 (it would end the string); -1 out of
 * memory.  A '%' without two hex digits after it stays as it is.
 */
static int pct_decode(const char *s, size_t n, bool secret, char **out)
{
	char *d = secret ? sodium_malloc(n + 1) : malloc(n + 1);
	size_t k = 0;

	*out = NULL;
	if (!d)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = s[i] == '%' && i + 2 < n ? hexval(s[i + 1]) : -1;
		int lo = hi >= 0 ? hexval(s[i + 2]) : -1;

		if (lo < 0) {
			d[k++] = s[i];
			continue;
		}
		if (!(d[k++] = (char)(hi * 16 + lo))) {
			if (secret)
				sodium_free(d);
			else
				free(d);
			return 1;
		}
		i += 2;
	}
	d[k] = '\0';
	*out = d;
	return 0;
}

static int parse_url(struct redisq *q, const char *url, struct ai_err *err)
{
	const char *s, *at, *host, *hend, *slash;
	char *end, shown[120];
	long v;

	if (!strncmp(url, "rediss://", 9))
		return ai_errf(err, AI_EX_UNAVAILABLE, "rediss:// needs TLS, and this build's hiredis "
			       "(0.14, Debian 12) has none: use redis:// over a tunnel (stunnel, "
			       "spiped, ssh -L) or a private network");
	if (strncmp(url, "redis://", 8))       /* shown without its password */
		return ai_errf(err, AI_EX_USAGE, "'%s' is not a Redis URL: give "
			       "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", url_shown(url, shown, sizeof(shown)));
	s = url + 8;
	slash = strchr(s, '/');
	at = NULL;              /* the last '@' before the path: a password may hold one */
	for (const char *t = s; *t && t != slash; t++)
		if (*t == '@')
			at = t;
	host = s;
	if (at) {
		const char *colon = memchr(s, ':', (size_t)(at - s));
		const char *uend = colon ? colon : at;
		int d = 0;

		host = at + 1;
		/* redis://USER:PASS@ (an ACL user), redis://:PASS@ (the default user) */
		if (uend > s)
			d = pct_decode(s, (size_t)(uend - s), false, &q->user);
		if (!d && colon && at > colon + 1)
			d = pct_decode(colon + 1, (size_t)(at - colon - 1), true, &q->pass);
		if (d < 0)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		if (d > 0)
			goto bad;
	}
	hend = slash ? slash : host + strlen(host);
	{
		const char *colon = NULL;

		for (const char *t = host; t < hend; t++)
			if (*t == ':')
				colon = t;
		if (host[0] == '[') {   /* [::1]:6379 */
			const char *rb = memchr(host, ']', (size_t)(hend - host));

			if (!rb)
				goto bad;
			colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
			if (!(q->host = strndup(host + 1, (size_t)(rb - host - 1))))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
		} else {
			size_t n = (size_t)((colon ? colon : hend) - host);

			if (!(q->host = strndup(host, n)))
				return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
		if (!q->host[0])
			goto bad;
		q->port = 6379;
		if (colon) {
			errno = 0;
			v = strtol(colon + 1, &end, 10);
			if (errno || end != hend || v < 1 || v > 65535 || colon + 1 == hend)
				goto bad;
			q->port = (int)v;
		}
	}
	q->db = 0;
	if (slash && slash[1]) {
		errno = 0;
		v = strtol(slash + 1, &end, 10);
		if (errno || *end || v < 0 || v > 100000)
			goto bad;
		q->db = (int)v;
	}
	snprintf(q->url, sizeof(q->url), "redis://%s%.100s:%d/%d", q->pass ? "***@" : "", q->host,
		 q->port, q->db);
	return 0;
bad:
	return ai_errf(err, AI_EX_USAGE, "bad Redis URL (give redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
}

int redisq_open(struct redisq *q, const char *url, const char *password,
		volatile sig_atomic_t *stop, struct ai_err *err)
{
	char host[64], hex[17];
	unsigned char rnd[8];
	int c;

	memset(q, 0, sizeof(*q));
	q->stop = stop;
	if (sodium_init() < 0)  /* the password lives in guarded memory */
		return ai_errf(err, AI_EX_OSERR, "cannot initialise libsodium");
	if (parse_url(q, url, err))
		goto fail;
	if (q->user && !q->pass && !(password && *password)) {
		ai_errf(err, AI_EX_CONFIG, "%s names user '%.40s' without a password: give it in the URL "
			"(redis://USER:PASSWORD@host) or as redis_password_cmd in ai.conf", q->url, q->user);
		goto fail;
	}
	if (!q->pass && password && *password) {
		size_t n = strlen(password);

		if (!(q->pass = sodium_malloc(n + 1))) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto fail;
		}
		memcpy(q->pass, password, n + 1);
	}
	if (gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "host");
	host[sizeof(host) - 1] = '\0';
	/* Containers share hostnames and pids (every one is pid 1): random bytes keep two
	 * workers from being one consumer, which would take each other's pending items. */
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(q->consumer, sizeof(q->consumer), "%s:%ld:%s", host, (long)getpid(), hex);
	if ((c = connect_once(q, err))) {
		if (c > 0 && !err->msg[0])
			ai_errf(err, AI_EX_UNAVAILABLE, "cannot connect to %s", q->url);
		goto fail;
	}
	return 0;
fail:
	redisq_close(q);
	return -1;
}

void redisq_close(struct redisq *q)
{
	drop(q);
	free(q->host);
	q->host = NULL;
	free(q->user);
	q->user = NULL;
	if (q->pass)
		sodium_free(q->pass);
	q->pass = NULL;
}

/* ---- keys ---- */

struct keys {
	char meta[96], items[96], keys[96], res[96], tries[96], rl[96];
};

static int job_keys(struct keys *k, const char *id, struct ai_err *err)
{
	size_t n = strlen(id);

	if (!n || n > 60 || strspn(id, "0123456789abcdefTZ-") != n)
		return ai_errf(err, AI_EX_USAGE, "'%.80s' is not a job id (see ai-batch list --queue URL)", id);
	snprintf(k->meta, sizeof(k->meta), PFX "%s", id);
	snprintf(k->items, sizeof(k->items), PFX "%s:items", id);
	snprintf(k->keys, sizeof(k->keys), PFX "%s:keys", id);
	snprintf(k->res, sizeof(k->res), PFX "%s:res", id);
	snprintf(k->tries, sizeof(k->tries), PFX "%s:tries", id);
	snprintf(k->rl, sizeof(k->rl), PFX "%s:rl", id);
	return 0;
}

/* ---- submit ---- */

/* The item's line as stored: with its id written in when the id is its line number. */
static int stored_line(const struct jsonl_item *it, const char *line, size_t len,
		       enum jsonl_mode mode, struct buf *out)
{
	json_object *j = NULL, *o;
	const char *s;
	int rc = -1;

	buf_reset(out);
	if (!it->auto_id && mode == JSONL_JSON)
		return buf_add(out, line, len);
	if (mode == JSONL_JSON && (j = json_tokener_parse(line)) && json_object_is_type(j, json_type_object)) {
		o = json_object_get(j);
	} else {
		if (!(o = json_object_new_object()))
			goto out;
		if (mode == JSONL_JSON && json_object_is_type(j, json_type_string))
			rc = jv_add(o, "text", json_object_get(j));
		else
			rc = jv_add(o, "text", json_object_new_string_len(line, (int)len));
		if (rc)
			goto out;
		rc = -1;
	}
	if (jv_add(o, "id", json_object_get(it->id)))
		goto out;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = s ? buf_addstr(out, s) : -1;
out:
	json_object_put(o);
	json_object_put(j);
	return rc;
}

static int check_replies(redisReply **r, size_t n, const char *what, struct ai_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (r[i]->type == REDIS_REPLY_ERROR)
			return reply_err(r[i], what, err);
	return 0;
}

/* Sends p (not patient: a client command fails at once when Redis does) and checks it. */
static int send_checked(struct redisq *q, struct pipe *p, const char *what, struct ai_err *err)
{
	redisReply **r;
	int rc;

	if (!p->n)
		return 0;
	if (rq_send(q, p, &r, false, err))
		return -1;
	rc = check_replies(r, p->n, what, err);
	replies_free(r, p->n);
	pipe_reset(p);
	return rc;
}

int redisq_submit(struct redisq *q, int fd, const struct batch_opts *o, json_object *args,
		  char *id, size_t idn, struct ai_err *err)
{
	struct batch b;
	struct batch_opts bo = *o;
	struct jsonl_reader rd;
	struct keys k;
	struct pipe p;
	struct buf line, el;
	const char *l, *a;
	char created[32], total[32];
	size_t len;
	bool too_long, reader = false, created_keys = false;
	int got = 0, rc = -1;
	long bad = 0;
	time_t t = time(NULL);
	struct tm tm;
	unsigned char rnd[3];

	pipe_init(&p);
	buf_init(&line, 0);
	buf_init(&el, 0);
	bo.state = NULL;
	bo.emit = NULL;
	bo.progress = NULL;
	if (batch_open(&b, &bo, fd, err))
		return -1;
	gmtime_r(&t, &tm);
	len = strftime(id, idn, "%Y%m%dT%H%M%S", &tm);
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(id + len, idn - len, "-%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
	if (job_keys(&k, id, err))
		goto out;
	snprintf(created, sizeof(created), "%lld", (long long)wall_ms());
	snprintf(total, sizeof(total), "%ld", b.st.total);
	a = json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN);
	if (PIPE(&p, err, "HSET", k.meta, "state", "submitting", "total", total, "created", created,
		 "args", a, "ok", "0", "failed", "0") ||
	    PIPE(&p, err, "XGROUP", "CREATE", k.items, GROUP, "0", "MKSTREAM"))
		goto out;
	created_keys = true;    /* from here, a failure removes what was stored */
	if (send_checked(q, &p, "creating the job", err))
		goto out;
	if (jsonl_reader_init(&rd, b.fd, bo.max_line, err))
		goto out;
	reader = true;
	while ((got = jsonl_next(&rd, &l, &len, &too_long, err)) == 1) {
		struct jsonl_item it;
		int r;

		if (jsonl_parse(l, len, too_long, rd.lineno, &bo.item, &it, err))
			goto out;
		if (it.bad) {
			buf_reset(&el);
			r = jsonl_err_line(&el, it.id, 0, "invalid_input", it.error, 0) ||
			    pipe_add(&p, 4, (const char *[]){ "HSET", k.res, it.key, el.data },
				     (const size_t[]){ 4, strlen(k.res), strlen(it.key), el.len }, err) ||
			    PIPE(&p, err, "HINCRBY", k.meta, "failed", "1");
			bad++;
		} else {
			r = stored_line(&it, l, len, bo.item.mode, &line) ||
			    pipe_add(&p, 7, (const char *[]){ "XADD", k.items, "*", "k", it.key, "line", line.data },
				     (const size_t[]){ 4, strlen(k.items), 1, 1, strlen(it.key), 4, line.len }, err);
		}
		r = r || PIPE(&p, err, "RPUSH", k.keys, it.key);
		jsonl_item_release(&it);
		if (r) {
			if (!err->code)
				ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
		if (p.n >= SUBMIT_PIPE && send_checked(q, &p, "storing the items", err))
			goto out;
	}
	if (got < 0)
		goto out;
	/*
	 * Not closed: a delete --force that lands while the items are stored
	 * leaves this pipeline (and the items after it) to write keys of the
	 * job again, a job without its items.  A later delete of the id
	 * removes such keys too; ai-batch list shows the job meanwhile.
	 */
	if (PIPE(&p, err, "HSET", k.meta, "state", "queued") ||
	    PIPE(&p, err, "ZADD", PFX "jobs", created, id) ||
	    (bad < b.st.total && PIPE(&p, err, "SADD", PFX "active", id)) ||
	    send_checked(q, &p, "storing the items", err))
		goto out;
	rc = 0;
out:
	if (rc && created_keys) {
		/* Not listed nor active yet: no worker knows the job; what was stored
		 * would only stay as state=submitting.  Best effort: err says why. */
		struct ai_err ignored;

		ai_err_clear(&ignored);
		pipe_reset(&p);
		if (!PIPE(&p, &ignored, "DEL", k.meta, k.items, k.keys, k.res))
			send_checked(q, &p, "removing the job", &ignored);
	}
	if (reader)
		jsonl_reader_release(&rd);
	batch_close(&b);
	pipe_release(&p);
	buf_release(&line);
	buf_release(&el);
	return rc;
}

/* ---- status, results, wait, cancel, list ---- */

static long reply_long(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return (long)r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtol(r->str, NULL, 10);
	return 0;
}

/* Whether the elements of array reply a from index from on are all strings (a reply is
 * data: what another hand wrote to Redis may be anything). */
static bool strings_from(const redisReply *a, size_t from)
{
	if (!a || a->type != REDIS_REPLY_ARRAY)
		return false;
	for (size_t i = from; i < a->elements; i++)
		if (!a->element[i] || a->element[i]->type != REDIS_REPLY_STRING)
			return false;
	return true;
}

json_object *redisq_status(struct redisq *q, const char *id, struct ai_err *err)
{
	struct keys k;
	struct pipe p;
	redisReply **r = NULL;
	json_object *s = NULL;
	const redisReply *m;
	long total, done, pend = 0;
	const char *state;

	if (job_keys(&k, id, err))
		return NULL;
	pipe_init(&p);
	if (PIPE(&p, err, "HMGET", k.meta, "state", "total", "ok", "failed", "created") ||
	    PIPE(&p, err, "HLEN", k.res) || PIPE(&p, err, "XPENDING", k.items, GROUP) ||
	    rq_send(q, &p, &r, false, err))
		goto out;
	m = r[0];
	if (m->type != REDIS_REPLY_ARRAY || m->elements != 5) {
		reply_err(m, "HMGET", err);
		goto out;
	}
	if (m->element[0]->type != REDIS_REPLY_STRING) {
		ai_errf(err, AI_EX_NOINPUT, "no job '%s' in %s (see ai-batch list --queue URL)", id, q->url);
		goto out;
	}
	total = reply_long(m->element[1]);
	done = reply_long(r[1]);
	if (r[2]->type == REDIS_REPLY_ARRAY && r[2]->elements >= 1)
		pend = reply_long(r[2]->element[0]);
	state = m->element[0]->str;
	if (strcmp(state, "cancelled"))
		state = done >= total ? "done" : pend > 0 || done > 0 ? "running" : "queued";
	if (!(s = json_object_new_object()) || jv_add(s, "id", json_object_new_string(id)) ||
	    jv_add(s, "mode", json_object_new_string("redis")) ||
	    jv_add(s, "state", json_object_new_string(state)) ||
	    jv_add(s, "total", json_object_new_int64(total)) ||
	    jv_add(s, "done", json_object_new_int64(done)) ||
	    jv_add(s, "ok", json_object_new_int64(reply_long(m->element[2]))) ||
	    jv_add(s, "failed", json_object_new_int64(reply_long(m->element[3]))) ||
	    jv_add(s, "pending", json_object_new_int64(pend)) ||
	    jv_add(s, "created_ms", json_object_new_int64(reply_long(m->element[4])))) {
		json_object_put(s);
		s = NULL;
		ai_errf(err, AI_EX_OSERR, "out of memory");
	}
out:
	replies_free(r, p.n);
	pipe_release(&p);
	return s;
}

const char *redisq_state(json_object *status)
{
	const char *s = jv_str(status, "state");

	return s ? s : "queued";
}

int redisq_results(struct redisq *q, const char *id,
		   void (*emit)(const char *line, size_t len, void *ud), void *ud, struct ai_err *err)
{
	struct keys k;
	struct pipe p;
	json_object *s;
	long total, missing = 0;
	int rc = -1;

	if (!(s = redisq_status(q, id, err)))
		return -1;
	total = jv_long(s, "total", 0);
	json_object_put(s);
	if (job_keys(&k, id, err))
		return -1;
	pipe_init(&p);
	for (long at = 0; at < total; at += 1000) {
		redisReply **r = NULL, **v = NULL;
		const redisReply *ks;
		char from[32], to[32];
		size_t np;

		snprintf(from, sizeof(from), "%ld", at);
		snprintf(to, sizeof(to), "%ld", at + 999);
		if (PIPE(&p, err, "LRANGE", k.keys, from, to) || rq_send(q, &p, &r, false, err))
			goto out;
		np = p.n;
		pipe_reset(&p);
		ks = r[0];
		if (!strings_from(ks, 0)) {
			reply_err(ks, "LRANGE", err);
			replies_free(r, np);
			goto out;
		}
		if (ks->elements) {
			const char **argv = calloc(ks->elements + 2, sizeof(*argv));
			size_t *lens = calloc(ks->elements + 2, sizeof(*lens));
			int bad;

			if (!argv || !lens) {
				free(argv);
				free(lens);
				replies_free(r, np);
				ai_errf(err, AI_EX_OSERR, "out of memory");
				goto out;
			}
			argv[0] = "HMGET";
			lens[0] = 5;
			argv[1] = k.res;
			lens[1] = strlen(k.res);
			for (size_t i = 0; i < ks->elements; i++) {
				argv[i + 2] = ks->element[i]->str;
				lens[i + 2] = ks->element[i]->len;
			}
			bad = pipe_add(&p, (int)ks->elements + 2, argv, lens, err) ||
			      rq_send(q, &p, &v, false, err);
			free(argv);
			free(lens);
			if (bad) {
				replies_free(r, np);
				goto out;
			}
			if (v[0]->type != REDIS_REPLY_ARRAY) {
				reply_err(v[0], "HMGET", err);
				replies_free(v, 1);
				replies_free(r, np);
				goto out;
			}
			for (size_t i = 0; i < v[0]->elements; i++) {
				const redisReply *e = v[0]->element[i];

				if (e->type == REDIS_REPLY_STRING)
					emit(e->str, e->len, ud);
				else
					missing++;
			}
			replies_free(v, p.n);
			pipe_reset(&p);
		}
		replies_free(r, np);
	}
	rc = missing ? 1 : 0;
out:
	pipe_release(&p);
	return rc;
}

int redisq_wait(struct redisq *q, const char *id, json_object **status, struct ai_err *err)
{
	*status = NULL;
	for (;;) {
		json_object *s = redisq_status(q, id, err);
		const char *st;

		if (!s)
			return -1;
		st = redisq_state(s);
		if (!strcmp(st, "done") || !strcmp(st, "cancelled")) {
			*status = s;
			return 0;
		}
		json_object_put(s);
		if (stopped(q))
			return ai_errf(err, AI_EX_INTERRUPT, "interrupted");
		sleep_ms(250);
	}
}

/*
 * Sends p, a job script that answers its verdict on job id as a word:
 * "none" (no such job: AI_EX_NOINPUT) or another, copied into verdict.
 * Releases p.  what names the step in a reply error.
 */
static int job_verdict(struct redisq *q, struct pipe *p, const char *id, const char *what,
		       char *verdict, size_t n, struct ai_err *err)
{
	redisReply **r;
	int rc = -1;

	if (rq_send(q, p, &r, false, err)) {
		pipe_release(p);
		return -1;
	}
	if (r[0]->type != REDIS_REPLY_STRING)
		reply_err(r[0], what, err);
	else if (!strcmp(r[0]->str, "none"))
		ai_errf(err, AI_EX_NOINPUT, "no job '%s' in %s (see ai-batch list --queue URL)", id, q->url);
	else {
		snprintf(verdict, n, "%s", r[0]->str);
		rc = 0;
	}
	replies_free(r, 1);
	pipe_release(p);
	return rc;
}

int redisq_cancel(struct redisq *q, const char *id, struct ai_err *err)
{
	struct keys k;
	struct pipe p;
	char verdict[32];

	if (job_keys(&k, id, err))
		return -1;
	pipe_init(&p);
	if (PIPE(&p, err, "EVALSHA", shas[SC_CANCEL], "2", k.meta, PFX "active", id)) {
		pipe_release(&p);
		return -1;
	}
	return job_verdict(q, &p, id, "cancelling", verdict, sizeof(verdict), err);
}

int redisq_delete(struct redisq *q, const char *id, bool force, struct ai_err *err)
{
	struct keys k;
	struct pipe p;
	char verdict[32];

	if (job_keys(&k, id, err))
		return -1;
	pipe_init(&p);
	if (PIPE(&p, err, "EVALSHA", shas[SC_DELETE], "8", k.meta, k.items, k.keys, k.res, k.tries, k.rl,
		 PFX "jobs", PFX "active", id, force ? "1" : "0", GROUP)) {
		pipe_release(&p);
		return -1;
	}
	if (job_verdict(q, &p, id, "deleting the job", verdict, sizeof(verdict), err))
		return -1;
	if (strcmp(verdict, "deleted"))
		return ai_errf(err, AI_EX_TEMPFAIL, "job '%s' is %.20s: cancel it first (ai-batch cancel "
			       "--queue URL %s), or delete it with --force", id, verdict, id);
	return 0;
}

int redisq_list(struct redisq *q, char ***ids, size_t *n, struct ai_err *err)
{
	struct pipe p;
	redisReply **r;
	char **v;
	int rc = -1;

	*ids = NULL;
	*n = 0;
	pipe_init(&p);
	if (PIPE(&p, err, "ZRANGE", PFX "jobs", "0", "-1") || rq_send(q, &p, &r, false, err))
		goto out;
	if (!strings_from(r[0], 0)) {
		reply_err(r[0], "ZRANGE", err);
		replies_free(r, 1);
		goto out;
	}
	if (!(v = calloc(r[0]->elements + 1, sizeof(*v)))) {
		replies_free(r, 1);
		ai_errf(err, AI_EX_OSERR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < r[0]->elements; i++)
		if (!(v[i] = strdup(r[0]->element[i]->str))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			replies_free(r, 1);
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
	*ids = v;
	*n = r[0]->elements;
	replies_free(r, 1);
	rc = 0;
out:
	pipe_release(&p);
	return rc;
}

/* ---- the worker ---- */

struct entry {
	char *eid, *key, *line;
	long tries;
};

struct worker {
	struct redisq *q;
	const struct redisq_worker_opts *o;
	struct redisq_worker_stats *st;
	struct keys k;
	char job[64];
	struct batch_opts bo;           /* the job's, with our hooks */
	struct ai_client *c;
	bool open;
	struct entry *e;
	size_t n, cap, next;            /* entries in the chunk; the next to get its line */
	struct pipe out;                /* the stores and requeues of lines not yet flushed */
	int64_t pause_until;            /* mono ms: the job's shared pause, as last read */
	int64_t last_beat;
	int64_t pause_look;             /* mono ms: when the shared pause was last read */
	long granted;                   /* requests the job's bucket granted us, not yet sent */
	int tmp;                        /* the chunk's file */
	uint64_t tmp_len;               /* its length: lines are appended with pwrite */
	struct jsonl_idset seen;        /* the ids of this run */
	struct ai_err fatal;
	bool down;                      /* the server stopped answering during the chunk */
	int64_t quiet_until;            /* mono ms: no quick_send before (Redis failed one) */
	struct entry *later;            /* taken twice in one run: for the next run of later_job */
	size_t nlater, caplater;
	char later_job[64];
	int64_t later_at;               /* mono ms: when the first of them was put off */
	bool gone;                      /* the job was deleted during the chunk: it sends no more */
	char refused[64];               /* the last job whose options job_open refused */
	char why[256];                  /* and why */
};

static void note(struct worker *w, const char *fmt, ...) AI_PRINTF(2, 3);
static void note(struct worker *w, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	if (!w->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->o->note(msg, w->o->ud);
}

static void entry_free(struct entry *e);

static void chunk_clear(struct worker *w)
{
	for (size_t i = 0; i < w->n; i++)
		entry_free(&w->e[i]);
	w->n = w->next = 0;
}

/* Appends *e (its strings moved in) to the vector; -1 out of memory (nothing moved). */
static int entries_push(struct entry **v, size_t *n, size_t *cap, const struct entry *e)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct entry *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *e;
	return 0;
}

static void later_clear(struct worker *w)
{
	for (size_t i = 0; i < w->nlater; i++)
		entry_free(&w->later[i]);
	w->nlater = 0;
}

/*
 * An id taken a second time in one run (a requeued item taken again while
 * the run goes on): kept for the next run of the job rather than left
 * pending, where only an idle-time claim would take it again, a delivery
 * later (one more try counted for one request).  Owns *e's strings.
 */
static void put_off(struct worker *w, struct entry *e)
{
	if (w->nlater && strcmp(w->later_job, w->job))
		later_clear(w);         /* another job's: they stay pending, for a claim */
	if (!w->nlater) {
		snprintf(w->later_job, sizeof(w->later_job), "%s", w->job);
		w->later_at = mono_ms();
	}
	if (entries_push(&w->later, &w->nlater, &w->caplater, e))
		entry_free(e);
}

/*
 * Adds the entries put off to the chunk when it is of their job and they
 * are fresh (not yet idle long enough for another worker to claim them:
 * the heartbeat does not cover them).
 */
static void take_later(struct worker *w)
{
	if (!w->nlater)
		return;
	if (!strcmp(w->later_job, w->job) && mono_ms() - w->later_at < w->o->claim_idle_ms / 2) {
		size_t i = 0;

		for (; i < w->nlater; i++)
			if (entries_push(&w->e, &w->n, &w->cap, &w->later[i]))
				break;
		for (; i < w->nlater; i++)   /* out of memory: left pending */
			entry_free(&w->later[i]);
		w->nlater = 0;
		return;
	}
	later_clear(w);
}

/* Whether a line is a failure (*failed) that another try may cure, and whether it was sent. */
static bool temporary(const char *line, size_t len, bool *failed, bool *unsent)
{
	json_object *j = json_tokener_parse(line), *e, *v;
	const char *type = "";
	long status = 0;
	bool t = false;

	(void)len;
	*unsent = *failed = false;
	if (j && json_object_object_get_ex(j, "error", &e)) {
		*failed = true;
		if (json_object_object_get_ex(e, "type", &v) && json_object_is_type(v, json_type_string))
			type = json_object_get_string(v);
		if (json_object_object_get_ex(e, "status", &v) && json_object_is_type(v, json_type_int))
			status = (long)json_object_get_int64(v);
		*unsent = !strcmp(type, "not_sent");
		t = *unsent || !strcmp(type, "rate_limit_error") || !strcmp(type, "server_error") ||
		    !strcmp(type, "timeout") || !strcmp(type, "connection_error") ||
		    status == 408 || status == 409 || status == 429 || status >= 500;
	}
	json_object_put(j);
	return t;
}

static int store(struct worker *w, const char *eid, const char *key, const char *line, size_t len,
		 bool ok, struct ai_err *err)
{
	return pipe_add(&w->out, 13,
			(const char *[]){ "EVALSHA", shas[SC_STORE], "4", w->k.res, w->k.meta, w->k.items,
					  PFX "active", GROUP, eid, key, line, ok ? "1" : "0", w->job },
			(const size_t[]){ 7, 40, 1, strlen(w->k.res), strlen(w->k.meta), strlen(w->k.items),
					  strlen(PFX "active"), strlen(GROUP), strlen(eid), strlen(key), len,
					  1, strlen(w->job) },
			err);
}

static int requeue(struct worker *w, const struct entry *e, bool unsent, struct ai_err *err)
{
	return pipe_add(&w->out, 10,
			(const char *[]){ "EVALSHA", shas[SC_REQUEUE], "2", w->k.items, w->k.tries, GROUP,
					  e->eid, e->key, e->line, unsent ? "1" : "0" },
			NULL, err);
}

/*
 * The job was deleted under the worker (ai-batch delete --force): it sends
 * no more of its items (on_admit withdraws them) and takes none, the lines
 * still to come are dropped, and the scripts, which look for the job
 * first, write nothing of it again.
 */
static void job_gone(struct worker *w)
{
	if (!w->gone)
		note(w, "job %s was deleted: its items here are dropped", w->job);
	w->gone = true;
}

/* Sends the stores and requeues gathered (waiting out a lost Redis). */
static int flush_out(struct worker *w, struct ai_err *err)
{
	redisReply **r;
	int rc;

	if (!w->out.n)
		return 0;
	if (rq_send(w->q, &w->out, &r, true, err))
		return -1;
	rc = check_replies(r, w->out.n, "storing lines", err);
	for (size_t i = 0; i < w->out.n; i++)
		if (r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer == -1)
			job_gone(w);    /* STORE's answer: no line was stored */
	replies_free(r, w->out.n);
	pipe_reset(&w->out);
	return rc;
}

static void on_line(const char *line, size_t len, void *ud)
{
	struct worker *w = ud;
	struct entry *e;
	bool failed, unsent, temp;

	if (w->fatal.code || w->next >= w->n)
		return;
	e = &w->e[w->next++];
	if (w->gone)
		return;
	temp = temporary(line, len, &failed, &unsent);
	if (unsent)
		w->down = true;
	if (temp && (unsent || e->tries < w->o->max_deliveries)) {
		if (requeue(w, e, unsent, &w->fatal))
			return;
		w->st->requeued++;
		return;
	}
	if (store(w, e->eid, e->key, line, len, !failed, &w->fatal))
		return;
	w->st->stored++;
}

static void on_flush(void *ud)
{
	struct worker *w = ud;

	if (!w->fatal.code)
		flush_out(w, &w->fatal);
}

/*
 * Sends p from inside the engine (admit, pause, progress), where a wait
 * for Redis would stall every request in flight: once, not patient, and
 * after a failure not again for a second.  On failure the caller goes on
 * without Redis (fails open: the items are still ours, their lines are
 * stored by flush_out, which waits).  0 with *r (owned), or -1.
 */
static int quick_send(struct worker *w, struct pipe *p, redisReply ***r)
{
	struct ai_err e;

	if (mono_ms() < w->quiet_until)
		return -1;
	ai_err_clear(&e);
	if (!rq_send(w->q, p, r, false, &e))
		return 0;
	w->quiet_until = mono_ms() + 1000;
	note(w, "%s", e.msg);
	return -1;
}

static void on_pause(long ms, void *ud);

/*
 * A 429's Retry-After pauses our client's pool at once, mid-retry, before
 * the engine hears of it (when the item ends): tell the other workers now.
 */
static void share_pause(struct worker *w)
{
	long ms = w->c ? ai_client_paused_ms(w->c) : 0;

	if (ms > 0 && mono_ms() + ms > w->pause_until + 50)
		on_pause(ms, w);
}

/* Keeps our items fresh while a long chunk runs, so no other worker reclaims them;
 * shares a pause the server asked for. */
static void on_progress(const struct batch_stats *s, bool final, void *ud)
{
	struct worker *w = ud;
	struct pipe p;
	redisReply **r;
	const char **argv;
	size_t n = 0;

	(void)s;
	if (final || w->fatal.code)
		return;
	share_pause(w);
	if (w->next >= w->n || mono_ms() - w->last_beat < w->o->claim_idle_ms / 3)
		return;
	w->last_beat = mono_ms();
	if (!(argv = calloc(w->n - w->next + 8, sizeof(*argv))))
		return;
	argv[n++] = "EVALSHA";
	argv[n++] = shas[SC_BEAT];
	argv[n++] = "1";
	argv[n++] = w->k.items;
	argv[n++] = GROUP;
	argv[n++] = w->q->consumer;
	for (size_t i = w->next; i < w->n; i++)
		argv[n++] = w->e[i].eid;
	pipe_init(&p);
	if (!pipe_add(&p, (int)n, argv, NULL, &w->fatal) && !quick_send(w, &p, &r))
		replies_free(r, p.n);
	pipe_release(&p);
	free(argv);
}

/* The shared limits: 0 to send now, else ms to wait. */
static long on_admit(long est, void *ud)
{
	struct worker *w = ud;
	struct pipe p;
	redisReply **r;
	char rpm[32], tpm[32], e[32], want[16];
	long wait = 0;

	if (w->gone)
		return -1;
	if (w->fatal.code)
		return 0;
	share_pause(w);
	if (w->granted > 0 && w->pause_until <= mono_ms()) {
		w->granted--;
		return 0;
	}
	if (w->bo.rpm <= 0 && w->bo.tpm <= 0) {
		int64_t now = mono_ms();

		/* No budget of our own to take: only the server's pauses, which another
		 * worker may have met; looked at in Redis every PAUSE_LOOK_MS at most. */
		if (w->pause_until > now)
			return (long)(w->pause_until - now);
		if (now - w->pause_look < PAUSE_LOOK_MS)
			return 0;
		w->pause_look = now;
	}
	snprintf(rpm, sizeof(rpm), "%.6f", w->bo.rpm);
	snprintf(tpm, sizeof(tpm), "%.3f", w->bo.tpm);
	snprintf(e, sizeof(e), "%ld", est);
	snprintf(want, sizeof(want), "%d", w->o->parallel);
	pipe_init(&p);
	if (!PIPE(&p, &w->fatal, "EVALSHA", shas[SC_BUCKET], "2", w->k.rl, w->k.meta, rpm, tpm, e, want) &&
	    !quick_send(w, &p, &r)) {
		if (r[0]->type == REDIS_REPLY_STRING && !strcmp(r[0]->str, "gone"))
			job_gone(w);
		else if (r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer > 0)
			wait = (long)r[0]->integer;
		else if (r[0]->type == REDIS_REPLY_INTEGER)
			w->granted = (long)-r[0]->integer - 1;  /* one of them is this request's */
		else
			reply_err(r[0], "the rate limit script", &w->fatal);
		replies_free(r, 1);
	}
	pipe_release(&p);
	if (w->gone)
		return -1;
	if (wait > 60000)
		wait = 60000;
	if (wait > 0 && w->bo.rpm <= 0 && w->bo.tpm <= 0)
		w->pause_until = mono_ms() + wait;
	return wait;
}

static void on_pause(long ms, void *ud)
{
	struct worker *w = ud;
	struct pipe p;
	redisReply **r;
	char m[32];

	if (w->fatal.code || w->gone || ms <= 0)
		return;
	if (mono_ms() + ms > w->pause_until)
		w->pause_until = mono_ms() + ms;
	snprintf(m, sizeof(m), "%ld", ms);
	pipe_init(&p);
	if (!PIPE(&p, &w->fatal, "EVALSHA", shas[SC_PAUSE], "2", w->k.rl, w->k.meta, m) &&
	    !quick_send(w, &p, &r)) {
		if (r[0]->type == REDIS_REPLY_STRING && !strcmp(r[0]->str, "gone"))
			job_gone(w);
		replies_free(r, 1);
	}
	pipe_release(&p);
}

/*
 * Opens job id for the items taken: 0, 1 when its options are refused
 * (unreadable, or job_open said no: its items get an error line), 2 when
 * the job was deleted meanwhile (job_gone), -1 when Redis is lost for good.
 */
static int job_start(struct worker *w, const char *id, struct ai_err *err)
{
	struct pipe p;
	redisReply **r;
	json_object *args = NULL;
	int rc;

	if (w->open && !strcmp(w->job, id))
		return 0;
	if (w->open)
		w->o->job_close(w->c, w->o->ud);
	w->open = false;
	w->c = NULL;
	w->granted = 0;
	w->gone = false;
	snprintf(w->job, sizeof(w->job), "%s", id);
	if (job_keys(&w->k, id, err))
		return -1;
	if (!strcmp(w->refused, id))
		return 1;
	pipe_init(&p);
	if (PIPE(&p, err, "HGET", w->k.meta, "args") || rq_send(w->q, &p, &r, true, err)) {
		pipe_release(&p);
		return -1;
	}
	pipe_release(&p);
	if (r[0]->type == REDIS_REPLY_NIL) {
		/* Deleted between TAKE and now: dropped, not refused (no error lines for it). */
		replies_free(r, 1);
		job_gone(w);
		return 2;
	}
	if (r[0]->type != REDIS_REPLY_STRING || !(args = json_tokener_parse(r[0]->str)) ||
	    !json_object_is_type(args, json_type_array)) {
		ai_errf(err, AI_EX_DATAERR, "the job's options cannot be read");
		rc = -1;
	} else {
		memset(&w->bo, 0, sizeof(w->bo));
		rc = w->o->job_open(args, &w->bo, &w->c, w->o->ud, err);
	}
	replies_free(r, 1);
	json_object_put(args);
	if (rc) {
		/* A job anyone with access to Redis may have written: the worker goes on. */
		snprintf(w->refused, sizeof(w->refused), "%s", id);
		snprintf(w->why, sizeof(w->why), "%s", err->msg[0] ? err->msg : "its options are refused");
		ai_err_clear(err);
		note(w, "job %s refused: %s", id, w->why);
		return 1;
	}
	w->open = true;
	note(w, "working on job %s", id);
	return 0;
}

static int refuse(struct worker *w, size_t from, struct ai_err *err);

/*
 * Takes items of job id: 1 with items, 0 none (*done: the job is over), -1
 * error.  They are appended to the chunk (w->e from w->n on).
 */
static int take(struct worker *w, const char *id, bool own, bool *done, struct ai_err *err)
{
	struct keys k;
	struct pipe p;
	redisReply **r;
	const redisReply *a;
	char count[16], idle[32];
	size_t had = w->n;
	int rc = -1, refused = 0;

	*done = false;
	if (job_keys(&k, id, err))
		return -1;
	snprintf(count, sizeof(count), "%d", w->o->parallel);
	snprintf(idle, sizeof(idle), "%ld", w->o->claim_idle_ms);
	pipe_init(&p);
	if (PIPE(&p, err, "EVALSHA", shas[SC_TAKE], "5", k.meta, k.items, k.tries, k.res, k.rl,
		 GROUP, w->q->consumer, count, idle, own ? "0" : ">") ||
	    rq_send(w->q, &p, &r, true, err)) {
		pipe_release(&p);
		return -1;
	}
	pipe_release(&p);
	a = r[0];
	if (a->type != REDIS_REPLY_ARRAY || a->elements < 1 || !strings_from(a, 0)) {
		reply_err(a, "taking items", err);
		goto out;
	}
	if (a->elements < 4) {          /* gone: removed from under us */
		if (!strcmp(id, w->job))
			job_gone(w);
		if (w->nlater && !strcmp(id, w->later_job))
			later_clear(w);
		*done = true;
		rc = 0;
		goto out;
	}
	{
		long total = reply_long(a->element[1]), got = reply_long(a->element[2]);
		long pause = reply_long(a->element[3]);

		*done = !strcmp(a->element[0]->str, "cancelled") || got >= total;
		if (pause > 0 && pause < 3600000)
			w->pause_until = mono_ms() + pause;
	}
	if (a->elements > 4 && (refused = job_start(w, id, err)) < 0)
		goto out;
	if (refused == 2) {             /* gone: what was taken goes with it */
		*done = true;
		rc = 0;
		goto out;
	}
	for (size_t i = 4; i + 3 < a->elements; i += 4) {
		struct entry *e;

		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 64;
			struct entry *ne = realloc(w->e, cap * sizeof(*ne));

			if (!ne) {
				ai_errf(err, AI_EX_OSERR, "out of memory");
				goto out;
			}
			w->e = ne;
			w->cap = cap;
		}
		e = &w->e[w->n];
		e->eid = strdup(a->element[i]->str);
		e->key = strdup(a->element[i + 1]->str);
		e->line = strndup(a->element[i + 2]->str, a->element[i + 2]->len);
		e->tries = reply_long(a->element[i + 3]);
		w->n++;
		if (!e->eid || !e->key || !e->line) {
			ai_errf(err, AI_EX_OSERR, "out of memory");
			goto out;
		}
	}
	rc = w->n > had;
	if (rc && refused && refuse(w, had, err))
		rc = -1;
out:
	replies_free(r, 1);
	return rc;
}

/* pwrite(2) of all n bytes at off: the engine reads the same file at its own offset. */
static int pwrite_all(int fd, const char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static void entry_free(struct entry *e)
{
	free(e->eid);
	free(e->key);
	free(e->line);
}

/* An item's error line of type, stored without a request: it is not tried (again). */
static int give_up(struct worker *w, struct entry *e, const char *type, const char *msg, int attempts,
		   struct ai_err *err)
{
	struct buf l;
	json_object *item = json_tokener_parse(e->line), *iv = NULL;
	int rc;

	buf_init(&l, 0);
	if (item && json_object_is_type(item, json_type_object))
		json_object_object_get_ex(item, "id", &iv);
	iv = iv ? json_object_get(iv) : json_object_new_string(e->key);
	rc = !iv || jsonl_err_line(&l, iv, 0, type, msg, attempts) ? -1 :
	     store(w, e->eid, e->key, l.data, l.len, false, err);
	if (rc && !err->code)
		ai_errf(err, AI_EX_OSERR, "out of memory");
	json_object_put(iv);
	json_object_put(item);
	buf_release(&l);
	return rc;
}

/* A poison item's line: given up on without another try. */
static int poison(struct worker *w, struct entry *e, struct ai_err *err)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "taken %ld times without a result (its worker died each time): "
		 "given up", e->tries - 1);
	if (give_up(w, e, "poison", msg, (int)(e->tries - 1), err))
		return -1;
	w->st->poison++;
	note(w, "job %s: item '%.80s' is poison", w->job, e->key);
	return 0;
}

/* The items taken from index from on, of a job whose options were refused: each its error line. */
static int refuse(struct worker *w, size_t from, struct ai_err *err)
{
	char msg[320];
	int rc = 0;

	snprintf(msg, sizeof(msg), "the job was refused: %s", w->why);
	for (size_t i = from; i < w->n; i++) {
		if (!rc && give_up(w, &w->e[i], "job_refused", msg, 0, err))
			rc = -1;
		if (!rc)
			w->st->refused++;
		entry_free(&w->e[i]);
	}
	w->n = from;
	return rc || flush_out(w, err) ? -1 : 0;
}

/*
 * Sorts the entries taken, from index from on: poison items get their line,
 * an id already in this run is put off to the next run (put_off), the rest
 * are appended to the chunk's file for the engine.  The number kept.
 */
static long admit_entries(struct worker *w, size_t from, struct ai_err *err)
{
	size_t keep = from;
	long kept = 0;

	for (size_t i = from; i < w->n; i++) {
		struct entry *e = &w->e[i];
		int dup = jsonl_idset_add(&w->seen, e->key, strlen(e->key));

		if (dup < 0)
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		if (dup) {
			put_off(w, e);
			continue;
		}
		if (e->tries > w->o->max_deliveries || !e->line[0]) {
			if (!dup && !e->line[0] &&
			    give_up(w, e, "invalid_input", "the item's entry in Redis has no line", 0, err))
				return -1;
			if (!dup && e->line[0] && poison(w, e, err))
				return -1;
			entry_free(e);
			continue;
		}
		if (pwrite_all(w->tmp, e->line, strlen(e->line), w->tmp_len) ||
		    pwrite_all(w->tmp, "\n", 1, w->tmp_len + strlen(e->line)))
			return ai_errf_errno(err, AI_EX_IOERR, "cannot write the chunk's temporary file");
		w->tmp_len += strlen(e->line) + 1;
		w->e[keep++] = *e;
		kept++;
	}
	w->n = keep;
	return kept;
}

/* The engine ran out of items with a slot free: more of the same job, while the run is short. */
static int on_more(void *ud)
{
	struct worker *w = ud;
	size_t had = w->n;
	bool done;
	long kept;
	int got;

	/* A run ends after 64 times -P items (memory stays bounded), or once the server
	 * stopped answering (what is taken then only goes back). */
	if (w->fatal.code || w->down || w->gone || w->n >= (size_t)w->o->parallel * 64 || stopped(w->q))
		return 0;
	got = take(w, w->job, false, &done, &w->fatal);
	if (got <= 0)
		return 0;
	if ((kept = admit_entries(w, had, &w->fatal)) < 0 || flush_out(w, &w->fatal))
		return 0;
	return 1;       /* even if all were poison: ask again, the stream may hold more */
}

/* Runs the items taken (and those on_more adds) through the engine. */
static int run_chunk(struct worker *w, struct ai_err *err)
{
	struct batch b;
	struct batch_opts bo = w->bo;
	long kept;
	int rc = 0;

	jsonl_idset_release(&w->seen);
	jsonl_idset_init(&w->seen);
	w->next = 0;
	w->tmp_len = 0;
	if (ftruncate(w->tmp, 0) || lseek(w->tmp, 0, SEEK_SET) < 0)
		return ai_errf_errno(err, AI_EX_IOERR, "cannot reuse the chunk's temporary file");
	take_later(w);
	if ((kept = admit_entries(w, 0, err)) < 0 || flush_out(w, err))
		return -1;
	if (!kept)
		return 0;
	bo.parallel = w->o->parallel;
	bo.unordered = false;
	bo.state = NULL;
	bo.window = 0;
	bo.emit = on_line;
	bo.flush = on_flush;
	bo.progress = on_progress;
	bo.progress_ms = PAUSE_LOOK_MS;    /* the heartbeat is due less often: on_progress */
	bo.admit = on_admit;
	bo.pause = on_pause;
	bo.more = on_more;
	bo.ud = w;
	ai_err_clear(&w->fatal);
	w->down = false;
	w->last_beat = mono_ms();
	if (batch_open(&b, &bo, w->tmp, err))
		return -1;
	rc = batch_run(&b, w->c, err);
	w->st->items += b.st.done;
	batch_close(&b);
	if (w->gone && w->nlater && !strcmp(w->later_job, w->job))
		later_clear(w);
	if (!w->fatal.code)
		flush_out(w, &w->fatal);
	if (w->fatal.code) {
		*err = w->fatal;
		return -1;
	}
	return rc;
}

static int make_tmp(struct ai_err *err)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ai-batch-worker.XXXXXX", dir && *dir ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0)
		return ai_errf(err, AI_EX_IOERR, "cannot create a temporary file in '%s': %s (set TMPDIR)",
			       dir && *dir ? dir : "/tmp", strerror(errno));
	unlink(path);
	return fd;
}

/* The jobs to serve: o->job alone, else every active one. */
static int active_jobs(struct worker *w, char ***ids, size_t *n, struct ai_err *err)
{
	struct pipe p;
	redisReply **r;
	char **v;
	int rc = -1;

	*ids = NULL;
	*n = 0;
	if (w->o->job) {
		if (!(v = calloc(1, sizeof(*v))) || !(v[0] = strdup(w->o->job))) {
			free(v);
			return ai_errf(err, AI_EX_OSERR, "out of memory");
		}
		*ids = v;
		*n = 1;
		return 0;
	}
	pipe_init(&p);
	if (PIPE(&p, err, "SMEMBERS", PFX "active") || rq_send(w->q, &p, &r, true, err))
		goto out;
	if (!strings_from(r[0], 0)) {
		reply_err(r[0], "SMEMBERS", err);
		replies_free(r, 1);
		goto out;
	}
	if ((v = calloc(r[0]->elements + 1, sizeof(*v)))) {
		for (size_t i = 0; i < r[0]->elements; i++)
			v[(*n)++] = strdup(r[0]->element[i]->str);
		*ids = v;
		rc = 0;
		for (size_t i = 0; i < *n; i++)
			if (!v[i])
				rc = ai_errf(err, AI_EX_OSERR, "out of memory");
	} else {
		ai_errf(err, AI_EX_OSERR, "out of memory");
	}
	replies_free(r, 1);
out:
	pipe_release(&p);
	return rc;
}

int redisq_work(struct redisq *q, const struct redisq_worker_opts *o, struct redisq_worker_stats *st,
		struct ai_err *err)
{
	struct worker w;
	long reconnects = q->reconnects, idle_ms = 50, down_ms = 0;
	int rc = -1;
	bool own = true;        /* first, what this consumer left pending (a reconnect) */

	memset(&w, 0, sizeof(w));
	memset(st, 0, sizeof(*st));
	w.q = q;
	w.o = o;
	w.st = st;
	pipe_init(&w.out);
	jsonl_idset_init(&w.seen);
	if ((w.tmp = make_tmp(err)) < 0)
		return -1;
	for (;;) {
		char **ids;
		size_t n;
		bool worked = false, all_done = true;

		if (stopped(q)) {
			rc = ai_errf(err, AI_EX_INTERRUPT, "interrupted");
			break;
		}
		if (q->reconnects != reconnects) {
			reconnects = q->reconnects;
			own = true;
		}
		if (active_jobs(&w, &ids, &n, err))
			break;
		for (size_t i = 0; i < n && !worked; i++) {
			bool done;
			int got = take(&w, ids[i], own, &done, err);

			if (got < 0) {
				for (size_t j = 0; j < n; j++)
					free(ids[j]);
				free(ids);
				goto out;
			}
			if (!done)
				all_done = false;
			/* Nothing new, but items put off for this job: a run for them. */
			if (!got && w.nlater && w.open && !strcmp(w.later_job, ids[i]) && !strcmp(w.job, ids[i]))
				got = 1;
			if (got > 0) {
				worked = true;
				if (run_chunk(&w, err)) {
					for (size_t j = 0; j < n; j++)
						free(ids[j]);
					free(ids);
					goto out;
				}
				chunk_clear(&w);
			}
		}
		for (size_t j = 0; j < n; j++)
			free(ids[j]);
		free(ids);
		if (worked) {
			idle_ms = 50;
			if (w.down) {
				/* The server stopped answering: its items went back; wait before more. */
				down_ms = down_ms ? (down_ms * 2 > 30000 ? 30000 : down_ms * 2) : 1000;
				note(&w, "the server is not answering; waiting %ld ms", down_ms);
				sleep_ms(down_ms);
			} else {
				down_ms = 0;
			}
			continue;
		}
		if (own) {
			own = false;    /* nothing of ours was pending: now new and reclaimed items */
			continue;
		}
		if (o->job && all_done) {
			rc = 0;
			break;
		}
		sleep_ms(idle_ms);
		idle_ms = idle_ms * 2 > 500 ? 500 : idle_ms * 2;
	}
out:
	chunk_clear(&w);
	free(w.e);
	later_clear(&w);
	free(w.later);
	jsonl_idset_release(&w.seen);
	pipe_release(&w.out);
	if (w.open)
		o->job_close(w.c, o->ud);
	close(w.tmp);
	return rc;
}
