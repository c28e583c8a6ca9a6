"""Scenario `latency`: a trivial WASM job (the shipped word-count module on a few inline
bytes), submit to Completed, one job at a time, on 1 requester + 1 compute node running as
separate `bacalhau serve` processes over libp2p.

Figures: server clock (the job's CreateTime to the ModifyTime of its Completed state) and
client-observed (PUT until GET first shows Completed, 1 ms polls), p50/p95/p99. Baselines in
the same run: a bare aiohttp PUT round trip of the same body to a handler that only reads it,
and a bare wasmtime run of the same module (compiled once; new Store + WASI per run), in
rounds of 50 jobs / 50 PUTs / 50 runs so that noise from other load hits all three alike.
Target: job p50 (server clock) <= 20x the bare PUT p50.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness, report
from bench import pyspy as py_spy
from bench.cluster import cluster
from bench.harness import summary
from bench.trivial_job import bare_put_baseline, bare_wasmtime_baseline
from tests.jobspecs import wordcount_job

TARGET_VS_PUT = 20.0
ROUND = 50  # jobs, then as many PUTs and wasmtime runs, in turn


async def one_at_a_time(n: int, url: str) -> tuple[list[float], list[float]]:
    """(server-side, client-side) seconds of `n` trivial jobs run one after the other."""
    base = f"{url}/api/v1/orchestrator/jobs"
    server_side, client_side = [], []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            body = {"Job": wordcount_job(f"job {i}\n")}
            t0 = time.perf_counter()
            async with session.put(base, json=body) as resp:
                answer = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"submit failed: {resp.status} {answer}")
            job_id = answer["JobID"]
            while True:
                async with session.get(f"{base}/{job_id}") as resp:
                    job = (await resp.json())["Job"]
                state = job["State"]["StateType"]
                if state in ("Completed", "Failed", "Stopped"):
                    break
                await asyncio.sleep(0.001)  # client polling interval
            client_side.append(time.perf_counter() - t0)
            if state != "Completed":
                raise RuntimeError(f"job {job_id} ended {state}: {job['State']}")
            server_side.append((job["ModifyTime"] - job["CreateTime"]) / 1e9)
    return server_side, client_side


def run(quick: bool, out_dir: Path, jobs: int | None = None,
        profile: bool = False) -> dict[str, Any]:
    n = jobs or (60 if quick else 500)
    warmup = 5 if quick else 20
    started = time.monotonic()
    with harness.scratch_dir(prefix="bench-latency-") as tmp:
        work = Path(tmp)
        with cluster(work / "stack", computes=1) as net:
            asyncio.run(one_at_a_time(warmup, net.api_url))  # module cache, connections
            server, client, put, wasm = [], [], [], []
            with (py_spy.record(net.pids, out_dir, "latency") if profile
                  else nullcontext({})) as prof:
                # rounds of jobs, PUTs and wasmtime runs in turn: figure and baselines see
                # the same machine (other load comes and goes on a shared one)
                for start in range(0, n, ROUND):
                    k = min(ROUND, n - start)
                    got = asyncio.run(one_at_a_time(k, net.api_url))
                    server += got[0]
                    client += got[1]
                    put += asyncio.run(bare_put_baseline(k))
                    wasm += bare_wasmtime_baseline(k, work)
    s = {"server": summary(server), "client": summary(client), "put": summary(put),
         "wasmtime": summary(wasm), "profile": prof}
    put_p50, wasm_p50 = s["put"]["p50_ms"], s["wasmtime"]["p50_ms"]
    put_name, wasm_name = "bare aiohttp PUT round trip p50", "bare wasmtime run p50"
    rows = [
        report.Row("trivial WASM job p50 (server clock)", s["server"]["p50_ms"], "ms",
                   put_name, put_p50, {"max": TARGET_VS_PUT}),
        report.Row("trivial WASM job p95 (server clock)", s["server"]["p95_ms"], "ms",
                   put_name, put_p50),
        report.Row("trivial WASM job p99 (server clock)", s["server"]["p99_ms"], "ms",
                   put_name, put_p50),
        report.Row("trivial WASM job p50 (client, 1 ms polls)", s["client"]["p50_ms"], "ms",
                   put_name, put_p50),
        report.Row("trivial WASM job p50 (server clock)", s["server"]["p50_ms"], "ms",
                   wasm_name, wasm_p50),
    ]
    ms = {k: [x * 1e3 for x in v] for k, v in
          (("server", server), ("client", client), ("put", put), ("wasmtime", wasm))}
    doc = report.result(
        "latency",
        settings={"jobs": n, "warmup_jobs": warmup, "quick": quick,
                  "topology": "1 requester + 1 compute node, separate `bacalhau serve` "
                              "processes over libp2p on 127.0.0.1, log level warning",
                  "job": "wordcount.wasm on 6 inline bytes, local publisher"},
        samples={"unit": "ms", **ms}, summary=s, rows=rows,
        seconds=time.monotonic() - started)
    report.plot_latency(out_dir / "latency.png", "Trivial WASM job latency vs baselines",
                        {"job, server clock": ms["server"], "job, client (1 ms polls)":
                         ms["client"], "bare aiohttp PUT": ms["put"],
                         "bare wasmtime run": ms["wasmtime"]})
    return doc
