#!/bin/sh
# Writes Sources/qtool/hot-functions.order: the functions of the release qtool that its common
# jobs execute, in order of first use, for lld's --symbol-ordering-file (Package.swift).
#
# Why: the kernel maps the 64 KB around every page of code a process faults in, so a runner that
# executes 1.7 MB of code spread over 35 MB of text kept 18 MB of it resident. Laid out next to
# each other, those functions fit in a few MB. A stale list only costs memory, never correctness:
# names that no longer exist are skipped, and new functions land after the listed ones.
#
# Usage: make hot-order (builds the release binary first; needs valgrind and python3).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
qtool="$root/.build/release/qtool"
work="$root/.build/hot-order"
out="$root/Sources/qtool/hot-functions.order"
rm -rf "$work" && mkdir -p "$work/home"
export QTOOL_HOME="$work/home" XDG_CONFIG_HOME="$work/config" HOME="$work"
# valgrind reads the symbol table but trips over the DWARF of this binary: profile a copy without it.
# One profile per thread: with one file for all, a process that exits from another thread loses
# what its main thread ran.
strip --strip-debug -o "$work/qtool" "$qtool"
q="$work/qtool"
profile() { # NAME ARGS... — run qtool under callgrind, keeping the executed functions' names
  name=$1; shift
  valgrind --tool=callgrind --separate-threads=yes --dump-instr=yes --demangle=no --callgrind-out-file="$work/$name.cg" "$q" "$@" >"$work/$name.out" 2>"$work/$name.err" \
    || { echo "hot-order: '$*' failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
}
cat >"$work/spec.yaml" <<'SPEC'
name: hot-order
universe: { symbols: [GOOG], timeframe: 1d }
params: { fast: 10, slow: 30 }
rules:
  entry: cross_above(sma(close, fast), sma(close, slow))
  exit: cross_below(sma(close, fast), sma(close, slow))
sizing: { fraction: 1.0 }
costs: { commission: 0.001 }
risk: { stop_loss: 0.02, take_profit: 0.05 }
execution: { fill: next_open, units: fractional, close_at_end: false, capital: 10000 }
SPEC
# A webhook receiver on loopback, so that the runner's delivery path (curl) is profiled too.
cat >"$work/receiver.py" <<'PY'
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
python3 "$work/receiver.py" >"$work/receiver.port" &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
while [ ! -s "$work/receiver.port" ]; do sleep 0.1; done
"$qtool" data import "$root/Fixtures/demo-GOOG-1d.csv" --symbol GOOG --timeframe 1d -q
"$qtool" signals notify add hook --kind webhook --url "http://127.0.0.1:$(cat "$work/receiver.port")/hook" -q

profile version --version
profile help backtest run --help
profile backtest backtest run "$work/spec.yaml" --json
profile runner strategy run "$work/spec.yaml" --feed replay --speed max
profile runner-again strategy run hot-order --feed replay --speed max --new-account -q
profile status strategy status hot-order --json
profile signals signals tail -n 20 --json
# serve: start, answer a few requests, drain on SIGTERM.
valgrind --tool=callgrind --separate-threads=yes --dump-instr=yes --demangle=no --callgrind-out-file="$work/serve.cg" "$q" serve --port 0 --port-file "$work/serve.port" \
  >"$work/serve.out" 2>"$work/serve.err" &
server=$!
tries=0
until [ -s "$work/serve.port" ] && curl -sf "http://127.0.0.1:$(cat "$work/serve.port")/readyz" >/dev/null; do
  tries=$((tries + 1)); [ $tries -lt 600 ] || { echo "hot-order: serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
base="http://127.0.0.1:$(cat "$work/serve.port")"
for path in /healthz /api/v1/strategies /api/v1/data/datasets /api/v1/signals /api/v1/strategies/hot-order; do
  curl -s "$base$path" >/dev/null
done
kill -TERM $server; wait $server

# The names of the functions executed in the qtool binary, in order of first appearance: both the
# names callgrind gives and the names nm gives for each instruction address, since the two
# disagree where a function has several names (merged or aliased code).
python3 - "$q" "$out.new" "$work"/version.cg* "$work"/help.cg* "$work"/runner.cg* "$work"/runner-again.cg* "$work"/status.cg* \
  "$work"/backtest.cg* "$work"/signals.cg* "$work"/serve.cg* >/dev/null <<'PY'
import bisect, collections, subprocess, sys

binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
aliases = collections.defaultdict(list)
sizes = {}
for line in subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwW":
        start = int(fields[0], 16)
        aliases[start].append(fields[3])
        sizes[start] = max(sizes.get(start, 0), int(fields[1], 16))
starts = sorted(aliases)
names, seen = [], set()


def add(name):
    if name not in seen:
        seen.add(name)
        names.append(name)


for profile in profiles:
    objects, functions, inside, last = {}, {}, False, 0
    for line in open(profile, errors="replace"):
        if line.startswith(("ob=", "cob=", "fn=", "cfn=")):
            kind, text = line.rstrip("\n").split("=", 1)
            key, _, name = text.partition(" ")
            table = objects if kind.endswith("ob") else functions
            if name:
                table[key] = name
            if kind == "ob":
                inside = objects.get(key, key).endswith("/qtool")
            elif kind == "fn" and inside:
                add(functions.get(key, key))
        elif inside and line[:1] in "0123456789+-*":
            token = line.split(" ", 1)[0]
            if token.startswith("0x"):
                last = int(token, 16)
            elif token[0] in "+-":
                last += int(token)
            elif token[0].isdigit():
                last = int(token)
            i = bisect.bisect_right(starts, last) - 1
            if i >= 0 and last < starts[i] + max(sizes[starts[i]], 1):
                for name in aliases[starts[i]]:
                    add(name)
with open(out, "w") as file:
    file.writelines(name + "\n" for name in names if not name.startswith("0x"))
print(len(names))
PY
mv "$out.new" "$out"
echo "hot-order: $(wc -l <"$out") functions in $out"
