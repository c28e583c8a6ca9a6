"""Counted costs of the job path (issue 15), for the throughput scenario's JSON:

- SQLite commits and transport messages of every node process, read before and after a run
  from the `counters.json` each `bacalhau serve` writes on SIGUSR1 (`bacalhau.counters`);
- files and folders created per execution of a `noop`-published job, counted with inotify
  on the compute nodes' data dirs while a batch of such jobs runs (`bench.fswatch`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

from bench.cluster import Cluster
from bench.fswatch import CreationCounter

COUNTERS_FILE = "counters.json"


def node_counters(net: Cluster, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """Each node process's counters now (SIGUSR1, then wait for its fresh file)."""
    paths = {name: net.base_dir / name / COUNTERS_FILE for name in net.pids}
    for path in paths.values():
        path.unlink(missing_ok=True)
    for pid in net.pids.values():
        os.kill(pid, signal.SIGUSR1)
    out: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    for name, path in paths.items():
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} wrote no {path} within {timeout:g}s of SIGUSR1")
            time.sleep(0.02)  # the node writes it from its event loop
        out[name] = json.loads(path.read_text())
    return out


def per_job(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]],
            jobs: int) -> dict[str, Any]:
    """Commits and messages per job over all node processes, with the per-process split."""
    commits = {name: after[name]["sqlite_commits_total"] - before[name]["sqlite_commits_total"]
               for name in after}
    sent = {name: after[name]["transport"].get("messages_out", 0)
            - before[name]["transport"].get("messages_out", 0) for name in after}
    received = {name: after[name]["transport"].get("messages_in", 0)
                - before[name]["transport"].get("messages_in", 0) for name in after}
    evaluations: dict[str, int] = {}
    for name in after:
        for trigger, n in after[name].get("evaluations", {}).items():
            done = n - before[name].get("evaluations", {}).get(trigger, 0)
            evaluations[trigger] = evaluations.get(trigger, 0) + done
    return {
        "jobs": jobs,
        "commits_per_job": sum(commits.values()) / jobs,
        "commits_per_job_by_process": {k: v / jobs for k, v in commits.items()},
        "messages_per_job": sum(sent.values()) / jobs,
        "messages_sent_per_job_by_process": {k: v / jobs for k, v in sent.items()},
        "messages_received_per_job_by_process": {k: v / jobs for k, v in received.items()},
        "evaluations_per_job": sum(evaluations.values()) / jobs,
        "evaluations_per_job_by_trigger": {k: v / jobs for k, v in sorted(evaluations.items())},
        "note": "messages are the libp2p transport's application messages out (one frame "
                "each), heartbeats of the window included; commits are every SQLite COMMIT "
                "and autocommitted write of the node processes; evaluations are those the "
                "requester's scheduler processed (job-queue: a queued job's retry)",
    }


def files_per_execution(net: Cluster, jobs: int, submit: Any, completions: Any
                        ) -> dict[str, Any]:
    """Run `jobs` noop-published jobs; count what is created under the compute data dirs.

    `submit(url, n, concurrency, publisher)` and `completions(url, ids, timeout)` are the
    throughput scenario's own coroutines."""
    roots = [net.base_dir / name for name in net.pids if name.startswith("compute")]
    counter = CreationCounter(roots)
    counter.start()
    try:
        ids = asyncio.run(submit(net.api_url, jobs, 8, "noop"))[0]
        result = asyncio.run(completions(net.api_url, ids, max(120.0, jobs * 0.5)))
    finally:
        counts = counter.stop()
    if result["failed"]:
        raise RuntimeError(f"noop jobs failed: {result['failed'][:3]}")
    created = sorted(str(p.relative_to(net.base_dir)) for p in counter.created)
    return {"jobs": jobs, "files_and_folders_per_execution": counts["created"] / jobs,
            "files_per_execution": counts["files"] / jobs,
            "folders_per_execution": counts["folders"] / jobs,
            "inotify_overflowed": bool(counts["overflowed"]),
            "folders_gone_before_watched": counts["unwatched_folders"],
            "watched": [str(r.relative_to(net.base_dir)) for r in roots],
            "examples": created[:40],
            "note": "directory entries created (inotify IN_CREATE); not counted: the two "
                    "unnamed (O_TMPFILE) log files of each wasm run, which get a name (and "
                    "are counted) only when kept; files inside a folder removed before the "
                    "watcher could watch it are missed (folders_gone_before_watched > 0: "
                    "the figure is a lower bound)",
            "outside_execution_dirs": [p for p in created if "/executions/" not in p][:40]}
