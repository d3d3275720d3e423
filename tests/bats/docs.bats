#!/usr/bin/env bats
# Every program's options, as its own table lists them (--list-options), are
# in its man page and its bash, zsh and fish completions; every man page is
# lint-clean.  Three copies drift apart otherwise.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; }

programs() {
	for p in "$AI_BIN"/ai-*; do
		[[ -x $p ]] && basename "$p"
	done
}

@test "docs: every program has a man page and three completion files" {
	top=$BATS_TEST_DIRNAME/../..
	n=0
	for p in $(programs); do
		[[ -f $top/man/$p.1 ]] || { echo "no man/$p.1" >&2; false; }
		[[ -f $top/completions/bash/$p ]] || { echo "no completions/bash/$p" >&2; false; }
		[[ -f $top/completions/zsh/_$p ]] || { echo "no completions/zsh/_$p" >&2; false; }
		[[ -f $top/completions/fish/$p.fish ]] || { echo "no completions/fish/$p.fish" >&2; false; }
		grep -q -- "$p" "$top/README.md" || { echo "$p is not in README.md" >&2; false; }
		n=$((n + 1))
	done
	((n >= 1))
}

# common_options: the long options under "Common options" in --help, which
# every program shares; their completions are written once per shell.
common_options() {
	"$AI_BIN/ai-summarize" --help | sed -n '/^Common options/,/^$/p' |
		grep -o -- '--[a-z][a-z-]*' | sort -u
}

# in_completion FILE COMMON-FILE PATTERN OPTION: PATTERN is in the
# program's completion FILE or, when OPTION is a common option, in the
# shell's COMMON-FILE.
in_completion() {
	grep -q -- "$3" "$1" 2>/dev/null && return 0
	[[ " $common " == *" $4 "* ]] && grep -q -- "$3" "$2" 2>/dev/null
}

@test "docs: every option is in the man page and every completion file" {
	top=$BATS_TEST_DIRNAME/../..
	c=$top/completions
	common=$(common_options | tr '\n' ' ')
	[[ $common == *--profile* ]] || { echo "no common options in ai-summarize --help" >&2; false; }
	missing=
	for p in $(programs); do
		for o in $("$AI_BIN/$p" --list-options); do
			[[ $o == --list-options ]] && continue
			name=${o#--}
			grep -q -- "Fl -$name\b\|Fl $name\b\|-$name" "$top/man/$p.1" 2>/dev/null ||
				grep -q -- "Fl -$name" "$top/man/ai.7" || missing+=" man/$p.1:$o"
			in_completion "$c/bash/$p" "$c/bash/_ai-common" "$o\b" "$o" || missing+=" bash/$p:$o"
			in_completion "$c/zsh/_$p" "$c/zsh/_ai_common" "$o\b" "$o" || missing+=" zsh/_$p:$o"
			in_completion "$c/fish/$p.fish" "$c/fish/_ai-common.fish" "-l $name\b" "$o" ||
				missing+=" fish/$p:$o"
		done
	done
	assert_eq "$missing" "" "options missing from docs"
}

@test "docs: the man pages are lint-clean" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	run mandoc -Tlint -Wwarning "$BATS_TEST_DIRNAME"/../../man/*
	assert_eq "$output" ""
	assert_eq "$status" 0
}

@test "docs: --help lists every option the program accepts" {
	for p in $(programs); do
		help=$("$AI_BIN/$p" --help)
		for o in $("$AI_BIN/$p" --list-options); do
			[[ $o == --list-options ]] && continue
			assert_contains "$help" "$o"
		done
	done
}

@test "docs: the common options are written once per shell, in its common file" {
	c=$BATS_TEST_DIRNAME/../../completions
	bad=
	for p in $(programs); do
		grep -q '^\. "${BASH_SOURCE\[0\]%/\*}/_ai-common"' "$c/bash/$p" || bad+=" bash/$p:no-source"
		grep -q '^_ai_common\b' "$c/zsh/_$p" || bad+=" zsh/_$p:no-call"
		grep -q '^source (status dirname)/_ai-common.fish' "$c/fish/$p.fish" &&
			grep -q '^__ai_common_complete \$c\b' "$c/fish/$p.fish" || bad+=" fish/$p:no-call"
		# No copy of a common option or of the profile lister.
		for f in "$c/bash/$p" "$c/zsh/_$p" "$c/fish/$p.fish"; do
			grep -q -- 'log-prompts\|\[profile' "$f" && bad+=" ${f#"$c"/}:copy"
		done
	done
	assert_eq "$bad" "" "completion files not using their common file"
}

@test "docs: the README's offline path works with no endpoint and no key" {
	top=$BATS_TEST_DIRNAME/../..
	unset OPENAI_API_KEY
	line=$(grep -m1 '^bin/ai-index --no-embed' "$top/README.md")
	[[ -n $line ]] || { echo "no offline line under Start in README.md" >&2; false; }
	line=${line//bin\//$AI_BIN/}
	run --separate-stderr bash -c "cd '$top' && $line"
	assert_eq "$status" 0
	(($(wc -l <<<"$output") == 3))
	jq -e .source <<<"$output" >/dev/null
	# Without a model, the README's first command says how to configure one.
	run --separate-stderr "$AI_BIN/ai-summarize" "$top/README.md"
	assert_eq "$status" 78
	assert_contains "$stderr" "OPENAI_API_KEY"
}

# render PAGE: the man page as plain text, one long line a paragraph.
render() {
	mandoc -Tascii -O width=1000 "$BATS_TEST_DIRNAME/../../man/$1" | sed 's/.\x08//g'
}

@test "docs: the man pages render without the garbles once found in them" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	bad=
	# A delimiter that mdoc took for punctuation, or a parenthesis closed too early.
	render ai-index.1 | grep -q "find \. -name" || bad+=" ai-index.1:find."
	render ai-summarize.1 | grep -q "(.-') means" && bad+=" ai-summarize.1:('-')"
	render ai-batch.1 | grep -q -- "--poll) seconds" && bad+=" ai-batch.1:--poll)"
	render ai-batch.1 | grep -q "(\`{{text}} for" && bad+=" ai-batch.1:{{text}}-quote"
	render ai-stream.1 | grep -q "nms, nm" && bad+=" ai-stream.1:nms"
	assert_eq "$bad" "" "garbled man pages"
}
