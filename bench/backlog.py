"""Scenario `backlog`: does the requester stay fast with a large job store?

Two networks of 1 requester + 1 compute node each (separate `bacalhau serve` processes over
libp2p). Each first runs 100 jobs through the API; then, with its nodes stopped, the second
network's job store is filled to `--backlog` jobs (default 100k) directly through the store
API (`JobStore.create_or_update_job` + `update_job_state`, 2000 jobs per transaction: real
stored jobs, copies of a job that ran, each Completed, listed by the API). Both networks
start again (fresh processes) and take turns: submit p50 (PUT round trip of a trivial WASM
job; each job runs to completion, untimed, before the next PUT) and `job list --limit 100`
p50 (the request the CLI sends, GET /jobs?limit=100, over HTTP, without the CLI's process
start); then each requester's RSS (VmRSS) is read, after the same work in both.
Targets: submit p50 at 100k stored <= 1.5x at 100; RSS growth per stored job <= 2x the
average stored job JSON size.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness, report
from bench.cluster import cluster, rss_bytes
from bench.harness import summary
from bench.throughput import completions, submit_all
from tests.jobspecs import wordcount_job

TARGET_SUBMIT = 1.5
TARGET_RSS = 2.0


async def measure(urls: dict[str, str], samples: int) -> dict[str, dict[str, list[float]]]:
    """Per network: submit latency (one at a time, each job run to completion before the
    next PUT), then list latency; the networks take turns, so both see the same machine."""
    out: dict[str, dict[str, list[float]]] = {k: {"submit": [], "list": []} for k in urls}
    async with aiohttp.ClientSession() as session:
        for i in range(samples):
            for label, url in urls.items():
                t0 = time.perf_counter()
                async with session.put(f"{url}/api/v1/orchestrator/jobs",
                                       json={"Job": wordcount_job(f"b {i}\n")}) as resp:
                    job_id = (await resp.json())["JobID"]
                out[label]["submit"].append(time.perf_counter() - t0)
                # untimed: the next PUT meets an idle network
                await completions(url, [job_id], 60, poll=0.002)
        for _ in range(samples):
            for label, url in urls.items():
                t0 = time.perf_counter()
                async with session.get(f"{url}/api/v1/orchestrator/jobs",
                                       params={"limit": "100"}) as resp:
                    items = (await resp.json())["Items"]
                out[label]["list"].append(time.perf_counter() - t0)
                if len(items) != 100:
                    raise RuntimeError(f"job list returned {len(items)} jobs, not 100")
    return out


def stored(db: Path) -> tuple[int, float]:
    """(jobs stored, mean size of a stored job's JSON in bytes)."""
    with sqlite3.connect(db) as conn:
        count, size = conn.execute("SELECT count(*), avg(length(data)) FROM jobs").fetchone()
    return int(count), float(size)


def fill(db: Path, total: int, batch: int = 2000) -> float:
    """Adds copies of the newest stored job (Completed) until `total` jobs are stored;
    returns the seconds it took."""
    from bacalhau.models import JobState, JobStateType
    from bacalhau.models.ids import new_job_id
    from bacalhau.store.jobstore import JobStore

    t0 = time.perf_counter()
    store = JobStore(db)
    try:
        template = store.list_jobs(limit=1, reverse=True)[0][0]
        have = stored(db)[0]
        completed = JobState(JobStateType.COMPLETED.value)
        while have < total:
            with store.transaction():
                for _ in range(min(batch, total - have)):
                    job = template.copy()
                    job.id = new_job_id()
                    job.name = job.id
                    saved, _ = store.create_or_update_job(job)
                    store.update_job_state(saved.id, completed, expected_revision=saved.revision)
                    have += 1
    finally:
        store.close()
    return time.perf_counter() - t0


def run(quick: bool, out_dir: Path, backlog: int | None = None,
        samples: int | None = None) -> dict[str, Any]:
    big = backlog or (10_000 if quick else 100_000)
    k = samples or (50 if quick else 200)
    started = time.monotonic()
    rounds: dict[str, dict[str, Any]] = {}
    with harness.scratch_dir(prefix="bench-backlog-") as tmp:
        bases = {label: Path(tmp) / label for label in ("small", "big")}
        dbs = {label: b / "orchestrator-0" / "orchestrator" / "jobs.db"
               for label, b in bases.items()}
        for base in bases.values():  # ~100 jobs that ran, in each store
            with cluster(base, computes=1) as net:
                ids = asyncio.run(submit_all(net.api_url, 100, 8))[0]
                asyncio.run(completions(net.api_url, ids, 300))
        fill_s = fill(dbs["big"], big)
        with cluster(bases["small"], computes=1) as small_net, \
                cluster(bases["big"], computes=1) as big_net:
            nets = {"small": small_net, "big": big_net}
            before = {label: stored(db)[0] for label, db in dbs.items()}
            urls = {label: net.api_url for label, net in nets.items()}
            asyncio.run(measure(urls, 5))  # warm-up
            got = asyncio.run(measure(urls, k))
            for label, net in nets.items():
                count, size = stored(dbs[label])
                rounds[label] = {"stored_before": before[label], "stored_after": count,
                                 "job_json_bytes": size, **got[label],
                                 "rss_bytes": rss_bytes(net.pids["orchestrator-0"])}
    small, large = rounds["small"], rounds["big"]
    s = {label: {"stored": r["stored_before"], "job_json_bytes": r["job_json_bytes"],
                 "rss_mib": r["rss_bytes"] / 2**20, "submit": summary(r["submit"]),
                 "list": summary(r["list"])} for label, r in rounds.items()}
    rss_per_job = ((large["rss_bytes"] - small["rss_bytes"])
                   / (large["stored_after"] - small["stored_after"]))
    s["rss_growth_bytes_per_job"] = rss_per_job
    s["fill_seconds"] = fill_s
    n_small, n_big = small["stored_before"], large["stored_before"]
    rows = [
        report.Row(f"submit p50, {n_big} jobs stored", s["big"]["submit"]["p50_ms"], "ms",
                   f"submit p50, {n_small} jobs stored", s["small"]["submit"]["p50_ms"],
                   {"max": TARGET_SUBMIT}),
        report.Row(f"job list --limit 100 p50, {n_big} stored", s["big"]["list"]["p50_ms"],
                   "ms", f"same, {n_small} stored", s["small"]["list"]["p50_ms"]),
        report.Row("requester RSS growth per stored job", rss_per_job, "B",
                   "mean stored job JSON", large["job_json_bytes"], {"max": TARGET_RSS},
                   note="RSS difference of fresh processes after the same work"),
    ]
    ms = {f"{what} ({r['stored_before']} stored)": [x * 1e3 for x in r[what]]
          for r in rounds.values() for what in ("submit", "list")}
    report.plot_latency(out_dir / "backlog.png",
                        f"Submit and list latency, {n_small} vs {n_big} jobs stored", ms)
    return report.result(
        "backlog",
        settings={"backlog": big, "samples": k, "quick": quick,
                  "fill": "store API in batches of 2000 jobs per transaction, copies of a "
                          "job that ran (Completed), with the nodes stopped",
                  "list": "GET /api/v1/orchestrator/jobs?limit=100 (what `job list --limit "
                          "100` sends), over HTTP, without the CLI process start",
                  "topology": "1 requester + 1 compute node, separate processes over libp2p"},
        samples={"unit": "s", **{f"{label}_{what}_s": r[what] for label, r in rounds.items()
                                 for what in ("submit", "list")},
                 "rss_bytes": {label: r["rss_bytes"] for label, r in rounds.items()}},
        summary=s, rows=rows, seconds=time.monotonic() - started)
