"""Long-polled job history: `GET /jobs/{id}/history?long_poll_ms=N` holds an empty page until
the job records something new, settles, or N ms pass (issue 15: `bacalhau docker run --wait`
learns of each event as it happens instead of on its next 100 ms poll).

An extension of this implementation: Bacalhau's public clients never send `long_poll_ms`, so
they see the unchanged answer of reference §2.6. An answer to a long-polled request carries
`"LongPolled": true`, which tells our client that it may ask again at once (a server that
ignores the parameter answers without it, and the client keeps its own poll interval).

The wait re-reads the page in-process every `CHECK_INTERVAL` (one SQLite read of the job and
its history tail): the stores have no change notification for history, and that read is far
cheaper than the HTTP round trip of a client poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from bacalhau.models import Job

PARAM = "long_poll_ms"
ANSWER_KEY = "LongPolled"
MAX_WAIT = 10.0
"""Longest hold in seconds, whatever is asked (also kept under half the handler timeout)."""
CHECK_INTERVAL = 0.01

Item = TypeVar("Item")
Page = tuple[Job, list[Item], int]


async def wait_for_history(
    read_page: Callable[[], Page[Item]],
    first: Page[Item],
    wait: float,
    *,
    interval: float = CHECK_INTERVAL,
    gone: Callable[[], bool] = lambda: False,
) -> Page[Item]:
    """Return the first page (job, items, next offset) that has items or whose job is
    terminal, re-reading with `read_page` every `interval` seconds; after `wait` seconds, or
    once `gone()` says the client left, the empty page read last."""
    page = first
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while not page[1] and not page[0].is_terminal():
        left = deadline - loop.time()
        if left <= 0 or gone():
            break
        await asyncio.sleep(min(interval, left))  # the stores have no history notification
        page = read_page()
    return page


def hold_seconds(asked_ms: int, handler_timeout: float) -> float:
    """How long a request asking `long_poll_ms=asked_ms` is held at most."""
    return max(0.0, min(asked_ms / 1000.0, MAX_WAIT, handler_timeout / 2))
