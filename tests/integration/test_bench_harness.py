"""`python -m bench`: a tiny run of the end-to-end scenarios (latency, throughput, backlog)
on real `bacalhau serve` processes writes, per scenario, JSON of the common shape whose every
figure is a measured, positive, finite number with varying samples, a PNG plot, and the
table; a missing Slurm is a row with the reason, not a failure. No speed is asserted."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report, slurm

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def positive(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "latency", "throughput", "backlog", "--quick",
         "--jobs", "6", "--throughput-jobs", "24", "--concurrency", "4", "--no-slurm",
         "--backlog", "400", "--samples", "6", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.parametrize("scenario", ["latency", "throughput", "backlog"])
def test_json_shape_and_measured_figures(tiny_run: tuple[Path, str], scenario: str) -> None:
    out, _ = tiny_run
    doc = json.loads((out / f"{scenario}.json").read_text())
    assert doc["scenario"] == scenario
    assert {"machine", "settings", "samples", "summary", "rows", "seconds"} <= set(doc)
    machine = doc["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0
    assert machine["python"].count(".") == 2 and machine["cpu_model"]
    assert len(machine["git_commit"]) == 40
    assert doc["rows"], "a scenario without rows"
    for row in doc["rows"]:
        assert set(row) >= {"figure", "value", "unit", "baseline", "baseline_value", "ratio",
                            "target", "met", "note"}
        if row["baseline_value"] is None:  # a baseline that could not run says why
            assert row["note"], row
            assert row["ratio"] is None and row["met"] is None
            continue
        # a difference of two RSS readings may be <= 0 (the store is not held in memory)
        if "growth" not in row["figure"]:
            assert positive(row["value"]), row
        assert math.isfinite(row["value"]), row
        assert positive(row["baseline_value"]), row
        assert row["ratio"] == pytest.approx(row["value"] / row["baseline_value"])
        if row["target"]:
            bound = row["target"].get("max", row["target"].get("min"))
            assert row["met"] == (row["ratio"] <= bound if "max" in row["target"]
                                  else row["ratio"] >= bound)
    # raw samples are measurements: positive, and not all the same
    series = [v for v in doc["samples"].values()
              if isinstance(v, list) and len(v) >= 3 and all(isinstance(x, float) for x in v)]
    assert series, f"{scenario}: no raw sample series"
    for values in series:
        assert all(math.isfinite(x) and x >= 0 for x in values)
        assert len(set(values)) > 1, f"{scenario}: constant samples {values[:5]}"
    assert (out / f"{scenario}.png").read_bytes()[:8] == PNG


def test_scenario_specifics(tiny_run: tuple[Path, str]) -> None:
    out, stdout = tiny_run
    latency = json.loads((out / "latency.json").read_text())
    assert len(latency["samples"]["server"]) == 6
    assert latency["summary"]["server"]["p50_ms"] <= latency["summary"]["server"]["p99_ms"]
    throughput = json.loads((out / "throughput.json").read_text())
    assert throughput["summary"]["completed"] == 24
    assert len(throughput["samples"]["submit_latency_s"]) == 24
    assert positive(throughput["summary"]["cpu_s_per_job"])
    by_process = throughput["summary"]["cpu_ms_per_job_by_process"]
    assert set(by_process) == {"orchestrator-0", "compute-0", "compute-1"}
    assert all(positive(v) for v in by_process.values()), by_process
    # counted, not estimated (issue 15): SIGUSR1 counters and inotify
    counted = throughput["summary"]["counted"]
    assert counted["commits_per_job"] >= 1 and counted["messages_per_job"] >= 1, counted
    assert set(counted["commits_per_job_by_process"]) == set(by_process)
    files = throughput["summary"]["files"]
    assert files["files_and_folders_per_execution"] >= 1 and not files["inotify_overflowed"]
    assert any("/executions/" in path for path in files["examples"]), files["examples"]
    slurm_row = next(r for r in throughput["rows"] if "Slurm" in r["baseline"])
    assert slurm_row["baseline_value"] is None and "--no-slurm" in slurm_row["note"]
    assert (out / "throughput_submit.png").read_bytes()[:8] == PNG
    backlog = json.loads((out / "backlog.json").read_text())
    assert backlog["summary"]["big"]["stored"] >= 400 > backlog["summary"]["small"]["stored"]
    assert positive(backlog["summary"]["big"]["job_json_bytes"])
    table = (out / "table.md").read_text()
    assert table.count("\n| latency |") == len(latency["rows"])
    assert "trivial WASM job p50 (server clock)" in stdout


def test_missing_slurm_is_a_reason_not_a_failure(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    # an install script that cannot run stands for a machine where Slurm cannot start
    monkeypatch.setattr(slurm, "INSTALL", tmp_path / "no-such-install-script.sh")
    result = slurm.throughput(3, 2)
    assert result["reason"].startswith("scripts/install_slurm.sh did not finish")
    row = report.Row("jobs/s", 5.0, "jobs/s", "Slurm", result.get("jobs_per_s"),
                     {"min": 25.0}, note=result["reason"])
    assert row.ratio is None and row.met is None
    assert "did not finish" in report.table_lines([{"scenario": "throughput",
                                                    "rows": [row.__dict__]}])[1]


def test_rows_and_tables() -> None:
    met = report.Row("a", 2.0, "ms", "b", 1.0, {"max": 3.0})
    missed = report.Row("a", 2.0, "jobs/s", "b", 1.0, {"min": 3.0})
    assert (met.ratio, met.met, missed.met) == (2.0, True, False)
    lines = report.table_lines([{"scenario": "s", "rows": [met.__dict__, missed.__dict__]}],
                               markdown=True)
    assert lines[0].startswith("| scenario | figure |") and len(lines) == 4
    assert "| yes |" in lines[2] and "| NO |" in lines[3]
    assert report.rate_timeline([0.1, 0.2, 1.5], 1.0) == [(0.5, 2.0), (1.5, 1.0)]


def test_profile_breakdown_of_collapsed_stacks(tmp_path: Path) -> None:
    from bench import pyspy as profile

    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (m.py:1);put_job (bacalhau/api/routes/jobs.py:103);Database.execute "
        "(bacalhau/store/sqlite.py:226) 30\n"
        "main (m.py:1);EvaluationWorker.run (bacalhau/orchestrator/worker.py:60);"
        "Job.from_dict (bacalhau/models/job.py:153) 10\n"
        "_bootstrap (threading.py:1002);Condition.wait (threading.py:327) 500\n"
        "main (m.py:1);something (x.py:2) 10\n")
    b = profile.breakdown(raw)
    assert b["working_samples"] == 50  # the waiting thread is left out
    assert b["parts"] == {"HTTP: submit (PUT /jobs)": 0.6,
                          "orchestrator: evaluation worker (scheduler, planner)": 0.2,
                          "other": 0.2}
    assert (b["in_sqlite_stores"], b["in_model_serialisation"]) == (0.6, 0.2)
    assert "HTTP: submit (PUT /jobs) 60%" in profile.lines({"requester": b})[0]
