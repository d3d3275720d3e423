# fish completion for ai-cmd; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-cmd
complete -c $c -f
__ai_common_complete $c 'print the command as a JSON object'
complete -c $c -l shell -x -a '(string match -r "^/.*" < /etc/shells 2>/dev/null)' -d 'write the command for this shell and run it with it'
complete -c $c -s f -l file -r -F -d 'add a file to the description'
complete -c $c -l no-stdin -d 'do not add piped standard input'
