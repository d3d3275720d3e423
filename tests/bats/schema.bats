#!/usr/bin/env bats
# --schema and --schema-multi: answers as data.  What is sent (response_format
# json_schema, strict), the fallback when a server refuses it, the check of
# every reply before it is printed, cached or written, the one repair, and
# the errors.  The test server's json_from_prompt setting answers with the
# JSON found in the first user message, so a test decides what the "model"
# says by what it asks.

bats_require_minimum_version 1.5.0
load helpers

setup() { setup_env; start_server; ctl '{"set": {"json_from_prompt": true}}'; }
teardown() { stop_server; }

CHAT=/v1/chat/completions
S='name, age int, tags [str]'
REFUSAL='{"push": [{"status": 400, "body": {"error": {"message": "Invalid parameter: response_format of type json_schema is not supported with this model", "type": "invalid_request_error"}}}]}'

@test "schema: a valid reply is printed as the JSON alone; the request says json_schema, strict" {
	run --separate-stderr ai-summarize --schema "$S" <<<'Ada: {"name": "Ada", "age": 36, "tags": ["math"]}'
	assert_eq "$status" 0 status
	assert_eq "$stderr" "" stderr
	assert_eq "$output" '{"name":"Ada","age":36,"tags":["math"]}'
	assert_eq "$(request_count $CHAT)" 1 requests
	r=$(last_request $CHAT)
	assert_eq "$(jq -c .body.response_format.type <<<"$r")" '"json_schema"'
	assert_eq "$(jq -c .body.response_format.json_schema.strict <<<"$r")" true
	assert_eq "$(jq -c .body.response_format.json_schema.schema <<<"$r")" \
		'{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}}},"required":["name","age","tags"],"additionalProperties":false}'
}

@test "schema: --json carries the parsed object as data" {
	run --separate-stderr ai-summarize --json --schema "$S" <<<'{"name": "Ada", "age": 36, "tags": []}'
	assert_eq "$status" 0 status
	assert_eq "$(jq -c .data <<<"$output")" '{"name":"Ada","age":36,"tags":[]}'
}

@test "schema: an invalid reply is asked again once with the validator's message, then exits 65" {
	run --separate-stderr ai-summarize --schema "$S" <<<'{"name": "Bob", "age": "old", "tags": []}'
	assert_eq "$status" 65 status
	assert_eq "$output" "" stdout
	assert_eq "$stderr" "ai-summarize: the reply does not match the schema at '/age': expected integer, got string"
	assert_eq "$(request_count $CHAT)" 2 requests
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[-2].role' <<<"$r")" assistant
	assert_eq "$(jq -r '.body.messages[-2].content' <<<"$r")" '{"name": "Bob", "age": "old", "tags": []}'
	assert_contains "$(jq -r '.body.messages[-1].content' <<<"$r")" "at '/age': expected integer, got string"
}

@test "schema: a repaired reply is printed, and only the valid answer is cached" {
	ctl '{"push": [{"reply": "{\"name\": \"Cy\"}"}]}'
	run --separate-stderr ai-summarize --schema "$S" <<<'{"name": "Cy", "age": 3, "tags": ["x"]}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"name":"Cy","age":3,"tags":["x"]}'
	assert_eq "$(request_count $CHAT)" 2 requests
	# The first ask's invalid answer was not cached: asked again, it is sent again.
	ctl '{"push": [{"reply": "{\"name\": \"Cy\"}"}]}'
	run --separate-stderr ai-summarize --schema "$S" <<<'{"name": "Cy", "age": 3, "tags": ["x"]}'
	assert_eq "$status" 0 status
	assert_eq "$(request_count $CHAT)" 3 "the invalid first answer is asked again; the repair is a hit"
}

@test "schema: the schema is part of the cache key" {
	run ai-summarize --schema "$S" <<<'{"name": "D", "age": 1, "tags": []}'
	assert_eq "$status" 0 status
	run ai-summarize --schema "$S" <<<'{"name": "D", "age": 1, "tags": []}'
	assert_eq "$(request_count $CHAT)" 1 "same schema: a hit"
	run ai-summarize --schema '{"type": "object"}' <<<'{"name": "D", "age": 1, "tags": []}'
	assert_eq "$status" 0 status
	assert_eq "$(request_count $CHAT)" 2 "another schema: sent"
	run ai-summarize <<<'{"name": "D", "age": 1, "tags": []}'
	assert_eq "$(request_count $CHAT)" 3 "no schema: sent"
}

@test "schema: a server that refuses json_schema is asked once more with json_object; -v says so" {
	ctl "$REFUSAL"
	run --separate-stderr ai-summarize -v --schema "$S" <<<'{"name": "E", "age": 2, "tags": []}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"name":"E","age":2,"tags":[]}'
	assert_contains "$stderr" "the server refused response_format json_schema; asking with json_object"
	assert_eq "$(request_count $CHAT)" 2 requests
	r=$(last_request $CHAT)
	assert_eq "$(jq -c .body.response_format <<<"$r")" '{"type":"json_object"}'
	assert_eq "$(jq -r '.body.messages[0].role' <<<"$r")" system
	assert_contains "$(jq -r '.body.messages[0].content' <<<"$r")" 'matches this JSON Schema'
	assert_contains "$(jq -r '.body.messages[0].content' <<<"$r")" '"required":["name","age","tags"]'
}

@test "schema: the fallback is said only under -v, and a 400 about something else is not retried" {
	ctl "$REFUSAL"
	run --separate-stderr ai-summarize --schema "$S" <<<'{"name": "E", "age": 2, "tags": []}'
	assert_eq "$status" 0 status
	assert_eq "$stderr" "" stderr
	ctl '{"push": [{"status": 400, "body": {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}}}]}'
	run --separate-stderr ai-summarize --schema "$S" <<<'{"name": "F", "age": 2, "tags": []}'
	assert_eq "$status" 69 status
	assert_eq "$(request_count $CHAT)" 3 "one refusal retried, the other not"
}

@test "schema: --schema-multi asks for an object holding a list" {
	ctl '{"push": [{"reply": "{\"items\": [{\"name\": \"a\", \"age\": 1, \"tags\": []}, {\"name\": \"b\", \"age\": 2, \"tags\": [\"t\"]}]}"}]}'
	run --separate-stderr ai-summarize --schema-multi "$S" <<<'two people'
	assert_eq "$status" 0 status
	assert_eq "$(jq -c '.items | length' <<<"$output")" 2
	r=$(last_request $CHAT)
	assert_eq "$(jq -c .body.response_format.json_schema.schema.properties.items.type <<<"$r")" '"array"'
	assert_eq "$(jq -c .body.response_format.json_schema.schema.required <<<"$r")" '["items"]'
}

@test "schema: inline JSON Schema and @FILE are taken as they are" {
	printf '%s' '{"type":"object","properties":{"n":{"type":"integer","minimum":10}},"required":["n"]}' >"$T/s.json"
	run --separate-stderr ai-summarize --schema @"$T/s.json" <<<'{"n": 12}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"n":12}'
	run --separate-stderr ai-summarize --schema "$(cat "$T/s.json")" <<<'{"n": 3}'
	assert_eq "$status" 65 status
	assert_contains "$stderr" "at '/n': 3 is less than minimum 10"
}

@test "schema: bad schemas get a clear error: 64 inline, 65 in a file, 66 no file" {
	run --separate-stderr ai-summarize --schema '{"type": "object"' </dev/null
	assert_eq "$status" 64 status
	assert_eq "$stderr" "ai-summarize: --schema: schema is not JSON: unexpected end of data"
	run --separate-stderr ai-summarize --schema 'name, age complex' </dev/null
	assert_eq "$status" 64 status
	assert_contains "$stderr" "unknown type 'complex'"
	printf '{"type": "object", "properties": {"a": {"oneOf": []}}}' >"$T/bad.json"
	run --separate-stderr ai-summarize --schema @"$T/bad.json" </dev/null
	assert_eq "$status" 65 status
	assert_contains "$stderr" "keyword 'oneOf' is not supported"
	run --separate-stderr ai-summarize --schema @"$T/none.json" </dev/null
	assert_eq "$status" 66 status
	assert_contains "$stderr" "cannot open schema '$T/none.json'"
	run --separate-stderr ai-summarize --schema '{"type": "array"}' </dev/null
	assert_eq "$status" 64 status
	assert_contains "$stderr" "the top must be"
	run --separate-stderr ai-summarize --schema a --schema-multi a </dev/null
	assert_eq "$status" 64 status
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
}

@test "schema: ai-stream prints the checked JSON once, not deltas" {
	run --separate-stderr ai-stream --schema "$S" 'as data: {"name": "G", "age": 5, "tags": []}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"name":"G","age":5,"tags":[]}'
	assert_eq "$(jq -c .body.response_format.type <<<"$(last_request $CHAT)")" '"json_schema"'
	run --separate-stderr ai-stream --schema "$S" 'not data: {"name": "G"}'
	assert_eq "$status" 65 status
	assert_eq "$output" "" "nothing printed before the check"
	assert_contains "$stderr" "required property 'age' is missing"
}

@test "schema: ai-stream --json: the done record carries the parsed object as data" {
	run --separate-stderr ai-stream --json --schema "$S" 'as data: {"name": "G", "age": 5, "tags": ["a"]}'
	assert_eq "$status" 0 status
	assert_eq "$(jq -c 'select(.type == "done") | .data' <<<"$output")" '{"name":"G","age":5,"tags":["a"]}'
	assert_eq "$(jq -r 'select(.type == "delta") | .content' <<<"$output")" '{"name":"G","age":5,"tags":["a"]}'
	# Without --schema, no data field.
	run --separate-stderr ai-stream --json 'plain {"name": "G"}'
	assert_eq "$(jq -c 'select(.type == "done") | has("data")' <<<"$output")" false
	run --separate-stderr ai-stream --json --schema "$S" 'not data: {"name": "G"}'
	assert_eq "$status" 65 status
	assert_eq "$(jq -r 'select(.type == "error") | .exit' <<<"$output")" 65
	assert_eq "$(jq -c 'select(.type == "delta")' <<<"$output")" "" "nothing before the check"
}

@test "schema: ai-agent gives its final answer as checked JSON" {
	ctl '{"set": {"json_from_prompt": false}}'
	ctl '{"push": [{"reply": "the answer is 42"}, {"reply": "{\"answer\": 42}"}]}'
	run --separate-stderr ai-agent --no-default-tools --schema 'answer int' 'what is six times seven'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"answer":42}'
	r=$(last_request $CHAT)
	assert_eq "$(jq -c .body.response_format.json_schema.schema.required <<<"$r")" '["answer"]'
	assert_contains "$(jq -r '.body.messages[-1].content' <<<"$r")" "the answer is 42"
}

@test "schema: ai-batch, 200 items of which a tenth answer no JSON: exactly those are schema_invalid" {
	for i in $(seq 1 200); do
		if ((i % 10 == 0)); then
			printf '{"id": "%d", "text": "bad item %d"}\n' "$i" "$i"
		else
			printf '{"id": "%d", "text": "item: {\\"n\\": %d, \\"name\\": \\"x%d\\"}"}\n' "$i" "$i" "$i"
		fi
	done >"$T/in.jsonl"
	run --separate-stderr ai-batch --schema 'n int, name' "$T/in.jsonl"
	assert_eq "$status" 1 "some failed"
	assert_eq "$(wc -l <<<"$output")" 200 lines
	assert_eq "$(jq -r 'select(.error) | .id' <<<"$output" | tr '\n' ' ')" \
		"10 20 30 40 50 60 70 80 90 100 110 120 130 140 150 160 170 180 190 200 "
	assert_eq "$(jq -r 'select(.error) | .error.type' <<<"$output" | sort -u)" schema_invalid
	assert_eq "$(jq -r 'select(.id == "10") | .error.raw' <<<"$output")" "no JSON here"
	assert_eq "$(jq -c 'select(.id == "7") | .data' <<<"$output")" '{"n":7,"name":"x7"}'
	assert_eq "$(jq -s '[.[] | select(.data)] | length' <<<"$output")" 180
	assert_eq "$(request_count $CHAT)" 220 "each bad item asked again once"
}

@test "schema: ai-batch --schema-multi gives one line per object, each with its id and index" {
	ctl '{"set": {"json_from_prompt": false, "reply": "{\"items\": [{\"w\": \"a\"}, {\"w\": \"b\"}, {\"w\": \"c\"}]}"}}'
	printf '{"id": "x", "text": "three"}\n{"id": "y", "text": "also three"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch --schema-multi 'w' "$T/in.jsonl"
	assert_eq "$status" 0 status
	assert_eq "$(jq -c '[.id, .index, .data.w]' <<<"$output" | tr '\n' ' ')" \
		'["x",0,"a"] ["x",1,"b"] ["x",2,"c"] ["y",0,"a"] ["y",1,"b"] ["y",2,"c"] '
}

@test "schema: ai-batch falls back once on a refusal and goes on in json_object mode" {
	ctl "$REFUSAL"
	printf '{"id": 1, "text": "{\\"n\\": 1}"}\n{"id": 2, "text": "{\\"n\\": 2}"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch -P 1 --schema 'n int' "$T/in.jsonl"
	assert_eq "$status" 0 status
	assert_eq "$(jq -c .data <<<"$output" | tr '\n' ' ')" '{"n":1} {"n":2} '
	assert_eq "$(request_count $CHAT)" 3 "one refusal, then two in json_object mode"
	assert_eq "$(requests $CHAT | jq -r .body.response_format.type | tr '\n' ' ')" \
		"json_schema json_object json_object "
}

@test "schema: ai-batch submit --schema: the job checks each answer, with its own copy of the schema" {
	for i in $(seq 1 20); do
		if ((i % 10 == 0)); then
			printf '{"id": "%d", "text": "bad %d"}\n' "$i" "$i"
		else
			printf '{"id": "%d", "text": "{\\"n\\": %d}"}\n' "$i" "$i"
		fi
	done >"$T/in.jsonl"
	printf 'n int' >"$T/s.txt"
	id=$(cd "$T" && ai-batch submit --schema @s.txt in.jsonl)
	rm "$T/s.txt"
	run --separate-stderr ai-batch wait "$id"
	assert_eq "$status" 1 "two failed"
	run --separate-stderr ai-batch results "$id"
	assert_eq "$(wc -l <<<"$output")" 20 lines
	assert_eq "$(jq -r 'select(.error) | .id + " " + .error.type' <<<"$output" | tr '\n' '|')" \
		"10 schema_invalid|20 schema_invalid|"
	assert_eq "$(jq -r 'select(.id == "10") | .error.raw' <<<"$output")" "no JSON here"
	assert_eq "$(jq -c 'select(.id == "3") | .data' <<<"$output")" '{"n":3}'
	assert_eq "$(requests $CHAT | jq -r .body.response_format.type | sort -u)" json_schema
	assert_eq "$(request_count $CHAT)" 22 "each bad item asked again once"
}

@test "schema: ai-batch submit --remote --schema: each request asks for it, each result is checked" {
	ctl '{"set": {"batch_delay_ms": 0}}'
	printf '{"id": "a", "text": "{\\"w\\": \\"x\\"}"}\n{"id": "b", "text": "none"}\n{"id": "c", "text": "{\\"w\\": 5}"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch submit --remote --schema 'w' "$T/in.jsonl"
	assert_eq "$status" 0 "status: $stderr"
	id=$output
	file=$(requests /v1/files | head -n 1 | jq -r .body)
	assert_contains "$file" '"response_format":{"type":"json_schema","json_schema":{"name":"reply"'
	run --separate-stderr ai-batch wait --poll 0.1 "$id"
	assert_eq "$status" 1 "two failed the schema"
	run --separate-stderr ai-batch results "$id"
	assert_eq "$(jq -c '[.id, .data, .error.type]' <<<"$output" | tr '\n' ' ')" \
		'["a",{"w":"x"},null] ["b",null,"schema_invalid"] ["c",null,"schema_invalid"] '
	assert_eq "$(jq -r 'select(.id == "c") | .error.message' <<<"$output")" \
		"the reply does not match the schema at '/w': expected string, got integer"
	assert_eq "$(ai-batch status "$id" | jq -c '[.ok, .failed]')" '[1,2]'
}

@test "schema: ai-batch submit with a bad schema is refused before a job is made" {
	printf '{"id": 1, "text": "x"}\n' >"$T/in.jsonl"
	run --separate-stderr ai-batch submit --schema '{"type": ' "$T/in.jsonl"
	assert_eq "$status" 64 status
	run --separate-stderr ai-batch submit --remote --schema @"$T/none.json" "$T/in.jsonl"
	assert_eq "$status" 66 status
	assert_eq "$(ai-batch list)" "" "no job"
	assert_eq "$(requests | wc -l)" 0 "nothing sent"
}

@test "schema: an ai-batch item's own response_format json_schema is checked, per item" {
	rf='"response_format": {"type": "json_schema", "json_schema": {"name": "mine", "strict": true, "schema": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]}}}'
	{
		printf '{"id": "a", "messages": [{"role": "user", "content": "{\\"k\\": 1}"}], %s}\n' "$rf"
		printf '{"id": "b", "messages": [{"role": "user", "content": "{\\"k\\": \\"x\\"}"}], %s}\n' "$rf"
		printf '{"id": "c", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"not": {}}}}}\n'
		printf '{"id": "d", "messages": [{"role": "user", "content": "free {\\"k\\": \\"y\\"}"}]}\n'
	} >"$T/in.jsonl"
	run --separate-stderr ai-batch "$T/in.jsonl"
	assert_eq "$status" 1 status
	assert_eq "$(jq -c 'select(.id == "a") | .data' <<<"$output")" '{"k":1}'
	assert_eq "$(jq -r 'select(.id == "b") | .error.type' <<<"$output")" schema_invalid
	assert_eq "$(jq -r 'select(.id == "c") | .error.type' <<<"$output")" invalid_input
	assert_contains "$(jq -r 'select(.id == "c") | .error.message' <<<"$output")" "keyword 'not' is not supported"
	assert_eq "$(jq -c 'select(.id == "d") | [.output, .data]' <<<"$output")" '["{\"k\": \"y\"}",null]' "no schema: as before"
	assert_eq "$(requests $CHAT | jq -r '.body.response_format.json_schema.name // "none"' | sort | tr '\n' ' ')" \
		"mine mine mine none " "the item's own response_format is sent as it is"
}

# ---- templates (prompts as files) ----

@test "template: --save writes one from the options, -T uses it with --param, --list-templates lists it" {
	run --separate-stderr ai-stream --system 'You translate.' --temperature 0.3 --schema 'text' \
		--save tr 'Translate into {{lang}}: {{input}}' </dev/null
	assert_eq "$status" 0 status
	assert_eq "$stderr" "ai-stream: saved template 'tr'; use it with -T tr"
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
	assert_eq "$(cat "$XDG_CONFIG_HOME/ai/templates/tr")" $'system: You translate.\ntemperature: 0.3\nschema: text\n\nTranslate into {{lang}}: {{input}}'
	run --separate-stderr ai-agent --list-templates
	assert_eq "$output" tr
	run --separate-stderr ai-stream -T tr --param lang=French 'Hello {"text": "Bonjour"}'
	assert_eq "$status" 0 status
	assert_eq "$output" '{"text":"Bonjour"}' "the template's schema applies"
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "You translate."
	assert_eq "$(jq -r '.body.messages[1].content' <<<"$r")" 'Translate into French: Hello {"text": "Bonjour"}'
	assert_eq "$(jq -r '.body.temperature' <<<"$r")" 0.3
}

@test "template: header lines are defaults the options override; no {{input}} puts the input after" {
	mkdir -p "$XDG_CONFIG_HOME/ai/templates"
	printf 'system: Be terse.\nmodel: tmpl-model\nmax_tokens: 50\nTell a joke about the topic.\n' \
		>"$XDG_CONFIG_HOME/ai/templates/joke"
	run --separate-stderr ai-stream -T joke cats
	assert_eq "$status" 0 status
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.model' <<<"$r")" tmpl-model
	assert_eq "$(jq -r '.body.messages[-1].content' <<<"$r")" $'Tell a joke about the topic.\n\ncats'
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 50
	run --separate-stderr ai-stream -T joke -m other --system 'Be long.' --max-tokens 7 dogs
	r=$(last_request $CHAT)
	assert_eq "$(jq -r '.body.model' <<<"$r")" other
	assert_eq "$(jq -r '.body.messages[0].content' <<<"$r")" "Be long."
	assert_eq "$(jq -r '.body.max_tokens // .body.max_completion_tokens' <<<"$r")" 7
	printf 'Q: {{input}}' >"$T/file.tmpl"
	run --separate-stderr ai-stream -T @"$T/file.tmpl" why
	assert_eq "$status" 0 status
	assert_eq "$(jq -r '.body.messages[-1].content' <<<"$(last_request $CHAT)")" "Q: why"
}

@test "template: a missing parameter, a template that does not exist, a bad header: clear errors" {
	mkdir -p "$XDG_CONFIG_HOME/ai/templates"
	printf 'To {{lang}}, {{tone}}: {{input}}' >"$XDG_CONFIG_HOME/ai/templates/tr"
	run --separate-stderr ai-stream -T tr --param lang=German hi
	assert_eq "$status" 64 status
	assert_eq "$stderr" "ai-stream: the template needs --param tone=VALUE"
	run --separate-stderr ai-stream -T nope hi
	assert_eq "$status" 66 status
	assert_contains "$stderr" "no template 'nope'"
	run --separate-stderr ai-stream -T ../x hi
	assert_eq "$status" 64 status
	printf 'temperature: warm\nhi' >"$XDG_CONFIG_HOME/ai/templates/bad"
	run --separate-stderr ai-agent --no-default-tools -T bad hi
	assert_eq "$status" 65 status
	assert_contains "$stderr" "temperature wants a number"
	run --separate-stderr ai-stream --param a=b hi
	assert_eq "$status" 64 status
	run --separate-stderr ai-stream --param novalue -T tr hi
	assert_eq "$status" 64 status
	assert_eq "$(request_count $CHAT)" 0 "nothing sent"
}
