"""`bacalhau config list|get|set|default`: read and edit `<DataDir>/config.yaml` (or the file
given with `-c FILE`) with the keys and types a node reads (`bacalhau.config_keys`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bacalhau.cli.common import CLIContext, pass_cli
from bacalhau.cli.flags import CobraCommand
from bacalhau.cli.output import (
    OutputOptions,
    doc_output_options,
    dump,
    echo_document,
    emit,
    list_output_options,
)
from bacalhau.errors import ConfigError


@click.group()
def config() -> None:
    """Read and change the configuration in <data dir>/config.yaml."""


def config_file(cli: CLIContext) -> Path:
    """The file `set` writes: the last `-c FILE` given (as Bacalhau's `config set -c`), else
    `<data dir>/config.yaml`."""
    files = [item for item in cli.config if "=" not in item]
    if files:
        return Path(files[-1]).expanduser().resolve()
    return cli.data_dir.expanduser().resolve() / "config.yaml"


def _effective(cli: CLIContext) -> Any:
    from bacalhau.config import load_config

    try:
        return load_config(cli.data_dir, cli.config)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return dump(value, "json", pretty=False).strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@config.command("list", cls=CobraCommand)
@list_output_options
@pass_cli
def config_list(cli: CLIContext, out: OutputOptions) -> None:
    """Every config key with its effective value (defaults < config file < BACALHAU_* env <
    -c); passwords, keys and tokens are shown as ********."""
    from bacalhau.config_keys import effective_values

    effective = _effective(cli)
    values = effective_values(effective)
    if out.format in ("json", "yaml"):
        echo_document(effective.redacted(), out)
        return
    emit(out, ["KEY", "VALUE"], [[key, _cell(value)] for key, value in values],
         dict(values))


@config.command("get", cls=CobraCommand)
@click.argument("key")
@doc_output_options(None, "json or yaml [default: the value as text].")
@pass_cli
def config_get(cli: CLIContext, key: str, out: OutputOptions) -> None:
    """Print the effective value of KEY (any case: API.Port and api.port are one key)."""
    from bacalhau.config_keys import key_spec

    try:
        spec = key_spec(key)
    except ConfigError as exc:
        raise click.UsageError(f"{exc}" + (f"\nHint: {exc.hint}" if exc.hint else "")) from None
    value = _effective(cli).get(spec.key, spec.default)
    if out.format:
        echo_document({spec.key: value}, out)
    elif isinstance(value, (dict, list)):
        click.echo(dump(value, "yaml").rstrip("\n"))
    else:
        click.echo(_cell(value))


@config.command("set", cls=CobraCommand)
@click.argument("assignment", metavar="KEY=VALUE | KEY VALUE...", nargs=-1, required=True)
@pass_cli
def config_set(cli: CLIContext, assignment: tuple[str, ...]) -> None:
    """Check VALUE for KEY, then write it to <data dir>/config.yaml (or the file of -c FILE).
    List keys take `a,b` or several values; map keys `k=v,k2=v2`. Nothing is written when
    the value, or the config it makes, is not valid.

    \b
    bacalhau config set API.Port=1235
    bacalhau config set Compute.AllocatedCapacity.CPU 50%
    bacalhau config set Labels=region=eu,zone=a
    """
    from bacalhau.config_keys import key_spec, set_in_file

    first, rest = assignment[0], list(assignment[1:])
    if "=" in first:
        key, _, value_text = first.partition("=")
        values = [value_text, *rest]
    elif rest:
        key, values = first, rest
    else:
        raise click.UsageError("give KEY=VALUE (or KEY VALUE), e.g. bacalhau config set "
                               "API.Port=1235")
    path = config_file(cli)
    try:
        spec = key_spec(key)
        if len(values) > 1 and spec.kind != "strings":
            raise ConfigError(f"{spec.key}: takes one value, got {len(values)}")
        raw: Any = values[0] if len(values) == 1 else values
        spec = set_in_file(path, key, raw, data_dir=cli.data_dir.expanduser().resolve())
    except ConfigError as exc:
        message = str(exc) + (f"\nHint: {exc.hint}" if exc.hint else "")
        raise click.ClickException(f"{message}\nNothing was written to {path}") from None
    click.echo(f"Wrote {spec.key} to {path}")


@config.command("default", cls=CobraCommand)
@doc_output_options("yaml")
def config_default(out: OutputOptions) -> None:
    """The default configuration, as a config file would hold it."""
    from bacalhau.config_keys import default_document

    echo_document(default_document(), out)
