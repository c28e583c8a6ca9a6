"""Several requesters on one libp2p network (devstack in this process, each node its own
libp2p host on 127.0.0.1): each requester schedules the jobs submitted to it; the one compute
node admits work from both and never runs more than its capacity at once (its own
accounting, whatever the requesters believe)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bacalhau.config import load_config
from bacalhau.devstack import start_devstack
from bacalhau.models import Job
from tests.jobspecs import wordcount_job

pytestmark = [pytest.mark.integration]

DEADLINE = 60.0


def sleep_job(ms: int) -> Job:
    raw: dict[str, Any] = wordcount_job(module="sleep.wasm", params=[str(ms)], timeout=60)
    task = raw["Tasks"][0]
    task["InputSources"] = task["InputSources"][:1]
    task["Resources"] = {"CPU": "1", "Memory": "64Mb"}
    # one such job fills the test's 1-CPU node: the others wait, queued at their requester
    task["Timeouts"]["QueueTimeout"] = 120
    job = Job.from_dict(raw)
    job.normalize()
    return job


async def eventually(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)  # poll interval of a deadline-bounded wait


async def test_two_requesters_share_one_compute_without_overcommit(tmp_path: Path) -> None:
    config = load_config(tmp_path, [
        "API.Port=0", "Compute.AllocatedCapacity.CPU=1", "Compute.Heartbeat.Interval=0.5s",
        "Orchestrator.Scheduler.QueueBackoff=0.5s"], environ={})
    nodes = await start_devstack(config, orchestrators=2, computes=1, base_dir=tmp_path)
    first, second, compute = nodes
    try:
        assert compute.p2p is not None and compute.node_id.startswith("12D3KooW")
        for r in (first, second):
            await eventually(lambda r=r: r.requester.nodes.is_schedulable(compute.node_id),
                             f"{r.node_id} to see the compute node")

        peak = peak_queued = 0
        sampling = True

        async def sample() -> None:
            nonlocal peak, peak_queued
            while sampling:
                peak = max(peak, compute.compute.buffer.running_count)
                peak_queued = max(peak_queued, compute.compute.buffer.queued_count)
                await asyncio.sleep(0.005)  # sampling interval, not synchronisation

        sampler = asyncio.create_task(sample())
        submitted: dict[str, list[str]] = {first.node_id: [], second.node_id: []}
        for r in (first, second, first, second):
            result = await r.requester.submit_job(sleep_job(300))
            submitted[r.node_id].append(result.job_id)

        def all_done() -> bool:
            return all(r.requester.get_job(j).state.state_type in ("Completed", "Failed")
                       for r in (first, second) for j in submitted[r.node_id])

        await eventually(all_done, "every job to finish")
        sampling = False
        await sampler

        for r in (first, second):
            for job_id in submitted[r.node_id]:
                assert r.requester.get_job(job_id).state.state_type == "Completed"
                execs = r.requester.job_executions(job_id)
                done = [e for e in execs if e.compute_state.state_type == 9]
                assert [e.node_id for e in done] == [compute.node_id]
            other = second if r is first else first
            listed, _ = r.requester.list_jobs(None, 100, 0, "created_at", False, [])
            assert {j.id for j in listed} == set(submitted[r.node_id])  # each its own jobs
            assert not set(submitted[other.node_id]) & {j.id for j in listed}
        assert peak == 1, f"the compute ran {peak} executions at once with capacity for 1"
        # each requester counts its own work on the node and hears of the other's by
        # heartbeat: the node's own queue takes what arrives in between, never all of it
        assert peak_queued <= 2
    finally:
        for node in reversed(nodes):
            await node.stop()
