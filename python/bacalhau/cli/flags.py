"""Flag syntax and help layout that Bacalhau's (cobra) users know and click lacks.

Cobra's boolean flags also take an explicit value, `--wait=false` or `--download=true`;
`CobraCommand` rewrites those into click's forms (`--no-wait`, `--download`, nothing) before
parsing, so documented command lines work unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import click

_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def rewrite_bool_values(command: click.Command, args: list[str]) -> list[str]:
    """`--flag=true|false` of the command's boolean flags into click's flag forms."""
    flags: dict[str, tuple[str, str | None]] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag and param.is_bool_flag:
            positive = [o for o in param.opts if o.startswith("--")]
            negative = [o for o in param.secondary_opts if o.startswith("--")]
            for name in positive:
                flags[name] = (name, negative[0] if negative else None)
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        name, sep, value = arg.partition("=")
        if sep and name in flags:
            positive, negative = flags[name]
            lowered = value.strip().lower()
            if lowered in _TRUE:
                out.append(positive)
            elif lowered in _FALSE:
                if negative:
                    out.append(negative)
            else:
                raise click.UsageError(
                    f"invalid argument {value!r} for {name}: use {name}=true or {name}=false"
                )
            continue
        out.append(arg)
    return out


def _sort_key(param: click.Parameter) -> str:
    names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
    longs = [n for n in names if n.startswith("--")] or names or [param.name or ""]
    return longs[0].lstrip("-").lower()


class CobraCommand(click.Command):
    """A click command that reads cobra's `--bool-flag=value` form and, like cobra's help,
    lists its flags in alphabetical order, each with its default when it has one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = kwargs.setdefault("context_settings", {})
        settings.setdefault("show_default", True)
        super().__init__(*args, **kwargs)
        for param in self.params:
            # Nothing to show for an empty default (cobra prints no "(default ...)" either).
            if isinstance(param, click.Option) and param.default in ("", None, (), []):
                param.show_default = False

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = []
        options = [p for p in self.get_params(ctx) if isinstance(p, click.Option)]
        for param in sorted(options, key=_sort_key):
            record = param.get_help_record(ctx)
            if record is not None:
                records.append(record)
        if records:
            with formatter.section("Options"):
                formatter.write_dl(records)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_bool_values(self, args))


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Seconds(click.ParamType):
    """Seconds as a plain number (`300`) or a Go duration (`5m`, `1m30s`), as the flags
    that cobra declared as durations (`--download-timeout-secs`) were typed."""

    name = "SECONDS|DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int | float):
            return max(1, int(value))
        text = str(value).strip()
        if re.fullmatch(r"\d+", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                self.fail(f"{value!r} is not seconds (300) or a duration (5m, 1m30s)", param, ctx)
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
        if seconds < 1:
            self.fail(f"{value!r} is shorter than one second", param, ctx)
        return int(seconds)
