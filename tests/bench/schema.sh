#!/bin/sh
# tests/bench/schema.sh [O] [BIN] - what checking a structured reply costs:
# tests/bench/schema_bench.c, validation of a reply against a 20-property
# schema (goal, issue 12: under 5 us), parse + validation, and compiling the
# schema.  N (default 20000) calls a round, ROUNDS (default 15) rounds.
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${1:-build}
case $O in /*) ;; *) O="$top/$O" ;; esac
. "$top/tests/bench/lib.sh"
if bench_build schema_bench schema_bench.c; then
	echo "# schema: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$O/bench/schema_bench" "${N:-20000}" "${ROUNDS:-15}" || echo "schema: schema_bench exited $?"
else
	echo "schema: cannot build schema_bench; skipped"
fi
exit 0
