"""The `ipfs` publisher: adds an execution's results directory to IPFS (a Kubo RPC endpoint,
`Publishers.Types.IPFS.Endpoint`, or the node's embedded IPFS node) and answers
`{"Type": "ipfs", "Params": {"CID": ...}}` (reference §4.3).

The add uses `bacalhau.content.results_cid`'s settings, and the CID the node answers is checked
against `results_cid` of the same directory: the runner attaches that CID and `job get`
verifies downloads against it, so a node that imported differently must fail here, loudly.
With the embedded node, `Params.SwarmAddrs` also lists its swarm multiaddrs (extra Params are
ignored by Bacalhau's clients), so `job get` can fetch the CID without any configuration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bacalhau.content import CidError, results_cid
from bacalhau.errors import PublisherError
from bacalhau.ipfs.client import IpfsClient, IpfsError
from bacalhau.models import Execution, SpecConfig


class IPFSPublisher:
    type = "ipfs"

    def __init__(self, client: IpfsClient, *, timeout: float = 300.0,
                 swarm_addrs: list[str] | None = None) -> None:
        self.client = client
        self.timeout = timeout
        self.swarm_addrs = list(swarm_addrs or [])

    def is_installed(self) -> bool:
        return True

    def check(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        results_dir = Path(results_dir)
        if not results_dir.is_dir():
            raise PublisherError(f"results of execution {execution.id} are missing: "
                                 f"{results_dir} is not a directory")
        try:
            cid = await self.client.add_dir(results_dir, timeout=self.timeout)
        except IpfsError as exc:
            raise PublisherError(
                f"could not add the results of execution {execution.id} to IPFS: {exc}",
                hint=exc.hint or "check the IPFS node (Publishers.Types.IPFS.Endpoint)",
            ) from exc
        try:
            expected = await asyncio.to_thread(results_cid, results_dir)
        except CidError as exc:
            raise PublisherError(f"could not compute the CID of the results: {exc}") from exc
        if cid != expected:
            raise PublisherError(
                f"the IPFS node stored the results of execution {execution.id} as {cid}, "
                f"but their CID is {expected}: the node imports with other settings",
                hint="use a Kubo node that honours the add options (cid-version=0, "
                "raw-leaves=false, chunker=size-262144)",
            )
        params: dict[str, object] = {"CID": cid}
        if self.swarm_addrs:
            params["SwarmAddrs"] = list(self.swarm_addrs)
        return SpecConfig(type="ipfs", params=params)
