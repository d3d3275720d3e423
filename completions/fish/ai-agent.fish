# fish completion for ai-agent; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-agent
complete -c $c -f
__ai_common_complete $c
complete -c $c -l max-steps -x -d 'give up after N model turns'
complete -c $c -l tools -r -F -d 'offer the tools declared in FILE'
complete -c $c -l no-default-tools -d 'do not load ~/.config/ai/tools/*.json'
complete -c $c -l mcp -x -a '(command -q jq; and jq -r ".mcp // {} | keys[]" (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/tools/*.json 2>/dev/null)' -d 'start the MCP server NAME declared in a tools file'
complete -c $c -l list-tools -d 'print every tool offered and where it comes from, then exit'
complete -c $c -s y -l yes -d 'run tools with side effects without asking'
complete -c $c -l db-sql -r -F -d 'offer read-only SQL on this SQLite database'
complete -c $c -s c -l collection -x -a '(__ai_collections)' -d 'search this collection of the index'
complete -c $c -l db -r -F -d 'the index to search'
complete -c $c -l trace -r -F -d 'write every step as JSON lines to FILE'
complete -c $c -l tool-timeout -x -d 'stop a tool or SQL query after this long'
complete -c $c -l tool-memory -x -d 'address-space limit of a user tool'
complete -c $c -l max-output -x -d 'tool output sent back at most'
complete -c $c -l system -x -d 'replace the system prompt'
complete -c $c -l temperature -x -d 'sampling temperature'
complete -c $c -s T -l use-template -x -a '(command ls (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo ~/.config)/ai/templates 2>/dev/null)' -d 'the prompt from a saved template'
complete -c $c -l param -x -d 'fill {{NAME}} in the template'
complete -c $c -l save -x -d 'save the options and the message as a template'
complete -c $c -l list-templates -d 'list the saved templates'
complete -c $c -l schema -x -d 'answer JSON matching a schema (JSON, @file, short form)'
complete -c $c -l schema-multi -x -d 'answer a list of objects matching a schema'
complete -c $c -l max-tokens -x -d 'cap each model turn'
complete -c $c -s f -l file -r -F -d 'add a file to the message'
complete -c $c -l no-stdin -d 'do not add piped standard input'
complete -c $c -l raw -d 'keep control characters on a terminal'
complete -c $c -l markdown -x -a 'auto always never' -d 'render Markdown on a terminal'
complete -c $c -s a -l attach -r -F -d 'attach an image, a PDF or a text file, or an image URL'
complete -c $c -l attach-as -x -a 'text file' -d 'send a PDF as its text or as a file'
