"""Node ranking at 1k, 10k and 100k nodes: the native `NodeTable.rank(job, seed, limit)` (as
`orchestrator/selection.py` calls it, FFI included) beside the plain-Python implementation of
the same rules in bench/ranking_baseline.py, on the same nodes, job and seed.

The nodes are a synthetic public network: `--fleets` operator configurations (engine/publisher/
storage sets, region/zone/operator labels, machine type, version; one version too old), nodes
spread over them with a heavy tail, each with its own capacity, queue and free share (some
busy, some without capacity); a job with a hard and a soft label constraint and a few earlier
executions. The worst case for the class memo, every node configured on its own, is measured
and printed too.
Both sides must return the same best nodes with the same ranks, and reject the same number of
nodes, or the benchmark fails.

Targets (issue 4): native at 10k <= 0.05x Python at 10k; native at 100k <= 10x native at 10k.

Run: `.venv/bin/python -m bench.ranking_scale [--quick] [--limit K]`; writes
bench/results/ranking_scale.json. `--quick` = fewer rounds.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path
from typing import Any

from bacalhau._native import NodeTable
from bench import ranking_baseline as baseline

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (1_000, 10_000, 100_000)
SEED = 0x5EED
GB = 1e9


def fleet(rng: random.Random) -> dict[str, Any]:
    """One operator's node configuration: everything static about its nodes."""
    engines = [["docker", "wasm"], ["docker"], ["wasm"], ["docker", "wasm", "python"]]
    publishers = [["local", "s3"], ["local"], ["s3"], ["ipfs", "local"]]
    storages = [["urldownload", "s3", "inline"], ["inline"], ["s3", "ipfs", "inline"]]
    cpu = float(rng.choice((2, 4, 8, 16, 32)))
    machine = (cpu, cpu * 4 * GB, float(rng.choice((100, 500, 2000))) * GB,
               float(rng.choice((0, 0, 0, 1, 8))))
    return {
        "engines": rng.choice(engines), "publishers": rng.choice(publishers),
        "storages": rng.choice(storages),
        "labels": {"region": rng.choice(("eu", "us", "ap", "sa", "af")),
                   "zone": f"z{rng.randrange(10)}", "operator": f"op-{rng.getrandbits(32):08x}"},
        "machine": machine,
        "max_job": machine if rng.random() > 0.05 else (0.25, GB, machine[2], 0.0),
        "version": rng.choice([(1, 5, 0), (1, 6, 2), (1, 0, 2)]),
    }


def synthetic_nodes(n: int, rng: random.Random, fleets: int) -> list[dict[str, Any]]:
    """`n` nodes of `fleets` operator configurations (0 = every node configured on its own);
    capacities, queues and free shares differ per node."""
    configs = [fleet(rng) for _ in range(fleets)]
    nodes = []
    for i in range(n):
        f = configs[min(int(rng.paretovariate(1.2)) - 1, fleets - 1)] if fleets else fleet(rng)
        cap = f["machine"]
        free = rng.random()
        if rng.random() < 0.02:
            cap = (0.0, 0.0, 0.0, 0.0)
        nodes.append({
            "node_id": f"n-{rng.getrandbits(64):016x}-{i:06d}",
            "engines": f["engines"], "publishers": f["publishers"], "storages": f["storages"],
            "labels": f["labels"], "max_job": f["max_job"], "max_capacity": cap,
            "available": tuple(x * free for x in cap),
            "queued": (cap[0] * rng.random() * (2 if rng.random() < 0.1 else 0.2), 0.0, 0.0, 0.0),
            "version": f["version"],
        })
    return nodes


def job_for(nodes: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    previous = {n["node_id"]: (rng.randint(1, 2), rng.random() < 0.3, False)
                for n in rng.sample(nodes, min(5, len(nodes)))}
    return {
        "engine": "docker", "publisher": "local", "storages": ["inline"],
        "constraints": [("region", "in", ["eu", "us", "ap"]), ("favour_zone", "=", ["z1"])],
        "resources": (0.5, 512e6, 0.0, 0.0), "previous": previous,
        "min_version": (1, 0, 4), "oversubscription_factor": 1.5,
    }


def best_time(fn: Any, rounds: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def measure(n: int, limit: int, native_rounds: int, python_rounds: int,
            fleets: int) -> dict[str, Any]:
    rng = random.Random(n)
    facts = synthetic_nodes(n, rng, fleets)
    req = job_for(facts, rng)

    table = NodeTable()
    start = time.perf_counter()
    for f in facts:
        table.upsert(f)
    build = time.perf_counter() - start

    native_s, ranking = best_time(lambda: table.rank(req, SEED, limit), native_rounds)
    all_s, _ = best_time(lambda: table.rank(req, SEED, None), max(1, native_rounds // 4))

    nodes = [baseline.node_from_facts(f) for f in facts]
    job = baseline.job_from_requirements(req)
    python_s, (py_top, py_reasons) = best_time(
        lambda: baseline.rank(nodes, job, SEED, limit), python_rounds)

    native_top = [(r[0], r[1]) for r in ranking.top]
    if native_top != py_top:
        raise SystemExit(f"{n} nodes: native and Python disagree:\n{native_top}\n{py_top}")
    rejected = sum(r[1] for r in ranking.reasons)
    if (ranking.suitable, rejected) != (n - sum(py_reasons.values()), sum(py_reasons.values())):
        raise SystemExit(f"{n} nodes: suitable/rejected counts differ")
    return {
        "nodes": n, "fleets": fleets, "classes": table.class_count(), "limit": limit,
        "suitable": ranking.suitable, "rejected": rejected, "reasons": len(ranking.reasons),
        "native_rank_s": native_s, "native_rank_all_suitable_s": all_s,
        "python_rank_s": python_s, "native_vs_python": native_s / python_s,
        "table_build_s": build, "native_ns_per_node": native_s / n * 1e9,
        "python_ns_per_node": python_s / n * 1e9,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--limit", type=int, default=3, help="nodes needed (k of the top-k)")
    parser.add_argument("--fleets", type=int, default=1000,
                        help="operator configurations the nodes share (node classes); the "
                        "worst case, 0 = every node configured on its own, is measured too")
    parser.add_argument("--out", type=Path, default=RESULTS / "ranking_scale.json")
    args = parser.parse_args(argv)
    native_rounds = 5 if args.quick else 30
    rows, worst = [], []
    for n in SCALES:
        python_rounds = 1 if (args.quick or n >= 100_000) else 3
        rows.append(measure(n, args.limit, native_rounds, python_rounds, args.fleets))
        worst.append(measure(n, args.limit, max(1, native_rounds // 3), 1, 0))
        for label, r in (("", rows[-1]), (" worst", worst[-1])):
            print(f"{n:>7} nodes{label:<6} ({r['classes']:>6} classes, {r['suitable']:>6} "
                  f"suitable): native {r['native_rank_s'] * 1e3:7.2f} ms | python "
                  f"{r['python_rank_s'] * 1e3:8.1f} ms | ratio {r['native_vs_python']:.4f}",
                  flush=True)
    by_n = {r["nodes"]: r for r in rows}
    ratio_10k = by_n[10_000]["native_vs_python"]
    scale_100k = by_n[100_000]["native_rank_s"] / by_n[10_000]["native_rank_s"]
    worst_n = {r["nodes"]: r for r in worst}
    print(f"\ntarget 1: native/python at 10k = {ratio_10k:.4f} "
          f"({'meets' if ratio_10k <= 0.05 else 'misses'} <= 0.05); worst case (a class per "
          f"node) {worst_n[10_000]['native_vs_python']:.4f}")
    print(f"target 2: native 100k / native 10k = {scale_100k:.2f} "
          f"({'meets' if scale_100k <= 10 else 'misses'} <= 10); worst case "
          f"{worst_n[100_000]['native_rank_s'] / worst_n[10_000]['native_rank_s']:.2f}")
    report = {
        "benchmark": "ranking_scale", "limit": args.limit, "seed": SEED,
        "rounds": {"native": native_rounds, "python": "3 (1 at 100k)" if not args.quick else 1},
        "timing": "best of rounds, seconds, FFI and job conversion included",
        "fleets": args.fleets,
        "rows": rows,
        "worst_case_rows": worst,
        "targets": {"native_vs_python_at_10k": {"value": ratio_10k, "max": 0.05},
                    "native_100k_vs_10k": {"value": scale_100k, "max": 10.0}},
        "platform": platform.platform(), "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
