# ai-cmd key binding for zsh: Alt+E (Esc e) replaces the line being typed
# with the command ai-cmd(1) suggests for it, left in the buffer to edit and
# run with Enter.  Nothing runs by itself.  Alt+E is unbound in zle's emacs
# and viins keymaps.
#
# In ~/.zshrc:   source /usr/local/share/ai-tools/keys/ai-cmd.zsh
# Another key:   bindkey '^[j' ai-cmd-line

ai-cmd-line() {
	local cmd
	[[ -n ${BUFFER//[[:space:]]/} ]] || return 0
	# The buffer is the description; stdin is the terminal, never read.
	if ! cmd=$(ai-cmd --no-stdin --shell zsh -- "$BUFFER" </dev/null) || [[ -z $cmd ]]; then
		# A message on stderr moved the cursor: draw the prompt and the line again.
		zle reset-prompt
		return 0
	fi
	BUFFER=$cmd
	CURSOR=${#BUFFER}
	zle reset-prompt
}

zle -N ai-cmd-line
bindkey -M emacs '^[e' ai-cmd-line
bindkey -M viins '^[e' ai-cmd-line
