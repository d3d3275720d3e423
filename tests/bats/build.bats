#!/usr/bin/env bats
# The README's first command on a fresh machine: make installs the missing
# -dev packages and builds in the same run, or, not root, names the one
# apt-get line to run and builds nothing.
#
# The fresh machine is simulated with shims first on PATH: dpkg-query says
# libjson-c-dev is missing and pkg-config fails until "apt-get" (a shim that
# only leaves a mark) has run, as on a machine where the packages are not yet
# installed.  The build goes to a private O= and BIN=, one program only.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	S=$T/shim
	mkdir -p "$S"
	real_pc=$(command -v pkg-config)
	real_dq=$(command -v dpkg-query)
	cat >"$S/pkg-config" <<EOF
#!/bin/sh
[ -e "$T/installed" ] || exit 1
exec "$real_pc" "\$@"
EOF
	cat >"$S/dpkg-query" <<EOF
#!/bin/sh
for a; do :; done
if [ ! -e "$T/installed" ] && [ "\$a" = libjson-c-dev ]; then exit 1; fi
exec "$real_dq" "\$@"
EOF
	cat >"$S/apt-get" <<EOF
#!/bin/sh
echo "\$*" >>"$T/apt.log"
case \$* in *install*) touch "$T/installed" ;; esac
EOF
	chmod +x "$S"/*
}

# A make of its own: nothing inherited from a make check or make sanitize around it.
fresh_make() {
	PATH="$S:$PATH" env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$TOP" --no-print-directory O="$T/build" BIN="$T/bin" \
		CFLAGS=-O0 -j2 "$T/bin/ai-usage"
}

@test "build: one make on a fresh machine installs the packages, then builds with their flags" {
	[[ $(id -u) -eq 0 ]] || skip "installs only as root"
	run --separate-stderr fresh_make
	((status == 0)) || { echo "$output $stderr" >&2; false; }
	grep -q 'install.*libjson-c-dev' "$T/apt.log"
	assert_contains "$stderr" "installing libjson-c-dev"
	assert_contains "$output" "-ljson-c"
	[[ -x $T/bin/ai-usage ]]
	run "$T/bin/ai-usage" --version
	assert_contains "$output" "ai-usage"
	# The stamp keeps a second make from asking again.
	rm -f "$T/apt.log"
	run --separate-stderr fresh_make
	((status == 0))
	[[ ! -e $T/apt.log ]]
}

@test "build: make install with another PREFIX installs what was built, compiling nothing again" {
	make_in() {
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$TOP" --no-print-directory O="$T/build" \
			BIN="$T/bin" CFLAGS=-O0 -j2 "$@"
	}
	run --separate-stderr make_in all
	((status == 0)) || { echo "$output $stderr" >&2; false; }
	run --separate-stderr make_in install PREFIX="$T/usr" DESTDIR="$T/dest"
	((status == 0)) || { echo "$output $stderr" >&2; false; }
	assert_not_contains "$output" " -c -o "
	[[ -x $T/dest$T/usr/bin/ai-stream && -f $T/dest$T/usr/share/man/man7/ai.7 ]]
	[[ -f $T/dest$T/usr/share/bash-completion/completions/ai-stream ]]
}

@test "build: not root, make names the apt-get line to run and builds nothing" {
	cat >"$S/id" <<'EOF'
#!/bin/sh
echo 1000
EOF
	chmod +x "$S/id"
	run --separate-stderr fresh_make
	((status != 0))
	assert_contains "$stderr" "ai-tools: missing packages; run: sudo apt-get install -y libjson-c-dev"
	(($(wc -l <<<"$stderr") == 1))
	[[ -z $output ]]
	[[ ! -e $T/apt.log && ! -e $T/build/libai.a ]]
}

@test "build: .ci/deps refuses without root with exit 78, and says nothing when all is there" {
	cat >"$S/id" <<'EOF'
#!/bin/sh
echo 1000
EOF
	chmod +x "$S/id"
	PATH="$S:$PATH" run --separate-stderr sh "$TOP/.ci/deps" build
	((status == 78))
	assert_contains "$output" "sudo apt-get install -y libjson-c-dev"
	touch "$T/installed"
	PATH="$S:$PATH" run --separate-stderr sh "$TOP/.ci/deps" build
	((status == 0))
	[[ -z $output && -z $stderr ]]
	run sh "$TOP/.ci/deps" nonsense
	((status == 64))
}
