"""Daemon jobs: one long-running execution on every matching node, nodes that join later
included; no timeouts, never Completed; lost nodes' executions fail; `job stop` ends them; a
new version rolls node by node.

First the scheduler as a pure function (tests.factories), then the Requester in one process
with fake compute peers (the harness of test_requester.py): node join/leave through the node
manager's listener, stop, and an update by name.
"""

from __future__ import annotations

import asyncio

import pytest

from bacalhau.models import EvalTrigger, JobStateType
from bacalhau.orchestrator.scheduler import OpsScheduler, SchedulerContext, scheduler_for
from bacalhau.orchestrator.scheduler.base import NODE_LOST
from bacalhau.transport import messages as m
from tests.factories import (
    Compute,
    Desired,
    StubNodeManager,
    StubNodeSelector,
    job_spec,
    make_evaluation,
    make_execution,
    make_job,
    make_node_info,
    stub_selection,
)
from tests.unit.test_requester import Harness, eventually

pytestmark = pytest.mark.unit

NS = 1_000_000_000
NOW = 1_000_000 * NS
DAEMON = OpsScheduler(long_running=True)


def ctx(matched=("n-1", "n-2"), now=NOW, alive=None) -> SchedulerContext:
    schedulable = set(matched if alive is None else alive)
    return SchedulerContext(now=now, is_schedulable=lambda n: n in schedulable,
                            select=lambda job, execs: stub_selection(matched))


def run(job, executions=(), context=None, trigger=EvalTrigger.JOB_REGISTER):
    return DAEMON.process(make_evaluation(job, trigger), job, list(executions),
                          context or ctx())


def running(job, node_id, **kw):
    return make_execution(job, node_id, desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED,
                          **kw)


def daemon_job(**kw):
    kw.setdefault("create_time", NOW)
    return make_job(type="daemon", **kw)


# ---------------------------------------------------------------- the scheduler


def test_daemon_type_uses_the_long_running_ops_scheduler():
    scheduler = scheduler_for("daemon")
    assert isinstance(scheduler, OpsScheduler) and scheduler.long_running


def test_register_runs_directly_on_every_matching_node():
    job = daemon_job()
    plan = run(job)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-1", "n-2"]
    assert all(e.desired_state.state_type == Desired.RUNNING for e in plan.new_executions)
    assert plan.job_state == JobStateType.RUNNING


@pytest.mark.parametrize("trigger", [EvalTrigger.NODE_JOIN, EvalTrigger.EXEC_UPDATE,
                                     EvalTrigger.NODE_LEAVE])
def test_every_evaluation_adds_the_nodes_without_a_live_execution(trigger):
    job = daemon_job(state=JobStateType.RUNNING)
    existing = running(job, "n-1")
    plan = run(job, [existing], context=ctx(matched=("n-1", "n-2", "n-3")), trigger=trigger)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-2", "n-3"]
    assert plan.updates == {} and plan.new_state is None


def test_no_timeouts_apply():
    job = daemon_job(state=JobStateType.RUNNING, execution_timeout=1, total_timeout=2,
                     create_time=NOW - 3600 * NS)
    old = running(job, "n-1", create_time=NOW - 3600 * NS, modify_time=NOW - 3600 * NS)
    other = running(job, "n-2", create_time=NOW - 3600 * NS, modify_time=NOW - 3600 * NS)
    plan = run(job, [old, other], trigger=EvalTrigger.JOB_TIMEOUT)
    assert plan.is_empty()


def test_never_completes_and_replaces_what_ended():
    job = daemon_job(state=JobStateType.RUNNING)
    ended = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    failed = make_execution(job, "n-2", desired=Desired.STOPPED, compute=Compute.FAILED,
                            message="execution ended unexpectedly")
    plan = run(job, [ended, failed], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.new_state is None
    assert sorted(e.node_id for e in plan.new_executions) == ["n-1", "n-2"]


def test_without_any_node_the_daemon_waits_instead_of_failing():
    plan = run(daemon_job(), context=ctx(matched=()))
    assert plan.new_state is None and plan.new_executions == []
    queued = run(daemon_job(queue_timeout=60), context=ctx(matched=()))
    assert queued.job_state == JobStateType.QUEUED


def test_lost_node_fails_its_execution_and_the_job_keeps_running():
    job = daemon_job(state=JobStateType.RUNNING)
    kept, lost = running(job, "n-1"), running(job, "n-gone")
    plan = run(job, [kept, lost], context=ctx(matched=("n-1",)), trigger=EvalTrigger.NODE_LEAVE)
    update = plan.updates[lost.id].execution
    assert update.compute_state.state_type == Compute.FAILED
    assert update.desired_state.state_type == Desired.STOPPED
    assert update.compute_state.message == NODE_LOST
    assert kept.id not in plan.updates
    assert plan.new_executions == [] and plan.new_state is None


def test_a_node_that_was_lost_twice_still_gets_the_daemon_back():
    nodes = StubNodeManager()
    nodes.add(make_node_info("n-1"))
    selector = StubNodeSelector(nodes)
    context = SchedulerContext(now=NOW, is_schedulable=nodes.is_schedulable,
                               select=selector.select)
    job = daemon_job(engine="noop", state=JobStateType.RUNNING)
    lost = [make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.FAILED,
                           message=NODE_LOST) for _ in range(2)]
    plan = run(job, lost, context=context, trigger=EvalTrigger.NODE_JOIN)
    assert [e.node_id for e in plan.new_executions] == ["n-1"]
    # executions that failed on their own still count: one retry per node, then no more
    crashed = [make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.FAILED,
                              message="execution ended unexpectedly") for _ in range(2)]
    plan = run(job, crashed, context=context, trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.new_executions == []


def test_stopped_job_cancels_every_live_execution():
    job = daemon_job(state=JobStateType.STOPPED)
    a, b = running(job, "n-1"), running(job, "n-2")
    done = make_execution(job, "n-3", desired=Desired.STOPPED, compute=Compute.FAILED)
    plan = run(job, [a, b, done], trigger=EvalTrigger.JOB_CANCEL)
    assert set(plan.updates) == {a.id, b.id}
    for update in plan.updates.values():
        assert update.execution.compute_state.state_type == Compute.CANCELLED
        assert update.execution.desired_state.state_type == Desired.STOPPED
    assert plan.new_executions == []


def test_update_rolls_node_by_node():
    v2 = daemon_job(version=2, state=JobStateType.PENDING)
    old1 = running(v2, "n-1", job_version=1)
    old2 = running(v2, "n-2", job_version=1)
    # the new version is requested beside the old one, which keeps running meanwhile
    plan = run(v2, [old1, old2], trigger=EvalTrigger.JOB_UPDATE)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-1", "n-2"]
    assert all(e.job_version == 2 for e in plan.new_executions)
    assert plan.updates == {}
    assert plan.job_state == JobStateType.RUNNING
    # n-1 accepted version 2: its old execution is cancelled, n-2's keeps running
    new1 = running(v2, "n-1")
    new2 = make_execution(v2, "n-2", desired=Desired.RUNNING, compute=Compute.NEW)
    plan = run(v2, [old1, old2, new1, new2], trigger=EvalTrigger.EXEC_UPDATE)
    assert set(plan.updates) == {old1.id}
    update = plan.updates[old1.id].execution
    assert update.compute_state.state_type == Compute.CANCELLED
    assert "updated to version 2 and its replacement runs" in update.compute_state.message
    assert plan.new_executions == []


def test_update_cancels_old_executions_on_nodes_the_new_version_does_not_match():
    v2 = daemon_job(version=2, state=JobStateType.RUNNING)
    old1, old2 = running(v2, "n-1", job_version=1), running(v2, "n-2", job_version=1)
    plan = run(v2, [old1, old2], context=ctx(matched=("n-1",), alive=("n-1", "n-2")),
               trigger=EvalTrigger.JOB_UPDATE)
    assert [e.node_id for e in plan.new_executions] == ["n-1"]
    assert set(plan.updates) == {old2.id}
    assert (plan.updates[old2.id].execution.compute_state.message
            == "Execution stop requested because job was updated to version 2")


def test_old_execution_whose_replacement_failed_is_cancelled():
    v2 = daemon_job(version=2, state=JobStateType.RUNNING)
    old = running(v2, "n-1", job_version=1)
    refused = [make_execution(v2, "n-1", desired=Desired.STOPPED,
                              compute=Compute.FAILED, message="image not found")
               for _ in range(2)]
    context = ctx(matched=(), alive=("n-1",))  # n-1 no longer ranks for version 2
    plan = run(v2, [old, *refused], context=context, trigger=EvalTrigger.EXEC_UPDATE)
    assert set(plan.updates) == {old.id}
    assert plan.updates[old.id].execution.compute_state.state_type == Compute.CANCELLED


# ---------------------------------------------------------------- the requester, in process


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    await h.close()


def live(requester, job_id):
    return {e.node_id: e for e in requester.job_executions(job_id) if not e.is_terminal()}


async def test_daemon_reaches_nodes_that_join_later_and_stop_ends_it(harness):
    c1 = await harness.add_compute("n-c1", "hang")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(type="daemon"))).job_id
    await harness.wait_state(job_id, JobStateType.RUNNING)
    await eventually(lambda: "n-c1" in live(requester, job_id), what="execution on n-c1")
    # stored before it is sent: wait for the message itself
    await eventually(lambda: c1.types() == [m.ASK_FOR_BID], what="n-c1 asked")
    assert c1.types() == [m.ASK_FOR_BID]  # a direct bid: no approval round

    c2 = await harness.add_compute("n-c2", "hang")  # the node manager says "join"
    execs = await eventually(lambda: len(live(requester, job_id)) == 2
                             and live(requester, job_id), what="execution on n-c2")
    assert execs["n-c2"].desired_state.state_type == Desired.RUNNING
    await eventually(lambda: m.ASK_FOR_BID in c2.types(), what="n-c2 asked to run")
    await eventually(lambda: all(e.compute_state.state_type == Compute.BID_ACCEPTED
                                 for e in live(requester, job_id).values()), what="accepted")

    await requester.stop_job(job_id, "default", "")
    await harness.wait_state(job_id, JobStateType.STOPPED)
    await eventually(lambda: not live(requester, job_id), what="executions stopped")
    assert all(e.compute_state.state_type == Compute.CANCELLED
               for e in requester.job_executions(job_id))
    await eventually(lambda: m.CANCEL_EXECUTION in c1.types()
                     and m.CANCEL_EXECUTION in c2.types(), what="both cancelled")


async def test_node_leaving_and_coming_back(harness):
    await harness.add_compute("n-c1", "hang")
    await harness.add_compute("n-c2", "hang")
    requester = await harness.start()
    job_id = (await requester.submit_job(job_spec(type="daemon"))).job_id
    await eventually(lambda: set(live(requester, job_id)) == {"n-c1", "n-c2"})
    await eventually(lambda: requester._grace_until < asyncio.get_running_loop().time(),
                     what="restart grace over")
    for _ in range(2):  # twice: a node that flaps keeps its daemon
        harness.nodes.set_connected("n-c1", False)
        await eventually(lambda: set(live(requester, job_id)) == {"n-c2"}, what="n-c1 lost")
        assert harness.store.get_job(job_id).state_type == JobStateType.RUNNING
        harness.nodes.set_connected("n-c1", True)
        await eventually(lambda: set(live(requester, job_id)) == {"n-c1", "n-c2"},
                         what="n-c1 back")
    lost = [e for e in requester.job_executions(job_id)
            if e.node_id == "n-c1" and e.is_terminal()]
    assert len(lost) == 2
    assert all(e.compute_state.message == NODE_LOST for e in lost)


async def test_update_by_name_rolls_to_the_new_version(harness):
    await harness.add_compute("n-c1", "hang")
    await harness.add_compute("n-c2", "hang")
    requester = await harness.start()
    first = await requester.submit_job(job_spec(type="daemon", name="agent"))
    await eventually(lambda: len(live(requester, first.job_id)) == 2)
    second = await requester.submit_job(job_spec(type="daemon", name="agent", priority=1))
    assert second.job_id == first.job_id

    def rolled():
        execs = [e for e in requester.job_executions(first.job_id, all_versions=True)
                 if not e.is_terminal()]
        return (sorted(e.node_id for e in execs) == ["n-c1", "n-c2"]
                and all(e.job_version == 2 for e in execs))

    await eventually(rolled, what="both nodes on version 2")
    job = await harness.wait_state(first.job_id, JobStateType.RUNNING)
    assert job.version == 2
    old = [e for e in requester.job_executions(first.job_id, all_versions=True)
           if e.job_version == 1]
    assert len(old) == 2
    assert all(e.compute_state.state_type == Compute.CANCELLED for e in old)


def test_a_busy_node_is_tried_again_with_backoff_a_bounded_number_of_times():
    """A node that comes back from a freeze or a partition may still be busy with its old
    executions when its join is evaluated: the daemon is evaluated again after 1, 2, 4, 8,
    16 s (found by tests/faults: a frozen node never got the daemon back)."""
    job = daemon_job()
    busy = stub_selection(["n-1"], rejected={"n-2": "node busy"})
    busy.retryable = True
    context = SchedulerContext(now=NOW, is_schedulable=lambda n: True,
                               select=lambda job, execs: busy)
    evaluation = make_evaluation(job, EvalTrigger.NODE_JOIN)
    delays = []
    for _ in range(7):
        plan = DAEMON.process(evaluation, job, [running(job, "n-1")], context)
        assert not plan.new_executions  # n-1 has one; n-2 is busy
        if not plan.new_evaluations:
            break
        (evaluation,) = plan.new_evaluations
        assert evaluation.triggered_by == EvalTrigger.JOB_QUEUE
        delays.append((evaluation.wait_until - NOW) / NS)
    assert delays == [1, 2, 4, 8, 16]

    free = stub_selection(["n-1", "n-2"])
    context = SchedulerContext(now=NOW, is_schedulable=lambda n: True,
                               select=lambda job, execs: free)
    plan = DAEMON.process(make_evaluation(job, EvalTrigger.JOB_QUEUE), job,
                          [running(job, "n-1")], context)
    assert [e.node_id for e in plan.new_executions] == ["n-2"] and not plan.new_evaluations
