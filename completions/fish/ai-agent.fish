# fish completion for ai-agent; the common options are described in ai(7).
function __ai_profiles
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

set -l c ai-agent
complete -c $c -f
complete -c $c -s m -l model -x -d 'model to use'
complete -c $c -s p -l profile -x -a '(__ai_profiles)' -d 'configuration profile'
complete -c $c -l base-url -x -d 'API endpoint'
complete -c $c -s j -l json -d 'print JSON'
complete -c $c -s v -l verbose -d 'show the HTTP exchange, key redacted'
complete -c $c -s q -l quiet -d 'no progress or warnings'
complete -c $c -l no-cache -d 'neither read nor write the response cache'
complete -c $c -l cache-ttl -x -d 'ignore cached answers older than this'
complete -c $c -l timeout -x -d 'give up on a request after this long'
complete -c $c -l retries -x -d 'retries on transient failures'
complete -c $c -l log-prompts -d 'keep prompt text in the usage ledger'
complete -c $c -l dry-run -d 'print the request instead of sending it'
complete -c $c -s h -l help -d 'print help'
complete -c $c -s V -l version -d 'print version'
complete -c $c -l max-steps -x -d 'give up after N model turns'
complete -c $c -l tools -r -F -d 'offer the tools declared in FILE'
complete -c $c -l no-default-tools -d 'do not load ~/.config/ai/tools/*.json'
complete -c $c -s y -l yes -d 'run tools with side effects without asking'
complete -c $c -l db-sql -r -F -d 'offer read-only SQL on this SQLite database'
complete -c $c -s c -l collection -x -d 'search this collection of the index'
complete -c $c -l db -r -F -d 'the index to search'
complete -c $c -l trace -r -F -d 'write every step as JSON lines to FILE'
complete -c $c -l tool-timeout -x -d 'stop a tool or SQL query after this long'
complete -c $c -l tool-memory -x -d 'address-space limit of a user tool'
complete -c $c -l max-output -x -d 'tool output sent back at most'
complete -c $c -l system -x -d 'replace the system prompt'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -l max-tokens -x -d 'cap each model turn'
