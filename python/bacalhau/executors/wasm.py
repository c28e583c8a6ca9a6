"""The `wasm` engine: runs WASI preview1 modules with wasmtime (reference §4.1).

Flow of one run: resolve `EntryModule` (and `ImportModules`) — the *target paths* of input
sources — to host files -> compile, or take from the module cache (sha256 of the bytes, kept
in memory and serialized under `cache_dir`) -> build a store (memory limit from
`resources.memory`, an epoch deadline checked on every tick) and a WASI context (argv, env,
stdout/stderr files, preopened directories) -> link WASI and the import modules -> call the
entrypoint on a worker thread of its own (daemon threads, reused while idle: see
`_WorkerThreads`), so the event loop stays free.

Modules given inline (`data:` URLs) are never written to disk: `in_memory_targets` names the
module targets, the runner hands their bytes over (`PreparedInput.data`), and the module cache
compiles them by content hash; such a module is not visible in the guest's file system.

Split by concern: the WASI file system mapping of inputs and result paths (staging dirs in
`<execution dir>/.wasm-mounts/`, removed after the run) in `wasm_mounts.py`; the
module cache and module names in `wasm_cache.py`; interruption (epochs, deadline callback,
ticker) in `wasm_deadline.py`.

Outcomes (reference §2.3: only system errors fail an execution):
- the module returns or calls `proc_exit(n)` -> RunCommandResult with exit code 0 / n;
- the module traps (e.g. `unreachable`, out-of-bounds access) -> the program crashed, like a
  container process dying on a signal: RunCommandResult with `exit_code = TRAP_EXIT_CODE`
  and `error_msg` naming the trap;
- spec errors, a missing module, unknown imports, the memory limit refusing instantiation,
  the execution timeout and cancellation -> `errors.ExecutorError`.
Once a memory limit is set (it applies to each linear memory), `memory.grow` past it returns
-1 to the module, which decides what to do (most language runtimes abort with a trap).

Import modules are registered in the linker under their *module name*: the name from the
module's `name` custom section if it has one (`(module $mylib ...)` in WAT), else the file
stem of its target path (`/wasm/mylib.wasm` -> `mylib`). argv[0] is the entry module's name
under the same rule.

Interruption uses wasmtime epochs (`wasm_deadline.py`): a timer on the event loop increments
the engine epoch every `tick` seconds while executions run, and every store carries a deadline
callback that traps when the execution is cancelled or past its timeout. Blocking host calls
(e.g. a long `poll_oneoff` sleep) are interrupted only when they return. `is_installed()` is
False on a wasmtime-py without the deadline callback binding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import shutil
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import wasmtime

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import RunRequest, read_output_head, resolve_from_thread
from bacalhau.executors.wasm_cache import ModuleCache, ModuleCacheStats, module_name_from_bytes
from bacalhau.executors.wasm_deadline import (
    SET_DEADLINE_CALLBACK,
    STATES,
    STOP_CANCELLED,
    STOP_TIMEOUT,
    RunState,
    Ticker,
    install_deadline,
)
from bacalhau.executors.wasm_mounts import absolute_guest, preopens, resolve_target
from bacalhau.models import NetworkConfig, RunCommandResult, SpecConfig

__all__ = ["TRAP_EXIT_CODE", "ModuleCache", "ModuleCacheStats", "WasmExecutor",
           "module_name_from_bytes", "resolve_target"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Exit code reported when a module traps: 128 + SIGABRT, what a shell shows for a crashed
# process, so a trap reads as "the program crashed", not as a clean exit.
TRAP_EXIT_CODE = 134
DEFAULT_ENTRYPOINT = "_start"
DEFAULT_TICK_S = 0.01
MEMORY_CACHE_SIZE = 64
WASM_PAGE = 65536


# ---------------------------------------------------------------------------------------------
# Helpers


def _string_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@dataclass
class _ModuleFile:
    target: str
    host_path: Path | None  # None: handed over in memory
    data: bytes
    name: str


def module_targets(engine: SpecConfig) -> set[str]:
    """The guest paths of the entry and import modules of a wasm engine spec (normalized)."""
    targets = [engine.param("EntryModule"), *(_string_list(engine.param("ImportModules")) or [])]
    return {absolute_guest(t) for t in targets if isinstance(t, str) and t}


# ---------------------------------------------------------------------------------------------
# Executor


def network_problems(network: NetworkConfig | None) -> list[str]:
    """Network HTTP is refused: a WASI preview1 module gets no sockets, so there is no traffic
    for a domain allow-list to let through; the other types change nothing for it."""
    if network is not None and (network.type or "").lower() == "http":
        return ["the wasm engine cannot run a Network HTTP task: a WASI module has no sockets, "
                "so it could reach none of the allowed domains; use the docker engine for "
                "jobs that fetch from the network (docker run --network http --domain ...), "
                "or give the wasm job its data as inputs (-i)"]
    return []


class WasmExecutor:
    """Runs `wasm` engine specs with wasmtime; see the module docstring for the mapping."""

    name = "wasm"
    # wasmtime opens its stdout/stderr by path: unnamed log files work (RunRequest.logs)
    accepts_unnamed_logs = True

    def __init__(self, cache_dir: Path | None = None, *, tick: float = DEFAULT_TICK_S) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._cache = ModuleCache(self._engine, cache_dir)
        self._ticker = Ticker(self._engine, tick)
        self._running: dict[str, RunState] = {}
        # A linker with only WASI defined holds nothing of a store: each worker thread keeps
        # one for the runs without import modules (defining WASI costs more than the run).
        self._thread_local = threading.local()

    @property
    def cache_stats(self) -> ModuleCacheStats:
        return self._cache.stats

    @property
    def module_cache(self) -> ModuleCache:
        return self._cache

    def is_installed(self) -> bool:
        return SET_DEADLINE_CALLBACK is not None

    def check(self, engine: SpecConfig) -> list[str]:
        problems: list[str] = []
        if engine.type.lower() != "wasm":
            problems.append(f'engine type "{engine.type}" is not "wasm"')
        entry = engine.param("EntryModule")
        if entry is None or entry == "":
            problems.append(
                "Engine.Params.EntryModule is required: the target path of the input source "
                "that holds the .wasm file (e.g. /wasm/main.wasm)"
            )
        elif not isinstance(entry, str):
            problems.append(
                "Engine.Params.EntryModule must be a string (the target path of an input "
                f"source), got {type(entry).__name__}"
            )
        elif not entry.startswith("/"):
            problems.append(f'Engine.Params.EntryModule "{entry}" must be an absolute path')
        entrypoint = engine.param("Entrypoint")
        if entrypoint is not None and not isinstance(entrypoint, str):
            problems.append(
                f"Engine.Params.Entrypoint must be a string, got {type(entrypoint).__name__}"
            )
        if _string_list(engine.param("Parameters")) is None:
            problems.append("Engine.Params.Parameters must be a list of strings")
        imports = _string_list(engine.param("ImportModules"))
        if imports is None:
            problems.append(
                "Engine.Params.ImportModules must be a list of target paths (strings)"
            )
        else:
            problems.extend(
                f'Engine.Params.ImportModules: "{p}" must be an absolute path'
                for p in imports
                if not p.startswith("/")
            )
        return problems

    def in_memory_targets(self, engine: SpecConfig) -> set[str]:
        """Input targets this engine reads as bytes (the modules): see the module doc."""
        return module_targets(engine)

    BID_CHECKS_ARE_LOCAL = True  # check_task reads the spec only (compute/bidder.py)

    async def check_task(self, task: Any) -> list[str]:
        """Bid-time checks beyond the engine params: the task's network."""
        return network_problems(task.network)

    async def run(self, request: RunRequest) -> RunCommandResult:
        if refused := network_problems(request.network):
            raise ExecutorError(refused[0], hint="run it with the docker engine")
        problems = self.check(request.engine)
        if problems:
            raise ExecutorError(
                "invalid wasm engine spec: " + "; ".join(problems),
                hint="fix Tasks[0].Engine.Params and resubmit",
            )
        if request.execution_id in self._running:
            raise ExecutorError(f"execution {request.execution_id} is already running")
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        state = RunState(request.execution_id, timeout)
        self._running[request.execution_id] = state
        self._ticker.acquire()
        worker = _WORKERS.run(f"wasm-{request.execution_id}", self._run_blocking, request, state)
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            # The caller gave up: stop the guest and wait for the thread so that nothing
            # keeps writing into the execution dir afterwards.
            state.cancelled = True
            with contextlib.suppress(BaseException):
                await worker
            raise
        finally:
            self._ticker.release()
            self._running.pop(request.execution_id, None)

    def is_running(self, execution_id: str) -> bool:
        """True while the execution's module code is running (after setup, before exit)."""
        state = self._running.get(execution_id)
        return state is not None and state.in_guest

    async def cancel(self, execution_id: str) -> None:
        state = self._running.get(execution_id)
        if state is not None:
            state.cancelled = True

    # ----- blocking part, on a worker thread -------------------------------------------------

    def _run_blocking(self, request: RunRequest, state: RunState) -> RunCommandResult:
        staging = (request.execution_dir / ".wasm-mounts" if request.execution_dir is not None
                   else request.results_dir.parent / f"wasm-mounts-{request.execution_id}")
        try:
            return self._run_module(request, state, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run_module(
        self, request: RunRequest, state: RunState, staging: Path
    ) -> RunCommandResult:
        engine = request.engine
        entry = self._load_module_file(request, str(engine.param("EntryModule")), "EntryModule")
        imports = [
            self._load_module_file(request, target, "ImportModules")
            for target in _string_list(engine.param("ImportModules")) or []
        ]
        entrypoint = engine.param("Entrypoint") or DEFAULT_ENTRYPOINT
        args = [entry.name, *(_string_list(engine.param("Parameters")) or [])]

        self._raise_if_stopped(state)
        entry_module = self._compile(entry)
        import_modules = [(m, self._compile(m)) for m in imports]
        self._raise_if_stopped(state)

        memory_limit = request.resources.memory if request.resources else 0
        if memory_limit > 0:
            self._check_initial_memory(entry, entry_module, memory_limit)
            for m, module in import_modules:
                self._check_initial_memory(m, module, memory_limit)

        wasi = wasmtime.WasiConfig()
        wasi.argv = args
        wasi.env = list(request.env.items())
        if request.logs is not None:  # unnamed files the runner made (executors/logfiles.py)
            wasi.stdout_file, wasi.stderr_file = request.logs.engine_paths()
        else:
            for path in (request.stdout_path, request.stderr_path):
                path.parent.mkdir(parents=True, exist_ok=True)
            wasi.stdout_file = str(request.stdout_path)
            wasi.stderr_file = str(request.stderr_path)
        for host, guest, writable in preopens(request, staging):
            wasi.preopen_dir(str(host), guest, writable)

        store = wasmtime.Store(self._engine)
        if memory_limit > 0:
            store.set_limits(memory_size=memory_limit)
        store.set_wasi(wasi)
        deadline_key = install_deadline(store, state)

        if import_modules:
            linker = self._new_linker()
        else:
            linker = getattr(self._thread_local, "wasi_linker", None)
            if linker is None:
                linker = self._thread_local.wasi_linker = self._new_linker()
        try:
            instance = self._instantiate(linker, store, state, entry, entry_module, import_modules)
            if isinstance(instance, tuple):  # a trap in a start function
                exit_code, error_msg = instance
            else:
                func = self._entry_function(instance, store, entrypoint, entry.target)
                exit_code, error_msg = self._call(func, store, state)
        finally:
            STATES.pop(deadline_key, None)
            del store

        if request.logs is not None:
            stdout, stdout_truncated = request.logs.head(0)
            stderr, stderr_truncated = request.logs.head(1)
        else:
            stdout, stdout_truncated = read_output_head(request.stdout_path)
            stderr, stderr_truncated = read_output_head(request.stderr_path)
        return RunCommandResult(
            stdout=stdout,
            stdout_truncated=stdout_truncated,
            stderr=stderr,
            stderr_truncated=stderr_truncated,
            exit_code=exit_code,
            error_msg=error_msg,
        )

    def _new_linker(self) -> wasmtime.Linker:
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        return linker

    def _instantiate(
        self,
        linker: wasmtime.Linker,
        store: wasmtime.Store,
        state: RunState,
        entry: _ModuleFile,
        entry_module: wasmtime.Module,
        import_modules: list[tuple[_ModuleFile, wasmtime.Module]],
    ) -> wasmtime.Instance | tuple[int, str]:
        """Link the imports and instantiate the entry module (running start functions)."""
        state.in_guest = True  # start functions are guest code too
        try:
            for m, module in import_modules:
                linker.define_module(store, m.name, module)
            return linker.instantiate(store, entry_module)
        except wasmtime.ExitTrap as exc:
            return exc.code, ""
        except wasmtime.Trap as exc:
            self._raise_if_stopped(state)
            return TRAP_EXIT_CODE, f"wasm trap: {exc.message.strip()}"
        except wasmtime.WasmtimeError as exc:
            self._raise_if_stopped(state)
            text = str(exc)
            if "unknown import" in text:
                names = ", ".join(m.name for m, _ in import_modules) or "none"
                raise ExecutorError(
                    f"could not instantiate wasm module {entry.target}: {text.strip()}; imports "
                    "must come from WASI (wasi_snapshot_preview1) or from a module listed in "
                    f"ImportModules (linked here: {names})",
                    hint="add the module that provides the import to Engine.Params."
                    "ImportModules; it is linked under its name-section name, else its file stem",
                ) from exc
            if "limit" in text and "memory" in text:
                raise ExecutorError(
                    f"memory limit exceeded while instantiating {entry.target}: {text.strip()}",
                    hint="raise Tasks[0].Resources.Memory",
                    details={"Reason": "memory"},
                ) from exc
            raise ExecutorError(
                f"could not instantiate wasm module {entry.target}: {text.strip()}"
            ) from exc

    def _call(
        self, func: wasmtime.Func, store: wasmtime.Store, state: RunState
    ) -> tuple[int, str]:
        state.in_guest = True
        try:
            func(store)
        except wasmtime.ExitTrap as exc:
            return exc.code, ""
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._raise_if_stopped(state)
            message = exc.message if isinstance(exc, wasmtime.Trap) else str(exc)
            return TRAP_EXIT_CODE, f"wasm trap: {message.strip()}"
        return 0, ""

    def _raise_if_stopped(self, state: RunState) -> None:
        reason = state.stop_reason or state.should_stop()
        if reason == STOP_CANCELLED:
            raise ExecutorError(
                f"execution {state.execution_id} was cancelled", details={"Reason": "cancelled"}
            )
        if reason == STOP_TIMEOUT:
            raise ExecutorError(
                f"execution timed out after {state.timeout:g}s",
                hint="raise Timeouts.ExecutionTimeout or make the module finish sooner",
                details={"Reason": "timeout"},
            )

    def _compile(self, module_file: _ModuleFile) -> wasmtime.Module:
        try:
            return self._cache.get(module_file.data)
        except wasmtime.WasmtimeError as exc:
            raise ExecutorError(
                f"{module_file.target} is not a valid WebAssembly module: {exc}",
                hint="check that the input holds a compiled .wasm file (wasm32-wasip1)",
            ) from exc

    @staticmethod
    def _check_initial_memory(
        module_file: _ModuleFile, module: wasmtime.Module, limit: int
    ) -> None:
        need = _initial_memory(module)
        if need > limit:
            raise ExecutorError(
                f"memory limit exceeded: {module_file.target} needs {need} bytes of memory "
                f"at start, more than the job's memory limit of {limit} bytes",
                hint="raise Tasks[0].Resources.Memory",
                details={"Reason": "memory"},
            )

    @staticmethod
    def _entry_function(
        instance: wasmtime.Instance, store: wasmtime.Store, entrypoint: str, target: str
    ) -> wasmtime.Func:
        exports = instance.exports(store)
        func = exports.get(entrypoint)
        if not isinstance(func, wasmtime.Func):
            names = sorted(name for name in exports if isinstance(exports[name], wasmtime.Func))
            available = f"; exported functions: {', '.join(names)}" if names else ""
            raise ExecutorError(
                f'entrypoint "{entrypoint}" is not a function exported by {target}{available}',
                hint="set Engine.Params.Entrypoint to one of the module's exported functions",
            )
        if func.type(store).params:
            raise ExecutorError(
                f'entrypoint "{entrypoint}" of {target} takes parameters; only functions '
                "without parameters can be called",
                hint="export a function without parameters (WASI commands use _start)",
            )
        return func

    # ----- file system mapping ---------------------------------------------------------------

    def _load_module_file(self, request: RunRequest, target: str, field_name: str) -> _ModuleFile:
        wanted = absolute_guest(target)
        for prepared in request.inputs:
            if prepared.data is not None and absolute_guest(prepared.target) == wanted:
                name = module_name_from_bytes(prepared.data) or PurePosixPath(target).stem
                return _ModuleFile(target=target, host_path=None, data=prepared.data, name=name)
        host = resolve_target(request.inputs, target)
        if host is None:
            targets = ", ".join(sorted(i.target for i in request.inputs)) or "none"
            raise ExecutorError(
                f'{field_name} "{target}" is not the target of any input source '
                f"(input targets: {targets})",
                hint=f"add an input source with Target {target} that holds the .wasm file",
            )
        if host.is_dir():
            candidates = sorted(p for p in host.iterdir() if p.suffix == ".wasm" and p.is_file())
            if len(candidates) != 1:
                raise ExecutorError(
                    f'{field_name} "{target}" is a directory with {len(candidates)} .wasm files',
                    hint="point it at the .wasm file itself, e.g. "
                    f"{target.rstrip('/')}/main.wasm",
                )
            host = candidates[0]
        try:
            data = host.read_bytes()
        except OSError as exc:
            raise ExecutorError(
                f'{field_name} "{target}" could not be read from {host}: {exc.strerror}'
            ) from exc
        name = module_name_from_bytes(data) or PurePosixPath(target).stem
        return _ModuleFile(target=target, host_path=host, data=data, name=name)

_INITIAL_MEMORY: weakref.WeakKeyDictionary[wasmtime.Module, int] = weakref.WeakKeyDictionary()
_INITIAL_MEMORY_LOCK = threading.Lock()


def _initial_memory(module: wasmtime.Module) -> int:
    """Bytes the largest exported memory of `module` needs at start (0 if none). Kept per
    compiled module: walking the exports goes through ctypes, and the cache hands the same
    module to every run of it."""
    with _INITIAL_MEMORY_LOCK:
        known = _INITIAL_MEMORY.get(module)
    if known is not None:
        return known
    need = max((export.type.limits.min * WASM_PAGE for export in module.exports
                if isinstance(export.type, wasmtime.MemoryType)), default=0)
    with _INITIAL_MEMORY_LOCK:
        _INITIAL_MEMORY[module] = need
    return need


class _WorkerThreads:
    """Daemon threads for blocking runs, reused: an idle one waits `linger` seconds for more
    work before it exits, and a new one starts whenever none is idle.

    Not `asyncio.to_thread`: a long-running module would hold one of the default executor's
    few workers (starving other `to_thread` users) and block interpreter exit.
    """

    def __init__(self, linger: float = 30.0) -> None:
        self._linger = linger
        self._lock = threading.Lock()
        self._idle = 0
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def run(self, name: str, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `func(*args)` on a worker; the future resolves on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def job() -> None:
            thread = threading.current_thread()
            idle_name, thread.name = thread.name, name
            try:
                resolve_from_thread(loop, future, func, *args)
            finally:
                thread.name = idle_name

        with self._lock:
            if self._idle:
                self._idle -= 1
                self._work.put(job)
                return future
        threading.Thread(target=self._worker, args=(job,), name="wasm-worker",
                         daemon=True).start()
        return future

    def _worker(self, job: Callable[[], None]) -> None:
        while True:
            job()
            del job
            with self._lock:
                self._idle += 1
            try:
                job = self._work.get(timeout=self._linger)
            except queue.Empty:
                with self._lock:
                    try:  # handed work just as the wait ended
                        job = self._work.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return


_WORKERS = _WorkerThreads()


