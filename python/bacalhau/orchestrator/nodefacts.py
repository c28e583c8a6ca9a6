"""What the node manager derives from a node's state alone: the native ranking table's facts
for a node, whether it belongs in that table, and the sort keys and filter values of
`GET /nodes` (reference §3.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bacalhau.models.node import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
    NODE_TYPE_COMPUTE,
    NodeInfo,
    NodeState,
)
from bacalhau.models.resources import Resources


def _available(state: NodeState) -> Resources:
    """Available capacity as listings show it (zero for a disconnected node)."""
    if state.connection_state.status != CONNECTED:
        return Resources()
    return state.info.compute_node_info.available_capacity


ORDER_KEYS: dict[str, Callable[[NodeState], Any]] = {
    "id": lambda s: s.info.node_id,
    "type": lambda s: s.info.node_type,
    "available_cpu": lambda s: _available(s).cpu,
    "available_memory": lambda s: _available(s).memory,
    "available_disk": lambda s: _available(s).disk,
    "available_gpu": lambda s: _available(s).gpu,
    "approval": lambda s: s.membership,
    "status": lambda s: s.connection_state.status,
}
"""`order_by` values of `GET /nodes` (reference §3.1) and the sort key of each."""

APPROVALS = (MEMBERSHIP_APPROVED, MEMBERSHIP_PENDING, MEMBERSHIP_REJECTED)
STATUSES = (CONNECTED, DISCONNECTED)


def node_facts(info: NodeInfo) -> dict[str, Any]:
    """The native `NodeFacts` dict of one node (internals §2)."""
    c = info.compute_node_info
    return {
        "node_id": info.node_id,
        "engines": c.execution_engines,
        "publishers": c.publishers,
        "storages": c.storage_sources,
        "labels": info.labels,
        "max_job": c.max_job_requirements.as_tuple(),
        "max_capacity": c.max_capacity.as_tuple(),
        "available": c.available_capacity.as_tuple(),
        "queued": c.queue_used_capacity.as_tuple(),
        "version": info.version_tuple(),
    }


def is_schedulable_state(state: NodeState) -> bool:
    """A compute node, approved and connected: the nodes the ranking table holds."""
    return (state.info.node_type == NODE_TYPE_COMPUTE
            and state.membership == MEMBERSHIP_APPROVED
            and state.connection_state.status == CONNECTED)
