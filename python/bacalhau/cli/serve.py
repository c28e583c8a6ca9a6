"""`bacalhau serve` (one node) and `bacalhau devstack` (a local network of nodes).

Both only turn flags into `-c` style overrides for `bacalhau.config.load_config` and hand the
config to the node/devstack entry points, imported lazily so that client commands start fast.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import click

from bacalhau.cli.common import CLIContext, config_values, pass_cli


def _base_overrides(cli: CLIContext) -> list[str]:
    """`-c` values in precedence order: --api-host/--api-port (flag or env) first, so that an
    explicit `-c API.Port=...` wins, as `-c` beats env in the config precedence."""
    overrides = []
    if cli.host_from_flag:
        overrides.append(f"API.Host={cli.api_host}")
    if cli.port_from_flag:
        overrides.append(f"API.Port={cli.api_port}")
    return [*overrides, *cli.config]


@click.command("serve")
@click.option("--orchestrator", is_flag=True, help="Run the orchestrator (requester) role.")
@click.option("--compute", is_flag=True, help="Run the compute role (both flags = hybrid).")
@click.option("--name", default="", help="Node name, used on first start only.")
@pass_cli
def serve(cli: CLIContext, orchestrator: bool, compute: bool, name: str) -> None:
    """Start a node. Without --orchestrator/--compute (or -c *.Enabled) it is an orchestrator.

    Everything else is configured with -c Key.Path=value (or -c config.yaml).
    """
    cli.setup_logging("info")
    overrides = _base_overrides(cli)
    given = {k.lower() for k in config_values(overrides)}
    if orchestrator or compute:
        overrides.append(f"Orchestrator.Enabled={'true' if orchestrator else 'false'}")
        overrides.append(f"Compute.Enabled={'true' if compute else 'false'}")
    elif not given & {"orchestrator.enabled", "compute.enabled"}:
        overrides.append("Orchestrator.Enabled=true")
    if name:
        overrides.append(f"Name={name}")

    from bacalhau.config import load_config
    from bacalhau.node import run_node

    config_obj = load_config(cli.data_dir, overrides)
    try:
        asyncio.run(run_node(config_obj))
    except KeyboardInterrupt:
        pass


@click.command("devstack")
@click.option("--orchestrators", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--computes", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--hybrids", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--stack-repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the nodes' data dirs [default: a new temporary directory].",
)
@click.option(
    "--allow-listed-local-paths",
    multiple=True,
    metavar="PATH[:ro|:rw]",
    help="Local paths the compute nodes may mount. Repeatable.",
)
@pass_cli
def devstack(
    cli: CLIContext,
    orchestrators: int,
    computes: int,
    hybrids: int,
    stack_repo: Path | None,
    allow_listed_local_paths: tuple[str, ...],
) -> None:
    """Run a local network: orchestrators, compute nodes and hybrids in one process."""
    if orchestrators + hybrids == 0:
        raise click.UsageError("a devstack needs at least one --orchestrators or --hybrids node")
    cli.setup_logging("info")
    base_dir = (stack_repo or Path(tempfile.mkdtemp(prefix="bacalhau-devstack-"))).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    overrides = _base_overrides(cli)
    if allow_listed_local_paths:
        # A YAML flow list, so that the config loader reads a list.
        overrides.append(f"Compute.AllowListedLocalPaths={json.dumps(allow_listed_local_paths)}")

    from bacalhau.config import load_config
    from bacalhau.devstack import run_devstack

    config_obj = load_config(base_dir, overrides)
    click.echo(f"Devstack data: {base_dir}", err=True)
    try:
        asyncio.run(
            run_devstack(
                config_obj,
                computes=computes,
                orchestrators=orchestrators,
                hybrids=hybrids,
                base_dir=base_dir,
            )
        )
    except KeyboardInterrupt:
        pass
