#!/usr/bin/env bats
# ai-summarize against the test server: what is sent, what comes back, and
# the failures its users meet.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions

@test "summarize: sends one chat request with the text, model, key and user agent" {
	run --separate-stderr ai-summarize -m my-model <<<"The cat sat on the mat."
	assert_eq "$status" 0 status
	assert_eq "$stderr" "" stderr
	assert_contains "$output" "echo: "
	assert_eq "$(request_count $CHAT)" 1 requests
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .method <<<"$r")" POST
	assert_eq "$(jq -r .body.model <<<"$r")" my-model
	assert_eq "$(jq -r '.headers.authorization' <<<"$r")" "Bearer $KEY"
	assert_eq "$(jq -r '.headers["content-type"]' <<<"$r")" application/json
	assert_contains "$(jq -r '.headers["user-agent"]' <<<"$r")" "ai-tools/"
	assert_contains "$(jq -r '.body.messages[-1].content' <<<"$r")" "The cat sat on the mat."
	assert_eq "$(jq -r '.body.messages[0].role' <<<"$r")" system
	assert_eq "$(jq -r '.body.stream // "absent"' <<<"$r")" absent
}

@test "summarize: the answer is printed once, with a final newline" {
	ctl '{"push":[{"reply":"A cat sat."}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 0
	assert_eq "$output" "A cat sat."
}

@test "summarize: of --words and --length the last counts, as the man page says" {
	run --separate-stderr ai-summarize --no-cache --length short --words 80 <<<"x"
	assert_eq "$status" 0
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[-1].content')" "about 80 words"
	run --separate-stderr ai-summarize --no-cache --words 80 --length long <<<"x"
	assert_eq "$status" 0
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[-1].content')" "about 400 words"
	# The synopsis does not make them exclusive.
	if command -v mandoc >/dev/null; then
		page=$(mandoc -Tascii -O width=1000 "$BATS_TEST_DIRNAME/../../man/ai-summarize.1" | sed 's/.\x08//g')
		assert_not_contains "$(sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' <<<"$page")" "--words n | --length"
		assert_contains "$page" "when both are given, the last one counts"
	fi
}

@test "summarize: options shape the instruction" {
	run ai-summarize --words 30 -f bullets --lang German --focus "the dates" <<<"x"
	assert_eq "$status" 0
	c=$(last_request $CHAT | jq -r '.body.messages[-1].content')
	assert_contains "$c" "bullet points"
	assert_contains "$c" "about 30 words"
	assert_contains "$c" "in German"
	assert_contains "$c" "Focus on: the dates"
	run ai-summarize --prompt "Translate to French:" --temperature 0.2 --max-tokens 50 <<<"hello"
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[-1].content' <<<"$r")" $'Translate to French:\n\nhello'
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0.2
	assert_eq "$(jq -r '.body.max_tokens' <<<"$r")" 50
}

@test "summarize: files are read in order, as cat reads them, and - is stdin" {
	printf 'first file\n' >"$T/a"
	printf 'second file\n' >"$T/b"
	run ai-summarize --prompt P "$T/a" - "$T/b" <<<"from stdin"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" \
		$'P\n\nfirst file\nfrom stdin\nsecond file'
}

@test "summarize: --json prints one object with summary, model, usage, latency, cached, parts" {
	ctl '{"push":[{"reply":"Short.","usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}]}'
	run --separate-stderr ai-summarize --json -m m1 <<<"some text"
	assert_eq "$status" 0
	assert_eq "$(jq -r .summary <<<"$output")" Short.
	assert_eq "$(jq -r .model <<<"$output")" m1
	assert_eq "$(jq -c .usage <<<"$output")" '{"prompt_tokens":11,"completion_tokens":2}'
	assert_eq "$(jq -r '.latency_ms|type' <<<"$output")" number
	assert_eq "$(jq -r .cached <<<"$output")" false
	assert_eq "$(jq -r .parts <<<"$output")" 1
	assert_eq "$(wc -l <<<"$output")" 1 lines
}

@test "summarize: 429 with Retry-After is waited out, then the answer" {
	ctl '{"push":[{"status":429,"headers":{"Retry-After":"1"}}]}'
	start=$(date +%s%N)
	run --separate-stderr ai-summarize --no-cache <<<"text"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2 requests
	((ms >= 1000)) || { echo "waited only ${ms} ms" >&2; false; }
	t=($(requests $CHAT | jq -r .t))
	gap=$(awk -v a="${t[0]}" -v b="${t[1]}" 'BEGIN { printf "%d", b - a }')
	((gap >= 950)) || { echo "requests ${gap} ms apart" >&2; false; }
}

@test "summarize: retry-after-ms is honoured in milliseconds" {
	ctl '{"push":[{"status":503,"headers":{"retry-after-ms":"300","Retry-After":"30"}}]}'
	start=$(date +%s%N)
	run ai-summarize --no-cache <<<"text"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
	((ms >= 280 && ms < 5000)) || { echo "took ${ms} ms" >&2; false; }
}

@test "summarize: 500 three times is a temporary failure after exactly 3 requests" {
	ctl '{"push":[{"status":500,"times":3,"body":{"error":{"message":"the model crashed"}}}]}'
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 75
	assert_eq "$output" ""
	assert_contains "$stderr" "ai-summarize: "
	assert_contains "$stderr" "500"
	assert_contains "$stderr" "the model crashed"
	assert_eq "$(request_count $CHAT)" 3 requests
}

@test "summarize: --retries 0 makes one attempt" {
	ctl '{"push":[{"status":502,"times":5}]}'
	run ai-summarize --retries 0 <<<"text"
	assert_eq "$status" 75
	assert_eq "$(request_count $CHAT)" 1
}

@test "summarize: 400 is not retried and its message is quoted" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"context too long","type":"invalid_request_error"}}}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 69
	assert_contains "$stderr" "context too long"
	assert_eq "$(request_count $CHAT)" 1 requests
}

@test "summarize: an error that is a plain string is quoted too" {
	ctl '{"push":[{"status":404,"body":{"error":"model not found: nope"}}]}'
	run --separate-stderr ai-summarize -m nope <<<"text"
	assert_eq "$status" 69
	assert_contains "$stderr" "model not found: nope"
	# It says the model does not exist: the hint is the list of those that do.
	assert_contains "$stderr" "see the models the server offers with --list-models"
}

@test "summarize: 401 is a configuration error that says how to fix it" {
	ctl '{"push":[{"status":401,"body":{"error":{"message":"Incorrect API key provided"}}}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "Incorrect API key"
	assert_contains "$stderr" "OPENAI_API_KEY"
	assert_not_contains "$stderr" "$KEY"
	assert_eq "$(request_count $CHAT)" 1
}

@test "summarize: a dropped connection is retried" {
	ctl '{"push":[{"close":true}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
}

@test "summarize: a malformed answer is an error, not output" {
	ctl '{"push":[{"malformed":true}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 69
	assert_eq "$output" ""
	assert_contains "$stderr" "not a JSON object"
}

@test "summarize: an idle server meets --timeout" {
	ctl '{"set":{"latency_ms":5000}}'
	start=$(date +%s%N)
	run --separate-stderr ai-summarize --timeout 0.5 --retries 0 <<<"text"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$status" 75
	assert_contains "$stderr" "--timeout"
	((ms < 3000)) || { echo "took ${ms} ms" >&2; false; }
}

@test "summarize: connection refused is a temporary failure that names the server" {
	export OPENAI_BASE_URL="http://127.0.0.1:$(free_port)/v1"
	run --separate-stderr ai-summarize --retries 1 <<<"text"
	assert_eq "$status" 75
	assert_contains "$stderr" "cannot connect to 127.0.0.1"
}

@test "summarize: empty input exits 66 without a request" {
	run --separate-stderr ai-summarize </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no input"
	run ai-summarize <<<$'  \n\t\n'
	assert_eq "$status" 66
	assert_eq "$(request_count)" 0
}

@test "summarize: NUL bytes and invalid UTF-8 are refused with the place, nothing sent" {
	printf 'line one\nab\0cd\n' >"$T/nul"
	run --separate-stderr ai-summarize "$T/nul"
	assert_eq "$status" 65
	assert_contains "$stderr" "NUL byte at line 2, column 3"
	printf 'caf\xe9\n' >"$T/latin1"
	run --separate-stderr ai-summarize "$T/latin1"
	assert_eq "$status" 65
	assert_contains "$stderr" "not valid UTF-8 at line 1, column 4"
	assert_eq "$(request_count)" 0
}

@test "summarize: a missing file exits 66 and names it" {
	run --separate-stderr ai-summarize "$T/nope"
	assert_eq "$status" 66
	assert_contains "$stderr" "cannot open '$T/nope'"
}

@test "summarize: input over AI_MAX_INPUT is refused clearly" {
	head -c 300000 /dev/zero | tr '\0' 'a' >"$T/big"
	AI_MAX_INPUT=100K run --separate-stderr ai-summarize "$T/big"
	assert_eq "$status" 65
	assert_contains "$stderr" "larger than"
	assert_eq "$(request_count)" 0
}

@test "summarize: long input is split, the parts summarized, then combined" {
	for i in $(seq 1 60); do
		echo "Paragraph $i tells a short story about item number $i and what became of it in the end."
		echo
	done >"$T/long"
	run --separate-stderr ai-summarize --json --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	parts=$(jq -r .parts <<<"$output")
	((parts >= 4)) || { echo "parts=$parts" >&2; false; }
	n=$(request_count $CHAT)
	assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | grep -c '^This is part ')" "$parts" "part requests"
	assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | grep -c '^These are summaries')" "$((n - parts))" "combining requests"
	((n > parts)) || { echo "no combining request" >&2; false; }
	# Every part fits the budget: about 4 bytes a token, with the instruction beside it.
	max=$(requests $CHAT | jq -r '.body.messages[-1].content | length' | sort -n | tail -1)
	((max < 1400)) || { echo "a part of $max bytes" >&2; false; }
	# Every paragraph went into exactly one part.
	for i in 1 30 60; do
		assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | grep -c "Paragraph $i tells")" 1 "paragraph $i"
	done
}

@test "summarize: the key is in no argv, --dry-run, -v output or file on disk" {
	run --separate-stderr ai-summarize --dry-run <<<"text"
	assert_eq "$status" 0
	assert_contains "$output" "Authorization: Bearer [redacted]"
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	assert_not_contains "$output" "$KEY"
	assert_eq "$(request_count)" 0 "requests sent by --dry-run"
	run --separate-stderr ai-summarize -v <<<"text"
	assert_eq "$status" 0
	assert_contains "$stderr" "Authorization: [redacted]"
	assert_not_contains "$stderr" "$KEY"
	assert_not_contains "$output" "$KEY"
	run ai-summarize --api-key "$KEY" <<<"text"
	assert_eq "$status" 64
	run grep -rl -- "$KEY" "$HOME"
	assert_eq "$status" 1 "grep status (1: no file holds the key)"
}

@test "summarize: writing to a full disk fails with 74" {
	run --separate-stderr bash -c 'echo text | ai-summarize >/dev/full'
	assert_eq "$status" 74
	assert_contains "$stderr" "cannot write output"
}

@test "summarize: a reader that closes the pipe early gets no error message" {
	long=$(printf 'word %.0s' $(seq 1 20000))
	ctl "{\"push\":[{\"reply\":\"$long\"}]}"
	run --separate-stderr bash -c 'set -o pipefail; echo text | ai-summarize | head -c1'
	assert_eq "$stderr" ""
	assert_eq "$output" "w"
	assert_eq "$status" 0
}

@test "summarize: usage errors exit 64, --help 0, --version 0" {
	run --separate-stderr ai-summarize --bogus
	assert_eq "$status" 64
	assert_contains "$stderr" "unknown option"
	run --separate-stderr ai-summarize --words zero
	assert_eq "$status" 64
	assert_contains "$stderr" "--words"
	run --separate-stderr ai-summarize --format poem
	assert_eq "$status" 64
	run ai-summarize --timeout
	assert_eq "$status" 64
	run --separate-stderr ai-summarize --help
	assert_eq "$status" 0
	assert_contains "$output" "Usage: ai-summarize"
	assert_contains "$output" "--max-input-tokens"
	run ai-summarize -V
	assert_eq "$status" 0
	assert_contains "$output" "ai-summarize 0."
}

@test "summarize: without any endpoint it says in one line how to configure one" {
	unset OPENAI_API_KEY OPENAI_BASE_URL
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "OPENAI_API_KEY"
	assert_contains "$stderr" "OPENAI_BASE_URL"
	assert_eq "$(wc -l <<<"$stderr")" 1
}

@test "summarize: config file profiles, api_key_cmd, and flags over profile over environment over file" {
	unset OPENAI_API_KEY
	base=$OPENAI_BASE_URL
	unset OPENAI_BASE_URL
	cat >"$XDG_CONFIG_HOME/ai/config" 2>/dev/null || { mkdir -p "$XDG_CONFIG_HOME/ai"; }
	cat >"$XDG_CONFIG_HOME/ai/config" <<-EOF
	model = global-model
	base_url = http://127.0.0.1:1/v1
	[profile test]
	base_url = $base
	api_key_cmd = echo sk-from-cmd
	model = profile-model
	EOF
	run ai-summarize -p test <<<"text"
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .body.model <<<"$r")" profile-model
	assert_eq "$(jq -r .headers.authorization <<<"$r")" "Bearer sk-from-cmd"
	# A profile named is chosen as a whole: its model beats AI_MODEL (ai.conf(5), PRECEDENCE).
	AI_MODEL=env-model run ai-summarize -p test <<<"text"
	assert_eq "$(last_request $CHAT | jq -r .body.model)" profile-model
	AI_MODEL=env-model run ai-summarize -p test -m flag-model <<<"text"
	assert_eq "$(last_request $CHAT | jq -r .body.model)" flag-model
	run --separate-stderr ai-summarize -p nosuch <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "profile 'nosuch' not found"
}

@test "summarize: a bad config file names the file and line" {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'model = x\ntimeout = soon\n' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "config:2"
	assert_contains "$stderr" "timeout"
	printf 'api_key = sk-x\n' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "api_key_cmd"
}

@test "summarize: a key file must be private" {
	unset OPENAI_API_KEY
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo sk-from-file >"$T/key"
	chmod 644 "$T/key"
	printf 'api_key_file = %s\n' "$T/key" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "chmod 600"
	assert_eq "$(request_count)" 0
	chmod 600 "$T/key"
	run ai-summarize <<<"text"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .headers.authorization)" "Bearer sk-from-file"
}

@test "summarize: a key with a newline in it is refused, not sent as a second header" {
	export OPENAI_API_KEY=$'sk-abc\r\nX-Injected: 1'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "control character"
	assert_eq "$(request_count)" 0
}

@test "summarize: SIGINT during a request exits 130" {
	ctl '{"set":{"latency_ms":5000}}'
	ai-summarize <<<"text" >/dev/null 2>"$T/err" &
	pid=$!
	wait_for_requests 1 $CHAT
	kill -INT $pid
	rc=0
	wait $pid || rc=$?
	assert_eq "$rc" 130
}

@test "summarize: options may follow the file names, and -- ends them" {
	printf 'some text\n' >"$T/a"
	run --separate-stderr ai-summarize "$T/a" --prompt P
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" $'P\n\nsome text'
	printf 'dash file\n' >"$T/-v"
	(cd "$T" && ai-summarize --prompt Q -- -v >/dev/null)
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" $'Q\n\ndash file'
}

@test "summarize: started with stdin or stdout closed, nothing lands in the wrong file" {
	run --separate-stderr bash -c 'exec <&-; ai-summarize'
	assert_eq "$status" 66
	assert_contains "$stderr" "no input"
	# With stdout closed, the answer goes nowhere (not into a file opened later).
	run --separate-stderr bash -c 'echo text | ai-summarize >&-'
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 1
	# The ledger (opened after stdout was found closed) holds no answer text ...
	run grep -rl 'echo: ' "$XDG_DATA_HOME"
	assert_eq "$status" 1 "grep status (1: the answer is in no ledger file)"
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'PRAGMA integrity_check')" ok
	# ... and the cache entry is whole: the same call is now a hit.
	run --separate-stderr bash -c 'echo text | ai-summarize --json'
	assert_eq "$(jq -r .cached <<<"$output")" true
}

# ---- what reaches a terminal (ai(7) "Terminal output") ----

@test "summarize: escape sequences from the model are shown on a terminal, kept with --raw or in a pipe" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	ctl '{"set":{"reply":"a\u001b]0;title\u0007b\u001b[2Jc\u009bd"}}'
	echo "some text" >"$T/in.txt"
	out=$(on_tty "ai-summarize --no-cache '$T/in.txt'" </dev/null)
	assert_not_contains "$out" $'\e'
	assert_not_contains "$out" $'\a'
	assert_contains "$out" $'a\u241b]0;title\u2407b\u241b[2Jc\ufffdd'
	out=$(on_tty "ai-summarize --no-cache --raw '$T/in.txt'" </dev/null)
	assert_contains "$out" $'a\e]0;title\ab\e[2Jc\u009bd'
	# Not a terminal: byte for byte.
	ai-summarize --no-cache "$T/in.txt" >"$T/out"
	assert_eq "$(od -An -tx1 "$T/out")" "$(printf 'a\e]0;title\ab\e[2Jc\u009bd\n' | od -An -tx1)"
}

@test "summarize: a server's error message is shown on stderr, not obeyed, and stays one line" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"bad\u001b]0;pwned\u0007 request\nai-summarize: all is well"}}}]}'
	run --separate-stderr ai-summarize --no-cache <<<"x"
	assert_eq "$status" 69
	assert_eq "$output" ""
	assert_not_contains "$stderr" $'\e'
	assert_not_contains "$stderr" $'\a'
	assert_contains "$stderr" $'bad\u241b]0;pwned\u2407 request\u240aai-summarize: all is well'
	assert_eq "$(wc -l <<<"$stderr")" 1
}

@test "summarize: -v shows a server's header with its escape sequences made visible" {
	ctl '{"push":[{"headers":{"X-Note":"a\u001b[2Jb\u001b]52;c;eA==\u0007"}}]}'
	run --separate-stderr ai-summarize --no-cache -v <<<"x"
	assert_eq "$status" 0
	assert_not_contains "$stderr" $'\e'
	assert_contains "$stderr" $'< X-Note: a\u241b[2Jb\u241b]52;c;eA==\u2407'
}

# long_input FILE [N]: N (60) short paragraphs, split into several parts at --max-input-tokens 200.
long_input() {
	local i
	for ((i = 1; i <= ${2:-60}; i++)); do
		echo "Paragraph $i tells a short story about item number $i and what became of it in the end."
		echo
	done >"$1"
}

# conf LINE...: writes the config file.
conf() {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf '%s\n' "$@" >"$XDG_CONFIG_HOME/ai/config"
}

@test "summarize: --dry-run prints the estimate on stderr, beside the requests" {
	long_input "$T/long"
	run --separate-stderr ai-summarize --dry-run --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	parts=$(grep -c '^POST ' <<<"$output")
	((parts >= 4)) || { echo "parts=$parts" >&2; false; }
	assert_contains "$stderr" "ai-summarize: estimate: "
	assert_contains "$stderr" " ($parts parts, then "
	assert_contains "$stderr" "at the price of gpt-4o-mini"
	[[ $stderr =~ about\ [0-9]+\ tokens\ in\ and\ [0-9]+\ out,\ about\ \$0\.[0-9]{4} ]] ||
		{ echo "no token and dollar estimate in [$stderr]" >&2; false; }
	assert_eq "$(request_count)" 0
	# A model without a price at a loopback endpoint: no money, and it says why.
	run --separate-stderr ai-summarize --dry-run -m local-model <<<"short text"
	assert_contains "$stderr" "estimate: 1 request, about "
	assert_contains "$stderr" "\$0 at the local endpoint 127.0.0.1:$PORT"
	run --separate-stderr ai-summarize --dry-run -q <<<"short text"
	assert_eq "$stderr" ""
}

@test "summarize: above confirm_over without a terminal: refused (64), nothing sent; --yes sends" {
	long_input "$T/long"
	conf 'confirm_over = 0.0001'
	run --separate-stderr setsid -w ai-summarize --max-input-tokens 200 "$T/long"
	assert_eq "$status" 64
	assert_eq "$output" ""
	assert_contains "$stderr" "ai-summarize: not sent: "
	assert_contains "$stderr" "more than confirm_over (\$0.0001), and there is no terminal to ask on; pass --yes"
	assert_eq "$(request_count)" 0
	# Piped input is no answer either.
	run --separate-stderr setsid -w bash -c "yes | ai-summarize --max-input-tokens 200 '$T/long'"
	assert_eq "$status" 64
	assert_eq "$(request_count)" 0
	run --separate-stderr setsid -w ai-summarize --yes --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	((${#output} > 0))
	(($(request_count) > 4))
	# Below the limit: no question.
	conf 'confirm_over = 5'
	run --separate-stderr setsid -w ai-summarize --no-cache --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	# Empty turns it off.
	conf 'confirm_over =' 'confirm_over_tokens ='
	run --separate-stderr setsid -w ai-summarize --no-cache -m unpriced --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	conf 'confirm_over = lots'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "bad value 'lots' for confirm_over"
}

@test "summarize: a model without a price is held to confirm_over_tokens" {
	long_input "$T/long"
	conf 'confirm_over_tokens = 1000'
	run --separate-stderr setsid -w ai-summarize -m unpriced --max-input-tokens 200 "$T/long"
	assert_eq "$status" 64
	assert_contains "$stderr" "more than confirm_over_tokens (1000)"
	assert_eq "$(request_count)" 0
	# The default (200000 tokens) lets this small input pass.
	conf ''
	run --separate-stderr setsid -w ai-summarize -m unpriced --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	conf 'confirm_over_tokens = 1.5'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 78
}

@test "summarize: on a terminal it asks: y sends, anything else sends nothing" {
	command -v script >/dev/null || skip "script(1) is not installed"
	long_input "$T/long"
	conf 'confirm_over = 0.0001'
	: >"$T/tty"
	# The text comes on stdin, as in "cat big.log | ai-summarize"; the answer from the terminal.
	{ wait_for_output "$T/tty" "[y/N]" && printf 'y\n'; } |
		on_tty "ai-summarize --max-input-tokens 200 <'$T/long'" >"$T/tty" 2>&1
	assert_contains "$(cat "$T/tty")" "ai-summarize: this input makes "
	assert_contains "$(cat "$T/tty")" "more than confirm_over (\$0.0001)."
	assert_contains "$(cat "$T/tty")" "Send it? [y/N]"
	n=$(request_count)
	((n > 4)) || { echo "requests=$n" >&2; false; }
	: >"$T/tty"
	{ wait_for_output "$T/tty" "[y/N]" && printf 'nope\n'; } |
		on_tty "ai-summarize --no-cache --max-input-tokens 200 <'$T/long'; echo exit=\$?" >"$T/tty" 2>&1 || true
	assert_contains "$(cat "$T/tty")" "ai-summarize: not sent"
	assert_eq "$(request_count)" "$n"
}

@test "summarize: progress of the parts on a terminal only; plain lines under TERM=dumb" {
	command -v script >/dev/null || skip "script(1) is not installed"
	long_input "$T/long"
	TERM=xterm on_tty "ai-summarize --max-input-tokens 200 '$T/long'" </dev/null >"$T/tty" 2>&1
	parts=$(requests $CHAT | jq -r '.body.messages[-1].content' | grep -c '^This is part ')
	assert_contains "$(cat "$T/tty")" $'\r\033[Kai-summarize: '"$parts/$parts parts summarized"
	TERM=dumb on_tty "ai-summarize --no-cache --max-input-tokens 200 '$T/long'" </dev/null >"$T/tty" 2>&1
	assert_contains "$(cat "$T/tty")" "ai-summarize: $parts/$parts parts summarized"
	assert_not_contains "$(cat "$T/tty")" $'\033['
	TERM=xterm on_tty "ai-summarize -q --no-cache --max-input-tokens 200 '$T/long'" </dev/null >"$T/tty" 2>&1
	assert_not_contains "$(cat "$T/tty")" "parts summarized"
	# Not a terminal: nothing on stderr.
	run --separate-stderr ai-summarize --no-cache --max-input-tokens 200 "$T/long"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
}
