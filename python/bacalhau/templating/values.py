"""Go's view of template values: truth (`if`, `and`, `or`), printing (`fmt.Sprint`) and the
type names its messages use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NO_VALUE = object()


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, "" and empty collections are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, str, Mapping, list, tuple)):
        return bool(value)
    return True


def go_string(value: Any) -> str:
    """How Go's fmt prints a value of a template (`fmt.Sprint`)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def go_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string"}.get(
        type(value), "map[string]string" if isinstance(value, Mapping) else "value")
