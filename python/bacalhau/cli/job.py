"""`bacalhau job ...`: submit, inspect, follow, stop and fetch jobs (reference §7).

The inspecting commands live here; `run`, `logs` and `get` (which load aiohttp, the models
and the result downloaders) live in `bacalhau.cli.job_run` and load only when used.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.lazy import LazyCommand, LazyGroup
from bacalhau.cli.output import (
    OutputOptions,
    clock_time,
    compute_state,
    date_time,
    desired_state,
    doc_output_options,
    echo_document,
    emit,
    job_state,
    list_output_options,
    ns_time,
    short_id,
    table,
)

DEFAULT_LIST_LABELS = "bacalhau_canary != true"
"""`job list` hides the network's canary jobs unless --labels says otherwise (reference §7)."""


@click.group(cls=LazyGroup, lazy_commands={
    "run": LazyCommand("bacalhau.cli.job_run:job_run",
                       "Submit the job spec in FILE (YAML or JSON; `-` or nothing reads stdin)."),
    "logs": LazyCommand("bacalhau.cli.job_run:job_logs", "Print the logs of a job's execution."),
    "get": LazyCommand("bacalhau.cli.job_run:job_get",
                       "Download a job's results and merge them into one folder."),
})
def job() -> None:
    """Submit and manage jobs."""


# ---------------------------------------------------------------- describe


@job.command("describe", cls=CobraCommand)
@click.argument("job_id")
@click.option("--namespace", default="", help="Namespace of the job.")
@click.option("-v", "--version", "job_version", type=int, default=0, help="Job version.")
@doc_output_options(None, "json or yaml (default: the human view).")
@pass_cli
def job_describe(
    cli: CLIContext, job_id: str, namespace: str, job_version: int, out: OutputOptions
) -> None:
    """Show a job: spec summary, state, history, executions and standard output."""
    show_job(cli, job_id, namespace, job_version, out)


def show_job(
    cli: CLIContext, job_id: str, namespace: str, job_version: int, out: OutputOptions
) -> None:
    """`job describe` and classic `describe`: the document in `out.format`, else the human
    view."""
    with cli.client() as client:
        answer = client.get_job(
            job_id,
            include=("history", "executions"),
            namespace=namespace,
            job_version=job_version,
        )
    if out.format:
        echo_document(answer, out)
        return
    describe_job(answer)


def describe_job(answer: dict[str, Any]) -> None:
    """The human view of `GET /jobs/{id}?include=history,executions`."""
    job_ = answer.get("Job") or {}
    history = (answer.get("History") or {}).get("Items") or []
    executions = (answer.get("Executions") or {}).get("Items") or []
    state = job_.get("State") or {}
    fields = [
        ("ID", job_.get("ID", "")),
        ("Name", job_.get("Name", "")),
        ("Namespace", job_.get("Namespace", "")),
        ("Type", job_.get("Type", "")),
        ("State", state.get("StateType", "")),
        ("Message", state.get("Message", "")),
        ("Count", job_.get("Count", 0)),
        ("Created Time", ns_time(job_.get("CreateTime"))),
        ("Modified Time", ns_time(job_.get("ModifyTime"))),
        ("Version", job_.get("Version", "")),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        if name == "Message" and not value:
            continue
        click.echo(f"{name:<{width}} = {value}")

    if executions:
        click.echo("")
        click.echo("Summary")
        counts = Counter(compute_state(e.get("ComputeState")) for e in executions)
        for name, count in sorted(counts.items()):
            click.echo(f"{name} = {count}")

    job_events = [h for h in history if h.get("Type") != "ExecutionLevel"]
    exec_events = [h for h in history if h.get("Type") == "ExecutionLevel"]
    if job_events:
        click.echo("")
        table(
            ["TIME", "REV.", "TOPIC", "EVENT"],
            [_history_row(h, h.get("JobVersion", "")) for h in job_events],
            title="Job History",
        )
    if executions:
        click.echo("")
        table(
            ["ID", "NODE ID", "STATE", "DESIRED", "REV.", "CREATED", "MODIFIED", "COMMENT"],
            [_execution_row(e) for e in executions],
            title="Executions",
        )
    published = [e for e in executions if (e.get("PublishedResult") or {}).get("Type")]
    if published:
        click.echo("")
        table(
            ["EXEC. ID", "CID", "RESULT"],
            [_published_row(e) for e in published],
            title="Published Results",
        )
    if exec_events:
        click.echo("")
        table(
            ["TIME", "EXEC. ID", "TOPIC", "EVENT"],
            [_history_row(h, short_id(str(h.get("ExecutionID", "")))) for h in exec_events],
            title="Execution History",
        )

    outputs = [e for e in executions if (e.get("RunOutput") or {}).get("Stdout")]
    if outputs:
        click.echo("")
        click.echo("Standard Output")
        for execution in outputs:
            run_output = execution["RunOutput"]
            if len(outputs) > 1:
                click.echo(f"--- {short_id(str(execution.get('ID', '')))}")
            text = str(run_output["Stdout"])
            click.echo(text, nl=not text.endswith("\n"))
            if run_output.get("StdoutTruncated"):
                click.echo(
                    f"(truncated; the full output: bacalhau job logs {job_.get('ID', '')} "
                    f"-e {execution.get('ID', '')})"
                )
    errors = [e for e in executions if (e.get("RunOutput") or {}).get("stderr")]
    if errors:
        click.echo("")
        click.echo("Standard Error")
        for execution in errors:
            if len(errors) > 1:
                click.echo(f"--- {short_id(str(execution.get('ID', '')))}")
            text = str(execution["RunOutput"]["stderr"])
            click.echo(text, nl=not text.endswith("\n"))


def _history_row(item: dict[str, Any], second: Any) -> list[Any]:
    """TIME, `second` (version or execution id), TOPIC, EVENT."""
    event = item.get("Event") or {}
    message = str(event.get("Message", ""))
    details = event.get("Details") or {}
    if details.get("Hint"):
        message += f"\nHint: {details['Hint']}"
    return [
        date_time(str(event.get("Timestamp") or item.get("Time") or "")),
        second,
        event.get("Topic", ""),
        message,
    ]


def _published_row(execution: dict[str, Any]) -> list[Any]:
    """EXEC. ID, CID (what `job get` verifies; "-" if the node attached none), RESULT."""
    result = execution.get("PublishedResult") or {}
    params = {str(k).lower(): v for k, v in (result.get("Params") or {}).items()}
    where = params.get("url") or params.get("presignedurl") or result.get("Type", "")
    return [short_id(str(execution.get("ID", ""))), params.get("cid") or "-", where]


def _execution_row(execution: dict[str, Any]) -> list[Any]:
    return [
        short_id(str(execution.get("ID", ""))),
        short_id(str(execution.get("NodeID", ""))),
        compute_state(execution.get("ComputeState")),
        desired_state(execution.get("DesiredState")),
        execution.get("Revision", ""),
        ns_time(execution.get("CreateTime")),
        ns_time(execution.get("ModifyTime")),
        (execution.get("ComputeState") or {}).get("Message", ""),
    ]


# ---------------------------------------------------------------- list


@job.command("list", cls=CobraCommand)
@click.option("--limit", "-n", "--number", "limit", type=click.IntRange(min=0), default=10,
              show_default=True, help="How many jobs to list.")
@click.option("--next-token", default="", help="Token from a previous listing.")
@click.option(
    "--order-by",
    type=click.Choice(["created_at", "modified_at"]),
    default=None,
    help="Sort field (server default created_at).",
)
@click.option("--order-reversed", "--reverse", "order_reversed", is_flag=True,
              help="Reverse the order.")
@click.option("--labels", multiple=True, default=(DEFAULT_LIST_LABELS,),
              help="Label selector, e.g. 'env=prod,tier!=web' (replaces the default).")
@click.option("--namespace", default="", help="Only jobs of this namespace ('*' = all).")
@list_output_options
@pass_cli
def job_list(
    cli: CLIContext,
    limit: int,
    next_token: str,
    order_by: str | None,
    order_reversed: bool,
    labels: tuple[str, ...],
    namespace: str,
    out: OutputOptions,
) -> None:
    """List jobs."""
    with cli.client() as client:
        answer = client.list_jobs(
            namespace=namespace,
            limit=limit,
            next_token=next_token,
            order_by=order_by or "",
            reverse=order_reversed,
            labels=labels,
        )
    items = answer.get("Items") or []
    emit(
        out,
        ["CREATED", "ID", "NAME", "JOB", "TYPE", "STATE"],
        [
            [
                ns_time(j.get("CreateTime")),
                out.id(j.get("ID", "")),
                j.get("Name", ""),
                ((j.get("Tasks") or [{}])[0].get("Engine") or {}).get("Type", ""),
                j.get("Type", ""),
                job_state(j),
            ]
            for j in items
        ],
        items,
    )
    if (token := answer.get("NextToken")) and out.format == "table":
        click.echo("")
        click.echo(f"To fetch more records use: bacalhau job list --next-token {token}")


# ---------------------------------------------------------------- executions / history


@job.command("executions", cls=CobraCommand)
@click.argument("job_id")
@click.option("-v", "--version", "job_version", type=int, default=0, help="Job version.")
@click.option("--all-versions", is_flag=True, help="Executions of every version.")
@click.option("--limit", "-n", "--number", "limit", type=click.IntRange(min=0), default=0,
              help="How many executions to list [default: all].")
@click.option("--next-token", default="", help="Token from a previous listing.")
@click.option("--order-by", type=click.Choice(["created_at", "modified_at"]), default=None,
              help="Sort field (server default created_at).")
@click.option("--order-reversed", "--reverse", "order_reversed", is_flag=True,
              help="Reverse the order.")
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@list_output_options
@pass_cli
def job_executions(
    cli: CLIContext,
    job_id: str,
    job_version: int,
    all_versions: bool,
    limit: int,
    next_token: str,
    order_by: str | None,
    order_reversed: bool,
    namespace: str,
    out: OutputOptions,
) -> None:
    """List the executions of a job."""
    with cli.client() as client:
        answer = client.job_executions(
            job_id,
            job_version=job_version,
            all_versions=all_versions,
            order_by=order_by or "",
            reverse=order_reversed,
            namespace=namespace,
            limit=limit,
            next_token=next_token,
        )
    items = answer.get("Items") or []
    emit(
        out,
        ["CREATED", "MODIFIED", "ID", "NODE ID", "REV.", "COMPUTE STATE", "DESIRED STATE"],
        [
            [
                ns_time(e.get("CreateTime")),
                ns_time(e.get("ModifyTime")),
                out.id(e.get("ID", "")),
                out.id(e.get("NodeID", "")),
                e.get("Revision", ""),
                compute_state(e.get("ComputeState")),
                desired_state(e.get("DesiredState")),
            ]
            for e in items
        ],
        items,
    )
    if (token := answer.get("NextToken")) and out.format == "table":
        click.echo("")
        click.echo(f"To fetch more records use: bacalhau job executions {job_id} "
                   f"--next-token {token}")


@job.command("history", cls=CobraCommand)
@click.argument("job_id")
@click.option(
    "--event-type",
    type=click.Choice(["all", "job", "execution"]),
    default="all",
    show_default=True,
)
@click.option("--execution-id", default="", help="Only events of this execution (prefix).")
@click.option("-v", "--version", "job_version", type=int, default=0, help="Job version.")
@click.option("--all-versions", is_flag=True)
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@list_output_options
@pass_cli
def job_history(
    cli: CLIContext,
    job_id: str,
    event_type: str,
    execution_id: str,
    job_version: int,
    all_versions: bool,
    namespace: str,
    out: OutputOptions,
) -> None:
    """List the events of a job."""
    items: list[dict[str, Any]] = []
    token = ""
    with cli.client() as client:
        # An active job keeps answering with a token; stop on an empty page.
        while True:
            page = client.job_history(
                job_id,
                event_type=event_type,
                execution_id=execution_id,
                job_version=job_version,
                all_versions=all_versions,
                namespace=namespace,
                next_token=token,
            )
            batch = page.get("Items") or []
            items.extend(batch)
            token = str(page.get("NextToken") or "")
            if not token or not batch:
                break
    emit(
        out,
        ["TIME", "LEVEL", "EXEC. ID", "TOPIC", "EVENT"],
        [
            [
                clock_time(str((h.get("Event") or {}).get("Timestamp") or h.get("Time") or "")),
                h.get("Type", ""),
                out.id(h.get("ExecutionID", "")),
                (h.get("Event") or {}).get("Topic", ""),
                (h.get("Event") or {}).get("Message", ""),
            ]
            for h in items
        ],
        items,
    )


@job.command("rerun")
@click.argument("job_id")
@click.option("-v", "--version", "job_version", type=int, default=0, help="Version to rerun.")
@click.option("--reason", default="Rerun at user request", show_default=True)
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@pass_cli
def job_rerun(cli: CLIContext, job_id: str, job_version: int, reason: str, namespace: str) -> None:
    """Run a finished job again (as a new version)."""
    with cli.client() as client:
        answer = client.rerun_job(
            job_id, job_version=job_version, reason=reason, namespace=namespace
        )
    for warning in answer.get("Warnings") or []:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(
        f"Job rerun submitted. Job ID: {answer.get('JobID', job_id)}, "
        f"version {answer.get('JobVersion', '')}, evaluation {answer.get('EvaluationID', '')}"
    )


@job.command("versions", cls=CobraCommand)
@click.argument("job_id")
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@list_output_options
@pass_cli
def job_versions(cli: CLIContext, job_id: str, namespace: str, out: OutputOptions) -> None:
    """List the versions of a job."""
    with cli.client() as client:
        items = client.job_versions(job_id, namespace=namespace).get("Items") or []
    emit(
        out,
        ["VERSION", "REV.", "CREATED", "MODIFIED", "STATE"],
        [
            [
                j.get("Version", ""),
                j.get("Revision", ""),
                ns_time(j.get("CreateTime")),
                ns_time(j.get("ModifyTime")),
                job_state(j),
            ]
            for j in items
        ],
        items,
    )


# ---------------------------------------------------------------- stop


@job.command("stop", cls=CobraCommand)
@click.argument("job_id")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--namespace", default="", help="Namespace of the job [default: default].")
@pass_cli
def job_stop(cli: CLIContext, job_id: str, quiet: bool, namespace: str) -> None:
    """Stop a job."""
    with cli.client() as client:
        answer = client.stop_job(job_id, "Stopped at user request", namespace=namespace)
    if quiet:
        return
    eval_id = answer.get("EvaluationID", "")
    if eval_id:
        click.echo(f"Job stop successful with Job ID: {job_id}")
        click.echo(f"Evaluation ID: {eval_id}")
    else:
        click.echo(f"Job {job_id} had already ended; nothing to stop.")


