# ai-cmd key binding for fish: Alt+E replaces the line being typed with the
# command ai-cmd(1) suggests for it, left on the line to edit and run with
# Enter.  Nothing runs by itself.  fish's own Alt+E (edit_command_buffer)
# stays on Alt+V.
#
# In ~/.config/fish/config.fish:   source /usr/local/share/ai-tools/keys/ai-cmd.fish
# Another key:                      bind \ej __ai_cmd_line

function __ai_cmd_line --description 'replace the command line with the command ai-cmd suggests'
    set -l line (commandline | string collect)
    string trim -- "$line" | string length -q; or return 0
    # The line is the description; stdin is the terminal, never read.
    set -l cmd (ai-cmd --no-stdin --shell fish -- "$line" </dev/null)
    if test $status -ne 0; or test (count $cmd) -ne 1; or test -z "$cmd"
        commandline -f repaint
        return 0
    end
    commandline -r -- $cmd
    commandline -C (string length -- $cmd)
    commandline -f repaint
end

bind \ee __ai_cmd_line
bind -M insert \ee __ai_cmd_line
