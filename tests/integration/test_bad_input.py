"""Bad input gets a precise error, nothing crashes, and other jobs are not affected."""

from __future__ import annotations

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.integration.test_serve_cli import submit, wait_terminal
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]


def put_raw(server: ServeProcess, body: bytes) -> tuple[int, dict]:
    import json
    import urllib.error

    req = urllib.request.Request(server.url + "/api/v1/orchestrator/jobs", data=body,
                                 method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_rejected_specs_name_the_field(bacalhau_server):
    status, body = put_raw(bacalhau_server, b'{"Job": {"Type": "batch",')
    assert status == 400 and "JSON" in body["Message"] and body["Status"] == 400

    cases = [
        ({"Resources": {"Memory": "lots"}}, "Tasks[0].Resources.Memory"),
        ({"Resources": {"CPU": "-1"}}, "Tasks[0].Resources.CPU"),
        ({"Env": {"my-var": "x"}}, 'Env: name "my-var"'),
        ({"Env": {"BACALHAU_JOB_ID": "x"}}, "reserved"),
        ({"ResultPaths": [{"Name": "outputs", "Path": "outputs"}]}, "must be an absolute path"),
    ]
    for patch, needle in cases:
        job = wordcount_job()
        job["Tasks"][0].update(patch)
        status, body = bacalhau_server.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})
        assert status == 400, (patch, body)
        assert needle in body["Message"], (needle, body["Message"])


def test_runtime_failures_are_precise_and_isolated(bacalhau_server, tmp_path):
    unknown = wordcount_job()
    unknown["Tasks"][0]["Engine"]["Type"] = "teleport"
    local = wordcount_job()
    local["Tasks"][0]["InputSources"].append({
        "Source": {"Type": "localDirectory", "Params": {"SourcePath": str(tmp_path)}},
        "Target": "/data"})
    ids = {
        "unknown-engine": submit(bacalhau_server, unknown),
        "local-path": submit(bacalhau_server, local),
        "trap": submit(bacalhau_server, wordcount_job(module="trap.wasm", params=[])),
        "loop": submit(bacalhau_server, wordcount_job(module="loop.wasm", params=[], timeout=2)),
    }
    good = submit(bacalhau_server, wordcount_job("still fine\n"))

    states = {k: wait_terminal(bacalhau_server, v, 60) for k, v in ids.items()}
    assert states["unknown-engine"]["StateType"] == "Failed"
    assert "teleport" in states["unknown-engine"]["Message"]

    def execution_messages(job_id: str) -> str:
        _, hist = bacalhau_server.api(
            "GET", f"/api/v1/orchestrator/jobs/{job_id}/history?event_type=all")
        _, execs = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        texts = [h["Event"]["Message"] for h in hist["Items"]]
        for ex in execs["Items"]:
            texts.append(ex["ComputeState"].get("Message", ""))
            texts.append((ex.get("RunOutput") or {}).get("ErrorMsg", ""))
        return "\n".join(texts).lower()

    assert states["local-path"]["StateType"] == "Failed"
    assert "allow" in execution_messages(ids["local-path"])
    assert "unreachable" in execution_messages(ids["trap"])
    assert states["loop"]["StateType"] == "Failed"
    assert "timed out" in execution_messages(ids["loop"])

    assert wait_terminal(bacalhau_server, good)["StateType"] == "Completed"
    _, execs = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{good}/executions")
    assert execs["Items"][0]["RunOutput"]["Stdout"] == expected_count("still fine\n")
    wait_until(lambda: bacalhau_server.api("GET", "/api/v1/agent/alive")[0] == 200, 5,
               what="the node to stay alive")
