#!/bin/sh
# tests/bench/scale.sh [O] [BIN] - the ledger, the cache and ai-batch at a
# million calls a day (issue 20).  Prints figures; never fails.
#
#  - ledger: tests/bench/scale_gen.c fills a ledger with SCALE_N calls
#    (default 1,000,000) over one day through the real append path
#    (1,000-call transactions, pruning on), and reports CPU a call, bytes on
#    disk a call, the budget check, single and batched appends, and the fold
#    of the same rows as a schema-1 ledger (a first open after upgrading).
#    Then that day's rollups are copied onto the 29 days before it: the
#    rollups of a month at SCALE_N calls a day (what ai-usage reads; the
#    raw rows are not read), and ai-usage is timed on them, default view and
#    --since today; the first run, which compacts the ended days into day
#    rollups (schema 3), is shown apart.  With BEFORE_BIN=DIR (an older build's bin/), its
#    ai-usage is timed on the schema-1 copy too.  Goals: a month < 100 ms,
#    today < 50 ms, the budget check < 0.5 ms.
#  - cache: SCALE_CACHE answers of 370 bytes (default 20,000): bytes on disk
#    an entry, CPU a hit (goal 10 us); then tests/bench/cache_sqlite.c, the
#    same in files and in one SQLite file (the issue's proposal): put, warm
#    hit, one-shot open + hit + close.
#  - ai-batch: peak RSS at each of SCALE_BATCH items (default "100000
#    1000000"), -P 64, --state, an instant test server (goal <= 32 MB, flat).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
bench_paths "${1:-build}" "${2:-bin}"
N=${SCALE_N:-1000000}
NC=${SCALE_CACHE:-20000}
NB=${SCALE_BATCH:-100000 1000000}
say() { echo "scale: $*"; }

# cpu CMD...: "WALL s wall, CPU s CPU" of one run (GNU time), output discarded.
cpu() {
	/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err"
	awk '{ printf "%.3f s wall, %.3f s CPU, %.1f MB peak RSS", $1, $2 + $3, $4 / 1024 }' "$tmp/time"
}

ledger() {
	db=$tmp/usage.db
	gen=$O/bench/scale_gen
	"$gen" fill "$db" "$N" 1 30 || return
	sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
	calls=$(sqlite3 "$db" 'SELECT count(*) FROM calls')
	bytes=$(sqlite3 "$db" "SELECT sum(pgsize) FROM dbstat WHERE name IN ('calls', 'calls_ts')" 2>/dev/null)
	roll=$(sqlite3 "$db" "SELECT sum(pgsize) FROM dbstat WHERE name IN ('rollup', 'rollup_lat', 'spend', 'rollup_day', 'rollup_lat_day')" 2>/dev/null)
	[ -n "$bytes" ] && say "ledger: $(awk -v b="$bytes" -v r="$roll" -v n="$calls" 'BEGIN {
		printf "%.0f bytes on disk a raw row (kept ledger_keep days), %.1f bytes a call in rollups (kept)", b / n, r / n }')"
	"$gen" budget "$db" 5000
	# A schema-1 copy (the raw rows alone) for the fold and for the older ai-usage.
	sqlite3 "$tmp/v1.db" "PRAGMA journal_mode=WAL; ATTACH '$db' AS n;
		CREATE TABLE calls (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, program TEXT, model TEXT,
			host TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,
			latency_ms INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 0,
			cached INTEGER NOT NULL DEFAULT 0, batch INTEGER NOT NULL DEFAULT 0, cost REAL,
			saved REAL, prompt TEXT);
		INSERT INTO calls SELECT id, ts_ms, program, model, host, prompt_tokens, completion_tokens,
			latency_ms, status, cached, batch, cost, saved, prompt FROM n.calls;
		CREATE INDEX calls_ts ON calls(ts_ms, cost); PRAGMA user_version = 1;" >/dev/null
	if [ -n "${BEFORE_BIN:-}" ] && [ -x "$BEFORE_BIN/ai-usage" ]; then
		say "before: ai-usage (raw rows, $calls calls): $(cpu "$BEFORE_BIN/ai-usage" --db "$tmp/v1.db" --json)"
	fi
	cp "$tmp/v1.db" "$tmp/fold.db"
	say "fold of a schema-1 ledger of $calls calls: $("$gen" fold "$tmp/fold.db")"
	# The month: this day's rollups copied onto the 29 days before it.
	h1=$(sqlite3 "$db" 'SELECT max(hour) FROM rollup')
	# The day is the last 24 hours; the partial hour before them goes, or its copy would collide.
	sqlite3 "$db" "DELETE FROM rollup WHERE hour <= $h1 - 24; DELETE FROM rollup_lat WHERE hour <= $h1 - 24;
		DELETE FROM spend WHERE hour <= $h1 - 24;"
	i=1
	while [ $i -lt 30 ]; do
		echo "INSERT INTO rollup SELECT hour - 24 * $i, program, model, host, status, cached, batch, n,
			tokens_in, tokens_out, cost, cost_n, saved, saved_n, lat_sum, first_ms - 86400000 * $i,
			last_ms - 86400000 * $i, tokens_cached, cached_n, tokens_reason, reason_n
			FROM rollup WHERE hour > $h1 - 24;
		INSERT INTO rollup_lat SELECT hour - 24 * $i, program, model, hist, lat_min, lat_max
			FROM rollup_lat WHERE hour > $h1 - 24;
		INSERT INTO spend SELECT hour - 24 * $i, cost FROM spend WHERE hour > $h1 - 24;"
		i=$((i + 1))
	done | sqlite3 "$db"
	say "a month of rollups: $(sqlite3 "$db" 'SELECT count(*) || " rows, " || sum(n) || " calls" FROM rollup')"
	# The first report compacts the ended days into day rollups (once a day in use; here 29 days at once).
	say "ai-usage, a month, first report (compacts the ended days): $(cpu "$BIN/ai-usage" --db "$db" --json)"
	say "day rollups: $(sqlite3 "$db" 'SELECT count(*) || " rows" FROM rollup_day')"
	for k in 1 2 3; do
		say "ai-usage, a month: $(cpu "$BIN/ai-usage" --db "$db" --json)"
	done
	for k in 1 2 3; do
		say "ai-usage --since today: $(cpu "$BIN/ai-usage" --db "$db" --since today --json)"
	done
	"$gen" write "$tmp/w.db" 5000
}

batch() {
	bench_server "$tmp" || { say "the test server did not start; ai-batch skipped"; return; }
	for n in $NB; do
		awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"id\":\"i%d\",\"text\":\"item %d\"}\n", i, i }' >"$tmp/in.jsonl"
		rm -f "$tmp/state"
		say "ai-batch, $n items, -P 64 --state: $(cpu env AI_LEDGER=0 "$BIN/ai-batch" -q --no-cache -P 64 --state "$tmp/state" "$tmp/in.jsonl")"
		say "ai-batch, $n items, resumed from a whole journal: $(cpu env AI_LEDGER=0 "$BIN/ai-batch" -q --no-cache -P 64 --state "$tmp/state" "$tmp/in.jsonl")"
	done
	bench_stop
}

main() {
	[ -x /usr/bin/time ] || { say "needs GNU time; skipped"; return 0; }
	command -v sqlite3 >/dev/null || { say "needs sqlite3; skipped"; return 0; }
	bench_build scale_gen scale_gen.c || { say "cannot build scale_gen; skipped"; return 0; }
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/scale-bench.XXXXXX") || return 0
	trap 'bench_stop; rm -rf "$tmp"' EXIT INT TERM
	bench_home "$tmp"
	echo "# scale: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	ledger
	"$O/bench/scale_gen" cache "$tmp/cache" "$NC"
	# The same answers in today's files and in the one SQLite file the issue proposes.
	if bench_build cache_sqlite cache_sqlite.c; then
		mkdir -p "$tmp/cs" && "$O/bench/cache_sqlite" "$tmp/cs" "$NC"
	fi
	batch
}

main
exit 0
