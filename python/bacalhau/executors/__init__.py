"""Execution engines behind one `Executor` protocol (see `base.py`): `wasm` (wasmtime/WASI) and
`docker` (the local Docker engine; `gpu.py` finds GPUs and maps them into containers).

`node.py` builds them and hands them to the compute node keyed by `Executor.name`.
"""

from bacalhau.executors.base import Executor, PreparedInput, RunRequest
from bacalhau.executors.docker import DockerExecutor
from bacalhau.executors.wasm import WasmExecutor

__all__ = ["DockerExecutor", "Executor", "PreparedInput", "RunRequest", "WasmExecutor"]
