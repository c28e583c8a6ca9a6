#!/usr/bin/env bash
# A user's script written against Bacalhau's documented classic verbs and flags only
# (create, list, describe, logs, get, cancel), run unchanged by
# tests/integration/test_cli_classic.py against a started node.
#
# Usage: cli_classic_script.sh ASSETS_DIR
#   ASSETS_DIR holds wordcount.wasm and loop.wasm; the node is found through
#   BACALHAU_API_HOST / BACALHAU_API_PORT, as for any bacalhau command.
# Prints a JSON line {"done": ID, "cancelled": ID} and a final success line; exits non-zero
# (set -e) on the first command or check that fails.
set -euo pipefail

assets=${1:?usage: cli_classic_script.sh ASSETS_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "check failed: $*" >&2; exit 1; }

# Wait (up to $2 seconds) until `bacalhau describe $1` shows the state $3.
wait_for_state() {
  local id=$1 deadline=$((SECONDS + $2)) state=$3
  until bacalhau describe "$id" | grep -q "StateType: $state"; do
    (( SECONDS < deadline )) || fail "job $id did not reach $state"
    sleep 0.2
  done
}

inline() { printf 'data:%s;base64,%s' "$1" "$(base64 -w0 "$2")"; }

printf 'to be or not to be\nthat is the question\n' > "$work/input.txt"
expected="2 10 40"

# 1. create from YAML on stdin, waiting for the job to finish
job_id=$(bacalhau create --wait --id-only <<EOF
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /wasm/wordcount.wasm
        Parameters: [/inputs/input.txt]
    Publisher:
      Type: local
    ResultPaths:
      - {Name: outputs, Path: /outputs}
    InputSources:
      - Source: {Type: inline, Params: {URL: "$(inline application/wasm "$assets/wordcount.wasm")"}}
        Target: /wasm/wordcount.wasm
      - Source: {Type: inline, Params: {URL: "$(inline text/plain "$work/input.txt")"}}
        Target: /inputs/input.txt
EOF
)
[[ $job_id == j-* ]] || fail "create printed '$job_id', not a job id"

# 2. list shows it
bacalhau list --limit 1000 | grep -q "${job_id:0:10}" || fail "list does not show $job_id"

# 3. describe (YAML) says it completed
bacalhau describe "$job_id" | grep -q "StateType: Completed" || fail "describe: not Completed"

# 4. logs hold the program's output
[[ $(bacalhau logs "$job_id") == "$expected" ]] || fail "logs: $(bacalhau logs "$job_id")"

# 5. get --output-dir downloads the results
bacalhau get "$job_id" --output-dir "$work/results" > /dev/null
[[ $(cat "$work/results/outputs/count.txt") == "$expected" ]] || fail "get: wrong count.txt"
[[ $(cat "$work/results/exitCode") == "0" ]] || fail "get: exit code"

# 6. cancel a job that never ends
loop_id=$(bacalhau create --wait=false --id-only <<EOF
Type: batch
Tasks:
  - Name: main
    Engine: {Type: wasm, Params: {EntryModule: /wasm/loop.wasm}}
    InputSources:
      - Source: {Type: inline, Params: {URL: "$(inline application/wasm "$assets/loop.wasm")"}}
        Target: /wasm/loop.wasm
EOF
)
wait_for_state "$loop_id" 30 Running
bacalhau cancel "$loop_id" > /dev/null
wait_for_state "$loop_id" 30 Stopped

printf '{"done": "%s", "cancelled": "%s"}\n' "$job_id" "$loop_id"
echo "classic script: all checks passed"
