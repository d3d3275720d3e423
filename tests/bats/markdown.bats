#!/usr/bin/env bats
# Markdown rendered on a terminal as it streams (common/markdown.c behind
# cmd/lib/termout.c): each construct on a pseudo-terminal, the same output
# however the stream is cut, byte for byte text in a pipe, plain under
# NO_COLOR and TERM=dumb, and the neutraliser still in front.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	# script's terminal has no size here: the width comes from COLUMNS.
	export COLUMNS=40 TERM=xterm
	unset NO_COLOR
}
teardown() { stop_server; }

# reply TEXT: every chat request is answered with TEXT (streamed when asked).
reply() {
	ctl "$(jq -cn --arg r "$1" '{set: {reply: $r}}')"
}

# tty CMD: CMD's stdout on a pseudo-terminal, without the CR the terminal adds.
tty() {
	on_tty "$1" </dev/null | tr -d '\r'
}

# golden MARKDOWN WANT: ai-stream on a terminal renders MARKDOWN as WANT.
golden() {
	reply "$1"
	got=$(tty "ai-stream --no-cache x")
	assert_eq "$got" "$2" "rendering of [$1]"
}

B=$'\e[0;1m' I=$'\e[0;3m' C=$'\e[0;36m' D=$'\e[0;2m' R=$'\e[0m' U=$'\e[0;4m'
H1=$'\e[0;1;4;35m' H2=$'\e[0;1;35m' S=$'\e[0;9m'
# dash N: N box-drawing dashes.
dash() { local i; for ((i = 0; i < $1; i++)); do printf '\u2500'; done; }
RULE40=$(dash 40)

@test "markdown: headings" {
	golden $'# One\n## Two ##\n### Three' "${H1}One$R"$'\n'"${H2}Two$R"$'\n'"${B}Three$R"
}

@test "markdown: emphasis, strikethrough and inline code" {
	golden 'a **b** *c* _d_ ~~e~~ `f*g*` snake_case' "a ${B}b$R ${I}c$R ${I}d$R ${S}e$R ${C}f*g*$R snake_case"
}

@test "markdown: a fenced code block is verbatim, its language above it, nothing inside its lines" {
	golden $'```sh\n  ls **x** | wc\n```\nafter' \
		"$D"$'\u2500\u2500 sh '"$(dash 34)$R"$'\n  ls **x** | wc\n'"$D$RULE40$R"$'\nafter'
}

@test "markdown: lists, nested, ordered and tasks" {
	golden $'- one\n  - two\n3. three\n- [x] done' \
		"$B"$'\u2022 '"${R}one"$'\n  '"$B"$'\u25e6 '"${R}two"$'\n'"${B}3. ${R}three"$'\n'"$B"$'\u2022 \u2611 '"${R}done"
}

@test "markdown: block quotes" {
	golden $'> said *this*' "$D"$'\u2502 '"${R}said ${I}this$R"
}

@test "markdown: a table is aligned to its columns when it ends" {
	golden $'| n | qty |\n|---|--:|\n| apple | 3 |\n| kiwi | 12 |\n\nend' \
		"${B}n$R    $D"$' \u2502 '"$R${B}qty$R"$'\n'"$D""$(dash 6)"$'\u253c'"$(dash 4)$R"$'\n'"apple$D"$' \u2502 '"$R  3"$'\n'"kiwi $D"$' \u2502 '"$R 12"$'\n\nend'
}

@test "markdown: a rule, and a link as its text plus the URL" {
	COLUMNS=80
	golden $'---\nsee [the docs](https://d.example/x) or <https://e.example>' \
		"$D$(dash 80)$R"$'\n'"see ${U}the docs$D (https://d.example/x)$R or ${U}https://e.example$R"
}

@test "markdown: prose is wrapped to the terminal's width" {
	reply "one two three four five six seven eight nine ten eleven twelve"
	got=$(COLUMNS=20 tty "ai-stream --no-cache x")
	assert_eq "$got" $'one two three four \nfive six seven eight\nnine ten eleven \ntwelve'
}

@test "markdown: the output does not depend on where the stream was cut" {
	text=$'# T\n- **a** b\n\n| x | y |\n|--|--|\n| `1` | 2 |\n```c\nint i;\n```\n[l](u) \u00e9\u65e5 end'
	reply "$text"
	whole=$(tty "ai-stream --no-cache x")
	assert_contains "$whole" "${H1}T$R"
	n=$(jq -rn --arg t "$text" '$t | length')
	# Every cut is queued at once, in order: one jq and one ctl, not one each a cut.
	ctl "$(jq -cn --arg t "$text" '
		def ev(d): "data: " + ({choices: [{index: 0, delta: d}]} | tojson) + "\n\n";
		{push: [range(0; ($t | length) + 1) as $i | {raw: (ev({content: $t[0:$i]}) + ev({content: $t[$i:]}) +
			"data: " + ({choices: [{index: 0, delta: {}, finish_reason: "stop"}]} | tojson) +
			"\n\ndata: [DONE]\n\n")}]}')"
	assert_eq "$(queued)" $((n + 1)) "cuts queued"
	for ((i = 0; i <= n; i++)); do
		got=$(tty "ai-stream --no-cache x")
		assert_eq "$got" "$whole" "cut at character $i"
	done
	assert_eq "$(queued)" 0 "cuts left"
	# And five bytes at a time, as the test server drips them.
	ctl '{"push":[{"drip_ms":1}]}'
	assert_eq "$(tty "ai-stream --no-cache x")" "$whole" "dripped"
}

@test "markdown: piped output is the model's text byte for byte" {
	text=$'# T\n**b** `c`\n| a | b |\n|-|-|\n```\nx\n```'
	reply "$text"
	ai-stream --no-cache x >"$T/out"
	assert_eq "$(od -An -tx1 <"$T/out")" "$(printf '%s\n' "$text" | od -An -tx1)"
	ai-summarize --no-cache <<<"some text" >"$T/out"
	assert_eq "$(od -An -tx1 <"$T/out")" "$(printf '%s\n' "$text" | od -An -tx1)"
}

@test "markdown: NO_COLOR and TERM=dumb get the rendering without any escape sequence" {
	reply $'# T\n- **b** [l](u)\n```\nc\n```'
	want=$'# T\n\u2022 b l (u)\n\u2500\u2500 code '"$(dash 32)"$'\nc\n'"$RULE40"
	got=$(NO_COLOR=1 tty "ai-stream --no-cache x")
	assert_eq "$got" "$want" "NO_COLOR"
	got=$(TERM=dumb tty "ai-stream --no-cache x")
	assert_eq "$got" "$want" "TERM=dumb"
}

@test "markdown: escape sequences in a code block, a link or a heading are still neutralised" {
	reply $'# a\e]0;t\a\n```\nx\e[2J\n```\n[click\e7\a](https://x\e]52;c;Zm9v\a)'
	got=$(tty "ai-stream --no-cache x")
	# The only escapes left are the renderer's own SGR sequences.
	stripped=$(sed -E $'s/\e\\[[0-9;]*m//g' <<<"$got")
	assert_not_contains "$stripped" $'\e'
	assert_not_contains "$got" $'\a'
	assert_contains "$stripped" $'a\u241b]0;t\u2407'
	assert_contains "$stripped" $'\nx\u241b[2J\n'
	assert_contains "$stripped" $'click\u241b7\u2407 (https://x\u241b]52;c;Zm9v\u2407)'
	# --raw leaves the text alone, and so renders nothing.
	got=$(tty "ai-stream --no-cache --raw x")
	assert_contains "$got" $'x\e[2J'
	assert_contains "$got" '```'
}

@test "markdown: --markdown=never on a terminal, --markdown=always in a pipe" {
	reply $'**b**\n- i'
	assert_eq "$(tty "ai-stream --no-cache --markdown=never x")" $'**b**\n- i'
	run --separate-stderr ai-stream --no-cache --markdown=always x
	assert_eq "$status" 0
	assert_eq "$output" "${B}b$R"$'\n'"$B"$'\u2022 '"${R}i"
	NO_COLOR=1 run --separate-stderr ai-stream --no-cache --markdown always x
	assert_eq "$output" $'b\n\u2022 i'
	run --separate-stderr ai-stream --markdown=sometimes x
	assert_eq "$status" 64
	assert_contains "$stderr" "--markdown takes auto, always or never, not 'sometimes'"
}

@test "markdown: the markdown key in ai.conf, and the flag over it" {
	reply '**b**'
	printf 'markdown = never\n' >"$XDG_CONFIG_HOME/ai/config" 2>/dev/null || {
		mkdir -p "$XDG_CONFIG_HOME/ai"
		printf 'markdown = never\n' >"$XDG_CONFIG_HOME/ai/config"
	}
	assert_eq "$(tty "ai-stream --no-cache x")" '**b**'
	assert_eq "$(tty "ai-stream --no-cache --markdown=auto x")" "${B}b$R"
	printf 'markdown = always\n' >"$XDG_CONFIG_HOME/ai/config"
	assert_eq "$(ai-stream --no-cache x)" "${B}b$R"
	printf 'markdown = maybe\n' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-stream --no-cache x
	assert_eq "$status" 78
	assert_contains "$stderr" "bad value 'maybe' for markdown"
}

@test "markdown: ai-summarize, ai-agent and ai-ask render too" {
	reply $'## Sum\n- **x**'
	want="${H2}Sum$R"$'\n'"$B"$'\u2022 '"$R${B}x$R"
	printf 'text\n' >"$T/in.txt"
	assert_eq "$(tty "ai-summarize --no-cache '$T/in.txt'")" "$want" ai-summarize
	assert_eq "$(tty "ai-agent --no-cache --no-default-tools 'do it'")" "$want" ai-agent
	CORPUS=$(cd "$BATS_TEST_DIRNAME/../fixtures/corpus" && pwd -P)
	(cd "$CORPUS" && ai-index --db "$T/kb.db" -q *.md *.txt)
	for mode in "" --stream; do
		# The answer, then the sources ai-ask lists after it.
		got=$(tty "ai-ask --no-cache $mode --db '$T/kb.db' 'espresso grind'")
		assert_eq "$(head -n 2 <<<"$got")" "$want" "ai-ask $mode"
		assert_contains "$got" $'\n\nSources:\n'
	done
}

@test "markdown: a stream cut short keeps the line it was in, ended" {
	raw=$'data: {"choices":[{"index":0,"delta":{"content":"# T\\n**half"}}]}\n\n'
	ctl "$(jq -cn --arg raw "$raw" '{push: [{raw: $raw}]}')"
	got=$(tty "ai-stream --no-cache x") || true
	# stdout, then the warning on stderr (the terminal shows both), on a line of its own.
	assert_eq "$(head -n 2 <<<"$got")" "${H1}T$R"$'\n**half'
	assert_contains "$got" $'\nai-stream: stream ended without [DONE]'
}

@test "markdown: the shells complete --markdown and its values" {
	C=$(cd "$BATS_TEST_DIRNAME/../../completions" && pwd)
	for p in ai-stream ai-ask ai-agent ai-summarize; do
		for words in "$p --markdown ''" "$p --markdown = a"; do
			got=$(eval "set -- $words"; bash -c '
				. "$1/bash/$2" || exit 3; shift
				fn=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p"); shift
				COMP_WORDS=("$@") COMP_CWORD=$(($# - 1))
				"$fn"; printf "%s\n" "${COMPREPLY[@]}"' x "$C" "$p" "$p" "$@" | sort | tr '\n' ' ')
			case $words in
			*"''") assert_eq "$got" "always auto never " "bash: $words" ;;
			*) assert_eq "$got" "always auto " "bash: $words" ;;
			esac
		done
		grep -q -- "--markdown=\[render Markdown on a terminal\]:when:(auto always never)" "$C/zsh/_$p"
		if command -v fish >/dev/null; then
			got=$(fish -N -c 'set -p fish_complete_path $argv[1]; complete -C $argv[2]' "$C/fish" \
				"$p --markdown " | cut -f1 | sort | tr '\n' ' ')
			assert_eq "$got" "always auto never " "fish: $p"
		fi
	done
}

@test "markdown: a paragraph is written word by word as it arrives, not at its newline" {
	COLUMNS=80
	reply 'Streaming **works** here, and the line goes on for a while'
	ctl '{"set":{"chunk_delay_ms":300}}'
	on_tty "ai-stream --no-cache x" </dev/null >"$T/tty" 2>&1 &
	pid=$!
	# The bold word, rendered, while the rest of the line is still coming.
	wait_for_output "$T/tty" "Streaming ${B}works$R here, "
	alive=0
	kill -0 "$pid" 2>/dev/null && alive=1
	wait "$pid"
	assert_eq "$alive" 1 "ai-stream still streaming when the rendered words were on the screen"
	assert_eq "$(tr -d '\r' <"$T/tty")" "Streaming ${B}works$R here, and the line goes on for a while"
}
