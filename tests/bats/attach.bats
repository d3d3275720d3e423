#!/usr/bin/env bats
# Attachments (-a FILE|URL|-, ai-batch's "attachments"): the content parts
# sent, checked on the test server's request log and in --dry-run; the caps;
# a URL passed and never fetched; the cache told apart by the bytes; a model
# that refuses images.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	setup_env
	start_server
	mkdir -p "$XDG_CONFIG_HOME/ai"
	CONF=$XDG_CONFIG_HOME/ai/config
	cd "$T" || return 1
	# A PNG and a GIF: their signatures and a few bytes, named as text files.
	printf '\211PNG\r\n\032\n\0\0\0\rIHDRpng-one' >png.txt
	printf 'GIF89a\1\0\1\0gif-two' >gif.txt
}
teardown() { stop_server; }

CHAT=/v1/chat/completions

# parts: the content parts of the last chat request's user message, one JSON a line.
parts() {
	last_request $CHAT | jq -c '.body.messages[-1].content[]'
}


@test "attach: an image named .txt goes as an image_url part with a PNG data URL of its bytes" {
	run --separate-stderr ai-stream -a png.txt what is this
	assert_eq "$status" 0
	assert_eq "$stderr" ""
	assert_eq "$(parts | sed -n 1p)" '{"type":"text","text":"what is this"}'
	assert_eq "$(parts | sed -n 2p | jq -r .type)" image_url
	assert_eq "$(parts | sed -n 2p | jq -r .image_url.url)" "data:image/png;base64,$(base64 -w0 png.txt)"
	assert_eq "$(parts | wc -l)" 2
}

@test "attach: a GIF and a text file, in the order given; text carries its name" {
	printf 'line one\nline two\n' >notes.md
	run --separate-stderr ai-stream -a gif.txt -a notes.md hi
	assert_eq "$status" 0
	assert_eq "$(parts | sed -n 2p | jq -r .image_url.url)" "data:image/gif;base64,$(base64 -w0 gif.txt)"
	assert_eq "$(parts | sed -n 3p | jq -r .text)" "$(printf 'notes.md:\nline one\nline two')"
	# The ledger counts the parts sent as attachments of their own: the image, not the text.
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT attachments FROM calls ORDER BY id DESC LIMIT 1')" 1
	run --separate-stderr ai-stream --no-cache hi
	assert_eq "$(sqlite3 "$XDG_DATA_HOME/ai/usage.db" 'SELECT attachments FROM calls ORDER BY id DESC LIMIT 1')" 0
}

@test "attach: --dry-run shows the content parts with the base64 shortened" {
	head -c 3000 /dev/urandom >noise
	cat png.txt noise >big.png
	run --separate-stderr ai-stream --dry-run -a big.png look
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 0
	assert_contains "$output" '"type":"image_url"'
	assert_contains "$output" 'data:image/png;base64,iVBORw0KGgoAAAAN...'
	assert_contains "$output" "($(base64 -w0 big.png | wc -c) base64 characters)"
	# The whole base64 is not there.
	assert_not_contains "$output" "$(base64 -w0 big.png | cut -c 1-200)"
	(( ${#output} < 1500 ))
}

@test "attach: a URL is passed as it is and never fetched" {
	run --separate-stderr ai-stream -a "http://127.0.0.1:$PORT/picture.png" describe
	assert_eq "$status" 0
	assert_eq "$(parts | sed -n 2p)" "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://127.0.0.1:$PORT/picture.png\"}}"
	# The server saw the chat request and nothing else.
	assert_eq "$(requests | jq -r .path | sort -u)" "$CHAT"
}

@test "attach: a 1 GB sparse file is refused by its size before it is read" {
	truncate -s 1G huge.bin
	run --separate-stderr ai-stream -a huge.bin hi
	assert_eq "$status" 65
	assert_contains "$stderr" "attachment 'huge.bin' is 1.0 GiB, over the cap of 20.0 MiB"
	assert_contains "$stderr" "attach_max"
	assert_eq "$(request_count $CHAT)" 0
	# The size named is the file's, from fstat: a reader stopped at the cap
	# would know only that it had more than 20 MiB.
	assert_not_contains "$stderr" "is 20.0 MiB"
}

@test "attach: the caps are settings; the total counts every attachment" {
	head -c 3000 /dev/zero | tr '\0' a >a.txt
	echo 'attach_max = 2K' >"$CONF"
	run --separate-stderr ai-stream -a a.txt hi
	assert_eq "$status" 65
	assert_contains "$stderr" "attachment 'a.txt' is 2.9 KiB, over the cap of 2.0 KiB"
	printf 'attach_max = 4K\nattach_max_total = 5K\n' >"$CONF"
	run --separate-stderr ai-stream -a a.txt -a a.txt hi
	assert_eq "$status" 65
	assert_contains "$stderr" "attachment 'a.txt' brings the attachments over their total cap"
	assert_contains "$stderr" "attach_max_total"
	assert_eq "$(request_count $CHAT)" 0
	echo 'attach_max = lots' >"$CONF"
	run --separate-stderr ai-stream -a a.txt hi
	assert_eq "$status" 78
}

@test "attach: a missing file exits 66 naming it; a directory too; nothing is sent" {
	run --separate-stderr ai-stream -a nothere.png hi
	assert_eq "$status" 66
	assert_contains "$stderr" "cannot open attachment 'nothere.png'"
	run --separate-stderr ai-stream -a . hi
	assert_eq "$status" 66
	assert_contains "$stderr" "attachment '.' is not a regular file"
	assert_eq "$(request_count $CHAT)" 0
}

@test "attach: --json gives a failed attachment an error record; -a - over the cap is 65" {
	run --separate-stderr ai-stream --json -a nothere.png hi
	assert_eq "$status" 66
	assert_eq "$(jq -r .type <<<"$output")" error
	assert_eq "$(jq -r .exit <<<"$output")" 66
	assert_contains "$(jq -r .message <<<"$output")" "'nothere.png'"
	echo 'attach_max = 1K' >"$CONF"
	run --separate-stderr ai-stream -a - hi < <(head -c 5000 /dev/zero)
	assert_eq "$status" 65
	assert_contains "$stderr" "attachment '-' is over the cap"
	assert_eq "$(request_count $CHAT)" 0
}

@test "attach: a binary that is neither image, PDF nor text is refused with 65" {
	printf '\0\1\2\3\377\376' >blob.dat
	run --separate-stderr ai-stream -a blob.dat hi
	assert_eq "$status" 65
	assert_contains "$stderr" "attachment 'blob.dat' is neither an image"
	assert_eq "$(request_count $CHAT)" 0
}

@test "attach: -a - reads the attachment from standard input" {
	run --separate-stderr ai-stream -a - what is it <gif.txt
	assert_eq "$status" 0
	assert_eq "$(parts | sed -n 1p | jq -r .text)" "what is it"
	assert_eq "$(parts | sed -n 2p | jq -r .image_url.url)" "data:image/gif;base64,$(base64 -w0 gif.txt)"
	# The message cannot come from standard input too.
	run --separate-stderr ai-stream -a - <gif.txt
	assert_eq "$status" 64
	assert_contains "$stderr" "give the message as arguments"
	run --separate-stderr ai-stream -i -a - hi <gif.txt
	assert_eq "$status" 64
	assert_contains "$stderr" "where -i reads the messages"
	assert_eq "$(request_count $CHAT)" 1
}

@test "attach: a PDF goes as its text by default, from a file or from standard input" {
	mkpdf doc.pdf "Quarterly report|Revenue rose by 12 percent"
	run --separate-stderr ai-stream -a doc.pdf summarise
	assert_eq "$status" 0
	assert_eq "$(parts | sed -n 2p | jq -r .type)" text
	assert_contains "$(parts | sed -n 2p | jq -r .text)" "doc.pdf:"
	assert_contains "$(parts | sed -n 2p | jq -r .text)" "Revenue rose by 12 percent"
	run --separate-stderr ai-stream -a - summarise <doc.pdf
	assert_eq "$status" 0
	assert_contains "$(parts | sed -n 2p | jq -r .text)" "Revenue rose by 12 percent"
}

@test "attach: --attach-as file sends a PDF as a file part; a bad --attach-as is 64" {
	mkpdf doc.pdf "Hello"
	run --separate-stderr ai-stream --attach-as file -a doc.pdf summarise
	assert_eq "$status" 0
	assert_eq "$(parts | sed -n 2p | jq -r .type)" file
	assert_eq "$(parts | sed -n 2p | jq -r .file.filename)" doc.pdf
	assert_eq "$(parts | sed -n 2p | jq -r .file.file_data)" "data:application/pdf;base64,$(base64 -w0 doc.pdf)"
	run --separate-stderr ai-stream --attach-as image -a doc.pdf hi
	assert_eq "$status" 64
}

@test "attach: the cache tells two images apart under the same prompt" {
	run --separate-stderr ai-stream -a png.txt same prompt
	assert_eq "$status" 0
	run --separate-stderr ai-stream -a gif.txt same prompt
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2 "a different image is a different request"
	run --separate-stderr ai-stream --json -a png.txt same prompt
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2 "the same image again is a hit"
	assert_eq "$(tail -n 1 <<<"$output" | jq -r .cached)" true
}

@test "attach: a server that refuses images gets one clear message, exit 65, no retry" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"Invalid content type. image_url is only supported by certain models.","type":"invalid_request_error"}}}]}'
	run --separate-stderr ai-stream --retries 3 -a png.txt what is this
	assert_eq "$status" 65
	assert_contains "$stderr" "the model does not take these attachments"
	assert_contains "$stderr" "image_url is only supported"
	assert_eq "$(grep -c . <<<"$stderr")" 1
	assert_eq "$(request_count $CHAT)" 1
}

@test "attach: a 400 that does not name images stays the server's error" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"bad temperature"}}}]}'
	run --separate-stderr ai-stream -a png.txt hi
	assert_eq "$status" 69
	assert_not_contains "$stderr" "attachments"
}

@test "attach: under -i the attachments go with the first message and stay in the conversation" {
	run --separate-stderr ai-stream -i -a png.txt < <(printf 'first\nsecond\n')
	assert_eq "$status" 0
	assert_eq "$(request_count $CHAT)" 2
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[0].content[1].type' <<<"$r")" image_url "the image is still in the conversation"
	assert_eq "$(jq -r '.body.messages[-1].content' <<<"$r")" second "sent once, with the first message"
}

@test "attach: the history file and the kept conversation name the attachments, not their bytes" {
	run --separate-stderr ai-stream --history h.jsonl -a png.txt -a https://example.com/p.png first
	assert_eq "$status" 0
	assert_eq "$(sed -n 1p h.jsonl | jq -r .content)" "$(printf 'first\n\n[image attached]\n\n[image: https://example.com/p.png]')"
	assert_not_contains "$(cat h.jsonl)" "base64"
	# The file reads back: the next exchange sends it as text.
	run --separate-stderr ai-stream --history h.jsonl second
	assert_eq "$status" 0
	assert_eq "$(last_request $CHAT | jq -r '.body.messages[0].content')" "$(sed -n 1p h.jsonl | jq -r .content)"
	run --separate-stderr ai-stream -C third
	assert_eq "$status" 0
	assert_not_contains "$(last_request $CHAT | jq -c .body.messages)" "base64"
}

# ---- ai-agent and ai-summarize ----

@test "attach: ai-agent sends the attachments with the task" {
	ctl '{"push":[{"reply":"a PNG"}]}'
	run --separate-stderr ai-agent --no-default-tools -a png.txt what is in the picture
	assert_eq "$status" 0
	assert_eq "$output" "a PNG"
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[1].role' <<<"$r")" user
	assert_eq "$(jq -c '.body.messages[1].content[0]' <<<"$r")" '{"type":"text","text":"what is in the picture"}'
	assert_eq "$(jq -r '.body.messages[1].content[1].image_url.url' <<<"$r")" "data:image/png;base64,$(base64 -w0 png.txt)"
}

@test "attach: ai-agent: a refused image is 65, said once, not retried; a missing file 66" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"this model does not support vision input"}}}]}'
	run --separate-stderr ai-agent --no-default-tools --retries 2 -a png.txt look
	assert_eq "$status" 65
	assert_contains "$stderr" "the model does not take these attachments"
	assert_eq "$(request_count $CHAT)" 1
	run --separate-stderr ai-agent --no-default-tools -a missing.png look
	assert_eq "$status" 66
	assert_contains "$stderr" "'missing.png'"
}

@test "attach: ai-summarize -a FILE summarizes the attachment without reading standard input" {
	mkpdf doc.pdf "The pump failed on Tuesday|It was replaced on Friday"
	run --separate-stderr ai-summarize -a doc.pdf </dev/null
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_contains "$(jq -r '.body.messages[-1].content[0].text' <<<"$r")" "Summarize"
	assert_contains "$(jq -r '.body.messages[-1].content[1].text' <<<"$r")" "The pump failed on Tuesday"
	# With a FILE too, the file is the text and the attachment goes beside it.
	echo "a note about pumps" >note.txt
	run --separate-stderr ai-summarize -a png.txt note.txt
	assert_eq "$status" 0
	r=$(last_request $CHAT)
	assert_contains "$(jq -r '.body.messages[-1].content[0].text' <<<"$r")" "a note about pumps"
	assert_eq "$(jq -r '.body.messages[-1].content[1].type' <<<"$r")" image_url
}

@test "attach: ai-summarize --dry-run shortens the base64; -a - reads standard input" {
	run --separate-stderr ai-summarize --dry-run -a - <png.txt
	assert_eq "$status" 0
	assert_contains "$output" 'data:image/png;base64,iVBORw0KGgoAAAAN...'
	assert_eq "$(request_count $CHAT)" 0
	ctl '{"push":[{"status":400,"body":{"error":{"message":"image input is not supported"}}}]}'
	run --separate-stderr ai-summarize -a png.txt
	assert_eq "$status" 65
	assert_contains "$stderr" "the model does not take these attachments"
}

# ---- ai-batch ----

@test "attach: ai-batch takes an \"attachments\" field per text item; a bad one fails that item only" {
	mkpdf doc.pdf "Invoice 4711"
	printf '%s\n' '{"id":"p","text":"what is it","attachments":["png.txt"]}' \
		'{"id":"d","text":"total?","attachments":["doc.pdf","https://example.com/a.jpg"]}' \
		'{"id":"m","text":"x","attachments":["missing.png"]}' \
		'{"id":"b","text":"x","attachments":"png.txt"}' \
		'{"id":"q","messages":[{"role":"user","content":"x"}],"attachments":["png.txt"]}' \
		'{"id":"plain","text":"no attachment"}' >in.jsonl
	run --separate-stderr ai-batch --no-cache in.jsonl
	assert_eq "$status" 1
	assert_eq "$(request_count $CHAT)" 3
	r=$(requests $CHAT | jq -c 'select((.body.messages[-1].content | arrays | .[0].text) == "what is it") | .body.messages[-1].content')
	assert_eq "$(jq -r '.[1].image_url.url' <<<"$r")" "data:image/png;base64,$(base64 -w0 png.txt)"
	r=$(requests $CHAT | jq -c 'select((.body.messages[-1].content | arrays | .[0].text) == "total?") | .body.messages[-1].content')
	assert_contains "$(jq -r '.[1].text' <<<"$r")" "Invoice 4711"
	assert_eq "$(jq -r '.[2].image_url.url' <<<"$r")" "https://example.com/a.jpg"
	assert_eq "$(requests $CHAT | jq -c 'select(.body.messages[-1].content == "no attachment")' | wc -l)" 1
	assert_contains "$(jq -r 'select(.id == "m") | .error.message' <<<"$output")" "cannot open attachment 'missing.png'"
	assert_contains "$(jq -r 'select(.id == "b") | .error.message' <<<"$output")" '"attachments" must be an array'
	assert_contains "$(jq -r 'select(.id == "q") | .error.message' <<<"$output")" 'not with "messages"'
	assert_eq "$(jq -r 'select(.id == "p") | .error // "none"' <<<"$output")" none
}

@test "attach: ai-batch: the caps of ai.conf hold for items too" {
	echo 'attach_max = 10' >"$CONF"
	echo '{"id":"p","text":"x","attachments":["png.txt"]}' >in.jsonl
	run --separate-stderr ai-batch --no-cache in.jsonl
	assert_eq "$status" 69 "every item failed"
	assert_contains "$(jq -r .error.message <<<"$output")" "attachment 'png.txt' is $(stat -c %s png.txt) bytes, over the cap of 10 bytes"
	assert_contains "$(jq -r .error.message <<<"$output")" "attach_max"
	assert_eq "$(request_count $CHAT)" 0
}

@test "attach: ai-batch: an item whose model refuses images fails with one clear message" {
	ctl '{"push":[{"status":400,"body":{"error":{"message":"model is not multimodal"}}}]}'
	echo '{"id":"p","text":"x","attachments":["png.txt"]}' >in.jsonl
	run --separate-stderr ai-batch --no-cache --retries 2 in.jsonl
	assert_eq "$status" 69 "every item failed"
	assert_contains "$(jq -r .error.message <<<"$output")" "the model does not take these attachments"
	assert_eq "$(request_count $CHAT)" 1
}
