"""The `ipfs` input source: `{"Type": "ipfs", "Params": {"CID": "Qm..."}}` fetched through a
Kubo RPC endpoint (`InputSources.Types.IPFS.Endpoint`) or the node's embedded IPFS node
(reference §4.2).

`prepare` fetches the CID into a per-input folder: a directory CID's entries appear at the
target, a file CID is the target file. Each fetch has `timeout` seconds
(`InputSources.ReadTimeout`); a CID no connected peer provides fails with a clear error instead
of hanging. `before_fetch` (the embedded node: reconnect its configured peers) runs first.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bacalhau.errors import StorageError
from bacalhau.executors.base import PreparedInput
from bacalhau.ipfs.client import IpfsClient, IpfsError, is_cid
from bacalhau.models import InputSource, SpecConfig
from bacalhau.storage.base import describe_input


class IPFSStorage:
    """Fetches `ipfs` inputs with an `IpfsClient`."""

    types = ("ipfs",)

    def __init__(
        self,
        client: IpfsClient,
        *,
        timeout: float = 300.0,
        before_fetch: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.before_fetch = before_fetch

    def is_installed(self) -> bool:
        return True

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        cid = source.param("CID")
        if not isinstance(cid, str) or not cid:
            return ["ipfs source needs Params.CID, the CID of a file or directory"]
        if not is_cid(cid):
            return [f'ipfs source CID "{cid}" is not a CID (Qm... or bafy...)']
        return []

    async def size(self, source: SpecConfig) -> int | None:
        return None  # unknown until fetched: asking the network could take the whole timeout

    async def prepare(self, input_source: InputSource, work_dir: Path) -> PreparedInput:
        what = describe_input(input_source)
        problems = self.check(input_source.source)
        if problems:
            raise StorageError(f"{what}: {problems[0]}")
        cid: str = input_source.source.param("CID")
        root = Path(work_dir) / f"ipfs-{uuid.uuid4().hex[:12]}"
        root.mkdir(parents=True)
        try:
            if self.before_fetch is not None:
                await self.before_fetch()
            dest = await self.client.get(cid, root / cid, timeout=self.timeout)
        except IpfsError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise StorageError(f"{what}: could not fetch {cid} from IPFS: {exc}",
                               hint=exc.hint or "check the CID and the IPFS node") from exc
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return PreparedInput(source=input_source, host_path=dest, target=input_source.target)

    async def cleanup(self, prepared: PreparedInput) -> None:
        folder = prepared.host_path.parent
        if folder.name.startswith("ipfs-"):
            await asyncio.to_thread(shutil.rmtree, folder, True)
