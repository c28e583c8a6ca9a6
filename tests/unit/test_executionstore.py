"""ExecutionStore: executions with conditional state changes, events, and the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.errors import NotFoundError
from bacalhau.models import (
    Event,
    Execution,
    ExecutionState,
    ExecutionStateType,
    Job,
    Resources,
    SpecConfig,
    Task,
)
from bacalhau.models.ids import new_execution_id, new_job_id
from bacalhau.store.executionstore import ExecutionStore, StateConflictError
from bacalhau.transport import messages

pytestmark = pytest.mark.unit

S = ExecutionStateType


def _execution() -> Execution:
    job = Job(id=new_job_id(), name="j", type="batch",
              tasks=[Task(name="main", engine=SpecConfig("wasm"))])
    return Execution(id=new_execution_id(), job_id=job.id, job=job,
                     compute_state=ExecutionState(int(S.NEW)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExecutionStore]:
    s = ExecutionStore(tmp_path / "compute" / "executions.db")
    yield s
    s.close()


def test_create_is_idempotent_and_keeps_requester_and_job(store: ExecutionStore) -> None:
    ex = _execution()
    assert store.create(ex, "n-requester", [Event.new("Scheduling", "asked")])
    assert not store.create(ex, "n-other")
    local = store.require(ex.id)
    assert local.requester == "n-requester"
    assert local.state == S.NEW
    assert local.execution.job is not None and local.execution.job.task.engine.type == "wasm"
    assert [e.message for e in store.events(ex.id)] == ["asked"]
    with pytest.raises(NotFoundError):
        store.require("e-missing")


def test_conditional_update_refuses_unexpected_state(store: ExecutionStore) -> None:
    ex = _execution()
    store.create(ex, "n-r")

    def allocate(e: Execution) -> None:
        e.allocated_resources = {"main": Resources(cpu=0.5)}

    local = store.update(ex.id, S.ASK_FOR_BID_ACCEPTED, expected=(S.NEW,), mutate=allocate,
                         events=[Event.new("Exec Scanning", "ok")])
    assert local.revision == 2
    store.update(ex.id, S.CANCELLED, expected=(S.NEW, S.ASK_FOR_BID_ACCEPTED))
    with pytest.raises(StateConflictError, match="is Cancelled"):
        store.update(ex.id, S.BID_ACCEPTED, expected=(S.ASK_FOR_BID_ACCEPTED,))
    with pytest.raises(StateConflictError, match="revision"):
        store.update(ex.id, S.FAILED, expected_revision=1)
    again = store.require(ex.id)
    assert again.state == S.CANCELLED
    assert again.execution.allocated_resources["main"].cpu == 0.5
    assert [e.message for e in store.events(ex.id)] == ["ok"]


def test_failed_transaction_writes_neither_state_nor_message(store: ExecutionStore) -> None:
    ex = _execution()
    store.create(ex, "n-r")
    with pytest.raises(StateConflictError), store.transaction():
        store.enqueue_message("n-r", messages.BID_RESULT, {"ExecutionID": ex.id})
        store.update(ex.id, S.RUNNING, expected=(S.BID_ACCEPTED,))
    assert store.pending_messages() == []
    assert store.require(ex.id).state == S.NEW


def test_outbox_order_ack_and_listener(store: ExecutionStore) -> None:
    woken: list[int] = []
    store.add_outbox_listener(lambda: woken.append(1))
    first = store.enqueue_message("n-a", messages.BID_RESULT, {"ExecutionID": "e-1"},
                                  execution_id="e-1", source="n-compute")
    store.enqueue_message("n-a", messages.RUN_RESULT, {"ExecutionID": "e-1"}, execution_id="e-1")
    rows = store.pending_messages()
    assert [r.msg_type for r in rows] == [messages.BID_RESULT, messages.RUN_RESULT]
    envelope = messages.decode(rows[0].envelope)
    assert envelope.type == messages.BID_RESULT
    assert envelope.payload == {"ExecutionID": "e-1"}
    assert envelope.metadata[messages.KEY_SOURCE] == "n-compute"
    store.record_attempt(first, "peer down")
    assert store.pending_messages()[0].attempts == 1
    store.ack_message(first)
    assert [r.msg_type for r in store.pending_messages()] == [messages.RUN_RESULT]
    assert len(woken) == 2


def test_list_by_state_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    store = ExecutionStore(path)
    a, b = _execution(), _execution()
    store.create(a, "n-r")
    store.create(b, "n-r")
    store.update(b.id, S.RUNNING)
    store.close()
    reopened = ExecutionStore(path)
    try:
        assert [x.id for x in reopened.list((S.RUNNING,))] == [b.id]
        assert {x.id for x in reopened.list()} == {a.id, b.id}
    finally:
        reopened.close()


def test_reads_are_private_copies_and_follow_every_write(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    store = ExecutionStore(path)
    ex = _execution()
    store.create(ex, "n-r")
    first = store.require(ex.id)
    first.execution.job.name = "changed by a caller"  # type: ignore[union-attr]
    assert store.require(ex.id).execution.job.name == "j"  # type: ignore[union-attr]
    with pytest.raises(KeyError), store.transaction():
        store.update(ex.id, S.RUNNING, message="rolled back")
        assert store.require(ex.id).state == S.RUNNING  # cached at once, read inside
        raise KeyError
    assert store.require(ex.id).state == S.NEW  # the cache never serves a rolled-back write
    store.update(ex.id, S.RUNNING, message="kept")
    # another connection changes the row: reads notice (they compare the stored bytes)
    other = ExecutionStore(path)
    other.update(ex.id, S.COMPLETED, expected=(S.RUNNING,), message="elsewhere")
    other.close()
    local = store.require(ex.id)
    assert (local.state, local.execution.compute_state.message) == (S.COMPLETED, "elsewhere")
    assert local.revision == 3
    store.close()


async def test_acknowledged_rows_leave_with_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "executions.db"
    store = ExecutionStore(path)
    ex = _execution()
    store.create(ex, "n-r")
    first = store.enqueue_message("n-a", messages.BID_RESULT, {"ExecutionID": ex.id})
    second = store.enqueue_message("n-a", messages.RUN_RESULT, {"ExecutionID": ex.id})
    store.ack_message_later(first)
    assert [r.seq for r in store.pending_messages()] == [second]  # at once
    store.update(ex.id, S.RUNNING)  # this commit deletes the row
    peek = ExecutionStore(path)
    assert [r.seq for r in peek.pending_messages()] == [second]
    store.ack_message_later(second)
    store.close()  # closing writes what is pending
    assert peek.pending_messages() == []
    peek.close()

