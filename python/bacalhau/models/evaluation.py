"""Evaluation: a request to the scheduler to look at a job again, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bacalhau.models.codec import get_int, get_str, lower_keys
from bacalhau.models.timeutil import ZERO_TIME, parse_rfc3339, rfc3339


class EvalStatus:
    PENDING = "pending"
    BLOCKED = "blocked"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"


class EvalTrigger:
    JOB_REGISTER = "job-register"
    JOB_CANCEL = "job-cancel"
    JOB_RERUN = "job-rerun"
    JOB_UPDATE = "job-update"
    JOB_QUEUE = "job-queue"
    JOB_TIMEOUT = "job-timeout"
    EXEC_FAILURE = "exec-failure"
    EXEC_UPDATE = "exec-update"
    EXEC_TIMEOUT = "exec-timeout"
    EXEC_LIMIT = "exec-limit"
    NODE_JOIN = "node-join"
    NODE_LEAVE = "node-leave"


@dataclass(slots=True)
class Evaluation:
    id: str = ""
    namespace: str = "default"
    job_id: str = ""
    triggered_by: str = ""
    priority: int = 0
    type: str = ""
    status: str = EvalStatus.PENDING
    comment: str = ""
    wait_until: int = 0  # Unix ns; 0 = ready now
    create_time: int = 0
    modify_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Namespace": self.namespace,
            "JobID": self.job_id,
            "TriggeredBy": self.triggered_by,
            "Priority": self.priority,
            "Type": self.type,
            "Status": self.status,
            "Comment": self.comment,
            "WaitUntil": rfc3339(self.wait_until) if self.wait_until else ZERO_TIME,
            "CreateTime": self.create_time,
            "ModifyTime": self.modify_time,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "Evaluation") -> Evaluation:
        d = lower_keys(data, where)
        return cls(
            id=get_str(d, "ID", where),
            namespace=get_str(d, "Namespace", where, "default"),
            job_id=get_str(d, "JobID", where),
            triggered_by=get_str(d, "TriggeredBy", where),
            priority=get_int(d, "Priority", where),
            type=get_str(d, "Type", where),
            status=get_str(d, "Status", where, EvalStatus.PENDING),
            comment=get_str(d, "Comment", where),
            wait_until=parse_rfc3339(get_str(d, "WaitUntil", where)),
            create_time=get_int(d, "CreateTime", where),
            modify_time=get_int(d, "ModifyTime", where),
        )
