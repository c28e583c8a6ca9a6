"""What every scheduler shares: its inputs (`SchedulerContext`), its interface, and the steps
common to all job types (stop on terminal job, lost nodes, timeouts, new executions, queueing).

Schedulers are pure: given a job, its executions and a view of the nodes they return a Plan.
They read no store, send nothing and read no clock (the context carries `now`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bacalhau.models import (
    EvalStatus,
    EvalTrigger,
    Evaluation,
    Event,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    Job,
    JobStateType,
    Topic,
)
from bacalhau.models.ids import new_eval_id, new_execution_id, short_id
from bacalhau.orchestrator.plan import Plan

if TYPE_CHECKING:
    from bacalhau.orchestrator.selection import Selection

NS = 1_000_000_000
Desired = ExecutionDesiredStateType
Compute = ExecutionStateType


@dataclass(slots=True)
class SchedulerContext:
    """Everything a scheduler may look at besides the job and its executions."""

    now: int                                            # Unix ns
    is_schedulable: Callable[[str], bool]               # node is Compute, APPROVED, CONNECTED
    select: Callable[[Job, list[Execution]], Selection]  # ranking of nodes for the job
    queue_backoff: float = 60.0                         # seconds between queued re-evaluations
    max_new_executions: int = 20                        # per evaluation
    exec_limit_backoff: float = 0.1                     # seconds before creating the rest


class Scheduler(Protocol):
    def process(self, evaluation: Evaluation, job: Job, executions: list[Execution],
                ctx: SchedulerContext) -> Plan: ...


class View:
    """Executions as they will be once the plan is applied (updates layered over reads)."""

    def __init__(self, plan: Plan, executions: list[Execution]) -> None:
        self.plan = plan
        self.executions = executions

    def __iter__(self) -> Iterator[Execution]:
        for e in self.executions:
            upd = self.plan.updates.get(e.id)
            yield upd.execution if upd is not None else e
        yield from self.plan.new_executions

    def live(self) -> list[Execution]:
        return [e for e in self if not e.is_terminal()]


def scheduling_event(message: str, **details: str) -> Event:
    return Event.new(Topic.SCHEDULING, message, **details)


def stop_event(reason: str) -> Event:
    return Event.new(Topic.SCHEDULING, f"Execution stop requested because {reason}")


def stop_live(plan: Plan, executions: list[Execution], reason: str,
              compute: int = Compute.CANCELLED) -> None:
    """Stop every non-terminal execution with the same reason."""
    for e in executions:
        if not e.is_terminal():
            plan.stop_execution(e, compute, stop_event(reason))


def split_rolling(plan: Plan, job: Job, executions: list[Execution], *,
                  rolling: bool = True) -> tuple[list[Execution], list[Execution]]:
    """Split executions into those of the current version and the older ones still running.

    Live executions of older versions are cancelled, except (with `rolling`) those desired
    Running: they are returned, to keep serving until `roll_old` sees their replacement run.
    """
    current: list[Execution] = []
    old_running: list[Execution] = []
    for e in executions:
        if e.job_version == job.version:
            current.append(e)
        elif e.is_terminal():
            continue
        elif rolling and e.desired_state.state_type == Desired.RUNNING:
            old_running.append(e)
        else:
            plan.stop_execution(e, Compute.CANCELLED,
                                stop_event(f"job was updated to version {job.version}"))
    return current, old_running


def _as_planned(plan: Plan, e: Execution) -> Execution:
    upd = plan.updates.get(e.id)
    return upd.execution if upd is not None else e


def is_serving(e: Execution) -> bool:
    """Desired Running and accepted by its node (the orchestrator sees no later state)."""
    return (not e.is_terminal() and e.desired_state.state_type == Desired.RUNNING
            and e.compute_state_type.is_executing())


def roll_old(plan: Plan, job: Job, old_running: list[Execution], current: list[Execution],
             slot: Callable[[Execution], object]) -> None:
    """Rolling update of a long-running job: an execution of an older version keeps running
    while a live execution of the current version for the same slot (partition of a service,
    node of a daemon) is still on its way, and is cancelled once that one runs, or when its
    slot has no live replacement (node no longer matching, placement failed) or the job ended.
    """
    if not old_running:
        return
    terminal = plan.job_state.is_terminal()
    replacements: dict[object, list[Execution]] = {}
    for e in View(plan, current).live():
        replacements.setdefault(slot(e), []).append(e)
    for old in old_running:
        if _as_planned(plan, old).is_terminal():
            continue
        new = [] if terminal else replacements.get(slot(old), [])
        if any(is_serving(e) for e in new):
            plan.stop_execution(old, Compute.CANCELLED, stop_event(
                f"job was updated to version {job.version} and its replacement runs"))
        elif not new:
            plan.stop_execution(old, Compute.CANCELLED,
                                stop_event(f"job was updated to version {job.version}"))


def stop_if_job_terminal(plan: Plan, job: Job, executions: list[Execution]) -> bool:
    if not job.is_terminal():
        return False
    stop_live(plan, executions, f"job is {job.state.state_type.lower()}")
    return True


NODE_LOST = stop_event("node has disappeared").message


def fail_lost(plan: Plan, executions: list[Execution], ctx: SchedulerContext) -> None:
    """Live executions on nodes that are gone (not schedulable) fail, to be retried."""
    for e in executions:
        if not e.is_terminal() and not ctx.is_schedulable(e.node_id):
            plan.stop_execution(e, Compute.FAILED, stop_event("node has disappeared"))


def ranking_history(executions: list[Execution], long_running: bool) -> list[Execution]:
    """The executions node ranking counts against their nodes. A long-running job's execution
    that failed because its node disappeared is left out: the node may come back (restart,
    network split) and should get the daemon or service again, however often that happens;
    executions that failed on their own still count (at most one retry per node)."""
    if not long_running:
        return executions
    return [e for e in executions
            if not (e.compute_state_type == Compute.FAILED
                    and e.compute_state.message == NODE_LOST)]


def total_timeout_expired(job: Job, ctx: SchedulerContext) -> bool:
    total = job.task.timeouts.total_timeout if job.tasks else 0
    return total > 0 and ctx.now > job.create_time + total * NS


def fail_total_timeout(plan: Plan, job: Job, executions: list[Execution]) -> None:
    total = job.task.timeouts.total_timeout
    message = f"job exceeded total timeout of {total}s"
    plan.set_job_state(JobStateType.FAILED, message,
                       Event.error(Topic.JOB_TIMEOUT, message, NewState="Failed"))
    stop_live(plan, list(View(plan, executions)), "job exceeded its total timeout")


def exec_timed_out(e: Execution, job: Job, ctx: SchedulerContext) -> bool:
    limit = job.task.timeouts.execution_timeout if job.tasks else 0
    return (limit > 0 and not e.is_terminal()
            and e.desired_state.state_type == Desired.RUNNING
            and e.compute_state_type.is_executing()
            and ctx.now > e.modify_time + limit * NS)


def fail_timed_out(plan: Plan, job: Job, executions: list[Execution],
                   ctx: SchedulerContext) -> None:
    limit = job.task.timeouts.execution_timeout if job.tasks else 0
    for e in list(View(plan, executions)):
        if exec_timed_out(e, job, ctx):
            plan.stop_execution(
                e, Compute.FAILED,
                Event.error(Topic.EXEC_TIMEOUT, f"execution timed out after {limit}s"))


def new_execution(job: Job, node_id: str, evaluation: Evaluation, ctx: SchedulerContext, *,
                  desired: int, partition: int = 0) -> Execution:
    return Execution(
        id=new_execution_id(), namespace=job.namespace, eval_id=evaluation.id, name=job.name,
        node_id=node_id, job_id=job.id, job=job, job_version=job.version,
        desired_state=ExecutionState(int(desired)),
        compute_state=ExecutionState(int(Compute.NEW)),
        partition_index=partition, create_time=ctx.now, modify_time=ctx.now,
    )


def requested_event(node_id: str) -> Event:
    return scheduling_event(f"Requested execution on {short_id(node_id)}", NodeID=node_id)


def delayed_evaluation(job: Job, trigger: str, delay: float, ctx: SchedulerContext,
                       comment: str = "") -> Evaluation:
    return Evaluation(
        id=new_eval_id(delayed=True), namespace=job.namespace, job_id=job.id,
        triggered_by=trigger, priority=job.priority, type=job.type,
        status=EvalStatus.PENDING, comment=comment,
        wait_until=ctx.now + int(max(delay, 0.0) * NS), create_time=ctx.now,
        modify_time=ctx.now)


def retry_later(plan: Plan, job: Job, evaluation: Evaluation, ctx: SchedulerContext,
                why: str, *, max_tries: int, max_delay: float = 30.0) -> bool:
    """Evaluate the job again after 1, 2, 4, ... s (at most `max_delay`), at most `max_tries`
    times in a row: the count rides in the evaluations' comment (`<why>, try N`), so a chain
    ends by itself and any other trigger starts a new one. False when the tries are spent."""
    prefix = f"{why}, try "
    tries = 0
    if evaluation.comment.startswith(prefix):
        with contextlib.suppress(ValueError):
            tries = int(evaluation.comment[len(prefix):])
    if tries >= max_tries:
        return False
    plan.add_evaluation(delayed_evaluation(
        job, EvalTrigger.JOB_QUEUE, min(float(2 ** tries), max_delay), ctx,
        comment=f"{prefix}{tries + 1}"))
    return True


def queue_deadline(job: Job) -> int:
    """Unix ns until which the job may wait for nodes (0 = queueing off)."""
    timeout = job.task.timeouts.queue_timeout if job.tasks else 0
    return job.create_time + timeout * NS if timeout > 0 else 0


def try_queue(plan: Plan, job: Job, selection: Selection, requested: int,
              ctx: SchedulerContext) -> bool:
    """Queue the job for a later try if its QueueTimeout allows; False if it must fail."""
    deadline = queue_deadline(job)
    if not deadline or ctx.now >= deadline:
        return False
    remaining = (deadline - ctx.now) / NS
    reason = selection.message(requested)
    plan.add_evaluation(delayed_evaluation(
        job, EvalTrigger.JOB_QUEUE, min(ctx.queue_backoff, remaining), ctx,
        comment="waiting for nodes"))
    if not selection.matched and plan.job_state != JobStateType.QUEUED:
        message = f"Job queued. {reason}"
        plan.set_job_state(JobStateType.QUEUED, message,
                           Event.new(Topic.QUEUEING, message, NewState="Queued"))
    return True


def fail_for_nodes(plan: Plan, job: Job, executions: list[Execution], selection: Selection,
                   requested: int, last_error: str = "") -> None:
    """The job cannot be placed: fail it with the selection's explanation."""
    message = selection.message(requested)
    if last_error:
        message += f"\n• last attempt: {last_error}"
    plan.set_job_state(
        JobStateType.FAILED, message,
        Event.error(Topic.SCHEDULING, message, NewState="Failed",
                    NodesRequested=requested, NodesAvailable=selection.available,
                    NodesSuitable=len(selection.matched)))
    stop_live(plan, list(View(plan, executions)), "job failed")


def mark_running(plan: Plan, job: Job, view: View) -> None:
    """Pending/Queued jobs become Running once some execution is desired Running."""
    if plan.job_state not in (JobStateType.PENDING, JobStateType.QUEUED):
        return
    if any(e.desired_state.state_type == Desired.RUNNING for e in view.live()):
        plan.set_job_state(JobStateType.RUNNING)


class StepScheduler:
    """The steps every scheduler takes, in order: stop a terminal job's work, split old-version
    executions off for rolling, fail executions on lost nodes, enforce timeouts (not for
    long-running jobs), let the subclass schedule (`_schedule`), then roll old versions onto
    their replacements, matched by `_slot` (partition for batch/service, node for ops/daemon).
    """

    def __init__(self, *, long_running: bool = False) -> None:
        self.long_running = long_running

    def process(self, evaluation: Evaluation, job: Job, executions: list[Execution],
                ctx: SchedulerContext) -> Plan:
        plan = Plan(evaluation, job)
        if stop_if_job_terminal(plan, job, executions):
            return plan
        current, old_running = split_rolling(plan, job, executions, rolling=self.long_running)
        fail_lost(plan, current + old_running, ctx)
        if not self._fail_timeouts(plan, job, current, ctx):
            self._schedule(plan, job, current, evaluation, ctx)
        roll_old(plan, job, old_running, current, slot=self._slot)
        return plan

    def _fail_timeouts(self, plan: Plan, job: Job, current: list[Execution],
                       ctx: SchedulerContext) -> bool:
        """Fail timed-out work; True when the whole job ran out of time."""
        if self.long_running:
            return False
        if total_timeout_expired(job, ctx):
            fail_total_timeout(plan, job, current)
            return True
        fail_timed_out(plan, job, current, ctx)
        return False

    @staticmethod
    def _slot(execution: Execution) -> object:
        raise NotImplementedError

    def _schedule(self, plan: Plan, job: Job, current: list[Execution], evaluation: Evaluation,
                  ctx: SchedulerContext) -> None:
        raise NotImplementedError
