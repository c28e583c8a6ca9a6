"""`bacalhau agent ...` (one node's health, version, info, config) and `bacalhau version`."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.common import CLIContext, friendly_error, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.output import (
    OutputOptions,
    doc_output_options,
    echo_document,
    emit,
    list_output_options,
)
from bacalhau.version import build_version_info

# YAML unless --output says otherwise (`agent version` prints three lines then).
_output = doc_output_options(None, "json or yaml [default: yaml].")


@click.group()
def agent() -> None:
    """Ask the node behind --api-host/--api-port about itself."""


@agent.command("alive", cls=CobraCommand)
@_output
@pass_cli
def agent_alive(cli: CLIContext, out: OutputOptions) -> None:
    """Whether the node is up."""
    with cli.client() as client:
        echo_document(client.agent_alive(), out)


@agent.command("version", cls=CobraCommand)
@_output
@pass_cli
def agent_version(cli: CLIContext, out: OutputOptions) -> None:
    """The node's build version."""
    with cli.client() as client:
        info = client.agent_version()
    if out.format:
        echo_document(info, out)
        return
    click.echo(f"Bacalhau {info.get('GitVersion', '')}")
    click.echo(f"BuildDate {info.get('BuildDate', '')}")
    click.echo(f"GitCommit {info.get('GitCommit', '')}")


@agent.command("node", cls=CobraCommand)
@_output
@pass_cli
def agent_node(cli: CLIContext, out: OutputOptions) -> None:
    """The node's NodeInfo."""
    with cli.client() as client:
        echo_document(client.agent_node(), out)


@agent.command("config", cls=CobraCommand)
@_output
@pass_cli
def agent_config(cli: CLIContext, out: OutputOptions) -> None:
    """The node's configuration (secrets redacted)."""
    with cli.client() as client:
        answer = client.agent_config()
    echo_document(answer.get("config", answer), out)


@click.command("version", cls=CobraCommand)
@click.option("--client", "client_only", is_flag=True,
              help="Only the client's version (no server required).")
@list_output_options
@pass_cli
def version(cli: CLIContext, client_only: bool, out: OutputOptions) -> None:
    """Get the client and server version.

    A CLIENT and a SERVER column (json/yaml: `clientVersion` and `serverVersion`, as
    Bacalhau's); with no server answering, the client's version and a one-line note."""
    mine = build_version_info()
    data: dict[str, Any] = {"clientVersion": mine}
    headers, row = ["CLIENT"], [mine.get("GitVersion", "")]
    note = ""
    if not client_only:
        try:
            with cli.client() as client:
                server = client.agent_version()
        except Exception as exc:  # no server is fine: the client version still answers
            friendly = friendly_error(exc, f"http://{cli.api_host}:{cli.api_port}")
            if friendly is None:
                raise
            note = f"No server version: {friendly.message.splitlines()[0]}"
        else:
            data["serverVersion"] = server
            headers.append("SERVER")
            row.append(server.get("GitVersion", ""))
    emit(out, headers, [row], data)
    if note:
        click.echo(note, err=True)
