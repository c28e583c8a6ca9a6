"""The wasm executor runs real WASI modules (python/bacalhau/assets) with wasmtime."""

from __future__ import annotations

import asyncio
import importlib.util
import time
import uuid
from pathlib import Path

import pytest
import wasmtime

from bacalhau.assets import ASSETS_DIR, asset_path
from bacalhau.errors import ExecutorError
from bacalhau.executors.base import Executor, PreparedInput, RunRequest
from bacalhau.executors.wasm import (
    TRAP_EXIT_CODE,
    WasmExecutor,
    module_name_from_bytes,
    resolve_target,
)
from bacalhau.models import InputSource, Resources, ResultPath, SpecConfig

pytestmark = pytest.mark.unit

SAMPLE = (
    "The quick brown fox\njumps over\tthe lazy dog.\n\n"
    "  leading spaces and trailing   \r\nunicode: caf\u00e9 \u00fcber na\u00efve\n"
    "vertical\x0btab and form\x0cfeed\nno newline at the end"
)


def py_wc(data: bytes) -> str:
    lines = data.count(b"\n")
    return f"{lines} {len(data.split())} {len(data)}\n"


def file_input(host: Path, target: str, read_write: bool = False) -> PreparedInput:
    source = InputSource(SpecConfig("local", {"SourcePath": str(host)}), alias="", target=target)
    return PreparedInput(source=source, host_path=host, target=target, read_write=read_write)


def module_input(name: str, target: str = "/wasm/main.wasm") -> PreparedInput:
    return file_input(asset_path(name), target)


def make_request(
    tmp_path: Path,
    inputs: list[PreparedInput],
    *,
    params: dict | None = None,
    env: dict[str, str] | None = None,
    result_paths: list[ResultPath] | None = None,
    timeout: float | None = None,
    memory: int = 0,
) -> RunRequest:
    exec_id = f"e-{uuid.uuid4()}"
    exec_dir = tmp_path / exec_id
    results = exec_dir / "results"
    paths = [ResultPath("outputs", "/outputs")] if result_paths is None else result_paths
    for rp in paths:
        (results / rp.name).mkdir(parents=True)
    engine_params = {"EntryModule": "/wasm/main.wasm"}
    engine_params.update(params or {})
    return RunRequest(
        execution_id=exec_id,
        job_id=f"j-{uuid.uuid4()}",
        job_type="batch",
        partition_index=0,
        partition_count=1,
        engine=SpecConfig("wasm", engine_params),
        env=dict(env or {}),
        inputs=inputs,
        result_paths=paths,
        results_dir=results,
        stdout_path=exec_dir / "logs" / "stdout",
        stderr_path=exec_dir / "logs" / "stderr",
        resources=Resources(memory=memory),
        timeout=timeout,
    )


@pytest.fixture()
def executor(tmp_path: Path) -> WasmExecutor:
    return WasmExecutor(cache_dir=tmp_path / "module-cache")


@pytest.fixture()
def inputs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "inputs"
    d.mkdir()
    (d / "input.txt").write_bytes(SAMPLE.encode())
    return d


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.005)


def test_is_an_executor(executor: WasmExecutor) -> None:
    assert isinstance(executor, Executor)
    assert executor.name == "wasm"
    assert executor.is_installed()


async def test_network_http_is_refused_with_the_reason(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    from bacalhau.models import NetworkConfig, Task

    task = Task(name="main", engine=SpecConfig("wasm", {"EntryModule": "/wasm/main.wasm"}),
                network=NetworkConfig(type="HTTP", domains=["example.com"]))
    (problem,) = await executor.check_task(task)
    assert "cannot run a Network HTTP task: a WASI module has no sockets" in problem
    assert "use the docker engine" in problem
    for other in ("", "None", "Host"):  # a module has no sockets: nothing else to refuse
        task.network = NetworkConfig(type=other)
        assert await executor.check_task(task) == []
    req = make_request(tmp_path, [module_input("wordcount.wasm"),
                                  file_input(inputs_dir, "/inputs")])
    req.network = NetworkConfig(type="HTTP", domains=["example.com"])
    with pytest.raises(ExecutorError, match="has no sockets"):
        await executor.run(req)
    assert not (req.results_dir / "outputs" / "count.txt").exists()  # it never ran


async def test_wordcount_matches_python(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    req = make_request(
        tmp_path, [module_input("wordcount.wasm"), file_input(inputs_dir, "/inputs")]
    )
    result = await executor.run(req)
    expected = py_wc(SAMPLE.encode())
    assert result.exit_code == 0, result.stderr
    assert result.error_msg == ""
    assert result.stdout == expected
    assert req.stdout_path.read_text() == expected
    assert (req.results_dir / "outputs" / "count.txt").read_text() == expected


async def test_inline_module_from_memory_and_unnamed_logs(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    """The lean path (issue 15): the module comes as bytes (never a file), the logs go to
    unnamed files that get names only when asked; nothing is left in the execution dir."""
    from bacalhau.executors.logfiles import UnnamedLogs

    exec_dir = tmp_path / "exec"
    (exec_dir / "outputs").mkdir(parents=True)
    wasm = asset_path("wordcount.wasm").read_bytes()
    module = PreparedInput(source=InputSource(SpecConfig("inline", {}), target="/wasm/m.wasm"),
                           host_path=Path(), target="/wasm/m.wasm", data=wasm)
    paths = (exec_dir / "stdout", exec_dir / "stderr")
    logs = UnnamedLogs.create(exec_dir, paths)
    assert logs is not None, "the test file system cannot make unnamed files"
    req = make_request(tmp_path, [module, file_input(inputs_dir, "/inputs")],
                       params={"EntryModule": "/wasm/m.wasm"})
    req.results_dir, req.stdout_path, req.stderr_path = exec_dir, *paths
    req.execution_dir, req.logs = exec_dir, logs
    assert executor.in_memory_targets(req.engine) == {"/wasm/m.wasm"}
    try:
        result = await executor.run(req)
        expected = py_wc(SAMPLE.encode())
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected
        assert sorted(p.name for p in exec_dir.iterdir()) == ["outputs"]
        assert logs.fits_record() and logs.read(0, 0, 100) == expected.encode()
        logs.name()
        assert paths[0].read_text() == expected and paths[1].read_bytes() == b""
    finally:
        logs.close()
    assert (exec_dir / "stdout").read_text() == expected  # a named file outlives the fds


async def test_wordcount_larger_than_one_read_buffer(
    executor: WasmExecutor, tmp_path: Path
) -> None:
    data = (SAMPLE.encode() + b" \n") * 5000  # ~600 KB, many 64 KiB reads
    book = tmp_path / "book.txt"
    book.write_bytes(data)
    req = make_request(
        tmp_path,
        [module_input("wordcount.wasm"), file_input(book, "/data/book.txt")],
        params={"Parameters": ["/data/book.txt"]},
    )
    result = await executor.run(req)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == py_wc(data)


async def test_missing_file_exits_1_with_message(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(
        tmp_path,
        [module_input("wordcount.wasm")],
        params={"Parameters": ["/inputs/nope.txt"]},
    )
    result = await executor.run(req)
    assert result.exit_code == 1
    assert "cannot open /inputs/nope.txt" in result.stderr
    assert result.stdout == ""


async def test_args_and_env_reach_the_module(executor: WasmExecutor, tmp_path: Path) -> None:
    env = {"GREETING": "hello world", "BACALHAU_JOB_ID": "j-123"}
    req = make_request(
        tmp_path,
        [module_input("probe.wasm")],
        params={"Parameters": ["first", "second arg", ""]},
        env=env,
    )
    result = await executor.run(req)
    assert result.exit_code == 0
    args_part, env_part = result.stdout.split("--\n")
    # argv[0] is the module name from its name section
    assert args_part.splitlines() == ["probe", "first", "second arg", ""]
    assert sorted(env_part.splitlines()) == sorted(f"{k}={v}" for k, v in env.items())


async def test_custom_entrypoint(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("probe.wasm")], params={"Entrypoint": "hello"})
    result = await executor.run(req)
    assert (result.exit_code, result.stdout) == (0, "hello\n")


async def test_unknown_entrypoint_is_a_clear_error(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("probe.wasm")], params={"Entrypoint": "nope"})
    expected = r'entrypoint "nope".*exported functions: _start, hello'
    with pytest.raises(ExecutorError, match=expected):
        await executor.run(req)


async def test_read_only_input_dir_cannot_be_written(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    before = (inputs_dir / "input.txt").read_bytes()
    for path in ("/inputs/new.txt", "/inputs/input.txt"):
        req = make_request(
            tmp_path,
            [module_input("touch.wasm"), file_input(inputs_dir, "/inputs")],
            params={"Parameters": [path]},
        )
        result = await executor.run(req)
        assert result.exit_code == 1, path
        assert f"cannot write {path}" in result.stderr
    assert sorted(p.name for p in inputs_dir.iterdir()) == ["input.txt"]
    assert (inputs_dir / "input.txt").read_bytes() == before


async def test_read_only_file_input_cannot_be_written(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    source = inputs_dir / "input.txt"
    before = source.read_bytes()
    req = make_request(
        tmp_path,
        [module_input("touch.wasm"), file_input(source, "/data/input.txt")],
        params={"Parameters": ["/data/input.txt"]},
    )
    result = await executor.run(req)
    assert result.exit_code == 1
    assert source.read_bytes() == before


async def test_read_write_input_dir_is_writable(
    executor: WasmExecutor, tmp_path: Path, inputs_dir: Path
) -> None:
    req = make_request(
        tmp_path,
        [module_input("touch.wasm"), file_input(inputs_dir, "/inputs", read_write=True)],
        params={"Parameters": ["/inputs/new.txt"]},
    )
    result = await executor.run(req)
    assert result.exit_code == 0, result.stderr
    assert (inputs_dir / "new.txt").read_text() == "touched\n"


async def test_outputs_land_in_results_dir(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(
        tmp_path,
        [module_input("touch.wasm")],
        params={"Parameters": ["/results/deep/x.txt"]},
        result_paths=[ResultPath("outputs", "/outputs"), ResultPath("more", "/results/deep")],
    )
    result = await executor.run(req)
    assert result.exit_code == 0, result.stderr
    assert (req.results_dir / "more" / "x.txt").read_text() == "touched\n"


async def test_trap_is_reported_in_the_result(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("trap.wasm")])
    result = await executor.run(req)
    assert result.exit_code == TRAP_EXIT_CODE
    assert result.error_msg.startswith("wasm trap:")
    assert "unreachable" in result.error_msg


async def test_infinite_loop_is_killed_by_timeout(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("loop.wasm")], timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ExecutorError, match=r"execution timed out after 0\.3s"):
        await executor.run(req)
    assert time.monotonic() - started < 10
    assert not executor.is_running(req.execution_id)


async def test_infinite_loop_is_stopped_by_cancel(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("loop.wasm")])
    task = asyncio.create_task(executor.run(req))
    # the event loop stays free while the module spins in its worker thread
    await wait_for(lambda: executor.is_running(req.execution_id))
    await executor.cancel(req.execution_id)
    with pytest.raises(ExecutorError, match="was cancelled"):
        await asyncio.wait_for(task, timeout=10)


async def test_cancelling_the_task_stops_the_module(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("loop.wasm")])
    task = asyncio.create_task(executor.run(req))
    await wait_for(lambda: executor.is_running(req.execution_id))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    assert not executor.is_running(req.execution_id)


async def test_memory_limit_is_enforced(executor: WasmExecutor, tmp_path: Path) -> None:
    unlimited = await executor.run(make_request(tmp_path, [module_input("memhog.wasm")]))
    assert unlimited.exit_code == 0  # 64 MiB grows fine without a limit
    limited = await executor.run(
        make_request(tmp_path, [module_input("memhog.wasm")], memory=1 << 20)
    )
    assert limited.exit_code == 3  # memory.grow refused past 1 MiB


async def test_initial_memory_over_limit_fails(executor: WasmExecutor, tmp_path: Path) -> None:
    big = tmp_path / "big.wasm"
    wat = '(module (memory (export "memory") 32) (func (export "_start")))'
    big.write_bytes(wasmtime.wat2wasm(wat))
    req = make_request(tmp_path, [file_input(big, "/wasm/main.wasm")], memory=1 << 20)
    with pytest.raises(ExecutorError, match=r"memory limit exceeded: .* needs 2097152 bytes"):
        await executor.run(req)
    # the need is kept per compiled module: a second run is judged against its own limit
    with pytest.raises(ExecutorError, match="needs 2097152 bytes"):
        await executor.run(make_request(tmp_path, [file_input(big, "/wasm/main.wasm")],
                                        memory=(2 << 20) - 1))
    fits = await executor.run(make_request(tmp_path, [file_input(big, "/wasm/main.wasm")],
                                           memory=2 << 20))
    assert fits.exit_code == 0


async def test_module_cache_avoids_recompiling(tmp_path: Path, inputs_dir: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = WasmExecutor(cache_dir=cache_dir)
    inputs = [module_input("wordcount.wasm"), file_input(inputs_dir, "/inputs")]
    for _ in range(2):
        result = await first.run(make_request(tmp_path, inputs))
        assert result.exit_code == 0
    assert first.cache_stats.compiles == 1
    assert first.cache_stats.memory_hits == 1
    assert len(list(cache_dir.rglob("*.cwasm"))) == 1

    # a fresh executor (e.g. after a restart) loads the serialized module from disk
    second = WasmExecutor(cache_dir=cache_dir)
    result = await second.run(make_request(tmp_path, inputs))
    assert result.stdout == py_wc(SAMPLE.encode())
    assert (second.cache_stats.compiles, second.cache_stats.disk_hits) == (0, 1)


async def test_corrupt_cache_file_is_recompiled(tmp_path: Path, inputs_dir: Path) -> None:
    cache_dir = tmp_path / "cache"
    inputs = [module_input("wordcount.wasm"), file_input(inputs_dir, "/inputs")]
    await WasmExecutor(cache_dir=cache_dir).run(make_request(tmp_path, inputs))
    (cached,) = cache_dir.rglob("*.cwasm")
    cached.write_bytes(b"not a module")
    again = WasmExecutor(cache_dir=cache_dir)
    result = await again.run(make_request(tmp_path, inputs))
    assert result.exit_code == 0
    assert again.cache_stats.compiles == 1


LIB_NAMED = '(module $greet (func (export "answer") (result i32) i32.const 40))'
LIB_UNNAMED = '(module (func (export "two") (result i32) i32.const 2))'
MAIN_IMPORTS = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "greet" "answer" (func $answer (result i32)))
  (import "mathlib" "two" (func $two (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.add (call $answer) (call $two)))))
"""


async def test_import_modules_are_linked_by_name(executor: WasmExecutor, tmp_path: Path) -> None:
    files = {"lib.wasm": LIB_NAMED, "mathlib.wasm": LIB_UNNAMED, "main.wasm": MAIN_IMPORTS}
    for name, wat in files.items():
        (tmp_path / name).write_bytes(wasmtime.wat2wasm(wat))
    inputs = [
        file_input(tmp_path / "main.wasm", "/wasm/main.wasm"),
        file_input(tmp_path / "lib.wasm", "/wasm/imports/lib.wasm"),
        file_input(tmp_path / "mathlib.wasm", "/wasm/imports/mathlib.wasm"),
    ]
    imports = ["/wasm/imports/lib.wasm", "/wasm/imports/mathlib.wasm"]
    result = await executor.run(
        make_request(tmp_path, inputs, params={"ImportModules": imports})
    )
    assert result.exit_code == 42

    only_lib = make_request(tmp_path, inputs[:2], params={"ImportModules": imports[:1]})
    with pytest.raises(ExecutorError, match=r"`mathlib::two`.*linked here: greet\)"):
        await executor.run(only_lib)


def test_module_name_from_name_section() -> None:
    assert module_name_from_bytes(wasmtime.wat2wasm(LIB_NAMED)) == "greet"
    assert module_name_from_bytes(wasmtime.wat2wasm(LIB_UNNAMED)) is None
    assert module_name_from_bytes(b"not wasm") is None


async def test_entry_module_must_be_an_input_target(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [module_input("probe.wasm", "/wasm/other.wasm")])
    with pytest.raises(ExecutorError, match=r'EntryModule "/wasm/main\.wasm" is not the target'):
        await executor.run(req)


async def test_entry_module_inside_a_directory_input(
    executor: WasmExecutor, tmp_path: Path
) -> None:
    d = tmp_path / "download"
    d.mkdir()
    (d / "probe.wasm").write_bytes(asset_path("probe.wasm").read_bytes())
    req = make_request(
        tmp_path, [file_input(d, "/wasm")], params={"EntryModule": "/wasm/probe.wasm"}
    )
    assert (await executor.run(req)).exit_code == 0
    # the directory itself works too when it holds exactly one module
    req = make_request(tmp_path, [file_input(d, "/wasm")], params={"EntryModule": "/wasm"})
    assert (await executor.run(req)).stdout.startswith("probe\n")


async def test_invalid_module_bytes(executor: WasmExecutor, tmp_path: Path) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"\0asm garbage")
    req = make_request(tmp_path, [file_input(junk, "/wasm/main.wasm")])
    with pytest.raises(ExecutorError, match="not a valid WebAssembly module"):
        await executor.run(req)


def test_resolve_target_refuses_symlink_escape(tmp_path: Path) -> None:
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (tmp_path / "secret.wasm").write_bytes(b"x")
    (mounted / "ok.wasm").write_bytes(b"x")
    (mounted / "link.wasm").symlink_to(tmp_path / "secret.wasm")
    inputs = [file_input(mounted, "/wasm")]
    assert resolve_target(inputs, "/wasm/ok.wasm") == mounted / "ok.wasm"
    assert resolve_target(inputs, "/wasm/link.wasm") is None
    assert resolve_target(inputs, "/wasm/../secret.wasm") is None
    assert resolve_target(inputs, "/other/ok.wasm") is None


def test_check_reports_spec_problems(executor: WasmExecutor) -> None:
    assert executor.check(SpecConfig("wasm", {"EntryModule": "/wasm/main.wasm"})) == []
    assert executor.check(SpecConfig("WASM", {"entrymodule": "/m.wasm", "parameters": ["a"]})) == []
    problems = executor.check(SpecConfig("wasm", {}))
    assert len(problems) == 1 and "EntryModule is required" in problems[0]
    problems = executor.check(
        SpecConfig(
            "wasm",
            {
                "EntryModule": {"Source": "old style"},
                "Entrypoint": 3,
                "Parameters": "not a list",
                "ImportModules": ["relative.wasm"],
            },
        )
    )
    joined = "\n".join(problems)
    assert len(problems) == 4
    for word in ("EntryModule must be a string", "Entrypoint", "Parameters", "relative.wasm"):
        assert word in joined
    assert executor.check(SpecConfig("docker", {"EntryModule": "/m.wasm"})) == [
        'engine type "docker" is not "wasm"'
    ]


async def test_run_refuses_an_invalid_spec(executor: WasmExecutor, tmp_path: Path) -> None:
    req = make_request(tmp_path, [], params={"EntryModule": ""})
    with pytest.raises(ExecutorError, match="EntryModule is required"):
        await executor.run(req)


def test_committed_wasm_matches_wat() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_wasm_assets.py"
    spec = importlib.util.spec_from_file_location("build_wasm_assets", script)
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.build(ASSETS_DIR, check=True) == []
    assert {p.stem for p in ASSETS_DIR.glob("*.wat")} == {p.stem for p in ASSETS_DIR.glob("*.wasm")}


async def test_hidden_memory_over_limit_fails_at_instantiation(
    executor: WasmExecutor, tmp_path: Path
) -> None:
    big = tmp_path / "big.wasm"
    big.write_bytes(wasmtime.wat2wasm('(module (memory 32) (func (export "_start")))'))
    req = make_request(tmp_path, [file_input(big, "/wasm/main.wasm")], memory=1 << 20)
    with pytest.raises(ExecutorError, match="memory limit exceeded while instantiating"):
        await executor.run(req)


async def test_trap_in_start_function(executor: WasmExecutor, tmp_path: Path) -> None:
    wasm = tmp_path / "start.wasm"
    wat = '(module (func $boom unreachable) (start $boom) (func (export "_start")))'
    wasm.write_bytes(wasmtime.wat2wasm(wat))
    result = await executor.run(make_request(tmp_path, [file_input(wasm, "/wasm/main.wasm")]))
    assert result.exit_code == TRAP_EXIT_CODE
    assert "unreachable" in result.error_msg


async def test_lone_input_file_of_the_execution_is_mounted_without_staging(
    executor: WasmExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bacalhau.executors.wasm_mounts as wasm_module

    def no_staging(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a lone file in an execution's own dir needs no staging dir")

    req = make_request(tmp_path, [])
    module_dir = req.results_dir.parent / "inputs" / "1" / "inline-m"
    module_dir.mkdir(parents=True)
    (module_dir / "main.wasm").write_bytes(asset_path("touch.wasm").read_bytes())
    own = req.results_dir.parent / "inputs" / "0" / "inline-x"
    own.mkdir(parents=True)
    (own / "input.txt").write_bytes(b"before\n")
    req.inputs.extend([file_input(module_dir / "main.wasm", "/wasm/main.wasm"),
                       file_input(own / "input.txt", "/inputs/input.txt")])
    monkeypatch.setattr(wasm_module, "_stage_file", no_staging)
    for path in ("/inputs/input.txt", "/inputs/new.txt"):  # read-only like a staging dir
        req.engine.params["Parameters"] = [path]
        result = await executor.run(req)
        assert result.exit_code == 1 and f"cannot write {path}" in result.stderr
    assert sorted(p.name for p in own.iterdir()) == ["input.txt"]
    assert (own / "input.txt").read_bytes() == b"before\n"
    # the module itself lies outside the execution dir: it is still staged
    monkeypatch.undo()
    count_req = make_request(tmp_path, [module_input("wordcount.wasm"),
                                        file_input(own / "input.txt", "/inputs/input.txt")],
                             params={"Parameters": ["/inputs/input.txt"]})
    result = await executor.run(count_req)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1 1 7\n"


async def test_a_guest_path_with_dot_dot_is_refused_every_time(executor: WasmExecutor,
                                                               tmp_path: Path,
                                                               inputs_dir: Path) -> None:
    """Guest paths are normalised once and cached (wasm_mounts.absolute_guest): the ".."
    check still applies on every run, and "a..b" is an ordinary name."""
    for _ in range(2):
        req = make_request(tmp_path, [module_input("wordcount.wasm"),
                                      file_input(inputs_dir, "/inputs/../etc")],
                           params={"Parameters": ["/etc/input.txt"]})
        with pytest.raises(ExecutorError, match=r'must not contain "\.\."'):
            await executor.run(req)
    req = make_request(tmp_path, [module_input("wordcount.wasm"),
                                  file_input(inputs_dir, "/inputs..x")],
                       params={"Parameters": ["/inputs..x/input.txt"]})
    result = await executor.run(req)
    assert (result.exit_code, result.stdout) == (0, py_wc(SAMPLE.encode()))
