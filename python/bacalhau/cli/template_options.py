"""`job run`/`create` templating flags (reference §7): `-V/--template-vars`,
`-E/--template-envs` and `--no-template`, and rendering the spec file with them
(`bacalhau.templating`, Go `text/template` semantics) before it is parsed."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import Any

import click

F = Callable[..., Any]


def template_options(func: F) -> F:
    """The three templating flags; read them back with `render_spec`."""
    for option in reversed([
        click.option("-V", "--template-vars", "template_vars", multiple=True,
                     metavar="KEY=VALUE",
                     help="Replace the placeholder {{.KEY}} in the job spec with VALUE; "
                     "repeatable or comma separated (a=1,b=2), e.g. -V greeting=hello."),
        click.option("-E", "--template-envs", "template_envs", default="", metavar="REGEX",
                     help="Make the environment variables whose names match REGEX template "
                     "values too (-V wins over them), e.g. -E '^MY_' or -E '.*' for all."),
        click.option("--no-template", is_flag=True,
                     help="Submit the job spec as written, without replacing placeholders."),
    ]):
        func = option(func)
    return func


def parse_template_vars(values: Iterable[str]) -> dict[str, str]:
    """`-V` values: `key=value` items, each flag possibly holding several separated by commas
    (CSV quoting keeps a comma in a value: `-V 'msg="a,b"'`), as cobra's string-to-string
    flags read them."""
    out: dict[str, str] = {}
    for value in values:
        for item in next(csv.reader([value])) if value else []:
            key, sep, text = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{item!r} must be formatted as key=value",
                                         param_hint="-V/--template-vars")
            out[key.strip()] = text
    return out


def render_spec(text: str, source: str, options: dict[str, Any]) -> str:
    """The job file after templating, taking the flags out of `options`; unchanged with
    `--no-template`. A missing key is a usage error naming it and the flag that sets it."""
    template_vars = options.pop("template_vars", ())
    template_envs = options.pop("template_envs", "")
    if options.pop("no_template", False):
        return text
    from bacalhau.templating import TemplateError, render, template_values

    try:
        return render(text, template_values(parse_template_vars(template_vars),
                                            template_envs))
    except TemplateError as exc:
        if exc.missing_key:
            raise click.UsageError(
                f"{source} uses the template value {{{{.{exc.missing_key}}}}}, which was not "
                f"given ({exc}).\nHint: pass it with -V {exc.missing_key}=VALUE (or -E to "
                "take environment variables), or submit the spec as written with "
                "--no-template") from None
        raise click.UsageError(
            f"{source} is not a valid job spec template: {exc}.\nHint: --no-template submits "
            "the spec as written") from None
