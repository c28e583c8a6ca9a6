"""The one error of job spec templates."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that cannot be rendered: bad syntax, an unsupported construct, or a key
    the values lack (`missing_key` names it then)."""

    def __init__(self, message: str, *, line: int = 0, missing_key: str = "") -> None:
        self.line = line
        self.missing_key = missing_key
        super().__init__(f"line {line}: {message}" if line else message)
