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

# The convention both --help and the man pages follow: an option's default is
# written "(default X)" -- in --help on the option's line, in the man page in
# the option's entry (the first one there counts) -- where X runs to the ")"
# or a ";".  Quotes around X and runs of blanks do not count.  A default
# written any other way is not one, for this check.
#
# Both functions print "--name<TAB>X" per option, X empty when none is stated.
_ai_default_awk='
function def(t,   m) {
	if (!match(t, /\(default[: ][^);]*/))
		return ""
	m = substr(t, RSTART + 8, RLENGTH - 8)
	gsub(/[`'"'"'"]/, "", m)
	gsub(/[ \t]+/, " ", m)
	sub(/^[: ]+/, "", m)
	sub(/ $/, "", m)
	return m
}'

# help_options PROG: the options of PROG --help.
help_options() {
	"$AI_BIN/$1" --help | awk "$_ai_default_awk"'
	/^  +(-[[:alnum:]], )?--[a-z]/ {
		match($0, /--[a-z0-9-]+/)
		name = substr($0, RSTART, RLENGTH)
		text = substr($0, RSTART + RLENGTH)
		if (match(text, /  +/))
			text = substr(text, RSTART + RLENGTH)
		print name "\t" def(text)
	}'
}

# man_options PAGE: the options with an entry in the man page (a tag at the
# list's indent that starts with "-"), each with its entry's default.
man_options() {
	render "$1" | awk "$_ai_default_awk"'
	function flush(   n, i, a) {
		n = split(names, a, " ")
		for (i = 1; i <= n; i++)
			print a[i] "\t" def(body)
		names = ""; body = ""
	}
	/^     -/ {
		flush()
		tag = substr($0, 6); body = ""
		if ((p = index(tag, "  "))) { body = substr(tag, p); tag = substr(tag, 1, p - 1) }
		while (match(tag, /--[a-z0-9-]+/)) {
			names = names " " substr(tag, RSTART, RLENGTH)
			tag = substr(tag, RSTART + RLENGTH)
		}
		next
	}
	/^      / { if (names != "") body = body " " $0; next }
	/^ *$/ { next }
	{ flush() }
	END { flush() }'
}

@test "docs: --help and the man page list the same options, with the same defaults" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local -A common mine hdef
	while IFS=$'\t' read -r o d; do common[$o]=$d; done < <(man_options ai.7)
	[[ ${common[--timeout]} == 600 ]] || { echo "no --timeout default in ai(7)" >&2; false; }
	bad=
	for p in $(programs); do
		mine=() hdef=()
		while IFS=$'\t' read -r o d; do
			[[ -v mine[$o] ]] || mine[$o]=$d
		done < <(man_options "$p.1")
		while IFS=$'\t' read -r o d; do hdef[$o]=$d; done < <(help_options "$p")
		((${#hdef[@]} >= 10)) || { echo "$p --help: too few options parsed" >&2; false; }
		for o in "${!hdef[@]}"; do
			if [[ -v mine[$o] ]]; then
				m=${mine[$o]}
			elif [[ -v common[$o] ]]; then
				m=${common[$o]}
			else
				bad+=$'\n'"$p $o: in --help, no entry in man/$p.1 or ai.7"
				continue
			fi
			[[ ${hdef[$o]} == "$m" ]] ||
				bad+=$'\n'"$p $o: --help says (default ${hdef[$o]:-none}), the man page (default ${m:-none})"
		done
		for o in "${!mine[@]}"; do
			[[ -v hdef[$o] ]] || bad+=$'\n'"$p $o: in man/$p.1, not in --help"
		done
	done
	assert_eq "$bad" "" "--help and the man pages disagree"
}
