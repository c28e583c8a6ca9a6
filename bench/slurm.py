"""The Slurm baseline of the throughput scenario: `scripts/install_slurm.sh` installs and
starts a single-node Slurm on this machine (tuned for throughput), then N `sbatch --wrap true`
jobs are submitted by C concurrent submitters and the completed jobs/s measured (first
submit to the moment none of them is pending, running or completing).

The jobs run `true`, not the WASM module: Slurm has no WASM engine, and `true` is the
cheapest job it can run, so the baseline is Slurm's own per-job cost. Every way Slurm can
be missing (not root, no apt, daemons that do not start) returns the reason instead.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.report import REPO

INSTALL = REPO / "scripts" / "install_slurm.sh"


def ensure_slurm(timeout: float = 600) -> str:
    """'' once Slurm answers, else why it cannot run here."""
    try:
        proc = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/install_slurm.sh did not finish: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return f"scripts/install_slurm.sh failed: {' | '.join(tail)}"
    if shutil.which("sbatch") is None:
        return "sbatch not found after scripts/install_slurm.sh"
    return ""


def throughput(n: int, concurrency: int, timeout: float = 600) -> dict[str, Any]:
    """Submit `n` trivial batch jobs with `concurrency` submitters; completed jobs/s."""
    why = ensure_slurm()
    if why:
        return {"reason": why}
    name = f"bench-{uuid.uuid4().hex[:8]}"
    cmd = ["sbatch", "--quiet", "--parsable", f"--job-name={name}", "--output=/dev/null",
           "--chdir=/tmp", "--ntasks=1", "--cpus-per-task=1", "--wrap", "true"]

    def submit(_: int) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return time.perf_counter() - t0

    def left() -> int:
        out = subprocess.run(["squeue", "-h", "-n", name, "-t", "PD,R,CG,CF,S", "-o", "%i"],
                             capture_output=True, text=True, timeout=60).stdout
        return len(out.split())

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            submit_s = list(pool.map(submit, range(n)))
    except subprocess.SubprocessError as exc:
        return {"reason": f"sbatch failed: {exc}"}
    submitted = time.perf_counter()
    deadline = start + timeout
    while left():
        if time.perf_counter() > deadline:
            return {"reason": f"{n} Slurm jobs did not finish within {timeout:g}s"}
        time.sleep(0.05)  # squeue poll interval, bounded by the deadline
    done = time.perf_counter()
    return {"reason": "", "jobs": n, "concurrency": concurrency, "seconds": done - start,
            "submit_seconds": submitted - start, "jobs_per_s": n / (done - start),
            "sbatch_latency_s": submit_s, "job": "sbatch --wrap true (1 CPU, output /dev/null)",
            "version": subprocess.run(["sinfo", "--version"], capture_output=True,
                                      text=True).stdout.strip()}
