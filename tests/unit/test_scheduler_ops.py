"""Ops (and daemon) scheduler as a pure function."""

from __future__ import annotations

import pytest

from bacalhau.models import EvalTrigger, JobStateType
from bacalhau.orchestrator.scheduler import OpsScheduler, SchedulerContext, scheduler_for
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


def ctx(matched=("n-1", "n-2"), now=NOW) -> SchedulerContext:
    alive = set(matched)
    return SchedulerContext(now=now, is_schedulable=lambda n: n in alive,
                            select=lambda job, execs: stub_selection(matched))


def run(job, executions=(), context=None, trigger=EvalTrigger.JOB_REGISTER, daemon=False):
    return OpsScheduler(long_running=daemon).process(
        make_evaluation(job, trigger), job, list(executions), context or ctx())


def test_registry_picks_scheduler_by_type():
    assert isinstance(scheduler_for("ops"), OpsScheduler)
    assert scheduler_for("daemon").long_running
    assert not scheduler_for("batch").long_running


def test_register_runs_on_every_matching_node_directly():
    job = make_job(type="ops", create_time=NOW)
    plan = run(job)
    assert sorted(e.node_id for e in plan.new_executions) == ["n-1", "n-2"]
    assert all(e.desired_state.state_type == Desired.RUNNING for e in plan.new_executions)
    assert plan.job_state == JobStateType.RUNNING


def test_no_match_and_no_executions_fails():
    plan = run(make_job(type="ops", create_time=NOW), context=ctx(matched=()))
    assert plan.job_state == JobStateType.FAILED
    assert plan.new_state.message.startswith("not enough nodes to run job.")


def test_no_match_with_queue_timeout_queues():
    job = make_job(type="ops", queue_timeout=60, create_time=NOW)
    plan = run(job, context=ctx(matched=()))
    assert plan.job_state == JobStateType.QUEUED
    assert plan.new_evaluations[0].triggered_by == EvalTrigger.JOB_QUEUE


def test_exec_update_does_not_add_executions():
    job = make_job(type="ops", create_time=NOW, state=JobStateType.RUNNING)
    e = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = run(job, [e], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.new_executions == [] and plan.new_state is None


def test_completed_when_all_terminal_and_none_failed():
    job = make_job(type="ops", create_time=NOW, state=JobStateType.RUNNING)
    a = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    b = make_execution(job, "n-2", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    assert run(job, [a, b], trigger=EvalTrigger.EXEC_UPDATE).job_state == JobStateType.COMPLETED


def test_failed_if_any_execution_failed():
    job = make_job(type="ops", create_time=NOW, state=JobStateType.RUNNING)
    a = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    b = make_execution(job, "n-2", desired=Desired.STOPPED, compute=Compute.FAILED,
                       message="disk full")
    plan = run(job, [a, b], trigger=EvalTrigger.EXEC_UPDATE)
    assert plan.job_state == JobStateType.FAILED
    assert "disk full" in plan.new_state.message


def test_waits_while_executions_are_live():
    job = make_job(type="ops", create_time=NOW, state=JobStateType.RUNNING)
    a = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    b = make_execution(job, "n-2", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    assert run(job, [a, b], trigger=EvalTrigger.EXEC_UPDATE).new_state is None


def test_lost_node_fails_ops_job():
    job = make_job(type="ops", create_time=NOW, state=JobStateType.RUNNING)
    a = make_execution(job, "n-gone", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = run(job, [a], context=ctx(matched=("n-1",)), trigger=EvalTrigger.NODE_LEAVE)
    assert plan.updates[a.id].execution.compute_state.state_type == Compute.FAILED
    assert plan.job_state == JobStateType.FAILED


def test_daemon_adds_new_nodes_and_never_completes():
    job = make_job(type="daemon", create_time=NOW, state=JobStateType.RUNNING,
                   total_timeout=1)
    a = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    plan = run(job, [a], context=ctx(matched=("n-1", "n-3")), trigger=EvalTrigger.NODE_JOIN,
               daemon=True)
    assert [e.node_id for e in plan.new_executions] == ["n-3"]
    assert plan.new_state is None
    done = make_execution(job, "n-1", desired=Desired.STOPPED, compute=Compute.COMPLETED)
    plan = run(job, [done], context=ctx(matched=()), trigger=EvalTrigger.EXEC_UPDATE,
               daemon=True)
    assert plan.new_state is None


def test_every_matching_node_gets_its_execution_in_one_plan():
    """Regression: ops executions were created 20 per evaluation, and an exec-update between
    two batches saw every execution so far terminal and completed the job with the rest of
    the nodes never asked (140 of 1,000 at the first try)."""
    job = make_job(type="ops", create_time=NOW)
    nodes = tuple(f"n-{i:04d}" for i in range(1000))
    context = ctx(matched=nodes)
    assert context.max_new_executions == 20  # the batch scheduler's limit, not this one's
    plan = run(job, context=context)
    assert sorted(e.node_id for e in plan.new_executions) == list(nodes)
    assert plan.new_evaluations == []
