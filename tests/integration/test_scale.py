"""The network at N = 200 compute nodes in 4 processes (the bounded CI edition of
`python -m bench scale`): `bacalhau devstack --computes 200 --compute-processes 4`, driven
from outside like a user would, with 1 s heartbeats and a 5 s disconnect timeout.

- every node is CONNECTED within a minute of launch, each with exactly one connection (to the
  one requester: no mesh between compute nodes);
- a `--target all` WASM job completes on all 200 nodes; `job executions` pages through them;
- kill -9 of one worker process: its 50 nodes are DISCONNECTED within the disconnect timeout
  plus two heartbeats (and the poll interval), the 150 others stay CONNECTED, and a batch job
  whose partitions ran there completes on the others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench.scale import Network, tcp_by_pid
from tests.conftest import wait_until
from tests.jobspecs import wordcount_job

pytestmark = [pytest.mark.integration]

N, PROCESSES = 200, 4
HEARTBEAT_S, DISCONNECT_S = 1.0, 5.0
POLL_S = 0.2


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    network = Network(tmp_path_factory.mktemp("scale") / "net", N, PROCESSES,
                      f"{HEARTBEAT_S}s", f"{DISCONNECT_S}s")
    network.start()
    try:
        network.wait_connected(60)
        yield network
    finally:
        network.stop()


def test_every_node_connects_once_to_the_requester(net: Network) -> None:
    workers = net.worker_pids()
    assert len(workers) == PROCESSES and len(net.worker_of()) == N
    connections = sum(s["connections"] for s in tcp_by_pid(workers).values())
    assert connections == N, f"{connections} connections for {N} compute nodes"
    listed = net.nodes()
    assert len(listed) == N
    assert all(n["ConnectionState"]["Status"] == "CONNECTED" for n in listed)


def test_target_all_job_and_paged_executions(net: Network) -> None:
    job = wordcount_job("to every node\n", extra={"Type": "ops"})
    job.pop("Count", None)
    doc, took = net.run_job(job, timeout=60)
    assert doc["State"]["StateType"] == "Completed", doc["State"]
    execs = net.executions(doc["ID"])
    assert sorted(e["NodeID"] for e in execs) == sorted(net.worker_of())
    assert all(e["ComputeState"]["StateType"] == 9 for e in execs)
    print(f"target all on {N} nodes: {took:.1f}s")

    env = dict(os.environ, BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(net.port))

    def page(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bacalhau", "job", "executions",
                               doc["ID"], "--limit", "150", *extra], capture_output=True,
                              text=True, env=env, timeout=60)

    first = page("--output", "json")
    assert first.returncode == 0, first.stderr
    table = page()
    token = table.stdout.strip().splitlines()[-1].split("--next-token ")[-1]
    rest = page("--next-token", token, "--output", "json")
    assert rest.returncode == 0, rest.stderr
    ids = [e["ID"] for e in json.loads(first.stdout)] + [e["ID"] for e in
                                                        json.loads(rest.stdout)]
    assert len(ids) == N and len(set(ids)) == N


def test_kill_9_of_a_worker_process(net: Network) -> None:
    sleep = wordcount_job(module="sleep.wasm", params=["12000"], extra={"Count": 24})
    sleep["Tasks"][0]["InputSources"] = sleep["Tasks"][0]["InputSources"][:1]
    job_id = net.api("PUT", "/api/v1/orchestrator/jobs", {"Job": sleep})["JobID"]
    running = wait_until(
        lambda: len(r := [e for e in net.executions(job_id)
                          if e["ComputeState"]["StateType"] == 5]) == 24 and r,
        60, what="24 partitions running", interval=POLL_S)
    worker_of = net.worker_of()
    victim = worker_of[running[0]["NodeID"]]
    doomed = {nid for nid, pid in worker_of.items() if pid == victim}
    on_victim = {e.get("PartitionIndex", 0) for e in running if e["NodeID"] in doomed}
    assert len(doomed) == N // PROCESSES and on_victim
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    down: dict[str, float] = {}
    others_down: set[str] = set()

    def all_doomed_down() -> bool:
        for n in net.nodes():
            nid = n["Info"]["NodeID"]
            if n["ConnectionState"]["Status"] != "CONNECTED":
                if nid in doomed:
                    down.setdefault(nid, time.monotonic() - killed)
                else:
                    others_down.add(nid)
        return len(down) == len(doomed)

    wait_until(all_doomed_down, DISCONNECT_S * 4 + 20, what="the killed nodes DISCONNECTED",
               interval=POLL_S)
    bound = DISCONNECT_S + 2 * HEARTBEAT_S + 2 * POLL_S
    slowest = max(down.values())
    print(f"kill -9 of a worker: {len(doomed)} nodes DISCONNECTED in {slowest:.2f}s")
    assert slowest <= bound, f"slowest {slowest:.2f}s > {bound:.2f}s"
    assert others_down == set(), f"{len(others_down)} other nodes disconnected"

    def finished() -> dict | None:
        state = net.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]["State"]
        return state if state["StateType"] in ("Completed", "Failed", "Stopped") else None

    state = wait_until(finished, 90, what="the sleep job to finish", interval=POLL_S)
    assert state["StateType"] == "Completed", state
    completed = [e for e in net.executions(job_id) if e["ComputeState"]["StateType"] == 9]
    assert len({e.get("PartitionIndex", 0) for e in completed}) == 24
    assert not any(e["NodeID"] in doomed for e in completed)
    still = [n for n in net.nodes() if n["Info"]["NodeID"] not in doomed]
    assert len(still) == N - len(doomed)
    assert all(n["ConnectionState"]["Status"] == "CONNECTED" for n in still)
