# fish completion for ai-stream; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-stream
complete -c $c -f
__ai_common_complete $c 'print JSON lines of events'
complete -c $c -l system -x -d 'the system message'
complete -c $c -l history -r -F -d 'conversation file, JSON lines'
complete -c $c -s i -l interactive -d 'a message a line at a time'
complete -c $c -l sse -d 'write text/event-stream frames'
complete -c $c -l raw -d 'keep control characters on a terminal'
complete -c $c -l markdown -x -a 'auto always never' -d 'render Markdown on a terminal'
complete -c $c -l idle-timeout -x -d 'give up when the stream is silent this long'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the message as a template'
complete -c $c -l list-templates -d 'list the saved templates'
complete -c $c -l schema -x -d 'answer JSON matching a schema (JSON, @file, short form)'
complete -c $c -l schema-multi -x -d 'answer a list of objects matching a schema'
complete -c $c -l max-tokens -x -d 'cap the answer'
complete -c $c -l show-reasoning -d "print a reasoning model's reasoning on standard error"
complete -c $c -s f -l file -r -F -d 'add a file to the message'
complete -c $c -l no-stdin -d 'do not add piped standard input'
complete -c $c -s C -l continue -d 'continue the last kept conversation'
complete -c $c -l conversation -x -a '(ai-stream -q --list-conversations 2>/dev/null | string split -f1 " ")' -d 'continue a kept conversation'
complete -c $c -l no-save -d 'do not keep this exchange'
complete -c $c -l list-conversations -d 'list the kept conversations'
complete -c $c -l show -x -a '(ai-stream -q --list-conversations 2>/dev/null | string split -f1 " ")' -d 'print a kept conversation'
complete -c $c -l prune -x -a '7d 30d 90d' -d 'remove conversations not continued in this long'
complete -c $c -s a -l attach -r -F -d 'attach an image, a PDF or a text file, or an image URL'
complete -c $c -l attach-as -x -a 'text file' -d 'send a PDF as its text or as a file'
