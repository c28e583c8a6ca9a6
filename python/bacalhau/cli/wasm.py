"""`bacalhau wasm run`: build a wasm job from flags, submit it and optionally fetch results."""

from __future__ import annotations

from pathlib import Path

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.output import echo_doc
from bacalhau.cli.run import get_results, runtime_options, submit_and_watch
from bacalhau.cli.spec import build_wasm_job


@click.group()
def wasm() -> None:
    """Run WebAssembly jobs."""


@wasm.command("run")
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    metavar="SPEC",
    help="Input: `src=URI,dst=/path,opt=k=v` or `URI:/path`; URI is file:///path (opt "
    "rw=true), http(s)://..., or a local file (sent inline). Repeatable.",
)
@click.option(
    "-o", "--output", "outputs", multiple=True, metavar="NAME:/PATH", help="Result path to publish."
)
@click.option(
    "-p",
    "--publisher",
    type=click.Choice(["local", "noop"]),
    default="local",
    show_default=True,
    help="Where results are published.",
)
@click.option("-e", "--env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option("--entry-point", default="_start", show_default=True, help="Function to call.")
@click.option(
    "-I",
    "--import-modules",
    multiple=True,
    metavar="MODULE",
    help="Module to link (local file or input target path). Repeatable.",
)
@click.option("--cpu", default="", help="CPU, e.g. 500m or 2.")
@click.option("--memory", default="", help="Memory, e.g. 512Mb or 1Gi.")
@click.option("--disk", default="", help="Disk, e.g. 1Gb.")
@click.option("--timeout", type=click.IntRange(min=0), default=0, help="Total timeout, seconds.")
@click.option(
    "--queue-timeout",
    type=click.IntRange(min=0),
    default=0,
    help="How long the job may wait for a node, seconds (0 = fail at once).",
)
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--target",
    type=click.Choice(["any", "all"]),
    default="any",
    show_default=True,
    help="any: `count` nodes (batch job); all: every matching node (ops job).",
)
@click.option("--name", default="", help="Job name (default: the job ID).")
@click.option("--namespace", default="", help="Namespace [default: default].")
@click.option("--priority", type=int, default=0, help="Job priority (higher first).")
@click.option("-l", "--labels", multiple=True, metavar="K=V", help="Job labels.")
@click.option(
    "-s", "--constraints", default="", metavar="SELECTOR", help="Node selector, e.g. 'zone=eu'."
)
@runtime_options
@click.option("--download", is_flag=True, help="Download the results when the job completes.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where --download writes results [default ./job-<id>]; implies --download.",
)
@pass_cli
def wasm_run(
    cli: CLIContext,
    module: str,
    args: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    publisher: str,
    env: tuple[str, ...],
    entry_point: str,
    import_modules: tuple[str, ...],
    cpu: str,
    memory: str,
    disk: str,
    timeout: int,
    queue_timeout: int,
    count: int,
    target: str,
    name: str,
    namespace: str,
    priority: int,
    labels: tuple[str, ...],
    constraints: str,
    wait: bool,
    wait_timeout_secs: int,
    id_only: bool,
    follow: bool,
    dry_run: bool,
    download: bool,
    output_dir: Path | None,
) -> None:
    """Run MODULE (a local .wasm file, or the target path of an --input) with ARGS.

    Put `--` before ARGS that start with a dash: `bacalhau wasm run main.wasm -- -v`.
    """
    spec = build_wasm_job(
        module,
        args,
        inputs=inputs,
        outputs=outputs,
        publisher=publisher,
        env=env,
        entry_point=entry_point,
        import_modules=import_modules,
        cpu=cpu,
        memory=memory,
        disk=disk,
        timeout=timeout,
        queue_timeout=queue_timeout,
        count=count,
        target=target,
        name=name,
        namespace=namespace,
        priority=priority,
        labels=labels,
        constraints=constraints,
    )
    if dry_run:
        echo_doc(spec, "yaml")
        return
    download = download or output_dir is not None
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
