#!/usr/bin/env bats
# ai-agent against the test server's scripted tool calls: the loop, the
# built-in tools, the user's tools and their limits, approval, the trace,
# and the failures its users meet.

bats_require_minimum_version 1.5.0
load helpers
load agent-helpers

FIX=$BATS_TEST_DIRNAME/../fixtures/agent

setup() {
	setup_env
	start_server
	# The fixture tools are named bare in tools.json and found in PATH.
	export PATH="$FIX:$PATH" TMPDIR="$T"
	mkdir -p "$T/empty"
}
teardown() { stop_server; }

# many TOOL KEY VALUE...: an answer calling TOOL once per VALUE, with {KEY: VALUE}.
many() {
	local tool=$1 key=$2
	shift 2
	jq -nc --arg t "$tool" --arg k "$key" \
		'{tool_calls: [$ARGS.positional[] | {name: $t, arguments: ({($k): .} | tojson)}]}' --args "$@"
}

# ids N: the tool_call_ids of the tool messages of the Nth chat request, space-separated.
ids() {
	jq -rs --arg p "$CHAT" --argjson n "$1" '[.[] | select(.path == $p)][$n - 1]
		| [.body.messages[] | select(.role == "tool") | .tool_call_id] | join(" ")' "$SERVER_LOG"
}

agent() {
	ai-agent --no-cache --retries 0 "$@"
}

@test "agent: a two-step task (search, then calculate) ends in an answer" {
	command -v ai-index >/dev/null || skip "ai-index is not built yet"
	cp "$FIX/docs.txt" "$T/docs.txt"
	run ai-index --db "$T/kb.db" "$T/docs.txt"
	assert_eq "$status" 0 "ai-index status"
	push "$(calls '{"name":"search","arguments":{"query":"Zorblax reactor megawatts"}}')" \
		"$(calls '{"name":"calculate","arguments":{"expression":"42 * 3"}}')" \
		'{"reply":"126 megawatt-shifts [docs.txt]."}'
	run --separate-stderr agent --db "$T/kb.db" --json "How much, times the shifts?"
	assert_eq "$status" 0 status
	assert_eq "$(jq -r .answer <<<"$output")" "126 megawatt-shifts [docs.txt]."
	assert_eq "$(jq -r .steps <<<"$output")" 3
	assert_eq "$(jq -r '[.calls[].name] | join(",")' <<<"$output")" search,calculate
	assert_eq "$(request_count $CHAT)" 3
	# search was offered, and its passages came back with their source
	assert_contains "$(requests $CHAT | head -1 | jq -c '[.body.tools[].function.name]')" '"search"'
	results 2
	assert_contains "$(jq -r '.passages[0].source' <<<"${RES[0]}")" docs.txt
	assert_contains "$(jq -r '.passages[0].text' <<<"${RES[0]}")" "42 megawatts"
	results 3
	assert_eq "${RES[1]}" '{"result":126}'
}

@test "agent: search writes a passage's lines as ai-ask does: 12-30, or 12 for one line" {
	command -v ai-index >/dev/null || skip "ai-index is not built yet"
	printf 'The Zorblax reactor makes 42 megawatts.\n' >"$T/one.txt"
	run ai-index --db "$T/kb.db" --no-embed -q "$T/one.txt"
	assert_eq "$status" 0 "ai-index status"
	push "$(calls '{"name":"search","arguments":{"query":"Zorblax reactor"}}')" '{"reply":"42 [one.txt]."}'
	run --separate-stderr agent --db "$T/kb.db" --json "How many megawatts?"
	assert_eq "$status" 0 status
	results 2
	assert_eq "$(jq -r '.passages[0].lines' <<<"${RES[0]}")" 1
	run --separate-stderr ai-ask --db "$T/kb.db" --retrieve-only --no-embed Zorblax reactor
	assert_eq "$(jq -r .lines <<<"$output")" 1
}

@test "agent: calculate, and the reply to each call goes back as a tool message" {
	push "$(calls '{"id":"c1","name":"calculate","arguments":{"expression":"2^3^2 - -2^2"}}')" \
		'{"reply":"It is 516."}'
	run --separate-stderr agent "what is 2^3^2 - -2^2?"
	assert_eq "$status" 0
	assert_eq "$output" "It is 516."
	assert_eq "$stderr" ""
	r=$(requests $CHAT | sed -n 2p)
	# the assistant's turn is sent back verbatim, content null, then the tool message
	assert_eq "$(jq -c '.body.messages[2] | {role, content, id: .tool_calls[0].id}' <<<"$r")" \
		'{"role":"assistant","content":null,"id":"c1"}'
	assert_eq "$(jq -c '.body.messages[3] | {role, tool_call_id, content}' <<<"$r")" \
		'{"role":"tool","tool_call_id":"c1","content":"{\"result\":516}"}'
	assert_eq "$(jq -r '.body.tools[0].function.name' <<<"$r")" calculate
	assert_eq "$(jq -r '.body.tools[0].type' <<<"$r")" function
}

@test "agent: two tool calls in one turn are both answered, in order" {
	push "$(calls '{"id":"a","name":"calculate","arguments":{"expression":"1+1"}}' \
		'{"id":"b","name":"calculate","arguments":{"expression":"10/4"}}')" '{"reply":"done"}'
	run --separate-stderr agent "two sums"
	assert_eq "$status" 0
	results 2
	assert_eq "$(ids 2)" "a b"
	assert_eq "${RES[*]}" '{"result":2} {"result":2.5}'
	assert_eq "$(request_count $CHAT)" 2
}

@test "agent: an unknown tool is refused and reported to the model" {
	push "$(calls '{"name":"rm_rf","arguments":{}}' '{"name":"calculate","arguments":{"expression":"1"}}')" \
		'{"reply":"ok"}'
	run --separate-stderr agent --trace "$T/trace" "x"
	assert_eq "$status" 0
	results 2
	assert_eq "${ERR[0]}" "unknown tool 'rm_rf': use one of the tools offered"
	assert_eq "${RES[1]}" '{"result":1}'
	assert_eq "$(jq -r 'select(.event == "tool" and .name == "rm_rf") | .ok' "$T/trace")" false
}

@test "agent: arguments that are not one JSON object are refused; nothing runs" {
	push "$(calls '{"name":"record","arguments":"{"}' \
		'{"name":"record","arguments":"[1,2]"}' \
		'{"name":"record","arguments":"\"text\""}' \
		'{"name":"record","arguments":"{\"text\":\"a\"} {\"text\":\"b\"}"}' \
		'{"name":"record","arguments":"{\"text\":\"a\"} trailing"}' \
		'{"name":"record","arguments":"{\"txt\":\"a\"}"}' \
		'{"name":"record","arguments":"{\"text\":5}"}' \
		'{"name":"calculate","arguments":"{\"expression\":\"1\",\"x\":1}"}')" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "x"
	assert_eq "$status" 0
	results 2
	assert_eq "${#ERR[@]}" 8
	assert_eq "${ERR[0]}" "the arguments are not valid JSON: send one JSON object"
	assert_eq "${ERR[1]}" "the arguments must be a JSON object, not array"
	assert_eq "${ERR[2]}" "the arguments must be a JSON object, not string"
	assert_eq "${ERR[3]}" "the arguments are not valid JSON: send one JSON object"
	assert_eq "${ERR[4]}" "the arguments are not valid JSON: send one JSON object"
	assert_eq "${ERR[5]}" "the argument 'text' is required"
	assert_eq "${ERR[6]}" "the argument 'text' must be a string, not integer"
	assert_eq "${ERR[7]}" "unknown argument 'x'"
	[[ ! -e $T/record.in ]]
}

@test "agent: --max-steps ends with exit 2, the steps so far, and no tool run in the last turn" {
	push "$(calls '{"name":"calculate","arguments":{"expression":"1+1"}}')" \
		"$(calls '{"name":"calculate","arguments":{"expression":"2+2"}}')" \
		"$(calls '{"name":"calculate","arguments":{"expression":"3+3"}}')"
	run --separate-stderr agent --max-steps 2 "loop"
	assert_eq "$status" 2
	assert_eq "$output" ""
	assert_contains "$stderr" "ai-agent: no answer after 2 steps"
	assert_contains "$stderr" "step 1: calculate {\"expression\":\"1+1\"}: ok"
	assert_not_contains "$stderr" "2+2"
	assert_eq "$(request_count $CHAT)" 2
	push "$(calls '{"name":"calculate","arguments":{"expression":"1+1"}}')"
	run --separate-stderr agent --max-steps 1 --json --trace "$T/trace" "loop"
	assert_eq "$status" 2
	assert_eq "$(jq -c '{answer, steps, max_steps_reached, calls}' <<<"$output")" \
		'{"answer":null,"steps":1,"max_steps_reached":true,"calls":[]}'
	assert_eq "$(tail -n 1 "$T/trace" | jq -r '.event + " " + .status')" "end max_steps"
}

@test "agent: the default step limit is 10" {
	c=$(calls '{"name":"calculate","arguments":{"expression":"1"}}')
	ctl "{\"push\":[$(jq -c '. + {times: 12}' <<<"$c")]}"
	run --separate-stderr agent "loop"
	assert_eq "$status" 2
	assert_eq "$(request_count $CHAT)" 10
}

@test "agent: a tool that sleeps past its limit is killed with its children" {
	push "$(calls '{"name":"sleeper","arguments":{}}')" '{"reply":"gave up"}'
	start=$(date +%s%N)
	run --separate-stderr agent --tools "$FIX/tools.json" "sleep"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 0
	assert_eq "$output" "gave up"
	((ms < 5000)) || { echo "took $ms ms" >&2; false; }
	results 2
	assert_eq "${ERR[0]}" "the tool 'sleeper' took longer than 500 ms and was killed"
	read -r p1 p2 <"$T/sleeper.pids"
	sleep 0.1
	! kill -0 "$p1" 2>/dev/null
	! kill -0 "$p2" 2>/dev/null
	# --tool-timeout limits tools without a limit of their own
	push "$(calls '{"name":"slow","arguments":{}}')" '{"reply":"gave up"}'
	run --separate-stderr agent --tools "$FIX/tools.json" --tool-timeout 300ms "sleep"
	results 4
	assert_eq "${ERR[0]}" "the tool 'slow' took longer than 300 ms and was killed"
}

@test "agent: SIGINT during a tool exits 130 and kills the tool" {
	push "$(calls '{"name":"slow","arguments":{}}')" '{"reply":"never"}'
	ai-agent --no-cache --tools "$FIX/tools.json" "sleep" >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < 500; i++)); do [[ -s $T/sleeper.pids ]] && break; sleep 0.01; done
	read -r p1 p2 <"$T/sleeper.pids"
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 130 status
	! kill -0 "$p1" 2>/dev/null
	! kill -0 "$p2" 2>/dev/null
	assert_eq "$(request_count $CHAT)" 1
}

@test "agent: SIGINT while waiting for the model exits 130 at once" {
	push '{"reply":"late","latency_ms":10000}'
	ai-agent --no-cache "wait" >"$T/out" 2>"$T/err" &
	pid=$!
	wait_for_requests 1 $CHAT
	start=$(date +%s%N)
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$rc" 130 status
	((ms < 3000)) || { echo "took $ms ms" >&2; false; }
	assert_eq "$(cat "$T/out")" ""
}

@test "agent: a tool with side effects is refused without a terminal, even with yes piped in" {
	push "$(calls '{"name":"touch","arguments":{}}')" '{"reply":"could not"}'
	# --no-stdin: the y's are not part of the task either; approval must not read them.
	run --separate-stderr bash -c 'yes | setsid -w ai-agent --no-stdin --no-cache --tools "$1" --trace "$2" "touch it"' \
		_ "$FIX/tools.json" "$T/trace"
	assert_eq "$status" 0
	assert_eq "$output" "could not"
	[[ ! -e $T/touched ]]
	results 2
	assert_eq "${ERR[0]}" \
		"the tool 'touch' has side effects and needs approval: run with --yes or from a terminal"
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" "no terminal"
	# Said on stderr too, not only in the trace: a cron job's log shows why nothing ran.
	assert_eq "$stderr" "ai-agent: the tool 'touch' has side effects and was not run: there is no terminal to ask on; give --yes to allow it"
	push "$(calls '{"name":"touch","arguments":{}}')" '{"reply":"could not"}'
	run --separate-stderr bash -c 'setsid -w ai-agent -q --no-stdin --no-cache --tools "$1" "touch it" </dev/null' _ "$FIX/tools.json"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
}

@test "agent: --yes runs a tool with side effects" {
	push "$(calls '{"name":"touch","arguments":{}}')" '{"reply":"done"}'
	run --separate-stderr setsid -w ai-agent --no-cache --tools "$FIX/tools.json" --yes --trace "$T/trace" "touch it"
	assert_eq "$status" 0
	[[ -s $T/touched ]]
	results 2
	assert_eq "${RES[0]}" '{"exit_status":0,"output":"touched\n"}'
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" "--yes"
}

@test "agent: on a terminal, y approves and anything else declines" {
	command -v script >/dev/null || skip "script(1) is not installed"
	push "$(calls '{"name":"touch","arguments":{"note":"\u001b[2J\u0007"}}')" '{"reply":"done\u001b]0;owned\u0007"}'
	: >"$T/tty"
	{ wait_for_output "$T/tty" "[y/N]" && printf 'y\n'; } |
		on_tty "ai-agent --no-cache --tools '$FIX/tools.json' --trace '$T/trace' 'touch it'" >"$T/tty" 2>&1
	[[ -s $T/touched ]]
	assert_contains "$(cat "$T/tty")" "Run it? [y/N]"
	# the model's arguments are shown with control characters escaped
	assert_contains "$(cat "$T/tty")" '{"note":"\u001b[2J\u0007"}'
	! grep -q $'\x1b\\|\x07' "$T/tty"
	# and so is the answer, on a terminal
	assert_contains "$(cat "$T/tty")" "done␛]0;owned␇"
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" yes
	rm -f "$T/touched"
	push "$(calls '{"name":"touch","arguments":{}}')" '{"reply":"declined"}'
	: >"$T/tty"
	{ wait_for_output "$T/tty" "[y/N]" && printf 'nope\n'; } |
		on_tty "ai-agent --no-cache --tools '$FIX/tools.json' --trace '$T/trace' 'touch it again'" >"$T/tty" 2>&1
	[[ ! -e $T/touched ]]
	assert_eq "$(jq -r 'select(.event == "tool") | .approval' "$T/trace")" no
	results 4
	assert_eq "${ERR[0]}" "the user declined to run the tool 'touch'"
}

@test "agent: shell metacharacters in arguments arrive literally and create nothing" {
	cd "$T/empty"
	text=$'; touch '"$T"$'/x1\n$(touch '"$T"'/x2) `touch '"$T"'/x3` | touch '"$T"'/x4 && id > '"$T"'/x5'
	args=$(jq -nc --arg t "$text" '{text: $t}')
	push "$(calls "$(jq -nc --arg a "$args" '{name: "record", arguments: $a}')")" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "record"
	assert_eq "$status" 0
	# stdin got exactly the model's arguments; the argv is the file's, unchanged
	assert_eq "$(cat "$T/record.in")" "$args"
	results 2
	out=$(jq -r .output <<<"${RES[0]}")
	assert_contains "$out" $'argc=2\narg=[--fixed]\narg=[a b]\n'
	assert_contains "$out" "$args"
	for f in x1 x2 x3 x4 x5; do [[ ! -e $T/$f ]] || { echo "$f was created" >&2; false; }; done
	assert_eq "$(ls -A "$T/empty")" ""
}

@test "agent: a tool's environment holds no key or secret" {
	export FOO_KEY=foo-secret MY_TOKEN=tok-secret AI_MODEL=secret-model OPENAI_ORG=org-secret DB_PASSWORD=pw
	push "$(calls '{"name":"show_env","arguments":{}}')" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" "env"
	assert_eq "$status" 0
	results 2
	env=$(jq -r .output <<<"${RES[0]}")
	assert_contains "$env" "PATH="
	assert_contains "$env" "HOME=$HOME"
	for v in OPENAI_API_KEY FOO_KEY MY_TOKEN AI_MODEL OPENAI_ORG DB_PASSWORD OPENAI_BASE_URL; do
		assert_not_contains "$env" "$v="
	done
	assert_not_contains "$env" "$KEY"
	assert_not_contains "$env" secret
}

@test "agent: a tool's output is capped and marked; a failing tool reports status and stderr" {
	push "$(calls '{"name":"big","arguments":{}}' '{"name":"fail","arguments":{}}')" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" --max-output 1000 "big"
	assert_eq "$status" 0
	results 2
	r=${RES[0]}
	assert_eq "$(jq -r '.output | length' <<<"$r")" 1000
	assert_eq "$(jq -r .truncated <<<"$r")" true
	assert_eq "$(jq -r .note <<<"$r")" "the output was cut at 1000 bytes"
	assert_eq "${RES[1]}" \
		'{"exit_status":3,"output":"partial output\n","stderr":"fail.sh: the thing is broken\n"}'
}

@test "agent: the sql tool reads, refuses every write, and leaves the database unchanged" {
	sqlite3 "$T/db.sqlite" "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT);
		INSERT INTO t VALUES (1, 'alpha'), (2, 'beta');"
	before=$(sha256sum <"$T/db.sqlite")
	push "$(many sql query 'SELECT name FROM t ORDER BY id' \
		"INSERT INTO t VALUES (3, 'gamma')" \
		'DROP TABLE t' \
		"ATTACH DATABASE '$T/other.db' AS o" \
		'PRAGMA query_only=0' \
		'PRAGMA writable_schema=1' \
		"SELECT load_extension('/tmp/x.so')" \
		"VACUUM INTO '$T/copy.db'" \
		"SELECT 1; DELETE FROM t" \
		'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r')" \
		'{"reply":"ok"}'
	start=$(date +%s%N)
	run --separate-stderr agent --db-sql "$T/db.sqlite" --tool-timeout 300ms "query"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 0
	((ms < 5000)) || { echo "took $ms ms" >&2; false; }
	results 2
	assert_eq "${RES[0]}" '{"rows":[{"name":"alpha"},{"name":"beta"}],"truncated":false}'
	for i in 1 2 3 4 5 6 7 8 9; do
		[[ -n ${ERR[i]} ]] || { echo "call $((i + 1)) was not refused: ${RES[i]}" >&2; false; }
	done
	assert_eq "$(sha256sum <"$T/db.sqlite")" "$before" "database bytes"
	[[ ! -e $T/other.db && ! -e $T/copy.db ]]
	assert_eq "$(sqlite3 "$T/db.sqlite" 'SELECT count(*) FROM t')" 2
	# the schema is in the tool's description, so the model knows the columns
	assert_contains "$(requests $CHAT | head -1 | jq -r '.body.tools[] | select(.function.name == "sql") | .function.description')" \
		"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)"
}

@test "agent: calculate's edge cases are tool errors, not crashes" {
	deep=$(printf '(%.0s' {1..10000})1$(printf ')%.0s' {1..10000})
	nest=$(printf '(%.0s' {1..2000})1$(printf ')%.0s' {1..2000})
	long=$(printf '1+%.0s' {1..3000})1
	push "$(many calculate expression '1/0' '1e308*10' "$deep" "$long" '5 % 0' 'sqrt(-1)' 'foo(1)' \
		'2+' '-2^2' 'round(2.5) + max(1, 7, 3)' "$nest")" '{"reply":"ok"}'
	run --separate-stderr agent "edge cases"
	assert_eq "$status" 0
	results 2
	assert_contains "${ERR[0]}" "division by zero"
	for i in 1 2 3 4 5 6 7; do
		[[ -n ${ERR[i]} ]] || { echo "call $((i + 1)) gave ${RES[i]}" >&2; false; }
	done
	assert_contains "${ERR[2]}" "longer than"
	assert_contains "${ERR[3]}" "longer than"
	assert_contains "${ERR[10]}" "nest"
	assert_eq "${RES[8]}" '{"result":-4}'
	assert_eq "${RES[9]}" '{"result":10}'
}

@test "agent: the trace has every turn, call, decision and result, and never the key" {
	push "$(calls '{"name":"calculate","arguments":{"expression":"6*7"}}' '{"name":"touch","arguments":{}}')" \
		'{"reply":"42","usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32}}'
	run --separate-stderr setsid -w ai-agent --no-cache --tools "$FIX/tools.json" --trace "$T/trace" "six times seven"
	assert_eq "$status" 0
	assert_eq "$(jq -r .event "$T/trace" | tr '\n' ' ')" "start model tool tool model end "
	assert_eq "$(stat -c %a "$T/trace")" 600
	assert_eq "$(jq -r 'select(.event == "start") | .task' "$T/trace")" "six times seven"
	assert_contains "$(jq -c 'select(.event == "start") | .tools' "$T/trace")" '"calculate","record"'
	t=$(jq -c 'select(.event == "tool" and .name == "calculate")' "$T/trace")
	assert_eq "$(jq -c '{step, approval, ok, result, arguments}' <<<"$t")" \
		'{"step":1,"approval":"not needed","ok":true,"result":"{\"result\":42}","arguments":"{\"expression\":\"6*7\"}"}'
	assert_eq "$(jq -r '.ms | type' <<<"$t")" number
	assert_eq "$(jq -r 'select(.event == "tool" and .name == "touch") | .approval' "$T/trace")" "no terminal"
	m=$(jq -c 'select(.event == "model" and .step == 2)' "$T/trace")
	assert_eq "$(jq -c '{prompt_tokens, completion_tokens, content}' <<<"$m")" \
		'{"prompt_tokens":30,"completion_tokens":2,"content":"42"}'
	assert_eq "$(jq -c 'select(.event == "end") | {status, steps, calls, answer}' "$T/trace")" \
		'{"status":"answer","steps":2,"calls":2,"answer":"42"}'
	! grep -qF "$KEY" "$T/trace"
	# - is stderr
	push '{"reply":"hi"}'
	run --separate-stderr agent --trace - "hello"
	assert_eq "$output" "hi"
	assert_eq "$(jq -r .event <<<"$stderr" | tr '\n' ' ')" "start model end "
}

@test "agent: results in the trace are cut, and long tool output reaches it only in part" {
	push "$(calls '{"name":"big","arguments":{}}')" '{"reply":"ok"}'
	run --separate-stderr agent --tools "$FIX/tools.json" --trace "$T/trace" "big"
	assert_eq "$status" 0
	t=$(jq -c 'select(.event == "tool")' "$T/trace")
	assert_eq "$(jq -r .result_truncated <<<"$t")" true
	(($(jq -r '.result | length' <<<"$t") <= 2048))
}

@test "agent: a user tool may not take a built-in name" {
	run --separate-stderr agent --tools "$FIX/clash.json" "x"
	assert_eq "$status" 78
	assert_contains "$stderr" "ai-agent: the tool 'calculate' takes the name of a built-in tool; rename it"
	assert_eq "$(request_count $CHAT)" 0
}

@test "agent: tools in ~/.config/ai/tools are loaded unless --no-default-tools" {
	mkdir -p "$XDG_CONFIG_HOME/ai/tools"
	cp "$FIX/tools.json" "$XDG_CONFIG_HOME/ai/tools/mine.json"
	push '{"reply":"a"}' '{"reply":"b"}'
	run --separate-stderr agent "x"
	assert_eq "$status" 0 "status ($stderr)"
	assert_contains "$(last_request $CHAT | jq -c '[.body.tools[].function.name]')" '"record"'
	run agent --no-default-tools "x"
	assert_eq "$(last_request $CHAT | jq -c '[.body.tools[].function.name]')" '["calculate"]'
}

@test "agent: an endpoint without tool calling is named with its model" {
	push '{"status":400,"body":{"error":{"message":"registry.ollama.ai/library/gemma:2b does not support tools"}}}'
	run --separate-stderr agent -m gemma:2b "x"
	assert_eq "$status" 69
	assert_contains "$stderr" "ai-agent: $OPENAI_BASE_URL refused a request with tools for the model 'gemma:2b'"
	assert_contains "$stderr" "may not support tool calling"
	assert_contains "$stderr" "does not support tools"
	assert_eq "$output" ""
}

@test "agent: a server failing mid-task is a temporary failure, traced" {
	push "$(calls '{"name":"calculate","arguments":{"expression":"1"}}')" '{"status":503}'
	run --separate-stderr agent --trace "$T/trace" "x"
	assert_eq "$status" 75
	assert_contains "$stderr" "503"
	assert_not_contains "$stderr" "tool calling"
	assert_eq "$(tail -n 1 "$T/trace" | jq -r .status)" error
}

@test "agent: the task comes from stdin when there are no arguments; none is an error" {
	push '{"reply":"fine"}'
	run --separate-stderr agent <<<"task from stdin"
	assert_eq "$output" "fine"
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[1].content')" "task from stdin"
	run --separate-stderr agent </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no task"
}

@test "agent: bad options are usage errors" {
	run --separate-stderr agent --max-steps 0 x
	assert_eq "$status" 64
	run --separate-stderr agent --tool-timeout soon x
	assert_eq "$status" 64
	run --separate-stderr agent --db-sql "$T/missing.db" x
	assert_eq "$status" 66
	assert_contains "$stderr" "missing.db"
	run --separate-stderr agent --db "$T/missing.db" x
	assert_eq "$status" 66
	run --separate-stderr agent --tools "$T/missing.json" x
	assert_eq "$status" 78
	assert_eq "$(request_count $CHAT)" 0
}

@test "agent: --dry-run shows the request with its tools and sends nothing" {
	run --separate-stderr agent --dry-run "x"
	assert_eq "$status" 0
	assert_contains "$output" "POST $OPENAI_BASE_URL/chat/completions"
	assert_contains "$output" '"tools"'
	assert_not_contains "$output" "$KEY"
	assert_eq "$(request_count $CHAT)" 0
}

@test "agent: output that cannot be written is an error" {
	push '{"reply":"x"}'
	run --separate-stderr bash -c 'ai-agent --no-cache task >/dev/full'
	assert_eq "$status" 74
}

@test "agent: escape sequences in the answer are shown on a terminal, kept with --raw or in a pipe" {
	command -v script >/dev/null || skip "script(1) is not installed"
	ctl '{"set":{"reply":"done\u001b]0;owned\u0007\u001b[2J!"}}'
	out=$(on_tty "ai-agent --no-cache --no-default-tools 'do it'" </dev/null)
	assert_not_contains "$out" $'\e'
	assert_contains "$out" $'done\u241b]0;owned\u2407\u241b[2J!'
	out=$(on_tty "ai-agent --no-cache --no-default-tools --raw 'do it'" </dev/null)
	assert_contains "$out" $'done\e]0;owned\a\e[2J!'
	agent --no-default-tools "do it" >"$T/out"
	assert_eq "$(od -An -tx1 "$T/out")" "$(printf 'done\e]0;owned\a\e[2J!\n' | od -An -tx1)"
}

@test "agent: a tool name the model made up is shown, not obeyed, in the steps on stderr" {
	push "$(calls '{"name":"x\u001b]0;pwned\u0007\u001b[2J","arguments":{}}')" \
		"$(calls '{"name":"calculate","arguments":{"expression":"1+1"}}')"
	run --separate-stderr agent --max-steps 2 "loop"
	assert_eq "$status" 2
	assert_not_contains "$stderr" $'\e'
	assert_contains "$stderr" $'step 1: x\u241b]0;pwned\u2407\u241b[2J {}: failed'
}
