"""`bacalhau devstack`: a whole local network in one process — orchestrators, compute nodes and
hybrids on one in-process transport, each with its own data dir, identity and ports."""

from __future__ import annotations

import logging
from pathlib import Path

from bacalhau.config import Config
from bacalhau.node import Node, wait_for_shutdown
from bacalhau.transport import InProcessNetwork

log = logging.getLogger(__name__)


def node_config(base: Config, data_dir: Path, *, orchestrator: bool, compute: bool,
                api_port: int) -> Config:
    """A copy of the devstack config for one node: own data dir and API port; local
    publishers pick a free port so that any number of compute nodes fit on one host."""
    cfg = base.copy()
    cfg.set("DataDir", str(data_dir))
    cfg.set("Orchestrator.Enabled", orchestrator)
    cfg.set("Compute.Enabled", compute)
    cfg.set("API.Port", api_port)
    cfg.set("Publishers.Types.Local.Port", 0)
    return cfg


async def start_devstack(config: Config, *, computes: int = 3, orchestrators: int = 1,
                         hybrids: int = 0, base_dir: Path) -> list[Node]:
    """Start the nodes (requesters first, so that they hear every compute node join)."""
    network = InProcessNetwork()
    api_port = int(config.get("API.Port"))
    plan: list[tuple[str, bool, bool]] = (
        [(f"orchestrator-{i}", True, False) for i in range(orchestrators)]
        + [(f"hybrid-{i}", True, True) for i in range(hybrids)]
        + [(f"compute-{i}", False, True) for i in range(computes)]
    )
    nodes: list[Node] = []
    next_port = api_port
    try:
        for name, is_orch, is_compute in plan:
            cfg = node_config(config, base_dir / name, orchestrator=is_orch, compute=is_compute,
                              api_port=next_port)
            if is_orch:
                next_port += 1
            node = Node(cfg, network)
            await node.start()
            nodes.append(node)
    except BaseException:
        for node in reversed(nodes):
            await node.stop()
        raise
    return nodes


async def run_devstack(config: Config, *, computes: int = 3, orchestrators: int = 1,
                       hybrids: int = 0, base_dir: Path) -> None:
    """Run a devstack until SIGINT/SIGTERM, printing how to reach each requester."""
    nodes = await start_devstack(config, computes=computes, orchestrators=orchestrators,
                                 hybrids=hybrids, base_dir=base_dir)
    try:
        requesters = [n for n in nodes if n.api_url]
        print(f"Devstack is ready: {len(nodes)} nodes ({len(requesters)} with an API)",
              flush=True)
        for i, node in enumerate(requesters):
            host, _, port = node.api_url.removeprefix("http://").rpartition(":")
            suffix = "" if i == 0 else f"_{i}"
            print(f"export BACALHAU_API_HOST{suffix}={host}\n"
                  f"export BACALHAU_API_PORT{suffix}={port}", flush=True)
        await wait_for_shutdown()
    finally:
        for node in reversed(nodes):
            await node.stop()
