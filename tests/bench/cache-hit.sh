#!/bin/sh
# tests/bench/cache-hit.sh [O] [BIN] - what a cache hit costs a whole process.
#
# Whole processes against the test server at zero latency, in a private
# HOME, each pair run in alternation by tests/bench/spawn_ab.c (wall and
# CPU time; on a loaded machine trust the CPU figures):
#  - noop (tests/bench/noop_main.c: returns at once, links the same
#    libraries: the fastest possible start) against a hit, ledger off;
#  - ai-summarize --version against the same hit;
#  - a hit against a miss with the cache off (AI_CACHE=0), ledger off.
# Target (issue 3): a hit adds at most 1 ms over the fastest start.
# The ledger's share is measured by ledger.sh.  Then tests/bench/cache_bench.c:
# the cache's own in-process figures.  RUNS (default 200) pairs each.
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
bench_paths "${1:-build}" "${2:-bin}"
RUNS=${RUNS:-200}
say() { echo "cache-hit: $*"; }

main() {
	bench_build noop_main noop_main.c && bench_build spawn_ab spawn_ab.c ||
		{ say "cannot build noop_main and spawn_ab; skipped"; return 0; }
	bench_hit cache-hit || return 0
	ab="$O/bench/spawn_ab"
	echo "# cache-hit: $RUNS runs each, $(bench_machine)"
	echo "## A: the fastest start (noop), B: a cache hit, ledger off"
	"$ab" "$RUNS" "noop" "hit, AI_LEDGER=0" env AI_LEDGER=0 "$O/bench/noop_main" -- \
		env AI_LEDGER=0 "$s" "$tmp/in"
	echo "## A: ai-summarize --version, B: a cache hit, ledger off"
	"$ab" "$RUNS" "--version" "hit, AI_LEDGER=0" env AI_LEDGER=0 "$s" --version -- \
		env AI_LEDGER=0 "$s" "$tmp/in"
	echo "## A: a cache hit, B: the cache off, a request to a 0 ms server (both ledger off)"
	"$ab" "$RUNS" "hit, AI_LEDGER=0" "AI_CACHE=0, AI_LEDGER=0" env AI_LEDGER=0 "$s" "$tmp/in" -- \
		env AI_LEDGER=0 AI_CACHE=0 "$s" "$tmp/in"
	if bench_build cache_bench cache_bench.c; then
		echo "# cache_bench (in-process)"
		"$O/bench/cache_bench" || say "cache_bench exited $?"
	fi
}

main
exit 0
