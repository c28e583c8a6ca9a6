"""Scenario `crash`: nothing lost, nothing doubled when a node is killed -9 mid-run (issue 15).

Two runs, each of N trivial WASM jobs (noop publisher) submitted by C concurrent submitters to
1 requester + 2 compute nodes (separate `bacalhau serve` processes, bench/restartable.py):
- `requester`: the requester is killed (SIGKILL) once a random share (20-60%) of the submits
  has been answered (`--kill-during submit`: submits in flight get no answer), and started
  again at once on the same data dir and config;
- `compute-0`: the same with compute-0, killed once a random share (20-60%) of the jobs has
  Completed (`--kill-during run`, read from the requester's /metrics: the submits are over
  by then on this machine, and its queue and runs are full). Its running batch executions
  fail on its restart and are rescheduled: that is expected; what counts is one *Completed*
  execution per job.

Every submit carries a unique job name (`bench-crash-<run>-<i>`) and the run's label. A submit
that got no answer (connection refused or reset, timeout, 5xx) is sent again, the same body,
until it is answered: 200 gives the job id; 409 "no changes" means an earlier unanswered try
stored it (the name is the idempotency key); 429 waits its Retry-After. A job id is known
only from an answer; after the run, `job list` by the run's label finds every stored job,
the unanswered ones included. Checks, per submit: exactly one stored job (doubled if more,
lost if none); the job Completed; exactly one Completed execution (GET .../executions).

Figures (targets 0): lost and doubled counts; recovery: kill to the restarted process up
(run file, and API for the requester) beside its first start in the same run, and the longest
gap between job completions after the kill beside the longest before it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness, report, restartable
from bench.throughput import QUEUE_TIMEOUT
from tests.jobspecs import wordcount_job

COUNT = "a count (ratio = the count)"
TERMINAL = ("Completed", "Failed", "Stopped")
COMPLETED_EXECUTION = (9, "Completed")  # ComputeState.StateType: the API answers the number
LABEL = "bench-crash"
COMPLETED_GAUGE = re.compile(r'^bacalhau_jobs\{[^}]*state="Completed"[^}]*\} ([0-9.e+]+)$',
                             re.M)
KILL_DURING = {"requester": "submit"}
"""When each victim is killed by default ("submit" or "run"); any other: "run"."""


class Submits:
    """What the submitters learnt, per submit index."""

    def __init__(self, n: int) -> None:
        self.ids: list[str] = [""] * n
        self.conflict: set[int] = set()  # answered 409: stored by an earlier unanswered try
        self.unanswered_tries: dict[int, int] = {}  # index -> tries that got no answer
        self.refused: int = 0  # 429s (waited and sent again)
        self.gave_up: set[int] = set()
        self.accepted = 0
        self.accepted_event = asyncio.Event()
        self.accept_target = n + 1


async def submit_all(url: str, run: str, n: int, concurrency: int, state: Submits,
                     give_up_after: float = 180.0) -> None:
    base = f"{url}/api/v1/orchestrator/jobs"
    counter = iter(range(n))
    timeout = aiohttp.ClientTimeout(total=30)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async def submitter() -> None:
            for i in counter:
                job = wordcount_job(f"job {i}\n", publisher="noop", queue_timeout=QUEUE_TIMEOUT,
                                    name=f"bench-crash-{run}-{i}")
                job["Labels"] = {LABEL: run}
                body = {"Job": job}
                deadline = time.monotonic() + give_up_after
                while True:
                    status, answer, retry = await _put(session, base, body)
                    if status == 200:
                        state.ids[i] = answer["JobID"]
                        break
                    if status == 409:
                        state.conflict.add(i)
                        break
                    if status == 429:
                        state.refused += 1
                        await asyncio.sleep(retry)  # the server's Retry-After
                        continue
                    state.unanswered_tries[i] = state.unanswered_tries.get(i, 0) + 1
                    if time.monotonic() > deadline:
                        state.gave_up.add(i)
                        break
                    await asyncio.sleep(0.1)  # poll until the API answers again (deadline)
                state.accepted += 1
                if state.accepted >= state.accept_target:
                    state.accepted_event.set()

        await asyncio.gather(*(submitter() for _ in range(concurrency)))


async def _put(session: aiohttp.ClientSession, url: str, body: dict[str, Any]
               ) -> tuple[int, dict[str, Any], float]:
    """(status, answer, Retry-After seconds); status 0 when no answer came."""
    try:
        async with session.put(url, json=body) as resp:
            answer = await resp.json(content_type=None)
            if resp.status >= 500:
                return 0, {}, 0.0
            return resp.status, answer or {}, float(resp.headers.get("Retry-After", "1"))
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return 0, {}, 0.0


async def completed_jobs(url: str) -> int:
    """Completed jobs in the requester's store (its /metrics gauge `bacalhau_jobs`)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
            session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return int(sum(float(m[1]) for m in COMPLETED_GAUGE.finditer(text)))


async def kill_and_restart(net: restartable.Network, victim: str, state: Submits,
                           during: str, completed_target: int) -> dict[str, Any]:
    """Waits for the answered count to reach `state.accept_target` (during "submit") or the
    Completed jobs `completed_target` (during "run"), kills `victim` -9 and starts it again;
    times of the kill and of the process being back."""
    completed = 0
    if during == "submit":
        await state.accepted_event.wait()
    else:
        while (completed := await completed_jobs(net.api_url)) < completed_target:
            await asyncio.sleep(0.2)  # poll of the kill moment (the run's own deadline)
    proc = net.procs[victim]
    answered = state.accepted
    killed = time.time()
    await asyncio.to_thread(proc.kill9)
    t0 = time.monotonic()
    await asyncio.to_thread(proc.start, 120.0)
    up = time.monotonic() - t0
    t1 = time.monotonic()
    await asyncio.to_thread(net.wait_connected, 120.0)
    return {"killed_at": killed, "accepted_at_kill": answered, "completed_at_kill": completed,
            "restart_s": up, "kill_to_up_s": time.time() - killed,
            "reconnected_s": time.monotonic() - t1 + up}


async def list_run_jobs(url: str, run: str, page: int = 500) -> list[dict[str, Any]]:
    """Every stored job with the run's label (paged `job list`)."""
    out: list[dict[str, Any]] = []
    token = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        while True:
            params = {"labels": f"{LABEL}={run}", "limit": str(page)}
            if token:
                params = {"next_token": token, "labels": f"{LABEL}={run}"}
            async with session.get(f"{url}/api/v1/orchestrator/jobs", params=params) as resp:
                doc = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"job list failed: {resp.status} {doc}")
            out += doc.get("Items") or []
            token = doc.get("NextToken") or ""
            if not token:
                return out


async def wait_terminal(url: str, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Each job as last seen, walking them in order until terminal or the deadline."""
    base = f"{url}/api/v1/orchestrator/jobs"
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for job_id in ids:
            while True:
                try:
                    async with session.get(f"{base}/{job_id}") as resp:
                        job = (await resp.json())["Job"]
                except (TimeoutError, aiohttp.ClientError, KeyError):
                    job = seen.get(job_id, {"State": {"StateType": "unknown"}})
                seen[job_id] = job
                if job["State"]["StateType"] in TERMINAL or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)  # poll interval of the completion walk (deadline)
    return seen


async def completed_executions(url: str, ids: list[str], concurrency: int = 8
                               ) -> dict[str, tuple[int, int]]:
    """(Completed executions, all executions) per job (GET /jobs/{id}/executions)."""
    base = f"{url}/api/v1/orchestrator/jobs"
    out: dict[str, tuple[int, int]] = {}
    todo = iter(ids)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            for job_id in todo:
                async with session.get(f"{base}/{job_id}/executions") as resp:
                    items = (await resp.json())["Items"] or []
                out[job_id] = (sum(1 for e in items if e["ComputeState"]["StateType"]
                                   in COMPLETED_EXECUTION), len(items))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time between consecutive events in [start, end] (bounds included)."""
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def one_run(work: Path, victim: str, n: int, concurrency: int, seed: int,
            during: str) -> dict[str, Any]:
    rng = random.Random(seed)
    share = rng.uniform(0.2, 0.6)
    run = f"{victim}-{seed}"
    started = time.monotonic()
    with restartable.network(work / victim, computes=2) as net:
        first_start = net.procs[victim].start_s[0]
        state = Submits(n)
        state.accept_target = max(1, int(n * share))
        t_begin = time.time()

        async def drive() -> dict[str, Any]:
            killer = asyncio.create_task(kill_and_restart(
                net, victim, state, during, max(1, int(n * share))))
            await submit_all(net.api_url, run, n, concurrency, state)
            return await killer

        crash = asyncio.run(drive())
        t_submitted = time.time()
        listed = asyncio.run(list_run_jobs(net.api_url, run))
        ids = sorted({j["ID"] for j in listed})
        seen = asyncio.run(wait_terminal(net.api_url, ids, max(600.0, n * 0.1)))
        t_done = time.time()
        listed = asyncio.run(list_run_jobs(net.api_url, run))  # final states, any late job
        ids = sorted({j["ID"] for j in listed})
        seen.update({j["ID"]: j for j in listed})
        done_execs = asyncio.run(completed_executions(net.api_url, ids))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for job in listed:
        by_name.setdefault(job["Name"], []).append(job)
    lost, doubled, not_completed, wrong_execs = [], [], [], []
    for i in range(n):
        found = by_name.get(f"bench-crash-{run}-{i}", [])
        if not found or (state.ids[i] and state.ids[i] not in {j["ID"] for j in found}):
            lost.append(i)  # no job of that name, or not the one the 200 named
        elif len(found) > 1 or found[0].get("Version", 1) > 1:
            doubled.append(i)  # two jobs, or a retry stored as a new version (run again)
    for job_id in ids:
        state_type = seen[job_id]["State"]["StateType"]
        if state_type != "Completed":
            not_completed.append(f"{job_id}: {state_type} "
                                 f"{seen[job_id]['State'].get('Message', '')}")
        completed, total = done_execs.get(job_id, (0, 0))
        if completed != 1:
            wrong_execs.append(f"{job_id}: {completed} Completed executions of {total}")
    known_lost = [i for i in lost if state.ids[i]]  # answered 200, then gone: the worst case
    completed_at = [seen[j]["ModifyTime"] / 1e9 for j in ids
                    if seen[j]["State"]["StateType"] == "Completed"]
    killed = crash["killed_at"]
    last = max(completed_at, default=killed)
    first = min(completed_at, default=killed)
    before = [t for t in completed_at if t <= killed]
    return {
        "victim": victim, "jobs": n, "concurrency": concurrency, "seed": seed, "run": run,
        "kill_during": during, "kill_after_share": share, **crash,
        "first_start_s": first_start,
        "submit_s": t_submitted - t_begin, "all_terminal_s": t_done - t_begin,
        "jobs_per_s": len(completed_at) / max(1e-9, last - t_begin),
        "stored_jobs": len(ids), "answered_200": sum(1 for x in state.ids if x),
        "answered_409_stored_earlier": len(state.conflict),
        "submits_with_unanswered_tries": len(state.unanswered_tries),
        "unanswered_tries": sum(state.unanswered_tries.values()),
        "refused_429": state.refused, "gave_up": sorted(state.gave_up),
        "jobs_with_more_than_one_execution": sum(1 for _, total in done_execs.values()
                                                 if total > 1),
        "lost": lost, "lost_after_200": known_lost, "doubled": doubled,
        "not_completed": not_completed, "not_one_completed_execution": wrong_execs,
        "gap_before_kill_s": (longest_gap(completed_at, first, killed) if len(before) > 1
                              else 0.0),
        "completed_before_kill": len(before),
        "gap_after_kill_s": longest_gap(completed_at, killed, last),
        "seconds": time.monotonic() - started,
    }


def run(quick: bool, out_dir: Path, jobs: int | None = None, concurrency: int = 32,
        victims: list[str] | None = None, seed: int | None = None,
        during: str | None = None) -> dict[str, Any]:
    n = jobs or (1000 if quick else 10_000)
    seed = seed if seed is not None else random.SystemRandom().randrange(1_000_000)
    started = time.monotonic()
    runs: dict[str, dict[str, Any]] = {}
    with harness.scratch_dir(prefix="bench-crash-") as tmp:
        for k, victim in enumerate(victims or ["requester", "compute-0"]):
            print(f"  crash run: kill -9 {victim} during {n} jobs", flush=True)
            runs[victim] = one_run(Path(tmp), victim, n, concurrency, seed + k,
                                   during or KILL_DURING.get(victim, "run"))
    rows: list[report.Row] = []
    for victim, r in runs.items():
        what = (f"{n} jobs, {victim} killed -9 after {r['accepted_at_kill']} submits"
                if r["kill_during"] == "submit" else
                f"{n} jobs, {victim} killed -9 after {r['completed_at_kill']} Completed")
        bad = len(r["not_completed"]) + len(r["not_one_completed_execution"])
        rows += [
            report.Row(f"submits lost ({what})", float(len(r["lost"])), "", COUNT, 1.0,
                       {"max": 0.0}),
            report.Row(f"submits doubled ({what})", float(len(r["doubled"])), "", COUNT, 1.0,
                       {"max": 0.0}),
            report.Row(f"jobs not Completed with exactly 1 Completed execution ({what})",
                       float(bad), "", COUNT, 1.0, {"max": 0.0}),
            report.Row(f"restart of {victim} after kill -9 (start to up)", r["restart_s"], "s",
                       f"{victim} first start, same run", r["first_start_s"]),
            report.Row(f"longest completion gap after the kill ({victim})",
                       r["gap_after_kill_s"], "s", "longest completion gap before the kill",
                       r["gap_before_kill_s"] or None,
                       note="" if r["gap_before_kill_s"] else "no job completed before the "
                                                              "kill"),
        ]
    return report.result(
        "crash",
        settings={"jobs": n, "concurrency": concurrency, "quick": quick, "seed": seed,
                  "topology": "1 requester + 2 compute nodes, separate `bacalhau serve` "
                              "processes over libp2p on 127.0.0.1",
                  "job": "trivial WASM wordcount, noop publisher, unique name per submit",
                  "retry": "no answer (refused, reset, timeout, 5xx): same body again every "
                           "0.1 s; 429: after Retry-After; 409: stored by an earlier try"},
        samples={victim: {k: v for k, v in r.items()
                          if k in ("lost", "doubled", "gave_up", "not_completed",
                                   "not_one_completed_execution")}
                 for victim, r in runs.items()},
        summary={victim: {k: (len(v) if isinstance(v, list) else v) for k, v in r.items()}
                 for victim, r in runs.items()},
        rows=rows, seconds=time.monotonic() - started)
