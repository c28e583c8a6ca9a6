"""`--profile`: py-spy samples every node process while a scenario measures, and the samples
are summed into the parts of the job path (submit API, scheduler, message handlers, bidding,
runner, wasm, transport, SQLite stores, model (de)serialisation), so a missed target comes
with where the time goes, not just the number.

py-spy (`pip install py-spy`, in the `bench` extra) records raw collapsed stacks; threads
that wait (condition waits, selector polls, the transport's event waiter in Rust, idle worker
threads) are left out, so the shares are of the time the process was doing something.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# A stack waiting rather than working: its innermost frame contains one of these.
IDLE = ("Condition.wait", "Event.wait", "select (selectors", "_Checkpointer._loop",
        "SimpleQueue.get", "Queue.get", "(concurrent/futures/thread.py:81)",
        "(bacalhau/executors/wasm.py:784)", "_WorkItem.run (concurrent/futures/thread.py:58)")
# (part of the path, a frame that marks it), first match wins
PARTS = (
    ("wasm run (wasmtime)", "WasmExecutor._run_module"),
    ("HTTP: submit (PUT /jobs)", "put_job (bacalhau/api"),
    ("HTTP: get job (client polls)", "get_job (bacalhau/api"),
    ("HTTP: list jobs", "list_jobs (bacalhau/api"),
    ("HTTP: aiohttp request handling", "aiohttp/web_protocol"),
    ("orchestrator: evaluation worker (scheduler, planner)", "EvaluationWorker.run"),
    ("orchestrator: execution message handlers", "ExecutionMessageHandlers.handle"),
    ("orchestrator: dispatcher (outbox to compute nodes)", "Dispatcher."),
    ("compute: ask for bid + bidding", "ComputeNode._on_ask_for_bid"),
    ("compute: ask for bid + bidding", "ComputeNode._bid"),
    ("compute: bid accepted", "ComputeNode._on_bid_accepted"),
    ("compute: runner (dirs, inputs, publish, state)", "ExecutionRunner"),
    ("compute: runner (dirs, inputs, publish, state)", "_make_dirs"),
    ("compute: outbox sender (results to requester)", "OutboxSender"),
    ("transport: libp2p (Python side)", "Libp2pTransport"),
    ("asyncio event loop", "BaseEventLoop._run_once"),
)


def available() -> str:
    """'' when py-spy can run, else why not."""
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        return "py-spy not installed (pip install py-spy, or the `bench` extra)"
    return ""


def _py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


@contextmanager
def record(pids: dict[str, int], out_dir: Path, tag: str, rate: int = 100
           ) -> Iterator[dict[str, Any]]:
    """py-spy records each process while the block runs; the yielded dict then holds each
    process's breakdown (see `breakdown`) and the raw files' names."""
    summary: dict[str, Any] = {}
    why = available()
    if why:
        summary["reason"] = why
        yield summary
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / f"{tag}.{name}.pyspy.txt" for name in pids}
    spies = [subprocess.Popen([_py_spy(), "record", "-f", "raw", "-r", str(rate), "-o",
                               str(files[name]), "--pid", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, pid in pids.items()]
    try:
        yield summary
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in spies:
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
    for name, path in files.items():
        if path.exists():
            summary[name] = breakdown(path) | {"file": path.name}
        else:
            summary[name] = {"reason": "py-spy wrote nothing (permissions? ptrace?)"}


def breakdown(path: Path) -> dict[str, Any]:
    """Shares of a process's working samples by part of the path, plus the shares spent in
    the SQLite stores and in model (de)serialisation and copies (across parts)."""
    parts: Counter[str] = Counter()
    working = stores = models = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if any(mark in frames[-1] for mark in IDLE):
            continue
        working += count
        part = next((name for name, mark in PARTS if any(mark in f for f in frames)), "other")
        parts[part] += count
        if any("bacalhau/store/" in f for f in frames):
            stores += count
        if any(k in f for f in frames for k in ("from_dict", "to_dict", "bacalhau/models/codec",
                                                ".copy (bacalhau/models")):
            models += count
    if not working:
        return {"working_samples": 0}
    return {"working_samples": working,
            "parts": {k: round(v / working, 3) for k, v in parts.most_common()},
            "in_sqlite_stores": round(stores / working, 3),
            "in_model_serialisation": round(models / working, 3)}


def lines(summary: dict[str, Any]) -> list[str]:
    """A short text of a `record` summary, for the console."""
    out = []
    for name, b in summary.items():
        if not isinstance(b, dict) or "parts" not in b:
            continue
        top = ", ".join(f"{k} {v:.0%}" for k, v in list(b["parts"].items())[:6])
        out.append(f"  {name}: {top}; in SQLite stores {b['in_sqlite_stores']:.0%}, model "
                   f"(de)serialisation {b['in_model_serialisation']:.0%}")
    if "reason" in summary:
        out.append(f"  no profile: {summary['reason']}")
    return out
