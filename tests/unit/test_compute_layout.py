"""The lean execution dir (issue 15): what a compute node creates for one execution, counted
with inotify on a real node running real wasmtime, and where `job logs` finds the logs —
in the execution record, in unnamed files while running, in named files — across a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.assets import asset_path
from bacalhau.compute import runner as runner_module
from bacalhau.executors.base import RunRequest
from bacalhau.models import (
    ExecutionStateType as S,
)
from bacalhau.models import (
    InputSource,
    ResultPath,
    RunCommandResult,
    SpecConfig,
)
from bacalhau.transport import messages as msg
from bench.fswatch import CreationCounter
from tests.unit.test_compute_node import Cluster, _ask, _data_url, _job, _tree, eventually

pytestmark = pytest.mark.unit


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


def _wordcount(text: bytes, publisher: str = "noop") -> dict:
    wasm = asset_path("wordcount.wasm").read_bytes()
    job = _job(
        SpecConfig("wasm", {"EntryModule": "/wasm/wordcount.wasm",
                            "Parameters": ["/inputs/input.txt"]}),
        inputs=[
            InputSource(SpecConfig("inline", {"URL": _data_url(wasm, "application/wasm")}),
                        target="/wasm/wordcount.wasm"),
            InputSource(SpecConfig("inline", {"URL": _data_url(text, "text/plain")}),
                        target="/inputs/input.txt"),
        ],
        publisher=publisher, result_paths=[ResultPath("outputs", "/outputs")])
    return _ask(job, direct=True)


async def _settled(cluster: Cluster, execution_id: str) -> None:
    await eventually(lambda: cluster.state(execution_id).is_terminal())
    node = cluster.node
    assert node is not None
    await eventually(lambda: node.buffer.running_count == 0)


async def _logs(cluster: Cluster, execution_id: str) -> list[dict]:
    reply = await cluster.requester.ask(msg.EXECUTION_LOGS, {"ExecutionID": execution_id,
                                                             "Offset": 0})
    assert reply["Done"] is True
    return reply["Lines"]


async def test_a_noop_wasm_job_creates_only_its_input_and_result_paths(
        cluster: Cluster, tmp_path: Path) -> None:
    """The throughput job's shape: module and input inline, one result path, noop."""
    ask = _wordcount(b"one two\nthree\n")
    execution_id = ask["Execution"]["ID"]
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    counter = CreationCounter([tmp_path])
    counter.start()
    try:
        await cluster.requester.ask(msg.ASK_FOR_BID, ask)
        await _settled(cluster, execution_id)
    finally:
        counter.stop()  # reads every event queued until now
    assert cluster.state(execution_id) == S.COMPLETED
    created = {str(p.relative_to(exec_dir)) for p in counter.created if p.is_relative_to(
        exec_dir)} | ({"."} if exec_dir in counter.created else set())
    # the module is compiled from memory: never written (no .input-0); no logs/, results/ or
    # inputs/ folders; the logs fit the execution record, so they never got files. (inotify
    # may miss input.txt: its folder can be gone before the watcher gets to watch it.)
    expected = {".", ".input-1", ".input-1/input.txt", "outputs", "outputs/count.txt"}
    assert expected - {".input-1/input.txt"} <= created <= expected
    outside = {p.name for p in counter.created if not p.is_relative_to(exec_dir)}
    assert not any(name.endswith(".wasm") for name in outside), outside
    # what stays: the results; the input went after the run
    assert _tree(exec_dir) == {"outputs", "outputs/count.txt"}
    assert (exec_dir / "outputs" / "count.txt").read_text() == "2 3 14\n"
    assert await _logs(cluster, execution_id) == [{"Type": 1, "Line": "2 3 14"}]

    await cluster.stop_node()  # the record keeps the logs across a restart
    await cluster.start_node()
    assert await _logs(cluster, execution_id) == [{"Type": 1, "Line": "2 3 14"}]


def _record_states(cluster: Cluster, execution_id: str) -> list[S]:
    """The states the compute store is asked to write for `execution_id`, in order (the real
    store still writes them)."""
    store = cluster.store
    assert store is not None
    written: list[S] = []
    update = store.update

    def recording(ex_id: str, new_state: S, **kw: object) -> object:
        if ex_id == execution_id:
            written.append(S(new_state))
        return update(ex_id, new_state, **kw)  # type: ignore[arg-type]

    store.update = recording  # type: ignore[method-assign]
    return written


async def test_a_bid_without_io_is_stored_decided_in_one_write(cluster: Cluster) -> None:
    """wasm + inline inputs: the AskForBid handler bids and creates the execution already
    BidAccepted (no NEW row, no second write); the bid still reaches the requester."""
    ask = _wordcount(b"one two\n")
    execution_id = ask["Execution"]["ID"]
    store = cluster.store
    assert store is not None
    created: list[S] = []
    create = store.create

    def recording(execution: Any, requester: str, events: Any = ()) -> bool:
        if execution.id == execution_id:
            created.append(S(execution.compute_state.state_type))
        return create(execution, requester, events)

    store.create = recording  # type: ignore[method-assign]
    written = _record_states(cluster, execution_id)
    _short_runs(cluster)
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    assert created == [S.BID_ACCEPTED]  # decided before the handler answered
    await _settled(cluster, execution_id)
    assert written == [S.COMPLETED]  # and no Running write for a short run (runner.py)
    messages = [e.message for e in store.events(execution_id)]
    assert messages[-2:] == ["Running", "Completed successfully"]  # the Running event kept
    kinds = [kind for kind, _ in cluster.requester.of(execution_id)]
    assert kinds == [msg.BID_RESULT, msg.RUN_RESULT]
    assert cluster.requester.of(execution_id)[0][1]["Accepted"] is True
    local = store.require(execution_id)
    assert local.execution.allocated_resources["main"].memory > 0


def _short_runs(cluster: Cluster) -> None:
    """Every run of the test counts as short: no Running write of its own (runner.py)."""
    assert cluster.node is not None
    cluster.node.runner.running_after = 3600.0


async def test_a_long_run_gets_its_running_write_a_short_one_does_not(cluster: Cluster) -> None:
    """A batch run still going after `running_after` is written Running (log followers and
    a restart see it); the event is stored once either way."""
    assert cluster.node is not None
    cluster.node.runner.running_after = 0.01
    ask = _ask(_job(SpecConfig("test")), direct=True)  # blocks until released
    execution_id = ask["Execution"]["ID"]
    written = _record_states(cluster, execution_id)
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: cluster.state(execution_id) == S.RUNNING)
    cluster.executor.release[execution_id].set()
    await _settled(cluster, execution_id)
    assert written == [S.RUNNING, S.COMPLETED]
    store = cluster.store
    assert store is not None
    assert [e.message for e in store.events(execution_id)].count("Running") == 1


async def test_a_small_local_publish_writes_no_publishing_state(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    """Packed and hashed without yielding to the loop: a short run goes from BidAccepted
    straight to Completed; results over the small-tree size still pass through Publishing."""
    _short_runs(cluster)
    ask = _wordcount(b"one two\n", publisher="local")
    execution_id = ask["Execution"]["ID"]
    written = _record_states(cluster, execution_id)
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await _settled(cluster, execution_id)
    assert written == [S.COMPLETED]
    local = cluster.store.require(execution_id)  # type: ignore[union-attr]
    assert local.execution.published_result.params["CID"]
    assert (tmp_path / "published" / f"{execution_id}.tar.gz").is_file()

    copy = asset_path("copy.wasm").read_bytes()
    big = bytes(range(256)) * 1200  # 300 KiB: more than content.SMALL_RESULTS_BYTES
    job = _job(SpecConfig("wasm", {"EntryModule": "/wasm/copy.wasm",
                                   "Parameters": ["/in/big.bin", "/out/big.bin"]}),
               inputs=[InputSource(SpecConfig("inline", {
                           "URL": _data_url(copy, "application/wasm")}),
                           target="/wasm/copy.wasm"),
                       InputSource(SpecConfig("inline", {
                           "URL": _data_url(big, "application/octet-stream")}),
                           target="/in/big.bin")],
               publisher="local", result_paths=[ResultPath("out", "/out")])
    ask = _ask(job, direct=True)
    execution_id = ask["Execution"]["ID"]
    written = _record_states(cluster, execution_id)
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await _settled(cluster, execution_id)
    assert cluster.state(execution_id) == S.COMPLETED
    assert written == [S.PUBLISHING, S.COMPLETED]


async def test_output_larger_than_the_record_gets_named_files(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    copy = asset_path("copy.wasm").read_bytes()
    missing = [f"/in/{'m' * 40}-{i}" for i in range(80)]  # each prints "missing <path>"
    pairs = [p for src in missing for p in (src, "/out/x")]
    job = _job(SpecConfig("wasm", {"EntryModule": "/wasm/copy.wasm", "Parameters": pairs}),
               inputs=[InputSource(SpecConfig("inline", {
                   "URL": _data_url(copy, "application/wasm")}), target="/wasm/copy.wasm")],
               publisher="noop", result_paths=[ResultPath("out", "/out")])
    ask = _ask(job, direct=True)
    execution_id = ask["Execution"]["ID"]
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await _settled(cluster, execution_id)
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    assert _tree(exec_dir) == {"out", "stdout", "stderr"}
    expected = [{"Type": 1, "Line": f"missing {src}"} for src in missing]
    assert (exec_dir / "stdout").read_text().splitlines() == [e["Line"] for e in expected]
    assert await _logs(cluster, execution_id) == expected
    local = cluster.store.require(execution_id)  # type: ignore[union-attr]
    assert local.execution.run_output is not None
    assert local.execution.run_output.stdout_truncated


class UnnamedLogsEngine:
    """Test engine `test`: opens its stdout by the path the runner gives it (as wasmtime
    does), writes one line, then waits for its release event."""

    name = "test"
    accepts_unnamed_logs = True

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    def is_installed(self) -> bool:
        return True

    def check(self, engine: SpecConfig) -> list[str]:
        return []

    async def run(self, request: RunRequest) -> RunCommandResult:
        assert request.logs is not None
        stdout = request.logs.engine_paths()[0]
        with open(stdout, "w") as f:  # as an engine opens it: by path
            f.write("started\n")
        self.release.setdefault(request.execution_id, asyncio.Event())
        self.started.append(request.execution_id)
        await self.release[request.execution_id].wait()
        return RunCommandResult(exit_code=0)

    async def cancel(self, execution_id: str) -> None:
        pass


async def test_a_long_run_gets_named_logs_that_survive_a_restart(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "NAME_AFTER", 0.05)
    engine = UnnamedLogsEngine()
    await cluster.stop_node()
    cluster.executor = engine  # type: ignore[assignment]
    await cluster.start_node()
    ask = _ask(_job(SpecConfig("test")), direct=True)
    execution_id = ask["Execution"]["ID"]
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: engine.started == [execution_id])
    # while it runs, readers get the unnamed files' content; NAME_AFTER later they have names
    reply = await cluster.requester.ask(msg.EXECUTION_LOGS, {
        "ExecutionID": execution_id, "Offset": 0, "WaitSeconds": 5})
    assert reply["Lines"] == [{"Type": 1, "Line": "started"}] and not reply["Done"]
    await eventually(lambda: (exec_dir / "stdout").exists())
    assert (exec_dir / "stdout").read_text() == "started\n"

    await cluster.stop_node()  # the node goes away mid-run: the batch execution fails
    await cluster.start_node()
    assert cluster.state(execution_id) == S.FAILED
    assert await _logs(cluster, execution_id) == [{"Type": 1, "Line": "started"}]


async def test_a_failed_run_without_output_leaves_no_log_files(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    """A run that fails (here: a missing module) has no output in its record: logs it wrote
    would get files; this one wrote none, so there are none."""
    job = _job(SpecConfig("wasm", {"EntryModule": "/wasm/absent.wasm"}), publisher="noop")
    ask = _ask(job, direct=True)
    execution_id = ask["Execution"]["ID"]
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await _settled(cluster, execution_id)
    assert cluster.state(execution_id) == S.FAILED
    exec_dir = tmp_path / "compute" / "executions" / execution_id
    assert _tree(exec_dir) == set()
    assert await _logs(cluster, execution_id) == []


async def test_a_result_name_that_would_take_the_logs_place_is_refused(
        cluster: Cluster) -> None:
    ask = _wordcount(b"x\n")
    ask["Execution"]["Job"]["Tasks"][0]["ResultPaths"] = [{"Name": "stdout",
                                                          "Path": "/outputs"}]
    execution_id = ask["Execution"]["ID"]
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await _settled(cluster, execution_id)
    local = cluster.store.require(execution_id)  # type: ignore[union-attr]
    assert local.state == S.FAILED
    assert 'ResultPath name "stdout" cannot be used' in local.execution.compute_state.message


async def test_a_bid_that_fails_in_the_handler_fails_the_execution_as_before(
        cluster: Cluster) -> None:
    """A bid decided at once that raises takes the usual path: stored New, then failed by the
    bidding task with a ComputeError naming the failure (the requester places the job again)."""
    node = cluster.node
    assert node is not None

    async def broken(execution: Any) -> Any:
        raise RuntimeError("probe exploded")

    node.bidder.bid = broken  # type: ignore[method-assign]
    ask = _wordcount(b"x\n")
    execution_id = ask["Execution"]["ID"]
    await cluster.requester.ask(msg.ASK_FOR_BID, ask)
    await eventually(lambda: cluster.state(execution_id) == S.FAILED)
    await eventually(lambda: len(cluster.requester.of(execution_id)) == 1)
    [(kind, payload)] = cluster.requester.of(execution_id)
    assert kind == msg.COMPUTE_ERROR
    assert "bidding failed: probe exploded" in payload["Events"][0]["Message"]
