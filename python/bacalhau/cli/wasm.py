"""`bacalhau wasm run {MODULE} [--entry-point NAME] [ARGS...]`: build a wasm job from flags,
submit it and optionally fetch results."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.run import engine_run_options, run_settings, run_spec
from bacalhau.cli.spec import build_wasm_job


@click.group()
def wasm() -> None:
    """Run WebAssembly jobs."""


@wasm.command("run", cls=CobraCommand)
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--entry-point", default="_start", show_default=True, help="Function to call.")
@click.option(
    "-U",
    "--import-module-urls",
    multiple=True,
    metavar="URL",
    help="http(s) URL of a WASM module to import (downloaded by the node). Repeatable.",
)
@click.option(
    "-I",
    "--import-module-volumes",
    "--import-modules",
    "import_modules",
    multiple=True,
    metavar="MODULE",
    help="WASM module to import: a local file, the target path of an --input, or a URI "
    "(ipfs://CID, s3://...). Repeatable.",
)
@engine_run_options
@pass_cli
def wasm_run(
    cli: CLIContext,
    module: str,
    args: tuple[str, ...],
    env: tuple[str, ...],
    entry_point: str,
    import_module_urls: tuple[str, ...],
    import_modules: tuple[str, ...],
    **options: Any,
) -> None:
    """Run MODULE (a local .wasm file, a URI: ipfs://CID, s3://..., http(s)://..., or the
    target path of an --input) with ARGS.

    Put `--` before ARGS that start with a dash: `bacalhau wasm run main.wasm -- -v`.
    """
    flags, job_settings, task_settings = run_settings(cli, options)
    spec = build_wasm_job(
        module,
        args,
        env=env,
        entry_point=entry_point,
        import_modules=import_modules,
        import_module_urls=import_module_urls,
        task=task_settings,
        job=job_settings,
    )
    run_spec(cli, spec, flags)
