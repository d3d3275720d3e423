# fish completion for ai-summarize; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-summarize
__ai_common_complete $c
complete -c $c -l words -x -d 'aim for about N words'
complete -c $c -l length -x -a 'short medium long' -d 'summary length'
complete -c $c -s f -l format -x -a 'paragraph bullets line' -d 'summary form'
complete -c $c -l lang -x -d 'language of the summary'
complete -c $c -l focus -x -d 'what the summary must keep'
complete -c $c -l prompt -x -d 'replace the instruction'
complete -c $c -l max-input-tokens -x -d 'split input longer than this'
complete -c $c -s P -l parallel -x -d 'parts summarized at once'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -l schema -x -d 'answer JSON matching a schema (JSON, @file, short form)'
complete -c $c -l schema-multi -x -d 'answer a list of objects matching a schema'
complete -c $c -l max-tokens -x -d 'cap each answer'
complete -c $c -l raw -d 'keep control characters on a terminal'
complete -c $c -l markdown -x -a 'auto always never' -d 'render Markdown on a terminal'
complete -c $c -l yes -d 'send big input without asking'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the prompt as a template'
complete -c $c -l list-templates -d 'list the saved templates'
complete -c $c -s a -l attach -r -F -d 'attach an image, a PDF or a text file, or an image URL'
complete -c $c -l attach-as -x -a 'text file' -d 'send a PDF as its text or as a file'
