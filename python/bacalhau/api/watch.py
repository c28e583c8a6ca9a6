"""Following a job through its history until it settles: the loop behind the CLI's live
display (`cli.progress.watch_job`) and the SDK's `wait` (`bacalhau.sdk`).

It polls `GET /jobs/{id}/history?event_type=all`, passing back the `NextToken` it gets
(reference §2.6): the server keeps returning a token while the job is active, so the loop
stops when the token is empty or the job reached a terminal state. Long-running jobs (daemon,
service) stop after their first execution-level event, as Bacalhau's CLI does.

The loop is written once (`_follow`, a generator that yields the calls it needs) and driven
two ways: `follow_history` on an `AsyncClient`, `follow_history_blocking` on a blocking client
(the CLI's one-shot client: no asyncio, no aiohttp). With `long_poll` the history requests ask
the server to hold an empty page until the job's next event (`api.routes.history_wait`); an
answer marked as held is followed by the next request at once, any other after `interval`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bacalhau.api.client import AsyncClient

POLL_INTERVAL = 0.1
LONG_POLL = 5.0
"""Seconds a long-polled history request may be held (the CLI's; kept under its timeout)."""
LONG_POLLED = "LongPolled"
"""Key of a history answer that the server held (`api.routes.history_wait.ANSWER_KEY`)."""
LONG_RUNNING = frozenset({"daemon", "service"})
TERMINAL_STATES = frozenset({"Completed", "Failed", "Stopped"})


class HistoryTimeout(TimeoutError):
    """The job was still going when the wait ran out (the job keeps running)."""

    def __init__(self, job_id: str, timeout: float) -> None:
        self.job_id = job_id
        self.timeout = timeout
        super().__init__(f"job {job_id} is still running after {timeout:g}s")


def job_state(job: dict[str, Any]) -> str:
    return str((job.get("State") or {}).get("StateType") or "")


def is_terminal_event(item: dict[str, Any]) -> bool:
    details = (item.get("Event") or {}).get("Details") or {}
    return str(details.get("NewState", "")) in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class _History:
    token: str
    long_poll_ms: int = 0


@dataclass(frozen=True, slots=True)
class _GetJob:
    pass


@dataclass(frozen=True, slots=True)
class _Pause:
    seconds: float


_Step = _History | _GetJob | _Pause


def _follow(
    job_id: str,
    on_item: Callable[[dict[str, Any]], None],
    *,
    job_type: str,
    timeout: float,
    interval: float,
    long_poll: float,
) -> Generator[_Step, Any, dict[str, Any]]:
    """The following loop: yields each call it needs and receives its answer (wire JSON;
    None for a pause); returns the final Job."""
    deadline = time.monotonic() + timeout
    token = ""
    long_running = job_type in LONG_RUNNING
    while True:
        hold = min(long_poll, deadline - time.monotonic()) if long_poll else 0.0
        page = yield _History(token, max(0, int(hold * 1000)))
        held = bool(page.get(LONG_POLLED))
        items = page.get("Items") or []
        for item in items:
            on_item(item)
        token = str(page.get("NextToken") or "")
        if not token:
            break
        if long_running and any(i.get("Type") == "ExecutionLevel" for i in items):
            break
        if items and any(is_terminal_event(i) for i in items):
            job = (yield _GetJob()).get("Job") or {}
            if job_state(job) in TERMINAL_STATES:
                # Drain what was recorded after the terminal state, then stop.
                tail = yield _History(token)
                for item in tail.get("Items") or []:
                    on_item(item)
                return job
        if time.monotonic() >= deadline:
            raise HistoryTimeout(job_id, timeout)
        if not held:  # a held answer came as soon as there was news: ask again at once
            yield _Pause(interval)
    return (yield _GetJob()).get("Job") or {}


def _perform(client: Any, job_id: str, step: _Step, sleep: Callable[[float], Any]) -> Any:
    """The call a step asks for, on either kind of client: its answer, or the awaitable of it
    (an `AsyncClient`, `asyncio.sleep`), which the async driver awaits."""
    if isinstance(step, _History):
        return client.job_history(job_id, event_type="all", next_token=step.token,
                                  long_poll_ms=step.long_poll_ms)
    if isinstance(step, _GetJob):
        return client.get_job(job_id)
    return sleep(step.seconds)


async def follow_history(
    client: AsyncClient,
    job_id: str,
    on_item: Callable[[dict[str, Any]], None],
    *,
    job_type: str = "batch",
    timeout: float = 600.0,
    interval: float = POLL_INTERVAL,
    long_poll: float = 0.0,
) -> dict[str, Any]:
    """Call `on_item` with each history item (wire JSON) as it appears, until the job
    settles; return the final Job (wire JSON). `HistoryTimeout` when `timeout` passes first."""
    import asyncio

    steps = _follow(job_id, on_item, job_type=job_type, timeout=timeout, interval=interval,
                    long_poll=long_poll)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer = await _perform(client, job_id, step, asyncio.sleep)


class BlockingHistoryClient(Protocol):
    """What `follow_history_blocking` calls: `api.oneshot.OneShotClient` or
    `api.sync_client.Client`."""

    def job_history(self, job_id: str, **kwargs: Any) -> dict[str, Any]: ...

    def get_job(self, job_id: str, **kwargs: Any) -> dict[str, Any]: ...


def follow_history_blocking(
    client: BlockingHistoryClient,
    job_id: str,
    on_item: Callable[[dict[str, Any]], None],
    *,
    job_type: str = "batch",
    timeout: float = 600.0,
    interval: float = POLL_INTERVAL,
    long_poll: float = LONG_POLL,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """`follow_history` on a blocking client, long-polling by default; `sleep` waits between
    polls that the server did not hold."""
    steps = _follow(job_id, on_item, job_type=job_type, timeout=timeout, interval=interval,
                    long_poll=long_poll)
    answer: Any = None
    while True:
        try:
            step = steps.send(answer)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer = _perform(client, job_id, step, sleep)
