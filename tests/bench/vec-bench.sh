#!/bin/sh
# vec-bench.sh [O] - benchmark the vector-search kernel (common/rag/vec.c).
#
# Builds tests/bench/membw.c and tests/bench/vec_bench.c at -O2 with the
# project's warnings against O/libai.a (O defaults to build; the library
# is built first when missing), runs membw for this machine's memory-read
# bound, then vec_bench against it, and prints the figures.  Needs about
# 1 GB of memory and half a minute.  Never fails its caller: on any error
# it says what went wrong and exits 0.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${1:-build}
case $O in /*) ;; *) O="$top/$O" ;; esac
out="$O/bench"
CC=${CC:-cc}
WFLAGS="-std=c11 -Wall -Wextra -pedantic -Werror -Wshadow -Wstrict-prototypes
-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral"
PKGS="json-c libsodium libcurl sqlite3"

say() { echo "vec-bench: $*"; }

run() {
	mkdir -p "$out" || { say "cannot create $out"; return 1; }
	if [ ! -f "$O/libai.a" ]; then
		say "building $O/libai.a"
		make -C "$top" -s "$O/libai.a" O="$O" >"$out/make.log" 2>&1 ||
			{ say "cannot build $O/libai.a:"; tail -20 "$out/make.log"; return 1; }
	fi
	# shellcheck disable=SC2086
	if ! cflags=$(pkg-config --cflags $PKGS) || ! libs="$(pkg-config --libs json-c libsodium sqlite3) -ldl"; then
		say "pkg-config cannot find $PKGS"
		return 1
	fi
	for p in membw vec_bench; do
		# shellcheck disable=SC2086
		$CC $WFLAGS -O2 -g -I"$top/common" $cflags -o "$out/$p" "$top/tests/bench/$p.c" \
			"$O/libai.a" $libs -lm -lpthread ||
			{ say "cannot compile tests/bench/$p.c"; return 1; }
	done
	"$out/membw" >"$out/membw.txt" 2>&1 ||
		{ say "membw failed:"; cat "$out/membw.txt"; return 1; }
	cat "$out/membw.txt"
	bound=$(sed -n 's/^membw: bound_ms=\([0-9.]*\) .*/\1/p' "$out/membw.txt")
	[ -n "$bound" ] || say "no bound in membw's output; running vec_bench without it"
	# shellcheck disable=SC2086
	"$out/vec_bench" $bound || { say "vec_bench exited $?"; return 1; }
}

run || say "failed (see above); not failing the caller"
exit 0
