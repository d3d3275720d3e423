# ai-cmd key binding for bash: Alt+E (Esc e) replaces the line being typed
# with the command ai-cmd(1) suggests for it, left on the line to edit and
# run with Enter.  Nothing runs by itself.  Alt+E is free in readline's
# emacs and vi-insert maps (Ctrl+X Ctrl+E is edit-and-execute-command).
#
# In ~/.bashrc:   . /usr/local/share/ai-tools/keys/ai-cmd.bash
# Another key:    bind -x '"\ej": _ai_cmd_line'

_ai_cmd_line() {
	local cmd
	[[ -n ${READLINE_LINE//[[:space:]]/} ]] || return 0
	# The line is the description; stdin is the terminal, never read.
	cmd=$(ai-cmd --no-stdin --shell "${BASH:-bash}" -- "$READLINE_LINE" </dev/null) || return 0
	[[ -n $cmd ]] || return 0
	READLINE_LINE=$cmd
	READLINE_POINT=${#READLINE_LINE}
}

if [[ $- == *i* ]]; then
	bind -m emacs -x '"\ee": _ai_cmd_line'
	bind -m vi-insert -x '"\ee": _ai_cmd_line'
fi
