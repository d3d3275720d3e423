# fish completion for ai-index; the common options, the same in every program
# (see ai(7)), come from _ai-common.fish, installed beside this file.
source (status dirname)/_ai-common.fish

set -l c ai-index
__ai_common_complete $c
complete -c $c -s c -l collection -x -a '(__ai_collections)' -d 'collection to write'
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
complete -c $c -l collections -d 'list the collections of the index'
