#!/usr/bin/env bash
# Create (idempotently) a SEPARATE virtualenv holding Bacalhau's public Python clients:
#   bacalhau-apiclient==1.4.1 (swagger-codegen low-level client) and bacalhau-sdk==1.4.2 (high-level SDK).
# They live outside the project venv because their pins (certifi==2024.2.2, pygments==2.17.2, ruff<0.6,
# cryptography<43, ...) clash with the project's tools, and bacalhau-sdk requires Python <3.12.
#
# Prints ONLY the venv's python path on stdout (all chatter goes to stderr).
#
# Environment overrides:
#   BACALHAU_PUBLIC_CLIENTS_VENV    venv path (default ${XDG_CACHE_HOME:-$HOME/.cache}/bacalhau-py/public-clients-venv)
#   BACALHAU_PUBLIC_CLIENTS_PYTHON  interpreter to build it with (default: first of python3.11 python3.10 python3.9
#                                   python3 that is >=3.8.1,<3.12)
#   BACALHAU_PUBLIC_CLIENTS_FORCE=1 rebuild even if the venv looks up to date
#
# See docs/public-clients.md for what the clients send and expect.
set -euo pipefail

log() { printf 'public_clients_venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VENV="${BACALHAU_PUBLIC_CLIENTS_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/bacalhau-py/public-clients-venv}"

# The two clients, plus the extra pins that make them install and import on Python 3.11:
#  * bacalhau-apiclient declares NO dependencies although it imports urllib3, six and certifi;
#    urllib3 only arrives transitively (twine -> requests), so it is named here explicitly.
#  * bacalhau-sdk pulls dev tools (mypy, tox, twine, pre-commit, ruff, virtualenv) with open upper bounds;
#    the constraints below freeze the set this project verified so the install is reproducible.
REQUIREMENTS='bacalhau-apiclient==1.4.1
bacalhau-sdk==1.4.2
urllib3>=1.26,<3
six>=1.16
certifi==2024.2.2'

CONSTRAINTS='ast_serialize==0.13.1
backports.tarfile==1.2.0
cachetools==8.0.2
certifi==2024.2.2
cffi==2.1.1
cfgv==3.5.0
charset-normalizer==3.5.3
colorama==0.4.6
cryptography==42.0.8
distlib==0.4.4
docutils==0.23
filelock==3.32.7
identify==2.6.20
idna==3.20
importlib_metadata==10.2.0
jaraco.classes==3.4.0
jaraco.context==6.1.2
jaraco.functools==4.6.0
jeepney==0.9.0
keyring==25.7.0
lazy-importer==0.1.0
librt==0.17.0
markdown-it-py==4.3.0
mdurl==0.1.2
more-itertools==11.2.1
mypy==2.4.1
mypy_extensions==1.2.0
nh3==0.3.8
nodeenv==1.12.0
packaging==26.4
pathspec==1.1.1
pem==23.1.0
pkginfo==2.0
platformdirs==4.14.8
pluggy==1.7.0
pre_commit==4.7.0
pycparser==3.12
pycryptodome==3.24.1
Pygments==2.17.2
pyproject-api==1.12.1
PyYAML==6.0.4
readme_renderer==46.0
requests==2.34.2
requests-toolbelt==1.0.0
rfc3986==2.0.0
rich==15.0.0
ruff==0.5.7
SecretStorage==3.5.0
six==1.17.0
toml==0.10.2
tomli_w==1.2.0
tox==4.48.1
twine==4.0.2
types-six==1.17.0.20261008
typing_extensions==4.16.0
urllib3==2.8.0
virtualenv==20.39.1
zipp==4.1.2'

IMPORT_CHECK='import bacalhau_apiclient, bacalhau_sdk.jobs, bacalhau_sdk.config, urllib3, six, certifi
from bacalhau_apiclient.api.ops_api import OpsApi
from bacalhau_apiclient.api.orchestrator_api import OrchestratorApi
from importlib.metadata import version
assert version("bacalhau-sdk") == "1.4.2", version("bacalhau-sdk")
assert version("bacalhau-apiclient") == "1.4.1", version("bacalhau-apiclient")'

# shellcheck source=lib/cached_venv.sh
. "$(dirname "$0")/lib/cached_venv.sh"
PY="$(pick_python BACALHAU_PUBLIC_CLIENTS_PYTHON '(3, 8, 1) <= v[:3] and v < (3, 12)' '>=3.8.1,<3.12 (bacalhau-sdk 1.4.2 declares Requires-Python <3.12)' \
  -- python3.11 python3.10 python3.9 /usr/bin/python3.11 python3)"
cached_venv_pinned "$VENV" "$PY" .bacalhau-py-public-clients.stamp "$IMPORT_CHECK" \
  "${BACALHAU_PUBLIC_CLIENTS_FORCE:-0}" "the public clients" \
  "$REQUIREMENTS" "$CONSTRAINTS"
