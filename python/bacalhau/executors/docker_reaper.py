"""Removing finished containers off the run's critical path (issue 15).

A run's outcome (exit code, OOM flag) is known once the engine reports the container stopped;
removing the container takes the engine another few milliseconds that nobody waits for. So the
Docker executor hands each finished container to a `ContainerReaper`: one daemon thread per
executor removes them in order while the execution is already reporting its result.

Nothing leaks: a container still queued when the process dies carries this node's labels, and
the executor's restart sweep (`DockerExecutor.restore`) removes every container of the node it
does not adopt. `wait_idle` lets a caller (a test, a clean shutdown) wait for the queue to drain.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class ContainerReaper:
    """Removes containers in the background with `remove(container_id)` (blocking)."""

    def __init__(self, remove: Callable[[str], None]) -> None:
        self._remove = remove
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def submit(self, container: str) -> None:
        """Queue `container` for removal; returns at once."""
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="docker-reaper",
                                                daemon=True)
                self._thread.start()
        self._queue.put(container)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued container was removed (True) or `timeout` passed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            container = self._queue.get()
            try:
                self._remove(container)
            except Exception:  # the restart sweep removes what is left behind
                log.warning("could not remove container %s", container[:12], exc_info=True)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.notify_all()
