"""Execution: one attempt to run a job's task on one node, with its integer compute state
(what the node reports) and desired state (what the orchestrator wants)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bacalhau.models.codec import (
    copy_str_map,
    get_bool,
    get_dict,
    get_int,
    get_str,
    lower_keys,
)
from bacalhau.models.job import Job
from bacalhau.models.resources import Resources
from bacalhau.models.spec import SpecConfig


class ExecutionStateType(IntEnum):
    UNDEFINED = 0
    NEW = 1
    ASK_FOR_BID = 2
    ASK_FOR_BID_ACCEPTED = 3
    ASK_FOR_BID_REJECTED = 4
    BID_ACCEPTED = 5
    RUNNING = 6
    PUBLISHING = 7
    BID_REJECTED = 8
    COMPLETED = 9
    FAILED = 10
    CANCELLED = 11

    def is_terminal(self) -> bool:
        return self in _TERMINAL

    def is_executing(self) -> bool:
        return self in (ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING,
                        ExecutionStateType.PUBLISHING)

    def is_discarded(self) -> bool:
        return self in (ExecutionStateType.ASK_FOR_BID_REJECTED, ExecutionStateType.BID_REJECTED,
                        ExecutionStateType.CANCELLED, ExecutionStateType.FAILED)

    @property
    def label(self) -> str:
        return _LABELS[self]


_TERMINAL = frozenset({
    ExecutionStateType.COMPLETED, ExecutionStateType.FAILED, ExecutionStateType.CANCELLED,
    ExecutionStateType.ASK_FOR_BID_REJECTED, ExecutionStateType.BID_REJECTED,
})
_LABELS = {
    ExecutionStateType.UNDEFINED: "Undefined", ExecutionStateType.NEW: "New",
    ExecutionStateType.ASK_FOR_BID: "AskForBid",
    ExecutionStateType.ASK_FOR_BID_ACCEPTED: "AskForBidAccepted",
    ExecutionStateType.ASK_FOR_BID_REJECTED: "AskForBidRejected",
    ExecutionStateType.BID_ACCEPTED: "BidAccepted", ExecutionStateType.RUNNING: "Running",
    ExecutionStateType.PUBLISHING: "Publishing", ExecutionStateType.BID_REJECTED: "BidRejected",
    ExecutionStateType.COMPLETED: "Completed", ExecutionStateType.FAILED: "Failed",
    ExecutionStateType.CANCELLED: "Cancelled",
}


class ExecutionDesiredStateType(IntEnum):
    PENDING = 0
    RUNNING = 1
    STOPPED = 2

    @property
    def label(self) -> str:
        return ("Pending", "Running", "Stopped")[self]


@dataclass(slots=True)
class ExecutionState:
    state_type: int = 0
    message: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"StateType": int(self.state_type)}
        if self.message:
            out["Message"] = self.message
        if self.details:
            out["Details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "State") -> ExecutionState:
        d = lower_keys(data, where)
        return cls(
            state_type=get_int(d, "StateType", where),
            message=get_str(d, "Message", where),
            details={str(k): str(v) for k, v in get_dict(d, "Details", where).items()},
        )

    def clone(self) -> ExecutionState:
        return ExecutionState(self.state_type, self.message, copy_str_map(self.details))


@dataclass(slots=True)
class RunCommandResult:
    stdout: str = ""
    stdout_truncated: bool = False
    stderr: str = ""
    stderr_truncated: bool = False
    exit_code: int = 0
    error_msg: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "Stdout": self.stdout,
            "StdoutTruncated": self.stdout_truncated,
            "stderr": self.stderr,  # lower-case key: a Go struct-tag quirk clients rely on
            "StderrTruncated": self.stderr_truncated,
            "ExitCode": self.exit_code,
            "ErrorMsg": self.error_msg,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "RunOutput") -> RunCommandResult:
        d = lower_keys(data, where)
        return cls(
            stdout=get_str(d, "Stdout", where),
            stdout_truncated=get_bool(d, "StdoutTruncated", where),
            stderr=get_str(d, "stderr", where),
            stderr_truncated=get_bool(d, "StderrTruncated", where),
            exit_code=get_int(d, "ExitCode", where),
            error_msg=get_str(d, "ErrorMsg", where),
        )

    def clone(self) -> RunCommandResult:
        return RunCommandResult(self.stdout, self.stdout_truncated, self.stderr,
                                self.stderr_truncated, self.exit_code, self.error_msg)


@dataclass(slots=True)
class Execution:
    id: str = ""
    namespace: str = "default"
    eval_id: str = ""
    name: str = ""
    node_id: str = ""
    job_id: str = ""
    job: Job | None = None
    job_version: int = 1
    allocated_resources: dict[str, Resources] = field(default_factory=dict)
    desired_state: ExecutionState = field(default_factory=ExecutionState)
    compute_state: ExecutionState = field(default_factory=ExecutionState)
    published_result: SpecConfig = field(default_factory=SpecConfig)
    run_output: RunCommandResult | None = None
    previous_execution: str = ""
    next_execution: str = ""
    followup_eval_id: str = ""
    partition_index: int = 0
    revision: int = 1
    create_time: int = 0
    modify_time: int = 0

    @property
    def compute_state_type(self) -> ExecutionStateType:
        return ExecutionStateType(self.compute_state.state_type)

    @property
    def desired_state_type(self) -> ExecutionDesiredStateType:
        return ExecutionDesiredStateType(self.desired_state.state_type)

    def is_terminal(self) -> bool:
        return (self.desired_state.state_type == ExecutionDesiredStateType.STOPPED
                or self.compute_state_type.is_terminal())

    def is_discarded(self) -> bool:
        return self.compute_state_type.is_discarded()

    def copy(self, *, with_job: bool = True) -> Execution:
        """A deep copy (without the job when `with_job` is false)."""
        job = self.job.copy() if with_job and self.job is not None else None
        return Execution(
            self.id, self.namespace, self.eval_id, self.name, self.node_id, self.job_id, job,
            self.job_version, {k: v.clone() for k, v in self.allocated_resources.items()},
            self.desired_state.clone(), self.compute_state.clone(),
            self.published_result.clone(),
            self.run_output.clone() if self.run_output is not None else None,
            self.previous_execution, self.next_execution, self.followup_eval_id,
            self.partition_index, self.revision, self.create_time, self.modify_time,
        )

    def to_dict(self, *, include_job: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ID": self.id,
            "Namespace": self.namespace,
            "EvalID": self.eval_id,
            "Name": self.name,
            "NodeID": self.node_id,
            "JobID": self.job_id,
        }
        if include_job and self.job is not None:
            out["Job"] = self.job.to_dict()
        out.update({
            "JobVersion": self.job_version,
            "AllocatedResources": {
                "Tasks": {k: v.to_dict() for k, v in self.allocated_resources.items()}
            },
            "DesiredState": self.desired_state.to_dict(),
            "ComputeState": self.compute_state.to_dict(),
            "PublishedResult": self.published_result.to_dict(),
            "RunOutput": self.run_output.to_dict() if self.run_output else None,
            "PreviousExecution": self.previous_execution,
            "NextExecution": self.next_execution,
            "FollowupEvalID": self.followup_eval_id,
            "Revision": self.revision,
            "CreateTime": self.create_time,
            "ModifyTime": self.modify_time,
        })
        if self.partition_index:
            out["PartitionIndex"] = self.partition_index
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Execution") -> Execution:
        d = lower_keys(data, where)
        alloc = lower_keys(d.get("allocatedresources"), f"{where}.AllocatedResources")
        tasks = alloc.get("tasks") or {}
        run_output = d.get("runoutput")
        job = d.get("job")
        return cls(
            id=get_str(d, "ID", where),
            namespace=get_str(d, "Namespace", where, "default"),
            eval_id=get_str(d, "EvalID", where),
            name=get_str(d, "Name", where),
            node_id=get_str(d, "NodeID", where),
            job_id=get_str(d, "JobID", where),
            job=Job.from_dict(job, f"{where}.Job") if job else None,
            job_version=get_int(d, "JobVersion", where, 1),
            allocated_resources={
                str(k): Resources.from_dict(v, f"{where}.AllocatedResources.Tasks.{k}")
                for k, v in tasks.items()
            },
            desired_state=ExecutionState.from_dict(d.get("desiredstate"), f"{where}.DesiredState"),
            compute_state=ExecutionState.from_dict(d.get("computestate"), f"{where}.ComputeState"),
            published_result=SpecConfig.from_dict(
                d.get("publishedresult"), f"{where}.PublishedResult"),
            run_output=RunCommandResult.from_dict(run_output) if run_output else None,
            previous_execution=get_str(d, "PreviousExecution", where),
            next_execution=get_str(d, "NextExecution", where),
            followup_eval_id=get_str(d, "FollowupEvalID", where),
            partition_index=get_int(d, "PartitionIndex", where),
            revision=get_int(d, "Revision", where, 1),
            create_time=get_int(d, "CreateTime", where),
            modify_time=get_int(d, "ModifyTime", where),
        )
