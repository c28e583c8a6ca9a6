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
