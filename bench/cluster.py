"""A real network for the end-to-end scenarios: 1 requester and N compute nodes, each its own
`bacalhau serve` process on 127.0.0.1 over libp2p (started the way `bacalhau devstack
--processes` starts them), plus the /proc readings the scenarios need (CPU seconds, RSS)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.harness import free_port

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Cluster:
    api_url: str
    pids: dict[str, int]  # node name -> pid of its `bacalhau serve` process
    base_dir: Path

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every node process so far."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[str, float]:
        """User + system CPU seconds so far, per node process."""
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14..17
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_for(condition: Callable[[], T], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Polls `condition` until it returns a truthy value; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(interval)  # poll interval of a deadline-bounded wait
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} ({last})")


@contextmanager
def cluster(base_dir: Path, computes: int, overrides: list[str] | None = None) -> Iterator[Cluster]:
    """1 requester + `computes` compute nodes, separate processes over libp2p; yields once
    every compute node is CONNECTED at the requester; stops them all on exit."""
    from bacalhau.config import load_config
    from bacalhau.devstack import start_devstack_processes, stop_processes

    port = free_port()
    config = load_config(base_dir, [f"API.Port={port}", "API.Host=127.0.0.1",
                                    "Compute.Heartbeat.Interval=1s"])
    os.environ["LOG_LEVEL"] = "warning"  # the children inherit it (as `--log-level warning`)
    # The scenarios measure the job path, not the API's per-client rate limit (1000 requests/s
    # by default: one load generator submitting and polling at C=32 goes past it).
    overrides = ["API.RateLimit.RequestsPerSecond=0", *(overrides or [])]
    children = asyncio.run(start_devstack_processes(
        config, computes=computes, orchestrators=1, base_dir=base_dir, overrides=overrides))
    try:
        url = children[0].api_url

        def connected() -> bool:
            nodes = get_json(f"{url}/api/v1/orchestrator/nodes")["Nodes"]
            return sum(1 for n in nodes if n["Info"]["NodeType"] == "Compute"
                       and n["ConnectionState"]["Status"] == "CONNECTED") >= computes

        wait_for(connected, 60, f"{computes} compute nodes to connect")
        yield Cluster(url, {c.name: c.proc.pid for c in children}, base_dir)
    finally:
        asyncio.run(stop_processes(children))
