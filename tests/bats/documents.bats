#!/usr/bin/env bats
# ai-index's documents that are not plain text: PDF page by page (cited by
# page), HTML through libxml2 (no script, style or navigation text in the
# index), and the user's loader.EXT commands with their failures.  BM25
# only (--no-embed) wherever no model is asked.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	DB=$T/index.db
	mkdir -p "$XDG_CONFIG_HOME/ai"
	CONF=$XDG_CONFIG_HOME/ai/config
}
teardown() { stop_server; }


manual() {
	mkpdf "$T/manual.pdf" \
		"Welcome to the Acme heater manual.|Read every page before you start." \
		"Safety first.|Never open the casing while the heater is plugged in." \
		"Maintenance.|Bleed the radiator valve twice a year, in spring and autumn.|Use the brass key." \
		"Warranty.|Two years from the date of purchase."
}

@test "documents: the mkpdf fixture is a PDF that pdftotext reads, four pages" {
	manual
	run pdftotext -q "$T/manual.pdf" -
	assert_eq "$status" 0
	assert_contains "$output" "Bleed the radiator valve"
	assert_eq "$(tr -cd '\f' <<<"$output" | wc -c)" 4 "form feeds"
}

@test "documents: a PDF is indexed page by page, and the answer cites its page" {
	manual
	start_server
	run --separate-stderr ai-index --db "$DB" --no-embed --json "$T/manual.pdf"
	assert_eq "$status" 0
	assert_eq "$(jq -r .status <<<"$output")" indexed
	assert_eq "$(jq -r .chunks <<<"$output")" 4 "one chunk per page"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "how often do I bleed the radiator valve"
	assert_eq "$status" 0
	assert_eq "$(jq -r .page <<<"$output")" 3
	assert_eq "$(jq -r .source <<<"$output")" "$T/manual.pdf"
	assert_contains "$(jq -r .text <<<"$output")" "twice a year"
	# A chunk never holds two pages.
	assert_not_contains "$(jq -r .text <<<"$output")" "Warranty"

	ctl '{"push":[{"path":"/v1/chat/completions","reply":"Twice a year, in spring and autumn [1]."}]}'
	run --separate-stderr ai-ask --db "$DB" --no-embed -k 2 "how often do I bleed the radiator valve"
	assert_eq "$status" 0
	assert_contains "$output" "Twice a year"
	assert_contains "$output" $'Sources:\n[1] '"$T/manual.pdf p.3"
	p=$(last_request /v1/chat/completions | jq -r '.body.messages[-1].content')
	assert_contains "$p" "[1] $T/manual.pdf p.3"$'\n'
	run --separate-stderr ai-ask --db "$DB" --no-embed -k 2 --json "how often do I bleed the radiator valve"
	assert_eq "$(jq -r '.sources[0].page' <<<"$output")" 3

	# Unchanged text is not indexed again; a text file still cites lines.
	run --separate-stderr ai-index --db "$DB" --no-embed --json "$T/manual.pdf"
	assert_eq "$(jq -r .status <<<"$output")" unchanged
}

@test "documents: a PDF is known by its bytes under another name; a .pdf that is not one fails alone" {
	manual
	cp "$T/manual.pdf" "$T/manual.bin"
	printf 'not a pdf at all\n' >"$T/fake.pdf"
	printf 'plain notes about the heater\n' >"$T/notes.txt"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/manual.bin" "$T/fake.pdf" "$T/notes.txt"
	assert_eq "$status" 1
	assert_contains "$stderr" "'$T/fake.pdf': pdftotext failed (exit"
	run ai-index --db "$DB" --list --json
	assert_contains "$output" "manual.bin"
	assert_contains "$output" "notes.txt"
	assert_not_contains "$output" "fake.pdf"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "warranty purchase"
	assert_eq "$(jq -r .page <<<"$output")" 4
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "plain notes"
	assert_eq "$(jq -r .page <<<"$output")" null
}

@test "documents: without pdftotext a PDF says what to install, and the rest goes on" {
	manual
	printf 'some text\n' >"$T/a.txt"
	# PATH holds ai-tools alone: no pdftotext.
	run --separate-stderr env PATH="$AI_BIN" ai-index --db "$DB" --no-embed -q "$T/manual.pdf"
	assert_eq "$status" 69
	assert_contains "$stderr" "pdftotext"
	assert_contains "$stderr" "poppler-utils"
	run --separate-stderr env PATH="$AI_BIN" ai-index --db "$DB" --no-embed -q "$T/manual.pdf" "$T/a.txt"
	assert_eq "$status" 1
	run ai-index --db "$DB" --list
	assert_contains "$output" "a.txt"
}

page_html() {
	cat >"$1" <<'HTML'
<!DOCTYPE html>
<html lang="en"><head><title>Heater FAQ</title>
<style>.secretstyle { color: red }</style>
<script>var zebrascript = "hidden words";</script></head>
<body><nav><a href="/">navwords home</a></nav>
<header>bannerwords</header>
<main>
<h1>Heater FAQ</h1>
<p>The heater   hums
   when the pump starts.</p>
<h2>Noise</h2>
<p>A rattling noise means air in the pipes.</p>
<ul><li>Bleed the valve</li><li>Check the pressure gauge</li></ul>
<script>document.write("zebrascript two")</script>
<noscript>noscriptwords</noscript>
</main>
<aside>asidewords</aside><footer>footerwords copyright</footer>
</body></html>
HTML
}

@test "documents: HTML text reaches the index without scripts, styles or navigation, headings as sections" {
	page_html "$T/faq.html"
	# Small chunks, so that each section is one.
	run --separate-stderr ai-index --db "$DB" --no-embed --json --chunk-tokens 24 --overlap 0 "$T/faq.html"
	assert_eq "$status" 0
	assert_eq "$(jq -r .status <<<"$output")" indexed
	for w in zebrascript secretstyle navwords bannerwords asidewords footerwords noscriptwords; do
		run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only "$w"
		assert_eq "$status" 1
		assert_eq "$output" "" "passages for '$w'"
		assert_contains "$stderr" "nothing in collection"
	done
	all=$(sqlite3 "$DB" "SELECT group_concat(heading || ' ' || text, ' ') FROM chunks_fts")
	for w in zebrascript secretstyle navwords bannerwords asidewords footerwords noscriptwords "<p>"; do
		assert_not_contains "$all" "$w"
	done
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "rattling noise"
	assert_eq "$(jq -r .heading <<<"$output")" "Heater FAQ > Noise"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "pressure gauge"
	assert_contains "$(jq -r .text <<<"$output")" "- Bleed the valve"$'\n'"- Check the pressure gauge"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "heater hums"
	assert_contains "$(jq -r .text <<<"$output")" "The heater hums when the pump starts."
}

@test "documents: HTML is known by its content under another name, and by its name on stdin" {
	page_html "$T/faq.txt"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/faq.txt"
	assert_eq "$status" 0
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only zebrascript
	assert_eq "$status" 1
	assert_eq "$output" ""
	printf '<p>stdin page about <b>geysers</b></p><script>zebrastdin()</script>\n' |
		ai-index --db "$DB" --no-embed -q --source web/page.html
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only geysers
	assert_eq "$(jq -r .text <<<"$output")" "stdin page about geysers"
	# the space between two inline elements is a word break, not nothing
	printf '<p>marked <mark>alpha</mark> <mark>omega</mark> words</p>\n' |
		ai-index --db "$DB" --no-embed -q --source web/marks.html
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only omega
	assert_eq "$(jq -r .text <<<"$output")" "marked alpha omega words"
	# A page with no text outside its scripts is that document's error.
	printf '<html><body><script>only()</script></body></html>\n' >"$T/empty.html"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/empty.html"
	assert_eq "$status" 65
	assert_contains "$stderr" "no text"
}

@test "documents: HTML nested deeper than libxml2 reads is an error (65), not a page cut short" {
	{
		printf '<html><body><p>shallow start</p>'
		for ((i = 0; i < 300; i++)); do printf '<div>'; done
		printf 'deepword'
		for ((i = 0; i < 300; i++)); do printf '</div>'; done
		printf '<p>shallow end</p></body></html>\n'
	} >"$T/deep.html"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/deep.html"
	assert_eq "$status" 65
	assert_contains "$stderr" "cannot be read whole as HTML (libxml2: Excessive depth in document"
	# 200 levels are read, to the end
	{
		for ((i = 0; i < 200; i++)); do printf '<div>'; done
		printf 'deepword'
		for ((i = 0; i < 200; i++)); do printf '</div>'; done
		printf '<p>shallow end</p>\n'
	} >"$T/ok.html"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/ok.html"
	assert_eq "$status" 0
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only deepword
	assert_contains "$(jq -r .text <<<"$output")" "shallow end"
}

@test "documents: Markdown and man pages are indexed as they are" {
	printf '# Pump\n\n## Priming\n\nFill the casing with water first.\n' >"$T/pump.md"
	printf '.TH PUMP 1\n.SH NAME\npump \\- move water\n' >"$T/pump.1"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/pump.md" "$T/pump.1"
	assert_eq "$status" 0
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "casing water"
	assert_eq "$(jq -r .heading <<<"$output")" "Pump > Priming"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "move water"
	assert_contains "$(jq -r .text <<<"$output")" ".SH NAME"
}

@test "documents: a loader.EXT command gives the text, the path last or at {}" {
	cat >"$CONF" <<'CONF'
loader.note = sed -e s/SECRET/visible/
loader.Log = grep -v DEBUG {} --
CONF
	printf 'The SECRET word is turnip.\n' >"$T/a.note"
	printf 'DEBUG zebradebug\nINFO the heater started\n' >"$T/b.log"
	run --separate-stderr ai-index --db "$DB" --no-embed --json "$T/a.note" "$T/b.log"
	assert_eq "$status" 0
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only turnip
	assert_eq "$(jq -r .text <<<"$output")" "The visible word is turnip."
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only "heater started"
	assert_eq "$(jq -r .text <<<"$output")" "INFO the heater started"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only zebradebug
	assert_eq "$status" 1
	assert_eq "$output" ""
	# A name that starts with '-' reaches the loader as an absolute path, not an option.
	printf 'dashed SECRET parsnip\n' >"$T/-n.note"
	run --separate-stderr bash -c 'cd "$1" && ai-index --db "$2" --no-embed -q -- -n.note' _ "$T" "$DB"
	assert_eq "$status" 0
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only parsnip
	assert_eq "$(jq -r .text <<<"$output")" "dashed visible parsnip"
}

@test "documents: a loader runs as an argv, never through a shell, with a scrubbed environment" {
	cat >"$T/show-args" <<'SH'
#!/bin/sh
for a in "$@"; do printf 'arg[%s]\n' "$a"; done
printf 'key[%s]\n' "${OPENAI_API_KEY:-none}"
SH
	chmod +x "$T/show-args"
	printf 'loader.x = %s "two words" $HOME;echo ;\n' "$T/show-args" >"$CONF"
	touch "$T/doc.x"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/doc.x"
	assert_eq "$status" 0
	text=$(sqlite3 "$DB" "SELECT text FROM chunks_fts")
	assert_eq "$text" "arg[two words]"$'\n'"arg[\$HOME;echo]"$'\n'"arg[;]"$'\n'"arg[$T/doc.x]"$'\n'"key[none]"
}

@test "documents: a loader that hangs is killed at its timeout; the rest of the run goes on" {
	cat >"$CONF" <<'CONF'
loader_timeout = 1s
loader.slow = sh -c "sleep 300" loader
CONF
	touch "$T/a.slow"
	printf 'still indexed\n' >"$T/b.txt"
	start=$SECONDS
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/a.slow" "$T/b.txt"
	# Not a timing assertion: far below sleep's 300 s, however loaded the machine.
	((SECONDS - start < 120))
	assert_eq "$status" 1
	assert_contains "$stderr" "'$T/a.slow': loader 'sh -c \"sleep 300\" loader' ran past its timeout of 1 s and was killed"
	run ai-index --db "$DB" --list
	assert_contains "$output" "b.txt"
	assert_not_contains "$output" "a.slow"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/a.slow"
	assert_eq "$status" 75
}

@test "documents: Ctrl-C while a loader runs stops it and the run, status 130" {
	printf 'loader.slow = sh -c "sleep 300" loader\n' >"$CONF"
	touch "$T/a.slow"
	start=$SECONDS
	ai-index --db "$DB" --no-embed -q "$T/a.slow" 2>"$T/err" &
	pid=$!
	sleep 1
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 130 status
	((SECONDS - start < 120))
	assert_contains "$(cat "$T/err")" "interrupted"
}

@test "documents: what a killed loader started is killed with it" {
	cat >"$CONF" <<'CONF'
loader_timeout = 1s
loader.slow = sh -c 'sleep 300 & echo $! >"$1.pid"; wait' loader
CONF
	touch "$T/a.slow"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/a.slow"
	assert_eq "$status" 75
	assert_contains "$stderr" "ran past its timeout"
	pid=$(cat "$T/a.slow.pid")
	[[ $pid =~ ^[0-9]+$ ]]
	# Reaped before ai-index exits: the pid is gone, not a zombie.
	! kill -0 "$pid" 2>/dev/null
}

@test "documents: a loader that fails, prints nothing, prints no text, or is not found is that document's error" {
	cat >"$CONF" <<CONF
loader.fail = sh -c "echo broken input >&2; exit 3" loader
loader.none = true
loader.bin = printf '\377\376'
loader.nf = no-such-loader-ai-tools --plain
loader.open = sed "s/a/b/
CONF
	for e in fail none bin nf open; do printf 'x\n' >"$T/doc.$e"; done
	printf 'good text\n' >"$T/good.txt"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T"/doc.fail "$T"/doc.none "$T"/doc.bin "$T"/doc.nf "$T"/doc.open "$T/good.txt"
	assert_eq "$status" 1
	assert_contains "$stderr" "'$T/doc.fail': loader 'sh -c \"echo broken input >&2; exit 3\" loader' failed (exit 3): broken input"
	assert_contains "$stderr" "'$T/doc.none': loader 'true' printed no text"
	assert_contains "$stderr" "'$T/doc.bin': loader 'printf '\\377\\376'' printed what is not UTF-8 text"
	assert_contains "$stderr" "'$T/doc.nf': loader 'no-such-loader-ai-tools --plain': command 'no-such-loader-ai-tools' not found in PATH"
	assert_contains "$stderr" "'$T/doc.open': loader 'sed \"s/a/b/': a double quote is not closed"
	run ai-index --db "$DB" --list --json
	assert_eq "$(jq -r .source <<<"$output")" "$T/good.txt"
	# Alone, each exits as ai(7) says: bad data 65, unavailable 69, configuration 78.
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T"/doc.fail
	assert_eq "$status" 65
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T"/doc.bin
	assert_eq "$status" 65
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T"/doc.nf
	assert_eq "$status" 69
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T"/doc.open
	assert_eq "$status" 78
}

@test "documents: a bad loader key is a configuration error before anything is read" {
	printf 'loader..docx = cat\n' >"$CONF"
	printf 'text\n' >"$T/a.txt"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/a.txt"
	assert_eq "$status" 78
	assert_contains "$stderr" "loader..docx"
	printf 'loader_timeout = soon\n' >"$CONF"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/a.txt"
	assert_eq "$status" 78
	[[ ! -e $DB ]]
}

@test "documents: an index of schema 2 (no pages) is read as it is, and upgraded by the next write" {
	manual
	printf 'old text about kettles\n' >"$T/old.txt"
	ai-index --db "$DB" --no-embed -q "$T/old.txt"
	sqlite3 "$DB" "ALTER TABLE chunks DROP COLUMN page; PRAGMA user_version = 2"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only kettles
	assert_eq "$status" 0
	assert_eq "$(jq -r .source <<<"$output")" "$T/old.txt"
	assert_eq "$(sqlite3 "$DB" "PRAGMA user_version")" 2 "schema after a read"
	run --separate-stderr ai-index --db "$DB" --no-embed -q "$T/manual.pdf"
	assert_eq "$status" 0
	assert_eq "$(sqlite3 "$DB" "PRAGMA user_version")" 3 "schema after a write"
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 kettles
	assert_eq "$(jq -r .page <<<"$output")" null
	run --separate-stderr ai-ask --db "$DB" --no-embed --retrieve-only -k 1 "casing plugged"
	assert_eq "$(jq -r .page <<<"$output")" 2
}
