"""Batched messages (issue 15): several envelopes travel as one `Batch` frame, are applied
in order at the receiver and answered one result each, so that a refused message does not
refuse the others; a receiver commits (group commit) before it answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bacalhau.errors import TransportError
from bacalhau.orchestrator.handlers import ExecutionMessageHandlers
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import messages


def test_a_batch_carries_envelopes_in_order() -> None:
    frame = messages.encode_batch([messages.encode(messages.RUN_RESULT, {"ExecutionID": "e-1"}),
                                   messages.encode(messages.BID_RESULT, {"ExecutionID": "e-2"})],
                                  source="n-1")
    envelope = messages.decode(frame)
    assert envelope.type == messages.BATCH
    items = messages.batch_items(envelope)
    assert [(i.type, i.payload["ExecutionID"]) for i in items] == [
        (messages.RUN_RESULT, "e-1"), (messages.BID_RESULT, "e-2")]


def test_a_batch_reply_needs_one_result_per_message() -> None:
    reply = messages.reply_batch([messages.reply_ok(), messages.reply_error("refused")])
    assert messages.parse_batch_reply(reply, 2) == [{"OK": True},
                                                    {"OK": False, "Error": "refused"}]
    with pytest.raises(TransportError, match="one result per message"):
        messages.parse_batch_reply(reply, 3)
    with pytest.raises(TransportError, match="unknown"):  # refused as a whole: send singly
        messages.parse_batch_reply(messages.reply_error("unknown message type 'Batch'"), 2)


async def test_the_requester_answers_each_message_of_a_batch(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    store.db.enable_group_commit()
    enqueued: list[object] = []
    handlers = ExecutionMessageHandlers(store, enqueued.append)
    frame = messages.encode_batch([
        messages.encode(messages.RUN_RESULT, {"ExecutionID": "e-unknown"}),  # not found: OK
        messages.encode(messages.RUN_RESULT, {"ExecutionID": "e-other",
                                              "Events": "not a list"}),  # cannot be applied
        messages.encode(messages.BID_RESULT, {"ExecutionID": "e-unknown-2"}),
    ])
    results = messages.parse_batch_reply(await handlers.handle("n-compute", frame), 3)
    assert [r["OK"] for r in results] == [True, False, True]
    assert "RunResult failed" in results[1]["Error"]
    assert enqueued == []
    store.close()


async def test_a_held_bid_and_its_result_are_one_execution_write(tmp_path: Path) -> None:
    """The compute sends an accepted direct bid and the run's result in one frame: one
    execution write, the history of both in order, one evaluation; a bad neighbour does not
    hold back a good message about the same execution."""
    from bacalhau.models import EvalStatus
    from tests.factories import make_execution, make_job

    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_or_update_job(make_job())
    execution = make_execution(job, "n-compute")
    execution.desired_state.state_type = 1  # Running: a direct bid
    with store.transaction():
        store.create_execution(execution)
    writes: list[int] = []
    update = store.update_execution

    def counting(ex: object, **kw: object) -> None:
        writes.append(1)
        update(ex, **kw)  # type: ignore[arg-type]

    store.update_execution = counting  # type: ignore[method-assign]
    enqueued: list[object] = []
    handlers = ExecutionMessageHandlers(store, enqueued.append)
    done = {"Topic": "Execution", "Message": "Completed successfully"}
    frame = messages.encode_batch([
        messages.encode(messages.BID_RESULT, {"ExecutionID": execution.id, "Accepted": True}),
        messages.encode(messages.RUN_RESULT, {"ExecutionID": execution.id, "Events": [done],
                                              "RunCommandResult": {"ExitCode": 0}}),
        messages.encode(messages.RUN_RESULT, {"ExecutionID": execution.id}),  # a duplicate
    ])
    results = messages.parse_batch_reply(await handlers.handle("n-compute", frame), 3)
    assert [r["OK"] for r in results] == [True, True, True]
    assert writes == [1]
    stored = store.get_execution(execution.id)
    assert stored.compute_state.state_type == 9  # Completed
    history = [h.event.message for h in store.job_history(job.id)
               if h.execution_id == execution.id]
    assert [m.split(" for ")[0] for m in history] == ["Bid accepted", "Completed successfully"]
    [evaluation] = enqueued
    assert store.get_evaluation(evaluation.id).status == EvalStatus.PENDING  # type: ignore

    other = make_execution(job, "n-compute")
    other.desired_state.state_type = 1
    with store.transaction():
        store.create_execution(other)
    frame = messages.encode_batch([
        messages.encode(messages.BID_RESULT, {"ExecutionID": other.id, "Accepted": True}),
        messages.encode(messages.RUN_RESULT, {"ExecutionID": other.id, "Events": "bad"}),
    ])
    results = messages.parse_batch_reply(await handlers.handle("n-compute", frame), 2)
    assert [r["OK"] for r in results] == [True, False]
    assert store.get_execution(other.id).compute_state.state_type == 5  # BidAccepted
    store.close()
