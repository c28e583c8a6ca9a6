"""`bacalhau cid PATH`: print the CID that `ipfs add -r PATH` would print, computed locally."""

from __future__ import annotations

from pathlib import Path

import click

from bacalhau.content import DEFAULT_PROFILE, PROFILES, CidError
from bacalhau.content import cid as compute_cid


@click.command("cid")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="Import settings: unixfs-v0-2015 = `ipfs add`, cid-v1 = `ipfs add --cid-version=1`, "
    "unixfs-v1-2025 = Kubo's 2025 profile.",
)
@click.option("-H", "--hidden", is_flag=True, help="Include files whose names begin with a dot.")
@click.option(
    "--dereference-symlinks",
    "dereference",
    is_flag=True,
    help="Add what symlinks point to instead of the links themselves.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hashing threads (0 = all cores).",
)
def cid(path: Path, profile: str, hidden: bool, dereference: bool, threads: int) -> None:
    """Print the IPFS CID of PATH (a file or a directory), as Kubo's `ipfs add -r` computes it."""
    try:
        click.echo(
            compute_cid(path, profile, hidden=hidden, threads=threads, dereference=dereference)
        )
    except CidError as exc:
        raise click.ClickException(str(exc)) from None
