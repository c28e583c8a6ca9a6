"""`bacalhau job get` killed (SIGKILL, by a failpoint) mid-download and mid-merge, then run
again into the same folder: the second run writes the job's result, verified, as if the
first had never run. Real `bacalhau serve` and CLI processes on loopback (no namespaces)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.jobspecs import expected_count, wordcount_job

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def job_get(server: ServeProcess, job_id: str, out: Path, failpoints: str = ""
            ) -> subprocess.CompletedProcess[str]:
    env = server.env()
    env.pop("BACALHAU_FAILPOINTS", None)
    if failpoints:
        env["BACALHAU_FAILPOINTS"] = failpoints
    return subprocess.run([sys.executable, "-m", "bacalhau", "job", "get", job_id,
                           "--output-dir", str(out)], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("point", ["download.mid", "merge.mid"])
def test_job_get_killed_midway_then_again(bacalhau_server: ServeProcess, tmp_path: Path,
                                          point: str) -> None:
    text = "one two three\nfour\n"
    status, doc = bacalhau_server.api("PUT", "/api/v1/orchestrator/jobs",
                                      {"Job": wordcount_job(text, extra={"Count": 1})})
    assert status == 200, doc
    job_id = doc["JobID"]

    def completed() -> bool:
        _, got = bacalhau_server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")
        return got["Job"]["State"]["StateType"] == "Completed"

    wait_until(completed, 60, what="the job to complete")
    out = tmp_path / "out"
    killed = job_get(bacalhau_server, job_id, out, f"{point}=crash")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    again = job_get(bacalhau_server, job_id, out)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "outputs" / "count.txt").read_text() == expected_count(text)
    assert (out / "stdout").read_text() == expected_count(text)
    assert "raw" not in os.listdir(out)  # the first run's download was replaced, then merged
