"""Handlers of `/bacalhau/orchestrator/1`: what compute nodes report about executions.

BidResult, RunResult and ComputeError each become, in one transaction, an execution update,
the history events the message carries and an `exec-update` evaluation; the evaluation is
enqueued after the commit. A direct bid (desired Running) that the node accepted gets the "Bid
accepted for <node>" event that the approval round writes otherwise (clients see the same
history); for batch and ops jobs it changes nothing the scheduler acts on, so no evaluation
(a long-running job's update rolls once the replacement runs: those are evaluated). Delivery is
at-least-once, so a message that would not change the execution (a duplicate, or news about an
execution already terminal) is acknowledged and otherwise ignored. Every message is answered
`{"OK": true}` unless it cannot be decoded. A `Batch` frame is applied message by message, in
order, and answered with one result each; consecutive messages of one frame about the same
execution (a held bid and the run's result, issue 15) are applied in one transaction with one
execution write, as they would be one after the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bacalhau.errors import NotFoundError, TransportError
from bacalhau.models import (
    EvalStatus,
    EvalTrigger,
    Evaluation,
    Event,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    RunCommandResult,
    SpecConfig,
)
from bacalhau.models.codec import INT64_MAX
from bacalhau.models.ids import new_eval_id, short_id
from bacalhau.models.job import JobType
from bacalhau.models.timeutil import now_ns, rfc3339
from bacalhau.orchestrator.scheduler.base import scheduling_event
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import PROTOCOL_ORCHESTRATOR, Transport, messages

log = logging.getLogger(__name__)

Compute = ExecutionStateType
Desired = ExecutionDesiredStateType
LONG_RUNNING = (JobType.DAEMON.value, JobType.SERVICE.value)
_UNCHANGED, _STORED, _EVALUATE = "unchanged", "stored", "evaluate"  # what a message did


class ExecutionMessageHandlers:
    """Turns compute reports into stored execution updates plus evaluations."""

    def __init__(self, store: JobStore, enqueue: Callable[[Evaluation], None]) -> None:
        self.store = store
        self.enqueue = enqueue

    def register(self, transport: Transport) -> None:
        transport.serve(PROTOCOL_ORCHESTRATOR, self.handle)

    async def handle(self, sender: str, payload: bytes) -> bytes:
        try:
            envelope = messages.decode(payload)
            batch = envelope.type == messages.BATCH  # several messages in one frame
            items = messages.batch_items(envelope) if batch else [envelope]
        except TransportError as exc:
            return messages.reply_error(str(exc))
        replies = [reply for run in _runs_by_execution(items)
                   for reply in self._apply_run(sender, run)]
        try:
            # the compute node deletes its outbox rows on this reply: not before our commit
            await self.store.durable()
        except Exception as exc:  # the peer retries; tell it why
            log.exception("committing messages from %s failed", sender)
            return messages.reply_error(f"{envelope.type} failed: {exc}")
        return messages.reply_batch(replies) if batch else replies[0]

    def _apply_one(self, sender: str, envelope: messages.Envelope) -> bytes:
        try:
            self.apply(envelope.type, envelope.payload)
        except NotFoundError:
            pass  # an execution this requester no longer knows: nothing to do
        except Exception as exc:  # the peer retries; tell it why
            log.exception("handling %s from %s failed", envelope.type, sender)
            return messages.reply_error(f"{envelope.type} failed: {exc}")
        return messages.reply_ok()

    def _apply_run(self, sender: str, run: list[messages.Envelope]) -> list[bytes]:
        """Messages about one execution, in one transaction; one reply each. Should that
        fail (nothing of it is kept), each is applied on its own, so that a message that
        cannot be applied does not hold back the others."""
        if len(run) > 1:
            try:
                self.apply_all([(item.type, item.payload) for item in run])
                return [messages.reply_ok() for _ in run]
            except NotFoundError:
                return [messages.reply_ok() for _ in run]
            except Exception:
                pass  # one at a time, below
        return [self._apply_one(sender, item) for item in run]

    def apply(self, msg_type: str, payload: dict) -> Evaluation | None:
        """Apply one decoded message; returns the evaluation enqueued, if any."""
        return self.apply_all([(msg_type, payload)])

    def apply_all(self, items: list[tuple[str, dict]]) -> Evaluation | None:
        """Apply messages about one execution in order, with one execution write; returns
        the evaluation enqueued, if any."""
        execution_id = str(items[0][1].get("ExecutionID") or "")
        decoded = [(msg_type, payload, [Event.from_dict(e) for e in payload.get("Events") or []])
                   for msg_type, payload in items]
        with self.store.transaction():
            execution = self.store.get_execution(execution_id)
            if execution.compute_state_type.is_terminal():
                return None
            job = self.store.get_job(execution.job_id)
            expected = execution.revision
            written: list[Event] = []
            outcome = _UNCHANGED
            for msg_type, payload, events in decoded:
                if execution.compute_state_type.is_terminal():
                    break  # news about a finished execution changes nothing
                long_running = (job.type in LONG_RUNNING
                                or payload.get("JobType") in LONG_RUNNING)
                step = self._transition(msg_type, payload, execution, events, long_running)
                if step != _UNCHANGED:
                    written += events
                    outcome = step if outcome != _EVALUATE else outcome
            if outcome == _UNCHANGED:
                return None
            self.store.update_execution(execution, expected_revision=expected)
            for event in written:
                self.store.add_history(execution.job_id, execution.job_version, event,
                                       execution.id)
            if outcome == _STORED:
                return None
            now = now_ns()
            evaluation = Evaluation(
                id=new_eval_id(), namespace=job.namespace, job_id=job.id,
                triggered_by=EvalTrigger.EXEC_UPDATE, priority=job.priority, type=job.type,
                status=EvalStatus.PENDING, create_time=now, modify_time=now)
            self.store.create_evaluation(evaluation)
        self.enqueue(evaluation)
        return evaluation

    @staticmethod
    def _transition(msg_type: str, payload: dict, execution: Execution, events: list[Event],
                    long_running: bool) -> str:
        """Set the new states on `execution` (and add events of ours to `events`); returns
        `_UNCHANGED` when the message changes nothing, `_STORED` when the change needs no
        evaluation, else `_EVALUATE`."""
        message = events[0].message if events else ""
        state = execution.compute_state.state_type
        if msg_type == messages.BID_RESULT:
            if payload.get("Accepted"):
                direct = execution.desired_state.state_type == Desired.RUNNING
                target = Compute.BID_ACCEPTED if direct else Compute.ASK_FOR_BID_ACCEPTED
                if state in (target, Compute.BID_ACCEPTED):
                    return _UNCHANGED
                execution.compute_state = ExecutionState(target, message)
                if direct:
                    accepted = scheduling_event(
                        f"Bid accepted for {short_id(execution.node_id)}",
                        NodeID=execution.node_id)
                    decided = payload.get("Time")  # the node's clock, as its own events
                    if isinstance(decided, int) and not isinstance(decided, bool) \
                            and 0 < decided < INT64_MAX:
                        accepted.timestamp = rfc3339(decided)
                    events.append(accepted)
                    # a long-running job's update rolls once its replacement runs: evaluate
                    return _EVALUATE if long_running else _STORED
            else:
                execution.compute_state = ExecutionState(Compute.ASK_FOR_BID_REJECTED, message)
                execution.desired_state = ExecutionState(Desired.STOPPED, message)
            return _EVALUATE
        if msg_type == messages.RUN_RESULT:
            if long_running:
                text = "execution ended unexpectedly (long-running jobs should not exit)"
                execution.compute_state = ExecutionState(Compute.FAILED, text)
                execution.desired_state = ExecutionState(Desired.STOPPED, text)
            else:
                execution.compute_state = ExecutionState(Compute.COMPLETED, message)
                execution.desired_state = ExecutionState(Desired.STOPPED, message)
            execution.published_result = SpecConfig.from_dict(payload.get("PublishResult"))
            output = payload.get("RunCommandResult")
            execution.run_output = RunCommandResult.from_dict(output) if output else None
            return _EVALUATE
        if msg_type == messages.COMPUTE_ERROR:
            text = message or "execution failed on the compute node"
            execution.compute_state = ExecutionState(Compute.FAILED, text)
            execution.desired_state = ExecutionState(Desired.STOPPED, text)
            return _EVALUATE
        raise TransportError(f"unknown message type {msg_type!r} on {PROTOCOL_ORCHESTRATOR}")


def _runs_by_execution(items: list[messages.Envelope]) -> list[list[messages.Envelope]]:
    """Consecutive messages about the same execution, grouped (order kept)."""
    runs: list[list[messages.Envelope]] = []
    last = None
    for item in items:
        execution_id = item.payload.get("ExecutionID") if isinstance(item.payload, dict) else None
        if runs and execution_id and execution_id == last:
            runs[-1].append(item)
        else:
            runs.append([item])
        last = execution_id
    return runs
