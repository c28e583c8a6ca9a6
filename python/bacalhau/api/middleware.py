"""The API's middleware: one error middleware that answers every failure with Bacalhau's APIError
body (reference §3.4), the CORS preflight, the client-version check, and the headers every
response carries (request id, server build, CORS)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bacalhau.errors import BacalhauError, api_error_body, api_error_from_exception
from bacalhau.models.codec import dumps
from bacalhau.version import build_version_info

from .state import HANDLER_TIMEOUT, REQUEST_ID

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
CLIENT_VERSION_HEADER = "X-Bacalhau-Git-Version"
MIN_CLIENT_VERSION = (1, 4, 0)
_VERSION_HEADERS = {
    "X-Bacalhau-Git-Version": "GitVersion",
    "X-Bacalhau-Git-Commit": "GitCommit",
    "X-Bacalhau-Build-Date": "BuildDate",
    "X-Bacalhau-Build-OS": "GOOS",
    "X-Bacalhau-Arch": "GOARCH",
}
CORS_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"

NOT_FOUND_MESSAGE = "The requested resource/URL was not found."


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response serialized with orjson (models' `to_dict` output, exact keys)."""
    return web.Response(body=dumps(data), status=status, content_type="application/json")


def request_id_of(request: web.Request) -> str:
    return str(request.get(REQUEST_ID, ""))


def _not_found_hint() -> str:
    server = build_version_info()["GitVersion"]
    return (
        f"This server runs Bacalhau {server}. If your client is a different version, the "
        "endpoint it called may not exist on this server (version skew): check the versions "
        "with `bacalhau version` and use matching client and server releases."
    )


def _http_error_body(
    exc: web.HTTPException, request: web.Request, request_id: str
) -> dict[str, object]:
    """aiohttp's own errors (unknown route, method not allowed, body too large)."""
    if exc.status == 404:
        return api_error_body(
            404, NOT_FOUND_MESSAGE, code="NotFound", component="APIServer",
            request_id=request_id, hint=_not_found_hint(),
        )
    # Like Bacalhau's echo errors: the HTTP status and its text, Code InternalError.
    message = exc.text or exc.reason
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"Method Not Allowed: {request.method} {request.path} (allowed: {allowed})"
    return api_error_body(
        exc.status, message, code="InternalError", component="APIServer",
        request_id=request_id,
    )


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id, bound its time, and turn every exception into an APIError."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        if _is_websocket(request):
            return await handler(request)
        return await _within_deadline(handler, request)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects
            raise
        response = json_response(_http_error_body(exc, request, request_id), exc.status)
        if "Allow" in exc.headers:  # 405 must say what is allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except BacalhauError as exc:
        response = json_response(api_error_from_exception(exc, request_id), exc.status)
        retry_after = getattr(exc, "retry_after", 0)
        if retry_after:  # OverloadedError: a full queue (429)
            response.headers["Retry-After"] = str(retry_after)
        return response
    except _HandlerTimeout as exc:
        body = api_error_body(
            503, f"request timed out after {exc.seconds:g}s", code="TimeOut",
            component="APIServer", request_id=request_id,
        )
        return json_response(body, 503)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s %s failed (request %s)", request.method, request.path, request_id)
        return json_response(api_error_from_exception(Exception(), request_id), 500)


class _HandlerTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def _within_deadline(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run the handler for at most the app's handler timeout (Bacalhau: 30 s)."""
    seconds = request.app.get(HANDLER_TIMEOUT, 30.0)
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await handler(request)
    except TimeoutError:
        if deadline.expired():  # ours, not a TimeoutError raised by the handler
            raise _HandlerTimeout(seconds) from None
        raise


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights for any origin (`Access-Control-Allow-Origin: *` is added to
    every response by `add_response_headers`)."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers = {
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        }
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return web.Response(status=204, headers=headers)
    return await handler(request)


_SEMVER = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# Bacalhau development builds report this version; they are not refused as too old.
_DEVELOPMENT_VERSION = (0, 0, 0)


def parse_client_version(text: str) -> tuple[int, int, int, str] | None:
    """`v1.5.2`, `1.5`, `v1.4.0-rc1` -> (major, minor, patch, prerelease); None if not semver."""
    match = _SEMVER.match(text.strip())
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    return int(major), int(minor or 0), int(patch or 0), pre or ""


def _older_than_minimum(version: tuple[int, int, int, str]) -> bool:
    numbers = version[:3]
    if numbers == _DEVELOPMENT_VERSION:
        return False
    if numbers != MIN_CLIENT_VERSION:
        return numbers < MIN_CLIENT_VERSION
    return bool(version[3])  # a pre-release of the minimum precedes it


@web.middleware
async def client_version_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Refuse clients that announce a version older than v1.4.0 (reference §3); requests without
    the header (curl, the Python SDK) pass."""
    raw = request.headers.get(CLIENT_VERSION_HEADER, "").strip()
    if not raw:
        return await handler(request)
    server = build_version_info()["GitVersion"]
    minimum = "v" + ".".join(str(n) for n in MIN_CLIENT_VERSION)
    version = parse_client_version(raw)
    if version is None:
        return json_response({
            "Error": f"failed to parse client version {raw!r} from header "
                     f"{CLIENT_VERSION_HEADER}",
            "MinVersion": minimum, "ClientVersion": raw, "ServerVersion": server,
        }, 400)
    if _older_than_minimum(version):
        return json_response({
            "Error": f"unsupported client version {raw}: this server needs {minimum} or newer; "
                     "please upgrade your Bacalhau client",
            "MinVersion": minimum, "ClientVersion": raw, "ServerVersion": server,
        }, 403)
    return await handler(request)


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: runs for every response, websocket handshakes included."""
    info = build_version_info()
    for header, key in _VERSION_HEADERS.items():
        response.headers.setdefault(header, str(info.get(key, "")))
    request_id = request_id_of(request)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
