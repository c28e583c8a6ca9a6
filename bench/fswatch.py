"""Files and folders created under a directory tree, counted with Linux inotify (ctypes).

`CreationCounter(roots)` watches every folder under `roots` for IN_CREATE; a folder created
while it runs is watched as soon as its event arrives, and what was already created inside it
before the watch took hold is found by listing it (each path counted once). Counts include
what was created and removed again while watching (scratch folders, temporary files): the
figure is "created per execution", not "left behind". Native code's files count too (inotify
sees the kernel's view), unlike a Python audit hook.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
import time
from collections import Counter
from pathlib import Path

IN_CREATE = 0x00000100
IN_ISDIR = 0x40000000
IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")


class CreationCounter:
    """Count creations under `roots` between `start()` and `stop()`."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [Path(r) for r in roots]
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._dirs: dict[int, Path] = {}
        self.created: set[Path] = set()
        self.kinds: Counter[str] = Counter()
        self.overflowed = False
        # folders already gone when their creation was read: what was made inside them was
        # not seen, so the counts are a lower bound when this is not 0
        self.unwatched = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        for root in self.roots:
            for folder, _dirs, _files in os.walk(root):
                self._watch(Path(folder))
        self._thread.start()

    def stop(self) -> dict[str, int]:
        markers = self._drain()
        self._stop.set()
        self._thread.join(10)
        os.close(self._fd)
        for marker in markers:  # the counter's own files are not counted
            marker.unlink(missing_ok=True)
            if marker in self.created:
                self.created.discard(marker)
                self.kinds["file"] -= 1
        return {"created": len(self.created), "files": self.kinds["file"],
                "folders": self.kinds["folder"], "overflowed": int(self.overflowed),
                "unwatched_folders": self.unwatched}

    def _drain(self, timeout: float = 10.0) -> list[Path]:
        """Wait until the events queued so far are read (without this, the last creations
        before `stop` could go uncounted): inotify reports in order, so once a marker file
        made now is seen, so is everything before it. Returns the markers."""
        markers = []
        for root in self.roots:
            if root.is_dir():
                marker = root / f".fswatch-drain-{os.getpid()}"
                marker.touch()
                markers.append(marker)
        deadline = time.monotonic() + timeout
        while any(m not in self.created for m in markers) and time.monotonic() < deadline:
            time.sleep(0.01)  # poll until the reader thread saw the markers (deadline-bounded)
        return markers

    def _watch(self, folder: Path) -> bool:
        wd = self._add_watch(self._fd, os.fsencode(folder), IN_CREATE)
        if wd >= 0:
            self._dirs[wd] = folder
        return wd >= 0

    def _record(self, path: Path, is_dir: bool) -> None:
        if path in self.created:
            return
        self.created.add(path)
        self.kinds["folder" if is_dir else "file"] += 1
        if is_dir:
            watched = self._watch(path)
            try:  # what was created inside before the watch took hold
                entries = list(os.scandir(path))
            except OSError:  # gone already: what was made in it was not seen
                self.unwatched += 1
                return
            if not watched:
                self.unwatched += 1
            for entry in entries:
                self._record(Path(entry.path), entry.is_dir(follow_symlinks=False))

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                continue
            pos = 0
            while pos < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                name = data[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self.overflowed = True
                    continue
                folder = self._dirs.get(wd)
                if folder is None or not name or not mask & IN_CREATE:
                    continue
                self._record(folder / os.fsdecode(name), bool(mask & IN_ISDIR))
