#!/usr/bin/env bats
# The response cache, the usage ledger and the daily budget, end to end:
# through ai-summarize against the test server, checked on the server's
# request log, in the ledger with sqlite3 and with ai-usage.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	DB=$XDG_DATA_HOME/ai/usage.db
	CACHE=$XDG_CACHE_HOME/ai/responses
}
teardown() { stop_server; }

CHAT=/v1/chat/completions

# sum PROMPT TEXT: ai-summarize with a short instruction, so that the test
# server's echo ("echo: " and the first 60 bytes of the last message) names
# the input and a wrong cached answer would show.
sum() {
	ai-summarize --prompt "$1" <<<"$2"
}

# entries: the cache entries (not the temporary files), one path a line.
entries() {
	find "$CACHE" -type f ! -name '.*' 2>/dev/null | sort
}

# ledger SQL: a query on the usage ledger.
ledger() {
	sqlite3 -batch "$DB" "$1"
}

@test "cache: the same request twice is sent once; the second is marked cached in --json and the ledger" {
	run --separate-stderr ai-summarize --json --prompt P <<<"same text"
	assert_eq "$status" 0
	assert_eq "$(jq -r .cached <<<"$output")" false
	first=$(jq -r .summary <<<"$output")
	run --separate-stderr ai-summarize --json --prompt P <<<"same text"
	assert_eq "$status" 0
	assert_eq "$stderr" "" stderr
	assert_eq "$(jq -r .cached <<<"$output")" true
	assert_eq "$(jq -r .summary <<<"$output")" "$first" "cached summary"
	assert_eq "$(request_count $CHAT)" 1 requests
	# Both calls are in the ledger; only the second as a hit, costing nothing and saving the first's cost.
	assert_eq "$(ledger 'SELECT cached FROM calls ORDER BY id' | tr '\n' ' ')" "0 1 " "cached column"
	assert_eq "$(ledger 'SELECT cost = 0 AND saved = (SELECT cost FROM calls WHERE id = 1) FROM calls WHERE id = 2')" 1
	assert_eq "$(ledger 'SELECT status, program, model FROM calls WHERE id = 2')" "200|ai-summarize|gpt-4o-mini"
	run ai-usage --json
	assert_eq "$status" 0
	assert_eq "$(head -1 <<<"$output" | jq -c '[.program, .requests, .hits, .hit_rate]')" '["ai-summarize",2,1,0.5]'
}

@test "cache: plain output of a hit is the same as of the miss" {
	run sum P "plain"
	a=$output
	run sum P "plain"
	assert_eq "$output" "$a"
	assert_eq "$(request_count $CHAT)" 1
}

@test "cache: --no-cache sends the request and neither reads nor writes the cache" {
	sum P "text" >/dev/null
	run --separate-stderr ai-summarize --json --no-cache --prompt P <<<"text"
	assert_eq "$status" 0
	assert_eq "$(jq -r .cached <<<"$output")" false
	assert_eq "$(request_count $CHAT)" 2 "requests: --no-cache does not read"
	rm -rf "$CACHE"
	ai-summarize --no-cache --prompt P <<<"text" >/dev/null
	assert_eq "$(entries)" "" "entries after --no-cache"
	assert_eq "$(ledger 'SELECT count(*), sum(cached) FROM calls')" "3|0" "ledger rows, hits"
}

@test "cache: AI_CACHE=0 and cache = no in the config turn it off" {
	AI_CACHE=0 sum P "text" >/dev/null
	AI_CACHE=0 sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 2
	assert_eq "$(entries)" ""
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo 'cache = no' >"$XDG_CONFIG_HOME/ai/config"
	sum P "text" >/dev/null
	sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 4
	assert_eq "$(entries)" ""
}

@test "cache: a changed parameter misses; temperature above 0 is cached too" {
	sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 1
	ai-summarize -m other-model --prompt P <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 2 "after another model"
	ai-summarize --temperature 0.7 --prompt P <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 3 "after a temperature"
	ai-summarize --max-tokens 20 --prompt P <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 4 "after max-tokens"
	sum Q "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 5 "after another instruction"
	sum P "text." >/dev/null
	assert_eq "$(request_count $CHAT)" 6 "after another input"
	# As ai(7) says: a request with a temperature above 0 is answered from the cache.
	run --separate-stderr ai-summarize --json --temperature 0.7 --prompt P <<<"text"
	assert_eq "$(jq -r .cached <<<"$output")" true
	ai-summarize --temperature 0.7 --prompt P <<<"text" >/dev/null
	sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 6 "repeats sent"
}

@test "cache: another endpoint misses" {
	sum P "text" >/dev/null
	OPENAI_BASE_URL="http://localhost:$PORT/v1" sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 2
}

@test "cache: --cache-ttl and AI_CACHE_TTL make older entries misses" {
	sum P "text" >/dev/null
	f=$(entries)
	[[ -n $f ]]
	touch -d '2 hours ago' "$f"
	ai-summarize --cache-ttl 1h --prompt P <<<"text" >/dev/null
	assert_eq "$(request_count $CHAT)" 2 "an entry older than --cache-ttl was used"
	touch -d '2 hours ago' "$f"
	run ai-summarize --json --cache-ttl 3h --prompt P <<<"text"
	assert_eq "$(jq -r .cached <<<"$output")" true
	AI_CACHE_TTL=30m sum P "text" >/dev/null
	assert_eq "$(request_count $CHAT)" 3 "an entry older than AI_CACHE_TTL was used"
	# The miss replaced the entry: it is fresh again.
	run ai-summarize --json --cache-ttl 30m --prompt P <<<"text"
	assert_eq "$(jq -r .cached <<<"$output")" true
	run --separate-stderr ai-summarize --cache-ttl soon --prompt P <<<"text"
	assert_eq "$status" 64
}

@test "cache: a corrupt, truncated, emptied or unreadable entry is a miss, replaced, never a wrong answer" {
	run sum P "text"
	want=$output
	f=$(entries)
	[[ -n $f ]]
	n=1
	# A changed byte in the answer: the checksum no longer matches.
	sed -i 's/echo: /ECHO: /' "$f"
	grep -q 'ECHO: ' "$f"
	for damage in corrupt truncate empty garbage dir; do
		case $damage in
		corrupt) ;;
		truncate) truncate -s 100 "$f" ;;
		empty) : >"$f" ;;
		garbage) head -c 4096 /dev/urandom >"$f" ;;
		dir) rm -f "$f"; mkdir "$f" ;;
		esac
		run --separate-stderr sum P "text"
		assert_eq "$status" 0 "status after $damage"
		assert_eq "$output" "$want" "answer after $damage"
		n=$((n + 1))
		assert_eq "$(request_count $CHAT)" "$n" "requests after $damage"
		if [[ $damage != dir ]]; then
			# Replaced: the next run is a hit again.
			run sum P "text"
			assert_eq "$output" "$want"
			assert_eq "$(request_count $CHAT)" "$n" "requests after the replacement of $damage"
		fi
	done
	rm -rf "$f"
	sum P "text" >/dev/null
	n=$((n + 1))
	if (($(id -u) != 0)); then
		chmod 000 "$f"
		run --separate-stderr sum P "text"
		assert_eq "$status" 0
		assert_eq "$output" "$want"
		assert_eq "$(request_count $CHAT)" "$((n + 1))" "requests after an unreadable entry"
	fi
}

@test "cache: a process killed while writing an entry leaves nothing that is served later" {
	command -v strace >/dev/null || skip "strace is not installed"
	run sum P "text"
	want=$output
	rm -rf "$CACHE" "$DB"
	# Killed as it writes the temporary file, then as it renames the complete one.
	for sc in writev renameat; do
		run strace -f -qq -o /dev/null -e "trace=$sc" -e "inject=$sc:error=EIO:signal=KILL" \
			ai-summarize --prompt P <<<"text"
		assert_eq "$status" 137 "status of the process killed at $sc"
		assert_eq "$(entries)" "" "entries after a kill at $sc"
		[[ -n $(find "$CACHE" -name '.tmp-*') ]] || { echo "no temporary file: not killed while writing" >&2; false; }
		n=$(request_count $CHAT)
		run --separate-stderr sum P "text"
		assert_eq "$status" 0
		assert_eq "$output" "$want" "answer after a kill at $sc"
		assert_eq "$(request_count $CHAT)" "$((n + 1))" "the killed writer's entry was served ($sc)"
		run sum P "text"
		assert_eq "$output" "$want"
		assert_eq "$(request_count $CHAT)" "$((n + 1))" "no hit after the kill at $sc"
		rm -rf "$CACHE"
	done
}

@test "cache: eight processes x 200 calls at once: 1600 ledger rows, no lock errors, every entry right" {
	# Eight ai-batch processes, 200 calls each, all at once, beside an
	# xargs -P 8 of single ai-summarize calls, as DESIGN.md has them meet:
	# 40 distinct requests asked by everyone, in different orders, over and
	# over, while the cache and the ledger are written by all.
	local p i k pids=() n=200
	for p in 1 2 3 4 5 6 7 8; do
		for ((i = 0; i < n; i++)); do
			k=$(((i * 7 + p * 13) % 40))
			printf '{"id":"p%d-%d","text":"input %d"}\n' "$p" "$i" "$k"
		done >"$T/items.$p"
	done
	for p in 1 2 3 4 5 6 7 8; do
		ai-batch -P 8 -t 'P {{text}}' "$T/items.$p" >"$T/out.$p" 2>"$T/err.$p" &
		pids+=($!)
	done
	seq 0 39 | sed 's/^/input /' >"$T/single"
	xargs -P 8 -I{} sh -c 'echo "{}" | ai-summarize --prompt P' <"$T/single" \
		>"$T/out.single" 2>"$T/err.single" &
	pids+=($!)
	for p in "${pids[@]}"; do
		wait "$p" || { echo "a caller failed: see $T/err.*" >&2; cat "$T"/err.* >&2; false; }
	done
	assert_eq "$(cat "$T"/err.*)" "" "stderr of the callers"
	assert_eq "$(ledger 'SELECT count(*) FROM calls')" 1640 "ledger rows"
	assert_eq "$(ledger "SELECT count(*) FROM calls WHERE program = 'ai-batch'")" 1600
	assert_eq "$(ledger 'PRAGMA integrity_check')" ok
	sent=$(request_count $CHAT)
	assert_eq "$(ledger 'SELECT count(*) FROM calls WHERE NOT cached')" "$sent" "misses in the ledger vs requests"
	((sent >= 80 && sent < 1640)) || { echo "sent $sent" >&2; false; }
	assert_eq "$(ledger "SELECT count(*) FROM calls WHERE status != 200")" 0
	# One line per item, each with the answer for its own input.
	assert_eq "$(cat "$T"/out.[1-8] | wc -l)" 1600 "output lines"
	assert_eq "$(cat "$T"/out.[1-8] | jq -r .id | sort -u | wc -l)" 1600 "distinct ids"
	bad=$(cat "$T"/out.[1-8] | jq -r 'select((.output // "") | test("^echo: P input [0-9]+$") | not) | .id')
	assert_eq "$bad" "" "items without their answer"
	for p in 1 2 3 4 5 6 7 8; do
		mism=$(paste -d ' ' <(jq -r .text "$T/items.$p") <(jq -r .output "$T/out.$p") |
			awk '{ if ("echo: P " $1 " " $2 != $3 " " $4 " " $5 " " $6) print }')
		assert_eq "$mism" "" "answers matched to inputs in process $p"
	done
	assert_eq "$(grep -c '^echo: P$' "$T/out.single")" 40 "single answers"
	assert_eq "$(find "$CACHE" -name '.tmp-*' | wc -l)" 0 "temporary files left"
	assert_eq "$(entries | wc -l)" 80 "entries: 40 batch prompts and 40 summarize prompts"
	for ((k = 0; k < 40; k++)); do
		[[ $(sum P "input $k") == "echo: P"*"input $k" ]] || { echo "wrong answer for input $k" >&2; false; }
	done
	assert_eq "$(request_count $CHAT)" "$sent" "requests for inputs already cached"
}

@test "budget: a call after today's spend reached AI_BUDGET_DAILY exits 75 and is not sent" {
	mkdir -p "$XDG_CONFIG_HOME/ai"
	# 100,000 USD per million tokens: the echo's ~50 tokens cost several dollars.  So much
	# is above confirm_over, which would refuse it without a terminal: off, this is the budget.
	printf 'price.costly = 100000 100000\nconfirm_over =\n' >"$XDG_CONFIG_HOME/ai/config"
	export AI_BUDGET_DAILY=1
	run --separate-stderr ai-summarize -m costly --prompt P <<<"first"
	assert_eq "$status" 0 "the first call, under the budget"
	spent=$(ledger 'SELECT total(cost) FROM calls')
	awk -v s="$spent" 'BEGIN { exit !(s > 1) }' || { echo "spent $spent" >&2; false; }
	run --separate-stderr ai-summarize -m costly --prompt P <<<"second"
	assert_eq "$status" 75
	assert_eq "$output" ""
	assert_contains "$stderr" "ai-summarize: daily budget reached: \$$(printf '%.2f' "$spent") spent today"
	assert_contains "$stderr" "AI_BUDGET_DAILY is \$1.00"
	assert_eq "$(request_count $CHAT)" 1 "requests"
	# Any model: the budget is about money spent, not about the model that spent it.
	run ai-summarize -m gpt-4o-mini --prompt P <<<"third"
	assert_eq "$status" 75
	assert_eq "$(request_count $CHAT)" 1 "requests"
	# A cache hit costs nothing and is still answered.
	run --separate-stderr ai-summarize --json -m costly --prompt P <<<"first"
	assert_eq "$status" 0
	assert_eq "$(jq -r .cached <<<"$output")" true
	# The config file's budget_daily does the same; raising it lets calls through.
	unset AI_BUDGET_DAILY
	echo 'budget_daily = 0.5' >>"$XDG_CONFIG_HOME/ai/config"
	run ai-summarize --prompt P <<<"fourth"
	assert_eq "$status" 75
	AI_BUDGET_DAILY=1000 run ai-summarize --prompt P <<<"fourth"
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2 "requests"
}

@test "budget: rows of earlier days do not count, today's do; 0 allows no paid call" {
	sum P "make the ledger" >/dev/null
	now=$(($(date +%s) * 1000))
	ledger "INSERT INTO calls(ts_ms, program, model, cost) VALUES($((now - 3 * 86400000)), 'x', 'm', 50)"
	AI_BUDGET_DAILY=10 run sum P "a"
	assert_eq "$status" 0 "yesterday's spend counted"
	ledger "INSERT INTO calls(ts_ms, program, model, cost) VALUES($now, 'x', 'm', 9.99)"
	AI_BUDGET_DAILY=10 run sum P "b"
	assert_eq "$status" 0 "under the budget"
	ledger "INSERT INTO calls(ts_ms, program, model, cost) VALUES($now, 'x', 'm', 0.02)"
	n=$(request_count $CHAT)
	AI_BUDGET_DAILY=10 run --separate-stderr sum P "c"
	assert_eq "$status" 75
	assert_contains "$stderr" "spent today"
	assert_eq "$(request_count $CHAT)" "$n" requests
	AI_BUDGET_DAILY=0 run sum P "d"
	assert_eq "$status" 75
	AI_BUDGET_DAILY=-1 run --separate-stderr sum P "e"
	assert_eq "$status" 78
	assert_eq "$(request_count $CHAT)" "$n" requests
}

@test "files: directories 0700, files 0600, whatever the umask; the key is in no file" {
	umask 022
	run --separate-stderr ai-summarize --log-prompts --prompt P <<<"text"
	assert_eq "$status" 0
	sum P "text" >/dev/null
	for d in "$XDG_CACHE_HOME/ai" "$CACHE" "$XDG_DATA_HOME/ai"; do
		assert_eq "$(stat -c %a "$d")" 700 "mode of $d"
	done
	while read -r d; do
		assert_eq "$(stat -c %a "$d")" 700 "mode of $d"
	done < <(find "$CACHE" -mindepth 1 -type d)
	while read -r f; do
		assert_eq "$(stat -c %a "$f")" 600 "mode of $f"
	done < <(find "$XDG_CACHE_HOME/ai" "$XDG_DATA_HOME/ai" -type f)
	[[ -n $(entries) ]]
	run grep -rl -- "$KEY" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"
	assert_eq "$status" 1 "grep status (1: no file holds the key)"
	# --log-prompts keeps the prompt, never the key.
	assert_contains "$(ledger 'SELECT prompt FROM calls WHERE prompt IS NOT NULL')" "text"
}

@test "ledger: AI_LEDGER=0 and ledger = no write no ledger" {
	AI_LEDGER=0 run sum P "text"
	assert_eq "$status" 0
	[[ ! -e $DB ]] || { echo "a ledger was made" >&2; false; }
	mkdir -p "$XDG_CONFIG_HOME/ai"
	echo 'ledger = no' >"$XDG_CONFIG_HOME/ai/config"
	run sum P "other"
	assert_eq "$status" 0
	[[ ! -e $DB ]] || { echo "a ledger was made" >&2; false; }
	run --separate-stderr ai-usage
	assert_eq "$status" 0
	assert_contains "$stderr" "no usage recorded yet"
	assert_contains "$stderr" "turned off"
}

@test "ledger: a file that is not a database: the answer is printed, one warning, ai-usage says what is wrong" {
	mkdir -p "$(dirname "$DB")"
	echo "not a database, just text" >"$DB"
	for i in $(seq 1 40); do
		echo "Paragraph $i is about item $i and what became of it."
		echo
	done >"$T/long"
	# Several calls in one process (the parts, then their combination): one warning.
	run --separate-stderr ai-summarize --max-input-tokens 100 "$T/long"
	assert_eq "$status" 0
	assert_contains "$output" "echo: "
	(($(request_count $CHAT) > 2))
	assert_eq "$(grep -c . <<<"$stderr")" 1 "warnings"
	assert_contains "$stderr" "ai-summarize: usage ledger not written: '$DB' is not a usage ledger"
	assert_eq "$(cat "$DB")" "not a database, just text" "the file was changed"
	run --separate-stderr ai-usage
	assert_eq "$status" 65
	assert_contains "$stderr" "'$DB' is not a usage ledger (not an SQLite database)"
	# -q keeps the warning out, not the answer.
	run --separate-stderr ai-summarize -q --prompt P <<<"quiet"
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_contains "$output" "quiet"
}

@test "ledger: a directory in its place: the answer is printed, one warning" {
	mkdir -p "$DB"
	run --separate-stderr sum P "text"
	assert_eq "$status" 0
	assert_contains "$output" "echo: P"
	assert_eq "$(grep -c . <<<"$stderr")" 1 "warnings"
	assert_contains "$stderr" "usage ledger not written"
	run --separate-stderr ai-usage
	assert_eq "$status" 65
	assert_contains "$stderr" "not a regular file"
}

@test "ledger: a full disk: the answer is printed, one warning" {
	sum P "make the ledger" >/dev/null
	rows=$(ledger 'SELECT count(*) FROM calls')
	# Files may not grow past 1 KiB: the ledger's next page cannot be written.
	run --separate-stderr bash -c 'trap "" XFSZ; ulimit -f 1; ai-summarize --no-cache --prompt P <<<"full disk"'
	assert_eq "$status" 0
	assert_contains "$output" "echo: P"
	assert_eq "$(grep -c . <<<"$stderr")" 1 "warnings"
	assert_contains "$stderr" "usage ledger not written"
	assert_eq "$(ledger 'SELECT count(*) FROM calls')" "$rows" "rows"
	assert_eq "$(ledger 'PRAGMA integrity_check')" ok
}

@test "ledger: locked by another process past the timeout: the answer is printed, one warning" {
	sum P "make the ledger" >/dev/null
	mkfifo "$T/fifo"
	sqlite3 "$DB" <"$T/fifo" >/dev/null 2>&1 &
	holder=$!
	exec 5>"$T/fifo"
	echo 'BEGIN IMMEDIATE;' >&5
	echo "INSERT INTO calls(ts_ms) VALUES(0);" >&5
	sleep 0.2
	start=$(date +%s%N)
	run --separate-stderr sum P "while locked"
	ms=$((($(date +%s%N) - start) / 1000000))
	echo 'ROLLBACK;' >&5
	exec 5>&-
	wait "$holder"
	assert_eq "$status" 0
	assert_contains "$output" "echo: P"
	assert_eq "$(grep -c . <<<"$stderr")" 1 "warnings"
	assert_contains "$stderr" "locked by another process"
	((ms >= 4500)) || { echo "gave up after $ms ms" >&2; false; }
}

@test "cache: a hit does not run api_key_cmd (no password prompt for an answer already known)" {
	unset OPENAI_API_KEY
	mkdir -p "$XDG_CONFIG_HOME/ai"
	printf 'api_key_cmd = echo run >>%s; echo sk-cmd\n' "$T/ran" >"$XDG_CONFIG_HOME/ai/config"
	run ai-summarize --prompt P <<<"same"
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$T/ran")" 1 "key command runs for the request that is sent"
	run ai-summarize --prompt P <<<"same"
	assert_eq "$status" 0
	assert_eq "$(wc -l <"$T/ran")" 1 "and not for the cache hit"
	assert_eq "$(request_count $CHAT)" 1
}

@test "cache: a hit, ai-usage and a dry run never load libcurl; a request does" {
	# The dynamic loader names every library it opens, dlopen'd ones too.
	loaded() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -c 'file=libcurl\.so.*dynamically loaded' || true; }
	assert_eq "$(loaded ai-summarize --prompt P <<<"same")" 1 "the miss loads it"
	assert_eq "$(loaded ai-summarize --prompt P <<<"same")" 0 "the hit does not"
	assert_eq "$(loaded ai-usage)" 0 "ai-usage does not"
	assert_eq "$(loaded ai-summarize --dry-run --prompt P <<<"other")" 0 "a dry run does not"
	assert_eq "$(request_count $CHAT)" 1
}

@test "cache: -v says a hit was a hit, with its key and age, and that nothing went out" {
	run --separate-stderr ai-summarize -v <<<"same text"
	assert_eq "$status" 0
	assert_not_contains "$stderr" "cache hit"
	run --separate-stderr ai-summarize -v <<<"same text"
	assert_eq "$status" 0
	[[ $stderr =~ cache\ hit,\ key\ [0-9a-f]{12}\.\.\.,\ age\ [0-9]+s ]] || { echo "$stderr" >&2; false; }
	assert_not_contains "$stderr" "POST "
	assert_eq "$(request_count /v1/chat/completions)" 1
}

@test "cache: ai-usage --cache-stats gives entries, bytes on disk and the hit rate" {
	run --separate-stderr ai-usage --cache-stats --json
	assert_eq "$status" 0
	assert_eq "$(jq -c '[.entries, .bytes_on_disk, .requests]' <<<"$output")" '[0,0,null]'
	sum P "one text" >/dev/null
	sum P "one text" >/dev/null
	sum P "another text" >/dev/null
	run --separate-stderr ai-usage --cache-stats --json
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(jq -c '[.entries, .requests, .hits]' <<<"$output")" '[2,3,1]'
	# Bytes on disk are the allocated blocks: at least the lengths, as du counts them.
	(($(jq .bytes_on_disk <<<"$output") >= $(jq .bytes <<<"$output")))
	assert_eq "$(jq .bytes_on_disk <<<"$output")" \
		"$(find "$CACHE" -type f ! -name '.*' -printf '%b\n' | awk '{ s += $1 * 512 } END { print s }')"
	run --separate-stderr ai-usage --cache-stats
	assert_eq "$status" 0
	assert_contains "$output" "entries: 2"
	assert_contains "$output" "hit rate: 33.3% (1 of 3 calls in the ledger)"
}

@test "cache: the cap counts blocks on disk, not the answers' lengths" {
	# Each entry is a few hundred bytes long but takes a whole block: a cap of 6 blocks holds
	# at most 6 entries, where counting lengths would have kept all 20.
	blk=$(stat -f -c %S "$XDG_CACHE_HOME" 2>/dev/null || echo 4096)
	for i in $(seq 1 20); do
		AI_CACHE_MAX=$((6 * blk)) sum P "text number $i" >/dev/null
	done
	n=$(entries | wc -l)
	disk=$(find "$CACHE" -type f ! -name '.*' -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }')
	((n >= 1 && n <= 6)) || { echo "$n entries" >&2; false; }
	((disk <= 6 * blk)) || { echo "$disk bytes on disk" >&2; false; }
}
