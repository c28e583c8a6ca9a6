"""What the run commands share: the job, task, runtime and download flags, the submit-and-watch
flow (`job run`, `wasm run`, `docker run`) and the `job get` flow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bacalhau.api.client import Client
from bacalhau.cli import progress
from bacalhau.cli.common import CLIContext
from bacalhau.cli.output import echo_doc
from bacalhau.cli.results import (
    NoResults,
    ResultMismatch,
    default_output_dir,
    download_results,
)
from bacalhau.cli.spec import (
    JOB_TYPES,
    LONG_RUNNING_TYPES,
    NETWORK_CHOICES,
    JobSettings,
    TaskSettings,
)

F = Callable[..., Any]


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def job_options(func: F) -> F:
    """The job flags of every run command; the command receives them as a `JobSettings` in
    its `job_settings` argument (see `settings_from`)."""
    return _apply(func, [
        click.option("--name", default="", help="Job name (default: the job ID). Submitting a "
                     "job with an existing name updates that job."),
        click.option("--namespace", default="", help="Namespace [default: default]."),
        click.option("--priority", type=int, default=0, help="Job priority (higher first)."),
        click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Executions to run (batch and service jobs)."),
        click.option("--target", type=click.Choice(["any", "all"]), default="any",
                     show_default=True,
                     help="any: `count` nodes (batch job); all: every matching node (ops job)."),
        click.option("--type", "job_type", type=click.Choice(JOB_TYPES, case_sensitive=False),
                     default=None,
                     help="Job type; overrides --target (daemon: every matching node, kept "
                     "running; service: `count` executions kept running)."),
        click.option("-l", "--labels", multiple=True, metavar="K=V", help="Job labels."),
        click.option("-s", "--constraints", default="", metavar="SELECTOR",
                     help="Node selector, e.g. 'zone=eu'."),
    ])


def task_options(func: F) -> F:
    """The task flags of every run command (`TaskSettings`)."""
    return _apply(func, [
        click.option("--task-name", default="main", show_default=True, help="Name of the task."),
        click.option(
            "-i", "--input", "inputs", multiple=True, metavar="SPEC",
            help="Input: `src=URI,dst=/path,opt=k=v` or `URI:/path`; URI is file:///path (opt "
            "rw=true), http(s)://..., or a local file (sent inline). Repeatable."),
        click.option("-o", "--output", "outputs", multiple=True, metavar="NAME:/PATH",
                     help="Result path to publish (NAME:/PATH or NAME=/PATH). Repeatable."),
        click.option("-p", "--publisher", type=click.Choice(["local", "noop"]), default="local",
                     show_default=True, help="Where results are published."),
        click.option("--cpu", default="", help="CPU, e.g. 500m or 2."),
        click.option("--memory", default="", help="Memory, e.g. 512Mb or 1Gi."),
        click.option("--disk", default="", help="Disk, e.g. 1Gb."),
        click.option("--gpu", default="", help="GPUs, e.g. 1."),
        click.option("--network", type=click.Choice(NETWORK_CHOICES, case_sensitive=False),
                     default=None,
                     help="Network the job needs [default: the executor's default]."),
        click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
                     help="Domain an --network http job may reach. Repeatable."),
        click.option("--timeout", type=click.IntRange(min=0), default=0,
                     help="Total timeout, seconds (batch and ops jobs)."),
        click.option("--queue-timeout", type=click.IntRange(min=0), default=0,
                     help="How long the job may wait for a node, seconds (0 = fail at once)."),
    ])


def download_options(func: F) -> F:
    """`--download` and `--output-dir`."""
    return _apply(func, [
        click.option("--download", is_flag=True,
                     help="Download the results when the job completes."),
        click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None,
                     help="Where --download writes results [default ./job-<id>]; implies "
                     "--download."),
    ])


_JOB_KEYS = ("name", "namespace", "priority", "count", "target", "job_type", "labels",
             "constraints")
_TASK_KEYS = ("task_name", "inputs", "outputs", "publisher", "cpu", "memory", "disk", "gpu",
              "network", "domains", "timeout", "queue_timeout")


def settings_from(options: dict[str, Any]) -> tuple[JobSettings, TaskSettings]:
    """Take the `job_options` and `task_options` values out of a command's keyword arguments."""
    job = {key: options.pop(key) for key in _JOB_KEYS}
    job["type"] = job.pop("job_type") or ""
    task = {key: options.pop(key) for key in _TASK_KEYS}
    task["network"] = task["network"] or ""
    return JobSettings(**job), TaskSettings(**task)


def run_spec(
    cli: CLIContext,
    spec: dict[str, Any],
    *,
    wait: bool,
    wait_timeout_secs: int,
    id_only: bool,
    follow: bool,
    dry_run: bool,
    download: bool = False,
    output_dir: Path | None = None,
) -> None:
    """Print (`--dry-run`) or submit a built job, watch it, and download its results."""
    if dry_run:
        echo_doc(spec, "yaml")
        return
    download = download or output_dir is not None
    if download and str(spec.get("Type", "")).lower() in LONG_RUNNING_TYPES:
        raise click.UsageError(
            f"--download: {spec['Type']} jobs keep running and publish no results"
        )
    if download and not wait:
        raise click.UsageError("--download needs --wait: results exist only after the job ends")
    with cli.client() as client:
        final = submit_and_watch(
            client,
            spec,
            wait=wait,
            wait_timeout=wait_timeout_secs,
            id_only=id_only,
            follow=follow,
        )
        if download and final is not None:
            click.echo("")
            get_results(
                client,
                str(final.get("ID", "")),
                output_dir=output_dir,
                namespace=str(final.get("Namespace", "")),
            )


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
    return _apply(func, options)


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
    config: Any = None,
) -> None:
    """Download and merge a job's results, printing where they went."""
    out_dir = output_dir or default_output_dir(job_id, namespace)
    try:
        client.run(
            download_results(
                client.aio, job_id, out_dir, raw=raw, timeout=timeout, namespace=namespace,
                config=config,
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
