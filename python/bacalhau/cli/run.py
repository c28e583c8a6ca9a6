"""The submit-and-watch flow shared by `job run` and `wasm run`, and the `job get` flow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bacalhau.api.client import Client
from bacalhau.cli import progress
from bacalhau.cli.output import echo_doc
from bacalhau.cli.results import (
    NoResults,
    ResultMismatch,
    default_output_dir,
    download_results,
)

F = Callable[..., Any]


def runtime_options(func: F) -> F:
    """`--wait/--no-wait`, `--wait-timeout-secs`, `--id-only`, `-f/--follow`, `--dry-run`."""
    options = [
        click.option(
            "--wait/--no-wait",
            default=True,
            show_default=True,
            help="Wait for the job to finish, showing its events as they happen.",
        ),
        click.option(
            "--wait-timeout-secs",
            type=click.IntRange(min=1),
            default=600,
            show_default=True,
            help="How long --wait waits before giving up (the job keeps running).",
        ),
        click.option("--id-only", is_flag=True, help="Print only the job ID."),
        click.option(
            "-f", "--follow", is_flag=True, help="Stream the job's logs after submitting."
        ),
        click.option(
            "--dry-run", is_flag=True, help="Print the job spec instead of submitting it."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def submit_and_watch(
    client: Client,
    job: dict[str, Any],
    *,
    force: bool = False,
    wait: bool = True,
    wait_timeout: float = 600.0,
    id_only: bool = False,
    follow: bool = False,
    output: str = "",
) -> dict[str, Any] | None:
    """Submit `job`, then wait/follow as asked. Returns the final Job when it waited."""
    answer = client.put_job(job, force=force)
    job_id = str(answer.get("JobID", ""))
    for warning in answer.get("Warnings") or []:
        click.echo(f"Warning: {warning}", err=True)

    if id_only:
        click.echo(job_id)
    else:
        click.echo(f"Job successfully submitted. Job ID: {job_id}")

    if follow:
        client.run(progress.wait_until_started(client.aio, job_id))
        client.run(progress.follow_logs(client.aio, job_id))
        final = client.get_job(job_id).get("Job") or {}
        progress.raise_if_failed(final)
        return final

    if not wait:
        if not id_only:
            click.echo("To check on the job, execute:")
            click.echo(f"\tbacalhau job describe {job_id}")
        return None

    if id_only:
        final = client.run(_wait_quietly(client, job_id, wait_timeout))
    else:
        click.echo(
            "Checking job status... (Enter Ctrl+C to exit at any time, "
            "your job will continue running):"
        )
        click.echo("")
        try:
            final = client.run(
                progress.watch_job(
                    client.aio,
                    job_id,
                    job_type=str(job.get("Type", "batch")).lower(),
                    timeout=wait_timeout,
                )
            )
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped watching; the job continues. Check on it with: "
                f"bacalhau job describe {job_id}"
            ) from None
        if output:
            echo_doc(final, output)
        else:
            progress.print_summary(final)
    progress.raise_if_failed(final)
    return final


async def _wait_quietly(client: Client, job_id: str, timeout: float) -> dict[str, Any]:
    return await progress.watch_job(client.aio, job_id, timeout=timeout, echo=lambda _line: None)


def get_results(
    client: Client,
    job_id: str,
    *,
    output_dir: Path | None = None,
    raw: bool = False,
    timeout: float = 300.0,
    namespace: str = "",
) -> None:
    """Download and merge a job's results, printing where they went."""
    out_dir = output_dir or default_output_dir(job_id, namespace)
    try:
        client.run(
            download_results(
                client.aio, job_id, out_dir, raw=raw, timeout=timeout, namespace=namespace
            )
        )
    except ResultMismatch as exc:
        raise click.ClickException(str(exc)) from None
    except NoResults:
        click.echo("No results found")
        click.echo(
            "Hint: the job published no results (no publisher, or no completed execution). "
            f"Its output may still be in the logs: bacalhau job logs {job_id}"
        )
        return
    except Exception as exc:
        if type(exc).__name__ != "MergeError":
            raise
        message = str(exc)
        if not message.startswith("cannot merge"):
            message = f"cannot merge results: {message}"
        if "--raw" not in message:
            message += "\nHint: use --raw to keep each result in its own folder"
        raise click.ClickException(message) from None
    click.echo(f"Results for job '{job_id}' have been written to...")
    click.echo(str(out_dir))
