# fish completion for ai-ask; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-ask
__ai_common_complete $c
complete -c $c -f
complete -c $c -s c -l collection -x -a '(__ai_collections)' -d 'collection to search'
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
complete -c $c -l vector-weight -x -d 'weight of the vectors against BM25 in the fusion'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -l max-tokens -x -d 'cap the answer'
complete -c $c -s f -l file -r -F -d 'add a file to the message'
complete -c $c -l no-stdin -d 'do not add piped standard input'
complete -c $c -l raw -d 'keep control characters on a terminal'
complete -c $c -l markdown -x -a 'auto always never' -d 'render Markdown on a terminal'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the prompt as a template'
complete -c $c -l list-templates -d 'list the saved templates'
