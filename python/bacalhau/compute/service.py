"""`ComputeNode`: the compute role of a node (internals §6, §9), wired from its parts.

Serves `PROTOCOL_COMPUTE` (AskForBid, BidAccepted, BidRejected, CancelExecution,
ExecutionLogs, NodeInfoRequest). Handlers do only the store write that makes a message
idempotent and answer `{"OK": true}` at once; bidding, running and cancelling happen in tasks,
except a bid that needs no I/O (`Bidder.decides_at_once`): the AskForBid handler decides it
and creates the execution in its decided state, with its bid result, in one write.
Its NodeInfo and heartbeats go to its requesters point to point (`membership.py`). On start
it applies the restart rule: active
batch/ops executions fail ("Failed due to node restart"), service/daemon ones are re-run;
before that, executors with workloads outside the process (docker) adopt the containers of the
executions to re-run and remove the rest. Node labels include `GPU-<i>`/`GPU-<i>-Memory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import sqlite3
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bacalhau.compute.bidder import BidDecision, Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import CapacityTracker, allocated_capacity, probe_totals
from bacalhau.compute.logs import LogHub, LogReader
from bacalhau.compute.membership import Membership
from bacalhau.compute.outbox import OutboxSender, Reporter
from bacalhau.compute.runner import FAILED_DUE_TO_RESTART, ExecutionRunner, fail_execution
from bacalhau.config import Config
from bacalhau.errors import BacalhauError, ValidationError
from bacalhau.executors.base import Executor
from bacalhau.executors.gpu import gpu_labels
from bacalhau.models import (
    NODE_TYPE_COMPUTE,
    ComputeNodeInfo,
    Event,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    JobType,
    NodeInfo,
    Topic,
)
from bacalhau.models.timeutil import now_ns, rfc3339
from bacalhau.store.executionstore import (
    ACTIVE_STATES,
    ExecutionStore,
    LocalExecution,
    StateConflictError,
)
from bacalhau.transport import PROTOCOL_COMPUTE, Transport
from bacalhau.transport import messages as msg

if TYPE_CHECKING:
    from bacalhau.publishers.base import Publisher
    from bacalhau.storage.base import StorageProvider

log = logging.getLogger(__name__)

NODE_INFO_REQUEST = msg.NODE_INFO_REQUEST
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_NOT_TERMINAL = tuple(s for s in ExecutionStateType if not s.is_terminal())


def _events(payload: dict[str, Any]) -> list[Event]:
    raw = payload.get("Events") or payload.get("events") or []
    return [Event.from_dict(e) for e in raw if isinstance(e, dict)]


class ComputeNode:
    """One compute node: bidder, executor buffer, runner, logs, outbox, membership."""

    def __init__(
        self,
        config: Config,
        store: ExecutionStore,
        transport: Transport,
        executors: Mapping[str, Executor],
        storages: Mapping[str, StorageProvider],
        publishers: Mapping[str, Publisher],
        node_id: str,
        data_dir: Path,
    ) -> None:
        """Providers that are not installed (`is_installed()` false) are ignored."""
        self.config = config
        self.store = store
        self.transport = transport
        self.node_id = node_id
        self.data_dir = Path(data_dir)
        self.executors = {k.lower(): e for k, e in executors.items() if e.is_installed()}
        self.storages: dict[str, StorageProvider] = {}
        for key, provider in storages.items():
            if provider.is_installed():
                for name in (key, *provider.types):
                    self.storages[name.lower()] = provider
        self.publishers = {k.lower(): p for k, p in publishers.items() if p.is_installed()}
        self._storage_names = sorted(
            {t for p in self.storages.values() for t in p.types} | {
                k for k, p in storages.items() if p.is_installed()})
        self.max_capacity = allocated_capacity(config, probe_totals(self.data_dir))

        self.hub = LogHub()
        self.reporter = Reporter(store, node_id)
        self.tracker = CapacityTracker(self.max_capacity)
        self.bidder = Bidder(config, self.executors, self.storages, self.publishers,
                             self.max_capacity)
        self.runner = ExecutionRunner(config, store, self.reporter, self.executors,
                                      self.storages, self.publishers, self.data_dir, self.hub)
        self.buffer = ExecutorBuffer(self.tracker, self.runner, store, self.reporter)
        self.logs = LogReader(self.hub, self.runner.logs_of, self._is_terminal)
        self.sender = OutboxSender(store, transport)
        self.membership = Membership(
            transport, node_id, node_info=self.node_info, heartbeat=self.heartbeat,
            interval=config.duration("Compute.Heartbeat.Interval"),
            info_interval=config.duration("Compute.Heartbeat.InfoUpdateInterval"))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    # ----- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the compute protocol, apply the restart rule, start membership and outbox."""
        if self._started:
            return
        self._started = True
        self.transport.serve(PROTOCOL_COMPUTE, self._handle)
        await self._restore_executors()
        self._recover()
        self.sender.start()
        await self.membership.start()

    async def stop(self) -> None:
        """Stop loops and runs; active executions stay in the store for the restart rule."""
        if not self._started:
            return
        self._started = False
        await self.membership.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.buffer.stop()
        self.reporter.release_held()  # sent after the restart, before what the restart reports
        await self.sender.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("compute task failed", exc_info=task.exception())

    async def _restore_executors(self) -> None:
        """Before the restart rule: executors that keep workloads outside this process
        (docker containers) adopt those of the service/daemon executions that will be re-run
        and remove the others (`restore(keep)`, see `executors/docker.py`)."""
        keep = {local.id for local in self.store.list(ACTIVE_STATES)
                if local.execution.job is not None
                and local.execution.job.type in (JobType.SERVICE, JobType.DAEMON)}
        for name, executor in self.executors.items():
            restore = getattr(executor, "restore", None)
            if restore is None:
                continue
            try:
                await restore(keep)
            except Exception:
                log.exception("restoring the %s executor's workloads failed", name)

    def _recover(self) -> None:
        """The restart rule of internals §9."""
        for local in self.store.list(ACTIVE_STATES):
            job = local.execution.job
            if job is not None and job.type in (JobType.SERVICE, JobType.DAEMON):
                with contextlib.suppress(StateConflictError):
                    restarted = self.store.update(
                        local.id, ExecutionStateType.BID_ACCEPTED, expected=ACTIVE_STATES,
                        events=[Event.new(Topic.RESTART, "Restarted after node restart")])
                    self.buffer.enqueue(restarted.execution)
                continue
            fail_execution(self.store, self.reporter, local.id, FAILED_DUE_TO_RESTART,
                           Topic.RESTART)
        for local in self.store.list((ExecutionStateType.NEW,)):
            self._spawn(self._bid(local.id))

    # ----- membership -----------------------------------------------------------------------

    def node_info(self) -> NodeInfo:
        labels = self.config.labels()
        labels.update({
            "os_type": platform.system().lower(),
            "os_arch": _ARCH.get(platform.machine().lower(), platform.machine().lower()),
            "name": self.node_id,
        })
        labels.update(gpu_labels(self.max_capacity.gpus))
        return NodeInfo(
            node_id=self.node_id,
            node_type=NODE_TYPE_COMPUTE,
            labels=labels,
            compute_node_info=ComputeNodeInfo(
                execution_engines=sorted(self.executors),
                publishers=sorted(self.publishers),
                storage_sources=self._storage_names,
                max_capacity=self.max_capacity,
                queue_used_capacity=self.buffer.queued_capacity(),
                available_capacity=self.tracker.available(),
                max_job_requirements=self.max_capacity,
                running_executions=self.buffer.running_count,
                enqueued_executions=self.buffer.queued_count,
            ),
        )

    def heartbeat(self) -> dict[str, Any]:
        return {
            "NodeID": self.node_id,
            "AvailableCapacity": self.tracker.available().to_dict(),
            "QueueCapacity": self.buffer.queued_capacity().to_dict(),
            "RunningExecutions": self.buffer.running_count,
            "EnqueuedExecutions": self.buffer.queued_count,
            "Time": rfc3339(),
        }

    async def publish_node_info(self) -> None:
        """Send the NodeInfo to every connected requester now."""
        await self.membership.publish_info()

    # ----- protocol -------------------------------------------------------------------------

    async def _handle(self, sender: str, payload: bytes) -> bytes:
        try:
            envelope = msg.decode(payload)
            if envelope.type == msg.BATCH:  # several messages in one frame, in order
                replies = [await self._handle_one(sender, item)
                           for item in msg.batch_items(envelope)]
            else:
                replies = [await self._handle_one(sender, envelope)]
            # the requester takes the reply as "stored": not before the group commit did
            await self.store.durable()
        except BacalhauError as exc:
            return msg.reply_error(str(exc))
        except Exception as exc:
            log.exception("compute handler failed")
            return msg.reply_error(f"internal error: {exc}")
        return msg.reply_batch(replies) if envelope.type == msg.BATCH else replies[0]

    async def _handle_one(self, sender: str, envelope: msg.Envelope) -> bytes:
        try:
            handler = self._handlers.get(envelope.type)
            if handler is None:
                return msg.reply_error(f"unknown message type {envelope.type!r} on "
                                       f"{PROTOCOL_COMPUTE}")
            return await handler(self, sender, envelope.payload)
        except BacalhauError as exc:
            return msg.reply_error(str(exc))
        except Exception as exc:
            log.exception("compute handler failed")
            return msg.reply_error(f"internal error: {exc}")

    async def _on_ask_for_bid(self, sender: str, payload: dict[str, Any]) -> bytes:
        raw = payload.get("Execution") or payload.get("execution")
        if not isinstance(raw, dict):
            raise ValidationError("AskForBid: Execution is required")
        execution = Execution.from_dict(raw, "Execution")
        if not execution.id:
            raise ValidationError("AskForBid: Execution.ID is required")
        execution.node_id = execution.node_id or self.node_id
        execution.compute_state = ExecutionState(int(ExecutionStateType.NEW))
        events = _events(payload)
        if self.bidder.decides_at_once(execution):
            # no I/O in this bid: stored already decided, in one write (bidder.py); a bid
            # that fails takes the usual path below (stored New, failed by `_bid`); a
            # duplicate costs a bid with no effect (`create` finds the execution known)
            try:
                decision: BidDecision | None = await self.bidder.bid(execution)
            except Exception:
                decision = None
            if decision is not None:
                return self._store_decided(sender, execution, events, decision)
        try:
            created = self.store.create(execution, sender, events)
        except (sqlite3.Error, OSError) as exc:  # e.g. a full disk: refuse, clearly
            return _refuse_to_store(execution.id, exc)
        if created:
            self._spawn(self._bid(execution.id))
        return msg.reply_ok()

    def _store_decided(self, sender: str, execution: Execution, events: list[Event],
                       decision: BidDecision) -> bytes:
        """Create the execution in the state `decision` gives it, with its bid result."""
        new_state, bid_events, hold = self._bid_outcome(execution, decision)
        execution.compute_state = ExecutionState(int(new_state), decision.message)
        execution.allocated_resources = {_task_name(execution): decision.usage}
        execution.modify_time = now_ns()
        local = LocalExecution(execution=execution, requester=sender, revision=1)
        try:
            with self.store.transaction():
                if not self.store.create(execution, sender, [*events, *bid_events]):
                    return msg.reply_ok()  # known meanwhile: a duplicate
                self.reporter.bid_result(local, decision.accepted, bid_events, hold=hold)
        except (sqlite3.Error, OSError) as exc:
            return _refuse_to_store(execution.id, exc)
        self._after_bid(execution, decision)
        return msg.reply_ok()

    @staticmethod
    def _bid_outcome(execution: Execution, decision: BidDecision
                     ) -> tuple[ExecutionStateType, list[Event], bool]:
        """(state, events to store and report, hold the bid result) for a decided bid."""
        if not decision.accepted:
            return (ExecutionStateType.ASK_FOR_BID_REJECTED,
                    [Event.new(Topic.EXEC_SCANNING, decision.message)], False)
        if execution.desired_state.state_type != ExecutionDesiredStateType.RUNNING:
            return ExecutionStateType.ASK_FOR_BID_ACCEPTED, [], False
        job_type = execution.job.type if execution.job is not None else ""
        return (ExecutionStateType.BID_ACCEPTED, [],
                job_type not in (JobType.SERVICE, JobType.DAEMON))

    def _after_bid(self, execution: Execution, decision: BidDecision) -> None:
        """A direct bid runs now; an accepted one prepares while the requester decides."""
        if not decision.accepted:
            return
        if execution.desired_state.state_type == ExecutionDesiredStateType.RUNNING:
            self.buffer.enqueue(execution)
        else:
            self.runner.prepare_soon(execution)

    async def _bid(self, execution_id: str) -> None:
        local = self.store.get(execution_id)
        if local is None or local.state != ExecutionStateType.NEW:
            return
        execution = local.execution
        try:
            decision = await self.bidder.bid(execution)
        except Exception as exc:
            log.warning("bidding on %s failed: %s", execution_id, exc, exc_info=True)
            fail_execution(self.store, self.reporter, execution_id, f"bidding failed: {exc}",
                           Topic.EXEC_SCANNING, expected=(ExecutionStateType.NEW,))
            return
        new_state, events, hold = self._bid_outcome(execution, decision)

        def allocate(ex: Execution) -> None:
            ex.allocated_resources = {_task_name(ex): decision.usage}

        try:
            with self.store.transaction():
                local = self.store.update(
                    execution_id, new_state, expected=(ExecutionStateType.NEW,),
                    message=decision.message, mutate=allocate, events=events)
                self.reporter.bid_result(local, decision.accepted, events, hold=hold)
        except StateConflictError:
            return  # cancelled while bidding
        self._after_bid(local.execution, decision)

    async def _on_bid_accepted(self, sender: str, payload: dict[str, Any]) -> bytes:
        execution_id = _execution_id(payload)
        try:
            local = self.store.update(
                execution_id, ExecutionStateType.BID_ACCEPTED,
                expected=(ExecutionStateType.ASK_FOR_BID_ACCEPTED,), events=_events(payload))
        except StateConflictError:
            return msg.reply_ok()  # a duplicate, or cancelled meanwhile
        self.buffer.enqueue(local.execution)
        return msg.reply_ok()

    async def _on_bid_rejected(self, sender: str, payload: dict[str, Any]) -> bytes:
        execution_id = _execution_id(payload)
        with contextlib.suppress(StateConflictError):
            self.store.update(
                execution_id, ExecutionStateType.BID_REJECTED,
                expected=(ExecutionStateType.NEW, ExecutionStateType.ASK_FOR_BID_ACCEPTED),
                events=_events(payload))
            self._spawn(self.runner.discard_prepared(execution_id))
        return msg.reply_ok()

    async def _on_cancel(self, sender: str, payload: dict[str, Any]) -> bytes:
        execution_id = _execution_id(payload)
        events = _events(payload)
        reason = events[0].message if events else "cancelled by the orchestrator"
        try:
            self.store.update(execution_id, ExecutionStateType.CANCELLED,
                              expected=_NOT_TERMINAL, message=reason, events=events)
        except StateConflictError:
            return msg.reply_ok()  # already terminal
        self._spawn(self._cancel(execution_id))
        return msg.reply_ok()

    async def _cancel(self, execution_id: str) -> None:
        await self.buffer.cancel(execution_id)
        self.hub.notify(execution_id)
        await self.runner.discard_prepared(execution_id)

    async def _on_logs(self, sender: str, payload: dict[str, Any]) -> bytes:
        execution_id = _execution_id(payload)
        self.store.require(execution_id)
        reply = await self.logs.read(
            execution_id, int(payload.get("Offset") or 0),
            follow=bool(payload.get("Follow", True)),
            wait_seconds=float(payload.get("WaitSeconds") or 0))
        return msg.reply_ok(**reply)

    async def _on_node_info(self, sender: str, payload: dict[str, Any]) -> bytes:
        return msg.reply_ok(NodeInfo=self.node_info().to_dict())

    _handlers: dict[str, Any] = {
        msg.ASK_FOR_BID: _on_ask_for_bid,
        msg.BID_ACCEPTED: _on_bid_accepted,
        msg.BID_REJECTED: _on_bid_rejected,
        msg.CANCEL_EXECUTION: _on_cancel,
        msg.EXECUTION_LOGS: _on_logs,
        NODE_INFO_REQUEST: _on_node_info,
    }

    # ----- helpers --------------------------------------------------------------------------

    def _is_terminal(self, execution_id: str) -> bool:
        return self.store.require(execution_id).state.is_terminal()

    def get_execution(self, execution_id: str) -> LocalExecution:
        return self.store.require(execution_id)


def _task_name(execution: Execution) -> str:
    return execution.job.task.name if execution.job and execution.job.tasks else ""


def _refuse_to_store(execution_id: str, exc: BaseException) -> bytes:
    """The answer to an AskForBid this node cannot store (e.g. a full disk): a clear no."""
    log.error("cannot store execution %s: %s", execution_id, exc)
    return msg.reply_error(f"cannot store the execution (is the node's disk full?): {exc}")


def _execution_id(payload: dict[str, Any]) -> str:
    execution_id = payload.get("ExecutionID") or payload.get("executionid") or ""
    if not isinstance(execution_id, str) or not execution_id:
        raise ValidationError("ExecutionID is required")
    return execution_id
