"""Daemon and service jobs across real processes: `bacalhau serve --orchestrator` and
`bacalhau serve --compute --peers <multiaddr>` as separate OS processes over libp2p (the
`Network` of test_network.py).

- a daemon job submitted with `bacalhau wasm run --type daemon` runs on the one compute node,
  then reaches a compute node started after the job was submitted; `bacalhau job stop` ends
  both executions, on the orchestrator and on the compute nodes;
- a service job with Count=2 keeps two running executions and replaces the one whose node is
  killed with `kill -9`.

The workload is the shipped sleep.wasm with a long sleep and no timeout (timeouts do not apply
to long-running jobs); it sleeps in 50 ms steps, so cancellation stops it promptly. Every wait
is a deadline-bounded wait on an observable condition (API answers, the nodes' own stores).
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ASSETS, ServeProcess, wait_until
from tests.integration.test_network import DISCONNECT_TIMEOUT, Network, sleep_job

pytestmark = [pytest.mark.integration]

BID_ACCEPTED, RUNNING_ON_COMPUTE, FAILED, CANCELLED = 5, 6, 10, 11  # execution compute states
DESIRED_RUNNING = 1
LONG_SLEEP_MS = 600_000


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    net = Network(tmp_path)
    net.start()
    try:
        yield net
    finally:
        net.stop()


def serving(network: Network, job_id: str) -> dict[str, dict[str, Any]]:
    """Executions desired Running and accepted by their node, by node id."""
    return {e["NodeID"]: e for e in network.executions(job_id)
            if e["DesiredState"]["StateType"] == DESIRED_RUNNING
            and e["ComputeState"]["StateType"] == BID_ACCEPTED}


def compute_state(node: ServeProcess, execution_id: str) -> int | None:
    """The execution's state in the compute node's own store (read from its file)."""
    db = node.data_dir / "compute" / "executions.db"
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT state FROM executions WHERE id = ?",
                           (execution_id,)).fetchone()
    return None if row is None else int(row[0])


def test_daemon_reaches_a_node_started_after_submission(network: Network) -> None:
    first = network.add_compute(0)
    network.wait_connected([first])

    submitted = network.requester.cli(
        "wasm", "run", "--type", "daemon", "--no-wait", "--id-only", "--name", "watcher",
        str(ASSETS / "sleep.wasm"), str(LONG_SLEEP_MS))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    job = network.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"]
    assert job["Type"] == "daemon" and job["Count"] == 0

    on_first = wait_until(lambda: serving(network, job_id).get(first.node_id), 30,
                          what="the daemon running on the first node", interval=0.05)
    wait_until(lambda: compute_state(first, on_first["ID"]) == RUNNING_ON_COMPUTE, 30,
               what="the first node to run the module", interval=0.05)
    assert network.job_state(job_id)["StateType"] == "Running"

    # a compute node that did not exist when the job was submitted
    second = network.add_compute(1)
    network.wait_connected([second])
    on_second = wait_until(lambda: serving(network, job_id).get(second.node_id), 30,
                           what="the daemon to reach the new node", interval=0.05)
    wait_until(lambda: compute_state(second, on_second["ID"]) == RUNNING_ON_COMPUTE, 30,
               what="the new node to run the module", interval=0.05)
    assert set(serving(network, job_id)) == {first.node_id, second.node_id}
    assert len(network.executions(job_id)) == 2  # one per node, nothing retried

    stopped = network.requester.cli("job", "stop", job_id)
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: network.job_state(job_id)["StateType"] == "Stopped", 20,
               what="the job to be Stopped", interval=0.05)
    execs = network.executions(job_id)
    assert {e["ComputeState"]["StateType"] for e in execs} == {CANCELLED}
    for node, execution in ((first, on_first), (second, on_second)):
        wait_until(lambda n=node, e=execution: compute_state(n, e["ID"]) == CANCELLED, 20,
                   what=f"the execution on {node.node_id} to be cancelled there",
                   interval=0.05)


def test_service_replaces_the_execution_of_a_killed_node(network: Network) -> None:
    computes = [network.add_compute(i) for i in range(3)]
    network.wait_connected(computes)
    by_id = {c.node_id: c for c in computes}

    job = sleep_job(LONG_SLEEP_MS)
    job["Type"], job["Count"] = "service", 2
    del job["Tasks"][0]["Timeouts"]
    job_id = network.submit(job)

    first = wait_until(lambda: len(s := serving(network, job_id)) == 2 and s, 30,
                       what="two running executions", interval=0.05)
    assert network.job_state(job_id)["StateType"] == "Running"
    victim = next(iter(first))
    lost = first[victim]
    assert by_id[victim].stop(sig=signal.SIGKILL) == -signal.SIGKILL

    def replaced() -> dict[str, dict[str, Any]] | None:
        now = serving(network, job_id)
        return now if len(now) == 2 and victim not in now else None

    after = wait_until(replaced, DISCONNECT_TIMEOUT + 20, what="a replacement execution",
                       interval=0.1)
    spare = (set(by_id) - set(first)).pop()
    assert set(after) == (set(first) - {victim}) | {spare}
    execs = {e["ID"]: e for e in network.executions(job_id)}
    assert execs[lost["ID"]]["ComputeState"]["StateType"] == FAILED
    assert after[spare].get("PartitionIndex", 0) == lost.get("PartitionIndex", 0)  # omitempty
    assert network.job_state(job_id)["StateType"] == "Running"

    stopped = network.requester.cli("job", "stop", job_id)
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not serving(network, job_id), 20, what="the service to stop",
               interval=0.05)
    assert network.job_state(job_id)["StateType"] == "Stopped"
