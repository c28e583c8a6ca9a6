"""The load the ranking sees on each compute node: what the node last reported of everyone
else's work, plus this requester's own live executions there, counted exactly (issue 15).

A heartbeat is a picture of the past. Executions placed after it was taken are missing from
it, and executions that ended since are still in it. With messages to compute nodes batched, a
requester places work faster than heartbeats report it: a ranking on the report alone
overfills a node between two heartbeats, and after a burst takes it for busy long after it
drained. So the requester counts what it placed itself: an execution is live from the commit
that creates it until the commit that makes it terminal or stops it (`observe`, fed by the job
store after every commit of an execution). On each report from a node, the part of the
node's reported usage that is not this requester's own live work is kept as `others` (work of
other requesters; never below zero); the ranking then sees `others + own` at every moment.

Usage is in the native table's form: (CPU cores, memory bytes, disk bytes, GPUs). A node's
figures go to the table as `available = max - min(max, used)` and
`queued = max(0, used - max)` per dimension, which is what the OverSubscription and
AvailableCapacity rankers read (reference §5.3).
"""

from __future__ import annotations

from collections.abc import Callable

from bacalhau.models.execution import Execution, ExecutionDesiredStateType

Usage = tuple[float, int, int, int]
"""(CPU cores, memory bytes, disk bytes, GPUs)."""

_ZERO: Usage = (0.0, 0, 0, 0)
_STOPPED = ExecutionDesiredStateType.STOPPED


def _plus(a: Usage, b: Usage) -> Usage:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _minus(a: Usage, b: Usage) -> Usage:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3])


def _floor(a: Usage) -> Usage:
    return (max(0.0, round(a[0], 6)), max(0, a[1]), max(0, a[2]), max(0, a[3]))


def is_live(execution: Execution) -> bool:
    """Holds (or will hold) capacity on its node: not terminal and not desired Stopped."""
    return (execution.desired_state.state_type != _STOPPED
            and not execution.compute_state_type.is_terminal())


class NodeLoad:
    """Own live executions per node and the others' part of each node's last report."""

    def __init__(self, usage_of: Callable[[str], Usage]) -> None:
        """`usage_of(job_id)`: what an execution of that job holds on its node."""
        self._usage_of = usage_of
        self._live: dict[str, tuple[str, Usage]] = {}   # execution id -> (node, usage)
        self._own: dict[str, Usage] = {}                # node -> sum of its live usage
        self._others: dict[str, Usage] = {}             # node -> reported minus own
        self.listeners: list[Callable[[str, bool], None]] = []
        """`(node_id, freed)` after own usage on a node changed (freed: it went down)."""

    def observe(self, execution_id: str, node_id: str, job_id: str, live: bool) -> None:
        """An execution as just committed (`is_live` then): count it while it is live,
        drop it after."""
        held = self._live.get(execution_id)
        if live and node_id:
            if held is not None:
                return
            usage = self._usage_of(job_id)
            self._live[execution_id] = (node_id, usage)
            self._own[node_id] = _plus(self._own.get(node_id, _ZERO), usage)
            self._changed(node_id, False)
        elif held is not None:
            node, usage = self._live.pop(execution_id)
            own = _floor(_minus(self._own.get(node, _ZERO), usage))
            if any(own):
                self._own[node] = own
            else:
                self._own.pop(node, None)
            self._changed(node, True)

    def own(self, node_id: str) -> Usage:
        return self._own.get(node_id, _ZERO)

    def live_count(self) -> int:
        return len(self._live)

    def report(self, node_id: str, max_capacity: Usage, available: Usage,
               queued: Usage) -> None:
        """The node's own figures (heartbeat or NodeInfo): keep what is not ours."""
        used = _plus(_minus(max_capacity, available), queued)
        self._others[node_id] = _floor(_minus(used, self.own(node_id)))

    def forget(self, node_id: str) -> None:
        """The node left the table: its report is no longer current (own work stays counted:
        its executions end through the scheduler)."""
        self._others.pop(node_id, None)

    def view(self, node_id: str, max_capacity: Usage) -> tuple[Usage, Usage]:
        """(available, queued) for the ranking table: others' reported work plus ours."""
        used = _plus(self._others.get(node_id, _ZERO), self.own(node_id))
        available = (max(0.0, round(max_capacity[0] - used[0], 6)),
                     max(0, max_capacity[1] - used[1]), max(0, max_capacity[2] - used[2]),
                     max(0, max_capacity[3] - used[3]))
        queued = _floor(_minus(used, max_capacity))
        return available, queued

    def _changed(self, node_id: str, freed: bool) -> None:
        for listener in self.listeners:
            listener(node_id, freed)
