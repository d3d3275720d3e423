#!/usr/bin/env bats
# ai-agent's MCP client: servers declared beside the tools, their tools
# offered to the scripted model, approval, and every way a server fails
# (tests/server/mcp-faultserver.c), then the reference servers from npm
# (make mcp-servers), which must be there in CI: a missing one fails there.

bats_require_minimum_version 1.5.0
load helpers
load agent-helpers

FAULT=${AI_TESTSERVER%/*}/mcp-faultserver

setup() {
	setup_env
	start_server
	[[ -x $FAULT ]] || { echo "missing $FAULT; run: make units" >&2; return 1; }
	FLOG=$T/fault.log
	: >"$FLOG"
	declare_fault
}
teardown() {
	[[ -z ${FPID:-} ]] || kill "$FPID" 2>/dev/null || true
	stop_server
}

# declare_fault [ARG...] [-- EXTRA-JSON]: the tools file $T/mcp.json declaring the
# fault server "fault" with these arguments; EXTRA-JSON is merged into its declaration.
declare_fault() {
	local extra='{}' args=()
	while (($#)); do
		if [[ $1 == -- ]]; then
			extra=$2
			break
		fi
		args+=("$1")
		shift
	done
	jq -n --arg f "$FAULT" --arg log "$FLOG" --argjson extra "$extra" \
		--argjson args "$( ((${#args[@]})) && printf '%s\n' "${args[@]}" | jq -R . | jq -sc . || echo '[]')" \
		'{mcp: {fault: ({command: ([$f, "--log", $log] + $args)} + $extra)}}' >"$T/mcp.json"
}

# fault_http [EXTRA-JSON [ARG...]]: starts the fault server over Streamable HTTP (FPID),
# with these arguments, and declares it as "web" in $T/mcp.json; EXTRA-JSON is merged
# into its declaration.
fault_http() {
	local port extra=${1:-'{}'}
	shift || true
	port=$(free_port)
	"$FAULT" --http "$port" --log "$FLOG" "$@" >"$T/fault-http.out" 2>&1 3>&- &
	FPID=$!
	wait_for_output "$T/fault-http.out" "listening on $port"
	jq -n --arg u "http://127.0.0.1:$port/mcp" --argjson extra "$extra" \
		'{mcp: {web: ({url: $u} + $extra)}}' >"$T/mcp.json"
}

agent() {
	setsid -w ai-agent --no-cache --retries 0 --no-stdin --no-default-tools --tools "$T/mcp.json" "$@"
}

# received METHOD: how many messages with this method the fault server received.
received() {
	jq -s --arg m "$1" '[.[] | select(.method == $m)] | length' "$FLOG"
}

# npm_servers: sets NPMBIN to the reference servers' directory; a missing one
# fails the test in CI (root or $CI set) and skips it elsewhere.
npm_servers() {
	local d
	for d in "${AI_TESTSERVER%/tests/*}/mcp-npm" "$BATS_TEST_DIRNAME/../../build/mcp-npm"; do
		if [[ -x $d/node_modules/.bin/mcp-server-everything && -x $d/node_modules/.bin/mcp-server-filesystem ]]; then
			NPMBIN=$(cd "$d/node_modules/.bin" && pwd)
			return 0
		fi
	done
	if [[ -n ${CI:-} || $(id -u) -eq 0 ]]; then
		echo "the reference MCP servers are missing: run make mcp-servers" >&2
		return 1
	fi
	skip "the reference MCP servers are not installed (make mcp-servers)"
}

@test "mcp: --list-tools names every tool, where it comes from and what running it takes" {
	run --separate-stderr agent --mcp fault --list-tools
	assert_eq "$status" 0 status
	assert_contains "$output" $'calculate\tbuilt-in\tnot needed'
	assert_contains "$output" $'fault_echo\tmcp fault:echo '"$T/mcp.json"$'\tnot needed'
	assert_contains "$output" $'fault_write\tmcp fault:write '"$T/mcp.json"$'\tasks'
	# a name outside the API's rules is made to fit
	assert_contains "$output" $'fault_weird_name_x\tmcp fault:weird.name/x'
	run --separate-stderr agent --mcp fault --list-tools --json
	assert_eq "$status" 0 status
	assert_eq "$(jq -c 'select(.name == "fault_echo") | {source, server, remote, side_effects, approval}' <<<"$output")" \
		'{"source":"mcp","server":"fault","remote":"echo","side_effects":false,"approval":"not needed"}'
	# no model is asked: no endpoint is needed
	OPENAI_API_KEY= OPENAI_BASE_URL= run --separate-stderr agent --mcp fault --list-tools
	assert_eq "$status" 0
	assert_contains "$output" fault_echo
	assert_eq "$(request_count $CHAT)" 0
	# without --mcp, the server is declared but not started
	: >"$FLOG"
	run --separate-stderr agent --list-tools
	assert_eq "$status" 0
	assert_not_contains "$output" fault_
	assert_eq "$(wc -c <"$FLOG")" 0
}

@test "mcp: the handshake: initialize, initialized, then tools/list over three pages" {
	declare_fault --pages 3
	run --separate-stderr agent --mcp fault --list-tools
	assert_eq "$status" 0
	assert_eq "$(jq -sc '[.[].method]' "$FLOG")" \
		'["initialize","notifications/initialized","tools/list","tools/list","tools/list"]'
	assert_eq "$(jq -sc '[.[] | select(.method == "tools/list") | .params.cursor]' "$FLOG")" '[null,"p1","p2"]'
	assert_eq "$(jq -r 'select(.method == "initialize") | .params.protocolVersion' "$FLOG")" 2025-06-18
	# every tool of every page is offered
	assert_contains "$output" fault_echo
	assert_contains "$output" fault_weird_name_x
	assert_eq "$(grep -c '^fault_' <<<"$output")" 19
}

@test "mcp: a banner line on stdout before initialize's answer is skipped, and noted with -v" {
	declare_fault --banner
	run --separate-stderr agent -v --mcp fault --list-tools
	assert_eq "$status" 0
	assert_eq "$(grep -c '^fault_' <<<"$output")" 19
	assert_contains "$stderr" "MCP server 'fault' note: skipped a line on its output that is not a JSON-RPC message: mcp-faultserver: ready"
}

@test "mcp: a protocol version ai-agent does not speak is refused at start" {
	declare_fault --version 2023-01-01
	run --separate-stderr agent --mcp fault "task"
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-agent: MCP server 'fault': speaks MCP protocol version '2023-01-01'; ai-agent speaks 2025-06-18, 2025-03-26 and 2024-11-05"
	assert_eq "$(request_count $CHAT)" 0
	# an older version it does speak is accepted
	declare_fault --version 2024-11-05
	run --separate-stderr agent -v --mcp fault --list-tools
	assert_eq "$status" 0
	assert_contains "$stderr" "MCP server 'fault' note: started: protocol 2024-11-05, 19 tools"
}

@test "mcp: a server that never answers initialize fails at the start-up timeout" {
	declare_fault --hang-init -- '{"startup_timeout_ms": 300}'
	run --separate-stderr agent --mcp fault "task"
	assert_eq "$status" 75
	assert_eq "$stderr" "ai-agent: MCP server 'fault' did not start within 300 ms (startup_timeout_ms)"
	assert_eq "$(request_count $CHAT)" 0
}

@test "mcp: a server that exits at start, or cannot run, stops ai-agent before any request" {
	echo '{"mcp": {"gone": {"command": ["/bin/true"]}}}' >"$T/mcp.json"
	run --separate-stderr agent --mcp gone "task"
	assert_eq "$status" 69
	# it may be gone before initialize is written, or after
	[[ $stderr == "ai-agent: MCP server 'gone': exited (its output ended)" ||
		$stderr == "ai-agent: MCP server 'gone': it no longer reads its input" ]]
	echo '{"mcp": {"nox": {"command": ["'"$T"'/mcp.json"]}}}' >"$T/nox.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/nox.json" --mcp nox "task"
	assert_eq "$status" 78
	assert_contains "$stderr" "MCP server 'nox': cannot run '$T/mcp.json'"
	assert_eq "$(request_count $CHAT)" 0
}

@test "mcp: declarations: unknown server, bad keys, clashes and the HTTP transport are configuration errors" {
	run --separate-stderr agent --mcp nosuch "task"
	assert_eq "$status" 78
	assert_contains "$stderr" "no MCP server named 'nosuch' is declared"
	echo '{"mcp": {"x": {"command": ["/bin/cat"], "timeout": 5}}}' >"$T/bad.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/bad.json" "task"
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-agent: tools file '$T/bad.json', MCP server 'x': unknown key \"timeout\""
	echo '{"mcp": {"x": {"command": ["/bin/cat"], "url": "http://h/mcp"}}}' >"$T/bad.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/bad.json" "task"
	assert_eq "$status" 78
	assert_contains "$stderr" 'not both'
	echo '{"mcp": {"x": {"command": ["/bin/cat"], "headers_cmd": "echo tok"}}}' >"$T/bad.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/bad.json" "task"
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-agent: tools file '$T/bad.json', MCP server 'x': \"headers_cmd\" is for a server at a \"url\""
	echo '{"mcp": {"bad name": {"command": ["/bin/cat"]}}}' >"$T/bad.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/bad.json" "task"
	assert_eq "$status" 78
	assert_contains "$stderr" "the MCP server name 'bad name' must be"
	# the same server declared in two files
	run --separate-stderr ai-agent --no-default-tools --tools "$T/mcp.json" --tools "$T/mcp.json" "task"
	assert_eq "$status" 78
	assert_contains "$stderr" "the MCP server 'fault' is already declared in '$T/mcp.json'"
	# a name clash after sanitising leaves the second tool out, with a note; the server starts
	declare_fault --clash -- '{"allow": ["echo", "nosuch"]}'
	run --separate-stderr agent -v --mcp fault --list-tools
	assert_eq "$status" 0
	assert_eq "$(grep -c '^fault_a_b' <<<"$output")" 1
	assert_contains "$output" fault_echo
	assert_contains "$stderr" "MCP server 'fault' note: its tool 'a_b' would be offered as 'fault_a_b', which another tool already is: left out"
	# and an allowed name it does not offer is noted
	assert_contains "$stderr" "MCP server 'fault' note: \"allow\" names 'nosuch', a tool it does not offer"
	assert_not_contains "$stderr" "names 'echo'"
	# an HTTP server that is not there fails the start
	echo '{"mcp": {"remote": {"url": "http://127.0.0.1:9/mcp"}}}' >"$T/http.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/http.json" --mcp remote "task"
	assert_eq "$status" 69
	assert_contains "$stderr" "ai-agent: MCP server 'remote': "
	echo '{"mcp": {"remote": {"url": "ftp://h/mcp"}}}' >"$T/http.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/http.json" "task"
	assert_eq "$status" 78
	assert_contains "$stderr" '"url" must begin with http:// or https://'
	echo '{"mcp": {"remote": {"url": "http://127.0.0.1:9/mcp", "headers_cmd": "exit 3"}}}' >"$T/http.json"
	run --separate-stderr ai-agent --no-default-tools --tools "$T/http.json" --mcp remote "task"
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-agent: MCP server 'remote': headers_cmd failed (status 3): check it in '$T/http.json'"
	assert_eq "$(request_count $CHAT)" 0
}

@test "mcp: a read-only tool runs without asking, and its text goes back to the model" {
	push "$(calls '{"name":"fault_echo","arguments":{"text":"hi"}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp fault --trace "$T/trace" "echo hi"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "${RES[0]}" '{"output":"{\"text\":\"hi\"}"}'
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" "not needed"
	assert_eq "$(jq -c 'select(.method == "tools/call") | .params' "$FLOG")" '{"name":"echo","arguments":{"text":"hi"}}'
	# the inputSchema went to the model as the tool's parameters
	assert_eq "$(requests $CHAT | head -1 | jq -c '.body.tools[] | select(.function.name == "fault_echo") | .function.parameters')" \
		'{"type":"object","properties":{"text":{"type":"string"}}}'
}

@test "mcp: a tool with side effects, not allowed and no terminal: refused, and the server never gets tools/call" {
	push "$(calls '{"name":"fault_write","arguments":{}}')" '{"reply":"could not"}'
	run --separate-stderr agent --mcp fault --trace "$T/trace" "write"
	assert_eq "$status" 0
	assert_eq "$output" "could not"
	results 2
	assert_eq "${ERR[0]}" "the tool 'fault_write' has side effects and needs approval: run with --yes or from a terminal"
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" "no terminal"
	assert_eq "$(received tools/call)" 0
	assert_contains "$stderr" "or name it in the server's \"allow\" list"
}

@test "mcp: the declaration's allow list, or --yes, lets a tool with side effects run" {
	declare_fault -- '{"allow": ["write"]}'
	push "$(calls '{"name":"fault_write","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp fault --trace "$T/trace" "write"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"output":"wrote"}'
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" allow
	assert_eq "$(received tools/call)" 1
	declare_fault
	push "$(calls '{"name":"fault_write","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp fault --yes --trace "$T/trace" "write"
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" --yes
	assert_eq "$(received tools/call)" 2
}

@test "mcp: on a terminal, y approves an MCP tool, shown with the server's own name" {
	command -v script >/dev/null || skip "script(1) is not installed"
	push "$(calls '{"name":"fault_write","arguments":{"text":"x"}}')" '{"reply":"done"}'
	: >"$T/tty"
	{ wait_for_output "$T/tty" "[y/N]" && printf 'y\n'; } |
		on_tty "ai-agent --no-cache --no-stdin --no-default-tools --tools '$T/mcp.json' --mcp fault 'write'" >"$T/tty" 2>&1
	assert_contains "$(cat "$T/tty")" "the model wants to run 'fault_write' (tool 'write' of the MCP server 'fault') with"
	assert_contains "$(cat "$T/tty")" '{"text":"x"}'
	assert_eq "$(received tools/call)" 1
}

@test "mcp: isError goes back as a tool error; images and resources are described" {
	push "$(calls '{"name":"fault_fail","arguments":{}}' '{"name":"fault_media","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault --trace "$T/trace" "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${ERR[0]}" "it failed"
	assert_eq "$(jq -r '.output' <<<"${RES[1]}")" "here
[image: image/png, 8 bytes, not shown]
[resource: file:///x.txt, text/plain, 6 bytes]
inside
[resource link: file:///y]"
	assert_eq "$(jq -sc '[.[] | select(.event == "tool") | .ok]' "$T/trace")" '[false,true]'
}

@test "mcp: isError is a boolean: the string \"false\" is no error; a last stderr line without newline is logged" {
	push "$(calls '{"name":"fault_strfalse","arguments":{}}')" "$(calls '{"name":"fault_lastword","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"output":"not an error"}'
	assert_contains "$stderr" "MCP server 'fault' stderr: last words"
}

@test "mcp: a server started by a launcher that exits is alive while its output is open" {
	jq -n --arg f "$FAULT" --arg log "$FLOG" \
		'{mcp: {fault: {command: ["/bin/sh", "-c", "exec 3<&0; \"$0\" --log \"$1\" <&3 3<&- & exit 0", $f, $log]}}}' >"$T/mcp.json"
	push "$(calls '{"name":"fault_echo","arguments":{"text":"still here"}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp fault "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"output":"{\"text\":\"still here\"}"}'
}

@test "mcp: a server that dies mid-call: the model is told, the run goes on" {
	push "$(calls '{"name":"fault_die","arguments":{}}')" "$(calls '{"name":"fault_echo","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "${ERR[0]}" "the tool 'fault_die' failed: MCP server 'fault': exited (its output ended)"
	results 3
	assert_eq "${ERR[1]}" "the tool 'fault_echo' failed: MCP server 'fault': is no longer running"
}

@test "mcp: a wrong id and a 50 MB line are errors for the model, not a hang; a line not JSON is skipped" {
	push "$(calls '{"name":"fault_wrongid","arguments":{}}' '{"name":"fault_malformed","arguments":{}}' \
		'{"name":"fault_huge","arguments":{}}' '{"name":"fault_echo","arguments":{"text":"after"}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "${ERR[0]}" "the tool 'fault_wrongid' failed: MCP server 'fault': answered id 103, which was never asked (waiting for 3)"
	assert_eq "${RES[1]}" '{"output":"after the noise"}'
	assert_contains "$stderr" "MCP server 'fault' note: skipped a line on its output that is not a JSON-RPC message: this is {not json"
	assert_eq "${ERR[2]}" "the tool 'fault_huge' failed: MCP server 'fault': sent a message longer than 16777216 bytes"
	# the rest of the long line is skipped: the next call is answered
	assert_eq "${RES[3]}" '{"output":"{\"text\":\"after\"}"}'
}

@test "mcp: a server blocked writing its stderr still gets a long message: its output is read while writing" {
	local long
	long=$(printf 'z%.0s' {1..30000})
	push "$(calls '{"name":"fault_flood","arguments":{}}')" \
		"$(calls "{\"name\":\"fault_echo\",\"arguments\":{\"text\":\"$long\"}}")" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault --tool-timeout 20s --max-output 65536 --trace "$T/trace" "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	# of its 8192 stderr lines, 100 a request are logged, then a note says the rest are not
	(($(jq -s '[.[] | select(.event == "mcp" and .kind == "stderr")] | length' "$T/trace") <= 200))
	assert_contains "$(jq -r 'select(.event == "mcp" and .kind == "note") | .text' "$T/trace")" \
		"its further stderr lines until the next request are not logged"
	results 2
	assert_eq "${RES[0]}" '{"output":"flooded"}'
	results 3
	assert_eq "$(jq -r '.output | fromjson | .text | length' <<<"${RES[1]}")" 30000
}

@test "mcp: a message written only in part stops the server: the next one is not glued to it" {
	local long
	long=$(printf 'z%.0s' {1..30000})
	push "$(calls '{"name":"fault_stall","arguments":{}}')" \
		"$(calls "{\"name\":\"fault_echo\",\"arguments\":{\"text\":\"$long\"}}")" \
		"$(calls '{"name":"fault_echo","arguments":{"text":"after"}}')" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault --tool-timeout 0.5s "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "${RES[0]}" '{"output":"stalled"}'
	results 3
	assert_eq "${ERR[1]}" "the tool 'fault_echo' failed: MCP server 'fault': it did not read its input in time; it was stopped"
	results 4
	assert_eq "${ERR[2]}" "the tool 'fault_echo' failed: MCP server 'fault': is no longer running"
	! pgrep -f "$FLOG" >/dev/null
}

@test "mcp: a call that never ends is cancelled at --tool-timeout and the server told" {
	push "$(calls '{"name":"fault_hang","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault --tool-timeout 0.3s "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${ERR[0]}" "the tool 'fault_hang' failed: MCP server 'fault': no answer to tools/call within 300 ms"
	wait_for_output "$FLOG" notifications/cancelled
	assert_eq "$(jq -c 'select(.method == "notifications/cancelled") | .params' "$FLOG")" '{"requestId":3,"reason":"timeout"}'
	# the server's own timeout_ms wins
	declare_fault -- '{"timeout_ms": 200}'
	push "$(calls '{"name":"fault_hang","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --yes --mcp fault --tool-timeout 30s "go"
	assert_eq "$status" 0
	results 4
	assert_eq "${ERR[0]}" "the tool 'fault_hang' failed: MCP server 'fault': no answer to tools/call within 200 ms"
}

@test "mcp: Ctrl-C during a call cancels it, stops the server and exits 130" {
	push "$(calls '{"name":"fault_hang","arguments":{}}')" '{"reply":"done"}'
	setsid -w ai-agent --no-cache --no-stdin --no-default-tools --tools "$T/mcp.json" --yes --mcp fault "go" \
		>"$T/out" 2>"$T/err" &
	local pid=$! rc=0
	wait_for_output "$FLOG" tools/call
	kill -INT "$pid"
	wait "$pid" || rc=$?
	assert_eq "$rc" 130 status
	assert_eq "$(jq -c 'select(.method == "notifications/cancelled") | .params.reason' "$FLOG")" '"interrupted by the user"'
	! pgrep -f "$FLOG" >/dev/null
}

@test "mcp: the server is stopped at exit, with SIGKILL when it ignores end of input and SIGTERM" {
	declare_fault --ignore-term
	push '{"reply":"done"}'
	run --separate-stderr agent --mcp fault "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	! pgrep -f "$FLOG" >/dev/null
	# and when ai-agent dies of an error after the start (here the model's endpoint is gone)
	OPENAI_BASE_URL=http://127.0.0.1:9/v1 run --separate-stderr agent --mcp fault "go"
	assert_eq "$status" 75
	! pgrep -f "$FLOG" >/dev/null
}

@test "mcp: a server does not outlive an ai-agent killed with SIGKILL" {
	declare_fault --ignore-term
	push "$(calls '{"name":"fault_hang","arguments":{}}')" '{"reply":"done"}'
	setsid -w ai-agent --no-cache --no-stdin --no-default-tools --tools "$T/mcp.json" --yes --mcp fault "go" \
		>"$T/out" 2>"$T/err" &
	local pid=$! i
	wait_for_output "$FLOG" tools/call
	pgrep -f "$FLOG" >/dev/null
	kill -KILL "$pid"
	wait "$pid" || true
	for ((i = 0; i < 500; i++)); do
		pgrep -f "$FLOG" >/dev/null || break
		sleep 0.01
	done
	! pgrep -f "$FLOG" >/dev/null
}

@test "mcp: a ping from the server is answered; list_changed and stderr are noted with -v and in the trace" {
	push "$(calls '{"name":"fault_ping","arguments":{}}' '{"name":"fault_changed","arguments":{}}' '{"name":"fault_noisy","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault --trace "$T/trace" "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"output":"ponged"}'
	assert_eq "${RES[1]}" '{"output":"changed"}'
	assert_eq "${RES[2]}" '{"output":"quiet"}'
	assert_eq "$(jq -c 'select(.id == "srv-1") | .result' "$FLOG")" '{}'
	assert_contains "$stderr" "MCP server 'fault' stderr: noise on stderr"
	assert_contains "$stderr" "MCP server 'fault' note: its tool list changed"
	assert_eq "$(jq -r 'select(.event == "mcp" and .kind == "stderr") | .text' "$T/trace")" "noise on stderr"
}

@test "mcp: after notifications/tools/list_changed the tools are listed again before the next turn" {
	push "$(calls '{"name":"fault_changed","arguments":{}}')" "$(calls '{"name":"fault_added","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault --trace "$T/trace" "go"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$output" done
	# the first turn was not offered the new tool; the ones after the notification were
	assert_eq "$(jq -sc --arg p "$CHAT" '[.[] | select(.path == $p) | [.body.tools[].function.name] | index("fault_added") != null]' "$SERVER_LOG")" \
		'[false,true,true]'
	results 3
	assert_eq "${RES[1]}" '{"output":"added"}'
	assert_eq "$(received tools/list)" 2
	assert_contains "$stderr" "MCP server 'fault' note: listed its tools again: 20 tools"
	assert_eq "$(jq -c 'select(.event == "tools") | [.step, (.tools | index("fault_added") != null)]' "$T/trace")" '[2,true]'
}

@test "mcp: a list_changed written after the call's result is seen before the next turn" {
	# the result and the notification come in one write: the notification is left unread after
	# the call, and must not wait for the next one
	push "$(calls '{"name":"fault_changedafter","arguments":{}}')" "$(calls '{"name":"fault_added","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault "go"
	assert_eq "$status" 0 "$stderr"
	results 3
	assert_eq "${RES[0]}" '{"output":"changed after"}'
	assert_eq "${RES[1]}" '{"output":"added"}'
	assert_eq "$(received tools/list)" 2
	assert_eq "$(jq -sc --arg p "$CHAT" '[.[] | select(.path == $p) | [.body.tools[].function.name] | index("fault_added") != null]' "$SERVER_LOG")" \
		'[false,true,true]'
}

@test "mcp: a tool listed mid-run, or re-listed as read-only, still needs approval; each change is named once" {
	# "write" comes back with readOnlyHint, "added" is new (and says readOnlyHint): with no
	# terminal and no --yes both are refused; the "allow" typo is noted at start only
	declare_fault -- '{"allow": ["changed", "nosuch"]}'
	push "$(calls '{"name":"fault_changed","arguments":{}}')" \
		"$(calls '{"name":"fault_added","arguments":{}}' '{"name":"fault_write","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --mcp fault --trace "$T/trace" "go"
	assert_eq "$status" 0 "$stderr"
	results 3
	assert_eq "${RES[0]}" '{"output":"changed"}'
	assert_eq "${ERR[1]}" "the tool 'fault_added' has side effects and needs approval: run with --yes or from a terminal"
	assert_eq "${ERR[2]}" "the tool 'fault_write' has side effects and needs approval: run with --yes or from a terminal"
	assert_eq "$(jq -c 'select(.event == "tool") | .approval' "$T/trace" | jq -sc .)" '["allow","no terminal","no terminal"]'
	assert_eq "$(received tools/call)" 1
	assert_contains "$stderr" "note: listed its tools again: 20 tools; added (approval needed unless allowed): fault_added; changed: fault_write"$'\n'
	assert_eq "$(grep -c "names 'nosuch', a tool it does not offer" <<<"$stderr")" 1
}

@test "mcp: when the tools cannot be listed again, they stay as they were, with a note" {
	push "$(calls '{"name":"fault_changed","arguments":{"text":"badlist"}}')" "$(calls '{"name":"fault_echo","arguments":{"text":"still"}}')" \
		'{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp fault "go"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$output" done
	results 3
	assert_eq "${RES[1]}" '{"output":"{\"text\":\"still\"}"}'
	assert_eq "$(received tools/list)" 2
	assert_contains "$stderr" "MCP server 'fault' note: its tools could not be listed again, so they stay as they were: MCP server 'fault': tools/list failed: the list is broken"
	# every turn offered the same tools: its 19 and calculate
	assert_eq "$(jq -sc --arg p "$CHAT" '[.[] | select(.path == $p) | .body.tools | length] | unique' "$SERVER_LOG")" '[20]'
}

@test "mcp: --max-output caps what an MCP tool sends back" {
	local long
	long=$(printf 'y%.0s' {1..2000})
	push "$(calls "{\"name\":\"fault_echo\",\"arguments\":{\"text\":\"$long\"}}")" '{"reply":"done"}'
	run --separate-stderr agent --mcp fault --max-output 300 "go"
	assert_eq "$status" 0
	results 2
	assert_eq "$(jq -r '.output | length' <<<"${RES[0]}")" 300
	assert_eq "$(jq -r '.truncated' <<<"${RES[0]}")" true
}

@test "mcp: ai.conf's mcp key starts servers, and --mcp wins over it" {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo "mcp = fault" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr agent --list-tools
	assert_eq "$status" 0
	assert_contains "$output" fault_echo
	echo "mcp = nosuch" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr agent --mcp fault --list-tools
	assert_eq "$status" 0
	assert_contains "$output" fault_echo
}

@test "mcp: the server sees only the allowed environment" {
	declare_fault -- '{"env": ["MCP_EXTRA"]}'
	# the fault server is a C program: check its environment through /proc while it runs
	export MCP_EXTRA=yes SOME_TOKEN=secret OTHER=no
	push "$(calls '{"name":"fault_hang","arguments":{}}')" '{"reply":"done"}'
	setsid -w ai-agent --no-cache --no-stdin --no-default-tools --tools "$T/mcp.json" --yes --mcp fault \
		--tool-timeout 3s "go" >"$T/out" 2>"$T/err" &
	local pid=$! spid
	wait_for_output "$FLOG" tools/call
	spid=$(pgrep -f "$FLOG")
	tr '\0' '\n' <"/proc/$spid/environ" >"$T/env"
	wait "$pid"
	grep -qx MCP_EXTRA=yes "$T/env"
	! grep -q '^SOME_TOKEN=\|^OTHER=\|^OPENAI_API_KEY=' "$T/env"
}

# ---- the reference servers from npm ----------------------------------------

@test "mcp: server-everything over stdio: echo and get-sum answer the model" {
	npm_servers
	jq -n --arg b "$NPMBIN" '{mcp: {ev: {command: [($b + "/mcp-server-everything")]}}}' >"$T/mcp.json"
	push "$(calls '{"name":"ev_echo","arguments":{"message":"hello"}}' '{"name":"ev_get-sum","arguments":{"a":2,"b":40}}' \
		'{"name":"ev_get-tiny-image","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp ev "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "$(jq -r .output <<<"${RES[0]}")" "Echo: hello"
	assert_contains "$(jq -r .output <<<"${RES[1]}")" 42
	assert_contains "$(jq -r .output <<<"${RES[2]}")" "[image: image/png,"
}

@test "mcp: server-filesystem: a file inside its root is read, a path outside it is refused by the server" {
	npm_servers
	mkdir -p "$T/root"
	echo "inside the root" >"$T/root/a.txt"
	echo "secret" >"$T/outside.txt"
	jq -n --arg b "$NPMBIN" --arg r "$T/root" \
		'{mcp: {fs: {command: [($b + "/mcp-server-filesystem"), $r]}}}' >"$T/mcp.json"
	push "$(calls "{\"name\":\"fs_read_text_file\",\"arguments\":{\"path\":\"$T/root/a.txt\"}}" \
		"{\"name\":\"fs_read_text_file\",\"arguments\":{\"path\":\"$T/outside.txt\"}}")" '{"reply":"done"}'
	run --separate-stderr agent --mcp fs "go"
	assert_eq "$status" 0
	results 2
	assert_eq "$(jq -r .output <<<"${RES[0]}")" "inside the root"
	assert_contains "${ERR[1]}" "outside allowed directories"
	assert_not_contains "${RES[1]}" secret
	# its tools that write are not read-only: without a terminal they are refused
	run --separate-stderr agent --mcp fs --list-tools
	assert_contains "$output" $'fs_write_file\tmcp fs:write_file'
	assert_contains "$(grep '^fs_write_file' <<<"$output")" asks
}

@test "mcp: server-everything over Streamable HTTP: session kept, headers_cmd sent, session deleted at exit" {
	npm_servers
	local port pid
	port=$(free_port)
	PORT=$port "$NPMBIN/mcp-server-everything" streamableHttp </dev/null >"$T/ev.out" 2>&1 3>&- &
	pid=$!
	wait_for_output "$T/ev.out" "listening on port $port"
	jq -n --arg u "http://127.0.0.1:$port/mcp" \
		'{mcp: {web: {url: $u, headers_cmd: "echo X-Trace-Me: 1; echo Authorization: Bearer tok-123"}}}' >"$T/mcp.json"
	push "$(calls '{"name":"web_echo","arguments":{"message":"over http"}}' '{"name":"web_get-sum","arguments":{"a":1,"b":2}}')" \
		'{"reply":"done"}'
	run --separate-stderr agent --mcp web "go"
	kill "$pid"
	wait "$pid" || true
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "$(jq -r .output <<<"${RES[0]}")" "Echo: over http"
	assert_contains "$(jq -r .output <<<"${RES[1]}")" 3
	# one session from initialize to the end, and it was deleted at exit
	assert_eq "$(grep -c 'Session initialized with ID' "$T/ev.out")" 1
	assert_contains "$(cat "$T/ev.out")" "Received session termination request for session"
}

@test "mcp: Streamable HTTP against a scripted server: session id, headers, SSE answers, errors, DELETE at exit" {
	local init list call
	init='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{"tools":{}}}}'
	list='{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"w","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}]}}'
	call='{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"via sse"}]}}'
	ctl "$(jq -nc --argjson init "$init" --arg list "event: message
data: $list

" --arg call "event: message
data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}

event: message
data: $call

" '{push: [
		{path: "/mcp", status: 200, body: $init, headers: {"Mcp-Session-Id": "sess-42"}},
		{path: "/mcp", status: 202, body: ""},
		{path: "/mcp", status: 200, body: $list, headers: {"Content-Type": "text/event-stream"}},
		{path: "/mcp", status: 200, body: $call, headers: {"Content-Type": "text/event-stream"}},
		{path: "/mcp", status: 500, body: "boom"},
		{path: "/mcp", status: 200, body: ""}]}')"
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" \
		'{mcp: {web: {url: $u, headers_cmd: "echo X-Trace-Me: 1; echo Authorization: Bearer tok-123"}}}' >"$T/mcp.json"
	push "$(calls '{"name":"web_w","arguments":{}}')" "$(calls '{"name":"web_w","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --mcp web "go"
	assert_eq "$status" 0
	assert_eq "$output" done
	results 2
	assert_eq "${RES[0]}" '{"output":"via sse"}'
	results 3
	assert_eq "${ERR[1]}" "the tool 'web_w' failed: MCP server 'web': answered HTTP 500"
	assert_contains "$stderr" "MCP server 'web' log: info: working"
	requests /mcp >"$T/mcp.log"
	# initialize went without a session; every later message carried it, the version and the headers
	assert_eq "$(jq -sc '[.[] | .headers["mcp-session-id"]]' "$T/mcp.log")" \
		'[null,"sess-42","sess-42","sess-42","sess-42","sess-42"]'
	assert_eq "$(jq -sc '[.[] | .method]' "$T/mcp.log")" '["POST","POST","POST","POST","POST","DELETE"]'
	assert_eq "$(jq -sc '[.[1:][] | .headers["mcp-protocol-version"]] | unique' "$T/mcp.log")" '["2025-03-26"]'
	assert_eq "$(jq -sc '[.[] | .headers["x-trace-me"]] | unique' "$T/mcp.log")" '["1"]'
	assert_eq "$(jq -sc '[.[] | .headers.authorization] | unique' "$T/mcp.log")" '["Bearer tok-123"]'
	# and never the API key
	assert_not_contains "$(cat "$T/mcp.log")" "$KEY"
	assert_not_contains "$stderr" tok-123
	assert_eq "$(jq -sc '[.[] | .body.method?]' "$T/mcp.log")" \
		'["initialize","notifications/initialized","tools/list","tools/call","tools/call",null]'
}

@test "mcp: headers_cmd: one line may be a bare token; several must all be headers, or nothing is sent" {
	local init='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}}}}'
	local list='{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}'
	ctl "$(jq -nc --argjson init "$init" --argjson list "$list" '{push: [
		{path: "/mcp", status: 200, body: $init},
		{path: "/mcp", status: 202, body: ""},
		{path: "/mcp", status: 200, body: $list}]}')"
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" '{mcp: {web: {url: $u, headers_cmd: "echo tok-9"}}}' >"$T/mcp.json"
	run --separate-stderr agent --mcp web --list-tools
	assert_eq "$status" 0
	assert_eq "$(requests /mcp | jq -sc '[.[] | .headers.authorization] | unique')" '["Bearer tok-9"]'
	# a second line that is not a header: refused, never sent as a second Authorization
	: >"$SERVER_LOG"
	for cmd in "echo X-A: 1; echo stray message" "echo tok-1; echo tok-2" "printf 'X-A: 1\001\n'"; do
		jq -n --arg u "http://127.0.0.1:$PORT/mcp" --arg c "$cmd" '{mcp: {web: {url: $u, headers_cmd: $c}}}' >"$T/mcp.json"
		run --separate-stderr agent --mcp web --list-tools
		assert_eq "$status" 78 "$cmd"
		assert_contains "$stderr" "MCP server 'web': headers_cmd printed line "
		assert_not_contains "$stderr" tok-
		assert_not_contains "$stderr" stray
	done
	assert_eq "$(requests /mcp | wc -l)" 0
}

@test "mcp: headers_cmd reads no input of ai-agent's, and is killed at the start-up timeout" {
	local init='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}}}}'
	local list='{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}'
	ctl "$(jq -nc --argjson init "$init" --argjson list "$list" '{push: [
		{path: "/mcp", status: 200, body: $init},
		{path: "/mcp", status: 202, body: ""},
		{path: "/mcp", status: 200, body: $list}]}')"
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" \
		'{mcp: {web: {url: $u, headers_cmd: "if read -r x; then echo X-Got: $x; else echo X-Got: nothing; fi"}}}' >"$T/mcp.json"
	run --separate-stderr agent --mcp web --list-tools <<<"the piped task"
	assert_eq "$status" 0
	assert_eq "$(requests /mcp | jq -sc '[.[] | .headers["x-got"]] | unique')" '["nothing"]'
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" \
		'{mcp: {web: {url: $u, headers_cmd: "sleep 61.5; echo tok", startup_timeout_ms: 300}}}' >"$T/mcp.json"
	run --separate-stderr agent --mcp web --list-tools
	assert_eq "$status" 75
	assert_eq "$stderr" "ai-agent: MCP server 'web' did not start within 300 ms (startup_timeout_ms)"
	# and what it started went with it
	! pgrep -f "sleep 61.5" >/dev/null
}

@test "mcp: Streamable HTTP: a session id too long or with bytes outside 0x21-0x7E is refused, not cut" {
	local init='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}}}}'
	local long
	long=$(printf 's%.0s' {1..300})
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" '{mcp: {web: {url: $u}}}' >"$T/mcp.json"
	for id in "$long" "two words"; do
		ctl "$(jq -nc --argjson init "$init" --arg id "$id" '{push: [
			{path: "/mcp", status: 200, body: $init, headers: {"Mcp-Session-Id": $id}}]}')"
		run --separate-stderr agent --mcp web "go"
		assert_eq "$status" 69
		assert_contains "$stderr" "MCP server 'web': sent an Mcp-Session-Id that is longer than 255 bytes or not visible ASCII"
	done
}

@test "mcp: Streamable HTTP: a call that is not answered in time is cancelled with a POST" {
	local init='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}}}}'
	local list='{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"slow","annotations":{"readOnlyHint":true}}]}}'
	ctl "$(jq -nc --argjson init "$init" --argjson list "$list" '{push: [
		{path: "/mcp", status: 200, body: $init},
		{path: "/mcp", status: 202, body: ""},
		{path: "/mcp", status: 200, body: $list},
		{path: "/mcp", status: 200, latency_ms: 3000, body: ""},
		{path: "/mcp", status: 202, body: ""}]}')"
	jq -n --arg u "http://127.0.0.1:$PORT/mcp" '{mcp: {web: {url: $u, timeout_ms: 300}}}' >"$T/mcp.json"
	push "$(calls '{"name":"web_slow","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent --mcp web "go"
	assert_eq "$status" 0
	results 2
	assert_eq "${ERR[0]}" "the tool 'web_slow' failed: MCP server 'web': no answer to tools/call within 300 ms"
	wait_for_output "$SERVER_LOG" notifications/cancelled
	assert_eq "$(requests /mcp | jq -c 'select(.body.method == "notifications/cancelled") | .body.params')" \
		'{"requestId":3,"reason":"timeout"}'
	# no session was given, so there is none to delete
	assert_eq "$(requests /mcp | jq -r .method | sort -u)" POST
}

@test "mcp: Streamable HTTP: SSE answers are read as they come, though the server keeps each stream open" {
	# every answer comes on a stream the server holds open for 60 s: read to its end, each call
	# would wait out its timeout; a wrong id, a silence (at the deadline) and an SSE event of 50 MB
	# still end a call
	fault_http '{"timeout_ms": 1000, "startup_timeout_ms": 3000}'
	push "$(calls '{"name":"web_echo","arguments":{"text":"kept open"}}' '{"name":"web_wrongid","arguments":{}}' \
		'{"name":"web_hang","arguments":{}}' '{"name":"web_huge","arguments":{}}')" '{"reply":"done"}'
	local t0=$SECONDS
	run --separate-stderr agent --yes --mcp web "go"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$output" done
	results 2
	assert_eq "${RES[0]}" '{"output":"{\"text\":\"kept open\"}"}'
	assert_eq "${ERR[1]}" "the tool 'web_wrongid' failed: MCP server 'web': answered id 104, which was never asked (waiting for 4)"
	assert_eq "${ERR[2]}" "the tool 'web_hang' failed: MCP server 'web': no answer to tools/call within 1000 ms"
	assert_eq "${ERR[3]}" "the tool 'web_huge' failed: MCP server 'web': sent a message longer than 16777216 bytes"
	((SECONDS - t0 < 5))
	wait_for_output "$FLOG" notifications/cancelled
	assert_eq "$(jq -c 'select(.method == "notifications/cancelled") | .params' "$FLOG")" '{"requestId":5,"reason":"timeout"}'
}

@test "mcp: Streamable HTTP: a ping on the stream before the answer is answered in the session; list_changed is noted" {
	# the server answers the call only once the pong is POSTed, with the session id
	fault_http '{"timeout_ms": 3000, "startup_timeout_ms": 3000}'
	push "$(calls '{"name":"web_ping","arguments":{}}' '{"name":"web_changed","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp web "go"
	assert_eq "$status" 0 "$stderr"
	results 2
	assert_eq "${RES[0]}" '{"output":"ponged"}'
	assert_eq "${RES[1]}" '{"output":"changed"}'
	assert_eq "$(jq -c 'select(.id == "srv-1") | .result' "$FLOG")" '{}'
	assert_contains "$stderr" "MCP server 'web' note: its tool list changed"
}

@test "mcp: Streamable HTTP: what follows the answer in the stream is dispatched: list_changed, a batch's ping" {
	# the result and list_changed come in one piece of the stream; a batch holds the result, then
	# a ping: both are dealt with before the stream is closed, and the tools listed again over HTTP
	fault_http '{"timeout_ms": 3000, "startup_timeout_ms": 3000}'
	push "$(calls '{"name":"web_changedafter","arguments":{}}' '{"name":"web_batchping","arguments":{}}')" \
		"$(calls '{"name":"web_added","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr agent -v --yes --mcp web "go"
	assert_eq "$status" 0 "$stderr"
	results 3
	assert_eq "${RES[0]}" '{"output":"changed after"}'
	assert_eq "${RES[1]}" '{"output":"batched"}'
	assert_eq "${RES[2]}" '{"output":"added"}'
	assert_eq "$(received tools/list)" 2
	assert_eq "$(jq -sc --arg p "$CHAT" '[.[] | select(.path == $p) | [.body.tools[].function.name] | index("web_added") != null]' "$SERVER_LOG")" \
		'[false,true,true]'
	assert_eq "$(jq -c 'select(.id == "srv-2") | .result' "$FLOG")" '{}'
}

@test "mcp: Streamable HTTP: a ping on the stream of initialize's answer is answered with the new session id" {
	# the server answers initialize only once the pong comes, and refuses it (400) without the
	# session id it gave in the headers of that very stream
	fault_http '{"startup_timeout_ms": 3000}' --ping-init
	run --separate-stderr agent --mcp web --list-tools
	assert_eq "$status" 0 "$stderr"
	assert_contains "$output" web_echo
	assert_eq "$(jq -c 'select(.id == "srv-1")' "$FLOG")" '{"jsonrpc":"2.0","id":"srv-1","result":{}}'
}
