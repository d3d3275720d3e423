#!/usr/bin/env bats
# Where settings come from: a profile named beats the environment as a
# whole (endpoint, model and key together), quoted values lose their quotes,
# and the config file's mistakes are named with their line.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	mkdir -p "$XDG_CONFIG_HOME/ai"
	CONF=$XDG_CONFIG_HOME/ai/config
}
teardown() { stop_server; }

CHAT=/v1/chat/completions

@test "settings: -p picks the profile's endpoint and model over an exported OPENAI_BASE_URL" {
	cat >"$CONF" <<-EOF
	[profile local]
	base_url = $OPENAI_BASE_URL
	model = llama3.2
	EOF
	# The README exports OPENAI_BASE_URL; here it points nowhere.
	export OPENAI_BASE_URL=http://127.0.0.1:9/v1 AI_MODEL=gpt-4o
	run --separate-stderr ai-summarize -p local --dry-run <<<"text"
	assert_eq "$status" 0
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	assert_contains "$output" '"model":"llama3.2"'
	run --separate-stderr ai-stream --no-cache -p local hello
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .body.model <<<"$r")" llama3.2
	# The exported key belongs to the exported endpoint: the profile's server never sees it.
	assert_eq "$(jq -r '.headers.authorization // "none"' <<<"$r")" none
	assert_not_contains "$(cat "$SERVER_LOG")" "$KEY"
}

@test "settings: the key goes with its endpoint: a profile naming the same URL keeps OPENAI_API_KEY" {
	cat >"$CONF" <<-EOF
	[profile same]
	base_url = $OPENAI_BASE_URL/
	model = m-same
	EOF
	run --separate-stderr ai-stream --no-cache -p same hello
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer $KEY"
}

@test "settings: a quoted value loses its quotes; a bad quote names the line" {
	printf 'model = "gpt-4o"\nsystem = '\''Be brief.'\''\n' >"$CONF"
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .body.model <<<"$r")" gpt-4o
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "Be brief."
	printf '# models\nmodel = "gpt-4o\n' >"$CONF"
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-stream: $CONF:2: the quoted value has no closing \""
}

@test "settings: a profile defined twice, a mistyped key, a failing api_key_cmd: each named" {
	printf '[profile local]\nmodel = a\n\n[profile local]\nmodel = b\n' >"$CONF"
	run --separate-stderr ai-stream --no-cache -p local hello
	assert_eq "$status" 78
	assert_contains "$stderr" "$CONF:4: profile 'local' is defined twice (first at line 1)"
	printf 'temprature = 0.2\n' >"$CONF"
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 78
	assert_contains "$stderr" "$CONF:1: unknown setting 'temprature'; did you mean 'temperature'?"
	unset OPENAI_API_KEY
	printf 'api_key_cmd = exit 3\n' >"$CONF"
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-stream: api_key_cmd failed (status 3): check it in '$CONF'"
	assert_eq "$(request_count $CHAT)" 0
}

@test "settings: api_key_cmd reads an empty stdin, so it cannot eat the lines piped to the program" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = cat >%s; echo sk-cmd\n' "$T/eaten" >"$CONF"
	# The second line comes after the first answer, when the key command has run:
	# with the program's stdin, it would wait for it and take it.
	mkfifo "$T/in"
	ai-stream --no-cache -i <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	exec 5>"$T/in"
	echo one >&5
	wait_for_output "$T/out" "echo: one"
	echo two >&5
	wait_for_output "$T/out" "echo: two"
	exec 5>&-
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 0
	assert_eq "$(cat "$T/eaten")" ""
	assert_eq "$(request_count $CHAT)" 2
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-cmd"
}

@test "settings: an api_key_cmd that never ends is killed, with what it started, after 10 s" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = sleep 300 & echo $! >%s; wait\n' "$T/child" >"$CONF"
	SECONDS=0
	run --separate-stderr ai-summarize --no-cache <<<"text"
	elapsed=$SECONDS
	assert_eq "$status" 75
	assert_eq "$stderr" "ai-summarize: api_key_cmd did not finish in 10 s and was killed: check it in '$CONF'"
	((elapsed >= 9 && elapsed <= 13)) || { echo "took $elapsed s" >&2; false; }
	[[ -s $T/child ]]
	if running "$(cat "$T/child")"; then echo "its child outlived it" >&2; false; fi
	assert_eq "$(request_count $CHAT)" 0
}

@test "settings: SIGTERM while api_key_cmd runs stops it and the program at once" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = sleep 300 & echo $! >%s; wait\n' "$T/child" >"$CONF"
	ai-summarize --no-cache <<<"text" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	for ((i = 0; i < 500; i++)); do [[ -s $T/child ]] && break; sleep 0.01; done
	signal_wait TERM "$pid"
	assert_eq "$rc" 143
	((ms < 1000)) || { echo "took $ms ms" >&2; false; }
	[[ -s $T/child ]]
	if running "$(cat "$T/child")"; then echo "its child outlived it" >&2; false; fi
}

@test "settings: an api_key_cmd that prints nothing, or an empty line, is a configuration error" {
	unset OPENAI_API_KEY
	for cmd in true 'printf ""' 'echo; echo sk-late'; do
		printf 'api_key_cmd = %s\n' "$cmd" >"$CONF"
		run --separate-stderr ai-summarize --no-cache <<<"text"
		assert_eq "$status" 78 "status for '$cmd'"
		want=nothing
		[[ $cmd != echo* ]] || want="an empty first line"
		assert_eq "$stderr" "ai-summarize: api_key_cmd printed $want: check it in '$CONF'"
	done
	assert_eq "$(request_count $CHAT)" 0
}

@test "settings: api_key_cmd's first line is the key, whatever follows it (pass show with notes)" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = echo sk-cmd; head -c 100000 /dev/zero | tr "\\0" x\n' >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-cmd"
	# A first line with no end in sight is refused, not cut.
	printf 'api_key_cmd = head -c 5000 /dev/zero | tr "\\0" x\n' >"$CONF"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 78
	assert_eq "$stderr" "ai-summarize: api_key_cmd printed a first line longer than 4096 bytes: check it in '$CONF'"
}

@test "settings: an api_key_cmd that leaves a process holding its output is done when its shell is" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = echo sk-cmd; sleep 30 & echo $! >%s\n' "$T/child" >"$CONF"
	SECONDS=0
	run --separate-stderr ai-summarize --no-cache <<<"text"
	elapsed=$SECONDS
	[[ -s $T/child ]] && kill "$(cat "$T/child")" 2>/dev/null || true
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	((elapsed <= 2)) || { echo "took $elapsed s" >&2; false; }
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-cmd"
}

@test "settings: SIGCHLD ignored at start does not lose api_key_cmd's status" {
	command -v perl >/dev/null || skip "no perl"
	unset OPENAI_API_KEY
	printf 'api_key_cmd = echo sk-cmd\n' >"$CONF"
	# Ignored, SIGCHLD is inherited across exec, and the kernel reaps children at once.
	run --separate-stderr perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV' ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-cmd"
}

@test "settings: api_key_cmd gets none of the program's open files (ai-batch's spool of piped input)" {
	unset OPENAI_API_KEY
	printf 'api_key_cmd = ls -l /proc/$$/fd >%s; echo sk-cmd\n' "$T/fds" >"$CONF"
	run --separate-stderr ai-batch --no-cache < <(echo '{"id":1,"text":"a"}')
	assert_eq "$status" 0
	[[ -s $T/fds ]]
	if grep -E 'ai-batch|\.db|socket:' "$T/fds"; then echo "the key command inherited these" >&2; false; fi
}

@test "settings: an api_key_cmd that asks for a passphrase on the terminal gets it (foreground, no 10 s limit)" {
	command -v script >/dev/null || skip "no script(1)"
	unset OPENAI_API_KEY
	echo text >"$T/doc"
	# stty from a background group is stopped by SIGTTOU, the read by SIGTTIN.
	printf 'api_key_cmd = stty -echo </dev/tty; read k </dev/tty; stty echo </dev/tty; echo "$k"\n' >"$CONF"
	SECONDS=0
	rc=0
	{ sleep 0.5; printf 'sk-tty\n'; sleep 3; } | on_tty "ai-summarize --no-cache $T/doc" >"$T/tty" 2>&1 || rc=$?
	elapsed=$SECONDS
	assert_eq "$rc" 0 "status (terminal: $(cat "$T/tty"))"
	((elapsed <= 6)) || { echo "took $elapsed s" >&2; false; }
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-tty"
}

@test "settings: a history file that cannot be written stops the run before the request is paid for" {
	run --separate-stderr ai-stream --no-cache --history "$T/no/such/dir/chat.jsonl" hello
	assert_eq "$status" 74
	assert_eq "$stderr" "ai-stream: cannot create history '$T/no/such/dir/chat.jsonl': No such file or directory; create its directory first"
	assert_eq "$output" ""
	mkdir "$T/dir.jsonl"
	run --separate-stderr ai-stream --no-cache -i --history "$T/dir.jsonl" <<<"hello"
	assert_eq "$status" 74
	assert_contains "$stderr" "is not a regular file"
	assert_eq "$(request_count $CHAT)" 0
	# The same run with a directory that exists writes the exchange.
	run --separate-stderr ai-stream --no-cache --history "$T/chat.jsonl" hello
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$T/chat.jsonl")" 2
}

@test "settings: a trace or a batch state that cannot be written stops the run before any request" {
	run --separate-stderr ai-agent --no-cache --no-default-tools --trace "$T/no/dir/trace.jsonl" hello
	assert_eq "$status" 74
	assert_contains "$stderr" "cannot open the trace '$T/no/dir/trace.jsonl'"
	run --separate-stderr ai-batch --no-cache --state "$T/no/dir/run.state" <<<'{"text":"a"}'
	((status != 0))
	assert_contains "$stderr" "$T/no/dir/run.state"
	assert_eq "$output" ""
	assert_eq "$(request_count $CHAT)" 0
}
