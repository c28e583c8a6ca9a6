"""Following a job through its history until it settles: the loop behind the CLI's live
display (`cli.progress.watch_job`) and the SDK's `wait` (`bacalhau.sdk`).

It polls `GET /jobs/{id}/history?event_type=all`, passing back the `NextToken` it gets
(reference §2.6): the server keeps returning a token while the job is active, so the loop
stops when the token is empty or the job reached a terminal state. Long-running jobs (daemon,
service) stop after their first execution-level event, as Bacalhau's CLI does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bacalhau.api.client import AsyncClient

POLL_INTERVAL = 0.1
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


async def follow_history(
    client: AsyncClient,
    job_id: str,
    on_item: Callable[[dict[str, Any]], None],
    *,
    job_type: str = "batch",
    timeout: float = 600.0,
    interval: float = POLL_INTERVAL,
) -> dict[str, Any]:
    """Call `on_item` with each history item (wire JSON) as it appears, until the job
    settles; return the final Job (wire JSON). `HistoryTimeout` when `timeout` passes first."""
    deadline = time.monotonic() + timeout
    token = ""
    long_running = job_type in LONG_RUNNING
    while True:
        page = await client.job_history(job_id, event_type="all", next_token=token)
        items = page.get("Items") or []
        for item in items:
            on_item(item)
        token = str(page.get("NextToken") or "")
        if not token:
            break
        if long_running and any(i.get("Type") == "ExecutionLevel" for i in items):
            break
        if items and any(is_terminal_event(i) for i in items):
            job = (await client.get_job(job_id)).get("Job") or {}
            if job_state(job) in TERMINAL_STATES:
                # Drain what was recorded after the terminal state, then stop.
                tail = await client.job_history(job_id, event_type="all", next_token=token)
                for item in tail.get("Items") or []:
                    on_item(item)
                return job
        if time.monotonic() >= deadline:
            raise HistoryTimeout(job_id, timeout)
        await asyncio.sleep(interval)
    return (await client.get_job(job_id)).get("Job") or {}
