"""Watching a submitted job: the live event display, log following and the closing summary.

The display follows the job's history with `bacalhau.api.watch.follow_history_blocking`
(NextToken polling, reference §2.6, long-polled where the server allows it), printing each
event as a row. Light to import (issue 15): neither asyncio nor aiohttp until logs are followed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from bacalhau.api.watch import (
    LONG_POLL,
    POLL_INTERVAL,
    BlockingHistoryClient,
    HistoryTimeout,
    follow_history_blocking,
)
from bacalhau.cli.output import clock_time, job_state, short_id

if TYPE_CHECKING:
    from bacalhau.api.client import AsyncClient

Echo = Callable[[str], None]


class WaitTimeout(click.ClickException):
    """The job is still going when `--wait-timeout-secs` ran out."""


def format_event_row(item: dict[str, Any]) -> str:
    """One display row: time, short execution id, topic, message (continuation lines indented)."""
    event = item.get("Event") or {}
    details = event.get("Details") or {}
    when = clock_time(str(event.get("Timestamp") or item.get("Time") or ""))
    exec_id = short_id(str(item.get("ExecutionID") or ""))
    topic = str(event.get("Topic") or "")
    message = str(event.get("Message") or "").rstrip()
    is_error = str(details.get("IsError", "")).lower() == "true"
    if is_error and not message.lower().startswith("error"):
        message = f"Error: {message}"
    lines = message.splitlines() or [""]
    pad = " " * 51
    text = f"{when:<13} {exec_id:<11} {topic:<24.24} {lines[0]}"
    for extra in lines[1:]:
        text += f"\n{pad}{extra}"
    if hint := details.get("Hint"):
        text += f"\n{pad}Hint: {hint}"
    return text


def watch_job(
    client: BlockingHistoryClient,
    job_id: str,
    *,
    job_type: str = "batch",
    timeout: float = 600.0,
    interval: float = POLL_INTERVAL,
    long_poll: float = LONG_POLL,
    echo: Echo = click.echo,
) -> dict[str, Any]:
    """Print history events as they happen until the job settles; return the final Job dict.

    Raises `WaitTimeout` when `timeout` seconds pass first (the job keeps running).
    """
    echo(f"{'TIME':<13} {'EXEC. ID':<11} {'TOPIC':<24} EVENT")
    try:
        return follow_history_blocking(
            client, job_id, lambda item: echo(format_event_row(item)), job_type=job_type,
            timeout=timeout, interval=interval, long_poll=long_poll)
    except HistoryTimeout:
        raise WaitTimeout(
            f"stopped waiting after {timeout:g}s; the job is still running. "
            f"Check on it with: bacalhau job describe {job_id}"
        ) from None


async def wait_until_started(
    client: AsyncClient, job_id: str, *, timeout: float = 10.0, interval: float = POLL_INTERVAL
) -> dict[str, Any]:
    """Wait (up to `timeout`) for the job to leave Pending, so that its logs can be followed."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get_job(job_id)).get("Job") or {}
        if job_state(job) not in ("Pending", "Undefined") or time.monotonic() >= deadline:
            return job
        await asyncio.sleep(interval)


async def follow_logs(
    client: AsyncClient, job_id: str, *, execution_id: str = "", tail: bool = False
) -> None:
    """Stream the job's logs (following) to stdout until the stream closes."""
    async for value in client.stream_logs(
        job_id, execution_id=execution_id, follow=True, tail=tail
    ):
        write_log_line(value)


def write_log_line(value: dict[str, Any]) -> None:
    line = str(value.get("Line", ""))
    click.echo(line, nl=not line.endswith("\n"))


def print_summary(job: dict[str, Any], *, echo: Echo = click.echo) -> None:
    """The closing lines after a wait: final state and the commands to look further."""
    job_id = str(job.get("ID", ""))
    state = job_state(job)
    echo("")
    echo(f"Job {state.lower()}: {job_id}" if state else f"Job {job_id}")
    echo("")
    echo("To get more details about the run, execute:")
    echo(f"\tbacalhau job describe {job_id}")
    echo("")
    echo("To get more details about the run executions, execute:")
    echo(f"\tbacalhau job executions {job_id}")
    publisher = ((job.get("Tasks") or [{}])[0].get("Publisher") or {}).get("Type", "")
    if state == "Completed" and publisher and publisher != "noop":
        echo("")
        echo("To download the results, execute:")
        echo(f"\tbacalhau job get {job_id}")


def raise_if_failed(job: dict[str, Any]) -> None:
    """Exit 1 with the job's message when it ended Failed."""
    if job_state(job) == "Failed":
        message = str((job.get("State") or {}).get("Message") or "no reason given")
        raise click.ClickException(f"job failed: {message}")
