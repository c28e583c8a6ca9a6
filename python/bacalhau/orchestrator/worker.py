"""Scheduler worker: takes an evaluation from the broker, reads the job and its executions,
runs the job type's scheduler and hands the plan to the planner; acks on success, nacks on
failure (the broker redelivers, then dead-letters).

The read-schedule-apply step is synchronous, so no other coroutine (message handler, API call)
changes the job between the read and the write; revision checks still guard the write.

Every evaluation processed is counted by trigger (`bacalhau.counters.EVALUATIONS`, reported
with the commits): the bench divides them by the jobs, so the cost of queued jobs (one
evaluation that queues, one that places) shows as a count, not a guess.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bacalhau.counters import EVALUATIONS
from bacalhau.errors import NotFoundError
from bacalhau.models import EvalStatus, Evaluation, Execution, Job
from bacalhau.models.timeutil import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.scheduler import SchedulerContext, scheduler_for
from bacalhau.store.jobstore import JobStore

if TYPE_CHECKING:
    from bacalhau.orchestrator.selection import Selection

log = logging.getLogger(__name__)


class EvaluationWorker:
    def __init__(
        self,
        store: JobStore,
        broker: EvaluationBroker,
        planner: Planner,
        *,
        select: Callable[[Job, list[Execution]], Selection],
        is_alive: Callable[[str], bool],
        queue_backoff: float = 60.0,
        max_new_executions: int = 20,
        exec_limit_backoff: float = 0.1,
    ) -> None:
        self.store = store
        self.broker = broker
        self.planner = planner
        self.select = select
        self.is_alive = is_alive
        self.queue_backoff = queue_backoff
        self.max_new_executions = max_new_executions
        self.exec_limit_backoff = exec_limit_backoff

    async def run(self) -> None:
        """Serve the broker until it closes."""
        while True:
            lease = await self.broker.dequeue()
            if lease is None:
                return
            try:
                self.process(lease.evaluation)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("evaluation %s of job %s failed (delivery %d)",
                              lease.evaluation.id, lease.evaluation.job_id, lease.deliveries)
                self.broker.nack(lease)
            else:
                self.broker.ack(lease)

    def process(self, evaluation: Evaluation) -> Plan | None:
        """Schedule one evaluation and apply the plan; returns it (None if the job is gone)."""
        trigger = evaluation.triggered_by
        EVALUATIONS[trigger] = EVALUATIONS.get(trigger, 0) + 1
        try:
            job = self.store.get_job(evaluation.job_id)
        except NotFoundError:
            with self.store.transaction():
                self.store.finish_evaluation(evaluation, EvalStatus.CANCELED)
            return None
        executions = self.store.get_executions(job.id)
        ctx = SchedulerContext(
            now=now_ns(), is_schedulable=self.is_alive, select=self.select,
            queue_backoff=self.queue_backoff, max_new_executions=self.max_new_executions,
            exec_limit_backoff=self.exec_limit_backoff)
        plan = scheduler_for(job.type).process(evaluation, job, executions, ctx)
        self.planner.apply(plan)
        for follow_up in plan.new_evaluations:
            self.broker.enqueue(follow_up)
        return plan
