"""`python -m bench metrics`: what the Prometheus metrics cost on the hot paths.

- API request latency with the request-timing middleware beside the same app without it
  (two in-process apps on loopback, the same client, rounds interleaved so that machine noise
  hits both alike): target ratio <= 1.10.
- The hooks alone per call (`observe_request`, `plan_applied` of a plan that ends a job)
  beside the whole request without metrics: the share of a request they take.
- What one scrape reads from a store holding N jobs (on a worker thread, off the event
  loop), beside listing 100 of them (what a user's `job list` costs the store).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import timeit
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from bench import harness, report


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    from bacalhau.api.app import start_api

    runner, port = await start_api(app, "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{port}"


async def _request_latencies(rounds: int, per_round: int) -> dict[str, list[float]]:
    from bacalhau.api.app import create_app
    from bacalhau.config import Config
    from bacalhau.metrics import NodeMetrics
    from bacalhau.models import NodeInfo

    def app(metrics: NodeMetrics | None) -> web.Application:
        return create_app(None, node_info_provider=lambda: NodeInfo(node_id="n-bench"),
                          config=Config({"API": {"RateLimit": {"RequestsPerSecond": 0}}}),
                          metrics=metrics)

    plain_runner, plain_url = await _serve(app(None))
    timed_runner, timed_url = await _serve(app(NodeMetrics("n-bench")))
    samples: dict[str, list[float]] = {"with metrics": [], "without metrics": []}
    try:
        async with ClientSession() as session:
            for round_index in range(rounds):
                order = [("with metrics", timed_url), ("without metrics", plain_url)]
                if round_index % 2:
                    order.reverse()
                for name, url in order:
                    for _ in range(per_round):
                        start = time.perf_counter()
                        async with session.get(url + "/api/v1/agent/alive") as resp:
                            await resp.read()
                        samples[name].append(time.perf_counter() - start)
    finally:
        await plain_runner.cleanup()
        await timed_runner.cleanup()
    return samples


def _hook_cost_us(calls: int) -> dict[str, float]:
    from bacalhau.metrics import NodeMetrics
    from bacalhau.models import Evaluation, Job, JobState, JobStateType
    from bacalhau.models.timeutil import now_ns
    from bacalhau.orchestrator.plan import Plan

    metrics = NodeMetrics("n-bench")
    now = now_ns()
    job = Job(id="j-bench", type="batch", state=JobState(JobStateType.RUNNING.value),
              create_time=now)
    evaluation = Evaluation(id="ev", job_id=job.id, type="batch", triggered_by="exec-update",
                            create_time=now)
    plan = Plan(evaluation=evaluation, job=job, new_state=JobState(
        JobStateType.COMPLETED.value))
    routes = ["/api/v1/orchestrator/jobs/{id}", "/api/v1/orchestrator/jobs",
              "/api/v1/agent/alive"]

    def observe() -> None:
        for route in routes:
            metrics.observe_request("GET", route, 200, 0.0012)

    return {
        "observe_request": timeit.timeit(observe, number=calls) / (calls * len(routes)) * 1e6,
        "plan_applied": timeit.timeit(lambda: metrics.plan_applied(plan), number=calls)
        / calls * 1e6,
    }


def _store_counts_vs_list(work: Path, jobs: int, repeats: int) -> dict[str, list[float]]:
    """What a scrape reads from a store holding `jobs` jobs (jobs by type and state, and
    executions by state, on its read-only connection), beside listing 100 jobs."""
    from bacalhau.metrics.storestats import (
        JOBS_BY_TYPE_AND_STATE,
        ORCHESTRATOR_EXECUTIONS,
        StoreReader,
    )
    from bacalhau.models import Job, JobState, JobStateType, Task
    from bacalhau.store.jobstore import JobStore

    store = JobStore(work / "jobs.db")
    with store.transaction():
        for i in range(jobs):
            job = Job(id=f"j-{i:08d}", name=f"j-{i:08d}", type="batch",
                      state=JobState(JobStateType.COMPLETED.value), tasks=[Task(name="main")])
            store.create_or_update_job(job)
    reader = StoreReader(store.path)
    counts: list[float] = []
    listing: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        reader.rows(JOBS_BY_TYPE_AND_STATE)
        reader.rows(ORCHESTRATOR_EXECUTIONS)
        counts.append(time.perf_counter() - start)
        start = time.perf_counter()
        store.list_jobs(None, limit=100)
        listing.append(time.perf_counter() - start)
    reader.close()
    store.close()
    return {"store counts": counts, "list 100 jobs": listing}


def run(quick: bool, out_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    rounds, per_round = (4, 200) if quick else (10, 500)
    jobs = 2000 if quick else 20000
    latencies = asyncio.run(_request_latencies(rounds, per_round))
    hooks = _hook_cost_us(20000 if quick else 200000)
    with harness.scratch_dir(prefix="bench-metrics-") as tmp:
        scrapes = _store_counts_vs_list(Path(tmp), jobs, 5 if quick else 20)
    p50 = {k: statistics.median(v) * 1e3 for k, v in latencies.items()}
    scrape_p50 = {k: statistics.median(v) * 1e3 for k, v in scrapes.items()}
    rows = [
        report.Row("GET /agent/alive p50, with request timing", p50["with metrics"], "ms",
                   "the same app without metrics", p50["without metrics"], {"max": 1.10}),
        report.Row("metrics hook per API request (observe_request)",
                   hooks["observe_request"] / 1e3, "ms", "GET /agent/alive p50 without metrics",
                   p50["without metrics"]),
        report.Row("metrics hook per applied plan (plan_applied, a job ending)",
                   hooks["plan_applied"] / 1e3, "ms", "GET /agent/alive p50 without metrics",
                   p50["without metrics"]),
        report.Row(f"store counts of one scrape (worker thread), {jobs} jobs stored",
                   scrape_p50["store counts"], "ms",
                   "store.list_jobs(limit=100)", scrape_p50["list 100 jobs"]),
    ]
    ms = {k: [x * 1e3 for x in v] for k, v in latencies.items()}
    report.plot_latency(out_dir / "metrics.png", "API request with and without metrics", ms)
    return report.result(
        "metrics",
        settings={"quick": quick, "rounds": rounds, "requests_per_round": per_round,
                  "jobs_stored": jobs},
        samples={"unit": "ms", **ms, **{f"scrape: {k}": [x * 1e3 for x in v]
                                        for k, v in scrapes.items()}},
        summary={"request_p50_ms": p50, "hook_us": hooks, "scrape_p50_ms": scrape_p50},
        rows=rows, seconds=time.monotonic() - started)
