# tests/bats/agent-helpers.bash - the scripted model that agent.bats and
# hostile-agent.bats share; loaded after helpers.bash ("load agent-helpers").
#
# Functions: push calls results.  CHAT is the chat completions path.

CHAT=/v1/chat/completions

# push ACTION...: queues one scripted chat answer per argument (for chat requests
# only: the search tool's embeddings requests must not take them).
push() {
	ctl "$(jq -nc --arg p "$CHAT" '{push: [$ARGS.positional[] | fromjson | . + {path: $p}]}' \
		--args "$@")"
}

# calls CALL...: an answer that makes these calls, e.g. calls '{"name":"calculate","arguments":{...}}'.
calls() {
	local IFS=,
	printf '{"tool_calls":[%s]}' "$*"
}

# results N: loads the tool messages of the Nth chat request (1-based): RES[i] is the
# content of the (i+1)th as compact JSON, ERR[i] its "error" member or "".
results() {
	mapfile -t RES < <(jq -rs --arg p "$CHAT" --argjson n "$1" '[.[] | select(.path == $p)][$n - 1]
		| .body.messages[] | select(.role == "tool") | .content | (fromjson? // .) | tojson' "$SERVER_LOG")
	mapfile -t ERR < <(printf '%s\n' "${RES[@]}" | jq -r '.error? // ""')
}
