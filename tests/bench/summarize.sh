#!/bin/sh
# tests/bench/summarize.sh O BIN - the whole-process cost of one ai-summarize
# call against the test server at zero latency, beside one curl request to the
# same server in the same run: median wall time and peak RSS.
# Issue 2's target: at most 1.3x curl's time, and 10 MB of RSS.
O=${1:-build}
BIN=${2:-bin}
RUNS=${RUNS:-300}
top=$(pwd)
for t in hyperfine curl jq; do
	command -v $t >/dev/null || { echo "summarize bench: needs $t (apt-get install $t)"; exit 0; }
done
[ -x "$O/tests/ai-testserver" ] && [ -x "$BIN/ai-summarize" ] || { echo "summarize bench: run make first"; exit 0; }

. "$(dirname "$0")/lib.sh"
d=$(mktemp -d)
trap 'bench_stop; rm -rf "$d"' EXIT
bench_home "$d"
bench_server "$d" --log /dev/null || { echo "summarize bench: the test server did not start"; exit 0; }
port=$PORT
url="http://127.0.0.1:$port/v1/chat/completions"
echo "The quick brown fox jumps over the lazy dog. It was a sunny day." >"$d/in.txt"
# The same body ai-summarize sends, for curl.
"$BIN/ai-summarize" --dry-run "$d/in.txt" | sed -n '/^{/p' >"$d/body.json"

median() { jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$1"; }
rss() { /usr/bin/time -f %M "$@" >/dev/null 2>"$d/rss" ; tail -1 "$d/rss"; }

hyperfine -N -w 20 -r "$RUNS" --export-json "$d/curl.json" \
	"curl -s -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' --data-binary @$d/body.json $url" >/dev/null 2>&1
hyperfine -N -w 20 -r "$RUNS" --export-json "$d/plain.json" \
	"env AI_LEDGER=0 $top/$BIN/ai-summarize --no-cache $d/in.txt" >/dev/null 2>&1
hyperfine -N -w 20 -r "$RUNS" --export-json "$d/full.json" \
	"$top/$BIN/ai-summarize --no-cache $d/in.txt" >/dev/null 2>&1
hyperfine -N -w 20 -r "$RUNS" --export-json "$d/hit.json" \
	"$top/$BIN/ai-summarize $d/in.txt" >/dev/null 2>&1

c=$(median "$d/curl.json")
printf '%-52s %8s %8s %8s\n' "one call, whole process ($RUNS runs)" "median" "x curl" "max RSS"
for f in curl:"curl, same request" plain:"ai-summarize, no cache, no ledger" \
	full:"ai-summarize, no cache, ledger on (default path)" hit:"ai-summarize, cache hit"; do
	k=${f%%:*}
	m=$(median "$d/$k.json")
	case $k in
	curl) r=$(rss curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @"$d/body.json" "$url") ;;
	plain) r=$(AI_LEDGER=0 rss "$BIN/ai-summarize" --no-cache "$d/in.txt") ;;
	full) r=$(rss "$BIN/ai-summarize" --no-cache "$d/in.txt") ;;
	hit) r=$(rss "$BIN/ai-summarize" "$d/in.txt") ;;
	esac
	printf '%-52s %6s ms %7.2fx %5s KB\n' "${f#*:}" "$m" "$(echo "$m $c" | awk '{print $1 / $2}')" "$r"
done
echo "target: at most 1.3x curl and 10 MB (10240 KB) RSS; run again: make bench BENCH=summarize"
