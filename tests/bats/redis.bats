#!/usr/bin/env bats
# ai-batch --queue: jobs in Redis, workers anywhere (common/batch/redisq.c).
# Each test starts its own redis-server on a loopback port with a private
# directory (appendonly, so a restart keeps what was acknowledged), and
# stops it in teardown.

bats_require_minimum_version 1.5.0
load helpers

CHAT=/v1/chat/completions

setup() {
	setup_env
	start_server
	start_redis
	WORKERS=()
}

teardown() {
	local p
	for p in "${WORKERS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	stop_redis
	stop_server
}

# start_redis [ARGS]: redis-server on a free port in $T/redis; exports RPORT, Q.
start_redis() {
	local i
	RDIR="$T/redis"
	mkdir -p "$RDIR"
	: "${RPORT:=$(free_port)}"
	redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$RDIR" --appendonly yes \
		--appendfsync always --save '' --logfile "$RDIR/log" "$@" </dev/null >/dev/null 2>&1 3>&- &
	REDIS_PID=$!
	for ((i = 0; i < 500; i++)); do
		[[ $(redis-cli -p "$RPORT" ${RPASS:+-a "$RPASS"} --no-auth-warning ping 2>/dev/null) == PONG ]] && break
		sleep 0.01
	done
	export Q="redis://127.0.0.1:$RPORT/0" RPORT
}

stop_redis() {
	[[ -n ${REDIS_PID:-} ]] || return 0
	kill -TERM "$REDIS_PID" 2>/dev/null || true
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
}

rcli() {
	redis-cli -p "$RPORT" ${RPASS:+-a "$RPASS"} --no-auth-warning "$@"
}

# items N: N items {"id":"iN","text":"echo-me N"}
items() {
	local i
	for ((i = 1; i <= $1; i++)); do printf '{"id":"i%d","text":"echo-me %d"}\n' "$i" "$i"; done
}

assert_each_once() {
	assert_eq "$(jq -r .id "$1" | sort | uniq -d)" "" "duplicate ids"
	assert_eq "$(jq -r .id "$1" | sort -u | wc -l)" "$2" "distinct ids"
	assert_eq "$(wc -l <"$1")" "$2" "lines"
}

# sent_counts: "COUNT N" for every item N sent, from the server's log
sent_counts() {
	requests $CHAT | jq -r '.body.messages[-1].content | sub("^echo-me "; "")' | sort | uniq -c
}

# worker ARGS: a worker in the background (its pid appended to WORKERS)
worker() {
	ai-batch --queue "$Q" worker --no-cache "$@" </dev/null >>"$T/worker.out" 2>>"$T/worker.err" 3>&- &
	WORKERS+=($!)
}

# wait_workers: waits for every worker started; fails when one failed
wait_workers() {
	local p rc=0
	for p in "${WORKERS[@]}"; do wait "$p" || rc=$?; done
	WORKERS=()
	((rc == 0)) || { cat "$T/worker.err" >&2; return 1; }
}

@test "redis: submit, a worker, results in input order with one line per id" {
	{ items 5; echo '"no id here"'; echo 'not json'; } >"$T/in"
	run --separate-stderr ai-batch --queue "$Q" submit -m test-model "$T/in"
	assert_eq "$status" 0
	id=$output
	[[ $id =~ ^[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$ ]]
	assert_eq "$(request_count $CHAT)" 0 "submit sends nothing"
	run --separate-stderr ai-batch --queue "$Q" status "$id"
	assert_eq "$(jq -r '.state, .total, .done' <<<"$output" | tr '\n' ' ')" "running 7 1 "
	worker -P 4 "$id"
	wait_workers
	assert_eq "$(request_count $CHAT)" 6
	assert_eq "$(requests $CHAT | jq -r .body.model | sort -u)" "test-model" "the job's model"
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	printf '%s\n' "$output" >"$T/out"
	assert_eq "$(jq -r .id "$T/out" | tr '\n' ' ')" "i1 i2 i3 i4 i5 6 7 " "ids in input order"
	assert_eq "$(sed -n 6p "$T/out" | jq -r .output)" "echo: no id here"
	assert_eq "$(sed -n 7p "$T/out" | jq -r .error.type)" "invalid_input"
	run --separate-stderr ai-batch --queue "$Q" wait "$id"
	assert_eq "$status" 1 "one item failed"
	run --separate-stderr ai-batch --queue "$Q" list
	assert_eq "$(jq -r '.id + " " + .state' <<<"$output")" "$id done"
	# The stored options hold no --queue.
	assert_not_contains "$(rcli hget "ai-batch:$id" args)" "redis://"
}

@test "redis: 3 workers, 600 items, faults on a tenth: every id exactly once" {
	n=600
	items $n >"$T/in"
	acts=$(for ((i = 0; i < 700; i++)); do
		case $((RANDOM % 30)) in
		0) echo '{"path":"/v1/chat/completions","status":429,"headers":{"retry-after-ms":"150"}}' ;;
		1) echo '{"path":"/v1/chat/completions","status":500}' ;;
		2) echo '{"path":"/v1/chat/completions","close":true}' ;;
		*) echo '{"path":"/v1/chat/completions"}' ;;
		esac
	done | jq -sc '{push: .}')
	ctl "$acts"
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	for w in 1 2 3; do worker -P 8 --retries 1 "$id"; done
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" $n
	assert_eq "$(jq -r .id "$T/out" | tr '\n' ' ')" "$(jq -r .id "$T/in" | tr '\n' ' ')" "order"
	assert_eq "$(jq -c 'select(.error)' "$T/out")" "" "every fault was retried to an answer"
	# Each id's line was stored once: the count of answers stored agrees.
	assert_eq "$(rcli hget "ai-batch:$id" ok)" $n
}

@test "redis: a worker killed with -9: its items are reclaimed, finished ones not sent again" {
	n=200
	items $n >"$T/in"
	ctl '{"set":{"latency_ms":100}}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 8 "$id"
	victim=${WORKERS[0]}
	wait_for_requests 60 $CHAT 30
	kill -KILL "$victim"
	wait "$victim" 2>/dev/null || true
	WORKERS=()
	rcli hkeys "ai-batch:$id:res" | sort >"$T/finished"
	pending=$(rcli xpending "ai-batch:$id:items" workers | head -n 1)
	((pending > 0))
	sent_before=$(request_count $CHAT)
	worker -P 8 --claim-idle 1 "$id"
	worker -P 8 --claim-idle 1 "$id"
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" $n
	assert_eq "$(jq -c 'select(.error)' "$T/out")" "" "no error lines"
	# No item with a stored line before the kill was requested again...
	sent_counts | awk '$1 > 1 { print "i" $2 }' | sort >"$T/twice"
	assert_eq "$(comm -12 "$T/finished" "$T/twice")" "" "finished items sent again"
	# ...and what was sent twice is only what the dead worker had in flight.
	(($(wc -l <"$T/twice") <= pending))
	(($(request_count $CHAT) <= sent_before + n - $(wc -l <"$T/finished")))
}

@test "redis: redis-server restarted mid-run (appendonly): nothing lost, nothing twice" {
	n=300
	items $n >"$T/in"
	ctl '{"set":{"latency_ms":40}}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 8 "$id"
	worker -P 8 "$id"
	wait_for_requests 50 $CHAT 30
	rcli shutdown >/dev/null 2>&1 || true
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
	sleep 1
	start_redis
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" $n
	assert_eq "$(jq -c 'select(.error)' "$T/out")" "" "no error lines"
}

@test "redis: --rpm 600 holds across 4 workers" {
	n=40
	items $n >"$T/in"
	id=$(ai-batch --queue "$Q" submit --rpm 600 <"$T/in")
	for w in 1 2 3 4; do worker -P 8 "$id"; done
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" $n
	# 600 a minute is one per 100 ms: 40 requests span at least 3.9 s.  Asserted
	# loosely (a late wake-up only makes it longer); four workers alone would take
	# a fraction of a second.
	span=$(requests $CHAT | jq -s '(map(.t) | max) - (map(.t) | min)')
	jq -en "$span >= 3500" >/dev/null || { echo "40 requests in $span ms" >&2; false; }
	# No second holds much more than the budget's 10 (a late arrival may bunch two;
	# four workers each spacing its own requests would put about 40 in one).
	busiest=$(requests $CHAT | jq -s 'map(.t) | sort | . as $t |
		[range(0; length) | . as $i | [$t[] | select(. >= $t[$i] and . < $t[$i] + 1000)] | length] | max')
	((busiest <= 15)) || { echo "$busiest requests in one second" >&2; false; }
}

@test "redis: a poison item becomes an error line, not an endless loop" {
	# An item whose worker dies each time: the second taker gives it up unsent.
	items 1 >"$T/in"
	ctl '{"push":[{"path":"/v1/chat/completions","latency_ms":20000}]}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 1 "$id"
	wait_for_requests 1 $CHAT 10
	kill -KILL "${WORKERS[0]}"
	wait "${WORKERS[0]}" 2>/dev/null || true
	WORKERS=()
	worker --max-deliveries 1 --claim-idle 0.2 "$id"
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$(jq -r .error.type <<<"$output")" poison
	assert_eq "$(request_count $CHAT)" 1 "not sent again"
	# An item that fails each time (500s) gets its last error after N deliveries.
	ctl '{"reset":true}'
	ctl '{"push":[{"path":"/v1/chat/completions","status":500,"times":100}]}'
	: >"$SERVER_LOG"
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker --retries 0 --max-deliveries 3 "$id"
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$(jq -r .error.status <<<"$output")" 500
	assert_eq "$(request_count $CHAT)" 3
	run --separate-stderr ai-batch --queue "$Q" wait "$id"
	assert_eq "$status" 1
}

@test "redis: bad URLs, an unreachable Redis, an unknown job, a missing --queue" {
	items 2 >"$T/in"
	run --separate-stderr ai-batch --queue "http://127.0.0.1:$RPORT" submit "$T/in"
	assert_eq "$status" 64
	assert_contains "$stderr" "not a Redis URL"
	run --separate-stderr ai-batch --queue "redis://127.0.0.1:99999/0" list
	assert_eq "$status" 64
	run --separate-stderr ai-batch --queue "rediss://127.0.0.1:$RPORT/0" list
	assert_eq "$status" 69
	assert_contains "$stderr" "TLS"
	port=$(free_port)
	run --separate-stderr ai-batch --queue "redis://127.0.0.1:$port/0" submit "$T/in"
	assert_eq "$status" 69
	assert_contains "$stderr" "cannot connect to redis://127.0.0.1:$port/0"
	run --separate-stderr ai-batch --queue "redis://127.0.0.1:$port/0" worker
	assert_eq "$status" 69
	run --separate-stderr ai-batch --queue "$Q" status 20990101T000000-abcdef
	assert_eq "$status" 66
	run --separate-stderr ai-batch --queue "$Q" status 'no such id!'
	assert_eq "$status" 64
	run --separate-stderr ai-batch worker
	assert_eq "$status" 64
	assert_contains "$stderr" "--queue"
	run --separate-stderr ai-batch --queue "$Q" submit "$T/missing"
	assert_eq "$status" 66
	# Duplicate ids are refused before anything is stored.
	printf '{"id":"a","text":"x"}\n{"id":"a","text":"y"}\n' >"$T/dup"
	run --separate-stderr ai-batch --queue "$Q" submit "$T/dup"
	assert_eq "$status" 65
	assert_eq "$(rcli zcard ai-batch:jobs)" 0
}

@test "redis: the password comes from the URL or redis_password_cmd, never stored" {
	stop_redis
	RPASS="pw-$RANDOM$RANDOM"
	start_redis --requirepass "$RPASS"
	items 3 >"$T/in"
	run --separate-stderr ai-batch --queue "$Q" submit "$T/in"
	assert_eq "$status" 78
	assert_contains "$stderr" "redis_password_cmd"
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'redis_password_cmd = echo wrong\n' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-batch --queue "$Q" submit "$T/in"
	assert_eq "$status" 78
	printf 'redis_password_cmd = echo %s\n' "$RPASS" >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-batch --queue "$Q" submit "$T/in"
	assert_eq "$status" 0
	id=$output
	rm "$XDG_CONFIG_HOME/ai/config"
	# From the environment, as a URL with the password.
	AI_BATCH_QUEUE="redis://:$RPASS@127.0.0.1:$RPORT/0" run --separate-stderr ai-batch worker --no-cache "$id"
	assert_eq "$status" 0
	AI_BATCH_QUEUE="redis://:$RPASS@127.0.0.1:$RPORT/0" run --separate-stderr ai-batch results "$id"
	assert_eq "$(wc -l <<<"$output")" 3
	assert_not_contains "$(rcli --scan | xargs -n1 rcli dump 2>/dev/null)" "$RPASS"
	# In argv it works, with a warning.
	run --separate-stderr ai-batch --queue "redis://:$RPASS@127.0.0.1:$RPORT/0" status "$id"
	assert_eq "$status" 0
	assert_contains "$stderr" "shows in ps"
}

@test "redis: cancel stops the workers taking a job's items" {
	items 50 >"$T/in"
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	run --separate-stderr ai-batch --queue "$Q" cancel "$id"
	assert_eq "$status" 0
	worker "$id"
	wait_workers
	assert_eq "$(request_count $CHAT)" 0
	run --separate-stderr ai-batch --queue "$Q" wait "$id"
	assert_eq "$status" 75
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 75
}

@test "redis: delete removes every key of a job; one not over is refused until cancelled" {
	items 20 >"$T/in"
	done_id=$(ai-batch --queue "$Q" submit --rpm 60000 <"$T/in")
	worker -P 4 "$done_id"
	wait_workers
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	# Every kind of key a job has: its hash, stream and group, ids, lines, tries, bucket.
	assert_eq "$(rcli --scan --pattern "ai-batch:$done_id*" | sort | tr '\n' ' ')" \
		"ai-batch:$done_id ai-batch:$done_id:items ai-batch:$done_id:keys ai-batch:$done_id:res ai-batch:$done_id:rl ai-batch:$done_id:tries "
	run --separate-stderr ai-batch --queue "$Q" delete "$id"
	assert_eq "$status" 75
	assert_contains "$stderr" "job '$id' is queued: cancel it first (ai-batch cancel --queue URL $id)"
	assert_eq "$(rcli exists "ai-batch:$id" "ai-batch:$id:items" "ai-batch:$id:keys")" 3 "nothing deleted"
	# --dry-run is no delete: refused before Redis is asked, the job stays.
	ai-batch --queue "$Q" cancel "$id"
	run --separate-stderr ai-batch --queue "$Q" delete --dry-run "$id"
	assert_eq "$status" 64
	assert_contains "$stderr" "delete has no --dry-run"
	assert_eq "$(rcli exists "ai-batch:$id" "ai-batch:$id:items" "ai-batch:$id:keys")" 3 "deleted by --dry-run"
	run --separate-stderr ai-batch --queue "$Q" delete "$id"
	assert_eq "$status" 0
	run --separate-stderr ai-batch --queue "$Q" delete "$done_id"
	assert_eq "$status" 0
	assert_eq "$(rcli --scan --pattern 'ai-batch:*')" "" "keys left"
	assert_eq "$(ai-batch --queue "$Q" list)" ""
	run --separate-stderr ai-batch --queue "$Q" delete "$id"
	assert_eq "$status" 66
	assert_contains "$stderr" "no job '$id'"
	run --separate-stderr ai-batch --queue "$Q" delete 'ai-batch:*'
	assert_eq "$status" 64
	# A cancel that comes after the delete brings back no key of the job.
	run --separate-stderr ai-batch --queue "$Q" cancel "$id"
	assert_eq "$status" 66
	assert_contains "$stderr" "no job '$id'"
	assert_eq "$(rcli --scan --pattern 'ai-batch:*')" "" "keys made again by cancel"
}

@test "redis: delete --force mid-run: the worker drops the job, sends no more of it, recreates no key, goes on" {
	items 300 >"$T/in"
	ctl '{"set":{"latency_ms":150}}'
	id=$(ai-batch --queue "$Q" submit --rpm 60000 <"$T/in")
	worker -v -P 4    # every job, until SIGTERM
	for ((i = 0; i < 200; i++)); do
		(($(rcli hlen "ai-batch:$id:res") >= 8)) && break
		sleep 0.05
	done
	run --separate-stderr ai-batch --queue "$Q" delete "$id"
	assert_eq "$status" 75
	assert_contains "$stderr" "is running: cancel it first"
	run --separate-stderr ai-batch --queue "$Q" delete --force "$id"
	assert_eq "$status" 0
	n=$(request_count $CHAT)
	sleep 1
	# At most what was in flight and what the bucket had granted (-P each).
	(($(request_count $CHAT) <= n + 8)) || { echo "sent $n, then $(request_count $CHAT)" >&2; false; }
	assert_eq "$(rcli --scan --pattern 'ai-batch:*')" "" "keys the worker made again"
	assert_contains "$(cat "$T/worker.err")" "job $id was deleted"
	# The worker goes on with the next job.
	ctl '{"set":{"latency_ms":0}}'
	id2=$(ai-batch --queue "$Q" submit <<<'{"id":"x","text":"y"}')
	run --separate-stderr timeout 10 ai-batch --queue "$Q" wait "$id2"
	assert_eq "$status" 0
	kill -TERM "${WORKERS[0]}"
	wait "${WORKERS[0]}" || true
	WORKERS=()
	assert_eq "$(rcli --scan --pattern "ai-batch:$id*")" ""
}

@test "redis: a server's Retry-After met by one worker pauses the others" {
	items 120 >"$T/in"
	# 4 requests in flight every 100 ms: without the pause, 3 s of sending.
	ctl '{"set":{"latency_ms":100}}'
	ctl '{"push":[{"path":"/v1/chat/completions","status":429,"headers":{"Retry-After":"3"}}]}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 2 "$id"
	worker -P 2 "$id"
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" 120
	# The 429 was the first request; after the few already in flight, no request
	# of either worker reached the server until its 3 s were over (asserted
	# loosely: from 0.8 s to 2.5 s after it).
	t0=$(requests $CHAT | head -n 1 | jq .t)
	early=$(requests $CHAT | jq --argjson t0 "$t0" 'select(.t > $t0 + 800 and .t < $t0 + 2500)' | jq -s length)
	assert_eq "$early" 0 "requests sent during the pause"
	(($(request_count $CHAT) == 121))
}

@test "redis: --schema @FILE is stored with the job, for workers that cannot read the file" {
	ctl '{"set":{"json_from_prompt":true}}'
	for i in 1 2 3; do printf '{"id":"%d","text":"item: {\\"n\\": %d}"}\n' "$i" "$i"; done >"$T/in"
	printf '{"id":"4","text":"no json"}\n' >>"$T/in"
	printf 'n int\n' >"$T/schema"
	id=$(ai-batch --queue "$Q" submit --schema "@$T/schema" "$T/in")
	rm "$T/schema"
	worker "$id"
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$(jq -c '.data // .error.type' <<<"$output" | tr '\n' ' ')" \
		'{"n":1} {"n":2} {"n":3} "schema_invalid" '
	# A schema that does not parse is refused at submit, not by every worker.
	run --separate-stderr ai-batch --queue "$Q" submit --schema 'n nosuchtype' "$T/in"
	assert_eq "$status" 64
	assert_eq "$(rcli zcard ai-batch:jobs)" 1
}

@test "redis: --queue without a command is refused, not run locally" {
	items 2 >"$T/in"
	run --separate-stderr ai-batch --queue "$Q" "$T/in"
	assert_eq "$status" 64
	assert_contains "$stderr" "--queue wants a command"
	assert_eq "$(request_count $CHAT)" 0
}

@test "redis: a worker without an id serves every job until SIGTERM" {
	items 20 >"$T/in"
	a=$(ai-batch --queue "$Q" submit <"$T/in")
	b=$(ai-batch --queue "$Q" submit -m other-model <"$T/in")
	worker -P 4
	timeout 60 ai-batch --queue "$Q" wait "$a"
	timeout 60 ai-batch --queue "$Q" wait "$b"
	assert_eq "$(requests $CHAT | jq -r .body.model | sort | uniq -c | awk '{print $1, $2}' | tr '\n' ' ')" \
		"20 gpt-4o-mini 20 other-model "
	kill -TERM "${WORKERS[0]}"
	rc=0
	wait "${WORKERS[0]}" || rc=$?
	WORKERS=()
	assert_eq "$rc" 143 "killed by its SIGTERM"
	assert_eq "$(rcli scard ai-batch:active)" 0 "no job left active"
}

@test "redis: a long run keeps its items, so an idle-time claim does not take them twice" {
	items 8 >"$T/in"
	# Answers take 2.5 s, more than twice the idle time after which items are taken
	# over; a worker refreshes its items every third of that time.
	ctl '{"set":{"latency_ms":2500}}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 8 --claim-idle 1 "$id"
	wait_for_requests 8 $CHAT 20
	worker -P 8 --claim-idle 1 "$id"
	wait_workers
	assert_eq "$(request_count $CHAT)" 8 "no item taken over while its worker was at it"
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" 8
}

# ---- what a worker takes from Redis (the review's fixes) ----

@test "redis: a job's options are an allowlist: a refused job's items get error lines, the worker goes on" {
	items 3 >"$T/in"
	good=$(ai-batch --queue "$Q" submit -m test-model <"$T/in")
	# Jobs written by anyone who can write to Redis: options a worker must not
	# take (its key sent elsewhere, its files read, an exit on every take).
	bad=()
	for args in '["--base-url","http://127.0.0.1:1/v1"]' '["-T","@/etc/passwd"]' '["--version"]' \
		'["-h"]' '["--temperature","7"]' '["--model"]' '["--profile","x"]' '{"a":1}' \
		'["--option","model=x"]' '["--schema-saved","not json"]' '[1,2]'; do
		id=$(ai-batch --queue "$Q" submit <"$T/in")
		rcli hset "ai-batch:$id" args "$args" >/dev/null
		bad+=("$id")
	done
	worker -P 2
	for id in "${bad[@]}" "$good"; do
		run --separate-stderr timeout 60 ai-batch --queue "$Q" wait "$id"
		assert_eq "$status" $([[ $id == "$good" ]] && echo 0 || echo 1) "wait $id"
	done
	for id in "${bad[@]}"; do
		run --separate-stderr ai-batch --queue "$Q" results "$id"
		assert_eq "$(jq -r .error.type <<<"$output" | sort | uniq -c | awk '{print $1, $2}')" "3 job_refused" "$id"
	done
	assert_contains "$(ai-batch --queue "$Q" results "${bad[0]}" | head -n 1 | jq -r .error.message)" "--base-url"
	assert_eq "$(request_count $CHAT)" 3 "only the good job's items were sent"
	assert_eq "$(requests $CHAT | jq -r .body.model | sort -u)" "test-model"
	kill -TERM "${WORKERS[0]}"
	rc=0
	wait "${WORKERS[0]}" || rc=$?
	WORKERS=()
	assert_eq "$rc" 143 "the worker served every job until its SIGTERM"
}

@test "redis: -T is stored expanded, for workers that have not the template" {
	TD=$XDG_CONFIG_HOME/ai/templates
	mkdir -p "$TD"
	printf 'system: Classify.\ntemperature: 0.1\nmax_tokens: 5\n\nAs {{kind}}: {{input}}' >"$TD/cls"
	printf 'Say {{input}}' >"$T/say.tmpl"
	items 2 >"$T/in"
	a=$(ai-batch --queue "$Q" submit -T cls --param kind=sentiment "$T/in")
	b=$(ai-batch --queue "$Q" submit -T "@$T/say.tmpl" "$T/in")
	rm -r "$TD" "$T/say.tmpl"
	assert_not_contains "$(rcli hget "ai-batch:$a" args)" '"-T"'
	worker "$a"
	worker "$b"
	wait_workers
	assert_eq "$(requests $CHAT | jq -r '.body.messages[-1].content' | sort | tr '\n' '|')" \
		"As sentiment: echo-me 1|As sentiment: echo-me 2|Say echo-me 1|Say echo-me 2|"
	r=$(requests $CHAT | jq -c 'select(.body.messages[-1].content | startswith("As"))' | head -n 1)
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "Classify."
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0.1
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 5
}

@test "redis: a stream entry without a line (written by another hand) gets an error line, the rest run" {
	items 3 >"$T/in"
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	rcli xadd "ai-batch:$id:items" '*' k bogus >/dev/null
	rcli xadd "ai-batch:$id:items" '*' k i9 line '{"id":"i9","text":"echo-me 9"}' >/dev/null
	rcli rpush "ai-batch:$id:keys" bogus i9 >/dev/null
	rcli hincrby "ai-batch:$id" total 2 >/dev/null
	run timeout 60 ai-batch --queue "$Q" worker --no-cache -P 8 "$id"
	assert_eq "$status" 0
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	assert_eq "$(jq -r '.id + " " + (.output // .error.type)' <<<"$output" | tr '\n' '|')" \
		"i1 echo: echo-me 1|i2 echo: echo-me 2|i3 echo: echo-me 3|bogus invalid_input|i9 echo: echo-me 9|"
}

@test "redis: a worker's consumer name holds random bytes, so containers with one hostname and pid differ" {
	items 2 >"$T/in"
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker "$id"
	wait_workers
	name=$(rcli xinfo consumers "ai-batch:$id:items" workers | sed -n 2p)
	[[ $name =~ ^.+:[0-9]+:[0-9a-f]{16}$ ]] || { echo "consumer '$name'" >&2; false; }
}

@test "redis: redis://USER:PASS@ logs in as that ACL user, the password percent-decoded; never echoed" {
	stop_redis
	RPASS="pw-$RANDOM$RANDOM"
	start_redis --requirepass "$RPASS"
	rcli acl setuser alice on '>s3:cr@t/x%' '~*' '&*' +@all >/dev/null
	items 2 >"$T/in"
	AI_BATCH_QUEUE="redis://alice:s3%3Acr%40t%2Fx%25@127.0.0.1:$RPORT/0" run --separate-stderr \
		ai-batch submit "$T/in"
	assert_eq "$status" 0 "$stderr"
	id=$output
	AI_BATCH_QUEUE="redis://alice:wrong@127.0.0.1:$RPORT/0" run --separate-stderr ai-batch status "$id"
	assert_eq "$status" 78
	assert_not_contains "$stderr" wrong
	# The user's password from redis_password_cmd.
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'redis_password_cmd = printf %%s %q\n' 's3:cr@t/x%' >"$XDG_CONFIG_HOME/ai/config"
	AI_BATCH_QUEUE="redis://alice@127.0.0.1:$RPORT/0" run --separate-stderr ai-batch status "$id"
	assert_eq "$status" 0 "$stderr"
	rm "$XDG_CONFIG_HOME/ai/config"
	AI_BATCH_QUEUE="redis://alice@127.0.0.1:$RPORT/0" run --separate-stderr ai-batch status "$id"
	assert_eq "$status" 78
	assert_contains "$stderr" "without a password"
	# A URL of another scheme is refused without showing its password.
	run --separate-stderr ai-batch --queue "http://u:hunter2@127.0.0.1:$RPORT/0" list
	assert_eq "$status" 64
	assert_contains "$stderr" "not a Redis URL"
	assert_not_contains "$stderr" hunter2
	run --separate-stderr ai-batch --queue "redis://:a%00b@127.0.0.1:$RPORT/0" list
	assert_eq "$status" 64
}

@test "redis: SCRIPT FLUSH mid-run: the worker loads its scripts again and goes on" {
	items 30 >"$T/in"
	ctl '{"set":{"latency_ms":100}}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	worker -P 2 "$id"
	wait_for_requests 4 $CHAT 30
	rcli script flush >/dev/null
	wait_workers
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	assert_eq "$status" 0
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" 30
	assert_eq "$(request_count $CHAT)" 30 "nothing sent twice"
}

@test "redis: a submit that fails half way (Redis out of memory) leaves no keys behind" {
	for ((i = 0; i < 4000; i++)); do printf '{"id":"i%d","text":"%0200d"}\n' "$i" 0; done >"$T/in"
	rcli config set maxmemory 2mb >/dev/null
	rcli config set maxmemory-policy noeviction >/dev/null
	run --separate-stderr ai-batch --queue "$Q" submit "$T/in"
	assert_eq "$status" 69
	assert_contains "$stderr" "OOM"
	assert_eq "$(rcli --scan --pattern 'ai-batch:*')" "" "keys left"
}

@test "redis: an item requeued and taken again in the same run is run next, not after the idle time" {
	# An item fails once (500, no retries): it goes back to the end of the stream and
	# the same run takes it again; it used to stay pending until --claim-idle
	# (60 s) had passed, with one more delivery counted for it.
	items 6 >"$T/in"
	ctl '{"set":{"latency_ms":300}}'
	ctl '{"push":[{"path":"/v1/chat/completions","status":500}]}'
	id=$(ai-batch --queue "$Q" submit <"$T/in")
	run timeout 30 ai-batch --queue "$Q" worker --no-cache --retries 0 -P 2 "$id"
	assert_eq "$status" 0 "done well before the 60 s idle time"
	run --separate-stderr ai-batch --queue "$Q" results "$id"
	printf '%s\n' "$output" >"$T/out"
	assert_each_once "$T/out" 6
	assert_eq "$(jq -c 'select(.error)' "$T/out")" "" "no error lines"
	assert_eq "$(rcli hvals "ai-batch:$id:tries" | awk '{ s += $1 } END { print s }')" 7 "one delivery a request"
	assert_eq "$(request_count $CHAT)" 7
}
