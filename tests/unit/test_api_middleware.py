"""The API's middleware and agent endpoints, on an app without an orchestrator (a compute-only
node), plus a few test routes that raise what real handlers raise."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import MAX_BODY_BYTES, create_app, start_api
from bacalhau.api.routes.binding import body_object, query_int, read_json_object
from bacalhau.config import Config
from bacalhau.errors import NotFoundError
from bacalhau.models import Job, NodeInfo
from bacalhau.version import build_version_info

pytestmark = pytest.mark.unit


async def _echo_job(request: web.Request) -> web.Response:
    body = await read_json_object(request, "PutJobRequest")
    job = Job.from_dict(body_object(body, "Job", "PutJobRequest"))
    return web.json_response({"Name": job.name, "Limit": query_int(request, "limit")})


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret detail that must not leak")


async def _missing(request: web.Request) -> web.Response:
    raise NotFoundError("job not found: j-nope")


async def _hang(request: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _app(**kwargs: object) -> web.Application:
    config = Config({"API": {"Port": 4321}, "Orchestrator": {"Auth": {"Token": "s3cret"}}})
    app = create_app(
        None,
        node_info_provider=lambda: NodeInfo(node_id="n-self", node_type="Requester"),
        config=config,
        debug_info={"Requester": lambda: {"Queued": 0}},
        **kwargs,  # type: ignore[arg-type]
    )
    app.router.add_put("/test/echo", _echo_job)
    app.router.add_get("/test/boom", _boom)
    app.router.add_get("/test/missing", _missing)
    app.router.add_get("/test/hang", _hang)
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(_app())) as c:
        yield c


def _assert_api_error(body: dict[str, object], status: int, code: str) -> None:
    assert body["Status"] == status
    assert body["Code"] == code
    assert {"Status", "Message", "RequestID", "Code", "Component"} <= body.keys()


# ---------------------------------------------------------------------------------- agent


async def test_agent_endpoints(client: TestClient) -> None:
    resp = await client.get("/api/v1/agent/alive")
    assert resp.status == 200
    assert await resp.json() == {"Status": "OK"}

    resp = await client.get("/api/v1/agent/version")
    assert await resp.json() == build_version_info()

    resp = await client.get("/api/v1/agent/node")
    node = await resp.json()
    assert node["NodeID"] == "n-self"
    assert node["NodeType"] == "Requester"
    assert "ComputeNodeInfo" in node and "BacalhauVersion" in node

    resp = await client.get("/api/v1/agent/config")
    config = (await resp.json())["config"]
    assert config["API"]["Port"] == 4321
    assert config["Orchestrator"]["Auth"]["Token"] == "********"

    resp = await client.get("/api/v1/agent/debug")
    assert await resp.json() == {"Requester": {"Queued": 0}}

    resp = await client.get("/api/v1/agent/authconfig")
    assert (await resp.json())["Version"] == "1.0.0"


async def test_compute_only_node_has_no_orchestrator_routes(client: TestClient) -> None:
    resp = await client.get("/api/v1/orchestrator/jobs")
    assert resp.status == 404


@pytest.mark.parametrize(("path", "location"), [
    ("/", "/api/v1/agent/version"),
    ("/version", "/api/v1/agent/version"),
    ("/livez", "/api/v1/agent/alive"),
])
async def test_legacy_redirects(client: TestClient, path: str, location: str) -> None:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == location


# ---------------------------------------------------------------------------------- headers


async def test_every_response_carries_build_headers_request_id_and_cors(
    client: TestClient,
) -> None:
    info = build_version_info()
    for path in ("/api/v1/agent/alive", "/no/such/route"):
        resp = await client.get(path)
        assert resp.headers["X-Bacalhau-Git-Version"] == info["GitVersion"]
        assert resp.headers["X-Bacalhau-Git-Commit"] == info["GitCommit"]
        assert resp.headers["X-Bacalhau-Build-Date"] == info["BuildDate"]
        assert resp.headers["X-Bacalhau-Build-OS"] == info["GOOS"]
        assert resp.headers["X-Bacalhau-Arch"] == info["GOARCH"]
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["X-Request-Id"]


async def test_request_id_is_echoed_and_put_in_error_bodies(client: TestClient) -> None:
    resp = await client.get("/test/missing", headers={"X-Request-Id": "req-42"})
    assert resp.headers["X-Request-Id"] == "req-42"
    assert (await resp.json())["RequestID"] == "req-42"
    resp = await client.get("/test/missing")
    assert (await resp.json())["RequestID"] == resp.headers["X-Request-Id"]


async def test_cors_preflight(client: TestClient) -> None:
    resp = await client.options("/api/v1/orchestrator/jobs", headers={
        "Origin": "http://ui.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type",
    })
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "PUT" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "content-type"


# ---------------------------------------------------------------------------------- errors


async def test_unknown_route_is_a_not_found_api_error_with_a_version_skew_hint(
    client: TestClient,
) -> None:
    resp = await client.get("/api/v1/requester/list")
    assert resp.status == 404
    body = await resp.json()
    _assert_api_error(body, 404, "NotFound")
    assert body["Message"] == "The requested resource/URL was not found."
    assert "version" in body["Hint"]


async def test_method_not_allowed(client: TestClient) -> None:
    resp = await client.post("/api/v1/agent/alive")
    assert resp.status == 405
    body = await resp.json()
    _assert_api_error(body, 405, "InternalError")
    assert "POST" in body["Message"] and "GET" in body["Message"]


async def test_bacalhau_errors_keep_their_status_code_and_component(
    client: TestClient,
) -> None:
    resp = await client.get("/test/missing")
    assert resp.status == 404
    body = await resp.json()
    _assert_api_error(body, 404, "NotFound")
    assert body["Message"] == "job not found: j-nope"
    assert body["Component"] == "JobStore"


async def test_unexpected_errors_are_a_plain_500_logged_with_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture,
) -> None:
    resp = await client.get("/test/boom")
    assert resp.status == 500
    body = await resp.json()
    _assert_api_error(body, 500, "InternalError")
    assert body["Message"] == "Internal server error"
    assert body["Component"] == "Unknown"
    assert "secret detail" not in await resp.text()
    assert any(r.exc_info for r in caplog.records if "GET /test/boom" in r.getMessage())


@pytest.mark.parametrize(("data", "message"), [
    (b'{"Job": ', "invalid JSON body: "),
    (b"[1, 2]", "PutJobRequest: expected an object, got a list"),
    (b"", "PutJobRequest: request body is empty"),
    (b'{"Job": []}', "Job: expected an object, got a list"),
    (b'{"Namespace": "x"}', "Job: missing"),
    (b'{"Job": {"Name": 5}}', "Job.Name: expected a string"),
])
async def test_malformed_bodies_are_400s_naming_the_problem(
    client: TestClient, data: bytes, message: str
) -> None:
    resp = await client.put("/test/echo", data=data,
                            headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["Status"] == 400
    assert body["Message"].startswith(message), body["Message"]


async def test_extra_keys_of_official_clients_are_ignored(client: TestClient) -> None:
    resp = await client.put("/test/echo", json={
        "Job": {"Name": "hello", "Type": "batch"}, "Namespace": "default",
        "Credential": None, "IdempotencyToken": "abc", "Force": False,
    })
    assert resp.status == 200
    assert (await resp.json())["Name"] == "hello"


async def test_query_params_are_validated_naming_the_param(client: TestClient) -> None:
    resp = await client.put("/test/echo?limit=ten", json={"Job": {}})
    assert resp.status == 400
    body = await resp.json()
    assert body["Message"] == "limit: expected an integer, got 'ten'"
    assert body["Component"] == "APIServer"


async def test_body_limit_is_10_mb(client: TestClient) -> None:
    resp = await client.put("/test/echo", data=io.BytesIO(b" " * (MAX_BODY_BYTES + 1)),
                            headers={"Content-Type": "application/json"})
    assert resp.status == 413
    _assert_api_error(await resp.json(), 413, "InternalError")


async def test_handlers_are_cut_off_after_the_handler_timeout() -> None:
    async with TestClient(TestServer(_app(handler_timeout=0.05))) as c:
        resp = await c.get("/test/hang")
        assert resp.status == 503
        _assert_api_error(await resp.json(), 503, "TimeOut")


# ---------------------------------------------------------------------------------- client version


@pytest.mark.parametrize("version", ["v1.4.0", "v1.5.2", "1.9.3", "v2.0.0-rc1",
                                     "v0.0.0-xxxxxxx", "v1.9.0-py0.1.0"])
async def test_current_and_development_clients_pass(client: TestClient, version: str) -> None:
    resp = await client.get("/api/v1/agent/alive", headers={"X-Bacalhau-Git-Version": version})
    assert resp.status == 200


@pytest.mark.parametrize("version", ["v1.3.2", "v1.4.0-rc1", "v0.3.29"])
async def test_old_clients_are_refused_with_403(client: TestClient, version: str) -> None:
    resp = await client.get("/api/v1/agent/alive", headers={"X-Bacalhau-Git-Version": version})
    assert resp.status == 403
    body = await resp.json()
    assert set(body) == {"Error", "MinVersion", "ClientVersion", "ServerVersion"}
    assert body["ClientVersion"] == version
    assert body["MinVersion"] == "v1.4.0"
    assert body["ServerVersion"] == build_version_info()["GitVersion"]


async def test_unparseable_client_version_is_a_400(client: TestClient) -> None:
    resp = await client.get("/api/v1/agent/alive",
                            headers={"X-Bacalhau-Git-Version": "not-a-version"})
    assert resp.status == 400
    body = await resp.json()
    assert "failed to parse client version" in body["Error"]


# ---------------------------------------------------------------------------------- serving


async def test_start_api_binds_a_free_port_and_serves() -> None:
    import aiohttp

    runner, port = await start_api(_app(), "127.0.0.1", 0)
    try:
        assert port > 0
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/api/v1/agent/alive"
        ) as resp:
            assert await resp.json() == {"Status": "OK"}
    finally:
        await runner.cleanup()
