"""A node that refuses an AskForBid (it cannot store the execution: its disk is full) must not
leave the execution waiting forever: the dispatcher hands the refusal to `on_refused`, and a
compute node answers a store error with a refusal that says why. Found by the fault suite
(tests/faults: a full disk on a compute node)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import pytest

from bacalhau.orchestrator.dispatcher import Dispatcher
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import PROTOCOL_COMPUTE, InProcessNetwork, messages
from tests.factories import make_execution, make_job

pytestmark = pytest.mark.unit


async def _dispatch_one(tmp_path, reply: bytes, msg_type: str) -> list[tuple[str, str, str]]:
    store = JobStore(tmp_path / "jobs.db")
    net = InProcessNetwork()
    requester, node = net.transport("req"), net.transport("n-1")
    await requester.start()
    await node.start()
    heard = asyncio.Event()

    async def answer(sender: str, payload: bytes) -> bytes:
        heard.set()
        return reply

    node.serve(PROTOCOL_COMPUTE, answer)
    refused: list[tuple[str, str, str]] = []
    dispatcher = Dispatcher(store, requester,
                            on_refused=lambda *args: refused.append(args))
    try:
        job, _ = store.create_or_update_job(make_job())
        execution = make_execution(job, "n-1")
        payload = ({"Execution": execution.to_dict()} if msg_type == messages.ASK_FOR_BID
                   else {"ExecutionID": execution.id})
        store.add_outbox("n-1", PROTOCOL_COMPUTE, messages.encode(msg_type, payload,
                                                                 source="req"))
        await dispatcher.start()
        await asyncio.wait_for(heard.wait(), 5)
        await dispatcher.wait_idle()
        refused = [(e, n, r.replace(execution.id, "<id>")) for e, n, r in refused]
        assert all(e == execution.id for e, _, _ in refused)
        return refused
    finally:
        await dispatcher.stop()
        await requester.close()
        await node.close()
        store.close()


async def test_a_refused_ask_for_bid_goes_to_on_refused(tmp_path) -> None:
    refused = await _dispatch_one(tmp_path, messages.reply_error("disk full"),
                                  messages.ASK_FOR_BID)
    assert [(n, r) for _, n, r in refused] == [("n-1", "AskForBid: disk full")]


async def test_an_accepted_message_or_another_refusal_is_not_reported(tmp_path) -> None:
    assert await _dispatch_one(tmp_path, messages.reply_ok(), messages.ASK_FOR_BID) == []
    assert await _dispatch_one(tmp_path / "2", messages.reply_error("already done"),
                               messages.CANCEL_EXECUTION) == []


@pytest.mark.parametrize("at_once", [False, True], ids=["bid-later", "bid-at-once"])
async def test_compute_refuses_an_ask_it_cannot_store(at_once: bool) -> None:
    """Whether the bid waits for a task or is decided in the handler (compute/service.py)."""
    from bacalhau.compute.bidder import BidDecision
    from bacalhau.compute.service import ComputeNode

    class FullStore:
        def create(self, *args: object) -> bool:
            raise sqlite3.OperationalError("database or disk is full")

        def transaction(self) -> contextlib.nullcontext[None]:
            return contextlib.nullcontext()

    class Bidder:
        def decides_at_once(self, execution: object) -> bool:
            return at_once

        async def bid(self, execution: object) -> BidDecision:
            return BidDecision(True)

    class Fake:
        store = FullStore()
        bidder = Bidder()
        node_id = "n-1"
        _store_decided = ComputeNode._store_decided
        _bid_outcome = staticmethod(ComputeNode._bid_outcome)

    job = make_job()
    execution = make_execution(job, "n-1")
    execution.job = job
    reply = await ComputeNode._on_ask_for_bid(Fake(), "req",  # type: ignore[arg-type]
                                                 {"Execution": execution.to_dict()})
    with pytest.raises(Exception, match=r"cannot store the execution .*disk is full"):
        messages.parse_reply(reply)
