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


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeatable options that also take comma-separated lists."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _network_overrides(peers: tuple[str, ...], listen: tuple[str, ...],
                       swarm_key: Path | None) -> list[str]:
    """--peers/--listen/--swarm-key as `-c` values of the Network.* keys (JSON flow lists, so
    that the config loader reads lists)."""
    out = []
    if peers:
        out.append(f"Network.Peers={json.dumps(_split(peers))}")
    if listen:
        out.append(f"Network.Listen={json.dumps(_split(listen))}")
    if swarm_key is not None:
        out.append(f"Network.SwarmKeyPath={json.dumps(str(swarm_key.expanduser().resolve()))}")
    return out


_PEERS_HELP = ("Multiaddr of a node to join, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... "
               "(repeatable or comma-separated) [config Network.Peers].")
_LISTEN_HELP = ("Multiaddr to listen on (repeatable) [config Network.Listen; default: the "
                "address of the last start, else /ip4/127.0.0.1/tcp/1235, else a free "
                "loopback port; port 0 = the port of the last start; other interfaces "
                "must be named].")
_SWARM_KEY_HELP = ("Kubo-format swarm.key: only nodes with the same key may connect "
                   "[config Network.SwarmKeyPath]. See `bacalhau swarm-key generate`.")


@click.command("serve")
@click.option("--orchestrator", is_flag=True, help="Run the orchestrator (requester) role.")
@click.option("--compute", is_flag=True, help="Run the compute role (both flags = hybrid).")
@click.option("--name", default="",
              help="Node name, used on first start only (in-process transport; on libp2p the "
                   "node id is the peer id).")
@click.option("--peers", multiple=True, metavar="MULTIADDR", help=_PEERS_HELP)
@click.option("--listen", multiple=True, metavar="MULTIADDR", help=_LISTEN_HELP)
@click.option("--swarm-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=_SWARM_KEY_HELP)
@pass_cli
def serve(cli: CLIContext, orchestrator: bool, compute: bool, name: str,
          peers: tuple[str, ...], listen: tuple[str, ...], swarm_key: Path | None) -> None:
    """Start a node. Without --orchestrator/--compute (or -c *.Enabled) it is an orchestrator.

    Nodes talk over libp2p: a compute node joins an orchestrator with
    `--peers <address printed by the orchestrator>`. Everything else is configured with
    -c Key.Path=value (or -c config.yaml).
    """
    cli.setup_logging("info")
    # flags first: an explicit -c for the same key wins, as everywhere else
    overrides = [*_network_overrides(peers, listen, swarm_key), *_base_overrides(cli)]
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
@click.option(
    "--transport",
    type=click.Choice(["libp2p", "inprocess"], case_sensitive=False),
    default=None,
    help="libp2p: each node its own libp2p host on 127.0.0.1 [default]; inprocess: all nodes "
         "on one in-process medium [config Network.Transport].",
)
@click.option("--processes", is_flag=True,
              help="Run each node as its own `bacalhau serve` process (libp2p only).")
@click.option("--compute-processes", type=click.IntRange(min=0), default=0,
              help="Spread the compute nodes over this many processes (the requesters run "
                   "as `bacalhau serve` processes of their own; libp2p only).")
@click.option("--join", "join", multiple=True, metavar="MULTIADDR",
              help="Requesters running elsewhere that every node of this devstack joins "
                   "(repeatable or comma-separated); then --orchestrators 0 is allowed.")
@click.option("--first-compute", type=click.IntRange(min=0), default=0, hidden=True,
              help="Number of the first compute node (compute-<n>), for devstack workers.")
@click.option("--swarm-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Make the devstack a private network with this swarm.key.")
@click.option("--ipfs", "embedded_ipfs", is_flag=True,
              help="Give every compute node an embedded IPFS node (peered with each other) "
                   "for ipfs inputs and the ipfs publisher [config IPFS.Embedded.Enabled].")
@pass_cli
def devstack(
    cli: CLIContext,
    orchestrators: int,
    computes: int,
    hybrids: int,
    stack_repo: Path | None,
    allow_listed_local_paths: tuple[str, ...],
    transport: str | None,
    processes: bool,
    compute_processes: int,
    join: tuple[str, ...],
    first_compute: int,
    swarm_key: Path | None,
    embedded_ipfs: bool,
) -> None:
    """Run a local network of orchestrators, compute nodes and hybrids on 127.0.0.1."""
    joined = _split(join)
    if orchestrators + hybrids == 0 and not joined:
        raise click.UsageError("a devstack needs at least one --orchestrators or --hybrids node "
                               "(or --join the requesters of another network)")
    if (processes or compute_processes) and (transport or "libp2p").lower() != "libp2p":
        raise click.UsageError("--processes and --compute-processes need --transport libp2p")
    if joined and (processes or compute_processes):
        raise click.UsageError("--join runs its nodes in this process: drop --processes and "
                               "--compute-processes")
    cli.setup_logging("info")
    base_dir = (stack_repo or Path(tempfile.mkdtemp(prefix="bacalhau-devstack-"))).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    overrides = _base_overrides(cli)
    if allow_listed_local_paths:
        # A YAML flow list, so that the config loader reads a list.
        overrides.append(f"Compute.AllowListedLocalPaths={json.dumps(allow_listed_local_paths)}")
    if transport:
        overrides.append(f"Network.Transport={transport.lower()}")
    overrides += _network_overrides((), (), swarm_key)
    if embedded_ipfs:
        overrides.append("IPFS.Embedded.Enabled=true")

    from bacalhau.config import load_config
    from bacalhau.devstack import run_devstack

    config_obj = load_config(base_dir, overrides)
    click.echo(f"Devstack data: {base_dir}", err=True)
    extra: dict[str, object] = {"processes": True} if processes else {}
    if compute_processes:
        extra["compute_processes"] = compute_processes
    if joined:
        extra.update(join=joined, first_compute=first_compute)
    try:
        asyncio.run(
            run_devstack(
                config_obj,
                computes=computes,
                orchestrators=orchestrators,
                hybrids=hybrids,
                base_dir=base_dir,
                **extra,
            )
        )
    except KeyboardInterrupt:
        pass
