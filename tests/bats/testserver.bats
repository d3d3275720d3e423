#!/usr/bin/env bats
# The test server itself: what it answers, how it is scripted, what it logs.
# Every other suite relies on these behaviours.

load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

# api PATH [curl args...]: a request as a client would send it; prints the body.
api() {
	local path=$1
	shift
	curl -sS --noproxy '*' -H "Authorization: Bearer $OPENAI_API_KEY" "$@" "$OPENAI_BASE_URL$path"
}

chat() {
	api /chat/completions -H 'Content-Type: application/json' --data-binary "$1"
}

# http_status PATH [curl args...]: only the HTTP status.
http_status() {
	local path=$1
	shift
	api "$path" -o /dev/null -w '%{http_code}' "$@"
}

# cosine A B: cosine of two embedding arrays given as JSON.
cosine() {
	jq -n --argjson a "$1" --argjson b "$2" \
		'[range($a | length)] | map($a[.] * $b[.]) | add'
}

@test "chat: echoes the last message with id, model and usage" {
	out=$(chat '{"model":"m-1","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello big world"}]}')
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: hello big world"
	assert_eq "$(jq -r '.choices[0].message.role' <<<"$out")" assistant
	assert_eq "$(jq -r '.choices[0].finish_reason' <<<"$out")" stop
	assert_eq "$(jq -r .object <<<"$out")" chat.completion
	assert_eq "$(jq -r .model <<<"$out")" m-1
	[[ $(jq -r .id <<<"$out") == chatcmpl-test-[0-9]* ]]
	# 8 + 15 bytes of content: 23/4+1 = 6; "echo: hello big world" is 4 words.
	assert_eq "$(jq -c .usage <<<"$out")" '{"prompt_tokens":6,"completion_tokens":4,"total_tokens":10}'
	out=$(chat '{"messages":[{"role":"user","content":"x"}]}')
	assert_eq "$(jq -r .model <<<"$out")" test-model
}

@test "chat: the echo is cut at 60 bytes on a UTF-8 boundary" {
	a59=$(printf 'a%.0s' {1..59})
	out=$(chat "{\"messages\":[{\"role\":\"user\",\"content\":\"${a59}é and more\"}]}")
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: $a59"
	out=$(chat '{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}')
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: "
}

@test "chat: a bad body is a 400 with an OpenAI error" {
	run http_status /chat/completions -d 'not json'
	assert_eq "$output" 400
	out=$(chat 'not json')
	assert_eq "$(jq -r .error.type <<<"$out")" invalid_request_error
	run http_status /chat/completions -X POST
	assert_eq "$output" 400
	run http_status /chat/completions -d '{"model":"x"}'
	assert_eq "$output" 400
	run http_status /chat/completions -d '[1,2]'
	assert_eq "$output" 400
}

@test "models, and an unknown path is a 404 error object" {
	assert_eq "$(api /models | jq -c .)" '{"object":"list","data":[{"id":"test-model","object":"model","owned_by":"ai-testserver"}]}'
	run http_status /nowhere
	assert_eq "$output" 404
	assert_contains "$(api /nowhere | jq -r .error.message)" "/v1/nowhere"
}

@test "stream: role chunk, one chunk per word, stop, then [DONE]" {
	chat '{"stream":true,"model":"m","messages":[{"role":"user","content":"one two  three"}]}' >"$T/out"
	out=$(cat "$T/out")
	datas=$(grep '^data: ' <<<"$out")
	assert_eq "$(tail -n 1 <<<"$datas")" "data: [DONE]"
	chunks=$(grep -v '^data: \[DONE\]' <<<"$datas" | sed 's/^data: //')
	assert_eq "$(head -n 1 <<<"$chunks" | jq -c '.choices[0].delta')" '{"role":"assistant","content":""}'
	assert_eq "$(jq -j '.choices[0].delta.content // ""' <<<"$chunks")" "echo: one two  three"
	assert_eq "$(jq -c '[.choices[0].delta.content // empty]' <<<"$chunks" | jq -sc add)" \
		'["","echo: ","one ","two  ","three"]'
	assert_eq "$(tail -n 1 <<<"$chunks" | jq -c '[.choices[0].delta, .choices[0].finish_reason]')" '[{},"stop"]'
	assert_eq "$(jq -r '[.object, .model, (.id|startswith("chatcmpl-test-")), (.created|type)] | @tsv' <<<"$chunks" | sort -u)" \
		"$(printf 'chat.completion.chunk\tm\ttrue\tnumber')"
	# Events are separated by blank lines, and no usage chunk was asked for.
	assert_eq "$(grep -c '^$' "$T/out")" "$(grep -c '^data: ' "$T/out")"
	assert_eq "$(tail -c 14 "$T/out" | od -An -c | tr -d ' \n')" 'data:[DONE]\n\n' "the stream's end"
	assert_not_contains "$out" '"usage"'
	ct=$(api /chat/completions -o /dev/null -w '%{content_type}' -d '{"stream":true,"messages":[]}')
	assert_eq "$ct" text/event-stream
}

@test "stream: include_usage adds a usage chunk with no choices before [DONE]" {
	out=$(chat '{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"abcdefgh"}]}')
	datas=$(grep '^data: ' <<<"$out")
	usage=$(tail -n 2 <<<"$datas" | head -n 1 | sed 's/^data: //')
	assert_eq "$(jq -c '[.choices, .usage]' <<<"$usage")" '[[],{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}]'
	assert_eq "$(jq -r .object <<<"$usage")" chat.completion.chunk
}

@test "stream: hold_ms flushes the first delta while the stream is held" {
	ctl '{"push":[{"hold_ms":1200}]}'
	api /chat/completions -N -d '{"stream":true,"messages":[{"role":"user","content":"a b"}]}' >"$T/s" &
	pid=$!
	sleep 0.5
	partial=$(cat "$T/s")
	wait "$pid"
	assert_contains "$partial" '"echo: "'
	assert_not_contains "$partial" '[DONE]'
	assert_contains "$(cat "$T/s")" 'data: [DONE]'
}

@test "stream: no_done, error_event and raw" {
	ctl '{"push":[{"no_done":true},{"error_event":{"message":"boom","type":"server_error"}}]}'
	out=$(chat '{"stream":true,"messages":[{"role":"user","content":"a b"}]}')
	assert_contains "$out" '"finish_reason":"stop"'
	assert_not_contains "$out" '[DONE]'
	out=$(chat '{"stream":true,"messages":[{"role":"user","content":"a b c"}]}')
	assert_eq "$(grep -c '^data: ' <<<"$out")" 3
	assert_eq "$(grep '^data: ' <<<"$out" | tail -n 1)" 'data: {"error":{"message":"boom","type":"server_error"}}'
	ctl '{"push":[{"raw":": comment\r\ndata: {\"x\":1}\r\n\r\n"}]}'
	api /chat/completions -d '{"stream":true,"messages":[]}' -D "$T/h" -o "$T/b"
	assert_eq "$(od -An -c "$T/b" | tr -s ' ' | tr -d '\n')" "$(printf ': comment\r\ndata: {"x":1}\r\n\r\n' | od -An -c | tr -s ' ' | tr -d '\n')"
	assert_contains "$(cat "$T/h")" "text/event-stream"
}

@test "stream: cut_after ends the connection abruptly after K chunks" {
	ctl '{"push":[{"cut_after":2}]}'
	run chat '{"stream":true,"messages":[{"role":"user","content":"a b c d"}]}'
	assert_eq "$status" 18 "curl exit status (partial file)"
	assert_eq "$(grep -c '^data: ' <<<"$output")" 2
	assert_not_contains "$output" '[DONE]'
	# The next request is served normally.
	out=$(chat '{"stream":true,"messages":[{"role":"user","content":"a b c d"}]}')
	assert_contains "$out" 'data: [DONE]'
}

@test "drip_ms sends the body a few bytes at a time" {
	ctl '{"push":[{"drip_ms":10}]}'
	start=$(date +%s%N)
	out=$(chat '{"messages":[{"role":"user","content":"dripping"}]}')
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: dripping"
	# ~260 bytes in 5-byte pieces 10 ms apart: about half a second.
	((ms > 250)) || { echo "took only $ms ms"; false; }
}

@test "tool_calls: an assistant message with tool calls when the request has tools" {
	ctl '{"push":[{"tool_calls":[{"id":"call_1","name":"calculate","arguments":"{\"expression\":\"1+1\"}"}]}]}'
	out=$(chat '{"tools":[{"type":"function","function":{"name":"calculate"}}],"messages":[{"role":"user","content":"sum"}]}')
	assert_eq "$(jq -c '.choices[0] | [.message.content, .finish_reason]' <<<"$out")" '[null,"tool_calls"]'
	assert_eq "$(jq -c '.choices[0].message.tool_calls' <<<"$out")" \
		'[{"id":"call_1","type":"function","function":{"name":"calculate","arguments":"{\"expression\":\"1+1\"}"}}]'
}

@test "tool_calls: streamed as deltas by index, arguments in pieces" {
	ctl '{"push":[{"tool_calls":[{"id":"call_1","name":"calculate","arguments":"{\"expression\":\"1+1\"}"},{"id":"call_2","name":"now","arguments":"{}"}]}]}'
	out=$(chat '{"stream":true,"tools":[{"type":"function"}],"messages":[{"role":"user","content":"sum"}]}')
	chunks=$(grep '^data: {' <<<"$out" | sed 's/^data: //')
	calls=$(jq -c '.choices[0].delta.tool_calls // empty | .[]' <<<"$chunks")
	assert_eq "$(head -n 1 <<<"$calls")" '{"index":0,"id":"call_1","type":"function","function":{"name":"calculate","arguments":""}}'
	assert_eq "$(jq -j 'select(.index == 0) | .function.arguments' <<<"$calls")" '{"expression":"1+1"}'
	assert_eq "$(jq -j 'select(.index == 1) | .function.arguments' <<<"$calls")" '{}'
	assert_eq "$(jq -r 'select(.index == 1 and .id) | .function.name' <<<"$calls")" now
	(($(jq 'select(.index == 0) | .function.arguments | length' <<<"$calls" | sort -n | tail -n 1) <= 8))
	assert_eq "$(tail -n 1 <<<"$chunks" | jq -r '.choices[0].finish_reason')" tool_calls
	assert_contains "$out" 'data: [DONE]'
}

@test "tool_calls are ignored when the request has no tools" {
	ctl '{"push":[{"tool_calls":[{"id":"c","name":"n","arguments":"{}"}]}]}'
	out=$(chat '{"messages":[{"role":"user","content":"plain"}]}')
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: plain"
}

@test "embeddings: deterministic, unit length, close for shared words" {
	in='{"input":["red apple pie","apple pie recipe","quantum physics lecture",""]}'
	out=$(api /embeddings -d "$in")
	assert_eq "$(api /embeddings -d "$in")" "$out" "a second answer"
	assert_eq "$(jq -r '[.object, (.data|length), .data[0].object, .data[3].index, (.data[0].embedding|length), .usage.prompt_tokens] | @tsv' <<<"$out")" \
		"$(printf 'list\t4\tembedding\t3\t64\t14')"
	a=$(jq -c '.data[0].embedding' <<<"$out")
	b=$(jq -c '.data[1].embedding' <<<"$out")
	c=$(jq -c '.data[2].embedding' <<<"$out")
	near=$(cosine "$a" "$b")
	far=$(cosine "$a" "$c")
	self=$(cosine "$a" "$a")
	awk -v n="$near" -v f="$far" -v s="$self" 'BEGIN { exit !(n > f && n > 0.5 && s > 0.9999 && s < 1.0001) }' ||
		{ echo "near=$near far=$far self=$self"; false; }
	# Case and punctuation do not matter; the empty text is the unit vector on bucket 0.
	d=$(api /embeddings -d '{"input":"RED, Apple... pie!"}' | jq -c '.data[0].embedding')
	assert_eq "$d" "$a"
	assert_eq "$(jq -c '.data[3].embedding[0:2]' <<<"$out")" '[1,0]'
}

@test "embeddings: dimensions, embed_dim and bad input" {
	assert_eq "$(api /embeddings -d '{"input":"x","dimensions":8}' | jq '.data[0].embedding|length')" 8
	ctl '{"set":{"embed_dim":16}}'
	assert_eq "$(api /embeddings -d '{"input":"x"}' | jq '.data[0].embedding|length')" 16
	ctl '{"reset":true}'
	assert_eq "$(api /embeddings -d '{"input":"x"}' | jq '.data[0].embedding|length')" 64
	run http_status /embeddings -d '{"input":[1,2]}'
	assert_eq "$output" 400
	run http_status /embeddings -d '{"input":[]}'
	assert_eq "$output" 400
	run http_status /embeddings -d '{"input":"x","dimensions":0}'
	assert_eq "$output" 400
}

@test "embeddings: base64 is the little-endian float32 of the same vector" {
	floats=$(api /embeddings -d '{"input":"red apple pie","dimensions":8}' | jq -r '.data[0].embedding[]')
	b64=$(api /embeddings -d '{"input":"red apple pie","dimensions":8,"encoding_format":"base64"}' | jq -r '.data[0].embedding')
	decoded=$(base64 -d <<<"$b64" | od -An -v -tf4 --endian=little | tr -s ' ' '\n' | sed '/^$/d')
	assert_eq "$(wc -l <<<"$decoded")" 8
	paste <(echo "$floats") <(echo "$decoded") |
		awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6) { print "differs: " $0; bad = 1 } } END { exit bad }'
}

@test "script: a 429 with Retry-After is served once, then normal answers" {
	ctl '{"push":[{"status":429,"headers":{"Retry-After":"1"}}]}'
	assert_eq "$(queued)" 1
	api /chat/completions -d '{"messages":[]}' -D "$T/h" -o "$T/b"
	assert_contains "$(head -n 1 "$T/h")" " 429"
	assert_contains "$(tr -d '\r' <"$T/h")" "Retry-After: 1"
	assert_eq "$(jq -c . "$T/b")" '{"error":{"message":"scripted 429","type":"test_error","code":429}}'
	assert_eq "$(queued)" 0
	run http_status /chat/completions -d '{"messages":[]}'
	assert_eq "$output" 200
}

@test "script: times:2 serves two requests, a scripted body and headers" {
	ctl '{"push":[{"status":503,"times":2},{"status":502,"body":"<html>bad gateway</html>","headers":{"Content-Type":"text/html","retry-after-ms":"200"}}]}'
	run http_status /chat/completions -d '{"messages":[]}'
	assert_eq "$output" 503
	run http_status /chat/completions -d '{"messages":[]}'
	assert_eq "$output" 503
	api /chat/completions -d '{"messages":[]}' -D "$T/h" -o "$T/b"
	assert_eq "$(cat "$T/b")" "<html>bad gateway</html>"
	headers=$(tr -d '\r' <"$T/h")
	assert_contains "$headers" "Content-Type: text/html"
	assert_not_contains "$headers" "application/json"
	assert_contains "$headers" "retry-after-ms: 200"
	run http_status /chat/completions -d '{"messages":[]}'
	assert_eq "$output" 200
}

@test "script: an action with a path waits for a request to that path" {
	ctl '{"push":[{"path":"/v1/embeddings","status":500},{"reply":"scripted reply"}]}'
	# The chat request skips the embeddings action and takes the next one.
	out=$(chat '{"messages":[{"role":"user","content":"hi"}]}')
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "scripted reply"
	assert_eq "$(queued)" 1
	run http_status /models
	assert_eq "$output" 200
	run http_status /embeddings -d '{"input":"x"}'
	assert_eq "$output" 500
	assert_eq "$(queued)" 0
}

@test "script: close drops the connection without an answer; malformed is broken JSON" {
	ctl '{"push":[{"close":true},{"malformed":true}]}'
	run chat '{"messages":[]}'
	assert_eq "$status" 52 "curl exit status (empty reply)"
	out=$(chat '{"messages":[]}')
	assert_eq "$out" '{"choices": ['
	assert_eq "$(request_count /v1/chat/completions)" 2
}

@test "script: set reply, latency and reset" {
	ctl '{"set":{"reply":"fixed answer","latency_ms":300}}'
	start=$(date +%s%N)
	out=$(chat '{"messages":[{"role":"user","content":"q"}]}')
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "fixed answer"
	((ms >= 300)) || { echo "answered in $ms ms"; false; }
	ctl '{"push":[{"status":500},{"status":500}]}'
	ctl '{"reset":true}'
	assert_eq "$(queued)" 0
	start=$(date +%s%N)
	out=$(chat '{"messages":[{"role":"user","content":"q"}]}')
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$(jq -r '.choices[0].message.content' <<<"$out")" "echo: q"
	((ms < 300)) || { echo "answered in $ms ms after reset"; false; }
}

@test "script: a misspelt action or setting is refused" {
	run ctl '{"push":[{"stauts":429}]}'
	assert_eq "$status" 1
	assert_contains "$output" "unknown action key 'stauts'"
	run ctl '{"push":[{"times":0}]}'
	assert_eq "$status" 1
	run ctl '{"set":{"latency":5}}'
	assert_eq "$status" 1
	run ctl 'nonsense'
	assert_eq "$status" 1
	assert_eq "$(queued)" 0
}

@test "slow requests do not hold up each other (64 at once)" {
	ctl '{"set":{"latency_ms":1000}}'
	start=$(date +%s%N)
	# One curl, 64 connections at once.
	curl -sS --noproxy '*' -Z --parallel-immediate --parallel-max 64 -w '\n%{http_code}\n' \
		"$OPENAI_BASE_URL/models?n=[1-64]" >"$T/out"
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$(grep -c '^200$' "$T/out")" 64
	((ms < 2500)) || { echo "64 requests of 1 s took $ms ms"; false; }
	assert_eq "$(request_count /v1/models)" 64
}

@test "log: one line per request with time, method, path, headers and body" {
	before=$(date +%s%3N)
	chat '{"model":"m","messages":[{"role":"user","content":"logged"}]}' >/dev/null
	api /models -H 'X-Extra: one' >/dev/null
	api /embeddings -d 'not json' >/dev/null
	api /embeddings -d '' -X POST >/dev/null
	assert_eq "$(request_count)" 4
	assert_eq "$(request_count /v1/embeddings)" 2
	first=$(requests | head -n 1)
	assert_eq "$(jq -r '[.method, .path] | @tsv' <<<"$first")" "$(printf 'POST\t/v1/chat/completions')"
	assert_eq "$(jq -r '.headers.authorization' <<<"$first")" "Bearer $KEY"
	assert_eq "$(jq -r '.headers["content-type"]' <<<"$first")" application/json
	assert_eq "$(jq -c '.body' <<<"$first")" '{"model":"m","messages":[{"role":"user","content":"logged"}]}'
	awk -v t="$(jq .t <<<"$first")" -v b="$before" 'BEGIN { exit !(t >= b - 1 && t < b + 10000) }'
	assert_eq "$(requests /v1/models | jq -r '.headers["x-extra"]')" one
	assert_eq "$(requests /v1/models | jq -c .body)" null
	assert_eq "$(requests /v1/embeddings | head -n 1 | jq -c .body)" '"not json"'
	assert_eq "$(last_request | jq -c .body)" null
	assert_eq "$(last_request /v1/chat/completions | jq -r .body.model)" m
}

@test "log: /_control is not logged; the log survives a reset" {
	ctl '{"set":{"latency_ms":0}}'
	queued >/dev/null
	assert_eq "$(request_count)" 0
	api /models >/dev/null
	ctl '{"reset":true}'
	assert_eq "$(request_count)" 1
	wait_for_requests 1 /v1/models
}

@test "helpers: free_port refuses connections; stop_server is idempotent" {
	p=$(free_port)
	run curl -sS --noproxy '*' "http://127.0.0.1:$p/v1/models"
	assert_eq "$status" 7 "curl exit status (connection refused)"
	stop_server
	stop_server
	run curl -sS --noproxy '*' "$OPENAI_BASE_URL/models"
	assert_eq "$status" 7
	leftover=$(env | grep -E '^(AI_|OPENAI_)' | grep -vE '^(AI_BIN|AI_TESTSERVER|AI_UNITS|OPENAI_API_KEY|OPENAI_BASE_URL)=' || true)
	assert_eq "$leftover" "" "inherited AI_/OPENAI_ variables"
	assert_eq "$OPENAI_API_KEY" "$KEY"
	assert_eq "$HOME" "$T/home"
	assert_eq "${PATH%%:*}" "$AI_BIN"
}
