"""Output for the CLI: JSON/YAML documents, rich tables, CSV, and the small value formatters.

The output flags of Bacalhau's list-like commands (`--output table|csv|json|yaml`, `--pretty`,
`--hide-header`, `--no-style`, `--wide`) and of its single-object commands (`--output json|yaml`,
`--pretty`) are declared once here (`list_output_options`, `doc_output_options`); a command
gets them as one `OutputOptions` and prints through `emit`, which renders its rows (table,
csv) or its document (json, yaml).

Tables use rich without colour or boxes when stdout is not a terminal, and a wide fixed width
there so that piped output is not wrapped at 80 columns.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from bacalhau.models import ids
from bacalhau.models.ids import LIBP2P_ED25519_PREFIX

if TYPE_CHECKING:
    # rich and yaml load where a table or a YAML document is printed, not for `--help`.
    from rich.console import Console
    from rich.table import Table

OUTPUT_FORMATS = ("table", "csv", "json", "yaml")
DOC_FORMATS = ("json", "yaml")
CELL_WIDTH = 60
PIPE_WIDTH = 240
"""The width of output that is not a terminal's (piped, redirected): wide, so not wrapped."""
"""The longest line a table cell shows unless `--wide`; longer lines end in an ellipsis."""

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
    from rich.console import Console

    out = sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        width=None if tty else PIPE_WIDTH,
        no_color=not tty,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def dump(data: Any, fmt: str, *, pretty: bool = True) -> str:
    """`data` as JSON (indented if `pretty`, else compact) or block-style YAML (no trailing
    newline)."""
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 if pretty else 0).decode()
    import yaml

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
    out = OutputOptions(wide=True)
    styled = _styled()
    if not styled:
        rows = [list(r) for r in rows]
        text = plain_table(headers, rows, out, title=title, max_width=PIPE_WIDTH)
        if text is not None:
            click.echo(text, nl=False)
            return
    console().print(_rich_table(headers, rows, out, styled=styled, title=title))


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """The output flags of one command invocation.

    `format` is empty when a single-object command was given no `--output` and prints its own
    human view (`job describe`, `agent version`)."""

    format: str = "table"
    pretty: bool = False
    hide_header: bool = False
    no_style: bool = False
    wide: bool = False

    def id(self, value: Any) -> str:
        """A job, execution or node id as a cell: whole with `--wide`, else its short form."""
        text = "" if value is None else str(value)
        return text if self.wide else short_id(text)


_OUTPUT_HELP = "The output format for the command (one of {})."
_PRETTY_HELP = "Pretty print the output. Only applies to json and yaml output formats."


def _with_options(func: F, options: Sequence[Callable[[F], F]], default: str | None) -> F:
    """`func` taking one `out: OutputOptions` in place of the values of `options`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = OutputOptions(
            format=(kwargs.pop("output", None) or default or "").lower(),
            pretty=bool(kwargs.pop("pretty", False)),
            hide_header=bool(kwargs.pop("hide_header", False)),
            no_style=bool(kwargs.pop("no_style", False)),
            wide=bool(kwargs.pop("wide", False)),
        )
        return func(*args, out=out, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def list_output_options(func: F) -> F:
    """The output flags of a list-like command (reference §7): `--output table|csv|json|yaml`
    (default table), `--pretty`, `--hide-header`, `--no-style`, `--wide`. The command receives
    them as `out: OutputOptions`."""
    options = [
        click.option("--output", "output", type=click.Choice(OUTPUT_FORMATS, case_sensitive=False),
                     default="table", show_default=True,
                     help=_OUTPUT_HELP.format(", ".join(OUTPUT_FORMATS))),
        click.option("--pretty", is_flag=True, help=_PRETTY_HELP),
        click.option("--hide-header", is_flag=True, help="Do not print the column headers."),
        click.option("--no-style", is_flag=True, help="Remove all styling from table output."),
        click.option("--wide", is_flag=True,
                     help="Print full values in the table results (whole IDs, no truncation)."),
    ]
    return _with_options(func, options, "table")


def doc_output_options(default: str | None = "yaml", help_text: str = "") -> Callable[[F], F]:
    """The output flags of a single-object command: `--output json|yaml` and `--pretty`; with
    `default=None` and no `--output`, `out.format` is empty (the command's human view)."""

    def decorate(func: F) -> F:
        options = [
            click.option("--output", "output", type=click.Choice(DOC_FORMATS, case_sensitive=False),
                         default=default, show_default=default is not None,
                         help=help_text or _OUTPUT_HELP.format(", ".join(DOC_FORMATS))),
            click.option("--pretty", is_flag=True, help=_PRETTY_HELP),
        ]
        return _with_options(func, options, default)

    return decorate


def _cell(value: Any, out: OutputOptions) -> str:
    text = "" if value is None else str(value)
    if out.wide or len(text) <= CELL_WIDTH:
        return text
    ellipsis = "..." if out.no_style else "\u2026"
    return "\n".join(
        line if len(line) <= CELL_WIDTH else line[: CELL_WIDTH - len(ellipsis)] + ellipsis
        for line in text.split("\n")
    )


def _styled() -> bool:
    return sys.stdout.isatty()


def _rich_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: OutputOptions,
    *,
    styled: bool,
    title: str | None = None,
) -> Table:
    """Styled: a rule under a bold header (as on a terminal today); plain: columns only."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    styled = styled and not out.no_style
    t = Table(
        box=box.SIMPLE_HEAD if styled else None,
        show_header=not out.hide_header,
        show_edge=False,
        pad_edge=False,
        title=title,
        title_justify="left",
        title_style="italic" if styled else "",
        header_style="bold" if styled else "",
        safe_box=True,
    )
    for header in headers:
        t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*(Text(_cell(cell, out)) for cell in row))
    return t


_PLAIN_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) | {"\n", "\u2026"}
"""Characters one terminal cell wide each that rich prints as they are (and the line break)."""


def plain_table(
    headers: Sequence[str],
    rows: list[list[Any]],
    out: OutputOptions,
    *,
    title: str | None = None,
    max_width: int | None = None,
) -> str | None:
    """The unstyled table exactly as rich prints it (columns two spaces apart, every line
    padded to the table's width), without importing rich (~40 ms of a one-shot command's
    start, issue 15); None where only rich knows the layout (other characters, a title wider
    than the table, a table wider than `max_width`, line breaks in an empty column).
    `tests/unit/test_cli_plain_table.py` compares the two on generated tables."""
    cells = [[_cell(c, out) for c in row] for row in rows]
    grid = cells if out.hide_header else [[str(h) for h in headers], *cells]
    if not grid or not headers:
        return None
    for row in grid:
        for cell in row:
            if not _PLAIN_CHARS.issuperset(cell):
                return None
    split = [[cell.split("\n") for cell in row] for row in grid]
    widths = [max((len(line) for row in split for line in row[i]), default=0)
              for i in range(len(headers))]
    if any(w == 0 and any(len(row[i]) > 1 for row in split) for i, w in enumerate(widths)):
        return None  # rich lays out line breaks in an empty column its own way
    total = sum(widths) + 2 * (len(widths) - 1)
    if total == 0:
        return None
    if (max_width is not None and total > max_width) or (title and len(title) > total):
        return None
    lines = [title.ljust(total)] if title else []
    for parts in split:
        for k in range(max(len(p) for p in parts)):
            lines.append("  ".join((p[k] if k < len(p) else "").ljust(w)
                                   for p, w in zip(parts, widths, strict=True)))
    return "".join(line + "\n" for line in lines)


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: OutputOptions,
    *,
    terminal: bool = False,
    width: int | None = None,
) -> str:
    """The table as text, styled as for a terminal when `terminal` (unless `--no-style`)."""
    rows = [list(r) for r in rows]
    if not rows and out.hide_header:
        return ""
    if not (terminal and not out.no_style) and width is None:
        text = plain_table(headers, rows, out)
        if text is not None:
            return text
    from rich.console import Console

    buffer = io.StringIO()
    styled = terminal and not out.no_style
    needed = sum(max((len(str(c)) for c in col), default=0) + 2
                 for col in zip(headers, *rows, strict=False))
    Console(
        file=buffer,
        width=width or max(240, needed),
        force_terminal=styled,
        color_system="standard" if styled else None,
        no_color=not styled,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    ).print(_rich_table(headers, rows, out, styled=styled))
    return buffer.getvalue()


def render_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: OutputOptions) -> str:
    """RFC 4180 CSV, one `\\n`-ended line per row; cells with a comma, quote, CR or LF are
    quoted (as Go's encoding/csv does). Cells are never truncated; ids are short unless
    `--wide`, as in the table."""
    buffer = io.StringIO()
    # A "\r\n" terminator makes the writer quote cells holding a CR as well as an LF.
    writer = csv.writer(buffer, lineterminator="\r\n")
    lines = []
    for row in ([] if out.hide_header else [list(headers)]) + [list(r) for r in rows]:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["" if c is None else str(c) for c in row])
        lines.append(buffer.getvalue()[:-2])
    return "".join(line + "\n" for line in lines)


def render(
    out: OutputOptions,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    data: Any,
    *,
    terminal: bool = False,
) -> str:
    """What a list command prints: its rows as a table or CSV, or `data` as JSON/YAML (`out`
    with an empty format is a table)."""
    if out.format == "csv":
        return render_csv(headers, rows, out)
    if out.format in DOC_FORMATS:
        return dump(data, out.format, pretty=out.pretty) + "\n"
    return render_table(headers, rows, out, terminal=terminal)


def emit(out: OutputOptions, headers: Sequence[str], rows: Iterable[Sequence[Any]],
         data: Any) -> None:
    """Print `render(...)` to stdout; a table goes through rich's console on a terminal (its
    width, its colours), elsewhere it is as wide as its longest row."""
    if out.format in ("", "table") and _styled():
        rows = list(rows)
        if rows or not out.hide_header:
            console().print(_rich_table(headers, rows, out, styled=not out.no_style))
        return
    click.echo(render(out, headers, rows, data), nl=False)


def echo_document(data: Any, out: OutputOptions, default: str = "yaml") -> None:
    """A single object in `out.format` (else `default`), JSON compact unless `--pretty`."""
    click.echo(dump(data, out.format or default, pretty=out.pretty))


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
