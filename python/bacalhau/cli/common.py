"""What every CLI command shares: the global options' values, the API client, error mapping.

Light on purpose (issue 15): every command imports this module, so it loads neither aiohttp,
asyncio nor yaml; the client is `bacalhau.api.oneshot.OneShotClient` (http.client), which
hands streaming calls to the aiohttp client itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bacalhau.cli.output import DOC_FORMATS

if TYPE_CHECKING:
    from bacalhau.api.oneshot import OneShotClient

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class CLIContext:
    """Values of the global options, resolved once per invocation."""

    api_host: str = "127.0.0.1"
    api_port: int = 1234
    data_dir: Path = field(default_factory=lambda: Path("~/.bacalhau").expanduser())
    config: list[str] = field(default_factory=list)
    log_level: str | None = None
    host_from_flag: bool = False
    port_from_flag: bool = False
    timeout: float = 30.0
    tls: bool = False
    insecure: bool = False
    ca_file: str = ""

    def client(self) -> OneShotClient:
        """A client for the API named by the flags, else `-c API.Host/API.Port`, else defaults."""
        host, port = self.api_host, self.api_port
        overrides = config_values(self.config)
        if not self.host_from_flag and overrides.get("API.Host"):
            host = str(overrides["API.Host"])
        if not self.port_from_flag and overrides.get("API.Port"):
            port = int(overrides["API.Port"])
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        tls = self.tls or _truthy(overrides.get("API.TLS.UseTLS"))
        insecure = self.insecure or _truthy(overrides.get("API.TLS.Insecure"))
        ca_file = self.ca_file or str(overrides.get("API.TLS.CAFile") or "")
        from bacalhau.api.client import auth_headers
        from bacalhau.api.oneshot import OneShotClient

        return OneShotClient(host, port, timeout=self.timeout, tls=tls or insecure or bool(ca_file),
                      headers=auth_headers(), insecure=insecure, ca_file=ca_file)

    def setup_logging(self, default: str) -> None:
        level = (self.log_level or default).upper()
        logging.basicConfig(
            level=getattr(logging, level, logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("true", "1", "yes")


pass_cli = click.make_pass_decorator(CLIContext, ensure=True)


def config_values(items: list[str]) -> dict[str, Any]:
    """Flatten `-c` items (`Key.Path=value` or YAML files) into dotted keys, later ones winning."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value
            continue
        path = Path(item).expanduser()
        if not path.is_file():
            raise click.BadParameter(
                f"{item!r} is neither Key.Path=value nor a readable YAML file", param_hint="-c"
            )
        import yaml

        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"{item}: not valid YAML: {exc}", param_hint="-c") from None
        if not isinstance(doc, dict):
            raise click.BadParameter(f"{item}: must be a YAML mapping", param_hint="-c")
        out.update(_flatten(doc))
    return out


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def output_option(formats: tuple[str, ...] = ("table", *DOC_FORMATS),
                  default: str = "table") -> Any:
    """A bare `--output` (list-like commands take `output.list_output_options` instead)."""
    return click.option(
        "--output",
        "output",
        type=click.Choice(formats, case_sensitive=False),
        default=default,
        show_default=True,
        help="Output format.",
    )


def doc_output_option(default: str = "yaml") -> Any:
    return output_option(DOC_FORMATS, default)


def friendly_error(exc: BaseException, api_url: str) -> click.ClickException | None:
    """The user-facing form of an exception raised under a command, or None to re-raise."""
    # Each error class is checked only where its module is loaded: an exception cannot be an
    # instance of a class nobody imported (and `--help` must not import aiohttp, issue 15).
    client = sys.modules.get("bacalhau.api.client")
    if client is not None and isinstance(exc, client.ClientError):
        return click.ClickException(str(exc))
    aiohttp = sys.modules.get("aiohttp")
    unreachable: tuple[type[BaseException], ...] = (ConnectionRefusedError,)
    if "socket" in sys.modules:
        unreachable = (*unreachable, sys.modules["socket"].gaierror)
    if aiohttp is not None:
        unreachable = (*unreachable, aiohttp.ClientConnectorError)
    if isinstance(exc, unreachable):
        reason = getattr(exc, "strerror", None) or exc
        return click.ClickException(
            f"cannot reach the Bacalhau API at {api_url} ({reason}).\n"
            "Hint: start a node with `bacalhau serve` (or `bacalhau devstack`), "
            "or point the CLI at one with --api-host/--api-port"
        )
    failed: tuple[type[BaseException], ...] = (ConnectionError,)
    if "http.client" in sys.modules:
        failed = (*failed, sys.modules["http.client"].HTTPException)
    if aiohttp is not None:
        failed = (*failed, aiohttp.ClientError)
    if isinstance(exc, failed):
        return click.ClickException(f"talking to the Bacalhau API at {api_url} failed: {exc}")
    if isinstance(exc, TimeoutError):
        return click.ClickException(
            f"the Bacalhau API at {api_url} did not answer in time; is the node overloaded?"
        )
    if type(exc).__module__.startswith("bacalhau"):
        hint = getattr(exc, "hint", "")
        return click.ClickException(f"{exc}\nHint: {hint}" if hint else str(exc))
    return None
