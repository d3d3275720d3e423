# tests/bench/lib.sh - sourced by the benchmarks that talk to the test server.
#
#   bench_home DIR        HOME and the XDG directories inside DIR; no inherited
#                         AI_* setting, key or proxy can colour a figure.
#   bench_server DIR [ARG...]
#                         starts $O/tests/ai-testserver (ARGs added) on an
#                         ephemeral port; it exits with the shell that started
#                         it.  Sets SERVER_PID, PORT and OPENAI_BASE_URL and a
#                         dummy OPENAI_API_KEY.  Returns 1 if it did not start.
#   bench_stop            stops it (for an EXIT trap).
#   bench_paths O BIN     sets O and BIN, a name relative to the source tree
#                         made absolute (the benchmark may cd).
#   bench_start NAME      the private HOME and the test server in a new
#                         temporary directory, $tmp, removed (and the server
#                         stopped) on exit.  Returns 1 if either failed, after
#                         saying so with the caller's say().
#   bench_hit NAME        for the benchmarks of a cache hit: bench_start NAME,
#                         then one ai-summarize of $tmp/in, so that the next
#                         is a hit; sets s to ai-summarize's path.  Returns 1
#                         if anything is missing or failed, after saying so.
#   bench_machine         prints "N cores, load A B C", for a figure's header.
#   bench_build NAME SRC  compiles tests/bench/SRC against libai.a into
#                         $O/bench/NAME, linking every library the programs
#                         link (--no-as-needed: the loader maps them all).
#
# The caller sets top (the source tree) first, and O (the build directory)
# before bench_build.

bench_home() {
	export HOME="$1/home" XDG_CACHE_HOME="$1/home/.cache" XDG_DATA_HOME="$1/home/.local/share" \
		XDG_CONFIG_HOME="$1/home/.config" OPENAI_API_KEY=sk-bench NO_PROXY=127.0.0.1
	unset AI_CACHE AI_LEDGER AI_CACHE_TTL AI_BUDGET_DAILY AI_MODEL AI_EMBED_MODEL AI_PROFILE \
		http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
	mkdir -p "$XDG_CONFIG_HOME"
}

bench_server() {
	_dir=$1
	shift
	"$O/tests/ai-testserver" --port-file "$_dir/port" --exit-with-parent "$@" </dev/null >/dev/null 2>&1 &
	SERVER_PID=$!
	_i=0
	while [ ! -s "$_dir/port" ] && [ $_i -lt 500 ]; do
		sleep 0.01
		_i=$((_i + 1))
	done
	[ -s "$_dir/port" ] || return 1
	PORT=$(cat "$_dir/port")
	export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" OPENAI_API_KEY=sk-bench
}

bench_paths() {
	O=$1
	BIN=$2
	case $O in /*) ;; *) O="$top/$O" ;; esac
	case $BIN in /*) ;; *) BIN="$top/$BIN" ;; esac
}

bench_start() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || { say "cannot make a temporary directory; skipped"; return 1; }
	trap 'bench_stop; rm -rf "$tmp"' EXIT INT TERM
	bench_home "$tmp"
	bench_server "$tmp" || { say "the test server did not start; skipped"; return 1; }
}

bench_hit() {
	[ -x "$BIN/ai-summarize" ] && [ -x "$O/tests/ai-testserver" ] ||
		{ say "needs $BIN/ai-summarize and $O/tests/ai-testserver (make all $O/tests/ai-testserver); skipped"; return 1; }
	bench_start "$1" || return 1
	echo "A short text to summarize, the same every time." >"$tmp/in"
	s="$BIN/ai-summarize"
	"$s" "$tmp/in" >/dev/null || { say "ai-summarize failed; skipped"; return 1; }
}

bench_machine() {
	echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_stop() {
	[ -n "${SERVER_PID:-}" ] || return 0
	kill "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
}

bench_build() {
	mkdir -p "$O/bench" || return 1
	[ -f "$O/libai.a" ] || make -C "$top" -s "$O/libai.a" O="$O" >/dev/null 2>&1 || return 1
	# shellcheck disable=SC2046
	${CC:-cc} -std=c11 -O2 -I"$top/common" $(pkg-config --cflags json-c libsodium) -o "$O/bench/$1" \
		"$top/tests/bench/$2" "$O/libai.a" -Wl,--no-as-needed \
		$(pkg-config --libs json-c libsodium sqlite3) -ldl -lm -lpthread
}
