"""Exceptions shared by every part of bacalhau-py, and the APIError body built from them.

Each exception carries what the REST API needs to answer with Bacalhau's error shape
(`Status`, `Code`, `Component`, `Hint`, `Details`); the API middleware turns any of them into
that body. Native exceptions raised by the Rust core are re-exported here so that users never
import from `bacalhau._native`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class BacalhauError(Exception):
    """Base of every error bacalhau-py raises on purpose."""

    status: int = 500
    code: str = "InternalError"
    component: str = "Bacalhau"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        details: dict[str, Any] | None = None,
        component: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = dict(details or {})
        if component is not None:
            self.component = component

    def __str__(self) -> str:
        return self.message


class ValidationError(BacalhauError):
    """Input that breaks a rule of the job model or an API request; names the field."""

    status = 400
    code = "BadRequest"
    component = "APIServer"


class NotFoundError(BacalhauError):
    status = 404
    code = "NotFound"
    component = "JobStore"


class MultipleMatchesError(BacalhauError):
    status = 400
    code = "BadRequest"
    component = "JobStore"


class ConflictError(BacalhauError):
    status = 409
    code = "ResourceInUse"
    component = "JobStore"


class UnauthorizedError(BacalhauError):
    status = 401
    code = "Unauthorized"
    component = "APIServer"


class UnavailableError(BacalhauError):
    status = 503
    code = "ServiceUnavailable"


class NotEnoughNodesError(BacalhauError):
    status = 500
    code = "InternalError"
    component = "Orchestrator"


class ExecutorError(BacalhauError):
    component = "Executor"


class StorageError(BacalhauError):
    component = "Storage"


class InputMismatch(StorageError):
    """An input is known, before anything is downloaded, not to be what the job pinned (e.g. S3
    reports another ChecksumSHA256): the bidder rejects the bid with this message."""


class PublisherError(BacalhauError):
    component = "Publisher"


class TransportError(BacalhauError):
    status = 503
    code = "NetworkFailure"
    component = "Transport"


class OverloadedError(BacalhauError):
    """A bounded queue is full: the client should retry after `retry_after` seconds (the API
    answers 429 with that `Retry-After`)."""

    status = 429
    code = "TooManyRequests"
    component = "Orchestrator"

    def __init__(self, message: str, *, retry_after: int = 1, hint: str = "",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint, details=details)
        self.retry_after = max(1, int(retry_after))


class StoreError(BacalhauError):
    code = "DatastoreFailure"
    component = "Store"


class ConfigError(BacalhauError):
    code = "ConfigurationError"
    component = "Config"


def api_error_body(
    status: int,
    message: str,
    *,
    code: str,
    component: str,
    request_id: str = "",
    hint: str = "",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Bacalhau's APIError JSON shape (reference §3.4)."""
    body: dict[str, Any] = {
        "Status": status,
        "Message": message,
        "RequestID": request_id,
        "Code": code,
        "Component": component,
    }
    if hint:
        body["Hint"] = hint
    if details:
        body["Details"] = {k: str(v) for k, v in details.items()}
    return body


def api_error_from_exception(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """The APIError body for any exception; unknown ones become a 500 'Internal server error'."""
    if isinstance(exc, BacalhauError):
        return api_error_body(
            exc.status,
            exc.message,
            code=exc.code,
            component=exc.component,
            request_id=request_id,
            hint=exc.hint,
            details=exc.details,
        )
    return api_error_body(
        500, "Internal server error", code="InternalError", component="Unknown",
        request_id=request_id,
    )


NATIVE_ERRORS = frozenset({"CidError", "MergeError", "NativeTransportError", "RankingError"})
"""Created once in Rust; loaded with the native module on first use (issue 15: a client
command that never touches the Rust core does not load it, ~2 ms)."""

if TYPE_CHECKING:
    from bacalhau._native import CidError as CidError
    from bacalhau._native import MergeError as MergeError
    from bacalhau._native import NativeTransportError as NativeTransportError
    from bacalhau._native import RankingError as RankingError


def __getattr__(name: str) -> Any:
    if name in NATIVE_ERRORS:
        from bacalhau import _native

        value = getattr(_native, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
