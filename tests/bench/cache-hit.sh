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
O=${1:-build}
BIN=${2:-bin}
case $O in /*) ;; *) O="$top/$O" ;; esac
case $BIN in /*) ;; *) BIN="$top/$BIN" ;; esac
RUNS=${RUNS:-200}
say() { echo "cache-hit: $*"; }

build() {
	mkdir -p "$O/bench" || return 1
	[ -f "$O/libai.a" ] || make -C "$top" -s "$O/libai.a" O="$O" >/dev/null 2>&1 || return 1
	# shellcheck disable=SC2046
	${CC:-cc} -std=c11 -O2 -I"$top/common" $(pkg-config --cflags json-c libsodium) -o "$O/bench/$1" \
		"$top/tests/bench/$2" "$O/libai.a" -Wl,--no-as-needed \
		$(pkg-config --libs json-c libsodium sqlite3) -ldl -lm -lpthread
}

main() {
	build noop_main noop_main.c && build spawn_ab spawn_ab.c ||
		{ say "cannot build noop_main and spawn_ab; skipped"; return 0; }
	[ -x "$BIN/ai-summarize" ] && [ -x "$O/tests/ai-testserver" ] ||
		{ say "needs $BIN/ai-summarize and $O/tests/ai-testserver (make all $O/tests/ai-testserver); skipped"; return 0; }
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/cache-hit.XXXXXX") || return 0
	srv=
	trap '[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
	export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/home/.cache" XDG_DATA_HOME="$tmp/home/.local/share" \
		XDG_CONFIG_HOME="$tmp/home/.config" OPENAI_API_KEY=sk-bench NO_PROXY=127.0.0.1
	unset AI_CACHE AI_LEDGER AI_CACHE_TTL AI_BUDGET_DAILY http_proxy HTTP_PROXY
	mkdir -p "$XDG_CONFIG_HOME"
	"$O/tests/ai-testserver" --port-file "$tmp/port" --exit-with-parent </dev/null >/dev/null 2>&1 &
	srv=$!
	i=0
	while [ ! -s "$tmp/port" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
	[ -s "$tmp/port" ] || { say "the test server did not start; skipped"; return 0; }
	export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")/v1"
	echo "A short text to summarize, the same every time." >"$tmp/in"
	s="$BIN/ai-summarize"
	"$s" "$tmp/in" >/dev/null || { say "ai-summarize failed; skipped"; return 0; }
	ab="$O/bench/spawn_ab"
	echo "# cache-hit: $RUNS runs each, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "## A: the fastest start (noop), B: a cache hit, ledger off"
	"$ab" "$RUNS" "noop" "hit, AI_LEDGER=0" env AI_LEDGER=0 "$O/bench/noop_main" -- \
		env AI_LEDGER=0 "$s" "$tmp/in"
	echo "## A: ai-summarize --version, B: a cache hit, ledger off"
	"$ab" "$RUNS" "--version" "hit, AI_LEDGER=0" env AI_LEDGER=0 "$s" --version -- \
		env AI_LEDGER=0 "$s" "$tmp/in"
	echo "## A: a cache hit, B: the cache off, a request to a 0 ms server (both ledger off)"
	"$ab" "$RUNS" "hit, AI_LEDGER=0" "AI_CACHE=0, AI_LEDGER=0" env AI_LEDGER=0 "$s" "$tmp/in" -- \
		env AI_LEDGER=0 AI_CACHE=0 "$s" "$tmp/in"
	if build cache_bench cache_bench.c; then
		echo "# cache_bench (in-process)"
		"$O/bench/cache_bench" || say "cache_bench exited $?"
	fi
}

main
exit 0
