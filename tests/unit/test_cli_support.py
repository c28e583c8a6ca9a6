"""A fake Bacalhau API for client and CLI tests: canned wire-format answers on 127.0.0.1.

The server runs its own event loop in a thread, so that the blocking CLI (which runs its own
loop) can talk to it. Routes are registered per test with `on()`; every request is recorded.
This module holds no tests; the `fake_api` fixture is imported by the test_cli_* modules.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

pytestmark = pytest.mark.unit


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    ws_frames: list[dict[str, Any]] | None = None


Responder = Reply | Callable[[Recorded], Reply]


@dataclass
class FakeBacalhau:
    """Register answers with `on(method, path, reply)`; inspect `requests` afterwards."""

    routes: dict[tuple[str, str], Responder] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(
        self, method: str, path: str, reply: Responder | dict[str, Any], status: int = 200
    ) -> None:
        if isinstance(reply, dict):
            reply = Reply(status=status, json=reply)
        self.routes[(method.upper(), path)] = reply

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw
        record = Recorded(
            method=request.method,
            path=request.path,
            query=list(request.query.items()),
            headers=dict(request.headers),
            body=body,
        )
        self.requests.append(record)
        responder = self.routes.get((request.method, request.path))
        if responder is None:
            return web.json_response(
                {
                    "Status": 404,
                    "Message": "The requested resource/URL was not found.",
                    "Code": "NotFound",
                    "Component": "APIServer",
                },
                status=404,
            )
        reply = responder(record) if callable(responder) else responder
        if reply.ws_frames is not None:
            ws = web.WebSocketResponse()
            if not ws.can_prepare(request).ok:
                return web.json_response({"Message": "websocket expected"}, status=400)
            await ws.prepare(request)
            for frame in reply.ws_frames:
                await ws.send_str(orjson.dumps(frame).decode())
            await ws.close()
            return ws
        if reply.body is not None:
            return web.Response(status=reply.status, body=reply.body)
        return web.Response(
            status=reply.status,
            body=orjson.dumps(reply.json if reply.json is not None else {}),
            content_type="application/json",
        )

    def start(self) -> None:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-bacalhau", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("fake Bacalhau API did not start within 10 s")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
def fake_api() -> Iterator[FakeBacalhau]:
    server = FakeBacalhau()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- wire fixtures

JOB_ID = "j-0a1b2c3d-1111-4222-8333-444455556666"
EXEC_ID = "e-9f8e7d6c-1111-4222-8333-444455556666"
NODE_ID = "n-12345678-1111-4222-8333-444455556666"


def wire_job(state: str = "Completed", message: str = "", **extra: Any) -> dict[str, Any]:
    job = {
        "ID": JOB_ID,
        "Name": JOB_ID,
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "wasm", "Params": {"EntryModule": "/wasm/main.wasm"}},
                "Publisher": {"Type": "local"},
            }
        ],
        "State": {"StateType": state, **({"Message": message} if message else {})},
        "Version": 1,
        "Revision": 3,
        "CreateTime": 1_700_000_000_000_000_000,
        "ModifyTime": 1_700_000_001_000_000_000,
    }
    job.update(extra)
    return job


def history_item(
    seq: int, topic: str, message: str, *, exec_id: str = "", **details: str
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "SeqNum": seq,
        "Type": "ExecutionLevel" if exec_id else "JobLevel",
        "JobID": JOB_ID,
        "JobVersion": 1,
        "Event": {
            "Message": message,
            "Topic": topic,
            "Timestamp": f"2024-05-01T12:00:0{seq % 10}.123456789Z",
            **({"Details": details} if details else {}),
        },
        "Time": f"2024-05-01T12:00:0{seq % 10}.123456789Z",
    }
    if exec_id:
        item["ExecutionID"] = exec_id
    return item
