"""Plan: what a scheduler proposes for one evaluation — new executions, execution state
changes, a job state change, events and follow-up evaluations. The planner applies it.

Execution updates are recorded against the execution as the scheduler read it, so the planner
can check its revision and derive the message each transition implies (see planner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bacalhau.models import (
    Evaluation,
    Event,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    Job,
    JobState,
    JobStateType,
    Topic,
)


@dataclass(slots=True)
class ExecutionUpdate:
    """The new state of an existing execution and the states it had when it was read."""

    execution: Execution
    expected_revision: int
    previous_desired: int
    previous_compute: int
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    evaluation: Evaluation
    job: Job
    new_executions: list[Execution] = field(default_factory=list)
    new_execution_events: dict[str, Event] = field(default_factory=dict)
    updates: dict[str, ExecutionUpdate] = field(default_factory=dict)
    new_state: JobState | None = None
    job_events: list[Event] = field(default_factory=list)
    new_evaluations: list[Evaluation] = field(default_factory=list)

    def add_execution(self, execution: Execution, event: Event | None = None) -> None:
        self.new_executions.append(execution)
        if event is not None:
            self.new_execution_events[execution.id] = event

    def update_execution(
        self,
        execution: Execution,
        *,
        desired: int | None = None,
        compute: int | None = None,
        event: Event | None = None,
    ) -> Execution:
        """Record new desired/compute states for `execution`; returns the updated copy."""
        upd = self.updates.get(execution.id)
        if upd is None:
            upd = ExecutionUpdate(
                execution=execution.copy(with_job=False),
                expected_revision=execution.revision,
                previous_desired=execution.desired_state.state_type,
                previous_compute=execution.compute_state.state_type,
            )
            self.updates[execution.id] = upd
        current = upd.execution
        message = event.message if event is not None else ""
        if desired is not None:
            current.desired_state = ExecutionState(int(desired), message)
        if compute is not None:
            current.compute_state = ExecutionState(int(compute), message)
        if event is not None:
            upd.events.append(event)
        return current

    def stop_execution(self, execution: Execution, compute: int, event: Event) -> Execution:
        """Desired Stopped, with the compute state the orchestrator records (Cancelled, Failed,
        BidRejected)."""
        return self.update_execution(
            execution, desired=ExecutionDesiredStateType.STOPPED, compute=compute, event=event)

    def set_job_state(self, state: JobStateType, message: str = "", event: Event | None = None,
                      **details: str) -> None:
        """Change the job's state; a "State Update" event is recorded with it."""
        self.new_state = JobState(state.value, message, dict(details))
        text = message or f"Job {state.value.lower()}"
        if event is None:
            event = Event.new(Topic.STATE_UPDATE, text, NewState=state.value)
        else:
            event.details.setdefault("NewState", state.value)
        self.job_events.append(event)

    def add_evaluation(self, evaluation: Evaluation) -> None:
        self.new_evaluations.append(evaluation)

    @property
    def job_state(self) -> JobStateType:
        return self.new_state.type if self.new_state is not None else self.job.state_type

    def has_desired_running(self) -> bool:
        running = ExecutionDesiredStateType.RUNNING
        return (any(e.desired_state.state_type == running for e in self.new_executions)
                or any(u.execution.desired_state.state_type == running
                       for u in self.updates.values()))

    def is_empty(self) -> bool:
        return not (self.new_executions or self.updates or self.new_state
                    or self.job_events or self.new_evaluations)
