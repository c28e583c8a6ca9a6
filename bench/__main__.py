"""`python -m bench [scenario ...] [--all] [--quick] [--out DIR]`: runs the benchmark
scenarios, each figure beside a baseline measured in the same run; writes one JSON per
scenario (machine info, settings, raw samples, summary, rows of figure/baseline/ratio/target/
met), a PNG plot per scenario and `table.md`, and prints the table.

Scenarios: latency, throughput, backlog, docker (end to end), cid, ranking, scale (the node
count: `--nodes 100,300,1000`), metrics (what the Prometheus metrics cost on the hot paths),
cli (one-shot commands' start against `python -c pass`), faults (the fault matrix on
network-namespace hosts, root only: bench/faults.py), overload (submit latency under 2x
overload with backpressure: bench/overload.py), crash (kill -9 of the requester, then of a
compute node, during a 10k-job run: nothing lost or doubled, bench/crash.py).
`--quick` finishes in about 2 minutes with --all (fewer jobs, smaller files, fewer nodes);
without it the full sizes of the issue run (500 latency jobs, 10k throughput jobs, 100k
stored jobs). Results default to bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import harness, report

SCENARIOS = ("latency", "throughput", "backlog", "docker", "cid", "ranking", "scale",
             "metrics", "cli", "faults", "overload", "crash")


def run_scenario(name: str, args: argparse.Namespace) -> dict[str, Any]:
    out = args.out
    if name == "latency":
        from bench import latency

        return latency.run(args.quick, out, jobs=args.jobs, profile=args.profile)
    if name == "throughput":
        from bench import throughput

        return throughput.run(args.quick, out, jobs=args.throughput_jobs,
                              concurrency=args.concurrency, slurm_jobs=args.slurm_jobs,
                              with_slurm=not args.no_slurm, profile=args.profile)
    if name == "backlog":
        from bench import backlog

        return backlog.run(args.quick, out, backlog=args.backlog, samples=args.samples)
    if name == "scale":
        from bench import scale

        return scale.run(args.quick, out, nodes=args.nodes, processes=args.compute_processes,
                         idle=args.idle)
    if name == "cli":
        from bench import cli_start

        return cli_start.run(args.quick, out)
    if name == "metrics":
        from bench import metrics_overhead

        return metrics_overhead.run(args.quick, out)
    if name == "faults":
        from bench import faults

        return faults.run(args.quick, out, only=args.faults)
    if name == "overload":
        from bench import overload

        return overload.run(args.quick, out, concurrency=args.concurrency,
                            seconds=args.overload_seconds, max_queued=args.max_queued)
    if name == "crash":
        from bench import crash

        return crash.run(args.quick, out, jobs=args.crash_jobs, concurrency=args.concurrency,
                         victims=args.crash_victims, seed=args.seed,
                         during=args.kill_during)
    from bench import scenarios

    if name == "docker":
        return scenarios.docker(args.quick, out, jobs=args.docker_jobs)
    return getattr(scenarios, name)(args.quick, out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="*",
                        help=f"scenarios to run: {', '.join(SCENARIOS)}")
    parser.add_argument("--all", action="store_true", help="run every scenario")
    parser.add_argument("--quick", action="store_true", help="small sizes (~2 min for --all)")
    parser.add_argument("--out", type=Path, default=report.RESULTS,
                        help="where results go (default bench/results)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the nodes' data dirs and other scratch files go (default: "
                             "the system temp dir, $TMPDIR)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="latency: jobs one at a time (default 500, quick 60)")
    parser.add_argument("--throughput-jobs", type=int, default=None,
                        help="throughput: jobs (default 10000, quick 300)")
    parser.add_argument("--concurrency", "-C", type=int, default=32,
                        help="throughput, overload (R), crash: concurrent submitters "
                             "(default 32)")
    parser.add_argument("--slurm-jobs", type=int, default=None,
                        help="throughput: Slurm baseline jobs (default 1000, quick 100)")
    parser.add_argument("--no-slurm", action="store_true",
                        help="throughput: skip the Slurm baseline (the row says so)")
    parser.add_argument("--backlog", type=int, default=None,
                        help="backlog: jobs stored in the big round (default 100000, quick "
                             "10000)")
    parser.add_argument("--samples", type=int, default=None,
                        help="backlog: submits and lists measured per round (default 100)")
    parser.add_argument("--docker-jobs", type=int, default=None,
                        help="docker: jobs (default 30, quick 5)")
    parser.add_argument("--nodes", type=lambda v: [int(x) for x in v.split(",") if x],
                        default=None, help="scale: network sizes (default 100,300,1000; "
                                           "quick 20,60)")
    parser.add_argument("--compute-processes", type=int, default=8,
                        help="scale: processes holding the compute nodes (default 8)")
    parser.add_argument("--idle", type=float, default=None,
                        help="scale: idle window per size in seconds (default 300, quick 10)")
    parser.add_argument("--faults", type=lambda v: [x for x in v.split(",") if x],
                        default=None, help="faults: which faults of the matrix (default all: "
                                           "partition, one-way, loss, bandwidth, freeze, "
                                           "crash:<point>, full-disk, clock)")
    parser.add_argument("--overload-seconds", type=float, default=None,
                        help="overload: seconds of 2x overload (default 60, quick 15)")
    parser.add_argument("--max-queued", type=int, default=100,
                        help="overload: Orchestrator.EvaluationBroker.MaxQueued of the "
                             "requester (default 100, so that 2x overload reaches it)")
    parser.add_argument("--crash-jobs", type=int, default=None,
                        help="crash: jobs per run (default 10000, quick 1000)")
    parser.add_argument("--crash-victims", type=lambda v: [x for x in v.split(",") if x],
                        default=None, help="crash: which process each run kills (default "
                                           "requester,compute-0: two runs)")
    parser.add_argument("--kill-during", choices=("submit", "run"), default=None,
                        help="crash: kill once a random share of the submits is answered "
                             "(submit) or of the jobs Completed (run); default: the requester "
                             "during submit, a compute node during run")
    parser.add_argument("--seed", type=int, default=None,
                        help="crash: seed of the kill moment (default random, in the JSON)")
    parser.add_argument("--profile", action="store_true",
                        help="latency, throughput: py-spy the node processes while measuring "
                             "and report where the time goes (needs py-spy)")
    args = parser.parse_args(argv)
    if args.all:
        args.scenario = list(SCENARIOS)
    unknown = [s for s in args.scenario if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: choose from "
                     f"{', '.join(SCENARIOS)}")
    if not args.scenario:
        parser.error(f"name a scenario ({', '.join(SCENARIOS)}) or pass --all")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(args.work_dir.resolve())  # every scenario's scratch space
    # scratch folders of every scenario, removed together at the end (see harness.scratch_dir)
    harness.KEEP_SCRATCH_UNDER = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        return _run(args)
    finally:
        shutil.rmtree(harness.KEEP_SCRATCH_UNDER, ignore_errors=True)
        harness.KEEP_SCRATCH_UNDER = None


def _run(args: argparse.Namespace) -> int:
    machine = report.machine_info()
    docs: list[dict[str, Any]] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in dict.fromkeys(args.scenario):
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.monotonic()
        try:
            doc = run_scenario(name, args)
        except Exception as exc:  # one broken scenario must not lose the others' results
            traceback.print_exc()
            failed.append(f"{name}: {exc}")
            continue
        doc["machine"] = machine
        path = report.write(doc, args.out)
        docs.append(doc)
        print("\n".join(report.table_lines([doc])))
        if doc["summary"].get("profile"):
            from bench import pyspy as py_spy

            print("where the time goes (py-spy, share of working samples):")
            print("\n".join(py_spy.lines(doc["summary"]["profile"])))
        print(f"({name}: {time.monotonic() - t0:.0f}s, wrote {path})\n", flush=True)
    mode = "--quick" if args.quick else "full"
    header = (f"{mode} run, {time.monotonic() - started:.0f}s, {machine['cpu_model']}, "
              f"{machine['cores']} cores, {machine['ram_gib']} GiB, Python "
              f"{machine['python']}, commit {machine['git_commit'][:10]}"
              f"{' (dirty)' if machine['git_dirty'] else ''}, work dir {machine['work_dir']} "
              f"(new file {machine['file_create_us']:.0f} us)")
    (args.out / "table.md").write_text(
        header + "\n\n" + "\n".join(report.table_lines(docs, markdown=True)) + "\n")
    print("== all scenarios: " + header)
    print("\n".join(report.table_lines(docs)))
    if failed:
        print("\nscenarios that failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
