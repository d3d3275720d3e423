#!/usr/bin/env bats
# What reasoning models and real servers send beyond the plain shape
# (issue 14): reasoning kept apart from the answer, refusals and content
# filters, content as parts, the token counts servers report, the errors
# and /models of each family, and the request a reasoning model takes.
# Recorded llama.cpp bytes are in tests/fixtures/reason.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions
FIX=$BATS_TEST_DIRNAME/../fixtures/reason

# raw_stream BODY: the next chat request is answered with BODY as the event stream; the blank
# line that ends its last event is added back ($(...) strips it).
raw_stream() {
	ctl "$(jq -cn --arg raw "$1"$'\n\n' '{push: [{path: "/v1/chat/completions", raw: $raw}]}')"
}

# answer MESSAGE_JSON [FINISH] [USAGE_JSON]: the next chat request gets this plain completion.
answer() {
	ctl "$(jq -cn --argjson m "$1" --arg f "${2:-stop}" --argjson u "${3:-null}" \
		'{push: [{path: "/v1/chat/completions", body: ({choices: [{index: 0, message: $m, finish_reason: $f}], model: "r1"} + (if $u then {usage: $u} else {} end))}]}')"
}

# chunk DELTA_JSON [FINISH]: one SSE event of a stream.
chunk() {
	jq -cn --argjson d "$1" --arg f "${2:-}" \
		'"data: " + ({choices: [{index: 0, delta: $d, finish_reason: (if $f == "" then null else $f end)}]} | tojson) + "\n"'  | jq -r .
	echo
}

deepseek_stream() {
	chunk '{"role":"assistant","content":null,"reasoning_content":"Two and two"}'
	chunk '{"reasoning_content":" make four.\u001b]0;pwned\u0007"}'
	chunk '{"content":"4","reasoning_content":null}'
	chunk '{}' stop
	echo 'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":40,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":38}}}'
	echo
	echo 'data: [DONE]'
	echo
}

@test "reason: a stream's reasoning_content (DeepSeek, vLLM, llama.cpp) is never printed as the answer" {
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream --no-cache what is 2+2
	assert_eq "$status" 0
	assert_eq "$output" "4"
	assert_eq "$stderr" ""
}

@test "reason: --show-reasoning prints the reasoning on stderr, neutralised, not dimmed off a terminal" {
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream --no-cache --show-reasoning what is 2+2
	assert_eq "$status" 0
	assert_eq "$output" "4"
	assert_eq "$stderr" $'Two and two make four.\u241b]0;pwned\u2407'
}

@test "reason: --show-reasoning on a terminal dims the reasoning and ends it before the answer" {
	raw_stream "$(deepseek_stream)"
	out=$(TERM=xterm on_tty "ai-stream --no-cache --show-reasoning what is 2+2" | tr -d '\r')
	assert_contains "$out" $'\e[2mTwo and two make four.\u241b]0;pwned\u2407\e[0m\n4'
	raw_stream "$(deepseek_stream)"
	out=$(NO_COLOR=1 TERM=xterm on_tty "ai-stream --no-cache --show-reasoning what is 2+2" | tr -d '\r')
	assert_not_contains "$out" $'\e[2m'
	assert_contains "$out" $'Two and two make four.\u241b]0;pwned\u2407\n4'
}

@test "reason: OpenRouter's and Ollama's \"reasoning\" is kept apart the same way" {
	raw_stream "$(chunk '{"role":"assistant","content":"","reasoning":"hmm"}'; chunk '{"content":"yes"}' stop; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache --show-reasoning is it
	assert_eq "$status" 0
	assert_eq "$output" "yes"
	assert_eq "$stderr" "hmm"
}

@test "reason: --json carries the reasoning in records of its own and the token details in usage" {
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream --no-cache --json what is 2+2
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(jq -r 'select(.type == "reasoning") | .reasoning' <<<"$output" | tr -d '\n')" $'Two and two make four.\e]0;pwned\a'
	assert_eq "$(jq -r 'select(.type == "delta") | .content' <<<"$output")" "4"
	assert_eq "$(jq -c 'select(.type == "done") | .usage' <<<"$output")" \
		'{"prompt_tokens":12,"completion_tokens":40,"cached_tokens":8,"reasoning_tokens":38}'
}

@test "reason: --sse frames the reasoning only with --show-reasoning" {
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream --no-cache --sse hi
	assert_eq "$status" 0
	assert_not_contains "$output" '"reasoning"'
	assert_contains "$output" 'data: {"type":"delta","content":"4"}'
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream --no-cache --sse --show-reasoning hi
	assert_eq "$status" 0
	assert_contains "$output" 'data: {"type":"reasoning","reasoning":"Two and two"}'
	assert_eq "$stderr" ""
}

@test "reason: a plain answer's reasoning_content is not the summary" {
	answer '{"role":"assistant","content":"Short.","reasoning_content":"Let me see."}'
	run --separate-stderr ai-summarize --no-cache <<<"A long text to summarize."
	assert_eq "$status" 0
	assert_eq "$output" "Short."
	assert_eq "$stderr" ""
}

@test "reason: a stream request answered with plain JSON shows its reasoning apart" {
	answer '{"role":"assistant","content":"Fine.","reasoning":"thinking"}'
	run --separate-stderr ai-stream --no-cache --show-reasoning hi
	assert_eq "$status" 0
	assert_eq "$output" "Fine."
	assert_eq "$stderr" "thinking"
}

@test "reason: a cached answer replays its reasoning to --show-reasoning, never into the answer" {
	raw_stream "$(deepseek_stream)"
	run --separate-stderr ai-stream what is 2+2
	assert_eq "$output" "4"
	run --separate-stderr ai-stream --show-reasoning what is 2+2
	assert_eq "$status" 0
	assert_eq "$output" "4"
	assert_eq "$stderr" $'Two and two make four.\u241b]0;pwned\u2407'
	assert_eq "$(request_count $CHAT)" 1
}

@test "reason: content as a list of parts is the text of its text parts" {
	answer '{"role":"assistant","content":[{"type":"text","text":"Part one, "},{"type":"image_url","image_url":{"url":"x"}},{"type":"output_text","text":"part two."}]}'
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 0
	assert_eq "$output" "Part one, part two."
	raw_stream "$(chunk '{"content":[{"type":"text","text":"streamed "},{"type":"text","text":"parts"}]}' stop; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$status" 0
	assert_eq "$output" "streamed parts"
}

@test "reason: content that is neither text nor parts is a server error (69), not an empty answer" {
	answer '{"role":"assistant","content":{"text":"x"}}'
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 69
	assert_eq "$output" ""
	assert_contains "$stderr" "content that is not a string or a list of parts"
}

@test "reason: a refusal is printed on stderr and exits 65, plain or streamed, and is not cached" {
	answer '{"role":"assistant","content":null,"refusal":"I cannot help with that."}'
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 65
	assert_eq "$output" ""
	assert_eq "$stderr" "ai-summarize: the model refused to answer: 'I cannot help with that.'"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$(request_count $CHAT)" 2 "a refusal is asked again, not replayed from the cache"
	raw_stream "$(chunk '{"role":"assistant","content":null,"refusal":"No"}'; chunk '{"refusal":", sorry.\u001b[2J"}' stop; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$status" 65
	assert_eq "$output" ""
	assert_eq "$stderr" $'ai-stream: the model refused to answer: \'No, sorry.\u241b[2J\''
	# A long refusal is cut at a character, and says so.
	answer "$(jq -cn '{role: "assistant", content: null, refusal: ("é" * 150)}')"
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 65
	assert_eq "$stderr" "ai-summarize: the model refused to answer: '$(printf 'é%.0s' {1..90})...'"
}

@test "reason: a refusal fails its batch item with its own error line; the others succeed" {
	answer '{"role":"assistant","content":null,"refusal":"Not this one."}'
	printf '%s\n' '{"id":"a","text":"one"}' '{"id":"b","text":"two"}' >"$T/in"
	run --separate-stderr ai-batch --no-cache -P 1 "$T/in"
	assert_eq "$status" 1
	assert_eq "$(jq -c 'select(.id == "a") | .error | [.type, .message]' <<<"$output")" \
		'["refusal","the model refused to answer: '"'Not this one.'"'"]'
	assert_eq "$(jq -r 'select(.id == "b") | .output' <<<"$output")" "echo: two"
}

@test "reason: finish_reason content_filter says so and exits 65, keeping what was streamed" {
	answer '{"role":"assistant","content":""}' content_filter
	run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 65
	assert_eq "$output" ""
	assert_eq "$stderr" "ai-summarize: 127.0.0.1:$PORT withheld the answer: its content filter stopped it"
	raw_stream "$(chunk '{"content":"The first half"}'; chunk '{}' content_filter; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$status" 65
	assert_eq "$output" "The first half"
	assert_eq "$stderr" "ai-stream: 127.0.0.1:$PORT withheld the answer: its content filter stopped it part way"
}

@test "reason: an empty choices chunk, and usage in it, are read without output" {
	raw_stream "$(chunk '{"content":"hi"}' stop; echo 'data: {"choices":[]}'; echo; echo 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}'; echo; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache --json hi
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.type == "delta") | .content' <<<"$output")" "hi"
	assert_eq "$(jq -c 'select(.type == "done") | .usage' <<<"$output")" \
		'{"prompt_tokens":3,"completion_tokens":1,"cached_tokens":null,"reasoning_tokens":null}'
}

@test "reason: llama.cpp's recorded stream without usage is counted from its timings" {
	raw_stream "$(cat "$FIX/llamacpp-stream.sse")"
	run --separate-stderr ai-stream --no-cache --json hi
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.type == "delta") | .content' <<<"$output" | tr -d '\n')" " standingweeniv"
	assert_eq "$(jq -c 'select(.type == "done") | .usage' <<<"$output")" \
		'{"prompt_tokens":36,"completion_tokens":3,"cached_tokens":35,"reasoning_tokens":null}'
}

@test "reason: an answer without usage or timings succeeds with its counts unknown" {
	raw_stream "$(chunk '{"content":"ok"}' stop; echo 'data: [DONE]'; echo)"
	run --separate-stderr ai-stream --no-cache --json hi
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.type == "done") | .usage' <<<"$output")" \
		'{"prompt_tokens":null,"completion_tokens":null,"cached_tokens":null,"reasoning_tokens":null}'
}

@test "reason: a server that refuses stream_options with 400 is asked again without it, once per run" {
	ctl '{"push":[{"path":"/v1/chat/completions","status":400,"body":{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}}]}'
	printf 'one\ntwo\n' >"$T/lines"
	run --separate-stderr ai-stream --no-cache -i <"$T/lines"
	assert_eq "$status" 0
	assert_eq "$output" $'echo: one\necho: two'
	assert_eq "$stderr" ""
	assert_eq "$(request_count $CHAT)" 3
	assert_eq "$(requests $CHAT | jq -r '.body.stream_options.include_usage // "absent"' | tr '\n' ' ')" "true absent absent "
}

@test "reason: another 400 to a stream is not retried without stream_options" {
	ctl "$(jq -cn --rawfile b "$FIX/llamacpp-err-400.json" '{push: [{path: "/v1/chat/completions", status: 400, body: $b}]}')"
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$status" 69
	assert_eq "$stderr" "ai-stream: chat: the server answered 400: Field 'n': Value must be between 1 <= value <= 1, but got 2"
	assert_eq "$(request_count $CHAT)" 1
}

@test "reason: OpenAI's reasoning models get max_completion_tokens and no temperature; reasoning_effort via -o" {
	run --separate-stderr ai-stream --no-cache -m o3-mini --temperature 0.2 --max-tokens 50 -o reasoning_effort=high hi
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_eq "$(jq -c '[.body.max_completion_tokens, .body.max_tokens, .body.temperature, .body.reasoning_effort]' <<<"$r")" '[50,null,null,"high"]'
	run --separate-stderr ai-summarize --no-cache -v -m gpt-5-mini --temperature 0.2 <<<"text"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -c '.body.temperature')" null
	assert_contains "$stderr" "a reasoning model refuses a temperature: it is not sent"
	# With reasoning off (gpt-5.1's "none") the temperature is allowed again.
	run --separate-stderr ai-stream --no-cache -m gpt-5.1 --temperature 0.2 -o reasoning_effort=none hi
	assert_eq "$(last_request $CHAT | jq -c '[.body.temperature, .body.reasoning_effort]')" '[0.2,"none"]'
	# Other models keep max_tokens and their temperature.
	run --separate-stderr ai-stream --no-cache -m gpt-4o --temperature 0.2 --max-tokens 50 hi
	assert_eq "$(last_request $CHAT | jq -c '[.body.max_tokens, .body.max_completion_tokens, .body.temperature]')" '[50,null,0.2]'
}

@test "reason: Ollama's plain-string error and llama.cpp's error object are quoted, 400 exits 69" {
	ctl '{"push":[{"path":"/v1/chat/completions","status":400,"body":{"error":"model \"llama9\" not found, try pulling it first"}}]}'
	run --separate-stderr ai-summarize --no-cache -m llama9 <<<"text"
	assert_eq "$status" 69
	assert_eq "$stderr" "ai-summarize: chat: the server answered 400: model \"llama9\" not found, try pulling it first; see the models the server offers with --list-models"
	ctl "$(jq -cn --rawfile b "$FIX/llamacpp-err-400.json" '{push: [{path: "/v1/chat/completions", status: 400, body: $b}]}')"
	run --separate-stderr ai-batch --no-cache <<<'"x"'
	assert_eq "$status" 69
	assert_eq "$(jq -r .error.type <<<"$output")" invalid_request_error
	assert_eq "$(jq -r .error.status <<<"$output")" 400
}

@test "reason: vLLM's and Ollama's /models answers list their models" {
	ctl '{"push":[{"path":"/v1/models","body":{"object":"list","data":[{"id":"Qwen/Qwen3-8B","object":"model","created":1,"owned_by":"vllm","root":"Qwen/Qwen3-8B","parent":null,"max_model_len":32768,"permission":[{"id":"modelperm-1","object":"model_permission","allow_sampling":true}]}]}}]}'
	run --separate-stderr ai-stream --list-models --json
	assert_eq "$status" 0
	assert_eq "$(jq -r '[.id, .owned_by] | join(" ")' <<<"$output")" "Qwen/Qwen3-8B vllm"
	ctl '{"push":[{"path":"/v1/models","body":{"object":"list","data":[{"id":"llama3.2:latest","object":"model","created":1731000000,"owned_by":"library"}]}}]}'
	run --separate-stderr ai-stream --list-models
	assert_eq "$status" 0
	assert_eq "$output" "llama3.2:latest"
}

@test "reason: cached prompt tokens are priced at the model's cached-input rate in the ledger" {
	answer '{"role":"assistant","content":"ok"}' stop \
		'{"prompt_tokens":1000000,"completion_tokens":100000,"prompt_tokens_details":{"cached_tokens":400000},"completion_tokens_details":{"reasoning_tokens":60000}}'
	run --separate-stderr ai-summarize --no-cache -m gpt-4o <<<"text"
	assert_eq "$status" 0
	# gpt-4o: 600k at 2.50, 400k cached at 1.25, 100k out at 10 per million: 1.5 + 0.5 + 1.0.
	run --separate-stderr ai-usage --json
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.total) | [.requests, .tokens_in, .tokens_out, .cost]' <<<"$output")" '[1,1000000,100000,3]'
	# A price.MODEL override may give a cached price too.
	mkdir -p "$XDG_CONFIG_HOME/ai"
	cat >"$XDG_CONFIG_HOME/ai/config" <<-'EOF'
	price.my-model = 2 10 0.5
	EOF
	answer '{"role":"assistant","content":"ok"}' stop \
		'{"prompt_tokens":1000000,"completion_tokens":0,"prompt_tokens_details":{"cached_tokens":1000000}}'
	run --separate-stderr ai-summarize --no-cache -m my-model <<<"text"
	assert_eq "$status" 0
	run --separate-stderr ai-usage --json
	assert_eq "$(jq -c 'select(.total) | .cost' <<<"$output")" 3.5
}

# azure_profile: a config file whose profile "az" is an Azure OpenAI resource served by the test server.
azure_profile() {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	(umask 077 && printf '%s\n' "$KEY" >"$T/azure.key")
	cat >"$XDG_CONFIG_HOME/ai/config" <<-EOF
	[profile az]
	base_url = http://127.0.0.1:$PORT/openai
	azure_api_version = 2024-10-21
	api_key_file = $T/azure.key
	EOF
}

@test "reason: an Azure OpenAI profile: deployment URL, api-version query, api-key header" {
	azure_profile
	ctl '{"push":[{"path":"/openai/deployments/prod-4o/chat/completions","body":{"choices":[{"index":0,"message":{"role":"assistant","content":"from azure"},"finish_reason":"stop"}]}}]}'
	run --separate-stderr ai-summarize --no-cache -p az -m prod-4o <<<"text"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$output" "from azure"
	r=$(last_request)
	assert_eq "$(jq -r .path <<<"$r")" /openai/deployments/prod-4o/chat/completions
	assert_eq "$(jq -c .query <<<"$r")" '{"api-version":"2024-10-21"}'
	assert_eq "$(jq -r '.headers["api-key"]' <<<"$r")" "$KEY"
	assert_eq "$(jq -r '.headers.authorization // "absent"' <<<"$r")" absent
	# /models belongs to the resource, not to a deployment.
	ctl '{"push":[{"path":"/openai/models","body":{"data":[{"id":"gpt-4o"}]}}]}'
	run --separate-stderr ai-stream -p az --list-models
	assert_eq "$output" gpt-4o
	assert_eq "$(last_request | jq -c '[.path, .query]')" '["/openai/models",{"api-version":"2024-10-21"}]'
	# An api-version in the base URL's query is the one sent.
	sed -i 's|^base_url = .*|&?api-version=2025-01-01-preview|' "$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize --no-cache -p az -m prod-4o <<<"text"
	assert_eq "$(last_request | jq -c '[.path, .query]')" \
		'["/openai/deployments/prod-4o/chat/completions",{"api-version":"2025-01-01-preview"}]'
}

@test "reason: an Azure profile's key is redacted by --dry-run and -v; a bad api-version is refused" {
	azure_profile
	run --separate-stderr ai-stream -p az -m dep --dry-run hi
	assert_eq "$status" 0
	assert_contains "$output$stderr" "api-key: [redacted]"
	assert_contains "$output$stderr" "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
	assert_not_contains "$output$stderr" "$KEY"
	ctl '{"push":[{"path":"/openai/deployments/dep/chat/completions","body":{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}}]}'
	run --separate-stderr ai-summarize --no-cache -p az -m dep -v <<<"text"
	assert_eq "$status" 0
	assert_contains "$stderr" "api-key: [redacted]"
	assert_not_contains "$stderr" "$KEY"
	printf '[profile az]\nazure_api_version = 2024-10-21&x=y\n' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-summarize -p az <<<"text"
	assert_eq "$status" 78
	assert_contains "$stderr" "azure_api_version"
}
