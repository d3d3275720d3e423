#!/bin/sh
# tests/bench/markdown.sh [O] [BIN] - what rendering Markdown on a terminal
# costs a streamed answer: the latency from a newline's arrival to its
# rendered line (goal < 1 ms) and the renderer's throughput on one core
# (goal >= 100 MB/s), from tests/bench/markdown_bench.c.
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${1:-build}
case $O in /*) ;; *) O="$top/$O" ;; esac
. "$top/tests/bench/lib.sh"

if bench_build markdown_bench markdown_bench.c; then
	echo "# markdown: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$O/bench/markdown_bench" || echo "markdown: markdown_bench exited $?"
else
	echo "markdown: cannot build markdown_bench; skipped"
fi
exit 0
