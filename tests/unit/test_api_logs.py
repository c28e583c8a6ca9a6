"""The logs WebSocket's framing and lifetime, driven by a stub `stream_logs` (the orchestrator
tests cover the error frames with a real Requester)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.config import Config
from bacalhau.errors import NotFoundError
from bacalhau.models import Job, NodeInfo

pytestmark = pytest.mark.unit

LOGS = "/api/v1/orchestrator/jobs/{}/logs"


class LogSource:
    """The two Requester calls the logs endpoint makes."""

    def __init__(self, lines: list[tuple[int, str]], *, follow_forever: bool = False,
                 fail_with: Exception | None = None) -> None:
        self.lines = lines
        self.follow_forever = follow_forever
        self.fail_with = fail_with
        self.calls: list[tuple[str, str, bool, bool]] = []
        self.closed = asyncio.Event()

    def get_job(self, id_or_name: str, namespace: str = "default", version: int = 0) -> Job:
        if id_or_name != "j-1":
            raise NotFoundError(f"job not found: {id_or_name}")
        return Job(id="j-1", name="j-1", type="batch")

    async def stream_logs(self, job_id: str, execution_id: str, follow: bool,
                          tail: bool) -> AsyncIterator[tuple[int, str]]:
        self.calls.append((job_id, execution_id, follow, tail))
        try:
            for item in self.lines:
                yield item
            if self.fail_with is not None:
                raise self.fail_with
            if self.follow_forever:
                await asyncio.Event().wait()
        finally:
            self.closed.set()


async def _client(source: LogSource) -> TestClient:
    app = create_app(source, node_info_provider=NodeInfo, config=Config())  # type: ignore[arg-type]
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def _frames(client: TestClient, path: str, **params: str) -> list[Any]:
    out: list[Any] = []
    async with client.ws_connect(path, params=params) as ws:
        async for msg in ws:
            assert msg.type == WSMsgType.TEXT
            out.append(msg.json())
    assert ws.close_code == 1000
    return out


async def test_lines_become_value_frames_then_a_normal_close() -> None:
    source = LogSource([(1, "hello"), (2, "oops"), (1, "bye")])
    client = await _client(source)
    try:
        frames = await _frames(client, LOGS.format("j-1"), execution_id="e-9",
                               follow="true", tail="false")
    finally:
        await client.close()
    assert frames == [
        {"value": {"Type": 1, "Line": "hello"}},
        {"value": {"Type": 2, "Line": "oops"}},
        {"value": {"Type": 1, "Line": "bye"}},
    ]
    assert source.calls == [("j-1", "e-9", True, False)]


async def test_an_error_during_the_stream_is_the_last_frame() -> None:
    source = LogSource([(1, "partial")], fail_with=NotFoundError("execution e-9 not found"))
    client = await _client(source)
    try:
        frames = await _frames(client, LOGS.format("j-1"))
    finally:
        await client.close()
    assert frames == [{"value": {"Type": 1, "Line": "partial"}},
                      {"error": "execution e-9 not found"}]


async def test_unexpected_failures_do_not_leak_details() -> None:
    source = LogSource([], fail_with=RuntimeError("secret"))
    client = await _client(source)
    try:
        frames = await _frames(client, LOGS.format("j-1"))
    finally:
        await client.close()
    assert frames == [{"error": "Internal server error"}]


async def test_a_client_leaving_a_follow_stream_stops_it() -> None:
    source = LogSource([(1, "first")], follow_forever=True)
    client = await _client(source)
    try:
        async with client.ws_connect(LOGS.format("j-1"), params={"follow": "true"}) as ws:
            assert (await ws.receive()).json() == {"value": {"Type": 1, "Line": "first"}}
        await asyncio.wait_for(source.closed.wait(), timeout=5)
    finally:
        await client.close()


async def test_server_shutdown_closes_open_streams() -> None:
    source = LogSource([(1, "first")], follow_forever=True)
    client = await _client(source)
    ws = await client.ws_connect(LOGS.format("j-1"), params={"follow": "true"})
    assert (await ws.receive()).json()["value"]["Line"] == "first"
    await client.close()
    assert source.closed.is_set()
    assert ws.closed or (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)


async def test_bad_parameters_are_refused_before_the_upgrade() -> None:
    client = await _client(LogSource([]))
    try:
        resp = await client.get(LOGS.format("j-1"), params={"follow": "sometimes"})
        assert resp.status == 400
        assert (await resp.json())["Message"] == "follow: expected true or false, got 'sometimes'"
    finally:
        await client.close()
