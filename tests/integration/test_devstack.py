"""`bacalhau devstack` as a real process: one requester and three compute nodes, each with its
own identity; a Count=3 job runs on three distinct nodes and its results merge on download."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import free_port, http_json, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]


@pytest.fixture
def devstack(tmp_path: Path):
    port = free_port()
    env = dict(os.environ, BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(port))
    log = open(tmp_path / "devstack.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "bacalhau", "devstack", "--computes", "3",
         "--stack-repo", str(tmp_path / "stack")],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        assert proc.poll() is None, (tmp_path / "devstack.log").read_text()
        return http_json("GET", url + "/api/v1/agent/alive", timeout=1)[0] == 200

    wait_until(alive, 30, what="the devstack API")

    def computes_connected() -> bool:
        status, body = http_json("GET", url + "/api/v1/orchestrator/nodes", timeout=2)
        return status == 200 and sum(
            1 for n in body["Nodes"] if n["Info"]["NodeType"] == "Compute"
            and n["ConnectionState"]["Status"] == "CONNECTED") == 3

    wait_until(computes_connected, 30, what="three connected compute nodes")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bacalhau", *args], capture_output=True,
                              text=True, env=env, timeout=60, cwd=tmp_path)

    yield url, cli, tmp_path
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(20) == 0, (tmp_path / "devstack.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_devstack_runs_partitions_on_distinct_nodes(devstack):
    url, cli, tmp_path = devstack

    def compute_nodes():
        listed = cli("node", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        nodes = json.loads(listed.stdout)
        computes = [n for n in nodes if n["Info"]["NodeType"] == "Compute"
                    and n["ConnectionState"]["Status"] == "CONNECTED"]
        return len(computes) == 3 and nodes

    nodes = wait_until(compute_nodes, 20, what="three connected compute nodes")
    assert len({n["Info"]["NodeID"] for n in nodes}) == 4  # requester + 3 computes

    text = "one two three\n"
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(wordcount_job(text, extra={"Count": 3})))
    run = cli("job", "run", str(spec), "--id-only", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.strip().splitlines()[-1]

    status, execs = http_json("GET", f"{url}/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200
    completed = [e for e in execs["Items"] if e["ComputeState"]["StateType"] == 9]
    assert len(completed) == 3
    assert len({e["NodeID"] for e in completed}) == 3
    assert sorted(e.get("PartitionIndex", 0) for e in completed) == [0, 1, 2]

    logs = cli("job", "logs", job_id)
    assert logs.returncode == 0, logs.stderr
    assert expected_count(text).strip() in logs.stdout

    # three results each wrote outputs/count.txt: a merge is refused before anything moves,
    # and --raw keeps every result in its own folder
    out = tmp_path / "merged"
    got = cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 1
    assert "outputs/count.txt exists in more than one result. Try --raw" in got.stderr
    assert not (out / "stdout").exists() and not (out / "outputs").exists()
    raw = tmp_path / "raw"
    got_raw = cli("job", "get", job_id, "--output-dir", str(raw), "--raw")
    assert got_raw.returncode == 0, got_raw.stdout + got_raw.stderr
    counts = sorted(raw.glob("raw/*/outputs/count.txt"))
    stdouts = sorted(raw.glob("raw/*/stdout"))
    assert len(counts) == len(stdouts) == 3
    assert {p.read_text() for p in counts + stdouts} == {expected_count(text)}


def test_partition_results_append_stdout_on_download(devstack):
    """Two partitions of a probe job print their partition index; `job get` appends both
    stdout files in a fixed order into one."""
    _url, cli, tmp_path = devstack
    job = wordcount_job(module="probe.wasm", params=["probe"], extra={"Count": 2})
    job["Tasks"][0]["ResultPaths"] = []
    spec = tmp_path / "probe.json"
    spec.write_text(json.dumps(job))
    run = cli("job", "run", str(spec), "--id-only", "--wait")
    assert run.returncode == 0, run.stdout + run.stderr
    job_id = run.stdout.strip().splitlines()[-1]
    out = tmp_path / "probe-out"
    got = cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 0, got.stdout + got.stderr
    merged = (out / "stdout").read_text()
    indexes = [line for line in merged.splitlines() if line.startswith("BACALHAU_PARTITION_INDEX")]
    assert sorted(indexes) == ["BACALHAU_PARTITION_INDEX=0", "BACALHAU_PARTITION_INDEX=1"]
    assert merged.count("BACALHAU_JOB_ID=" + job_id) == 2
    assert (out / "exitCode").read_text().split() == ["0", "0"]
