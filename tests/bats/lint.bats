#!/usr/bin/env bats
# tests/lint's boundary check: nm over a libai.a built here from one small
# object at a time, so each rule is seen to catch what it names and to let
# through what it allows.  The real libai.a is checked by make lint.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	L=$T/o
	mkdir -p "$L"
}

# lib NAME.c SOURCE... - a libai.a in $L of one object per NAME=SOURCE pair
lib() {
	rm -f "$L"/*.o "$L/libai.a" "$L/libcmd.a"
	while [ $# -gt 0 ]; do
		printf '%s\n' "$2" >"$L/$1.c"
		cc -c -o "$L/$1.o" "$L/$1.c" || return 1
		shift 2
	done
	ar rcs "$L/libai.a" "$L"/*.o
}

lint() {
	cd "$TOP" && run --separate-stderr sh tests/lint "$L"
}

@test "lint: a library that only computes passes" {
	lib calc 'int add(int a, int b) { return a + b; }'
	lint
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}

@test "lint: printing to stderr names the object and the symbol" {
	lib talk '#include <stdio.h>
void talk(int n) { fprintf(stderr, "hi %d\n", n); }'
	lint
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"talk.o references stderr: common/ prints, exits or reads stdin"* ]]
	[[ "$stderr" == *"talk.o references fprintf"* ]]
}

@test "lint: puts, exit and stdin are each caught" {
	lib say '#include <stdio.h>
void say(void) { puts("x"); }' \
	    quit '#include <stdlib.h>
void quit(void) { exit(3); }' \
	    ask '#include <stdio.h>
int ask(char *b) { return fgets(b, 8, stdin) != 0; }'
	lint
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"say.o references puts"* ]]
	[[ "$stderr" == *"quit.o references exit"* ]]
	[[ "$stderr" == *"ask.o references stdin"* ]]
}

@test "lint: a call up into libcmd is caught, by prefix and by libcmd's own names" {
	lib hist 'int cli_read_input(void); int h(void) { return cli_read_input(); }' \
	    other 'int my_helper(void); int o(void) { return my_helper(); }'
	printf 'int my_helper(void) { return 1; }\n' >"$L/cmdlib.c"
	cc -c -o "$L/cmdlib.o" "$L/cmdlib.c"
	ar rcs "$L/libcmd.a" "$L/cmdlib.o"
	lint
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"hist.o references cli_read_input: common/ calls up into libcmd.a"* ]]
	[[ "$stderr" == *"other.o references my_helper: common/ calls up into libcmd.a"* ]]
}

@test "lint: _exit is allowed only in the objects listed with a forked child" {
	lib toolrun '#include <unistd.h>
void child(void) { _exit(127); }' \
	    kb '#include <unistd.h>
void oops(void) { _exit(1); }'
	lint
	[ "$status" -eq 1 ]
	[[ "$stderr" != *"toolrun.o"* ]]
	[[ "$stderr" == *"kb.o references _exit"* ]]
}

@test "lint: no libai.a says how to build it" {
	lint
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no $L/libai.a; run make lint"* ]]
}
