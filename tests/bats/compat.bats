#!/usr/bin/env bats
# What real servers send: responses recorded from two llama-server builds
# (tests/fixtures/compat/, "old-" early 2025, "new-" later) replayed byte
# for byte by the test server, headers included, through the programs.
# See COMPAT in ai(7).

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions
EMBED=/v1/embeddings
FIX=$BATS_TEST_DIRNAME/../fixtures/compat

# The body of a recorded answer as a client receives it (curl undoes the chunking).
@test "compat: the test server replays a recorded answer byte for byte, its headers as recorded" {
	for f in new-chat new-stream err-embd-too-large; do
		replay "$f"
		curl -sS --noproxy '*' -D "$T/h" -o "$T/b" -d '{}' "$OPENAI_BASE_URL/chat/completions"
		cmp "$T/b" "$FIX/$f.body"
		# The status line and every header but the framing and Date, in order.
		want=$(tr -d '\r' <"$FIX/$f.hdr" | grep -viE '^(content-length|transfer-encoding|connection):' |
			sed 's/: *$/: /; s/^HTTP\/1.1 \([0-9]*\).*/\1/')
		got=$(tr -d '\r' <"$T/h" | grep -viE '^(content-length|transfer-encoding|connection|date):' |
			sed 's/: *$/: /; s/^HTTP\/1.1 \([0-9]*\).*/\1/')
		assert_eq "$got" "$want" "$f headers"
	done
}

@test "compat: a fixture that is not there is a 599, not a silent pass" {
	ctl '{"push":[{"replay":"/nonexistent/x"}]}'
	run curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' -d '{}' "$OPENAI_BASE_URL/chat/completions"
	assert_eq "$output" 599
	run ctl '{"push":[{"replay":7}]}'
	assert_eq "$status" 1 "a replay that is not a string"
}

@test "compat: llama.cpp's chat answers are read by ai-summarize, extra fields and all" {
	for v in new old; do
		replay "$v-chat"
		run --separate-stderr ai-summarize --no-cache <<<"some text to summarize"
		assert_eq "$status" 0 "$v status"
		assert_eq "$output" "$(jq -r '.choices[0].message.content' "$FIX/$v-chat.body")" "$v output"
	done
}

@test "compat: llama.cpp's streams print every delta, with and without a usage chunk" {
	for f in new-stream old-stream new-stream-usage; do
		replay "$f"
		run --separate-stderr ai-stream --no-cache "hello"
		assert_eq "$status" 0 "$f status"
		want=$(sed -n 's/^data: //p' "$FIX/$f.body" | grep -v '^\[DONE\]' |
			jq -j '.choices[0].delta.content // empty')
		assert_eq "$output" "$want" "$f output"
		assert_eq "$(request_count $CHAT)" 1 "$f requests"
		: >"$SERVER_LOG"
	done
}

@test "compat: llama.cpp's embeddings answers are stored, 64 dimensions" {
	# The recorded answers hold two vectors: a document of two chunks.
	for v in new old; do
		replay "$v-embd" $EMBED
		printf 'the first paragraph has some words in it\n\nand the second one has other words\n' >"$T/$v.txt"
		run --separate-stderr ai-index --db "$T/kb.db" -c "$v" --chunk-tokens 16 --overlap 0 "$T/$v.txt"
		assert_eq "$status" 0 "$v status: $stderr"
		run --separate-stderr ai-index --db "$T/kb.db" -c "$v" --stats --json
		assert_eq "$(jq -r .dim <<<"$output")" 64 "$v dim"
		assert_eq "$(jq -r .vectors <<<"$output")" 2 "$v vectors"
	done
}

@test "compat: llama.cpp's /models answers list its model" {
	for v in new old; do
		replay "$v-models" /v1/models
		run --separate-stderr ai-stream --list-models
		assert_eq "$status" 0 "$v"
		assert_eq "$output" tiny-random-llama "$v"
	done
}

@test "compat: llama.cpp's 400 and 404 are not retried, and quote the server" {
	for f in new-err-n2:"Field 'n'" new-err-nomsg:"'messages' is required" new-err-404:"File Not Found"; do
		replay "${f%%:*}"
		run --separate-stderr ai-summarize --no-cache --retries 3 <<<"text"
		assert_eq "$status" 69 "$f status"
		assert_contains "$stderr" "${f#*:}"
		assert_eq "$(request_count $CHAT)" 1 "$f requests"
		: >"$SERVER_LOG"
	done
}

@test "compat: llama.cpp's permanent 500s (a body it cannot parse) are not retried: 69, not 75" {
	for f in new-err-badjson old-err-badjson old-err-nomsg; do
		replay "$f"
		run --separate-stderr ai-summarize --no-cache --retries 3 <<<"text"
		assert_eq "$status" 69 "$f status"
		assert_contains "$stderr" "the server answered 500: [json.exception."
		assert_eq "$(request_count $CHAT)" 1 "$f requests"
		: >"$SERVER_LOG"
	done
}

@test "compat: a 500 that is not known to be permanent is still retried" {
	ctl '{"push":[{"status":500,"body":{"error":{"code":500,"message":"something broke","type":"server_error"}}}]}'
	run --separate-stderr ai-summarize --no-cache --retries 3 <<<"text"
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
}

@test "compat: ai-batch gives a permanent 500 its item's error at once, with 69" {
	replay old-err-nomsg $CHAT
	printf '{"id":"a","text":"x"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch --no-cache --retries 3 "$T/in.jsonl"
	assert_eq "$status" 69
	assert_eq "$(jq -r .id <<<"$output")" a
	assert_contains "$(jq -r .error.message <<<"$output")" "json.exception.out_of_range"
	assert_eq "$(request_count $CHAT)" 1
}

@test "compat: llama-server's recorded 500 for an input over its batch makes ai-index split, not fail" {
	replay err-embd-too-large $EMBED
	cp "$FIX/../corpus/coffee.md" "$T/coffee.md"
	run --separate-stderr ai-index --db "$T/kb.db" --retries 3 "$T/coffee.md"
	assert_eq "$status" 0 "$stderr"
	assert_contains "$stderr" "input is too large to process"
	assert_contains "$stderr" "chunks of at most 200 tokens from now on"
	run --separate-stderr ai-index --db "$T/kb.db" --stats --json
	assert_eq "$(jq -r '.vectors == .chunks and .vectors > 0' <<<"$output")" true
	# The refused request once, then the smaller chunks: no retry of the 500.
	assert_eq "$(request_count $EMBED)" 2
}

@test "compat: llama-server without --embeddings (501) is not retried: ai-index builds for BM25 alone" {
	ctl '{"push":[{"path":"/v1/embeddings","status":501,"headers":{"Server":"llama.cpp"},"body":{"error":{"code":501,"message":"This server does not support embeddings. Start it with `--embeddings`","type":"not_supported_error"}}}]}'
	cp "$FIX/../corpus/coffee.md" "$T/coffee.md"
	run --separate-stderr ai-index --db "$T/kb.db" --retries 3 "$T/coffee.md"
	assert_eq "$status" 0 "$stderr"
	assert_contains "$stderr" "does not support embeddings"
	assert_contains "$stderr" "BM25 only"
	assert_eq "$(request_count $EMBED)" 1
	run --separate-stderr ai-index --db "$T/kb.db" --stats --json
	assert_eq "$(jq -r .vectors <<<"$output")" 0
	assert_eq "$(jq -r .documents <<<"$output")" 1
}

@test "compat: a stream answered with a permanent 500 is not retried either" {
	replay old-err-nomsg $CHAT
	run --separate-stderr ai-stream --no-cache --retries 3 "hello"
	assert_eq "$status" 69
	assert_eq "$output" ""
	assert_contains "$stderr" "key 'messages' not found"
	assert_eq "$(request_count $CHAT)" 1
}
