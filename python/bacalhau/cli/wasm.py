"""`bacalhau wasm run`: build a wasm job from flags, submit it and optionally fetch results."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.run import (
    download_options,
    job_options,
    run_spec,
    runtime_options,
    settings_from,
    task_options,
)
from bacalhau.cli.spec import build_wasm_job


@click.group()
def wasm() -> None:
    """Run WebAssembly jobs."""


@wasm.command("run")
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--entry-point", default="_start", show_default=True, help="Function to call.")
@click.option(
    "-I",
    "--import-modules",
    multiple=True,
    metavar="MODULE",
    help="Module to link (local file or input target path). Repeatable.",
)
@task_options
@job_options
@runtime_options
@download_options
@pass_cli
def wasm_run(
    cli: CLIContext,
    module: str,
    args: tuple[str, ...],
    env: tuple[str, ...],
    entry_point: str,
    import_modules: tuple[str, ...],
    wait: bool,
    wait_timeout_secs: int,
    id_only: bool,
    follow: bool,
    dry_run: bool,
    download: bool,
    output_dir: Any,
    **options: Any,
) -> None:
    """Run MODULE (a local .wasm file, or the target path of an --input) with ARGS.

    Put `--` before ARGS that start with a dash: `bacalhau wasm run main.wasm -- -v`.
    """
    job_settings, task_settings = settings_from(options)
    spec = build_wasm_job(
        module,
        args,
        env=env,
        entry_point=entry_point,
        import_modules=import_modules,
        task=task_settings,
        job=job_settings,
    )
    run_spec(
        cli,
        spec,
        wait=wait,
        wait_timeout_secs=wait_timeout_secs,
        id_only=id_only,
        follow=follow,
        dry_run=dry_run,
        download=download,
        output_dir=output_dir,
    )
