"""Scenario `overload`: submit latency under 2x overload, with backpressure (issue 15, item 6).

1 requester + 2 compute nodes (separate `bacalhau serve` processes, bench/cluster.py) with a
small evaluation queue (`Orchestrator.EvaluationBroker.MaxQueued`, default here 100; the
node's default is 10000, which 2x overload of this machine would take minutes to fill). The
jobs may queue for a node (`QueueTimeout`, as in the throughput scenario): the requester
counts the nodes' load and keeps a job whose nodes are full in its evaluation queue, so that
queue is where an overload's backlog builds and where the limit applies. The scenario samples
the queue (/metrics) and reports its peak, and the accepted jobs' submit->Completed latency
per third of the overload (bounded when the limit works). Two phases on one network:
1. the sustainable rate R: N trivial WASM jobs (noop publisher) from C closed-loop submitters,
   R = completed jobs / (last Completed ModifyTime - first submit);
2. 2x overload: jobs offered open loop at 2R, paced (each PUT sent at its scheduled time,
   whatever the earlier ones are doing) for T seconds. A full queue answers 429 with
   Retry-After (refused: not stored, the client would retry later; here it does not).
   Then every accepted job is awaited: all must complete (nothing lost).

Figures, beside baselines of the same run: the offered rate against R (was it really 2x);
the p99 of all answers in the last third of the overload against the first third (latency
stays bounded: it does not grow with the run); accepted and refused submit latency p50/p99
against a bare aiohttp PUT (bench/trivial_job.py); the share refused; the share of refusals
carrying Retry-After (target: all); accepted jobs not Completed (target 0). The latency is the
PUT round trip from the moment it was sent; how far sends fell behind their schedule (the
load generator's own lag) is in the summary.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness, report
from bench.cluster import cluster
from bench.harness import summary
from bench.throughput import QUEUE_TIMEOUT, completions
from bench.trivial_job import bare_put_baseline
from tests.jobspecs import wordcount_job

COUNT = "a count (ratio = the count)"
SHARE = "a share (ratio = the share)"
TARGET_GROWTH = 2.0
"""p99 of the last third of the overload at most this many times the first third's."""
TARGET_OFFERED = 1.8
"""The offered rate must reach this many times R for the run to count as 2x overload."""


async def closed_loop(url: str, n: int, concurrency: int) -> tuple[list[str], list[float],
                                                                    int]:
    """(ids, PUT latencies, 429s) of `n` jobs from `concurrency` closed-loop submitters; a 429
    is sent again after its Retry-After."""
    base = f"{url}/api/v1/orchestrator/jobs"
    ids: list[str] = [""] * n
    latency: list[float] = []
    refused = 0
    counter = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)
                                     ) as session:
        async def submitter() -> None:
            nonlocal refused
            for i in counter:
                body = {"Job": wordcount_job(f"job {i}\n", publisher="noop",
                                             queue_timeout=QUEUE_TIMEOUT)}
                while True:
                    t0 = time.perf_counter()
                    async with session.put(base, json=body) as resp:
                        answer = await resp.json()
                        retry = float(resp.headers.get("Retry-After", "1"))
                    latency.append(time.perf_counter() - t0)
                    if resp.status == 200:
                        ids[i] = answer["JobID"]
                        break
                    if resp.status != 429:
                        raise RuntimeError(f"submit failed: {resp.status} {answer}")
                    refused += 1
                    await asyncio.sleep(retry)  # the server's Retry-After

        await asyncio.gather(*(submitter() for _ in range(concurrency)))
    return ids, latency, refused


async def open_loop(url: str, rate: float, seconds: float) -> list[dict[str, Any]]:
    """Jobs offered at `rate`/s for `seconds`, each PUT sent at its scheduled time; one
    record per submit: scheduled/sent offsets (s), latency (s), status, Retry-After, job id."""
    base = f"{url}/api/v1/orchestrator/jobs"
    n = max(1, int(rate * seconds))
    records: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024)) as session:
        async def one(i: int, scheduled: float, t_zero: float) -> None:
            body = {"Job": wordcount_job(f"overload {i}\n", publisher="noop",
                                         queue_timeout=QUEUE_TIMEOUT)}
            sent = time.perf_counter()
            rec: dict[str, Any] = {"i": i, "scheduled_s": scheduled, "sent_s": sent - t_zero,
                                   "sent_epoch": time.time()}
            try:
                async with session.put(base, json=body) as resp:
                    answer = await resp.json(content_type=None) or {}
                    rec["status"] = resp.status
                    rec["retry_after"] = resp.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                answer, rec["status"], rec["error"] = {}, 0, repr(exc)
            rec["latency_s"] = time.perf_counter() - sent
            if rec["status"] == 200:
                rec["job_id"] = answer["JobID"]
            elif rec["status"] == 429:
                rec["config_key"] = (answer.get("Details") or {}).get("ConfigKey", "")
            records.append(rec)

        tasks = []
        t_zero = time.perf_counter()
        for i in range(n):
            scheduled = i / rate
            delay = t_zero + scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing: the next submit's scheduled time
            tasks.append(asyncio.create_task(one(i, scheduled, t_zero)))
        await asyncio.gather(*tasks)
    return sorted(records, key=lambda r: r["i"])


QUEUE_LINE = re.compile(r'^bacalhau_evaluation_queue\{state="(\w+)"\} ([0-9.e+]+)$', re.M)
ADMIT_STATES = ("ready", "waiting", "delayed")
"""The broker states the submit admission counts against MaxQueued (orchestrator/service.py)."""


class QueueSampler:
    """Samples the requester's evaluation queue (its /metrics) every `interval` seconds in a
    thread, while the overload runs: (seconds since start, evaluations counted by admission)."""

    def __init__(self, url: str, interval: float = 0.25) -> None:
        self.url, self.interval = f"{url}/metrics", interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    text = resp.read().decode()
                by_state = {m[1]: float(m[2]) for m in QUEUE_LINE.finditer(text)}
                self.samples.append((time.monotonic() - self._t0,
                                     sum(by_state.get(k, 0.0) for k in ADMIT_STATES)))
            except OSError:
                pass
            self._stop.wait(self.interval)  # sampling interval, until stopped


def thirds(records: list[dict[str, Any]], seconds: float, key: str = "latency_s"
           ) -> list[list[float]]:
    """`key` (answer latency by default) of the answered submits scheduled in each third of
    the run."""
    parts: list[list[float]] = [[], [], []]
    for r in records:
        if r["status"] and key in r:
            parts[min(2, int(r["scheduled_s"] / seconds * 3))].append(r[key])
    return parts


def per_second_p99(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(second, p99 of the values of the points in that second) from (t, value) points."""
    buckets: dict[int, list[float]] = {}
    for t, value in points:
        buckets.setdefault(int(t), []).append(value)
    return [(k + 0.5, summary([v / 1e3 for v in vs])["p99_ms"])
            for k, vs in sorted(buckets.items())]


def run(quick: bool, out_dir: Path, jobs: int | None = None, concurrency: int = 32,
        seconds: float | None = None, max_queued: int = 100) -> dict[str, Any]:
    n = jobs or (300 if quick else 2000)
    duration = seconds or (15.0 if quick else 60.0)
    started = time.monotonic()
    overrides = [f"Orchestrator.EvaluationBroker.MaxQueued={max_queued}"]
    with harness.scratch_dir(prefix="bench-overload-") as tmp, \
            cluster(Path(tmp) / "stack", computes=2, overrides=overrides) as net:
        warm = asyncio.run(closed_loop(net.api_url, 20, 8))[0]
        asyncio.run(completions(net.api_url, warm, 120))
        t_begin = time.time()
        ids, base_lat, base_refused = asyncio.run(closed_loop(net.api_url, n, concurrency))
        result = asyncio.run(completions(net.api_url, ids, max(300.0, n * 0.5)))
        if result["failed"]:
            raise RuntimeError(f"jobs failed while measuring R: {result['failed'][:3]}")
        rate = len(result["done"]) / (max(result["done"]) - t_begin)
        t_over = time.time()
        with QueueSampler(net.api_url) as queue:
            records = asyncio.run(open_loop(net.api_url, 2 * rate, duration))
        offered_span = time.time() - t_over
        accepted_ids = [r["job_id"] for r in records if r["status"] == 200]
        try:
            done = asyncio.run(completions(net.api_url, accepted_ids,
                                           max(300.0, len(accepted_ids) * 0.5)))
            timed_out = ""
        except TimeoutError as exc:
            done, timed_out = {"done": [], "failed": []}, str(exc)
    put = asyncio.run(bare_put_baseline(200))
    accepted = [r for r in records if r["status"] == 200]
    refused = [r for r in records if r["status"] == 429]
    other = [r for r in records if r["status"] not in (200, 429)]
    lost = len(accepted) - len(done["done"])
    if not done["failed"] and not lost:  # done["done"] is in the order of accepted_ids
        for r, t_done in zip(accepted, done["done"], strict=True):
            r["job_s"] = t_done - r["sent_epoch"]
    job_parts = [summary(p or [0.0]) for p in thirds(records, duration, "job_s")]
    with_retry = sum(1 for r in refused if r.get("retry_after"))
    parts = thirds(records, duration)
    first, last = summary(parts[0] or [0.0]), summary(parts[2] or [0.0])
    acc_sum = summary([r["latency_s"] for r in accepted] or [0.0])
    ref_sum = summary([r["latency_s"] for r in refused] or [float("nan")])
    lag = summary([max(0.0, r["sent_s"] - r["scheduled_s"]) for r in records])
    accepted_done = sorted(done["done"])
    accepted_rate = (len(accepted_done) / (accepted_done[-1] - t_over)
                     if accepted_done else 0.0)
    put_sum = summary(put)
    s = {"sustainable_jobs_per_s": rate, "offered_jobs_per_s": len(records) / offered_span,
         "offered": len(records), "accepted": len(accepted), "refused_429": len(refused),
         "other_answers": len(other), "other_examples": other[:5],
         "refused_share": len(refused) / len(records),
         "refused_with_retry_after": with_retry,
         "refused_config_keys": sorted({r.get("config_key", "") for r in refused}),
         "accepted_completed": len(done["done"]), "accepted_failed": done["failed"][:10],
         "accepted_lost": lost, "completion_timeout": timed_out,
         "accepted_completed_per_s": accepted_rate,
         "accepted_latency": acc_sum, "refused_latency": ref_sum,
         "first_third": first, "middle_third": summary(parts[1] or [0.0]), "last_third": last,
         "job_latency_by_third": job_parts,
         "send_lag_behind_schedule": lag, "phase1_submit_latency": summary(base_lat),
         "phase1_refused_429": base_refused, "put": put_sum,
         "evaluation_queue_max": max((q for _, q in queue.samples), default=None),
         "evaluation_queue_samples": len(queue.samples), "max_queued": max_queued}
    base = "bare aiohttp PUT round trip p50 (idle)"
    rows = [
        report.Row("offered rate under overload (open loop, paced)", s["offered_jobs_per_s"],
                   "jobs/s", f"sustainable rate R ({n} jobs, C={concurrency})", rate,
                   {"min": TARGET_OFFERED}),
        report.Row("accepted jobs completed/s under 2x overload", accepted_rate, "jobs/s",
                   "sustainable rate R", rate),
        report.Row("submit answer p99, last third of the overload", last["p99_ms"], "ms",
                   "the same, first third", first["p99_ms"], {"max": TARGET_GROWTH}),
        report.Row("accepted job submit->Completed p50, last third of the overload",
                   job_parts[2]["p50_ms"], "ms", "the same, first third", job_parts[0]["p50_ms"],
                   note="grows with the run when the backlog is not bounded"),
        report.Row("most evaluations queued during the overload (requester /metrics)",
                   s["evaluation_queue_max"] or 0.0, "", "Orchestrator.EvaluationBroker.MaxQueued",
                   float(max_queued)),
        report.Row("accepted submit p50 under 2x overload", acc_sum["p50_ms"], "ms", base,
                   put_sum["p50_ms"]),
        report.Row("accepted submit p99 under 2x overload", acc_sum["p99_ms"], "ms", base,
                   put_sum["p50_ms"]),
        report.Row("refused (429) submit p50 under 2x overload", ref_sum["p50_ms"], "ms", base,
                   put_sum["p50_ms"]),
        report.Row("refused (429) submit p99 under 2x overload", ref_sum["p99_ms"], "ms", base,
                   put_sum["p50_ms"]),
        report.Row("share of submits refused with 429", s["refused_share"], "", SHARE, 1.0),
        report.Row("share of 429s with Retry-After", with_retry / len(refused) if refused
                   else float("nan"), "", SHARE, 1.0, {"min": 1.0},
                   note="" if refused else "no submit was refused: the limit was not reached"),
        report.Row("accepted jobs not Completed (lost)", float(lost), "", COUNT, 1.0,
                   {"max": 0.0}),
    ]
    t_lat = [(r["scheduled_s"], r["latency_s"] * 1e3) for r in records if r["status"]]
    report.plot_timeline(out_dir / "overload_timeline.png",
                         f"2x overload ({2 * rate:.0f} jobs/s offered): answers per second",
                         {"answer p99 (ms)": per_second_p99(t_lat),
                          "evaluations queued": queue.samples}, "ms / evaluations")
    report.plot_latency(out_dir / "overload.png", "Submit latency under 2x overload",
                        {"accepted (200)": [r["latency_s"] * 1e3 for r in accepted],
                         "refused (429)": [r["latency_s"] * 1e3 for r in refused],
                         "bare aiohttp PUT (idle)": [x * 1e3 for x in put]})
    return report.result(
        "overload",
        settings={"jobs_for_r": n, "concurrency_for_r": concurrency, "overload_s": duration,
                  "offered_rate": 2 * rate, "quick": quick,
                  "overrides": overrides,
                  "topology": "1 requester + 2 compute nodes, separate `bacalhau serve` "
                              "processes over libp2p on 127.0.0.1, log level warning",
                  "submission": "phase 1 closed loop (R); phase 2 open loop at 2R, each PUT "
                                "at its scheduled time, 429s not retried"},
        samples={"unit": "s", "overload": records, "evaluation_queue": queue.samples,
                 "answer_latency_by_time": t_lat,
                 "phase1_submit_latency_s": base_lat, "put_s": put},
        summary=s, rows=rows, seconds=time.monotonic() - started)
