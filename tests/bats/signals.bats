#!/usr/bin/env bats
# SIGTERM, SIGHUP and SIGINT for the programs that make one call: each stops
# promptly (its network wait wakes), writes what it owes the ledger, keeps
# what it printed, and dies by the same signal (the shell sees 128 + N).
# The ledger side is in usage.bats ("SIGTERM just after the answer came").

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() {
	[[ -z ${HOLDER:-} ]] || { kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; }
	stop_server
}

CHAT=/v1/chat/completions

# signal_mid_request SIG WANT PROGRAM ARGS...: PROGRAM, its request held by a
# slow server (10 s), gets SIG once the request has arrived; it must exit
# with WANT within a second.
signal_mid_request() {
	local sig=$1 want=$2 n
	shift 2
	n=$(request_count)
	ctl '{"set":{"latency_ms":10000}}'
	"$@" </dev/null >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	wait_for_requests $((n + 1))
	signal_wait "$sig" "$pid"
	ctl '{"set":{"latency_ms":0}}'
	assert_eq "$rc" "$want" "status of $* after SIG$sig"
	((ms < 1000)) || { echo "$* took $ms ms to end after SIG$sig" >&2; false; }
}

@test "signals: SIGTERM mid-request ends every single-call program at once with 143" {
	printf 'Tides come twice a day.\n' >"$T/doc.txt"
	ai-index --db "$T/kb.db" -q "$T/doc.txt"
	signal_mid_request TERM 143 ai-summarize --no-cache "$T/doc.txt"
	signal_mid_request TERM 143 ai-stream --no-cache hello
	signal_mid_request TERM 143 ai-ask --no-cache --db "$T/kb.db" "how often do tides come?"
	signal_mid_request TERM 143 ai-agent --no-cache "wait"
	signal_mid_request TERM 143 ai-cmd --no-cache "list the files"
	printf 'More about tides.\n' >"$T/doc2.txt"
	signal_mid_request TERM 143 ai-index --db "$T/kb.db" -q "$T/doc2.txt"
}

@test "signals: SIGHUP mid-request exits 129, SIGINT 130" {
	echo text >"$T/in"
	signal_mid_request HUP 129 ai-summarize --no-cache "$T/in"
	signal_mid_request HUP 129 ai-stream --no-cache hello
	signal_mid_request INT 130 ai-stream --no-cache hello
}

@test "signals: SIGTERM mid-stream keeps what was printed and exits 143" {
	ctl '{"push":[{"hold_ms":5000}]}'
	ai-stream --no-cache one two >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	wait_for_output "$T/out" "echo: "
	signal_wait TERM "$pid"
	assert_eq "$rc" 143
	assert_eq "$(cat "$T/out")" "echo: "
}

@test "signals: ai-stream -i ends on SIGTERM at the prompt and during an answer, where Ctrl-C would go on" {
	mkfifo "$T/in"
	# At the prompt, where nothing is owed, it kills at once; the answer's ledger row is kept.
	ai-stream --no-cache -i <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	exec 5>"$T/in"
	echo "first" >&5
	wait_for_output "$T/out" "echo: first"
	blocked_in "$pid" pipe_read
	signal_wait TERM "$pid"
	exec 5>&-
	assert_eq "$rc" 143 "status after SIGTERM at the prompt"
	((ms < 1000)) || { echo "took $ms ms to end at the prompt" >&2; false; }
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT count(*) FROM calls')" 1
	# During an answer: SIGINT stops the answer and the chat goes on ...
	ctl '{"push":[{"hold_ms":5000}]}'
	ai-stream --no-cache -i <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	exec 5>"$T/in"
	echo "second" >&5
	wait_for_output "$T/out" "echo: "
	kill -INT "$pid"
	wait_for_output "$T/err" "answer interrupted"
	kill -0 "$pid"
	echo "third" >&5
	wait_for_output "$T/out" "echo: third"
	# ... SIGTERM stops the answer and the chat.
	ctl '{"push":[{"hold_ms":5000}]}'
	echo "fourth" >&5
	wait_for_requests 3 $CHAT
	signal_wait TERM "$pid"
	exec 5>&-
	assert_eq "$rc" 143 "status after SIGTERM during an answer"
}

@test "signals: SIGHUP ignored at start (nohup) stays ignored" {
	ctl '{"push":[{"reply":"done","latency_ms":1000}]}'
	(trap '' HUP; exec ai-summarize --no-cache <<<"text" >"$T/out" 2>"$T/err" 3>&-) &
	pid=$!
	wait_for_requests 1 $CHAT
	signal_wait HUP "$pid"
	assert_eq "$rc" 0
	assert_eq "$(cat "$T/out")" "done"
}

@test "signals: a second SIGTERM kills at once a program still busy after the first" {
	DB=$XDG_DATA_HOME/ai/usage.db
	ai-summarize --no-cache <<<"make the ledger" >/dev/null
	ctl '{"push":[{"reply":"late","latency_ms":500}]}'
	ai-summarize --no-cache <<<"text" >"$T/out" 2>"$T/err" 3>&- &
	pid=$!
	wait_for_requests 2 $CHAT
	# The ledger's write lock, held for 4 s, keeps the program writing its row.
	hold_write_lock "$DB" 4
	sleep 1
	kill -TERM "$pid"
	sleep 0.3
	kill -0 "$pid" || { echo "ended on the first SIGTERM, with the lock still held" >&2; false; }
	signal_wait TERM "$pid"
	assert_eq "$rc" 143
	((ms < 1000)) || { echo "took $ms ms after the second SIGTERM" >&2; false; }
}

@test "signals: SIGTERM while a program waits for piped input that does not come ends it at once" {
	mkfifo "$T/in"
	for p in ai-summarize ai-batch "ai-stream -i" "ai-index --db $T/kb.db --source x"; do
		exec 5<>"$T/in"     # a writer that stays and writes nothing
		$p --no-cache <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
		pid=$!
		sleep 0.3
		signal_wait TERM "$pid"
		exec 5>&-
		assert_eq "$rc" 143 "status of $p"
		((ms < 1000)) || { echo "$p took $ms ms to end" >&2; false; }
	done
	assert_eq "$(request_count)" 0
}

# blocked_in PID WAIT: waits (up to 5 s) until PID sleeps in the kernel
# function WAIT (pipe_write: a write to a full pipe; pipe_read: a read of an
# empty one), as /proc/PID/wchan names it.
blocked_in() {
	local i
	for ((i = 0; i < 500; i++)); do
		[[ $(cat "/proc/$1/wchan" 2>/dev/null) == *"$2" ]] && return 0
		sleep 0.01
	done
	echo "$1 never slept in $2" >&2
	return 1
}

# killed_at_once SIG WANT PROGRAM ARGS...: PROGRAM, started and blocked by the
# caller (pid $pid), gets SIG; it must exit with WANT within a second.
killed_at_once() {
	signal_wait "$1" "$pid"
	assert_eq "$rc" "$2" "status of ${*:3} after SIG$1"
	((ms < 1000)) || { echo "${*:3} took $ms ms to end after SIG$1" >&2; false; }
}

@test "signals: SIGTERM and SIGHUP kill at once a program that owes nothing (ai-usage, ai-batch list), however blocked" {
	# ai-usage --log: a few calls whose kept prompts and replies fill a pipe (64 KiB).
	msg=$(head -c 30000 /dev/zero | tr '\0' a)
	for i in 1 2 3; do ai-stream --no-cache --log-prompts "$msg $i" >/dev/null; done
	[[ $(ai-usage --log | wc -c) -gt 70000 ]]
	mkfifo "$T/pipe"
	for sig in "TERM 143" "HUP 129"; do
		exec 5<>"$T/pipe"   # held open and never read: the pipe fills, and the write waits
		ai-usage --log >"$T/pipe" 2>"$T/err" 3>&- &
		pid=$!
		blocked_in "$pid" pipe_write
		killed_at_once $sig ai-usage --log
		exec 5>&-
	done
	# ai-batch list and status: a job's status that does not come (a hung file
	# system; here a FIFO with a writer that writes nothing) holds the read.
	id=$(ai-batch submit --no-cache <<<'{"id":1,"text":"a"}')
	ai-batch wait "$id" >/dev/null
	st=$XDG_DATA_HOME/ai/jobs/$id/status.json
	rm "$st"
	mkfifo "$st"
	exec 5<>"$st"
	for p in "ai-batch list" "ai-batch status $id"; do
		$p >"$T/out" 2>"$T/err" 3>&- &
		pid=$!
		blocked_in "$pid" pipe_read
		killed_at_once TERM 143 $p
	done
	exec 5>&-
}

@test "signals: SIGINT kills at once a program that holds nothing (ai-usage blocked), as Ctrl-C must" {
	msg=$(head -c 30000 /dev/zero | tr '\0' a)
	for i in 1 2 3; do ai-stream --no-cache --log-prompts "$msg $i" >/dev/null; done
	mkfifo "$T/pipe"
	exec 5<>"$T/pipe"
	# A background job of a script starts with SIGINT ignored; the program catches it anyway.
	(trap '' INT; exec ai-usage --log >"$T/pipe" 2>"$T/err" 3>&-) &
	pid=$!
	blocked_in "$pid" pipe_write
	killed_at_once INT 130 ai-usage --log
	exec 5>&-
}

@test "signals: an alarm inherited across exec still kills (SIGALRM is not caught before a SIGTERM)" {
	command -v perl >/dev/null || skip "no perl"
	mkfifo "$T/in"
	exec 5<>"$T/in"     # a writer that stays and writes nothing
	start=$(date +%s%N)
	rc=0
	timeout 10 perl -e 'alarm 1; exec @ARGV' ai-summarize --no-cache <"$T/in" >"$T/out" 2>"$T/err" 3>&- || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	exec 5>&-
	assert_eq "$rc" 142
	((ms >= 900 && ms < 2500)) || { echo "took $ms ms" >&2; false; }
	assert_eq "$(request_count)" 0
}
