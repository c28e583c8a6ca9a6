"""Batch (and service) scheduler as a pure function: job + executions + node view -> Plan."""

from __future__ import annotations

import pytest

from bacalhau.models import EvalTrigger, JobStateType, Topic
from bacalhau.orchestrator.scheduler import BatchScheduler, SchedulerContext
from tests.factories import (
    Compute,
    Desired,
    make_evaluation,
    make_execution,
    make_job,
    stub_selection,
)

pytestmark = pytest.mark.unit

NS = 1_000_000_000
NOW = 1_000_000 * NS


def ctx(matched=("n-1", "n-2", "n-3"), rejected=None, schedulable=None, **kw) -> SchedulerContext:
    alive = set(matched) | set(rejected or {}) if schedulable is None else set(schedulable)
    return SchedulerContext(
        now=kw.pop("now", NOW), is_schedulable=lambda n: n in alive,
        select=lambda job, execs: stub_selection(matched, rejected),
        queue_backoff=kw.pop("queue_backoff", 60.0), **kw)


def run(job, executions=(), context=None, trigger=EvalTrigger.JOB_REGISTER):
    return BatchScheduler().process(make_evaluation(job, trigger), job, list(executions),
                                    context or ctx())


def test_new_job_gets_one_direct_bid_per_partition():
    """Batch executions are direct bids (desired Running): nodes run them on accepting."""
    job = make_job(count=2, create_time=NOW)
    plan = run(job)
    assert [(e.node_id, e.partition_index) for e in plan.new_executions] == [
        ("n-1", 0), ("n-2", 1)]
    for e in plan.new_executions:
        assert e.desired_state.state_type == Desired.RUNNING
        assert e.compute_state.state_type == Compute.NEW
        assert e.job is job and e.job_version == 1
        assert plan.new_execution_events[e.id].message.startswith("Requested execution on n-")
    assert plan.job_state == JobStateType.RUNNING


def test_a_new_service_keeps_the_approval_round():
    """Services roll partition by partition once a replacement is approved: pending bids."""
    job = make_job(count=2, create_time=NOW, type="service")
    plan = BatchScheduler(long_running=True).process(make_evaluation(job), job, [], ctx())
    assert len(plan.new_executions) == 2
    assert {e.desired_state.state_type for e in plan.new_executions} == {Desired.PENDING}
    assert plan.new_state is None  # stays Pending until a bid is approved


def test_not_enough_nodes_fails_with_selection_message():
    job = make_job(count=3, create_time=NOW)
    plan = run(job, context=ctx(matched=["n-1"], rejected={"n-2": "does not support docker"}))
    assert plan.new_executions == []
    assert plan.job_state == JobStateType.FAILED
    assert plan.new_state.message.startswith(
        "not enough nodes to run job. requested: 3, available: 2, suitable: 1.")
    assert "does not support docker" in plan.new_state.message
    event = plan.job_events[-1]
    assert event.details["NewState"] == "Failed" and event.details["NodesRequested"] == "3"


def test_queue_timeout_queues_and_retries_later():
    job = make_job(queue_timeout=600, create_time=NOW)
    plan = run(job, context=ctx(matched=[], queue_backoff=1.5))
    assert plan.job_state == JobStateType.QUEUED
    assert plan.new_state.message.startswith("Job queued. not enough nodes to run job.")
    assert plan.job_events[-1].topic == Topic.QUEUEING
    (follow,) = plan.new_evaluations
    assert follow.triggered_by == EvalTrigger.JOB_QUEUE and follow.id.startswith("v-")
    assert follow.wait_until == NOW + int(1.5 * NS)
    job.state.state_type = "Queued"
    plan = run(job, context=ctx(matched=[], now=NOW + 2 * NS), trigger=EvalTrigger.JOB_QUEUE)
    assert plan.new_state is None and len(plan.new_evaluations) == 1


def test_queue_expired_fails():
    job = make_job(queue_timeout=10, create_time=NOW - 11 * NS)
    plan = run(job, context=ctx(matched=[]))
    assert plan.job_state == JobStateType.FAILED
    assert plan.new_evaluations == []


def test_queue_wait_never_overshoots_the_deadline():
    job = make_job(queue_timeout=10, create_time=NOW - 9 * NS)
    plan = run(job, context=ctx(matched=[], queue_backoff=60))
    assert plan.new_evaluations[0].wait_until == NOW + NS


def test_oldest_accepted_bid_wins_and_job_runs():
    job = make_job(create_time=NOW)
    old = make_execution(job, "n-1", compute=Compute.ASK_FOR_BID_ACCEPTED, create_time=1)
    new = make_execution(job, "n-2", compute=Compute.ASK_FOR_BID_ACCEPTED, create_time=2)
    pending = make_execution(job, "n-3", compute=Compute.NEW, create_time=3)
    plan = run(job, [new, old, pending], trigger=EvalTrigger.EXEC_UPDATE)
    won = plan.updates[old.id].execution
    assert won.desired_state.state_type == Desired.RUNNING
    assert won.compute_state.state_type == Compute.BID_ACCEPTED
    for loser in (new, pending):
        upd = plan.updates[loser.id].execution
        assert upd.desired_state.state_type == Desired.STOPPED
        assert upd.compute_state.state_type == Compute.BID_REJECTED
    assert plan.job_state == JobStateType.RUNNING
    assert plan.new_executions == []


def test_waiting_for_bids_changes_nothing():
    job = make_job(create_time=NOW)
    e = make_execution(job, "n-1", compute=Compute.NEW)
    plan = run(job, [e], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.is_empty()


def test_completed_partitions_complete_the_job_and_cancel_duplicates():
    job = make_job(count=2, create_time=NOW, state=JobStateType.RUNNING)
    done0 = make_execution(job, "n-1", partition=0, desired=Desired.STOPPED,
                           compute=Compute.COMPLETED)
    dup0 = make_execution(job, "n-2", partition=0, desired=Desired.RUNNING,
                          compute=Compute.BID_ACCEPTED)
    run1 = make_execution(job, "n-3", partition=1, desired=Desired.RUNNING,
                          compute=Compute.BID_ACCEPTED)
    plan = run(job, [done0, dup0, run1], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.updates[dup0.id].execution.compute_state.state_type == Compute.CANCELLED
    assert run1.id not in plan.updates
    assert plan.new_state is None
    done1 = make_execution(job, "n-3", partition=1, desired=Desired.STOPPED,
                           compute=Compute.COMPLETED)
    plan = run(job, [done0, done1], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.job_state == JobStateType.COMPLETED


def test_lost_node_fails_execution_and_retries_elsewhere():
    job = make_job(create_time=NOW, state=JobStateType.RUNNING)
    e = make_execution(job, "n-gone", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = run(job, [e], context=ctx(matched=["n-2"]), trigger=EvalTrigger.NODE_LEAVE)
    upd = plan.updates[e.id]
    assert upd.execution.compute_state.state_type == Compute.FAILED
    assert upd.events[0].message == "Execution stop requested because node has disappeared"
    (retry,) = plan.new_executions
    assert retry.node_id == "n-2" and retry.partition_index == 0


def test_failed_execution_without_other_nodes_fails_job_with_last_error():
    job = make_job(create_time=NOW, state=JobStateType.RUNNING)
    e = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.FAILED,
                       message="exit status 137: out of memory")
    plan = run(job, [e], context=ctx(matched=[], rejected={"n-1": "job already executed"}),
               trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.job_state == JobStateType.FAILED
    assert "not enough nodes to run job. requested: 1" in plan.new_state.message
    assert "last attempt: node n-1 failed: exit status 137: out of memory" in plan.new_state.message


def test_total_timeout_fails_job_and_cancels():
    job = make_job(total_timeout=10, create_time=NOW - 11 * NS, state=JobStateType.RUNNING)
    e = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = run(job, [e], trigger=EvalTrigger.JOB_TIMEOUT)
    assert plan.job_state == JobStateType.FAILED
    assert plan.new_state.message == "job exceeded total timeout of 10s"
    assert plan.updates[e.id].execution.compute_state.state_type == Compute.CANCELLED
    assert plan.new_executions == []


def test_execution_timeout_fails_execution_and_retries():
    job = make_job(execution_timeout=5, create_time=NOW - 20 * NS, state=JobStateType.RUNNING)
    e = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED,
                       modify_time=NOW - 6 * NS)
    plan = run(job, [e], trigger=EvalTrigger.EXEC_TIMEOUT)
    upd = plan.updates[e.id]
    assert upd.execution.compute_state.state_type == Compute.FAILED
    assert upd.execution.compute_state.message == "execution timed out after 5s"
    assert upd.events[0].topic == Topic.EXEC_TIMEOUT
    assert [x.node_id for x in plan.new_executions] == ["n-1"]  # stub: only ranks, no filter


def test_terminal_job_cancels_live_executions():
    job = make_job(state=JobStateType.STOPPED)
    live = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    done = make_execution(job, "n-2", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    plan = run(job, [live, done], trigger=EvalTrigger.JOB_CANCEL)
    assert list(plan.updates) == [live.id]
    upd = plan.updates[live.id].execution
    assert upd.desired_state.state_type == Desired.STOPPED
    assert upd.compute_state.state_type == Compute.CANCELLED
    assert plan.new_state is None and plan.new_executions == []


def test_old_version_executions_are_cancelled_and_new_version_scheduled():
    job = make_job(version=2, create_time=NOW)
    old = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED,
                         job_version=1)
    plan = run(job, [old], trigger=EvalTrigger.JOB_UPDATE)
    assert plan.updates[old.id].execution.compute_state.state_type == Compute.CANCELLED
    assert "updated to version 2" in plan.updates[old.id].events[0].message
    assert plan.new_executions[0].job_version == 2


def test_at_most_max_new_executions_per_evaluation():
    nodes = [f"n-{i:02d}" for i in range(30)]
    job = make_job(count=25, create_time=NOW)
    plan = run(job, context=ctx(matched=nodes, max_new_executions=20))
    assert len(plan.new_executions) == 20
    (follow,) = plan.new_evaluations
    assert follow.triggered_by == EvalTrigger.EXEC_LIMIT


def test_count_zero_batch_completes_immediately():
    plan = run(make_job(count=0, create_time=NOW))
    assert plan.job_state == JobStateType.COMPLETED


def test_service_ignores_timeouts_and_never_completes():
    job = make_job(type="service", total_timeout=10, create_time=NOW - 60 * NS,
                   state=JobStateType.RUNNING)
    e = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = BatchScheduler(long_running=True).process(
        make_evaluation(job, EvalTrigger.EXEC_UPDATE), job, [e], ctx())
    assert plan.new_state is None and plan.updates == {}


def _busy_ctx(retryable: bool) -> SchedulerContext:
    selection = stub_selection([], {"n-2": "node busy: CPU in use exceeds the limit"})
    selection.retryable = retryable
    return SchedulerContext(now=NOW, is_schedulable=lambda n: n == "n-2",
                            select=lambda job, execs: selection)


def test_a_partition_that_lost_its_node_waits_for_a_busy_one():
    """A fault (crash, partition, freeze) took the node of a running execution and the other
    node is only busy: the job waits for it, with backoff, instead of failing (found by
    tests/faults: a one-way partition failed a job with "node busy")."""
    job = make_job(create_time=NOW)
    running = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.RUNNING)
    scheduler = BatchScheduler()
    plan = scheduler.process(make_evaluation(job, EvalTrigger.NODE_LEAVE), job, [running],
                             _busy_ctx(True))
    assert plan.new_state is None and plan.new_executions == []  # not failed
    (lost,) = plan.updates.values()
    assert lost.execution.compute_state.state_type == Compute.FAILED
    delays = []
    evaluation = plan.new_evaluations[0]
    failed = lost.execution
    for _ in range(25):
        delays.append((evaluation.wait_until - NOW) / NS)
        plan = scheduler.process(evaluation, job, [failed], _busy_ctx(True))
        if not plan.new_evaluations:
            break
        (evaluation,) = plan.new_evaluations
    assert delays[:7] == [1, 2, 4, 8, 16, 30, 30] and len(delays) == 20
    assert plan.job_state == JobStateType.FAILED  # the tries are spent: fail as before
    assert "node busy" in plan.new_state.message


def test_a_lost_node_and_nodes_that_cannot_take_it_fails_at_once():
    job = make_job(create_time=NOW)
    running = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.RUNNING)
    plan = BatchScheduler().process(make_evaluation(job, EvalTrigger.NODE_LEAVE), job,
                                    [running], _busy_ctx(False))
    assert plan.job_state == JobStateType.FAILED and not plan.new_evaluations
