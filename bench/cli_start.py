"""CLI start: wall time of one-shot `bacalhau` commands against `python -c pass` (issue 15).

Figures, each the p50 of `rounds` runs, interleaved with the baseline so that both see the
same machine load:
- `bacalhau --help` (no node needed);
- `bacalhau job list` and `bacalhau job describe <id>` against a real `bacalhau serve`
  holding one completed job.
Baseline: `python -c pass` with the same interpreter. Both run with byte code caching on
(PYTHONDONTWRITEBYTECODE unset), as an installed package has its `.pyc` files: without them
each run compiles every module it imports from source, which is not what a user waits for.
Target: each at most 7x the baseline.

Run: `.venv/bin/python -m bench cli [--quick]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import harness, report
from bench.harness import serve_node, summary
from tests.jobspecs import wordcount_job

TARGET = 7.0
"""Each command's p50 at most this many times `python -c pass`'s (issue 15)."""


def bacalhau_cli() -> list[str]:
    """The console script beside this interpreter (what users run), else `-m bacalhau`."""
    script = Path(sys.executable).parent / "bacalhau"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bacalhau"]


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-500:]}")
    return elapsed


def _submit_and_wait(port: int, timeout: float = 60.0) -> str:
    base = f"http://127.0.0.1:{port}/api/v1/orchestrator/jobs"
    body = json.dumps({"Job": wordcount_job("a b c\n")}).encode()
    request = urllib.request.Request(base, data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        job_id = str(json.loads(resp.read())["JobID"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/{job_id}", timeout=10) as resp:
            state = json.loads(resp.read())["Job"]["State"]["StateType"]
        if state == "Completed":
            return job_id
        time.sleep(0.05)  # bench poll, bounded by the deadline
    raise RuntimeError(f"job {job_id} did not complete in {timeout:.0f}s")


def run(quick: bool, out_dir: Path, rounds: int | None = None) -> dict[str, Any]:
    n = rounds or (10 if quick else 30)
    started = time.monotonic()
    cli = bacalhau_cli()
    samples: dict[str, list[float]] = {"python -c pass": [], "bacalhau --help": [],
                                       "bacalhau job list": [], "bacalhau job describe": []}
    with harness.scratch_dir(prefix="bench-cli-") as tmp:
        work = Path(tmp)
        with serve_node(work) as port:
            job_id = _submit_and_wait(port)
            env = dict(os.environ, BACALHAU_API_PORT=str(port), BACALHAU_DIR=str(work / "cli"))
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "bacalhau --help": [*cli, "--help"],
                "bacalhau job list": [*cli, "job", "list"],
                "bacalhau job describe": [*cli, "job", "describe", job_id],
            }
            for cmd in commands.values():  # warm the page cache and .pyc files
                timed(cmd, env)
            for _ in range(n):
                for name, cmd in commands.items():
                    samples[name].append(timed(cmd, env))
    s = {name: summary(values) for name, values in samples.items()}
    base = s["python -c pass"]["p50_ms"]
    rows = [
        report.Row(f"{name} wall p50", s[name]["p50_ms"], "ms", "python -c pass wall p50",
                   base, {"max": TARGET})
        for name in ("bacalhau --help", "bacalhau job list", "bacalhau job describe")
    ]
    return report.result(
        "cli",
        settings={"rounds": n, "quick": quick, "command": " ".join(cli),
                  "bytecode": "cached (.pyc written by the warm-up run)",
                  "server": "one `bacalhau serve --orchestrator --compute`, one completed job"},
        samples={"unit": "ms", **{k: [x * 1e3 for x in v] for k, v in samples.items()}},
        summary=s, rows=rows, seconds=time.monotonic() - started)
