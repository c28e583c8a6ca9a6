"""Events and job history: what happened to a job and its executions, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bacalhau.models.codec import get_dict, get_int, get_str, lower_keys
from bacalhau.models.timeutil import rfc3339

JOB_LEVEL = "JobLevel"
EXECUTION_LEVEL = "ExecutionLevel"


class Topic:
    SUBMISSION = "Submission"
    STATE_UPDATE = "State Update"
    SCHEDULING = "Scheduling"
    QUEUEING = "Queueing"
    EXEC_TIMEOUT = "Exec Timeout"
    JOB_TIMEOUT = "Job Timeout"
    EXECUTION = "Execution"
    EXEC_SCANNING = "Exec Scanning"
    DOWNLOADING_INPUTS = "Downloading Inputs"
    PREPARING = "Preparing Environment"
    RUNNING = "Running Execution"
    PUBLISHING = "Publishing Results"
    RESTART = "Restart"


@dataclass(slots=True)
class Event:
    message: str = ""
    topic: str = ""
    timestamp: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, topic: str, message: str, **details: Any) -> Event:
        return cls(message=message, topic=topic, timestamp=rfc3339(),
                   details={k: str(v) for k, v in details.items() if v not in (None, "")})

    @classmethod
    def error(cls, topic: str, message: str, *, hint: str = "", retryable: bool = False,
              fails_execution: bool = False, **details: Any) -> Event:
        ev = cls.new(topic, message, **details)
        ev.details["IsError"] = "true"
        if hint:
            ev.details["Hint"] = hint
        if retryable:
            ev.details["Retryable"] = "true"
        if fails_execution:
            ev.details["FailsExecution"] = "true"
        return ev

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Message": self.message, "Topic": self.topic,
                               "Timestamp": self.timestamp}
        if self.details:
            out["Details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Event") -> Event:
        d = lower_keys(data, where)
        return cls(
            message=get_str(d, "Message", where), topic=get_str(d, "Topic", where),
            timestamp=get_str(d, "Timestamp", where),
            details={str(k): str(v) for k, v in get_dict(d, "Details", where).items()},
        )


@dataclass(slots=True)
class JobHistory:
    seq_num: int = 0
    type: str = JOB_LEVEL
    job_id: str = ""
    job_version: int = 1
    execution_id: str = ""
    event: Event = field(default_factory=Event)
    time: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SeqNum": self.seq_num,
            "Type": self.type,
            "JobID": self.job_id,
            "JobVersion": self.job_version,
        }
        if self.execution_id:
            out["ExecutionID"] = self.execution_id
        out["Event"] = self.event.to_dict()
        out["Time"] = self.time
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "JobHistory") -> JobHistory:
        d = lower_keys(data, where)
        return cls(
            seq_num=get_int(d, "SeqNum", where), type=get_str(d, "Type", where, JOB_LEVEL),
            job_id=get_str(d, "JobID", where), job_version=get_int(d, "JobVersion", where, 1),
            execution_id=get_str(d, "ExecutionID", where),
            event=Event.from_dict(d.get("event"), f"{where}.Event"),
            time=get_str(d, "Time", where),
        )
