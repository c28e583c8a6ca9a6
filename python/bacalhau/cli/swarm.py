"""`bacalhau swarm-key`: keys that make a network private (Kubo's `swarm.key` format).

Every node of a private network holds the same file (`--swarm-key` on serve, or the config key
`Network.SwarmKeyPath`); a node with another key, or none, cannot connect to it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from bacalhau.errors import ConfigError


@click.group("swarm-key")
def swarm_key() -> None:
    """Create and check private-network keys (Kubo swarm.key format)."""


@swarm_key.command("generate")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (mode 0600); without it the key is printed to stdout.")
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
def generate(output: Path | None, force: bool) -> None:
    """Generate a new random swarm key."""
    from bacalhau.transport import swarmkey

    if output is None:
        click.echo(swarmkey.generate(), nl=False)
        return
    try:
        text = swarmkey.write(output, overwrite=force)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {output} (fingerprint {fingerprint(swarmkey.parse(text))}). Give every "
               "node of the network this file: bacalhau serve --swarm-key "
               f"{output}", err=True)


@swarm_key.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def show(path: Path) -> None:
    """Check a swarm key file and print its fingerprint (compare fingerprints, not keys,
    to see whether two nodes share a key)."""
    from bacalhau.transport import swarmkey

    try:
        key = swarmkey.read(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(fingerprint(key))


def fingerprint(key: bytes) -> str:
    """A short, non-secret name of a key: SHA-256 of it, first 16 hex digits."""
    return hashlib.sha256(b"bacalhau-swarm-key\0" + key).hexdigest()[:16]
