"""Private-network keys in Kubo's `swarm.key` format (`/key/swarm/psk/1.0.0/`, `/base16/`,
64 hex digits): every node of a private cluster holds the same file; a node with another key,
or none, cannot connect to it (libp2p pnet). Parsing and generation live in Rust
(`rust/transport/src/swarmkey.rs`); this module adds files and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

from bacalhau._native import NativeTransportError
from bacalhau._native import generate_swarm_key as _generate
from bacalhau._native import parse_swarm_key as _parse
from bacalhau.errors import ConfigError

SWARM_KEY_FILE = "swarm.key"
"""Conventional file name (as in Kubo's repo dir)."""


def generate() -> str:
    """A fresh random key, as the text of a swarm.key file."""
    return _generate()


def parse(text: str) -> bytes:
    """The 32-byte key of a swarm.key text; ConfigError says what is wrong with it."""
    try:
        return _parse(text)
    except NativeTransportError as exc:
        raise ConfigError(str(exc)) from None


def read(path: Path) -> bytes:
    """The 32-byte key stored in `path`; ConfigError names the file when it is missing,
    unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"swarm key file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"swarm key file {path} is not text (expected Kubo's "
                          "swarm.key format)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read swarm key file {path}: {exc.strerror or exc}") from None
    try:
        return _parse(text)
    except NativeTransportError as exc:
        raise ConfigError(f"swarm key file {path}: {exc}") from None


def write(path: Path, text: str | None = None, *, overwrite: bool = False) -> str:
    """Writes a key file (mode 0600), a new random key unless `text` is given; returns the
    text. Refuses to replace an existing file unless `overwrite`."""
    text = generate() if text is None else text
    parse(text)  # never write a file the nodes would refuse
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"swarm key file {path} already exists; refusing to replace it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write swarm key file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return text
