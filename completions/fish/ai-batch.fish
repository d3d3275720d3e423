# fish completion for ai-batch; the common options are described in ai(7).
function __ai_profiles
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

function __ai_batch_jobs
    ls (set -q XDG_DATA_HOME; and echo $XDG_DATA_HOME; or echo $HOME/.local/share)/ai/jobs 2>/dev/null
end

set -l c ai-batch
set -l subs submit status results wait list cancel resume
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'submit' -d 'run the batch as a detached job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'status' -d 'state of a job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'results' -d 'output lines of a job so far'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'wait' -d 'wait for a job to end'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'list' -d 'every job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'cancel' -d 'stop a job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'resume' -d 'start a stopped job again'
complete -c $c -n "__fish_seen_subcommand_from status results wait cancel resume" -f -a '(__ai_batch_jobs)'
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
complete -c $c -s P -l parallel -x -d 'requests in flight at once'
complete -c $c -l unordered -d 'print each line as its item finishes'
complete -c $c -l rpm -x -d 'at most N requests a minute'
complete -c $c -l tpm -x -d 'at most N tokens a minute'
complete -c $c -l state -r -F -d 'journal finished items in FILE'
complete -c $c -s t -l template -x -d 'the prompt, with {{field}} from each item'
complete -c $c -l lines -d 'each input line is a plain text item'
complete -c $c -l system -x -d 'a system message before each text item'
complete -c $c -l max-line -x -d 'longer lines are error items'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -l max-tokens -x -d 'cap each answer'
complete -c $c -l window -x -d 'read at most N items ahead'
complete -c $c -l remote -d 'submit through the provider Batch API'
complete -c $c -l poll -x -d 'wait: check a remote batch this often'
