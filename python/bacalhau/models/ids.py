"""Identifiers in Bacalhau's formats: `j-<uuid>`, `e-<uuid>`, `n-<uuid>`, evaluation UUIDs."""

from __future__ import annotations

import re
import uuid

JOB_PREFIX = "j-"
EXECUTION_PREFIX = "e-"
NODE_PREFIX = "n-"
DELAYED_EVAL_PREFIX = "v-"

_FULL_ID = re.compile(
    r"^(?:[a-z]-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


def new_job_id() -> str:
    return JOB_PREFIX + str(uuid.uuid4())


def new_execution_id() -> str:
    return EXECUTION_PREFIX + str(uuid.uuid4())


def new_node_id() -> str:
    return NODE_PREFIX + str(uuid.uuid4())


def new_eval_id(delayed: bool = False) -> str:
    return (DELAYED_EVAL_PREFIX if delayed else "") + str(uuid.uuid4())


def is_full_id(value: str) -> bool:
    """True for a complete `<prefix>-<uuid>` or bare UUID (anything else is a prefix)."""
    return bool(_FULL_ID.match(value))


LIBP2P_ED25519_PREFIX = "12D3KooW"  # every ed25519 libp2p peer id starts so


def short_id(value: str) -> str:
    """The short form shown to users: `j-1a2b3c4d` for `j-<uuid>`; for a libp2p peer id the
    common `12D3KooW` plus the 8 characters that tell nodes apart. Every short form is a
    prefix of the full id, so lookups by prefix accept it."""
    if value.startswith(LIBP2P_ED25519_PREFIX):
        return value[: len(LIBP2P_ED25519_PREFIX) + 8]
    if len(value) > 2 and value[1] == "-":
        return value[:10]
    return value[:8]
