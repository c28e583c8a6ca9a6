"""`API.MaxBodySize` and `API.HandlerTimeout`: the body size limit (413) and the handler time
limit (503) come from the config, with today's defaults, and bad values are refused naming the
key. Real app, real HTTP (aiohttp's test server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import HANDLER_TIMEOUT_S, MAX_BODY_BYTES, api_limits, create_app
from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.models import NodeInfo

pytestmark = pytest.mark.unit


async def _size(request: web.Request) -> web.Response:
    return web.json_response({"Bytes": len(await request.read())})


async def _hang(request: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _app(api: dict[str, Any]) -> web.Application:
    app = create_app(None, node_info_provider=NodeInfo, config=Config({"API": api}))
    app.router.add_put("/test/size", _size)
    app.router.add_get("/test/hang", _hang)
    return app


def test_defaults_are_10_mib_and_30_s() -> None:
    assert api_limits(Config()) == (MAX_BODY_BYTES, HANDLER_TIMEOUT_S) == (10 * 2**20, 30.0)


async def test_max_body_size_sets_the_413_limit() -> None:
    async with TestClient(TestServer(_app({"MaxBodySize": "1KiB"}))) as c:
        ok = await c.put("/test/size", data=b"x" * 1024)
        assert ok.status == 200 and await ok.json() == {"Bytes": 1024}
        big = await c.put("/test/size", data=b"x" * 1025)
        assert big.status == 413
        assert (await big.json())["Status"] == 413


async def test_handler_timeout_sets_the_503_limit() -> None:
    # as `-c API.HandlerTimeout=50ms` gives it: a string
    async with TestClient(TestServer(_app({"HandlerTimeout": "50ms"}))) as c:
        resp = await c.get("/test/hang")
        assert resp.status == 503
        body = await resp.json()
        assert body["Code"] == "TimeOut" and "0.05s" in body["Message"], body


@pytest.mark.parametrize(("api", "message"), [
    ({"MaxBodySize": "ten megs"}, "API.MaxBodySize: invalid size"),
    ({"MaxBodySize": 0}, "API.MaxBodySize: must be a positive size"),
    ({"HandlerTimeout": "soon"}, "API.HandlerTimeout: invalid duration"),
    ({"HandlerTimeout": "0s"}, "API.HandlerTimeout: must be a positive duration"),
])
def test_bad_values_are_refused_naming_the_key(api: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _app(api)
