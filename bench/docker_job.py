"""Trivial Docker job latency, submit to Completed, beside `docker run --rm <image> true`.

The job runs `true` in the local test image (`bacalhau-py/test:busybox`, built by
scripts/build_test_image.sh) on a real `bacalhau serve` process, with the job defaults
(CPU 500m, Memory 512Mb), no inputs and no publisher, like the `docker run` it is compared
with. Jobs and `docker run`s alternate, so both see the same machine; figures:
- job, server clock: the job's CreateTime to the ModifyTime of its Completed state;
- job, client-observed: PUT /jobs until GET /jobs/{id} first shows Completed (1 ms polls);
- baseline: wall time of `docker run --rm bacalhau-py/test:busybox true` (the docker CLI).
Target: job p50 (server clock) <= 1.2x the baseline's p50.

Run: `.venv/bin/python -m bench.docker_job [--jobs 30]`; writes bench/results/docker_job.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from bacalhau.executors.docker import TEST_IMAGE
from bench import harness
from bench.harness import serve_node, summary

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.2


def trivial_docker_job() -> dict[str, Any]:
    return {"Type": "batch", "Count": 1, "Tasks": [{
        "Name": "main",
        "Engine": {"Type": "docker", "Params": {"Image": TEST_IMAGE, "Parameters": ["true"]}},
    }]}


async def one_job(session: aiohttp.ClientSession, base: str) -> tuple[float, float]:
    """(server-side, client-side) seconds of one trivial job."""
    t0 = time.perf_counter()
    async with session.put(base, json={"Job": trivial_docker_job()}) as resp:
        job_id = (await resp.json())["JobID"]
    while True:
        async with session.get(f"{base}/{job_id}") as resp:
            job = (await resp.json())["Job"]
        state = job["State"]["StateType"]
        if state in ("Completed", "Failed", "Stopped"):
            break
        await asyncio.sleep(0.001)  # client polling interval
    client = time.perf_counter() - t0
    if state != "Completed":
        raise RuntimeError(f"job {job_id} ended {state}: {job['State']}")
    return (job["ModifyTime"] - job["CreateTime"]) / 1e9, client


def one_docker_run() -> float:
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", TEST_IMAGE, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


async def measure(n: int, port: int, warmup: int) -> tuple[list[float], list[float],
                                                          list[float]]:
    base = f"http://127.0.0.1:{port}/api/v1/orchestrator/jobs"
    server_side, client_side, docker_run = [], [], []
    async with aiohttp.ClientSession() as session:
        for i in range(warmup + n):
            server, client = await one_job(session, base)
            run = await asyncio.to_thread(one_docker_run)
            if i >= warmup:
                server_side.append(server)
                client_side.append(client)
                docker_run.append(run)
    return server_side, client_side, docker_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([str(REPO / "scripts" / "build_test_image.sh")], check=True)
    with harness.scratch_dir(prefix="bench-docker-") as tmp:
        work = Path(tmp)
        with serve_node(work) as port:
            server_side, client_side, docker_run = asyncio.run(
                measure(args.jobs, port, args.warmup))
    rows: dict[str, Any] = {
        "docker job submit->Completed (server clock)": summary(server_side),
        "docker job submit->Completed (client, 1 ms polls)": summary(client_side),
        f"baseline: docker run --rm {TEST_IMAGE} true": summary(docker_run),
    }
    base = rows[f"baseline: docker run --rm {TEST_IMAGE} true"]
    ratio_p50 = rows["docker job submit->Completed (server clock)"]["p50_ms"] / base["p50_ms"]
    ratio_p95 = rows["docker job submit->Completed (server clock)"]["p95_ms"] / base["p95_ms"]
    print(f"{'figure':52} {'p50 ms':>8} {'p95 ms':>8} {'x run p50':>10}")
    for name, s in rows.items():
        print(f"{name:52} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f} "
              f"{s['p50_ms'] / base['p50_ms']:10.2f}")
    verdict = "meets" if ratio_p50 <= TARGET_RATIO else "misses"
    print(f"ratio job/docker run: p50 {ratio_p50:.2f}x, p95 {ratio_p95:.2f}x "
          f"({verdict} the {TARGET_RATIO}x target)")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "docker_job.json"
    out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "settings": {"jobs": args.jobs, "warmup": args.warmup, "image": TEST_IMAGE,
                     "job": trivial_docker_job()},
        "summary": rows,
        "ratio": {"p50": ratio_p50, "p95": ratio_p95, "target": TARGET_RATIO},
        "samples_ms": {"server": [x * 1e3 for x in server_side],
                       "client": [x * 1e3 for x in client_side],
                       "docker_run": [x * 1e3 for x in docker_run]},
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
