# fish completion: what every ai-tools program shares; the common options are
# described in ai(7).  Not a completion for any command: each program's file
# sources it from its own directory and calls
#
#     __ai_common_complete ai-NAME [JSON-DESCRIPTION]
#
# JSON-DESCRIPTION says what the program's --json prints (default "print JSON").

function __ai_profiles --description 'profile names in the ai-tools configuration'
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

# The models the server offers, from the command being completed run with
# --list-models and the -p, --profile and --base-url already on the line;
# kept five minutes in $XDG_CACHE_HOME/ai/completion-models (as bash and zsh
# keep them), so a Tab costs one request of at most 2 s now and then.
function __ai_models --description 'models the ai-tools server offers'
    set -l tokens (commandline -opc)
    set -l args
    set -l n (count $tokens)
    for i in (seq 2 $n)
        switch $tokens[$i]
            case -p --profile --base-url
                set -a args $tokens[$i]
                test $i -lt $n; and set -a args $tokens[(math $i + 1)]
            case '--profile=*' '--base-url=*' '-p?*'
                set -a args $tokens[$i]
        end
    end
    set -l dir (set -q XDG_CACHE_HOME; and echo $XDG_CACHE_HOME; or echo $HOME/.cache)/ai/completion-models
    set -l f $dir/(printf '%s\n' "$AI_PROFILE" "$OPENAI_BASE_URL" "$AI_CONFIG" $args | cksum | string split ' ')[1]
    set -l old (find $f -mmin +5 2>/dev/null)
    if not test -s $f; or test -n "$old"
        mkdir -p -m 700 $dir 2>/dev/null; or return
        if $tokens[1] $args --list-models --timeout 2 --retries 0 -q </dev/null >$f.$fish_pid 2>/dev/null
            mv -f $f.$fish_pid $f
        else
            rm -f $f.$fish_pid
            return
        end
    end
    string match -r -- '^[[:graph:]]+$' <$f
end

# The collections of the index, from ai-index --collections (the one beside
# the command, when that was typed with a directory) with the --db already on
# the line; nothing, and no message, when there is no index.
function __ai_collections --description 'collections of the ai-tools index'
    set -l tokens (commandline -opc)
    set -l ix ai-index
    set -l dir (string replace -r '/[^/]*$' '' -- $tokens[1])
    if test "$dir" != "$tokens[1]"; and test -x $dir/ai-index
        set ix $dir/ai-index
    end
    set -l db
    set -l n (count $tokens)
    for i in (seq 2 $n)
        switch $tokens[$i]
            case --db
                test $i -lt $n; and set db --db $tokens[(math $i + 1)]
            case '--db=?*'
                set db $tokens[$i]
        end
    end
    $ix $db --collections -q </dev/null 2>/dev/null
end

function __ai_common_complete --argument-names c jdesc --description 'complete the ai-tools common options of command c'
    test -n "$jdesc"; or set jdesc 'print JSON'
    complete -c $c -s m -l model -x -a '(__ai_models)' -d 'model to use'
    complete -c $c -s p -l profile -x -a '(__ai_profiles)' -d 'configuration profile'
    complete -c $c -l base-url -x -d 'API endpoint'
    complete -c $c -s j -l json -d $jdesc
    complete -c $c -s v -l verbose -d 'show the HTTP exchange, key redacted'
    complete -c $c -s q -l quiet -d 'no progress or warnings'
    complete -c $c -l no-cache -d 'neither read nor write the response cache'
    complete -c $c -l cache-ttl -x -d 'ignore cached answers older than this'
    complete -c $c -l timeout -x -d 'give up on a request after this long'
    complete -c $c -l retries -x -d 'retries on transient failures'
    complete -c $c -l log-prompts -d 'keep prompt text in the usage ledger'
    complete -c $c -l dry-run -d 'print the request instead of sending it'
    complete -c $c -s o -l option -x -d 'another chat request parameter, KEY=VALUE'
    complete -c $c -l list-models -d 'list the models the server offers and exit'
    complete -c $c -s h -l help -d 'print help'
    complete -c $c -s V -l version -d 'print version'
end
