"""NodeSelector over the native NodeTable kept by a NodeManager: requirements built from the
job, rejection reasons per ranker, label constraints including `favour_`, exclusion by earlier
executions, job defaults, determinism, and the "not enough nodes" text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bacalhau.config import Config
from bacalhau.models import (
    ComputeNodeInfo,
    Execution,
    ExecutionState,
    ExecutionStateType,
    InputSource,
    Job,
    LabelSelectorRequirement,
    NodeInfo,
    Resources,
    ResourcesConfig,
    SpecConfig,
    Task,
)
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.selection import NodeSelector, Selection, previous_executions
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport import InProcessNetwork
from bacalhau.transport import messages as m

pytestmark = pytest.mark.unit

GIB = 1 << 30
A, B, C = (f"n-{c * 8}-2222-4222-8222-222222222222" for c in "abc")


def node(nid: str, *, engines: tuple[str, ...] = ("wasm",),
         publishers: tuple[str, ...] = ("local",),
         storages: tuple[str, ...] = ("inline",), labels: dict[str, str] | None = None,
         cpu: float = 4, max_job_cpu: float | None = None) -> NodeInfo:
    cap = Resources(cpu=cpu, memory=8 * GIB, disk=100 * GIB)
    max_job = Resources(cpu=cpu if max_job_cpu is None else max_job_cpu, memory=8 * GIB,
                        disk=100 * GIB)
    return NodeInfo(
        node_id=nid, node_type="Compute", labels=dict(labels or {}),
        compute_node_info=ComputeNodeInfo(
            execution_engines=list(engines), publishers=list(publishers),
            storage_sources=list(storages), max_capacity=cap, available_capacity=cap,
            max_job_requirements=max_job),
    )


def job(*, engine: str = "wasm", publisher: str = "local", inputs: tuple[str, ...] = (),
        constraints: list[LabelSelectorRequirement] | None = None,
        resources: ResourcesConfig | None = None, version: int = 1) -> Job:
    task = Task(name="main", engine=SpecConfig(engine), publisher=SpecConfig(publisher),
                input_sources=[InputSource(source=SpecConfig(t), target=f"/in{i}")
                               for i, t in enumerate(inputs)],
                resources=resources or ResourcesConfig())
    return Job(id="j-9b2f6a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b", name="j", type="batch", count=1,
               constraints=list(constraints or []), tasks=[task], version=version)


def execution(nid: str, state: ExecutionStateType, *, eid: str = "e-1",
              version: int = 1) -> Execution:
    return Execution(id=eid, node_id=nid, job_id="j", job_version=version,
                     compute_state=ExecutionState(int(state)))


class Env:
    def __init__(self, manager: NodeManager, selector: NodeSelector) -> None:
        self.manager = manager
        self.selector = selector

    async def add(self, info: NodeInfo) -> None:
        await self.manager.handle(
            info.node_id, m.encode(m.NODE_INFO, {"NodeInfo": info.to_dict()}))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    config = Config()
    store = NodeStore(tmp_path / "jobs.db")
    transport = InProcessNetwork().transport("n-requester")
    manager = NodeManager(config, store, transport, NodeInfo(node_id="n-requester",
                                                             node_type="Requester"))
    await manager.start()
    yield Env(manager, NodeSelector(manager, config))
    await manager.stop()
    store.close()


def reasons(sel: Selection) -> dict[str, str]:
    return {r[0]: r[3] for r in sel.ranks if not r[2]}


async def test_requirements_from_the_job(env: Env) -> None:
    j = job(inputs=("inline", "urlDownload"),
            constraints=[LabelSelectorRequirement("zone", "in", ["a", "b"])],
            resources=ResourcesConfig(cpu="250m", gpu="1"), version=2)
    execs = [execution(A, ExecutionStateType.FAILED, eid="e-1", version=2),
             execution(A, ExecutionStateType.RUNNING, eid="e-2", version=1)]
    req = env.selector.requirements(j, execs)
    assert req == {
        "engine": "wasm", "publisher": "local", "storages": ["inline", "urlDownload"],
        "constraints": [("zone", "in", ["a", "b"])],
        # CPU given; Memory from JobDefaults.Batch.Task.Resources (512Mb)
        "resources": (0.25, 512_000_000, 0, 1),
        "previous": {A: (1, False, False)},  # only executions of this job version count
        "min_version": (1, 0, 4), "oversubscription_factor": 1.5,
    }
    custom = Config({"JobDefaults": {"Batch": {"Task": {"Resources": {"CPU": "2",
                                                                       "Memory": "1Gi"}}}}})
    assert NodeSelector(env.manager, custom).resources(job()).as_tuple() == (2.0, GIB, 0, 0)


async def test_engine_publisher_and_storage_mismatch(env: Env) -> None:
    await env.add(node(A, engines=("docker",)))
    await env.add(node(B, publishers=("s3",)))
    await env.add(node(C, storages=("ipfs",)))
    sel = env.selector.select(job(inputs=("inline",)), [])
    assert sel.matched == [] and sel.available == 3 and not sel.retryable
    assert reasons(sel) == {
        A: 'does not support engine "wasm", only: docker',
        B: 'does not support publisher "local", only: s3',
        C: 'does not support input source "inline", only: ipfs',
    }
    assert sel.message(1) == (
        "not enough nodes to run job. requested: 1, available: 3, suitable: 0.\n"
        f'• Node {A[:10]}: does not support engine "wasm", only: docker\n'
        f'• Node {C[:10]}: does not support input source "inline", only: ipfs\n'
        f'• Node {B[:10]}: does not support publisher "local", only: s3'
    )
    assert sel.details(1) == {"NodesRequested": "1", "NodesAvailable": "3",
                              "NodesSuitable": "0"}
    # an empty publisher matches any node: B only lacked the publisher
    assert env.selector.select(job(publisher="", inputs=("inline",)), []).matched == [B]


async def test_label_constraints_and_favour(env: Env) -> None:
    await env.add(node(A, labels={"zone": "eu", "tier": "gold"}))
    await env.add(node(B, labels={"zone": "eu"}))
    await env.add(node(C, labels={"zone": "us"}))
    eu = [LabelSelectorRequirement("zone", "=", ["eu"])]
    sel = env.selector.select(job(constraints=eu), [])
    assert sorted(sel.matched) == [A, B]
    assert reasons(sel)[C].startswith("does not match label constraint")

    favour = [*eu, LabelSelectorRequirement("favour_tier", "=", ["gold"])]
    for seed in range(20):  # the +10 of favour_ beats the 0..4 random tie-breaker
        assert env.selector.select(job(constraints=favour), [], seed=seed).matched == [A, B]
    # a soft constraint never rejects
    only_soft = [LabelSelectorRequirement("favour_tier", "=", ["platinum"])]
    assert sorted(env.selector.select(job(constraints=only_soft), []).matched) == [A, B, C]


async def test_previous_executions_exclude_nodes(env: Env) -> None:
    for nid in (A, B, C):
        await env.add(node(nid))
    live = [execution(A, ExecutionStateType.RUNNING)]
    sel = env.selector.select(job(), live)
    assert A not in sel.matched and sorted(sel.matched) == [B, C]
    assert reasons(sel) == {A: "job already has a live execution on this node"}

    rejected = [execution(B, ExecutionStateType.ASK_FOR_BID_REJECTED)]
    assert reasons(env.selector.select(job(), rejected)) == {B: "node rejected a bid for this job"}

    # one failed run: still possible but ranked after nodes that never ran it
    failed = [execution(C, ExecutionStateType.FAILED)]
    for seed in range(10):
        assert env.selector.select(job(), failed, seed=seed).matched[-1] == C
    twice = [execution(C, ExecutionStateType.FAILED, eid="e-1"),
             execution(C, ExecutionStateType.CANCELLED, eid="e-2")]
    assert reasons(env.selector.select(job(), twice)) == {C: "job already ran on this node 2 times"}
    # executions of another job version do not count
    assert env.selector.select(job(version=2), live).matched.count(A) == 1

    assert previous_executions(job(), [*live, *twice]) == {A: (1, True, False),
                                                          C: (2, False, False)}


async def test_capacity_rejections_are_retryable(env: Env) -> None:
    await env.add(node(A, max_job_cpu=0.25))
    await env.add(node(B, engines=("docker",)))
    sel = env.selector.select(job(), [])  # defaults ask for 0.5 CPU
    assert sel.matched == [] and sel.retryable
    assert reasons(sel)[A] == "job requires more CPU (0.5) than the maximum available (0.25)"
    assert sel.message(2).startswith(
        "not enough nodes to run job. requested: 2, available: 2, suitable: 0.\n• Node ")


async def test_table_follows_membership_and_selection_is_deterministic(env: Env) -> None:
    for nid in (A, B, C):
        await env.add(node(nid))
    first = env.selector.select(job(), [])
    assert first.available == 3 and len(first.matched) == 3
    assert env.selector.select(job(), []).ranks == first.ranks  # default seed is stable
    grouped = env.selector.select(job(), [], seed=7)
    assert grouped.ranks == env.selector.select(job(), [], seed=7).ranks

    await env.manager.reject(B)
    sel = env.selector.select(job(), [])
    assert sel.available == 2 and sorted(sel.matched) == [A, C]
    await env.manager.delete(C)
    assert env.selector.select(job(), []).matched == [A]
    two = env.selector.select(job(), [])
    assert two.message(3) == "not enough nodes to run job. requested: 3, available: 1, suitable: 1."
