"""One node's metrics: what the job path reports through its hooks (counters and histograms,
updated in place) and what is read from the node's parts when `/metrics` is scraped.

Hooks (cheap, event-loop only): the planner's `on_applied` (scheduling latency, jobs that
ended, submit-to-Completed), the requester's `job_listeners` (submitted, stopped), the API
middleware (request latency by route). Read at scrape time: the evaluation broker's queue,
the node table, jobs and executions by state (the store files, on a worker thread), the
compute node's running executions and capacity, the libp2p transport's message counters.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from typing import Any

from bacalhau.metrics.instruments import JOB_BUCKETS, LATENCY_BUCKETS, Counter, Histogram
from bacalhau.metrics.storestats import (
    COMPUTE_EXECUTIONS,
    JOBS_BY_TYPE_AND_STATE,
    ORCHESTRATOR_EXECUTIONS,
    StoreReader,
    execution_state_name,
)
from bacalhau.models import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
    Job,
    JobStateType,
)
from bacalhau.models.timeutil import now_ns

log = logging.getLogger(__name__)

TERMINAL_JOB_STATES = (JobStateType.COMPLETED, JobStateType.FAILED, JobStateType.STOPPED)
TRANSPORT_FLOWS = {"messages_in": ("in",), "messages_out": ("out",)}
TRANSPORT_BYTES = {"bytes_in": ("in",), "bytes_out": ("out",)}


class NodeMetrics:
    """The metrics of one node; `requester`, `compute` and `transport` (a Libp2pTransport)
    are the node's parts, None for a role it lacks."""

    def __init__(self, node_id: str, *, requester: Any = None, compute: Any = None,
                 transport: Any = None, version: str = "") -> None:
        self.node_id = node_id
        self.version = version
        self.requester = requester
        self.compute = compute
        self.transport = transport
        self.api_requests = Histogram(
            "bacalhau_api_request_duration_seconds",
            "Time to answer an API request, by method, route and status code",
            ("method", "route", "status"), LATENCY_BUCKETS)
        self.jobs_submitted = Counter(
            "bacalhau_jobs_submitted", "Jobs (and new job versions) accepted", ("type",))
        self.jobs_ended = Counter(
            "bacalhau_jobs_ended", "Jobs that reached an end state", ("type", "state"))
        self.job_completion = Histogram(
            "bacalhau_job_submit_to_completed_seconds",
            "From a job's CreateTime to its Completed state", ("type",), JOB_BUCKETS)
        self.scheduling = Histogram(
            "bacalhau_scheduling_latency_seconds",
            "From an evaluation being due (created, or its WaitUntil) to its plan being "
            "applied", ("type", "trigger"), LATENCY_BUCKETS)
        self._readers: list[StoreReader] = []
        self._jobs_db = self._reader(requester.store.path) if requester is not None else None
        self._compute_db = self._reader(compute.store.path) if compute is not None else None
        self._scrape_lock: asyncio.Lock | None = None
        if requester is not None:
            requester.planner.on_applied.append(self.plan_applied)
            requester.job_listeners.append(self.job_event)

    def _reader(self, path: Any) -> StoreReader:
        reader = StoreReader(path)
        self._readers.append(reader)
        return reader

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    # ----- hooks (hot paths: a few dictionary updates each) ----------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.api_requests.observe(seconds, method, route, str(status))

    def job_event(self, event: str, job: Job) -> None:
        """Requester listener: `submitted` or `stopped` (by a user). Never raises: the job
        path must not fail for a metric."""
        try:
            if event == "submitted":
                self.jobs_submitted.inc(job.type)
            elif event == "stopped":
                self.jobs_ended.inc(job.type, JobStateType.STOPPED.value)
        except Exception:
            log.exception("metrics: job event %s of %s not counted", event, job.id)

    def plan_applied(self, plan: Any) -> None:
        """Planner listener, after the plan's transaction committed. Never raises."""
        try:
            self._count_plan(plan)
        except Exception:
            log.exception("metrics: plan of evaluation %s not counted",
                          getattr(getattr(plan, "evaluation", None), "id", "?"))

    def _count_plan(self, plan: Any) -> None:
        now = now_ns()
        evaluation = plan.evaluation
        if evaluation.id:
            due = max(evaluation.create_time, evaluation.wait_until or 0)
            self.scheduling.observe(max(0.0, (now - due) / 1e9), evaluation.type or
                                    plan.job.type, evaluation.triggered_by or "")
        state = plan.new_state
        if state is not None and state.type in TERMINAL_JOB_STATES and \
                plan.job.state_type not in TERMINAL_JOB_STATES:
            self.jobs_ended.inc(plan.job.type, state.state_type)
            if state.type == JobStateType.COMPLETED and plan.job.create_time:
                self.job_completion.observe(max(0.0, (now - plan.job.create_time) / 1e9),
                                            plan.job.type)

    # ----- scrape ----------------------------------------------------------------------------

    async def scrape(self) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type. Reading the store files
        and the transport's counters runs on a worker thread; scrapes run one at a time."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.registry import CollectorRegistry

        if self._scrape_lock is None:
            self._scrape_lock = asyncio.Lock()
        async with self._scrape_lock:
            families = self._live_families()
            families += await asyncio.to_thread(self._slow_families)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families))
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def _live_families(self) -> list[Any]:
        """What lives in this process's memory: read on the event loop, no I/O."""
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily("bacalhau_node_info", "This node: id, roles and version",
                                 labels=("node_id", "roles", "version"))
        roles = ",".join(r for r, part in (("orchestrator", self.requester),
                                           ("compute", self.compute)) if part is not None)
        info.add_metric([self.node_id, roles, self.version], 1)
        families: list[Any] = [info, self.api_requests.family()]
        if self.requester is not None:
            families += self._requester_families()
        if self.compute is not None:
            families += self._compute_families()
        return families

    def _requester_families(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        queue = GaugeMetricFamily(
            "bacalhau_evaluation_queue", "Evaluations in the broker, by state (ready: waiting "
            "for a worker; unacked: being scheduled; waiting: behind another of the same job; "
            "delayed: due later; dead: given up after retries)", labels=("state",))
        for state, count in sorted(self.requester.broker.stats().items()):
            queue.add_metric([state], count)
        nodes = GaugeMetricFamily("bacalhau_nodes", "Nodes this orchestrator knows, by type, "
                                  "connection and approval", labels=("type", "connection",
                                                                     "membership"))
        tally = Tally((n.info.node_type, n.connection_state.status, n.membership)
                      for n in self.requester.nodes.list())
        for connection in (CONNECTED, DISCONNECTED):
            for membership in (MEMBERSHIP_APPROVED, MEMBERSHIP_PENDING, MEMBERSHIP_REJECTED):
                tally.setdefault(("Compute", connection, membership), 0)
        for (node_type, connection, membership), count in sorted(tally.items()):
            nodes.add_metric([node_type, connection, membership], count)
        return [queue, nodes, self.jobs_submitted.family(), self.jobs_ended.family(),
                self.job_completion.family(), self.scheduling.family()]

    def _compute_families(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        buffer = self.compute.buffer
        running = GaugeMetricFamily("bacalhau_compute_executions_running",
                                    "Executions running on this compute node")
        running.add_metric([], buffer.running_count)
        queued = GaugeMetricFamily("bacalhau_compute_executions_queued",
                                   "Accepted executions waiting for capacity on this node")
        queued.add_metric([], buffer.queued_count)
        total = GaugeMetricFamily("bacalhau_compute_capacity", "Capacity this node offers "
                                  "(CPU cores; memory and disk bytes; GPUs)",
                                  labels=("resource",))
        used = GaugeMetricFamily("bacalhau_compute_capacity_used", "Capacity held by running "
                                 "executions", labels=("resource",))
        for family, resources in ((total, self.compute.max_capacity),
                                  (used, self.compute.tracker.used)):
            for name in ("cpu", "memory", "disk", "gpu"):
                family.add_metric([name], float(getattr(resources, name)))
        return [running, queued, total, used]

    def _slow_families(self) -> list[Any]:
        """Store counts and transport counters: file and native reads, on a worker thread."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: list[Any] = []
        if self._jobs_db is not None:
            jobs = GaugeMetricFamily("bacalhau_jobs", "Jobs in the job store, by type and "
                                     "state", labels=("type", "state"))
            for job_type, state, count in self._jobs_db.rows(JOBS_BY_TYPE_AND_STATE):
                jobs.add_metric([str(job_type), str(state)], float(count))
            executions = GaugeMetricFamily("bacalhau_executions", "Executions in the job store"
                                           ", by compute state", labels=("state",))
            for state, count in self._jobs_db.rows(ORCHESTRATOR_EXECUTIONS):
                executions.add_metric([execution_state_name(int(state))], float(count))
            families += [jobs, executions]
        if self._compute_db is not None:
            local = GaugeMetricFamily("bacalhau_compute_executions", "Executions in this "
                                      "compute node's store, by state", labels=("state",))
            for state, count in self._compute_db.rows(COMPUTE_EXECUTIONS):
                local.add_metric([execution_state_name(int(state))], float(count))
            families.append(local)
        stats = self._transport_stats()
        if stats:
            messages = CounterMetricFamily("bacalhau_transport_messages", "Application "
                                           "messages over libp2p (gossip and requests)",
                                           labels=("direction",))
            sizes = CounterMetricFamily("bacalhau_transport_bytes", "Application bytes over "
                                        "libp2p", labels=("direction",))
            errors = CounterMetricFamily("bacalhau_transport_errors", "Connections, messages "
                                         "and events refused, failed or lost, by kind",
                                         labels=("kind",))
            for name, value in sorted(stats.items()):
                if name in TRANSPORT_FLOWS:
                    messages.add_metric(list(TRANSPORT_FLOWS[name]), value)
                elif name in TRANSPORT_BYTES:
                    sizes.add_metric(list(TRANSPORT_BYTES[name]), value)
                else:
                    errors.add_metric([name], value)
            peers = GaugeMetricFamily("bacalhau_transport_peers", "Connected libp2p peers")
            peers.add_metric([], len(self._peers()))
            families += [messages, sizes, errors, peers]
        return families

    def _transport_stats(self) -> dict[str, int]:
        if self.transport is None:
            return {}
        try:
            return dict(self.transport.stats())
        except Exception:  # closing, or closed: nothing to report
            return {}

    def _peers(self) -> list[str]:
        try:
            return list(self.transport.peers())
        except Exception:
            return []


class _Families:
    """A collector that yields families built beforehand (one scrape's registry)."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)

