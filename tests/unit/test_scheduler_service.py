"""Service jobs: `Count` long-running executions (bid, then approval, as batch), replaced when
they fail, end or lose their node; no timeouts, never Completed; `job stop` ends them; a new
version rolls partition by partition (batch jobs cancel old versions at once).

First the scheduler as a pure function (tests.factories), then the Requester in one process
with fake compute peers (the harness of test_requester.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bacalhau.models import EvalTrigger, Event, JobStateType, Topic
from bacalhau.orchestrator.scheduler import BatchScheduler, SchedulerContext, scheduler_for
from bacalhau.orchestrator.scheduler.base import NODE_LOST
from bacalhau.transport import PROTOCOL_ORCHESTRATOR
from bacalhau.transport import messages as m
from tests.factories import (
    Compute,
    Desired,
    job_spec,
    make_evaluation,
    make_execution,
    make_job,
    make_node_info,
    stub_selection,
)
from tests.unit.test_requester import FakeCompute, Harness, eventually

pytestmark = pytest.mark.unit

NS = 1_000_000_000
NOW = 1_000_000 * NS
SERVICE = BatchScheduler(long_running=True)


def ctx(matched=("n-1", "n-2", "n-3"), alive=None) -> SchedulerContext:
    schedulable = set(matched if alive is None else alive)
    return SchedulerContext(now=NOW, is_schedulable=lambda n: n in schedulable,
                            select=lambda job, execs: stub_selection(matched))


def run(job, executions=(), context=None, trigger=EvalTrigger.EXEC_UPDATE,
        scheduler=SERVICE):
    return scheduler.process(make_evaluation(job, trigger), job, list(executions),
                             context or ctx())


def running(job, node_id, partition=0, **kw):
    return make_execution(job, node_id, partition=partition, desired=Desired.RUNNING,
                          compute=Compute.BID_ACCEPTED, **kw)


def service_job(**kw):
    kw.setdefault("create_time", NOW)
    kw.setdefault("count", 2)
    return make_job(type="service", **kw)


# ---------------------------------------------------------------- the scheduler


def test_service_type_uses_the_long_running_partitioned_scheduler():
    scheduler = scheduler_for("service")
    assert isinstance(scheduler, BatchScheduler) and scheduler.long_running


def test_register_asks_count_nodes_to_bid_then_approves():
    job = service_job()
    plan = run(job, trigger=EvalTrigger.JOB_REGISTER)
    assert [(e.node_id, e.partition_index) for e in plan.new_executions] == [
        ("n-1", 0), ("n-2", 1)]
    assert all(e.desired_state.state_type == Desired.PENDING for e in plan.new_executions)
    assert plan.new_state is None
    a = make_execution(job, "n-1", partition=0, compute=Compute.ASK_FOR_BID_ACCEPTED)
    b = make_execution(job, "n-2", partition=1, compute=Compute.ASK_FOR_BID_ACCEPTED)
    plan = run(job, [a, b])
    for e in (a, b):
        update = plan.updates[e.id].execution
        assert update.desired_state.state_type == Desired.RUNNING
        assert update.compute_state.state_type == Compute.BID_ACCEPTED
    assert plan.job_state == JobStateType.RUNNING


@pytest.mark.parametrize(("compute", "message"), [
    (Compute.FAILED, "execution ended unexpectedly (long-running jobs should not exit)"),
    (Compute.FAILED, "boom"),
    (Compute.COMPLETED, ""),  # a service never completes: an ended execution is replaced
])
def test_an_execution_that_ended_is_replaced_and_the_job_keeps_running(compute, message):
    job = service_job(state=JobStateType.RUNNING)
    keep = running(job, "n-1", 0)
    ended = make_execution(job, "n-2", partition=1, desired=Desired.STOPPED, compute=compute,
                           message=message)
    plan = run(job, [keep, ended])
    (new,) = plan.new_executions
    assert new.partition_index == 1 and new.node_id == "n-1"  # stub ranks by id
    assert plan.new_state is None and plan.updates == {}


def test_lost_node_execution_fails_and_is_replaced_in_the_same_plan():
    job = service_job(state=JobStateType.RUNNING)
    keep, lost = running(job, "n-1", 0), running(job, "n-2", 1)
    plan = run(job, [keep, lost], context=ctx(matched=("n-1", "n-3")),
               trigger=EvalTrigger.NODE_LEAVE)
    update = plan.updates[lost.id].execution
    assert update.compute_state.state_type == Compute.FAILED
    assert update.compute_state.message == NODE_LOST
    (new,) = plan.new_executions
    assert new.partition_index == 1
    assert plan.new_state is None


def test_no_timeouts_apply():
    job = service_job(count=1, state=JobStateType.RUNNING, execution_timeout=1,
                      total_timeout=2, create_time=NOW - 3600 * NS)
    e = running(job, "n-1", create_time=NOW - 3600 * NS, modify_time=NOW - 3600 * NS)
    assert run(job, [e], trigger=EvalTrigger.EXEC_TIMEOUT).is_empty()


def test_stopped_service_cancels_its_executions():
    job = service_job(state=JobStateType.STOPPED)
    a, b = running(job, "n-1", 0), make_execution(job, "n-2", partition=1)
    plan = run(job, [a, b], trigger=EvalTrigger.JOB_CANCEL)
    assert {u.execution.compute_state.state_type for u in plan.updates.values()} == {
        Compute.CANCELLED}
    assert set(plan.updates) == {a.id, b.id} and plan.new_executions == []


def test_update_rolls_partition_by_partition():
    v2 = service_job(version=2, state=JobStateType.PENDING)
    old0 = running(v2, "n-1", 0, job_version=1)
    old1 = running(v2, "n-2", 1, job_version=1)
    bidding = make_execution(v2, "n-3", partition=1, job_version=1)  # v1, not yet approved
    plan = run(v2, [old0, old1, bidding], trigger=EvalTrigger.JOB_UPDATE)
    # the old pending bid goes at once; running old executions keep serving meanwhile
    assert set(plan.updates) == {bidding.id}
    assert plan.updates[bidding.id].execution.compute_state.state_type == Compute.CANCELLED
    assert sorted(e.partition_index for e in plan.new_executions) == [0, 1]
    assert all(e.job_version == 2 for e in plan.new_executions)

    # partition 0's new execution is accepted and approved: its old one is cancelled
    new0 = make_execution(v2, "n-3", partition=0, compute=Compute.ASK_FOR_BID_ACCEPTED)
    new1 = make_execution(v2, "n-1", partition=1, compute=Compute.NEW)
    plan = run(v2, [old0, old1, new0, new1])
    assert plan.updates[new0.id].execution.desired_state.state_type == Desired.RUNNING
    assert set(plan.updates) == {new0.id, old0.id}
    old_update = plan.updates[old0.id].execution
    assert old_update.compute_state.state_type == Compute.CANCELLED
    assert "updated to version 2 and its replacement runs" in old_update.compute_state.message
    assert plan.job_state == JobStateType.RUNNING


def test_update_that_cannot_be_placed_fails_and_stops_the_old_version():
    v2 = service_job(count=1, version=2, state=JobStateType.PENDING)
    old = running(v2, "n-1", 0, job_version=1)
    plan = run(v2, [old], context=ctx(matched=(), alive=("n-1",)),
               trigger=EvalTrigger.JOB_UPDATE)
    assert plan.job_state == JobStateType.FAILED
    assert plan.updates[old.id].execution.compute_state.state_type == Compute.CANCELLED


def test_batch_update_cancels_the_old_version_at_once():
    v2 = make_job(version=2, create_time=NOW, state=JobStateType.RUNNING)
    old = running(v2, "n-1", 0, job_version=1)
    plan = run(v2, [old], trigger=EvalTrigger.JOB_UPDATE, scheduler=BatchScheduler())
    assert plan.updates[old.id].execution.compute_state.state_type == Compute.CANCELLED
    (new,) = plan.new_executions
    assert new.job_version == 2


# ---------------------------------------------------------------- the requester, in process


class ServiceCompute(FakeCompute):
    """A fake compute that reports like a real one for a service job (JobType service)."""

    async def _report(self, peer: str, msg_type: str, execution_id: str, **payload: Any) -> None:
        payload = {"ExecutionID": execution_id, "JobType": "service", **payload}
        await self.transport.request(peer, PROTOCOL_ORCHESTRATOR, m.encode(msg_type, payload))

    async def end(self, peer: str, execution_id: str) -> None:
        """The workload exits on its own (a RunResult, as a real compute sends it)."""
        await self._report(peer, m.RUN_RESULT, execution_id,
                           Events=[Event.new(Topic.EXECUTION, "Completed successfully")
                                   .to_dict()],
                           RunCommandResult={"ExitCode": 0})


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    await h.close()


async def add(harness: Harness, node_id: str) -> ServiceCompute:
    compute = ServiceCompute(harness.net, node_id, "hang")
    harness.computes[node_id] = compute
    await compute.transport.start()
    harness.nodes.add(make_node_info(node_id))
    return compute


def serving(requester, job_id):
    return {e.partition_index: e for e in requester.job_executions(job_id)
            if not e.is_terminal() and e.desired_state.state_type == Desired.RUNNING}


async def test_service_keeps_count_executions_running(harness):
    for node in ("n-c1", "n-c2", "n-c3"):
        await add(harness, node)
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(type="service", count=2))).job_id
    await harness.wait_state(job_id, JobStateType.RUNNING)
    first = await eventually(lambda: len(serving(requester, job_id)) == 2
                             and serving(requester, job_id), what="two running")
    assert sorted(first) == [0, 1]
    await eventually(lambda: requester._grace_until < asyncio.get_running_loop().time(),
                     what="restart grace over")

    # the node of partition 0 is lost: partition 0 runs again elsewhere
    lost_node = first[0].node_id
    harness.nodes.set_connected(lost_node, False)

    def replaced():
        now = serving(requester, job_id)
        return len(now) == 2 and now[0].id != first[0].id and now

    after_loss = await eventually(replaced, what="partition 0 replaced")
    assert after_loss[0].node_id != lost_node
    assert after_loss[1].id == first[1].id
    lost = next(e for e in requester.job_executions(job_id) if e.id == first[0].id)
    assert lost.compute_state.state_type == Compute.FAILED

    # partition 1's workload exits by itself: a failure for a service, replaced too
    compute = harness.computes[after_loss[1].node_id]
    await compute.end("n-requester", after_loss[1].id)

    def replaced_again():
        now = serving(requester, job_id)
        return len(now) == 2 and now[1].id != after_loss[1].id and now

    await eventually(replaced_again, what="partition 1 replaced")
    ended = next(e for e in requester.job_executions(job_id) if e.id == after_loss[1].id)
    assert ended.compute_state.state_type == Compute.FAILED
    assert "long-running jobs should not exit" in ended.compute_state.message
    assert harness.store.get_job(job_id).state_type == JobStateType.RUNNING

    await requester.stop_job(job_id, "default", "")
    await harness.wait_state(job_id, JobStateType.STOPPED)
    await eventually(lambda: all(e.is_terminal() for e in requester.job_executions(job_id)),
                     what="all stopped")
