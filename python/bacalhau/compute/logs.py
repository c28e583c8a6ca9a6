"""Execution logs: reading an execution's stdout and stderr in pieces, and waking readers
when there is more to read (the `ExecutionLogs` request of internals §3).

Sources. The runner says where an execution's logs are (`logs_of(id)`): the folder holding
the `stdout` and `stderr` files (`<execDir>`), or an object with `read(index, pos, size)`
(index 0 stdout, 1 stderr; None when absent): the unnamed log files of a running wasm
execution, or the whole logs as kept in a finished execution's record
(`executors/logfiles.py`). The source is asked again for every read, as it changes when the
run ends.

Offsets. A reply's `Offset` is opaque to callers: pass it back to continue; 0 starts at the
beginning. It encodes the byte positions reached in both streams as
`stderr_pos * OFFSET_BASE + stdout_pos` (stdout files are capped well below 2^32 bytes).
Each reply holds complete lines only (a trailing line without a newline is returned once the
execution is terminal), stdout lines first, then stderr lines; at most `MAX_REPLY_BYTES`.

Waking. Readers never poll: they wait on a per-execution condition that the runner notifies
on every state change. Executors write the logs themselves, so while an execution runs
*and someone is waiting for its logs*, a watcher task compares their sizes every
`WATCH_INTERVAL` seconds and notifies on growth; with no reader waiting it sleeps. The task
starts with the first reader that waits, so runs nobody follows cost no task at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STDOUT = 1
STDERR = 2
OFFSET_BASE = 2**32
MAX_REPLY_BYTES = 1 << 20
WATCH_INTERVAL = 0.1


def split_offset(offset: int) -> tuple[int, int]:
    """(stdout position, stderr position) of an opaque offset."""
    offset = max(0, int(offset))
    return offset % OFFSET_BASE, offset // OFFSET_BASE


def join_offset(stdout_pos: int, stderr_pos: int) -> int:
    return stderr_pos * OFFSET_BASE + stdout_pos


@dataclass(slots=True)
class LogChunk:
    lines: list[tuple[int, str]]
    offset: int
    exhausted: bool  # both files read to their end


_NAMES = ("stdout", "stderr")
LogSource = Any  # a folder (Path) or an object with read(index, pos, size) -> bytes | None


def _fetch(source: LogSource, index: int, pos: int, size: int) -> bytes | None:
    if isinstance(source, Path):
        try:
            with (source / _NAMES[index]).open("rb") as f:
                f.seek(pos)
                return f.read(size)
        except FileNotFoundError:
            return None
    return source.read(index, pos, size)


def _read_stream(source: LogSource, index: int, pos: int, budget: int,
                 final: bool) -> tuple[list[str], int, bool]:
    """Complete lines of stream `index` from `pos`; returns (lines, new pos, reached end)."""
    data = _fetch(source, index, pos, budget + 1)
    if data is None:
        return [], pos, True
    more = len(data) > budget
    data = data[:budget]
    if not final or more:
        cut = data.rfind(b"\n")
        if cut < 0:
            # A single line longer than the budget is returned in pieces rather than never.
            if more:
                cut = len(data) - 1
            else:
                return [], pos, True
        data = data[: cut + 1]
    if not data:
        return [], pos, not more
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, pos + len(data), not more


def read_logs(source: LogSource, offset: int, *, final: bool,
              max_bytes: int = MAX_REPLY_BYTES) -> LogChunk:
    """Lines of stdout then stderr of `source` from `offset` (see module doc)."""
    out_pos, err_pos = split_offset(offset)
    out_lines, out_pos, out_end = _read_stream(source, 0, out_pos, max_bytes, final)
    used = sum(len(s) + 1 for s in out_lines)
    err_lines: list[str] = []
    err_end = False
    if out_end and used < max_bytes:
        err_lines, err_pos, err_end = _read_stream(source, 1, err_pos, max_bytes - used, final)
    lines = [(STDOUT, s) for s in out_lines] + [(STDERR, s) for s in err_lines]
    return LogChunk(lines, join_offset(out_pos, err_pos), out_end and err_end)


@dataclass
class _Channel:
    condition: asyncio.Condition = field(default_factory=asyncio.Condition)
    generation: int = 0
    waiters: int = 0
    reader_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    watch_sizes: Callable[[], list[int]] | None = None  # set while the execution runs
    watcher: asyncio.Task[None] | None = None


class LogHub:
    """Per-execution change notifications for log readers."""

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def _channel(self, execution_id: str) -> _Channel:
        channel = self._channels.get(execution_id)
        if channel is None:
            channel = self._channels[execution_id] = _Channel()
        return channel

    def generation(self, execution_id: str) -> int:
        return self._channel(execution_id).generation

    def notify(self, execution_id: str) -> None:
        """Something changed (state or output): wake every reader of this execution."""
        channel = self._channels.get(execution_id)
        if channel is None:
            return
        channel.generation += 1
        if channel.waiters:  # nobody waiting: nothing to wake
            asyncio.get_running_loop().create_task(self._wake(channel))

    @staticmethod
    async def _wake(channel: _Channel) -> None:
        async with channel.condition:
            channel.condition.notify_all()

    async def wait(self, execution_id: str, generation: int, timeout: float) -> bool:
        """Wait until notified after `generation`; False when `timeout` passed first."""
        channel = self._channel(execution_id)
        channel.waiters += 1
        channel.reader_arrived.set()
        if channel.watch_sizes is not None and channel.watcher is None:
            self._start_watcher(execution_id, channel)
        try:
            async with channel.condition:
                await asyncio.wait_for(
                    channel.condition.wait_for(lambda: channel.generation != generation),
                    timeout)
            return True
        except TimeoutError:
            return False
        finally:
            channel.waiters -= 1

    def forget(self, execution_id: str) -> None:
        channel = self._channels.get(execution_id)
        if channel is not None and channel.waiters == 0:
            del self._channels[execution_id]

    @contextlib.asynccontextmanager
    async def watching(self, execution_id: str,
                       sizes: list[Path] | Callable[[], list[int]]) -> AsyncIterator[None]:
        """While the body runs, notify readers when the logs grow (see module doc): `sizes`
        gives their sizes, or is the list of the log files."""
        channel = self._channel(execution_id)
        if isinstance(sizes, list):
            paths = sizes

            def sizes() -> list[int]:
                return [_size(p) for p in paths]

        channel.watch_sizes = sizes
        if channel.waiters:
            self._start_watcher(execution_id, channel)
        try:
            yield
        finally:
            channel.watch_sizes = None
            task, channel.watcher = channel.watcher, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _start_watcher(self, execution_id: str, channel: _Channel) -> None:
        assert channel.watch_sizes is not None
        channel.watcher = asyncio.get_running_loop().create_task(
            self._watch(execution_id, channel.watch_sizes))

    async def _watch(self, execution_id: str, measure: Callable[[], list[int]]) -> None:
        channel = self._channel(execution_id)
        sizes: list[int] = []
        while True:
            if channel.waiters == 0:
                channel.reader_arrived.clear()
                await channel.reader_arrived.wait()
            await asyncio.sleep(WATCH_INTERVAL)  # poll interval of the size watch
            now = measure()
            if now != sizes:
                sizes = now
                self.notify(execution_id)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


class LogReader:
    """Answers `ExecutionLogs` requests for the executions of one node."""

    def __init__(self, hub: LogHub, logs_of: Any, is_terminal: Any) -> None:
        """`logs_of(id) -> LogSource` (module doc); `is_terminal(id) -> bool`, raising
        NotFoundError."""
        self._hub = hub
        self._logs_of = logs_of
        self._is_terminal = is_terminal

    async def read(self, execution_id: str, offset: int, *, follow: bool = True,
                   wait_seconds: float = 0.0) -> dict[str, Any]:
        """The reply payload: `{"Lines": [{"Type", "Line"}], "Offset", "Done"}`.

        `Done` is true once every line has been returned and the execution is terminal (or,
        with `follow` false, once the lines written so far have been returned). With
        `wait_seconds` > 0 and nothing new, waits up to that long for new output.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            generation = self._hub.generation(execution_id)
            terminal = self._is_terminal(execution_id)
            chunk = read_logs(self._logs_of(execution_id), offset, final=terminal)
            done = chunk.exhausted and (terminal or not follow)
            remaining = deadline - time.monotonic()
            if chunk.lines or done or remaining <= 0:
                return {
                    "Lines": [{"Type": t, "Line": line} for t, line in chunk.lines],
                    "Offset": chunk.offset,
                    "Done": done,
                }
            await self._hub.wait(execution_id, generation, remaining)
