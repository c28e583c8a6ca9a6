"""Plain-Python node ranking with the rules of rust/ranking (reference §5.3), used ONLY as the
baseline of bench/ranking_scale.py; nothing in bacalhau imports it.

"Plain" means the straightforward implementation: the ranker chain runs for every node (no
per-class memoization), the first rejection wins and is kept as a message per rejected node,
the best `limit` suitable nodes come from `heapq.nsmallest` (already better than a full sort).
The rules, scores and the random tie-breaker are bit-for-bit those of the Rust crate, so the
benchmark can check both rank the same nodes the same way.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

Res = tuple[float, float, float, float]
DIMS = ("CPU", "Memory", "Disk", "GPU")
UNITS = (1.0, 1e6, 1e9, 1.0)
DEFAULT_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
PREFERRED, POSSIBLE, NEVER_RAN, SOFT_BONUS = 10, 0, 30, 10
M64 = (1 << 64) - 1


@dataclass(slots=True)
class Node:
    node_id: str
    engines: list[str]
    publishers: list[str]
    storages: list[str]
    labels: dict[str, str]
    max_job: Res
    max_capacity: Res
    available: Res
    queued: Res
    version: tuple[int, int, int] | None
    id_hash: int = 0


@dataclass(slots=True)
class Job:
    engine: str
    publisher: str
    storages: list[str]
    constraints: list[tuple[str, str, list[str]]]
    resources: Res
    previous: dict[str, tuple[int, bool, bool]] = field(default_factory=dict)
    min_version: tuple[int, int, int] = (1, 0, 4)
    oversubscription_factor: float = 1.5


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def mix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def draw(seed: int, id_hash: int) -> int:
    return mix((seed & M64) ^ mix(id_hash)) % 5


def node_from_facts(facts: dict[str, Any]) -> Node:
    """The same normalization as the Rust table (lower-cased type names)."""
    return Node(
        node_id=facts["node_id"],
        engines=sorted({e.lower() for e in facts["engines"]}),
        publishers=sorted({p.lower() for p in facts["publishers"]}),
        storages=sorted({s.lower() for s in facts["storages"]}),
        labels=dict(facts["labels"]),
        max_job=tuple(map(float, facts["max_job"])),  # type: ignore[arg-type]
        max_capacity=tuple(map(float, facts["max_capacity"])),  # type: ignore[arg-type]
        available=tuple(map(float, facts["available"])),  # type: ignore[arg-type]
        queued=tuple(map(float, facts["queued"])),  # type: ignore[arg-type]
        version=tuple(facts["version"]) if facts.get("version") else None,  # type: ignore[arg-type]
        id_hash=fnv1a(facts["node_id"].encode()),
    )


def job_from_requirements(req: dict[str, Any]) -> Job:
    return Job(engine=req["engine"], publisher=req["publisher"], storages=list(req["storages"]),
               constraints=[(k, op, list(v)) for k, op, v in req["constraints"]],
               resources=tuple(map(float, req["resources"])),  # type: ignore[arg-type]
               previous=dict(req.get("previous", {})),
               min_version=tuple(req.get("min_version", (1, 0, 4))),  # type: ignore[arg-type]
               oversubscription_factor=float(req.get("oversubscription_factor", 1.5)))


class Reject(Exception):
    """A ranker's rejection (its message)."""


def _matches(op: str, values: list[str], value: str | None) -> bool:
    op = op.lower()
    if op in ("in", "=", "=="):
        return value is not None and value in values
    if op in ("notin", "!="):
        return value is None or value not in values
    if op == "exists":
        return value is not None
    if op == "!":
        return value is None
    try:
        v, n = int((value or "").strip()), int(values[0].strip())
    except ValueError:
        return False
    return v > n if op == "gt" else v < n


def _weights(job: Res) -> tuple[float, ...]:
    w = [job[i] / UNITS[i] for i in range(4)]
    total = sum(w)
    if total > 0 and math.isfinite(total):
        return tuple(x / total for x in w)
    return DEFAULT_WEIGHTS


def _share(value: Res, top: Res, w: tuple[float, ...]) -> float:
    score = sum(w[i] * (value[i] / top[i]) for i in range(4) if top[i] > 0)
    return min(max(score, 0.0), 1.0)


def score(node: Node, job: Job, seed: int, weights: tuple[float, ...], max_available: Res,
          max_queued: Res) -> int:
    """The chain on one node: summed score, or `Reject` with the first rejection's message."""
    rank = 0
    # Engines
    if job.engine.lower() not in node.engines:
        raise Reject(f"does not support engine {job.engine!r}")
    rank += PREFERRED
    # Publishers
    if job.publisher and job.publisher.lower() not in node.publishers:
        raise Reject(f"does not support publisher {job.publisher!r}")
    rank += PREFERRED
    # Storages
    for s in job.storages:
        if s.lower() not in node.storages:
            raise Reject(f"does not support input source {s!r}")
    rank += PREFERRED
    # Labels
    hard, bonus = False, 0
    for key, op, values in job.constraints:
        soft = key.startswith("favour_")
        real = key[len("favour_"):] if soft else key
        ok = _matches(op, values, node.labels.get(real))
        if soft:
            bonus += SOFT_BONUS if ok else 0
        elif ok:
            hard = True
        else:
            raise Reject(f"does not match label constraint {key} {op} {values}")
    rank += (PREFERRED if hard else POSSIBLE) + bonus
    # MaxUsage
    if any(job.resources):
        for i in range(4):
            if job.resources[i] > node.max_job[i]:
                raise Reject(f"job requires more {DIMS[i]} than the maximum available")
        rank += PREFERRED
    # OverSubscription
    if not any(node.max_capacity):
        raise Reject("node busy: it reported no capacity")
    for i in range(4):
        in_use = max(node.max_capacity[i] - node.available[i], 0.0)
        needed = in_use + node.queued[i] + job.resources[i]
        if needed > job.oversubscription_factor * node.max_capacity[i]:
            raise Reject(f"node busy: {DIMS[i]} exceeds the limit")
    # MinVersion
    v = node.version
    if v is not None:
        if (v[0] == 0 and v[1] == 0) or v >= job.min_version:
            rank += PREFERRED
        else:
            raise Reject(f"node version {v} is older than the minimum required")
    # PreviousExecutions
    prev = job.previous.get(node.node_id)
    if prev is None:
        rank += NEVER_RAN
    else:
        count, live, rejected = prev
        if rejected:
            raise Reject("node rejected a bid for this job")
        if live:
            raise Reject("job already has a live execution on this node")
        if count > 1:
            raise Reject(f"job already ran on this node {count} times")
        rank += POSSIBLE if count == 1 else NEVER_RAN
    # AvailableCapacity
    cap = 80.0 * _share(node.available, max_available, weights) + 20.0 * (
        1.0 - _share(node.queued, max_queued, weights))
    rank += int(min(max(math.floor(cap + 1e-9), 0), 100))
    # Random
    return rank + draw(seed, node.id_hash)


def rank(nodes: list[Node], job: Job, seed: int, limit: int
         ) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The best `limit` suitable nodes as (node id, rank), and rejection counts by message."""
    weights = _weights(job.resources)
    max_available = tuple(max((n.available[i] for n in nodes), default=0.0) for i in range(4))
    max_queued = tuple(max((n.queued[i] for n in nodes), default=0.0) for i in range(4))
    suitable: list[tuple[int, str]] = []
    reasons: dict[str, int] = {}
    for node in nodes:
        try:
            r = score(node, job, seed, weights, max_available, max_queued)  # type: ignore[arg-type]
        except Reject as exc:
            reasons[str(exc)] = reasons.get(str(exc), 0) + 1
            continue
        suitable.append((-r, node.node_id))
    best = heapq.nsmallest(limit, suitable)
    return [(node_id, -neg) for neg, node_id in best], reasons
