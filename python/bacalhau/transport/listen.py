"""Listen addresses that survive a restart.

Compute nodes join a requester by its address (`--peers /ip4/…/tcp/<port>/p2p/<id>`) and
redial it there when it goes away, so a requester must come back on the same port. A node
therefore listens where it listened last time, as recorded in `<DataDir>/libp2p.listen`:

- `Network.Listen` unset: the addresses of last time if their ports are free, else
  `/ip4/127.0.0.1/tcp/1235` (Bacalhau's libp2p port) if free, else a free port;
- an address with port 0 (`/ip4/127.0.0.1/tcp/0`): the port this address had last time if it
  is free, else a free port;
- an address with a port: that port (a clear error at start when it is taken).

After a start, `remember` records the bound addresses for the next one.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

STATE_FILE = "libp2p.listen"
DEFAULT_PORT = 1235
DEFAULT_HOST = "127.0.0.1"


def _split(addr: str) -> tuple[str, str, int] | None:
    """(ip protocol, ip, tcp port) of `/ip4|ip6/<ip>/tcp/<port>`, None for anything else."""
    parts = addr.strip().split("/")
    if len(parts) < 5 or parts[0] != "" or parts[1] not in ("ip4", "ip6") or parts[3] != "tcp":
        return None
    try:
        return parts[1], parts[2], int(parts[4])
    except ValueError:
        return None


def _join(proto: str, ip: str, port: int) -> str:
    return f"/{proto}/{ip}/tcp/{port}"


def port_is_free(proto: str, ip: str, port: int) -> bool:
    """Whether nothing listens on `ip:port` now. SO_REUSEADDR, as every server sets it: the
    connections of a node killed a moment ago linger in TIME_WAIT on its port and must not
    send its restart elsewhere; a listening socket still makes the bind fail."""
    family = socket.AF_INET6 if proto == "ip6" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def _remembered(data_dir: Path) -> list[str]:
    try:
        text = (data_dir / STATE_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [line.strip() for line in text.splitlines() if _split(line.strip())]


def listen_addresses(configured: list[str], data_dir: Path) -> list[str]:
    """The addresses to listen on this time (see the module doc)."""
    last = _remembered(data_dir)
    if not configured:
        kept = [a for a in last if port_is_free(*_split(a))]  # type: ignore[misc]
        if kept:
            return kept
        if port_is_free("ip4", DEFAULT_HOST, DEFAULT_PORT):
            return [_join("ip4", DEFAULT_HOST, DEFAULT_PORT)]
        return [_join("ip4", DEFAULT_HOST, 0)]
    previous = {(s[0], s[1]): s[2] for a in last if (s := _split(a)) is not None}
    any_port = {proto: port for (proto, _), port in previous.items()}
    out = []
    for addr in configured:
        split = _split(addr)
        if split is None or split[2] != 0:
            out.append(addr)
            continue
        proto, ip, _ = split
        # a wildcard address was recorded as the interfaces it bound: any of their ports
        wildcard = ip in ("0.0.0.0", "::")
        port = any_port.get(proto, 0) if wildcard else previous.get((proto, ip), 0)
        out.append(_join(proto, ip, port if port and port_is_free(proto, ip, port) else 0))
    return out


def remember(data_dir: Path, bound: list[str]) -> None:
    """Record the bound addresses (ports resolved) for the next start."""
    lines = [a for a in bound if _split(a) is not None]
    if not lines:
        return
    path = data_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
