"""The classic top-level verbs of Bacalhau's CLI, still in its documentation and in users'
scripts: `create`, `get`, `describe`, `list`, `cancel`, `logs`.

Each is the very command object of its `bacalhau job ...` twin registered (lazily, see
`bacalhau.cli.lazy`) under the classic name (`create` = `job run`, `get` = `job get`,
`list` = `job list`, `cancel` = `job stop`, `logs` = `job logs`), so flags and behaviour
cannot drift apart; only `describe` differs, in printing the job as YAML unless `--output`
says otherwise, as the classic verb did.
"""

from __future__ import annotations

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.lazy import LazyCommand
from bacalhau.cli.output import OutputOptions, doc_output_options

CLASSIC_TWINS = {
    "create": LazyCommand("bacalhau.cli.job_run:job_run",
                          "Submit the job spec in FILE (YAML or JSON; `-` or nothing reads "
                          "stdin)."),
    "get": LazyCommand("bacalhau.cli.job_run:job_get",
                       "Download a job's results and merge them into one folder."),
    "list": LazyCommand("bacalhau.cli.job:job_list", "List jobs."),
    "cancel": LazyCommand("bacalhau.cli.job:job_stop", "Stop a job."),
    "logs": LazyCommand("bacalhau.cli.job_run:job_logs", "Print the logs of a job's execution."),
}
"""Each classic verb and the `bacalhau job ...` command object it is."""


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
    from bacalhau.cli.job import show_job

    show_job(cli, job_id, namespace, job_version, out)
