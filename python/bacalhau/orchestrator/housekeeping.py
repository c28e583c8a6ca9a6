"""Housekeeping: every `Orchestrator.Scheduler.HousekeepingInterval`, look at in-progress batch
and ops jobs and enqueue a `job-timeout` evaluation for those past TotalTimeout (+ buffer) or an
`exec-timeout` evaluation for those with an execution past ExecutionTimeout (+ buffer). The
scheduler then fails them ("job exceeded total timeout of Ns", "execution timed out after Ns").
It also prunes outbox rows sent, and evaluations finished, more than an hour ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bacalhau.models import (
    EvalStatus,
    EvalTrigger,
    Evaluation,
    ExecutionDesiredStateType,
    Job,
    JobType,
)
from bacalhau.models.ids import new_eval_id
from bacalhau.models.timeutil import now_ns
from bacalhau.store.jobstore import IN_PROGRESS_STATES, JobStore

log = logging.getLogger(__name__)

NS = 1_000_000_000
RETENTION_NS = 3600 * NS


class Housekeeping:
    def __init__(
        self,
        store: JobStore,
        enqueue: Callable[[Evaluation], None],
        *,
        interval: float = 30.0,
        buffer: float = 1.0,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.store = store
        self.enqueue = enqueue
        self.interval = interval
        self.buffer_ns = int(buffer * NS)
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="housekeeping")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
                return
            except TimeoutError:
                pass
            try:
                self.run_once()
            except Exception:
                log.exception("housekeeping pass failed")

    def run_once(self) -> list[Evaluation]:
        """One pass; returns the evaluations it enqueued."""
        now = self.clock()
        jobs, _ = self.store.list_jobs(
            None, states=[s.value for s in IN_PROGRESS_STATES],
            types=[JobType.BATCH.value, JobType.OPS.value])
        found: list[Evaluation] = []
        for job in jobs:
            trigger = self._timeout_trigger(job, now)
            if trigger:
                found.append(Evaluation(
                    id=new_eval_id(delayed=True), namespace=job.namespace, job_id=job.id,
                    triggered_by=trigger, priority=job.priority, type=job.type,
                    status=EvalStatus.PENDING, create_time=now, modify_time=now))
        with self.store.transaction():
            for evaluation in found:
                self.store.create_evaluation(evaluation)
            self.store.prune_outbox(now - RETENTION_NS)
            self.store.prune_evaluations(now - RETENTION_NS)
        for evaluation in found:
            self.enqueue(evaluation)
        return found

    def _timeout_trigger(self, job: Job, now: int) -> str:
        if not job.tasks:
            return ""
        timeouts = job.task.timeouts
        if timeouts.total_timeout > 0 and (
                now > job.create_time + timeouts.total_timeout * NS + self.buffer_ns):
            return EvalTrigger.JOB_TIMEOUT
        limit = timeouts.execution_timeout * NS
        if limit > 0:
            for e in self.store.get_executions(job.id, job_version=job.version):
                if (not e.is_terminal()
                        and e.desired_state.state_type == ExecutionDesiredStateType.RUNNING
                        and e.compute_state_type.is_executing()
                        and now > e.modify_time + limit + self.buffer_ns):
                    return EvalTrigger.EXEC_TIMEOUT
        return ""
