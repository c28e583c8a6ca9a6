"""What a node and `job get` build from the IPFS config keys (kept here so `node.py` and
`cli/results.py` only call in):

- `IPFS.Embedded.{Enabled, Listen, Peers, SwarmKeyPath}`: the embedded Kubo node, repo in
  `<DataDir>/ipfs`;
- `InputSources.Types.IPFS.Endpoint`: the `ipfs` input source's Kubo RPC (else the embedded
  node's, else no `ipfs` inputs on this node);
- `Publishers.Types.IPFS.Endpoint`: the `ipfs` publisher's (same fallback);
- `ResultDownloaders.Types.IPFS.Endpoint`: what `job get` fetches `ipfs` results through; unset,
  it starts a short-lived embedded node in the client's data dir (or the CLI's
  `--ipfs-serve-path`) that connects to the result's `SwarmAddrs` and to `IPFS.Embedded.Peers`
  (the CLI adds `--ipfs-swarm-addrs`; `--ipfs-swarm-key` sets `IPFS.Embedded.SwarmKeyPath`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bacalhau.config import Config
from bacalhau.ipfs.client import IpfsClient, IpfsError
from bacalhau.ipfs.embedded import EmbeddedIpfs

PUBLISH_TIMEOUT = 300.0


def embedded_enabled(config: Config) -> bool:
    return config.flag("IPFS.Embedded.Enabled")


def embedded_node(config: Config, repo: Path | None = None, *,
                  extra_peers: list[str] | None = None,
                  listen: list[str] | None = None) -> EmbeddedIpfs:
    """The embedded node the config describes (not started); repo `<DataDir>/ipfs`."""
    return EmbeddedIpfs(
        repo or config.data_dir / "ipfs",
        listen=listen or config.strings("IPFS.Embedded.Listen") or ["/ip4/127.0.0.1/tcp/0"],
        swarm_key=str(config.get("IPFS.Embedded.SwarmKeyPath") or ""),
        peers=config.strings("IPFS.Embedded.Peers") + list(extra_peers or []),
    )


def compute_parts(config: Config,
                  embedded: EmbeddedIpfs | None) -> tuple[list[Any], dict[str, Any]]:
    """The `ipfs` storage providers and publishers of a compute node (empty when neither an
    endpoint is configured nor the embedded node runs)."""
    from bacalhau.publishers.ipfs import IPFSPublisher
    from bacalhau.storage.ipfs import IPFSStorage

    def client_for(key: str) -> IpfsClient | None:
        endpoint = str(config.get(key) or "").strip()
        if endpoint:
            return IpfsClient(endpoint)
        return embedded.client() if embedded is not None else None

    storages: list[Any] = []
    publishers: dict[str, Any] = {}
    if (client := client_for("InputSources.Types.IPFS.Endpoint")) is not None:
        reconnect = None
        if embedded is not None and client is embedded.client():
            async def reconnect() -> None:
                await embedded.connect(embedded.peers)
        storages.append(IPFSStorage(client, timeout=config.duration("InputSources.ReadTimeout"),
                                    before_fetch=reconnect))
    if (client := client_for("Publishers.Types.IPFS.Endpoint")) is not None:
        addrs = embedded.addresses if embedded is not None and client is embedded.client() else []
        publishers["ipfs"] = IPFSPublisher(client, timeout=PUBLISH_TIMEOUT, swarm_addrs=addrs)
    return storages, publishers


@contextlib.asynccontextmanager
async def downloader(config: Config | None, peers: list[str], *,
                     repo: Path | None = None) -> AsyncIterator[IpfsClient]:
    """The client `job get` fetches `ipfs` results with: `ResultDownloaders.Types.IPFS.Endpoint`,
    or a short-lived embedded node connected to `peers` and `IPFS.Embedded.Peers`, with the
    `IPFS.Embedded.SwarmKeyPath` key. Its repo is `repo` (`--ipfs-serve-path`: kept, so blocks
    fetched once stay), else `<DataDir>/ipfs-get-<pid>`, removed afterwards (the client's data
    dir may belong to a running node whose repo is locked)."""
    config = config or Config()
    endpoint = str(config.get("ResultDownloaders.Types.IPFS.Endpoint") or "").strip()
    if endpoint:
        async with IpfsClient(endpoint) as client:
            yield client
        return
    keep = repo is not None
    repo = repo or config.data_dir / f"ipfs-get-{os.getpid()}"
    # any free port: the configured one may be held by a node running on this data dir
    node = embedded_node(config, repo, extra_peers=peers, listen=["/ip4/127.0.0.1/tcp/0"])
    if not node.peers:
        raise IpfsError(
            "the result is on IPFS, but no IPFS node to fetch it from is known",
            hint="name a peer holding it with --ipfs-swarm-addrs (or IPFS.Embedded.Peers), or "
            "an IPFS node's RPC API with --ipfs-connect (ResultDownloaders.Types.IPFS.Endpoint)")
    try:
        await node.start()
        if not node.connected_peers:
            raise IpfsError(
                f"could not connect to any IPFS peer holding the result ({', '.join(node.peers)})",
                hint="check that the publishing node is running and reachable from here and, "
                "for a private IPFS network, that --ipfs-swarm-key (IPFS.Embedded.SwarmKeyPath) "
                "is its swarm key; or use --ipfs-connect")
        yield node.client()
    finally:
        await node.stop()
        if not keep:
            shutil.rmtree(repo, ignore_errors=True)
