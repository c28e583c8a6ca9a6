"""The classic top-level verbs of Bacalhau's CLI, still in its documentation and in users'
scripts: `create`, `get`, `describe`, `list`, `cancel`, `logs`.

Each is the very command object of its `bacalhau job ...` twin registered under the classic
name (`create` = `job run`, `get` = `job get`, `list` = `job list`, `cancel` = `job stop`,
`logs` = `job logs`), so flags and behaviour cannot drift apart; only `describe` differs, in
printing the job as YAML unless `--output` says otherwise, as the classic verb did.
"""

from __future__ import annotations

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.job import job_get, job_list, job_logs, job_run, job_stop, show_job
from bacalhau.cli.output import OutputOptions, doc_output_options

CLASSIC_TWINS = {
    "create": job_run,
    "get": job_get,
    "list": job_list,
    "cancel": job_stop,
    "logs": job_logs,
}


@click.command("describe", cls=CobraCommand)
@click.argument("job_id")
@click.option("--namespace", default="", help="Namespace of the job.")
@click.option("-v", "--version", "job_version", type=int, default=0, show_default=True,
              help="Job version (0 = the latest).")
@doc_output_options("yaml", "json or yaml (use `bacalhau job describe` for the human view).")
@pass_cli
def describe(
    cli: CLIContext, job_id: str, namespace: str, job_version: int, out: OutputOptions
) -> None:
    """Describe a job: the job, its state, history and executions, as YAML (or JSON)."""
    show_job(cli, job_id, namespace, job_version, out)


def register_classic(group: click.Group) -> None:
    """Add the classic verbs to the root `bacalhau` group."""
    for name, command in CLASSIC_TWINS.items():
        group.add_command(command, name)
    group.add_command(describe)
