"""The event pump: one thread per process that drains the events of every libp2p node.

Every `NativeNode` of a process writes its events into one native hub. One daemon thread
waits on it (without the GIL) and hands each batch to the node it belongs to, on that node's
event loop (`call_soon_threadsafe`, once per node per batch). A process that simulates a
thousand compute nodes therefore runs one waiting thread, not a thousand, and an idle node
costs no wake-ups at all.

Nodes register with `attach(key, loop, deliver)` when they start and `detach(key)` when they
close. Events of a key nobody holds (a node closed a moment ago) are dropped. The thread is
started on first use and again in a forked child (threads do not survive fork).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from bacalhau._native import NativeTransportError, next_events

log = logging.getLogger(__name__)

Deliver = Callable[[list[tuple[Any, ...]]], None]
"""Called on the node's event loop with its events, each `(kind, ...)` (key stripped)."""

BATCH = 4096
WAIT_MS = 500


class EventPump:
    """Routes native events to their nodes (one instance per process: `pump()`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[int, tuple[asyncio.AbstractEventLoop, Deliver]] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0

    def attach(self, key: int, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        """Deliver the events of node `key` to `deliver`, called on `loop`."""
        with self._lock:
            self._routes[key] = (loop, deliver)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="libp2p-events",
                                                daemon=True)
                self._thread.start()

    def detach(self, key: int) -> None:
        with self._lock:
            self._routes.pop(key, None)

    def _run(self) -> None:
        while True:
            try:
                events = next_events(BATCH, WAIT_MS)
            except NativeTransportError as exc:  # pragma: no cover - the hub never closes
                log.error("libp2p event hub failed: %s", exc)
                return
            if not events:
                continue
            by_key: dict[int, list[tuple[Any, ...]]] = {}
            for event in events:
                by_key.setdefault(event[0], []).append(event[1:])
            with self._lock:
                routes = [(self._routes.get(key), batch) for key, batch in by_key.items()]
            for route, batch in routes:
                if route is None:
                    continue
                loop, deliver = route
                try:
                    loop.call_soon_threadsafe(deliver, batch)
                except RuntimeError:
                    pass  # the node's loop is closed: it is going away


_PUMP = EventPump()


def pump() -> EventPump:
    """The process's event pump."""
    return _PUMP
