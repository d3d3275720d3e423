#!/usr/bin/env bats
# ai-usage: the ledger as a table.  Most tests fill a ledger with known
# rows (sqlite3, on the schema a real call created) and check the sums.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	# Days are local days: pin them, so that the known rows fall where the test says.
	export TZ=UTC
	DB=$XDG_DATA_HOME/ai/usage.db
}
teardown() { stop_server; }

# make_ledger: an empty ledger at $DB, made by a real call (so the schema is the code's own).
make_ledger() {
	start_server
	ai-summarize <<<"make the ledger" >/dev/null || return 1
	# The rollups go too: the ledger is then as empty as a new one.
	sqlite3 "$DB" "DELETE FROM calls; DELETE FROM rollup; DELETE FROM rollup_lat; DELETE FROM spend;
		DELETE FROM rollup_day; DELETE FROM rollup_lat_day; UPDATE ledger_meta SET v = 0 WHERE k IN ('folded', 'days_done')"
}

# row DATE PROGRAM MODEL IN OUT LATENCY CACHED COST SAVED: inserts one call at DATE (UTC),
# made to the endpoint host $HOST_ (api.example.com unless set).
row() {
	local ts
	ts=$(($(date -u -d "$1" +%s) * 1000))
	sqlite3 "$DB" "INSERT INTO calls(ts_ms, program, model, host, prompt_tokens, completion_tokens,
		latency_ms, status, cached, cost, saved)
		VALUES($ts, $2, $3, '${HOST_:-api.example.com}', $4, $5, $6, 200, $7, $8, $9)"
}

# known_rows: six calls over three days of January 2024; see the sums in the tests.
known_rows() {
	make_ledger
	row '2024-01-10 09:00' "'ai-summarize'" "'m1'" 100 10 100 0 0.25 NULL
	row '2024-01-10 10:00' "'ai-summarize'" "'m1'" 100 10 0 1 0 0.25
	row '2024-01-11 12:00' "'ai-ask'" "'m2'" 1000 200 300 0 1.5 NULL
	row '2024-01-11 23:59' "'ai-ask'" "'m2'" 1000 200 500 0 1.5 NULL
	row '2024-01-12 00:00' "'ai-index'" "'emb'" 50 NULL 20 0 NULL NULL
	row '2024-01-12 18:00' "'ai-summarize'" "NULL" 200 20 200 0 0.5 NULL
}

RANGE=(--since 2024-01-10 --until 2024-01-12)

@test "usage: the known rows, per program: requests/day, latency, tokens, cost/day, hit rate, saved" {
	known_rows
	run --separate-stderr ai-usage "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	# TOKENS_IN and TOKENS_OUT are the billed calls' (they add up with the cost); the hit's
	# 100 + 10 tokens are in HIT_TOKENS.
	want=$(printf '%s\t' PROGRAM REQ/DAY AVG_MS P95_MS TOKENS_IN TOKENS_OUT COST/DAY HIT% SAVED HIT_TOKENS CACHED_IN)
	want=${want%$'\t'}$'\n'
	want+=$'ai-ask\t0.7\t400\t500\t2000\t400\t$1.0000\t0%\t$0.0000\t0\t-\n'
	want+=$'ai-index\t0.3\t20\t20\t50\t0\t-\t0%\t$0.0000\t0\t-\n'
	want+=$'ai-summarize\t1\t100\t200\t300\t30\t$0.2500\t33.3%\t$0.2500\t110\t-\n'
	want+=$'total\t2\t187\t500\t2350\t430\t$1.2500*\t16.7%\t$0.2500\t110\t-\n'
	want+=$'projected month: $37.5000 (30 x the average of 3 days)\n'
	want+='* 1 call of models without a price is not counted; add price.MODEL to the config (see ai.conf(5))'
	assert_eq "$output" "$want" table
}

@test "usage: --json gives every row's exact sums, null for an unknown cost" {
	known_rows
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(wc -l <<<"$output")" 4 lines
	a=$(sed -n 1p <<<"$output")
	assert_eq "$(jq -c '[.program, .total, .days, .requests, .hits, .tokens_in, .tokens_out, .cost, .cost_per_day, .avg_ms, .p95_ms, .unknown_cost]' <<<"$a")" \
		'["ai-ask",false,3,2,0,2000,400,3,1,400,500,0]'
	i=$(sed -n 2p <<<"$output")
	assert_eq "$(jq -c '[.program, .requests, .cost, .cost_per_day, .unknown_cost, .saved, .tokens_out]' <<<"$i")" \
		'["ai-index",1,null,null,1,0,0]'
	s=$(sed -n 3p <<<"$output")
	assert_eq "$(jq -c '[.program, .requests, .hits, .hit_rate, .cost, .saved, .avg_ms, .p95_ms]' <<<"$s")" \
		'["ai-summarize",3,1,0.3333333333,0.75,0.25,100,200]'
	assert_eq "$(jq -c '[.tokens_in, .tokens_out, .hit_tokens_in, .hit_tokens_out]' <<<"$s")" '[300,30,100,10]'
	t=$(sed -n 4p <<<"$output")
	assert_eq "$(jq -c '[.program, .total, .days, .requests, .requests_per_day, .hits, .tokens_in, .tokens_out, .cost, .cost_per_day, .unknown_cost, .saved, .projected_month, .p95_ms]' <<<"$t")" \
		'[null,true,3,6,2,1,2350,430,3.75,1.25,1,0.25,37.5,500]'
	assert_eq "$(jq -c '[.hit_tokens_in, .hit_tokens_out, .projected_from_days]' <<<"$t")" '[100,10,3]'
	assert_eq "$(jq -r '.avg_ms' <<<"$t")" 186.7
}

@test "usage: --by model and --by day" {
	known_rows
	run ai-usage --by model "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(head -1 <<<"$output" | cut -f1)" MODEL
	assert_eq "$(cut -f1,2,7 <<<"$output" | sed -n '2,6p' | tr '\t\n' ' |')" \
		'- 0.3 $0.1667|emb 0.3 -|m1 0.7 $0.0833|m2 0.7 $1.0000|total 2 $1.2500*|'
	run ai-usage --by day --json "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.total | not) | [.day, .days, .requests, .requests_per_day, .cost, .cost_per_day, .hit_rate]' <<<"$output" | tr '\n' ' ')" \
		'["2024-01-10",1,2,2,0.25,0.25,0.5] ["2024-01-11",1,2,2,3,3,0] ["2024-01-12",1,2,2,0.5,0.5,0] '
	run ai-usage --by day "${RANGE[@]}"
	assert_eq "$(sed -n 2p <<<"$output" | cut -f1,2,7,8)" $'2024-01-10\t2\t$0.2500\t50%'
	assert_eq "$(tail -2 <<<"$output" | head -1)" 'projected month: $37.5000 (30 x the average of 3 days)'
}

@test "usage: --since and --until select whole local days" {
	known_rows
	run ai-usage --json --since 2024-01-11 --until 2024-01-11
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.days, .requests, .cost, .tokens_in]')" '[1,2,3,2000]'
	run ai-usage --json --since 2024-01-11 --until 2024-01-12
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.days, .requests, .cost]')" '[2,4,3.5]'
	# Without --until the range ends today: the per-day figures spread over every day since.
	run ai-usage --json --since 2024-01-10
	days=$(tail -1 <<<"$output" | jq .days)
	((days > 3)) || { echo "days=$days" >&2; false; }
	# Another timezone moves the day boundaries: 23:59 UTC on the 11th is the 12th in Tokyo.
	TZ=Asia/Tokyo run ai-usage --json --by day --since 2024-01-12 --until 2024-01-12
	assert_eq "$(head -1 <<<"$output" | jq -c '[.day, .requests]')" '["2024-01-12",2]'
}

@test "usage: Nd and today count from now; calls of today only give one day" {
	make_ledger
	now=$(date -u '+%Y-%m-%d %H:%M:%S')
	row "$now" "'ai-stream'" "'gpt-4o-mini'" 10 5 40 0 0.002 NULL
	row "$now" "'ai-stream'" "'gpt-4o-mini'" 10 5 60 1 0 0.002
	row '2024-01-10 09:00' "'old'" "'m'" 1 1 1 0 9 NULL
	for since in 7d 1d today; do
		run --separate-stderr ai-usage --json --since $since
		assert_eq "$status" 0
		assert_eq "$(head -1 <<<"$output" | jq -c '[.program, .days, .requests, .cost, .saved, .hit_rate]')" \
			'["ai-stream",1,2,0.002,0.002,0.5]' "--since $since"
		assert_eq "$(wc -l <<<"$output")" 2 "lines with --since $since"
	done
	run ai-usage --since today
	assert_eq "$(sed -n 2p <<<"$output" | cut -f1,2,3,7,8,9)" $'ai-stream\t2\t50\t$0.0020\t50%\t$0.0020'
	# One afternoon's calls make a rough guess of a month, and the line says so.
	assert_eq "$(tail -1 <<<"$output")" 'projected month: $0.0600 (30 x the average of 1 day, today so far)'
}

@test "usage: what real calls wrote: misses, hits and their cost" {
	start_server
	ai-summarize -m gpt-4o-mini <<<"one" >/dev/null
	ai-summarize -m gpt-4o-mini <<<"one" >/dev/null
	ai-summarize -m unpriced-model <<<"two" >/dev/null
	# An unpriced model at a loopback endpoint (the test server) costs 0, not unknown.
	run --separate-stderr ai-usage --json --by model
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.model == "gpt-4o-mini") | [.requests, .hits, .hit_rate]' <<<"$output")" '[2,1,0.5]'
	# The cost is what the price table makes of the tokens the server reported.
	assert_eq "$(jq -c 'select(.model == "gpt-4o-mini") | [.cost > 0, .saved == .cost]' <<<"$output")" '[true,true]'
	assert_eq "$(jq -c 'select(.model == "unpriced-model") | [.requests, .cost, .unknown_cost]' <<<"$output")" '[1,0,0]'
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .hits, .unknown_cost]')" '[3,1,0]'
	assert_eq "$(sqlite3 "$DB" "SELECT cost FROM calls WHERE model = 'unpriced-model'")" 0.0
	# ai-usage made no request of its own.
	assert_eq "$(request_count)" 2
}

@test "usage: aligned columns on a terminal" {
	command -v script >/dev/null || skip "script(1) is not installed"
	known_rows
	run on_tty "ai-usage --since 2024-01-10 --until 2024-01-12" </dev/null
	assert_eq "$status" 0
	out=${output//$'\r'/}
	# Text left, numbers right, two spaces between columns, no tabs.
	assert_eq "$(sed -n 1p <<<"$out")" "PROGRAM       REQ/DAY  AVG_MS  P95_MS  TOKENS_IN  TOKENS_OUT  COST/DAY   HIT%    SAVED  HIT_TOKENS  CACHED_IN"
	assert_eq "$(sed -n 2p <<<"$out")" 'ai-ask            0.7     400     500       2000         400   $1.0000     0%  $0.0000           0          -'
	assert_eq "$(sed -n 5p <<<"$out")" 'total               2     187     500       2350         430  $1.2500*  16.7%  $0.2500         110          -'
	assert_not_contains "$out" $'\t'
}

@test "usage: the billed tokens and the cost add up; what the cache served is apart" {
	start_server
	ai-summarize -m gpt-4o-mini <<<"the same text" >/dev/null
	ai-summarize -m gpt-4o-mini <<<"the same text" >/dev/null
	ai-summarize -m gpt-4o-mini <<<"the same text" >/dev/null
	assert_eq "$(request_count)" 1
	run --separate-stderr ai-usage --json
	assert_eq "$status" 0
	t=$(tail -1 <<<"$output")
	read -r pin pout < <(sqlite3 -separator ' ' "$DB" 'SELECT prompt_tokens, completion_tokens FROM calls WHERE NOT cached')
	# One call was billed: its tokens, not three times them, are TOKENS_IN/OUT ...
	assert_eq "$(jq -c '[.requests, .hits, .tokens_in, .tokens_out, .hit_tokens_in, .hit_tokens_out]' <<<"$t")" \
		"[3,2,$pin,$pout,$((2 * pin)),$((2 * pout))]"
	# ... so that they times gpt-4o-mini's price (0.15 and 0.60 per million) are the cost.
	assert_eq "$(jq --argjson i "$pin" --argjson o "$pout" '(.cost - ($i * 0.15 + $o * 0.6) / 1e6 | fabs) < 1e-9' <<<"$t")" true
	run ai-usage
	assert_eq "$(head -1 <<<"$output" | cut -f5,6,10)" $'TOKENS_IN\tTOKENS_OUT\tHIT_TOKENS'
	assert_eq "$(tail -2 <<<"$output" | head -1 | cut -f1,5,6,10)" "total	$pin	$pout	$((2 * (pin + pout)))"
}

@test "usage: -m MODEL keeps that model's calls; a model with no calls says so and lists those there" {
	known_rows
	run --separate-stderr ai-usage --json -m m2 "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(jq -c '[.program, .requests, .cost]' <<<"$output" | tr '\n' ' ')" '["ai-ask",2,3] [null,2,3] '
	run --separate-stderr ai-usage --model m1 --by day "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(cut -f1,2 <<<"$output" | sed -n '2,3p' | tr '\t\n' ' |')" '2024-01-10 2|total 0.7|'
	run --separate-stderr ai-usage -m nosuch "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_eq "$stderr" "ai-usage: no calls of model 'nosuch' recorded in '$DB' in that range; the models there: '-', 'emb', 'm1', 'm2'"
	run --separate-stderr ai-usage -q -m nosuch --json
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_eq "$stderr" ""
	# AI_MODEL is the model to call elsewhere, not a filter here.
	AI_MODEL=m1 run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$(tail -1 <<<"$output" | jq .requests)" 6
	run ai-usage --help
	assert_contains "$output" "-m MODEL keeps only the calls of that model"
}

@test "usage: --since yesterday and --until yesterday are that local day" {
	make_ledger
	today=$(date -u '+%Y-%m-%d 12:00')
	yday=$(date -u -d yesterday '+%Y-%m-%d 12:00')
	before=$(date -u -d '2 days ago' '+%Y-%m-%d 12:00')
	row "$today" "'ai-ask'" "'m'" 1 1 1 0 1 NULL
	row "$yday" "'ai-ask'" "'m'" 1 1 1 0 2 NULL
	row "$before" "'ai-ask'" "'m'" 1 1 1 0 4 NULL
	run --separate-stderr ai-usage --json --since yesterday
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .cost, .days]')" '[2,3,2]'
	run --separate-stderr ai-usage --json --since yesterday --until yesterday
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .cost, .days]')" '[1,2,1]'
	run --separate-stderr ai-usage --until yesterday --since today
	assert_eq "$status" 64
	run ai-usage --help
	assert_contains "$output" "today, yesterday, or Nd"
}

@test "usage: every sum of money in the table has one format; tiny sums say <\$0.0001" {
	make_ledger
	row '2024-01-10 09:00' "'a'" "'m'" 1 1 1 0 0.00011 NULL
	row '2024-01-10 09:00' "'b'" "'m'" 1 1 1 0 0.0001 NULL
	row '2024-01-10 09:00' "'c'" "'m'" 1 1 1 0 0.0000042 NULL
	row '2024-01-10 09:00' "'d'" "'m'" 1 1 1 0 12.5 NULL
	row '2024-01-10 09:00' "'e'" "'m'" 1 1 1 1 0 0.0000042
	run --separate-stderr ai-usage --since 2024-01-10 --until 2024-01-10
	assert_eq "$status" 0
	assert_eq "$(cut -f1,7,9 <<<"$output" | sed -n '2,7p' | tr '\t\n' ' |')" \
		'a $0.0001 $0.0000|b $0.0001 $0.0000|c <$0.0001 $0.0000|d $12.5000 $0.0000|e $0.0000 <$0.0001|total $12.5002 <$0.0001|'
	assert_eq "$(tail -1 <<<"$output")" 'projected month: $375.0064 (30 x the average of 1 day)'
}

@test "usage: JSON money is plain decimals without float noise" {
	make_ledger
	row '2024-01-10 09:00' "'a'" "'m'" 1 1 1 0 0.00001 NULL
	row '2024-01-10 10:00' "'a'" "'m'" 1 1 1 0 0.00002 NULL
	row '2024-01-10 11:00' "'a'" "'m'" 1 1 1 0 0.000005450 NULL
	run --separate-stderr ai-usage --json --since 2024-01-10 --until 2024-01-10
	assert_eq "$status" 0
	assert_contains "$(head -1 <<<"$output")" '"cost":0.00003545,"cost_per_day":0.00003545,'
	assert_contains "$(tail -1 <<<"$output")" '"projected_month":0.0010635,"projected_from_days":1'
	assert_not_contains "$output" 'e-'
	assert_eq "$(tail -1 <<<"$output" | jq .cost)" 3.545e-05
}

@test "usage: calls of an unpriced model at a loopback endpoint cost 0; elsewhere they are unknown" {
	make_ledger
	for h in 127.0.0.1:8080 127.3.2.1 localhost localhost:11434 '[::1]:8000' 'me@127.0.0.1:8080'; do
		HOST_=$h row '2024-01-10 09:00' "'local'" "'llama'" 10 10 1 0 NULL NULL
	done
	HOST_='127.0.0.1:8080' row '2024-01-10 09:00' "'local'" "'llama'" 10 10 1 1 0 NULL
	for h in api.example.com 127.example.com 128.0.0.1 '[::2]:80' localhostx; do
		HOST_=$h row '2024-01-10 09:00' "'remote'" "'llama'" 10 10 1 0 NULL NULL
	done
	run --separate-stderr ai-usage --json --since 2024-01-10 --until 2024-01-10
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.program == "local") | [.requests, .cost, .unknown_cost, .saved]' <<<"$output")" '[7,0,0,0]'
	assert_eq "$(jq -c 'select(.program == "remote") | [.requests, .cost, .unknown_cost]' <<<"$output")" '[5,null,5]'
	# A price.MODEL still wins at a loopback endpoint.
	start_server
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'price.priced-local = 1000 1000\n' >"$XDG_CONFIG_HOME/ai/config"
	ai-summarize -m priced-local <<<"one" >/dev/null
	run --separate-stderr ai-usage --json -m priced-local
	assert_eq "$(tail -1 <<<"$output" | jq '.cost > 0')" true
}

@test "usage: no ledger yet at the default place is no error; a missing --db file is" {
	run --separate-stderr ai-usage
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_eq "$stderr" "ai-usage: no usage recorded yet at '$DB'"
	[[ ! -e $DB ]] || { echo "ai-usage made a ledger" >&2; false; }
	[[ ! -e $XDG_DATA_HOME/ai ]] || { echo "ai-usage made a directory" >&2; false; }
	run --separate-stderr ai-usage -q
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	run --separate-stderr ai-usage --db "$T/nope.db"
	assert_eq "$status" 66
	assert_contains "$stderr" "'$T/nope.db'"
	[[ ! -e $T/nope.db ]]
}

@test "usage: an empty range says so and exits 0" {
	known_rows
	run --separate-stderr ai-usage --since 2023-01-01 --until 2023-12-31
	assert_eq "$status" 0
	assert_eq "$output" ""
	assert_contains "$stderr" "no calls recorded"
	run --separate-stderr ai-usage --json --since 2023-01-01 --until 2023-12-31
	assert_eq "$output" ""
}

@test "usage: a file that is not a ledger, a newer ledger, another database, a directory: says what is wrong" {
	echo "plain text, not a database" >"$T/text"
	run --separate-stderr ai-usage --db "$T/text"
	assert_eq "$status" 65
	assert_contains "$stderr" "ai-usage: '$T/text' is not a usage ledger (not an SQLite database)"
	sqlite3 "$T/other.db" 'CREATE TABLE t(x); INSERT INTO t VALUES(1);'
	run --separate-stderr ai-usage --db "$T/other.db"
	assert_eq "$status" 65
	assert_contains "$stderr" "$T/other.db"
	make_ledger
	cp "$DB" "$T/newer.db"
	sqlite3 "$T/newer.db" 'PRAGMA user_version = 99'
	run --separate-stderr ai-usage --db "$T/newer.db"
	assert_eq "$status" 65
	assert_contains "$stderr" "$T/newer.db"
	run --separate-stderr ai-usage --db "$T"
	assert_eq "$status" 65
	assert_contains "$stderr" "not a regular file"
	head -c 8192 /dev/urandom >"$T/noise"
	run --separate-stderr ai-usage --db "$T/noise"
	assert_eq "$status" 65
}

@test "usage: --db reads another ledger; the default one is left alone" {
	known_rows
	mv "$DB" "$T/elsewhere.db"
	rm -f "$DB-wal" "$DB-shm"
	run --separate-stderr ai-usage --json --db "$T/elsewhere.db" "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output" | jq .requests)" 6
	[[ ! -e $DB ]]
}

@test "usage: needs no endpoint or key, and shows the daily budget" {
	known_rows
	stop_server
	unset OPENAI_API_KEY OPENAI_BASE_URL
	now=$(date -u '+%Y-%m-%d %H:%M:%S')
	row "$now" "'ai-ask'" "'m2'" 1 1 1 0 0.4 NULL
	run --separate-stderr ai-usage --since today
	assert_eq "$status" 0
	assert_eq "$(grep -c 'daily budget' <<<"$output")" 0
	AI_BUDGET_DAILY=2 run --separate-stderr ai-usage --since today
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output")" 'daily budget: $2.0000, spent today: $0.4000'
}

@test "usage: --prices lists the price table with the config's overrides" {
	run --separate-stderr ai-usage --prices
	assert_eq "$status" 0
	assert_eq "$(head -1 <<<"$output")" $'MODEL\tIN/MTOK\tOUT/MTOK'
	assert_contains "$output" $'\ngpt-4o-mini\t'
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo 'price.gpt-4o-mini = 7 8.5' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-usage --prices --json
	assert_eq "$status" 0
	assert_eq "$(jq -c 'select(.model == "gpt-4o-mini")' <<<"$output")" '{"model":"gpt-4o-mini","in_per_mtok":7,"out_per_mtok":8.5}'
	echo 'price.gpt-4o-mini = cheap' >"$XDG_CONFIG_HOME/ai/config"
	run --separate-stderr ai-usage --prices
	assert_eq "$status" 78
	assert_contains "$stderr" "config:1"
}

@test "usage: bad options and dates exit 64 and say why" {
	run --separate-stderr ai-usage --by week
	assert_eq "$status" 64
	assert_contains "$stderr" "--by wants program, model or day, not 'week'"
	for d in Yesterday tomorrow garbage 2024-13-01 2024-02-30 0d 24-01-01 7; do
		run --separate-stderr ai-usage --since "$d"
		assert_eq "$status" 64 "status for --since $d"
		assert_contains "$stderr" "bad date '$d'"
	done
	run --separate-stderr ai-usage --until nope
	assert_eq "$status" 64
	run --separate-stderr ai-usage --since 2024-02-01 --until 2024-01-01
	assert_eq "$status" 64
	assert_contains "$stderr" "is not before"
	run --separate-stderr ai-usage somefile
	assert_eq "$status" 64
	assert_contains "$stderr" "--db"
	run --separate-stderr ai-usage --db ''
	assert_eq "$status" 64
	run --separate-stderr ai-usage --bogus
	assert_eq "$status" 64
	run ai-usage --help
	assert_eq "$status" 0
	assert_contains "$output" "Usage: ai-usage"
	run ai-usage -V
	assert_eq "$status" 0
	assert_contains "$output" "ai-usage 0."
}

@test "usage: a full disk fails with 74; a closed pipe is quiet" {
	known_rows
	run --separate-stderr bash -c 'ai-usage --since 2024-01-10 --until 2024-01-12 >/dev/full'
	assert_eq "$status" 74
	assert_contains "$stderr" "cannot write output"
	run --separate-stderr bash -c 'set -o pipefail; ai-usage --json --since 2024-01-10 --until 2024-01-12 | head -c1'
	assert_eq "$status" 0
	assert_eq "$stderr" ""
}

@test "usage: reads while another process holds the write lock" {
	known_rows
	mkfifo "$T/fifo"
	sqlite3 "$DB" <"$T/fifo" >/dev/null 2>&1 &
	holder=$!
	exec 5>"$T/fifo"
	echo 'BEGIN IMMEDIATE; INSERT INTO calls(ts_ms) VALUES(0);' >&5
	sleep 0.2
	start=$(date +%s%N)
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	ms=$((($(date +%s%N) - start) / 1000000))
	echo 'ROLLBACK;' >&5
	exec 5>&-
	wait "$holder"
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output" | jq .requests)" 6
	((ms < 3000)) || { echo "took $ms ms" >&2; false; }
}

# schema1_ledger: a ledger as the ai-tools before the rollups left it (schema 1, raw rows only).
schema1_ledger() {
	mkdir -p "$(dirname "$DB")"
	sqlite3 "$DB" "PRAGMA journal_mode=WAL; CREATE TABLE calls (id INTEGER PRIMARY KEY,
		ts_ms INTEGER NOT NULL, program TEXT, model TEXT, host TEXT, prompt_tokens INTEGER,
		completion_tokens INTEGER, latency_ms INTEGER NOT NULL DEFAULT 0,
		status INTEGER NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0,
		batch INTEGER NOT NULL DEFAULT 0, cost REAL, saved REAL, prompt TEXT);
		CREATE INDEX calls_ts ON calls(ts_ms, cost); PRAGMA user_version = 1;" >/dev/null
	row '2024-01-10 09:00' "'ai-summarize'" "'m1'" 100 10 100 0 0.25 NULL
	row '2024-01-10 10:00' "'ai-summarize'" "'m1'" 100 10 0 1 0 0.25
	row '2024-01-11 12:00' "'ai-ask'" "'m2'" 1000 200 300 0 1.5 NULL
	row '2024-01-11 23:59' "'ai-ask'" "'m2'" 1000 200 500 0 1.5 NULL
	row '2024-01-12 00:00' "'ai-index'" "'emb'" 50 NULL 20 0 NULL NULL
	row '2024-01-12 18:00' "'ai-summarize'" "NULL" 200 20 200 0 0.5 NULL
}

@test "usage: a schema-1 ledger is folded into rollups on first open and reports as before" {
	known_rows
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$status" 0
	want=$output
	rm -f "$DB" "$DB-wal" "$DB-shm"
	schema1_ledger
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$output" "$want"
	assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 3
	assert_eq "$(sqlite3 "$DB" 'SELECT sum(n) FROM rollup')" 6
	assert_eq "$(sqlite3 "$DB" "SELECT v FROM ledger_meta WHERE k = 'folded'")" 6
	# A second run folds nothing twice.
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$output" "$want"
	assert_eq "$(sqlite3 "$DB" 'SELECT sum(n) FROM rollup')" 6
}

@test "usage: rows an older ai-tools appends after the upgrade are counted once" {
	known_rows
	ai-usage --json "${RANGE[@]}" >/dev/null
	# Written without rollups, as a program of the previous schema still running would.
	# The first report summed the ended days into day rollups, which the late row must reach too.
	assert_eq "$(sqlite3 "$DB" "SELECT sum(n) FROM rollup_day WHERE day < (SELECT v FROM ledger_meta WHERE k = 'days_done')")" 6
	row '2024-01-11 13:00' "'ai-ask'" "'m2'" 10 10 100 0 1 NULL
	run --separate-stderr ai-usage --json --by model "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .cost]')" '[7,4.75]'
	start_server
	ai-summarize <<<"a new call" >/dev/null
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .cost]')" '[7,4.75]'
	assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM calls')" "$(sqlite3 "$DB" 'SELECT sum(n) FROM rollup')"
}

@test "usage: p50, p95 and p99 come from the histogram, within 1% of the exact" {
	make_ledger
	# 200 calls with latencies 1000, 1013, ... 3587 ms: nearest-rank p50 2287, p95 3457, p99 3561.
	{
		echo 'BEGIN;'
		for i in $(seq 0 199); do
			echo "INSERT INTO calls(ts_ms, program, model, host, latency_ms, status, cost)
				VALUES(1704877200000, 'ai-batch', 'm1', 'api.example.com', $((1000 + 13 * i)), 200, 0.001);"
		done
		echo 'COMMIT;'
	} | sqlite3 "$DB"
	run --separate-stderr ai-usage --json --since 2024-01-10 --until 2024-01-10
	assert_eq "$status" 0
	read -r p50 p95 p99 < <(tail -1 <<<"$output" | jq -r '"\(.p50_ms) \(.p95_ms) \(.p99_ms)"')
	for pair in "$p50 2287" "$p95 3457" "$p99 3561"; do
		set -- $pair
		((($2 - $1) * 100 <= $2 && $1 <= $2)) || { echo "got $1, exact $2" >&2; false; }
	done
}

@test "usage: ledger_keep must be whole days" {
	make_ledger
	run --separate-stderr env AI_CONFIG="$T/conf" ai-usage
	printf 'ledger_keep = 1.5\n' >"$T/conf"
	run --separate-stderr env AI_CONFIG="$T/conf" ai-usage
	assert_eq "$status" 78
	assert_contains "$stderr" "ledger_keep"
	printf 'ledger_keep = 0\n' >"$T/conf"
	run --separate-stderr env AI_CONFIG="$T/conf" ai-usage --json
	assert_eq "$status" 0
}

@test "usage/chart: --chart draws cost and requests per day, a bar a day, stacked per program" {
	known_rows
	# ASCII (not a UTF-8 locale), no colour (not a terminal), 60 columns: a character per
	# program; the largest day fills the bar; ai-index's unknown cost adds nothing.
	run --separate-stderr env LC_ALL=C COLUMNS=60 ai-usage --chart "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$output" "cost per day  # ai-ask  = ai-index  + ai-summarize
01-10 ++++                                           \$0.2500
01-11 ############################################## \$3.0000
01-12 ++++++++                                       \$0.5000

requests per day  # ai-ask  = ai-index  + ai-summarize
01-10 ++++++++++++++++++++++++++++++++++++++++++++++++++++ 2
01-11 #################################################### 2
01-12 ==========================++++++++++++++++++++++++++ 2"
	# A UTF-8 locale gets blocks and shades; --by model and -m choose the bars.
	run --separate-stderr env LC_ALL=C.UTF-8 COLUMNS=50 ai-usage --chart --by model "${RANGE[@]}"
	assert_eq "$status" 0
	assert_contains "${lines[0]}" "cost per day  █ -  ▓ emb  ▒ m1  ░ m2"
	assert_contains "$output" "01-11 ░░░░░░░░"
	run --separate-stderr env LC_ALL=C.UTF-8 COLUMNS=50 ai-usage --chart -m m1 "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "cost per day  █ ai-summarize"
	assert_not_contains "$output" "ai-ask"
	# Without --since, the last 30 days: 30 lines a chart, the known rows long gone.
	run --separate-stderr env LC_ALL=C ai-usage --chart
	assert_eq "$status" 0
	assert_contains "$stderr" "no calls recorded"
	assert_eq "$(grep -c '^[0-9][0-9]-[0-9][0-9] ' <<<"$output")" 60
	assert_contains "$output" "$(date +%m-%d) "
}

@test "usage/chart: --html writes one self-contained page, a bar group a day in each chart" {
	known_rows
	# A program name that is HTML must stay text.
	row '2024-01-11 13:00' "'<script>x</script>'" "'m1'" 1 1 1 0 0.1 NULL
	run --separate-stderr ai-usage --html "$T/r.html" "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$output" ""
	xmllint --noout "$T/r.html"
	assert_eq "$(grep -o '<g class="day">' "$T/r.html" | wc -l)" 6
	assert_eq "$(grep -c '<svg ' "$T/r.html")" 2
	assert_not_contains "$(cat "$T/r.html")" "<script"
	assert_contains "$(cat "$T/r.html")" "&lt;script&gt;x&lt;/script&gt;"
	assert_contains "$(cat "$T/r.html")" "<title>2024-01-11: \$3.1000</title>"
	assert_not_contains "$(cat "$T/r.html")" "src="
	# - is stdout; --chart and --html together give both.
	run --separate-stderr ai-usage --html - "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "<!DOCTYPE html>"
	run --separate-stderr env LC_ALL=C ai-usage --chart --html "$T/r2.html" "${RANGE[@]}"
	assert_eq "$status" 0
	assert_contains "$output" "requests per day"
	cmp -s "$T/r.html" "$T/r2.html"
	# A file that cannot be written: 74, named, and no temporary file left.
	mkdir "$T/ro"
	run --separate-stderr ai-usage --html "$T/none/r.html" "${RANGE[@]}"
	assert_eq "$status" 74
	assert_contains "$stderr" "$T/none/r.html"
	run --separate-stderr ai-usage --html "$T/ro" "${RANGE[@]}"
	assert_eq "$status" 74
	assert_eq "$(ls -A "$T/ro")" ""
	assert_eq "$(ls "$T" | grep -c 'ro\.')" 0
}

@test "usage/chart: bad combinations are usage errors" {
	known_rows
	run --separate-stderr ai-usage --chart --json "${RANGE[@]}"
	assert_eq "$status" 64
	assert_contains "$stderr" "--json --by day"
	run --separate-stderr ai-usage --chart --by day "${RANGE[@]}"
	assert_eq "$status" 64
	run --separate-stderr ai-usage --html '' "${RANGE[@]}"
	assert_eq "$status" 64
	run --separate-stderr ai-usage --html
	assert_eq "$status" 64
	run --separate-stderr ai-usage --log --chart
	assert_eq "$status" 64
	assert_contains "$stderr" "--chart"
}

# usage_tty ROWS COMMAND...: runs ai-usage's COMMAND on a pseudo-terminal of ROWS x 100.
usage_tty() {
	local rows=$1
	shift
	SHELL=/bin/sh timeout 20 script -qec "stty rows $rows cols 100; exec env $*" /dev/null </dev/null |
		tr -d '\r'
}

@test "usage/chart: on a terminal with room, the default view ends with the cost per day" {
	known_rows
	usage_tty 50 LC_ALL=C.UTF-8 TERM=xterm ai-usage "${RANGE[*]}" >"$T/tall"
	grep -q '^PROGRAM' "$T/tall"
	grep -q 'cost per day' "$T/tall"
	grep -q $'^01-11 \e\\[3' "$T/tall"
	# Too short for it: the table alone.  NO_COLOR: no colour.  --by, -j, a pipe: no chart.
	usage_tty 12 TERM=xterm ai-usage "${RANGE[*]}" >"$T/short"
	grep -q '^PROGRAM' "$T/short"
	! grep -q 'cost per day' "$T/short"
	usage_tty 50 NO_COLOR=1 TERM=xterm ai-usage "${RANGE[*]}" >"$T/nc"
	grep -q 'cost per day' "$T/nc"
	! grep -q $'\e\\[3' "$T/nc"
	usage_tty 50 TERM=xterm ai-usage --by model "${RANGE[*]}" >"$T/by"
	grep -q '^MODEL' "$T/by"
	! grep -q 'cost per day' "$T/by"
	run --separate-stderr ai-usage "${RANGE[@]}"
	assert_not_contains "$output" "cost per day"
}

@test "usage: one ai-batch wake-up writes its calls' rows in one transaction, every call counted" {
	start_server
	for i in $(seq 1 48); do printf '{"id":"i%d","text":"item %d"}\n' "$i" "$i"; done >"$T/in.jsonl"
	ai-batch -q -P 16 "$T/in.jsonl" >/dev/null
	# The rerun is all cache hits: each wake-up delivers up to 16 of them at once.  A trigger
	# notes, at each raw row, how far the rollups had got: a row written alone finds every
	# row before it folded; rows written together find the mark where their transaction began.
	sqlite3 "$DB" "CREATE TABLE seen(id INTEGER, folded INTEGER);
		CREATE TRIGGER seen_t AFTER INSERT ON calls BEGIN
		INSERT INTO seen VALUES(new.id, (SELECT v FROM ledger_meta WHERE k = 'folded')); END"
	run --separate-stderr ai-batch -q -P 16 "$T/in.jsonl"
	assert_eq "$status" 0
	assert_eq "$(wc -l <<<"$output")" 48
	assert_eq "$(request_count)" 48
	assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM seen')" 48
	together=$(sqlite3 "$DB" 'SELECT count(*) FROM seen WHERE id - folded > 1')
	((together > 0)) || { echo "every row was written in its own transaction" >&2; false; }
	run --separate-stderr ai-usage --json
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .hits]')" '[96,48]'
}

@test "usage: CACHED_IN and the reasoning tokens sum the billed calls that report them; unknown is '-' and null" {
	known_rows
	# Two of ai-ask's calls say how much of their input the provider's cache served; the hit's
	# count is not billed and not summed; ai-summarize's calls say nothing.
	sqlite3 "$DB" "UPDATE calls SET cached_tokens = 600, reasoning_tokens = 50 WHERE program = 'ai-ask';
		UPDATE calls SET cached_tokens = 99 WHERE cached = 1"
	run --separate-stderr ai-usage "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$(head -1 <<<"$output" | cut -f11)" CACHED_IN
	assert_eq "$(grep '^ai-ask' <<<"$output" | cut -f11)" 1200
	assert_eq "$(grep '^ai-summarize' <<<"$output" | cut -f11)" -
	assert_eq "$(grep '^total' <<<"$output" | cut -f11)" 1200
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$(jq -c 'select(.program == "ai-ask") | [.tokens_cached, .tokens_reasoning]' <<<"$output")" '[1200,100]'
	assert_eq "$(jq -c 'select(.program == "ai-summarize") | [.tokens_cached, .tokens_reasoning]' <<<"$output")" '[null,null]'
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.tokens_cached, .tokens_reasoning]')" '[1200,100]'
	# Read back from the day rollups the first report made, the same.
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.tokens_cached, .tokens_reasoning, .requests]')" '[1200,100,6]'
	assert_eq "$(sqlite3 "$DB" 'SELECT sum(tokens_cached) FROM rollup_day WHERE NOT cached')" 1200
}

@test "usage: a schema-2 ledger gains the new columns on first open and reports as before" {
	known_rows
	ai-usage --json "${RANGE[@]}" >"$T/before"
	# Back to what the previous ai-tools left: no cached/reasoning columns, no day rollups.
	sqlite3 "$DB" "ALTER TABLE calls DROP COLUMN cached_tokens; ALTER TABLE calls DROP COLUMN reasoning_tokens; ALTER TABLE calls DROP COLUMN attachments;
		ALTER TABLE rollup DROP COLUMN tokens_cached; ALTER TABLE rollup DROP COLUMN cached_n;
		ALTER TABLE rollup DROP COLUMN tokens_reason; ALTER TABLE rollup DROP COLUMN reason_n;
		DROP TABLE rollup_day; DROP TABLE rollup_lat_day; DELETE FROM ledger_meta WHERE k = 'days_done';
		PRAGMA user_version = 2"
	run --separate-stderr ai-usage --json "${RANGE[@]}"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$output" "$(cat "$T/before")"
	assert_eq "$(sqlite3 "$DB" 'PRAGMA user_version')" 3
	assert_eq "$(tail -1 <<<"$output" | jq -c '[.requests, .tokens_cached]')" '[6,null]'
}

@test "usage: calls finished before ai-batch exits on a closed pipe are in the ledger" {
	start_server
	ctl '{"set":{"latency_ms":300}}'
	for i in $(seq 1 24); do printf '{"id":"i%d","text":"item %d"}\n' "$i" "$i"; done >"$T/in.jsonl"
	# The reader is gone long before the first answer: the first line written ends
	# ai-batch quietly (exit 0 on EPIPE) with that line's call and the others of its
	# wake-up still queued for the ledger's next transaction.
	run bash -c 'ai-batch -q -P 8 "$1" | true; echo "${PIPESTATUS[0]}"' _ "$T/in.jsonl"
	assert_eq "$output" 0
	rows=$(sqlite3 "$DB" 'SELECT count(*) FROM calls')
	((rows >= 1 && rows <= $(request_count))) ||
		{ echo "$rows ledger rows for $(request_count) requests" >&2; false; }
}

@test "usage: ai-batch stopped by SIGTERM has written the rows of the calls it finished" {
	start_server
	ctl '{"set":{"latency_ms":50}}'
	for i in $(seq 1 200); do printf '{"id":"i%d","text":"item %d"}\n' "$i" "$i"; done >"$T/in.jsonl"
	ai-batch --no-cache -P 4 "$T/in.jsonl" >"$T/out" 2>"$T/err" &
	pid=$!
	wait_for_requests 20
	kill -TERM $pid
	rc=0
	wait $pid || rc=$?
	assert_eq "$rc" 143
	printed=$(wc -l <"$T/out")
	rows=$(sqlite3 "$DB" "SELECT count(*) FROM calls WHERE status = 200")
	((printed >= 1 && rows >= printed)) || { echo "$rows ledger rows for $printed lines printed" >&2; false; }
}

# ledger_rows: the calls in the ledger so far (0 before the first is written).
ledger_rows() {
	local n
	[[ -s $DB ]] && n=$(sqlite3 "$DB" 'SELECT count(*) FROM calls' 2>/dev/null)
	echo "${n:-0}"
}

# slow_parts: ai-summarize's first part is answered at once, every other part in 30 s.
slow_parts() {
	start_server
	ctl '{"push":[{"latency_ms":0},{"latency_ms":30000,"times":100}]}'
	for ((i = 1; i <= 60; i++)); do
		echo "Paragraph $i tells a short story about item number $i and what became of it in the end."
		echo
	done >"$T/long"
}

@test "usage: a finished call's row is written while the others are in flight, and survives SIGKILL" {
	slow_parts
	ai-summarize --no-cache -q --max-input-tokens 200 "$T/long" >/dev/null 2>&1 &
	pid=$!
	# Written within LEDGER_FLUSH_MS of the answer, not when the last part ends (30 s
	# later); 10 s is room for a loaded machine.
	SECONDS=0
	while (($(ledger_rows) < 1 && SECONDS < 10)); do
		sleep 0.05
	done
	kill -0 $pid || { echo "ai-summarize ended before the test could look" >&2; false; }
	kill -KILL $pid
	wait $pid || true
	assert_eq "$(ledger_rows)" 1
}

@test "usage: SIGTERM just after the answer came: the call's row is written, then the program dies by SIGTERM" {
	make_ledger
	ctl '{"push":[{"reply":"the summary","latency_ms":1500}]}'
	ai-summarize --no-cache <<<"a short text" >"$T/out" 2>"$T/err" &
	pid=$!
	wait_for_requests 2 /v1/chat/completions
	# The answer comes at 1.5 s, and writing its row waits for the lock held until 3 s:
	# TERM at 2 s finds the answer received and its row not yet written.
	hold_write_lock "$DB" 3
	sleep 2
	kill -0 $pid || { echo "ai-summarize ended before the test could look" >&2; false; }
	signal_wait TERM $pid
	wait $HOLDER
	assert_eq "$rc" 143 status
	assert_eq "$(ledger_rows)" 1
	assert_eq "$(cat "$T/out")" "the summary"
}

@test "usage: with a daily budget set, ai-batch's rows are still written many to a transaction" {
	start_server
	for i in $(seq 1 96); do printf '{"id":"i%d","text":"item %d"}\n' "$i" "$i"; done >"$T/in.jsonl"
	ai-summarize <<<"make the ledger" >/dev/null
	# As above: a row written alone, or with up to 8 others (added one by one to the
	# rollups), finds every row before it folded; at -P 8 a transaction of more rows
	# can only come from a queue that the budget check before each call did not write.
	sqlite3 "$DB" "CREATE TABLE seen(id INTEGER, folded INTEGER);
		CREATE TRIGGER seen_t AFTER INSERT ON calls BEGIN
		INSERT INTO seen VALUES(new.id, (SELECT v FROM ledger_meta WHERE k = 'folded')); END"
	run --separate-stderr env AI_BUDGET_DAILY=100 ai-batch -q --no-cache -P 8 "$T/in.jsonl"
	assert_eq "$status" 0
	assert_eq "$(wc -l <<<"$output")" 96
	assert_eq "$(sqlite3 "$DB" 'SELECT count(*) FROM seen')" 96
	together=$(sqlite3 "$DB" 'SELECT count(*) FROM seen WHERE id - folded > 1')
	((together > 0)) || { echo "no transaction held more than 8 rows" >&2; false; }
}
