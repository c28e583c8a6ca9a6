"""Builds one node from its config (orchestrator, compute, or both) and runs it.

This is the one place where the parts are wired together: stores, transport, the requester
(scheduling and REST API), the compute service with its executors, input sources and
publishers. `bacalhau serve` runs one Node; `bacalhau devstack` runs several on one network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import signal
import uuid
from pathlib import Path
from typing import Any

import yaml

from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.models import NODE_TYPE_COMPUTE, NODE_TYPE_REQUESTER, NodeInfo
from bacalhau.models.ids import new_node_id
from bacalhau.transport import InProcessNetwork, Transport
from bacalhau.transport.loopback import SelfDeliveringTransport

log = logging.getLogger(__name__)

METADATA_FILE = "system_metadata.yaml"


def node_identity(data_dir: Path, name: str = "") -> tuple[str, str]:
    """(node id, instance id). The node id is kept in `system_metadata.yaml`, so a node keeps
    its identity across restarts; `name` only applies on first start."""
    path = data_dir / METADATA_FILE
    meta: dict[str, Any] = {}
    if path.is_file():
        meta = yaml.safe_load(path.read_text()) or {}
    if not meta.get("NodeName"):
        meta["NodeName"] = name or new_node_id()
        meta.setdefault("InstallationID", str(uuid.uuid4()))
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(meta))
        os.replace(tmp, path)
    return str(meta["NodeName"]), str(uuid.uuid4())


def _runtime_labels(node_id: str) -> dict[str, str]:
    machine = platform.machine().lower()
    return {
        "os_type": platform.system().lower(),
        "os_arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
        "name": node_id,
    }


def _labels(config: Config, node_id: str) -> dict[str, str]:
    labels = _runtime_labels(node_id)
    user = config.get("Labels") or {}
    if isinstance(user, str):  # -c Labels=a=b,c=d
        user = dict(item.split("=", 1) for item in user.split(",") if "=" in item)
    if not isinstance(user, dict):
        raise ConfigError("Labels: expected a mapping such as {region: eu} or 'region=eu,gpu=no'")
    labels.update({str(k): str(v) for k, v in user.items()})
    return labels


class Node:
    """One node: requester and/or compute roles over one transport."""

    def __init__(self, config: Config, network: InProcessNetwork) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.is_requester = bool(config.get("Orchestrator.Enabled"))
        self.is_compute = bool(config.get("Compute.Enabled"))
        if not (self.is_requester or self.is_compute):
            raise ConfigError("a node needs a role: enable Orchestrator, Compute, or both")
        self.node_id, self.instance_id = node_identity(self.data_dir, str(config.get("Name") or ""))
        self.transport: Transport = network.transport(self.node_id)
        if self.is_requester and self.is_compute:
            self.transport = SelfDeliveringTransport(self.transport)
        self.requester: Any = None
        self.compute: Any = None
        self.local_publisher: Any = None
        self._stores: list[Any] = []
        self._api_runner: Any = None
        self.api_url = ""

    # -- construction -------------------------------------------------------------------------

    def _build_compute(self) -> None:
        from bacalhau.compute.service import ComputeNode
        from bacalhau.executors.wasm import WasmExecutor
        from bacalhau.publishers.local import LocalPublisher
        from bacalhau.publishers.noop import NoopPublisher
        from bacalhau.storage.inline import InlineStorage
        from bacalhau.storage.local import LocalStorage
        from bacalhau.storage.url import URLStorage
        from bacalhau.store.executionstore import ExecutionStore

        cfg = self.config
        compute_dir = self.data_dir / "compute"
        compute_dir.mkdir(parents=True, exist_ok=True)
        store = ExecutionStore(compute_dir / "executions.db")
        self._stores.append(store)
        cache_dir = cfg.get("Engines.Types.WASM.CacheDir") or (self.data_dir / "cache" / "wasm")
        executors = {"wasm": WasmExecutor(cache_dir=Path(cache_dir))}
        allow = cfg.get("Compute.AllowListedLocalPaths") or []
        if isinstance(allow, str):
            allow = [p for p in allow.split(",") if p]
        providers: list[Any] = [
            InlineStorage(),
            URLStorage(
                timeout=cfg.duration("InputSources.ReadTimeout"),
                max_retries=int(cfg.get("InputSources.MaxRetryCount")),
            ),
        ]
        if allow:  # local inputs are offered only where an operator allow-listed paths
            providers.append(LocalStorage(list(allow)))
        storages: dict[str, Any] = {}
        for provider in providers:
            for kind in provider.types:
                storages[kind.lower()] = provider
        publish_dir = Path(cfg.get("Publishers.Types.Local.Directory") or (
            compute_dir / "results" / "local-publisher"))
        self.local_publisher = LocalPublisher(
            publish_dir,
            address=str(cfg.get("Publishers.Types.Local.Address")),
            port=int(cfg.get("Publishers.Types.Local.Port")),
        )
        publishers = {"local": self.local_publisher, "noop": NoopPublisher()}
        self.compute = ComputeNode(
            cfg, store, self.transport, executors=executors, storages=storages,
            publishers=publishers, node_id=self.node_id, data_dir=self.data_dir,
        )

    def _build_requester(self) -> None:
        from bacalhau.orchestrator.nodes import NodeManager
        from bacalhau.orchestrator.selection import NodeSelector
        from bacalhau.orchestrator.service import Requester
        from bacalhau.store.jobstore import JobStore
        from bacalhau.store.nodestore import NodeStore

        orch_dir = self.data_dir / "orchestrator"
        orch_dir.mkdir(parents=True, exist_ok=True)
        db = orch_dir / "jobs.db"
        store = JobStore(db)
        node_store = NodeStore(store.db)  # one connection and transaction scope per file
        self._stores.append(store)
        info = self.node_info()  # a hybrid registers itself as the compute node it also is
        nodes = NodeManager(self.config, node_store, self.transport, info)
        selector = NodeSelector(nodes, self.config)
        self.requester = Requester(self.config, store, self.transport, info,
                                   nodes=nodes, selector=selector)

    def node_info(self) -> NodeInfo:
        if self.compute is not None:
            return self.compute.node_info()
        return NodeInfo(node_id=self.node_id, node_type=NODE_TYPE_REQUESTER,
                        labels=_labels(self.config, self.node_id))

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.transport.start()
        if self.is_compute:
            self._build_compute()
            await self.local_publisher.start()
            await self.compute.start()
        if self.is_requester:
            self._build_requester()
            await self.requester.start()
            await self._start_api()
        log.info("node %s started (requester=%s compute=%s)", self.node_id,
                 self.is_requester, self.is_compute)

    async def _start_api(self) -> None:
        from bacalhau.api.app import create_app, start_api

        app = create_app(self.requester, node_info_provider=self.node_info, config=self.config)
        host = str(self.config.get("API.Host"))
        port = int(self.config.get("API.Port"))
        self._api_runner, bound = await start_api(app, host, port)
        self.api_url = f"http://{host}:{bound}"

    async def stop(self) -> None:
        if self._api_runner is not None:
            with contextlib.suppress(Exception):
                await self._api_runner.cleanup()
        if self.requester is not None:
            await self.requester.stop()
        if self.compute is not None:
            await self.compute.stop()
        if self.local_publisher is not None:
            await self.local_publisher.stop()
        await self.transport.close()
        for store in reversed(self._stores):
            with contextlib.suppress(Exception):
                store.close()


async def wait_for_shutdown() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_node(config: Config) -> None:
    """`bacalhau serve`: run one node until SIGINT/SIGTERM."""
    if config.get("Compute.Enabled") and not config.get("Orchestrator.Enabled"):
        raise ConfigError(
            "not supported yet: a compute-only node joins its orchestrator over the network "
            "transport, which is not part of this release. Run "
            "`bacalhau serve --orchestrator --compute` or `bacalhau devstack`."
        )
    node = Node(config, InProcessNetwork())
    await node.start()
    roles = [r for r, on in (("orchestrator", node.is_requester), ("compute", node.is_compute))
             if on]
    print(f"bacalhau node {node.node_id} ({' + '.join(roles)}) is running", flush=True)
    if node.api_url:
        host, _, port = node.api_url.removeprefix("http://").rpartition(":")
        print(f"API: {node.api_url}\nexport BACALHAU_API_HOST={host}\n"
              f"export BACALHAU_API_PORT={port}", flush=True)
    try:
        await wait_for_shutdown()
    finally:
        await node.stop()


__all__ = ["NODE_TYPE_COMPUTE", "Node", "node_identity", "run_node", "wait_for_shutdown"]
