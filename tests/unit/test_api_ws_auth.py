"""The logs WebSocket with API users: a browser's key offered as the subprotocols
`bacalhau-auth, <base64url key>` (accepted, answered with `bacalhau-auth` only), the CLI's
`Authorization` header, and the refusals (401 for a missing, wrong or malformed key, 403 without
`read:job`). The orchestrator is a stub `LogSource` (tests/unit/test_api_logs.py); the app, the
auth middleware and the WebSocket handshake are the real ones, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.api.auth import WS_AUTH_PROTOCOL
from bacalhau.config import Config
from bacalhau.models import NodeInfo
from tests.unit.test_api_logs import LOGS, LogSource

pytestmark = pytest.mark.unit

READER_KEY = "reader-key-ü-0123456789abcdef"  # not ASCII: base64url carries any key
NODE_ONLY_KEY = "node-only-key-0123456789abcdef"
USERS = [
    {"Alias": "reader", "APIKey": READER_KEY,
     "Capabilities": [{"Actions": ["read:job", "read:node"]}]},
    {"Alias": "nodes", "APIKey": NODE_ONLY_KEY, "Capabilities": [{"Actions": ["read:node"]}]},
]
PATH = LOGS.format("j-1")


def offer(key: str) -> tuple[str, str]:
    """What the web UI passes to `new WebSocket(url, protocols)`."""
    return WS_AUTH_PROTOCOL, base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    source = LogSource([(1, "hello"), (2, "oops")])
    app = create_app(source, node_info_provider=NodeInfo,  # type: ignore[arg-type]
                     config=Config({"API": {"Auth": {"Users": USERS}}}))
    async with TestClient(TestServer(app)) as c:
        yield c


async def _lines(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    out = []
    async for msg in ws:
        assert msg.type == WSMsgType.TEXT
        out.append(msg.json()["value"]["Line"])
    return out


async def test_a_key_offered_as_subprotocol_is_accepted_and_only_the_marker_echoed(
        client: TestClient) -> None:
    async with client.ws_connect(PATH, protocols=offer(READER_KEY)) as ws:
        assert ws.protocol == WS_AUTH_PROTOCOL
        assert await _lines(ws) == ["hello", "oops"]
    # the raw handshake: the answer names bacalhau-auth, and nothing of the key
    resp = await client.get(PATH, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
        "Sec-WebSocket-Protocol": ", ".join(offer(READER_KEY))})
    assert resp.status == 101
    assert resp.headers["Sec-WebSocket-Protocol"] == WS_AUTH_PROTOCOL
    assert offer(READER_KEY)[1] not in str(resp.headers) and "reader-key" not in str(resp.headers)
    resp.close()


async def test_the_cli_authorization_header_still_works(client: TestClient) -> None:
    async with client.ws_connect(PATH, headers={"Authorization": f"Bearer {READER_KEY}"}) as ws:
        assert ws.protocol is None  # nothing offered, nothing chosen
        assert await _lines(ws) == ["hello", "oops"]


@pytest.mark.parametrize(("protocols", "reason"), [
    ((), "missing Authorization header"),
    (offer("wrong-key-0123456789abcdef"), "invalid API key"),
    ((WS_AUTH_PROTOCOL,), "must be followed by the base64url-encoded API key"),
    ((WS_AUTH_PROTOCOL, "not+base64/url"), "malformed API key"),
    ((WS_AUTH_PROTOCOL, "QUJDR"), "malformed API key"),  # 5 characters: no valid length
    ((WS_AUTH_PROTOCOL, "_w"), "malformed API key"),  # 0xff: not UTF-8
    (("other-protocol", offer(READER_KEY)[1]), "missing Authorization header"),
])
async def test_missing_wrong_or_malformed_keys_are_401(
        client: TestClient, protocols: tuple[str, ...], reason: str) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(PATH, protocols=protocols)
    assert refused.value.status == 401
    # the same request without the upgrade shows the APIError body (as the CLI reads it)
    resp = await client.get(PATH, headers={
        "Upgrade": "websocket", "Sec-WebSocket-Protocol": ", ".join(protocols)})
    body = await resp.json()
    assert resp.status == 401 and body["Message"] == "Request Unauthorized", body
    assert reason in body["Details"]["reason"]
    for secret in protocols[1:]:
        assert secret not in await resp.text()


async def test_a_key_without_read_job_is_403(client: TestClient) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(PATH, protocols=offer(NODE_ONLY_KEY))
    assert refused.value.status == 403
    resp = await client.get(PATH, headers={
        "Upgrade": "websocket", "Sec-WebSocket-Protocol": ", ".join(offer(NODE_ONLY_KEY))})
    body = await resp.json()
    assert resp.status == 403 and "read:job" in body["Details"]["reason"], body


async def test_the_subprotocol_is_only_read_on_a_websocket_upgrade(client: TestClient) -> None:
    resp = await client.get("/api/v1/orchestrator/jobs",
                            headers={"Sec-WebSocket-Protocol": ", ".join(offer(READER_KEY))})
    assert resp.status == 401


async def test_an_anonymous_node_still_echoes_the_marker_to_a_browser_with_a_key() -> None:
    source = LogSource([(1, "open")])
    app = create_app(source, node_info_provider=NodeInfo,  # type: ignore[arg-type]
                     config=Config())
    async with TestClient(TestServer(app)) as c, \
            c.ws_connect(PATH, protocols=offer(READER_KEY)) as ws:
        assert ws.protocol == WS_AUTH_PROTOCOL
        assert await _lines(ws) == ["open"]
