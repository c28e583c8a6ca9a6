"""The `wasm` engine: runs WASI preview1 modules with wasmtime (reference §4.1).

Flow of one run: resolve `EntryModule` (and `ImportModules`) — the *target paths* of input
sources — to host files -> compile, or take from the module cache (sha256 of the bytes, kept
in memory and serialized under `cache_dir`) -> build a store (memory limit from
`resources.memory`, an epoch deadline checked on every tick) and a WASI context (argv, env,
stdout/stderr files, preopened directories) -> link WASI and the import modules -> call the
entrypoint on a worker thread of its own (daemon threads, reused while idle: see
`_WorkerThreads`), so the event loop stays free.

Mapping of the job onto the WASI file system:
- a directory input is preopened at its target, read-only unless `read_write`;
- file inputs are grouped by the parent of their target; each group gets a per-execution
  staging directory (hard links, or copies across file systems) preopened at that parent;
  staging dirs live in `<results_dir>/../wasm-mounts-<executionID>/` and go after the run.
  The staging dir is writable only if one of its files is `read_write`; read-only files in a
  writable group are copied, so the guest cannot change the source through a link. A group
  of one file whose own directory lies in the execution dir and holds nothing else (an input
  provider wrote it there, as the inline one does) needs no staging: that directory is
  preopened instead, which shows the guest the same thing;
- each ResultPath's `results_dir/<Name>` is preopened read-write at its `Path`.

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

Interruption uses wasmtime epochs: a timer on the event loop increments the engine epoch every
`tick` seconds while executions run, and every store carries a deadline callback that traps
when the execution is cancelled or past its timeout, else extends the deadline by one tick.
Blocking host calls (e.g. a long `poll_oneoff` sleep) are interrupted only when they return.
wasmtime-py does not wrap the deadline callback, so it is bound through `wasmtime._ffi`;
`is_installed()` is False on a wasmtime-py without that binding.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import itertools
import logging
import os
import queue
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import wasmtime
from wasmtime import _ffi as wasmtime_ffi

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import (
    PreparedInput,
    RunRequest,
    read_output_head,
    resolve_from_thread,
)
from bacalhau.models import RunCommandResult, SpecConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

# Exit code reported when a module traps: 128 + SIGABRT, what a shell shows for a crashed
# process, so a trap reads as "the program crashed", not as a clean exit.
TRAP_EXIT_CODE = 134
DEFAULT_ENTRYPOINT = "_start"
DEFAULT_TICK_S = 0.01
MEMORY_CACHE_SIZE = 64
WASM_PAGE = 65536

_STOP_TIMEOUT = "timeout"
_STOP_CANCELLED = "cancelled"


# ---------------------------------------------------------------------------------------------
# Epoch deadline callback (wasmtime-py does not wrap it, so it is bound through its ffi layer).

_SET_DEADLINE_CALLBACK = getattr(wasmtime_ffi, "wasmtime_store_epoch_deadline_callback", None)
_DEADLINE_CONTINUE = 0  # wasmtime_update_deadline_kind_t: WASMTIME_UPDATE_DEADLINE_CONTINUE
_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,  # wasmtime_error_t* (NULL = keep running)
    ctypes.POINTER(wasmtime_ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(wasmtime_ffi.wasmtime_update_deadline_kind_t),
)
_Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _RunState:
    """What the deadline callback of one store looks at; written by other threads."""

    def __init__(self, execution_id: str, timeout: float | None) -> None:
        self.execution_id = execution_id
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        self.cancelled = False
        self.stop_reason = ""
        self.in_guest = False  # set once the entrypoint has been called

    def should_stop(self) -> str:
        if self.cancelled:
            return _STOP_CANCELLED
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return _STOP_TIMEOUT
        return ""


_STATES: dict[int, _RunState] = {}
_STATE_KEYS = itertools.count(1)


def _on_epoch_deadline(_ctx: Any, data: Any, delta: Any, kind: Any) -> int:
    # Runs on the wasm thread with the GIL held; must never raise.
    try:
        state = _STATES.get(int(data or 0))
        reason = state.should_stop() if state is not None else ""
        if reason and state is not None:
            state.stop_reason = reason
            err = wasmtime_ffi.wasmtime_error_new(ctypes.c_char_p(f"execution {reason}".encode()))
            return ctypes.cast(err, ctypes.c_void_p).value or 0
        delta[0] = 1
        kind[0] = _DEADLINE_CONTINUE
    except Exception:  # pragma: no cover - keep the guest running rather than crash
        delta[0] = 1
        kind[0] = _DEADLINE_CONTINUE
    return 0


def _on_finalize(data: Any) -> None:
    _STATES.pop(int(data or 0), None)


# Created once: ctypes callbacks must outlive every store that uses them.
_C_CALLBACK = _DeadlineCallback(_on_epoch_deadline)
_C_FINALIZER = _Finalizer(_on_finalize)


def _install_deadline(store: wasmtime.Store, state: _RunState) -> int:
    key = next(_STATE_KEYS)
    _STATES[key] = state
    assert _SET_DEADLINE_CALLBACK is not None
    _SET_DEADLINE_CALLBACK(
        store.ptr(), _C_CALLBACK, ctypes.c_void_p(key), _C_FINALIZER
    )
    store.set_epoch_deadline(1)
    return key


class _Ticker:
    """Increments the engine epoch every `tick` seconds while at least one execution runs.

    A timer on the event loop that starts the runs does the ticking: no thread of its own,
    and nothing to wake when a run starts. `acquire`/`release` are called on that loop.
    """

    def __init__(self, engine: wasmtime.Engine, tick: float) -> None:
        self._engine = engine
        self._tick = tick
        self._users = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def acquire(self) -> None:
        self._users += 1
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:  # (a run on a loop now gone)
            if self._timer is not None:
                self._timer.cancel()
            self._loop = loop
            self._timer = loop.call_later(self._tick, self._fire)

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._engine.increment_epoch()
        self._timer = asyncio.get_running_loop().call_later(self._tick, self._fire)


# ---------------------------------------------------------------------------------------------
# Module cache


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


# ---------------------------------------------------------------------------------------------
# Helpers


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


def _string_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@dataclass
class _ModuleFile:
    target: str
    host_path: Path
    data: bytes
    name: str


# ---------------------------------------------------------------------------------------------
# Executor


class WasmExecutor:
    """Runs `wasm` engine specs with wasmtime; see the module docstring for the mapping."""

    name = "wasm"

    def __init__(self, cache_dir: Path | None = None, *, tick: float = DEFAULT_TICK_S) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        self._engine = wasmtime.Engine(config)
        self._cache = ModuleCache(self._engine, cache_dir)
        self._ticker = _Ticker(self._engine, tick)
        self._running: dict[str, _RunState] = {}
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
        return _SET_DEADLINE_CALLBACK is not None

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

    async def run(self, request: RunRequest) -> RunCommandResult:
        problems = self.check(request.engine)
        if problems:
            raise ExecutorError(
                "invalid wasm engine spec: " + "; ".join(problems),
                hint="fix Tasks[0].Engine.Params and resubmit",
            )
        if request.execution_id in self._running:
            raise ExecutorError(f"execution {request.execution_id} is already running")
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        state = _RunState(request.execution_id, timeout)
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

    def _run_blocking(self, request: RunRequest, state: _RunState) -> RunCommandResult:
        staging = request.results_dir.parent / f"wasm-mounts-{request.execution_id}"
        try:
            return self._run_module(request, state, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run_module(
        self, request: RunRequest, state: _RunState, staging: Path
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
        for path in (request.stdout_path, request.stderr_path):
            path.parent.mkdir(parents=True, exist_ok=True)
        wasi.stdout_file = str(request.stdout_path)
        wasi.stderr_file = str(request.stderr_path)
        for host, guest, writable in self._mounts(request, staging):
            wasi.preopen_dir(str(host), guest, writable)

        store = wasmtime.Store(self._engine)
        if memory_limit > 0:
            store.set_limits(memory_size=memory_limit)
        store.set_wasi(wasi)
        deadline_key = _install_deadline(store, state)

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
            _STATES.pop(deadline_key, None)
            del store

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
        state: _RunState,
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
        self, func: wasmtime.Func, store: wasmtime.Store, state: _RunState
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

    def _raise_if_stopped(self, state: _RunState) -> None:
        reason = state.stop_reason or state.should_stop()
        if reason == _STOP_CANCELLED:
            raise ExecutorError(
                f"execution {state.execution_id} was cancelled", details={"Reason": "cancelled"}
            )
        if reason == _STOP_TIMEOUT:
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
        for export in module.exports:
            kind = export.type
            if isinstance(kind, wasmtime.MemoryType) and kind.limits.min * WASM_PAGE > limit:
                need = kind.limits.min * WASM_PAGE
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

    @staticmethod
    def _mounts(request: RunRequest, staging: Path) -> list[tuple[Path, str, bool]]:
        """(host dir, guest path, writable) for every preopen of this execution."""
        mounts: dict[str, tuple[Path, bool]] = {}

        def add(guest: str, host: Path, writable: bool, what: str) -> None:
            if guest in mounts:
                raise ExecutorError(
                    f"{what} is mounted at {guest}, which is already used by another input "
                    "or result path",
                    hint="give every input source and result path its own path",
                )
            mounts[guest] = (host, writable)

        file_groups: dict[str, list[PreparedInput]] = {}
        for prepared in request.inputs:
            guest = _normalize_guest(prepared.target)
            if prepared.host_path.is_dir():
                add(guest, prepared.host_path, prepared.read_write, f"input {guest}")
            elif prepared.host_path.exists():
                parent = str(PurePosixPath(guest).parent)
                file_groups.setdefault(parent, []).append(prepared)
            else:
                raise ExecutorError(
                    f"input {guest}: prepared path {prepared.host_path} does not exist"
                )
        for result in request.result_paths:
            host = request.results_dir / result.name
            host.mkdir(parents=True, exist_ok=True)
            add(_normalize_guest(result.path), host, True, f"result path {result.name}")
        for index, (parent, group) in enumerate(sorted(file_groups.items())):
            writable = any(p.read_write for p in group)
            own_dir = _sole_file_dir(group, request.results_dir.parent)
            if own_dir is not None:
                # a directory of this execution holds the file alone, under its guest name:
                # mounting it shows the guest exactly what a staging dir would
                add(parent, own_dir, writable, f"input files under {parent}")
                continue
            stage = staging / f"{index}"
            stage.mkdir(parents=True, exist_ok=True)
            for prepared in group:
                dest = stage / PurePosixPath(_normalize_guest(prepared.target)).name
                _stage_file(prepared.host_path, dest, link=prepared.read_write or not writable)
            add(parent, stage, writable, f"input files under {parent}")
        return [(host, guest, writable) for guest, (host, writable) in mounts.items()]


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


def _sole_file_dir(group: list[PreparedInput], execution_dir: Path) -> Path | None:
    """The host directory of a one-file group if it lies in the execution's own directory
    (an input provider made it for this run) and holds nothing but that regular file, named
    as in the guest; else None."""
    if len(group) != 1:
        return None
    prepared = group[0]
    name = PurePosixPath(_normalize_guest(prepared.target)).name
    if prepared.host_path.name != name or not prepared.host_path.parent.is_relative_to(
            execution_dir):
        return None
    try:
        with os.scandir(prepared.host_path.parent) as entries:
            found = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    except OSError:
        return None
    return prepared.host_path.parent if found == [(name, True)] else None


def _normalize_guest(path: str) -> str:
    normalized = str(PurePosixPath("/", path))
    if ".." in PurePosixPath(normalized).parts:
        raise ExecutorError(f'path "{path}" must not contain ".."')
    return normalized


def _stage_file(source: Path, dest: Path, *, link: bool) -> None:
    if link:
        try:
            os.link(source, dest)
            return
        except OSError:
            pass  # other file system or no permission: copy instead
    shutil.copy2(source, dest)


def resolve_target(inputs: list[PreparedInput], target: str) -> Path | None:
    """The host path behind a guest path: the input with the longest target prefix wins.

    None when no input covers `target`, or when the path leaves the input's directory
    (`..` or a symlink pointing outside it).
    """
    wanted = PurePosixPath("/", target)
    best: tuple[int, PreparedInput, PurePosixPath] | None = None
    for prepared in inputs:
        mount = PurePosixPath("/", prepared.target)
        if wanted == mount:
            rel = PurePosixPath()
        elif mount in wanted.parents:
            rel = wanted.relative_to(mount)
        else:
            continue
        if best is None or len(mount.parts) > best[0]:
            best = (len(mount.parts), prepared, rel)
    if best is None:
        return None
    _, prepared, rel = best
    if not rel.parts:
        return prepared.host_path
    if ".." in rel.parts:
        return None
    host = prepared.host_path.joinpath(*rel.parts)
    try:
        if not host.resolve().is_relative_to(prepared.host_path.resolve()):
            return None
    except OSError:
        return None
    return host
