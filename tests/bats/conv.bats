#!/usr/bin/env bats
# The conversations ai-stream keeps (common/api/convstore.c): every
# exchange kept unless --no-save or save = no, -C and --conversation,
# --list-conversations, --show, --prune, ai-usage --log with its FTS5
# search, and what a damaged, locked or shared store does.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	DB=$HOME/.local/state/ai/conversations/conversations.db
}
teardown() {
	# The lock holder and the sleep it runs.
	if [[ -n ${LOCKER:-} ]]; then
		pkill -P "$LOCKER" 2>/dev/null || true
		kill "$LOCKER" 2>/dev/null || true
	fi
	stop_server
}

CHAT=/v1/chat/completions

# sql SQL: runs SQL on the store.
sql() { sqlite3 "$DB" "$1"; }

@test "conv: an exchange is kept with an id, a title, the model and its messages, in a 0600 file in a 0700 directory" {
	run --separate-stderr ai-stream -m m1 --system "Be brief." how do I undo a git commit that I pushed yesterday please
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(stat -c %a "$DB")" 600
	assert_eq "$(stat -c %a "${DB%/*}")" 700
	assert_eq "$(stat -c %a "$HOME/.local/state/ai")" 700
	assert_eq "$(sql 'PRAGMA journal_mode')" wal
	run --separate-stderr ai-stream --list-conversations --json
	assert_eq "$status" 0
	assert_eq "$(jq -c '[.id, .title, .model, .messages]' <<<"$output")" \
		'[1,"how do I undo a git commit that","m1",3]'
}

@test "conv: the title is the first words, white space and control characters made one space, cut on a character" {
	ai-stream --no-cache $'  first\t\tline\n\n\e[31mred  ' >/dev/null
	ai-stream --no-cache "$(printf 'é%.0s' {1..40})" >/dev/null
	run ai-stream --list-conversations --json
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.id == 1) | .title' <<<"$output")" 'first line [31mred'
	t=$(jq -r 'select(.id == 2) | .title' <<<"$output")
	assert_eq "$t" "$(printf 'é%.0s' {1..30})"
}

@test "conv: -C continues the last conversation with its messages and its model" {
	ai-stream -m m1 --system "Be brief." first question >/dev/null
	ai-stream -m m2 another topic >/dev/null
	ai-stream -m m1 --no-cache first question again >/dev/null
	run --separate-stderr ai-stream -C and a follow-up
	assert_eq "$status" 0
	assert_eq "$output" "echo: and a follow-up"
	r=$(last_request $CHAT)
	assert_eq "$(jq -r .body.model <<<"$r")" m1
	assert_eq "$(jq -c '[.body.messages[] | .role]' <<<"$r")" '["user","assistant","user"]'
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "first question again"
	# -m wins over the conversation's model, and becomes its model.
	run --separate-stderr ai-stream -C -m m3 --continue once more
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .body.model)" m3
	assert_eq "$(last_request $CHAT | jq '.body.messages | length')" 5
	run ai-stream --list-conversations --json
	assert_eq "$(jq -sc 'map([.id, .model, .messages])' <<<"$output")" '[[3,"m3",6],[2,"m2",2],[1,"m1",3]]'
}

@test "conv: the --json done record names the kept conversation" {
	run --separate-stderr ai-stream --json first
	assert_eq "$(jq -s -c 'map(select(.type == "done") | .conversation)' <<<"$output")" '[1]'
	ai-stream second >/dev/null
	run --separate-stderr ai-stream --json --no-cache --conversation 1 again
	assert_eq "$(jq -s -c 'map(select(.type == "done") | .conversation)' <<<"$output")" '[1]'
	run --separate-stderr ai-stream --json --no-save third
	assert_eq "$(jq -s -c 'map(select(.type == "done") | has("conversation"))' <<<"$output")" '[false]'
	run --separate-stderr bash -c 'printf "%s\n" a b | ai-stream -i --json --no-cache'
	assert_eq "$(jq -s -c 'map(select(.type == "done") | .conversation)' <<<"$output")" '[3,3]'
}

@test "conv: a kept system message comes back with -C; --system then wins for the request only" {
	ai-stream --system "Be brief." hello >/dev/null
	ai-stream -C --no-cache next >/dev/null
	assert_eq "$(last_request $CHAT | jq -c '.body.messages[0]')" '{"role":"system","content":"Be brief."}'
	ai-stream -C --no-cache --system "Be long." third >/dev/null
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[0].content')" "Be long."
	assert_eq "$(sql "SELECT content FROM messages WHERE role = 'system'")" "Be brief."
	assert_eq "$(sql 'SELECT count(*) FROM messages')" 7
}

@test "conv: --conversation takes an id or a title, the latest of a title wins, and a bad one exits 66 before any request" {
	ai-stream -m m1 alpha topic >/dev/null
	ai-stream -m m2 beta topic >/dev/null
	ai-stream -m m3 --no-cache alpha topic >/dev/null
	run --separate-stderr ai-stream --conversation 2 more
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.model, .body.messages[0].content')" $'m2\nbeta topic'
	run --separate-stderr ai-stream --conversation "alpha topic" more
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .body.model)" m3
	n=$(request_count $CHAT)
	for bad in 99 0 -1 "no such title" 1x; do
		run --separate-stderr ai-stream --conversation "$bad" more
		assert_eq "$status" 66
		assert_contains "$stderr" "no conversation with id or title '$bad'"
	done
	run --separate-stderr ai-stream --conversation "" more
	assert_eq "$status" 64
	run --separate-stderr ai-stream -C --conversation 1 more
	assert_eq "$status" 64
	run --separate-stderr ai-stream -C --history "$T/h" more
	assert_eq "$status" 64
	assert_contains "$stderr" "--history"
	assert_eq "$(request_count $CHAT)" "$n"
}

@test "conv: -C with nothing kept yet exits 66 and sends nothing" {
	run --separate-stderr ai-stream -C hello
	assert_eq "$status" 66
	assert_eq "$stderr" "ai-stream: no conversation to continue: none was kept yet"
	assert_eq "$(request_count $CHAT)" 0
	[[ ! -e $DB ]]
}

@test "conv: --list-conversations, most recently continued first, as text and JSON lines" {
	run --separate-stderr ai-stream --list-conversations
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_contains "$stderr" "no conversation kept yet"
	run --separate-stderr ai-stream -q --list-conversations
	assert_eq "$stderr" ""
	ai-stream -m m1 one >/dev/null
	ai-stream -m m2 two >/dev/null
	ai-stream --conversation 1 --no-cache again >/dev/null
	run --separate-stderr ai-stream --list-conversations
	assert_eq "$status" 0
	assert_eq "${#lines[@]}" 2
	[[ ${lines[0]} =~ ^1\ +[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}\ +4\ +m1\ +one$ ]]
	[[ ${lines[1]} =~ ^2\ .*\ +2\ +m2\ +two$ ]]
	run --separate-stderr ai-stream --list-conversations --json
	assert_eq "$(jq -sc 'map(.id)' <<<"$output")" '[1,2]'
	assert_eq "$(jq -s 'map(.updated_ms >= .created_ms) | all' <<<"$output")" true
	run --separate-stderr ai-stream --list-conversations extra
	assert_eq "$status" 64
	run --separate-stderr ai-stream --list-conversations --show 1
	assert_eq "$status" 64
}

@test "conv: --show prints every message; --json gives them as one object; an unknown one exits 66" {
	ai-stream -m m1 --system "sys" "line one
line two" >/dev/null
	run --separate-stderr ai-stream --show 1
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "# 1: line one line two"
	assert_contains "$output" "Model: m1, 3 messages"
	assert_contains "$output" $'## user\n\nline one\nline two\n\n## assistant\n\necho: line one\nline two'
	run --separate-stderr ai-stream --show "line one line two" --json
	assert_eq "$status" 0
	assert_eq "$(jq -c '[.id, .model, [.messages[] | .role], .messages[2].model, .messages[1].content]' <<<"$output")" \
		'[1,"m1",["system","user","assistant"],"m1","line one\nline two"]'
	run --separate-stderr ai-stream --show 7
	assert_eq "$status" 66
	assert_contains "$stderr" "'7'"
	run --separate-stderr ai-stream --show 1 extra words
	assert_eq "$status" 64
}

@test "conv: --show on a terminal makes control characters in the text visible" {
	ai-stream $'bell\a and \e]0;title\a osc' >/dev/null
	out=$(on_tty "ai-stream --show 1" </dev/null)
	assert_not_contains "$out" $'\e]0;'
	assert_contains "$out" $'\u241b]0;title'
	# In a pipe the text is as it was sent.
	assert_contains "$(ai-stream --show 1)" $'\e]0;title\a'
}

@test "conv: --prune removes the conversations not continued within the age, their messages and their search entries" {
	ai-stream old conversation about penguins >/dev/null
	ai-stream new conversation about penguins >/dev/null
	now=$(sql 'SELECT max(updated_ms) FROM conversations')
	sql "UPDATE conversations SET updated_ms = $now - 31 * 86400000 WHERE id = 1"
	run --separate-stderr ai-stream --prune 30d
	assert_eq "$status" 0
	assert_eq "$output" "1 conversation pruned"
	assert_eq "$(sql 'SELECT group_concat(id) FROM conversations')" 2
	assert_eq "$(sql 'SELECT count(*) FROM messages WHERE conv = 1')" 0
	assert_eq "$(sql "SELECT count(*) FROM exchanges_fts WHERE exchanges_fts MATCH 'old'")" 0
	assert_eq "$(sql "SELECT count(*) FROM exchanges_fts WHERE exchanges_fts MATCH 'penguins'")" 1
	sql "INSERT INTO exchanges_fts(exchanges_fts) VALUES('integrity-check')"
	run --separate-stderr ai-stream --prune 30d --json
	assert_eq "$output" '{"pruned":0}'
	# An id is never reused: 1 stays gone.
	ai-stream another one >/dev/null
	assert_eq "$(sql 'SELECT group_concat(id) FROM conversations')" 2,3
	run --separate-stderr ai-stream --show 1
	assert_eq "$status" 66
	# A bare number would be seconds: refused rather than prune nearly everything.
	for bad in 0 30 1.5 0d abc -3d ""; do
		run --separate-stderr ai-stream --prune "$bad"
		assert_eq "$status" 64
	done
}

@test "conv: --prune with nothing kept prunes nothing" {
	run --separate-stderr ai-stream -q --prune 1d
	assert_eq "$status" 0
	assert_eq "$output" "0 conversations pruned"
	[[ ! -e $DB ]]
	# An empty file (made, never given its schema) holds nothing either.
	mkdir -p "${DB%/*}"
	: >"$DB"
	run --separate-stderr ai-stream --list-conversations
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_contains "$stderr" "no conversation kept yet"
	run --separate-stderr ai-stream -C hello
	assert_eq "$status" 66
	assert_eq "$(request_count $CHAT)" 0
}

@test "conv: ai-usage --log lists prompts and replies, newest first, -n of them" {
	run --separate-stderr ai-usage --log
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_contains "$stderr" "no conversation kept yet"
	ai-stream -m m1 first prompt >/dev/null
	ai-stream -C -m m1 second prompt >/dev/null
	ai-stream -m m2 third prompt >/dev/null
	run --separate-stderr ai-usage --log --json
	assert_eq "$status" 0
	assert_eq "$(jq -sc 'map([.conversation, .model, .prompt, .response])' <<<"$output")" \
		'[[2,"m2","third prompt","echo: third prompt"],[1,"m1","second prompt","echo: second prompt"],[1,"m1","first prompt","echo: first prompt"]]'
	run --separate-stderr ai-usage --log -n 1
	assert_eq "$status" 0
	assert_contains "$output" $'Model: m2\n\n## Prompt\n\nthird prompt\n\n## Response\n\necho: third prompt'
	assert_not_contains "$output" "second"
	# -m keeps one model's answers; --since and --until a range of days.
	run --separate-stderr ai-usage --log --json -m m1
	assert_eq "$(jq -sc 'map(.prompt)' <<<"$output")" '["second prompt","first prompt"]'
	run --separate-stderr ai-usage --log --json --since today
	assert_eq "$(jq -s length <<<"$output")" 3
	run --separate-stderr ai-usage --log --json --until yesterday
	assert_eq "$status" 0
	assert_eq "$output" ""
	run --separate-stderr ai-usage --log -n x
	assert_eq "$status" 64
	for opt in "--db $T/x" --prices --cache-stats "--by day"; do
		run --separate-stderr ai-usage --log $opt
		assert_eq "$status" 64
	done
	run --separate-stderr ai-usage -n 3
	assert_eq "$status" 64
	assert_contains "$stderr" "-n goes with --log"
}

@test "conv: ai-usage --log QUERY searches the prompts and the replies with FTS5, every word, case and accents ignored" {
	ai-stream "the Café menu" >/dev/null
	ai-stream "nothing relevant here" >/dev/null
	ctl '{"push":[{"reply":"try git revert HEAD"}]}'
	ai-stream --no-cache "how to undo" >/dev/null
	run --separate-stderr ai-usage --log --json cafe MENU
	assert_eq "$status" 0
	assert_eq "$(jq -sc 'map(.prompt)' <<<"$output")" '["the Café menu"]'
	# A word of the reply finds the exchange too.
	run --separate-stderr ai-usage --log --json revert
	assert_eq "$(jq -sc 'map([.prompt, .response])' <<<"$output")" '[["how to undo","try git revert HEAD"]]'
	# Every word must be there, in the question or the answer.
	run --separate-stderr ai-usage --log --json cafe revert
	assert_eq "$output" ""
	run --separate-stderr ai-usage --log --json undo revert
	assert_eq "$(jq -sc 'map(.prompt)' <<<"$output")" '["how to undo"]'
	# What FTS5 would read as syntax is only text.
	for q in 'NEAR(' '"' 'menu*' 'content:x' 'AND' '-' '^'; do
		run --separate-stderr ai-usage --log "$q"
		assert_eq "$status" 0
		assert_eq "$stderr" ""
	done
	run --separate-stderr ai-usage --log --json '"menu"'
	assert_eq "$(jq -sc 'map(.prompt)' <<<"$output")" '["the Café menu"]'
}

@test "conv: --no-save and save = no keep nothing" {
	run --separate-stderr ai-stream --no-save hello
	assert_eq "$status" 0
	[[ ! -e $DB ]]
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo "save = no" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-stream hello
	assert_eq "$status" 0
	[[ ! -e $DB ]]
	echo "save = yes" >"$XDG_CONFIG_HOME/ai/config"
	ai-stream kept >/dev/null
	# -C --no-save asks within the conversation and adds nothing to it.
	run --separate-stderr ai-stream -C --no-save --no-cache follow-up
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq '.body.messages | length')" 3
	assert_eq "$(sql 'SELECT count(*) FROM messages')" 2
	echo "save = maybe" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-stream hello
	assert_eq "$status" 78
	assert_contains "$stderr" "save"
}

@test "conv: a --dry-run, a failed exchange or one cut short keeps nothing" {
	run --separate-stderr ai-stream --dry-run dry
	assert_eq "$status" 0
	[[ ! -e $DB ]]
	ctl '{"push":[{"status":500}]}'
	run --separate-stderr ai-stream --no-cache --retries 0 fails
	assert_eq "$status" 75
	ctl '{"push":[{"cut_after":2}]}'
	run --separate-stderr ai-stream --no-cache --retries 0 cut short
	assert_eq "$status" 75
	assert_contains "$output" "echo"
	assert_eq "$(sql 'SELECT count(*) FROM conversations')" 0
	assert_eq "$(sql 'SELECT count(*) FROM messages')" 0
}

@test "conv: an answer interrupted by SIGINT is not kept" {
	ai-stream kept first >/dev/null
	ctl '{"push":[{"hold_ms":5000}]}'
	ai-stream --no-cache -C one two >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	wait_for_output "$T/out" "echo: "
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 130
	assert_eq "$(sql 'SELECT count(*) FROM messages')" 2
}

@test "conv: -i keeps its exchanges as one conversation" {
	printf '%s\n' one two three | ai-stream -i --no-cache >/dev/null
	assert_eq "$(sql 'SELECT count(*) FROM conversations')" 1
	assert_eq "$(sql "SELECT group_concat(content, '|') FROM (SELECT content FROM messages ORDER BY seq)")" \
		"one|echo: one|two|echo: two|three|echo: three"
}

@test "conv: --history FILE still works, and its exchange is kept too" {
	h=$T/chat.jsonl
	ai-stream --history "$h" first >/dev/null
	ai-stream --history "$h" --no-cache second >/dev/null
	assert_eq "$(wc -l <"$h")" 4
	assert_eq "$(last_request $CHAT | jq '.body.messages | length')" 3
	# The store holds the conversation as it was sent: the file's lines and the new exchange.
	assert_eq "$(sql 'SELECT group_concat(messages) FROM (SELECT count(*) AS messages FROM messages GROUP BY conv ORDER BY conv)')" 2,4
}

@test "conv: a damaged store costs the keeping, not the answer; where it is the input it exits 65 before any request" {
	mkdir -p "${DB%/*}"
	head -c 8192 /dev/urandom >"$DB"
	cp "$DB" "$T/before"
	run --separate-stderr ai-stream hello
	assert_eq "$status" 0
	assert_eq "$output" "echo: hello"
	assert_contains "$stderr" "conversation not kept"
	assert_contains "$stderr" "move it away"
	cmp "$DB" "$T/before"
	run --separate-stderr ai-stream -q hello
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	n=$(request_count $CHAT)
	run --separate-stderr ai-stream -C more
	assert_eq "$status" 65
	assert_contains "$stderr" "is not a conversation store"
	assert_eq "$(request_count $CHAT)" "$n"
	for cmd in "ai-stream --list-conversations" "ai-stream --show 1" "ai-stream --prune 1d" "ai-usage --log"; do
		run --separate-stderr $cmd
		assert_eq "$status" 65
	done
	# An SQLite database of something else is refused as well, and left alone.
	rm -f "$DB"
	sql 'CREATE TABLE t(x)'
	run --separate-stderr ai-stream --list-conversations
	assert_eq "$status" 65
	assert_contains "$stderr" "not a conversation store"
	run --separate-stderr ai-stream hello
	assert_eq "$status" 0
	assert_eq "$(sql 'SELECT group_concat(name) FROM sqlite_master')" t
}

@test "conv: a store locked past the wait: the answer stands, and under -C the exit is 75" {
	ai-stream first >/dev/null
	# Another process holds the write lock for longer than the 5 s a write waits.
	printf 'BEGIN IMMEDIATE;\nDELETE FROM conversations WHERE 0;\n.shell sleep 30\n' >"$T/lock.sql"
	sqlite3 "$DB" <"$T/lock.sql" >/dev/null 2>&1 3>&- &
	LOCKER=$!
	sleep 0.5
	# Both wait out the 5 s at the same time, not one after the other.
	ai-stream --no-cache second >"$T/2.out" 2>"$T/2.err" 3>&- &
	second=$!
	ai-stream -C --no-cache third >"$T/3.out" 2>"$T/3.err" 3>&- &
	third=$!
	status=0
	wait "$second" || status=$?
	assert_eq "$status" 0
	assert_eq "$(cat "$T/2.out")" "echo: second"
	assert_contains "$(cat "$T/2.err")" "locked by another process"
	status=0
	wait "$third" || status=$?
	assert_eq "$status" 75
	assert_eq "$(cat "$T/3.out")" "echo: third"
	assert_contains "$(cat "$T/3.err")" "locked by another process"
	# Reading is not held up by a writer (WAL).
	run --separate-stderr ai-stream --list-conversations --json
	assert_eq "$status" 0
	assert_eq "$(jq -r .messages <<<"$output")" 2
}

@test "conv: ai-stream processes at once each keep their exchange, and those continuing one conversation add whole exchanges" {
	pids=()
	for i in 1 2 3 4 5 6; do
		ai-stream --no-cache "new $i" >/dev/null 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	assert_eq "$(sql 'SELECT count(*) FROM conversations')" 6
	assert_eq "$(sql 'SELECT count(*) FROM messages')" 12
	pids=()
	for i in 1 2 3 4 5 6; do
		ai-stream --no-cache --conversation 1 "more $i" >/dev/null 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	assert_eq "$(sql 'SELECT count(*) FROM messages WHERE conv = 1')" 14
	# Each question is followed by its own answer.
	run ai-stream --show 1 --json
	assert_eq "$(jq -r '.messages | [range(0; length; 2) as $i | .[$i].role == "user" and
		.[$i + 1].content == "echo: " + .[$i].content] | all' <<<"$output")" true
}

@test "conv: the completions offer the kept conversations' ids to --show and --conversation" {
	ai-stream one >/dev/null
	ai-stream two >/dev/null
	C=$BATS_TEST_DIRNAME/../../completions
	got=$(bash -c '
		. "$1/bash/ai-stream" || exit 3
		COMP_WORDS=(ai-stream --show "") COMP_CWORD=2 COMPREPLY=()
		_ai_stream ai-stream "" --show
		printf "%s\n" "${COMPREPLY[@]}"' bcomp "$C" | sort | tr '\n' ' ')
	assert_eq "$got" "1 2 "
	if command -v fish >/dev/null; then
		got=$(fish -N -c 'set -p fish_complete_path $argv[1]; complete -C "ai-stream --conversation "' "$C/fish" |
			cut -f1 | sort | tr '\n' ' ')
		assert_eq "$got" "1 2 "
	fi
}
