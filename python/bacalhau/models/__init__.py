"""The v1 wire model of Bacalhau (reference §2): jobs, tasks, executions, evaluations, history,
nodes. Every class converts to and from Bacalhau's exact JSON with `to_dict`/`from_dict`."""

from bacalhau.models.evaluation import EvalStatus, EvalTrigger, Evaluation
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
from bacalhau.models.job import Job, JobState, JobStateType, JobType
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
from bacalhau.models.resources import GPU, Resources, ResourcesConfig
from bacalhau.models.spec import (
    InputSource,
    LabelSelectorRequirement,
    NetworkConfig,
    PortMapping,
    ResultPath,
    SpecConfig,
    TimeoutConfig,
)
from bacalhau.models.task import Task

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
