# tests/bats/helpers.bash - loaded by every suite with "load helpers".
#
# Every suite starts with
#
#     setup()    { setup_env; start_server; }
#     teardown() { stop_server; }
#
# setup_env gives the test a private HOME and a fresh key; start_server
# runs tests/server/ai-testserver on an ephemeral port and points
# OPENAI_BASE_URL at it.  The server logs every API request as one JSON
# line in $SERVER_LOG (see requests, last_request) and is scripted with
# ctl (see the top of tests/server/ai-testserver.c for the control API).
#
# Functions: setup_env start_server stop_server ctl queued requests
# request_count last_request wait_for_requests free_port assert_eq
# assert_contains assert_not_contains wait_for_output on_tty.

# The suites write characters as $'\u2407'; bash decodes those as it reads a
# test, in the locale of that moment, and CI may start with none set.
export LC_ALL=C.UTF-8

# The runner (tests/run) exports these; the defaults serve a bare "bats tests/bats".
: "${AI_BIN:=$BATS_TEST_DIRNAME/../../bin}"
: "${AI_TESTSERVER:=$BATS_TEST_DIRNAME/../../build/tests/ai-testserver}"
export AI_BIN AI_TESTSERVER

# setup_env: a fresh directory $T, HOME and the XDG directories inside it,
# no inherited AI_* / OPENAI_* settings, a new OPENAI_API_KEY (also in
# $KEY, so a test can check that it never leaks), and $AI_BIN first on PATH.
setup_env() {
	local v
	T=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/t.XXXXXX") || return 1
	export HOME="$T/home"
	export XDG_CONFIG_HOME="$HOME/.config" XDG_CACHE_HOME="$HOME/.cache" XDG_DATA_HOME="$HOME/.local/share"
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" || return 1
	for v in $(compgen -e); do
		case $v in
		AI_BIN | AI_TESTSERVER | AI_UNITS) ;; # the runner's own
		AI_* | OPENAI_*) unset "$v" ;;
		esac
	done
	# A proxy from the environment must not carry requests meant for 127.0.0.1.
	unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
	export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
	KEY="sk-test-SECRET-$RANDOM$RANDOM"
	export OPENAI_API_KEY="$KEY"
	export PATH="$AI_BIN:$PATH"
	SERVER_PID=
}

# start_server: runs the test server in the background and waits (up to
# 5 s) for its port; exports PORT, OPENAI_BASE_URL and SERVER_LOG.  Its
# stdout and stderr go to $T/server.out and $T/server.err, and fd 3 (bats'
# own) is closed, so bats never waits on it; --exit-with-parent ends it
# even when bats is killed before teardown.  A bare "wait" in a test would
# wait for the server too: wait for the pids you started.
start_server() {
	local pf="$T/server.port" i
	if [[ ! -x $AI_TESTSERVER ]]; then
		echo "start_server: '$AI_TESTSERVER' is missing; run: make build/tests/ai-testserver" >&2
		return 1
	fi
	rm -f "$pf" "$pf.tmp"
	SERVER_LOG="$T/server.log"
	: >"$SERVER_LOG"
	"$AI_TESTSERVER" --port-file "$pf" --log "$SERVER_LOG" --exit-with-parent \
		</dev/null >"$T/server.out" 2>"$T/server.err" 3>&- &
	SERVER_PID=$!
	for ((i = 0; i < 500; i++)); do
		[[ -s $pf ]] && break
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo "start_server: the server exited: $(cat "$T/server.err")" >&2
			wait "$SERVER_PID" 2>/dev/null || true
			SERVER_PID=
			return 1
		fi
		sleep 0.01
	done
	if [[ ! -s $pf ]]; then
		echo "start_server: no port file after 5 s" >&2
		stop_server
		return 1
	fi
	PORT=$(<"$pf")
	export PORT SERVER_LOG OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1"
}

# stop_server: SIGTERM, then wait (SIGKILL after 5 s).  Safe to call twice
# or when no server was started.  Fails, showing the server's stderr, when
# the server did not exit 0 (a crash, a sanitizer report, a hang).
stop_server() {
	local pid=${SERVER_PID:-} i rc=0
	[[ -n $pid ]] || return 0
	SERVER_PID=
	# Bats runs with errexit: a server that already died must not end this early.
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 500; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "stop_server: no exit 5 s after SIGTERM; sending SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	if ((rc != 0)); then
		echo "stop_server: the server exited with status $rc; its stderr:" >&2
		cat "$T/server.err" >&2
		return 1
	fi
}

# ctl JSON: posts JSON to the control API; fails (showing the server's
# answer) when curl fails or the server refuses the script.
ctl() {
	local out
	if ! out=$(curl -sS --noproxy '*' --fail-with-body -H 'Content-Type: application/json' \
		--data-binary "$1" "http://127.0.0.1:$PORT/_control" 2>&1); then
		echo "ctl: $1 failed: $out" >&2
		return 1
	fi
}

# queued: the number of scripted actions still waiting.
queued() {
	curl -sS --noproxy '*' --fail "http://127.0.0.1:$PORT/_control" | jq -r .queued
}

# requests [PATH]: the logged request lines, one JSON object a line; only
# those for PATH (e.g. /v1/chat/completions) when given.
requests() {
	if (($# == 0)); then
		cat "$SERVER_LOG"
	else
		jq -c --arg p "$1" 'select(.path == $p)' "$SERVER_LOG"
	fi
}

# request_count [PATH]: how many requests were logged (for PATH).
request_count() {
	local n
	n=$(requests "$@" | wc -l)
	echo $((n))
}

# last_request [PATH]: the last logged line (for PATH).
last_request() {
	requests "$@" | tail -n 1
}

# wait_for_requests N [PATH [SECONDS]]: waits until at least N requests
# were logged (default limit 5 s); fails when they do not come.
wait_for_requests() {
	local n=$1 path=${2:-} limit=${3:-5} i
	for ((i = 0; i < limit * 100; i++)); do
		if [[ -n $path ]]; then
			(($(request_count "$path") >= n)) && return 0
		else
			(($(request_count) >= n)) && return 0
		fi
		sleep 0.01
	done
	echo "wait_for_requests: wanted $n requests${path:+ for $path}, have $(request_count ${path:+"$path"})" >&2
	return 1
}

# free_port: prints a port on 127.0.0.1 with nothing listening, chosen
# below Linux's ephemeral range so that no client socket takes it meanwhile.
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# wait_for_output FILE TEXT [AFTER]: waits (up to 10 s) until FILE contains
# TEXT (after the text AFTER, when given).
wait_for_output() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[[ -f $1 && $(<"$1") == *"${3-}"*"$2"* ]] && return 0
		sleep 0.01
	done
	echo "wait_for_output: [$2] never appeared in $1: [$(cat "$1" 2>/dev/null)]" >&2
	return 1
}

# on_tty COMMAND: runs COMMAND on a pseudo-terminal (script(1)), reading the
# keys typed there from stdin.  script runs COMMAND with $SHELL -c; the exec
# makes COMMAND the only process in the terminal's foreground group, so a
# Ctrl-C reaches it alone (dash, unlike bash, would not exec on its own and
# would die of the SIGINT itself).  Killed after 20 s, so a hang fails the test.
on_tty() {
	SHELL=/bin/sh timeout 20 script -qec "exec $1" /dev/null
}

# signal_wait SIG PID: sends SIG to PID (a child of this shell) and waits
# for it; sets rc (its exit status) and ms (how long it took to end).  One
# still alive after 5 s is killed (rc 137), so a hang fails instead of
# holding the suite.
signal_wait() {
	local start i
	start=$(date +%s%N)
	kill -"$1" "$2"
	for ((i = 0; i < 500; i++)); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.01
	done
	ms=$((($(date +%s%N) - start) / 1000000))
	kill -KILL "$2" 2>/dev/null || true
	rc=0
	wait "$2" || rc=$?
}

# hold_write_lock DB SECONDS: another process holds the SQLite database DB's
# write lock for SECONDS (under the ledger's 5 s busy timeout, so a writer
# waits it out); returns once it is held.  HOLDER is its pid.
hold_write_lock() {
	local i
	{ echo '.timeout 2000'; echo 'BEGIN IMMEDIATE;'; sleep "$2"; echo 'COMMIT;'; } | sqlite3 "$1" &
	HOLDER=$!
	for ((i = 0; i < 500; i++)); do
		sqlite3 "$1" 'PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK;' 2>/dev/null || return 0
		sleep 0.01
	done
	echo "hold_write_lock: the lock on $1 was never held" >&2
	return 1
}

# running PID: PID is alive and not a zombie (a killed orphan waits for
# whoever adopted it to reap it, and that may be slow).
running() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $st && $st != Z* ]]
}

# assert_eq GOT WANT [WHAT]
assert_eq() {
	[[ $1 == "$2" ]] && return 0
	printf '%s differs\n  got:  [%s]\n  want: [%s]\n' "${3:-value}" "$1" "$2" >&2
	return 1
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
	[[ $1 == *"$2"* ]] && return 0
	printf 'expected to find [%s]\n  in: [%s]\n' "$2" "$1" >&2
	return 1
}

# assert_not_contains HAYSTACK NEEDLE
assert_not_contains() {
	[[ $1 != *"$2"* ]] && return 0
	printf 'expected not to find [%s]\n  in: [%s]\n' "$2" "$1" >&2
	return 1
}

# replay NAME [PATH [TIMES]]: the next API request (for PATH, TIMES times)
# is answered with the response recorded from a real server,
# tests/fixtures/compat/NAME.hdr and NAME.body (see "real servers" in
# tests/server/ai-testserver.c).
replay() {
	local stem="$BATS_TEST_DIRNAME/../fixtures/compat/$1"
	[[ -r $stem.hdr && -r $stem.body ]] || { echo "replay: no fixture '$1'" >&2; return 1; }
	ctl "$(jq -cn --arg s "$stem" --arg p "${2:-}" --argjson n "${3:-1}" \
		'{push: [{replay: $s, times: $n} + (if $p == "" then {} else {path: $p} end)]}')"
}

# mkpdf OUT PAGE...: a PDF with one page per argument, each argument's
# lines ('|' between them) set in Helvetica; plain ASCII without
# parentheses or backslashes.  Written by hand, byte offsets and all, so
# that the test needs no PDF writer.
mkpdf() {
	local LC_ALL=C out=$1 n=$(($# - 1)) i=0 obj off page line s kids="" body
	local -a offs lines
	shift
	body='%PDF-1.4'$'\n'
	pdfobj() { offs[$1]=${#body}; body+="$1 0 obj"$'\n'"$2"$'\n'"endobj"$'\n'; }
	pdfobj 1 "<< /Type /Catalog /Pages 2 0 R >>"
	for ((i = 0; i < n; i++)); do kids+="$((4 + 2 * i)) 0 R "; done
	pdfobj 2 "<< /Type /Pages /Kids [ $kids] /Count $n >>"
	pdfobj 3 "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
	i=0
	for page in "$@"; do
		s="BT /F1 12 Tf 72 720 Td 14 TL"
		IFS='|' read -ra lines <<<"$page"
		for line in "${lines[@]}"; do s+=" ($line) Tj T*"; done
		s+=" ET"
		pdfobj $((4 + 2 * i)) "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents $((5 + 2 * i)) 0 R >>"
		pdfobj $((5 + 2 * i)) "<< /Length ${#s} >>"$'\n'"stream"$'\n'"$s"$'\n'"endstream"
		i=$((i + 1))
	done
	obj=$((4 + 2 * n))
	off=${#body}
	body+="xref"$'\n'"0 $obj"$'\n'"0000000000 65535 f "$'\n'
	for ((i = 1; i < obj; i++)); do body+=$(printf '%010d 00000 n ' "${offs[$i]}")$'\n'; done
	body+="trailer"$'\n'"<< /Size $obj /Root 1 0 R >>"$'\n'"startxref"$'\n'"$off"$'\n'"%%EOF"$'\n'
	printf '%s' "$body" >"$out"
}
