#!/bin/sh
# tests/bench/ledger.sh [O] [BIN] - what writing the usage ledger costs a call.
#
# Whole processes against the test server at zero latency, in a private
# HOME, each pair run in alternation by tests/bench/spawn_ab.c (wall and
# CPU time; on a loaded machine trust the CPU figures):
#  - a cache hit with AI_LEDGER=0 against the same with the ledger on;
#  - a request to the server (AI_CACHE=0), ledger off against on.
# Target (issue 3): the ledger adds at most 0.5 ms per call.  Then
# tests/bench/ledger_bench.c: the ledger's own in-process figures (append
# on an open connection, open + append + close, four writers at once).
# RUNS (default 200) pairs each.
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
bench_paths "${1:-build}" "${2:-bin}"
RUNS=${RUNS:-200}
say() { echo "ledger: $*"; }

main() {
	bench_build spawn_ab spawn_ab.c || { say "cannot build spawn_ab; skipped"; return 0; }
	bench_hit ledger-bench || return 0
	ab="$O/bench/spawn_ab"
	echo "# ledger: $RUNS runs each, $(bench_machine)"
	echo "## A: a cache hit with AI_LEDGER=0, B: the same with the ledger on"
	"$ab" "$RUNS" "hit, AI_LEDGER=0" "hit, ledger on" env AI_LEDGER=0 "$s" "$tmp/in" -- \
		env AI_LEDGER=1 "$s" "$tmp/in"
	echo "## A: a request (AI_CACHE=0) with AI_LEDGER=0, B: the same with the ledger on"
	"$ab" "$RUNS" "miss, AI_LEDGER=0" "miss, ledger on" env AI_CACHE=0 AI_LEDGER=0 "$s" "$tmp/in" -- \
		env AI_CACHE=0 AI_LEDGER=1 "$s" "$tmp/in"
	echo "# the ledger after these runs: $(ls -l "$XDG_DATA_HOME/ai" | awk 'NR > 1 { printf "%s %s B; ", $NF, $5 }')"
	if bench_build ledger_bench ledger_bench.c; then
		echo "# ledger_bench (in-process, 2000 appends)"
		"$O/bench/ledger_bench" "$tmp" 2000 || say "ledger_bench exited $?"
	fi
}

main
exit 0
