"""`bacalhau docker run IMAGE[:TAG|@DIGEST] [COMMAND] [ARG...]`: build a docker job from
Bacalhau's flags (reference §7), submit it and watch it, as `wasm run` does.

Docker-only flags: `-e/--env` (the engine's `EnvironmentVariables`), `--entrypoint` and
`-w/--workdir`; the job, task, runtime, download and IPFS flags are the shared ones of
`bacalhau.cli.run`.
"""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.run import engine_run_options, run_settings, run_spec
from bacalhau.cli.spec import build_docker_job


@click.group()
def docker() -> None:
    """Run Docker jobs."""


@docker.command("run", cls=CobraCommand)
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "-e",
    "--env",
    multiple=True,
    metavar="K=V",
    help="Environment variable of the container (-e A=1 -e B=2, or -e A=1,B=2).",
)
@click.option(
    "--entrypoint",
    multiple=True,
    metavar="CMD",
    help="Override the image's ENTRYPOINT (repeatable or comma separated: /bin/sh,-c).",
)
@click.option(
    "-w",
    "--workdir",
    default="",
    metavar="PATH",
    help="Working directory inside the container (absolute) [default: the image's WORKDIR].",
)
@engine_run_options
@pass_cli
def docker_run(
    cli: CLIContext,
    image: str,
    args: tuple[str, ...],
    env: tuple[str, ...],
    entrypoint: tuple[str, ...],
    workdir: str,
    **options: Any,
) -> None:
    """Run IMAGE (name[:tag] or name@digest) with COMMAND and ARGs as its parameters.

    Put `--` before a COMMAND or ARGs that start with a dash:
    `bacalhau docker run busybox -- sh -c 'echo hi > /outputs/x'`.
    """
    flags, job_settings, task_settings = run_settings(cli, options)
    spec = build_docker_job(
        image,
        args,
        env=env,
        entrypoint=entrypoint,
        workdir=workdir,
        task=task_settings,
        job=job_settings,
    )
    run_spec(cli, spec, flags)
