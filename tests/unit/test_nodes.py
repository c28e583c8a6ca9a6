"""NodeManager and NodeStore: registration from real membership requests on an in-process
network (PROTOCOL_MEMBERSHIP), `Known: false` for heartbeating strangers, manual approval,
disconnect after the configured timeout and reconnect on the next heartbeat, listeners,
persistence across a restart, and the filters and ordering of `node list`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from bacalhau.config import Config
from bacalhau.errors import MultipleMatchesError, NotFoundError, TransportError, ValidationError
from bacalhau.models import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
    NODE_TYPE_REQUESTER,
    ComputeNodeInfo,
    NodeInfo,
    Resources,
)
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.store.nodestore import NodeStore
from bacalhau.transport import PROTOCOL_MEMBERSHIP, InProcessNetwork
from bacalhau.transport import messages as m

pytestmark = pytest.mark.unit

REQUESTER = "n-00000000-0000-4000-8000-000000000000"
GIB = 1 << 30


def node_id(i: int) -> str:
    return f"n-{i:08x}-1111-4111-8111-111111111111"


def compute_info(nid: str, *, cpu: float = 4, memory: int = 8 * GIB,
                 labels: dict[str, str] | None = None,
                 engines: tuple[str, ...] = ("wasm",)) -> NodeInfo:
    cap = Resources(cpu=cpu, memory=memory, disk=100 * GIB)
    return NodeInfo(
        node_id=nid, node_type="Compute", labels=dict(labels or {}),
        compute_node_info=ComputeNodeInfo(
            execution_engines=list(engines), publishers=["local", "noop"],
            storage_sources=["inline", "urlDownload"], max_capacity=cap,
            available_capacity=cap, max_job_requirements=cap),
    )


def node_info_bytes(info: NodeInfo) -> bytes:
    return m.encode(m.NODE_INFO, {"NodeInfo": info.to_dict()}, source=info.node_id)


def heartbeat_bytes(nid: str, cpu: float = 3, queued_cpu: float = 0) -> bytes:
    return m.encode(m.HEARTBEAT, {
        "NodeID": nid, "AvailableCapacity": {"CPU": cpu, "Memory": 4 * GIB},
        "QueueCapacity": {"CPU": queued_cpu} if queued_cpu else {},
        "RunningExecutions": 1, "EnqueuedExecutions": 0, "Time": "2026-01-01T00:00:00Z",
    }, source=nid)


async def send(t: Any, payload: bytes) -> dict[str, Any]:
    """A membership message from compute transport `t` to the requester; the parsed reply."""
    return m.parse_reply(await t.request(REQUESTER, PROTOCOL_MEMBERSHIP, payload))


async def eventually(condition: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Wait until `condition()` is truthy, failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)  # poll interval of a deadline-bounded wait


class Events:
    """A listener that queues (node_id, event) so tests can await them."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.seen: list[tuple[str, str]] = []

    def __call__(self, nid: str, event: str) -> None:
        self.seen.append((nid, event))
        self.queue.put_nowait((nid, event))

    async def next(self, timeout: float = 5.0) -> tuple[str, str]:
        return await asyncio.wait_for(self.queue.get(), timeout)


def make_config(**nm: Any) -> Config:
    return Config({"Orchestrator": {"NodeManager": {"DisconnectTimeout": "60s", **nm}}})


class Cluster:
    def __init__(self, tmp_path: Path, config: Config) -> None:
        self.net = InProcessNetwork()
        self.path = tmp_path / "orchestrator" / "jobs.db"
        self.config = config
        self.store = NodeStore(self.path)
        self.transport = self.net.transport(REQUESTER)
        self.self_info = NodeInfo(node_id=REQUESTER, node_type=NODE_TYPE_REQUESTER)
        self.manager = NodeManager(config, self.store, self.transport, self.self_info)
        self.events = Events()
        self.manager.add_listener(self.events)
        self.computes: dict[str, Any] = {}

    async def start(self) -> None:
        await self.transport.start()
        await self.manager.start()

    async def compute(self, nid: str) -> Any:
        t = self.net.transport(nid)
        await t.start()
        self.computes[nid] = t
        return t

    async def close(self) -> None:
        await self.manager.stop()
        for t in self.computes.values():
            await t.close()
        await self.transport.close()
        self.store.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, make_config())
    await c.start()
    yield c
    await c.close()


async def test_registration_via_gossip(cluster: Cluster) -> None:
    nid = node_id(1)
    t = await cluster.compute(nid)
    await send(t, node_info_bytes(compute_info(nid, labels={"zone": "a"})))
    assert await cluster.events.next() == (nid, "join")

    state = cluster.manager.get(nid)
    assert state is not None
    assert state.membership == MEMBERSHIP_APPROVED
    assert state.connection_state.status == CONNECTED
    assert state.connection_state.connected_since
    assert state.info.labels == {"zone": "a"}
    assert cluster.manager.is_schedulable(nid)
    assert len(cluster.manager.table) == 1

    # the requester registered itself, approved and connected, but is not schedulable
    own = cluster.manager.get(REQUESTER)
    assert own is not None and own.info.node_type == NODE_TYPE_REQUESTER
    assert own.membership == MEMBERSHIP_APPROVED
    assert own.connection_state.status == CONNECTED
    assert not cluster.manager.is_schedulable(REQUESTER)
    assert [s.node_id for s in cluster.manager.list()] == sorted([nid, REQUESTER])

    # heartbeats update the capacity silently (no listener event)
    await send(t, heartbeat_bytes(nid, cpu=1.5, queued_cpu=0.5))
    await eventually(
        lambda: cluster.manager.get(nid).info.compute_node_info.available_capacity.cpu == 1.5,
        "heartbeat capacity")
    cni = cluster.manager.get(nid).info.compute_node_info
    assert cni.queue_used_capacity.cpu == 0.5 and cni.running_executions == 1
    assert cluster.events.queue.empty()

    # a changed NodeInfo is an update; garbage is refused with a reason
    with pytest.raises(TransportError, match=r"checksum|short|version"):
        await send(t, b"\x01garbage")
    await send(t, node_info_bytes(compute_info(nid, labels={"zone": "b"})))
    assert await cluster.events.next() == (nid, "update")
    assert cluster.manager.get(nid).info.labels == {"zone": "b"}
    assert len(cluster.manager.table) == 1


async def test_unknown_heartbeating_node_is_asked_for_its_info(cluster: Cluster) -> None:
    nid = node_id(2)
    t = await cluster.compute(nid)
    assert (await send(t, heartbeat_bytes(nid)))["Known"] is False
    assert cluster.manager.get(nid) is None
    assert await send(t, node_info_bytes(compute_info(nid))) == {"OK": True}
    assert await cluster.events.next() == (nid, "join")
    assert (await send(t, heartbeat_bytes(nid)))["Known"] is True
    assert cluster.manager.is_schedulable(nid)
    reply = await t.request(REQUESTER, PROTOCOL_MEMBERSHIP, m.encode("Gossip", {}))
    assert orjson.loads(reply)["OK"] is False


async def test_manual_approval_reject_delete(tmp_path: Path) -> None:
    c = Cluster(tmp_path, make_config(ManualApproval=True))
    await c.start()
    try:
        nid = node_id(3)
        t = await c.compute(nid)
        await send(t, node_info_bytes(compute_info(nid)))
        assert await c.events.next() == (nid, "update")
        assert c.manager.get(nid).membership == MEMBERSHIP_PENDING
        assert not c.manager.is_schedulable(nid) and len(c.manager.table) == 0

        await c.manager.approve(nid[:10], "looks fine")  # by prefix
        assert await c.events.next() == (nid, "join")
        assert c.manager.get(nid).membership == MEMBERSHIP_APPROVED
        assert len(c.manager.table) == 1
        with pytest.raises(ValidationError, match="node is already approved"):
            await c.manager.approve(nid)

        await c.manager.node_action(nid, "REJECT", "no thanks")
        assert await c.events.next() == (nid, "leave")
        assert c.manager.get(nid).membership == MEMBERSHIP_REJECTED
        assert len(c.manager.table) == 0
        with pytest.raises(ValidationError, match="node is already rejected"):
            await c.manager.reject(nid)
        assert c.store.get(nid).membership == MEMBERSHIP_REJECTED  # persisted

        # a rejected node's messages are ignored
        await send(t, node_info_bytes(compute_info(nid, labels={"x": "y"})))
        await send(t, heartbeat_bytes(nid, cpu=0.25))
        t4 = await c.compute(node_id(4))  # NodeInfo is only accepted from its own node
        await send(t4, node_info_bytes(compute_info(node_id(4))))
        assert await c.events.next() == (node_id(4), "update")  # the later message was handled
        state = c.manager.get(nid)
        assert state.info.labels == {}
        assert state.info.compute_node_info.available_capacity.cpu == 4

        with pytest.raises(ValidationError, match="unknown node action"):
            await c.manager.node_action(nid, "bless", "")
        with pytest.raises(ValidationError, match="itself"):
            await c.manager.delete(REQUESTER)

        await c.manager.delete(nid)
        assert await c.events.next() == (nid, "update")
        assert c.manager.get(nid) is None and c.store.get(nid) is None
        with pytest.raises(NotFoundError, match=f"node not found: {nid}"):
            await c.manager.approve(nid)
    finally:
        await c.close()


async def test_disconnect_after_timeout_and_reconnect(tmp_path: Path) -> None:
    c = Cluster(tmp_path, make_config(DisconnectTimeout="250ms"))
    await c.start()
    try:
        a, b = node_id(5), node_id(6)
        ta, tb = await c.compute(a), await c.compute(b)
        await send(ta, node_info_bytes(compute_info(a)))
        await send(tb, node_info_bytes(compute_info(b)))
        joined = {await c.events.next(), await c.events.next()}
        assert joined == {(a, "join"), (b, "join")}
        assert len(c.manager.table) == 2

        left = {await c.events.next(), await c.events.next()}
        assert left == {(a, "leave"), (b, "leave")}
        for nid in (a, b):
            state = c.manager.get(nid)
            assert state.connection_state.status == DISCONNECTED
            assert state.connection_state.last_error == "heartbeat timeout"
            assert state.connection_state.disconnected_since
            assert not c.manager.is_schedulable(nid)
            # listings zero the capacity of disconnected nodes
            assert state.to_dict()["Info"]["ComputeNodeInfo"]["AvailableCapacity"] == {}
            assert c.store.get(nid).connection_state.status == DISCONNECTED
        assert len(c.manager.table) == 0
        assert c.manager.get(REQUESTER).connection_state.status == CONNECTED

        await send(ta, heartbeat_bytes(a, cpu=2))
        assert await c.events.next() == (a, "join")
        state = c.manager.get(a)
        assert state.connection_state.status == CONNECTED
        assert state.connection_state.last_error == ""
        assert state.info.compute_node_info.available_capacity.cpu == 2
        assert c.manager.is_schedulable(a) and not c.manager.is_schedulable(b)
        assert len(c.manager.table) == 1
        assert [s.node_id for s in c.manager.list(filter_status="disconnected")] == [b]

        # and it goes again when it falls silent
        assert await c.events.next() == (a, "leave")
        assert len(c.manager.table) == 0
    finally:
        await c.close()


async def test_state_survives_restart(tmp_path: Path) -> None:
    c = Cluster(tmp_path, make_config(ManualApproval=True))
    await c.start()
    a, b = node_id(7), node_id(8)
    ta, tb = await c.compute(a), await c.compute(b)
    await send(ta, node_info_bytes(compute_info(a, labels={"k": "v"})))
    await send(tb, node_info_bytes(compute_info(b)))
    await c.events.next()
    await c.events.next()
    await c.manager.approve(a)
    await c.manager.reject(b)
    await c.close()

    # A restart is not the loss of every node: a node CONNECTED before it stays CONNECTED
    # (and schedulable when approved), with a fresh DisconnectTimeout to be heard in.
    c2 = Cluster(tmp_path, make_config(ManualApproval=True, DisconnectTimeout="0.3s"))
    await c2.start()
    try:
        sa, sb = c2.manager.get(a), c2.manager.get(b)
        assert sa.membership == MEMBERSHIP_APPROVED and sa.info.labels == {"k": "v"}
        assert sb.membership == MEMBERSHIP_REJECTED
        assert sa.connection_state.status == CONNECTED
        assert c2.manager.is_schedulable(a) and not c2.manager.is_schedulable(b)
        assert len(c2.manager.table) == 1
        assert c2.manager.get(REQUESTER).connection_state.status == CONNECTED

        # unheard for the timeout: DISCONNECTED, out of the table, persisted
        assert sorted([await c2.events.next(), await c2.events.next()]) == [
            (a, "leave"), (b, "update")]
        assert c2.manager.get(a).connection_state.status == DISCONNECTED
        assert len(c2.manager.table) == 0
        assert c2.store.get(a).connection_state.status == DISCONNECTED

        # known node: the heartbeat alone reconnects it (no NodeInfo request needed)
        ta2 = await c2.compute(a)
        await send(ta2, heartbeat_bytes(a))
        assert await c2.events.next() == (a, "join")
        assert c2.manager.is_schedulable(a)
        assert c2.store.get(a).connection_state.status == CONNECTED
    finally:
        await c2.close()

    # ... and a node DISCONNECTED when the requester stopped stays so until heard
    c3 = Cluster(tmp_path, make_config(ManualApproval=True))
    await c3.start()
    try:
        assert c3.manager.get(b).connection_state.status == DISCONNECTED
        assert c3.manager.get(a).connection_state.status == CONNECTED
        assert c3.manager.is_schedulable(a) and len(c3.manager.table) == 1
    finally:
        await c3.close()


async def test_listener_errors_do_not_stop_others(cluster: Cluster) -> None:
    def broken(nid: str, event: str) -> None:
        raise RuntimeError("boom")

    later = Events()
    cluster.manager.add_listener(broken)
    cluster.manager.add_listener(later)
    nid = node_id(9)
    await cluster.manager.handle(nid, node_info_bytes(compute_info(nid)))
    assert await later.next() == (nid, "join")


async def test_list_filters_ordering_and_resolve(tmp_path: Path) -> None:
    c = Cluster(tmp_path, make_config(ManualApproval=True))
    await c.start()
    try:
        specs = [
            (node_id(0x10), 2.0, {"zone": "a", "gpu": "yes"}),
            (node_id(0x11), 8.0, {"zone": "b"}),
            (node_id(0x12), 4.0, {"zone": "a"}),
        ]
        for nid, cpu, labels in specs:
            await c.manager.handle(
                nid, node_info_bytes(compute_info(nid, cpu=cpu, labels=labels)))
        await c.manager.approve(node_id(0x10))
        await c.manager.approve(node_id(0x11))
        mgr = c.manager

        def ids(**kw: Any) -> list[str]:
            return [s.node_id for s in mgr.list(**kw)]

        assert ids(filter_approval="pending") == [node_id(0x12)]
        assert ids(filter_approval="APPROVED") == sorted([node_id(0x10), node_id(0x11), REQUESTER])
        assert ids(filter_status="Connected") == sorted(
            [node_id(0x10), node_id(0x11), node_id(0x12), REQUESTER])
        assert ids(filter_status="disconnected") == []
        assert ids(labels=["zone=a"]) == [node_id(0x10), node_id(0x12)]
        assert ids(labels=["zone=a", "gpu"]) == [node_id(0x10)]
        assert ids(labels=["zone in (a,b),!gpu"]) == [node_id(0x11), node_id(0x12)]
        assert ids(labels=["zone=a"], filter_approval="approved") == [node_id(0x10)]

        assert ids(order_by="available_cpu") == [
            REQUESTER, node_id(0x10), node_id(0x12), node_id(0x11)]
        assert ids(order_by="available_cpu", reverse=True) == [
            node_id(0x11), node_id(0x12), node_id(0x10), REQUESTER]
        assert ids(order_by="type")[-1] == REQUESTER  # Compute < Requester
        assert ids(order_by="approval")[:3] == sorted([REQUESTER, node_id(0x10), node_id(0x11)])
        assert ids(order_by="approval")[-1] == node_id(0x12)  # PENDING after APPROVED
        assert ids(order_by="", reverse=True)[0] == node_id(0x12)
        with pytest.raises(ValidationError, match="order_by"):
            mgr.list(order_by="name")
        with pytest.raises(ValidationError, match="approval filter"):
            mgr.list(filter_approval="maybe")
        with pytest.raises(ValidationError, match="status filter"):
            mgr.list(filter_status="sleeping")
        with pytest.raises(ValidationError, match="label selector"):
            mgr.list(labels=["zone in ()"])

        assert mgr.resolve(node_id(0x11)[:10]).node_id == node_id(0x11)
        assert mgr.resolve(node_id(0x11)).node_id == node_id(0x11)
        with pytest.raises(MultipleMatchesError, match="multiple nodes found for id n-000000"):
            mgr.resolve("n-000000")
        with pytest.raises(NotFoundError, match="node not found: n-nope"):
            mgr.resolve("n-nope")

        # copies: callers cannot change the manager's state
        mgr.get(node_id(0x10)).membership = MEMBERSHIP_REJECTED
        assert mgr.get(node_id(0x10)).membership == MEMBERSHIP_APPROVED
    finally:
        await c.close()


def test_nodestore_round_trip(tmp_path: Path) -> None:
    from bacalhau.models import ConnectionState, NodeState
    from bacalhau.store.sqlite import Database

    db = Database(tmp_path / "jobs.db")
    db.migrate(["CREATE TABLE other (x INTEGER);"])  # the job store's own schema
    store = NodeStore(db)
    state = NodeState(info=compute_info(node_id(1), labels={"a": "b"}),
                      membership=MEMBERSHIP_PENDING,
                      connection_state=ConnectionState(status=CONNECTED, last_heartbeat="t"))
    store.put(state)
    assert store.get(node_id(1)) == state
    assert store.get(node_id(2)) is None
    with db.transaction():
        store.put_many([state, NodeState(info=compute_info(node_id(2)))])
    assert [s.node_id for s in store.list()] == [node_id(1), node_id(2)]
    assert store.delete(node_id(2)) and not store.delete(node_id(2))
    store.close()  # shared database: left open
    assert db.schema_version() == 1 and db.schema_version("nodes") == 1
    assert NodeStore(db).list() == [state]
    db.close()


async def test_hybrid_node_schedules_on_itself(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "jobs.db")
    info = compute_info(REQUESTER)
    manager = NodeManager(make_config(DisconnectTimeout="50ms"), store,
                          InProcessNetwork().transport(REQUESTER), info)
    await manager.start()
    try:
        assert manager.is_schedulable(REQUESTER) and len(manager.table) == 1
        # its compute's heartbeats, fed locally, update the capacity; it never times out
        await manager.handle(REQUESTER, heartbeat_bytes(REQUESTER, cpu=0.5))
        state = manager.get(REQUESTER)
        assert state.info.compute_node_info.available_capacity.cpu == 0.5
        assert state.connection_state.status == CONNECTED
        assert manager._heard == {}  # not tracked by the disconnect timer
    finally:
        await manager.stop()
        store.close()


async def test_heartbeat_replies_bound_the_rate_as_the_network_grows(tmp_path: Path) -> None:
    """Nomad's rule: a requester that hears N nodes asks each to heartbeat every
    N / MaxHeartbeatsPerSecond seconds (at most a third of the DisconnectTimeout)."""
    c = Cluster(tmp_path, make_config(MaxHeartbeatsPerSecond=2, DisconnectTimeout="9s"))
    await c.start()
    try:
        ts = [await c.compute(node_id(100 + i)) for i in range(4)]
        for i, t in enumerate(ts):
            nid = node_id(100 + i)
            await send(t, node_info_bytes(compute_info(nid)))
        reply = await send(ts[0], heartbeat_bytes(node_id(100)))
        assert reply == {"OK": True, "Known": True, "HeartbeatInterval": 2.0}  # 4 nodes / 2
        for i in range(4, 10):
            t = await c.compute(node_id(100 + i))
            await send(t, node_info_bytes(compute_info(node_id(100 + i))))
        reply = await send(ts[0], heartbeat_bytes(node_id(100)))
        assert reply["HeartbeatInterval"] == 3.0  # 10 / 2 = 5, capped at 9 s / 3
    finally:
        await c.close()
    off = Cluster(tmp_path / "off", make_config(MaxHeartbeatsPerSecond=0))
    await off.start()
    try:
        t = await off.compute(node_id(1))
        await send(t, node_info_bytes(compute_info(node_id(1))))
        assert await send(t, heartbeat_bytes(node_id(1))) == {"OK": True, "Known": True}
    finally:
        await off.close()


async def test_the_wire_form_of_a_listing_follows_every_change(cluster: Cluster) -> None:
    """`wire` caches each node's JSON until the node changes: a heartbeat, a new NodeInfo,
    a disconnect or an approval change shows in the next listing."""
    nid = node_id(42)
    t = await cluster.compute(nid)
    await send(t, node_info_bytes(compute_info(nid, labels={"zone": "a"})))

    def listed() -> dict[str, Any]:
        rows = orjson.loads(cluster.manager.wire(cluster.manager.list(copies=False)))
        assert rows == [s.to_dict() for s in cluster.manager.list()]
        return next(r for r in rows if r["Info"]["NodeID"] == nid)

    assert listed()["Info"]["Labels"] == {"zone": "a"}
    await send(t, heartbeat_bytes(nid, cpu=0.75))
    assert listed()["Info"]["ComputeNodeInfo"]["AvailableCapacity"]["CPU"] == 0.75
    await send(t, node_info_bytes(compute_info(nid, labels={"zone": "b"})))
    assert listed()["Info"]["Labels"] == {"zone": "b"}
    await cluster.manager.reject(nid)
    assert listed()["Membership"] == MEMBERSHIP_REJECTED
    await cluster.manager.approve(nid)
    assert listed()["Membership"] == MEMBERSHIP_APPROVED
