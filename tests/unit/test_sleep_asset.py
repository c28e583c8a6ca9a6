"""The `sleep.wasm` test asset: waits the given milliseconds (poll_oneoff on the monotonic
clock), writes "slept", and stays interruptible by the execution timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bacalhau.errors import ExecutorError
from bacalhau.executors.wasm import WasmExecutor
from tests.unit.test_wasm_executor import make_request, module_input

pytestmark = pytest.mark.unit


async def test_sleeps_then_writes_stdout_and_outputs(tmp_path: Path) -> None:
    executor = WasmExecutor(cache_dir=tmp_path / "cache")
    req = make_request(tmp_path, [module_input("sleep.wasm")], params={"Parameters": ["300"]})
    started = time.monotonic()
    result = await executor.run(req)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert elapsed >= 0.3
    assert req.stdout_path.read_text() == "slept\n"
    assert (req.results_dir / "outputs" / "slept.txt").read_text() == "slept\n"


async def test_execution_timeout_interrupts_the_wait(tmp_path: Path) -> None:
    executor = WasmExecutor(cache_dir=tmp_path / "cache")
    req = make_request(tmp_path, [module_input("sleep.wasm")], params={"Parameters": ["60000"]},
                       timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=r"timed out after 0\.3s"):
        await executor.run(req)
    assert time.monotonic() - started < 10
    assert not (req.results_dir / "outputs" / "slept.txt").exists()
