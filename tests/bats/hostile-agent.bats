#!/usr/bin/env bats
# ai-agent against a hostile model (issue 19): the test server answers with
# whatever tool calls and argument text a test scripts.  One test per finding
# on the agent side, and the promises that already held, kept as regressions.
# (agent.bats already holds the environment allow-list, the SQL guard's refused
# writes with the database byte-identical, and shell metacharacters arriving
# literally; they are not repeated here.)

bats_require_minimum_version 1.5.0
load helpers
load agent-helpers

FIX=$BATS_TEST_DIRNAME/../fixtures/agent

setup() {
	setup_env
	start_server
	export PATH="$FIX:$PATH" TMPDIR="$T"
}
teardown() {
	# a failed test must not leave the escaped sleepers behind
	[[ -s ${T:-}/escape.pids ]] && kill -9 $(<"$T/escape.pids") 2>/dev/null
	stop_server
}

# call NAME TEXT: one tool call whose arguments are TEXT, byte for byte.
call() {
	jq -nc --arg n "$1" --arg a "$2" '{name: $n, arguments: $a}'
}

agent() {
	ai-agent --no-cache --retries 0 --no-default-tools "$@"
}

# ---- finding 1: what is approved is exactly what runs ----------------------

@test "hostile: a tool gets the compact form of its arguments, not the model's text" {
	push "$(calls "$(call record '{ "text" : "a\/b\u0041",  "n": 1.50, "k": [1, {"z": null}] }')")" \
		'{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "record"
	assert_eq "$status" 0
	# the bytes on the tool's stdin are json-c's compact form (what approval shows)
	assert_eq "$(cat "$T/record.in")" '{"text":"a/bA","n":1.50,"k":[1,{"z":null}]}'
}

@test "hostile: the approval prompt shows all of the exact text the tool then gets" {
	command -v script >/dev/null || skip "script(1) is not installed"
	long=$(printf 'a%.0s' {1..3000})
	push "$(calls "$(call record_se "{\"text\" : \"$long\" , \"then\":  \"END-OF-ARGS\"}")")" \
		'{"reply":"done"}'
	: >"$T/tty"
	{ wait_for_output "$T/tty" "[y/N]" && printf 'y\n'; } |
		on_tty "ai-agent --no-cache --no-default-tools --tools '$FIX/hostile.json' 'record'" >"$T/tty" 2>&1
	want="{\"text\":\"$long\",\"then\":\"END-OF-ARGS\"}"
	assert_eq "$(cat "$T/record.in")" "$want"
	# shown whole (the terminal may wrap it, but script(1) records the bytes)
	assert_contains "$(tr -d '\r\n' <"$T/tty")" "$want"
}

@test "hostile: arguments parsers could read differently are refused; nothing runs" {
	refused=(
		'{"text":"evil; rm -rf /","text":"nginx"}'
		'{"text":"a","t\u0065xt":"b"}'
		'{"text":"a","o":{"k":1,"k":2}}'
		'{"text":"a","n":99999999999999999999}'
		'{"text":"a","n":9223372036854775808}'
		'{"text":"a","n":-9223372036854775809}'
		'{"text":"a","n":1e999}'
		'{"text":"a","n":-1.5E+400}'
		'{"text":"\ud800"}'
		'{"text":"\udc00x"}'
		'{"text":"\ud800\u0041"}'
		'{"text":"a","n":NaN}'
		"{'text':'a'}"
		'{"text":"a",/*:*/"n":1}'
		'{"text":"a",}'
	)
	c=()
	for a in "${refused[@]}"; do c+=("$(call record "$a")"); done
	push "$(calls "${c[@]}")" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "record"
	assert_eq "$status" 0
	[[ ! -e $T/record.in ]] || { echo "a refused call ran: $(cat "$T/record.in")" >&2; false; }
	results 2
	assert_eq "${#ERR[@]}" "${#refused[@]}"
	dup="the arguments name the same key twice in one object: send each key once"
	assert_eq "${ERR[0]}" "$dup"
	assert_eq "${ERR[1]}" "$dup"
	assert_eq "${ERR[2]}" "$dup"
	assert_eq "${ERR[3]}" "the number 99999999999999999999 is out of range: an integer must fit in 64 bits (-2^63 to 2^63-1)"
	assert_contains "${ERR[4]}" "the number 9223372036854775808 is out of range"
	assert_contains "${ERR[5]}" "the number -9223372036854775809 is out of range"
	assert_eq "${ERR[6]}" "the number 1e999 is out of range: it is too large for a double"
	assert_contains "${ERR[7]}" "the number -1.5E+400 is out of range"
	assert_contains "${ERR[8]}" 'lone UTF-16 surrogate (\ud800)'
	assert_contains "${ERR[9]}" 'lone UTF-16 surrogate (\udc00)'
	assert_contains "${ERR[10]}" 'lone UTF-16 surrogate (\ud800)'
	for i in 11 12 13 14; do
		assert_eq "${ERR[i]}" "the arguments are not valid JSON: send one JSON object"
	done
}

@test "hostile: the edges of the ranges and surrogate pairs pass" {
	push "$(calls "$(call record '{"text":"\ud83d\ude00","a":9223372036854775807,"b":-9223372036854775808,"c":1.7976931348623157e308,"d":1e-999}')")" \
		'{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "record"
	assert_eq "$status" 0
	results 2
	assert_eq "${ERR[0]}" ""
	assert_eq "$(cat "$T/record.in")" \
		'{"text":"😀","a":9223372036854775807,"b":-9223372036854775808,"c":1.7976931348623157e308,"d":1e-999}'
}

# ---- finding 8: no type-ahead approves anything ----------------------------

@test "hostile: keys typed before the approval prompt do not answer it" {
	command -v script >/dev/null || skip "script(1) is not installed"
	# the model takes a second, so the y is surely typed before the question
	push "$(calls "$(call touch '{}')" | jq -c '. + {latency_ms: 1000}')" '{"reply":"done"}'
	: >"$T/tty"
	{ printf 'y\ny\n' && wait_for_output "$T/tty" "[y/N]" && printf 'n\n'; } |
		on_tty "ai-agent --no-cache --no-default-tools --tools '$FIX/tools.json' --trace '$T/trace' 'touch it'" >"$T/tty" 2>&1
	[[ ! -e $T/touched ]] || { echo "type-ahead approved the call" >&2; false; }
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" no
}

# ---- finding 12: nothing a tool started lives on ----------------------------

@test "hostile: a tool's descendants in a session of their own die with it" {
	command -v setsid >/dev/null || skip "setsid(1) is not installed"
	push "$(calls "$(call escape '{}')")" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/hostile.json" "escape"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"exit_status":0,"output":"left\n"}'
	read -r p1 p2 <"$T/escape.pids"
	for p in "$p1" "$p2"; do
		! kill -0 "$p" 2>/dev/null || { echo "process $p outlived the tool: $(ps -o pid,ppid,sid,args -p "$p")" >&2; false; }
	done
}

# ---- finding 6: the SQL deadline holds inside one function call ------------

@test "hostile: Ctrl-C during a slow SQL call stops it at once, not at the deadline" {
	sqlite3 "$T/db.sqlite" "CREATE TABLE t(x);"
	push "$(calls "$(call sql '{"query":"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"}')")" \
		'{"reply":"never"}'
	ai-agent --no-cache --retries 0 --no-default-tools --db-sql "$T/db.sqlite" --tool-timeout 60s "count" \
		>"$T/out" 2>"$T/err" &
	pid=$!
	wait_for_requests 1 "$CHAT"
	sleep 0.5
	start=$(date +%s%N)
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$rc" 130 status
	((ms < 3000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile: the SQL tool's deadline holds inside one call (printf widths, instr)" {
	sqlite3 "$T/db.sqlite" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
	before=$(sha256sum <"$T/db.sqlite")
	push "$(calls "$(call sql '{"query":"SELECT length(printf('"'"'%.*c'"'"', 2000000000, '"'"'x'"'"'))"}')" \
		"$(call sql '{"query":"SELECT instr(replace(hex(zeroblob(1000000)), '"'"'0'"'"', '"'"'a'"'"'), replace(hex(zeroblob(250000)), '"'"'0'"'"', '"'"'a'"'"') || '"'"'b'"'"')"}')" \
		"$(call sql '{"query":"SELECT 1.5 AS f, NULL AS n, x'"'"'00ff'"'"' AS b, '"'"'é'"'"' AS s, 9223372036854775807 AS big, x FROM t"}')")" \
		'{"reply":"ok"}'
	start=$(date +%s%N)
	run --separate-stderr agent --db-sql "$T/db.sqlite" --tool-timeout 1s "query"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 0
	((ms < 6000)) || { echo "took $ms ms" >&2; false; }
	results 2
	assert_contains "${ERR[0]}" "query timed out after 1000 ms"
	assert_contains "${ERR[1]}" "query timed out after 1000 ms"
	# the rows come back from the query's process intact (read raw: jq rounds big integers)
	raw=$(jq -rs --arg p "$CHAT" '[.[] | select(.path == $p)][1] | [.body.messages[]
		| select(.role == "tool")][2].content' "$SERVER_LOG")
	assert_eq "$raw" '{"rows":[{"f":1.5,"n":null,"b":"AP8=","s":"é","big":9223372036854775807,"x":1}],"truncated":false}'
	assert_eq "$(sha256sum <"$T/db.sqlite")" "$before" "database bytes"
}

# ---- what held, kept ---------------------------------------------------------

@test "hostile: a tool inherits no descriptor but 0-2" {
	push "$(calls "$(call fds '{}')")" '{"reply":"ok"}'
	# descriptors the agent itself inherited, not close-on-exec, must not pass on
	run --separate-stderr agent --tools "$FIX/hostile.json" "fds" 7>"$T/leak" 9<"$FIX/tools.json"
	assert_eq "$status" 0
	results 2
	assert_eq "${RES[0]}" '{"exit_status":0,"output":"end\n"}'
}
