"""Scenario `throughput`: N trivial WASM jobs submitted by C concurrent submitters (open
loop: each submitter sends its next job as soon as the last PUT answered) to 1 requester +
2 compute nodes, each its own `bacalhau serve` process over libp2p on this machine.

Figures: completed jobs/s (first submit to the last job's Completed ModifyTime, server
clock, same machine), submit latency under load (PUT round trip), CPU seconds per job (user +
system of the three node processes over the run, from /proc), and counted costs (`counts`):
SQLite commits, transport messages and scheduler evaluations per job over the run, files and
folders created per execution of a batch of noop-published jobs after it. Completion is read
by walking the submitted jobs in order with one GET each (a job not yet done is asked again
50 ms later).
Baselines in the same run: the same module in a tight wasmtime loop (compiled once, new
Store + WASI per run, one thread: the jobs/s ceiling of one core) and Slurm on this machine
(`sbatch --wrap true`, see bench/slurm.py).
Targets (issue 15): jobs/s >= 5x Slurm's and >= 0.3x the wasmtime loop's.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import aiohttp

from bench import counts, harness, report, slurm
from bench import pyspy as py_spy
from bench.cluster import cluster
from bench.harness import summary
from bench.trivial_job import bare_put_baseline, bare_wasmtime_baseline
from tests.jobspecs import wordcount_job

TARGET_VS_SLURM = 5.0
TARGET_VS_WASMTIME = 0.3
TARGET_COMMITS = 3.0
TARGET_MESSAGES = 4.0
TARGET_FILES = 4.0
COUNT = "a count (ratio = the count)"
QUEUE_TIMEOUT = 3600
"""Seconds each job may wait for a node with room: the submitters outrun 2 nodes (open loop),
so, as a user sending thousands of jobs would, the jobs say they may queue."""


async def submit_all(url: str, n: int, concurrency: int, publisher: str = "local"
                     ) -> tuple[list[str], list[float], list[float]]:
    """(job ids in submit order, submit start times (epoch s), PUT latencies (s))."""
    base = f"{url}/api/v1/orchestrator/jobs"
    ids: list[str] = [""] * n
    starts: list[float] = [0.0] * n
    latency: list[float] = [0.0] * n
    counter = iter(range(n))
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def submitter() -> None:
            for i in counter:
                body = {"Job": wordcount_job(f"job {i}\n", publisher=publisher,
                                             queue_timeout=QUEUE_TIMEOUT)}
                starts[i], t0 = time.time(), time.perf_counter()
                async with session.put(base, json=body) as resp:
                    answer = await resp.json()
                latency[i] = time.perf_counter() - t0
                if resp.status != 200:
                    raise RuntimeError(f"submit failed: {resp.status} {answer}")
                ids[i] = answer["JobID"]

        await asyncio.gather(*(submitter() for _ in range(concurrency)))
    return ids, starts, latency


async def completions(url: str, ids: list[str], timeout: float,
                      poll: float = 0.05) -> dict[str, Any]:
    """Completed ModifyTime (epoch s) of every job, waiting for each in submit order."""
    base = f"{url}/api/v1/orchestrator/jobs"
    done: list[float] = []
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for job_id in ids:
            while True:
                async with session.get(f"{base}/{job_id}") as resp:
                    job = (await resp.json())["Job"]
                state = job["State"]["StateType"]
                if state in ("Completed", "Failed", "Stopped"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} still {state} after {timeout:g}s")
                await asyncio.sleep(poll)  # poll interval of the completion walk
            if state == "Completed":
                done.append(job["ModifyTime"] / 1e9)
            else:
                failed.append(f"{job_id}: {state} {job['State'].get('Message', '')}")
    return {"done": done, "failed": failed}


def wasmtime_loop(work: Path, runs: int) -> tuple[float, list[float]]:
    samples = bare_wasmtime_baseline(runs, work)
    return len(samples) / sum(samples), samples


def run(quick: bool, out_dir: Path, jobs: int | None = None, concurrency: int = 32,
        slurm_jobs: int | None = None, with_slurm: bool = True,
        profile: bool = False) -> dict[str, Any]:
    n = jobs or (300 if quick else 10_000)
    n_slurm = slurm_jobs or (100 if quick else 1000)
    started = time.monotonic()
    with harness.scratch_dir(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        with cluster(work / "stack", computes=2) as net:
            asyncio.run(submit_all(net.api_url, 20, min(concurrency, 8)))  # warm-up
            warm_ids = asyncio.run(submit_all(net.api_url, 1, 1))[0]
            asyncio.run(completions(net.api_url, warm_ids, 120))
            counters0 = counts.node_counters(net)
            cpu0 = net.cpu_by_process()
            t_begin = time.time()
            with (py_spy.record(net.pids, out_dir, "throughput") if profile
                  else nullcontext({})) as prof:
                ids, starts, submit_lat = asyncio.run(submit_all(net.api_url, n, concurrency))
                result = asyncio.run(completions(net.api_url, ids, max(600.0, n * 0.5)))
            cpu_by = {k: v - cpu0[k] for k, v in net.cpu_by_process().items()}
            cpu = sum(cpu_by.values())
            counted = counts.per_job(counters0, counts.node_counters(net), n)
            files = counts.files_per_execution(net, min(n, 30 if quick else 200), submit_all,
                                               completions)
        ceiling, wasm = wasmtime_loop(work, 300 if quick else 3000)
        put = asyncio.run(bare_put_baseline(200))
    done = result["done"]
    if result["failed"]:
        raise RuntimeError(f"{len(result['failed'])} of {n} jobs did not complete, e.g. "
                           f"{result['failed'][:3]}")
    span = max(done) - t_begin
    jobs_per_s = len(done) / span
    slurm_result = (slurm.throughput(n_slurm, concurrency) if with_slurm
                    else {"reason": "skipped (--no-slurm)"})
    sub = summary(submit_lat)
    s = {"jobs_per_s": jobs_per_s, "seconds": span, "completed": len(done),
         "cpu_s_per_job": cpu / n, "cpu_s_total": cpu,
         "cpu_ms_per_job_by_process": {k: v / n * 1e3 for k, v in cpu_by.items()},
         "submit_latency": sub,
         "wasmtime_loop_jobs_per_s": ceiling, "wasmtime_run": summary(wasm),
         "put": summary(put), "profile": prof, "counted": counted, "files": files,
         "slurm": {k: v for k, v in slurm_result.items() if k != "sbatch_latency_s"}}
    slurm_jobs_per_s = slurm_result.get("jobs_per_s")
    rows = [
        report.Row(f"jobs/s completed ({n} jobs, C={concurrency}, 2 compute nodes)",
                   jobs_per_s, "jobs/s", "Slurm sbatch --wrap true, same C",
                   slurm_jobs_per_s, {"min": TARGET_VS_SLURM},
                   note=slurm_result.get("reason", "")),
        report.Row(f"jobs/s completed ({n} jobs, C={concurrency}, 2 compute nodes)",
                   jobs_per_s, "jobs/s", "tight wasmtime loop, 1 thread", ceiling,
                   {"min": TARGET_VS_WASMTIME}),
        report.Row("submit latency under load p50", sub["p50_ms"], "ms",
                   "bare aiohttp PUT round trip p50 (idle)", s["put"]["p50_ms"]),
        report.Row("submit latency under load p95", sub["p95_ms"], "ms",
                   "bare aiohttp PUT round trip p50 (idle)", s["put"]["p50_ms"]),
        report.Row("CPU per job (3 node processes)", cpu / n * 1e3, "ms",
                   "wasmtime run of the module (wall) p50", s["wasmtime_run"]["p50_ms"]),
        # counts: the "baseline" is 1, so that the ratio is the count and the target applies
        report.Row(f"SQLite commits per job (counted, C={concurrency})",
                   counted["commits_per_job"], "", COUNT, 1.0, {"max": TARGET_COMMITS}),
        report.Row(f"cross-process messages per job (counted, C={concurrency})",
                   counted["messages_per_job"], "", COUNT, 1.0, {"max": TARGET_MESSAGES}),
        report.Row(f"scheduler evaluations per job (counted, C={concurrency})",
                   counted["evaluations_per_job"], "", COUNT, 1.0),
        report.Row("files and folders created per noop execution (inotify)",
                   files["files_and_folders_per_execution"], "", COUNT, 1.0,
                   {"max": TARGET_FILES}),
    ]
    t0 = t_begin
    completions_t = sorted(d - t0 for d in done)
    report.plot_timeline(out_dir / "throughput.png",
                         f"Throughput: {n} trivial WASM jobs, C={concurrency}",
                         {"completed jobs/s": report.rate_timeline(completions_t),
                          "submitted jobs/s": report.rate_timeline(
                              sorted(x - t0 for x in starts))}, "jobs per second")
    report.plot_latency(out_dir / "throughput_submit.png", "Submit latency under load",
                        {"PUT under load": [x * 1e3 for x in submit_lat],
                         "bare aiohttp PUT (idle)": [x * 1e3 for x in put]})
    return report.result(
        "throughput",
        settings={"jobs": n, "concurrency": concurrency, "quick": quick,
                  "topology": "1 requester + 2 compute nodes, separate `bacalhau serve` "
                              "processes over libp2p on 127.0.0.1, log level warning",
                  "submission": "open loop: C submitters, next PUT when the last answered",
                  "slurm_jobs": n_slurm, "wasmtime_loop_runs": len(wasm)},
        samples={"unit": "s", "submit_latency_s": submit_lat,
                 "completed_at_s": completions_t,
                 "submitted_at_s": [x - t0 for x in starts],
                 "wasmtime_run_s": wasm, "put_s": put,
                 "slurm_sbatch_latency_s": slurm_result.get("sbatch_latency_s", [])},
        summary=s, rows=rows, seconds=time.monotonic() - started)
