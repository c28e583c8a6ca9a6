"""The event pump: how the events of every libp2p node of a process reach their event loops.

Every `NativeNode` of a process writes its events into one native hub. Each event loop that
runs a node watches the hub's wake-up descriptor (`loop.add_reader`): when an event arrives,
the loop itself drains the hub and hands each batch to the node it belongs to, on the spot
for its own nodes and by `call_soon_threadsafe` for a node on another loop. No thread stands
between the network and the loop, so an event costs no thread wake-up and no hand-over of the
GIL, and an idle node costs no wake-ups at all. A process that simulates a thousand compute
nodes still has one descriptor and one drain per batch.

Nodes register with `attach(key, loop, deliver)` when they start and `detach(key)` when they
close. Events of a key nobody holds (a node closed a moment ago) are dropped. After a fork,
the child has a hub (and descriptor) of its own, and its loops watch that one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from bacalhau._native import clear_wake, next_events, wake_fd
from bacalhau.errors import TransportError

log = logging.getLogger(__name__)

Deliver = Callable[[list[tuple[Any, ...]]], None]
"""Called on the node's event loop with its events, each `(kind, ...)` (key stripped)."""

BATCH = 4096


class EventPump:
    """Routes native events to their nodes (one instance per process: `pump()`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[int, tuple[asyncio.AbstractEventLoop, Deliver]] = {}
        self._watching: set[asyncio.AbstractEventLoop] = set()  # loops that add_reader'd
        self._pid = 0

    def attach(self, key: int, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        """Deliver the events of node `key` to `deliver`, called on `loop`."""
        fd = wake_fd()
        if fd is None:
            raise TransportError(
                "the libp2p event hub has no wake-up socket (could not create a socket pair)",
                hint="check the process's open-file limit (ulimit -n)")
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: new hub, new fd
                self._pid = os.getpid()
                self._watching.clear()
            self._routes[key] = (loop, deliver)
            if loop not in self._watching:
                self._watching.add(loop)
                loop.add_reader(fd, self._drain, loop)
        # events queued before the reader was added raised no wake-up of this loop
        loop.call_soon_threadsafe(self._drain, loop)

    def detach(self, key: int) -> None:
        with self._lock:
            route = self._routes.pop(key, None)
            if route is None:
                return
            loop = route[0]
            if any(other is loop for other, _ in self._routes.values()):
                return
            self._watching.discard(loop)
        fd = wake_fd()
        if fd is not None and not loop.is_closed():
            loop.remove_reader(fd)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On `loop`, when the hub's descriptor is readable: arm it again, then route every
        queued event."""
        clear_wake()
        while True:
            events = next_events(BATCH, 0)
            if events:
                self._route(events, loop)
            if len(events) < BATCH:
                return

    def _route(self, events: list[tuple[Any, ...]], here: asyncio.AbstractEventLoop) -> None:
        """Hand each node its events: directly when its loop is `here` (the running one),
        else by `call_soon_threadsafe` on its loop."""
        by_key: dict[int, list[tuple[Any, ...]]] = {}
        for event in events:
            by_key.setdefault(event[0], []).append(event[1:])
        with self._lock:
            routes = [(self._routes.get(key), batch) for key, batch in by_key.items()]
        for route, batch in routes:
            if route is None:
                continue
            loop, deliver = route
            if loop is here:
                try:
                    deliver(batch)
                except Exception:
                    log.exception("delivering libp2p events failed")
                continue
            try:
                loop.call_soon_threadsafe(deliver, batch)
            except RuntimeError:
                pass  # the node's loop is closed: it is going away


_PUMP = EventPump()


def pump() -> EventPump:
    """The process's event pump."""
    return _PUMP
