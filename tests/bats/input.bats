#!/usr/bin/env bats
# The message of ai-stream, ai-agent and ai-ask: piped stdin and the
# arguments together, -f files labelled with their names, --no-stdin, the
# first operand ending the options, binary input refused by what it looks
# like, and the note on a terminal stdin.  One implementation
# (cli_read_message) serves the three; each is checked here.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; }
teardown() { stop_server; }

CHAT=/v1/chat/completions

# sent: the last user message the server received.
sent() {
	last_request $CHAT | jq -r '.body.messages | map(select(.role == "user")) | last | .content'
}

@test "input: piped stdin and the arguments go together, stdin first, a blank line between" {
	run --separate-stderr bash -c 'printf "diff --git a/x b/x\n+new line\n" | ai-stream --no-cache write a commit message'
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(sent)" $'diff --git a/x b/x\n+new line\n\nwrite a commit message'
}

@test "input: ai-agent and ai-ask take piped stdin with their arguments too" {
	run --separate-stderr bash -c 'echo "disk is 93% full" | ai-agent --no-cache --no-default-tools "what should I do?"'
	assert_eq "$status" 0
	assert_eq "$(sent)" $'disk is 93% full\n\nwhat should I do?'

	corpus=$BATS_TEST_DIRNAME/../fixtures/corpus
	(cd "$corpus" && ai-index --db "$T/kb.db" -q --no-embed sourdough.md)
	run --separate-stderr bash -c 'cd "$2" && echo "my loaf came out flat" | ai-ask --no-cache --no-embed --db "$1" "how long do I bake the sourdough loaf?"' _ "$T/kb.db" "$corpus"
	assert_eq "$status" 0
	p=$(sent)
	assert_contains "$p" $'my loaf came out flat\n\nhow long do I bake the sourdough loaf?'
	# Retrieval searched by the question: the passage about baking is in the prompt.
	assert_contains "$p" "[1] sourdough.md:"
}

@test "input: --no-stdin leaves piped input alone; a loop reading stdin keeps its lines" {
	run --separate-stderr bash -c 'echo piped | ai-stream --no-cache --no-stdin just this'
	assert_eq "$status" 0
	assert_eq "$(sent)" "just this"
	printf 'one\ntwo\nthree\n' >"$T/list"
	run --separate-stderr bash -c 'while read -r w; do ai-stream --no-cache --no-stdin "say $w"; done <"$1"' _ "$T/list"
	assert_eq "$output" $'echo: say one\necho: say two\necho: say three'
}

@test "input: stdin alone is still the message, and empty piped input adds nothing" {
	run --separate-stderr ai-stream --no-cache <<<"only stdin"
	assert_eq "$(sent)" "only stdin"
	run --separate-stderr bash -c 'printf "\n  \n" | ai-stream --no-cache hello'
	assert_eq "$status" 0
	assert_eq "$(sent)" "hello"
	run --separate-stderr ai-stream --no-cache </dev/null
	assert_eq "$status" 66
	assert_contains "$stderr" "no message"
}

@test "input: -f adds files labelled with their names, then stdin, then the arguments" {
	printf 'alpha\n' >"$T/a.txt"
	printf 'beta' >"$T/b.txt"
	run --separate-stderr bash -c 'cd "$1" && echo piped | ai-stream --no-cache -f a.txt --file b.txt compare them' _ "$T"
	assert_eq "$status" 0
	assert_eq "$(sent)" $'<file name="a.txt">\nalpha\n</file>\n\n<file name="b.txt">\nbeta\n</file>\n\npiped\n\ncompare them'
	# -f - takes stdin as a labelled file, once.
	run --separate-stderr bash -c 'echo piped | ai-agent --no-cache --no-default-tools -f - summarize'
	assert_eq "$status" 0
	assert_eq "$(sent)" $'<file name="stdin">\npiped\n</file>\n\nsummarize'
}

@test "input: -f files meet the same checks as stdin, and nothing is sent" {
	run --separate-stderr ai-stream --no-cache -f "$T/missing.txt" hi
	assert_eq "$status" 66
	assert_contains "$stderr" "cannot open '$T/missing.txt'"
	printf 'ok\nbad \xff\n' >"$T/latin1.txt"
	run --separate-stderr ai-ask --no-cache -f "$T/latin1.txt" hi
	assert_eq "$status" 65
	assert_contains "$stderr" "'$T/latin1.txt' is not valid UTF-8 at line 2, column 5"
	head -c 2000000 /dev/zero | tr '\0' a >"$T/big.txt"
	AI_MAX_INPUT=1000000 run --separate-stderr ai-stream --no-cache -f "$T/big.txt" hi
	assert_eq "$status" 65
	assert_contains "$stderr" "AI_MAX_INPUT"
	run --separate-stderr ai-stream -f
	assert_eq "$status" 64
	assert_eq "$(request_count $CHAT)" 0
}

@test "input: -i with -f puts the files before the first line typed, once" {
	printf 'context\n' >"$T/c.txt"
	run --separate-stderr ai-stream --no-cache -i -f "$T/c.txt" <<<$'first\nsecond'
	assert_eq "$status" 0
	assert_eq "$(requests $CHAT | head -1 | jq -r '.body.messages[0].content')" \
		$'<file name="'"$T"$'/c.txt">\ncontext\n</file>\n\nfirst'
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[-1].content')" "second"
}

@test "input: options end at the first operand, so a message may hold dashes" {
	run --separate-stderr ai-stream --no-cache what does ls -la do
	assert_eq "$status" 0
	assert_eq "$(sent)" "what does ls -la do"
	run --separate-stderr ai-stream --no-cache -m m1 how do I use git commit -m to amend
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r .body.model)" m1
	assert_eq "$(sent)" "how do I use git commit -m to amend"
	run --separate-stderr ai-agent --no-cache --no-default-tools explain grep -v -i pattern
	assert_eq "$status" 0
	assert_eq "$(sent)" "explain grep -v -i pattern"
	assert_eq "$stderr" ""
	# "--" still ends the options, for a message that starts with a dash.
	run --separate-stderr ai-stream --no-cache -- -v means verbose
	assert_eq "$(sent)" "-v means verbose"
}

@test "input: binary input is refused by what it looks like, before any request" {
	printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$T/shot.png"
	printf '%%PDF-1.7\n%%\xe2\xe3\xcf\xd3\n' >"$T/doc.pdf"
	printf 'hello\n' | gzip >"$T/log.gz"
	printf 'text\0more' >"$T/nul.bin"
	run --separate-stderr ai-stream --no-cache <"$T/shot.png"
	assert_eq "$status" 65
	assert_eq "$stderr" "ai-stream: binary input: 'stdin' looks like a PNG image; images are not text"
	run --separate-stderr ai-summarize --no-cache "$T/doc.pdf"
	assert_eq "$status" 65
	assert_contains "$stderr" "binary input: '$T/doc.pdf' looks like a PDF document; extract its text first: pdftotext FILE -"
	run --separate-stderr ai-agent --no-cache -f "$T/log.gz" what is this
	assert_eq "$status" 65
	assert_contains "$stderr" "looks like gzip data; decompress it first: zcat FILE"
	run --separate-stderr ai-ask --no-cache <"$T/nul.bin"
	assert_eq "$status" 65
	assert_contains "$stderr" "binary input: 'stdin' has a NUL byte at line 1, column 5; it is not text"
	run --separate-stderr ai-index --db "$T/x.db" --no-embed "$T/shot.png"
	assert_contains "$stderr" "looks like a PNG image"
	# Text that merely starts like a magic number is text.
	printf 'GIF89a is an image format\n' | ai-stream --no-cache >/dev/null
	assert_eq "$(sent)" "GIF89a is an image format"
	assert_eq "$(request_count $CHAT)" 1
}

@test "input: a terminal stdin gets one line saying it is read and how to end it; -q none" {
	command -v script >/dev/null || skip "script(1) from util-linux is not installed"
	printf 'hello\n\004' >"$T/keys"
	out=$( (sleep 1; cat "$T/keys") | on_tty "ai-stream --no-cache")
	assert_contains "$out" "ai-stream: reading standard input; end it with Ctrl-D"
	assert_contains "$out" "echo: hello"
	out=$( (sleep 1; cat "$T/keys") | on_tty "ai-summarize --no-cache -q")
	assert_not_contains "$out" "reading standard input"
	# Piped input gets no such line.
	run --separate-stderr bash -c 'echo hi | ai-stream --no-cache'
	assert_eq "$stderr" ""
}
