#!/usr/bin/env bats
# --list-models, the same in every program: GET /models through the one
# transport (key, retries, -v, --dry-run), one id a line or JSON lines, and
# the answers real servers give.  And the hint every program gives when a
# server says the model does not exist.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

MODELS=/v1/models
CHAT=/v1/chat/completions
FIX=$BATS_TEST_DIRNAME/../fixtures/models

programs() {
	for p in "$AI_BIN"/ai-*; do
		[[ -x $p ]] && basename "$p"
	done
}

# push_body FILE: the next GET /models answers FILE's bytes as they are.
push_body() {
	ctl "$(jq -nc --rawfile b "$1" '{push: [{path: "/v1/models", body: $b}]}')"
}

@test "models: every program lists the server's models, whatever its operands need" {
	n=0
	for p in $(programs); do
		run --separate-stderr "$p" --list-models
		assert_eq "$status" 0 "$p status"
		assert_eq "$output" "test-model" "$p output"
		assert_eq "$stderr" "" "$p stderr"
		n=$((n + 1))
	done
	assert_eq "$(request_count $MODELS)" "$n"
	r=$(last_request $MODELS)
	assert_eq "$(jq -r .method <<<"$r")" GET
	assert_eq "$(jq -r .headers.authorization <<<"$r")" "Bearer $KEY"
	assert_eq "$(request_count $CHAT)" 0
}

@test "models: one id a line in the server's order; --json says owner and whether it is priced" {
	ctl '{"push":[{"path":"/v1/models","times":2,"body":{"object":"list","data":[
		{"id":"zeta-local","object":"model"},
		{"id":"gpt-4o-mini","object":"model","owned_by":"openai"},
		{"object":"model"},
		{"id":"alpha","owned_by":"me"}]}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 0
	assert_eq "$output" $'zeta-local\ngpt-4o-mini\nalpha'
	run --separate-stderr ai-summarize --list-models --json
	assert_eq "$status" 0
	assert_eq "${lines[0]}" '{"id":"zeta-local","owned_by":null,"priced":false}'
	assert_eq "${lines[1]}" '{"id":"gpt-4o-mini","owned_by":"openai","priced":true}'
	assert_eq "${lines[2]}" '{"id":"alpha","owned_by":"me","priced":false}'
	assert_eq "${#lines[@]}" 3
}

@test "models: a price from the config file counts as priced" {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'price.zeta-local = 0.1 0.2\n' >"$XDG_CONFIG_HOME/ai/config"
	ctl '{"push":[{"path":"/v1/models","body":{"data":[{"id":"zeta-local"}]}}]}'
	run --separate-stderr ai-ask --list-models --json
	assert_eq "$status" 0
	assert_eq "$output" '{"id":"zeta-local","owned_by":null,"priced":true}'
}

@test "models: llama.cpp's answers, with and without its extra models array" {
	for f in llamacpp-new.json llamacpp-old.json; do
		push_body "$FIX/$f"
		run --separate-stderr ai-stream --list-models --json
		assert_eq "$status" 0 "$f"
		assert_eq "$output" '{"id":"tiny-random-llama","owned_by":"llamacpp","priced":false}' "$f"
	done
}

@test "models: an answer with only a models array (Ollama's shape) is read from it" {
	ctl '{"push":[{"path":"/v1/models","body":{"models":[{"name":"llama3:8b","model":"llama3:8b"},{"name":"qwen"}]}}]}'
	run --separate-stderr ai-index --list-models
	assert_eq "$status" 0
	assert_eq "$output" $'llama3:8b\nqwen'
}

@test "models: an answer that is not a list, or not JSON, fails with 69" {
	ctl '{"push":[{"path":"/v1/models","body":{"object":"list"}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 69
	assert_eq "$output" ""
	assert_contains "$stderr" "ai-summarize: the answer from 127.0.0.1:$PORT to GET /models is not a list of models"
	ctl '{"push":[{"path":"/v1/models","body":"<html>hello</html>"}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 69
	assert_contains "$stderr" "is not JSON"
	ctl '{"push":[{"path":"/v1/models","body":"\"just a string\""}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 69
}

@test "models: an empty list prints nothing and succeeds" {
	ctl '{"push":[{"path":"/v1/models","body":{"object":"list","data":[]}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_eq "$stderr" ""
}

@test "models: 401 is a configuration error with the fix; never retried" {
	ctl '{"push":[{"path":"/v1/models","status":401,"body":{"error":{"message":"Incorrect API key provided"}}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 78
	assert_contains "$stderr" "GET /models: the server answered 401: Incorrect API key provided"
	assert_contains "$stderr" "check OPENAI_API_KEY"
	assert_eq "$(request_count $MODELS)" 1
}

@test "models: 404 says the base URL is wrong, not the model" {
	ctl '{"push":[{"path":"/v1/models","status":404,"body":{"error":{"message":"File Not Found","type":"not_found_error","code":404}}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$status" 69
	assert_contains "$stderr" "GET /models: the server answered 404: File Not Found"
	assert_contains "$stderr" "check the base URL"
	assert_not_contains "$stderr" "--list-models"
	# A base URL without /v1 meets the test server's own 404.
	run --separate-stderr ai-summarize --list-models --base-url "http://127.0.0.1:$PORT"
	assert_eq "$status" 69
	assert_contains "$stderr" "check the base URL"
}

@test "models: 5xx is retried by the transport; a server that stays down is a temporary failure" {
	ctl '{"push":[{"path":"/v1/models","status":503}]}'
	run --separate-stderr ai-summarize --list-models --retries 2
	assert_eq "$status" 0
	assert_eq "$output" test-model
	assert_eq "$(request_count $MODELS)" 2
	ctl '{"push":[{"path":"/v1/models","status":500,"times":5}]}'
	run --separate-stderr ai-summarize --list-models --retries 1
	assert_eq "$status" 75
	assert_contains "$stderr" "the server answered 500"
	assert_eq "$(request_count $MODELS)" 4
}

@test "models: --timeout bounds the request" {
	ctl '{"push":[{"path":"/v1/models","latency_ms":3000}]}'
	start=$SECONDS
	run --separate-stderr ai-summarize --list-models --timeout 300ms --retries 0
	assert_eq "$status" 75
	assert_contains "$stderr" "no answer from 127.0.0.1:$PORT within 0.3 s"
	(( SECONDS - start < 3 ))
}

@test "models: no server is a temporary failure" {
	run --separate-stderr ai-summarize --list-models --base-url "http://127.0.0.1:$(free_port)/v1" --retries 0
	assert_eq "$status" 75
	assert_contains "$stderr" "cannot connect"
}

@test "models: --dry-run prints the request, key redacted, and sends nothing" {
	run --separate-stderr ai-agent --list-models --dry-run
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "GET $OPENAI_BASE_URL/models"
	assert_eq "${lines[1]}" "Authorization: Bearer [redacted]"
	assert_not_contains "$output" "$KEY"
	assert_eq "$(request_count)" 0
}

@test "models: -v shows the exchange on stderr with the key redacted" {
	run --separate-stderr ai-summarize --list-models -v
	assert_eq "$status" 0
	assert_eq "$output" test-model
	assert_contains "$stderr" "GET /v1/models"
	assert_not_contains "$stderr" "$KEY"
}

@test "models: the profile's and --base-url's endpoint are asked" {
	base=$OPENAI_BASE_URL
	unset OPENAI_BASE_URL
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf '%s\n' 'base_url = http://127.0.0.1:1/v1' '[profile local]' "base_url = $base" \
		>"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize -p local --list-models
	assert_eq "$status" 0
	assert_eq "$output" test-model
	run --separate-stderr ai-summarize --list-models --base-url "$base"
	assert_eq "$status" 0
	assert_eq "$output" test-model
	run --separate-stderr ai-summarize -p nosuch --list-models
	assert_eq "$status" 78
}

@test "models: a model id with control characters is neutralised on a terminal, kept in a pipe" {
	ctl '{"push":[{"path":"/v1/models","times":2,"body":{"data":[{"id":"evil\u001b]0;x\u0007"}]}}]}'
	run --separate-stderr ai-summarize --list-models
	assert_eq "$output" $'evil\e]0;x\a'
	out=$(on_tty "ai-summarize --list-models" </dev/null)
	assert_contains "$out" $'evil\u241b]0;x\u2407'
}

@test "models: >/dev/full fails with 74" {
	run --separate-stderr sh -c 'ai-summarize --list-models >/dev/full'
	assert_eq "$status" 74
}

# ---- the hint when a model does not exist

@test "models: a chat answer saying the model does not exist suggests --list-models" {
	bodies=(
		'{"status":404,"body":{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}}'
		'{"status":404,"body":{"error":"model \"llama9\" not found, try pulling it first"}}'
		'{"status":400,"body":{"error":{"code":400,"message":"model not found","type":"invalid_request_error"}}}'
		'{"status":404,"body":{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}}'
		'{"status":400,"body":{"error":{"message":"x is not a valid model ID","code":400}}}'
	)
	for b in "${bodies[@]}"; do
		ctl "{\"push\":[$b]}"
		run --separate-stderr ai-summarize -m nosuch <<<"text"
		assert_eq "$status" 69 "$b"
		assert_contains "$stderr" "see the models the server offers with --list-models"
	done
	# ai-stream and ai-batch meet it too.
	ctl "{\"push\":[${bodies[0]}]}"
	run --separate-stderr ai-stream hi
	assert_contains "$stderr" "--list-models"
	ctl "{\"push\":[${bodies[1]}]}"
	run --separate-stderr ai-batch <<<'{"id":1,"text":"x"}'
	assert_contains "$output" "--list-models"
}

@test "models: other 400 and 404 answers do not suggest --list-models" {
	ctl '{"push":[{"status":404,"body":{"error":{"message":"File Not Found","type":"not_found_error","code":404}}}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 69
	assert_not_contains "$stderr" "--list-models"
	assert_contains "$stderr" "check the model name and the base URL"
	ctl '{"push":[{"status":400,"body":{"error":{"message":"the request exceeds the available context size"}}}]}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 69
	assert_not_contains "$stderr" "--list-models"
	# A 500 that happens to mention a model is a server failure, not a missing model.
	ctl '{"push":[{"status":500,"times":3,"body":{"error":{"message":"model not found in cache"}}}]}'
	run --separate-stderr ai-summarize --retries 0 <<<"text"
	assert_eq "$status" 75
	assert_not_contains "$stderr" "--list-models"
}

@test "models: a long server message keeps the hint whole" {
	long=$(printf 'model x not found %.0s' {1..40})
	ctl "{\"push\":[{\"status\":404,\"body\":{\"error\":{\"message\":\"$long\"}}}]}"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 69
	assert_contains "$stderr" "see the models the server offers with --list-models"
}
