# shellcheck shell=bash
# Sourced by the scripts/*_venv.sh scripts: builds, once, a SEPARATE virtualenv for a test-only
# tool from PyPI (Bacalhau's public clients, py-libp2p, aleph-cid) and reuses it while its stamp
# (interpreter version + pinned requirements) is unchanged and its import check passes.
# Concurrent builders (parallel test workers) are serialized on a lock file next to the venv.
#
#   cached_venv VENV PYTHON STAMP_FILE STAMP_WANT IMPORT_CHECK FORCE WHAT -- PIP_INSTALL_ARGS...
#
# The caller defines `log` and `die`. Prints only the venv's python path on stdout.
cached_venv() {
  local venv=$1 py=$2 stamp_file=$3 want=$4 check=$5 force=$6 what=$7
  shift 7
  [ "${1:-}" = "--" ] && shift
  local vpy="$venv/bin/python" stamp="$venv/$stamp_file"

  mkdir -p "$(dirname "$venv")"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock -w 900 9 || die "timed out waiting for lock $venv.lock"
  fi

  if [ "$force" != "1" ] && [ -x "$vpy" ] && [ -f "$stamp" ] \
     && [ "$(cat "$stamp")" = "$want" ] && "$vpy" -c "$check" >/dev/null 2>&1; then
    log "up to date: $venv"
    echo "$vpy"
    return 0
  fi
  if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv" 2>/dev/null)" ]; then
    die "$venv exists, is not empty and is not a virtualenv; refusing to touch it"
  fi

  log "building $venv with $py"
  rm -f "$stamp"
  "$py" -m venv --clear "$venv" >&2 \
    || die "python -m venv failed (is the venv module / ensurepip installed?)"
  "$vpy" -m pip --disable-pip-version-check --no-input install --quiet "$@" >&2 \
    || die "pip install of $what failed (PyPI reachable? a wheel for this platform?)"
  "$vpy" -c "$check" >&2 || die "$what installed but does not import"
  echo "$want" >"$stamp"
  log "ready: $venv"
  echo "$vpy"
}
