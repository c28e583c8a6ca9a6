"""Ops (and daemon) scheduling: one execution on every matching node, created desired Running
(a direct bid: no approval round).

Ops: executions are created when the job is registered, updated or re-tried from the queue,
on every matching node in one plan (no per-evaluation limit: a job that targets all nodes
must not complete between two batches, and a thousand nodes get their executions in one
commit); no matching node and no execution fails the job (or queues it with QueueTimeout).
The job is Completed once every execution is terminal and at least one completed with none
failed.
Daemon: the same without timeouts, and every evaluation (node joins included) adds executions
on matching nodes that have none live; it never completes. A node left out for a reason that
may pass (busy) is tried again a few times with backoff (`base.retry_later`). An update of a
daemon (new Version) rolls node by node: the new version's execution is created beside the
running old one, which is cancelled once its node accepted the new one (`base.roll_old`), or
at once on nodes the new version no longer matches.
"""

from __future__ import annotations

from bacalhau.models import EvalTrigger, Evaluation, Execution, Job, JobStateType
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import (
    Compute,
    Desired,
    SchedulerContext,
    StepScheduler,
    View,
    fail_for_nodes,
    mark_running,
    new_execution,
    ranking_history,
    requested_event,
    retry_later,
    try_queue,
)

DAEMON_BUSY = "daemon: placing again on nodes that were busy"

CREATING_TRIGGERS = frozenset({
    EvalTrigger.JOB_REGISTER, EvalTrigger.JOB_UPDATE, EvalTrigger.JOB_RERUN,
    EvalTrigger.JOB_QUEUE, EvalTrigger.EXEC_LIMIT,
})


class OpsScheduler(StepScheduler):
    """Run-everywhere scheduling for ops jobs (`long_running=False`) and daemons (True)."""

    @staticmethod
    def _slot(execution: Execution) -> object:
        return execution.node_id

    def _schedule(self, plan: Plan, job: Job, current: list[Execution], evaluation: Evaluation,
                  ctx: SchedulerContext) -> None:
        creating = self.long_running or evaluation.triggered_by in CREATING_TRIGGERS
        if creating and not self._place(plan, job, current, evaluation, ctx):
            return

        view = View(plan, current)
        if not self.long_running and not plan.new_executions and not plan.new_evaluations:
            execs = list(view)
            if execs and all(e.is_terminal() for e in execs):
                self._finish(plan, execs)
                return
        mark_running(plan, job, view)

    def _place(self, plan: Plan, job: Job, current: list[Execution], evaluation: Evaluation,
               ctx: SchedulerContext) -> bool:
        """Add executions on matching nodes; False when the job was failed or queued."""
        view = list(View(plan, current))
        if self.long_running:
            taken = {e.node_id for e in view if not e.is_terminal()}
        else:
            taken = {e.node_id for e in view}  # ops runs once per node, no retries
        selection = ctx.select(job, ranking_history(view, self.long_running))
        targets = [n for n in selection.matched if n not in taken]
        if not targets and not view:
            if try_queue(plan, job, selection, 1, ctx):
                return False
            if not self.long_running:
                fail_for_nodes(plan, job, current, selection, 1)
                return False
            return True
        for node_id in targets:
            plan.add_execution(new_execution(job, node_id, evaluation, ctx,
                                             desired=Desired.RUNNING),
                               requested_event(node_id))
        if self.long_running and selection.retryable:
            # a node left out because it was busy (back from a freeze or a partition, its old
            # executions not yet cancelled) gets the daemon once it is free
            retry_later(plan, job, evaluation, ctx, DAEMON_BUSY, max_tries=5)
        return True

    @staticmethod
    def _finish(plan: Plan, execs: list[Execution]) -> None:
        failed = [e for e in execs if e.compute_state.state_type == Compute.FAILED]
        completed = [e for e in execs if e.compute_state.state_type == Compute.COMPLETED]
        if failed:
            first = min(failed, key=lambda e: (e.modify_time, e.id))
            reason = first.compute_state.message or "execution failed"
            plan.set_job_state(JobStateType.FAILED,
                               f"execution on node {first.node_id} failed: {reason}")
        elif not completed:
            reasons = sorted({e.compute_state.message for e in execs if e.compute_state.message})
            detail = "; ".join(reasons) if reasons else "every execution was stopped"
            plan.set_job_state(JobStateType.FAILED, f"no node ran the job: {detail}")
        else:
            plan.set_job_state(JobStateType.COMPLETED)

