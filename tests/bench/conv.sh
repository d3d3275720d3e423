#!/bin/sh
# tests/bench/conv.sh [O] [BIN] - what keeping conversations costs each
# ai-stream run, and what ai-usage --log's search costs as the store grows:
# tests/bench/conv_bench.c over N (default 10000) exchanges, then a
# store ten times larger (N10, default 100000) to see how the search scales.
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${1:-build}
case $O in /*) ;; *) O="$top/$O" ;; esac
. "$top/tests/bench/lib.sh"
if bench_build conv_bench conv_bench.c; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/conv-bench.XXXXXX") || exit 0
	trap 'rm -rf "$tmp"' EXIT INT TERM
	echo "# conv: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$O/bench/conv_bench" "$tmp" "${N:-10000}" || echo "conv: conv_bench exited $?"
	"$O/bench/conv_bench" "$tmp" "${N10:-100000}" || echo "conv: conv_bench exited $?"
else
	echo "conv: cannot build conv_bench; skipped"
fi
exit 0
