"""`job get`'s `ipfs` downloader: fetches each `{"Type": "ipfs", "Params": {"CID": ...}}` result
by CID (through `ResultDownloaders.Types.IPFS.Endpoint` or a short-lived embedded node that
connects to the result's `SwarmAddrs`, see `wiring.downloader`) and packs it as the `.tar.gz`
archive the rest of `job get` verifies (CID recomputed) and merges like any other result.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bacalhau.config import Config

IPFS_SCHEME = "ipfs://"


def ipfs_result(result: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(CID, swarm multiaddrs) of an `ipfs` published result, else None."""
    if str(result.get("Type", "")).lower() != "ipfs":
        return None
    params = {str(k).lower(): v for k, v in (result.get("Params") or {}).items()}
    cid = str(params.get("cid", "") or "")
    if not cid:
        return None
    addrs = params.get("swarmaddrs") or []
    if isinstance(addrs, str):
        addrs = [a for a in addrs.split(",") if a]
    return cid, [str(a) for a in addrs]


async def fetch_archives(
    wanted: list[tuple[str, list[str], Path]],
    *,
    config: Callable[[], Config] | Config | None = None,
    timeout: float = 300.0,
    repo: Path | None = None,
) -> None:
    """Fetch each (cid, swarm addrs, archive path) and write it as a tar.gz at the path.
    `repo`: where a short-lived embedded node keeps its repo (kept afterwards; see
    `wiring.downloader`)."""
    from bacalhau import _native
    from bacalhau.ipfs.wiring import downloader

    if not wanted:
        return
    cfg = config() if callable(config) else config
    peers = sorted({a for _cid, addrs, _target in wanted for a in addrs})
    async with downloader(cfg, peers, repo=repo) as client:
        for cid, _addrs, target in wanted:
            scratch = Path(tempfile.mkdtemp(prefix=".ipfs-", dir=target.parent))
            try:
                folder = await client.get(cid, scratch / "result", timeout=timeout)
                await asyncio.to_thread(_native.pack_dir, str(folder), str(target))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
