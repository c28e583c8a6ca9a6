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

# The first interpreter whose sys.version_info satisfies the Python expression TEST: the one
# named by the environment variable ENV_VAR if set (it must pass), else the first CANDIDATE.
#   pick_python ENV_VAR TEST NEED -- CANDIDATES...       (NEED says the range, for errors)
pick_python() {
  local env_var=$1 test=$2 need=$3 c
  shift 3
  [ "${1:-}" = "--" ] && shift
  _py_ok() {
    command -v "$1" >/dev/null 2>&1 \
      && "$1" -c "import sys; v = sys.version_info; sys.exit(0 if ($test) else 1)" >/dev/null 2>&1
  }
  if [ -n "${!env_var:-}" ]; then
    _py_ok "${!env_var}" || die "$env_var=${!env_var} is missing or not Python $need"
    echo "${!env_var}"
    return
  fi
  for c in "$@"; do
    if _py_ok "$c"; then echo "$c"; return; fi
  done
  die "no Python $need found; set $env_var"
}

# cached_venv for a pinned set: the stamp covers the interpreter version, REQUIREMENTS and
# CONSTRAINTS (newline-separated pip lines), which are installed with -r / -c.
#   cached_venv_pinned VENV PYTHON STAMP_FILE IMPORT_CHECK FORCE WHAT REQUIREMENTS CONSTRAINTS
cached_venv_pinned() {
  local venv=$1 py=$2 stamp_file=$3 check=$4 force=$5 what=$6 requirements=$7 constraints=$8
  local pyver want
  pyver="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  want="$(printf '%s\n%s\n%s\n' "$pyver" "$requirements" "$constraints" | sha256sum | cut -d' ' -f1)"
  _CACHED_VENV_TMP="$(mktemp -d)"
  trap 'rm -rf "$_CACHED_VENV_TMP"' EXIT
  printf '%s\n' "$requirements" >"$_CACHED_VENV_TMP/requirements.txt"
  printf '%s\n' "$constraints" >"$_CACHED_VENV_TMP/constraints.txt"
  cached_venv "$venv" "$py" "$stamp_file" "$want" "$check" "$force" "$what" \
    -- -r "$_CACHED_VENV_TMP/requirements.txt" -c "$_CACHED_VENV_TMP/constraints.txt"
}
