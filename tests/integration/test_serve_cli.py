"""End to end with real processes: `bacalhau serve` in one process, the CLI in others, HTTP in
between; WASM jobs from submit to a downloaded, merged result; restarts keep every job."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import ServeProcess, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]

TERMINAL = {"Completed", "Failed", "Stopped"}


def job_state(server: ServeProcess, job_id: str) -> dict:
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")
    assert status == 200, body
    return body["Job"]["State"]


def wait_terminal(server: ServeProcess, job_id: str, timeout: float = 30.0) -> dict:
    return wait_until(
        lambda: (s := job_state(server, job_id))["StateType"] in TERMINAL and s,
        timeout, what=f"job {job_id} to finish")


def submit(server: ServeProcess, job: dict) -> str:
    status, body = server.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})
    assert status == 200, body
    return body["JobID"]


def test_wasm_job_from_cli_to_downloaded_result(bacalhau_server, tmp_path):
    text = "the quick brown fox\njumps over\nthe lazy dog\n"
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(wordcount_job(text, name="wc")))
    run = bacalhau_server.cli("job", "run", str(spec), "--wait", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    status, body = bacalhau_server.api("GET", "/api/v1/orchestrator/jobs/wc")
    assert status == 200, body
    job_id = body["Job"]["ID"]
    assert body["Job"]["State"]["StateType"] == "Completed"
    assert job_id in run.stdout

    described = bacalhau_server.cli("job", "describe", job_id, "--output", "json")
    assert described.returncode == 0, described.stderr
    doc = json.loads(described.stdout)
    assert doc["Job"]["State"]["StateType"] == "Completed"

    out = tmp_path / "results"
    got = bacalhau_server.cli("job", "get", job_id, "--output-dir", str(out), cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (out / "outputs" / "count.txt").read_text() == expected_count(text)
    assert (out / "stdout").read_text() == expected_count(text)
    assert (out / "exitCode").read_text().strip() == "0"


def test_history_and_executions_over_http(bacalhau_server):
    job_id = submit(bacalhau_server, wordcount_job("a b c\n"))
    assert wait_terminal(bacalhau_server, job_id)["StateType"] == "Completed"
    status, hist = bacalhau_server.api(
        "GET", f"/api/v1/orchestrator/jobs/{job_id}/history?event_type=all")
    assert status == 200
    messages = [h["Event"]["Message"] for h in hist["Items"]]
    assert any("submitted" in m.lower() for m in messages), messages
    assert hist["NextToken"] == ""
    status, execs = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200 and len(execs["Items"]) == 1
    ex = execs["Items"][0]
    assert ex["ComputeState"]["StateType"] == 9  # Completed, as an integer
    assert ex["RunOutput"]["Stdout"] == expected_count("a b c\n")
    status, results = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/results")
    assert status == 200 and results["Items"][0]["Type"] == "urlDownload"


def test_restart_keeps_every_job_and_history(bacalhau_server):
    ids = [submit(bacalhau_server, wordcount_job(f"job {i}\n")) for i in range(3)]
    for job_id in ids:
        assert wait_terminal(bacalhau_server, job_id)["StateType"] == "Completed"
    before = {}
    for job_id in ids:
        _, h = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/history")
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        before[job_id] = (len(h["Items"]), [x["ID"] for x in e["Items"]])

    bacalhau_server.restart()

    _, listed = bacalhau_server.api("GET", "/api/v1/orchestrator/jobs?limit=100")
    assert {j["ID"] for j in listed["Items"]} >= set(ids)
    for job_id in ids:
        assert job_state(bacalhau_server, job_id)["StateType"] == "Completed"
        _, h = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/history")
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        assert (len(h["Items"]), [x["ID"] for x in e["Items"]]) == before[job_id]
    # the restarted node still runs new work
    new_id = submit(bacalhau_server, wordcount_job("after restart\n"))
    assert wait_terminal(bacalhau_server, new_id)["StateType"] == "Completed"


def test_restart_during_a_running_job_fails_and_reschedules_it(bacalhau_server):
    job_id = submit(bacalhau_server, wordcount_job(module="loop.wasm", params=[], timeout=120))

    def running_execution():
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        return [x for x in e["Items"] if x["DesiredState"]["StateType"] == 1
                and x["ComputeState"]["StateType"] == 5] or None

    first = wait_until(running_execution, 20, what="the looping execution to run")[0]
    bacalhau_server.restart()

    def failed_and_replaced():
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        items = {x["ID"]: x for x in e["Items"]}
        old = items.get(first["ID"])
        return old and old["ComputeState"]["StateType"] == 10 and len(items) >= 2 and items

    items = wait_until(failed_and_replaced, 30, what="restart failure and a new execution")
    assert "restart" in items[first["ID"]]["ComputeState"].get("Message", "").lower()
    status, _ = bacalhau_server.api("DELETE", f"/api/v1/orchestrator/jobs/{job_id}",
                                    {"reason": "test done"})
    assert status == 200
    assert wait_terminal(bacalhau_server, job_id)["StateType"] == "Stopped"


def test_cli_stop_cancels_a_running_execution(bacalhau_server):
    job_id = submit(bacalhau_server, wordcount_job(module="loop.wasm", params=[], timeout=120))

    def running():
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        return any(x["ComputeState"]["StateType"] == 5 for x in e["Items"])

    wait_until(running, 20, what="the looping execution to run")
    stopped = bacalhau_server.cli("job", "stop", job_id)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert wait_terminal(bacalhau_server, job_id)["StateType"] == "Stopped"

    def cancelled():
        _, e = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
        return all(x["DesiredState"]["StateType"] == 2 for x in e["Items"]) and e["Items"]

    items = wait_until(cancelled, 10, what="the execution to be stopped")
    assert items[0]["ComputeState"]["StateType"] in (10, 11)  # Failed or Cancelled
    wait_until(lambda: bacalhau_server.api("GET", "/api/v1/agent/node")[1]["ComputeNodeInfo"][
        "RunningExecutions"] == 0, 10, what="the compute node to stop running the module")
    again = bacalhau_server.cli("job", "stop", job_id)
    assert again.returncode == 0, again.stderr  # stopping a Stopped job is a no-op
    listed = bacalhau_server.cli("job", "list", "--output", "json")
    assert listed.returncode == 0 and job_id in listed.stdout


def test_job_get_refuses_a_result_tampered_with_on_the_node(bacalhau_server, tmp_path):
    """The compute attaches the results' CID; an archive changed on the node's disk afterwards
    is refused by `job get`, naming the execution and both CIDs, with nothing written."""
    from bacalhau import _native
    from bacalhau.content import results_cid

    text = "content addressing\n"
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(wordcount_job(text, name="cid")))
    run = bacalhau_server.cli("job", "run", str(spec), "--wait", "--id-only", timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.strip().splitlines()[-1]

    status, execs = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, execs
    [execution] = [e for e in execs["Items"] if e["ComputeState"]["StateType"] == 9]
    published = execution["PublishedResult"]["Params"]["CID"]
    assert published.startswith("Qm")
    described = bacalhau_server.cli("job", "describe", job_id)
    assert described.returncode == 0, described.stderr
    assert published in described.stdout

    # An honest download verifies.
    good = bacalhau_server.cli("job", "get", job_id, "--output-dir", str(tmp_path / "good"),
                               cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr

    # Tamper with the archive the local publisher serves: a valid tar.gz, other content.
    [archive] = list(bacalhau_server.data_dir.rglob(f"{execution['ID']}.tar.gz"))
    unpacked = tmp_path / "unpacked"
    _native.unpack(str(archive), str(unpacked))
    (unpacked / "stdout").write_text("forged\n")
    forged = results_cid(unpacked)
    _native.pack_dir(str(unpacked), str(archive))

    out = tmp_path / "bad"
    got = bacalhau_server.cli("job", "get", job_id, "--output-dir", str(out), cwd=tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    assert f"execution {execution['ID']}" in got.stderr
    assert published in got.stderr and forged in got.stderr
    assert not out.exists()
