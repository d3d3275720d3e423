#!/usr/bin/env bats
# ai-index against the test server: batching, incremental re-indexing,
# BM25-only indexes, rejected embeddings, bad files, several writers at
# once and a killed run.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	CORPUS=$(cd "$BATS_TEST_DIRNAME/../fixtures/corpus" && pwd -P)
	DB=$T/index.db
}
teardown() { stop_server; }

EMB=/v1/embeddings

# stats KEY: one figure of --stats --json
stats() {
	ai-index --db "$DB" --stats --json | jq -r ".$1"
}

@test "index: files are chunked, embedded in batches and stored" {
	run --separate-stderr ai-index --db "$DB" --chunk-tokens 60 --overlap 0 --embed-batch 10 "$CORPUS"/*.md
	assert_eq "$status" 0 status
	assert_contains "$stderr" "10 indexed"
	assert_eq "$(stats documents)" 10
	chunks=$(stats chunks)
	((chunks > 20)) || { echo "only $chunks chunks" >&2; false; }
	assert_eq "$(stats vectors)" "$chunks" vectors
	assert_eq "$(stats dim)" 64
	assert_eq "$(stats model)" text-embedding-3-small
	# Batches of at most 10 inputs, as many as needed and no more.
	assert_eq "$(request_count $EMB)" $(((chunks + 9) / 10)) requests
	sizes=$(requests $EMB | jq -r '.body.input | length' | sort -n | tail -1)
	assert_eq "$sizes" 10 "largest batch"
	# A chunk's embedding text carries its heading path.
	assert_contains "$(requests $EMB | jq -r '.body.input[]')" "Sourdough bread > Baking"
	run sqlite3 "$DB" "PRAGMA integrity_check"
	assert_eq "$output" ok
}

@test "index: an unchanged file costs no embeddings request; a changed one is replaced" {
	cp "$CORPUS"/coffee.md "$CORPUS"/tides.md "$T"/
	ai-index --db "$DB" "$T"/coffee.md "$T"/tides.md 2>/dev/null
	n=$(request_count $EMB)
	run --separate-stderr ai-index --db "$DB" --json "$T"/coffee.md "$T"/tides.md
	assert_eq "$status" 0
	assert_eq "$(request_count $EMB)" "$n" "requests after an unchanged rerun"
	assert_eq "$(jq -r .status <<<"$output" | sort | uniq -c | awk '{print $1, $2}')" "2 unchanged"
	echo "A new paragraph about milk foam." >>"$T"/coffee.md
	run --separate-stderr ai-index --db "$DB" --json "$T"/coffee.md "$T"/tides.md
	assert_eq "$status" 0
	assert_eq "$(request_count $EMB)" $((n + 1)) "one request for the changed file"
	assert_contains "$(last_request $EMB | jq -r '.body.input[]')" "milk foam"
	assert_eq "$(jq -r 'select(.source | endswith("coffee.md")) | .status' <<<"$output")" replaced
	assert_eq "$(stats documents)" 2
	assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunks_fts WHERE text LIKE '%milk foam%'")" 1
	# --force embeds again (the cache answers it).
	run ai-index --db "$DB" --force --json "$T"/tides.md
	assert_eq "$(jq -r .status <<<"$output")" replaced
}

@test "index: --files-from - reads names from find, and stdin needs --source" {
	(cd "$CORPUS" && find . -name '*.txt' | sort | ai-index --db "$DB" --files-from - -q)
	assert_eq "$(ai-index --db "$DB" --list --json | jq -r .source | paste -sd,)" "$CORPUS/compost.txt,$CORPUS/git-rebase.txt"
	run --separate-stderr ai-index --db "$DB" <<<"some text"
	assert_eq "$status" 64
	assert_contains "$stderr" "--source"
	printf 'page one\fpage two about pdf text\n' | ai-index --db "$DB" --source f.pdf -q
	run ai-index --db "$DB" --list
	assert_contains "$output" "f.pdf"
	run --separate-stderr ai-index --db "$DB" --source x "$CORPUS/coffee.md"
	assert_eq "$status" 64
}

@test "index: --no-embed stores BM25 only, says so once, sends nothing" {
	run --separate-stderr ai-index --db "$DB" --no-embed "$CORPUS"/*.md
	assert_eq "$status" 0
	assert_eq "$(grep -c 'BM25 only' <<<"$stderr")" 1 "BM25 messages"
	assert_eq "$(request_count)" 0 requests
	assert_eq "$(stats vectors)" 0
	assert_eq "$(stats model)" null
	assert_contains "$(ai-index --db "$DB" --stats)" "none (BM25 only)"
}

@test "index: no endpoint configured at all is BM25 only, offline" {
	unset OPENAI_BASE_URL OPENAI_API_KEY
	run --separate-stderr ai-index --db "$DB" "$CORPUS"/coffee.md "$CORPUS"/tides.md
	assert_eq "$status" 0
	assert_eq "$(grep -c 'no embeddings endpoint' <<<"$stderr")" 1
	assert_eq "$(stats documents)" 2
}

@test "index: a server without embeddings (404) gives a BM25 index, said once" {
	ctl '{"push":[{"path":"/v1/embeddings","status":404,"times":100}]}'
	run --separate-stderr ai-index --db "$DB" --embed-batch 5 -P 1 --chunk-tokens 60 "$CORPUS"/*.md
	assert_eq "$status" 0
	assert_eq "$(grep -c 'BM25 only' <<<"$stderr")" 1 "messages"
	assert_eq "$(request_count $EMB)" 1 "requests: the first 404 stops them"
	assert_eq "$(stats documents)" 10
	assert_eq "$(stats vectors)" 0
}

@test "index: embeddings with NaN, the wrong count or dimension reject that document only" {
	ai-index --db "$DB" -q "$CORPUS"/coffee.md
	before=$(sqlite3 "$DB" "SELECT count(*) FROM chunks; SELECT count(*) FROM vblocks")
	printf 'one short note\n' >"$T/nan.txt"
	ctl '{"push":[{"path":"/v1/embeddings","body":"{\"data\":[{\"index\":0,\"embedding\":[NaN,1,0]}],\"model\":\"m\"}"}]}'
	run --separate-stderr ai-index --db "$DB" --no-cache "$T/nan.txt"
	assert_eq "$status" 69
	assert_contains "$stderr" "nan.txt"
	assert_contains "$stderr" "NaN"
	ctl '{"push":[{"path":"/v1/embeddings","body":{"data":[],"model":"m"}}]}'
	run --separate-stderr ai-index --db "$DB" --no-cache "$T/nan.txt"
	assert_eq "$status" 69
	assert_contains "$stderr" "got 0"
	ctl '{"set":{"embed_dim":32}}'
	run --separate-stderr ai-index --db "$DB" --no-cache "$T/nan.txt"
	assert_eq "$status" 65
	assert_contains "$stderr" "dimension 32"
	assert_contains "$stderr" "dimension 64"
	assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunks; SELECT count(*) FROM vblocks")" "$before" "store unchanged"
	assert_eq "$(stats documents)" 1
	# One good, one bad: the good one is stored and the exit status says some failed.
	ctl '{"set":{"embed_dim":64}}'
	printf 'another short note\n' >"$T/good.txt"
	ctl '{"push":[{"path":"/v1/embeddings","body":"{\"data\":[{\"index\":0,\"embedding\":[NaN]}]}"}]}'
	run --separate-stderr ai-index --db "$DB" --no-cache -P 1 --embed-batch 1 "$T/nan.txt" "$T/good.txt"
	assert_eq "$status" 1
	assert_eq "$(stats documents)" 2
}

@test "index: bad files and bad databases get clear errors" {
	run --separate-stderr ai-index --db "$DB" "$T/missing.md" "$CORPUS/coffee.md"
	assert_eq "$status" 1
	assert_contains "$stderr" "missing.md"
	printf 'bad \xff byte\n' >"$T/bad.txt"
	run --separate-stderr ai-index --db "$DB" "$T/bad.txt"
	assert_eq "$status" 65
	assert_contains "$stderr" "bad.txt"
	echo "just some text, not a database at all, long enough for a header" >"$T/text.db"
	run --separate-stderr ai-index --db "$T/text.db" "$CORPUS/coffee.md"
	assert_eq "$status" 65
	assert_contains "$stderr" "not an ai-index database"
	sqlite3 "$DB" "PRAGMA user_version = 7"
	run --separate-stderr ai-index --db "$DB" "$CORPUS/coffee.md"
	assert_eq "$status" 65
	assert_contains "$stderr" "schema 7"
	run --separate-stderr ai-index --db "$T/none.db" --stats
	assert_eq "$status" 66
	assert_contains "$stderr" "no index"
	run --separate-stderr ai-index --chunk-tokens 10 x
	assert_eq "$status" 64
	run --separate-stderr ai-index --chunk-tokens 100 --overlap 100 x
	assert_eq "$status" 64
}

@test "index: --rm, --list and --stats" {
	ai-index --db "$DB" -q -c notes "$CORPUS"/coffee.md "$CORPUS"/chess.md
	run ai-index --db "$DB" -c notes --list
	assert_eq "$(wc -l <<<"$output")" 2
	run --separate-stderr ai-index --db "$DB" -c notes --rm "$CORPUS"/coffee.md --rm nothing
	assert_eq "$status" 1
	assert_contains "$stderr" "'nothing' is not in collection 'notes'"
	run ai-index --db "$DB" -c notes --stats --json
	assert_eq "$(jq -r .documents <<<"$output")" 1
	assert_eq "$(jq -r .collection <<<"$output")" notes
	# A collection that is not there is an error, as in ai-ask, not zeros.
	for o in --stats --list; do
		run --separate-stderr ai-index --db "$DB" -c nosuch $o
		assert_eq "$status" 66 "$o"
		assert_eq "$output" "" "$o"
		assert_contains "$stderr" "has no collection 'nosuch': build it with ai-index -c nosuch"
	done
	run --separate-stderr ai-ask --db "$DB" -c nosuch --retrieve-only coffee
	assert_eq "$status" 66
	assert_contains "$stderr" "has no collection 'nosuch'"
	run --separate-stderr ai-index --db "$DB" --stats
	assert_eq "$status" 66 "no default collection"
}

@test "index: --collections lists the collections; one chunk is not 'chunks'" {
	run --separate-stderr ai-index --db "$DB" --no-embed -c notes --source one <<<"a short note"
	assert_eq "$status" 0
	assert_contains "$stderr" "1 indexed (1 chunk), 0 unchanged, 0 failed"
	ai-index --db "$DB" --no-embed -q -c "my docs" "$CORPUS"/coffee.md
	run --separate-stderr ai-index --db "$DB" --collections
	assert_eq "$status" 0
	assert_eq "$output" $'my docs\nnotes'
	run --separate-stderr ai-index --db "$DB" --collections --json
	assert_eq "$(jq -r '[.collection, .chunks, .vectors] | @tsv' <<<"$output" | tail -1)" $'notes\t1\tfalse'
	run --separate-stderr ai-index --db "$T/none.db" --collections
	assert_eq "$status" 66
	assert_contains "$stderr" "no index at"
}

@test "index: the default index lives in XDG_DATA_HOME, mode 0600" {
	ai-index -q "$CORPUS"/coffee.md
	f=$XDG_DATA_HOME/ai/index.db
	[[ -f $f ]]
	assert_eq "$(stat -c %a "$f")" 600
	assert_eq "$(stat -c %a "$XDG_DATA_HOME/ai")" 700
}

@test "index: --dry-run prints the embeddings request and writes nothing" {
	run --separate-stderr ai-index --db "$DB" --dry-run "$CORPUS"/coffee.md
	assert_eq "$status" 0
	assert_contains "$output" "POST http://127.0.0.1:$PORT/v1/embeddings"
	assert_not_contains "$output" "$KEY"
	assert_eq "$(request_count)" 0
	[[ ! -e $DB ]]
}

@test "index: several writers at once and a reader meanwhile: nothing lost, no error" {
	ctl '{"set":{"latency_ms":5}}'
	mkdir "$T/docs"
	for i in $(seq 1 40); do
		printf '# Note %d\n\nNote number %d talks about topic%d and shared words.\n' "$i" "$i" "$i" >"$T/docs/n$i.md"
	done
	pids=()
	for w in 1 2 3 4; do
		# Overlapping sets: every file is indexed by two writers.
		ls "$T"/docs/n*.md | awk -v w=$w 'NR % 4 == w - 1 || NR % 4 == w % 4' |
			ai-index --db "$DB" -q --embed-batch 3 --files-from - 2>"$T/w$w.err" &
		pids+=($!)
	done
	reads=0
	while kill -0 "${pids[0]}" 2>/dev/null; do
		if [[ -s $DB ]] && ai-ask --db "$DB" --retrieve-only -q "topic7 shared" >/dev/null 2>>"$T/r.err"; then :; fi
		reads=$((reads + 1))
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for w in 1 2 3 4; do assert_eq "$(cat "$T/w$w.err")" "" "writer $w stderr"; done
	assert_eq "$(grep -v 'not relevant\|nothing in\|no index\|no collection' "$T/r.err" 2>/dev/null)" "" "reader stderr"
	assert_eq "$(stats documents)" 40
	assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM documents GROUP BY source HAVING count(*) > 1")" ""
	assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM chunks")" "$(sqlite3 "$DB" "SELECT count(*) FROM chunks_fts")"
	assert_eq "$(sqlite3 "$DB" "PRAGMA integrity_check")" ok
}

@test "index: a run killed mid-way leaves a consistent index, and a rerun completes it" {
	mkdir "$T/docs"
	for i in $(seq 1 30); do
		printf 'Document %d about subject%d.\n' "$i" "$i" >"$T/docs/d$i.txt"
	done
	ctl '{"set":{"latency_ms":60}}'
	ai-index --db "$DB" -q --embed-batch 1 -P 1 "$T"/docs/*.txt &
	pid=$!
	wait_for_requests 8 $EMB 10
	kill -KILL "$pid"
	wait "$pid" || true
	assert_eq "$(sqlite3 "$DB" "PRAGMA integrity_check")" ok
	done1=$(stats documents)
	((done1 > 0 && done1 < 30)) || { echo "$done1 documents after the kill" >&2; false; }
	# Each stored document is whole: its chunks, its text and its vectors.
	assert_eq "$(sqlite3 "$DB" "SELECT count(*) FROM documents d WHERE chunks != (SELECT count(*) FROM chunks WHERE doc = d.id)")" 0
	ctl '{"set":{"latency_ms":0}}'
	n=$(request_count $EMB)
	run --separate-stderr ai-index --db "$DB" --json --no-cache --embed-batch 1 "$T"/docs/*.txt
	assert_eq "$status" 0
	assert_eq "$(jq -r 'select(.status == "unchanged")' <<<"$output" | jq -s length)" "$done1" "skipped"
	assert_eq "$(($(request_count $EMB) - n))" $((30 - done1)) "requests for the rest only"
	assert_eq "$(stats documents)" 30
	assert_eq "$(stats vectors)" 30
}

@test "index: a failing embeddings service is a temporary failure and stores nothing" {
	ctl '{"push":[{"path":"/v1/embeddings","status":500,"times":10}]}'
	run --separate-stderr ai-index --db "$DB" --retries 0 "$CORPUS"/coffee.md
	assert_eq "$status" 75
	assert_contains "$stderr" "500"
	run --separate-stderr ai-index --db "$DB" --stats
	assert_eq "$status" 66 "not even the collection was made"
}

@test "index: progress on a terminal is redrawn in place, but plain lines without escapes when TERM is dumb" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	out=$(TERM=xterm on_tty "ai-index --db '$T/a.db' '$CORPUS/coffee.md'" </dev/null)
	assert_contains "$out" $'\r\e[Kai-index: 1 indexed'
	out=$(TERM=dumb on_tty "ai-index --db '$T/b.db' '$CORPUS/coffee.md'" </dev/null)
	assert_not_contains "$out" $'\e'
	assert_contains "$out" "ai-index: 1 indexed, 0 unchanged, 0 failed"
}

@test "index: one file is one document whatever path names it; sources read relative to where you are" {
	mkdir -p "$T/notes"
	cp "$CORPUS/coffee.md" "$T/notes/keys.md"
	(cd "$T/notes" && ai-index --db "$DB" --no-embed -q keys.md)
	(cd "$T" && ai-index --db "$DB" --no-embed -q notes/keys.md ./notes/../notes/keys.md)
	ai-index --db "$DB" --no-embed -q "$T/notes/keys.md"
	ln -s notes "$T/link"
	ai-index --db "$DB" --no-embed -q "$T/link/keys.md"
	canon=$(cd "$T/notes" && pwd -P)/keys.md
	assert_eq "$(ai-index --db "$DB" --list --json | jq -r .source)" "$canon"
	# Shown relative where that reads better, absolute in JSON.
	run --separate-stderr bash -c 'cd "$1" && ai-index --db "$2" --list' _ "$T" "$DB"
	assert_contains "$output" " notes/keys.md"
	run --separate-stderr bash -c 'cd "$1" && ai-ask --db "$2" --retrieve-only -k 1 espresso grind' _ "$T" "$DB"
	assert_eq "$(jq -r .source <<<"$output")" "$canon"
	# --rm takes the path as typed, from anywhere.
	run --separate-stderr bash -c 'cd "$1" && ai-index --db "$2" --rm ./keys.md' _ "$T/notes" "$DB"
	assert_eq "$status" 0
	assert_eq "$(ai-index --db "$DB" --list --json)" ""
}

# ---- servers that refuse a chunk as too large -------------------------------

# too_big LIMIT: the largest input (in the test server's tokens, bytes / 4 + 1)
# of every logged embeddings request that was over LIMIT, one a line.
too_big() {
	requests $EMB | jq -r --argjson m "$1" '[.body.input[] | length / 4 + 1 | floor] | max | select(. > $m)'
}

@test "index: llama-server's 500 for a chunk over its batch: chunks are halved until they fit, every document indexed" {
	# A default llama-server takes 512 tokens; here 120.
	ctl '{"set":{"embed_max_tokens":120}}'
	run --separate-stderr ai-index --db "$DB" "$CORPUS"/*.md
	assert_eq "$status" 0 "status: $stderr"
	assert_contains "$stderr" "10 indexed"
	assert_contains "$stderr" "input is too large to process"
	assert_contains "$stderr" "chunks of at most 200 tokens from now on"
	assert_contains "$stderr" "chunks of at most 100 tokens from now on"
	assert_not_contains "$stderr" "50 tokens"
	assert_eq "$(stats documents)" 10
	assert_eq "$(stats vectors)" "$(stats chunks)" "every chunk has its vector"
	# A refused request is never sent again as it was: no retry of a permanent error.
	assert_eq "$(requests $EMB | jq -c .body.input | sort | uniq -d)" "" "repeated requests"
	# Each halving was caused by a refusal, and later requests fit.
	(($(too_big 120 | wc -l) >= 2))
	assert_eq "$(requests $EMB | tail -n 1 | jq -r --argjson m 120 '[.body.input[] | length / 4 + 1 | floor] | max <= $m')" true
	# The collection remembers: a later run starts at 100 tokens and is never refused.
	: >"$SERVER_LOG"
	printf '%s\n\n' "$(cat "$CORPUS"/*.md)" >"$T/big.md"
	run --separate-stderr ai-index --db "$DB" "$T/big.md"
	assert_eq "$status" 0 "second run: $stderr"
	assert_not_contains "$stderr" "from now on"
	assert_eq "$(too_big 120)" "" "refused inputs in the second run"
	(($(request_count $EMB) >= 1))
}

@test "index: --chunk-tokens overrides the size the collection learned" {
	ctl '{"set":{"embed_max_tokens":120}}'
	ai-index --db "$DB" -q "$CORPUS/coffee.md"
	: >"$SERVER_LOG"
	run --separate-stderr ai-index --db "$DB" --force --chunk-tokens 300 "$CORPUS/coffee.md"
	assert_eq "$status" 0 "$stderr"
	assert_contains "$stderr" "chunks of at most 150 tokens from now on"
	(($(too_big 120 | wc -l) >= 1))
}

@test "index: OpenAI's 400 for an input over the model's context splits too, instead of dropping the vectors" {
	ctl '{"push":[{"path":"/v1/embeddings","status":400,"body":{"error":{"message":"This model'"'"'s maximum context length is 8192 tokens, however you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length.","type":"invalid_request_error","param":null,"code":null}}}]}'
	run --separate-stderr ai-index --db "$DB" "$CORPUS/coffee.md"
	assert_eq "$status" 0 "$stderr"
	assert_contains "$stderr" "maximum context length is 8192 tokens"
	assert_contains "$stderr" "chunks of at most 200 tokens from now on"
	assert_not_contains "$stderr" "BM25 only"
	assert_eq "$(stats vectors)" "$(stats chunks)"
	(($(stats vectors) > 0))
}

@test "index: a server that refuses even the smallest chunk fails those documents with its words, at once" {
	ctl '{"set":{"embed_max_tokens":2}}'
	run --separate-stderr ai-index --db "$DB" "$CORPUS/coffee.md" "$CORPUS/chess.md"
	assert_eq "$status" 69 "$stderr"
	assert_contains "$stderr" "input is too large to process. increase the physical batch size (even in chunks of 25 tokens)"
	assert_contains "$stderr" "0 indexed"
	assert_contains "$stderr" "2 failed"
	# 400, 200, 100, 50, 25: five refusals, none retried.
	assert_eq "$(request_count $EMB)" 5
	run --separate-stderr ai-index --db "$DB" --list
	assert_eq "$status" 66 "nothing stored"
}

# ---- Ollama: told not to cut --------------------------------------------------

@test "index: Ollama is asked through /api/embed with truncate false, so a chunk too long is split, never cut" {
	# Ollama's /v1/embeddings cuts an input past the context silently; its
	# /api/embed answers 400 when told truncate: false.  The server here cuts
	# above 120 tokens unless told not to.
	ctl '{"set":{"embed_max_tokens":120}}'
	printf 'embed_api = ollama\n' >"$T/conf"
	run --separate-stderr env AI_CONFIG="$T/conf" ai-index --db "$DB" "$CORPUS"/*.md
	assert_eq "$status" 0 "status: $stderr"
	assert_contains "$stderr" "10 indexed"
	assert_contains "$stderr" "the input length exceeds the context length"
	assert_contains "$stderr" "from now on"
	assert_eq "$(request_count $EMB)" 0 "nothing went to /v1/embeddings"
	assert_eq "$(requests /api/embed | jq -r .body.truncate | sort -u)" false
	assert_eq "$(stats vectors)" "$(stats chunks)" "every chunk has its vector"
	# No vector stored was made from a cut input: the last requests fit.
	assert_eq "$(requests /api/embed | tail -n 1 | jq -r '[.body.input[] | length / 4 + 1 | floor] | max <= 120')" true
	# The question is embedded the same way, and retrieval works.
	: >"$SERVER_LOG"
	run --separate-stderr env AI_CONFIG="$T/conf" ai-ask --db "$DB" --retrieve-only -k 1 espresso grind
	assert_eq "$status" 0 "ask: $stderr"
	assert_eq "$(request_count /api/embed)" 1
	assert_eq "$(requests /api/embed | jq -r .body.truncate)" false
}

@test "index: embed_api auto means Ollama's API at Ollama's port 11434, OpenAI's elsewhere; a bad value is a config error" {
	# --dry-run shows where the request would go, and its truncate field.
	run --separate-stderr env OPENAI_BASE_URL=http://127.0.0.1:11434/v1 \
		ai-index --dry-run --db "$T/dry.db" "$CORPUS/coffee.md"
	assert_eq "$status" 0
	assert_eq "${lines[0]}" "POST http://127.0.0.1:11434/api/embed"
	assert_contains "$output" '"truncate":false'
	run --separate-stderr env OPENAI_BASE_URL=http://127.0.0.1:11435/v1 \
		ai-index --dry-run --db "$T/dry.db" "$CORPUS/coffee.md"
	assert_eq "${lines[0]}" "POST http://127.0.0.1:11435/v1/embeddings"
	assert_not_contains "$output" "truncate"
	printf 'embed_api = openai\n' >"$T/conf"
	run --separate-stderr env AI_CONFIG="$T/conf" OPENAI_BASE_URL=http://127.0.0.1:11434/v1 \
		ai-index --dry-run --db "$T/dry.db" "$CORPUS/coffee.md"
	assert_eq "${lines[0]}" "POST http://127.0.0.1:11434/v1/embeddings"
	printf 'embed_api = sometimes\n' >"$T/conf"
	run --separate-stderr env AI_CONFIG="$T/conf" ai-index --db "$DB" "$CORPUS/coffee.md"
	assert_eq "$status" 78
	assert_contains "$stderr" "embed_api"
}
