"""EvaluationBroker: the in-memory queue between evaluations written to the store and the
scheduler workers (Nomad's eval broker, reference §5.1).

- At most one evaluation per job is ready or in flight; later ones wait, and only the best
  waiting one is kept (higher Priority, then the later CreateTime); the others are handed to
  `on_discard` (the facade marks them canceled in the store).
- Ready evaluations are served by Priority (desc), then CreateTime, then arrival.
- `dequeue()` leases an evaluation for `visibility_timeout` seconds; `ack` finishes it, `nack`
  (or an expired lease) redelivers it after `nack_delays[n]`; after `max_retries` nacks it goes
  to the dead letters (`on_dead_letter`).
- Evaluations with a future `WaitUntil` sit in a heap released by one asyncio timer.
  Those of jobs queued for capacity (trigger `job-queue`) can be released early, oldest
  first, by `wake_queued(n)`: the requester calls it when its own executions free capacity,
  so a queued job is placed when room appears rather than at its next backoff.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bacalhau.models import EvalTrigger, Evaluation
from bacalhau.models.timeutil import now_ns

NS = 1_000_000_000


@dataclass(slots=True)
class Lease:
    """An evaluation handed to a worker; ack or nack it with this lease."""

    evaluation: Evaluation
    token: str
    deliveries: int


def _better(a: Evaluation, b: Evaluation) -> bool:
    """True if `a` should be kept over `b` as a job's waiting evaluation."""
    return (a.priority, a.create_time) >= (b.priority, b.create_time)


class EvaluationBroker:
    def __init__(
        self,
        *,
        visibility_timeout: float = 60.0,
        max_retries: int = 10,
        nack_delays: Sequence[float] = (5.0, 30.0),
        on_discard: Callable[[Evaluation], None] | None = None,
        on_dead_letter: Callable[[Evaluation], None] | None = None,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.visibility_timeout = visibility_timeout
        self.max_retries = max(1, max_retries)
        self.nack_delays = tuple(nack_delays) or (0.0,)
        self.on_discard = on_discard
        self.on_dead_letter = on_dead_letter
        self.clock = clock
        self.dead_letters: list[Evaluation] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)  # lease tokens: unique per broker is all they need
        self._ready: list[tuple[int, int, int, Evaluation]] = []
        self._busy_jobs: set[str] = set()           # a ready, leased or nack-delayed eval
        self._waiting: dict[str, Evaluation] = {}   # job id -> best eval waiting its turn
        self._leases: dict[str, tuple[Lease, asyncio.TimerHandle]] = {}
        self._nacks: dict[str, int] = {}
        self._tracked: set[str] = set()
        self._delayed: list[tuple[int, int, Evaluation]] = []
        self._queued: deque[Evaluation] = deque()  # delayed job-queue evals, oldest first
        self._delayed_ids: set[str] = set()
        self._early: set[str] = set()  # released by wake_queued, still in the heap
        self._delay_timer: asyncio.TimerHandle | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # ----- producers --------------------------------------------------------------------------

    def enqueue(self, evaluation: Evaluation) -> None:
        if self._closed or evaluation.id in self._tracked:
            return
        self._tracked.add(evaluation.id)
        if evaluation.wait_until > self.clock():
            heapq.heappush(self._delayed, (evaluation.wait_until, next(self._seq), evaluation))
            self._delayed_ids.add(evaluation.id)
            if evaluation.triggered_by == EvalTrigger.JOB_QUEUE:
                self._queued.append(evaluation)
                if len(self._queued) > 2 * len(self._delayed_ids) + 64:  # drop released ones
                    self._queued = deque(e for e in self._queued if e.id in self._delayed_ids)
            self._arm_delay_timer()
            return
        self._make_ready(evaluation)

    def _make_ready(self, evaluation: Evaluation) -> None:
        job = evaluation.job_id
        if job in self._busy_jobs:
            current = self._waiting.get(job)
            if current is None or _better(evaluation, current):
                self._waiting[job] = evaluation
                loser = current
            else:
                loser = evaluation
            if loser is not None:
                self._tracked.discard(loser.id)
                if self.on_discard is not None:
                    self.on_discard(loser)
            return
        self._busy_jobs.add(job)
        self._push_ready(evaluation)

    def _push_ready(self, evaluation: Evaluation) -> None:
        heapq.heappush(self._ready, (-evaluation.priority, evaluation.create_time,
                                     next(self._seq), evaluation))
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _arm_delay_timer(self) -> None:
        if self._delay_timer is not None:
            self._delay_timer.cancel()
            self._delay_timer = None
        if not self._delayed or self._closed:
            return
        delay = max(0.0, (self._delayed[0][0] - self.clock()) / NS)
        self._delay_timer = asyncio.get_running_loop().call_later(delay, self._release_delayed)

    def _release_delayed(self) -> None:
        self._delay_timer = None
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, evaluation = heapq.heappop(self._delayed)
            if evaluation.id in self._early:
                self._early.discard(evaluation.id)
                continue
            self._delayed_ids.discard(evaluation.id)
            self._make_ready(evaluation)
        self._arm_delay_timer()

    def wake_queued(self, count: int = 1) -> int:
        """Make up to `count` delayed job-queue evaluations ready now, oldest first; returns
        how many."""
        woken = 0
        while woken < count and self._queued and not self._closed:
            evaluation = self._queued.popleft()
            if evaluation.id not in self._delayed_ids:
                continue  # released by its timer already
            self._delayed_ids.discard(evaluation.id)
            self._early.add(evaluation.id)
            self._make_ready(evaluation)
            woken += 1
        return woken

    # ----- consumers --------------------------------------------------------------------------

    async def dequeue(self) -> Lease | None:
        """The next evaluation to schedule, waiting for one; None once the broker is closed."""
        while not self._closed:
            if self._ready:
                _, _, _, evaluation = heapq.heappop(self._ready)
                return self._lease(evaluation)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return None

    def _lease(self, evaluation: Evaluation) -> Lease:
        lease = Lease(evaluation, str(next(self._tokens)), self._nacks.get(evaluation.id, 0) + 1)
        timer = asyncio.get_running_loop().call_later(
            self.visibility_timeout, self._expire, evaluation.id, lease.token)
        self._leases[evaluation.id] = (lease, timer)
        return lease

    def _take(self, lease: Lease) -> bool:
        entry = self._leases.get(lease.evaluation.id)
        if entry is None or entry[0].token != lease.token:
            return False  # expired and redelivered meanwhile
        del self._leases[lease.evaluation.id]
        entry[1].cancel()
        return True

    def ack(self, lease: Lease) -> bool:
        """Finish a leased evaluation; False if the lease had expired."""
        if not self._take(lease):
            return False
        evaluation = lease.evaluation
        self._nacks.pop(evaluation.id, None)
        self._tracked.discard(evaluation.id)
        self._release_job(evaluation.job_id)
        return True

    def nack(self, lease: Lease) -> bool:
        """Give a leased evaluation back for redelivery after a delay (or dead-letter it)."""
        if not self._take(lease):
            return False
        self._retry(lease.evaluation)
        return True

    def _expire(self, evaluation_id: str, token: str) -> None:
        entry = self._leases.get(evaluation_id)
        if entry is not None and entry[0].token == token:
            del self._leases[evaluation_id]
            self._retry(entry[0].evaluation)

    def _retry(self, evaluation: Evaluation) -> None:
        count = self._nacks.get(evaluation.id, 0) + 1
        if count >= self.max_retries:
            self._nacks.pop(evaluation.id, None)
            self._tracked.discard(evaluation.id)
            self.dead_letters.append(evaluation)
            if self.on_dead_letter is not None:
                self.on_dead_letter(evaluation)
            self._release_job(evaluation.job_id)
            return
        self._nacks[evaluation.id] = count
        delay = self.nack_delays[min(count - 1, len(self.nack_delays) - 1)]
        timer: asyncio.TimerHandle | None = None

        def redeliver() -> None:
            if timer is not None:
                self._timers.discard(timer)
            if not self._closed:
                self._push_ready(evaluation)  # the job stays busy meanwhile

        timer = asyncio.get_running_loop().call_later(delay, redeliver)
        self._timers.add(timer)

    def _release_job(self, job_id: str) -> None:
        self._busy_jobs.discard(job_id)
        waiting = self._waiting.pop(job_id, None)
        if waiting is not None:
            self._make_ready(waiting)

    # ----- lifecycle and introspection --------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        if self._delay_timer is not None:
            self._delay_timer.cancel()
        for timer in self._timers:
            timer.cancel()
        for _, timer in self._leases.values():
            timer.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def stats(self) -> dict[str, int]:
        return {
            "ready": len(self._ready),
            "unacked": len(self._leases),
            "waiting": len(self._waiting),
            "delayed": len(self._delayed) - len(self._early),
            "dead": len(self.dead_letters),
        }
