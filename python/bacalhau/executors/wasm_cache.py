"""Compiled wasm modules: the module cache (sha256 of the bytes -> compiled module, an
in-memory LRU over wasmtime's serialized modules on disk) and the module name a binary
declares in its `name` custom section.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import wasmtime

log = logging.getLogger(__name__)

MEMORY_CACHE_SIZE = 64


@dataclass
class ModuleCacheStats:
    """Counters of the module cache (tests and metrics read them)."""

    compiles: int = 0
    memory_hits: int = 0
    disk_hits: int = 0


class ModuleCache:
    """Compiled modules by sha256 of their bytes: an in-memory LRU over an on-disk store.

    The disk store holds wasmtime's serialized (precompiled) modules, `<sha256>.cwasm`, under a
    folder per wasmtime version. Deserializing trusts those bytes, so the folder must be
    private to this node (it is created with mode 0700). A file wasmtime refuses (other
    version or settings) is recompiled and replaced.
    """

    def __init__(self, engine: wasmtime.Engine, cache_dir: Path | None) -> None:
        self._engine = engine
        self._dir: Path | None = None
        if cache_dir is not None:
            try:
                version = metadata.version("wasmtime")
            except metadata.PackageNotFoundError:  # pragma: no cover
                version = "unknown"
            self._dir = Path(cache_dir) / f"wasmtime-{version}"
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._memory: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self.stats = ModuleCacheStats()

    def path_for(self, digest: str) -> Path | None:
        return self._dir / f"{digest}.cwasm" if self._dir is not None else None

    def get(self, data: bytes) -> wasmtime.Module:
        """The compiled module for `data`; compiles only on a miss in memory and on disk."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            module = self._memory.get(digest)
            if module is not None:
                self._memory.move_to_end(digest)
                self.stats.memory_hits += 1
                return module
            key_lock = self._key_locks.setdefault(digest, threading.Lock())
        with key_lock:
            with self._lock:
                module = self._memory.get(digest)
                if module is not None:
                    self.stats.memory_hits += 1
                    return module
            module = self._load(digest)
            if module is None:
                module = wasmtime.Module(self._engine, data)
                with self._lock:
                    self.stats.compiles += 1
                self._store(digest, module)
            with self._lock:
                self._memory[digest] = module
                while len(self._memory) > MEMORY_CACHE_SIZE:
                    self._memory.popitem(last=False)
                self._key_locks.pop(digest, None)
            return module

    def _load(self, digest: str) -> wasmtime.Module | None:
        path = self.path_for(digest)
        if path is None or not path.is_file():
            return None
        try:
            module = wasmtime.Module.deserialize_file(self._engine, str(path))
        except wasmtime.WasmtimeError as exc:
            log.info("recompiling cached module %s: %s", path.name, exc)
            return None
        with self._lock:
            self.stats.disk_hits += 1
        return module

    def _store(self, digest: str, module: wasmtime.Module) -> None:
        path = self.path_for(digest)
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(bytes(module.serialize()))
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only disk only costs a recompile later
            log.warning("could not write module cache file %s: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()


def module_name_from_bytes(data: bytes) -> str | None:
    """The module name in the `name` custom section (subsection 0), or None."""

    def leb(buf: bytes, pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            if pos >= len(buf):
                raise ValueError("truncated LEB128")
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, pos

    if data[:4] != b"\0asm":
        return None
    pos = 8
    try:
        while pos < len(data):
            section_id = data[pos]
            size, pos = leb(data, pos + 1)
            end = pos + size
            if section_id == 0:
                name_len, p = leb(data, pos)
                if data[p : p + name_len] == b"name":
                    p += name_len
                    while p < end:
                        sub_id = data[p]
                        sub_size, p = leb(data, p + 1)
                        if sub_id == 0:
                            n, q = leb(data, p)
                            return data[q : q + n].decode("utf-8")
                        p += sub_size
            pos = end
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return None
