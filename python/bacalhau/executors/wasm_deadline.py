"""Interruption of wasm runs: wasmtime epochs with a deadline callback per store.

A `Ticker` on the event loop that starts the runs increments the engine epoch every `tick`
seconds while executions run; every store carries a deadline callback (`install_deadline`)
that traps when its `RunState` is cancelled or past its timeout, else extends the deadline by
one tick. wasmtime-py does not wrap the callback, so it is bound through `wasmtime._ffi`
(`SET_DEADLINE_CALLBACK` is None on a wasmtime-py without that binding).
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import time
from typing import Any

import wasmtime
from wasmtime import _ffi as wasmtime_ffi

STOP_TIMEOUT = "timeout"
STOP_CANCELLED = "cancelled"

SET_DEADLINE_CALLBACK = getattr(wasmtime_ffi, "wasmtime_store_epoch_deadline_callback", None)
_DEADLINE_CONTINUE = 0  # wasmtime_update_deadline_kind_t: WASMTIME_UPDATE_DEADLINE_CONTINUE
_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,  # wasmtime_error_t* (NULL = keep running)
    ctypes.POINTER(wasmtime_ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(wasmtime_ffi.wasmtime_update_deadline_kind_t),
)
_Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class RunState:
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
            return STOP_CANCELLED
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return STOP_TIMEOUT
        return ""


STATES: dict[int, RunState] = {}
_STATE_KEYS = itertools.count(1)


def _on_epoch_deadline(_ctx: Any, data: Any, delta: Any, kind: Any) -> int:
    # Runs on the wasm thread with the GIL held; must never raise.
    try:
        state = STATES.get(int(data or 0))
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
    STATES.pop(int(data or 0), None)


# Created once: ctypes callbacks must outlive every store that uses them.
_C_CALLBACK = _DeadlineCallback(_on_epoch_deadline)
_C_FINALIZER = _Finalizer(_on_finalize)


def install_deadline(store: wasmtime.Store, state: RunState) -> int:
    key = next(_STATE_KEYS)
    STATES[key] = state
    assert SET_DEADLINE_CALLBACK is not None
    SET_DEADLINE_CALLBACK(
        store.ptr(), _C_CALLBACK, ctypes.c_void_p(key), _C_FINALIZER
    )
    store.set_epoch_deadline(1)
    return key


class Ticker:
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
