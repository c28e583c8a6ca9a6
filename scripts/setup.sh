#!/usr/bin/env bash
# Create .venv and install bacalhau-py into it (building the Rust extension), with test tools,
# and, where a Docker engine answers, the local test image (scripts/build_test_image.sh).
# Idempotent: a second run only rebuilds what changed. The Cargo target dir lives outside the
# clone so that CI runs and later sessions reuse compiled crates.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bacalhau-py/target}"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
.venv/bin/pip install -q -e ".[test]"
.venv/bin/python -c "import bacalhau._native" \
  || { echo "the Rust extension did not build: see the pip output above" >&2; exit 1; }
# the docker engine's test image (no registry needed); quick when it exists already
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  scripts/build_test_image.sh
else
  echo "no Docker engine answers: skipping the test image (docker tests will skip)" >&2
fi
