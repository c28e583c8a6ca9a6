"""bacalhau.api.client against a fake API serving canned reference-format answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.api.client import AsyncClient, ClientError
from bacalhau.api.sync_client import Client
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, Reply, fake_api, wire_job

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"


def client_for(server: FakeBacalhau) -> AsyncClient:
    return AsyncClient("127.0.0.1", server.port, timeout=10)


async def test_put_job_sends_job_and_force_with_version_headers(fake_api: FakeBacalhau) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev-1", "Warnings": ["w"]})
    spec = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}]}
    async with client_for(fake_api) as client:
        answer = await client.put_job(spec, force=True)
    assert answer == {"JobID": JOB_ID, "EvaluationID": "ev-1", "Warnings": ["w"]}
    (request,) = fake_api.calls("PUT", JOBS)
    assert request.body == {"Job": spec, "Force": True}
    assert request.headers["X-Bacalhau-Git-Version"].startswith("v1.")
    for header in ("X-Bacalhau-Git-Commit", "X-Bacalhau-Build-OS", "X-Bacalhau-Arch"):
        assert request.headers[header]


async def test_api_error_body_becomes_client_error_with_hint(fake_api: FakeBacalhau) -> None:
    fake_api.on(
        "GET",
        f"{JOBS}/j-nope",
        {
            "Status": 404,
            "Message": "job not found: j-nope",
            "Code": "NotFound",
            "Component": "JobStore",
            "Hint": "list jobs with `bacalhau job list`",
            "RequestID": "r-1",
        },
        status=404,
    )
    async with client_for(fake_api) as client:
        with pytest.raises(ClientError) as info:
            await client.get_job("j-nope")
    err = info.value
    assert (err.status, err.code, err.request_id) == (404, "NotFound", "r-1")
    assert str(err) == "job not found: j-nope\nHint: list jobs with `bacalhau job list`"


async def test_non_json_error_keeps_status_and_text(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", f"{JOBS}/x", Reply(status=502, body=b"bad gateway"))
    async with client_for(fake_api) as client:
        with pytest.raises(ClientError, match=r"^HTTP 502: bad gateway$"):
            await client.get_job("x")


async def test_query_parameters_follow_the_reference(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", JOBS, {"Items": [], "NextToken": ""})
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job()})
    fake_api.on("GET", "/api/v1/orchestrator/nodes", {"Nodes": [], "NextToken": ""})
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/history", {"Items": [], "NextToken": ""})
    async with client_for(fake_api) as client:
        await client.list_jobs(limit=5, reverse=True, labels=["a=b", "c!=d"], order_by="created_at")
        await client.get_job(JOB_ID, include=["history", "executions"])
        await client.list_nodes(filter_approval="PENDING", filter_status="CONNECTED")
        await client.job_history(JOB_ID, execution_id="e-1", all_versions=True, next_token="tok")
    listing, get, nodes, history = fake_api.requests
    assert listing.query == [
        ("limit", "5"),
        ("order_by", "created_at"),
        ("reverse", "true"),
        ("labels", "a=b"),
        ("labels", "c!=d"),
    ]
    assert get.query == [("include", "history,executions")]
    assert nodes.query == [("filter-approval", "PENDING"), ("filter-status", "CONNECTED")]
    assert history.param("event_type") == "all"
    assert history.param("all_job_versions") == "true"
    assert history.param("next_token") == "tok"


async def test_stop_rerun_and_node_action_bodies(fake_api: FakeBacalhau) -> None:
    fake_api.on("DELETE", f"{JOBS}/{JOB_ID}", {"EvaluationID": "ev-2"})
    fake_api.on("PUT", f"{JOBS}/{JOB_ID}/rerun", {"EvaluationID": "ev-3", "JobVersion": 2})
    fake_api.on("PUT", "/api/v1/orchestrator/nodes/n-1", {"Success": True})
    async with client_for(fake_api) as client:
        assert (await client.stop_job(JOB_ID, "because"))["EvaluationID"] == "ev-2"
        await client.rerun_job(JOB_ID, job_version=1, reason="again")
        await client.node_action("n-1", "approve", "looks fine")
    stop, rerun, action = fake_api.requests
    assert stop.body == {"reason": "because"}
    assert stop.param("reason") == "because"
    assert rerun.body == {"JobID": JOB_ID, "JobVersion": 1, "Reason": "again"}
    assert action.body == {"Action": "approve", "Message": "looks fine", "NodeID": "n-1"}


async def test_stream_logs_yields_frame_values_then_raises_on_error(
    fake_api: FakeBacalhau,
) -> None:
    frames = [
        {"value": {"Type": 1, "Line": "hello\n"}},
        {"value": {"Type": 2, "Line": "oops\n"}},
        {"error": "execution e-1 vanished"},
    ]
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/logs", Reply(ws_frames=frames))
    seen = []
    async with client_for(fake_api) as client:
        with pytest.raises(ClientError, match="execution e-1 vanished"):
            async for value in client.stream_logs(JOB_ID, follow=True, execution_id="e-1"):
                seen.append(value)
    assert seen == [{"Type": 1, "Line": "hello\n"}, {"Type": 2, "Line": "oops\n"}]
    (request,) = fake_api.calls("GET", f"{JOBS}/{JOB_ID}/logs")
    assert request.param("follow") == "true"
    assert request.param("execution_id") == "e-1"


async def test_stream_logs_refused_handshake_reports_the_api_error(
    fake_api: FakeBacalhau,
) -> None:
    async with client_for(fake_api) as client:
        with pytest.raises(ClientError) as info:
            async for _ in client.stream_logs("j-missing"):
                pass
    assert info.value.status == 404
    assert "not found" in str(info.value)


async def test_agent_endpoints_and_download(fake_api: FakeBacalhau, tmp_path: Path) -> None:
    fake_api.on("GET", "/api/v1/agent/alive", {"Status": "OK"})
    fake_api.on("GET", "/api/v1/agent/config", {"config": {"API": {"Port": 1234}}})
    fake_api.on("GET", "/results/e-1.tar.gz", Reply(body=b"\x1f\x8bdata"))
    async with client_for(fake_api) as client:
        assert await client.agent_alive() == {"Status": "OK"}
        assert (await client.agent_config())["config"]["API"]["Port"] == 1234
        dest = await client.download(f"{fake_api.url}/results/e-1.tar.gz", tmp_path / "a" / "r")
        with pytest.raises(ClientError, match=r"downloading .*/missing"):
            await client.download(f"{fake_api.url}/missing", tmp_path / "b")
    assert dest.read_bytes() == b"\x1f\x8bdata"


def test_sync_client_wraps_calls_and_log_stream(fake_api: FakeBacalhau) -> None:
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job("Running")})
    fake_api.on(
        "GET",
        f"{JOBS}/{JOB_ID}/logs",
        Reply(ws_frames=[{"value": {"Type": 1, "Line": "a"}}, {"value": {"Type": 1, "Line": "b"}}]),
    )
    with Client("127.0.0.1", fake_api.port, timeout=10) as client:
        assert client.get_job(JOB_ID)["Job"]["State"]["StateType"] == "Running"
        assert [v["Line"] for v in client.stream_logs(JOB_ID)] == ["a", "b"]
