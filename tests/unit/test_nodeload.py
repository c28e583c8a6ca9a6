"""The requester's own count of node load (orchestrator/nodeload.py): live executions counted
from commit to end, a node's report split into others' work and ours, the table figures the
native ranking reads, and a NodeManager whose ranking follows the count between heartbeats
(a node is full as soon as this requester filled it, free as soon as its work ended)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.config import Config
from bacalhau.models import (
    ComputeNodeInfo,
    Job,
    NodeInfo,
    Resources,
    ResourcesConfig,
    SpecConfig,
    Task,
)
from bacalhau.orchestrator.nodeload import NodeLoad
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.selection import NodeSelector
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport import InProcessNetwork
from bacalhau.transport import messages as m

pytestmark = pytest.mark.unit

GIB = 1 << 30
NODE = "n-aaaaaaaa-2222-4222-8222-222222222222"
ONE_CPU = (1.0, GIB, 0, 0)
MAX = (2.0, 8 * GIB, 100 * GIB, 0)


def test_own_executions_count_from_commit_to_end() -> None:
    load = NodeLoad(lambda job_id: ONE_CPU)
    heard: list[tuple[str, bool]] = []
    load.listeners.append(lambda node, freed: heard.append((node, freed)))
    load.observe("e-1", NODE, "j-1", True)
    load.observe("e-1", NODE, "j-1", True)  # a later write of a live execution: counted once
    load.observe("e-2", NODE, "j-2", True)
    assert load.own(NODE) == (2.0, 2 * GIB, 0, 0) and load.live_count() == 2
    load.observe("e-1", NODE, "j-1", False)  # terminal or stopped
    load.observe("e-3", NODE, "j-3", False)  # never counted: nothing to drop
    assert load.own(NODE) == ONE_CPU
    assert heard == [(NODE, False), (NODE, False), (NODE, True)]


def test_a_report_keeps_only_the_work_of_others() -> None:
    load = NodeLoad(lambda job_id: ONE_CPU)
    load.observe("e-1", NODE, "j-1", True)
    # the node reports 1.5 CPUs in use: 1 is ours, 0.5 another requester's
    load.report(NODE, MAX, (0.5, 7 * GIB, 100 * GIB, 0), (0.0, 0, 0, 0))
    load.observe("e-2", NODE, "j-2", True)  # placed after the report
    available, queued = load.view(NODE, MAX)
    assert available == (0.0, 6 * GIB, 100 * GIB, 0)  # 0.5 others + 2 ours > 2 CPUs
    assert queued == (0.5, 0, 0, 0)
    # a stale report that still holds work of ours that ended: never below zero others
    load.observe("e-1", NODE, "j-1", False)
    load.observe("e-2", NODE, "j-2", False)
    load.report(NODE, MAX, MAX, (0.0, 0, 0, 0))
    assert load.view(NODE, MAX) == (MAX, (0.0, 0, 0, 0))


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[NodeManager]:
    store = NodeStore(tmp_path / "jobs.db")
    transport = InProcessNetwork().transport("n-requester")
    nodes = NodeManager(Config(), store, transport,
                        NodeInfo(node_id="n-requester", node_type="Requester"))
    await nodes.start()
    yield nodes
    await nodes.stop()
    store.close()


def one_cpu_job() -> Job:
    task = Task(name="main", engine=SpecConfig("wasm"), publisher=SpecConfig("local"),
                resources=ResourcesConfig(cpu="1", memory="1Gi"))
    return Job(id="j-9b2f6a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b", name="j", type="batch", count=1,
               tasks=[task])


async def test_the_ranking_follows_the_count_between_heartbeats(manager: NodeManager) -> None:
    cap = Resources(cpu=2, memory=8 * GIB, disk=100 * GIB)
    info = NodeInfo(node_id=NODE, node_type="Compute", compute_node_info=ComputeNodeInfo(
        execution_engines=["wasm"], publishers=["local"], storage_sources=["inline"],
        max_capacity=cap, available_capacity=cap, max_job_requirements=cap))
    load = NodeLoad(lambda job_id: ONE_CPU)
    manager.use_load(load)
    await manager.handle(NODE, m.encode(m.NODE_INFO, {"NodeInfo": info.to_dict()}))
    selector = NodeSelector(manager, Config())
    assert selector.select(one_cpu_job(), []).matched == [NODE]
    # three 1-CPU executions placed, no heartbeat since: 3 + 1 > 1.5 x 2 CPUs
    for i in range(3):
        load.observe(f"e-{i}", NODE, "j-x", True)
    busy = selector.select(one_cpu_job(), [])
    assert busy.matched == [] and busy.retryable
    assert "node busy" in busy.message(1)
    # a heartbeat that does not know of them yet changes nothing: the count is ours
    manager.heartbeat(NODE, {"NodeID": NODE, "AvailableCapacity": cap.to_dict(),
                             "QueueCapacity": Resources().to_dict()})
    assert selector.select(one_cpu_job(), []).matched == []
    load.observe("e-0", NODE, "j-x", False)  # one ended: 2 + 1 <= 3
    assert selector.select(one_cpu_job(), []).matched == [NODE]
