"""The compute's Reporter holds an accepted direct bid so that a short run sends its bid and
its result in one frame, in order; a longer run's bid leaves when the hold ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.compute import outbox
from bacalhau.compute.outbox import Reporter
from bacalhau.models import (
    Event,
    Execution,
    ExecutionState,
    ExecutionStateType,
    Job,
    SpecConfig,
    Task,
)
from bacalhau.models.ids import new_execution_id, new_job_id
from bacalhau.store.executionstore import ExecutionStore
from bacalhau.transport import messages

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExecutionStore]:
    s = ExecutionStore(tmp_path / "executions.db")
    yield s
    s.close()


def _local(store: ExecutionStore):
    job = Job(id=new_job_id(), name="j", type="batch",
              tasks=[Task(name="main", engine=SpecConfig("wasm"))])
    ex = Execution(id=new_execution_id(), job_id=job.id, job=job,
                   compute_state=ExecutionState(int(ExecutionStateType.NEW)))
    store.create(ex, "n-requester")
    return store.require(ex.id)


def _rows(store: ExecutionStore) -> list[str]:
    return [m.msg_type for m in store.pending_messages()]


def _reporter(store: ExecutionStore, monkeypatch, *, hold: float) -> Reporter:
    monkeypatch.setattr(outbox, "HOLD_DIRECT_BID", hold)
    return Reporter(store, "n-compute")


async def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)  # deadline-bounded wait for the hold's timer


async def test_a_short_run_sends_its_held_bid_first_with_its_result(store, monkeypatch):
    reporter = _reporter(store, monkeypatch, hold=60.0)
    local = _local(store)
    with store.transaction():
        reporter.bid_result(local, True, [], hold=True)
    assert _rows(store) == []  # held
    done = Event.new("Execution", "Completed successfully")
    with store.transaction():
        reporter.run_result(local, [done])
    rows = store.pending_messages()
    assert [m.msg_type for m in rows] == [messages.BID_RESULT, messages.RUN_RESULT]
    bid = messages.decode(rows[0].envelope).payload
    assert bid["Accepted"] is True
    assert isinstance(bid["Time"], int) and bid["Time"] > 0  # when it was decided, not sent
    reporter.release_held()  # nothing left to release
    assert _rows(store) == [messages.BID_RESULT, messages.RUN_RESULT]


async def test_a_held_bid_leaves_when_the_hold_ends(store, monkeypatch):
    reporter = _reporter(store, monkeypatch, hold=0.05)
    local = _local(store)
    with store.transaction():
        reporter.bid_result(local, True, [], hold=True)
    await _until(lambda: _rows(store) == [messages.BID_RESULT], "the held bid was never written")
    with store.transaction():  # the run's failure comes later: the bid is not sent twice
        reporter.compute_error(local, [Event.new("Running", "boom")])
    assert _rows(store) == [messages.BID_RESULT, messages.COMPUTE_ERROR]


async def test_rejections_and_pending_bids_are_never_held(store, monkeypatch):
    reporter = _reporter(store, monkeypatch, hold=60.0)
    with store.transaction():
        reporter.bid_result(_local(store), False, [], hold=True)
        reporter.bid_result(_local(store), True, [])
    assert _rows(store) == [messages.BID_RESULT, messages.BID_RESULT]


async def test_a_stopping_node_writes_the_bids_it_holds(store, monkeypatch):
    reporter = _reporter(store, monkeypatch, hold=60.0)
    with store.transaction():
        reporter.bid_result(_local(store), True, [], hold=True)
    reporter.release_held()
    assert _rows(store) == [messages.BID_RESULT]


async def test_a_bid_the_store_cannot_take_yet_goes_with_the_result(store, monkeypatch):
    """The hold ends while the disk is full: the bid is kept and leaves before the result."""
    reporter = _reporter(store, monkeypatch, hold=0.01)
    local = _local(store)
    real = store.enqueue_message
    failures = []

    def full_disk(*args, **kwargs):
        failures.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "enqueue_message", full_disk)
    with store.transaction():
        reporter.bid_result(local, True, [], hold=True)
    await _until(lambda: bool(failures), "the hold never ended")
    monkeypatch.setattr(store, "enqueue_message", real)
    with store.transaction():
        reporter.run_result(local, [Event.new("Execution", "Completed successfully")])
    assert _rows(store) == [messages.BID_RESULT, messages.RUN_RESULT]
