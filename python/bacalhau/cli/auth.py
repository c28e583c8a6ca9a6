"""`bacalhau auth ...`: which credentials the CLI sends and whether the node takes them
(`info`), and bcrypt hashes for `API.Auth.Users` passwords (`hash-password`). docs/api.md."""

from __future__ import annotations

import os

import click

from bacalhau.api.client import ClientError
from bacalhau.cli.common import CLIContext, pass_cli

MIN_PASSWORD, MAX_PASSWORD = 10, 255


@click.group()
def auth() -> None:
    """API credentials (BACALHAU_API_KEY, BACALHAU_API_USERNAME/PASSWORD)."""


@auth.command("hash-password")
@click.option("--cost", type=click.IntRange(4, 16), default=10, show_default=True,
              help="bcrypt work factor.")
def hash_password(cost: int) -> None:
    """Print a bcrypt hash of a password (asked for, or read from stdin) to put in
    API.Auth.Users[].Password instead of the plain password."""
    import bcrypt

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                            err=True)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise click.BadParameter(
            f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    click.echo(bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode())


@auth.command("info")
@pass_cli
def auth_info(cli: CLIContext) -> None:
    """Which credentials the CLI sends (never their value) and whether the node accepts them."""
    if os.environ.get("BACALHAU_API_KEY", "").strip():
        sent = "an API key (BACALHAU_API_KEY, Bearer)"
    elif os.environ.get("BACALHAU_API_USERNAME") and os.environ.get("BACALHAU_API_PASSWORD"):
        sent = f"basic auth as {os.environ['BACALHAU_API_USERNAME']} (BACALHAU_API_USERNAME)"
    else:
        sent = "none (anonymous)"
    click.echo(f"Credentials: {sent}")
    with cli.client() as client:
        click.echo(f"Node: {client.base_url}")
        try:
            client.agent_node()
            click.echo("Access: accepted")
        except ClientError as err:
            if err.status not in (401, 403):
                raise
            reason = (err.body.get("Details") or {}).get("reason", "")
            click.echo(f"Access: refused ({err.status} {err.message}"
                       f"{': ' + reason if reason else ''})")
