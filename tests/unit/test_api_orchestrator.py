"""`/api/v1/orchestrator/*` against a real `Requester` (a JobStore in tmp_path, an in-process
network without compute nodes): shapes, status codes and the flows the CLI and the official
clients use. A job that needs a node fails at once (no QueueTimeout) or waits Queued (with one).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.api.paging import PagingToken
from bacalhau.config import Config
from bacalhau.models import NodeInfo
from bacalhau.transport.inprocess import InProcessNetwork
from tests.factories import register_node

pytestmark = pytest.mark.unit

service = pytest.importorskip("bacalhau.orchestrator.service",
                              reason="the Requester is not built yet")

JOBS = "/api/v1/orchestrator/jobs"
NODES = "/api/v1/orchestrator/nodes"
ORCHESTRATOR_ID = "n-00000000-0000-4000-8000-00000000000a"
JOB_KEYS = {"ID", "Name", "Namespace", "Type", "Priority", "Count", "Constraints", "Meta",
            "Labels", "Tasks", "State", "Version", "Revision", "CreateTime", "ModifyTime"}


def _job(name: str = "", *, queue_timeout: int = 0, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "docker", "Params": {"Image": "ubuntu:24.04",
                                                "Parameters": ["echo", "hi"]}},
    }
    if queue_timeout:
        task["Timeouts"] = {"QueueTimeout": queue_timeout}
    job: dict[str, Any] = {"Type": "batch", "Count": 1, "Tasks": [task], **extra}
    if name:
        job["Name"] = name
    return job


class Harness:
    def __init__(self, client: TestClient, network: InProcessNetwork, requester: Any) -> None:
        self.client = client
        self.network = network
        self.requester = requester

    async def submit(self, job: dict[str, Any], **body: Any) -> str:
        resp = await self.client.put(JOBS, json={"Job": job, **body})
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["JobID"])

    async def json(self, path: str, status: int = 200, **params: Any) -> Any:
        resp = await self.client.get(path, params=params)
        assert resp.status == status, await resp.text()
        return await resp.json()

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Wait for a condition the orchestrator reaches on its own (bounded, polling)."""
        for _ in range(500):
            if await check():
                return
            await asyncio.sleep(0.01)  # poll interval of a bounded wait (500 tries)
        raise AssertionError(f"timed out waiting for {what}")

    async def state(self, job_id: str) -> str:
        return str((await self.json(f"{JOBS}/{job_id}"))["Job"]["State"]["StateType"])

    async def until_state(self, job_id: str, *states: str) -> None:
        async def reached() -> bool:
            return await self.state(job_id) in states

        await self.until(reached, f"job {job_id} to be {'/'.join(states)}")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Harness]:
    from bacalhau.orchestrator.nodes import NodeManager
    from bacalhau.orchestrator.selection import NodeSelector
    from bacalhau.store.jobstore import JobStore
    from bacalhau.store.nodestore import NodeStore

    config = Config({"DataDir": str(tmp_path),
                     "Orchestrator": {"NodeManager": {"ManualApproval": True}}})
    network = InProcessNetwork()
    transport = network.transport(ORCHESTRATOR_ID)
    await transport.start()
    store = JobStore(tmp_path / "jobs.db")
    info = NodeInfo(node_id=ORCHESTRATOR_ID, node_type="Requester")
    nodes = NodeManager(config, NodeStore(store.db), transport, info)
    requester = service.Requester(config, store, transport, info, nodes=nodes,
                                  selector=NodeSelector(nodes, config))
    await requester.start()
    app = create_app(requester, node_info_provider=lambda: info, config=config)
    try:
        async with TestClient(TestServer(app)) as client:
            yield Harness(client, network, requester)
    finally:
        await requester.stop()
        await transport.close()
        store.close()


# ---------------------------------------------------------------------------------- submit


async def test_submit_answers_ids_and_warnings(api: Harness) -> None:
    resp = await api.client.put(JOBS, json={
        "Job": _job("hello"), "Force": False,
        # the official clients serialize the whole request struct
        "Namespace": "default", "Credential": None, "IdempotencyToken": "",
    })
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"JobID", "EvaluationID", "Warnings"}
    assert body["JobID"].startswith("j-")
    assert body["EvaluationID"]
    assert isinstance(body["Warnings"], list)


async def test_post_is_an_alias_of_put(api: Harness) -> None:
    resp = await api.client.post(JOBS, json={"Job": _job()})
    assert resp.status == 200


async def test_invalid_job_is_a_400_naming_the_field(api: Harness) -> None:
    job = _job()
    del job["Type"]
    resp = await api.client.put(JOBS, json={"Job": job})
    assert resp.status == 400
    body = await resp.json()
    assert body["Status"] == 400
    assert "Type" in body["Message"]


async def test_wrong_body_shapes(api: Harness) -> None:
    resp = await api.client.put(JOBS, data=b"{not json", headers={
        "Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["Message"].startswith("invalid JSON body: ")
    resp = await api.client.put(JOBS, json={"Job": "batch"})
    assert resp.status == 400
    assert (await resp.json())["Message"] == "Job: expected an object, got a string"


# ---------------------------------------------------------------------------------- get & list


async def test_get_by_id_short_id_and_name(api: Harness) -> None:
    job_id = await api.submit(_job("by-name"))
    for ref in (job_id, job_id[:10], "by-name"):
        body = await api.json(f"{JOBS}/{ref}")
        assert set(body) == {"Job"}
        assert body["Job"]["ID"] == job_id
        assert set(body["Job"]) == JOB_KEYS


async def test_a_plain_get_answers_the_stored_job_as_the_model_would(api: Harness) -> None:
    """GET /jobs/{id} without includes sends the stored JSON as it is: the same bytes the
    model gives (`to_dict` of the parsed job), for a job with every part set, also after
    the orchestrator changed its state."""
    from bacalhau.models.codec import dumps

    rich = _job("rich", queue_timeout=60, Labels={"team": "a"}, Meta={"k": "v"},
                Priority=3, Constraints=[{"Key": "zone", "Operator": "=", "Values": ["x"]}])
    task = rich["Tasks"][0]
    task.update({"Env": {"A": "1"}, "Resources": {"CPU": "250m", "Memory": "64Mb"},
                 "Network": {"Type": "None"}, "ResultPaths": [{"Name": "out", "Path": "/out"}],
                 "Publisher": {"Type": "noop"},
                 "InputSources": [{"Source": {"Type": "inline", "Params": {"URL": "data:,x"}},
                                   "Target": "/in/x"}]})
    for job_id in (await api.submit(rich), await api.submit(_job())):
        await api.until_state(job_id, "Queued", "Failed")  # no node: written again
        resp = await api.client.get(f"{JOBS}/{job_id}")
        assert resp.status == 200 and resp.content_type == "application/json"
        raw = await resp.read()
        job = api.requester.get_job(job_id)
        assert raw == dumps({"Job": job.to_dict()})
        assert (await api.json(f"{JOBS}/{job_id}", include="history"))["Job"] == \
            (await api.json(f"{JOBS}/{job_id}"))["Job"]
    resp = await api.client.get(f"{JOBS}/j-nosuchjob")
    assert resp.status == 404


async def test_get_includes_history_and_executions(api: Harness) -> None:
    job_id = await api.submit(_job())
    body = await api.json(f"{JOBS}/{job_id}", include="history,executions")
    assert set(body) == {"Job", "History", "Executions"}
    assert body["History"]["Items"][0]["JobID"] == job_id
    assert body["Executions"] == {"Items": [], "NextToken": ""}
    resp = await api.client.get(f"{JOBS}/{job_id}", params={"include": "evals"})
    assert resp.status == 400
    assert (await resp.json())["Message"].startswith("include: unknown value 'evals'")


async def test_unknown_job_is_the_job_store_404(api: Harness) -> None:
    body = await api.json(f"{JOBS}/j-nope", status=404)
    assert body["Code"] == "NotFound"
    assert body["Component"] == "JobStore"
    assert body["Message"] == "job not found: j-nope"
    for sub in ("history", "executions", "versions", "results"):
        assert (await api.json(f"{JOBS}/j-nope/{sub}", status=404))["Code"] == "NotFound"


async def test_list_returns_full_jobs_and_pages_with_tokens(api: Harness) -> None:
    ids = [await api.submit(_job(f"job-{i}")) for i in range(3)]
    body = await api.json(JOBS)
    assert body["NextToken"] == ""
    assert sorted(j["ID"] for j in body["Items"]) == sorted(ids)
    assert all(set(j) == JOB_KEYS for j in body["Items"])

    first = await api.json(JOBS, limit=2)
    assert len(first["Items"]) == 2 and first["NextToken"]
    assert PagingToken.decode(first["NextToken"]) == PagingToken("created_at", False, 2, 2)
    second = await api.json(JOBS, next_token=first["NextToken"])
    assert len(second["Items"]) == 1 and second["NextToken"] == ""
    seen = [j["ID"] for j in first["Items"] + second["Items"]]
    assert sorted(seen) == sorted(ids)

    newest_first = await api.json(JOBS, order_by="created_at", reverse="true")
    assert [j["ID"] for j in newest_first["Items"]] == list(reversed(
        [j["ID"] for j in body["Items"]]))


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "ten"}, "limit: expected an integer"),
    ({"limit": "-1"}, "limit: must be >= 0"),
    ({"reverse": "maybe"}, "reverse: expected true or false"),
    ({"order_by": "id"}, "order_by: unknown value 'id'"),
    ({"next_token": "garbage!"}, "next_token: invalid paging token"),
])
async def test_list_parameters_are_validated(
    api: Harness, params: dict[str, str], message: str
) -> None:
    body = await api.json(JOBS, status=400, **params)
    assert body["Message"].startswith(message), body["Message"]


async def test_list_filters_by_namespace_and_labels(api: Harness) -> None:
    await api.submit(_job("blue", Labels={"color": "blue"}))
    await api.submit(_job("red", Labels={"color": "red"}))
    body = await api.json(JOBS, labels="color=blue")
    assert [j["Name"] for j in body["Items"]] == ["blue"]
    assert len((await api.json(JOBS, namespace="*"))["Items"]) == 2
    assert (await api.json(JOBS, namespace="other"))["Items"] == []


# ---------------------------------------------------------------------------------- history


async def test_history_token_stays_until_the_job_is_terminal(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    await api.until_state(job_id, "Queued")
    page = await api.json(f"{JOBS}/{job_id}/history")
    assert page["Items"] and page["NextToken"]
    seen = len(page["Items"])
    again = await api.json(f"{JOBS}/{job_id}/history", next_token=page["NextToken"])
    assert again["NextToken"], "an active job keeps its history token"
    assert PagingToken.decode(again["NextToken"]).offset >= seen

    resp = await api.client.delete(f"{JOBS}/{job_id}", json={"reason": "enough"})
    assert resp.status == 200
    await api.until_state(job_id, "Stopped")
    token = again["NextToken"]
    items = page["Items"] + again["Items"]
    while token:  # how the CLI follows a job
        nxt = await api.json(f"{JOBS}/{job_id}/history", next_token=token)
        items += nxt["Items"]
        token = nxt["NextToken"]
    assert [h["SeqNum"] for h in items] == sorted({h["SeqNum"] for h in items})
    assert any(h["Event"].get("Details", {}).get("NewState") == "Stopped" for h in items)


async def test_history_of_a_terminal_job_ends_with_an_empty_token(api: Harness) -> None:
    job_id = await api.submit(_job())  # no nodes, no queueing: fails at once
    await api.until_state(job_id, "Failed")
    body = await api.json(f"{JOBS}/{job_id}/history")
    assert body["NextToken"] == ""
    assert {"SeqNum", "Type", "JobID", "JobVersion", "Event", "Time"} <= set(body["Items"][0])
    first = await api.json(f"{JOBS}/{job_id}/history", limit=1)
    assert len(first["Items"]) == 1 and first["NextToken"]
    jobs_only = await api.json(f"{JOBS}/{job_id}/history", event_type="job")
    assert all(h["Type"] == "JobLevel" for h in jobs_only["Items"])
    bad = await api.json(f"{JOBS}/{job_id}/history", status=400, event_type="node")
    assert bad["Message"].startswith("event_type: unknown value 'node'")


# ---------------------------------------------------------------------------------- stop


async def test_stop_with_reason_in_body_or_query(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    await api.until_state(job_id, "Queued")
    resp = await api.client.delete(f"{JOBS}/{job_id[:10]}", params={"reason": "by query"})
    assert resp.status == 200
    assert set(await resp.json()) == {"EvaluationID"}
    await api.until_state(job_id, "Stopped")
    job = (await api.json(f"{JOBS}/{job_id}"))["Job"]
    assert job["State"]["StateType"] == "Stopped"

    other = await api.submit(_job(queue_timeout=600))
    await api.until_state(other, "Queued")
    resp = await api.client.delete(f"{JOBS}/{other}", json={"reason": "by body"})
    assert resp.status == 200
    assert (await resp.json())["EvaluationID"]


async def test_stop_as_bacalhau_sdk_sends_it(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    await api.until_state(job_id, "Queued")
    resp = await api.client.delete(f"{JOBS}/{job_id}", params={"reason": "None"}, json={})
    assert resp.status == 200
    await api.until_state(job_id, "Stopped")
    again = await api.client.delete(f"{JOBS}/{job_id}", params={"reason": "None"}, json={})
    assert again.status == 200
    assert await again.json() == {"EvaluationID": ""}


async def test_queries_as_bacalhau_sdk_sends_them(api: Harness) -> None:
    job_id = await api.submit(_job())
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    for path, query in [
        (JOBS, "limit=5&next_token=&reverse=False&order_by=created_at"),
        (f"{JOBS}/{job_id}", "include=&limit=10"),
        (f"{JOBS}/{job_id}/executions",
         "namespace=&limit=5&next_token=&reverse=False&order_by="),
        (f"{JOBS}/{job_id}/history", "event_type=execution&execution_id=&node_id="),
        (f"{JOBS}/{job_id}/results", ""),
    ]:
        resp = await api.client.get(f"{path}?{query}", headers=headers)
        assert resp.status == 200, (path, await resp.text())


async def test_stop_unknown_job_is_404(api: Harness) -> None:
    resp = await api.client.delete(f"{JOBS}/j-nope")
    assert resp.status == 404


# ---------------------------------------------------------------------------------- sub-resources


async def test_executions_versions_results(api: Harness) -> None:
    job_id = await api.submit(_job("versioned"))
    await api.until_state(job_id, "Failed")
    assert await api.json(f"{JOBS}/{job_id}/executions") == {"Items": [], "NextToken": ""}
    versions = await api.json(f"{JOBS}/{job_id}/versions")
    assert [v["Version"] for v in versions["Items"]] == [1]
    assert versions["NextToken"] == ""
    assert await api.json(f"{JOBS}/{job_id}/results") == {"Items": [], "NextToken": ""}
    bad = await api.json(f"{JOBS}/{job_id}/executions", status=400, order_by="node")
    assert bad["Message"].startswith("order_by: unknown value")


async def test_resubmitting_by_name_updates_and_diff_shows_changes(api: Harness) -> None:
    job = _job("diffed")
    job_id = await api.submit(job)

    resp = await api.client.put(f"{JOBS}/diff", json={"Job": job})
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"Diff", "Warnings"}
    assert body["Diff"] == ""

    changed = _job("diffed")
    changed["Tasks"][0]["Engine"]["Params"]["Parameters"] = ["echo", "bye"]
    body = await (await api.client.put(f"{JOBS}/diff", json={"Job": changed})).json()
    lines = body["Diff"].splitlines()
    assert any(line.startswith("-") and "hi" in line for line in lines), body["Diff"]
    assert any(line.startswith("+") and "bye" in line for line in lines), body["Diff"]

    assert await api.submit(changed) == job_id
    versions = await api.json(f"{JOBS}/{job_id}/versions")
    assert [v["Version"] for v in versions["Items"]] == [1, 2]

    nameless = await api.client.put(f"{JOBS}/diff", json={"Job": _job()})
    assert nameless.status == 400
    assert "Name" in (await nameless.json())["Message"]


async def test_rerun_answers_an_api_error_or_a_new_evaluation(api: Harness) -> None:
    job_id = await api.submit(_job())
    await api.until_state(job_id, "Failed")
    resp = await api.client.put(f"{JOBS}/{job_id}/rerun", json={"JobVersion": 0,
                                                                 "Reason": "again"})
    body = await resp.json()
    assert resp.status == 200, body
    assert set(body) == {"EvaluationID", "JobID", "JobVersion", "Warnings"}
    assert body["JobID"] == job_id and body["JobVersion"] == 2 and body["EvaluationID"]
    versions = await api.json(f"{JOBS}/{job_id}/versions")
    assert [v["Version"] for v in versions["Items"]] == [1, 2]


async def test_rerun_of_a_queued_job_is_refused(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    await api.until_state(job_id, "Queued")
    resp = await api.client.put(f"{JOBS}/{job_id}/rerun", json={})
    body = await resp.json()
    assert resp.status == 400 and "cannot be rerun while it is Queued" in body["Message"]
    unknown = await api.client.put(f"{JOBS}/j-nope/rerun", json={})
    assert unknown.status == 404


# ---------------------------------------------------------------------------------- logs


async def test_logs_websocket_reports_a_missing_execution_as_an_error_frame(
    api: Harness,
) -> None:
    job_id = await api.submit(_job())
    await api.until_state(job_id, "Failed")
    async with api.client.ws_connect(f"{JOBS}/{job_id}/logs") as ws:
        msg = await ws.receive()
        assert msg.type == WSMsgType.TEXT
        frame = msg.json()
        assert set(frame) == {"error"} and frame["error"]
        closing = await ws.receive()
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 1000


async def test_logs_of_an_unknown_job(api: Harness) -> None:
    async with api.client.ws_connect(f"{JOBS}/j-nope/logs") as ws:
        frame = (await ws.receive()).json()
        assert frame["error"] == "job not found: j-nope"
    # without the upgrade, the lookup's APIError (the client reads it after a refused upgrade)
    assert (await api.json(f"{JOBS}/j-nope/logs", status=404))["Code"] == "NotFound"
    job_id = await api.submit(_job())
    plain = await api.json(f"{JOBS}/{job_id}/logs", status=400)
    assert "WebSocket" in plain["Message"]


# ---------------------------------------------------------------------------------- nodes


async def _announce(api: Harness, node_id: str, labels: dict[str, str]) -> None:
    """A compute node joining: its NodeInfo gossip, as the compute service sends it."""
    transport = api.network.transport(node_id)
    await transport.start()
    await register_node(transport, ORCHESTRATOR_ID,
                        NodeInfo(node_id=node_id, node_type="Compute", labels=labels))

    async def known() -> bool:
        resp = await api.client.get(f"{NODES}/{node_id}")
        return resp.status == 200

    await api.until(known, f"node {node_id} to register")


async def test_nodes_list_get_and_approve(api: Harness) -> None:
    compute_id = "n-11111111-1111-4111-8111-111111111111"
    await _announce(api, compute_id, {"zone": "eu"})

    body = await api.json(NODES)
    assert set(body) == {"Nodes", "nodes", "NextToken"}
    assert body["nodes"] == body["Nodes"]  # the key bacalhau-apiclient reads
    by_id = {n["Info"]["NodeID"]: n for n in body["Nodes"]}
    assert by_id[ORCHESTRATOR_ID]["Membership"] == "APPROVED"
    node = by_id[compute_id]
    assert {"Info", "Membership", "Connection", "ConnectionState"} <= set(node)
    assert node["Membership"] == "PENDING"

    pending = await api.json(NODES, **{"filter-approval": "pending"})
    assert [n["Info"]["NodeID"] for n in pending["Nodes"]] == [compute_id]
    labelled = await api.json(NODES, labels="zone=eu")
    assert [n["Info"]["NodeID"] for n in labelled["Nodes"]] == [compute_id]
    bad = await api.json(NODES, status=400, **{"filter-status": "sleeping"})
    assert bad["Message"].startswith("filter-status: unknown value")

    got = await api.json(f"{NODES}/n-1111")
    assert got["Node"]["Info"]["NodeID"] == compute_id
    assert got["node"] == got["Node"]
    underscore = await api.json(NODES, filter_approval="PENDING")  # bacalhau-apiclient
    assert [n["Info"]["NodeID"] for n in underscore["Nodes"]] == [compute_id]

    resp = await api.client.put(f"{NODES}/n-1111", json={
        "Action": "approve", "Message": "ok", "NodeID": "n-1111"})
    assert resp.status == 200
    assert await resp.json() == {"Success": True, "success": True}
    assert (await api.json(f"{NODES}/{compute_id}"))["Node"]["Membership"] == "APPROVED"

    # bacalhau-apiclient's update_node: POST /nodes, lower-case keys, id in the body
    resp = await api.client.post(NODES, json={"action": "reject", "nodeID": compute_id,
                                              "message": "bye"})
    assert resp.status == 200, await resp.text()
    assert (await api.json(f"{NODES}/{compute_id}"))["Node"]["Membership"] == "REJECTED"
    resp = await api.client.put(f"{NODES}/{compute_id}", json={"Action": "approve"})
    assert resp.status == 200

    again = await api.client.put(f"{NODES}/{compute_id}", json={"Action": "approve"})
    assert again.status == 400
    bad_action = await api.client.put(f"{NODES}/{compute_id}", json={"Action": "promote"})
    assert bad_action.status == 400
    assert (await bad_action.json())["Message"].startswith("Action: unknown action 'promote'")


async def test_unknown_node_is_404(api: Harness) -> None:
    body = await api.json(f"{NODES}/n-nope", status=404)
    assert body["Code"] == "NotFound"


async def test_nodes_paging(api: Harness) -> None:
    await _announce(api, "n-22222222-2222-4222-8222-222222222222", {})
    first = await api.json(NODES, limit=1)
    assert len(first["Nodes"]) == 1 and first["NextToken"]
    second = await api.json(NODES, next_token=first["NextToken"])
    assert len(second["Nodes"]) == 1 and second["NextToken"] == ""
    assert first["Nodes"][0]["Info"]["NodeID"] != second["Nodes"][0]["Info"]["NodeID"]
    raw = base64.urlsafe_b64decode(first["NextToken"] + "=" * (-len(first["NextToken"]) % 4))
    assert raw == b"id:N:1:1"


async def test_results_of_a_long_running_job_are_a_400(api: Harness) -> None:
    job_id = await api.submit({**_job(), "Type": "service"})
    body = await api.json(f"{JOBS}/{job_id}/results", status=400)
    assert "results exist for batch and ops jobs only" in body["Message"]


async def test_integers_beyond_64_bits_are_a_400(api: Harness) -> None:
    job_id = await api.submit(_job())
    body = await api.json(f"{JOBS}/{job_id}/history", status=400, job_version=2**64)
    assert body["Message"].startswith("job_version: must be <=")
    # a `since` far in the future matches nothing instead of overflowing the store
    far = await api.json(f"{JOBS}/{job_id}/history", since=2**62)
    assert far["Items"] == []
    huge = PagingToken("created_at", False, 2**64, 0).encode()
    assert (await api.json(JOBS, status=400, next_token=huge))["Message"].startswith(
        "next_token: invalid paging token")
