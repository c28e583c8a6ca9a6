"""API users and capabilities (reference §9) against a real `Requester` (a JobStore in
tmp_path, an in-process network): who may list, describe, submit, stop and approve; 401 vs 403
bodies; open endpoints; bcrypt passwords; config checks; the rate limit and the body limit."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import MAX_BODY_BYTES, create_app
from bacalhau.api.auth import has_capability, parse_users, required_capability, warn_if_exposed
from bacalhau.api.client import AUTH_ENV_HINT, ClientError, auth_headers
from bacalhau.api.limits import RateLimiter
from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.models import NodeInfo
from bacalhau.transport.inprocess import InProcessNetwork
from tests.factories import register_node

pytestmark = pytest.mark.unit

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
ORCHESTRATOR_ID = "n-00000000-0000-4000-8000-00000000000a"
COMPUTE_ID = "n-11111111-1111-4111-8111-111111111111"

READER_KEY = "reader-key-0123456789abcdef"
WRITER_KEY = "writer-key-0123456789abcdef"
ADMIN_PASSWORD = "admin-password-42"
OPS_PASSWORD = "ops-password-4242"

USERS = [
    {"Alias": "reader", "APIKey": READER_KEY,
     "Capabilities": [{"Actions": ["read:job", "read:node"]}]},
    {"Alias": "writer", "APIKey": WRITER_KEY,
     "Capabilities": [{"Actions": ["read:job", "write:job", "read:node"]}]},
    {"Username": "admin", "Password": ADMIN_PASSWORD, "Capabilities": [{"Actions": ["*"]}]},
    # a bcrypt hash, as `bacalhau auth hash-password` would write it
    {"Username": "ops", "Password": bcrypt.hashpw(OPS_PASSWORD.encode(),
                                                  bcrypt.gensalt(4)).decode(),
     "Capabilities": [{"Actions": ["read:*", "write:node"]}]},
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


JOB = {"Type": "batch", "Count": 1, "Tasks": [
    {"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}},
     "Timeouts": {"QueueTimeout": 600}}]}


async def _requester_app(tmp_path: Path, config: Config) -> tuple[Any, Any, Any, Any]:
    from bacalhau.orchestrator.nodes import NodeManager
    from bacalhau.orchestrator.selection import NodeSelector
    from bacalhau.orchestrator.service import Requester
    from bacalhau.store.jobstore import JobStore
    from bacalhau.store.nodestore import NodeStore

    network = InProcessNetwork()
    transport = network.transport(ORCHESTRATOR_ID)
    await transport.start()
    store = JobStore(tmp_path / "jobs.db")
    info = NodeInfo(node_id=ORCHESTRATOR_ID, node_type="Requester")
    nodes = NodeManager(config, NodeStore(store.db), transport, info)
    requester = Requester(config, store, transport, info, nodes=nodes,
                          selector=NodeSelector(nodes, config))
    await requester.start()
    app = create_app(requester, node_info_provider=lambda: info, config=config)
    return app, requester, transport, (store, network)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    config = Config({"DataDir": str(tmp_path), "API": {"Auth": {"Users": USERS}},
                     "Orchestrator": {"NodeManager": {"ManualApproval": True}}})
    app, requester, transport, (store, network) = await _requester_app(tmp_path, config)
    try:
        async with TestClient(TestServer(app)) as c:
            c.network = network  # type: ignore[attr-defined]
            yield c
    finally:
        await requester.stop()
        await transport.close()
        store.close()


async def _status(resp: Any) -> tuple[int, Any]:
    return resp.status, await resp.json()


async def _submit(client: TestClient, headers: dict[str, str]) -> tuple[int, Any]:
    return await _status(await client.put(JOBS, json={"Job": JOB}, headers=headers))


# ---------------------------------------------------------------------------------- per capability


async def test_reader_lists_and_describes_but_cannot_submit_or_stop(client: TestClient) -> None:
    status, body = await _submit(client, bearer(WRITER_KEY))
    assert status == 200, body
    job_id = body["JobID"]

    status, listed = await _status(await client.get(JOBS, headers=bearer(READER_KEY)))
    assert status == 200 and [j["ID"] for j in listed["Items"]] == [job_id]
    status, got = await _status(await client.get(f"{JOBS}/{job_id}", headers=bearer(READER_KEY)))
    assert status == 200 and got["Job"]["ID"] == job_id
    status, _ = await _status(await client.get(NODES, headers=bearer(READER_KEY)))
    assert status == 200

    status, denied = await _submit(client, bearer(READER_KEY))
    assert status == 403
    assert denied["Code"] == "Forbidden" and denied["Message"] == "Request Forbidden"
    assert denied["Details"]["reason"] == "user reader lacks capability write:job"
    status, denied = await _status(await client.delete(f"{JOBS}/{job_id}",
                                                       headers=bearer(READER_KEY)))
    assert status == 403 and denied["Status"] == 403
    # the job was not stopped by the refused call
    _, got = await _status(await client.get(f"{JOBS}/{job_id}", headers=bearer(READER_KEY)))
    assert got["Job"]["State"]["StateType"] != "Stopped"


async def test_writer_submits_and_stops(client: TestClient) -> None:
    status, body = await _submit(client, bearer(WRITER_KEY))
    assert status == 200 and body["JobID"].startswith("j-")
    status, stopped = await _status(await client.delete(f"{JOBS}/{body['JobID']}",
                                                        headers=bearer(WRITER_KEY)))
    assert status == 200 and stopped["EvaluationID"]
    _, got = await _status(await client.get(f"{JOBS}/{body['JobID']}",
                                            headers=bearer(WRITER_KEY)))
    assert got["Job"]["State"]["StateType"] == "Stopped"


async def test_wrong_or_missing_credentials_are_401(client: TestClient) -> None:
    for headers, reason in [
        ({}, "missing Authorization header"),
        (bearer("not-a-key-0123456789abcdef"), "invalid API key"),
        (basic("admin", "wrong-password"), "invalid username or password"),
        (basic("nobody", ADMIN_PASSWORD), "invalid username or password"),
        ({"Authorization": "Basic !!!"}, "malformed basic credentials"),
        ({"Authorization": "Digest abc"}, "unsupported Authorization scheme "
                                          "(use Basic or Bearer)"),
        ({"Authorization": "bare-secret"}, "unsupported Authorization scheme "
                                           "(use Basic or Bearer)"),
    ]:
        status, body = await _status(await client.get(JOBS, headers=headers))
        assert status == 401, headers
        assert body["Code"] == "Unauthorized" and body["Message"] == "Request Unauthorized"
        assert body["Details"] == {"reason": reason}
        assert "BACALHAU_API_KEY" in body["Hint"] and body["RequestID"]


async def test_write_node_is_needed_to_approve(client: TestClient) -> None:
    transport = client.network.transport(COMPUTE_ID)  # type: ignore[attr-defined]
    await transport.start()
    await register_node(transport, ORCHESTRATOR_ID,
                        NodeInfo(node_id=COMPUTE_ID, node_type="Compute"))
    approve = {"Action": "approve", "NodeID": COMPUTE_ID}

    for headers in (bearer(READER_KEY), bearer(WRITER_KEY)):
        status, body = await _status(await client.put(f"{NODES}/{COMPUTE_ID}", json=approve,
                                                      headers=headers))
        assert status == 403 and "write:node" in body["Details"]["reason"]
    _, node = await _status(await client.get(f"{NODES}/{COMPUTE_ID}",
                                             headers=bearer(READER_KEY)))
    assert node["Node"]["Membership"] == "PENDING"

    # `ops` has read:* and write:node, with a bcrypt-hashed password
    status, body = await _status(await client.put(f"{NODES}/{COMPUTE_ID}", json=approve,
                                                  headers=basic("ops", OPS_PASSWORD)))
    assert status == 200 and body["Success"] is True
    status, _ = await _submit(client, basic("ops", OPS_PASSWORD))
    assert status == 403  # no write:job
    status, _ = await _submit(client, basic("admin", ADMIN_PASSWORD))
    assert status == 200


async def test_open_endpoints_need_no_credentials(client: TestClient) -> None:
    for path in ("/api/v1/agent/alive", "/api/v1/agent/version", "/api/v1/agent/authconfig",
                 "/api/v1/auth", "/api/v1/openapi.json"):
        resp = await client.get(path)
        assert resp.status == 200, path
    for path in ("/api/v1/agent/node", "/api/v1/agent/config"):
        assert (await client.get(path)).status == 401, path
    # agent endpoints need read:agent, which the reader lacks and admin (*) has
    assert (await client.get("/api/v1/agent/config", headers=bearer(READER_KEY))).status == 403
    resp = await client.get("/api/v1/agent/config", headers=basic("admin", ADMIN_PASSWORD))
    assert resp.status == 200
    # an unknown /api/ path needs write:node before it is found missing
    assert (await client.get("/api/v1/nowhere")).status == 401
    resp = await client.get("/api/v1/nowhere", headers=basic("ops", OPS_PASSWORD))
    assert resp.status == 404
    # CORS preflights carry no credentials
    resp = await client.options(JOBS, headers={"Origin": "http://ui",
                                               "Access-Control-Request-Method": "PUT"})
    assert resp.status == 204


async def test_config_endpoint_redacts_user_secrets(client: TestClient) -> None:
    resp = await client.get("/api/v1/agent/config", headers=basic("admin", ADMIN_PASSWORD))
    text = await resp.text()
    for secret in (READER_KEY, WRITER_KEY, ADMIN_PASSWORD, USERS[3]["Password"]):
        assert secret not in text
    users = (await resp.json())["config"]["API"]["Auth"]["Users"]
    assert users[0]["APIKey"] == "********" and users[2]["Password"] == "********"
    assert users[2]["Username"] == "admin"


# ---------------------------------------------------------------------------------- rules


def test_capability_rules() -> None:
    assert required_capability("GET", JOBS) == "read:job"
    assert required_capability("HEAD", f"{JOBS}/j-1/logs") == "read:job"
    assert required_capability("PUT", f"{JOBS}/j-1/rerun") == "write:job"
    assert required_capability("DELETE", f"{JOBS}/j-1") == "write:job"
    assert required_capability("PUT", f"{NODES}/n-1") == "write:node"
    assert required_capability("GET", "/api/v1/agent/config") == "read:agent"
    assert required_capability("GET", "/api/v1/other") == "write:node"
    assert required_capability("GET", "/api/v1/orchestrator/jobsx") == "write:node"
    for open_path in ("/api/v1/agent/alive", "/api/v1/auth/ClientKey", "/ui/jobs", "/livez"):
        assert required_capability("POST", open_path) is None
    assert has_capability({"*"}, "write:node")
    assert has_capability({"read:*"}, "read:agent")
    assert not has_capability({"read:*"}, "write:job")
    assert has_capability({"*:job"}, "write:job")
    assert not has_capability({"write:job"}, "read:job")


@pytest.mark.parametrize(("entry", "message"), [
    ({"Username": "a", "Password": "long-enough-pw", "APIKey": "k" * 20}, "exactly one"),
    ({"Username": "a"}, "exactly one"),
    ({"Username": "bad name", "Password": "long-enough-pw"}, "Username"),
    ({"Username": "a", "Password": "short"}, "10 to 255"),
    ({"APIKey": "too-short"}, "20 to 255"),
    ({"APIKey": "k" * 20, "Capabilities": [{"Actions": ["read:jobs"]}]}, "unknown action"),
])
def test_bad_users_are_refused_naming_the_entry(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_users([entry])
    assert "API.Auth.Users[0]" in str(err.value)


def test_exposed_without_users_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert not warn_if_exposed(Config({"API": {"Host": "127.0.0.1"}}))
    assert not warn_if_exposed(Config({"API": {"Host": "0.0.0.0", "Auth": {"Users": USERS}}}))
    assert warn_if_exposed(Config({"API": {"Host": "0.0.0.0"}}))
    assert "WITHOUT AUTHENTICATION" in caplog.text


def test_client_reads_credentials_from_env() -> None:
    assert auth_headers({"BACALHAU_API_KEY": "k1"}) == bearer("k1")
    assert auth_headers({"BACALHAU_API_USERNAME": "u", "BACALHAU_API_PASSWORD": "p"}) == \
        basic("u", "p")
    assert auth_headers({"BACALHAU_API_USERNAME": "u"}) == {}
    err = ClientError(401, {"Message": "Request Unauthorized"})
    assert AUTH_ENV_HINT in str(err)


# ---------------------------------------------------------------------------------- limits


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    config = Config({"DataDir": str(tmp_path),
                     "API": {"RateLimit": {"RequestsPerSecond": 1, "Burst": 3}}})
    app = create_app(None, node_info_provider=lambda: NodeInfo(node_id="n-x"), config=config)
    async with TestClient(TestServer(app)) as c:
        statuses = [(await c.get("/api/v1/agent/alive")).status for _ in range(3)]
        assert statuses == [200, 200, 200]
        resp = await c.get("/api/v1/agent/alive")
        assert resp.status == 429
        body = await resp.json()
        assert body["Code"] == "TooManyRequests" and body["Status"] == 429
        assert int(resp.headers["Retry-After"]) >= 1 and resp.headers["X-Request-Id"]
        # a credential does not open a new bucket: the client is its address
        assert (await c.get("/api/v1/agent/alive", headers=bearer("x" * 20))).status == 429


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    assert RateLimiter.from_config(Config({"API": {"RateLimit": {"RequestsPerSecond": 0}}})) \
        is None
    with pytest.raises(ConfigError):
        RateLimiter.from_config(Config({"API": {"RateLimit": {"RequestsPerSecond": "fast"}}}))


async def test_body_over_the_limit_is_413_api_error(tmp_path: Path) -> None:
    config = Config({"DataDir": str(tmp_path)})
    app, requester, transport, (store, _) = await _requester_app(tmp_path, config)
    try:
        async with TestClient(TestServer(app)) as c:
            resp = await c.put(JOBS, data=b"{" + b" " * MAX_BODY_BYTES + b"}",
                               headers={"Content-Type": "application/json"})
            assert resp.status == 413
            body = await resp.json()
            assert body["Status"] == 413 and body["Component"] == "APIServer"
    finally:
        await requester.stop()
        await transport.close()
        store.close()


def test_cli_hash_password_makes_a_hash_the_server_accepts() -> None:
    from click.testing import CliRunner

    from bacalhau.cli.main import cli

    result = CliRunner().invoke(cli, ["auth", "hash-password", "--cost", "4"],
                                input="long-enough-pw\nlong-enough-pw\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip().splitlines()[-1]
    assert bcrypt.checkpw(b"long-enough-pw", hashed.encode())
    parse_users([{"Username": "u", "Password": hashed}])  # accepted as a bcrypt hash
    short = CliRunner().invoke(cli, ["auth", "hash-password"], input="short\nshort\n")
    assert short.exit_code != 0 and "10 to 255" in short.output
