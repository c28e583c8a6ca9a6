"""Batch (and service) scheduling: `Count` partitions, one active execution per partition.

Per evaluation: stop everything if the job is terminal; cancel old-version executions (service:
only those not yet running; running ones roll, see below); fail
executions on vanished nodes; enforce TotalTimeout and ExecutionTimeout (batch only); then per
partition keep a Completed or Running execution, or approve the oldest accepted bid and reject
the rest; partitions with nothing live get new executions on the best nodes, or the job is
queued (QueueTimeout) or failed with the selection's explanation
(except when the partition lost its node to a fault and the other nodes are only busy: then
it waits for them, `LOST_NODE_WAIT`).
A batch job is Completed when every partition has a Completed execution.

Batch executions are direct bids (desired Running, as Bacalhau does for ops jobs): the node runs
the execution as soon as it accepts it, with no approval round trip (issue 15: one message where
there were two, and a job no longer waits for the orchestrator between bid and run). The
requester's exact count of its own placements (`orchestrator/nodeload.py`) is what makes this
safe: a node is only asked while it has room, so the choice an approval round would give is not
needed. A node that refuses leaves the partition empty and it is placed again.

Service jobs use the same rules without timeouts and never complete (their executions ending
is treated as a failure by the message handlers, so they are retried). An update of a service
(new Version) rolls partition by partition: each running execution of an older version keeps
running until the new version's execution of its partition has been approved on a node, then
it is cancelled (`base.roll_old`), which is why services keep the approval round (desired
Pending, then BidAccepted); batch jobs cancel older versions at once.
"""

from __future__ import annotations

from bacalhau.models import (
    EvalTrigger,
    Evaluation,
    Execution,
    Job,
    JobStateType,
)
from bacalhau.models.ids import short_id
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import (
    NODE_LOST,
    Compute,
    Desired,
    SchedulerContext,
    StepScheduler,
    View,
    delayed_evaluation,
    fail_for_nodes,
    mark_running,
    new_execution,
    ranking_history,
    requested_event,
    retry_later,
    scheduling_event,
    stop_event,
    try_queue,
)

# A partition whose node vanished (crash, partition, freeze) while the others are only busy
# waits for one of them (1, 2, 4, ... 30 s between tries, about 8 minutes in all) instead of
# failing the job: a fault may cost a job time, never its outcome (found by tests/faults).
LOST_NODE_WAIT = "waiting for a busy node after losing one"
LOST_NODE_TRIES = 20


def _oldest(executions: list[Execution]) -> Execution:
    return min(executions, key=lambda e: (e.create_time, e.id))


class BatchScheduler(StepScheduler):
    """Partitioned scheduling for batch jobs (`long_running=False`) and services (True)."""

    @staticmethod
    def _slot(execution: Execution) -> object:
        return execution.partition_index

    def _schedule(self, plan: Plan, job: Job, current: list[Execution], evaluation: Evaluation,
                  ctx: SchedulerContext) -> None:
        view = View(plan, current)
        by_partition: dict[int, list[Execution]] = {}
        for e in view:
            by_partition.setdefault(e.partition_index, []).append(e)
        completed = 0
        needed: list[int] = []
        for p in range(job.count):
            outcome = self._reconcile_partition(plan, p, by_partition.get(p, []))
            if outcome == "completed":
                completed += 1
            elif outcome == "empty":
                needed.append(p)

        if needed and not self._place(plan, job, current, needed, evaluation, ctx):
            return
        if not self.long_running and completed == job.count:
            plan.set_job_state(JobStateType.COMPLETED)
            return
        mark_running(plan, job, View(plan, current))

    def _reconcile_partition(self, plan: Plan, partition: int,
                             execs: list[Execution]) -> str:
        """Settle one partition; returns completed, active, waiting or empty."""
        live = [e for e in execs if not e.is_terminal()]
        if not self.long_running and any(
                e.compute_state.state_type == Compute.COMPLETED for e in execs):
            for e in live:
                plan.stop_execution(e, Compute.CANCELLED, stop_event(
                    f"partition {partition} already completed"))
            return "completed"
        running = [e for e in live if e.desired_state.state_type == Desired.RUNNING]
        if running:
            keep = _oldest(running)
            for e in live:
                if e is not keep:
                    plan.stop_execution(e, self._refusal(e), stop_event(
                        f"another execution runs partition {partition}"))
            return "active"
        accepted = [e for e in live
                    if e.compute_state.state_type == Compute.ASK_FOR_BID_ACCEPTED]
        if accepted:
            winner = _oldest(accepted)
            plan.update_execution(
                winner, desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED,
                event=scheduling_event(f"Bid accepted for {short_id(winner.node_id)}",
                                       NodeID=winner.node_id))
            for e in live:
                if e is not winner:
                    plan.stop_execution(e, self._refusal(e), stop_event(
                        f"another node was selected for partition {partition}"))
            return "active"
        return "waiting" if live else "empty"

    @staticmethod
    def _refusal(e: Execution) -> int:
        """A bid still open is rejected; anything further along is cancelled."""
        if e.compute_state.state_type in (Compute.NEW, Compute.ASK_FOR_BID,
                                          Compute.ASK_FOR_BID_ACCEPTED):
            return Compute.BID_REJECTED
        return Compute.CANCELLED

    def _place(self, plan: Plan, job: Job, current: list[Execution], needed: list[int],
               evaluation: Evaluation, ctx: SchedulerContext) -> bool:
        """Create executions for empty partitions; False when the job was failed or queued."""
        view = list(View(plan, current))
        selection = ctx.select(job, ranking_history(view, self.long_running))
        if len(selection.matched) < len(needed):
            if try_queue(plan, job, selection, len(needed), ctx):
                return False
            lost = [e for e in view if e.partition_index in needed
                    and e.compute_state.state_type == Compute.FAILED
                    and e.compute_state.message == NODE_LOST]
            if lost and selection.retryable and retry_later(
                    plan, job, evaluation, ctx, LOST_NODE_WAIT, max_tries=LOST_NODE_TRIES):
                return False  # a fault took its node: wait for a busy one, do not fail
            failures = [e for e in view if e.partition_index in needed
                        and e.compute_state.state_type in (Compute.FAILED,
                                                           Compute.ASK_FOR_BID_REJECTED)]
            last_error = ""
            if failures:
                last = max(failures, key=lambda e: (e.modify_time, e.id))
                reason = last.compute_state.message or last.desired_state.message
                verb = ("rejected the bid" if last.compute_state.state_type
                        == Compute.ASK_FOR_BID_REJECTED else "failed")
                last_error = f"node {short_id(last.node_id)} {verb}: {reason or 'no reason given'}"
            fail_for_nodes(plan, job, current, selection, len(needed), last_error)
            return False
        batch = needed[:ctx.max_new_executions]
        desired = Desired.PENDING if self.long_running else Desired.RUNNING  # direct bids
        for partition, node_id in zip(batch, selection.matched, strict=False):
            plan.add_execution(
                new_execution(job, node_id, evaluation, ctx, desired=desired,
                              partition=partition),
                requested_event(node_id))
        if len(needed) > len(batch):
            plan.add_evaluation(delayed_evaluation(
                job, EvalTrigger.EXEC_LIMIT, ctx.exec_limit_backoff, ctx,
                comment="more executions to create"))
        return True
