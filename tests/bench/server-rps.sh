#!/bin/sh
# tests/bench/server-rps.sh [O] [BIN] - requests per second the test server sustains.
# Starts O/tests/ai-testserver (default build/) and sends N chat completions
# (N=20000 from the environment) over keep-alive connections with one curl process: first
# one connection, then 4 in parallel; then embeddings and 64-chunk streams.
# With wrk(1) installed it also runs wrk for 5 s with 4 connections.
# A benchmark, not a test: it prints figures and always exits 0.
O=${1:-build}
N=${N:-20000}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 0
srv="$O/tests/ai-testserver"
if ! make --no-print-directory -s "$srv" >/dev/null 2>&1; then
	echo "server-rps: cannot build $srv; skipped"
	exit 0
fi
. "$top/tests/bench/lib.sh"
dir=$(mktemp -d) || exit 0
trap 'bench_stop; rm -rf "$dir"' EXIT
bench_server "$dir" --log "$dir/log" || { echo "server-rps: the server did not start"; exit 0; }
url="http://127.0.0.1:$PORT/v1"
chat='{"model":"m","messages":[{"role":"user","content":"hello there, how are you today?"}]}'
words=$(printf 'w%.0s ' $(seq 64))
stream="{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$words\"}]}"

now() { date +%s%N; }

# run LABEL N CURL-ARGS...: times one curl invocation of N requests.
run() {
	label=$1 n=$2
	shift 2
	: >"$dir/log"
	t0=$(now)
	# curl -Z draws a progress meter even with -s: stderr goes to a file.
	curl -s --noproxy '*' -H 'Content-Type: application/json' "$@" >/dev/null 2>"$dir/curl.err" ||
		echo "server-rps: curl exited $?: $(tail -c 200 "$dir/curl.err")"
	t1=$(now)
	got=$(wc -l <"$dir/log")
	ms=$(((t1 - t0) / 1000000))
	[ "$ms" -gt 0 ] || ms=1
	echo "server-rps: $label: $got/$n requests in $ms ms = $((got * 1000 / ms)) req/s"
}

echo "# server-rps: $srv, curl keep-alive, $(nproc) cores"
run "chat, 1 connection" "$N" -d "$chat" "$url/chat/completions?n=[1-$N]"
run "chat, 4 connections" "$N" -Z --parallel-max 4 -d "$chat" "$url/chat/completions?n=[1-$N]"
run "embeddings (64 dims), 4 connections" "$N" -Z --parallel-max 4 \
	-d '{"input":"red apple pie and more words"}' "$url/embeddings?n=[1-$N]"
ns=$((N / 10))
run "streams of 66 chunks, 4 connections" "$ns" -Z --parallel-max 4 -d "$stream" "$url/chat/completions?n=[1-$ns]"
if command -v wrk >/dev/null; then
	printf 'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' \
		"$chat" >"$dir/post.lua"
	echo "# wrk -t2 -c4 -d5s (chat completions):"
	wrk -t2 -c4 -d5s -s "$dir/post.lua" "$url/chat/completions" | grep -E 'Requests/sec|Latency|requests in'
fi
exit 0
