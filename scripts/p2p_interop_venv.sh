#!/usr/bin/env bash
# Create (idempotently) a SEPARATE virtualenv holding py-libp2p (the `libp2p` package from PyPI,
# on trio): the independent libp2p implementation of the interop test
# (tests/integration/test_libp2p_interop.py, driver scripts/p2p_interop_client.py).
# It lives outside the project venv: it pulls trio, its own protobuf/cryptography pins and many
# transports the project does not need.
#
# Prints ONLY the venv's python path on stdout (all chatter goes to stderr).
#
# Environment overrides:
#   BACALHAU_P2P_INTEROP_VENV    venv path (default ${XDG_CACHE_HOME:-$HOME/.cache}/bacalhau-py/p2p-interop-venv)
#   BACALHAU_P2P_INTEROP_PYTHON  interpreter to build it with (default: first of python3.11 python3.12
#                                python3.13 python3 that is >=3.10)
#   BACALHAU_P2P_INTEROP_FORCE=1 rebuild even if the venv looks up to date
set -euo pipefail

log() { printf 'p2p_interop_venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VENV="${BACALHAU_P2P_INTEROP_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/bacalhau-py/p2p-interop-venv}"

REQUIREMENTS='libp2p==0.8.1'

# The set this project verified (pip freeze of a working venv), so the install is reproducible.
CONSTRAINTS='aioquic==1.7.2
anyio==4.16.0
async-generator==1.10
attrs==26.1.0
base58==2.1.1
blake3==1.0.11
cbor2==6.3.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
coincurve==21.0.0
cryptography==50.0.2
dnspython==2.9.2
fastecdsa==2.3.2
grpcio==1.85.3
h11==0.16.0
httpcore==1.0.9
httpx==0.28.1
idna==3.20
ifaddr==0.2.0
importlib_metadata==10.2.0
lazy-importer==0.1.0
libp2p==0.8.1
lru-dict==1.4.1
miniupnpc==2.3.3
mmh3==5.3.1
morphys==1.0
multiaddr==0.2.0
mypy-protobuf==5.1.0
mypy_extensions==1.2.0
netaddr==1.3.0
noiseprotocol==0.3.1
outcome==1.3.0.post0
packaging==26.4
prometheus_client==0.26.0
protobuf==6.33.6
psutil==7.2.2
py-cid==0.5.0
py-multibase==2.0.0
py-multicodec==1.0.0
py-multihash==3.0.0
pycparser==3.12
pycryptodome==4.4.0
pylsqpack==1.0.0
PyNaCl==1.6.2
pyOpenSSL==26.4.0
python-baseconv==1.2.2
requests==2.34.2
rpcudp==5.0.1
service-identity==26.1.0
six==1.17.0
sniffio==1.3.1
sortedcontainers==2.4.0
trio==0.35.0
trio-typing==0.10.0
trio-websocket==0.12.2
types-protobuf==7.35.1.20260906
types-requests==2.33.0.20261030
typing_extensions==4.16.0
u-msgpack-python==2.8.0
urllib3==2.8.0
varint==1.0.2
wsproto==1.3.2
zeroconf==0.150.5
zipp==4.1.2'

IMPORT_CHECK='import trio, multiaddr
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.pubsub.gossipsub import GossipSub, PROTOCOL_ID_V11
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service
from importlib.metadata import version
assert version("libp2p") == "0.8.1", version("libp2p")'

# shellcheck source=lib/cached_venv.sh
. "$(dirname "$0")/lib/cached_venv.sh"
PY="$(pick_python BACALHAU_P2P_INTEROP_PYTHON 'v >= (3, 10)' '>=3.10 (libp2p 0.8.1 needs it)' \
  -- python3.11 python3.12 python3.13 python3)"
cached_venv_pinned "$VENV" "$PY" .bacalhau-py-p2p-interop.stamp "$IMPORT_CHECK" \
  "${BACALHAU_P2P_INTEROP_FORCE:-0}" "libp2p" \
  "$REQUIREMENTS" "$CONSTRAINTS"
