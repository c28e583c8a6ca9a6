"""Fixture factories for jobs, executions and nodes, and stand-ins for the node manager and
node selector (internals §9) for tests that must not depend on the native ranking.

The stand-ins are named `Stub*` so nobody mistakes them for the real thing: the real
`NodeManager`/`NodeSelector` live in bacalhau.orchestrator.nodes / .selection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bacalhau.models import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    NODE_TYPE_COMPUTE,
    ComputeNodeInfo,
    ConnectionState,
    Evaluation,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    Job,
    JobState,
    JobStateType,
    NodeInfo,
    NodeState,
    SpecConfig,
    Task,
    TimeoutConfig,
)
from bacalhau.models.ids import new_eval_id, new_execution_id, new_job_id, short_id
from bacalhau.models.resources import Resources
from bacalhau.models.timeutil import now_ns

Desired = ExecutionDesiredStateType
Compute = ExecutionStateType


async def register_node(transport: Any, requester_id: str, info: NodeInfo) -> None:
    """Send `info` from a compute node's `transport` to the requester, as a compute node does
    (a NodeInfo request on PROTOCOL_MEMBERSHIP), and wait for the acknowledgement."""
    from bacalhau.transport import PROTOCOL_MEMBERSHIP, messages

    reply = await transport.request(requester_id, PROTOCOL_MEMBERSHIP, messages.encode(
        messages.NODE_INFO, {"NodeInfo": info.to_dict()}, source=info.node_id))
    messages.parse_reply(reply)


def make_job(
    *,
    type: str = "batch",
    count: int | None = None,
    name: str = "",
    id: str = "",
    state: JobStateType = JobStateType.PENDING,
    engine: str = "noop",
    publisher: str = "",
    priority: int = 0,
    version: int = 1,
    revision: int = 1,
    create_time: int | None = None,
    execution_timeout: int = 0,
    queue_timeout: int = 0,
    total_timeout: int = 0,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
) -> Job:
    """A valid job; batch/service default to Count 1, ops/daemon to 0."""
    job_id = id or new_job_id()
    if count is None:
        count = 1 if type in ("batch", "service") else 0
    now = now_ns() if create_time is None else create_time
    return Job(
        id=job_id, name=name or job_id, namespace=namespace, type=type, priority=priority,
        count=count, labels=dict(labels or {}),
        tasks=[Task(name="main", engine=SpecConfig(type=engine),
                    publisher=SpecConfig(type=publisher),
                    timeouts=TimeoutConfig(execution_timeout=execution_timeout,
                                           queue_timeout=queue_timeout,
                                           total_timeout=total_timeout))],
        state=JobState(state.value), version=version, revision=revision,
        create_time=now, modify_time=now,
    )


def job_spec(**kw: Any) -> Job:
    """A job as a client submits it (no server-side fields)."""
    job = make_job(**kw)
    job.id = ""
    job.name = kw.get("name", "")
    job.state = JobState()
    job.create_time = job.modify_time = 0
    return job


def make_execution(
    job: Job,
    node_id: str,
    *,
    partition: int = 0,
    desired: int = Desired.PENDING,
    compute: int = Compute.NEW,
    create_time: int | None = None,
    modify_time: int | None = None,
    message: str = "",
    job_version: int | None = None,
    revision: int = 1,
) -> Execution:
    now = now_ns() if create_time is None else create_time
    return Execution(
        id=new_execution_id(), namespace=job.namespace, eval_id="", name=job.name,
        node_id=node_id, job_id=job.id, job=None,
        job_version=job.version if job_version is None else job_version,
        desired_state=ExecutionState(int(desired), message),
        compute_state=ExecutionState(int(compute), message),
        partition_index=partition, revision=revision, create_time=now,
        modify_time=now if modify_time is None else modify_time,
    )


def make_evaluation(job: Job, trigger: str = "job-register", *, priority: int | None = None,
                    create_time: int | None = None, wait_until: int = 0) -> Evaluation:
    now = now_ns() if create_time is None else create_time
    return Evaluation(id=new_eval_id(), namespace=job.namespace, job_id=job.id,
                      triggered_by=trigger,
                      priority=job.priority if priority is None else priority,
                      type=job.type, create_time=now, modify_time=now, wait_until=wait_until)


def make_node_info(node_id: str, *, engines: Iterable[str] = ("noop", "wasm"),
                   publishers: Iterable[str] = ("noop", "local"),
                   labels: dict[str, str] | None = None) -> NodeInfo:
    return NodeInfo(
        node_id=node_id, node_type=NODE_TYPE_COMPUTE, labels=dict(labels or {}),
        compute_node_info=ComputeNodeInfo(execution_engines=list(engines),
                                          publishers=list(publishers)))


# ----- stand-ins for NodeManager / NodeSelector (internals §9) -------------------------------


@dataclass
class StubSelection:
    """Same fields and `message` as bacalhau.orchestrator.selection.Selection."""

    ranks: list[tuple[str, int, bool, str, bool]] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    available: int = 0
    retryable: bool = False

    def message(self, requested: int) -> str:
        text = (f"not enough nodes to run job. requested: {requested}, available: "
                f"{self.available}, suitable: {len(self.matched)}.")
        for node_id, _, suitable, reason, _ in self.ranks:
            if not suitable:
                text += f"\n• Node {short_id(node_id)}: {reason}"
        return text


def stub_selection(matched: Iterable[str] = (), rejected: dict[str, str] | None = None
                   ) -> StubSelection:
    matched = list(matched)
    rejected = dict(rejected or {})
    ranks = [(n, 30, True, "", False) for n in matched]
    ranks += [(n, -1, False, r, False) for n, r in sorted(rejected.items())]
    return StubSelection(ranks=ranks, matched=matched, available=len(ranks))


class StubNodeManager:
    """Just enough of NodeManager: a dict of NodeStates, schedulability and listeners."""

    def __init__(self) -> None:
        self.states: dict[str, NodeState] = {}
        self.listeners: list[Callable[[str, str], None]] = []
        self.actions: list[tuple[str, str, str]] = []

    def add(self, info: NodeInfo, *, connected: bool = True) -> None:
        self.states[info.node_id] = NodeState(
            info=info, membership=MEMBERSHIP_APPROVED,
            connection_state=ConnectionState(status=CONNECTED if connected else DISCONNECTED))
        if connected:
            self._notify(info.node_id, "join")

    def set_connected(self, node_id: str, connected: bool) -> None:
        self.states[node_id].connection_state.status = CONNECTED if connected else DISCONNECTED
        self._notify(node_id, "join" if connected else "leave")

    def _notify(self, node_id: str, event: str) -> None:
        for callback in self.listeners:
            callback(node_id, event)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def use_load(self, load: object) -> None:
        self.load = load  # ranking is stubbed here: the load is only kept

    def get(self, node_id: str) -> NodeState | None:
        return self.states.get(node_id)

    def resolve(self, id_or_prefix: str) -> NodeState:
        from bacalhau.errors import NotFoundError

        found = [s for n, s in self.states.items() if n.startswith(id_or_prefix)]
        if len(found) != 1:
            raise NotFoundError(f"node not found: {id_or_prefix}")
        return found[0]

    def list(self, **_: Any) -> list[NodeState]:
        return [self.states[n] for n in sorted(self.states)]

    def is_schedulable(self, node_id: str) -> bool:
        s = self.states.get(node_id)
        return (s is not None and s.info.node_type == NODE_TYPE_COMPUTE
                and s.membership == MEMBERSHIP_APPROVED
                and s.connection_state.status == CONNECTED)

    def add_listener(self, callback: Callable[[str, str], None]) -> None:
        self.listeners.append(callback)

    async def node_action(self, node_id: str, action: str, message: str = "") -> None:
        self.actions.append((node_id, action, message))


class StubNodeSelector:
    """Ranks schedulable stub nodes by id, with the engine filter and the PreviousExecutions
    rule of reference §5.3 (>1 runs, a live run or a rejected bid exclude a node)."""

    def __init__(self, nodes: StubNodeManager) -> None:
        self.nodes = nodes

    def resources(self, job: Job) -> Resources:
        """No capacity is ranked here: every job holds nothing."""
        return Resources()

    def select(self, job: Job, executions: Iterable[Execution], *,
               seed: int | None = None) -> StubSelection:
        previous: dict[str, list[Execution]] = {}
        for e in executions:
            if e.job_version == job.version:
                previous.setdefault(e.node_id, []).append(e)
        matched: list[str] = []
        rejected: dict[str, str] = {}
        for node_id in sorted(self.nodes.states):
            if not self.nodes.is_schedulable(node_id):
                continue
            engines = self.nodes.states[node_id].info.compute_node_info.execution_engines
            runs = previous.get(node_id, [])
            if job.task.engine.type not in engines:
                rejected[node_id] = (f"does not support {job.task.engine.type}, only "
                                     + ", ".join(engines))
            elif len(runs) > 1 or any(not e.is_discarded() for e in runs):
                rejected[node_id] = "job already executed on this node"
            elif any(e.compute_state.state_type == Compute.ASK_FOR_BID_REJECTED for e in runs):
                rejected[node_id] = "node rejected the job before"
            else:
                matched.append(node_id)
        # never-ran nodes before nodes that ran once (rank 30 vs 0)
        matched.sort(key=lambda n: (bool(previous.get(n)), n))
        return stub_selection(matched, rejected)
