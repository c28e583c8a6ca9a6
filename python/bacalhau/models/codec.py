"""JSON encoding and the small decoding helpers every model uses.

Bacalhau decodes JSON case-insensitively (Go's encoding/json), and clients rely on it, so
`lower_keys` folds a mapping's keys once and models read the folded names.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from bacalhau.errors import ValidationError

INT64_MAX = 2**63 - 1  # what the stores (SQLite INTEGER) and Go's int64 hold


def dumps(obj: Any) -> bytes:
    """Serialize to compact JSON bytes; objects with `to_dict` are converted first."""
    # models are dataclasses: route them through to_dict (wire names), not orjson's own
    # dataclass encoding (attribute names)
    return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)


def _default(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars), much faster than
    `copy.deepcopy`; anything else is handed to `copy.deepcopy`."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    return copy.deepcopy(value)


def copy_str_map(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a mapping whose values are normally strings."""
    if type(value) is not dict:
        return copy.deepcopy(value)
    for v in value.values():
        if type(v) is not str:
            return {k: copy_json(v) for k, v in value.items()}
    return value.copy()


def lower_keys(data: Any, where: str) -> dict[str, Any]:
    """Return `data` with lower-cased keys, or raise a ValidationError naming `where`."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: expected an object, got {_kind(data)}")
    return {str(k).lower(): v for k, v in data.items()}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def get_str(d: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = d.get(key.lower())
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError(f"{where}.{key}: expected a string, got {_kind(value)}")
    return value


def get_int(d: dict[str, Any], key: str, where: str, default: int = 0) -> int:
    value = d.get(key.lower())
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ValidationError(f"{where}.{key}: expected an integer, got {_kind(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise ValidationError(f"{where}.{key}: expected an integer, got {value}")
    return int(value)


def get_float(d: dict[str, Any], key: str, where: str, default: float = 0.0) -> float:
    value = d.get(key.lower())
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{where}.{key}: expected a number, got {_kind(value)}")
    return float(value)


def get_bool(d: dict[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = d.get(key.lower())
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValidationError(f"{where}.{key}: expected a boolean, got {_kind(value)}")


def get_str_map(d: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = d.get(key.lower())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{where}.{key}: expected an object, got {_kind(value)}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise ValidationError(f"{where}.{key}.{k}: expected a string, got {_kind(v)}")
        out[str(k)] = v
    return out


def get_list(d: dict[str, Any], key: str, where: str) -> list[Any]:
    value = d.get(key.lower())
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{where}.{key}: expected a list, got {_kind(value)}")
    return value


def get_str_list(d: dict[str, Any], key: str, where: str) -> list[str]:
    items = get_list(d, key, where)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ValidationError(f"{where}.{key}[{i}]: expected a string, got {_kind(item)}")
    return list(items)


def get_dict(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = d.get(key.lower())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{where}.{key}: expected an object, got {_kind(value)}")
    return dict(value)
