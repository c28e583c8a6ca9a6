#!/usr/bin/env bash
# Create (idempotently) a SEPARATE virtualenv holding `aleph-cid` (PyPI), an independent
# Kubo-compatible CID implementation that the property tests (tests/unit/test_cid_vs_aleph.py)
# and bench/cid_dir.py compare `bacalhau.content.cid` against.
#
# Why a separate venv: aleph-cid is a reference to check against, never a dependency of
# bacalhau-py (not in pyproject's dependencies or extras); keeping it out of the project venv
# also guarantees no code path of ours can import it by accident.
#
# Prints ONLY the venv's python path on stdout (all chatter goes to stderr).
#
# Environment overrides:
#   BACALHAU_ALEPH_CID_VENV    venv path (default ${XDG_CACHE_HOME:-$HOME/.cache}/bacalhau-py/aleph-cid-venv)
#   BACALHAU_ALEPH_CID_PYTHON  interpreter to build it with (default: python3)
#   BACALHAU_ALEPH_CID_FORCE=1 rebuild even if the venv looks up to date
set -euo pipefail

log() { printf 'aleph_cid_venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VENV="${BACALHAU_ALEPH_CID_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/bacalhau-py/aleph-cid-venv}"
PY="${BACALHAU_ALEPH_CID_PYTHON:-python3}"
REQUIREMENT='aleph-cid==0.1.0'
IMPORT_CHECK='import aleph_cid
from importlib.metadata import version
assert version("aleph-cid") == "0.1.0", version("aleph-cid")
assert callable(aleph_cid.hash_folder) and callable(aleph_cid.CidHasher.for_ipfs)'

command -v "$PY" >/dev/null 2>&1 || die "no $PY; set BACALHAU_ALEPH_CID_PYTHON"
STAMP_WANT="$(printf '%s\n%s\n' "$("$PY" -c 'import sys; print(sys.version)')" "$REQUIREMENT" \
  | sha256sum | cut -d' ' -f1)"
# shellcheck source=lib/cached_venv.sh
. "$(dirname "$0")/lib/cached_venv.sh"
cached_venv "$VENV" "$PY" .bacalhau-py-aleph-cid.stamp "$STAMP_WANT" "$IMPORT_CHECK" \
  "${BACALHAU_ALEPH_CID_FORCE:-0}" "$REQUIREMENT" -- --only-binary=:all: "$REQUIREMENT"
