#!/usr/bin/env python3
"""Screenshots of the web UI for the README: starts a small network (an orchestrator and three
compute processes on loopback), submits a few jobs (completed, stopped, running, one no node
can run), kills one compute node, and saves docs/ui-jobs.png, docs/ui-job.png,
docs/ui-nodes.png and docs/ui-overview.png at 1280x800 from headless Chromium.

Run from the repository: `.venv/bin/python scripts/ui_screenshots.py [--out docs]`
(needs scripts/install_browser.sh)."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import ServeProcess, wait_until  # noqa: E402
from tests.jobspecs import wordcount_job  # noqa: E402
from tests.webui_browser import UiBrowser, browser_missing  # noqa: E402

TEXT = "the quick brown fox\njumps over the lazy dog\n"


def submit(requester: ServeProcess, job: dict[str, Any]) -> str:
    status, doc = requester.api("PUT", "/api/v1/orchestrator/jobs", {"Job": job})
    if status != 200:
        raise SystemExit(f"submitting a job failed: {doc}")
    return str(doc["JobID"])


def state(requester: ServeProcess, job_id: str) -> str:
    return str(requester.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")[1]["Job"]["State"]
               ["StateType"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        raise SystemExit(f"cannot take screenshots: {missing}")
    with tempfile.TemporaryDirectory(prefix="bacalhau-ui-") as tmp:
        base = Path(tmp)
        requester = ServeProcess(
            data_dir=base / "requester", roles=("--orchestrator",),
            extra_args=["--listen", "/ip4/127.0.0.1/tcp/0",
                        "-c", "Orchestrator.NodeManager.DisconnectTimeout=3s"])
        computes: list[ServeProcess] = []
        try:
            requester.start()
            zones = ["eu-west", "eu-west", "us-east"]
            for i, zone in enumerate(zones):
                host = f"127.0.0.{i + 2}"
                compute = ServeProcess(
                    data_dir=base / f"compute-{i}", host=host, roles=("--compute",),
                    extra_args=["--listen", f"/ip4/{host}/tcp/0",
                                "--peers", ",".join(requester.addresses()),
                                "-c", "Compute.Heartbeat.Interval=0.5s",
                                "-c", f"Labels.zone={zone}", "-c", f"Labels.rack=r{i + 1}"])
                compute.start()
                computes.append(compute)
            ids = {c.node_id for c in computes}

            def connected() -> bool:
                nodes = requester.api("GET", "/api/v1/orchestrator/nodes")[1]["Nodes"]
                return ids <= {n["Info"]["NodeID"] for n in nodes
                               if n["ConnectionState"]["Status"] == "CONNECTED"}

            wait_until(connected, 30, what="compute nodes", interval=0.1)

            done = [submit(requester, wordcount_job(
                TEXT, name=f"wordcount-{i}", extra={"Labels": {"team": "data", "run": str(i)}}))
                for i in range(3)]
            spread = submit(requester, wordcount_job(TEXT, name="wordcount-x3",
                                                     extra={"Count": 3}))
            nowhere = submit(requester, wordcount_job(TEXT, name="needs-ap-south", extra={
                "Constraints": [{"Key": "zone", "Operator": "=", "Values": ["ap-south"]}]}))
            sleeper = wordcount_job(module="sleep.wasm", params=["600000"], name="long-sleep")
            sleeper["Tasks"][0]["InputSources"] = sleeper["Tasks"][0]["InputSources"][:1]
            stopped = submit(requester, dict(sleeper, Name="stopped-sleep"))
            running = submit(requester, sleeper)
            for job_id in [*done, spread, nowhere]:
                wait_until(lambda j=job_id: state(requester, j) in ("Completed", "Failed"), 60,
                           what=f"job {job_id}")
            wait_until(lambda: state(requester, stopped) == "Running", 30, what="sleep")
            requester.api("DELETE", f"/api/v1/orchestrator/jobs/{stopped}",
                          {"reason": "not needed any more"})
            wait_until(lambda: state(requester, running) == "Running", 30, what="sleep")

            computes[2].stop(sig=signal.SIGKILL)
            wait_until(lambda: not connected(), 30, what="a DISCONNECTED node")

            ui = UiBrowser()
            try:
                shots = [
                    ("ui-jobs.png", "/jobs", "#jobs-table tbody tr[data-job-id]"),
                    ("ui-job.png", f"/jobs/{done[0]}", '#job-logs-status[data-state="complete"]'),
                    ("ui-nodes.png", "/nodes", "#nodes-table .badge.DISCONNECTED"),
                    ("ui-overview.png", "/overview", "#chart-created svg rect"),
                ]
                args.out.mkdir(parents=True, exist_ok=True)
                for name, route, ready in shots:
                    ui.open(f"{requester.url}/ui/#{route}")
                    ui.wait(lambda r=ready: ui.find_all(r), 30, what=ready)
                    ui.screenshot(str(args.out / name))
                    print(f"wrote {args.out / name}")
                errors = ui.console_errors()
                if errors:
                    raise SystemExit(f"the page logged errors: {errors}")
            finally:
                ui.close()
        finally:
            for proc in [*reversed(computes), requester]:
                proc.stop()


if __name__ == "__main__":
    main()
