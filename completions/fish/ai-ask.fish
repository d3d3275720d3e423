# fish completion for ai-ask; the common options are described in ai(7).
function __ai_profiles
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

set -l c ai-ask
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
complete -c $c -f
complete -c $c -s c -l collection -x -d 'collection to search'
complete -c $c -l db -r -F -d 'index file'
complete -c $c -s k -l top -x -d 'passages given to the model'
complete -c $c -l candidates -x -d 'best of each list before fusing'
complete -c $c -l retrieve-only -d 'print the passages as JSON lines, no chat call'
complete -c $c -l stream -d 'print the answer as it arrives'
complete -c $c -l int8 -d 'scan int8 vectors, rescore exactly'
complete -c $c -l no-embed -d 'retrieve by BM25 alone'
complete -c $c -l no-bm25 -d 'retrieve by the vectors alone'
complete -c $c -l embed-model -x -d 'embedding model'
complete -c $c -l min-similarity -x -d 'lowest cosine counted'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -l max-tokens -x -d 'cap the answer'
