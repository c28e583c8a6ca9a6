"""`bacalhau job run`, `job logs` and `job get` (with their classic twins `create`, `logs`,
`get`): the job commands that submit and watch, stream or download, and so load aiohttp, the
models and the result downloaders. `bacalhau.cli.job` loads this module only for them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand, Seconds
from bacalhau.cli.output import DOC_FORMATS
from bacalhau.cli.progress import write_log_line
from bacalhau.cli.run import (
    download_options,
    get_results,
    ipfs_options,
    pop_ipfs_flags,
    pop_run_flags,
    run_spec,
    runtime_options,
)
from bacalhau.cli.spec import parse_job_document
from bacalhau.cli.template_options import render_spec, template_options


@click.command("run", cls=CobraCommand)
@click.argument("file", type=click.File("r"), default="-")
@click.option("--force", is_flag=True, help="Submit even if an identical job (same Name) exists.")
@runtime_options
@download_options
@ipfs_options
@template_options
@click.option(
    "--output",
    type=click.Choice(DOC_FORMATS),
    default=None,
    help="Print the spec (--dry-run) or the final job in this format.",
)
@pass_cli
def job_run(cli: CLIContext, file: Any, force: bool, output: str | None, **options: Any) -> None:
    """Submit the job spec in FILE (YAML or JSON; `-` or nothing reads stdin). Placeholders
    such as {{.name}} are filled from -V/-E first (Go template syntax) unless --no-template."""
    source = "stdin" if file.name == "<stdin>" else file.name
    text = render_spec(file.read(), source, options)
    flags = pop_run_flags(options)
    flags.ipfs.apply(cli)
    spec = parse_job_document(text, source)
    run_spec(cli, spec, flags, force=force, output=output or "")


@click.command("logs", cls=CobraCommand)
@click.argument("job_id")
@click.option("-e", "--execution-id", default="", help="Execution to read (default: latest).")
@click.option("-f", "--follow", is_flag=True, help="Keep streaming until the execution ends.")
@click.option("-t", "--tail", is_flag=True, help="Only lines written from now on.")
@click.option("-v", "--version", "job_version", type=int, default=0, help="Job version.")
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@pass_cli
def job_logs(
    cli: CLIContext,
    job_id: str,
    execution_id: str,
    follow: bool,
    tail: bool,
    job_version: int,
    namespace: str,
) -> None:
    """Print the logs of a job's execution."""
    with cli.client() as client:
        for value in client.stream_logs(
            job_id,
            execution_id=execution_id,
            follow=follow,
            tail=tail,
            job_version=job_version,
            namespace=namespace,
        ):
            write_log_line(value)
            sys.stdout.flush()


@click.command("get", cls=CobraCommand)
@click.argument("job_id")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the results [default ./job-<id>].",
)
@click.option("--raw", is_flag=True, help="Keep each result in its own folder; do not merge.")
@click.option(
    "--download-timeout-secs",
    type=Seconds(),
    default=300,
    show_default=True,
    help="Timeout for downloading all results: seconds or a duration (5m).",
)
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@ipfs_options
@pass_cli
def job_get(
    cli: CLIContext,
    job_id: str,
    output_dir: Path | None,
    raw: bool,
    download_timeout_secs: int,
    namespace: str,
    **options: Any,
) -> None:
    """Download a job's results and merge them into one folder."""
    ipfs = pop_ipfs_flags(options)
    ipfs.apply(cli)
    with cli.client() as client:
        get_results(
            client,
            job_id,
            output_dir=output_dir,
            raw=raw,
            timeout=download_timeout_secs,
            namespace=namespace,
            config=ipfs.download_config(cli),  # how ipfs results are fetched
            ipfs_repo=ipfs.repo,
        )
