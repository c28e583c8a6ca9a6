#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs the Rust tests,
# the linters and the Python test suite (unit + integration, real processes and files).
# Extra arguments go to pytest (e.g. `scripts/test.sh -m unit -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bacalhau-py/target}"
scripts/setup.sh
echo "== headless Chromium for the web UI tests (Debian packages)"
scripts/install_browser.sh \
  || echo "warning: chromium could not be installed; the web UI browser tests will skip" >&2
echo "== fault suite tools: iproute2, iptables, libfaketime (Debian packages)"
scripts/install_fault_tools.sh \
  || echo "warning: the fault tools could not be installed; tests/faults will skip" >&2
echo "== cargo test (pure crates)"
cargo test -q --workspace --exclude bacalhau-native
echo "== cargo clippy"
cargo clippy -q --workspace --all-targets -- -D warnings
echo "== ruff"
.venv/bin/ruff check python tests bench scripts
echo "== S3 test server (moto, 127.0.0.1)"
S3_ENV="$(scripts/start_s3_server.sh)"  # an assignment, so that set -e sees a failure
eval "$S3_ENV"
trap 'kill "$BACALHAU_TEST_S3_PID" 2>/dev/null || true' EXIT
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
