"""`bacalhau devstack`: a whole local network — orchestrators, compute nodes and hybrids, each
with its own data dir, identity and ports.

Transports (`Network.Transport`, `--transport`):
- `libp2p` (default): every node has its own libp2p host on 127.0.0.1 (a free port each);
  each node dials the requesters started before it (compute nodes learn of every requester
  from their hellos and never dial each other). With `processes=True` every node is a
  `bacalhau serve` child process of its own; with `compute_processes=P` the requesters are
  `serve` processes and the compute nodes are spread over P worker processes, each a
  devstack of compute nodes only that joins them (`--join`): a thousand nodes fit on a
  small machine because the nodes of a process share the network runtime, the event thread,
  the WASM engine and the Docker client.
- `inprocess`: every node in this process on one in-process medium (no sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.node import (
    TRANSPORT_INPROCESS,
    TRANSPORT_LIBP2P,
    Node,
    config_list,
    read_run_file,
    transport_kind,
    wait_for_shutdown,
)
from bacalhau.transport import InProcessNetwork

log = logging.getLogger(__name__)

LOOPBACK_LISTEN = "/ip4/127.0.0.1/tcp/0"
CHILD_START_TIMEOUT = 60.0
START_BATCH = 16
"""Nodes of one process started at once (their starts wait mostly on I/O)."""


def node_config(base: Config, data_dir: Path, *, orchestrator: bool, compute: bool,
                api_port: int, peers: list[str] | None = None) -> Config:
    """A copy of the devstack config for one node: own data dir and API port; local
    publishers pick a free port so that any number of compute nodes fit on one host; on
    libp2p a free loopback port and the given peers to join."""
    cfg = base.copy()
    cfg.set("DataDir", str(data_dir))
    cfg.set("Orchestrator.Enabled", orchestrator)
    cfg.set("Compute.Enabled", compute)
    cfg.set("API.Port", api_port)
    cfg.set("Publishers.Types.Local.Port", 0)
    cfg.set("Network.Listen", [LOOPBACK_LISTEN])
    cfg.set("Network.Peers", list(peers or []))
    return cfg


def _plan(orchestrators: int, hybrids: int, computes: int,
          first_compute: int = 0) -> list[tuple[str, bool, bool]]:
    """(name, orchestrator, compute) in start order: requesters first, so that they hear
    every compute node join. Compute nodes are numbered from `first_compute`."""
    return ([(f"orchestrator-{i}", True, False) for i in range(orchestrators)]
            + [(f"hybrid-{i}", True, True) for i in range(hybrids)]
            + [(f"compute-{i}", False, True)
               for i in range(first_compute, first_compute + computes)])


async def start_devstack(config: Config, *, computes: int = 3, orchestrators: int = 1,
                         hybrids: int = 0, base_dir: Path, join: list[str] | None = None,
                         first_compute: int = 0) -> list[Node]:
    """Start the nodes in this process (requesters first, one by one; then the compute nodes,
    START_BATCH at a time). `join`: addresses of requesters running elsewhere, which every
    node of this devstack joins. The compute nodes share one WASM module cache
    (`<base_dir>/cache/wasm`) unless `Engines.Types.WASM.CacheDir` says otherwise."""
    kind = transport_kind(config)
    network = InProcessNetwork() if kind == TRANSPORT_INPROCESS else None
    api_port = int(config.get("API.Port"))
    nodes: list[Node] = []
    requester_addrs: list[str] = list(join or [])
    ipfs_addrs: list[str] = []  # embedded IPFS nodes (IPFS.Embedded.Enabled) peer up too
    next_port = api_port
    shared_cache = config.get("Engines.Types.WASM.CacheDir") or str(base_dir / "cache" / "wasm")
    plan = _plan(orchestrators, hybrids, computes, first_compute)
    embedded_ipfs = bool(config.get("IPFS.Embedded.Enabled"))

    def configure(name: str, is_orch: bool, is_compute: bool) -> Config:
        cfg = node_config(config, base_dir / name, orchestrator=is_orch, compute=is_compute,
                          api_port=next_port, peers=requester_addrs)
        cfg.set("IPFS.Embedded.Peers", [*config_list(cfg, "IPFS.Embedded.Peers"), *ipfs_addrs])
        cfg.set("Engines.Types.WASM.CacheDir", shared_cache)
        return cfg

    async def start(cfg: Config) -> Node:
        node = Node(cfg, network)
        try:
            await node.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await node.stop()
            raise
        nodes.append(node)
        return node

    try:
        # requesters (and, with embedded IPFS, every node) one by one: later nodes need the
        # addresses of the earlier ones
        serial = [p for p in plan if p[1] or embedded_ipfs]
        for name, is_orch, is_compute in serial:
            node = await start(configure(name, is_orch, is_compute))
            if is_orch:
                next_port += 1
            if node.ipfs is not None:
                ipfs_addrs = [*ipfs_addrs, *node.ipfs.addresses]
            if is_orch and kind == TRANSPORT_LIBP2P:
                requester_addrs = [*requester_addrs, *node.addresses()]
        rest = [p for p in plan if p not in serial]
        for i in range(0, len(rest), START_BATCH):
            batch = [configure(*p) for p in rest[i:i + START_BATCH]]
            results = await asyncio.gather(*(start(cfg) for cfg in batch),
                                           return_exceptions=True)
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            if failure is not None:
                raise failure
    except BaseException:
        for node in reversed(nodes):
            await node.stop()
        raise
    order = {name: i for i, (name, _, _) in enumerate(plan)}
    nodes.sort(key=lambda n: order.get(n.data_dir.name, len(order)))
    return nodes


@dataclass
class ChildNode:
    """A devstack node running as its own `bacalhau serve` process."""

    name: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    info: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        host, port = self.info.get("BACALHAU_API_HOST"), self.info.get("BACALHAU_API_PORT")
        return f"http://{host}:{port}" if host and port else ""

    @property
    def node_id(self) -> str:
        return self.info.get("BACALHAU_NODE_ID", "")

    def addresses(self) -> list[str]:
        peers = self.info.get("BACALHAU_NETWORK_PEERS", "")
        return [p for p in peers.split(",") if p]


def _child_env() -> dict[str, str]:
    """The children get their settings as flags; none of the parent's API/data-dir env."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("BACALHAU_") and name not in ("BACALHAU_LOG_LEVEL",):
            del env[name]
    return env


async def _wait_for_run_file(child: ChildNode, timeout: float) -> dict[str, str]:
    """The child's `bacalhau.run` once written; its exit or the deadline raise. Polled: the
    file is the only signal a child gives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = read_run_file(child.data_dir)
        if info and info.get("BACALHAU_NODE_PID") == str(child.proc.pid):
            return info
        if child.proc.poll() is not None:
            raise ConfigError(f"devstack node {child.name} exited with {child.proc.returncode}; "
                              f"see {child.data_dir / 'serve.log'}")
        if loop.time() > deadline:
            raise ConfigError(f"devstack node {child.name} did not start within {timeout:g}s; "
                              f"see {child.data_dir / 'serve.log'}")
        await asyncio.sleep(0.05)  # poll interval of a deadline-bounded wait


_FORWARDED_KEYS = ("Network.SwarmKeyPath", "Network.AllowList", "Network.MaxPeers",
                   "Compute.AllowListedLocalPaths", "Compute.Heartbeat.Interval",
                   "Orchestrator.NodeManager.DisconnectTimeout",
                   "Orchestrator.NodeManager.ManualApproval", "IPFS.Embedded.Enabled",
                   "IPFS.Embedded.SwarmKeyPath")
"""Devstack settings every child process gets as `-c` values."""


def _forwarded(config: Config) -> list[str]:
    args: list[str] = []
    for key in _FORWARDED_KEYS:
        value = config.get(key)
        if value not in (None, "", []):
            args += ["-c", f"{key}={json.dumps(value)}"]
    return args


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_child_env(),
                                start_new_session=True)


def _split_counts(total: int, parts: int) -> list[int]:
    """`total` nodes over `parts` processes, as even as can be (the first ones get one more)."""
    parts = max(1, min(parts, total)) if total else 0
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def start_devstack_processes(config: Config, *, computes: int = 3, orchestrators: int = 1,
                                   hybrids: int = 0, base_dir: Path,
                                   overrides: list[str] | None = None,
                                   compute_processes: int = 0) -> list[ChildNode]:
    """Child processes over libp2p: one `bacalhau serve` per requester and hybrid (each joins
    the requesters started before it), then either one `serve` per compute node or, with
    `compute_processes=P`, P devstack worker processes holding the compute nodes between
    them (`bacalhau devstack --orchestrators 0 --join ...`). `overrides` are extra `-c` values
    for every child. A compute node in a worker is listed as a ChildNode of its worker's
    process (its own data dir, run file and identity)."""
    if transport_kind(config) != TRANSPORT_LIBP2P:
        raise ConfigError("devstack --processes needs the libp2p transport")
    api_port = int(config.get("API.Port"))
    host = str(config.get("API.Host"))
    children: list[ChildNode] = []
    requester_addrs: list[str] = []
    ipfs_addrs: list[str] = []
    next_port = api_port
    extra = [arg for item in overrides or [] for arg in ("-c", item)]
    serve_computes = 0 if compute_processes else computes
    try:
        for name, is_orch, is_compute in _plan(orchestrators, hybrids, serve_computes):
            data_dir = base_dir / name
            data_dir.mkdir(parents=True, exist_ok=True)
            roles = [flag for flag, on in (("--orchestrator", is_orch),
                                           ("--compute", is_compute)) if on]
            cmd = [sys.executable, "-m", "bacalhau", "--data-dir", str(data_dir), "serve", *roles,
                   "--listen", LOOPBACK_LISTEN,
                   "-c", f"API.Host={host}", "-c", f"API.Port={next_port}",
                   "-c", "Publishers.Types.Local.Port=0", *_forwarded(config)]
            if requester_addrs:
                cmd += ["--peers", ",".join(requester_addrs)]
            if ipfs_addrs:
                cmd += ["-c", f"IPFS.Embedded.Peers={json.dumps(ipfs_addrs)}"]
            cmd += extra
            if is_orch:
                next_port += 1
            child = ChildNode(name, data_dir, _spawn(cmd, data_dir / "serve.log"))
            children.append(child)
            child.info = await _wait_for_run_file(child, CHILD_START_TIMEOUT)
            if is_orch:
                requester_addrs = [*requester_addrs, *child.addresses()]
            ipfs_addrs += [a for a in child.info.get("BACALHAU_IPFS_SWARM_ADDRESSES",
                                                     "").split(",") if a]
        first = 0
        workers: list[tuple[subprocess.Popen[bytes], int, int]] = []
        for index, count in enumerate(_split_counts(computes if compute_processes else 0,
                                                    compute_processes)):
            cmd = [sys.executable, "-m", "bacalhau", "devstack", "--orchestrators", "0",
                   "--computes", str(count), "--first-compute", str(first),
                   "--join", ",".join(requester_addrs), "--stack-repo", str(base_dir),
                   *_forwarded(config), *extra]
            proc = _spawn(cmd, base_dir / f"compute-worker-{index}.log")
            workers.append((proc, first, count))
            first += count
        for proc, first, count in workers:
            for i in range(first, first + count):
                child = ChildNode(f"compute-{i}", base_dir / f"compute-{i}", proc)
                children.append(child)
                child.info = await _wait_for_run_file(child, CHILD_START_TIMEOUT)
    except BaseException:
        await stop_processes(children)
        raise
    return children


async def stop_processes(children: list[ChildNode], timeout: float = 20.0) -> None:
    """SIGTERM every child process (once, however many nodes it holds), then wait (SIGKILL
    after `timeout`)."""
    procs = list({child.proc.pid: child.proc for child in children}.values())
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


def _print_ready(count: int, api_urls: list[str]) -> None:
    print(f"Devstack is ready: {count} nodes ({len(api_urls)} with an API)", flush=True)
    for i, url in enumerate(api_urls):
        host, _, port = url.split("://", 1)[-1].rpartition(":")
        suffix = "" if i == 0 else f"_{i}"
        print(f"export BACALHAU_API_HOST{suffix}={host}\n"
              f"export BACALHAU_API_PORT{suffix}={port}", flush=True)


async def run_devstack(config: Config, *, computes: int = 3, orchestrators: int = 1,
                       hybrids: int = 0, base_dir: Path, processes: bool = False,
                       compute_processes: int = 0, join: list[str] | None = None,
                       first_compute: int = 0) -> None:
    """Run a devstack until SIGINT/SIGTERM, printing how to reach each requester."""
    if processes or compute_processes:
        # A signal during start-up cancels it, and the start-up stops the children it made
        # (they run in sessions of their own and would otherwise outlive this process).
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            if main is not None:
                loop.add_signal_handler(sig, main.cancel)
        try:
            children = await start_devstack_processes(
                config, computes=computes, orchestrators=orchestrators, hybrids=hybrids,
                base_dir=base_dir, compute_processes=compute_processes)
        except asyncio.CancelledError:
            print("Devstack stopped during start-up", flush=True)
            return
        try:
            for child in children:
                print(f"{child.name}: {child.node_id} pid {child.proc.pid} "
                      f"{' '.join(child.addresses())}", flush=True)
            _print_ready(len(children), [c.api_url for c in children if c.api_url])
            await wait_for_shutdown()
        finally:
            await stop_processes(children)
        return
    nodes = await start_devstack(config, computes=computes, orchestrators=orchestrators,
                                 hybrids=hybrids, base_dir=base_dir, join=join,
                                 first_compute=first_compute)
    try:
        for node, (name, _, _) in zip(nodes, _plan(orchestrators, hybrids, computes,
                                                   first_compute), strict=True):
            print(f"{name}: {node.node_id} {' '.join(node.addresses())}".rstrip(), flush=True)
        _print_ready(len(nodes), [n.api_url for n in nodes if n.api_url])
        await wait_for_shutdown()
    finally:
        for node in reversed(nodes):
            await node.stop()
