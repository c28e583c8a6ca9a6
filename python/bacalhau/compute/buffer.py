"""The executor buffer (reference §6): accepted executions wait here until capacity frees.

Order: `Job.Priority` descending, then arrival. Dispatch is strict: the head of the queue
starts as soon as the capacity tracker can fit it, and nothing behind it jumps ahead (a big
high-priority job is never starved by a stream of small ones). Batch jobs run as many in
parallel as fit. An execution that could never fit the node's capacity fails at once with
"not enough capacity to run job". When a run ends its capacity is released and the queue
re-scanned. The resources of queued executions are summed for heartbeats (QueueCapacity).
An execution that asks for GPUs gets specific ones from the tracker when it starts; the
runner hands them to the executor (`RunRequest.resources.gpus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bacalhau.compute.capacity import CapacityTracker, job_usage
from bacalhau.compute.outbox import Reporter
from bacalhau.compute.runner import ExecutionRunner, fail_execution
from bacalhau.errors import ValidationError
from bacalhau.models import Execution, Resources, Topic
from bacalhau.store.executionstore import ExecutionStore

log = logging.getLogger(__name__)

NOT_ENOUGH_CAPACITY = "not enough capacity to run job"


@dataclass(order=True, slots=True)
class _Entry:
    sort_key: tuple[int, int]
    execution_id: str = field(compare=False)
    usage: Resources = field(compare=False)


def execution_usage(execution: Execution) -> Resources:
    """What the execution holds while running: the resources allocated at bid time."""
    job = execution.job
    if job is not None and job.tasks:
        allocated = execution.allocated_resources.get(job.task.name)
        if allocated is not None and not allocated.is_zero():
            return allocated
        try:
            return job_usage(job.task.resources.to_resources())
        except ValidationError:
            pass
    return job_usage(Resources())


class ExecutorBuffer:
    """Priority queue + capacity gate in front of the runner."""

    def __init__(self, tracker: CapacityTracker, runner: ExecutionRunner, store: ExecutionStore,
                 reporter: Reporter, on_change: Callable[[], None] | None = None) -> None:
        self._tracker = tracker
        self._runner = runner
        self._store = store
        self._reporter = reporter
        self._on_change = on_change
        self._queue: list[_Entry] = []
        self._queued_ids: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._arrival = itertools.count()
        self._queued_usage = Resources()

    # ----- views for heartbeats -------------------------------------------------------------

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    def queued_capacity(self) -> Resources:
        return self._queued_usage

    def is_running(self, execution_id: str) -> bool:
        return execution_id in self._running

    def is_queued(self, execution_id: str) -> bool:
        return execution_id in self._queued_ids

    # ----- queueing ---------------------------------------------------------------------------

    def enqueue(self, execution: Execution) -> None:
        """Queue an execution in state BidAccepted; starts it at once if it fits."""
        if execution.id in self._queued_ids or execution.id in self._running:
            return
        usage = execution_usage(execution)
        if not self._tracker.can_ever_fit(usage):
            message = (f"{NOT_ENOUGH_CAPACITY}: requested {usage}, node capacity "
                       f"{self._tracker.maximum}")
            fail_execution(self._store, self._reporter, execution.id, message, Topic.EXECUTION)
            return
        priority = execution.job.priority if execution.job is not None else 0
        heapq.heappush(self._queue, _Entry((-priority, next(self._arrival)), execution.id, usage))
        self._queued_ids.add(execution.id)
        self._queued_usage = self._queued_usage.add(usage)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue:
            head = self._queue[0]
            if not self._tracker.try_allocate(head.execution_id, head.usage):
                break
            heapq.heappop(self._queue)
            self._unqueue(head)
            task = asyncio.get_running_loop().create_task(self._run(head.execution_id))
            self._running[head.execution_id] = task
        self._changed()

    def _unqueue(self, entry: _Entry) -> None:
        self._queued_ids.discard(entry.execution_id)
        self._queued_usage = self._queued_usage.sub(entry.usage)

    async def _run(self, execution_id: str) -> None:
        try:
            await self._runner.run(execution_id, gpus=self._tracker.gpus_of(execution_id))
        finally:
            self._running.pop(execution_id, None)
            self._tracker.release(execution_id)
            with contextlib.suppress(RuntimeError):  # loop closing during shutdown
                self._dispatch()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("buffer change listener failed")

    # ----- cancel and stop --------------------------------------------------------------------

    async def cancel(self, execution_id: str) -> bool:
        """Drop a queued execution or stop a running one; False if it is neither."""
        for index, entry in enumerate(self._queue):
            if entry.execution_id == execution_id:
                self._queue.pop(index)
                heapq.heapify(self._queue)
                self._unqueue(entry)
                self._dispatch()
                return True
        task = self._running.get(execution_id)
        if task is None:
            return False
        await self._runner.cancel(execution_id)
        task.cancel()
        await asyncio.wait({task})
        return True

    async def stop(self) -> None:
        """Stop every run (their states stay as they are: the restart rule handles them)."""
        self._queue.clear()
        self._queued_ids.clear()
        self._queued_usage = Resources()
        tasks = list(self._running.values())
        for execution_id in list(self._running):
            with contextlib.suppress(Exception):
                await self._runner.cancel(execution_id)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
