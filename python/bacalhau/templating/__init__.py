"""Job spec templates: the part of Go's `text/template` that `bacalhau job run -V/-E` uses.

Bacalhau renders a job file with Go's `text/template` over a map of strings (`-V key=value`
plus the environment variables matching `-E`), with `missingkey=error`, before parsing it.
This package renders the same documents the same way for the constructs such specs use:

- `{{.key}}`, `{{ .key }}`, trim markers `{{- ... -}}` and comments `{{/* ... */}}`;
- literals (`"text"` with Go escapes, `` `raw` ``, numbers, `true`, `false`), `.` and `$`
  (the whole map), parenthesised pipelines and pipes (`{{ .name | printf "%q" }}`);
- the functions `printf`, `print`, `println`, `len`, `index`, `eq`, `ne`, `lt`, `le`, `gt`,
  `ge`, `and`, `or`, `not`, `html`, `js`, `urlquery`;
- `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}` and `{{with}}`/`{{else}}`/`{{end}}`.

A key the template uses but the map lacks is a `TemplateError` naming the key, as Go's
"map has no entry for key" is. Constructs outside this subset (`range`, `define`, variables)
are refused with a message that says so, never rendered differently from Go.

Modules: `syntax` (split, lex, parse), `render` (execute), `functions`, `values` (Go's truth
and printing), `errors`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bacalhau.templating.errors import TemplateError
from bacalhau.templating.render import Renderer
from bacalhau.templating.syntax import Field, Parser

__all__ = ["TemplateError", "render", "template_keys", "template_values"]


def template_values(
    variables: Mapping[str, str] | None = None,
    env_pattern: str = "",
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The map a template is rendered with: the environment variables whose names match
    `env_pattern` (a regular expression searched in the name; `*` means all), then
    `variables` (`-V`), which win over the environment."""
    values: dict[str, str] = {}
    if env_pattern:
        pattern = ".*" if env_pattern == "*" else env_pattern
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise TemplateError(f"--template-envs {env_pattern!r} is not a regular "
                                f"expression: {exc}") from None
        for name, value in (os.environ if environ is None else environ).items():
            if regex.search(name):
                values[name] = value
    values.update(variables or {})
    return values


def render(text: str, values: Mapping[str, Any]) -> str:
    """Render `text` with `values` (Go `text/template`, `missingkey=error`)."""
    return Renderer(values).run(Parser(text).parse())


def template_keys(text: str) -> list[str]:
    """The keys a template reads with `.key` (sorted), for messages and tests."""
    keys: set[str] = set()

    def walk(nodes: Iterable[Any]) -> None:
        for node in nodes:
            if isinstance(node, Field) and node.path:
                keys.add(node.path[0])
            for child in getattr(node, "children", lambda: [])():
                walk([child])

    walk(Parser(text).parse())
    return sorted(keys)
