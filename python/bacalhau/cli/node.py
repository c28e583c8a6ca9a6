"""`bacalhau node ...`: list, describe, approve, reject and delete nodes."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.output import (
    OutputOptions,
    doc_output_options,
    echo_document,
    emit,
    human_bytes,
    labels_text,
    list_output_options,
)


@click.group()
def node() -> None:
    """Inspect and manage the nodes of the network."""


@node.command("list", cls=CobraCommand)
@click.option(
    "--filter-approval",
    type=click.Choice(["approved", "pending", "rejected"], case_sensitive=False),
    default=None,
    help="Only nodes with this membership.",
)
@click.option(
    "--filter-status",
    type=click.Choice(["connected", "disconnected"], case_sensitive=False),
    default=None,
    help="Only nodes with this connection status.",
)
@click.option("--labels", multiple=True, help="Label selector, e.g. 'os_arch=amd64'.")
@click.option(
    "--order-by",
    type=click.Choice(
        [
            "id",
            "type",
            "available_cpu",
            "available_memory",
            "available_disk",
            "available_gpu",
            "approval",
            "status",
        ]
    ),
    default=None,
)
@click.option("--order-reversed", is_flag=True)
@click.option("--limit", type=click.IntRange(min=0), default=0, help="0 = all.")
@click.option(
    "--show", default="labels,capacity", show_default=True, metavar="GROUPS",
    callback=lambda _ctx, _param, value: _column_groups(value),
    help="Column groups to show, comma separated: labels, capacity, version, features.")
@list_output_options
@pass_cli
def node_list(
    cli: CLIContext,
    filter_approval: str | None,
    filter_status: str | None,
    labels: tuple[str, ...],
    order_by: str | None,
    order_reversed: bool,
    limit: int,
    show: list[str],
    out: OutputOptions,
) -> None:
    """List nodes with their membership, connection, labels and capacity."""
    with cli.client() as client:
        answer = client.list_nodes(
            limit=limit,
            order_by=order_by or "",
            reverse=order_reversed,
            labels=labels,
            filter_approval=(filter_approval or "").upper(),
            filter_status=(filter_status or "").upper(),
        )
    nodes = answer.get("Nodes") or []
    headers = ["ID", "TYPE", "APPROVAL", "STATUS"]
    for group in show:
        headers += COLUMN_GROUPS[group]
    emit(out, headers, [_node_row(n, out, show) for n in nodes], nodes)


# `--show` groups and their columns, in the order they are printed
COLUMN_GROUPS: dict[str, list[str]] = {
    "labels": ["LABELS"],
    "capacity": ["CPU", "MEMORY", "DISK", "GPU"],
    "version": ["VERSION"],
    "features": ["ENGINES", "INPUTS", "OUTPUTS"],
}


def _column_groups(value: str) -> list[str]:
    groups = [g.strip().lower() for g in value.split(",") if g.strip()]
    unknown = [g for g in groups if g not in COLUMN_GROUPS]
    if unknown:
        raise click.BadParameter(
            f"unknown column group {', '.join(map(repr, unknown))}; use a comma-separated "
            f"list of {', '.join(COLUMN_GROUPS)}", param_hint="--show")
    return sorted(set(groups), key=list(COLUMN_GROUPS).index)


def _node_row(state: dict[str, Any], out: OutputOptions,
              show: tuple[str, ...] | list[str] = ("labels", "capacity")) -> list[str]:
    info = state.get("Info") or {}
    compute = info.get("ComputeNodeInfo") or {}
    status = (state.get("ConnectionState") or {}).get("Status") or state.get("Connection", "")
    avail = compute.get("AvailableCapacity") or {}
    most = compute.get("MaxCapacity") or {}
    is_compute = info.get("NodeType") == "Compute"

    def pair(key: str, fmt: Any) -> str:
        if not is_compute:
            return ""
        return f"{fmt(avail.get(key, 0))} / {fmt(most.get(key, 0))}"

    def cores(value: Any) -> str:
        return f"{float(value or 0):g}"

    def names(key: str) -> str:
        return " ".join(str(v) for v in compute.get(key) or [])

    version = info.get("BacalhauVersion") or {}
    cells = {
        "labels": [labels_text(info.get("Labels"))],
        "capacity": [pair("CPU", cores), pair("Memory", human_bytes), pair("Disk", human_bytes),
                     pair("GPU", cores)],
        "version": [str(version.get("GitVersion") or version.get("Major", ""))],
        "features": [names("ExecutionEngines"), names("StorageSources"), names("Publishers")],
    }
    row = [
        out.id(info.get("NodeID", "")),
        str(info.get("NodeType", "")),
        str(state.get("Membership", "")),
        str(status),
    ]
    for group in show:
        row += cells[group]
    return row


@node.command("describe", cls=CobraCommand)
@click.argument("node_id")
@doc_output_options("yaml")
@pass_cli
def node_describe(cli: CLIContext, node_id: str, out: OutputOptions) -> None:
    """Show a node's full state."""
    with cli.client() as client:
        answer = client.get_node(node_id)
    echo_document(answer.get("Node") or answer, out)


def _action(cli: CLIContext, node_id: str, action: str, message: str) -> None:
    with cli.client() as client:
        answer = client.node_action(node_id, action, message)
    if not answer.get("Success", False):
        raise click.ClickException(
            f"could not {action} node {node_id}: {answer.get('Error') or 'no reason given'}"
        )
    click.echo("Ok")


_message = click.option("-m", "--message", default="", help="Reason, recorded with the action.")


@node.command("approve")
@click.argument("node_id")
@_message
@pass_cli
def node_approve(cli: CLIContext, node_id: str, message: str) -> None:
    """Approve a node so that it receives work."""
    _action(cli, node_id, "approve", message)


@node.command("reject")
@click.argument("node_id")
@_message
@pass_cli
def node_reject(cli: CLIContext, node_id: str, message: str) -> None:
    """Reject a node; it gets no work and its handshakes are refused."""
    _action(cli, node_id, "reject", message)


@node.command("delete")
@click.argument("node_id")
@_message
@pass_cli
def node_delete(cli: CLIContext, node_id: str, message: str) -> None:
    """Forget a node."""
    _action(cli, node_id, "delete", message)
