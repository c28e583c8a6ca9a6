"""`python -m bench scale [--nodes 100,300,1000] [--compute-processes 8]`: what one node costs
as the network grows (issue 14), measured from outside real processes.

For each N a `bacalhau devstack --computes N --compute-processes P` (one requester as a
`bacalhau serve` process, the compute nodes spread over P worker processes) is launched and
measured:

- launch -> every compute node CONNECTED at the requester (its node list);
- an idle window (default 300 s; `--idle`): CPU of every process of the network, in cores
  (/proc); per compute node the established TCP connections of the worker processes, their
  bytes/s in and out (all protocols: heartbeats, NodeInfo, hellos, ping, noise and yamux
  framing; from `ss -ti`), and the workers' RSS; the requester's CPU per heartbeat received;
  false disconnects (a node seen DISCONNECTED, or whose ConnectedSince moved, while all were
  alive);
- `GET /nodes` (all N, raw bytes, p50 of 20);
- a `--target all` WASM job: submit -> Completed with one completed execution per node;
- a Count=1 WASM job, 20 one after the other: p50 of submit -> Completed (server clock).
After the largest N, one worker is killed (-9) while a batch job runs partitions on its
nodes: time until all its nodes are DISCONNECTED, whether every other node stayed CONNECTED,
and whether the job completed with the lost partitions run elsewhere.

Baselines are measured in the same run: per-node figures against N = the smallest size, the
Count=1 p50 against a network of 2 compute nodes. The issue's absolute bounds (60 s, 0.5
core, 12 MB, 30 s, 50 ms) appear as "bound" rows. Writes scale.json, scale.png (per-node cost
against N) and prints the table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import harness, report

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.jobspecs import wordcount_job  # noqa: E402 - the shipped job specs of the tests

TERMINAL = ("Completed", "Failed", "Stopped")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    fields = _proc_stat(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


_SS_PID = re.compile(r"pid=(\d+)")
_SS_BYTES = re.compile(r"bytes_(sent|received):(\d+)")


def tcp_by_pid(pids: set[int]) -> dict[int, dict[str, int]]:
    """Established TCP connections per process: count and bytes sent/received (`ss -ti`)."""
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True,
                         text=True, check=False).stdout
    stats: dict[int, dict[str, int]] = {p: {"connections": 0, "sent": 0, "received": 0}
                                         for p in pids}
    owner: int | None = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):  # a socket line: whose is it?
            found = [int(p) for p in _SS_PID.findall(line)]
            owner = next((p for p in found if p in pids), None)
            if owner is not None:
                stats[owner]["connections"] += 1
            continue
        if owner is not None:
            for kind, value in _SS_BYTES.findall(line):
                stats[owner][kind] += int(value)
    return stats


@dataclass
class Network:
    """One devstack: a requester process and compute worker processes."""

    base: Path
    computes: int
    processes: int
    heartbeat: str
    disconnect_timeout: str
    port: int = field(default_factory=harness.free_port)
    proc: subprocess.Popen[bytes] | None = None
    launched_at: float = 0.0

    def start(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        self.launched_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bacalhau", "devstack", "--computes", str(self.computes),
             "--compute-processes", str(self.processes), "--stack-repo", str(self.base),
             "-c", f"API.Port={self.port}", "-c", "API.RateLimit.RequestsPerSecond=0",
             "-c", f"Compute.Heartbeat.Interval={self.heartbeat}",
             "-c", f"Orchestrator.NodeManager.DisconnectTimeout={self.disconnect_timeout}",
             "--log-level", "warning"],
            stdout=open(self.base / "devstack.log", "wb"),  # noqa: SIM115 - the child's
            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pid in self.worker_pids() | {self.requester_pid()}:
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def api(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as answer:
            payload = answer.read()
        return payload if raw else json.loads(payload)

    def nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.api("GET", "/api/v1/orchestrator/nodes")["Nodes"]
                if n["Info"]["NodeType"] == "Compute"]

    def _run_info(self, name: str) -> dict[str, str]:
        info: dict[str, str] = {}
        try:
            text = (self.base / name / "bacalhau.run").read_text()
        except OSError:
            return info
        for line in text.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[7:].partition("=")
                info[key] = value.strip("'")
        return info

    def requester_pid(self) -> int:
        return int(self._run_info("orchestrator-0").get("BACALHAU_NODE_PID") or 0)

    def worker_of(self) -> dict[str, int]:
        """compute node id -> pid of its worker process."""
        out = {}
        for i in range(self.computes):
            info = self._run_info(f"compute-{i}")
            if info.get("BACALHAU_NODE_ID"):
                out[info["BACALHAU_NODE_ID"]] = int(info["BACALHAU_NODE_PID"])
        return out

    def worker_pids(self) -> set[int]:
        return set(self.worker_of().values())

    def wait_connected(self, timeout: float) -> float:
        """Seconds from launch until the requester lists every compute node CONNECTED."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"devstack exited: see {self.base / 'devstack.log'}")
            try:
                nodes = self.nodes()
            except OSError:
                nodes = []
            if sum(n["ConnectionState"]["Status"] == "CONNECTED" for n in nodes) >= self.computes:
                return time.monotonic() - self.launched_at
            time.sleep(0.25)  # poll of a deadline-bounded wait
        raise SystemExit(f"{self.computes} nodes not all CONNECTED within {timeout:g}s")

    def run_job(self, job: dict[str, Any], timeout: float = 300) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        job_id = self.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})["JobID"]
        while time.monotonic() - started < timeout:
            doc = self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]
            if doc["State"]["StateType"] in TERMINAL:
                return doc, time.monotonic() - started
            time.sleep(0.05)  # poll of a deadline-bounded wait
        raise SystemExit(f"job {job_id} did not finish within {timeout:g}s")

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")["Items"]


def _count1_p50(net: Network, jobs: int) -> float:
    """p50 of submit -> Completed on the server clock (job CreateTime -> ModifyTime), ms."""
    samples = []
    for i in range(jobs):
        doc, _ = net.run_job(wordcount_job(f"job {i}\n"))
        samples.append((doc["ModifyTime"] - doc["CreateTime"]) / 1e6)
    return statistics.median(samples)


def _idle(net: Network, seconds: float, heartbeat_s: float) -> dict[str, Any]:
    """The idle window's figures (see the module doc)."""
    requester = net.requester_pid()
    workers = net.worker_pids()
    pids = workers | {requester}
    before_nodes = {n["Info"]["NodeID"]: n["ConnectionState"].get("ConnectedSince")
                    for n in net.nodes()}
    cpu0 = {p: cpu_seconds(p) for p in pids}
    tcp0 = tcp_by_pid(workers)
    t0 = time.monotonic()
    seen_down: set[str] = set()
    while time.monotonic() - t0 < seconds:
        time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - t0))))  # sampling period
        for n in net.nodes():
            if n["ConnectionState"]["Status"] != "CONNECTED":
                seen_down.add(n["Info"]["NodeID"])
    elapsed = time.monotonic() - t0
    cpu1 = {p: cpu_seconds(p) for p in pids}
    tcp1 = tcp_by_pid(workers)
    after = {n["Info"]["NodeID"]: n["ConnectionState"].get("ConnectedSince")
             for n in net.nodes()}
    moved = {nid for nid, since in after.items() if before_nodes.get(nid) != since}
    n = net.computes
    worker_bytes = sum(tcp1[p]["sent"] + tcp1[p]["received"] - tcp0[p]["sent"]
                       - tcp0[p]["received"] for p in workers)
    connections = sum(tcp1[p]["connections"] for p in workers)
    requester_cpu = cpu1[requester] - cpu0[requester]
    heartbeats = n * elapsed / heartbeat_s
    return {
        "seconds": elapsed,
        "idle_cores": sum(cpu1[p] - cpu0[p] for p in pids) / elapsed,
        "requester_cores": requester_cpu / elapsed,
        "requester_cpu_per_heartbeat_us": requester_cpu / heartbeats * 1e6,
        "connections_per_node": connections / n,
        "bytes_per_s_per_node": worker_bytes / elapsed / n,
        "rss_mb_per_node": sum(rss_mb(p) for p in workers) / n,
        "worker_rss_mb": {str(p): rss_mb(p) for p in workers},
        "requester_rss_mb": rss_mb(requester),
        "false_disconnects": len(seen_down | moved),
    }


def _nodes_ms(net: Network, rounds: int = 20) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        net.api("GET", "/api/v1/orchestrator/nodes", raw=True)
        samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def _target_all(net: Network) -> dict[str, Any]:
    job = wordcount_job("everywhere\n", extra={"Type": "ops"})
    job.pop("Count", None)
    doc, took = net.run_job(job)
    execs = net.executions(doc["ID"])
    return {"seconds": took, "state": doc["State"]["StateType"],
            "completed": sum(e["ComputeState"]["StateType"] == 9 for e in execs),
            "executions": len(execs)}


def _kill_worker(net: Network, disconnect_s: float, heartbeat_s: float) -> dict[str, Any]:
    """kill -9 one worker while a batch job runs partitions on every worker's nodes."""
    sleep = wordcount_job(module="sleep.wasm", params=[str(int(disconnect_s * 1000 + 5000))],
                          extra={"Count": min(net.computes, 40)})
    sleep["Tasks"][0]["InputSources"] = sleep["Tasks"][0]["InputSources"][:1]
    job_id = net.api("PUT", "/api/v1/orchestrator/jobs", {"Job": sleep})["JobID"]
    worker_of = net.worker_of()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [e for e in net.executions(job_id) if e["ComputeState"]["StateType"] == 5]
        if len(running) >= sleep["Count"]:
            break
        time.sleep(0.2)  # poll of a deadline-bounded wait
    victim = worker_of[running[0]["NodeID"]]
    doomed = {nid for nid, pid in worker_of.items() if pid == victim}
    lost_partitions = sum(e["NodeID"] in doomed for e in running)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    down_at: dict[str, float] = {}
    others_down: set[str] = set()
    while len(down_at) < len(doomed) and time.monotonic() - killed < disconnect_s * 3 + 60:
        for n in net.nodes():
            nid = n["Info"]["NodeID"]
            if n["ConnectionState"]["Status"] != "CONNECTED":
                if nid in doomed:
                    down_at.setdefault(nid, time.monotonic() - killed)
                else:
                    others_down.add(nid)
        time.sleep(0.2)  # poll of a deadline-bounded wait
    state = _wait_state(net, job_id, 300)
    execs = net.executions(job_id)
    completed = [e for e in execs if e["ComputeState"]["StateType"] == 9]
    return {"nodes_killed": len(doomed), "partitions_on_them": lost_partitions,
            "all_disconnected": len(down_at) == len(doomed),
            "max_s": max(down_at.values(), default=float("nan")),
            "bound_s": disconnect_s + 2 * heartbeat_s,
            "others_disconnected": len(others_down), "job_state": state,
            "completed_on_killed_nodes": sum(e["NodeID"] in doomed for e in completed),
            "completed_partitions": len({e.get("PartitionIndex", 0) for e in completed})}


def _wait_state(net: Network, job_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = net.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]["State"]
        if state["StateType"] in TERMINAL:
            return str(state["StateType"])
        time.sleep(0.2)  # poll of a deadline-bounded wait
    return "timeout"


def measure(n: int, processes: int, work: Path, *, idle: float, heartbeat: str,
            disconnect_timeout: str, latency_jobs: int, kill: bool) -> dict[str, Any]:
    """Every figure of one network size."""
    from bacalhau.config import parse_duration

    heartbeat_s = parse_duration(heartbeat)
    disconnect_s = parse_duration(disconnect_timeout)
    net = Network(work / f"n{n}", n, min(processes, n), heartbeat, disconnect_timeout)
    net.start()
    try:
        doc: dict[str, Any] = {"nodes": n, "processes": net.processes,
                               "launch_to_connected_s": net.wait_connected(600)}
        time.sleep(min(10.0, heartbeat_s * 2))  # let the start-up burst settle
        doc["idle"] = _idle(net, idle, heartbeat_s)
        doc["node_list_ms"] = _nodes_ms(net)
        doc["target_all"] = _target_all(net)
        doc["count1_p50_ms"] = _count1_p50(net, latency_jobs)
        if kill:
            doc["kill_worker"] = _kill_worker(net, disconnect_s, heartbeat_s)
        print(f"  N={n}: {json.dumps(doc, default=str)[:600]}", flush=True)
        return doc
    finally:
        net.stop()


def run(quick: bool, out_dir: Path, *, nodes: list[int] | None = None,
        processes: int = 8, idle: float | None = None) -> dict[str, Any]:
    started = time.monotonic()
    sizes = nodes or ([20, 60] if quick else [100, 300, 1000])
    idle_s = idle if idle is not None else (10.0 if quick else 300.0)
    heartbeat, disconnect = ("1s", "5s") if quick else ("5s", "60s")
    latency_jobs = 10 if quick else 20
    with harness.scratch_dir("bench-scale-") as tmp:
        work = Path(tmp)
        base = measure(2, 1, work, idle=min(idle_s, 10.0), heartbeat=heartbeat,
                       disconnect_timeout=disconnect, latency_jobs=latency_jobs, kill=False)
        docs = [measure(n, processes, work, idle=idle_s, heartbeat=heartbeat,
                        disconnect_timeout=disconnect, latency_jobs=latency_jobs,
                        kill=n == max(sizes))
                for n in sizes]
    first, last = docs[0], docs[-1]
    rows: list[report.Row] = []
    for d in docs:
        n, i = d["nodes"], d["idle"]
        rows += [
            report.Row(f"launch -> all CONNECTED, N={n}", d["launch_to_connected_s"], "s",
                       "bound (issue)", 60.0, {"max": 1.0}),
            report.Row(f"idle CPU of the network, N={n}", i["idle_cores"], "cores",
                       "bound (issue)", 0.5, {"max": 1.0}),
            report.Row(f"RSS per compute node, N={n}", i["rss_mb_per_node"], "MB",
                       "bound (issue)", 12.0, {"max": 1.0}),
            report.Row(f"false disconnects in {i['seconds']:.0f}s idle, N={n}",
                       i["false_disconnects"], "nodes"),
            report.Row(f"GET /nodes (all), N={n}", d["node_list_ms"], "ms",
                       "bound (issue)", 50.0, {"max": 1.0}),
            report.Row(f"--target all WASM job on {d['target_all']['completed']} of {n}",
                       d["target_all"]["seconds"], "s", "bound (issue)", 30.0, {"max": 1.0}),
            report.Row(f"Count=1 job p50, N={n}", d["count1_p50_ms"], "ms",
                       "the same at N=2", base["count1_p50_ms"], {"max": 1.5}),
        ]
        if d is not first:
            fi = first["idle"]
            for key, label, unit in (
                    ("connections_per_node", "connections per compute node", ""),
                    ("bytes_per_s_per_node", "network bytes/s per compute node", "B/s"),
                    ("rss_mb_per_node", "RSS per compute node", "MB"),
                    ("requester_cpu_per_heartbeat_us", "requester CPU per heartbeat", "us")):
                rows.append(report.Row(f"{label}, N={n}", i[key], unit,
                                       f"the same at N={first['nodes']}", fi[key],
                                       {"max": 1.5}))
    kill = last.get("kill_worker")
    if kill:
        rows.append(report.Row(
            f"kill -9 of a worker: its {kill['nodes_killed']} nodes DISCONNECTED (max)",
            kill["max_s"], "s", "DisconnectTimeout + 2 heartbeats", kill["bound_s"],
            {"max": 1.0}, note=(f"others disconnected: {kill['others_disconnected']}; job "
                                f"{kill['job_state']}, {kill['completed_partitions']} "
                                f"partitions completed")))
    plot = _plot(out_dir / "scale.png", docs)
    return report.result(
        "scale",
        settings={"quick": quick, "nodes": sizes, "compute_processes": processes,
                  "idle_s": idle_s, "heartbeat": heartbeat, "disconnect_timeout": disconnect},
        samples={"unit": "mixed", "baseline_n2": base, "sizes": docs},
        summary={"plot": str(plot)}, rows=rows, seconds=time.monotonic() - started)


def _plot(path: Path, docs: list[dict[str, Any]]) -> Path:
    """Per-node cost against N, each figure relative to its value at the smallest N (flat is
    the goal)."""
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [d["nodes"] for d in docs]
    for key, label in (("connections_per_node", "connections"),
                       ("bytes_per_s_per_node", "bytes/s"), ("rss_mb_per_node", "RSS"),
                       ("requester_cpu_per_heartbeat_us", "requester CPU per heartbeat")):
        first = docs[0]["idle"][key] or 1.0
        ax.plot(xs, [d["idle"][key] / first for d in docs], marker="o", label=label)
    per_node_cpu = [d["idle"]["idle_cores"] / d["nodes"] for d in docs]
    ax.plot(xs, [c / (per_node_cpu[0] or 1.0) for c in per_node_cpu], marker="o",
            label="idle CPU per node")
    ax.set_xscale("log")
    ax.set_xlabel("compute nodes (N)")
    ax.set_ylabel(f"per-node cost relative to N={xs[0]}")
    ax.set_title("Per-node cost against the size of the network")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
