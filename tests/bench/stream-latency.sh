#!/bin/sh
# tests/bench/stream-latency.sh [O] [BIN] [CHUNKS] [SPACING_US] - time from a
# chunk leaving the server to its bytes on ai-stream's stdout (target: under
# 1 ms at the median and p99).  Builds tests/bench/stream-latency.c, which
# plays the server in-process and reads ai-stream's stdout from a pipe, then
# measures plain text, --json and --sse output.  A benchmark, not a test: it
# never fails a build (always exits 0).
O=${1:-build}
BIN=${2:-bin}
CHUNKS=${3:-1000}
SPACING=${4:-2000}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 0
if ! make --no-print-directory -s "$BIN/ai-stream" >/dev/null 2>&1 && [ ! -x "$BIN/ai-stream" ]; then
	echo "stream-latency: cannot build $BIN/ai-stream; skipped"
	exit 0
fi
exe="$O/bench/stream-latency"
mkdir -p "$O/bench"
if ! ${CC:-cc} -std=c11 -O2 -g -Icommon -o "$exe" tests/bench/stream-latency.c \
	common/fdio.c common/buf.c common/err.c common/utf8.c; then
	echo "stream-latency: cannot build $exe; skipped"
	exit 0
fi
echo "# stream-latency: $CHUNKS chunks, $SPACING us apart ($(nproc 2>/dev/null || echo ?) CPUs, load $(cut -d' ' -f1 /proc/loadavg 2>/dev/null))"
for mode in text --json --sse; do
	if [ "$mode" = text ]; then
		printf '%-6s ' text
		"$exe" "$BIN/ai-stream" "$CHUNKS" "$SPACING" | tail -n 1
	else
		printf '%-6s ' "$mode"
		"$exe" "$BIN/ai-stream" "$CHUNKS" "$SPACING" "$mode" | tail -n 1
	fi || echo "stream-latency: $exe exited $?"
done
exit 0
