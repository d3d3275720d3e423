# fish completion for ai-usage; the common options are described in ai(7).
function __ai_profiles
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

set -l c ai-usage
complete -c $c -f
complete -c $c -s m -l model -x -d 'model to use'
complete -c $c -s p -l profile -x -a '(__ai_profiles)' -d 'configuration profile'
complete -c $c -l base-url -x -d 'API endpoint'
complete -c $c -s j -l json -d 'print JSON lines'
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
complete -c $c -l since -x -a 'today 1d 7d 30d' -d 'only calls from this date on'
complete -c $c -l until -x -a 'today' -d 'only calls up to the end of this date'
complete -c $c -l by -x -a 'program model day' -d 'one row per program, model or day'
complete -c $c -l db -r -F -d 'read this ledger'
complete -c $c -l prices -d 'print the price table and exit'
