"""ExecutorBuffer and runner: priority order, capacity gating, never-fitting jobs, cancel of
queued and running executions, failures by phase, results layout."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import CapacityTracker
from bacalhau.compute.logs import LogHub
from bacalhau.compute.outbox import Reporter
from bacalhau.compute.runner import ExecutionRunner
from bacalhau.config import Config
from bacalhau.errors import ExecutorError, PublisherError, StorageError
from bacalhau.executors.base import RunRequest
from bacalhau.models import (
    Execution,
    ExecutionState,
    ExecutionStateType,
    InputSource,
    Job,
    Resources,
    ResultPath,
    RunCommandResult,
    SpecConfig,
    Task,
)
from bacalhau.models.ids import new_execution_id, new_job_id
from bacalhau.publishers.noop import NoopPublisher
from bacalhau.store.executionstore import ExecutionStore
from bacalhau.transport import messages

pytestmark = pytest.mark.unit

S = ExecutionStateType


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, yielding to the loop; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the deadline")
        await asyncio.sleep(0.005)


class BlockingExecutor:
    """Test engine `test`: each run writes a line to stdout and waits for its release event.

    `Params.ExitCode` sets the exit code; `Params.Raise` makes run raise ExecutorError.
    """

    name = "test"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.requests: dict[str, RunRequest] = {}
        self.release: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def is_installed(self) -> bool:
        return True

    def check(self, engine: SpecConfig) -> list[str]:
        return []

    async def run(self, request: RunRequest) -> RunCommandResult:
        self.started.append(request.execution_id)
        self.requests[request.execution_id] = request
        request.stdout_path.write_text(f"hello from {request.execution_id}\n")
        request.stderr_path.write_text("warn\n")
        if request.engine.param("Raise"):
            raise ExecutorError(str(request.engine.param("Raise")))
        await self.release[request.execution_id].wait()
        return RunCommandResult(exit_code=int(request.engine.param("ExitCode") or 0))

    async def cancel(self, execution_id: str) -> None:
        self.cancelled.append(execution_id)


class FailingStorage:
    types = ("broken",)

    def is_installed(self) -> bool:
        return True

    def check(self, source: SpecConfig, *, read_write: bool = False) -> list[str]:
        return []

    async def size(self, source: SpecConfig) -> int | None:
        return None

    async def prepare(self, input_source: InputSource, work_dir: Path) -> object:
        raise StorageError("input /in: server said 404")

    async def cleanup(self, prepared: object) -> None:
        pass


class FailingPublisher:
    type = "failing"

    def is_installed(self) -> bool:
        return True

    def check(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, execution: Execution, results_dir: Path) -> SpecConfig:
        raise PublisherError("bucket is read-only")


@dataclass
class Harness:
    store: ExecutionStore
    executor: BlockingExecutor
    buffer: ExecutorBuffer
    tracker: CapacityTracker
    data_dir: Path

    def add(self, *, priority: int = 0, cpu: float = 1.0, params: dict | None = None,
            publisher: str = "", inputs: list[InputSource] | None = None) -> Execution:
        job = Job(id=new_job_id(), name="j", type="batch", priority=priority, tasks=[Task(
            name="main", engine=SpecConfig("test", params or {}),
            publisher=SpecConfig(publisher), input_sources=inputs or [],
            result_paths=[ResultPath("outputs", "/outputs")])])
        ex = Execution(id=new_execution_id(), job_id=job.id, job=job,
                       allocated_resources={"main": Resources(cpu=cpu, memory=1000)},
                       compute_state=ExecutionState(int(S.BID_ACCEPTED)))
        self.store.create(ex, "n-requester")
        return ex

    def state(self, ex: Execution) -> ExecutionStateType:
        return self.store.require(ex.id).state

    def messages(self) -> list[tuple[str, dict]]:
        out = []
        for row in self.store.pending_messages():
            env = messages.decode(row.envelope)
            out.append((env.type, env.payload))
        return out


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = ExecutionStore(tmp_path / "compute" / "executions.db")
    executor = BlockingExecutor()
    reporter = Reporter(store, "n-compute")
    runner = ExecutionRunner(Config(), store, reporter, {"test": executor},
                             {"broken": FailingStorage()},
                             {"noop": NoopPublisher(), "failing": FailingPublisher()},
                             tmp_path, LogHub())
    tracker = CapacityTracker(Resources(cpu=2, memory=10_000))
    buffer = ExecutorBuffer(tracker, runner, store, reporter)
    yield Harness(store, executor, buffer, tracker, tmp_path)
    await buffer.stop()
    store.close()


async def test_priority_order_and_capacity_gating(harness: Harness) -> None:
    h = harness
    low = h.add(priority=0, cpu=2)
    h.buffer.enqueue(low)  # fills the node
    await eventually(lambda: h.executor.started == [low.id])
    later_low = h.add(priority=1, cpu=1)
    high_a = h.add(priority=5, cpu=1)
    high_b = h.add(priority=5, cpu=1)
    for ex in (later_low, high_a, high_b):
        h.buffer.enqueue(ex)
    assert h.buffer.queued_count == 3
    assert h.buffer.queued_capacity().cpu == 3
    assert h.state(high_a) == S.BID_ACCEPTED

    h.executor.release[low.id].set()
    # capacity 2: both priority-5 executions start together, in arrival order
    await eventually(lambda: len(h.executor.started) == 3)
    assert h.executor.started[1:] == [high_a.id, high_b.id]
    assert h.buffer.running_count == 2 and h.buffer.queued_count == 1
    assert h.tracker.available().cpu == 0

    h.executor.release[high_b.id].set()
    await eventually(lambda: h.executor.started[-1] == later_low.id)
    for ex in (high_a, later_low):
        h.executor.release[ex.id].set()
    await eventually(lambda: all(h.state(x) == S.COMPLETED for x in (low, high_a, high_b,
                                                                      later_low)))
    assert h.tracker.available().cpu == 2 and h.buffer.queued_capacity().is_zero()


async def test_run_results_layout_env_and_run_result(harness: Harness) -> None:
    h = harness
    ex = h.add(params={"ExitCode": 3}, publisher="noop")
    h.buffer.enqueue(ex)
    await eventually(lambda: ex.id in h.executor.requests)
    request = h.executor.requests[ex.id]
    await eventually(lambda: h.state(ex) == S.RUNNING)  # written once the run lasts
    assert request.env["BACALHAU_EXECUTION_ID"] == ex.id
    assert request.env["BACALHAU_JOB_ID"] == ex.job_id
    assert request.env["BACALHAU_JOB_TYPE"] == "batch"
    assert request.env["BACALHAU_PARTITION_INDEX"] == "0"
    assert request.env["BACALHAU_PARTITION_COUNT"] == "1"
    assert (request.results_dir / "outputs").is_dir()
    h.executor.release[ex.id].set()
    await eventually(lambda: h.state(ex) == S.COMPLETED)  # non-zero exit still completes
    exec_dir = h.data_dir / "compute" / "executions" / ex.id
    assert request.results_dir == exec_dir
    assert (exec_dir / "stdout").read_text() == f"hello from {ex.id}\n"
    assert (exec_dir / "stderr").read_text() == "warn\n"
    # noop publishes nothing: no exitCode file to pack, no logs/ or results/ folders, the
    # result folder directly in the execution dir (issue 15)
    assert sorted(p.name for p in exec_dir.iterdir()) == ["outputs", "stderr", "stdout"]
    local = h.store.require(ex.id)
    assert local.execution.run_output is not None
    assert local.execution.run_output.exit_code == 3
    assert local.execution.run_output.stdout == f"hello from {ex.id}\n"
    [(kind, payload)] = h.messages()
    assert kind == messages.RUN_RESULT
    assert payload["RunCommandResult"]["ExitCode"] == 3
    assert payload["Events"][0]["Message"] == "Completed successfully"
    assert [e.message for e in h.store.events(ex.id)] == ["Running", "Completed successfully"]


async def test_never_fitting_job_fails(harness: Harness) -> None:
    h = harness
    ex = h.add(cpu=3)
    h.buffer.enqueue(ex)
    local = h.store.require(ex.id)
    assert local.state == S.FAILED
    assert local.execution.compute_state.message.startswith("not enough capacity to run job")
    [(kind, payload)] = h.messages()
    assert kind == messages.COMPUTE_ERROR
    assert payload["Events"][0]["Message"].startswith("not enough capacity to run job")
    assert h.executor.started == []


async def test_cancel_queued_and_running(harness: Harness) -> None:
    h = harness
    running = h.add(cpu=2)
    queued = h.add(cpu=2)
    h.buffer.enqueue(running)
    h.buffer.enqueue(queued)
    await eventually(lambda: h.executor.started == [running.id])
    h.store.update(queued.id, S.CANCELLED)
    assert await h.buffer.cancel(queued.id)
    assert h.buffer.queued_count == 0 and h.buffer.queued_capacity().is_zero()

    h.store.update(running.id, S.CANCELLED)
    assert await h.buffer.cancel(running.id)
    assert h.executor.cancelled == [running.id]
    assert h.buffer.running_count == 0 and h.tracker.available().cpu == 2
    assert h.state(running) == S.CANCELLED and h.state(queued) == S.CANCELLED
    assert h.messages() == []  # the requester asked for the cancel; nothing to report
    assert not await h.buffer.cancel("e-unknown")


async def test_failures_name_their_phase(harness: Harness) -> None:
    h = harness
    bad_input = h.add(inputs=[InputSource(SpecConfig("broken"), target="/in")])
    crash = h.add(params={"Raise": "memory limit exceeded"})
    unpublished = h.add(publisher="failing")
    for ex in (bad_input, crash, unpublished):
        h.buffer.enqueue(ex)
    h.executor.release[unpublished.id].set()
    await eventually(lambda: all(h.state(x) == S.FAILED for x in (bad_input, crash,
                                                                   unpublished)))
    topics = {}
    for kind, payload in h.messages():
        assert kind == messages.COMPUTE_ERROR
        event = payload["Events"][0]
        topics[payload["ExecutionID"]] = (event["Topic"], event["Message"])
    assert topics[bad_input.id] == ("Downloading Inputs", "input /in: server said 404")
    assert topics[crash.id] == ("Running Execution", "memory limit exceeded")
    assert topics[unpublished.id] == ("Publishing Results", "bucket is read-only")
    assert h.store.require(unpublished.id).execution.run_output is not None
    assert h.tracker.available().cpu == 2
