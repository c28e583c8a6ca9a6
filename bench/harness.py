"""Pieces every end-to-end benchmark shares: a free loopback port, a percentile summary of
latency samples, and a real `bacalhau serve --orchestrator --compute` process to measure."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Set by `python -m bench`: scenarios' scratch folders are kept under it until the whole run
# ends, so that one scenario's mass deletion does not slow the next one's file creation (on
# some filesystems every create pays for recent deletes for a while).
KEEP_SCRATCH_UNDER: Path | None = None


@contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A scratch folder for one scenario: removed on exit, or, during a `python -m bench` run,
    left for the run to remove at its end (`KEEP_SCRATCH_UNDER`)."""
    if KEEP_SCRATCH_UNDER is None:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield tmp
    else:
        yield tempfile.mkdtemp(prefix=prefix, dir=KEEP_SCRATCH_UNDER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(samples: list[float]) -> dict[str, float]:
    """Count, p50/p95/p99 and mean of latencies given in seconds, reported in ms."""
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {"n": len(ordered), "p50_ms": pct(0.5) * 1e3, "p95_ms": pct(0.95) * 1e3,
            "p99_ms": pct(0.99) * 1e3, "mean_ms": statistics.fmean(ordered) * 1e3}


@contextmanager
def serve_node(work: Path, start_timeout: float = 30.0) -> Iterator[int]:
    """Run a hybrid node with its data dir under `work`; yields its API port once it accepts
    connections, and stops it on exit."""
    port, pub_port = free_port(), free_port()
    env = dict(os.environ, BACALHAU_DIR=str(work / "node"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bacalhau", "--data-dir", str(work / "node"), "serve",
         "--orchestrator", "--compute", "-c", f"API.Port={port}",
         "-c", f"Publishers.Types.Local.Port={pub_port}", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("bacalhau serve did not start") from None
                time.sleep(0.05)  # start-up poll, bounded by the deadline
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
