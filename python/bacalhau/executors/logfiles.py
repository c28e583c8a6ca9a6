"""Log files that get a name only when someone needs one (issue 15: a lean compute path).

`UnnamedLogs` holds an execution's stdout and stderr in two unnamed files (`O_TMPFILE`) in
the execution dir's file system: disk-backed like any file, but with no directory entry. An
engine that opens files by path (wasmtime's `stdout_file`) is given `/proc/self/fd/<n>`, so it
writes straight into them; readers (`job logs`, the run's result) read them through the
descriptors. `name()` links both to their paths (`<execution dir>/stdout`, `stderr`), from
when on they are ordinary files; the runner names them when the logs must outlive the
process: the run goes on past `NAME_AFTER` seconds (a node restarted later still shows them),
a publisher packs them, the run failed, or they do not fit the execution record. When they
fit it (the record keeps the head of each stream, `MAX_OUTPUT_IN_RESULT` bytes), they are
closed unnamed and the record is where `job logs` reads them from.

`UnnamedLogs.create` answers None where the file system cannot make unnamed files (then the
engine writes named files as before). A node killed while a run is shorter than `NAME_AFTER`
loses that run's unnamed logs with the process; the execution fails on restart anyway.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from bacalhau.executors.base import MAX_OUTPUT_IN_RESULT

# A run still going after this many seconds gets named log files.
NAME_AFTER = 1.0
_STREAMS = 2  # stdout, stderr


class UnnamedLogs:
    """stdout (index 0) and stderr (index 1) of one run; see the module doc."""

    def __init__(self, fds: list[int], paths: tuple[Path, Path]) -> None:
        self._fds = fds
        self.paths = paths
        self.named = False
        self.closed = False

    @classmethod
    def create(cls, directory: Path, paths: tuple[Path, Path]) -> UnnamedLogs | None:
        """Two unnamed files in `directory`; None where its file system cannot make them."""
        flag = getattr(os, "O_TMPFILE", 0)
        if not flag or not os.path.isdir("/proc/self/fd"):
            return None
        fds: list[int] = []
        try:
            for _ in range(_STREAMS):
                fds.append(os.open(directory, flag | os.O_RDWR | os.O_CLOEXEC, 0o644))
        except OSError:  # e.g. EOPNOTSUPP on a file system without O_TMPFILE
            for fd in fds:
                os.close(fd)
            return None
        return cls(fds, paths)

    def engine_paths(self) -> tuple[str, str]:
        """Paths an engine opens to write stdout and stderr (they stay valid until close)."""
        return f"/proc/self/fd/{self._fds[0]}", f"/proc/self/fd/{self._fds[1]}"

    def sizes(self) -> list[int]:
        if self.closed:
            return [-1] * _STREAMS
        return [os.fstat(fd).st_size for fd in self._fds]

    def read(self, index: int, pos: int, size: int) -> bytes | None:
        """Up to `size` bytes of stream `index` from `pos` (the log readers' source API)."""
        if self.closed:
            return None
        return os.pread(self._fds[index], size, pos)

    def head(self, index: int, limit: int = MAX_OUTPUT_IN_RESULT) -> tuple[str, bool]:
        """The first `limit` bytes of stream `index` as text, and whether it was longer."""
        data = self.read(index, 0, limit + 1) or b""
        return data[:limit].decode("utf-8", errors="replace"), len(data) > limit

    def fits_record(self) -> bool:
        """True when both streams are whole in the execution record: at most
        `MAX_OUTPUT_IN_RESULT` bytes each, and valid UTF-8 (the record holds text)."""
        for fd in self._fds:
            data = os.pread(fd, MAX_OUTPUT_IN_RESULT + 1, 0)
            if len(data) > MAX_OUTPUT_IN_RESULT:
                return False
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True

    def name(self) -> None:
        """Link both files to their paths (replacing what an earlier run left there);
        idempotent."""
        if self.named or self.closed:
            return
        proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for fd, path in zip(self._fds, self.paths, strict=True):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
        finally:
            os.close(proc)
        self.named = True

    def close(self) -> None:
        """Close the descriptors: unnamed files are gone from then on; idempotent."""
        if self.closed:
            return
        self.closed = True
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class RecordLogs:
    """A finished run's logs as kept whole in its execution record (the log readers' source
    API over two byte strings)."""

    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        self._streams = (stdout, stderr)

    def read(self, index: int, pos: int, size: int) -> bytes | None:
        return self._streams[index][pos:pos + size]
