"""The Requester end to end in one process: a real job store, broker, schedulers, planner,
dispatcher and handlers, talking over the InProcessNetwork to tiny fake compute peers that
answer with real messages (BidResult, then RunResult or ComputeError).

Node membership comes from the `StubNodeManager`/`StubNodeSelector` of tests.factories so
these tests do not depend on the native ranking; the last test runs the same flow with the real
NodeManager and NodeSelector when the native module provides them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bacalhau.config import Config
from bacalhau.errors import ConflictError, ValidationError
from bacalhau.models import (
    NODE_TYPE_REQUESTER,
    EvalStatus,
    Event,
    JobStateType,
    NodeInfo,
    Topic,
)
from bacalhau.orchestrator.service import Requester
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import PROTOCOL_COMPUTE, PROTOCOL_ORCHESTRATOR, InProcessNetwork
from bacalhau.transport import messages as m
from tests.factories import (
    Compute,
    Desired,
    StubNodeManager,
    StubNodeSelector,
    job_spec,
    make_evaluation,
    make_node_info,
    register_node,
)

pytestmark = pytest.mark.unit

REQUESTER_ID = "n-requester"


async def eventually(condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll `condition` until truthy or fail after `timeout` (a bounded wait, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.002)


class FakeCompute:
    """A compute peer that bids and runs instantly. behaviour: ok | fail | reject | hang."""

    def __init__(self, net: InProcessNetwork, node_id: str, behaviour: str = "ok") -> None:
        self.node_id = node_id
        self.behaviour = behaviour
        self.transport = net.transport(node_id)
        self.transport.serve(PROTOCOL_COMPUTE, self.handle)
        self.received: list[tuple[str, dict]] = []
        self._tasks: set[asyncio.Task] = set()

    def types(self) -> list[str]:
        return [t for t, _ in self.received]

    async def handle(self, sender: str, payload: bytes) -> bytes:
        env = m.decode(payload)
        self.received.append((env.type, env.payload))
        if env.type == m.ASK_FOR_BID:
            execution = env.payload["Execution"]
            assert execution["Job"]["ID"] == execution["JobID"]
            direct = execution["DesiredState"]["StateType"] == Desired.RUNNING
            self._later(self._bid(sender, execution["ID"], execution["JobID"], direct))
        elif env.type == m.BID_ACCEPTED:
            self._later(self._finish(sender, env.payload["ExecutionID"]))
        elif env.type == m.EXECUTION_LOGS:
            offset = env.payload["Offset"]
            lines = [{"Type": 1, "Line": "hello"}, {"Type": 2, "Line": "oops"}][offset:]
            return orjson.dumps({"Lines": lines[:1], "Offset": offset + len(lines[:1]),
                                 "Done": offset + 1 >= 2})
        return m.reply_ok()

    def _later(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, peer: str, msg_type: str, execution_id: str, **payload: Any) -> None:
        payload = {"ExecutionID": execution_id, "JobType": "batch", **payload}
        await self.transport.request(peer, PROTOCOL_ORCHESTRATOR, m.encode(msg_type, payload))

    async def _bid(self, peer: str, execution_id: str, job_id: str, direct: bool) -> None:
        accepted = self.behaviour != "reject"
        reason = "" if accepted else "rejected bid: this node does not like you"
        await self._report(peer, m.BID_RESULT, execution_id, JobID=job_id, Accepted=accepted,
                           Events=[Event.new(Topic.EXEC_SCANNING, reason or "bid").to_dict()])
        if accepted and direct:
            await self._finish(peer, execution_id)

    async def _finish(self, peer: str, execution_id: str) -> None:
        if self.behaviour == "hang":
            return
        if self.behaviour == "fail":
            await self._report(peer, m.COMPUTE_ERROR, execution_id, Events=[
                Event.error(Topic.RUNNING, f"boom on {self.node_id}").to_dict()])
            return
        await self._report(
            peer, m.RUN_RESULT, execution_id,
            Events=[Event.new(Topic.EXECUTION, "Completed successfully").to_dict()],
            PublishResult={"Type": "local", "Params": {"URL": f"http://x/{execution_id}"}},
            RunCommandResult={"Stdout": "hello\n", "ExitCode": 0})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.transport.close()


class Harness:
    def __init__(self, tmp_path, **settings: Any) -> None:
        self.net = InProcessNetwork()
        self.path = tmp_path / "orchestrator" / "jobs.db"
        self.settings = {
            "Orchestrator.Scheduler.WorkerCount": 2,
            "Orchestrator.Scheduler.QueueBackoff": "50ms",
            "Orchestrator.Scheduler.HousekeepingInterval": "50ms",
            "Orchestrator.Scheduler.TimeoutBuffer": "0s",
            "Orchestrator.EvaluationBroker.NackDelays": "10ms",
            "Orchestrator.NodeManager.DisconnectTimeout": "10ms",
            **settings,
        }
        self.nodes = StubNodeManager()
        self.computes: dict[str, FakeCompute] = {}
        self.requester: Requester | None = None

    def config(self) -> Config:
        config = Config()
        for key, value in self.settings.items():
            config.set(key, value)
        return config

    async def start(self) -> Requester:
        self.store = JobStore(self.path)
        self.transport = self.net.transport(REQUESTER_ID)
        await self.transport.start()
        self.requester = Requester(
            self.config(), self.store, self.transport,
            NodeInfo(node_id=REQUESTER_ID, node_type=NODE_TYPE_REQUESTER),
            nodes=self.nodes, selector=StubNodeSelector(self.nodes))
        await self.requester.start()
        return self.requester

    async def stop(self) -> None:
        if self.requester is not None:
            await self.requester.stop()
            await self.transport.close()
            self.store.close()
            self.requester = None

    async def add_compute(self, node_id: str, behaviour: str = "ok", *,
                          start: bool = True) -> FakeCompute:
        compute = FakeCompute(self.net, node_id, behaviour)
        self.computes[node_id] = compute
        if start:
            await compute.transport.start()
        self.nodes.add(make_node_info(node_id))
        return compute

    async def close(self) -> None:
        await self.stop()
        for compute in self.computes.values():
            await compute.close()

    async def wait_state(self, job_id: str, *states: JobStateType, timeout: float = 5.0):
        def check():
            job = self.store.get_job(job_id)
            return job if job.state_type in states else None
        try:
            return await eventually(check, timeout, f"job {job_id} in {states}")
        except AssertionError:
            job = self.store.get_job(job_id)
            raise AssertionError(f"job is {job.state_type}: {job.state.message}") from None


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    await h.close()


async def test_submit_to_completed(harness):
    c1 = await harness.add_compute("n-c1")
    requester = await harness.start()
    started = time.perf_counter()
    result = await requester.submit_job(job_spec())
    job = await harness.wait_state(result.job_id, JobStateType.COMPLETED)
    elapsed = time.perf_counter() - started
    print(f"submit -> Completed: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0, f"submit -> Completed took {elapsed:.3f}s"
    assert result.warnings == [] and result.evaluation_id
    assert job.meta["bacalhau.org/requester.id"] == REQUESTER_ID
    assert job.task.resources.cpu == "500m" and job.task.resources.memory == "512mb"
    (e,) = requester.job_executions(job.id)
    assert e.compute_state.state_type == Compute.COMPLETED
    assert e.desired_state.state_type == Desired.STOPPED
    assert e.run_output.stdout == "hello\n"
    assert requester.job_results(job.id)[0].params["URL"] == f"http://x/{e.id}"
    # a batch execution is a direct bid: the node runs it on accepting, no BidAccepted
    assert c1.types() == [m.ASK_FOR_BID]
    assert c1.received[0][1]["Execution"]["DesiredState"]["StateType"] == Desired.RUNNING
    history, next_offset = requester.job_history(job.id)
    messages_ = [h.event.message for h in history]
    assert messages_[0] == "Job submitted"
    # the same events, in the same order, as with an approval round
    requested = next(i for i, x in enumerate(messages_)
                     if x.startswith("Requested execution on n-c1"))
    assert messages_[requested + 1] == "Job running"
    accepted = next(i for i, x in enumerate(messages_) if x.startswith("Bid accepted for n-c1"))
    assert requested + 1 < accepted < messages_.index("Completed successfully")
    assert [h.event.details.get("NewState") for h in history
            if h.event.topic == Topic.STATE_UPDATE] == ["Running", "Completed"]
    assert next_offset == len(history)
    await eventually(lambda: not harness.store.pending_evaluations(), what="evals done")
    await eventually(lambda: not harness.store.pending_outbox(), what="outbox drained")
    assert harness.store.get_evaluation(result.evaluation_id).status == EvalStatus.COMPLETE


async def test_stop_cancels_executions(harness):
    c1 = await harness.add_compute("n-c1", "hang")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await harness.wait_state(job_id, JobStateType.RUNNING)
    eval_id = await requester.stop_job(job_id, "default", "")
    assert eval_id
    job = await harness.wait_state(job_id, JobStateType.STOPPED)
    assert job.state.message == "Job requested to stop before completion"
    (e,) = await eventually(lambda: [x for x in requester.job_executions(job_id)
                                     if x.desired_state.state_type == Desired.STOPPED])
    assert e.compute_state.state_type == Compute.CANCELLED
    await eventually(lambda: m.CANCEL_EXECUTION in c1.types(), what="cancel sent")
    assert await requester.stop_job(job_id, "default", "") == ""
    stop_events = [h for h in requester.job_history(job_id)[0]
                   if h.event.details.get("NewState") == "Stopped"]
    assert len(stop_events) == 1


async def test_stopping_completed_job_is_refused(harness):
    await harness.add_compute("n-c1")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await harness.wait_state(job_id, JobStateType.COMPLETED)
    with pytest.raises(ValidationError, match="is already Completed and cannot be stopped"):
        await requester.stop_job(job_id, "default", "please")


async def test_retry_on_another_node_after_compute_error(harness):
    await harness.add_compute("n-c1", "fail")
    await harness.add_compute("n-c2", "ok")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await harness.wait_state(job_id, JobStateType.COMPLETED)
    states = {e.node_id: e.compute_state for e in requester.job_executions(job_id)}
    assert states["n-c1"].state_type == Compute.FAILED
    assert states["n-c1"].message == "boom on n-c1"
    assert states["n-c2"].state_type == Compute.COMPLETED


async def test_failure_everywhere_fails_with_reasons(harness):
    await harness.add_compute("n-c1", "fail")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    job = await harness.wait_state(job_id, JobStateType.FAILED)
    assert job.state.message.startswith("not enough nodes to run job.")
    assert "last attempt: node n-c1 failed: boom on n-c1" in job.state.message


async def test_not_enough_nodes(harness):
    await harness.add_compute("n-c1")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(engine="docker"))).job_id
    job = await harness.wait_state(job_id, JobStateType.FAILED)
    assert job.state.message.startswith(
        "not enough nodes to run job. requested: 1, available: 1, suitable: 0.")
    assert "does not support docker" in job.state.message
    assert requester.job_executions(job_id) == []


async def test_queued_until_a_node_joins(harness):
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(queue_timeout=30))).job_id
    job = await harness.wait_state(job_id, JobStateType.QUEUED)
    assert job.state.message.startswith("Job queued. not enough nodes to run job.")
    await harness.add_compute("n-c1")
    await harness.wait_state(job_id, JobStateType.COMPLETED)


async def test_a_joining_node_wakes_a_queued_job_before_its_backoff(tmp_path):
    h = Harness(tmp_path, **{"Orchestrator.Scheduler.QueueBackoff": "1h"})
    try:
        requester = await h.start()
        job_id = (await requester.submit_job(job_spec(queue_timeout=7200))).job_id
        await h.wait_state(job_id, JobStateType.QUEUED)
        await h.add_compute("n-c1")  # not an hour: the join wakes it
        await h.wait_state(job_id, JobStateType.COMPLETED, timeout=10)
    finally:
        await h.close()


async def test_total_timeout_fails_job(harness):
    await harness.add_compute("n-c1", "hang")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(total_timeout=1))).job_id
    job = await harness.wait_state(job_id, JobStateType.FAILED, timeout=5)
    assert job.state.message == "job exceeded total timeout of 1s"
    (e,) = requester.job_executions(job_id)
    assert e.desired_state.state_type == Desired.STOPPED


async def test_node_leaving_moves_execution(harness):
    await harness.add_compute("n-c1", "hang")
    await harness.add_compute("n-c2", "ok")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await harness.wait_state(job_id, JobStateType.RUNNING)
    await eventually(lambda: requester._grace_until < asyncio.get_running_loop().time())
    harness.nodes.set_connected("n-c1", False)
    await harness.wait_state(job_id, JobStateType.COMPLETED)
    lost = next(e for e in requester.job_executions(job_id) if e.node_id == "n-c1")
    assert lost.compute_state.state_type == Compute.FAILED
    assert lost.compute_state.message == "Execution stop requested because node has disappeared"


async def test_ops_job_runs_everywhere(harness):
    c1 = await harness.add_compute("n-c1")
    await harness.add_compute("n-c2")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(type="ops"))).job_id
    await harness.wait_state(job_id, JobStateType.COMPLETED)
    assert sorted(e.node_id for e in requester.job_executions(job_id)) == ["n-c1", "n-c2"]
    assert c1.types() == [m.ASK_FOR_BID]  # direct bid, no approval round


async def test_update_by_name_and_warnings(harness):
    await harness.add_compute("n-c1")
    requester = await harness.start()
    spec = job_spec(name="same")
    spec.id = "j-mine"
    spec.meta["bacalhau.org/requester.id"] = "forged"
    first = await requester.submit_job(spec)
    assert first.job_id != "j-mine"
    assert any("j-mine" in w for w in first.warnings)
    assert any("reserved" in w for w in first.warnings)
    await harness.wait_state(first.job_id, JobStateType.COMPLETED)
    with pytest.raises(ConflictError, match="no changes detected for job same"):
        await requester.submit_job(job_spec(name="same"))
    second = await requester.submit_job(job_spec(name="same"), force=True)
    assert second.job_id == first.job_id
    job = await harness.wait_state(first.job_id, JobStateType.COMPLETED)
    assert job.version == 2
    assert [j.version for j in requester.job_versions("same")] == [1, 2]
    assert len(requester.job_executions(job.id)) == 1
    assert len(requester.job_executions(job.id, all_versions=True)) == 2
    assert requester.get_job("same", version=1).version == 1
    page, more = requester.list_jobs("default", 10, 0, "", False, [])
    assert [j.id for j in page] == [job.id] and not more


async def test_unsent_messages_and_pending_evaluations_survive_restart(harness):
    compute = await harness.add_compute("n-c1", start=False)  # unreachable for now
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await eventually(lambda: any(r.attempts for r in harness.store.pending_outbox()),
                     what="a failed delivery")
    await harness.stop()
    # a job written but never scheduled before the "crash"
    store = JobStore(harness.path)
    waiting, _ = store.create_or_update_job(job_spec(name="waiting").copy())
    store.create_evaluation(make_evaluation(waiting))
    store.close()
    await compute.transport.start()
    await harness.start()
    await harness.wait_state(job_id, JobStateType.COMPLETED)
    await harness.wait_state(waiting.id, JobStateType.COMPLETED)


async def test_stream_logs(harness):
    await harness.add_compute("n-c1", "hang")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec())).job_id
    await harness.wait_state(job_id, JobStateType.RUNNING)
    lines = [x async for x in requester.stream_logs(job_id, "", follow=True, tail=False)]
    assert lines == [(1, "hello"), (2, "oops")]
    exec_id = requester.job_executions(job_id)[0].id
    lines = [x async for x in requester.stream_logs(job_id, exec_id[:6], follow=False,
                                                    tail=False)]
    assert lines == [(1, "hello"), (2, "oops")]


async def test_node_calls_are_delegated(harness):
    await harness.add_compute("n-c1")
    requester = await harness.start()
    assert [s.node_id for s in requester.list_nodes()] == ["n-c1"]
    assert requester.get_node("n-c").node_id == "n-c1"
    await requester.node_action("n-c1", "reject", "bad")
    assert harness.nodes.actions == [("n-c1", "reject", "bad")]


def _native_ranking() -> bool:
    try:
        from bacalhau._native import NodeTable, not_enough_nodes_message  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _native_ranking(), reason="native ranking not built")
async def test_with_real_node_manager_and_selector(tmp_path):
    from bacalhau.models import Resources
    from bacalhau.orchestrator.nodes import NodeManager
    from bacalhau.orchestrator.selection import NodeSelector
    from bacalhau.store.nodestore import NodeStore

    h = Harness(tmp_path, **{"Orchestrator.NodeManager.DisconnectTimeout": "60s"})
    compute = FakeCompute(h.net, "n-real1")
    h.computes[compute.node_id] = compute
    await compute.transport.start()
    store = JobStore(h.path)
    transport = h.net.transport(REQUESTER_ID)
    await transport.start()
    info = NodeInfo(node_id=REQUESTER_ID, node_type=NODE_TYPE_REQUESTER)
    config = h.config()
    nodes = NodeManager(config, NodeStore(store.db), transport, info)
    requester = Requester(config, store, transport, info, nodes=nodes,
                          selector=NodeSelector(nodes, config))
    await requester.start()
    try:
        node = make_node_info("n-real1")
        big = Resources(cpu=4, memory=8_000_000_000, disk=100_000_000_000)
        cni = node.compute_node_info
        cni.max_capacity = cni.available_capacity = cni.max_job_requirements = big
        await register_node(compute.transport, REQUESTER_ID, node)
        await eventually(lambda: nodes.is_schedulable("n-real1"), what="node registered")
        job_id = (await requester.submit_job(job_spec())).job_id
        await eventually(lambda: store.get_job(job_id).is_terminal(), what="job done")
        job = store.get_job(job_id)
        assert job.state_type == JobStateType.COMPLETED, job.state.message
        failed_id = (await requester.submit_job(job_spec(engine="docker"))).job_id
        await eventually(lambda: store.get_job(failed_id).state_type == JobStateType.FAILED)
        message = store.get_job(failed_id).state.message
        assert message.startswith("not enough nodes to run job. requested: 1")
    finally:
        await requester.stop()
        await transport.close()
        await compute.close()
        store.close()


@pytest.mark.skipif(not _native_ranking(), reason="native ranking not built")
async def test_a_restart_keeps_the_nodes_schedulable(tmp_path):
    """Regression (issue 17, requester restart): a restarted requester treated every node as
    DISCONNECTED until it spoke again (up to a heartbeat interval), so work evaluated in that
    window found no node: a job submitted then failed with "not enough nodes ... available:
    0". Nodes that were CONNECTED now stay so with a fresh DisconnectTimeout (Nomad resets
    node heartbeat timers on a leader change the same way); a restart costs no outcome."""
    from bacalhau.models import Resources
    from bacalhau.orchestrator.nodes import NodeManager
    from bacalhau.orchestrator.selection import NodeSelector
    from bacalhau.store.nodestore import NodeStore

    h = Harness(tmp_path, **{"Orchestrator.NodeManager.DisconnectTimeout": "60s"})
    compute = FakeCompute(h.net, "n-busy", behaviour="hang")  # accepts, runs for ever
    h.computes[compute.node_id] = compute
    await compute.transport.start()
    info = NodeInfo(node_id=REQUESTER_ID, node_type=NODE_TYPE_REQUESTER)

    async def start_requester() -> tuple[Requester, JobStore, Any]:
        store = JobStore(h.path)
        transport = h.net.transport(REQUESTER_ID)
        await transport.start()
        nodes = NodeManager(h.config(), NodeStore(store.db), transport, info)
        requester = Requester(h.config(), store, transport, info, nodes=nodes,
                              selector=NodeSelector(nodes, h.config()))
        await requester.start()
        return requester, store, transport

    requester, store, transport = await start_requester()
    node = make_node_info("n-busy")
    big = Resources(cpu=4, memory=8_000_000_000, disk=100_000_000_000)
    cni = node.compute_node_info
    cni.max_capacity = cni.available_capacity = cni.max_job_requirements = big
    await register_node(compute.transport, REQUESTER_ID, node)
    await eventually(lambda: requester.nodes.is_schedulable("n-busy"), what="node registered")
    job_id = (await requester.submit_job(job_spec())).job_id

    def running() -> bool:
        return any(e.compute_state_type == Compute.BID_ACCEPTED
                   for e in store.get_executions(job_id))

    await eventually(running, what="the execution to run")
    await requester.stop()
    await transport.close()
    # The crash left an evaluation of the job to do (e.g. a report that arrived just before).
    job = store.get_job(job_id)
    pending = make_evaluation(job, "exec-update")
    store.create_evaluation(pending)
    store.close()

    requester, store, transport = await start_requester()  # the node has not spoken since
    try:
        await eventually(lambda: store.get_evaluation(pending.id).status != EvalStatus.PENDING,
                         what="the evaluation after the restart")
        [execution] = store.get_executions(job_id)
        assert execution.compute_state_type == Compute.BID_ACCEPTED, execution.compute_state
        assert store.get_job(job_id).state_type == JobStateType.RUNNING
        assert requester.nodes.is_schedulable("n-busy")
        # a job submitted now is placed on the node, not failed for want of nodes
        second = (await requester.submit_job(job_spec())).job_id
        await eventually(lambda: store.get_executions(second), what="the second job placed")
        assert store.get_job(second).state_type != JobStateType.FAILED, \
            store.get_job(second).state.message
    finally:
        await requester.stop()
        await transport.close()
        store.close()
        await compute.close()
