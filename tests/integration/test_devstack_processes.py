"""`bacalhau devstack --processes`: every node its own `bacalhau serve` process over libp2p;
a job runs, and SIGTERM stops the devstack and every node process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port, http_json, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration]


def test_devstack_with_a_process_per_node(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, BACALHAU_API_HOST="127.0.0.1", BACALHAU_API_PORT=str(port))
    stack = tmp_path / "stack"
    with open(tmp_path / "devstack.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bacalhau", "devstack", "--processes", "--computes", "2",
             "--stack-repo", str(stack)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def alive() -> bool:
            assert proc.poll() is None, (tmp_path / "devstack.log").read_text()
            return http_json("GET", url + "/api/v1/agent/alive", timeout=1)[0] == 200

        wait_until(alive, 60, what="the devstack API")
        wait_until(lambda: "Devstack is ready" in (tmp_path / "devstack.log").read_text(),
                   60, what="every node process to start", interval=0.1)
        pids = {d.name: int(next(line.split("=")[1] for line in
                                 (d / "bacalhau.run").read_text().splitlines()
                                 if "BACALHAU_NODE_PID" in line))
                for d in stack.iterdir() if (d / "bacalhau.run").exists()}
        assert set(pids) == {"orchestrator-0", "compute-0", "compute-1"}
        assert len(set(pids.values()) | {proc.pid}) == 4  # one process per node

        def two_computes() -> bool:
            _, nodes = http_json("GET", url + "/api/v1/orchestrator/nodes")
            return sum(1 for n in nodes["Nodes"] if n["Info"]["NodeType"] == "Compute"
                       and n["ConnectionState"]["Status"] == "CONNECTED") == 2

        wait_until(two_computes, 30, what="two connected compute nodes", interval=0.1)
        status, body = http_json("PUT", url + "/api/v1/orchestrator/jobs",
                                 {"Job": wordcount_job("a b\n", extra={"Count": 2})})
        assert status == 200, body
        job_id = body["JobID"]

        def finished() -> dict | None:
            _, doc = http_json("GET", f"{url}/api/v1/orchestrator/jobs/{job_id}/executions")
            done = [e for e in doc["Items"] if e["ComputeState"]["StateType"] == 9]
            return doc if len(done) == 2 else None

        execs = wait_until(finished, 30, what="both partitions to complete", interval=0.1)
        assert len({e["NodeID"] for e in execs["Items"]}) == 2
        assert {e["RunOutput"]["Stdout"] for e in execs["Items"]} == {expected_count("a b\n")}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, (tmp_path / "devstack.log").read_text()[-3000:]
    for pid in pids.values():  # every node process is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
