#!/bin/sh
# rag.sh [O] [BIN] - benchmarks of ai-index and ai-ask (issue 6).
#
#   1. ingest: ai-index on about 8 MB of generated Markdown against the
#      test server at zero latency (64-dim embeddings), in MB of text a second;
#   2. query: the whole ai-ask --retrieve-only process (start, open, the
#      question's embedding from the warm cache, scan, passages) over
#      100,000 chunks of 1,536 dims, float32 and --int8, vectors alone
#      (--no-bm25) and hybrid, median of 11 runs after a warm-up, with its
#      peak RSS, beside membw's read bound for the 614 MB of float32
#      vectors; BM25 alone (--no-embed) at the same size;
#   3. int8 recall@10 against the exact float32 answer, in process.
#
# The 100k database is written directly with kb_put by rag_bench.c (through
# the API it would take hours) and kept in O/bench/rag100000-s2.db (and its
# .vec) for reruns (about 1 GB; RAG_BENCH_N overrides the size).
# RAG_BENCH_OLD=DIR adds an A/B of the float32 queries against DIR/ai-ask
# (an older build), the two run by turns so that both meet the same load.
# The ratio is the whole process's median wall time over membw's bound_ms:
# one core reading 614 MB already in memory.  Each query also gets its best
# wall time and its median CPU time (user + system, all threads), which a
# loaded machine inflates far less than the wall.  Never fails its caller.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
bench_paths "${1:-build}" "${2:-bin}"
out="$O/bench"
N=${RAG_BENCH_N:-100000}
DIM=1536
MODEL=text-embedding-3-small
CC=${CC:-cc}
WFLAGS="-std=c11 -Wall -Wextra -pedantic -Werror -Wshadow -Wstrict-prototypes
-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral"
PKGS="json-c libsodium libcurl sqlite3"
SERVER=$O/tests/ai-testserver

say() { echo "rag-bench: $*"; }

# timed ARG...: $BIN/ai-ask ARG... 11 times after a warm-up (rag_bench time): its median wall
# time in ms, then "(best B, CPU C)": the best wall time and the median CPU time of the process.
timed() {
	"$out/rag_bench" time 11 "$BIN/ai-ask" "$@" | awk '{ printf "%s ms (best %s, CPU %s)", $1, $2, $3 }'
}

# rss_mb CMD...: peak resident set of one run, in MB.
rss_mb() {
	/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'
}

run() {
	mkdir -p "$out" || { say "cannot create $out"; return 1; }
	for f in "$O/libai.a" "$BIN/ai-index" "$BIN/ai-ask" "$SERVER"; do
		[ -e "$f" ] || { say "missing $f: run make all $SERVER first"; return 1; }
	done
	# shellcheck disable=SC2086
	cflags=$(pkg-config --cflags $PKGS) && libs="$(pkg-config --libs json-c libsodium sqlite3) -ldl" || return 1
	for p in membw rag_bench; do
		# shellcheck disable=SC2086
		$CC $WFLAGS -O2 -g -I"$top/common" $cflags -o "$out/$p" "$top/tests/bench/$p.c" \
			"$O/libai.a" $libs -lm -lpthread || { say "cannot compile tests/bench/$p.c"; return 1; }
	done

	tmp=$(mktemp -d) || return 1
	trap 'bench_stop; rm -rf "$tmp"' EXIT
	bench_home "$tmp"
	bench_server "$tmp" || { say "the test server did not start"; return 1; }
	port=$PORT

	# 1. Ingest.
	"$out/rag_bench" corpus "$tmp/corpus" 8 || return 1
	mb=$(du -sb "$tmp/corpus" | awk '{ print $1 / 1e6 }')
	s=$(date +%s%N)
	"$BIN/ai-index" --db "$tmp/ingest.db" -q --no-cache "$tmp/corpus"/*.md || say "ai-index failed"
	e=$(date +%s%N)
	secs=$(awk -v a="$s" -v b="$e" 'BEGIN { print (b - a) / 1e9 }')
	chunks=$("$BIN/ai-index" --db "$tmp/ingest.db" --stats --json | sed 's/.*"chunks":\([0-9]*\).*/\1/')
	say "ingest: $mb MB, $chunks chunks in $secs s: $(awk -v m="$mb" -v s="$secs" 'BEGIN { printf "%.2f", m / s }') MB/s (64-dim embeddings at zero latency; --no-cache)"
	s=$(date +%s%N)
	"$BIN/ai-index" --db "$tmp/ingest2.db" -q --no-embed "$tmp/corpus"/*.md
	e=$(date +%s%N)
	say "ingest, --no-embed (chunking and SQLite alone): $(awk -v m="$mb" -v a="$s" -v b="$e" 'BEGIN { printf "%.2f", m / ((b - a) / 1e9) }') MB/s"
	rm -rf "$tmp/corpus" "$tmp/ingest.db"* "$tmp/ingest2.db"*

	# 2. Query time at N chunks.
	db="$out/rag${N}-s2.db"
	rm -f "$out/rag${N}.db" "$out/rag${N}.db.ok"   # schema 1, vectors inside SQLite
	if [ ! -s "$db.ok" ]; then
		rm -f "$db" "$db-wal" "$db-shm" "$db.vec"
		say "building $db ($N x $DIM; takes a minute or two)"
		"$out/rag_bench" build "$db" "$N" "$DIM" "$MODEL" || return 1
		echo ok >"$db.ok"
	fi
	"$out/membw" >"$out/membw.txt" 2>&1
	bound=$(sed -n 's/^membw: bound_ms=\([0-9.]*\) .*/\1/p' "$out/membw.txt")
	say "membw: reading the $(awk -v n="$N" -v d="$DIM" 'BEGIN { printf "%.0f", n * d * 4 / 1e6 }') MB of float32 vectors from memory: ${bound:-?} ms (100,000 x 1,536)"
	curl -sS --noproxy '*' -H 'Content-Type: application/json' --data-binary '{"set":{"embed_dim":1536}}' \
		"http://127.0.0.1:$port/_control" >/dev/null || { say "cannot set the server's dimension"; return 1; }
	cat "$db" "$db.vec" >/dev/null   # warm page cache
	q="kalo mire tavo senda"
	ratio() { awk -v a="${1%% *}" -v b="${bound:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }'; }
	# The bench's vectors are random: no passage reaches the default cosine floor (0.3), so the
	# vector-only runs lower it to print their ten passages, as a real question would.
	n=$("$BIN/ai-ask" --db "$db" --retrieve-only --no-bm25 --min-similarity -1 -k 10 "$q" 2>/dev/null | grep -c '^{"n":')
	[ "$n" -eq 10 ] || say "warning: the vector-only query printed $n passages, not 10"
	set -- --db "$db" --retrieve-only
	nob="--no-bm25 --min-similarity -1"
	# shellcheck disable=SC2086
	f32v=$(timed "$@" $nob -k 10 "$q")
	# shellcheck disable=SC2086
	i8v=$(timed "$@" $nob --int8 -k 10 "$q")
	f32=$(timed "$@" -k 10 "$q")
	i8=$(timed "$@" --int8 -k 10 "$q")
	bm=$(timed "$@" --no-embed -k 10 "$q")
	base=$(timed "$@" --no-embed -k 10 "zzzz")
	rf=$(rss_mb "$BIN/ai-ask" --db "$db" --retrieve-only --no-bm25 --min-similarity -1 -k 10 "$q")
	ri=$(rss_mb "$BIN/ai-ask" --db "$db" --retrieve-only --no-bm25 --min-similarity -1 --int8 -k 10 "$q")
	say "query, whole ai-ask --retrieve-only process, $N x $DIM, median of 11 (load average $(cut -d' ' -f1 /proc/loadavg)); the ratio is of the median wall time:"
	say "  float32, vectors alone: $f32v ($(ratio "$f32v")x the read bound; target 1.6x), peak RSS $rf MB"
	say "  int8 + rescore, alone:  $i8v (target < 25 ms), peak RSS $ri MB"
	say "  float32 hybrid:         $f32 ($(ratio "$f32")x the read bound; target 1.6x)"
	say "  int8 hybrid:            $i8 ($(ratio "$i8")x)"
	say "  BM25 alone:             $bm (a question matching nothing, the process's floor: $base)"
	say "  vectors: $(awk -v n="$N" -v d="$DIM" 'BEGIN { printf "%.0f", n * d * 4 / 1048576 }') MiB float32 (RSS target <= 1.1x)"
	say "  command: $BIN/ai-ask --db $db --retrieve-only [--no-bm25 --min-similarity -1] [--int8|--no-embed] -k 10 '$q'"
	# RAG_BENCH_OLD=DIR: the same float32 queries by DIR/ai-ask (an older build) and this one, by turns.
	if [ -n "${RAG_BENCH_OLD:-}" ] && [ -x "$RAG_BENCH_OLD/ai-ask" ]; then
		for m in "vectors alone" hybrid; do
			if [ "$m" = hybrid ]; then
				set --
			else
				set -- --no-bm25 --min-similarity -1
			fi
			"$out/rag_bench" time 11 "$RAG_BENCH_OLD/ai-ask" --db "$db" --retrieve-only "$@" -k 10 "$q" \
				-- "$BIN/ai-ask" --db "$db" --retrieve-only "$@" -k 10 "$q" >"$tmp/ab" || continue
			who=old
			while read -r w b c; do
				say "  A/B float32 $m, $who: $w ms ($(ratio "$w")x; best $b, CPU $c)"
				who=new
			done <"$tmp/ab"
		done
		say "  (A/B by turns: old $RAG_BENCH_OLD/ai-ask, new $BIN/ai-ask; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
	fi

	# 3. int8 recall.
	"$out/rag_bench" recall "$db" "$DIM" "$MODEL" 50
}

run || say "failed (see above); not failing the caller"
exit 0
