#!/usr/bin/env bats
# The hostile suite, files and processes: what a planted file, a FIFO or a
# core dump could make the programs do or give away (issue 19, findings 10
# and 11).

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	DB=$T/index.db
	printf 'The lighthouse keeper counts ships at night.\n' >"$T/doc.txt"
}
teardown() {
	[[ -z ${BG:-} ]] || { kill "$BG" 2>/dev/null || true; wait "$BG" 2>/dev/null || true; }
	stop_server
}

@test "hostile files: a planted <index>.vec symlink is not followed, and its target is left whole" {
	printf 'precious\n' >"$T/victim"
	ln -s "$T/victim" "$DB.vec"
	run --separate-stderr ai-index --db "$DB" "$T/doc.txt"
	assert_eq "$status" 74 status
	assert_contains "$stderr" "vector file '$DB.vec' is a symbolic link; not followed"
	assert_eq "$(cat "$T/victim")" precious "the link's target"
	[[ -L $DB.vec ]]
}

@test "hostile files: a .vec swapped for a symlink under an existing index is refused, not followed" {
	run --separate-stderr ai-index --db "$DB" "$T/doc.txt"
	assert_eq "$status" 0 status
	printf 'precious\n' >"$T/victim"
	rm "$DB.vec"
	ln -s "$T/victim" "$DB.vec"
	printf 'The keeper also counts gulls.\n' >"$T/doc2.txt"
	run --separate-stderr ai-index --db "$DB" "$T/doc2.txt"
	assert_eq "$status" 74 status
	assert_contains "$stderr" "is a symbolic link; not followed"
	assert_eq "$(cat "$T/victim")" precious "the link's target"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only keeper
	assert_contains "$stderr" "is a symbolic link"
	assert_eq "$(cat "$T/victim")" precious "the link's target after a query"
}

@test "hostile files: a .vec that is a FIFO is refused at once, not waited on" {
	mkfifo "$DB.vec"
	run --separate-stderr timeout 10 ai-index --db "$DB" "$T/doc.txt"
	assert_eq "$status" 74 status
	assert_contains "$stderr" "refused vector file '$DB.vec': it is not a regular file"
}

@test "hostile files: a FIFO named as a document is refused at once, the other documents indexed" {
	mkfifo "$T/fifo"
	run --separate-stderr timeout 10 ai-index --db "$DB" "$T/fifo" "$T/doc.txt"
	assert_eq "$status" 1 "status (1: some documents failed; 124 would be a hang)"
	assert_contains "$stderr" "'$T/fifo' is a FIFO, not a regular file: a document must be one (or '-' for standard input)"
	assert_contains "$stderr" "1 indexed"
	assert_eq "$(ai-index --db "$DB" --list | wc -l)" 1 "documents in the index"
}

@test "hostile files: a device named as a document is refused, not read without end" {
	run --separate-stderr timeout 10 ai-index --db "$DB" /dev/zero
	assert_eq "$status" 66 status
	assert_contains "$stderr" "'/dev/zero' is a character device, not a regular file"
}

@test "hostile files: --files-from naming a FIFO refuses it too" {
	mkfifo "$T/fifo"
	run --separate-stderr timeout 10 ai-index --db "$DB" --files-from - <<<"$T/fifo"
	assert_eq "$status" 66 status
	assert_contains "$stderr" "is a FIFO, not a regular file"
}

@test "hostile files: standard input is still read, a pipe included" {
	run --separate-stderr ai-index --db "$DB" --source piped.txt < <(printf 'Piped text about ships.\n')
	assert_eq "$status" 0 status
	assert_eq "$(ai-index --db "$DB" --list | awk '{print $NF}')" piped.txt "the document"
}

# start_blocked [ENV=VALUE...]: starts ai-summarize, held by a slow answer,
# in the background as $BG, and waits until its request has arrived.  As
# root it runs as nobody (setpriv), so that the owner of its /proc entries
# tells whether it is dumpable: the kernel makes root own the /proc files
# of a non-dumpable process.  Sets RUN_UID to the uid it runs as.
start_blocked() {
	local -a as=()
	ctl '{"set":{"latency_ms":4000}}'
	if (($(id -u) == 0)); then
		command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
		as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
		RUN_UID=65534
	else
		RUN_UID=$(id -u)
	fi
	# No file the other user could not reach: no config, cache or ledger.
	env AI_CONFIG=/dev/null AI_LEDGER=0 "$@" "${as[@]}" "$AI_BIN/ai-summarize" --no-cache \
		<<<"A text to summarize." >/dev/null 2>"$T/bg.err" 3>&- &
	BG=$!
	wait_for_requests 1 /v1/chat/completions
}

# core_limit PID: the soft core-file size limit of PID, as /proc shows it.
core_limit() {
	awk '/^Max core file size/ { print $5 }' "/proc/$1/limits"
}

@test "hostile files: a running program is not dumpable and its core limit is 0" {
	start_blocked
	assert_eq "$(stat -c %u "/proc/$BG/status")" 0 "owner of /proc/PID (root: not dumpable)"
	assert_eq "$(core_limit "$BG")" 0 "core limit"
}

@test "hostile files: AI_ALLOW_CORE=1 keeps the program dumpable, as asked" {
	ulimit -S -c unlimited 2>/dev/null || ulimit -S -c 1000000 || skip "cannot raise the core limit here"
	# AddressSanitizer sets the core limit to 0 itself (disable_coredump): not ours to test.
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}disable_coredump=0
	start_blocked AI_ALLOW_CORE=1
	assert_eq "$(stat -c %u "/proc/$BG/status")" "$RUN_UID" "owner of /proc/PID (the user: dumpable)"
	[[ $(core_limit "$BG") != 0 ]]
}

@test "hostile files: a remote batch's result file larger than any answer held in memory is downloaded whole" {
	# AI_MAX_RESPONSE lowers the 64 MiB cap on a buffered answer to 16 KiB,
	# so five 10 KB answers (over 50 KB of result file) stand for 200 MB.
	reply=$(head -c 10000 /dev/zero | tr '\0' r)
	ctl "$(jq -cn --arg r "$reply" '{set: {reply: $r}}')"
	printf '{"id":%d,"text":"t%d"}\n' 1 1 2 2 3 3 4 4 5 5 >"$T/in"
	id=$(ai-batch submit --remote "$T/in")
	# What a download killed by SIGKILL leaves: removed before the next one.
	head -c 4096 /dev/zero >"$XDG_DATA_HOME/ai/jobs/$id/.batch-output.jsonl.KiLl3d"
	export AI_MAX_RESPONSE=16K
	run --separate-stderr ai-batch wait --poll 0.1 "$id"
	assert_eq "$status" 0 status
	run --separate-stderr ai-batch results "$id"
	assert_eq "$status" 0 status
	assert_eq "$(jq -r .id <<<"$output" | tr '\n' ' ')" "1 2 3 4 5 " ids
	assert_eq "$(jq -r '.output | length' <<<"$output" | sort -u)" 10000 "answer length"
	(($(stat -c %s "$XDG_DATA_HOME/ai/jobs/$id/batch-output.jsonl") > 50000))
	# Downloaded aside and renamed: no temporary file is left beside it, nor an old one.
	assert_eq "$(ls -A "$XDG_DATA_HOME/ai/jobs/$id" | grep -c 'batch-output')" 1 "batch-output files"
}

@test "hostile files: an answer over the in-memory cap fails with 75, not 69 (refused for good)" {
	reply=$(head -c 40000 /dev/zero | tr '\0' r)
	ctl "$(jq -cn --arg r "$reply" '{set: {reply: $r}}')"
	AI_MAX_RESPONSE=16K run --separate-stderr ai-summarize --no-cache <<<"text"
	assert_eq "$status" 75 status
	assert_contains "$stderr" "ai-summarize: the answer from 127.0.0.1:$PORT is larger than 16384 bytes"
	assert_eq "$output" "" stdout
}
