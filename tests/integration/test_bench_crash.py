"""`python -m bench crash` in miniature: 80 jobs, the requester killed -9 mid-run and started
again, then compute-0; the scenario's JSON says nothing was lost or doubled and every job has
exactly one Completed execution (the checks are the bench's own, read back here). No speed is
asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_kill_9_mid_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "crash", "--quick", "--crash-jobs", "80",
         "--concurrency", "8", "--seed", "7", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "crash.json").read_text())
    assert set(doc["summary"]) == {"requester", "compute-0"}
    for victim, run in doc["summary"].items():
        assert run["victim"] == victim and run["jobs"] == 80
        assert run["stored_jobs"] == 80, run
        assert (run["lost"], run["doubled"], run["not_completed"],
                run["not_one_completed_execution"]) == (0, 0, 0, 0), doc["samples"][victim]
        assert 0 < run["accepted_at_kill"] <= 80 and run["restart_s"] > 0
    counted = [r for r in doc["rows"] if r["target"] == {"max": 0.0}]
    assert len(counted) == 6 and all(r["met"] for r in counted), counted
