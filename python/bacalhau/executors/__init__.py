"""Execution engines behind one `Executor` protocol (see `base.py`): `wasm` (wasmtime/WASI).

`node.py` builds them and hands them to the compute node keyed by `Executor.name`.
"""

from bacalhau.executors.base import Executor, PreparedInput, RunRequest
from bacalhau.executors.wasm import WasmExecutor

__all__ = ["Executor", "PreparedInput", "RunRequest", "WasmExecutor"]
