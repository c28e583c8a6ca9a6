"""Executor parts shared by the compute nodes of one process.

A process that runs many compute nodes (`bacalhau devstack --computes N --compute-processes
P`) must not hold N wasmtime Engines, N module caches or N Docker connection pools:

- `wasm_executor(cache_dir)`: one `WasmExecutor` (one Engine, one compiled-module cache) per
  cache directory. Executions are keyed by their globally unique ids, so nodes can share it.
- `docker_client()`: one connected Docker API client per process (None when no engine
  answers); each node still has its own `DockerExecutor` (containers are labelled with the
  node's id, and a node restores only its own).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bacalhau.executors.wasm import WasmExecutor

_lock = threading.Lock()
_wasm: dict[Path, WasmExecutor] = {}
_docker: dict[str, Any] = {}


def wasm_executor(cache_dir: Path) -> WasmExecutor:
    """The process's WASM executor for this module cache directory."""
    key = Path(cache_dir).resolve()
    with _lock:
        executor = _wasm.get(key)
        if executor is None:
            executor = _wasm[key] = WasmExecutor(cache_dir=key)
        return executor


def docker_client() -> Any | None:
    """Blocking, once per process: the connected Docker API client, None when no engine
    answers (asked again by the next call then: the engine may have started)."""
    from bacalhau.executors.docker import DockerExecutor

    with _lock:
        if "client" in _docker:
            return _docker["client"]
        probe = DockerExecutor("process")
        if not probe.connect():
            return None
        # the executor made and pinged the client exactly as every node would
        _docker["client"] = probe._api
        return _docker["client"]
