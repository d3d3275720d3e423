#!/usr/bin/env bats
# Templates (-T NAME or -T @FILE, --param, --save, --list-templates) in the
# programs beyond ai-stream and ai-agent (schema.bats has those): the
# prompt filled, the header lines honoured and overridden, and the errors.
# Each test asserts on what the test server received.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	TD=$XDG_CONFIG_HOME/ai/templates
	mkdir -p "$TD"
}
teardown() { stop_server; }

CHAT=/v1/chat/completions

# reply TEXT...: the model's next answers, in order.
reply() {
	ctl "$(jq -nc '{push: [$ARGS.positional[] | {reply: .}]}' --args "$@")"
}

# ---- ai-summarize ----

@test "summarize: -T's prompt is the request, filled from --param and the input; the header is honoured" {
	printf 'system: You summarize for lawyers.\nmodel: tm\ntemperature: 0.2\nmax_tokens: 77\n\nSummarize for a {{who}} reader:\n{{input}}\nEnd.\n' >"$TD/legal"
	run --separate-stderr ai-summarize -T legal --param who=busy <<<'The contract ends in May.'
	assert_eq "$status" 0 status
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "You summarize for lawyers."
	assert_eq "$(jq -r '.body.messages[1].content' <<<"$r")" $'Summarize for a busy reader:\nThe contract ends in May.\nEnd.'
	assert_eq "$(jq -r '.body.model' <<<"$r")" tm
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0.2
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 77
	# The options win over the header lines.
	run --separate-stderr ai-summarize -T legal --param who=busy -m other --temperature 1 --max-tokens 9 <<<'x y'
	assert_eq "$status" 0 status
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.model' <<<"$r")" other
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 1
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 9
}

@test "summarize: a template without {{input}} gets the input after it; -T @FILE reads a file" {
	printf 'In three words.' >"$T/short.tmpl"
	run --separate-stderr ai-summarize -T @"$T/short.tmpl" <<<'Long text here.'
	assert_eq "$status" 0 status
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[1].content' <<<"$r")" $'In three words.\n\nLong text here.'
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" \
		"You write faithful, concise summaries of the text you are given." "no system: line, the built-in one"
}

@test "summarize: long input: the parts get the built-in instruction, the combining request the template" {
	printf 'TEMPLATE {{input}}' >"$TD/t"
	for i in $(seq 1 60); do echo "Paragraph $i says something about topic number $i in a sentence or two."; echo; done >"$T/long.txt"
	run --separate-stderr ai-summarize -T t --max-input-tokens 200 "$T/long.txt"
	assert_eq "$status" 0 status
	n=$(request_count $CHAT)
	(( n > 2 ))
	assert_eq "$(requests $CHAT | jq -r '.body.messages[1].content' | grep -c 'TEMPLATE')" 1 "only the last request"
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[1].content')" "These are summaries of consecutive parts"
}

@test "summarize: --save keeps the instruction the options make; --prompt with -T is refused" {
	run --separate-stderr ai-summarize --save brief --length short --format bullets --temperature 0.5 -m sm
	assert_eq "$status" 0 status
	assert_eq "$stderr" "ai-summarize: saved template 'brief'; use it with -T brief"
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
	assert_eq "$(head -n 2 "$TD/brief")" $'model: sm\ntemperature: 0.5'
	assert_contains "$(cat "$TD/brief")" "as a list of bullet points starting with '- ', about 50 words"
	run --separate-stderr ai-summarize --list-templates
	assert_eq "$output" brief
	run --separate-stderr ai-summarize -T brief <<<'Some text.'
	assert_eq "$status" 0 status
	assert_eq "$(last_request $CHAT | jq -r .body.model)" sm
	run --separate-stderr ai-summarize -T brief --prompt 'x' <<<'Some text.'
	assert_eq "$status" 64 status
	assert_contains "$stderr" "--prompt and -T"
}

@test "summarize: a missing parameter (64), no such template (66), a bad header (65); nothing is sent" {
	printf 'For {{who}}: {{input}}' >"$TD/who"
	run --separate-stderr ai-summarize -T who <<<'text'
	assert_eq "$status" 64 status
	assert_eq "$stderr" "ai-summarize: the template needs --param who=VALUE"
	run --separate-stderr ai-summarize -T nope <<<'text'
	assert_eq "$status" 66 status
	assert_contains "$stderr" "no template 'nope'"
	run --separate-stderr ai-summarize -T @"$T/missing" <<<'text'
	assert_eq "$status" 66 status
	printf 'max_tokens: lots\nhi' >"$TD/bad"
	run --separate-stderr ai-summarize -T bad <<<'text'
	assert_eq "$status" 65 status
	assert_contains "$stderr" "max_tokens wants a whole number"
	run --separate-stderr ai-summarize --param who=x <<<'text'
	assert_eq "$status" 64 status
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
}

@test "summarize: a template's schema: line answers as data" {
	ctl '{"set": {"json_from_prompt": true}}'
	printf 'schema: title, words int\n\nAs data: {{input}}' >"$TD/data"
	run --separate-stderr ai-summarize -T data <<<'{"title": "T", "words": 3}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"title":"T","words":3}'
	assert_eq "$(last_request $CHAT | jq -r .body.response_format.type)" json_schema
}

# ---- ai-ask ----

ask_setup() {
	CORPUS=$(cd "$BATS_TEST_DIRNAME/../fixtures/corpus" && pwd -P)
	DB=$T/index.db
	(cd "$CORPUS" && ai-index --db "$DB" -q --chunk-tokens 60 --overlap 0 *.md *.txt)
}

@test "ask: -T fills the question; retrieval searches by the question, not the template's words" {
	ask_setup
	printf 'system: Answer like a pirate.\nmax_tokens: 33\n\nAnswer in {{lang}}: {{input}}' >"$TD/pirate"
	run --separate-stderr ai-ask --db "$DB" --no-embed -T pirate --param lang=French 'Why are leaves green?'
	assert_eq "$status" 0 status
	r=$(last_request $CHAT)
	sys=$(jq -r '.body.messages[0].content' <<<"$r")
	assert_contains "$sys" "citing them"
	assert_contains "$sys" "Answer like a pirate."
	assert_contains "$(jq -r '.body.messages[1].content' <<<"$r")" "Question: Answer in French: Why are leaves green?"
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 33
	# The passages are the same as without the template.
	p1=$(ai-ask --db "$DB" --no-embed --retrieve-only 'Why are leaves green?' | jq -r .source)
	p2=$(ai-ask --db "$DB" --no-embed --retrieve-only -T pirate --param lang=French 'Why are leaves green?' | jq -r .source)
	assert_eq "$p2" "$p1"
}

@test "ask: errors: a missing parameter, no such template, a template with schema: (64, it gives no data)" {
	ask_setup
	printf 'In {{lang}}: {{input}}' >"$TD/lang"
	run --separate-stderr ai-ask --db "$DB" -T lang 'why?'
	assert_eq "$status" 64 status
	assert_eq "$stderr" "ai-ask: the template needs --param lang=VALUE"
	run --separate-stderr ai-ask --db "$DB" -T none 'why?'
	assert_eq "$status" 66 status
	printf 'schema: a\n\n{{input}}' >"$TD/data"
	run --separate-stderr ai-ask --db "$DB" -T data 'why?'
	assert_eq "$status" 64 status
	assert_contains "$stderr" "which ai-ask does not give"
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
}

@test "ask: --save writes the question as a template" {
	run --separate-stderr ai-ask --save q 'Explain {{topic}} simply: {{input}}' </dev/null
	assert_eq "$status" 0 status
	assert_eq "$(cat "$TD/q")" 'Explain {{topic}} simply: {{input}}'
	assert_eq "$(request_count $CHAT)" 0
}

# ---- ai-cmd ----

@test "cmd: -T fills the description; its system line adds to the rules; temperature is sent" {
	printf 'system: Prefer find over ls.\ntemperature: 0\n\nA command to {{input}} under {{dir}}' >"$TD/files"
	reply "find /tmp -name '*.log'"
	run --separate-stderr ai-cmd -T files --param dir=/tmp list the log files
	assert_eq "$status" 0 status
	assert_eq "$output" "find /tmp -name '*.log'"
	r=$(last_request $CHAT)
	sys=$(jq -r '.body.messages[0].content' <<<"$r")
	assert_contains "$sys" "Reply with the command alone"
	assert_contains "$sys" "Prefer find over ls."
	assert_eq "$(jq -r '.body.messages[1].content' <<<"$r")" "A command to list the log files under /tmp"
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0
	run --separate-stderr ai-cmd -T files list
	assert_eq "$status" 64 status
	assert_eq "$stderr" "ai-cmd: the template needs --param dir=VALUE"
}

# ---- ai-batch ----

@test "batch: -T is --template from a file: --param filled once, {{field}} per item, {{input}} the text" {
	printf 'system: Classify.\ntemperature: 0.1\nmax_tokens: 5\n\nAs {{kind}}: {{input}} ({{lang}})' >"$TD/cls"
	printf '{"id": 1, "text": "good", "lang": "en"}\n{"id": 2, "text": "mal", "lang": "fr"}\n{"id": 3, "text": "x"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch -P 1 -T cls --param kind=sentiment "$T/in.jsonl"
	assert_eq "$status" 1 "item 3 has no lang"
	assert_eq "$(jq -r 'select(.id == 3) | .error.message' <<<"$output")" "the item has no field 'lang' that --template names"
	assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | tr '\n' '|')" "As sentiment: good (en)|As sentiment: mal (fr)|"
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "Classify."
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0.1
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 5
}

@test "batch: a template that names nothing of the item gets its text after it; --lines too" {
	printf 'Translate to German.' >"$TD/de"
	printf 'hello\nworld\n' >"$T/in.txt"
	run --separate-stderr ai-batch -P 1 --lines -T de --system 'Be exact.' "$T/in.txt"
	assert_eq "$status" 0 status
	assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | tr '\n' '|')" \
		"Translate to German.||hello|Translate to German.||world|"
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[0].content')" "Be exact." "the option wins"
}

@test "batch: --save keeps --template and the options; -T with --template, a '{{' in --param: 64" {
	run --separate-stderr ai-batch --save rate -t 'Rate {{text}} from 1 to 5' --system 'Be fair.' --max-tokens 3
	assert_eq "$status" 0 status
	assert_eq "$(cat "$TD/rate")" $'system: Be fair.\nmax_tokens: 3\n\nRate {{text}} from 1 to 5'
	printf '{"id": 1, "text": "pie"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch -T rate "$T/in.jsonl"
	assert_eq "$status" 0 status
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" "Rate pie from 1 to 5"
	run --separate-stderr ai-batch -T rate -t 'x {{text}}' "$T/in.jsonl"
	assert_eq "$status" 64 status
	run --separate-stderr ai-batch -T rate --param 'a={{text}}' "$T/in.jsonl"
	assert_eq "$status" 64 status
	run --separate-stderr ai-batch -T missing "$T/in.jsonl"
	assert_eq "$status" 66 status
	assert_eq "$(request_count $CHAT)" 1 "only the one good run sent"
}

@test "batch: a template's schema: line checks every answer; model: names the model" {
	ctl '{"set": {"json_from_prompt": true}}'
	printf 'model: tm\nschema: n int\n\nAs data: {{text}}' >"$TD/num"
	printf '{"id": 1, "text": "{\\"n\\": 1}"}\n{"id": 2, "text": "none"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch -P 1 -T num "$T/in.jsonl"
	assert_eq "$status" 1 status
	assert_eq "$(jq -c '[.id, .data, .error.type]' <<<"$output" | tr '\n' ' ')" '[1,{"n":1},null] [2,null,"schema_invalid"] '
	assert_eq "$(requests $CHAT | jq -r '.body.model + " " + .body.response_format.type' | sort -u)" "tm json_schema"
}

@test "batch: submit -T @FILE: the job keeps its own copy of the template" {
	printf 'Say {{text}} in {{lang}}' >"$T/say.tmpl"
	printf '{"id": 1, "text": "hi"}\n' >"$T/in.jsonl"
	id=$(cd "$T" && ai-batch submit -T @say.tmpl --param lang=Welsh -- in.jsonl)
	rm "$T/say.tmpl"
	run --separate-stderr ai-batch wait "$id"
	assert_eq "$status" 0 "status: $stderr"
	run --separate-stderr ai-batch results "$id"
	assert_eq "$(jq -r .id <<<"$output")" 1
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" "Say hi in Welsh"
}

# ---- completions: -T offers the saved templates in every program that takes a prompt ----

# (zsh: completions.bats, which has the pseudo-terminal that drives it.)
@test "completions: -T completes the saved template names (bash, fish) in every program that has it" {
	C=$(cd "$BATS_TEST_DIRNAME/../../completions" && pwd)
	: >"$TD/legal" && : >"$TD/lisp" && : >"$TD/other"
	mkdir -p "$T/cwd" && : >"$T/cwd/my.tmpl" && cd "$T/cwd"
	n=0
	for p in "$AI_BIN"/ai-*; do
		p=${p##*/}
		"$AI_BIN/$p" --list-options | grep -qx -- --use-template || continue
		n=$((n + 1))
		got=$(bash -c '
			. "$1/bash/$2" || exit 3
			fn=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
			COMP_WORDS=("$2" -T "$3") COMP_CWORD=2 COMPREPLY=()
			"$fn" "$2" "$3" -T
			printf "%s\n" "${COMPREPLY[@]}"' x "$C" "$p" l | sort | tr '\n' ' ')
		assert_eq "$got" "legal lisp " "bash $p"
		got=$(bash -c '
			. "$1/bash/$2" || exit 3
			fn=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
			COMP_WORDS=("$2" --use-template "@my") COMP_CWORD=2 COMPREPLY=()
			"$fn" "$2" "@my" --use-template
			printf "%s\n" "${COMPREPLY[@]}"' x "$C" "$p")
		assert_eq "$got" "@my.tmpl" "bash $p @FILE"
		got=$(PATH=$AI_BIN:$PATH fish -N -c 'set -p fish_complete_path $argv[1]; complete -C $argv[2]' \
			"$C/fish" "$p -T l" | cut -f1 | sort | tr '\n' ' ')
		assert_eq "$got" "legal lisp " "fish $p"
	done
	assert_eq "$n" 6 "ai-summarize, ai-stream, ai-batch, ai-ask, ai-agent, ai-cmd"
}
