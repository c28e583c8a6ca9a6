"""`GET /api/v1/orchestrator/jobs/{id}/logs`: a job's logs over a WebSocket (reference §3.1).

Each text frame is `{"value": {"Type": 1|2, "Line": str}}` (1 stdout, 2 stderr); a failure is
one `{"error": str}` frame; the stream always ends with a normal close. As in Bacalhau, the
socket is upgraded first and errors (job not found, no execution) travel as frames. A plain GET
without the upgrade gets the lookup's APIError, or a 400 saying a WebSocket is needed.

With API users, the CLI authenticates with its `Authorization` header; a browser offers its key
as the subprotocols `bacalhau-auth, <base64url key>` (checked by `auth.auth_middleware`, needs
`read:job`), and the handshake answers `Sec-WebSocket-Protocol: bacalhau-auth`, never the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from bacalhau.errors import BacalhauError
from bacalhau.models.codec import dumps

from ..auth import WS_AUTH_PROTOCOL
from ..middleware import request_id_of
from ..state import WEBSOCKETS, requester_of
from .binding import BindError, namespace_of, query_bool, query_int, query_str
from .jobs import PREFIX

log = logging.getLogger(__name__)


def setup(app: web.Application) -> None:
    app.router.add_get(PREFIX + "/{id}/logs", job_logs)


def _frame(item: Any) -> str:
    if isinstance(item, dict):
        value = {"Type": int(item.get("Type", 1)), "Line": str(item.get("Line", ""))}
    else:
        stream, line = item
        value = {"Type": int(stream), "Line": line}
    return dumps({"value": value}).decode()


async def _log_lines(request: web.Request) -> AsyncIterator[Any]:
    """Resolve the job, then yield what `Requester.stream_logs` yields."""
    requester = requester_of(request)
    job = requester.get_job(request.match_info["id"], namespace_of(request))
    stream = requester.stream_logs(
        job.id,
        query_str(request, "execution_id"),
        query_bool(request, "follow"),
        query_bool(request, "tail"),
    )
    if inspect.isawaitable(stream):  # an `async def` returning an iterator
        stream = await stream
    try:
        async for item in stream:
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def _send_logs(request: web.Request, ws: web.WebSocketResponse) -> None:
    try:
        async for item in _log_lines(request):
            await ws.send_str(_frame(item))
    except BacalhauError as exc:
        await ws.send_str(dumps({"error": str(exc)}).decode())
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("log stream of %s failed (request %s)",
                      request.match_info["id"], request_id_of(request))
        await ws.send_str(dumps({"error": "Internal server error"}).decode())


async def job_logs(request: web.Request) -> web.StreamResponse:
    # Validate parameters before the upgrade so that mistakes get a plain 400.
    query_str(request, "execution_id")
    query_bool(request, "follow")
    query_bool(request, "tail")
    query_int(request, "job_version")
    query_bool(request, "all_job_versions")
    # A browser that offered `bacalhau-auth` must get it back or it drops the connection.
    ws = web.WebSocketResponse(autoping=True, protocols=(WS_AUTH_PROTOCOL,))
    if not ws.can_prepare(request).ok:
        requester_of(request).get_job(request.match_info["id"], namespace_of(request))
        raise BindError(
            "logs are streamed over a WebSocket: connect with an `Upgrade: websocket` request"
        )
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS]
    sockets.add(ws)
    sender = asyncio.create_task(_send_logs(request, ws))
    # Read until the client goes away, so that a follow stream stops when nobody listens.
    reader = asyncio.create_task(_drain(ws))
    try:
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, reader):
            if not task.done():
                task.cancel()
        for task in (sender, reader):
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await task
        sockets.discard(ws)
        if not ws.closed:
            await ws.close(code=WSCloseCode.OK)
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
            break
