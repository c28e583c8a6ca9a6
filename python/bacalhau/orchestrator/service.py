"""Requester: the orchestrator facade the API calls (internals §5), and the one place where
its parts are wired: job store, evaluation broker, scheduler workers, planner, outbox
dispatcher, compute message handlers, housekeeping, node manager and node selector.

Every write the API asks for (submit, stop) happens in one store transaction together with
its history event and evaluation; the evaluation is enqueued after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bacalhau.config import Config, parse_duration
from bacalhau.errors import BacalhauError, NotFoundError, OverloadedError, ValidationError
from bacalhau.models import (
    MEMBERSHIP_APPROVED,
    EvalStatus,
    EvalTrigger,
    Evaluation,
    Event,
    Execution,
    ExecutionStateType,
    Job,
    JobHistory,
    JobState,
    JobStateType,
    JobType,
    NodeInfo,
    NodeState,
    SpecConfig,
    Topic,
)
from bacalhau.models.ids import new_eval_id, new_job_id
from bacalhau.models.spec import LabelSelectorRequirement, parse_selector
from bacalhau.models.timeutil import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.dispatcher import Dispatcher
from bacalhau.orchestrator.handlers import ExecutionMessageHandlers
from bacalhau.orchestrator.housekeeping import Housekeeping
from bacalhau.orchestrator.logs import pick_execution, stream_execution_logs
from bacalhau.orchestrator.nodeload import NodeLoad, Usage
from bacalhau.orchestrator.planner import Planner
from bacalhau.orchestrator.transforms import legacy_wasm_modules
from bacalhau.orchestrator.worker import EvaluationWorker
from bacalhau.store.jobstore import IN_PROGRESS_STATES, JobStore
from bacalhau.transport import Transport, messages

if TYPE_CHECKING:
    from bacalhau.orchestrator.nodes import NodeManager
    from bacalhau.orchestrator.selection import NodeSelector

log = logging.getLogger(__name__)

META_REQUESTER_ID = "bacalhau.org/requester.id"
META_ORCHESTRATOR_ID = "bacalhau.org/orchestrator.id"
DEFAULT_STOP_MESSAGE = "Job requested to stop before completion"
RESULT_JOB_TYPES = (JobType.BATCH.value, JobType.OPS.value)
WAKE_ON_JOIN = 64
"""Jobs queued for capacity that a node joining wakes at once (the rest wait for a slot to free
or for their QueueBackoff)."""


@dataclass(slots=True)
class SubmitResult:
    job_id: str
    evaluation_id: str
    warnings: list[str] = field(default_factory=list)


class Requester:
    """Orchestrator node service; `nodes` and `selector` are built by node.py and started and
    stopped here."""

    def __init__(self, config: Config, store: JobStore, transport: Transport,
                 node_info: NodeInfo, *, nodes: NodeManager, selector: NodeSelector) -> None:
        self.config = config
        self.store = store
        self.transport = transport
        self.node_info = node_info
        self.nodes = nodes
        self.selector = selector
        self.broker = EvaluationBroker(
            visibility_timeout=config.duration("Orchestrator.EvaluationBroker.VisibilityTimeout"),
            max_retries=int(config.get("Orchestrator.EvaluationBroker.MaxRetryCount")),
            nack_delays=_durations(config, "Orchestrator.EvaluationBroker.NackDelays",
                                   ("5s", "30s")),
            on_discard=lambda ev: self._set_status(ev, EvalStatus.CANCELED),
            on_dead_letter=self._dead_letter,
        )
        self.load = NodeLoad(self._usage_of)
        self._usage: dict[str, Usage] = {}  # job id -> what one execution of it holds
        store.execution_listeners.append(self.load.observe)
        self.load.listeners.append(self._on_load)
        nodes.use_load(self.load)
        self.dispatcher = Dispatcher(store, transport, on_refused=self._refused)
        self.planner = Planner(store, node_id=node_info.node_id, on_outbox=self.dispatcher.wake)
        self.handlers = ExecutionMessageHandlers(store, self.broker.enqueue)
        self.worker = EvaluationWorker(
            store, self.broker, self.planner, select=selector.select, is_alive=self._is_alive,
            queue_backoff=config.duration("Orchestrator.Scheduler.QueueBackoff"))
        self.housekeeping = Housekeeping(
            store, self.broker.enqueue,
            interval=config.duration("Orchestrator.Scheduler.HousekeepingInterval"),
            buffer=_duration(config, "Orchestrator.Scheduler.TimeoutBuffer", "1s"))
        self.worker_count = max(1, int(config.get("Orchestrator.Scheduler.WorkerCount") or 1))
        self._grace = config.duration("Orchestrator.NodeManager.DisconnectTimeout")
        self._grace_until = 0.0
        self._workers: list[asyncio.Task[None]] = []
        self._node_events: dict[str, str] = {}
        self._grace_timer: asyncio.TimerHandle | None = None
        self._running = False
        # observers (metrics) of what the requester itself does to jobs: ("submitted", job)
        # after a submission, ("stopped", job) after a user's stop; both after the commit
        self.job_listeners: list[Callable[[str, Job], None]] = []

    # ----- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve compute messages, start the node manager, resend unsent messages and reload
        pending evaluations, then start the workers and housekeeping."""
        loop = asyncio.get_running_loop()
        self._running = True
        self.handlers.register(self.transport)
        # the own part of every node's load, before the nodes' reports are read: a report
        # taken against an empty count would take our own work for another requester's
        for execution in self.store.live_executions():
            self.load.observe(execution.id, execution.node_id, execution.job_id, True)
        await self.nodes.start()
        self.nodes.add_listener(self._on_node_event)
        self._grace_until = loop.time() + self._grace
        self._grace_timer = loop.call_later(self._grace, self._after_grace)
        await self.dispatcher.start()
        for evaluation in self.store.pending_evaluations():
            self.broker.enqueue(evaluation)
        self._workers = [asyncio.create_task(self.worker.run(), name=f"scheduler-worker-{i}")
                         for i in range(self.worker_count)]
        await self.housekeeping.start()

    async def stop(self) -> None:
        self._running = False
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        await self.housekeeping.stop()
        self.broker.close()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        await self.dispatcher.stop()
        await self.nodes.stop()

    # ----- jobs -------------------------------------------------------------------------------

    async def submit_job(self, job: Job, force: bool = False,
                         client_meta: dict[str, str] | None = None, *,
                         owned: bool = False) -> SubmitResult:
        """Validate, store (new job or new version of a same-named one) and schedule a job.
        The caller's `job` is left as it was, unless `owned` (a job parsed for this call)."""
        self.admit()
        if not owned:
            job = job.copy()
        warnings = self._prepare(job, client_meta)
        job.normalize()
        job.validate()
        with self.store.transaction():
            stored, previous = self.store.create_or_update_job(job, force=force)
            message = "Job submitted" if previous is None else "Job updated"
            self.store.add_history(stored.id, stored.version, Event.new(
                Topic.SUBMISSION, message, NewState=JobStateType.PENDING.value))
            evaluation = self._new_evaluation(
                stored, EvalTrigger.JOB_REGISTER if previous is None else EvalTrigger.JOB_UPDATE)
            self.store.create_evaluation(evaluation)
        self.broker.enqueue(evaluation)
        for listener in self.job_listeners:
            listener("submitted", stored)
        await self.store.durable()  # no answer before the job is durable (group commit)
        return SubmitResult(stored.id, evaluation.id, warnings)

    def admit(self) -> None:
        """Backpressure (issue 15): refuse a submit while the evaluation queue or the outbox
        is full, rather than let latency grow without bound (429 + Retry-After). The API
        asks before it reads a submit's body, so that a refusal costs little."""
        stats = self.broker.stats()
        queued = stats["ready"] + stats["waiting"] + stats["delayed"]
        limits = (
            (queued, "Orchestrator.EvaluationBroker.MaxQueued", 10000, "queued evaluations"),
            (self.store.unsent_count, "Orchestrator.MaxUnsentMessages", 50000,
             "undelivered messages to compute nodes"),
        )
        for count, key, default, what in limits:
            limit = int(self.config.get(key, default))
            if count >= limit:
                raise OverloadedError(
                    f"the orchestrator is overloaded: {count} {what}, the limit is {limit} "
                    f"({key})", retry_after=1,
                    hint=f"retry after the Retry-After seconds, or raise {key} on the node",
                    details={"Limit": str(limit), "ConfigKey": key, "Current": str(count)})

    def _prepare(self, job: Job, client_meta: dict[str, str] | None) -> list[str]:
        """Server-side fields, defaults and the warnings about what was ignored."""
        warnings: list[str] = []
        job.type = job.type.strip().lower()
        if job.type in RESULT_JOB_TYPES or not job.id:
            if job.id:
                warnings.append(f"job ID {job.id} is ignored: the server assigns IDs of "
                                f"{job.type} jobs")
            job.id = new_job_id()
        if job.state.state_type not in ("", JobStateType.UNDEFINED.value):
            warnings.append("job State is set by the server and was ignored")
        if job.version > 1 or job.revision > 1 or job.create_time or job.modify_time:
            warnings.append("job Version, Revision, CreateTime and ModifyTime are set by the "
                            "server and were ignored")
        job.state = JobState()
        job.version, job.revision, job.create_time, job.modify_time = 1, 1, 0, 0
        if len(job.tasks) > 1:
            warnings.append(f"only one task is supported: {len(job.tasks) - 1} extra task(s) "
                            "were dropped")
            del job.tasks[1:]
        warnings.extend(job.strip_reserved_meta())
        warnings.extend(legacy_wasm_modules(job))
        for key, value in (client_meta or {}).items():
            job.meta[key] = value
        job.meta[META_REQUESTER_ID] = self.node_info.node_id
        job.meta[META_ORCHESTRATOR_ID] = self.node_info.node_id
        self._apply_defaults(job)
        return warnings

    def _apply_defaults(self, job: Job) -> None:
        if not job.tasks:
            return
        task = job.task
        defaults = self.config.get(f"JobDefaults.{job.type}.Task") or {}
        resources = _ci(defaults, "Resources") or {}
        for name in ("cpu", "memory", "disk", "gpu"):
            if not getattr(task.resources, name) and _ci(resources, name):
                setattr(task.resources, name, str(_ci(resources, name)))
        publisher = _ci(_ci(defaults, "Publisher") or {}, "Type")
        if publisher and task.publisher.is_empty():
            task.publisher = SpecConfig(type=str(publisher))
        if job.type in RESULT_JOB_TYPES:
            timeouts = _ci(defaults, "Timeouts") or {}
            for key, attr in (("ExecutionTimeout", "execution_timeout"),
                              ("TotalTimeout", "total_timeout"),
                              ("QueueTimeout", "queue_timeout")):
                value = _ci(timeouts, key)
                if value and not getattr(task.timeouts, attr):
                    setattr(task.timeouts, attr, int(_duration_value(value, key)))

    async def stop_job(self, job_id_or_name: str, namespace: str, reason: str) -> str:
        """Stop a job; returns the evaluation id ("" when it was already stopped)."""
        job = self.store.find_job(job_id_or_name, namespace)
        if job.state_type == JobStateType.COMPLETED:
            raise ValidationError(
                f"job {job.id} is already Completed and cannot be stopped",
                component="Orchestrator")
        if job.state_type == JobStateType.STOPPED:
            return ""
        message = reason or DEFAULT_STOP_MESSAGE
        with self.store.transaction():
            stored = self.store.update_job_state(
                job.id, JobState(JobStateType.STOPPED.value, message),
                expected_revision=job.revision)
            self.store.add_history(stored.id, stored.version, Event.new(
                Topic.STATE_UPDATE, message, NewState=JobStateType.STOPPED.value))
            evaluation = self._new_evaluation(stored, EvalTrigger.JOB_CANCEL)
            self.store.create_evaluation(evaluation)
        self.broker.enqueue(evaluation)
        for listener in self.job_listeners:
            listener("stopped", stored)
        await self.store.durable()
        return evaluation.id

    def get_job(self, id_or_name: str, namespace: str = "default", version: int = 0) -> Job:
        job = self.store.find_job(id_or_name, namespace)
        return self.store.get_job_version(job.id, version) if version else job

    def get_job_json(self, id_or_name: str, namespace: str = "default") -> bytes:
        """The current job as JSON, exactly `dumps(get_job(...).to_dict())`, unparsed."""
        return self.store.find_job_json(id_or_name, namespace)[1]

    def list_jobs(self, namespace: str | None, limit: int, offset: int, order_by: str,
                  reverse: bool, labels: list[str]) -> tuple[list[Job], bool]:
        selector: list[LabelSelectorRequirement] = []
        for text in labels or []:
            selector.extend(parse_selector(text))
        return self.store.list_jobs(namespace, limit=limit, offset=offset,
                                    order_by=order_by or "created_at", reverse=reverse,
                                    selector=selector)

    def job_history(self, job_id: str, *, since: int = 0, event_type: str = "all",
                    execution_id: str = "", job_version: int = 0, all_versions: bool = False,
                    offset: int = 0, limit: int = 100) -> tuple[list[JobHistory], int]:
        """A page of history and the offset of the next page."""
        job = self.store.find_job(job_id, None)
        items = self.store.job_history(
            job.id, since=since, event_type=event_type, execution_id=execution_id,
            job_version=_version(job, job_version, all_versions), offset=offset, limit=limit)
        return items, offset + len(items)

    def job_executions(self, job_id: str, *, job_version: int = 0, all_versions: bool = False,
                       order_by: str = "created_at", reverse: bool = False) -> list[Execution]:
        job = self.store.find_job(job_id, None)
        return self.store.get_executions(
            job.id, job_version=_version(job, job_version, all_versions),
            order_by=order_by or "created_at", reverse=reverse)

    def job_versions(self, job_id: str) -> list[Job]:
        return self.store.job_versions(self.store.find_job(job_id, None).id)

    def job_results(self, job_id: str) -> list[SpecConfig]:
        """Published results of the Completed executions of the job's current version."""
        job = self.store.find_job(job_id, None)
        if job.type not in RESULT_JOB_TYPES:
            raise BacalhauError(
                f"job {job.id} is a {job.type} job: results exist for batch and ops jobs only",
                component="Orchestrator")
        return [e.published_result for e in self.store.get_executions(
                    job.id, job_version=job.version)
                if e.compute_state.state_type == ExecutionStateType.COMPLETED
                and not e.published_result.is_empty()]

    async def stream_logs(self, job_id: str, execution_id: str, follow: bool,
                          tail: bool) -> AsyncIterator[tuple[int, str]]:
        """`(1 stdout | 2 stderr, line)` of the named or the latest live execution."""
        job = self.store.find_job(job_id, None)
        execution = pick_execution(job.id, self.store.get_executions(job.id), execution_id)
        async for item in stream_execution_logs(self.transport, execution, follow=follow,
                                                tail=tail):
            yield item

    # ----- nodes ------------------------------------------------------------------------------

    def list_nodes(self, *, filter_approval: str = "", filter_status: str = "",
                   labels: Iterable[str] = (), order_by: str = "id",
                   reverse: bool = False) -> list[NodeState]:
        """The node states as they are now (not copies): read them before the next await."""
        return self.nodes.list(filter_approval=filter_approval, filter_status=filter_status,
                               labels=list(labels), order_by=order_by, reverse=reverse,
                               copies=False)

    def nodes_wire(self, states: Iterable[NodeState]) -> bytes:
        """The states as a JSON array of their wire form (cached per node)."""
        return self.nodes.wire(states)

    def get_node(self, node_id: str) -> NodeState:
        return self.nodes.resolve(node_id)

    async def node_action(self, node_id: str, action: str, message: str) -> None:
        await self.nodes.node_action(node_id, action, message)

    # ----- internals --------------------------------------------------------------------------

    def _new_evaluation(self, job: Job, trigger: str, *, delayed: bool = False) -> Evaluation:
        now = now_ns()
        return Evaluation(
            id=new_eval_id(delayed=delayed), namespace=job.namespace, job_id=job.id,
            triggered_by=trigger, priority=job.priority, type=job.type,
            status=EvalStatus.PENDING, create_time=now, modify_time=now)

    def _set_status(self, evaluation: Evaluation, status: str) -> None:
        with self.store.transaction():
            self.store.finish_evaluation(evaluation, status)

    def _refused(self, execution_id: str, node_id: str, reason: str) -> None:
        """A node refused the AskForBid/BidAccepted of an execution (it could not store it,
        e.g. its disk is full): fail the execution as if the node had reported the error,
        so the job is placed again (the node stays up and may take later work)."""
        event = Event.error(Topic.EXEC_SCANNING, f"node {node_id} refused the execution: "
                            f"{reason}", fails_execution=True)
        with contextlib.suppress(NotFoundError):
            self.handlers.apply(messages.COMPUTE_ERROR,
                                {"ExecutionID": execution_id, "Events": [event.to_dict()]})

    def _usage_of(self, job_id: str) -> Usage:
        """What one execution of the job holds on its node, as the ranking counts it."""
        usage = self._usage.get(job_id)
        if usage is None:
            try:
                usage = self.selector.resources(self.store.get_job(job_id)).as_tuple()
            except BacalhauError:
                usage = (0.0, 0, 0, 0)
            if len(self._usage) >= 10000:
                self._usage.clear()
            self._usage[job_id] = usage
        return usage

    def _on_load(self, node_id: str, freed: bool) -> None:
        """An own execution ended: a job queued for capacity may fit now."""
        if freed and self._running:
            self.broker.wake_queued(1)

    def _dead_letter(self, evaluation: Evaluation) -> None:
        log.error("evaluation %s of job %s failed %d times and was dropped",
                  evaluation.id, evaluation.job_id, self.broker.max_retries)
        self._set_status(evaluation, EvalStatus.FAILED)

    def _is_alive(self, node_id: str) -> bool:
        """Schedulable, or (until the nodes had a disconnect timeout to be heard after a
        restart) known and approved: executions are not failed for a silence we caused."""
        if self.nodes.is_schedulable(node_id):
            return True
        if asyncio.get_running_loop().time() >= self._grace_until:
            return False
        state = self.nodes.get(node_id)
        return state is not None and state.membership == MEMBERSHIP_APPROVED

    def _after_grace(self) -> None:
        """Re-evaluate jobs whose executions sit on nodes still unheard after the grace."""
        self._grace_timer = None
        jobs, _ = self.store.list_jobs(None, states=[s.value for s in IN_PROGRESS_STATES])
        lost = [j for j in jobs if any(
            not e.is_terminal() and not self.nodes.is_schedulable(e.node_id)
            for e in self.store.get_executions(j.id, job_version=j.version))]
        self._enqueue_for(lost, EvalTrigger.NODE_LEAVE)

    def _on_node_event(self, node_id: str, event: str) -> None:
        """Node listener: batch the events of one loop turn, then re-evaluate."""
        if event not in ("join", "leave") or not self._running:
            return
        first = not self._node_events
        self._node_events[node_id] = event
        if first:
            asyncio.get_running_loop().call_soon(self._reevaluate_nodes)

    def _reevaluate_nodes(self) -> None:
        events, self._node_events = self._node_events, {}
        if not self._running:
            return
        left = [n for n, ev in events.items() if ev == "leave"]
        jobs: dict[str, Job] = {}
        for node_id in left:
            for execution in self.store.active_executions_on_node(node_id):
                if execution.job_id not in jobs:
                    with contextlib.suppress(BacalhauError):
                        jobs[execution.job_id] = self.store.get_job(execution.job_id)
        self._enqueue_for([j for j in jobs.values() if not j.is_terminal()],
                          EvalTrigger.NODE_LEAVE)
        if any(ev == "join" for ev in events.values()):
            # a new node may have room for jobs queued for capacity: try the oldest now
            self.broker.wake_queued(WAKE_ON_JOIN)
            daemons, _ = self.store.list_jobs(
                None, states=[s.value for s in IN_PROGRESS_STATES], types=[JobType.DAEMON])
            self._enqueue_for(daemons, EvalTrigger.NODE_JOIN)

    def _enqueue_for(self, jobs: list[Job], trigger: str) -> None:
        if not jobs:
            return
        evaluations = [self._new_evaluation(j, trigger) for j in jobs]
        with self.store.transaction():
            for evaluation in evaluations:
                self.store.create_evaluation(evaluation)
        for evaluation in evaluations:
            self.broker.enqueue(evaluation)


def _version(job: Job, job_version: int, all_versions: bool) -> int | None:
    if all_versions:
        return None
    return job_version or job.version


def _ci(d: Any, key: str) -> Any:
    if not isinstance(d, dict):
        return None
    return next((v for k, v in d.items() if str(k).lower() == key.lower()), None)


def _duration_value(value: Any, key: str) -> float:
    return parse_duration(value, key)


def _duration(config: Config, key: str, default: str) -> float:
    return _duration_value(config.get(key, default), key)


def _durations(config: Config, key: str, default: tuple[str, ...]) -> tuple[float, ...]:
    value = config.get(key, list(default))
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    return tuple(_duration_value(v, key) for v in value)
