"""Node selection: a job's task and its earlier executions become the native
`JobRequirements`, the native `NodeTable` ranks every schedulable node against them, and the
result is a `Selection` with the suitable nodes best first and the user-facing "not enough
nodes" explanation (internals §9, reference §5.3).

The per-node work (filters, scores, the random tie-breaker) runs in Rust over the table the
`NodeManager` keeps current from membership deltas (never rebuilt per job); this module only
builds the job-side input, which is proportional to the job's executions, never to the number
of nodes. The native `rank(req, seed, limit)` returns the best `limit` suitable nodes and the
rejected ones counted per reason, so nothing here is proportional to the rejected nodes either;
the per-node list (`Selection.ranks`) is computed only when asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from bacalhau._native import Ranking
from bacalhau.config import Config
from bacalhau.models.execution import Execution, ExecutionStateType
from bacalhau.models.job import Job
from bacalhau.models.resources import Resources, ResourcesConfig
from bacalhau.orchestrator.nodes import NodeManager

MIN_VERSION: tuple[int, int, int] = (1, 0, 4)
"""Oldest node version accepted (reference §5.3)."""

OVERSUBSCRIPTION_FACTOR = 1.5
"""How far a node may be committed beyond its capacity, queue included (reference §11)."""

NodeRank = tuple[str, int, bool, str, bool]
"""(node_id, rank, suitable, reason, retryable), as the native ranking returns it."""

_node_id = itemgetter(0)

ReasonCount = tuple[str, int, str, bool]
"""(reason, nodes rejected with it, smallest such node id, retryable), as the native ranking
returns it."""


@dataclass(slots=True)
class Selection:
    """The outcome of ranking the schedulable nodes for one job."""

    matched: list[str] = field(default_factory=list)
    """Ids of the best suitable nodes, best first (at most the `limit` asked for)."""
    available: int = 0
    """How many schedulable nodes were considered."""
    retryable: bool = False
    """True when some node was rejected for a reason that may pass (capacity-like)."""
    suitable: int = 0
    """How many nodes are suitable (also those beyond the limit)."""
    ranking: Ranking | None = None
    """The native answer (message, reason counts)."""
    all_ranks: Callable[[], list[NodeRank]] | None = None
    """Computes the full per-node list on demand (diagnostics, tests)."""

    @property
    def ranks(self) -> list[NodeRank]:
        """Every schedulable node, best first (suitable ones first). Computed on each access
        from the current table: only diagnostics need it."""
        return self.all_ranks() if self.all_ranks is not None else []

    @property
    def reasons(self) -> list[ReasonCount]:
        """Rejection reasons with node counts, count descending."""
        return list(self.ranking.reasons) if self.ranking is not None else []

    def message(self, requested: int) -> str:
        """"not enough nodes to run job. requested: R, available: A, suitable: S." with one
        bullet per distinct rejection reason."""
        if self.ranking is None:
            return (f"not enough nodes to run job. requested: {requested}, available: "
                    f"{self.available}, suitable: {self.suitable}.")
        return str(self.ranking.message(requested))

    def details(self, requested: int) -> dict[str, str]:
        """Event details of a "not enough nodes" event (NodesRequested/Available/Suitable)."""
        return {"NodesRequested": str(requested), "NodesAvailable": str(self.available),
                "NodesSuitable": str(self.suitable)}


class NodeSelector:
    """Ranks the NodeManager's schedulable nodes for a job."""

    def __init__(self, nodes: NodeManager, config: Config) -> None:
        self.nodes = nodes
        self.config = config

    def select(self, job: Job, executions: Iterable[Execution], *,
               seed: int | None = None, limit: int | None = None) -> Selection:
        """Rank every schedulable node for `job` and keep the best `limit` suitable ones
        (None = all); `executions` are the job's executions (any version; only those of
        `job.version` count). Without `seed`, one is derived from the job and its executions,
        so the same evaluation input ranks the same way."""
        execs = list(executions)
        req = self.requirements(job, execs)
        if seed is None:
            seed = default_seed(job, execs)
        table = self.nodes.table
        ranking: Ranking = table.rank(req, seed, limit)
        chosen_seed = seed
        return Selection(matched=list(map(_node_id, ranking.top)), available=ranking.available,
                         retryable=ranking.retryable, suitable=ranking.suitable,
                         ranking=ranking,
                         all_ranks=lambda: table.rank(req, chosen_seed))

    def requirements(self, job: Job, executions: Iterable[Execution]) -> dict[str, Any]:
        """The native `JobRequirements` dict of the job's (first) task."""
        task = job.task
        return {
            "engine": task.engine.type,
            "publisher": task.publisher.type,
            "storages": [i.source.type for i in task.input_sources],
            "constraints": [(c.key, c.operator, list(c.values)) for c in job.constraints],
            "resources": self.resources(job).as_tuple(),
            "previous": previous_executions(job, executions),
            "min_version": MIN_VERSION,
            "oversubscription_factor": OVERSUBSCRIPTION_FACTOR,
        }

    def resources(self, job: Job) -> Resources:
        """The task's parsed resources, with `JobDefaults.<Type>.Task.Resources` filling every
        dimension the task leaves empty."""
        given = job.task.resources
        defaults = self.config.get(f"JobDefaults.{job.type or 'batch'}.Task.Resources") or {}
        merged = ResourcesConfig(
            cpu=given.cpu or str(_get_ci(defaults, "CPU") or ""),
            memory=given.memory or str(_get_ci(defaults, "Memory") or ""),
            disk=given.disk or str(_get_ci(defaults, "Disk") or ""),
            gpu=given.gpu or str(_get_ci(defaults, "GPU") or ""),
        )
        merged.normalize()
        return merged.to_resources("Tasks[0].Resources")


def previous_executions(job: Job,
                        executions: Iterable[Execution]) -> dict[str, tuple[int, bool, bool]]:
    """node_id -> (executions of this job version there, one of them is live, the node
    rejected the bid). Live means not discarded: running, pending or completed (reference §5.3,
    as Bacalhau's PreviousExecutions ranker counts it)."""
    out: dict[str, tuple[int, bool, bool]] = {}
    for e in executions:
        if e.job_version != job.version or not e.node_id:
            continue
        count, live, rejected = out.get(e.node_id, (0, False, False))
        state = e.compute_state_type
        out[e.node_id] = (count + 1, live or not state.is_discarded(),
                          rejected or state == ExecutionStateType.ASK_FOR_BID_REJECTED)
    return out


def default_seed(job: Job, executions: Iterable[Execution]) -> int:
    """A 64-bit seed from the job id, version and its executions' ids and states."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{job.id}\x00{job.version}".encode())
    for e in sorted(executions, key=lambda x: x.id):
        h.update(f"\x00{e.id}:{e.compute_state.state_type}".encode())
    return int.from_bytes(h.digest(), "big") >> 1


def _get_ci(d: Any, key: str) -> Any:
    if not isinstance(d, dict):
        return None
    return next((v for k, v in d.items() if str(k).lower() == key.lower()), None)
