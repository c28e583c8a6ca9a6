"""Nodes as the network sees them: NodeInfo (what a node offers) and NodeState (what the
orchestrator knows of it: membership and connection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bacalhau.models.codec import (
    get_dict,
    get_int,
    get_str,
    get_str_list,
    get_str_map,
    lower_keys,
)
from bacalhau.models.resources import Resources
from bacalhau.version import build_version_info

NODE_TYPE_COMPUTE = "Compute"
NODE_TYPE_REQUESTER = "Requester"

MEMBERSHIP_PENDING = "PENDING"
MEMBERSHIP_APPROVED = "APPROVED"
MEMBERSHIP_REJECTED = "REJECTED"

CONNECTED = "CONNECTED"
DISCONNECTED = "DISCONNECTED"

SUPPORTED_PROTOCOLS = ["bacalhau-py/1"]


@dataclass(slots=True)
class ComputeNodeInfo:
    execution_engines: list[str] = field(default_factory=list)
    publishers: list[str] = field(default_factory=list)
    storage_sources: list[str] = field(default_factory=list)
    max_capacity: Resources = field(default_factory=Resources)
    queue_used_capacity: Resources = field(default_factory=Resources)
    available_capacity: Resources = field(default_factory=Resources)
    max_job_requirements: Resources = field(default_factory=Resources)
    running_executions: int = 0
    enqueued_executions: int = 0
    address: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ExecutionEngines": self.execution_engines,
            "Publishers": self.publishers,
            "StorageSources": self.storage_sources,
            "MaxCapacity": self.max_capacity.to_dict(),
            "QueueCapacity": self.queue_used_capacity.to_dict(),
            "AvailableCapacity": self.available_capacity.to_dict(),
            "MaxJobRequirements": self.max_job_requirements.to_dict(),
            "RunningExecutions": self.running_executions,
            "EnqueuedExecutions": self.enqueued_executions,
            "address": self.address,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "ComputeNodeInfo") -> ComputeNodeInfo:
        d = lower_keys(data, where)
        queue = d.get("queuecapacity", d.get("queueusedcapacity"))
        return cls(
            execution_engines=get_str_list(d, "ExecutionEngines", where),
            publishers=get_str_list(d, "Publishers", where),
            storage_sources=get_str_list(d, "StorageSources", where),
            max_capacity=Resources.from_dict(d.get("maxcapacity"), f"{where}.MaxCapacity"),
            queue_used_capacity=Resources.from_dict(queue, f"{where}.QueueCapacity"),
            available_capacity=Resources.from_dict(
                d.get("availablecapacity"), f"{where}.AvailableCapacity"),
            max_job_requirements=Resources.from_dict(
                d.get("maxjobrequirements"), f"{where}.MaxJobRequirements"),
            running_executions=get_int(d, "RunningExecutions", where),
            enqueued_executions=get_int(d, "EnqueuedExecutions", where),
            address=get_str(d, "address", where),
        )


@dataclass(slots=True)
class NodeInfo:
    node_id: str = ""
    node_type: str = NODE_TYPE_COMPUTE
    labels: dict[str, str] = field(default_factory=dict)
    supported_protocols: list[str] = field(default_factory=lambda: list(SUPPORTED_PROTOCOLS))
    compute_node_info: ComputeNodeInfo = field(default_factory=ComputeNodeInfo)
    bacalhau_version: dict[str, str] = field(default_factory=build_version_info)

    def to_dict(self) -> dict[str, Any]:
        return {
            "NodeID": self.node_id,
            "NodeType": self.node_type,
            "Labels": self.labels,
            "SupportedProtocols": self.supported_protocols,
            "ComputeNodeInfo": self.compute_node_info.to_dict(),
            "BacalhauVersion": self.bacalhau_version,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "NodeInfo") -> NodeInfo:
        d = lower_keys(data, where)
        return cls(
            node_id=get_str(d, "NodeID", where),
            node_type=get_str(d, "NodeType", where, NODE_TYPE_COMPUTE),
            labels=get_str_map(d, "Labels", where),
            supported_protocols=get_str_list(d, "SupportedProtocols", where),
            compute_node_info=ComputeNodeInfo.from_dict(
                d.get("computenodeinfo"), f"{where}.ComputeNodeInfo"),
            bacalhau_version={str(k): str(v) for k, v in
                              get_dict(d, "BacalhauVersion", where).items()},
        )

    def version_tuple(self) -> tuple[int, int, int] | None:
        try:
            major = int(self.bacalhau_version.get("Major", ""))
            minor = int(self.bacalhau_version.get("Minor", ""))
        except ValueError:
            return None
        git = self.bacalhau_version.get("GitVersion", "").lstrip("v").split("-")[0].split(".")
        patch = int(git[2]) if len(git) > 2 and git[2].isdigit() else 0
        return (major, minor, patch)


@dataclass(slots=True)
class ConnectionState:
    status: str = DISCONNECTED
    last_heartbeat: str = ""
    connected_since: str = ""
    disconnected_since: str = ""
    last_error: str = ""
    last_compute_seq_num: int = 0
    last_orchestrator_seq_num: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status,
            "LastHeartbeat": self.last_heartbeat,
            "LastComputeSeqNum": self.last_compute_seq_num,
            "LastOrchestratorSeqNum": self.last_orchestrator_seq_num,
            "ConnectedSince": self.connected_since,
            "DisconnectedSince": self.disconnected_since,
        }
        if self.last_error:
            out["LastError"] = self.last_error
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "ConnectionState") -> ConnectionState:
        d = lower_keys(data, where)
        return cls(
            status=get_str(d, "Status", where, DISCONNECTED),
            last_heartbeat=get_str(d, "LastHeartbeat", where),
            connected_since=get_str(d, "ConnectedSince", where),
            disconnected_since=get_str(d, "DisconnectedSince", where),
            last_error=get_str(d, "LastError", where),
            last_compute_seq_num=get_int(d, "LastComputeSeqNum", where),
            last_orchestrator_seq_num=get_int(d, "LastOrchestratorSeqNum", where),
        )


@dataclass(slots=True)
class NodeState:
    info: NodeInfo = field(default_factory=NodeInfo)
    membership: str = MEMBERSHIP_APPROVED
    connection_state: ConnectionState = field(default_factory=ConnectionState)

    @property
    def node_id(self) -> str:
        return self.info.node_id

    def to_dict(self) -> dict[str, Any]:
        info = self.info.to_dict()
        if self.connection_state.status != CONNECTED:
            cni = info["ComputeNodeInfo"]
            cni["AvailableCapacity"] = {}
            cni["QueueCapacity"] = {}
        return {
            "Info": info,
            "Membership": self.membership,
            "Connection": self.connection_state.status,
            "ConnectionState": self.connection_state.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "NodeState") -> NodeState:
        d = lower_keys(data, where)
        conn = d.get("connectionstate")
        state = ConnectionState.from_dict(conn, f"{where}.ConnectionState") if conn else (
            ConnectionState(status=get_str(d, "Connection", where, DISCONNECTED)))
        return cls(
            info=NodeInfo.from_dict(d.get("info"), f"{where}.Info"),
            membership=get_str(d, "Membership", where, MEMBERSHIP_APPROVED),
            connection_state=state,
        )
