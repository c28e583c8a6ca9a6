"""What a node process has done, counted: SQLite commits per database file and the
transport's messages and bytes in and out, written as JSON to `<DataDir>/counters.json`
when the process gets SIGUSR1 (`bacalhau serve` installs the handler).

For the bench (issue 15: "counted, not estimated"): it signals each node process before and
after a run and divides the differences by the jobs, giving commits per job,
cross-process messages per job and evaluations per job (by trigger). Nothing here runs on the
job path: the counts are plain integers that the store, the transport and the scheduler keep
anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from bacalhau.store.sqlite import COMMITS

log = logging.getLogger(__name__)

COUNTERS_FILE = "counters.json"

EVALUATIONS: dict[str, int] = {}
"""Evaluations the scheduler workers of this process processed, by trigger (job-register,
exec-update, job-queue, ...): counted in `orchestrator/worker.py`."""


def counters(transport: Any) -> dict[str, Any]:
    """`{"sqlite_commits": {file: n}, "sqlite_commits_total": n, "evaluations": {trigger: n},
    "transport": {...}}`; the transport part is what a libp2p transport's `stats()` reports
    ({} for others); evaluations are those the scheduler processed (0 on a compute node)."""

    inner = getattr(transport, "_inner", transport)
    stats: dict[str, int] = {}
    if hasattr(inner, "stats"):
        try:
            stats = dict(inner.stats())
        except Exception as exc:  # a closed or unstarted transport: report no messages
            log.debug("transport stats unavailable: %s", exc)
    return {"pid": os.getpid(), "sqlite_commits": dict(COMMITS),
            "sqlite_commits_total": sum(COMMITS.values()), "evaluations": dict(EVALUATIONS),
            "transport": stats}


def install_counter_dump(data_dir: Path, transport: Any) -> None:
    """On SIGUSR1, write `counters(transport)` to `<data_dir>/counters.json` (atomically:
    a reader never sees half a file)."""
    loop = asyncio.get_running_loop()

    async def dump() -> None:
        doc = await asyncio.to_thread(counters, transport)  # stats() blocks briefly
        tmp = data_dir / (COUNTERS_FILE + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(data_dir / COUNTERS_FILE)

    def on_signal() -> None:
        task = loop.create_task(dump())
        task.add_done_callback(_log_failure)

    loop.add_signal_handler(signal.SIGUSR1, on_signal)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("writing %s failed: %s", COUNTERS_FILE, task.exception())
