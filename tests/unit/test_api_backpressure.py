"""Backpressure (issue 15): a submit to an orchestrator whose evaluation queue or outbox is
full answers 429 with `Retry-After` and an APIError naming the limit and its config key,
over real HTTP (aiohttp's test server on a loopback socket) against a real `Requester`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.config import Config
from bacalhau.models import NodeInfo
from bacalhau.orchestrator import service
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.selection import NodeSelector
from bacalhau.store.jobstore import JobStore
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport.inprocess import InProcessNetwork

JOBS = "/api/v1/orchestrator/jobs"
ORCHESTRATOR_ID = "n-00000000-0000-4000-8000-0000000000b1"
JOB = {"Type": "batch", "Count": 1, "Tasks": [{
    "Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04"}}}]}

Client = Callable[[dict[str, Any]], Any]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    opened: list[Any] = []

    async def open_api(orchestrator: dict[str, Any]) -> TestClient:
        config = Config({"DataDir": str(tmp_path), "Orchestrator": orchestrator})
        network = InProcessNetwork()
        transport = network.transport(ORCHESTRATOR_ID)
        await transport.start()
        store = JobStore(tmp_path / f"jobs-{len(opened)}.db")
        info = NodeInfo(node_id=ORCHESTRATOR_ID, node_type="Requester")
        nodes = NodeManager(config, NodeStore(store.db), transport, info)
        requester = service.Requester(config, store, transport, info, nodes=nodes,
                                      selector=NodeSelector(nodes, config))
        await requester.start()
        client = TestClient(TestServer(create_app(requester, node_info_provider=lambda: info,
                                                  config=config)))
        await client.start_server()
        opened.append((client, requester, transport, store))
        return client

    yield open_api
    for client, requester, transport, store in opened:
        await client.close()
        await requester.stop()
        await transport.close()
        store.close()


@pytest.mark.parametrize(("orchestrator", "key"), [
    ({"EvaluationBroker": {"MaxQueued": 0}}, "Orchestrator.EvaluationBroker.MaxQueued"),
    ({"MaxUnsentMessages": 0}, "Orchestrator.MaxUnsentMessages"),
])
async def test_a_full_queue_answers_429_naming_the_limit(
        start: Callable[[dict[str, Any]], Any], orchestrator: dict[str, Any], key: str) -> None:
    client = await start(orchestrator)
    resp = await client.put(JOBS, json={"Job": JOB})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    body = await resp.json()
    assert body["Code"] == "TooManyRequests" and body["Status"] == 429
    assert key in body["Message"] and "the limit is 0" in body["Message"]
    assert key in body["Hint"]
    # nothing was stored: the refused job is not listed
    listed = await (await client.get(JOBS)).json()
    assert listed["Items"] == []


async def test_below_the_limits_a_submit_is_accepted(
        start: Callable[[dict[str, Any]], Any]) -> None:
    client = await start({"EvaluationBroker": {"MaxQueued": 5}, "MaxUnsentMessages": 5})
    resp = await client.put(JOBS, json={"Job": JOB})
    assert resp.status == 200, await resp.text()
    assert "Retry-After" not in resp.headers
