"""Long-polled job history: `GET /jobs/{id}/history?long_poll_ms=N` holds an empty page until
the job records something new, settles, or N ms pass (issue 15: `bacalhau docker run --wait`
learns of each event as it happens instead of on its next 100 ms poll).

An extension of this implementation: Bacalhau's public clients never send `long_poll_ms`, so
they see the unchanged answer of reference §2.6. An answer to a long-polled request carries
`"LongPolled": true`, which tells our client that it may ask again at once (a server that
ignores the parameter answers without it, and the client keeps its own poll interval).

A held request re-reads its page after each commit of the requester's store (`CommitSignal`,
fed by `Database.add_commit_listener`): every history event is written in a transaction, so
a page can only change at a commit, and the answer leaves as soon as the event is durable.
`CHECK_INTERVAL` bounds the wait between two reads all the same (a store without the signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from bacalhau.models import Job

PARAM = "long_poll_ms"
ANSWER_KEY = "LongPolled"
MAX_WAIT = 10.0
"""Longest hold in seconds, whatever is asked (also kept under half the handler timeout)."""
CHECK_INTERVAL = 0.5
"""Longest time between two reads of a held page (commits wake it sooner)."""

Item = TypeVar("Item")
Page = tuple[Job, list[Item], int]


class CommitSignal:
    """Wakes the held requests of one store's readers after each of its commits."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def of(cls, db: Any) -> CommitSignal:
        """The signal of a `Database` (made and registered on first use)."""
        signal = _SIGNALS.get(db)
        if signal is None:
            signal = _SIGNALS[db] = cls()
            db.add_commit_listener(signal.committed)
        return signal

    def next_commit(self) -> asyncio.Future[None]:
        """A future that is done after the next commit."""
        self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def committed(self) -> None:
        if not self._waiters or self._loop is None:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # committed on another thread
            running = None
        if running is self._loop:
            self._wake()
        else:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def wait_for_history(
    read_page: Callable[[], Page[Item]],
    first: Page[Item],
    wait: float,
    *,
    signal: CommitSignal | None = None,
    interval: float = CHECK_INTERVAL,
    gone: Callable[[], bool] = lambda: False,
) -> Page[Item]:
    """Return the first page (job, items, next offset) that has items or whose job is
    terminal, re-reading with `read_page` after each commit `signal` reports (at most
    `interval` seconds apart); after `wait` seconds, or once `gone()` says the client left,
    the empty page read last."""
    page = first
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not page[1] and not page[0].is_terminal():
        left = deadline - loop.time()
        if left <= 0 or gone():
            break
        if signal is None:
            await asyncio.sleep(min(interval, left))
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.next_commit(), min(interval, left))
        page = read_page()
    return page


_SIGNALS: weakref.WeakKeyDictionary[Any, CommitSignal] = weakref.WeakKeyDictionary()


def hold_seconds(asked_ms: int, handler_timeout: float) -> float:
    """How long a request asking `long_poll_ms=asked_ms` is held at most."""
    return max(0.0, min(asked_ms / 1000.0, MAX_WAIT, handler_timeout / 2))
