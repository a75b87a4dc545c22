#!/usr/bin/env bash
# Schemathesis against a live `qtool serve`: every operation of the OpenAPI document, generated
# requests (valid and not), no server error, statuses and content types as documented.
# Usage: Tests/Schemathesis/run.sh QTOOL_BINARY [SECONDS]   (installs schemathesis in .build/schemathesis)
set -euo pipefail
cd "$(dirname "$0")/../.."
QTOOL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
BUDGET="${2:-90}"
VENV=.build/schemathesis
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  # Bounded: a PyPI that does not answer fails the run instead of hanging it.
  timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check --timeout 30 --retries 2 "schemathesis==4.32.5"
fi
HOME_DIR="$(mktemp -d)"
export QTOOL_HOME="$HOME_DIR" XDG_CONFIG_HOME="$HOME_DIR/config" QTOOL_SERVE_RATE_DEFAULT=1000000/min QTOOL_SERVE_RATE_AUTH=1000000/min
export QTOOL_SERVE_BCRYPT_COST=4
"$QTOOL" data import Fixtures/demo-GOOG-1d.csv --symbol GOOG --timeframe 1d --quiet >/dev/null
"$QTOOL" strategy new goog-sma --template sma_crossover --symbol GOOG -o "$HOME_DIR/goog-sma.yaml" >/dev/null
"$QTOOL" backtest run goog-sma --quiet >/dev/null
"$QTOOL" train new goog-up --template gbt-classifier --dataset GOOG-1d -o "$HOME_DIR/goog-up.yaml" >/dev/null
"$QTOOL" train run goog-up --quiet >/dev/null
TOKEN="$("$QTOOL" auth token create schemathesis --scopes '*' 2>/dev/null)"
"$QTOOL" serve --port 0 --port-file "$HOME_DIR/port" 2>"$HOME_DIR/serve.log" &
SERVER=$!
# The server is stopped with SIGTERM and must be gone within 5 s (then it is killed and the run fails).
stop_server() {
  kill -TERM $SERVER 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 $SERVER 2>/dev/null || break; sleep 0.1; done
  if kill -0 $SERVER 2>/dev/null; then
    kill -KILL $SERVER 2>/dev/null
    echo "schemathesis: qtool serve did not stop on SIGTERM within 5 s" >&2
    return 1
  fi
}
trap 'stop_server; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 1 300); do [ -s "$HOME_DIR/port" ] && break; kill -0 $SERVER 2>/dev/null || break; sleep 0.1; done
if [ ! -s "$HOME_DIR/port" ]; then
  echo "schemathesis: qtool serve did not start:" >&2
  cat "$HOME_DIR/serve.log" >&2
  exit 1
fi
PORT="$(cat "$HOME_DIR/port")"
# Streams never end by themselves and the WebSocket needs an upgrade: they have tests of their own.
timeout $((BUDGET + 60)) "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
  --url "http://127.0.0.1:$PORT" -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path-regex '(/events$|/stream/|/ws$)' --max-time "$BUDGET" --max-examples 25 --request-timeout 20 \
  --phases examples,coverage,fuzzing --workers 2 --no-color
stop_server
trap 'rm -rf "$HOME_DIR"' EXIT
