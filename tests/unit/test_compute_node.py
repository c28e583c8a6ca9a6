"""ComputeNode over an InProcessNetwork with a tiny fake requester: the bid protocol end to
end (real WASM executor, inline inputs, local publisher), membership, idempotency, cancel,
logs, outbox retries and the restart rule."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bacalhau import _native
from bacalhau.assets import asset_path
from bacalhau.compute import NODE_INFO_REQUEST, ComputeNode
from bacalhau.config import Config
from bacalhau.errors import TransportError
from bacalhau.executors.base import RunRequest
from bacalhau.executors.wasm import WasmExecutor
from bacalhau.models import (
    Event,
    Execution,
    ExecutionDesiredStateType,
    ExecutionState,
    ExecutionStateType,
    InputSource,
    Job,
    ResourcesConfig,
    ResultPath,
    RunCommandResult,
    SpecConfig,
    Task,
)
from bacalhau.models.ids import new_execution_id, new_job_id
from bacalhau.publishers.local import LocalPublisher
from bacalhau.publishers.noop import NoopPublisher
from bacalhau.storage.inline import InlineStorage
from bacalhau.store.executionstore import ExecutionStore
from bacalhau.transport import (
    PROTOCOL_COMPUTE,
    PROTOCOL_MEMBERSHIP,
    PROTOCOL_ORCHESTRATOR,
    TOPIC_NODE_INFO,
    InProcessNetwork,
)
from bacalhau.transport import messages as msg

pytestmark = pytest.mark.unit

S = ExecutionStateType
COMPUTE_ID = "n-compute"
REQUESTER_ID = "n-requester"


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds, yielding to the loop; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        await asyncio.sleep(0.005)


class BlockingExecutor:
    """Test engine `test`: writes one stdout line, then waits for its release event."""

    name = "test"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def is_installed(self) -> bool:
        return True

    def check(self, engine: SpecConfig) -> list[str]:
        return []

    async def run(self, request: RunRequest) -> RunCommandResult:
        self.started.append(request.execution_id)
        request.stdout_path.write_text("started\n")
        await self.release[request.execution_id].wait()
        with request.stdout_path.open("a") as f:
            f.write("finished\n")
        return RunCommandResult(exit_code=0)

    async def cancel(self, execution_id: str) -> None:
        pass


class FakeRequester:
    """Serves PROTOCOL_ORCHESTRATOR and PROTOCOL_MEMBERSHIP, records what the compute sends
    (membership messages by type) and gossips. `known=False` answers heartbeats as a
    requester that does not know the node."""

    def __init__(self, network: InProcessNetwork, node_id: str = REQUESTER_ID) -> None:
        self.transport = network.transport(node_id, requester=True)
        self.received: list[msg.Envelope] = []
        self.membership: dict[str, list[msg.Envelope]] = defaultdict(list)
        self.gossip: dict[str, list[msg.Envelope]] = defaultdict(list)
        self.refuse = False
        self.refused = 0  # frames answered with an error while `refuse` was set
        self.batches: list[int] = []  # messages per Batch frame received
        self.known = True
        self.interval: float | None = None  # HeartbeatInterval to ask for
        self.transport.serve(PROTOCOL_ORCHESTRATOR, self._on_message)
        self.transport.serve(PROTOCOL_MEMBERSHIP, self._on_membership)
        self.transport.subscribe(TOPIC_NODE_INFO, self._gossip_handler(TOPIC_NODE_INFO))

    async def _on_membership(self, sender: str, payload: bytes) -> bytes:
        env = msg.decode(payload)
        assert sender == COMPUTE_ID
        self.membership[env.type].append(env)
        if env.type != msg.HEARTBEAT:
            return msg.reply_ok()
        if self.interval is not None:
            return msg.reply_ok(Known=self.known, HeartbeatInterval=self.interval)
        return msg.reply_ok(Known=self.known)

    async def _on_message(self, sender: str, payload: bytes) -> bytes:
        if self.refuse:
            self.refused += 1
            return msg.reply_error("not now")
        envelope = msg.decode(payload)
        if envelope.type == msg.BATCH:  # several rows in one frame (issue 15)
            items = msg.batch_items(envelope)
            self.batches.append(len(items))
            self.received.extend(items)
            return msg.reply_batch([msg.reply_ok() for _ in items])
        self.received.append(envelope)
        return msg.reply_ok()

    def _gossip_handler(self, topic: str) -> Callable[[str, bytes], Any]:
        async def handle(sender: str, payload: bytes) -> None:
            self.gossip[topic].append(msg.decode(payload))
        return handle

    async def ask(self, msg_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = await self.transport.request(COMPUTE_ID, PROTOCOL_COMPUTE,
                                             msg.encode(msg_type, payload), timeout=30)
        return msg.parse_reply(reply)

    def of(self, execution_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(e.type, e.payload) for e in self.received
                if e.payload.get("ExecutionID") == execution_id]


def _job(engine: SpecConfig, *, job_type: str = "batch", inputs: list[InputSource] | None = None,
         publisher: str = "", result_paths: list[ResultPath] | None = None) -> Job:
    return Job(id=new_job_id(), name="job", type=job_type, count=1, tasks=[Task(
        name="main", engine=engine, publisher=SpecConfig(publisher),
        input_sources=inputs or [], result_paths=result_paths or [],
        resources=ResourcesConfig(cpu="100m", memory="64Mb"))])


def _ask(job: Job, *, direct: bool = False) -> dict[str, Any]:
    desired = ExecutionDesiredStateType.RUNNING if direct else ExecutionDesiredStateType.PENDING
    ex = Execution(id=new_execution_id(), job_id=job.id, job=job, node_id=COMPUTE_ID,
                   desired_state=ExecutionState(int(desired)))
    return {"Execution": ex.to_dict(), "Events": [Event.new("Scheduling", "asked").to_dict()]}


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.network = InProcessNetwork()
        self.requester = FakeRequester(self.network)
        self.executor = BlockingExecutor()
        self.publisher = LocalPublisher(tmp_path / "published", port=0)
        self.config = Config({"DataDir": str(tmp_path), "Labels": {"zone": "test"},
                              "Compute": {"Heartbeat": {"Interval": "20ms"}}})
        self.node: ComputeNode | None = None
        self.store: ExecutionStore | None = None

    async def start_node(self) -> ComputeNode:
        self.store = ExecutionStore(self.tmp_path / "compute" / "executions.db")
        transport = self.network.transport(COMPUTE_ID)
        await transport.start()
        self.node = ComputeNode(
            self.config, self.store, transport,
            executors={"test": self.executor, "wasm": WasmExecutor()},
            storages={"inline": InlineStorage()},
            publishers={"local": self.publisher, "noop": NoopPublisher()},
            node_id=COMPUTE_ID, data_dir=self.tmp_path)
        await self.node.start()
        return self.node

    async def stop_node(self) -> None:
        assert self.node is not None and self.store is not None
        await self.node.stop()
        await self.node.transport.close()
        self.store.close()
        self.node = None

    def state(self, execution_id: str) -> ExecutionStateType:
        assert self.store is not None
        return self.store.require(execution_id).state


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    await c.requester.transport.start()
    await c.publisher.start()
    await c.start_node()
    yield c
    if c.node is not None:
        await c.stop_node()
    await c.publisher.stop()
    await c.requester.transport.close()


def _data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


async def test_wordcount_job_end_to_end(cluster: Cluster, tmp_path: Path) -> None:
    r = cluster.requester
    wasm = asset_path("wordcount.wasm").read_bytes()
    job = _job(
        SpecConfig("wasm", {"EntryModule": "/app/wordcount.wasm",
                            "Parameters": ["/inputs/input.txt"]}),
        inputs=[
            InputSource(SpecConfig("inline", {"URL": _data_url(wasm, "application/wasm")}),
                        target="/app/wordcount.wasm"),
            InputSource(SpecConfig("inline", {"URL": _data_url(b"hello world\nfoo\n",
                                                               "text/plain")}),
                        target="/inputs/input.txt"),
        ],
        publisher="local", result_paths=[ResultPath("outputs", "/outputs")])
    ask = _ask(job)
    execution_id = ask["Execution"]["ID"]
    assert await r.ask(msg.ASK_FOR_BID, ask) == {"OK": True}
    await eventually(lambda: len(r.of(execution_id)) == 1)
    [(kind, bid)] = r.of(execution_id)
    assert kind == msg.BID_RESULT and bid["Accepted"] is True
    assert bid["JobID"] == job.id and bid["JobType"] == "batch"
    assert cluster.state(execution_id) == S.ASK_FOR_BID_ACCEPTED

    await r.ask(msg.BID_ACCEPTED, {"ExecutionID": execution_id, "Accepted": True, "Events": []})
    await eventually(lambda: len(r.of(execution_id)) == 2)
    kind, run = r.of(execution_id)[1]
    assert kind == msg.RUN_RESULT, run
    assert run["RunCommandResult"]["ExitCode"] == 0
    assert run["RunCommandResult"]["Stdout"] == "2 3 16\n"
    assert run["PublishResult"]["Type"] == "urlDownload"
    assert cluster.state(execution_id) == S.COMPLETED

    archive = tmp_path / "result.tar.gz"
    async with aiohttp.ClientSession() as session, \
            session.get(run["PublishResult"]["Params"]["URL"]) as response:
        assert response.status == 200
        archive.write_bytes(await response.read())
    out = tmp_path / "downloaded"
    _native.unpack(str(archive), str(out))
    assert (out / "stdout").read_text() == "2 3 16\n"
    assert (out / "exitCode").read_text() == "0"
    assert (out / "stderr").read_text() == ""
    assert (out / "outputs" / "count.txt").read_text() == "2 3 16\n"
    # the archive holds the results layout and nothing else
    assert _tree(out) == {"stdout", "stderr", "exitCode", "outputs", "outputs/count.txt"}
    # the execution dir is that layout (no copies): inputs were removed after the run (the
    # module was never written), the logs stay
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    assert _tree(exec_dir) == _tree(out)
    assert (exec_dir / "stdout").read_text() == "2 3 16\n"

    logs = await r.ask(msg.EXECUTION_LOGS, {"ExecutionID": execution_id, "Offset": 0})
    assert logs["Lines"] == [{"Type": 1, "Line": "2 3 16"}] and logs["Done"] is True


async def test_membership_node_info_and_heartbeats(cluster: Cluster) -> None:
    r = cluster.requester
    await eventually(lambda: bool(r.membership[msg.NODE_INFO]) and
                     len(r.membership[msg.HEARTBEAT]) >= 2)
    info = r.membership[msg.NODE_INFO][0].payload["NodeInfo"]
    assert info["NodeID"] == COMPUTE_ID and info["NodeType"] == "Compute"
    cni = info["ComputeNodeInfo"]
    assert cni["ExecutionEngines"] == ["test", "wasm"]
    assert cni["Publishers"] == ["local", "noop"]
    assert cni["StorageSources"] == ["inline"]
    assert cni["MaxCapacity"] == cni["MaxJobRequirements"] and cni["MaxCapacity"]["CPU"] > 0
    assert info["Labels"]["zone"] == "test" and info["Labels"]["name"] == COMPUTE_ID
    assert {"os_type", "os_arch"} <= set(info["Labels"])
    beat = r.membership[msg.HEARTBEAT][-1]
    assert set(beat.payload) == {"NodeID", "AvailableCapacity", "QueueCapacity",
                                 "RunningExecutions", "EnqueuedExecutions", "Time"}
    # observers still get the NodeInfo by gossip
    await eventually(lambda: bool(r.gossip[TOPIC_NODE_INFO]))
    assert r.gossip[TOPIC_NODE_INFO][0].payload["NodeInfo"]["NodeID"] == COMPUTE_ID
    reply = await r.ask(NODE_INFO_REQUEST, {})
    assert reply["NodeInfo"]["NodeID"] == COMPUTE_ID

    # a requester that does not know the node (restarted on an empty store) gets its
    # NodeInfo after the next heartbeat
    sent = len(r.membership[msg.NODE_INFO])
    r.known = False
    await eventually(lambda: len(r.membership[msg.NODE_INFO]) > sent)


async def test_heartbeats_slow_down_when_the_requester_asks(cluster: Cluster) -> None:
    r = cluster.requester
    node = cluster.node
    assert node is not None and node.membership.interval == pytest.approx(0.02)
    r.interval = 0.4
    await eventually(lambda: node.membership.interval == pytest.approx(0.4))
    r.interval = 0.001  # never faster than the node's own interval
    await eventually(lambda: node.membership.interval == pytest.approx(0.02), timeout=5)
    r.interval = 1e9  # and never silent for more than an hour
    await eventually(lambda: node.membership.interval == 3600.0, timeout=5)


async def test_a_requester_that_connects_gets_the_node_info_at_once(
        cluster: Cluster) -> None:
    cluster.config.set("Compute.Heartbeat.Interval", "1h")  # no heartbeat round to help
    await cluster.stop_node()
    await cluster.start_node()
    r = cluster.requester
    await eventually(lambda: len(r.membership[msg.NODE_INFO]) >= 1)
    later = FakeRequester(cluster.network, "n-requester-2")
    await later.transport.start()
    try:
        await eventually(lambda: bool(later.membership[msg.NODE_INFO]))
    finally:
        await later.transport.close()


async def test_direct_bid_duplicates_cancel_and_logs(cluster: Cluster) -> None:
    r = cluster.requester
    ask = _ask(_job(SpecConfig("test"), job_type="ops"), direct=True)
    execution_id = ask["Execution"]["ID"]
    await r.ask(msg.ASK_FOR_BID, ask)
    await r.ask(msg.ASK_FOR_BID, ask)  # duplicate: no second bid
    await eventually(lambda: cluster.executor.started == [execution_id])
    # a run still going when the bid's hold ends: the bid is sent on its own
    await eventually(lambda: [k for k, _ in r.of(execution_id)] == [msg.BID_RESULT])
    await eventually(lambda: cluster.state(execution_id) == S.RUNNING)  # written once it lasts
    await r.ask(msg.BID_ACCEPTED, {"ExecutionID": execution_id})  # stale: ignored

    logs = await r.ask(msg.EXECUTION_LOGS, {"ExecutionID": execution_id, "Offset": 0,
                                            "Follow": True, "WaitSeconds": 5})
    assert logs["Lines"] == [{"Type": 1, "Line": "started"}] and not logs["Done"]
    follow = asyncio.ensure_future(r.ask(msg.EXECUTION_LOGS, {
        "ExecutionID": execution_id, "Offset": logs["Offset"], "WaitSeconds": 20}))
    await r.ask(msg.CANCEL_EXECUTION, {"ExecutionID": execution_id, "Events": [
        Event.new("Execution", "Execution stop requested because job was stopped").to_dict()]})
    done = await asyncio.wait_for(follow, 10)
    assert done["Done"] is True
    await eventually(lambda: cluster.node is not None and cluster.node.buffer.running_count == 0)
    local = cluster.store.require(execution_id)  # type: ignore[union-attr]
    assert local.state == S.CANCELLED
    assert "stop requested" in local.execution.compute_state.message
    await r.ask(msg.CANCEL_EXECUTION, {"ExecutionID": execution_id})  # duplicate: ok
    with pytest.raises(TransportError, match="not found"):
        await r.ask(msg.EXECUTION_LOGS, {"ExecutionID": "e-unknown"})


async def test_accepted_bid_makes_directories_ahead_and_rejection_removes_them(
        cluster: Cluster, tmp_path: Path) -> None:
    r = cluster.requester
    job = _job(SpecConfig("test"), inputs=[InputSource(SpecConfig("inline", {"URL": "data:,x"}),
                                                       target="/inputs/x")],
               result_paths=[ResultPath("outputs", "/outputs")])
    ask = _ask(job)
    execution_id = ask["Execution"]["ID"]
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    await r.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: len(r.of(execution_id)) == 1)
    assert r.of(execution_id)[0][1]["Accepted"] is True
    expected = {"outputs"}  # the result folder; input work dirs only when needed, in the run
    await eventually(lambda: {str(p.relative_to(exec_dir)) for p in exec_dir.rglob("*")}
                     == expected)
    await r.ask(msg.BID_REJECTED, {"ExecutionID": execution_id})
    assert cluster.state(execution_id) == S.BID_REJECTED
    await eventually(lambda: not exec_dir.exists())
    assert cluster.executor.started == []


async def test_rejected_bid_reply_and_unknown_message(cluster: Cluster) -> None:
    r = cluster.requester
    ask = _ask(_job(SpecConfig("docker", {"Image": "ubuntu"})))
    execution_id = ask["Execution"]["ID"]
    await r.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: len(r.of(execution_id)) == 1)
    [(kind, bid)] = r.of(execution_id)
    assert kind == msg.BID_RESULT and bid["Accepted"] is False
    assert bid["Events"][0]["Topic"] == "Exec Scanning"
    assert '"docker" engine' in bid["Events"][0]["Message"]
    assert cluster.state(execution_id) == S.ASK_FOR_BID_REJECTED
    with pytest.raises(TransportError, match="unknown message type"):
        await r.ask("Bogus", {})


async def test_a_batch_frame_is_handled_in_order_and_rows_leave_batched(
        cluster: Cluster) -> None:
    r = cluster.requester
    r.refuse = True  # rows pile up in the compute node's outbox
    asks = [_ask(_job(SpecConfig("test"))) for _ in range(3)]
    frame = msg.encode_batch([msg.encode(msg.ASK_FOR_BID, ask) for ask in asks])
    reply = await r.transport.request(COMPUTE_ID, PROTOCOL_COMPUTE, frame, timeout=30)
    assert msg.parse_batch_reply(reply, 3) == [{"OK": True}] * 3
    store = cluster.store
    assert store is not None
    await eventually(lambda: len(store.pending_messages()) == 3)
    # the first pass ends refused: its batch, then the first row alone (the sender stops at
    # the first failure and retries later, when all three go in one frame)
    await eventually(lambda: r.refused >= 2)
    r.refuse = False
    ids = [ask["Execution"]["ID"] for ask in asks]
    await eventually(lambda: all(len(r.of(i)) == 1 for i in ids))
    assert sorted(e.payload["ExecutionID"] for e in r.received) == sorted(ids)
    assert r.batches and max(r.batches) >= 2  # several rows in one frame
    await eventually(lambda: store.pending_messages() == [])


async def test_outbox_retries_until_acknowledged(cluster: Cluster) -> None:
    r = cluster.requester
    r.refuse = True
    ask = _ask(_job(SpecConfig("test")))
    execution_id = ask["Execution"]["ID"]
    await r.ask(msg.ASK_FOR_BID, ask)
    store = cluster.store
    assert store is not None
    await eventually(lambda: any(m.attempts >= 2 for m in store.pending_messages()))
    assert r.of(execution_id) == []
    r.refuse = False
    await eventually(lambda: len(r.of(execution_id)) == 1)
    # a delivered row is marked sent by the store's next (group) commit
    await eventually(lambda: store.pending_messages() == [])


async def test_restart_fails_active_batch_executions(cluster: Cluster) -> None:
    r = cluster.requester
    ask = _ask(_job(SpecConfig("test")))
    execution_id = ask["Execution"]["ID"]
    await r.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: len(r.of(execution_id)) == 1)
    await r.ask(msg.BID_ACCEPTED, {"ExecutionID": execution_id})
    await eventually(lambda: cluster.executor.started == [execution_id])
    await eventually(lambda: cluster.state(execution_id) == S.RUNNING)  # written once it lasts

    await cluster.stop_node()  # the node goes away mid-run
    await cluster.start_node()
    assert cluster.state(execution_id) == S.FAILED
    await eventually(lambda: len(r.of(execution_id)) == 2)
    kind, error = r.of(execution_id)[1]
    assert kind == msg.COMPUTE_ERROR
    assert error["Events"][0]["Message"] == "Failed due to node restart"
    assert error["Events"][0]["Topic"] == "Restart"
    assert cluster.executor.started == [execution_id]  # not re-run


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_a_long_running_direct_bid_is_reported_at_once(cluster: Cluster,
                                                             monkeypatch) -> None:
    """Only batch/ops bids wait to share a frame with the result: a daemon's run is resumed
    after a restart without a new bid, so its bid must not sit in memory."""
    from bacalhau.compute import outbox

    monkeypatch.setattr(outbox, "HOLD_DIRECT_BID", 600.0)
    r = cluster.requester
    ask = _ask(_job(SpecConfig("test"), job_type="daemon"), direct=True)
    execution_id = ask["Execution"]["ID"]
    await r.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: [k for k, _ in r.of(execution_id)] == [msg.BID_RESULT])
