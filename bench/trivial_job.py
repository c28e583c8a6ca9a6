"""Trivial WASM job latency, submit to Completed, against a real `bacalhau serve` process.

Figures, each beside baselines measured in the same run:
- server-side latency: the job's CreateTime to the ModifyTime of its Completed state;
- client-observed latency: PUT /jobs until GET /jobs/{id} first shows Completed (polling);
- baseline A: a bare aiohttp PUT round trip (same client, same machine);
- baseline B: a bare wasmtime run of the same module (compiled once, as our cache does).

Run: `.venv/bin/python -m bench.trivial_job [--jobs 100]`; writes bench/results/trivial_job.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import harness
from bench.harness import free_port, serve_node, summary
from tests.jobspecs import ASSETS, wordcount_job

RESULTS = Path(__file__).resolve().parent / "results"


async def bare_put_baseline(n: int) -> list[float]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"JobID": "j-x", "EvaluationID": "e", "Warnings": []})

    app = web.Application()
    app.router.add_put("/api/v1/orchestrator/jobs", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    body = {"Job": wordcount_job("a b c\n")}
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            t0 = time.perf_counter()
            async with session.put(f"http://127.0.0.1:{port}/api/v1/orchestrator/jobs",
                                   json=body) as resp:
                await resp.read()
            samples.append(time.perf_counter() - t0)
    await runner.cleanup()
    return samples


def bare_wasmtime_baseline(n: int, work: Path) -> list[float]:
    import wasmtime

    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, (ASSETS / "wordcount.wasm").read_bytes())
    inputs, outputs = work / "in", work / "out"
    inputs.mkdir(exist_ok=True)
    outputs.mkdir(exist_ok=True)
    (inputs / "input.txt").write_text("a b c\n")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["wordcount", "/inputs/input.txt"]
        wasi.preopen_dir(str(inputs), "/inputs")
        wasi.preopen_dir(str(outputs), "/outputs")
        wasi.stdout_file = str(work / "stdout")
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as exit_trap:
            assert exit_trap.code == 0
        samples.append(time.perf_counter() - t0)
    return samples


async def bacalhau_latency(n: int, port: int) -> tuple[list[float], list[float]]:
    """(server-side, client-side) seconds of `n` trivial jobs, one after the other."""
    from bench.latency import one_at_a_time  # bench.latency imports this module's baselines

    return await one_at_a_time(n, f"http://127.0.0.1:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with harness.scratch_dir(prefix="bench-trivial-") as tmp:
        work = Path(tmp)
        with serve_node(work) as port:
            asyncio.run(bacalhau_latency(5, port))  # warm-up: module cache, connections
            server_side, client_side = asyncio.run(bacalhau_latency(args.jobs, port))
        put = asyncio.run(bare_put_baseline(args.jobs))
        wasm = bare_wasmtime_baseline(args.jobs, work)
    rows: dict[str, Any] = {
        "job submit->Completed (server clock)": summary(server_side),
        "job submit->Completed (client, 1 ms polls)": summary(client_side),
        "baseline: bare aiohttp PUT round trip": summary(put),
        "baseline: bare wasmtime run of the module": summary(wasm),
    }
    base_put = rows["baseline: bare aiohttp PUT round trip"]["p50_ms"]
    print(f"{'figure':48} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'x PUT p50':>10}")
    for name, s in rows.items():
        print(f"{name:48} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f} {s['p99_ms']:8.2f} "
              f"{s['p50_ms'] / base_put:10.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "trivial_job.json"
    out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "settings": {"jobs": args.jobs},
        "summary": rows,
        "samples_ms": {"server": [x * 1e3 for x in server_side],
                       "client": [x * 1e3 for x in client_side],
                       "put": [x * 1e3 for x in put], "wasmtime": [x * 1e3 for x in wasm]},
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
