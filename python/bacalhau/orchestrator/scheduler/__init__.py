"""Schedulers: pure functions from (evaluation, job, executions, node view) to a Plan.

`scheduler_for(job_type)` picks the one for a job type: batch and service share the partitioned
scheduler, ops and daemon the run-everywhere one (service and daemon run without timeouts and
never complete).
"""

from __future__ import annotations

from bacalhau.errors import ValidationError
from bacalhau.models import JobType
from bacalhau.orchestrator.scheduler.base import Scheduler, SchedulerContext
from bacalhau.orchestrator.scheduler.batch import BatchScheduler
from bacalhau.orchestrator.scheduler.ops import OpsScheduler

_SCHEDULERS: dict[str, Scheduler] = {
    JobType.BATCH: BatchScheduler(),
    JobType.SERVICE: BatchScheduler(long_running=True),
    JobType.OPS: OpsScheduler(),
    JobType.DAEMON: OpsScheduler(long_running=True),
}


def scheduler_for(job_type: str) -> Scheduler:
    try:
        return _SCHEDULERS[job_type]
    except KeyError:
        raise ValidationError(f'no scheduler for job type "{job_type}"') from None


__all__ = ["BatchScheduler", "OpsScheduler", "Scheduler", "SchedulerContext", "scheduler_for"]
