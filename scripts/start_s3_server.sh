#!/usr/bin/env bash
# Start a local S3 protocol server (moto_server from the `test` extra) on 127.0.0.1 for the S3
# tests, wait until it answers, and print shell `export` lines for it:
#   BACALHAU_TEST_S3_ENDPOINT=http://127.0.0.1:<port>   BACALHAU_TEST_S3_PID=<pid>
# Usage: eval "$(scripts/start_s3_server.sh [PORT])"   (no PORT: a free one)
# The PID is also written to .s3-server.pid and the server's log to .s3-server.log (both
# ignored by git); stop it with `kill "$BACALHAU_TEST_S3_PID"`. moto checks no credentials.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MOTO=.venv/bin/moto_server
[ -x "$MOTO" ] || { echo "moto_server missing: run scripts/setup.sh (installs .[test])" >&2; exit 1; }
PORT="${1:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
"$MOTO" -H 127.0.0.1 -p "$PORT" >.s3-server.log 2>&1 &
PID=$!
echo "$PID" >.s3-server.pid
ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$ENDPOINT/', timeout=1)" 2>/dev/null; then
    echo "export BACALHAU_TEST_S3_ENDPOINT=$ENDPOINT"
    echo "export BACALHAU_TEST_S3_PID=$PID"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "moto_server exited at start; its log:" >&2; cat .s3-server.log >&2; exit 1
  fi
  sleep 0.1  # poll interval of the bounded wait above
done
echo "moto_server did not answer on $ENDPOINT within 30s; its log:" >&2
cat .s3-server.log >&2
kill "$PID" 2>/dev/null || true
exit 1
