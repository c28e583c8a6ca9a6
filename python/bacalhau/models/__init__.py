"""The v1 wire model of Bacalhau (reference §2): jobs, tasks, executions, evaluations, history,
nodes. Every class converts to and from Bacalhau's exact JSON with `to_dict`/`from_dict`.

Names load on first use (`from bacalhau.models import Job` imports `bacalhau.models.job` only),
so a light module such as `bacalhau.models.ids` does not pull in the whole model."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bacalhau.models.evaluation import (
        EvalStatus,
        EvalTrigger,
        Evaluation,
    )
    from bacalhau.models.execution import (
        Execution,
        ExecutionDesiredStateType,
        ExecutionState,
        ExecutionStateType,
        RunCommandResult,
    )
    from bacalhau.models.history import (
        EXECUTION_LEVEL,
        JOB_LEVEL,
        Event,
        JobHistory,
        Topic,
    )
    from bacalhau.models.job import (
        Job,
        JobState,
        JobStateType,
        JobType,
    )
    from bacalhau.models.node import (
        CONNECTED,
        DISCONNECTED,
        MEMBERSHIP_APPROVED,
        MEMBERSHIP_PENDING,
        MEMBERSHIP_REJECTED,
        NODE_TYPE_COMPUTE,
        NODE_TYPE_REQUESTER,
        ComputeNodeInfo,
        ConnectionState,
        NodeInfo,
        NodeState,
    )
    from bacalhau.models.resources import (
        GPU,
        Resources,
        ResourcesConfig,
    )
    from bacalhau.models.spec import (
        InputSource,
        LabelSelectorRequirement,
        NetworkConfig,
        PortMapping,
        ResultPath,
        SpecConfig,
        TimeoutConfig,
    )
    from bacalhau.models.task import (
        Task,
    )

_MODULE_OF = {
    "EvalStatus": "evaluation",
    "EvalTrigger": "evaluation",
    "Evaluation": "evaluation",
    "Execution": "execution",
    "ExecutionDesiredStateType": "execution",
    "ExecutionState": "execution",
    "ExecutionStateType": "execution",
    "RunCommandResult": "execution",
    "EXECUTION_LEVEL": "history",
    "JOB_LEVEL": "history",
    "Event": "history",
    "JobHistory": "history",
    "Topic": "history",
    "Job": "job",
    "JobState": "job",
    "JobStateType": "job",
    "JobType": "job",
    "CONNECTED": "node",
    "DISCONNECTED": "node",
    "MEMBERSHIP_APPROVED": "node",
    "MEMBERSHIP_PENDING": "node",
    "MEMBERSHIP_REJECTED": "node",
    "NODE_TYPE_COMPUTE": "node",
    "NODE_TYPE_REQUESTER": "node",
    "ComputeNodeInfo": "node",
    "ConnectionState": "node",
    "NodeInfo": "node",
    "NodeState": "node",
    "GPU": "resources",
    "Resources": "resources",
    "ResourcesConfig": "resources",
    "InputSource": "spec",
    "LabelSelectorRequirement": "spec",
    "NetworkConfig": "spec",
    "PortMapping": "spec",
    "ResultPath": "spec",
    "SpecConfig": "spec",
    "TimeoutConfig": "spec",
    "Task": "task",
}

__all__ = [
    "CONNECTED", "DISCONNECTED", "EXECUTION_LEVEL", "GPU", "JOB_LEVEL", "MEMBERSHIP_APPROVED",
    "MEMBERSHIP_PENDING", "MEMBERSHIP_REJECTED", "NODE_TYPE_COMPUTE", "NODE_TYPE_REQUESTER",
    "ComputeNodeInfo", "ConnectionState", "EvalStatus", "EvalTrigger", "Evaluation", "Event",
    "Execution", "ExecutionDesiredStateType", "ExecutionState", "ExecutionStateType",
    "InputSource", "Job", "JobHistory", "JobState", "JobStateType", "JobType",
    "LabelSelectorRequirement", "NetworkConfig", "NodeInfo", "NodeState", "PortMapping",
    "Resources", "ResourcesConfig", "ResultPath", "RunCommandResult", "SpecConfig", "Task",
    "TimeoutConfig", "Topic",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'bacalhau.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"bacalhau.models.{module}"), name)
    globals()[name] = value
    return value
