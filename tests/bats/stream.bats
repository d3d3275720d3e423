#!/usr/bin/env bats
# ai-stream against the test server: deltas printed as they arrive, the
# output formats, the history file, and the ways a stream fails.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions

# raw_stream BODY: the next chat request is answered with BODY as its event stream.
raw_stream() {
	ctl "$(jq -cn --arg raw "$1" '{push: [{raw: $raw}]}')"
}

@test "stream: sends one streaming request with the message from the arguments" {
	run --separate-stderr ai-stream -m m1 --temperature 0.5 --max-tokens 40 what is up
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$output" "echo: what is up"
	assert_eq "$(request_count $CHAT)" 1
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .body.stream <<<"$r")" true
	assert_eq "$(jq -r .body.stream_options.include_usage <<<"$r")" true
	assert_eq "$(jq -r .body.model <<<"$r")" m1
	assert_eq "$(jq -r .body.temperature <<<"$r")" 0.5
	assert_eq "$(jq -r .body.max_tokens <<<"$r")" 40
	assert_eq "$(jq -c .body.messages <<<"$r")" '[{"role":"user","content":"what is up"}]'
	assert_eq "$(jq -r .headers.accept <<<"$r")" text/event-stream
}

@test "stream: the message comes from stdin when there are no arguments" {
	run --separate-stderr ai-stream --system "Be terse." <<<"from stdin"
	assert_eq "$status" 0
	assert_eq "$output" "echo: from stdin"
	assert_eq "$(last_request $CHAT | jq -c .body.messages)" \
		'[{"role":"system","content":"Be terse."},{"role":"user","content":"from stdin"}]'
}

@test "stream: the first delta reaches stdout while the server still holds the stream open" {
	ctl '{"push":[{"hold_ms":2000}]}'
	mkfifo "$T/out"
	ai-stream --no-cache one two three >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	exec 4<"$T/out"
	first=
	IFS= read -r -t 1.5 -N 6 first <&4 || true
	alive=0
	kill -0 "$pid" 2>/dev/null && alive=1
	rest=$(cat <&4)
	exec 4<&-
	wait "$pid"
	assert_eq "$first" "echo: " "first delta within 1.5 s"
	assert_eq "$alive" 1 "ai-stream still streaming when the first delta was read"
	assert_eq "$rest" "one two three"
}

@test "stream: --json writes a line per delta, then a record with finish_reason, usage and times" {
	ctl '{"push":[{"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}]}'
	run --separate-stderr ai-stream --json --no-cache a b c
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	n=$(wc -l <<<"$output")
	((n == 5))
	assert_eq "$(head -n 4 <<<"$output" | jq -r .type | sort -u)" delta
	assert_eq "$(head -n 4 <<<"$output" | jq -j .content)" "echo: a b c"
	last=$(tail -n 1 <<<"$output")
	assert_eq "$(jq -r .type <<<"$last")" done
	assert_eq "$(jq -r .finish_reason <<<"$last")" stop
	assert_eq "$(jq -c .usage <<<"$last")" '{"prompt_tokens":7,"completion_tokens":3,"cached_tokens":null,"reasoning_tokens":null}'
	assert_eq "$(jq -r .cached <<<"$last")" false
	assert_eq "$(jq -r '(.ttft_ms|type) + " " + (.total_ms|type)' <<<"$last")" "number number"
	assert_eq "$(jq -r '.ttft_ms <= .total_ms and .ttft_ms > 0' <<<"$last")" true
}

@test "stream: --json ends a failed stream with an error record" {
	ctl '{"push":[{"cut_after":3}]}'
	run --separate-stderr ai-stream --json --no-cache --retries 0 a b c
	assert_eq "$status" 75
	last=$(tail -n 1 <<<"$output")
	assert_eq "$(jq -r .type <<<"$last")" error
	assert_eq "$(jq -r .exit <<<"$last")" 75
	assert_eq "$(jq -r .partial <<<"$last")" true
	assert_contains "$(jq -r .message <<<"$last")" "broke mid-answer"
	assert_eq "$(head -n 1 <<<"$output" | jq -r .content)" "echo: "
}

@test "stream: --sse writes text/event-stream frames" {
	run --separate-stderr ai-stream --sse --no-cache x y
	assert_eq "$status" 0
	# Every frame is one data line and a blank line.
	assert_eq "$(awk 'NR % 2 == 1 && !/^data: \{/ || NR % 2 == 0 && $0 != ""' <<<"$output")" ""
	data=$(sed -n 's/^data: //p' <<<"$output")
	assert_eq "$(jq -j 'select(.type == "delta") | .content' <<<"$data")" "echo: x y"
	assert_eq "$(tail -n 1 <<<"$data" | jq -r .type)" done
	[[ $output != Content-Type* ]]
}

@test "stream: --sse under CGI reads CONTENT_LENGTH bytes and writes the header first" {
	run --separate-stderr env GATEWAY_INTERFACE=CGI/1.1 CONTENT_LENGTH=5 ai-stream --sse --no-cache \
		<<<"hello world and more"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" hello
	assert_eq "$(head -n 1 <<<"$output")" $'Content-Type: text/event-stream; charset=utf-8\r'
	assert_contains "$output" $'\r\n\r\ndata: {"type":"delta","content":"echo: "}\n\n'
	assert_eq "$(tail -n 1 <<<"$output" | sed 's/^data: //' | jq -r .type)" done
}

@test "stream: --sse under CGI answers a failure before the stream with a status and an error frame" {
	ctl '{"push":[{"status":400}]}'
	run --separate-stderr env GATEWAY_INTERFACE=CGI/1.1 CONTENT_LENGTH=2 ai-stream --sse --no-cache <<<"hi"
	assert_eq "$status" 69
	assert_eq "$(head -n 1 <<<"$output")" $'Status: 502 Bad Gateway\r'
	assert_eq "$(tail -n 1 <<<"$output" | sed 's/^data: //' | jq -r .type)" error
	assert_contains "$stderr" "scripted 400"
}

@test "stream: --history appends each complete exchange once and sends the conversation" {
	h=$T/chat.jsonl
	run --separate-stderr ai-stream --history "$h" --system "Be brief." first question
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$h")" 3
	assert_eq "$(sed -n 1p "$h" | jq -c .)" '{"role":"system","content":"Be brief."}'
	assert_eq "$(sed -n 2p "$h" | jq -c .)" '{"role":"user","content":"first question"}'
	assert_eq "$(sed -n 3p "$h" | jq -c .)" '{"role":"assistant","content":"echo: first question"}'
	assert_eq "$(stat -c %a "$h")" 600
	run --separate-stderr ai-stream --history "$h" second
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$h")" 5
	r=$(last_request $CHAT)
	assert_eq "$(jq -c '[.body.messages[] | .role]' <<<"$r")" '["system","user","assistant","user"]'
	assert_eq "$(jq -r '.body.messages[2].content' <<<"$r")" "echo: first question"
	# --system replaces the stored one in the request; the file keeps its own.
	run --separate-stderr ai-stream --history "$h" --system "Be long." third
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$h")" 7
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[0].content')" "Be long."
	assert_eq "$(last_request $CHAT | jq '.body.messages | length')" 6
	assert_eq "$(sed -n 1p "$h" | jq -r .content)" "Be brief."
}

@test "stream: the history file is untouched when the exchange fails" {
	h=$T/chat.jsonl
	ai-stream --history "$h" hello >/dev/null
	cp "$h" "$T/before"
	ctl '{"push":[{"cut_after":3}]}'
	run ai-stream --history "$h" --no-cache --retries 0 a b c
	assert_eq "$status" 75
	ctl '{"push":[{"error_event":{"message":"overloaded"}}]}'
	run ai-stream --history "$h" --no-cache a b c
	assert_eq "$status" 69
	ctl '{"push":[{"status":500}]}'
	run ai-stream --history "$h" --no-cache --retries 0 a b c
	assert_eq "$status" 75
	cmp "$h" "$T/before"
}

@test "stream: concurrent writers never interleave their exchanges in the history" {
	h=$T/chat.jsonl
	pids=()
	for i in 1 2 3 4 5 6; do
		ai-stream --no-cache --history "$h" "message $i" >/dev/null 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	assert_eq "$(wc -l <"$h")" 12
	# Each user line is followed by its own answer.
	assert_eq "$(jq -s -r '[range(0; length; 2) as $i | .[$i].role == "user" and
		.[$i + 1].content == "echo: " + .[$i].content] | all' "$h")" true
}

@test "stream: a history line that is not a message is refused before anything is sent" {
	printf '%s\n' '{"role":"user","content":"hi"}' 'not json' >"$T/h"
	run --separate-stderr ai-stream --history "$T/h" hello
	assert_eq "$status" 65
	assert_contains "$stderr" "line 2"
	assert_eq "$(request_count $CHAT)" 0
	printf '%s\n' '{"role":"user"}' >"$T/h2"
	run --separate-stderr ai-stream --history "$T/h2" hello
	assert_eq "$status" 65
}

@test "stream: a history file without a final newline gets one before the new lines" {
	printf '%s' '{"role":"user","content":"hi"}' >"$T/h"
	run ai-stream --history "$T/h" hello
	assert_eq "$status" 0
	assert_eq "$(jq -s -c '[.[] | .content]' "$T/h")" '["hi","hello","echo: hello"]'
	assert_eq "$(wc -l <"$T/h")" 3
}

@test "stream: a stream cut short keeps what was printed, says so and is not retried" {
	ctl '{"push":[{"cut_after":3}]}'
	run --separate-stderr ai-stream --no-cache --retries 2 one two three
	assert_eq "$status" 75
	assert_eq "$output" "echo: one "
	assert_contains "$stderr" "ai-stream: "
	assert_contains "$stderr" "broke mid-answer"
	assert_eq "$(request_count $CHAT)" 1
}

@test "stream: an error event from the server exits 69 with its message" {
	ctl '{"push":[{"error_event":{"message":"model overloaded","type":"server_error"}}]}'
	run --separate-stderr ai-stream --no-cache one two three
	assert_eq "$status" 69
	assert_eq "$output" "echo: "
	assert_contains "$stderr" "model overloaded"
	assert_eq "$(request_count $CHAT)" 1
}

@test "stream: a silent gap longer than --idle-timeout ends the stream with 75" {
	ctl '{"push":[{"hold_ms":3000}]}'
	start=$(date +%s%N)
	run --separate-stderr ai-stream --no-cache --idle-timeout 300ms one two
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 75
	assert_eq "$output" "echo: "
	assert_contains "$stderr" "--idle-timeout"
	assert_eq "$(request_count $CHAT)" 1
	((ms < 2000)) || { echo "took $ms ms" >&2; false; }
	run --separate-stderr ai-stream --idle-timeout 0 x
	assert_eq "$status" 64
	run --separate-stderr ai-stream --idle-timeout soon x
	assert_eq "$status" 64
}

@test "stream: a stream that ends without [DONE] or a finish reason exits 75" {
	raw_stream $'data: {"choices":[{"index":0,"delta":{"content":"half an "}}]}\n\ndata: {"choices":[{"index":0,"delta":{"content":"answer"}}]}\n\n'
	run --separate-stderr ai-stream --no-cache x
	assert_eq "$status" 75
	assert_eq "$output" "half an answer"
	assert_contains "$stderr" "[DONE]"
}

@test "stream: no [DONE] even after a finish reason keeps the text and exits 75" {
	ctl '{"push":[{"no_done":true}]}'
	run --separate-stderr ai-stream --no-cache --history "$T/h.jsonl" x
	assert_eq "$status" 75
	assert_eq "$output" "echo: x"
	assert_contains "$stderr" "without [DONE]"
	[[ ! -s $T/h.jsonl ]]
}

@test "stream: a 500 before the first byte is retried and the answer printed once" {
	ctl '{"push":[{"status":500}]}'
	run --separate-stderr ai-stream --no-cache --retries 1 hello
	assert_eq "$status" 0
	assert_eq "$output" "echo: hello"
	assert_eq "$(request_count $CHAT)" 2
	ctl '{"push":[{"status":503}]}'
	run --separate-stderr ai-stream --no-cache --retries 0 hello
	assert_eq "$status" 75
	assert_eq "$output" ""
	assert_contains "$stderr" "503"
	ctl '{"push":[{"status":400}]}'
	run --separate-stderr ai-stream --no-cache --retries 2 hello
	assert_eq "$status" 69
	assert_eq "$(request_count $CHAT)" 4
}

@test "stream: SIGINT mid-stream exits 130 and leaves the history alone" {
	ctl '{"push":[{"hold_ms":5000}]}'
	ai-stream --no-cache --history "$T/h" one two >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	wait_for_output "$T/out" "echo: "
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 130
	assert_eq "$(cat "$T/out")" "echo: "
	[[ ! -e $T/h ]]
}

@test "stream: a reader that goes away (| head -1) ends it quietly" {
	ctl '{"push":[{"reply":"one\ntwo\nthree\n","hold_ms":300}]}'
	run --separate-stderr bash -c 'set -o pipefail; ai-stream --no-cache x | head -n 1'
	assert_eq "$status" 0
	assert_eq "$output" one
	assert_eq "$stderr" ""
}

@test "stream: output that cannot be written fails with 74" {
	run --separate-stderr bash -c 'ai-stream --no-cache x >/dev/full'
	assert_eq "$status" 74
	assert_contains "$stderr" "cannot write"
}

@test "stream: control sequences are neutralised on a terminal, kept with --raw or in a pipe" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	reply='{"set":{"reply":"a\u001b[31mred\u001b]0;title\u0007 b\u009bc\rd\u007fe\tf"}}'
	ctl "$reply"
	out=$(on_tty "ai-stream --no-cache x" </dev/null)
	assert_not_contains "$out" $'\e'
	assert_not_contains "$out" $'\a'
	assert_not_contains "$out" $'\u009b'
	assert_not_contains "$out" $'\x7f'
	assert_contains "$out" $'a\u241b[31mred\u241b]0;title\u2407 b\ufffdc\u240dd\u2421e\tf'
	out=$(on_tty "ai-stream --no-cache --raw x" </dev/null)
	assert_contains "$out" $'a\e[31mred\e]0;title\a'
	out=$(ai-stream --no-cache x)
	assert_eq "$out" $'a\e[31mred\e]0;title\a b\u009bc\rd\x7fe\tf'
}

@test "stream: an error the server sends in the stream is shown on stderr, not obeyed, on a terminal or not" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	ctl '{"push":[{"error_event":{"message":"over\u001b]0;pwned\u0007loaded\u001b[2J"}}]}'
	run --separate-stderr ai-stream --no-cache x
	assert_eq "$status" 69
	assert_not_contains "$stderr" $'\e'
	assert_contains "$stderr" $'over\u241b]0;pwned\u2407loaded\u241b[2J'
	ctl '{"push":[{"error_event":{"message":"over\u001b]0;pwned\u0007loaded\u001b[2J"}}]}'
	out=$(on_tty "ai-stream --no-cache --raw x" </dev/null) || true
	assert_not_contains "$out" $'\e'
	assert_contains "$out" $'over\u241b]0;pwned\u2407loaded\u241b[2J'
}

@test "stream: on a terminal a character split between deltas stays whole, stray bytes do not" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	body=$(printf 'data: {"choices":[{"index":0,"delta":{"content":"caf\xc3"}}]}\n\ndata: {"choices":[{"index":0,"delta":{"content":"\xa9 \xff!"},"finish_reason":"stop"}]}\n\ndata: [DONE]')
	# Escaped by hand: jq would turn the lone bytes into U+FFFD before the server saw them.
	body=${body//\"/\\\"}
	body=${body//$'\n'/\\n}
	printf '{"push":[{"raw":"%s\\n\\n"}]}' "$body" >"$T/ctl"
	curl -sS --noproxy '*' --fail-with-body --data-binary @"$T/ctl" "http://127.0.0.1:$PORT/_control" >/dev/null
	out=$(on_tty "ai-stream --no-cache x" </dev/null)
	assert_eq "$out" $'caf\u00e9 \ufffd!\r'
}

@test "stream: the same request twice is served from the cache, still as a stream" {
	run --separate-stderr ai-stream --json one two three
	assert_eq "$status" 0
	first=$(head -n -1 <<<"$output" | jq -j .content)
	run --separate-stderr ai-stream --json one two three
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 1
	assert_eq "$(head -n -1 <<<"$output" | jq -j .content)" "$first"
	(($(head -n -1 <<<"$output" | wc -l) > 1))
	assert_eq "$(tail -n 1 <<<"$output" | jq -r .cached)" true
	run --separate-stderr ai-stream one two three
	assert_eq "$output" "echo: one two three"
	assert_eq "$(request_count $CHAT)" 1
}

@test "stream: -i answers a line at a time and keeps the conversation" {
	run --separate-stderr ai-stream -i --no-cache --history "$T/h" <<<$'first\n\nsecond'
	assert_eq "$status" 0
	assert_eq "$output" $'echo: first\necho: second'
	assert_eq "$stderr" ""
	assert_eq "$(request_count $CHAT)" 2
	assert_eq "$(last_request $CHAT | jq -c '[.body.messages[] | .content]')" \
		'["first","echo: first","second"]'
	assert_eq "$(wc -l <"$T/h")" 4
}

@test "stream: -i on SIGINT stops the answer, not the program" {
	ctl '{"push":[{"hold_ms":5000}]}'
	mkfifo "$T/in"
	ai-stream -i --no-cache --history "$T/h" <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	exec 5>"$T/in"
	echo "first question" >&5
	wait_for_output "$T/out" "echo: "
	kill -INT "$pid"
	wait_for_output "$T/err" "interrupted"
	echo "second one" >&5
	wait_for_output "$T/out" "echo: second one"
	exec 5>&-
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 0
	assert_eq "$(cat "$T/out")" $'echo: \necho: second one'
	assert_eq "$(jq -s -c '[.[] | .content]' "$T/h")" '["second one","echo: second one"]'
	assert_eq "$(last_request $CHAT | jq '.body.messages | length')" 1
}

@test "stream: -i on a terminal prompts, Ctrl-C stops the answer or clears the line, Ctrl-D ends" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	ctl '{"push":[{"hold_ms":5000}]}'
	# Keys typed at the terminal, each when the screen shows what it answers:
	# ^C and ^D go through the pseudo-terminal's line discipline.
	tty=$T/tty
	: >"$tty"
	keys() {
		wait_for_output "$tty" "> " || return
		printf 'first one\n'
		wait_for_output "$tty" "echo: " || return
		printf '\003'
		wait_for_output "$tty" "> " "answer interrupted" || return
		printf 'again\n'
		wait_for_output "$tty" "> " "echo: again" || return
		printf 'half typed'
		wait_for_output "$tty" "half typed" "echo: again" || return
		printf '\003'
		wait_for_output "$tty" "> " "half typed" || return
		printf '\004'
	}
	rc=0
	keys | on_tty "ai-stream -i --no-cache" >"$tty" || rc=$?
	out=$(<"$tty")
	assert_eq "$rc" 0
	assert_contains "$out" "ai-stream: answer interrupted"
	assert_contains "$out" "echo: again"
	assert_eq "$(request_count $CHAT)" 2
	assert_eq "$(last_request $CHAT | jq -c '[.body.messages[] | .content]')" '["again"]'
}

@test "stream: bad command lines and bad input" {
	run --separate-stderr ai-stream --sse --json x
	assert_eq "$status" 64
	run --separate-stderr ai-stream --sse -i
	assert_eq "$status" 64
	run --separate-stderr ai-stream </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no message"
	run --separate-stderr ai-stream "$(printf 'bad \xff byte')"
	assert_eq "$status" 65
	printf 'nul\0byte' >"$T/nul"
	run --separate-stderr ai-stream <"$T/nul"
	assert_eq "$status" 65
	assert_eq "$(request_count $CHAT)" 0
	run ai-stream -h
	assert_eq "$status" 0
	assert_contains "$output" "--idle-timeout"
}

@test "stream: --dry-run prints the streaming request and sends nothing" {
	run --separate-stderr ai-stream --dry-run --history "$T/h" hi
	assert_eq "$status" 0
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	assert_contains "$output" '"stream":true'
	assert_not_contains "$output" "$KEY"
	assert_eq "$(request_count $CHAT)" 0
	[[ ! -e $T/h ]]
}

@test "stream: a server that ignores stream:true and sends one JSON object is still read" {
	ctl '{"push":[{"status":200,"body":{"choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}}]}'
	run --separate-stderr ai-stream --no-cache --json hello
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.type=="delta").content' <<<"$output")" "whole answer"
	assert_eq "$(jq -r 'select(.type=="done").usage.completion_tokens' <<<"$output")" 2
}

@test "stream: a 404 from a base URL without /v1 asks whether it needs /v1" {
	run --separate-stderr ai-stream --no-cache --base-url "http://127.0.0.1:$PORT/" hello
	assert_eq "$status" 69
	assert_contains "$stderr" "the server answered 404"
	assert_contains "$stderr" "; does the base URL need /v1? (OPENAI_BASE_URL=http://127.0.0.1:$PORT/v1)"
	# The embeddings requests of ai-index say it too.
	run --separate-stderr ai-index --db "$T/i.db" --base-url "http://127.0.0.1:$PORT" --source s <<<"text"
	assert_contains "$stderr" "does the base URL need /v1?"
	# With /v1 there, a 404 is about something else.
	ctl '{"push":[{"status":404,"body":{"error":{"message":"no route"}}}]}'
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 69
	assert_contains "$stderr" "no route"
	assert_not_contains "$stderr" "/v1?"
}
