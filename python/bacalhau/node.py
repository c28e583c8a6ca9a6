"""Builds one node from its config (orchestrator, compute, or both) and runs it.

This is the one place where the parts are wired together: stores, transport, the requester
(scheduling and REST API), the compute service with its executors, input sources and
publishers. `bacalhau serve` runs one Node; `bacalhau devstack` runs several on one network.

Transport (`Network.Transport`): `libp2p` (default) gives every node its own libp2p host,
listening on `Network.Listen` (where it listened last time: `transport/listen.py`), joining
`Network.Peers`, private under `Network.SwarmKeyPath`, restricted to `Network.AllowList`,
a requester or a compute node to the network (a compute node accepts `Network.MaxPeers`
connections besides its requesters); the node id is then the libp2p peer id of the key in
`<DataDir>/libp2p.key`, so a node keeps its id across restarts. `inprocess` runs nodes that
share one Python process (devstack, tests) over an `InProcessNetwork`.

Nodes of one process share what is heavy: the network runtime and event thread (native),
one WASM executor per module cache directory (one wasmtime Engine) and one Docker client.

A started node writes `<DataDir>/bacalhau.run`: shell `export` lines with its id, its
dialable addresses (`BACALHAU_NETWORK_PEERS`, ready for the next node) and, for a requester,
its API endpoint; scripts and tests read it instead of parsing the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import platform
import shlex
import signal
import uuid
from pathlib import Path
from typing import Any

import yaml

from bacalhau.config import Config, parse_duration
from bacalhau.counters import install_counter_dump
from bacalhau.errors import ConfigError, TransportError
from bacalhau.models import NODE_TYPE_COMPUTE, NODE_TYPE_REQUESTER, NodeInfo
from bacalhau.models.ids import new_node_id
from bacalhau.transport import InProcessNetwork, Transport
from bacalhau.transport.base import GossipHandler, RequesterWatcher, RequestHandler

log = logging.getLogger(__name__)

METADATA_FILE = "system_metadata.yaml"
RUN_FILE = "bacalhau.run"
"""Written by a started node into its data dir (see the module doc)."""

TRANSPORT_LIBP2P = "libp2p"
TRANSPORT_INPROCESS = "inprocess"
TRANSPORTS = (TRANSPORT_LIBP2P, TRANSPORT_INPROCESS)

def node_identity(data_dir: Path, name: str = "", *, node_id: str = "") -> tuple[str, str]:
    """(node id, instance id), kept in `system_metadata.yaml` so that a node keeps its
    identity across restarts. `node_id`, when given (the libp2p peer id of the node's key),
    is the identity and is written to the file if it holds another; otherwise the stored
    name is used, and `name` (or a new `n-<uuid>`) only applies on first start."""
    path = data_dir / METADATA_FILE
    meta: dict[str, Any] = {}
    if path.is_file():
        meta = yaml.safe_load(path.read_text()) or {}
    wanted = node_id or meta.get("NodeName") or name or new_node_id()
    if meta.get("NodeName") != wanted or not meta.get("InstallationID"):
        if meta.get("NodeName") and meta["NodeName"] != wanted:
            log.info("node id is now the libp2p peer id %s (was %s)", wanted, meta["NodeName"])
            meta["PreviousNodeName"] = meta["NodeName"]
        meta["NodeName"] = wanted
        meta.setdefault("InstallationID", str(uuid.uuid4()))
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(meta))
        os.replace(tmp, path)
    return str(meta["NodeName"]), str(uuid.uuid4())


def config_list(config: Config, key: str) -> list[str]:
    """A list-valued key that may also be given as one comma-separated string (env, `-c`)."""
    return config.strings(key)


def transport_kind(config: Config) -> str:
    kind = str(config.get("Network.Transport") or TRANSPORT_LIBP2P).strip().lower()
    if kind not in TRANSPORTS:
        raise ConfigError(f'Network.Transport: unknown transport "{kind}": use libp2p or '
                          "inprocess")
    return kind


def build_libp2p(config: Config, data_dir: Path, **tuning: Any) -> Any:
    """The libp2p transport a node's config asks for (not started)."""
    from bacalhau.transport.libp2p import ROLE_COMPUTE, ROLE_REQUESTER, Libp2pTransport
    from bacalhau.transport.listen import listen_addresses

    key_path = str(config.get("Network.SwarmKeyPath") or "").strip()
    swarm_key = Path(os.path.expanduser(key_path)) if key_path else None
    allow = config_list(config, "Network.AllowList")
    role = ROLE_REQUESTER if config.get("Orchestrator.Enabled") else ROLE_COMPUTE
    try:
        max_peers = int(config.get("Network.MaxPeers"))
    except (TypeError, ValueError):
        raise ConfigError(f"Network.MaxPeers: expected a number of connections, got "
                          f"{config.get('Network.MaxPeers')!r}") from None
    if max_peers < 0:
        raise ConfigError("Network.MaxPeers: must not be negative")
    tuning.setdefault("max_peers", max_peers)
    return Libp2pTransport(
        data_dir,
        listen=listen_addresses(config_list(config, "Network.Listen"), data_dir),
        peers=config_list(config, "Network.Peers"),
        role=role,
        swarm_key_path=swarm_key,
        allow_list=allow or None,
        **tuning,
    )


class HybridTransport:
    """The transport of a node holding both roles: it is one of its own requesters, and
    requests to its own id (its compute's membership messages to its requester, its
    requester's bid messages to its compute) are answered by its own handlers without leaving
    the process (libp2p cannot dial itself). Everything else goes to the inner transport."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.node_id = inner.node_id
        self._local_servers: dict[str, RequestHandler] = {}

    async def start(self) -> None:
        await self._inner.start()

    async def close(self) -> None:
        await self._inner.close()

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._inner.publish(topic, payload)

    def subscribe(self, topic: str, handler: GossipHandler) -> None:
        self._inner.subscribe(topic, handler)

    def peers(self) -> list[str]:
        return self._inner.peers()

    def requesters(self) -> list[str]:
        return sorted({self.node_id, *self._inner.requesters()})

    def watch_requesters(self, callback: RequesterWatcher) -> None:
        self._inner.watch_requesters(callback)

    def watch_subscriptions(self, callback: Any) -> None:
        watch = getattr(self._inner, "watch_subscriptions", None)
        if watch is not None:
            watch(callback)

    async def request(
        self, peer: str, protocol: str, payload: bytes, timeout: float = 10.0
    ) -> bytes:
        if peer != self.node_id:
            return await self._inner.request(peer, protocol, payload, timeout)
        handler = self._local_servers.get(protocol)
        if handler is None:
            raise TransportError(f"node {peer} does not serve {protocol}")
        try:
            async with asyncio.timeout(timeout):
                return bytes(await handler(self.node_id, bytes(payload)))
        except TimeoutError:
            raise TransportError(
                f"node {peer} did not answer {protocol} within {timeout:g}s") from None

    def serve(self, protocol: str, handler: RequestHandler) -> None:
        self._local_servers[protocol] = handler
        self._inner.serve(protocol, handler)


def _runtime_labels(node_id: str) -> dict[str, str]:
    machine = platform.machine().lower()
    return {
        "os_type": platform.system().lower(),
        "os_arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine),
        "name": node_id,
    }


def _labels(config: Config, node_id: str) -> dict[str, str]:
    labels = _runtime_labels(node_id)
    labels.update(config.labels())
    return labels


class Node:
    """One node: requester and/or compute roles over one transport."""

    def __init__(self, config: Config, network: InProcessNetwork | None = None,
                 **libp2p_tuning: Any) -> None:
        """`network` is required for (and only used by) `Network.Transport=inprocess`;
        `libp2p_tuning` goes to `Libp2pTransport` (devstack, tests, benchmarks)."""
        self.config = config
        self.data_dir = config.data_dir
        self.is_requester = bool(config.get("Orchestrator.Enabled"))
        self.is_compute = bool(config.get("Compute.Enabled"))
        if not (self.is_requester or self.is_compute):
            raise ConfigError("a node needs a role: enable Orchestrator, Compute, or both")
        self.transport_kind = transport_kind(config)
        name = str(config.get("Name") or "")
        self.p2p: Any = None  # the Libp2pTransport, when the node runs on libp2p
        inner: Transport
        if self.transport_kind == TRANSPORT_LIBP2P:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.p2p = build_libp2p(config, self.data_dir, **libp2p_tuning)
            if name and name != self.p2p.node_id:
                log.warning("--name/Name %r is ignored: on libp2p the node id is the peer id "
                            "of %s", name, self.p2p.key_file)
            self.node_id, self.instance_id = node_identity(self.data_dir,
                                                           node_id=self.p2p.node_id)
            inner = self.p2p
        else:
            if network is None:
                raise ConfigError(
                    "Network.Transport=inprocess only connects nodes inside one process "
                    "(bacalhau devstack --transport inprocess); use libp2p for serve")
            self.node_id, self.instance_id = node_identity(self.data_dir, name)
            inner = network.transport(self.node_id, requester=self.is_requester)
        self.transport: Transport = inner
        if self.is_requester and self.is_compute:
            self.transport = HybridTransport(inner)
        self.requester: Any = None
        self.compute: Any = None
        self.local_publisher: Any = None
        self.ipfs: Any = None  # the embedded IPFS node (IPFS.Embedded.Enabled)
        self._ipfs_clients: list[Any] = []
        self._docker: Any = None
        self._stores: list[Any] = []
        self._api_runner: Any = None
        self.metrics: Any = None  # NodeMetrics, served at <API>/metrics
        self._metrics_runner: Any = None
        self.metrics_url = ""  # Metrics.Listen's /metrics
        self.api_url = ""
        self.webui_url = ""

    # -- construction -------------------------------------------------------------------------

    def _build_compute(self) -> None:
        from bacalhau.compute.service import ComputeNode
        from bacalhau.executors import shared
        from bacalhau.publishers.local import LocalPublisher
        from bacalhau.publishers.noop import NoopPublisher
        from bacalhau.publishers.s3 import S3Publisher
        from bacalhau.storage.inline import InlineStorage
        from bacalhau.storage.local import LocalStorage
        from bacalhau.storage.s3 import S3Storage
        from bacalhau.storage.url import URLStorage
        from bacalhau.store.executionstore import ExecutionStore

        cfg = self.config
        compute_dir = self.data_dir / "compute"
        compute_dir.mkdir(parents=True, exist_ok=True)
        store = ExecutionStore(compute_dir / "executions.db")
        self._group_commit(store.db)
        self._stores.append(store)
        cache_dir = cfg.get("Engines.Types.WASM.CacheDir") or (self.data_dir / "cache" / "wasm")
        executors: dict[str, Any] = {"wasm": shared.wasm_executor(Path(cache_dir))}
        if self._docker is not None and self._docker.is_installed():
            executors["docker"] = self._docker
        allow = cfg.get("Compute.AllowListedLocalPaths") or []
        if isinstance(allow, str):
            allow = [p for p in allow.split(",") if p]
        providers: list[Any] = [
            InlineStorage(cache_dir=compute_dir / "inline-cache"),
            URLStorage(
                timeout=cfg.duration("InputSources.ReadTimeout"),
                max_retries=int(cfg.get("InputSources.MaxRetryCount")),
            ),
        ]
        if allow:  # local inputs are offered only where an operator allow-listed paths
            providers.append(LocalStorage(list(allow)))
        if (s3_storage := S3Storage()).is_installed():
            providers.append(s3_storage)
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
        if (s3_publisher := S3Publisher(self.node_id)).is_installed():
            publishers["s3"] = s3_publisher
        from bacalhau.ipfs.wiring import compute_parts

        ipfs_storages, ipfs_publishers = compute_parts(cfg, self.ipfs)
        storages.update({kind.lower(): p for p in ipfs_storages for kind in p.types})
        publishers.update(ipfs_publishers)
        self._ipfs_clients = [p.client for p in [*ipfs_storages, *ipfs_publishers.values()]]
        self.compute = ComputeNode(
            cfg, store, self.transport, executors=executors, storages=storages,
            publishers=publishers, node_id=self.node_id, data_dir=self.data_dir,
        )

    async def _probe_host(self) -> None:
        """Blocking probes on a worker thread before the compute is built: GPU detection
        (cached for the process) and whether a Docker engine answers (the docker executor
        is offered only then, and not when `Engines.Disabled` names it)."""
        from bacalhau.executors import shared
        from bacalhau.executors.docker import DockerExecutor
        from bacalhau.executors.docker_http import HTTPSettings
        from bacalhau.executors.gpu import host_gpus

        await asyncio.to_thread(host_gpus)
        disabled = self.config.get("Engines.Disabled") or []
        if isinstance(disabled, str):
            disabled = disabled.split(",")
        if "docker" in {str(d).strip().lower() for d in disabled}:
            return
        docker_cfg = "Engines.Types.Docker."
        registries = self.config.get(docker_cfg + "Registries") or {}
        if not isinstance(registries, dict):
            raise ConfigError(f"{docker_cfg}Registries: expected a map of registry host to "
                              "{Username, Password}")
        client = await asyncio.to_thread(shared.docker_client)
        if client is not None:
            self._docker = DockerExecutor(
                self.node_id, client=client, registries=registries,
                stop_timeout=self.config.duration(docker_cfg + "StopTimeout"),
                http=HTTPSettings.from_config(self.config))

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
        self._group_commit(store.db)
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
        run_file = self.data_dir / RUN_FILE
        with contextlib.suppress(FileNotFoundError):
            run_file.unlink()  # a stale one (kill -9) must not be mistaken for this run
        await self.transport.start()
        if self.is_compute:
            await self._probe_host()
            await self._start_ipfs()
            self._build_compute()
            await self.local_publisher.start()
            await self.compute.start()
        if self.is_requester:
            self._build_requester()
            await self.requester.start()
        await self._start_metrics()
        if self.is_requester:
            await self._start_api()
        if self.p2p is not None:
            from bacalhau.transport.listen import remember

            remember(self.data_dir, self.p2p.listen_addrs())
        self.write_run_file()
        log.info("node %s started (requester=%s compute=%s)", self.node_id,
                 self.is_requester, self.is_compute)

    async def _start_ipfs(self) -> None:
        from bacalhau.ipfs.wiring import embedded_enabled, embedded_node

        if embedded_enabled(self.config):
            self.ipfs = embedded_node(self.config)
            await self.ipfs.start()

    # -- network ------------------------------------------------------------------------------

    def addresses(self) -> list[str]:
        """Dialable addresses (`<multiaddr>/p2p/<peer id>`); empty on the in-process medium."""
        return self.p2p.addresses() if self.p2p is not None else []

    def run_info(self) -> dict[str, str]:
        """What `<DataDir>/bacalhau.run` holds, as environment variables."""
        info = {"BACALHAU_NODE_ID": self.node_id,
                "BACALHAU_NODE_TYPE": ",".join(self.roles()),
                "BACALHAU_NODE_PID": str(os.getpid())}
        if self.api_url:
            host, _, port = self.api_url.split("://", 1)[-1].rpartition(":")
            info["BACALHAU_API_HOST"] = host
            info["BACALHAU_API_PORT"] = port
            if self.api_url.startswith("https://"):
                info["BACALHAU_API_TLS_USETLS"] = "true"
                if not self.config.get("API.TLS.CertFile"):  # self-signed: clients may trust it
                    info["BACALHAU_API_TLS_CAFILE"] = str(self.data_dir / "tls" / "api.crt")
        if self.addresses():
            info["BACALHAU_NETWORK_PEERS"] = ",".join(self.addresses())
        if self.ipfs is not None and self.ipfs.addresses:
            info["BACALHAU_IPFS_SWARM_ADDRESSES"] = ",".join(self.ipfs.addresses)
        return info

    def _group_commit(self, db: Any) -> None:
        """`Store.GroupCommit` (default on): one commit per event-loop turn, or per several
        turns of a busy loop within `Store.GroupCommitMaxDelay`; writes nothing waits on
        ride on the next commit within `Store.GroupCommitLazyDelay` (issue 15)."""
        if self.config.get("Store.GroupCommit", True):
            db.enable_group_commit(
                int(self.config.get("Store.GroupCommitMaxItems", 256)),
                parse_duration(self.config.get("Store.GroupCommitMaxDelay", "2ms"),
                               "Store.GroupCommitMaxDelay"),
                parse_duration(self.config.get("Store.GroupCommitLazyDelay", "50ms"),
                               "Store.GroupCommitLazyDelay"))

    def roles(self) -> list[str]:
        return [r for r, on in (("orchestrator", self.is_requester),
                                ("compute", self.is_compute)) if on]

    def write_run_file(self) -> Path:
        path = self.data_dir / RUN_FILE
        lines = ["# written by a running bacalhau node; `source` it to reach this node",
                 *(f"export {k}={shlex.quote(v)}" for k, v in self.run_info().items())]
        tmp = path.with_name(f".{RUN_FILE}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
        return path

    async def _start_metrics(self) -> None:
        """The node's metrics (bacalhau.metrics), served by the API and, with
        `Metrics.Listen`, on their own address."""
        from bacalhau.metrics import NodeMetrics
        from bacalhau.metrics.http import start_metrics_site
        from bacalhau.version import build_version_info

        self.metrics = NodeMetrics(self.node_id, requester=self.requester, compute=self.compute,
                                   transport=self.p2p,
                                   version=str(build_version_info().get("GitVersion", "")))
        self._metrics_runner, self.metrics_url = await start_metrics_site(self.metrics,
                                                                          self.config)

    async def _start_api(self) -> None:
        from bacalhau.api.app import create_app, start_api
        from bacalhau.api.auth import warn_if_exposed
        from bacalhau.api.limits import server_ssl_context
        app = create_app(self.requester, node_info_provider=self.node_info, config=self.config,
                         metrics=self.metrics)
        host = str(self.config.get("API.Host"))
        port = int(self.config.get("API.Port"))
        ssl_context = server_ssl_context(self.config)
        warn_if_exposed(self.config)
        self._api_runner, bound = await start_api(app, host, port, ssl_context=ssl_context)
        self.api_url = f"{'https' if ssl_context else 'http'}://{host}:{bound}"
        if self.requester is not None:
            from bacalhau.webui import start_webui_site, webui_enabled

            if webui_enabled(self.config):
                own_site = await start_webui_site(self._api_runner, self.config)
                self.webui_url = own_site or f"{self.api_url}/ui/"

    async def stop(self) -> None:
        if self._api_runner is not None:
            with contextlib.suppress(Exception):
                await self._api_runner.cleanup()
        if self._metrics_runner is not None:
            with contextlib.suppress(Exception):
                await self._metrics_runner.cleanup()
        if self.metrics is not None:
            self.metrics.close()
        if self.requester is not None:
            await self.requester.stop()
        if self.compute is not None:
            await self.compute.stop()
        if self.local_publisher is not None:
            await self.local_publisher.stop()
        for client in self._ipfs_clients:
            await client.close()
        if self.ipfs is not None:
            await self.ipfs.stop()
        await self.transport.close()
        for store in reversed(self._stores):
            with contextlib.suppress(Exception):
                store.close()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / RUN_FILE).unlink()


async def wait_for_shutdown() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def freeze_startup_heap() -> None:
    """Take what start-up made (modules, classes, the config, the node's parts: ~50,000
    objects that live as long as the process) out of the cyclic garbage collector's view.
    A full collection walked all of it each time, 15-25 ms here: a pause in the middle of
    whatever job ran then, and the jobs in the tail of the latency figures. Objects made later
    are collected as before; frozen ones are still freed when their last reference goes."""
    gc.collect()
    gc.freeze()


async def run_node(config: Config) -> None:
    """`bacalhau serve`: run one node until SIGINT/SIGTERM."""
    kind = transport_kind(config)
    network = None
    if kind == TRANSPORT_INPROCESS:
        if not (config.get("Compute.Enabled") and config.get("Orchestrator.Enabled")):
            raise ConfigError(
                "Network.Transport=inprocess cannot reach other processes: only a hybrid "
                "node (--orchestrator --compute) runs alone on it; use libp2p")
        network = InProcessNetwork()
    if (config.get("Compute.Enabled") and not config.get("Orchestrator.Enabled")
            and not config_list(config, "Network.Peers")):
        log.warning("a compute-only node without Network.Peers (--peers) waits for an "
                    "orchestrator to dial it")
    node = Node(config, network)
    # before the node announces itself: SIGUSR1's default action would end the process
    install_counter_dump(node.data_dir, node.transport)  # SIGUSR1: counters.json (bench)
    await node.start()
    freeze_startup_heap()
    print(f"bacalhau node {node.node_id} ({' + '.join(node.roles())}) is running", flush=True)
    for address in node.addresses():
        print(f"Peer address: {address}", flush=True)
    if node.addresses() and node.is_requester:
        print(f"Join it: bacalhau serve --compute --peers {node.addresses()[0]}", flush=True)
    for name, value in node.run_info().items():  # HTTPS: how a client reaches the API
        if name.startswith("BACALHAU_API_TLS_"):
            print(f"export {name}={value}", flush=True)
    if node.api_url:
        host, _, port = node.api_url.split("://", 1)[-1].rpartition(":")
        print(f"API: {node.api_url}\nexport BACALHAU_API_HOST={host}\n"
              f"export BACALHAU_API_PORT={port}", flush=True)
    if node.webui_url:
        print(f"Web UI: {node.webui_url}", flush=True)
    if node.metrics_url:
        print(f"Metrics: {node.metrics_url}", flush=True)
    print(f"Run file: {node.data_dir / RUN_FILE}", flush=True)
    try:
        await wait_for_shutdown()
    finally:
        await node.stop()


__all__ = ["NODE_TYPE_COMPUTE", "RUN_FILE", "HybridTransport", "Node", "config_list",
           "node_identity", "read_run_file", "run_node", "wait_for_shutdown"]


def read_run_file(data_dir: Path) -> dict[str, str] | None:
    """The variables of a node's `bacalhau.run` (None while there is none)."""
    try:
        text = (Path(data_dir) / RUN_FILE).read_text()
    except FileNotFoundError:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            parts = shlex.split(value)
            out[key] = parts[0] if parts else ""
    return out
