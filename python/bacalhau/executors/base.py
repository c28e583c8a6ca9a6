"""The Executor contract: what the compute runner hands an engine and what it gets back.

The runner prepares inputs (storage providers), creates one `<Name>/` folder per ResultPath
in the results dir, and calls `Executor.run(RunRequest)`. The executor mounts inputs at
their targets and result folders at their paths, runs the task, writes stdout/stderr to the
log files, and returns a RunCommandResult. An executor that reads some inputs as bytes
(the wasm engine's modules) names their targets in `in_memory_targets(engine)`; the runner
hands those over as `PreparedInput.data` when the storage provider can give the bytes
without writing a file (`read_bytes`), and nothing is mounted for them.
A non-zero exit code is a normal result (the execution still completes, reference §2.3);
only system failures (bad spec, timeout, memory limit, cancellation, runtime errors)
raise `errors.ExecutorError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from bacalhau.models import (
    InputSource,
    NetworkConfig,
    Resources,
    ResultPath,
    RunCommandResult,
    SpecConfig,
)

if TYPE_CHECKING:
    from bacalhau.executors.logfiles import UnnamedLogs

T = TypeVar("T")

# RunCommandResult.Stdout/stderr keep only the head of each stream (reference §4.4).
MAX_OUTPUT_IN_RESULT = 2048


@dataclass
class PreparedInput:
    """An input made available on this host: `host_path` is mounted at `target`; or, with
    `data` set, the input's bytes in memory (no file: `host_path` is unused)."""

    source: InputSource
    host_path: Path
    target: str
    read_write: bool = False
    data: bytes | None = None


@dataclass
class RunRequest:
    """Everything an executor needs to run one execution."""

    execution_id: str
    job_id: str
    job_type: str
    partition_index: int
    partition_count: int
    engine: SpecConfig
    env: dict[str, str]  # task env + BACALHAU_* system vars
    inputs: list[PreparedInput]
    result_paths: list[ResultPath]
    results_dir: Path  # <Name>/ dirs pre-created by the runner
    stdout_path: Path  # log files (<execution dir>/stdout, <execution dir>/stderr)
    stderr_path: Path
    resources: Resources = field(default_factory=Resources)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    timeout: float | None = None  # seconds; None or 0 = no limit
    # the execution's own directory: scratch space of the executor goes under it (removed
    # after the run); None means the parent of `results_dir`
    execution_dir: Path | None = None
    # set by the runner for an engine with `accepts_unnamed_logs`: write stdout and stderr
    # to `logs.engine_paths()` instead of the two paths above (see executors/logfiles.py)
    logs: UnnamedLogs | None = None

    @property
    def work_root(self) -> Path:
        """The execution's own directory (see `execution_dir`)."""
        return self.execution_dir if self.execution_dir is not None else self.results_dir.parent


@runtime_checkable
class Executor(Protocol):
    """An execution engine (`docker`, `wasm`, ...), keyed by `name` in the compute node."""

    name: str

    def is_installed(self) -> bool:
        """True when this host can run the engine (runtime present and usable)."""
        ...

    def check(self, engine: SpecConfig) -> list[str]:
        """Bid-time problems with the engine spec; empty means it can run."""
        ...

    async def run(self, request: RunRequest) -> RunCommandResult:
        """Run to completion; raises `errors.ExecutorError` on a system failure."""
        ...

    async def cancel(self, execution_id: str) -> None:
        """Stop a running execution promptly; unknown ids are ignored."""
        ...


def read_output_head(path: Path, limit: int = MAX_OUTPUT_IN_RESULT) -> tuple[str, bool]:
    """The first `limit` bytes of a log file as text, and whether the file was longer."""
    try:
        with path.open("rb") as f:
            head = f.read(limit + 1)
    except FileNotFoundError:
        return "", False
    truncated = len(head) > limit
    return head[:limit].decode("utf-8", errors="replace"), truncated


def resolve_from_thread(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                        func: Callable[..., Any], *args: Any) -> None:
    """Run blocking `func(*args)` on the calling (worker) thread and settle `future` on `loop`
    with its result or exception; nothing happens if the future was cancelled or the loop
    has closed meanwhile. The executors' thread helpers share it."""
    try:
        outcome: tuple[bool, Any] = (True, func(*args))
    except BaseException as exc:
        outcome = (False, exc)

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(deliver, *outcome)


def in_daemon_thread(name: str, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run blocking `func(*args)` on a daemon thread of its own; the future resolves on the
    calling loop. Daemon threads: a long pull or a container stream never holds up exit or
    a shared pool."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    threading.Thread(target=resolve_from_thread, args=(loop, future, func, *args), name=name,
                     daemon=True).start()
    return future
