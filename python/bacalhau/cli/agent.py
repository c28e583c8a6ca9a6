"""`bacalhau agent ...` (one node's health, version, info, config) and `bacalhau version`."""

from __future__ import annotations

import click

from bacalhau.cli.common import CLIContext, friendly_error, pass_cli
from bacalhau.cli.output import DOC_FORMATS, echo_doc, table
from bacalhau.version import build_version_info

_output = click.option(
    "--output", type=click.Choice(DOC_FORMATS), default=None, help="json or yaml [yaml]."
)


@click.group()
def agent() -> None:
    """Ask the node behind --api-host/--api-port about itself."""


@agent.command("alive")
@_output
@pass_cli
def agent_alive(cli: CLIContext, output: str | None) -> None:
    """Whether the node is up."""
    with cli.client() as client:
        echo_doc(client.agent_alive(), output or "yaml")


@agent.command("version")
@_output
@pass_cli
def agent_version(cli: CLIContext, output: str | None) -> None:
    """The node's build version."""
    with cli.client() as client:
        info = client.agent_version()
    if output:
        echo_doc(info, output)
        return
    click.echo(f"Bacalhau {info.get('GitVersion', '')}")
    click.echo(f"BuildDate {info.get('BuildDate', '')}")
    click.echo(f"GitCommit {info.get('GitCommit', '')}")


@agent.command("node")
@_output
@pass_cli
def agent_node(cli: CLIContext, output: str | None) -> None:
    """The node's NodeInfo."""
    with cli.client() as client:
        echo_doc(client.agent_node(), output or "yaml")


@agent.command("config")
@_output
@pass_cli
def agent_config(cli: CLIContext, output: str | None) -> None:
    """The node's configuration (secrets redacted)."""
    with cli.client() as client:
        answer = client.agent_config()
    echo_doc(answer.get("config", answer), output or "yaml")


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only the client's version.")
@click.option(
    "--output", type=click.Choice(("table", *DOC_FORMATS)), default="table", show_default=True
)
@pass_cli
def version(cli: CLIContext, client_only: bool, output: str) -> None:
    """Versions of this client and of the node it talks to."""
    mine = build_version_info()
    data = {"ClientVersion": mine}
    note = ""
    if not client_only:
        try:
            with cli.client() as client:
                data["ServerVersion"] = client.agent_version()
        except Exception as exc:  # no server is fine: the client version still answers
            friendly = friendly_error(exc, f"http://{cli.api_host}:{cli.api_port}")
            if friendly is None:
                raise
            note = f"No server version: {friendly.message.splitlines()[0]}"
            client_only = True
    if output != "table":
        echo_doc(data, output)
    else:
        headers = ["CLIENT"] + ([] if client_only else ["SERVER"])
        row = [mine.get("GitVersion", "")]
        if not client_only:
            row.append(data["ServerVersion"].get("GitVersion", ""))
        table(headers, [row])
    if note:
        click.echo(note, err=True)
