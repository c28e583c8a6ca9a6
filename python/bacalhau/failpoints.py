"""Failpoints: named places on the job path where a test can make this process crash, fail or
stall on purpose (after fail-rs, TiKV's failpoints).

Enabled by the environment, read once when this module is imported:

    BACALHAU_FAILPOINTS="planner.after_commit=crash;publish.mid=delay(500)"

Each entry is `name=action`, entries separated by `;`:

- `crash`: the process kills itself with SIGKILL, exactly as `kill -9` would (no cleanup, no
  flush: what was committed is on disk, nothing else); `crash(N)` at the N-th hit of the
  point (the earlier hits pass), to crash with work in flight;
- `error`: raises `FailpointError` (a `BacalhauError`) at the point;
- `delay(ms)`: sleeps that many milliseconds (`hit_async` sleeps without blocking the loop);
- `off`: nothing (handy to switch one point off in a shared setting).

Free when off: with the variable unset `_POINTS` is empty and `hit()` is one truth test of an
empty dict. A name that is not one of `POINTS` is refused at parse time, so a typo in a test
fails loudly instead of silently testing nothing.

The points (where each one sits and what a crash there tests):

| name                   | where                                                            |
|------------------------|------------------------------------------------------------------|
| planner.after_commit   | requester: a plan's transaction committed, its messages not sent |
| compute.after_commit   | compute: Completed + RunResult committed, the result not sent    |
| publish.mid            | compute: results packed and CID computed, publishing not done    |
| download.mid           | client (`job get`): results fetched, not yet verified and merged  |
| merge.mid              | client (`job get`): results verified, not yet merged into <out>  |

The Rust side (`bacalhau._native`) needs none: it holds no durable state (every commit is
in the Python stores' SQLite), so a crash inside it is a process crash at the nearest
Python point, which `crash` above already produces; its transport faults (lost, delayed or
partitioned traffic) are made from outside by tests/faults/bed.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from dataclasses import dataclass

from bacalhau.errors import BacalhauError

ENV = "BACALHAU_FAILPOINTS"
POINTS = ("planner.after_commit", "compute.after_commit", "publish.mid", "download.mid",
          "merge.mid")


class FailpointError(BacalhauError):
    """Raised by a failpoint set to `error`."""


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # "crash" | "error" | "delay" | "off"
    delay_ms: int = 0
    at_hit: int = 1  # crash: fire at this hit of the point


_ACTION = re.compile(r"^(crash|error|off|delay\((\d+)\)|crash\(([1-9]\d*)\))$")


def parse(spec: str) -> dict[str, Action]:
    """`name=action;...` -> {name: Action}; raises ValueError naming what is wrong."""
    points: dict[str, Action] = {}
    for raw in spec.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, action = (part.strip() for part in entry.partition("="))
        if not sep or not name:
            raise ValueError(f"{ENV}: {entry!r} is not name=action (e.g. "
                             f"planner.after_commit=crash)")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown failpoint {name!r}; known: {', '.join(POINTS)}")
        match = _ACTION.match(action)
        if match is None:
            raise ValueError(f"{ENV}: {name}={action!r}: the action is crash, crash(N), error, "
                             f"off or delay(ms)")
        if match.group(3) is not None:
            points[name] = Action("crash", at_hit=int(match.group(3)))
        elif match.group(2) is not None:
            points[name] = Action("delay", int(match.group(2)))
        elif match.group(1) != "off":
            points[name] = Action(match.group(1))
    return points


_POINTS: dict[str, Action] = parse(os.environ.get(ENV, ""))
_HITS: dict[str, int] = {}


def configure(spec: str) -> None:
    """Replace the active failpoints (tests; the process normally reads the env once)."""
    global _POINTS
    _POINTS = parse(spec)
    _HITS.clear()


def _fire(name: str, action: Action) -> None:
    if action.kind == "crash":
        _HITS[name] = hits = _HITS.get(name, 0) + 1
        if hits >= action.at_hit:
            os.kill(os.getpid(), signal.SIGKILL)
    if action.kind == "error":
        raise FailpointError(f"failpoint {name} fired (set by {ENV})")


def hit(name: str) -> None:
    """The failpoint `name`: nothing unless configured."""
    if not _POINTS:
        return
    action = _POINTS.get(name)
    if action is None:
        return
    if action.kind == "delay":
        time.sleep(action.delay_ms / 1000)
        return
    _fire(name, action)


async def hit_async(name: str) -> None:
    """`hit` for coroutines: a delay sleeps without blocking the event loop."""
    if not _POINTS:
        return
    action = _POINTS.get(name)
    if action is None:
        return
    if action.kind == "delay":
        await asyncio.sleep(action.delay_ms / 1000)
        return
    _fire(name, action)
