#!/usr/bin/env bats
# Request parameters the programs have no flag for: -o KEY=VALUE, typed as
# JSON where it parses; option.KEY, top_p and seed in ai.conf; and the
# config defaults temperature, max_tokens and system.  What reaches the
# request body, what wins over what, and what is refused.

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

body() { last_request $CHAT | jq -c ".body$1"; }

@test "params: -o values are typed as JSON where they parse, strings otherwise" {
	run --separate-stderr ai-summarize -o seed=42 -o stop='["a","b"]' -o reasoning_effort=low \
		-o logprobs=true -o user=null -o top_p=0.5 -o response_format='{"type":"json_object"}' \
		-o note='say "hi"' -o empty= <<<"text"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$(body .seed)" 42
	assert_eq "$(body .stop)" '["a","b"]'
	assert_eq "$(body .reasoning_effort)" '"low"'
	assert_eq "$(body .logprobs)" true
	assert_eq "$(body .user)" null
	assert_eq "$(body .top_p)" 0.5
	assert_eq "$(body .response_format)" '{"type":"json_object"}'
	assert_eq "$(body .note)" '"say \"hi\""'
	assert_eq "$(body .empty)" '""'
	# Not JSON numbers: kept as the text given.
	run --separate-stderr ai-summarize --no-cache -o a=NaN -o b=1e999 -o c=42x -o d=--5 <<<"text"
	assert_eq "$status" 0
	assert_eq "$(body '|[.a,.b,.c,.d]')" '["NaN","1e999","42x","--5"]'
}

@test "params: -o reaches every chat program, streams and the Batch API input" {
	run --separate-stderr ai-stream -o seed=7 hi
	assert_eq "$status" 0
	assert_eq "$(body .seed)" 7
	run --separate-stderr ai-batch -o seed=8 <<<'{"id":1,"text":"x"}'
	assert_eq "$status" 0
	assert_eq "$(body .seed)" 8
	run --separate-stderr ai-agent -o seed=9 do nothing
	assert_eq "$status" 0
	assert_eq "$(body .seed)" 9
	run --separate-stderr ai-summarize --dry-run -o seed=10 <<<"text"
	assert_contains "$output" '"seed":10'
}

@test "params: the last -o for a key wins; a program's own fields win over -o" {
	run --separate-stderr ai-summarize -o seed=1 -o seed=2 <<<"text"
	assert_eq "$(body .seed)" 2
	# A batch item's own field is more specific than the command line.
	run --separate-stderr ai-batch -o seed=1 <<<'{"id":1,"messages":[{"role":"user","content":"x"}],"seed":5}'
	assert_eq "$status" 0
	assert_eq "$(body .seed)" 5
}

@test "params: -o is part of the cache key" {
	ai-summarize -o seed=1 <<<"text" >/dev/null
	ai-summarize -o seed=1 <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 1 "same parameters: cached"
	ai-summarize -o seed=2 <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 2 "another seed: sent"
	ai-summarize <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 3 "no seed: sent"
}

@test "params: a bad -o is a usage error, before any request" {
	for a in seed '=1' 'a b=1' 'stop=[a' 'x={"a":' model=m messages=[] stream=true tools=[] n=2; do
		run --separate-stderr ai-summarize -o "$a" <<<"text"
		assert_eq "$status" 64 "-o $a"
		assert_contains "$stderr" "Try 'ai-summarize --help'"
	done
	run --separate-stderr ai-summarize -o seed <<<"text"
	assert_contains "$stderr" "ai-summarize: -o wants KEY=VALUE, not 'seed'"
	run --separate-stderr ai-summarize -o 'stop=[a' <<<"text"
	assert_contains "$stderr" "stop: '[a' is not valid JSON"
	run --separate-stderr ai-summarize --option temperature=1 <<<"text"
	assert_eq "$status" 64
	assert_contains "$stderr" "'temperature' is set by the program itself, not with -o: use --temperature"
	run --separate-stderr ai-summarize -o model=x <<<"text"
	assert_contains "$stderr" "use -m/--model"
	run --separate-stderr ai-summarize -o <<<"text"
	assert_eq "$status" 64
	assert_eq "$(request_count)" 0
}

@test "params: ai.conf's top_p, seed and option.KEY, per profile, under -o" {
	printf '%s\n' 'top_p = 0.9' 'seed = 7' 'option.reasoning_effort = low' 'option.stop = ["x"]' \
		'[profile p]' 'seed = 8' 'option.reasoning_effort = high' >"$CONF"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$(body '|[.top_p,.seed,.reasoning_effort,.stop]')" '[0.9,7,"low",["x"]]'
	run --separate-stderr ai-summarize -p p <<<"text"
	assert_eq "$(body '|[.top_p,.seed,.reasoning_effort]')" '[0.9,8,"high"]'
	run --separate-stderr ai-summarize -p p -o seed=9 -o top_p=0.1 <<<"text"
	assert_eq "$(body '|[.top_p,.seed,.reasoning_effort]')" '[0.1,9,"high"]'
}

@test "params: bad parameters in ai.conf are configuration errors naming the line" {
	for l in 'top_p = 2' 'top_p = x' 'seed = 1.5' 'seed = x' 'option.model = m' 'option.stop = [x' \
		'option. = 1' 'option.a b = 1' 'temperature = 3' 'temperature = hot' 'max_tokens = 0' \
		'max_tokens = 1.5'; do
		printf '%s\n' 'model = m' "$l" >"$CONF"
		run --separate-stderr ai-summarize <<<"text"
		assert_eq "$status" 78 "$l"
		assert_contains "$stderr" "$CONF:2: "
	done
	assert_eq "$(request_count)" 0
}

@test "params: temperature and max_tokens from ai.conf are defaults; flags win" {
	printf '%s\n' 'temperature = 0.3' 'max_tokens = 50' '[profile p]' 'temperature = 0.6' >"$CONF"
	run --separate-stderr ai-summarize <<<"text"
	assert_eq "$status" 0 "$stderr"
	assert_eq "$(body '|[.temperature,.max_tokens]')" '[0.3,50]'
	run --separate-stderr ai-summarize -p p <<<"text"
	assert_eq "$(body '|[.temperature,.max_tokens]')" '[0.6,50]'
	run --separate-stderr ai-summarize -p p --temperature 1 --max-tokens 9 <<<"text"
	assert_eq "$(body '|[.temperature,.max_tokens]')" '[1,9]'
	# Every chat program takes them.
	for p in "ai-stream hi" "ai-agent do nothing"; do
		run --separate-stderr $p
		assert_eq "$status" 0 "$p"
		assert_eq "$(body '|[.temperature,.max_tokens]')" '[0.3,50]' "$p"
	done
	run --separate-stderr ai-batch <<<'{"id":1,"text":"x"}'
	assert_eq "$(body '|[.temperature,.max_tokens]')" '[0.3,50]' ai-batch
	# A reasoning model gets max_completion_tokens, as with --max-tokens.
	run --separate-stderr ai-summarize -m o3-mini <<<"text"
	assert_eq "$(body '|[.max_completion_tokens,.max_tokens]')" '[50,null]'
}

@test "params: system from ai.conf is the default of --system" {
	printf '%s\n' 'system = You are terse.' >"$CONF"
	run --separate-stderr ai-stream hi
	assert_eq "$status" 0 "$stderr"
	assert_eq "$(body '.messages[0]')" '{"role":"system","content":"You are terse."}'
	run --separate-stderr ai-stream --system "Be kind." hi
	assert_eq "$(body '.messages[0].content')" '"Be kind."'
	run --separate-stderr ai-batch <<<'{"id":1,"text":"x"}'
	assert_eq "$(body '.messages[0]')" '{"role":"system","content":"You are terse."}'
	run --separate-stderr ai-agent do nothing
	assert_eq "$(body '.messages[0].content')" '"You are terse."'
	# ai-summarize keeps its own task prompt.
	run --separate-stderr ai-summarize <<<"text"
	assert_not_contains "$(body '.messages[0].content')" "terse"
	# A history's own system message wins over the config's.
	printf '%s\n' '{"role":"system","content":"From history."}' >"$T/h.jsonl"
	run --separate-stderr ai-stream --history "$T/h.jsonl" hi
	assert_eq "$status" 0 "$stderr"
	assert_eq "$(body '.messages[0].content')" '"From history."'
}
