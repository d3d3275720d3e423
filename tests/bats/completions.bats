#!/usr/bin/env bats
# The shell completions work, not only mention the options: each program's
# bash, fish and zsh completion offers every option the program accepts
# (--list-options), the values of its own options, the common options from
# its shell's common file (_ai-common, _ai-common.fish, _ai_common) and the
# profile names of the configuration file.  fish and zsh are optional: their
# tests are skipped when the shell is not installed.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	C=$(cd "$BATS_TEST_DIRNAME/../../completions" && pwd)
	mkdir -p "$XDG_CONFIG_HOME/ai"
	# Two profiles, one indented, and a section that is not a profile.
	printf '%s\n' 'model = m0' '[profile work]' 'model = m1' '  [profile cheap]' \
		'model = m2' '[other]' >"$XDG_CONFIG_HOME/ai/config"
	mkdir -p "$T/cwd/dir" && : >"$T/cwd/notes.txt"
	cd "$T/cwd" || return 1
}

programs() {
	for p in "$AI_BIN"/ai-*; do
		[[ -x $p ]] && basename "$p"
	done
}

# sorted: the lines of stdin sorted, unique and joined by one space.
sorted() { sort -u | tr '\n' ' ' | sed 's/ $//'; }

# options PROGRAM: the options PROGRAM accepts, sorted, one a line.
options() { "$AI_BIN/$1" --list-options | grep -vx -- --list-options | sort -u; }

# missing_from WANT-LINES GOT-LINES: the lines of the first not in the second.
missing_from() { comm -23 <(printf '%s\n' "$1" | sort -u) <(printf '%s\n' "$2" | sort -u) | sorted; }

# bcomp FILE WORD...: loads the bash completion FILE in a fresh bash, as
# bash-completion does, and completes the last WORD of the command line
# WORD...; prints COMPREPLY, one a line.  The completion function is the
# one the file registers for the command (the first WORD).
bcomp() {
	bash -c '
		f=$1; shift
		. "$f" || exit 3
		fn=$(complete -p "$1" 2>/dev/null | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
		[[ -n $fn ]] || { echo "$f registers no function for $1" >&2; exit 4; }
		COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) COMP_LINE="$*" COMP_POINT=${#COMP_LINE}
		COMPREPLY=()
		"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' bcomp "$@"
}

# fcomp LINE: fish's completions for LINE, candidates only, with the tree's
# completions first in fish_complete_path.  fish loads a command's
# completion file only when the command exists: $AI_BIN is on PATH.
fcomp() {
	fish -N -c 'set -p fish_complete_path $argv[1]; complete -C $argv[2]' "$C/fish" "$1" |
		cut -f1
}

# zcomp LINE: zsh's completions for LINE: an interactive zsh in a pseudo-
# terminal (zsh/zpty), compinit over the tree's completions, LINE and a Tab.
# A compadd wrapper writes every match offered to a file, and a
# comppostfuncs hook marks the end of the completion.  compinit's scan of
# fpath takes a second or two, so it is done once, into a dump file that
# every zcomp loads (compinit -C).
zcomp() {
	local out=$T/zcomp.out
	rm -f "$out"
	zsh -f "$T/zcomp.zsh" "$C/zsh" "$ZDUMP" "$out" "$1" ||
		{ echo "zcomp: no completion for [$1]" >&2; return 1; }
	grep -vx '<done>' "$out"
}

need_fish() { command -v fish >/dev/null || skip "fish is not installed"; }

need_zsh() {
	command -v zsh >/dev/null || skip "zsh is not installed"
	zsh -fc 'zmodload zsh/zpty' 2>/dev/null || skip "zsh has no zsh/zpty module"
	ZDUMP=$BATS_FILE_TMPDIR/zcompdump
	[[ -s $ZDUMP ]] ||
		zsh -fc 'fpath=($1 $fpath); autoload -Uz compinit; compinit -u -d $2' x "$C/zsh" "$ZDUMP"
	cat >"$T/zcomp.zsh" <<'EOF'
# zcomp.zsh DIR DUMP OUT LINE
zmodload zsh/zpty || exit 3
dir=$1 dump=$2 out=$3 line=$4 rc=$3.rc
cat >$rc <<EOR
PS1='' PS2='' RPS1=''
fpath=(${(q)dir} \$fpath)
autoload -Uz compinit && compinit -C -d ${(q)dump}
compadd() {
	if [[ \${@[1,(i)(-|--)]} == *-[OAD]\\ * ]]; then
		builtin compadd "\$@"; return
	fi
	local -a __m
	builtin compadd -O __m "\$@"
	(( \$#__m )) && print -rl -- \$__m >>${(q)out}
	builtin compadd "\$@"
}
_zcomp_done() { print -r -- '<done>' >>${(q)out}; }
comppostfuncs=(_zcomp_done)
EOR
zpty z zsh -f -i
zpty -w z "source ${(q)rc}"
zpty -w -n z "$line"$'\t'
for i in {1..200}; do
	[[ -f $out ]] && grep -qx '<done>' $out && break
	sleep 0.05
done
zpty -d z
grep -qx '<done>' $out 2>/dev/null
EOF
}

# ---- bash

@test "completions/bash: every file parses and each program's file registers its program" {
	for f in "$C"/bash/*; do
		bash -n "$f" || { echo "$f does not parse" >&2; false; }
	done
	for p in $(programs); do
		run bash -c '. "$1" && complete -p "$2"' x "$C/bash/$p" "$p"
		assert_eq "$status" 0
		assert_contains "$output" " $p"
	done
}

@test "completions/bash: -- offers every option each program accepts" {
	for p in $(programs); do
		got=$(bcomp "$C/bash/$p" "$p" --)
		assert_eq "$(missing_from "$(options "$p")" "$got")" "" "$p: options not offered"
	done
}

@test "completions/bash: own options, their values and the common options" {
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --for | sorted)" "--format"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --format '' | sorted)" "bullets line paragraph"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize -f p | sorted)" "paragraph"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --length '' | sorted)" "long medium short"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --no- | sorted)" "--no-cache"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize x.txt --ver | sorted)" "--verbose --version"
	assert_eq "$(bcomp "$C/bash/ai-usage" ai-usage --by '' | sorted)" "day model program"
	assert_eq "$(bcomp "$C/bash/ai-usage" ai-usage --since '' | sorted)" "1d 30d 7d today yesterday"
	assert_eq "$(bcomp "$C/bash/ai-stream" ai-stream --ss | sorted)" "--sse"
	assert_eq "$(bcomp "$C/bash/ai-ask" ai-ask --ret | sorted)" "--retries --retrieve-only"
	# Operands: files where the program reads files, nothing where it reads text.
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize no | sorted)" "notes.txt"
	assert_eq "$(bcomp "$C/bash/ai-index" ai-index -c docs no | sorted)" "notes.txt"
	assert_eq "$(bcomp "$C/bash/ai-ask" ai-ask no | sorted)" ""
	assert_eq "$(bcomp "$C/bash/ai-agent" ai-agent --trace no | sorted)" "notes.txt"
	# ai-batch: subcommands first, then job names after one that takes a job.
	mkdir -p "$XDG_DATA_HOME/ai/jobs/j1" "$XDG_DATA_HOME/ai/jobs/j2"
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch s | sorted)" "status submit"
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch status '' | sorted)" "j1 j2"
	# delete takes a job.
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch de | sorted)" "delete"
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch delete '' | sorted)" "j1 j2"
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch delete --fo | sorted)" "--force"
	assert_eq "$(bcomp "$C/bash/ai-batch" ai-batch submit -p '' | sorted)" "cheap work"
}

# two_indexes: the default index with collections "my docs" and "notes", and
# $T/other.db with "elsewhere".
# (Built without the test's configuration, whose [other] section ai-index refuses.)
two_indexes() {
	AI_CONFIG=/dev/null ai-index -q --no-embed -c notes --source n <<<"a note" &&
		AI_CONFIG=/dev/null ai-index -q --no-embed -c "my docs" --source d <<<"a doc" &&
		AI_CONFIG=/dev/null ai-index -q --no-embed --db "$T/other.db" -c elsewhere --source e <<<"text"
}

@test "completions/bash: --opt=value completes the option's values, not file names" {
	: >big.log
	# Bash splits the word at "=" (COMP_WORDBREAKS): "--format=b" is --format, =, b.
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --format = b | sorted)" "bullets"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --format = | sorted)" "bullets line paragraph"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --length = s | sorted)" "short"
	assert_eq "$(bcomp "$C/bash/ai-usage" ai-usage --by = d | sorted)" "day"
	assert_eq "$(bcomp "$C/bash/ai-index" ai-index --chunk-tokens = b | sorted)" ""
	assert_eq "$(bcomp "$C/bash/ai-ask" ai-ask --profile = w | sorted)" "work"
	assert_eq "$(bcomp "$C/bash/ai-index" ai-index --db = b | sorted)" "big.log"
	# An operand after it is an operand again.
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --format = line b | sorted)" "big.log"
}

@test "completions/bash: -c offers the collections of the index, --db on the line included" {
	two_indexes
	for p in ai-ask ai-agent ai-index; do
		assert_eq "$(bcomp "$C/bash/$p" $p -c '' | sort | tr '\n' '|')" "my docs|notes|" "$p -c"
		assert_eq "$(bcomp "$C/bash/$p" $p --collection = n | sorted)" "notes" "$p --collection="
		assert_eq "$(bcomp "$C/bash/$p" $p --db "$T/other.db" -c '' | sorted)" "elsewhere" "$p --db"
		assert_eq "$(bcomp "$C/bash/$p" $p --db = "$T/other.db" -c e | sorted)" "elsewhere" "$p --db="
		# No index there: nothing offered, nothing said.
		run --separate-stderr bcomp "$C/bash/$p" $p --db "$T/none.db" -c ''
		assert_eq "$output$stderr" "" "$p, no index"
	done
}

@test "completions/bash: the common options' arguments: profile names, nothing for free values" {
	for p in $(programs); do
		assert_eq "$(bcomp "$C/bash/$p" "$p" -p '' | sorted)" "cheap work" "$p -p"
		assert_eq "$(bcomp "$C/bash/$p" "$p" --profile w | sorted)" "work" "$p --profile w"
		# One bash for the six free-valued options: what any of them offers.
		# bash unsets COMPREPLY after each completion, so each starts unset.
		run bash -c '. "$1"; fn=$(complete -p "$2" | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
			for o in -o --option --base-url --cache-ttl --timeout --retries; do
				COMP_WORDS=("$2" "$o" no) COMP_CWORD=2; unset COMPREPLY
				"$fn" "$2" no "$o"; printf "%s\n" "${COMPREPLY[@]}"
			done' x "$C/bash/$p" "$p"
		assert_eq "$status" 0
		assert_eq "$(printf '%s\n' "$output" | sorted)" "" "$p: free-valued common options"
	done
	# AI_CONFIG names another configuration file; a missing one has no profiles.
	printf '[profile alt]\n' >"$T/alt.conf"
	assert_eq "$(AI_CONFIG=$T/alt.conf bcomp "$C/bash/ai-ask" ai-ask -p '' | sorted)" "alt"
	assert_eq "$(AI_CONFIG=$T/none bcomp "$C/bash/ai-ask" ai-ask -p '' | sorted)" ""
}

# models_server: the test server, answering /models with five names (one
# that a shell would expand, one with a space) the first time only.  The
# setup's config file holds a section the programs refuse: none is used.
models_server() {
	export AI_CONFIG=$T/none
	start_server
	ctl '{"push":[{"path":"/v1/models","body":{"data":[{"id":"gpt-4o-mini"},{"id":"gpt-4o"},
		{"id":"$(id>pwned)"},{"id":"two words"},{"id":"llama3"}]}}]}'
	MCACHE=$XDG_CACHE_HOME/ai/completion-models
}

@test "completions/bash: -m offers the server's models, asked once and cached" {
	models_server
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize -m gpt | sorted)" "gpt-4o gpt-4o-mini"
	assert_eq "$(bcomp "$C/bash/ai-ask" ai-ask --model '' | sorted)" '$(id>pwned) gpt-4o gpt-4o-mini llama3'
	[[ ! -e pwned ]] || { echo "a model name was expanded by the shell" >&2; false; }
	assert_eq "$(request_count /v1/models)" 1
	r=$(last_request /v1/models)
	assert_eq "$(jq -r .headers.authorization <<<"$r")" "Bearer $KEY"
	assert_eq "$(find "$MCACHE" -type f | wc -l)" 1
	# Older than five minutes: asked again (the server now gives its own list).
	touch -d '10 minutes ago' "$MCACHE"/*
	assert_eq "$(bcomp "$C/bash/ai-stream" ai-stream -m '' | sorted)" "test-model"
	assert_eq "$(request_count /v1/models)" 2
	stop_server
}

@test "completions/bash: -m asks the profile and base URL on the line; a failure offers and keeps nothing" {
	start_server
	base=$OPENAI_BASE_URL
	unset OPENAI_BASE_URL
	printf '%s
' 'base_url = http://127.0.0.1:1/v1' '[profile work]' "base_url = $base" 		>"$XDG_CONFIG_HOME/ai/config"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize -p work -m '' | sorted)" "test-model"
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize --base-url "$base" -m t | sorted)" "test-model"
	# Nothing listens on port 1: nothing offered, quickly, and no cache entry.
	start=$SECONDS
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize -m '' | sorted)" ""
	(( SECONDS - start < 5 ))
	assert_eq "$(find "$XDG_CACHE_HOME/ai/completion-models" -type f | wc -l)" 2
	# A server that hangs is given 2 s.
	ctl '{"push":[{"path":"/v1/models","latency_ms":8000}]}'
	start=$SECONDS
	assert_eq "$(bcomp "$C/bash/ai-summarize" ai-summarize -p work --profile work -m '' | sorted)" ""
	(( SECONDS - start < 5 ))
	stop_server
}

@test "completions/bash: _ai_common_arg handles only the common options" {
	run bash -c '. "$1"
		COMPREPLY=(x); _ai_common_arg --format "" && echo handled; echo "[${COMPREPLY[*]}]"
		_ai_common_arg --timeout "" && echo handled; echo "[${COMPREPLY[*]}]"
		_ai_common_arg -p "" && echo handled; echo "[${COMPREPLY[*]}]"
		for o in $_ai_common_opts; do printf "%s " "$o"; done' x "$C/bash/_ai-common"
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "[x]"
	assert_eq "${lines[1]}" "handled"
	assert_eq "${lines[2]}" "[]"
	assert_eq "${lines[3]}" "handled"
	assert_eq "${lines[4]}" "[work cheap]"
	# The list is --help's "Common options", no more, no less.
	want=$("$AI_BIN/ai-summarize" --help | sed -n '/^Common options/,/^$/p' |
		grep -o -- '--[a-z][a-z-]*' | sorted)
	assert_eq "$(printf '%s\n' ${lines[5]} | sorted)" "$want"
}

@test "completions/bash: a program's file finds _ai-common beside it, wherever it is installed" {
	mkdir -p "$T/inst/completions"
	cp "$C/bash/ai-summarize" "$C/bash/_ai-common" "$T/inst/completions/"
	cd / || return 1
	assert_eq "$(bcomp "$T/inst/completions/ai-summarize" ai-summarize -p '' | sorted)" "cheap work"
	# Without it, loading fails loudly rather than completing half the options.
	rm "$T/inst/completions/_ai-common"
	run bcomp "$T/inst/completions/ai-summarize" ai-summarize --
	assert_eq "$status" 3
}

@test "completions/bash: bash-completion loads a program's completion from its completions directory" {
	bc=/usr/share/bash-completion/bash_completion
	[[ -f $bc ]] || skip "bash-completion is not installed"
	mkdir -p "$T/share/bash-completion/completions"
	cp "$C"/bash/* "$T/share/bash-completion/completions/"
	run env XDG_DATA_DIRS="$T/share" BASH_COMPLETION_USER_DIR="$T/none" bash -c '
		. "$1" || exit 3
		__load_completion ai-stream || exit 4
		COMP_WORDS=(ai-stream --profile "") COMP_CWORD=2
		_ai_stream; echo "${COMPREPLY[*]}"' x "$bc"
	assert_eq "$status" 0
	assert_eq "$output" "work cheap"
}

# ---- fish

@test "completions/fish: every file parses" {
	need_fish
	for f in "$C"/fish/*.fish; do
		fish -n "$f" || { echo "$f does not parse" >&2; false; }
	done
}

@test "completions/fish: -- offers every option each program accepts" {
	need_fish
	for p in $(programs); do
		got=$(fcomp "$p --")
		assert_eq "$(missing_from "$(options "$p")" "$got")" "" "$p: options not offered"
	done
}

@test "completions/fish: own options, their values, the common options and profiles" {
	need_fish
	assert_eq "$(fcomp 'ai-summarize --for' | sorted)" "--format"
	assert_eq "$(fcomp 'ai-summarize --format ' | sorted)" "bullets line paragraph"
	assert_eq "$(fcomp 'ai-usage --by ' | sorted)" "day model program"
	assert_eq "$(fcomp 'ai-summarize --no-' | sorted)" "--no-cache"
	for p in $(programs); do
		assert_eq "$(fcomp "$p -p " | sorted)" "cheap work" "$p -p"
		assert_eq "$(fcomp "$p --timeout " | sorted)" "" "$p --timeout"
	done
	# What --json prints is the program's own description.
	assert_eq "$(fish -N -c 'set -p fish_complete_path $argv[1]; complete -C "ai-stream --js"' "$C/fish")" \
		"--json	print JSON lines of events"
	assert_eq "$(fish -N -c 'set -p fish_complete_path $argv[1]; complete -C "ai-ask --js"' "$C/fish")" \
		"--json	print JSON"
	# Files where the program reads files, not where it reads text.
	assert_eq "$(fcomp 'ai-summarize no' | sorted)" "notes.txt"
	assert_eq "$(fcomp 'ai-stream no' | sorted)" ""
	mkdir -p "$XDG_DATA_HOME/ai/jobs/j1" "$XDG_DATA_HOME/ai/jobs/j2"
	assert_eq "$(fcomp 'ai-batch wait ' | sorted)" "j1 j2"
	assert_eq "$(fcomp 'ai-batch delete ' | sorted)" "j1 j2"
}

@test "completions/fish: -c offers the collections of the index" {
	need_fish
	two_indexes
	assert_eq "$(fcomp 'ai-ask -c ' | sort | tr '\n' '|')" "my docs|notes|"
	assert_eq "$(fcomp 'ai-agent --collection n' | sorted)" "notes"
	assert_eq "$(fcomp "ai-index --db $T/other.db -c " | sorted)" "elsewhere"
	assert_eq "$(fcomp "ai-ask --db $T/none.db -c " | sorted)" ""
}

@test "completions/fish: -m offers the server's models, asked once and cached" {
	need_fish
	models_server
	assert_eq "$(fcomp 'ai-summarize -m gpt' | sorted)" "gpt-4o gpt-4o-mini"
	assert_eq "$(fcomp 'ai-ask --model ' | sorted)" '$(id>pwned) gpt-4o gpt-4o-mini llama3'
	[[ ! -e pwned ]]
	assert_eq "$(request_count /v1/models)" 1
	stop_server
}

@test "completions/fish: a program's file finds _ai-common.fish beside it, wherever it is installed" {
	need_fish
	mkdir -p "$T/vendor"
	cp "$C/fish/ai-index.fish" "$C/fish/_ai-common.fish" "$T/vendor/"
	run fish -N -c 'set -p fish_complete_path $argv[1]; complete -C "ai-index --profile "' "$T/vendor"
	assert_eq "$status" 0
	assert_eq "$(printf '%s\n' "$output" | cut -f1 | sorted)" "cheap work"
}

# ---- zsh

@test "completions/zsh: every file parses; _ai_common is autoloaded by compinit, not a command's completion" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	for f in "$C"/zsh/_*; do
		zsh -n "$f" || { echo "$f does not parse" >&2; false; }
	done
	run zsh -fc 'fpath=($1 $fpath); autoload -Uz compinit; compinit -u -D
		whence -w _ai_common; print -r -- ${_comps[ai-summarize]} ${(k)_comps[(R)_ai_common]}' x "$C/zsh"
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "_ai_common: function"
	assert_eq "${lines[1]}" "_ai-summarize"
}

@test "completions/zsh: -- offers every option each program accepts" {
	need_zsh
	for p in $(programs); do
		got=$(zcomp "$p --")
		assert_eq "$(missing_from "$(options "$p")" "$got")" "" "$p: options not offered"
	done
}

@test "completions/zsh: -m offers the server's models, asked once and cached" {
	need_zsh
	models_server
	assert_eq "$(zcomp 'ai-summarize -m gpt' | sorted)" "gpt-4o gpt-4o-mini"
	assert_eq "$(zcomp 'ai-ask --model=' | sorted)" '$(id>pwned) gpt-4o gpt-4o-mini llama3'
	[[ ! -e pwned ]]
	assert_eq "$(request_count /v1/models)" 1
	stop_server
}

@test "completions/zsh: own options, their values, the common options and profiles" {
	need_zsh
	assert_eq "$(zcomp 'ai-summarize --for' | sorted)" "--format"
	assert_eq "$(zcomp 'ai-summarize --format ' | sorted)" "bullets line paragraph"
	assert_eq "$(zcomp 'ai-usage --by ' | sorted)" "day model program"
	assert_eq "$(zcomp 'ai-summarize -p ' | sorted)" "cheap work"
	assert_eq "$(zcomp 'ai-ask --profile=' | sorted)" "cheap work"
	# --json and --sse exclude each other in ai-stream, not elsewhere.
	got=$(zcomp 'ai-stream --json --')
	assert_not_contains "$got" "--sse"
	assert_contains "$got" "--profile"
	got=$(zcomp 'ai-summarize --json --')
	assert_not_contains "$got" "--json"
	assert_contains "$got" "--format"
	mkdir -p "$XDG_DATA_HOME/ai/jobs/j1" "$XDG_DATA_HOME/ai/jobs/j2"
	assert_eq "$(zcomp 'ai-batch cancel ' | sorted)" "j1 j2"
	assert_eq "$(zcomp 'ai-batch delete ' | sorted)" "j1 j2"
	assert_eq "$(zcomp 'ai-batch submit --profile ' | sorted)" "cheap work"
}

@test "completions/zsh: -c offers the collections of the index" {
	need_zsh
	two_indexes
	assert_eq "$(zcomp 'ai-ask -c n' | sorted)" "notes"
	assert_eq "$(zcomp 'ai-agent --collection=n' | sorted)" "notes"
	assert_eq "$(zcomp "ai-index --db $T/other.db -c " | sorted)" "elsewhere"
	assert_eq "$(zcomp "ai-ask --db=$T/other.db -c " | sorted)" "elsewhere"
}

# ---- templates: -T offers the saved templates' names (templates.bats checks bash and fish) ----

@test "completions/zsh: -T offers the saved templates in every program that takes a prompt" {
	need_zsh
	mkdir -p "$XDG_CONFIG_HOME/ai/templates"
	: >"$XDG_CONFIG_HOME/ai/templates/legal" && : >"$XDG_CONFIG_HOME/ai/templates/lisp"
	for p in ai-summarize ai-stream ai-batch ai-ask ai-agent ai-cmd; do
		assert_eq "$(zcomp "$p -T l" | sorted)" "legal lisp" "$p"
	done
	assert_eq "$(zcomp 'ai-stream --use-template=li' | sorted)" "lisp"
	: >"$T/cwd/my.tmpl"
	assert_eq "$(zcomp 'ai-ask -T @my' | sorted)" "my.tmpl"
}
