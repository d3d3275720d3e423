#!/usr/bin/env bats
# ai-cmd against the test server: the request, the reply cleaned or
# refused, the question on a terminal (nothing runs but after Execute), the
# failures of the network, and the key bindings of bash, zsh and fish
# driven on a pseudo-terminal.  zsh and fish are in .ci/deps's test group:
# a missing one fails its test, it does not skip.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	KEYS=$(cd "$BATS_TEST_DIRNAME/../../completions/keys" && pwd)
	QUESTION='[e/d/r/A]'
}
teardown() { stop_server; }

CHAT=/v1/chat/completions

# reply TEXT...: the model's next answers, in order.
reply() {
	ctl "$(jq -nc '{push: [$ARGS.positional[] | {reply: .}]}' --args "$@")"
}

# tty_cmd KEYS-SCRIPT ARGS: runs "ai-cmd --no-cache ARGS" on a pseudo-
# terminal, in $T, with KEYS-SCRIPT (a function) typing on it; what the
# terminal showed is in $T/tty, the exit status in $status.
tty_cmd() {
	local keys=$1
	shift
	: >"$T/tty"
	status=0
	(cd "$T" && $keys | on_tty "ai-cmd --no-cache $*" >"$T/tty" 2>&1) || status=$?
}

# The question, then Enter; then Ctrl-D (end of file); then e, as answers.
enter() { wait_for_output "$T/tty" "$QUESTION" && printf '\n'; }
ctrl_d() { wait_for_output "$T/tty" "$QUESTION" && printf '\004'; }
execute() { wait_for_output "$T/tty" "$QUESTION" && printf 'e\n'; }

@test "cmd: the request names the shell and the system; the command alone is printed to a pipe, never run" {
	reply "touch '$T/marker'"
	cd "$T"
	run --separate-stderr ai-cmd --shell /usr/bin/fish make a marker
	assert_eq "$status" 0 status
	assert_eq "$stderr" "" stderr
	assert_eq "$output" "touch '$T/marker'"
	[[ ! -e $T/marker ]]
	r=$(last_request $CHAT)
	sys=$(jq -r '.body.messages[0].content' <<<"$r")
	assert_contains "$sys" "for the fish shell on $(uname -s) $(uname -r)"
	assert_contains "$sys" "one line"
	assert_eq "$(jq -r '.body.messages[1].content' <<<"$r")" "make a marker"
	assert_eq "$(jq -r '.body.messages | length' <<<"$r")" 2
	# $SHELL is the default, and $(...) gets the command without its newline.
	reply "ls -la"
	got=$(SHELL=/bin/zsh ai-cmd --no-cache list everything)
	assert_eq "$got" "ls -la"
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[0].content')" "for the zsh shell"
}

@test "cmd: piped standard input and the words are the description" {
	reply "rm a.txt b.txt" ls
	run --separate-stderr ai-cmd --no-cache 'delete the files named here' <<<"a.txt b.txt"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[1].content')" \
		$'a.txt b.txt\n\ndelete the files named here'
	run --separate-stderr ai-cmd --no-cache --no-stdin 'only this' <<<"not this"
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[1].content')" "only this"
}

@test "cmd: a fence, prose around it, a prompt sign and backticks are cleaned away" {
	reply $'Here is the command:\n```bash\nfind . -size +1G -mtime -7\n```\nIt finds big files.' \
		$'```\n$ du -sh *\n```' '`ls -1`' $'\n  echo "a  b"\t\n' $'```sh\ngrep -r x .'
	for want in 'find . -size +1G -mtime -7' 'du -sh *' 'ls -1' 'echo "a  b"' 'grep -r x .'; do
		run --separate-stderr ai-cmd --no-cache x
		assert_eq "$status" 0
		assert_eq "$output" "$want"
	done
	# --json carries the same command.
	reply $'```\nls\n```'
	run --separate-stderr env SHELL=/usr/bin/zsh ai-cmd --no-cache --json x
	assert_eq "$status" 0
	assert_eq "$(jq -r .command <<<"$output")" ls
	assert_eq "$(jq -r .shell <<<"$output")" zsh
	assert_eq "$(jq -r .cached <<<"$output")" false
	# No $SHELL in the environment (cron, CI): the command is for sh.
	run --separate-stderr env -u SHELL ai-cmd --json x
	assert_eq "$status" 0
	assert_eq "$(jq -r .shell <<<"$output")" sh
}

@test "cmd: a reply that is not one command is refused with 65 and nothing on stdout" {
	reply $'cd /tmp\nrm -rf *' $'```\nls\n```\nor\n```\nrm -rf /\n```' '' $'```\n```' \
		$'ls \u001b[2J' $'ls \u202e-l' $'rm\u200b -rf x' $'echo \u0085'
	for why in "2 lines" "more than one code block" "no command" "no command" "U+001B" \
		"U+202E" "U+200B" "U+0085"; do
		run --separate-stderr ai-cmd --no-cache x
		assert_eq "$status" 65 "status for $why"
		assert_eq "$output" ""
		assert_contains "$stderr" "ai-cmd: "
		assert_contains "$stderr" "$why"
		# The refused reply is quoted as text, never as control.
		assert_not_contains "$stderr" $'\x1b'
		assert_not_contains "$stderr" $'\u202e'
	done
}

@test "cmd: the same description twice is one request; both calls are in the ledger as ai-cmd" {
	reply "ls"
	run ai-cmd same words
	assert_eq "$output" ls
	run ai-cmd same words
	assert_eq "$output" ls
	assert_eq "$(request_count $CHAT)" 1
	db=$XDG_DATA_HOME/ai/usage.db
	assert_eq "$(sqlite3 -batch "$db" 'SELECT program, cached FROM calls ORDER BY id' | tr '\n' ' ')" \
		"ai-cmd|0 ai-cmd|1 "
}

@test "cmd: --dry-run prints the request and sends nothing" {
	run --separate-stderr ai-cmd --dry-run list files
	assert_eq "$status" 0
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/chat/completions"
	assert_contains "$output" '"content":"list files"'
	assert_eq "$(request_count)" 0
}

@test "cmd: usage errors exit 64, no description 66, output lost 74" {
	run --separate-stderr ai-cmd --shell '' x
	assert_eq "$status" 64
	assert_contains "$stderr" "--shell"
	run --separate-stderr ai-cmd --nope x
	assert_eq "$status" 64
	run --separate-stderr ai-cmd </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no description"
	run --separate-stderr ai-cmd '   '
	assert_eq "$status" 66
	assert_eq "$(request_count)" 0
	run --separate-stderr bash -c 'ai-cmd --no-cache x >/dev/full'
	assert_eq "$status" 74
	assert_contains "$stderr" "ai-cmd: "
}

@test "cmd: 429 is waited out and retried, then the command" {
	ctl '{"push":[{"status":429,"headers":{"Retry-After":"1"}},{"reply":"ls"}]}'
	run --separate-stderr ai-cmd --no-cache x
	assert_eq "$status" 0
	assert_eq "$output" ls
	assert_eq "$(request_count $CHAT)" 2
}

@test "cmd: a silent server meets --timeout (75), a refused connection is 75, a 400 is 69" {
	ctl '{"set":{"latency_ms":5000}}'
	run --separate-stderr ai-cmd --no-cache --timeout 0.5 --retries 0 x
	assert_eq "$status" 75
	assert_eq "$output" ""
	assert_contains "$stderr" "--timeout"
	ctl '{"reset":true}'
	ctl '{"push":[{"status":400,"body":{"error":{"message":"bad model"}}}]}'
	run --separate-stderr ai-cmd --no-cache x
	assert_eq "$status" 69
	assert_contains "$stderr" "bad model"
	OPENAI_BASE_URL="http://127.0.0.1:$(free_port)/v1" run --separate-stderr ai-cmd --no-cache --retries 0 x
	assert_eq "$status" 75
	assert_contains "$stderr" "cannot connect to 127.0.0.1"
	assert_eq "$output" ""
}

# ---- on a terminal

@test "cmd/tty: the command is shown and Enter aborts (1): nothing runs; Ctrl-D aborts too" {
	reply "touch '$T/marker'"
	tty_cmd enter make a marker
	assert_eq "$status" 1 status
	assert_contains "$(cat "$T/tty")" "touch '$T/marker'"
	assert_contains "$(cat "$T/tty")" "Execute, Describe, Revise or Abort? [e/d/r/A]"
	[[ ! -e $T/marker ]]
	reply "touch '$T/marker'"
	tty_cmd ctrl_d make a marker
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
	reply "touch '$T/marker'"
	keys() { wait_for_output "$T/tty" "$QUESTION" && printf 'abort\n'; }
	tty_cmd keys make a marker
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
}

@test "cmd/tty: Execute runs exactly the command shown, with \$SHELL -c in the current directory, and exits with its status" {
	mkdir "$T/here"
	# Quotes, expansions and a pipe: the shell gets the text byte for byte.
	cmd='printf "%s|%s\n" "$((6 * 7))" '"'"'$HOME'"'"' | tee marker; pwd >>marker; exit 3'
	reply "$cmd"
	: >"$T/tty"
	status=0
	(cd "$T/here" && execute | SHELL=/bin/sh on_tty "ai-cmd --no-cache x" >"$T/tty" 2>&1) || status=$?
	assert_eq "$status" 3 "the command's status"
	assert_eq "$(cat "$T/here/marker")" $'42|$HOME\n'"$T/here"
	assert_contains "$(cat "$T/tty")" "$cmd"
}

@test "cmd/tty: --shell names the shell that runs the command" {
	reply 'echo "$BASH_VERSION" >marker'
	tty_cmd execute --shell bash x
	assert_eq "$status" 0
	[[ -s $T/marker ]]
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[0].content')" "for the bash shell"
}

@test "cmd/tty: the command runs with SIGPIPE as it should be, not ignored as ai-cmd has it" {
	reply 'yes | head -n 1 >marker'
	tty_cmd execute x
	assert_eq "$status" 0
	assert_eq "$(cat "$T/marker")" y
	assert_not_contains "$(cat "$T/tty")" "Broken pipe"
}

# term_cmd: runs ai-cmd on a terminal (tty_cmd execute) in the background, its command
# writing ai-cmd's pid to $T/aipid; sends ai-cmd SIGTERM once it is there.  Sets status
# (tty_cmd's) and secs (from the signal to the end).
term_cmd() {
	local bg i start
	(tty_cmd execute x; echo "$status" >"$T/status") &
	bg=$!
	for ((i = 0; i < 1000; i++)); do [[ -s $T/aipid ]] && break; sleep 0.01; done
	start=$SECONDS
	kill -TERM "$(cat "$T/aipid")"
	wait "$bg"
	secs=$((SECONDS - start))
	status=$(cat "$T/status")
}

@test "cmd/tty: SIGTERM to ai-cmd while the command runs ends the command, then ai-cmd by SIGTERM" {
	reply 'echo $PPID >aipid; echo $$ >cmdpid; exec sleep 30'
	term_cmd
	running "$(cat "$T/cmdpid")" && { kill -KILL "$(cat "$T/cmdpid")"; echo "the command outlived ai-cmd" >&2; false; }
	assert_eq "$status" 143
	((secs <= 2)) || { echo "took $secs s" >&2; false; }
}

@test "cmd/tty: SIGTERM to the whole process group reaches the command once, not twice" {
	# The command notes each SIGTERM and takes 100 ms to end after the first:
	# a second one passed on by ai-cmd would be noted too.
	reply 'echo $PPID >aipid; trap "echo t >>terms" TERM; sleep 30 & s=$!; echo $$ >cmdpid; wait; kill $s; sleep 0.1; exit 0'
	(tty_cmd execute x; echo "$status" >"$T/status") &
	bg=$!
	for ((i = 0; i < 1000; i++)); do [[ -s $T/cmdpid ]] && break; sleep 0.01; done
	[[ -s $T/cmdpid ]]
	kill -TERM -- -"$(cat "$T/aipid")"
	wait "$bg"
	assert_eq "$(cat "$T/terms")" "t"
	assert_eq "$(cat "$T/status")" 143
}

@test "cmd/tty: a command that ignores SIGTERM holds ai-cmd no longer than 10 s" {
	reply 'echo $PPID >aipid; echo $$ >cmdpid; trap "" TERM; exec sleep 30'
	term_cmd
	kill -KILL "$(cat "$T/cmdpid")" 2>/dev/null || true
	assert_eq "$status" 143
	((secs >= 9 && secs <= 13)) || { echo "took $secs s" >&2; false; }
}

@test "cmd/tty: Describe shows the model's explanation, made safe, then asks again" {
	reply "touch '$T/marker'" $'It creates a file.\u001b[2J Harmless.'
	keys() {
		wait_for_output "$T/tty" "$QUESTION" && printf 'd\n' &&
			wait_for_output "$T/tty" "$QUESTION" "Harmless" && printf '\n'
	}
	tty_cmd keys make a marker
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
	assert_eq "$(request_count $CHAT)" 2
	r=$(last_request $CHAT)
	assert_contains "$(jq -r '.body.messages[-1].content' <<<"$r")" "touch '$T/marker'"
	assert_contains "$(jq -r '.body.messages[-1].content' <<<"$r")" "Explain"
	assert_contains "$(cat "$T/tty")" "It creates a file.␛[2J Harmless."
	assert_not_contains "$(cat "$T/tty")" $'\x1b'
}

@test "cmd/tty: Revise sends the correction after the command; the revised one is what runs" {
	reply "touch '$T/first'" "touch '$T/second'"
	keys() {
		wait_for_output "$T/tty" "$QUESTION" && printf 'r\n' &&
			wait_for_output "$T/tty" "Revise: " && printf 'call it second\n' &&
			wait_for_output "$T/tty" "$QUESTION" "second'" && printf 'e\n'
	}
	tty_cmd keys make a file
	assert_eq "$status" 0
	[[ -e $T/second && ! -e $T/first ]]
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages | map(.role) | join(",")' <<<"$r")" "system,user,assistant,user"
	assert_eq "$(jq -r '.body.messages[2].content' <<<"$r")" "touch '$T/first'"
	assert_contains "$(jq -r '.body.messages[3].content' <<<"$r")" "call it second"
}

@test "cmd/tty: a revision that is not one command keeps the command shown and asks again" {
	reply "touch '$T/marker'" $'touch a\ntouch b'
	keys() {
		wait_for_output "$T/tty" "$QUESTION" && printf 'r\n' &&
			wait_for_output "$T/tty" "Revise: " && printf 'two files\n' &&
			wait_for_output "$T/tty" "the command is unchanged" && sleep 0.2 && printf 'e\n'
	}
	tty_cmd keys make a marker
	assert_eq "$status" 0
	[[ -e $T/marker && ! -e $T/a && ! -e $T/b ]]
	assert_contains "$(cat "$T/tty")" "the model answered 2 lines"
}

@test "cmd/tty: an unknown answer asks again; keys typed before the question do not count" {
	reply "touch '$T/marker'"
	keys() {
		wait_for_output "$T/tty" "$QUESTION" && printf 'x\n' &&
			wait_for_output "$T/tty" "answer e to execute" && printf '\n'
	}
	tty_cmd keys make a marker
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
	# An "e" typed while the model thinks is flushed, not taken as the answer.
	ctl "$(jq -nc --arg r "touch '$T/marker'" '{push: [{reply: $r, latency_ms: 1500}]}')"
	keys() {
		sleep 0.5 && printf 'e\n' && wait_for_output "$T/tty" "$QUESTION" && sleep 0.2 && printf '\n'
	}
	tty_cmd keys make a marker
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
}

@test "cmd/tty: Ctrl-C at the question exits 130 and runs nothing" {
	reply "touch '$T/marker'"
	keys() { wait_for_output "$T/tty" "$QUESTION" && printf '\003'; }
	tty_cmd keys make a marker
	assert_eq "$status" 130
	[[ ! -e $T/marker ]]
}

@test "cmd/tty: the answer comes from the terminal, never from standard input" {
	reply "touch '$T/marker'"
	: >"$T/tty"
	status=0
	(cd "$T" && enter | on_tty "sh -c 'printf \"e\\ne\\n\" | ai-cmd --no-cache make a marker'" \
		>"$T/tty" 2>&1) || status=$?
	assert_eq "$status" 1
	[[ ! -e $T/marker ]]
}

@test "cmd/tty: the shown command is the model's text, made safe" {
	# A reply with an escape sequence is refused before it is shown; the
	# description shown on the terminal went through the neutraliser.
	reply $'ls \u001b]0;owned\u0007'
	# Enter, were the question asked; it is not: waiting for it would wait
	# out wait_for_output's 10 s, so the refusal ends the wait.
	refused() { wait_for_output "$T/tty" "ai-cmd: " || enter; }
	tty_cmd refused x
	assert_eq "$status" 65
	assert_not_contains "$(cat "$T/tty")" $'\x1b'
	assert_not_contains "$(cat "$T/tty")" $'\x07'
}

@test "cmd/tty: --json and --dry-run on a terminal print, ask nothing and run nothing" {
	reply "touch '$T/marker'"
	out=$(cd "$T" && on_tty "ai-cmd --no-cache --json make a marker" </dev/null)
	assert_contains "$out" '"command":"touch'
	assert_not_contains "$out" "$QUESTION"
	out=$(cd "$T" && on_tty "ai-cmd --no-cache --dry-run make a marker" </dev/null)
	assert_contains "$out" "POST "
	assert_not_contains "$out" "$QUESTION"
	[[ ! -e $T/marker ]]
	assert_eq "$(request_count $CHAT)" 1
}

# ---- the key bindings, each in its shell on a pseudo-terminal

# keyline SHELL-COMMAND: starts SHELL-COMMAND (an interactive shell whose
# prompt is "READY> " and which loaded its key binding) on a terminal, types
# "make a marker", Alt+E, waits for the request and for the line to be
# redrawn, notes whether anything ran by then, types "2" at the end of the
# line and Enter, waits for the command to have run (the file marker2: zsh
# and fish redraw the line with cursor moves between "marker" and "2", so
# the terminal never shows "touch .../marker2" whole), then exits.  The model answers "touch $T/marker": what
# ran is "touch $T/marker2", so the line was replaced, left to edit with
# the cursor at its end, and run only by Enter.
keyline() {
	reply "touch $T/marker"
	: >"$T/tty"
	status=0
	{
		wait_for_output "$T/tty" "READY> " &&
			printf 'make a marker' && sleep 0.3 && printf '\ee' &&
			wait_for_requests 1 "$CHAT" 10 && wait_for_output "$T/tty" "touch $T/marker" "make a marker" &&
			sleep 0.3 && { [[ -e $T/marker ]] && echo ran >"$T/early" || true; } &&
			printf '2\r' && wait_for_output "$T/marker2" "" &&
			printf 'exit\r'
	} | (cd "$T" && SHELL=/bin/sh TERM=xterm timeout 30 script -qec "exec $1" /dev/null) >"$T/tty" 2>&1 ||
		status=$?
	[[ ! -e $T/early ]] || { echo "the command ran before Enter" >&2; return 1; }
	[[ -e $T/marker2 && ! -e $T/marker ]] ||
		{ echo "ran: $(ls "$T"); terminal: $(cat -v "$T/tty")" >&2; return 1; }
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[1].content')" "make a marker"
}

@test "cmd/keys: bash's Alt+E replaces READLINE_LINE with the command, run only on Enter" {
	command -v bash >/dev/null || { echo "bash is missing (.ci/deps test)" >&2; false; }
	printf '%s\n' "PS1='READY> '" ". '$KEYS/ai-cmd.bash'" >"$T/bashrc"
	keyline "bash --rcfile '$T/bashrc' --noprofile -i"
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[0].content')" "for the bash shell"
}

@test "cmd/keys: zsh's Alt+E widget replaces BUFFER with the command, run only on Enter" {
	command -v zsh >/dev/null || { echo "zsh is missing: sh .ci/deps test installs it" >&2; false; }
	mkdir -p "$T/zdot"
	printf '%s\n' "PS1='READY> '" "source '$KEYS/ai-cmd.zsh'" >"$T/zdot/.zshrc"
	keyline "env ZDOTDIR='$T/zdot' zsh -d -i"
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[0].content')" "for the zsh shell"
}

@test "cmd/keys: fish's Alt+E replaces the commandline with the command, run only on Enter" {
	command -v fish >/dev/null || { echo "fish is missing: sh .ci/deps test installs it" >&2; false; }
	keyline "fish -N -i -C 'function fish_prompt; echo \"READY> \"; end; source $KEYS/ai-cmd.fish'"
	assert_contains "$(last_request $CHAT | jq -r '.body.messages[0].content')" "for the fish shell"
}

@test "cmd/keys: a failure leaves the line as typed; an empty line asks nothing" {
	ctl '{"push":[{"status":400}]}'
	printf '%s\n' "PS1='READY> '" ". '$KEYS/ai-cmd.bash'" >"$T/bashrc"
	: >"$T/tty"
	{
		wait_for_output "$T/tty" "READY> " && printf '\ee' && sleep 0.5 &&
			printf 'echo kept' && sleep 0.3 && printf '\ee' &&
			wait_for_output "$T/tty" "scripted 400" && sleep 0.3 && printf ' >%s\r' "$T/out" &&
			wait_for_output "$T/out" "kept" && printf 'exit\r'
	} | (cd "$T" && SHELL=/bin/sh TERM=xterm timeout 30 script -qec "exec bash --rcfile '$T/bashrc' --noprofile -i" /dev/null) \
		>"$T/tty" 2>&1
	assert_eq "$(cat "$T/out")" "kept"
	assert_eq "$(request_count $CHAT)" 1
}

@test "cmd/keys: make install puts the three bindings in share/ai-tools/keys; make uninstall removes them" {
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	# -o all: install what $AI_BIN holds, building nothing.
	mk() {
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top" --no-print-directory -o all \
			O="$T/o" BIN="$AI_BIN" PREFIX=/usr DESTDIR="$T/dest" "$@"
	}
	run --separate-stderr mk install
	assert_eq "$status" 0 "make install: $stderr"
	for f in ai-cmd.bash ai-cmd.zsh ai-cmd.fish; do
		cmp "$top/completions/keys/$f" "$T/dest/usr/share/ai-tools/keys/$f"
	done
	[[ -x $T/dest/usr/bin/ai-cmd && -f $T/dest/usr/share/man/man1/ai-cmd.1 ]]
	[[ -f $T/dest/usr/share/zsh/site-functions/_ai-cmd ]]
	run --separate-stderr mk uninstall
	assert_eq "$status" 0
	[[ ! -e $T/dest/usr/share/ai-tools/keys && ! -e $T/dest/usr/bin/ai-cmd ]]
}
