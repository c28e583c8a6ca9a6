#!/usr/bin/env bash
# The README's first command: install bacalhau-py, start a local network (1 requester + 2
# compute nodes, embedded defaults), run the shipped word-count WASM job on README.md and
# download its result into .quickstart/result. The network is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BACALHAU="$PWD/.venv/bin/bacalhau"
WORK="${QUICKSTART_DIR:-$PWD/.quickstart}"
rm -rf "$WORK"
mkdir -p "$WORK"
PORT="${BACALHAU_API_PORT:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export BACALHAU_API_HOST=127.0.0.1 BACALHAU_API_PORT="$PORT"

echo "== starting a devstack (1 requester + 2 compute nodes) on 127.0.0.1:$PORT"
"$BACALHAU" devstack --computes 2 --stack-repo "$WORK/stack" >"$WORK/devstack.log" 2>&1 &
DEVSTACK=$!
trap 'kill "$DEVSTACK" 2>/dev/null || true; wait "$DEVSTACK" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 60))
until "$BACALHAU" agent alive >/dev/null 2>&1; do
  if ! kill -0 "$DEVSTACK" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
    echo "the devstack did not start; its log:" >&2; cat "$WORK/devstack.log" >&2; exit 1
  fi
  sleep 0.1
done
"$BACALHAU" node list

echo "== running the word-count WASM module on README.md"
MODULE="$(.venv/bin/python -c 'import bacalhau.assets as a, pathlib; print(pathlib.Path(a.__file__).parent / "wordcount.wasm")')"
"$BACALHAU" wasm run "$MODULE" /inputs/README.md -i "README.md:/inputs/README.md" \
  -o outputs:/outputs --download --output-dir "$WORK/result"

echo "== result (lines words bytes), downloaded to $WORK/result"
cat "$WORK/result/outputs/count.txt"
echo "== the same count by wc:"
wc README.md
