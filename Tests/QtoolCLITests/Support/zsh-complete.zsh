# Types LINE and a Tab into an interactive zsh (on a pty) that loads the _qtool in DIR, and
# prints what zsh shows: the completed line or the list of candidates, escape sequences removed.
# Usage: zsh -f zsh-complete.zsh DIR LINE [EXPECTED]
# With EXPECTED it reads until that text has appeared (at most 20 s: a loaded machine is slow to
# start zsh and run compinit); without it, for 3 s.
zmodload zsh/zpty
zpty completer 'zsh -f -i'
zpty -w completer "PS1='%% '; PROMPT_EOL_MARK=''; fpath=('$1' \$fpath); autoload -U compinit; compinit -u -D; LISTMAX=1000"
sleep 0.5
chunk=""
while zpty -r -t completer chunk 2>/dev/null; do :; done
zpty -w -n completer "$2"$'\t'
out=""
clean() { print -r -- "$out" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tr '\r' '\n' | grep -v '^\s*$' }
for i in {1..200}; do
  sleep 0.1
  chunk=""
  zpty -r -t completer chunk 2>/dev/null && out+="$chunk"
  if [[ -n "$3" ]]; then [[ "$(clean)" == *"$3"* ]] && break; elif (( i >= 30 )); then break; fi
done
clean
zpty -d completer
