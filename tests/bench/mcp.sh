#!/bin/sh
# tests/bench/mcp.sh [O] [BIN] - what an MCP server costs ai-agent (issue 17).
#
#  - start: from ai-agent's start to the first tools/list answered by the
#    reference server-everything (the t_ms of the trace's "started" note),
#    median of RUNS starts;
#  - per call: ai-agent's CPU time (user + system, wait4's rusage, by
#    tests/bench/spawn_ab.c, runs in alternation) for a run of 5 model turns
#    making 160 tools/call against the same run making 5: the difference
#    divided by the 155 calls more.  The server is tests/server's
#    mcp-faultserver, whose own work per call (echo) is a few microseconds,
#    so the figure is ai-agent's cost (its reaped children are counted by
#    wait4 too: an upper bound).  Goal: under 1 ms a call.
#  - the round trip of a call to server-everything, from the trace.
# Needs make mcp-servers (build/mcp-npm) and make units (the fault server).
# A benchmark, not a test: it never fails (always exits 0).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
bench_paths "${1:-build}" "${2:-bin}"
RUNS=${RUNS:-10}
say() { echo "mcp: $*"; }

# push TOOL N ARGS: 5 model turns of N calls of TOOL with ARGS each, then an answer.
push() {
	_calls=$(jq -nc --arg t "$1" --argjson n "$2" --arg a "$3" \
		'{tool_calls: [range($n) | {name: $t, arguments: $a}]}')
	_body=$(jq -nc --argjson c "$_calls" \
		'{push: ([range(5) | $c] + [{reply: "done"}] | map(. + {path: "/v1/chat/completions"}))}')
	curl -sS --noproxy '*' -H 'Content-Type: application/json' --data-binary "$_body" \
		"http://127.0.0.1:$PORT/_control" >/dev/null
}

# forever PORT N: the test server on PORT answers every chat request with N calls of
# fault_echo, so a run ends at --max-steps (exit 2).
forever() {
	_body=$(jq -nc --argjson n "$2" '{push: [{path: "/v1/chat/completions", times: 1000000,
		tool_calls: [range($n) | {name: "fault_echo", arguments: ({text: "hello"} | tojson)}]}]}')
	curl -sS --noproxy '*' -H 'Content-Type: application/json' --data-binary "$_body" \
		"http://127.0.0.1:$1/_control" >/dev/null
}

main() {
	npm=$top/build/mcp-npm/node_modules/.bin
	[ -x "$npm/mcp-server-everything" ] || { say "needs make mcp-servers; skipped"; return 0; }
	[ -x "$O/tests/mcp-faultserver" ] && [ -x "$BIN/ai-agent" ] && [ -x "$O/tests/ai-testserver" ] ||
		{ say "needs $BIN/ai-agent, $O/tests/ai-testserver and $O/tests/mcp-faultserver; skipped"; return 0; }
	bench_start mcp-bench || return 0
	jq -n --arg e "$npm/mcp-server-everything" --arg f "$O/tests/mcp-faultserver" \
		'{mcp: {ev: {command: [$e]}, fault: {command: [$f]}}}' >"$tmp/mcp.json"
	echo "# mcp: $(bench_machine), node $(node --version 2>/dev/null)"

	: >"$tmp/starts"
	_i=0
	while [ $_i -lt "$RUNS" ]; do
		rm -f "$tmp/trace"
		"$BIN/ai-agent" --no-default-tools --tools "$tmp/mcp.json" --mcp ev --list-tools \
			--trace "$tmp/trace" >/dev/null 2>&1
		jq -r 'select(.event == "mcp" and (.text | startswith("started"))) | .t_ms' "$tmp/trace" >>"$tmp/starts"
		_i=$((_i + 1))
	done
	sort -n "$tmp/starts" | awk '{v[NR] = $1} END {printf "start to the first tools/list answer (server-everything): median %d ms, min %d, max %d over %d runs\n", v[int((NR + 1) / 2)], v[1], v[NR], NR}'

	# The round trip of a call to node's server, as the trace times it.
	push ev_echo 32 '{"message":"hello"}'
	"$BIN/ai-agent" --no-cache --no-stdin --no-default-tools --tools "$tmp/mcp.json" --mcp ev --yes \
		--max-steps 10 --trace "$tmp/trace" "go" >/dev/null 2>&1
	jq -r 'select(.event == "tool") | .ms' "$tmp/trace" | sort -n |
		awk '{v[NR] = $1} END {if (NR) printf "tools/call round trip to server-everything (trace): median %d ms, max %d over %d calls\n", v[int((NR + 1) / 2)], v[NR], NR}'
	# Two test servers: A's model calls one tool a turn, B's 32; 5 turns each.
	port_a=$PORT
	mkdir -p "$tmp/b"
	pid_a=$SERVER_PID
	bench_server "$tmp/b" || { say "the second test server did not start; skipped"; return 0; }
	port_b=$PORT
	forever "$port_a" 1
	forever "$port_b" 32
	bench_build spawn_ab spawn_ab.c || { say "cannot build spawn_ab; skipped"; return 0; }
	run='"$0" --no-cache --no-stdin --no-default-tools --tools "$1" --mcp fault --yes --max-steps 5 go; [ $? = 2 ]'
	echo "## A: 5 turns of 1 call (5 calls), B: 5 turns of 32 calls (160 calls); fault server; CPU(B - A) / 155 is ai-agent's per call (goal < 1 ms)"
	"$O/bench/spawn_ab" "${CALL_RUNS:-20}" "5 calls" "160 calls" \
		env OPENAI_BASE_URL="http://127.0.0.1:$port_a/v1" sh -c "$run" "$BIN/ai-agent" "$tmp/mcp.json" -- \
		env OPENAI_BASE_URL="http://127.0.0.1:$port_b/v1" sh -c "$run" "$BIN/ai-agent" "$tmp/mcp.json" |
		tee "$tmp/ab"
	awk '/^cpu: B - A/ {printf "ai-agent CPU per tools/call: %.3f ms (median of B - A over 155 calls; goal < 1 ms)\n", $6 / 155}' "$tmp/ab"
	kill "$SERVER_PID" 2>/dev/null
	SERVER_PID=$pid_a
	PORT=$port_a
	export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1"
}

main
exit 0
