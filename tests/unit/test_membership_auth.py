"""Sender authentication of membership messages over libp2p: a NodeInfo or heartbeat whose
`NodeID` names another node than its sender (the peer at the other end of the
Noise-authenticated connection) is dropped by the node manager and counted; the real node's
entry is untouched and the liar is not registered.

Real `Libp2pTransport`s on 127.0.0.1; every message is a request, so each wait is its reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.config import Config
from bacalhau.models.node import NODE_TYPE_COMPUTE, NODE_TYPE_REQUESTER, NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport import messages as m
from bacalhau.transport.base import PROTOCOL_MEMBERSHIP
from bacalhau.transport.libp2p import ROLE_REQUESTER, Libp2pTransport

pytestmark = pytest.mark.unit

FAST = {"gossip_heartbeat": 0.1, "announce_interval": 0.5, "handshake_timeout": 2.0}


def compute_info(node_id: str, **labels: str) -> NodeInfo:
    info = NodeInfo(node_id=node_id, node_type=NODE_TYPE_COMPUTE, labels=dict(labels))
    cni = info.compute_node_info
    cni.execution_engines = ["wasm"]
    cni.publishers = ["noop"]
    cni.max_capacity = cni.available_capacity = cni.max_job_requirements = Resources(
        cpu=2, memory=1 << 30, disk=1 << 30)
    return info


def node_info_bytes(info: NodeInfo) -> bytes:
    return m.encode(m.NODE_INFO, {"NodeInfo": info.to_dict()})


def heartbeat_bytes(node_id: str, cpu: float) -> bytes:
    return m.encode(m.HEARTBEAT, {"NodeID": node_id,
                                  "AvailableCapacity": Resources(cpu=cpu).to_dict(),
                                  "QueueCapacity": {}, "RunningExecutions": 0,
                                  "EnqueuedExecutions": 0})


async def send(sender: Libp2pTransport, requester: Libp2pTransport, payload: bytes) -> Any:
    """One membership request to the requester; its parsed reply."""
    return m.parse_reply(await sender.request(requester.node_id, PROTOCOL_MEMBERSHIP, payload))


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    requester = Libp2pTransport(tmp_path / "requester", listen=["/ip4/127.0.0.1/tcp/0"],
                                role=ROLE_REQUESTER, **FAST)
    await requester.start()
    honest = Libp2pTransport(tmp_path / "honest", listen=["/ip4/127.0.0.1/tcp/0"],
                             peers=requester.addresses(), **FAST)
    liar = Libp2pTransport(tmp_path / "liar", listen=["/ip4/127.0.0.1/tcp/0"],
                           peers=requester.addresses(), **FAST)
    await honest.start()
    await liar.start()
    store = NodeStore(tmp_path / "nodes.db")
    config = Config({"Orchestrator": {"NodeManager": {"DisconnectTimeout": "60s"}}})
    manager = NodeManager(config, store, requester,
                          NodeInfo(node_id=requester.node_id, node_type=NODE_TYPE_REQUESTER))
    await manager.start()
    await requester.wait_for_peers(lambda p: {honest.node_id, liar.node_id} <= set(p))
    yield {"requester": requester, "honest": honest, "liar": liar, "manager": manager}
    await manager.stop()
    for t in (liar, honest, requester):
        await t.close()
    store.close()


async def test_forged_node_info_and_heartbeat_are_dropped_and_counted(hosts) -> None:
    manager: NodeManager = hosts["manager"]
    requester: Libp2pTransport = hosts["requester"]
    honest: Libp2pTransport = hosts["honest"]
    liar: Libp2pTransport = hosts["liar"]

    genuine = node_info_bytes(compute_info(honest.node_id, zone="a"))
    await send(honest, requester, genuine)
    assert manager.is_schedulable(honest.node_id)

    # the liar speaks for the honest node: other labels, then a heartbeat with no capacity
    forged = node_info_bytes(compute_info(honest.node_id, zone="evil"))
    await send(liar, requester, forged)
    assert manager.forged["node_info"] == 1
    await send(liar, requester, heartbeat_bytes(honest.node_id, cpu=0))
    assert manager.forged["heartbeat"] == 1

    state = manager.get(honest.node_id)
    assert state is not None and state.info.labels == {"zone": "a"}
    assert state.info.compute_node_info.available_capacity.cpu == 2
    assert manager.get(liar.node_id) is None  # speaking for another never registers the liar
    assert {s.node_id for s in manager.list()} == {requester.node_id, honest.node_id}

    # the honest node's own heartbeat is still accepted
    assert (await send(honest, requester, heartbeat_bytes(honest.node_id, 1.5)))["Known"]
    assert manager.get(honest.node_id).info.compute_node_info.available_capacity.cpu == 1.5
    assert manager.forged == {"node_info": 1, "heartbeat": 1}
