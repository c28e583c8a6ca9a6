"""Planner: applies a Plan in one store transaction, with revision checks, and writes in the
same transaction an outbox row for every message the plan's transitions imply:

| transition                                              | message to the node |
|---------------------------------------------------------|---------------------|
| new execution (desired Pending: pending bid; Running: direct bid) | AskForBid   |
| desired Pending -> Running                              | BidAccepted         |
| desired Pending -> Stopped, compute AskForBid(Accepted) | BidRejected         |
| desired non-Stopped -> Stopped, compute non-terminal    | CancelExecution     |

Nothing is sent from here: after the commit the dispatcher is woken and sends the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bacalhau import failpoints
from bacalhau.models import (
    EvalStatus,
    ExecutionDesiredStateType,
    ExecutionStateType,
)
from bacalhau.orchestrator.plan import ExecutionUpdate, Plan
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import PROTOCOL_COMPUTE, messages

Desired = ExecutionDesiredStateType
Compute = ExecutionStateType


def transition_message(upd: ExecutionUpdate) -> tuple[str, dict[str, Any]] | None:
    """The message (type, payload) an execution update implies, or None."""
    new = upd.execution
    before_desired, before_compute = upd.previous_desired, upd.previous_compute
    events = [e.to_dict() for e in upd.events]
    if before_desired == Desired.PENDING and new.desired_state.state_type == Desired.RUNNING:
        return messages.BID_ACCEPTED, {"ExecutionID": new.id, "Accepted": True,
                                       "Events": events}
    if new.desired_state.state_type == Desired.STOPPED and before_desired != Desired.STOPPED:
        if before_desired == Desired.PENDING and before_compute in (
                Compute.ASK_FOR_BID, Compute.ASK_FOR_BID_ACCEPTED):
            return messages.BID_REJECTED, {"ExecutionID": new.id, "Events": events}
        if not Compute(before_compute).is_terminal():
            return messages.CANCEL_EXECUTION, {"ExecutionID": new.id, "Events": events}
    return None


class Planner:
    """Writes plans to the job store; `on_outbox` is called once a plan that added rows is
    committed."""

    def __init__(self, store: JobStore, *, node_id: str,
                 on_outbox: Callable[[], None] | None = None) -> None:
        self.store = store
        self.node_id = node_id
        self.on_outbox = on_outbox
        self.on_applied: list[Callable[[Plan], None]] = []  # observers (metrics), after commit

    def apply(self, plan: Plan) -> None:
        """Apply everything or nothing; raises RevisionConflictError on a concurrent change."""
        store, job = self.store, plan.job
        outbox = 0
        with store.transaction():
            for execution in plan.new_executions:
                store.create_execution(execution)
                event = plan.new_execution_events.get(execution.id)
                events = [event] if event is not None else []
                for ev in events:
                    store.add_history(job.id, execution.job_version, ev, execution.id)
                self._send(execution.node_id, messages.ASK_FOR_BID, {
                    "Execution": execution.to_dict(),
                    "Events": [e.to_dict() for e in events]})
                outbox += 1
            # after the new executions' events: "Requested execution on X", then "Job running"
            if plan.new_state is not None:
                store.update_job_state(job.id, plan.new_state, expected_revision=job.revision)
            for event in plan.job_events:
                store.add_history(job.id, job.version, event)
            for upd in plan.updates.values():
                store.update_execution(upd.execution, expected_revision=upd.expected_revision)
                for ev in upd.events:
                    store.add_history(job.id, upd.execution.job_version, ev, upd.execution.id)
                msg = transition_message(upd)
                if msg is not None:
                    self._send(upd.execution.node_id, *msg)
                    outbox += 1
            for evaluation in plan.new_evaluations:
                store.create_evaluation(evaluation)
            if plan.evaluation.id:
                store.finish_evaluation(plan.evaluation, EvalStatus.COMPLETE)
            if outbox and self.on_outbox is not None:
                # the rows are pending only once committed: with group commit that is at the
                # group's commit, after this block; waking the dispatcher before then could
                # let it look, find nothing and go idle with the rows unsent
                store.db.after_commit(self.on_outbox)
        failpoints.hit("planner.after_commit")
        for observer in self.on_applied:
            observer(plan)

    def _send(self, peer: str, msg_type: str, payload: dict[str, Any]) -> None:
        self.store.add_outbox(peer, PROTOCOL_COMPUTE,
                              messages.encode(msg_type, payload, source=self.node_id))

