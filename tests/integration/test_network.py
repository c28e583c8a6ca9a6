"""The network across real processes: `bacalhau serve --orchestrator` and
`bacalhau serve --compute --peers <multiaddr>` as separate OS processes over libp2p, each on its
own loopback address (127.0.0.1 … 127.0.0.4) and ports, sharing no file.

- jobs run on the compute processes; `kill -9` of the node running a job fails that execution
  and the job completes on another node within the disconnect timeout plus one scheduling
  round, exactly once;
- a node holding another swarm key never appears in `node list` and never gets work;
- manual approval works across processes (`node approve` makes a PENDING node schedulable);
- a kill -9 of the requester while jobs run, and its restart on the same data dir, costs the
  jobs time, never their outcome.

Every wait is a deadline-bounded wait on an observable condition (API answers, run files).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServeProcess, free_port, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]

HEARTBEAT = 0.5
DISCONNECT_TIMEOUT = 3.0
SLEEP_MS = 3000
TERMINAL = {"Completed", "Failed", "Stopped"}
COMPLETED, FAILED = 9, 10  # execution compute states


class Network:
    """One orchestrator (API on 127.0.0.1) and compute nodes on 127.0.0.2, .3, ..."""

    def __init__(self, base: Path, *, swarm_key: Path | None = None,
                 manual_approval: bool = False, p2p_port: int = 0) -> None:
        self.base = base
        self.swarm_key = swarm_key
        key_args = ["--swarm-key", str(swarm_key)] if swarm_key else []
        approval = ["-c", "Orchestrator.NodeManager.ManualApproval=true"] if manual_approval else []
        self.requester = ServeProcess(
            data_dir=base / "requester", host="127.0.0.1", roles=("--orchestrator",),
            extra_args=["--listen", f"/ip4/127.0.0.1/tcp/{p2p_port}", *key_args, *approval,
                        "-c", f"Orchestrator.NodeManager.DisconnectTimeout={DISCONNECT_TIMEOUT}s"])
        self.computes: list[ServeProcess] = []
        self._all: list[ServeProcess] = [self.requester]

    def start(self) -> None:
        self.requester.start()

    def add_compute(self, index: int, *, swarm_key: Path | str | None = "same",
                    start: bool = True) -> ServeProcess:
        """A compute node on 127.0.0.<index+2>, joining the requester by its address."""
        host = f"127.0.0.{index + 2}"
        key = self.swarm_key if swarm_key == "same" else swarm_key
        compute = ServeProcess(
            data_dir=self.base / f"compute-{index}", host=host, roles=("--compute",),
            extra_args=[
                "--listen", f"/ip4/{host}/tcp/0", "--peers", ",".join(self.requester.addresses()),
                *(["--swarm-key", str(key)] if key else []),
                "-c", f"Compute.Heartbeat.Interval={HEARTBEAT}s"])
        self._all.append(compute)
        if start:
            compute.start()
            self.computes.append(compute)
        return compute

    def stop(self) -> None:
        for proc in reversed(self._all):
            proc.stop()

    # -- queries ---------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, doc = self.requester.api(method, path, body)
        assert status == 200, doc
        return doc

    def nodes(self) -> dict[str, dict[str, Any]]:
        listed = self.requester.cli("node", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        return {n["Info"]["NodeID"]: n for n in json.loads(listed.stdout)}

    def wait_connected(self, computes: list[ServeProcess], timeout: float = 30.0) -> None:
        ids = {c.node_id for c in computes}

        def connected() -> bool:
            nodes = self.nodes()
            return all(nodes.get(i, {}).get("ConnectionState", {}).get("Status") == "CONNECTED"
                       for i in ids)

        wait_until(connected, timeout, what=f"compute nodes {sorted(ids)} to be CONNECTED",
                   interval=0.1)

    def submit(self, job: dict[str, Any]) -> str:
        return self.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})["JobID"]

    def job_state(self, job_id: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]["State"]

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")["Items"]

    def wait_terminal(self, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.job_state(job_id))["StateType"] in TERMINAL and s,
            timeout, what=f"job {job_id} to finish", interval=0.05)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    net.start()
    try:
        yield net
    finally:
        net.stop()


def sleep_job(ms: int) -> dict[str, Any]:
    # bursts of these outnumber the nodes' room (1.5x their CPUs): they may queue for it
    job = wordcount_job(module="sleep.wasm", params=[str(ms)], timeout=120, queue_timeout=300)
    job["Tasks"][0]["InputSources"] = job["Tasks"][0]["InputSources"][:1]  # the module only
    return job


def test_kill_9_of_the_running_node_reschedules_the_job(network: Network) -> None:
    computes = [network.add_compute(i) for i in range(3)]
    network.wait_connected(computes)
    by_id = {c.node_id: c for c in computes}
    assert len(by_id) == 3 and network.requester.node_id not in by_id
    assert all(i.startswith("12D3KooW") for i in by_id)

    # jobs run across processes: three partitions on three distinct compute processes
    text = "one two three\n"
    spread = network.submit(wordcount_job(text, extra={"Count": 3}))
    assert network.wait_terminal(spread)["StateType"] == "Completed"
    done = [e for e in network.executions(spread) if e["ComputeState"]["StateType"] == COMPLETED]
    assert {e["NodeID"] for e in done} == set(by_id)
    assert {e["RunOutput"]["Stdout"] for e in done} == {expected_count(text)}

    # a job that runs for a while; kill -9 the node running it
    job_id = network.submit(sleep_job(SLEEP_MS))

    def running() -> dict[str, Any] | None:
        return next((e for e in network.executions(job_id)
                     if e["DesiredState"]["StateType"] == 1
                     and e["ComputeState"]["StateType"] == 5), None)

    first = wait_until(running, 20, what="the sleep job to be running", interval=0.05)
    victim = by_id[first["NodeID"]]
    killed_at = time.monotonic()
    assert victim.stop(sig=signal.SIGKILL) == -signal.SIGKILL

    # disconnect timeout + one scheduling round + the job's own run on the new node
    budget = DISCONNECT_TIMEOUT + SLEEP_MS / 1000 + 6.0
    state = network.wait_terminal(job_id, timeout=budget + 10)
    took = time.monotonic() - killed_at
    print(f"kill -9 -> Completed elsewhere in {took:.2f}s (budget {budget:.1f}s)")
    assert state["StateType"] == "Completed", state
    assert took <= budget, f"completed {took:.1f}s after the kill (budget {budget:.1f}s)"

    execs = {e["ID"]: e for e in network.executions(job_id)}
    completed = [e for e in execs.values() if e["ComputeState"]["StateType"] == COMPLETED]
    assert len(completed) == 1, execs  # run to completion exactly once
    assert completed[0]["NodeID"] != victim_id(first)
    assert completed[0]["RunOutput"]["Stdout"] == "slept\n"
    assert execs[first["ID"]]["ComputeState"]["StateType"] == FAILED
    assert all(e["ComputeState"]["StateType"] in (COMPLETED, FAILED) for e in execs.values())

    nodes = network.nodes()
    assert nodes[first["NodeID"]]["ConnectionState"]["Status"] == "DISCONNECTED"
    others = set(by_id) - {first["NodeID"]}
    assert all(nodes[i]["ConnectionState"]["Status"] == "CONNECTED" for i in others)


def victim_id(execution: dict[str, Any]) -> str:
    return str(execution["NodeID"])


def test_compute_restart_keeps_its_id_and_reconnects(network: Network) -> None:
    compute = network.add_compute(0)
    network.wait_connected([compute])
    node_id = compute.node_id
    compute.stop(sig=signal.SIGKILL)

    def disconnected() -> bool:
        return network.nodes()[node_id]["ConnectionState"]["Status"] == "DISCONNECTED"

    wait_until(disconnected, DISCONNECT_TIMEOUT + 10, what="the killed node to be DISCONNECTED",
               interval=0.1)
    compute.start()
    assert compute.node_id == node_id  # the identity is the key in its data dir
    network.wait_connected([compute])
    job_id = network.submit(wordcount_job("back again\n"))
    assert network.wait_terminal(job_id)["StateType"] == "Completed"
    assert {e["NodeID"] for e in network.executions(job_id)} == {node_id}


def test_requester_kill_9_and_restart_loses_no_job(tmp_path: Path) -> None:
    """The scenario of issue 17: 20 one-second jobs on two compute nodes, the requester
    killed while they run and restarted on the same data dir: every job Completed, once.
    (The mechanism, nodes staying schedulable across a restart, is pinned by
    tests/unit/test_requester.py::test_a_restart_keeps_the_nodes_schedulable.)"""
    net = Network(tmp_path / "net", p2p_port=free_port())
    net.start()
    try:
        computes = [net.add_compute(i) for i in range(2)]
        net.wait_connected(computes)
        jobs = [net.submit(sleep_job(1000)) for _ in range(20)]

        def some_running() -> bool:
            return any(e["ComputeState"]["StateType"] == 5
                       for job_id in jobs[:4] for e in net.executions(job_id))

        wait_until(some_running, 30, what="the first jobs to run", interval=0.05)
        assert net.requester.stop(sig=signal.SIGKILL) == -signal.SIGKILL
        net.requester.start()
        states = {job_id: net.wait_terminal(job_id, timeout=120)["StateType"]
                  for job_id in jobs}
        assert list(states.values()) == ["Completed"] * 20, states
        for job_id in jobs:
            done = [e for e in net.executions(job_id)
                    if e["ComputeState"]["StateType"] == COMPLETED]
            assert len(done) == 1, (job_id, net.executions(job_id))
    finally:
        net.stop()


def test_a_requester_restarted_with_defaults_gets_its_nodes_back(tmp_path: Path) -> None:
    """`bacalhau serve` with no --listen prints `Join it: ... --peers <address>`; a compute
    node that joined with that address is back (heard again) within two heartbeats of the
    requester's restart, because the requester listens where it did before
    (transport/listen.py) and the compute node redials it there."""
    requester = ServeProcess(data_dir=tmp_path / "requester", roles=("--orchestrator",))
    requester.start()
    compute = None
    try:
        join = next(line.split("--peers ", 1)[1].strip()
                    for line in requester.logs().splitlines() if "Join it:" in line)
        compute = ServeProcess(data_dir=tmp_path / "compute", host="127.0.0.2",
                               roles=("--compute",),
                               extra_args=["--peers", join,
                                           "-c", "Compute.Heartbeat.Interval=1s"])
        compute.start()

        def heard_after(t: float) -> bool:
            status, doc = requester.api("GET", f"/api/v1/orchestrator/nodes/{compute.node_id}")
            conn = doc.get("Node", {}).get("ConnectionState", {}) if status == 200 else {}
            return (conn.get("Status") == "CONNECTED"
                    and _rfc3339_seconds(conn.get("LastHeartbeat") or "1970-01-01T00:00:00Z")
                    > t)

        wait_until(lambda: heard_after(0), 30, what="the compute node to join", interval=0.1)
        assert requester.stop(sig=signal.SIGKILL) == -signal.SIGKILL
        requester.start()
        assert requester.addresses()[0] == join  # the same address after the restart
        back = time.time()
        # two 1 s heartbeats, plus the half second this poll and a loaded machine may add
        wait_until(lambda: heard_after(back), 2 * 1.0 + 0.5,
                   what="the compute node heard again within two heartbeats", interval=0.05)
        print(f"heard again {time.time() - back:.2f}s after the API answered")
    finally:
        if compute is not None:
            compute.stop()
        requester.stop()


def test_node_with_another_swarm_key_stays_out(tmp_path: Path) -> None:
    key, other = tmp_path / "swarm.key", tmp_path / "other.key"
    for path in (key, other):
        made = subprocess.run(
            [sys.executable, "-m", "bacalhau", "swarm-key", "generate", "--output", str(path)],
            capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    net = Network(tmp_path / "net", swarm_key=key)
    net.start()
    try:
        member = net.add_compute(0)
        intruder = net.add_compute(1, swarm_key=other)
        keyless = net.add_compute(2, swarm_key=None)
        net.wait_connected([member])
        started = time.time()

        # Several heartbeat intervals pass for everyone: the member keeps being heard (its
        # LastHeartbeat moves past the outsiders' start) while the outsiders keep dialing.
        def member_heard_since_start() -> bool:
            beat = net.nodes()[member.node_id]["ConnectionState"]["LastHeartbeat"]
            return _rfc3339_seconds(beat) > started + 4 * HEARTBEAT

        wait_until(member_heard_since_start, 20, what="heartbeats after the outsiders started",
                   interval=0.1)
        listed = net.nodes()
        assert intruder.node_id and keyless.node_id
        assert intruder.node_id not in listed and keyless.node_id not in listed
        assert set(listed) == {net.requester.node_id, member.node_id}

        job_id = net.submit(wordcount_job("members only\n", extra={"Count": 2}))
        state = net.wait_terminal(job_id)
        execs = net.executions(job_id)
        assert {e["NodeID"] for e in execs} <= {member.node_id}, execs
        assert state["StateType"] == "Failed"  # one member cannot run two partitions
        assert "not enough nodes" in state.get("Message", "")
        assert not _has_executions(intruder) and not _has_executions(keyless)
    finally:
        net.stop()


def test_manual_approval_across_processes(tmp_path: Path) -> None:
    net = Network(tmp_path / "net", manual_approval=True)
    net.start()
    try:
        compute = net.add_compute(0)

        def pending() -> bool:
            return net.nodes().get(compute.node_id, {}).get("Membership") == "PENDING"

        wait_until(pending, 30, what="the compute node to register as PENDING", interval=0.1)
        refused = net.submit(wordcount_job("not yet\n"))
        assert net.wait_terminal(refused)["StateType"] == "Failed"
        assert net.executions(refused) == []

        approved = net.requester.cli("node", "approve", compute.node_id, "-m", "welcome")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert net.nodes()[compute.node_id]["Membership"] == "APPROVED"
        job_id = net.submit(wordcount_job("now\n"))
        assert net.wait_terminal(job_id)["StateType"] == "Completed"
        assert {e["NodeID"] for e in net.executions(job_id)} == {compute.node_id}
    finally:
        net.stop()


def _rfc3339_seconds(text: str) -> float:
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head + "+00:00").timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def _has_executions(node: ServeProcess) -> bool:
    """Whether the node's own execution store holds any execution (read from its file)."""
    import sqlite3

    db = node.data_dir / "compute" / "executions.db"
    if not db.exists():
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next((t for t in tables if t.lower() in ("executions", "local_executions")), None)
        assert table is not None, tables
        return bool(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
