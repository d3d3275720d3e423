# fish completion for ai-usage; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-usage
complete -c $c -f
__ai_common_complete $c 'print JSON lines'
complete -c $c -l since -x -a 'today yesterday 1d 7d 30d' -d 'only calls from this date on'
complete -c $c -l until -x -a 'today yesterday' -d 'only calls up to the end of this date'
complete -c $c -l by -x -a 'program model day' -d 'one row per program, model or day'
complete -c $c -l db -r -F -d 'read this ledger'
complete -c $c -l prices -d 'print the price table and exit'
complete -c $c -l cache-stats -d 'print the response cache entries, bytes on disk and hit rate'
complete -c $c -l chart -d 'draw cost and requests per day as bars'
complete -c $c -l html -r -F -d 'write the charts as one HTML page'
complete -c $c -l log -d 'print or search the prompts and replies ai-stream kept'
complete -c $c -s n -l limit -x -d 'with --log, at most this many exchanges'
