#!/usr/bin/env bats
# The hostile suite, transport and accounting part (issue 19): what a
# hostile or broken server can make the transport, the parsers and the
# usage ledger do.  Each test names the finding it holds down.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions
EMB=/v1/embeddings

# elapsed_ms CMD...: runs CMD under bats' run and sets $ms to its wall time.
elapsed_ms() {
	local start
	start=$(date +%s%N)
	run --separate-stderr "$@"
	ms=$((($(date +%s%N) - start) / 1000000))
}

# index_corpus: a small knowledge base for ai-ask in $DB.
index_corpus() {
	DB=$T/index.db
	(cd "$BATS_TEST_DIRNAME/../fixtures/corpus" && ai-index --db "$DB" -q --chunk-tokens 60 --overlap 0 *.md)
}

# ---- finding 2: every stream has an idle timeout ----

@test "hostile-net: ai-ask --stream gives up a silent stream after --timeout (finding 2)" {
	index_corpus
	ctl '{"push":[{"path":"/v1/chat/completions","hold_ms":20000}]}'
	elapsed_ms ai-ask --db "$DB" --no-cache --stream --retries 0 --timeout 1 'How did the Romans bring water to their cities?'
	assert_eq "$status" 75
	assert_contains "$stderr" "no data from 127.0.0.1:$PORT for 1.0 s"
	assert_contains "$stderr" "--timeout"
	((ms < 8000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: ai-stream's silence is bounded by --timeout too, --idle-timeout still works (finding 2)" {
	ctl '{"push":[{"hold_ms":20000}]}'
	elapsed_ms ai-stream --no-cache --retries 0 --timeout 1 hello there
	assert_eq "$status" 75
	assert_eq "$output" "echo: "
	assert_contains "$stderr" "for 1.0 s (--timeout)"
	((ms < 8000)) || { echo "took $ms ms" >&2; false; }
	ctl '{"push":[{"hold_ms":20000}]}'
	elapsed_ms ai-stream --no-cache --retries 0 --idle-timeout 500ms hello there
	assert_eq "$status" 75
	assert_contains "$stderr" "(--idle-timeout)"
	((ms < 8000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: a server that never sends headers to a stream is given up and retried (finding 2)" {
	ctl '{"push":[{"latency_ms":20000}]}'
	elapsed_ms ai-stream --no-cache --retries 1 --timeout 1 hello
	assert_eq "$status" 0
	assert_eq "$output" "echo: hello"
	assert_eq "$(request_count $CHAT)" 2
	((ms < 8000)) || { echo "took $ms ms" >&2; false; }
}

# ---- finding 3: one cap and one parser for every server-given wait ----

@test "hostile-net: Retry-After of 100000 s does not pause ai-batch (finding 3)" {
	ctl '{"push":[{"path":"/v1/chat/completions","status":429,"headers":{"Retry-After":"100000"}}]}'
	printf '{"id":"a","text":"one"}\n{"id":"b","text":"two"}\n' >"$T/in"
	elapsed_ms timeout 60 ai-batch --no-cache -P 1 --retries 0 "$T/in"
	assert_eq "$status" 1
	assert_contains "$output" '"id":"a"'
	assert_contains "$output" '"id":"b","output":"echo: two"'
	((ms < 10000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: a retry is not held for a Retry-After over the cap (finding 3)" {
	ctl '{"push":[{"status":503,"headers":{"Retry-After":"100000"}}]}'
	elapsed_ms timeout 60 ai-summarize --no-cache --retries 1 <<<"some text"
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
	((ms < 10000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: x-ratelimit-reset of years does not pause ai-batch (finding 3)" {
	ctl '{"push":[{"path":"/v1/chat/completions","headers":{"x-ratelimit-remaining-requests":"0","x-ratelimit-reset-requests":"999999999999ms"}}]}'
	printf '{"id":"a","text":"one"}\n{"id":"b","text":"two"}\n' >"$T/in"
	elapsed_ms timeout 60 ai-batch --no-cache -P 1 "$T/in"
	assert_eq "$status" 0
	assert_contains "$output" '"id":"b","output":"echo: two"'
	((ms < 10000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: x-ratelimit-remaining garbage is not read as 0 (finding 3)" {
	ctl '{"push":[{"path":"/v1/chat/completions","headers":{"x-ratelimit-remaining-requests":"garbage","x-ratelimit-reset-requests":"20s"}}]}'
	printf '{"id":"a","text":"one"}\n{"id":"b","text":"two"}\n' >"$T/in"
	elapsed_ms timeout 60 ai-batch --no-cache -P 1 "$T/in"
	assert_eq "$status" 0
	assert_contains "$output" '"id":"b","output":"echo: two"'
	((ms < 10000)) || { echo "took $ms ms" >&2; false; }
}

@test "hostile-net: a Retry-After within the cap is still honoured (finding 3)" {
	ctl '{"push":[{"status":429,"headers":{"Retry-After":"2"}}]}'
	elapsed_ms ai-summarize --no-cache --retries 1 <<<"some text"
	assert_eq "$status" 0
	((ms >= 1900)) || { echo "took only $ms ms" >&2; false; }
}

# ---- finding 4: server-reported usage is bounded ----

@test "hostile-net: a claim of 2^63-1 tokens books nothing and does not exhaust the budget (finding 4)" {
	export AI_BUDGET_DAILY=1
	ctl '{"push":[{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":9223372036854775807}}]}'
	run --separate-stderr ai-summarize --no-cache <<<"first"
	assert_eq "$status" 0
	ctl '{"push":[{"usage":{"prompt_tokens":-5,"completion_tokens":1000000001}}]}'
	run --separate-stderr ai-summarize --no-cache <<<"second"
	assert_eq "$status" 0
	run --separate-stderr ai-summarize --no-cache <<<"third, after the lies"
	assert_eq "$status" 0
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT count(*) FROM calls WHERE prompt_tokens IS NULL AND completion_tokens IS NULL')" 2
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT count(*) FROM calls WHERE cost > 1')" 0
	run --separate-stderr ai-usage --json --since today
	assert_eq "$status" 0
	assert_not_contains "$output" '"tokens_in":-'
}

@test "hostile-net: a stream's usage claim is bounded too (finding 4)" {
	ctl '{"push":[{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":4611686018427387904}}]}'
	run --separate-stderr ai-stream --no-cache hello
	assert_eq "$status" 0
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT ifnull(prompt_tokens, "unknown") || " " || ifnull(completion_tokens, "unknown") FROM calls')" "unknown unknown"
}

@test "hostile-net: ai-usage sums huge rows without wrapping negative (finding 4)" {
	run ai-summarize <<<"make the ledger"
	assert_eq "$status" 0
	db=$XDG_DATA_HOME/ai/usage.db
	sqlite3 "$db" "UPDATE calls SET prompt_tokens = 9223372036854775807, completion_tokens = 9223372036854775807"
	sqlite3 "$db" "INSERT INTO calls(ts_ms, program, model, host, prompt_tokens, completion_tokens, latency_ms, status, cached, cost, saved)
		SELECT ts_ms + 1, program, model, host, prompt_tokens, completion_tokens, latency_ms, status, cached, cost, saved FROM calls"
	run --separate-stderr ai-usage --json --since today
	assert_eq "$status" 0
	assert_contains "$output" '"tokens_in":9223372036854775807'
	assert_not_contains "$output" '"tokens_in":-'
	assert_not_contains "$output" '"tokens_out":-'
}

# ---- finding 13: a malformed answer is a server error, never a silent success ----

# chat_body JSON-MESSAGE: a chat completion whose first choice's message is JSON-MESSAGE.
chat_body() {
	printf '{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":%s,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}' "$1"
}

@test "hostile-net: a content that is not a string is an error, not an empty answer (finding 13)" {
	local m
	for m in '{"role":"assistant","content":42}' '{"role":"assistant","content":{"text":"hi"}}' \
		'{"role":"assistant","content":["hi"]}' '{"role":"assistant","content":true}' \
		'{"role":"assistant","content":null}' '{"role":"assistant"}' '"hi"' \
		'{"role":"assistant","content":"x","tool_calls":{"id":"1"}}'; do
		ctl "$(jq -cn --arg b "$(chat_body "$m")" '{push:[{status:200,body:$b}]}')"
		run --separate-stderr ai-summarize --no-cache <<<"some text"
		assert_eq "$status" 69 "for $m"
		assert_eq "$output" ""
		assert_contains "$stderr" "the answer from 127.0.0.1:$PORT"
	done
	ctl "$(jq -cn --arg b "$(chat_body '{"role":"assistant","content":42}')" '{push:[{status:200,body:$b}]}')"
	run --separate-stderr ai-summarize --no-cache <<<"some text"
	assert_contains "$stderr" "content that is not a string"
}

@test "hostile-net: content null beside tool calls is still an answer (finding 13)" {
	ctl "$(jq -cn --arg b "$(chat_body '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"calculate","arguments":"{\"expression\":\"2+2\"}"}}]}')" '{push:[{status:200,body:$b}]}')"
	run --separate-stderr ai-agent --no-cache --max-steps 3 'what is 2+2?'
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
}

@test "hostile-net: ai-batch does not journal a malformed answer as finished; the next run sends it again (finding 13)" {
	printf '{"id":"a","text":"one"}\n' >"$T/in"
	ctl "$(jq -cn --arg b "$(chat_body '{"role":"assistant","content":{"x":1}}')" '{push:[{status:200,body:$b}]}')"
	run --separate-stderr ai-batch --no-cache --state "$T/journal" "$T/in"
	assert_contains "$output" '"id":"a","error"'
	assert_contains "$output" 'not a string'
	[[ $status -ne 0 ]]
	run --separate-stderr ai-batch --no-cache --state "$T/journal" "$T/in"
	assert_eq "$status" 0
	assert_contains "$output" '"id":"a","output":"echo: one"'
	assert_eq "$(request_count $CHAT)" 2
}

@test "hostile-net: text after a \\u0000 in content is kept, plain and streamed (finding 13)" {
	ctl "$(jq -cn --arg b "$(chat_body '{"role":"assistant","content":"before\u0000after"}')" '{push:[{status:200,body:$b}]}')"
	run --separate-stderr ai-summarize --no-cache <<<"some text"
	assert_eq "$status" 0
	assert_eq "$output" $'before\xef\xbf\xbdafter'
	ctl "$(jq -cn '{push:[{raw:"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\\u0000two\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"}]}')"
	run --separate-stderr ai-stream --no-cache --json hi
	assert_eq "$status" 0
	assert_contains "$output" $'"content":"one\xef\xbf\xbdtwo"'
}

@test "hostile-net: embeddings with a string inside, a bad or repeated index are errors (finding 13)" {
	local b
	echo "alpha beta gamma" >"$T/doc.txt"
	for b in '{"data":[{"index":0,"embedding":[1,2,"x"]}],"model":"e"}' \
		'{"data":[{"index":-1,"embedding":[1,2,3]}],"model":"e"}' \
		'{"data":[{"index":"0","embedding":[1,2,3]}],"model":"e"}' \
		'{"data":[{"index":5,"embedding":[1,2,3]}],"model":"e"}' \
		'{"data":[{"index":0,"embedding":[1,null,3]}],"model":"e"}' \
		'{"data":[{"index":0,"embedding":[1e300,1]}],"model":"e"}' \
		'{"data":[{"index":0,"embedding":[1e-300,0]}],"model":"e"}'; do
		ctl "$(jq -cn --arg b "$b" '{push:[{path:"/v1/embeddings",status:200,body:$b}]}')"
		run --separate-stderr ai-index --no-cache --db "$T/kb.db" "$T/doc.txt"
		[[ $status -ne 0 ]] || { echo "accepted: $b" >&2; false; }
		assert_contains "$stderr" "embedding 0 from 127.0.0.1:$PORT"
	done
}

# ---- finding 14: the smaller ones ----

@test "hostile-net: a base URL's query survives, the endpoint path goes before it (finding 14)" {
	OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1?api-version=2024-06-01" run --separate-stderr ai-summarize --no-cache <<<"some text"
	assert_eq "$status" 0
	assert_eq "$(last_request | jq -c '{path, query}')" '{"path":"/v1/chat/completions","query":{"api-version":"2024-06-01"}}'
	OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1/?api-version=2" run --separate-stderr ai-index --no-cache --db "$T/kb.db" "$BATS_TEST_DIRNAME/../fixtures/corpus/chess.md"
	assert_eq "$status" 0
	assert_eq "$(last_request | jq -c '{path, query}')" '{"path":"/v1/embeddings","query":{"api-version":"2"}}'
}

@test "hostile-net: a bare number line is called what it is, not cut short (finding 14)" {
	run --separate-stderr ai-batch --no-cache <<<'42'
	assert_contains "$output" "must be a JSON string or object, not int"
	assert_not_contains "$output" "ends too early"
	run --separate-stderr ai-batch --no-cache <<<'[1,'
	assert_contains "$output" "ends too early"
	assert_eq "$(request_count $CHAT)" 0
}

@test "hostile-net: an id-less line clashing with an explicit id is explained (finding 14)" {
	run --separate-stderr ai-batch --no-cache <<<$'{"id":2,"text":"a"}\n"b"'
	assert_eq "$status" 65
	assert_contains "$stderr" "line 2 has no id, so its id is its line number, 2; line 1 gives the same id"
	run --separate-stderr ai-batch --no-cache <<<$'{"id":"x","text":"a"}\n{"id":"x","text":"b"}'
	assert_eq "$status" 65
	assert_contains "$stderr" "duplicate id 'x' on lines 1 and 2"
	assert_eq "$(request_count $CHAT)" 0
}

@test "hostile-net: a CR-only event stream delivers every event at once (finding 14)" {
	# drip_ms sends 5 bytes at a time, so line ends fall across reads, the final
	# CR of the stream alone in the last one.
	ctl "$(jq -cn '{push:[{drip_ms:2,raw:"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\r\rdata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\r\rdata: [DONE]\r\r"}]}')"
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$status" 0
	assert_eq "$output" "one two"
}

@test "hostile-net: a TLS certificate that fails verification exits 78 at once, naming the CA file (finding 14)" {
	command -v openssl >/dev/null || skip "openssl is not installed"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
		-subj /CN=127.0.0.1 2>/dev/null
	local port
	port=$(free_port)
	openssl s_server -accept "127.0.0.1:$port" -cert "$T/cert.pem" -key "$T/key.pem" -www -quiet \
		</dev/null >/dev/null 2>&1 3>&- &
	TLS_PID=$!
	for ((i = 0; i < 200; i++)); do
		(exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.02
	done
	OPENAI_BASE_URL="https://127.0.0.1:$port/v1" elapsed_ms ai-summarize --no-cache --retries 4 <<<"some text"
	kill "$TLS_PID"
	wait "$TLS_PID" 2>/dev/null || true
	assert_eq "$status" 78
	assert_contains "$stderr" "cannot verify the TLS certificate of 127.0.0.1:$port"
	assert_contains "$stderr" "(CA file '"
	# Four retries would wait at least 0.375 + 0.75 + 1.5 + 3 s (backoff less jitter).
	((ms < 4000)) || { echo "took $ms ms: retried?" >&2; false; }
}

# ---- what held at 0d0d195, kept as regression tests ----

@test "hostile-net: a redirect is not followed, so the key never reaches the place it names" {
	ctl '{"push":[{"path":"/v1/chat/completions","status":307,"headers":{"Location":"/v1/stolen"},"body":""}]}'
	run --separate-stderr ai-summarize --no-cache <<<"text"
	((status != 0)) || { echo "a redirect was taken for an answer" >&2; false; }
	assert_eq "$(request_count /v1/stolen)" 0
	assert_eq "$(request_count /v1/chat/completions)" 1
	assert_eq "$output" ""
}
