#!/bin/sh
# tests/bench/sse-bench.sh [O] [CHUNKS] - what reading a chat stream costs per event.
# Builds tests/bench/sse_bench.c against O/libai.a (default build/) and prints
# figures.  A benchmark, not a test: it never fails a build (always exits 0).
O=${1:-build}
CHUNKS=${2:-200000}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 0
if ! make --no-print-directory -s "$O/libai.a" >/dev/null 2>&1; then
	echo "sse-bench: cannot build $O/libai.a; skipped"
	exit 0
fi
exe="$O/bench/sse_bench"
mkdir -p "$O/bench"
# shellcheck disable=SC2046
if ! ${CC:-cc} -std=c11 -O2 -g -Icommon $(pkg-config --cflags json-c) -o "$exe" \
	tests/bench/sse_bench.c "$O/libai.a" $(pkg-config --libs json-c libsodium sqlite3) -ldl -lm -lpthread; then
	echo "sse-bench: cannot build $exe; skipped"
	exit 0
fi
echo "# sse-bench: $exe $CHUNKS"
"$exe" "$CHUNKS" || echo "sse-bench: $exe exited $?"
exit 0
