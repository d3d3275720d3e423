#!/usr/bin/env bats
# ai-ask against the test server over an index of tests/fixtures/corpus:
# retrieval quality, the grounded prompt, citations, and the failures its
# users meet.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	CORPUS=$(cd "$BATS_TEST_DIRNAME/../fixtures/corpus" && pwd -P)
	DB=$T/index.db
	(cd "$CORPUS" && ai-index --db "$DB" -q --chunk-tokens 60 --overlap 0 *.md *.txt)
}
teardown() { stop_server; }

CHAT=/v1/chat/completions
EMB=/v1/embeddings

# recall MODE...: how many of the corpus questions find their document among the 5 passages.
recall() {
	local q s hit=0
	while IFS=$'\t' read -r q s; do
		[[ $q == \#* ]] && continue
		# --no-stdin: in a loop that reads stdin, ai-ask must not take the rest of the file.
		if ai-ask --no-stdin --db "$DB" -q --retrieve-only -k 5 "$@" "$q" | jq -r .source | grep -qxF "$CORPUS/$s"; then
			hit=$((hit + 1))
		else
			echo "# miss ($*): $q" >&3
		fi
	done <"$CORPUS/questions.tsv"
	echo "$hit"
}

@test "ask: recall@5 over the corpus, BM25 alone and hybrid, is at least 23 of 25" {
	# Every question shares at least one content word with the passage that answers it, as a
	# user's question usually does; 12 documents on unrelated subjects then leave little
	# excuse for a miss, so the floor is 0.92 (23 of 25): two misses allowed for the
	# stop-word-heavy questions ("Why are leaves green?") where the words are few.
	n=$(grep -vc '^#' "$CORPUS/questions.tsv")
	assert_eq "$n" 25 questions
	bm25=$(recall --no-embed)
	hybrid=$(recall)
	echo "# recall@5: BM25 $bm25/25, hybrid $hybrid/25" >&3
	((bm25 >= 23)) || { echo "BM25 recall@5 $bm25/25" >&2; false; }
	((hybrid >= 23)) || { echo "hybrid recall@5 $hybrid/25" >&2; false; }
	assert_eq "$(request_count $CHAT)" 0 "chat requests"
}

@test "ask: the prompt numbers the passages; Sources name the ones the answer cites" {
	ctl '{"push":[{"path":"/v1/chat/completions","reply":"Bake it at 250 degrees [1], lid on first [2]. See also [9]."}]}'
	run --separate-stderr ai-ask --db "$DB" "How long do I bake the sourdough loaf in the Dutch oven?"
	assert_eq "$status" 0
	p=$(last_request $CHAT | jq -r '.body.messages[-1].content')
	assert_contains "$p" "Cite the passages"
	assert_contains "$p" "Question: How long do I bake the sourdough loaf"
	assert_contains "$output" "Bake it at 250 degrees [1], lid on first [2]."
	assert_contains "$output" $'\n\nSources:\n[1] '
	# Each cited source line is the header of that passage in the prompt.
	for n in 1 2; do
		src=$(grep "^\[$n\] " <<<"$output")
		[[ -n $src ]] || { echo "no source [$n]" >&2; false; }
		assert_contains "$p" "$src"
	done
	assert_not_contains "$output" "[3] "
	assert_not_contains "$output" "[9] "
	assert_contains "$stderr" "cites 1 passage number that was not given"
	assert_contains "$(grep '^\[1\] ' <<<"$output")" "sourdough.md:"
}

@test "ask: --json gives answer, sources with scores, usage" {
	ctl '{"push":[{"path":"/v1/chat/completions","reply":"Two high tides a day [1].","usage":{"prompt_tokens":300,"completion_tokens":7,"total_tokens":307}}]}'
	run --separate-stderr ai-ask --db "$DB" --json -k 3 "How many high tides are there each day?"
	assert_eq "$status" 0
	assert_eq "$(jq -r .answer <<<"$output")" "Two high tides a day [1]."
	assert_eq "$(jq -r '.sources | length' <<<"$output")" 3
	assert_eq "$(jq -r '.sources[0].source' <<<"$output")" "$CORPUS/tides.md"
	assert_eq "$(jq -r '.sources[0].n' <<<"$output")" 1
	assert_eq "$(jq -r '.sources[0].cited' <<<"$output")" true
	assert_eq "$(jq -r '.sources[0].lines | test("^[0-9]+(-[0-9]+)?$")' <<<"$output")" true
	assert_eq "$(jq -r '.sources[0].score | type' <<<"$output")" number
	assert_eq "$(jq -c .usage <<<"$output")" '{"prompt_tokens":300,"completion_tokens":7}'
	assert_eq "$(jq -r .retrieval <<<"$output")" hybrid
}

@test "ask: nothing relevant: says so and does not call the model" {
	run --separate-stderr ai-ask --db "$DB" "xylophone zeppelin quasar"
	assert_eq "$status" 1
	assert_eq "$output" ""
	assert_contains "$stderr" "nothing in collection 'default' is relevant"
	assert_eq "$(request_count $CHAT)" 0
}

@test "ask: --retrieve-only prints JSON lines and makes no chat call; offline it uses BM25" {
	run --separate-stderr ai-ask --db "$DB" --retrieve-only -k 4 "When should a worn chain be replaced?"
	assert_eq "$status" 0
	assert_eq "$(wc -l <<<"$output")" 4 lines
	assert_eq "$(head -1 <<<"$output" | jq -r .source)" "$CORPUS/bicycle.md"
	assert_eq "$(head -1 <<<"$output" | jq -r '.n, (.score|type), (.text|type)' | paste -sd,)" "1,number,string"
	assert_eq "$(jq -s 'map(.cosine | type) | index("number") != null' <<<"$output")" true "some cosine"
	assert_eq "$(request_count $CHAT)" 0
	# The question's embedding came through the cache the second time.
	n=$(request_count $EMB)
	ai-ask --db "$DB" --retrieve-only "When should a worn chain be replaced?" >/dev/null
	assert_eq "$(request_count $EMB)" "$n" "embeddings requests on a repeat"
	unset OPENAI_BASE_URL OPENAI_API_KEY
	run --separate-stderr ai-ask --db "$DB" --retrieve-only "When should a worn chain be replaced?"
	assert_eq "$status" 0
	assert_eq "$(head -1 <<<"$output" | jq -r .source)" "$CORPUS/bicycle.md"
	assert_eq "$(head -1 <<<"$output" | jq -r .cosine)" null
}

@test "ask: an embeddings service that fails falls back to BM25 with a note" {
	ctl '{"push":[{"path":"/v1/embeddings","status":503,"times":5}]}'
	run --separate-stderr ai-ask --db "$DB" --retries 0 --no-cache --retrieve-only "Why are leaves green?"
	assert_eq "$status" 0
	assert_contains "$stderr" "BM25 alone"
	assert_eq "$(head -1 <<<"$output" | jq -r .source)" "$CORPUS/photosynthesis.md"
}

@test "ask: --int8 finds what float32 finds" {
	for q in "What buried Pompeii?" "Which enzyme fixes carbon dioxide?" "How high is the Pont du Gard?"; do
		a=$(ai-ask --db "$DB" --retrieve-only -k 3 "$q" | jq -r .text | head -1)
		b=$(ai-ask --db "$DB" --retrieve-only --int8 -k 3 "$q" | jq -r .text | head -1)
		assert_eq "$b" "$a" "$q"
	done
}

@test "ask: a question embedded by another model is refused, naming both" {
	run --separate-stderr ai-ask --db "$DB" --embed-model other-embedder "Why are leaves green?"
	assert_eq "$status" 65
	assert_contains "$stderr" "'text-embedding-3-small'"
	assert_contains "$stderr" "'other-embedder'"
	assert_eq "$(request_count $CHAT)" 0
	AI_EMBED_MODEL=other-embedder run --separate-stderr ai-ask --db "$DB" --retrieve-only "leaves"
	assert_eq "$status" 65
}

@test "ask: --stream prints the answer as it arrives, then the sources" {
	ctl '{"push":[{"path":"/v1/chat/completions","reply":"Grind finer [1]."}]}'
	# Run where the documents are, the sources read relative to it.
	run --separate-stderr bash -c 'cd "$1" && ai-ask --db "$2" --stream "My espresso tastes sour, what should I change?"' \
		_ "$CORPUS" "$DB"
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .body.stream)" true
	assert_contains "$output" $'Grind finer [1].\n\nSources:\n[1] coffee.md:'
}

@test "ask: the question comes from stdin too; none at all is an error" {
	run --separate-stderr ai-ask --db "$DB" --retrieve-only -k 1 <<<"What does White offer in the Queen's Gambit?"
	assert_eq "$status" 0
	assert_eq "$(jq -r .source <<<"$output")" "$CORPUS/chess.md"
	run --separate-stderr ai-ask --db "$DB" </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no question"
}

@test "ask: missing index, missing collection and a chat failure" {
	run --separate-stderr ai-ask --db "$T/none.db" "anything"
	assert_eq "$status" 66
	assert_contains "$stderr" "no index at"
	assert_contains "$stderr" "ai-index"
	run --separate-stderr ai-ask --db "$DB" -c nope "anything"
	assert_eq "$status" 66
	assert_contains "$stderr" "no collection 'nope'"
	ctl '{"push":[{"path":"/v1/chat/completions","status":500,"times":5}]}'
	run --separate-stderr ai-ask --db "$DB" --retries 0 "Why are leaves green?"
	assert_eq "$status" 75
	assert_eq "$output" ""
	run --separate-stderr ai-ask -k 0 "x"
	assert_eq "$status" 64
}

@test "ask: a BM25-only index answers without embedding the question" {
	ai-index --db "$T/bm.db" -q --no-embed "$CORPUS"/*.md 2>/dev/null
	n=$(request_count $EMB)
	run --separate-stderr ai-ask --db "$T/bm.db" --json "Why are leaves green?"
	assert_eq "$status" 0
	assert_eq "$(request_count $EMB)" "$n"
	assert_eq "$(jq -r .retrieval <<<"$output")" bm25
}

@test "ask: output to a full disk fails" {
	run bash -c 'ai-ask --db "$1" --retrieve-only "Why are leaves green?" >/dev/full' _ "$DB"
	assert_eq "$status" 74
}

@test "ask: a vector file missing or cut short is a clear error; BM25 alone still answers" {
	mv "$DB.vec" "$T/saved.vec"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only "espresso grind"
	assert_eq "$status" 65
	assert_contains "$stderr" "$DB.vec"
	assert_contains "$stderr" "is missing"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --no-embed "espresso grind"
	assert_eq "$status" 0
	head -c 100 "$T/saved.vec" >"$DB.vec"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --int8 "espresso grind"
	assert_eq "$status" 65
	assert_contains "$stderr" "cut short"
	run --separate-stderr ai-index --db "$DB" --force "$CORPUS"/coffee.md
	assert_eq "$status" 65
	assert_contains "$stderr" "cut short"
	mv "$T/saved.vec" "$DB.vec"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --no-bm25 "espresso grind"
	assert_eq "$status" 0
	assert_eq "$(jq -r .bm25 <<<"$output" | sort -u)" null
}

@test "ask: escape sequences in the answer are shown on a terminal, streamed or not; kept with --raw or in a pipe" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	q="My espresso tastes sour, what should I change?"
	ctl '{"set":{"reply":"Grind\u001b]0;title\u0007 finer\u001b[2J [1]."}}'
	for mode in "" --stream; do
		out=$(on_tty "ai-ask --no-cache $mode --db '$DB' '$q'" </dev/null)
		assert_not_contains "$out" $'\e'
		assert_not_contains "$out" $'\a'
		assert_contains "$out" $'Grind\u241b]0;title\u2407 finer\u241b[2J [1].'
		out=$(on_tty "ai-ask --no-cache $mode --raw --db '$DB' '$q'" </dev/null)
		assert_contains "$out" $'Grind\e]0;title\a finer\e[2J [1].'
		# Not a terminal: byte for byte.
		ai-ask --no-cache $mode --db "$DB" "$q" >"$T/out"
		assert_eq "$(head -n 1 "$T/out" | od -An -tx1)" "$(printf 'Grind\e]0;title\a finer\e[2J [1].\n' | od -An -tx1)"
	done
}

# ---- fusion on real text (issue 14): tests/fixtures/rag-dev ---------------------------------

# rag_dev MODEL: indexes the development set's 155 Debian man pages into $T/dev.db with MODEL.
rag_dev() {
	RAGDEV=$(cd "$BATS_TEST_DIRNAME/../fixtures/rag-dev" && pwd -P)
	mkdir -p "$T/dev" && tar -C "$T/dev" -xzf "$RAGDEV/dev-docs.tar.gz"
	(cd "$T/dev/docs" && ai-index --db "$T/dev.db" -q --embed-model "$1" ./*.txt)
}

# dev_hits ARG...: how many of the 150 development questions find their page among 5 passages.
# The passages of question i follow a line {"q":i}; one jq then counts the questions whose page
# is among them (a jq a question took longer than ai-ask did).
dev_hits() {
	local q a i=0
	while IFS=$'\t' read -r q a; do
		echo "{\"q\":$i}"
		ai-ask --no-stdin --db "$T/dev.db" -q --retrieve-only -k 5 "$@" "$q" || true
		i=$((i + 1))
	done <"$RAGDEV/dev.tsv" >"$T/hits.jsonl"
	jq -n --rawfile tsv "$RAGDEV/dev.tsv" '
		($tsv | rtrimstr("\n") | split("\n") | map(split("\t")[1])) as $page |
		[foreach inputs as $o (null; if $o | has("q") then $o.q else . end;
			. as $i | select(($o.source? // "") | endswith("/" + $page[$i])) | $i)] | unique | length
	' "$T/hits.jsonl"
}

@test "ask: a weak embedding does not pull hybrid recall@5 below BM25's on man pages" {
	# Measured: BM25 alone 115/150, hybrid 116/150.  Plain reciprocal-rank fusion
	# (k0 60, equal weights) gave 72/150: a weak embedding's hits crowded out BM25's.
	rag_dev test-embed-weak
	assert_eq "$(wc -l <"$RAGDEV/dev.tsv")" 150 questions
	bm25=$(dev_hits --no-embed)
	hybrid=$(dev_hits --embed-model test-embed-weak)
	echo "# recall@5, weak embedding: BM25 $bm25/150, hybrid $hybrid/150" >&3
	((bm25 >= 110)) || { echo "BM25 recall@5 $bm25/150" >&2; false; }
	((hybrid >= bm25)) || { echo "hybrid $hybrid/150 below BM25 $bm25/150" >&2; false; }
}

@test "ask: a good embedding lifts hybrid recall@5 above both halves on man pages" {
	# Measured: BM25 alone 115/150, vectors alone 100/150, hybrid 120/150.
	rag_dev test-embed-good
	bm25=$(dev_hits --no-embed)
	vec=$(dev_hits --embed-model test-embed-good --no-bm25)
	hybrid=$(dev_hits --embed-model test-embed-good)
	echo "# recall@5, good embedding: BM25 $bm25/150, vectors $vec/150, hybrid $hybrid/150" >&3
	((vec >= 95)) || { echo "vector recall@5 $vec/150" >&2; false; }
	((hybrid >= bm25 + 2 && hybrid >= vec + 2)) ||
		{ echo "hybrid $hybrid/150, BM25 $bm25/150, vectors $vec/150" >&2; false; }
}

@test "ask: --vector-weight is checked, and weighs the vectors in the fusion" {
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --vector-weight 0 "espresso"
	assert_eq "$status" 64
	assert_contains "$stderr" "--vector-weight"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --vector-weight x "espresso"
	assert_eq "$status" 64
	# A passage found by the vectors alone scores w g / (5 + rank), g the query's
	# gate (kb.h): the same for both runs, so the weights' ratio shows.
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --no-bm25 -k 1 --vector-weight 2 "espresso grind"
	assert_eq "$status" 0
	s2=$(jq .score <<<"$output")
	jq -e '.score > 0 and .score <= 2 / 6 + 1e-6' <<<"$output"
	run --separate-stderr ai-ask --db "$DB" --retrieve-only --no-bm25 -k 1 "espresso grind"
	jq -e --argjson s2 "$s2" '(.score * 5 - $s2 | fabs) < 1e-6' <<<"$output"
}

@test "ask: a weak embedding's noise does not break BM25's near-ties (held-out man pages)" {
	# Two held-out questions whose page BM25 ranks fifth: without the gate
	# (kb.h), test-embed-weak's random hits lifted BM25's sixth and seventh
	# passages over it.  The same embedding may still fill a list BM25 leaves short.
	RAGDEV=$(cd "$BATS_TEST_DIRNAME/../fixtures/rag-dev" && pwd -P)
	mkdir -p "$T/h2" && tar -C "$T/h2" -xzf "$RAGDEV/heldout2-docs.tar.gz"
	(cd "$T/h2/docs" && ai-index --db "$T/h2.db" -q --embed-model test-embed-weak ./*.txt)
	for qa in "Local hostname configuration file:hostname.5.txt" \
		"Portable Document Format (PDF) page merger:pdfunite.1.txt"; do
		run --separate-stderr ai-ask --no-stdin --db "$T/h2.db" -q --retrieve-only -k 5 --embed-model test-embed-weak "${qa%%:*}"
		assert_eq "$status" 0
		assert_eq "$(jq -r .source <<<"$output" | grep -c "/${qa##*:}\$")" 1 "${qa##*:} among the 5 passages"
		run ai-ask --no-stdin --db "$T/h2.db" -q --retrieve-only -k 5 --no-embed "${qa%%:*}"
		assert_eq "$(jq -r .source <<<"$output" | grep -c "/${qa##*:}\$")" 1 "BM25 alone finds ${qa##*:}"
	done
	# A question BM25 finds nothing for is answered by the vectors alone, gate or not.
	run --separate-stderr ai-ask --no-stdin --db "$T/h2.db" -q --retrieve-only -k 3 --embed-model test-embed-weak "zzyzx qwxv"
	assert_eq "$status" 0
	assert_eq "$(grep -c . <<<"$output")" 3 "three passages from the vectors"
	jq -s -e 'all(.bm25 == null and .cosine != null)' <<<"$output" >/dev/null
}
