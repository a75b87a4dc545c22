# Types LINE and a Tab into an interactive zsh (on a pty) that loads the _qtool in DIR, and
# prints what zsh shows: the completed line or the list of candidates, escape sequences removed.
# Usage: zsh -f zsh-complete.zsh DIR LINE
zmodload zsh/zpty
zpty completer 'zsh -f -i'
zpty -w completer "PS1='%% '; PROMPT_EOL_MARK=''; fpath=('$1' \$fpath); autoload -U compinit; compinit -u -D; LISTMAX=1000"
sleep 0.5
chunk=""
while zpty -r -t completer chunk 2>/dev/null; do :; done
zpty -w -n completer "$2"$'\t'
out=""
# Dynamic candidates run `qtool __complete`: give it up to 3 s.
for i in {1..30}; do
  sleep 0.1
  chunk=""
  zpty -r -t completer chunk 2>/dev/null && out+="$chunk"
done
print -r -- "$out" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tr '\r' '\n' | grep -v '^\s*$'
zpty -d completer
