#!/bin/sh
# tests/bench/batch-redis.sh O BIN - ai-batch workers sharing a job in Redis
# (ai-batch(1), SCALING OUT): N items (default 4,000) against the test server
# answering after 50 ms, with 1, 2 and 4 workers at -P 64 each, so latency
# allows 1,280 requests a second per worker.  Figures: throughput as a share
# of that ideal, and Redis round trips per item (issue 13's goal: <= 3), as
# the workers count them.  All on one machine: the workers share its cores
# with the test server and Redis, so 4 workers on 2 cores say more about the
# machine than about the queue.
O=${1:-build}
BIN=${2:-bin}
N=${N:-4000}
P=${P:-64}
LAT=${LAT:-50}
for t in redis-server redis-cli; do
	command -v $t >/dev/null || { echo "batch-redis bench: needs $t (apt-get install redis-server)"; exit 0; }
done
[ -x "$O/tests/ai-testserver" ] && [ -x "$BIN/ai-batch" ] || { echo "batch-redis bench: run make first"; exit 0; }

. "$(dirname "$0")/lib.sh"
d=$(mktemp -d)
rpid=
trap 'bench_stop; [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
bench_home "$d"
bench_server "$d" || { echo "batch-redis bench: the test server did not start"; exit 0; }
curl -s --noproxy '*' -d "{\"set\":{\"latency_ms\":$LAT}}" "http://127.0.0.1:$PORT/_control" >/dev/null

# Redis on a free port below the ephemeral range, in a private directory.
mkdir "$d/redis"
i=0
while [ $i -lt 50 ]; do
	rport=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
	redis-server --bind 127.0.0.1 --port "$rport" --dir "$d/redis" --save '' --appendonly no \
		--logfile "$d/redis/log" </dev/null >/dev/null 2>&1 &
	rpid=$!
	j=0
	while [ $j -lt 200 ] && [ "$(redis-cli -p "$rport" ping 2>/dev/null)" != PONG ]; do
		kill -0 "$rpid" 2>/dev/null || break
		sleep 0.01
		j=$((j + 1))
	done
	[ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
	rpid=
	i=$((i + 1))
done
[ -n "$rpid" ] || { echo "batch-redis bench: redis-server did not start"; exit 0; }
export AI_BATCH_QUEUE="redis://127.0.0.1:$rport/0"

awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "{\"id\":\"i%d\",\"text\":\"item number %d, classify it\"}\n", i, i }' >"$d/in.jsonl"
echo "batch-redis bench: $N items, -P $P a worker, server latency $LAT ms ($(nproc) cores)"
# The last row: one worker under a shared --rpm too high to bind, so that
# every request takes the token bucket (one more round trip an item).
for w in 1 2 4 1r; do
	rpm=
	[ "$w" = 1r ] && { w=1; rpm="--rpm 1000000"; }
	# shellcheck disable=SC2086
	s0=$(date +%s.%N)
	id=$("$BIN/ai-batch" submit $rpm "$d/in.jsonl") || { echo "batch-redis bench: submit failed"; exit 0; }
	[ "$w" = 1 ] && [ -z "$rpm" ] &&
		awk -v n="$N" -v s0="$s0" -v s1="$(date +%s.%N)" \
			'BEGIN { printf "submit         %7.0f items/s  (%.2f s)\n", n / (s1 - s0), s1 - s0 }'
	t0=$(date +%s.%N)
	k=0
	pids=
	while [ $k -lt $w ]; do
		"$BIN/ai-batch" worker --no-cache -P "$P" "$id" 2>"$d/w$k.err" &
		pids="$pids $!"
		k=$((k + 1))
	done
	# shellcheck disable=SC2086
	wait $pids
	t1=$(date +%s.%N)
	lines=$("$BIN/ai-batch" results "$id" | wc -l)
	errs=$("$BIN/ai-batch" results "$id" | grep -c '"error"')
	cat "$d"/w*.err | awk -v w="$w" -v n="$N" -v p="$P" -v l="$LAT" -v t0="$t0" -v t1="$t1" \
		-v lines="$lines" -v errs="$errs" -v rpm="$rpm" '
		/round trips/ { for (f = 1; f <= NF; f++) if ($f == "Redis") rt += $(f - 1) }
		END {
			wall = t1 - t0; rps = n / wall; ideal = w * p * 1000 / l
			printf "%d worker%s  %7.0f req/s  %5.1f%% of %d  %.2f Redis round trips/item  (%.2f s, %d lines, %d errors)%s\n",
				w, (w > 1 ? "s" : " "), rps, 100 * rps / ideal, ideal, rt / n, wall, lines, errs,
				(rpm != "" ? "  " rpm : "")
		}'
	rm -f "$d"/w*.err
done
exit 0
