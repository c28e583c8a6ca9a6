"""The scenarios of `python -m bench` that wrap the earlier single-purpose benches in the
common result format: `docker` (bench/docker_job.py), `cid` (bench/cid_throughput.py),
`ranking` (bench/ranking_scale.py). Each keeps
its own full report under `settings.report` and turns its figures into rows."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import harness, report


def docker(quick: bool, out_dir: Path, jobs: int | None = None) -> dict[str, Any]:
    """A trivial Docker job end to end beside `docker run --rm <test image> true`, on one
    hybrid `bacalhau serve` process, and the CLI wall time of `bacalhau docker run --wait`
    beside the same `docker run` (bench/docker_cli.py); the row says why when no engine
    answers."""
    from bacalhau.executors.docker import TEST_IMAGE
    from bench import docker_cli, docker_job
    from bench.harness import serve_node, summary

    started = time.monotonic()
    n = jobs or (5 if quick else 30)
    base_name = f"docker run --rm {TEST_IMAGE} true p50"
    why = ""
    if shutil.which("docker") is None:
        why = "no docker CLI on this machine"
    elif subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        why = "the Docker engine does not answer (docker info failed)"
    elif subprocess.run([str(report.REPO / "scripts" / "build_test_image.sh")],
                        capture_output=True).returncode != 0:
        why = "scripts/build_test_image.sh failed"
    if why:
        return report.result("docker", settings={"jobs": 0, "quick": quick}, samples={},
                             summary={"reason": why}, rows=[report.Row(
                                 "trivial Docker job p50 (server clock)", float("nan"), "ms",
                                 base_name, None, {"max": docker_job.TARGET_RATIO}, why)],
                             seconds=time.monotonic() - started)
    with harness.scratch_dir(prefix="bench-docker-") as tmp, \
            serve_node(Path(tmp)) as port:
        server, client, run = asyncio.run(docker_job.measure(n, port, 2 if quick else 3))
        cli = docker_cli.measure(port, Path(tmp), n)
    s = {"server": summary(server), "client": summary(client), "docker_run": summary(run),
         "cli": {name: summary(values) for name, values in cli.items()}}
    cli_name, cli_base = "bacalhau docker run --wait", "docker run --rm"
    rows = [
        report.Row("trivial Docker job p50 (server clock)", s["server"]["p50_ms"], "ms",
                   base_name, s["docker_run"]["p50_ms"], {"max": docker_job.TARGET_RATIO}),
        report.Row("trivial Docker job p95 (server clock)", s["server"]["p95_ms"], "ms",
                   base_name.replace("p50", "p95"), s["docker_run"]["p95_ms"]),
        report.Row("trivial Docker job p50 (client, 1 ms polls)", s["client"]["p50_ms"], "ms",
                   base_name, s["docker_run"]["p50_ms"]),
        report.Row(f"`{cli_name} {TEST_IMAGE} true` CLI wall p50", s["cli"][cli_name]["p50_ms"],
                   "ms", f"`{cli_base} {TEST_IMAGE} true` CLI wall p50, alternating",
                   s["cli"][cli_base]["p50_ms"], {"max": docker_cli.TARGET}),
    ]
    ms = {k: [x * 1e3 for x in v] for k, v in
          (("server", server), ("client", client), ("docker_run", run),
           ("cli_bacalhau_docker_run_wait", cli[cli_name]), ("cli_docker_run_rm", cli[cli_base]))}
    report.plot_latency(out_dir / "docker.png", "Trivial Docker job vs docker run",
                        {"job, server clock": ms["server"], "job, client": ms["client"],
                         "docker run --rm ... true": ms["docker_run"]})
    return report.result(
        "docker", settings={"jobs": n, "quick": quick, "image": TEST_IMAGE,
                            "topology": "one hybrid `bacalhau serve` process",
                            "cli_commands": docker_cli.commands(),
                            "job": docker_job.trivial_docker_job()},
        samples={"unit": "ms", **ms}, summary=s, rows=rows, seconds=time.monotonic() - started)


def cid(quick: bool, out_dir: Path) -> dict[str, Any]:
    """CID throughput of one file beside openssl / hashlib SHA-256 (best of rounds)."""
    from bench import cid_throughput

    started = time.monotonic()
    argv = ["--size-mib", "64" if quick else "1024", "--rounds", "2" if quick else "3",
            "--out", str(out_dir / "cid_throughput.raw.json")]
    rep = cid_throughput.main(argv)
    best, runs = rep["best"], rep["runs"]
    cores = rep["cores"]
    rows = [
        report.Row("CID, 1 thread", best["cid_1"], "MB/s", "openssl sha256, 1 core",
                   best["openssl_1"], {"min": rep["target_single_thread_ratio"]}),
        report.Row(f"CID, {cores} threads", best["cid_all"], "MB/s",
                   f"openssl sha256 -multi {cores}", best.get("openssl_all", best["openssl_1"])),
        report.Row("CID, 1 thread", best["cid_1"], "MB/s", "hashlib.sha256, same file",
                   best["hashlib"]),
    ]
    if "aleph_cid" in best:
        rows.append(report.Row("CID, 1 thread", best["cid_1"], "MB/s",
                               "aleph-cid, same file", best["aleph_cid"]))
    report.plot_bars(out_dir / "cid.png", f"CID throughput, {rep['size_bytes'] >> 20} MiB file",
                     {k: v for k, v in best.items()}, "MB/s (best round)")
    return report.result("cid", settings={"size_bytes": rep["size_bytes"],
                                          "rounds": rep["rounds"], "quick": quick,
                                          "report": rep},
                         samples={"unit": "MB/s", **runs}, summary={"best": best},
                         rows=rows, seconds=time.monotonic() - started)


def ranking(quick: bool, out_dir: Path) -> dict[str, Any]:
    """Native node ranking at 1k/10k/100k nodes beside the plain-Python implementation."""
    from bench import ranking_scale

    started = time.monotonic()
    rep = ranking_scale.main((["--quick"] if quick else [])
                             + ["--out", str(out_dir / "ranking_scale.raw.json")])
    by_n = {r["nodes"]: r for r in rep["rows"]}
    rows = [report.Row(f"native rank, {n} nodes", r["native_rank_s"] * 1e3, "ms",
                       f"Python rank, {n} nodes", r["python_rank_s"] * 1e3,
                       {"max": 0.05} if n == 10_000 else None) for n, r in by_n.items()]
    rows.append(report.Row("native rank, 100000 nodes", by_n[100_000]["native_rank_s"] * 1e3,
                           "ms", "native rank, 10000 nodes",
                           by_n[10_000]["native_rank_s"] * 1e3, {"max": 10.0}))
    bars = {f"{kind} {n}": r[f"{kind}_rank_s"] * 1e3 for n, r in by_n.items()
            for kind in ("native", "python")}
    report.plot_bars(out_dir / "ranking.png", "Node ranking: native vs Python", bars,
                     "ms (best of rounds)")
    return report.result("ranking", settings={"quick": quick, "report": rep},
                         samples={"unit": "s", "rows": rep["rows"],
                                  "worst_case_rows": rep["worst_case_rows"]},
                         summary={"targets": rep["targets"]}, rows=rows,
                         seconds=time.monotonic() - started)
