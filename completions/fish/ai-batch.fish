# fish completion for ai-batch; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

function __ai_batch_jobs
    ls (set -q XDG_DATA_HOME; and echo $XDG_DATA_HOME; or echo $HOME/.local/share)/ai/jobs 2>/dev/null
end

set -l c ai-batch
set -l subs submit status results wait list cancel delete resume worker
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'submit' -d 'run the batch as a detached job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'status' -d 'state of a job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'results' -d 'output lines of a job so far'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'wait' -d 'wait for a job to end'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'list' -d 'every job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'cancel' -d 'stop a job'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'delete' -d 'remove a job and its output'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'resume' -d 'start a stopped job again'
complete -c $c -n "not __fish_seen_subcommand_from $subs" -a 'worker' -d 'take items of jobs in Redis (--queue)'
complete -c $c -n "__fish_seen_subcommand_from status results wait cancel delete resume" -f -a '(__ai_batch_jobs)'
__ai_common_complete $c
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
complete -c $c -l schema -x -d 'answer JSON matching a schema (JSON, @file, short form)'
complete -c $c -l schema-multi -x -d 'answer a list of objects matching a schema'
complete -c $c -l max-tokens -x -d 'cap each answer'
complete -c $c -l window -x -d 'read at most N items ahead'
complete -c $c -l remote -d 'submit through the provider Batch API'
complete -c $c -l poll -x -d 'wait: check a remote batch this often'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the prompt as a template'
complete -c $c -l list-templates -d 'list the saved templates'
complete -c $c -l queue -x -d 'jobs in Redis (redis://[:pass@]host[:port][/db])'
complete -c $c -l claim-idle -x -d 'worker: take over items another worker left this long'
complete -c $c -l max-deliveries -x -d 'worker: an item taken N times without a result is poison'
complete -c $c -l force -d 'delete: a job still running too, cancelled first (a --remote batch too)'
