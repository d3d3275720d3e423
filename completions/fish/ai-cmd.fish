# fish completion for ai-cmd; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-cmd
complete -c $c -f
__ai_common_complete $c 'print the command as a JSON object'
complete -c $c -l shell -x -a '(string match -r "^/.*" < /etc/shells 2>/dev/null)' -d 'write the command for this shell and run it with it'
complete -c $c -s f -l file -r -F -d 'add a file to the description'
complete -c $c -l no-stdin -d 'do not add piped standard input'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the prompt as a template'
complete -c $c -l list-templates -d 'list the saved templates'
