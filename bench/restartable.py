"""A network whose processes the crash scenario kills and starts again: 1 requester and N
compute nodes, each its own `bacalhau serve` process on 127.0.0.1 over libp2p, started with
the same command line every time (same data dir, same config, and a fixed libp2p port for the
requester, so that the compute nodes redial it where it was).

`kill9(name)` sends SIGKILL and reaps the process; `start(name)` runs the same command again
and waits until the node has written its run file (and, for the requester, answers
/api/v1/agent/alive)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bacalhau.node import read_run_file
from bench.cluster import Cluster, wait_for
from bench.harness import free_port

REQUESTER = "requester"


@dataclass
class Proc:
    """One `bacalhau serve` process that can be killed and started again."""

    name: str
    data_dir: Path
    cmd: list[str]
    api_url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    start_s: list[float] = field(default_factory=list)  # seconds each start took

    def run_info(self) -> dict[str, str]:
        """The variables of this process's `bacalhau.run` ({} until this very process wrote it)."""
        info = read_run_file(self.data_dir) or {}
        if self.proc is None or info.get("BACALHAU_NODE_PID") != str(self.proc.pid):
            return {}
        return info

    def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} still runs"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("BACALHAU_") or k == "BACALHAU_LOG_LEVEL"}
        env["LOG_LEVEL"] = "warning"
        with open(self.data_dir / "serve.log", "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        t0 = time.monotonic()
        wait_for(self._started, timeout, f"{self.name} to start (see "
                                         f"{self.data_dir / 'serve.log'})", interval=0.05)
        self.start_s.append(time.monotonic() - t0)

    def _started(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see "
                               f"{self.data_dir / 'serve.log'}")
        if not self.run_info():
            return False
        if not self.api_url:
            return True
        with urllib.request.urlopen(f"{self.api_url}/api/v1/agent/alive", timeout=2) as resp:
            return resp.status == 200

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Network:
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def requester(self) -> Proc:
        return self.procs[REQUESTER]

    @property
    def api_url(self) -> str:
        return self.requester.api_url

    def cluster(self, base_dir: Path) -> Cluster:
        """The running processes as a bench Cluster (pids as of now)."""
        return Cluster(self.api_url, {n: p.proc.pid for n, p in self.procs.items() if p.proc},
                       base_dir)

    def connected_computes(self) -> int:
        with urllib.request.urlopen(f"{self.api_url}/api/v1/orchestrator/nodes",
                                    timeout=5) as resp:
            nodes = json.loads(resp.read())["Nodes"]
        return sum(1 for n in nodes if n["Info"]["NodeType"] == "Compute"
                   and n["ConnectionState"]["Status"] == "CONNECTED")

    def wait_connected(self, timeout: float = 60.0) -> None:
        want = len(self.procs) - 1
        wait_for(lambda: self.connected_computes() >= want, timeout,
                 f"{want} compute nodes to be CONNECTED")


@contextmanager
def network(base_dir: Path, computes: int, overrides: list[str] | None = None
            ) -> Iterator[Network]:
    """1 requester (API and libp2p on fixed loopback ports) + `computes` compute nodes that
    join it by its address; yields once every compute node is CONNECTED; stops all on exit."""
    common = ["-c", "API.RateLimit.RequestsPerSecond=0", "-c", "Compute.Heartbeat.Interval=1s",
              "-c", "Publishers.Types.Local.Port=0"]
    for item in overrides or []:
        common += ["-c", item]
    api_port, p2p_port = free_port(), free_port()
    req_dir = base_dir / REQUESTER
    net = Network()
    net.procs[REQUESTER] = Proc(
        REQUESTER, req_dir,
        [sys.executable, "-m", "bacalhau", "--data-dir", str(req_dir), "serve",
         "--orchestrator", "--listen", f"/ip4/127.0.0.1/tcp/{p2p_port}",
         "-c", "API.Host=127.0.0.1", "-c", f"API.Port={api_port}", *common],
        api_url=f"http://127.0.0.1:{api_port}")
    try:
        net.requester.start()
        peers = net.requester.run_info().get("BACALHAU_NETWORK_PEERS", "")
        if not peers:
            raise RuntimeError("the requester's run file names no libp2p address")
        for i in range(computes):
            name = f"compute-{i}"
            data_dir = base_dir / name
            net.procs[name] = Proc(name, data_dir, [
                sys.executable, "-m", "bacalhau", "--data-dir", str(data_dir), "serve",
                "--compute", "--listen", "/ip4/127.0.0.1/tcp/0", "--peers", peers, *common])
            net.procs[name].start()
        net.wait_connected()
        yield net
    finally:
        for proc in reversed(list(net.procs.values())):
            proc.stop()

