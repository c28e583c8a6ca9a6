"""Fault scenarios on a fresh bed: each starts a requester and compute hosts, runs the checker's
workload, injects one fault, heals it, and returns the checker's report (figures) plus the
fault's name. Used by tests/faults/test_scenarios.py (CI sizes) and `python -m bench faults`
(full sizes).

Timeouts are short so that CI is fast: compute heartbeats every 0.5 s, a node is
DISCONNECTED after 3 s without one (`Orchestrator.NodeManager.DisconnectTimeout`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults.bed import Bed, Host
from tests.faults.checker import RUNNING, Checker
from tests.faults.cluster import DISCONNECT_TIMEOUT, Cluster, start_cluster, wait_connected

_LAST: Checker | None = None  # the latest scenario's checker (for a look after a failure)


@dataclass(frozen=True)
class Sizes:
    """How big a scenario is: CI (`quick`) or the bench's full matrix."""

    jobs: int = 8
    sleep_ms: int = 1000
    loss_s: float = 8.0
    recover_bound: float = 90.0
    long_running: bool = True

    @staticmethod
    def quick() -> Sizes:
        return Sizes()

    @staticmethod
    def full() -> Sizes:
        return Sizes(jobs=30, sleep_ms=1500, loss_s=120.0, recover_bound=240.0)


def _hold(checker: Checker, seconds: float, *, probe: bool = True) -> None:
    """Keep a fault in place for `seconds`, probing the API meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if probe:
            checker.probe()
        time.sleep(0.5)  # the fault's duration: what is measured is the system under it


def _running_on(checker: Checker, host: Host) -> bool:
    node = host.node_id
    return any(e["NodeID"] == node and e["ComputeState"]["StateType"] == RUNNING
               for job in checker.jobs if job.kind == "sleep"
               for e in checker.executions(job.job_id))


def _busy_compute(bed: Bed, cluster: Cluster, checker: Checker) -> Host:
    """The compute node a fault is aimed at ("c0" in the reports): the first one seen running
    a batch job. Which node the requester picks is its own choice (its view of the nodes'
    queues lags their heartbeats, so a burst may all go to one node)."""
    return bed.wait(lambda: next((h for h in cluster.computes if _running_on(checker, h)), None),
                    30, "a batch job running on a compute node")


def _setup(bed: Bed, sizes: Sizes, computes: int = 2, *,
           requester_env: dict[str, str] | None = None,
           compute_kw: list[dict[str, Any]] | None = None) -> tuple[Cluster, Checker]:
    cluster = start_cluster(bed, 0, requester_env=requester_env)
    for i in range(computes):
        cluster.add_compute(**((compute_kw or [])[i] if i < len(compute_kw or []) else {}))
    wait_connected(cluster, cluster.computes)
    checker = Checker(bed, cluster.requester)
    global _LAST
    _LAST = checker
    if sizes.long_running:
        checker.submit_long_running()
    return cluster, checker


def _finish(checker: Checker, healed_at: float, sizes: Sizes, scratch: Path,
            fault: str) -> dict[str, Any]:
    checker.wait_recovered(healed_at, sizes.recover_bound)
    report = checker.report(scratch)
    report["fault"] = fault
    return report


def partition(bed: Bed, sizes: Sizes, scratch: Path, *, one_way: bool = False) -> dict[str, Any]:
    """requester | c0 for 2x DisconnectTimeout while jobs run (symmetric or one way: what c0
    sends is lost), then healed."""
    cluster, checker = _setup(bed, sizes)
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    victim = _busy_compute(bed, cluster, checker)
    bed.partition(victim, cluster.requester, one_way=one_way)
    _hold(checker, 2 * DISCONNECT_TIMEOUT)
    bed.heal()
    healed = time.monotonic()
    name = "one-way partition c0->requester" if one_way else "partition requester / c0"
    return _finish(checker, healed, sizes, scratch, name)


def loss(bed: Bed, sizes: Sizes, scratch: Path, probability: float = 0.05) -> dict[str, Any]:
    """`probability` of every packet lost on every link while the workload runs."""
    cluster, checker = _setup(bed, sizes)
    for host in [cluster.requester, *cluster.computes, bed.client_host]:
        bed.loss(host, probability)
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    _hold(checker, sizes.loss_s)
    bed.heal()
    healed = time.monotonic()
    return _finish(checker, healed, sizes, scratch, f"{probability:.0%} loss on every link")


def bandwidth(bed: Bed, sizes: Sizes, scratch: Path, rate: str = "256kbit") -> dict[str, Any]:
    """c0's link limited to `rate` (tbf) while the workload runs (as long as the loss run)."""
    cluster, checker = _setup(bed, sizes)
    bed.bandwidth(cluster.computes[0], rate)
    bed.bandwidth(cluster.requester, rate)
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    _hold(checker, sizes.loss_s)
    bed.heal()
    healed = time.monotonic()
    return _finish(checker, healed, sizes, scratch, f"{rate} on requester and c0 links")


def freeze(bed: Bed, sizes: Sizes, scratch: Path) -> dict[str, Any]:
    """c0 frozen (SIGSTOP) for 2x DisconnectTimeout while it runs a job, then thawed."""
    cluster, checker = _setup(bed, sizes)
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    victim = _busy_compute(bed, cluster, checker)
    victim.freeze()
    _hold(checker, 2 * DISCONNECT_TIMEOUT)
    victim.thaw()
    healed = time.monotonic()
    return _finish(checker, healed, sizes, scratch, "c0 frozen past the timeout")


def crash_at(bed: Bed, sizes: Sizes, scratch: Path, point: str) -> dict[str, Any]:
    """The process on the job path dies (SIGKILL) at failpoint `point`, and is restarted on
    its data dir without the failpoint. Requester points crash the requester; compute points
    crash c0."""
    on_requester = point.startswith("planner.")
    # the requester crashes with jobs in flight: at the plan after as many as the jobs (each
    # job has a placing plan and a completing one); a compute node at its first commit
    nth = sizes.jobs + 3 if on_requester else 1
    spec = {"BACALHAU_FAILPOINTS": f"{point}=crash({nth})"}
    cluster, checker = _setup(bed, sizes, requester_env=spec if on_requester else None,
                              compute_kw=[] if on_requester else [{"env": spec}])
    victim = cluster.requester if on_requester else cluster.computes[0]
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    checker.remember_ids(cluster.computes)
    bed.wait(lambda: not victim.alive(), 60, f"{victim.name} to crash at {point}")
    code = victim.stop()
    assert code == -9, f"{victim.name} exited {code}, not by the failpoint's SIGKILL"
    victim.env_extra.pop("BACALHAU_FAILPOINTS")
    victim.start()
    healed = time.monotonic()
    if checker.refused:  # submits refused while the requester was down: a client retries
        checker.submit_batch(checker.refused, sizes.sleep_ms)
    report = _finish(checker, healed, sizes, scratch, f"kill -9 at {point}")
    report["ids_lost"] = checker.ids_lost(cluster.computes)
    return report


def full_disk(bed: Bed, sizes: Sizes, scratch: Path) -> dict[str, Any]:
    """c0's data dir is a 64 MiB tmpfs, filled to the last byte while jobs arrive: its
    executions fail clearly, it stays up, and the jobs complete on c1."""
    cluster, checker = _setup(bed, sizes, compute_kw=[{"disk_mb": 64}])
    victim = cluster.computes[0]
    victim.fill_disk()
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    healed = time.monotonic()
    report = _finish(checker, healed, sizes, scratch, "full disk on c0")
    report["victim_up"] = victim.alive()
    victim.free_disk()
    return report


def clock_ahead(bed: Bed, sizes: Sizes, scratch: Path) -> dict[str, Any]:
    """c0's clock is 10 minutes ahead (libfaketime) for the whole run."""
    _, checker = _setup(bed, sizes, compute_kw=[{"clock_offset": "+600"}])
    checker.submit_batch(sizes.jobs, sizes.sleep_ms)
    healed = time.monotonic()
    return _finish(checker, healed, sizes, scratch, "c0 clock 10 min ahead")


CRASH_POINTS = ("planner.after_commit", "compute.after_commit", "publish.mid")

MATRIX: dict[str, Callable[[Bed, Sizes, Path], dict[str, Any]]] = {
    "partition": partition,
    "one-way": lambda b, s, p: partition(b, s, p, one_way=True),
    "loss": loss,
    "bandwidth": bandwidth,
    "freeze": freeze,
    **{f"crash:{pt}": (lambda b, s, p, pt=pt: crash_at(b, s, p, pt)) for pt in CRASH_POINTS},
    "full-disk": full_disk,
    "clock": clock_ahead,
}
