#!/bin/sh
# tests/bench/embed-fit.sh O BIN - issue 14's case: ai-index against a server
# that refuses an embeddings input over its physical batch with a 500, as a
# default llama-server does (here the test server's embed_max_tokens, 256).
# 32 documents of about 6 KB (the test corpus, repeated); prints documents
# indexed and failed, embeddings requests and wall time of the first run,
# then of a second run over the same documents changed (which starts at the
# size the collection learned).  OLD_BIN=DIR adds the same figures for
# another build's ai-index (a build from before the change, for comparison).
O=${1:-build}
BIN=${2:-bin}
top=$(pwd)
command -v jq >/dev/null || { echo "embed-fit bench: needs jq"; exit 0; }
[ -x "$O/tests/ai-testserver" ] && [ -x "$BIN/ai-index" ] || { echo "embed-fit bench: run make first"; exit 0; }

. "$(dirname "$0")/lib.sh"
d=$(mktemp -d)
trap 'bench_stop; rm -rf "$d"' EXIT
bench_home "$d"
bench_server "$d" --log "$d/log" || { echo "embed-fit bench: the test server did not start"; exit 0; }
curl -s --noproxy '*' -d '{"set":{"embed_max_tokens":256}}' "http://127.0.0.1:$PORT/_control" >/dev/null
mkdir "$d/docs"
for i in $(seq 1 32); do
	for f in "$top"/tests/fixtures/corpus/*.md; do cat "$f"; echo; done >"$d/docs/doc$i.md"
	echo "document $i" >>"$d/docs/doc$i.md"
done

now() { date +%s.%N; }
run() {
	: >"$d/log"
	t0=$(now)
	"$1" --db "$2" --json "$d"/docs/*.md >"$d/out" 2>/dev/null
	rc=$?
	t1=$(now)
	printf '%-34s %4s %6s %6s %8s %8.2f s\n' "$3" "$rc" \
		"$(jq -s 'map(select(.status == "indexed" or .status == "replaced")) | length' "$d/out")" \
		"$(jq -s 'map(select(.status == "failed")) | length' "$d/out")" \
		"$(jq -s 'map(select(.path == "/v1/embeddings")) | length' "$d/log")" \
		"$(echo "$t1 $t0" | awk '{print $1 - $2}')"
}
printf '%-34s %4s %6s %6s %8s %10s\n' "ai-index, 32 docs, limit 256" exit indexed failed requests wall
run "$top/$BIN/ai-index" "$d/new.db" "this build, first run"
for f in "$d"/docs/*.md; do echo "changed" >>"$f"; done
run "$top/$BIN/ai-index" "$d/new.db" "this build, second run"
if [ -n "${OLD_BIN:-}" ] && [ -x "$OLD_BIN/ai-index" ]; then
	run "$OLD_BIN/ai-index" "$d/old.db" "OLD_BIN ($OLD_BIN)"
fi
exit 0
