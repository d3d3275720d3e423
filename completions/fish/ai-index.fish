# fish completion for ai-index; the common options are described in ai(7).
function __ai_profiles
    set -l f $AI_CONFIG
    test -n "$f"; or set f (set -q XDG_CONFIG_HOME; and echo $XDG_CONFIG_HOME; or echo $HOME/.config)/ai/config
    sed -n 's/^[[:space:]]*\[profile[[:space:]]*\([^]]*\)\].*/\1/p' $f 2>/dev/null
end

set -l c ai-index
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
complete -c $c -s c -l collection -x -d 'collection to write'
complete -c $c -l db -r -F -d 'index file'
complete -c $c -l files-from -r -F -d 'read file names from this list'
complete -c $c -l source -x -d 'name of the document on stdin'
complete -c $c -l chunk-tokens -x -d 'chunk size in tokens'
complete -c $c -l overlap -x -d 'overlap in tokens'
complete -c $c -l embed-batch -x -d 'texts per embeddings request'
complete -c $c -s P -l parallel -x -d 'embeddings requests in flight'
complete -c $c -l embed-model -x -d 'embedding model'
complete -c $c -l no-embed -d 'store no vectors: BM25 only'
complete -c $c -l force -d 'reindex unchanged documents'
complete -c $c -l rm -x -d 'remove a source'
complete -c $c -l list -d 'list the documents'
complete -c $c -l stats -d 'print the collection statistics'
