"""Output for the CLI: JSON/YAML documents, rich tables, and the small value formatters.

Tables use rich without colour or boxes when stdout is not a terminal, and a wide fixed width
there so that piped output is not wrapped at 80 columns.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import orjson
import yaml
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bacalhau.models import ids
from bacalhau.models.ids import LIBP2P_ED25519_PREFIX

OUTPUT_FORMATS = ("table", "json", "yaml")
DOC_FORMATS = ("json", "yaml")

COMPUTE_STATES = {
    0: "Undefined",
    1: "New",
    2: "AskForBid",
    3: "AskForBidAccepted",
    4: "AskForBidRejected",
    5: "BidAccepted",
    6: "Running",
    7: "Publishing",
    8: "BidRejected",
    9: "Completed",
    10: "Failed",
    11: "Cancelled",
}
DESIRED_STATES = {0: "Pending", 1: "Running", 2: "Stopped"}
TERMINAL_JOB_STATES = {"Completed", "Failed", "Stopped"}

_SHORT_ID = re.compile(r"^([a-z])-([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def console() -> Console:
    """A console on the current stdout (so that click's test runner captures it)."""
    out = sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        width=None if tty else 240,
        no_color=not tty,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def dump(data: Any, fmt: str) -> str:
    """`data` as an indented JSON or block-style YAML document (no trailing newline)."""
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120).rstrip("\n")


def echo_doc(data: Any, fmt: str) -> None:
    click.echo(dump(data, fmt))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
) -> None:
    """Print a plain table (header row, no borders), cells taken literally (no rich markup)."""
    t = Table(
        box=box.SIMPLE_HEAD if sys.stdout.isatty() else None,
        show_edge=False,
        pad_edge=False,
        title=title,
        title_justify="left",
        header_style="bold",
    )
    for header in headers:
        t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console().print(t)


def short_id(value: str) -> str:
    """`j-1a2b3c4d` for `j-<uuid>`, `12D3KooWAyX2LDJ1` for a libp2p peer id; other ids
    (names, hostnames) are returned whole. Every short form is a prefix of the full id."""
    if (value or "").startswith(LIBP2P_ED25519_PREFIX):
        return ids.short_id(value)
    m = _SHORT_ID.match(value or "")
    return f"{m.group(1)}-{m.group(2)}" if m else value


def ns_time(ns: Any) -> str:
    """Local `YYYY-MM-DD HH:MM:SS` for an int Unix-nanoseconds time; empty for 0."""
    if not isinstance(ns, int | float) or ns <= 0:
        return ""
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: str) -> datetime | None:
    """Parse an RFC3339(Nano) time; fractional seconds beyond microseconds are dropped."""
    if not value:
        return None
    text = value.strip()
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if m:
        frac = (m.group(2) or "")[:7]
        zone = m.group(3) or "Z"
        text = m.group(1) + frac + ("+00:00" if zone == "Z" else zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clock_time(value: str) -> str:
    """Local `HH:MM:SS.mmm` of an RFC3339 time, for event rows."""
    parsed = parse_time(value)
    if parsed is None:
        return value or ""
    return parsed.astimezone().strftime("%H:%M:%S.%f")[:-3]


def date_time(value: str) -> str:
    """Local `YYYY-MM-DD HH:MM:SS` of an RFC3339 time."""
    parsed = parse_time(value)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S") if parsed else (value or "")


def human_bytes(value: Any) -> str:
    """Decimal units like Bacalhau's (go-humanize): `512 MB`, `1.2 GB`."""
    try:
        n = float(value or 0)
    except (TypeError, ValueError):
        return str(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    return str(value)


def compute_state(state: dict[str, Any] | None) -> str:
    value = (state or {}).get("StateType", 0)
    return COMPUTE_STATES.get(value, str(value)) if isinstance(value, int) else str(value)


def desired_state(state: dict[str, Any] | None) -> str:
    value = (state or {}).get("StateType", 0)
    return DESIRED_STATES.get(value, str(value)) if isinstance(value, int) else str(value)


def job_state(job: dict[str, Any]) -> str:
    return str((job.get("State") or {}).get("StateType") or "Undefined")


def labels_text(labels: dict[str, Any] | None) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted((labels or {}).items()))
