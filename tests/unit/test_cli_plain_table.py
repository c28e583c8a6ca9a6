"""The CLI's plain tables (piped output) are rich's, character for character, without rich.

`bacalhau.cli.output.plain_table` lays out unstyled tables itself so that a one-shot command
need not import rich (issue 15); here it is compared with rich on generated tables: cells with
line breaks, empty cells, trailing spaces, truncated cells, long ids, titles, hidden headers.
"""

from __future__ import annotations

import io
import random

from rich.console import Console

from bacalhau.cli.output import OutputOptions, _rich_table, plain_table

CELLS = ["", "a", "bb", "x y", "hello world", "line1\nline2", "\n", "trailing ", " lead",
         "e-12345678", "n" * 70, "z" * 250, "12D3KooWabc", "a\n\nb", "\u2026", "x\n\n", "q\n"]
HEADERS = ["ID", "NAME", "STATE", "", "A LONG HEADER"]


def _rich(headers: list[str], rows: list[list[str]], out: OutputOptions, title: str | None,
          width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False, emoji=False,
            soft_wrap=False, color_system=None).print(
        _rich_table(headers, rows, out, styled=False, title=title))
    return buffer.getvalue()


def test_plain_tables_match_rich_on_generated_tables() -> None:
    rng = random.Random(15)
    compared = 0
    for _ in range(600):
        ncol = rng.randint(1, 6)
        headers = [rng.choice(HEADERS) for _ in range(ncol)]
        rows = [[rng.choice(CELLS) for _ in range(ncol)] for _ in range(rng.randint(0, 4))]
        out = OutputOptions(wide=rng.random() < 0.5, hide_header=rng.random() < 0.2,
                            no_style=rng.random() < 0.3)
        title = rng.choice([None, None, "Job History", "Executions", "T"])
        max_width = rng.choice([None, 240])
        text = plain_table(headers, rows, out, title=title, max_width=max_width)
        if text is None:
            continue
        width = 240 if max_width else max(240, sum(
            max((len(c) for c in col), default=0) + 2 for col in zip(headers, *rows, strict=False)))
        assert text == _rich(headers, rows, out, title, width), (headers, rows, out, title)
        compared += 1
    assert compared > 400  # most tables take the plain path


def test_what_only_rich_lays_out_falls_back() -> None:
    out = OutputOptions(wide=True)
    assert plain_table(["ID"], [["\u00e9t\u00e9"]], out) is None  # not one cell per character
    assert plain_table(["ID"], [["x" * 300]], out, max_width=240) is None  # rich would fold
    assert plain_table(["A"], [["b"]], out, title="Job History") is None  # title would wrap
    assert plain_table(["ID"], [["a\tb"]], out) is None
