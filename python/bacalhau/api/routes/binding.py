"""Reading a request: JSON bodies and query parameters, each failure a 400 naming the problem.

Like Bacalhau's binding errors (reference §3.4), these answer Status 400 with Code
`InternalError` and Component `APIServer`. Bodies are matched case-insensitively and unknown
keys (`Namespace`, `Credential`, `IdempotencyToken`, ... sent by the official clients) are
ignored.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web

from bacalhau.errors import BacalhauError, ValidationError
from bacalhau.models.codec import INT64_MAX, lower_keys

DEFAULT_NAMESPACE = "default"
ALL_NAMESPACES = "*"

_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


class BindError(ValidationError):
    """A request whose body or parameters cannot be read."""

    code = "InternalError"
    component = "APIServer"


class NotImplementedAPIError(BacalhauError):
    status = 501
    code = "NotImplemented"
    component = "APIServer"


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


async def read_json_object(
    request: web.Request, where: str, *, required: bool = True
) -> dict[str, Any]:
    """The body as a dict with lower-cased keys; `{}` for an empty optional body."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BindError(f"{where}: request body is empty, expected a JSON object")
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BindError(f"invalid JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise BindError(f"{where}: expected an object, got {_kind(data)}")
    return lower_keys(data, where)


def body_object(body: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """A required object member of a lower-cased body, e.g. `Job` of a submit request."""
    value = body.get(key.lower())
    if value is None:
        raise BindError(f'{key}: missing, the request body must be {{"{key}": {{...}}}}')
    if not isinstance(value, dict):
        raise BindError(f"{key}: expected an object, got {_kind(value)}")
    return value


def body_str(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key.lower())
    if value is None:
        return default
    if not isinstance(value, str):
        raise BindError(f"{key}: expected a string, got {_kind(value)}")
    return value


def body_bool(body: dict[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key.lower())
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BindError(f"{key}: expected a boolean, got {_kind(value)}")
    return value


def body_int(body: dict[str, Any], key: str, default: int = 0) -> int:
    value = body.get(key.lower())
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BindError(f"{key}: expected an integer, got {_kind(value)}")
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise BindError(f"{key}: {value} does not fit in 64 bits")
    return value


def query_str(request: web.Request, name: str, default: str = "") -> str:
    value = request.query.get(name)
    return default if value is None else value.strip()




def query_int(request: web.Request, name: str, default: int = 0, *, minimum: int = 0) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BindError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise BindError(f"{name}: must be >= {minimum}, got {value}")
    if value > INT64_MAX:
        raise BindError(f"{name}: must be <= {INT64_MAX}, got {value}")
    return value


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Go's strconv.ParseBool spellings: 1/t/true and 0/f/false, any case."""
    raw = request.query.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise BindError(f"{name}: expected true or false, got {request.query[name]!r}")


def query_choice(
    request: web.Request, name: str, choices: Collection[str], default: str
) -> str:
    """A parameter limited to `choices` (matched case-insensitively, returned as listed)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    for choice in choices:
        if choice.lower() == raw.lower():
            return choice
    raise BindError(f"{name}: unknown value {raw!r} (use {', '.join(choices)})")


def query_list(request: web.Request, name: str) -> list[str]:
    """A repeatable parameter (`labels=a&labels=b`), empty values dropped."""
    return [v for v in (s.strip() for s in request.query.getall(name, [])) if v]


def namespace_of(request: web.Request) -> str:
    return query_str(request, "namespace") or DEFAULT_NAMESPACE


def list_namespace_of(request: web.Request) -> str | None:
    """Listings without a namespace, or with `*`, cover every namespace."""
    value = query_str(request, "namespace")
    return None if value in ("", ALL_NAMESPACES) else value
