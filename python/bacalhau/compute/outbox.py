"""Messages from this compute node to requesters: building them (`Reporter`) into the
execution store's outbox, and delivering them (`OutboxSender`).

The reporter is called inside the store transaction that changes the execution's state, so
the message exists exactly when the change does. The sender delivers rows in order per
requester over `PROTOCOL_ORCHESTRATOR` and deletes a row once the requester answered
`{"OK": true}` (the delete rides on the store's next commit: `ack_message_later`). A
requester that cannot be reached is retried with exponential backoff
(forever: the message matters until it is acknowledged); one that answers `{"OK": false}`
got the message but refused it, which is retried at most `MAX_REFUSALS` times. The rows due
for one requester travel as one `Batch` frame (at most `FRAME_MAX_MESSAGES`, each answered on
its own); a requester that refuses the batch as a whole gets them one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

import orjson

from bacalhau.errors import TransportError
from bacalhau.models import Event
from bacalhau.models.timeutil import now_ns
from bacalhau.store.executionstore import ExecutionStore, LocalExecution, OutboxMessage
from bacalhau.transport import PROTOCOL_ORCHESTRATOR, Transport
from bacalhau.transport import messages as msg

log = logging.getLogger(__name__)

MAX_REFUSALS = 10
BATCH = 200


HOLD_DIRECT_BID = 0.05
"""Seconds an accepted direct bid waits to travel with the run's result (see `Reporter`)."""


class Reporter:
    """Writes BidResult / RunResult / ComputeError rows for an execution's requester.

    An accepted direct bid (the node runs the execution at once; the requester approves
    nothing) is held for up to `HOLD_DIRECT_BID`: a run that ends within that time sends its
    bid and its result in one frame, in that order (issue 15: one message where there were
    two, and no requester work beside a short run). A longer run's bid is written when the
    hold ends. The state the bid reports is stored before it is held; only the message waits.
    Only batch and ops runs are held: a node that dies meanwhile fails them on restart and
    reports that instead, whereas a service or daemon run is resumed without a new bid (and
    never ends soon enough to share a frame anyway).
    """

    def __init__(self, store: ExecutionStore, node_id: str) -> None:
        self._store = store
        self._node_id = node_id
        self._held: dict[str, tuple[LocalExecution, dict[str, object],
                                    asyncio.TimerHandle | None]] = {}

    def _base(self, local: LocalExecution, events: list[Event]) -> dict[str, object]:
        ex = local.execution
        return {
            "ExecutionID": ex.id,
            "JobID": ex.job_id,
            "JobType": ex.job.type if ex.job is not None else "",
            "Events": [e.to_dict() for e in events],
        }

    def _send(self, local: LocalExecution, msg_type: str, payload: dict[str, object]) -> None:
        self._store.enqueue_message(local.requester, msg_type, payload,
                                    execution_id=local.id, source=self._node_id)

    def bid_result(self, local: LocalExecution, accepted: bool, events: list[Event], *,
                   hold: bool = False) -> None:
        """`hold`: an accepted direct bid, sent with the run's result or after the hold."""
        payload = self._base(local, events)
        payload["Accepted"] = accepted
        payload["Time"] = now_ns()  # when the node decided: the event's time, however late sent
        if hold and accepted:
            timer = asyncio.get_running_loop().call_later(HOLD_DIRECT_BID, self._release,
                                                          local.id)
            self._held[local.id] = (local, payload, timer)
            return
        self._send(local, msg.BID_RESULT, payload)

    def release_held(self) -> None:
        """Write every held bid now (the node is stopping)."""
        for execution_id in list(self._held):
            self._release(execution_id)

    def _release(self, execution_id: str) -> None:
        held = self._held.get(execution_id)
        try:
            with self._store.transaction():
                self._write_held(execution_id)
        except Exception as exc:  # e.g. a full disk: it goes with the run's result instead
            log.warning("could not write the bid of %s yet: %s", execution_id, exc)
            if held is not None:
                self._held[execution_id] = (held[0], held[1], None)

    def _write_held(self, execution_id: str) -> None:
        """The held bid of this execution, if any, as a row of the open transaction."""
        held = self._held.pop(execution_id, None)
        if held is not None:
            local, payload, timer = held
            if timer is not None:
                timer.cancel()
            self._send(local, msg.BID_RESULT, payload)

    def run_result(self, local: LocalExecution, events: list[Event]) -> None:
        self._write_held(local.id)  # the bid first, in the same frame
        ex = local.execution
        payload = self._base(local, events)
        payload["PublishResult"] = ex.published_result.to_dict()
        payload["RunCommandResult"] = ex.run_output.to_dict() if ex.run_output else None
        self._send(local, msg.RUN_RESULT, payload)

    def compute_error(self, local: LocalExecution, events: list[Event]) -> None:
        self._write_held(local.id)
        self._send(local, msg.COMPUTE_ERROR, self._base(local, events))


class OutboxSender:
    """Delivers outbox rows; woken by new rows, sleeps on backoff timers, never polls."""

    def __init__(self, store: ExecutionStore, transport: Transport, *,
                 initial_backoff: float = 0.2, max_backoff: float = 30.0,
                 request_timeout: float = 10.0) -> None:
        self._store = store
        self._transport = transport
        self._initial = initial_backoff
        self._max = max_backoff
        self._timeout = request_timeout
        self._wake = asyncio.Event()
        self._backoff: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        store.add_outbox_listener(self.wake)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                next_due = await self._pass()
            except Exception:  # keep delivering: a bad row must not stop the node's messages
                log.exception("outbox delivery pass failed")
                next_due = time.monotonic() + self._max
            timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
            if timeout == 0.0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _pass(self) -> float | None:
        """Send what is due; returns when the next retry is due (None: nothing waiting)."""
        rows = self._store.pending_messages(BATCH)
        by_peer: dict[str, list[OutboxMessage]] = defaultdict(list)
        for row in rows:
            by_peer[row.peer].append(row)
        now = time.monotonic()
        due = [p for p in by_peer if self._retry_at.get(p, 0.0) <= now]
        if len(due) == 1:  # the usual case: no task per peer
            sent = [await self._send_all(by_peer[due[0]])]
        else:
            sent = list(await asyncio.gather(*(self._send_all(by_peer[p]) for p in due)))
        waits = [self._retry_at[p] for p in by_peer if self._retry_at.get(p, 0.0) > now]
        if len(rows) == BATCH and any(sent):
            return time.monotonic()  # more rows than one batch: go again at once
        pending_after = [p for p, ok in zip(due, sent, strict=True) if not ok]
        waits += [self._retry_at[p] for p in pending_after]
        return min(waits) if waits else None

    async def _send_all(self, rows: list[OutboxMessage]) -> bool:
        """Send rows of one peer in order, several per `Batch` frame; False at the first one
        that failed."""
        for start in range(0, len(rows), msg.FRAME_MAX_MESSAGES):
            frame = rows[start:start + msg.FRAME_MAX_MESSAGES]
            if len(frame) == 1 or (results := await self._send_batch(frame)) is None:
                for row in frame:  # one row, or a peer that refused the batch as a whole
                    if not await self._send(row):
                        return False
                continue
            if results is False:
                return False
            for row, result in zip(frame, results, strict=True):
                if not self._settle(row, result):
                    return False
        return True

    async def _send_batch(self, rows: list[OutboxMessage]) -> list[bytes] | bool | None:
        """One frame for `rows`: each row's reply; False when the peer could not be reached
        (retried later); None when it refused the batch as a whole (send them one by one)."""
        row = rows[0]
        try:
            reply = await self._transport.request(
                row.peer, PROTOCOL_ORCHESTRATOR, msg.encode_batch([r.envelope for r in rows]),
                timeout=self._timeout)
        except TransportError as exc:  # unreachable or slow: retry until it answers
            self._store.record_attempt(row.seq, str(exc))
            self._defer(row.peer)
            return False
        try:
            results = msg.parse_batch_reply(reply, len(rows))
        except TransportError:
            return None
        return [orjson.dumps(result) for result in results]

    async def _send(self, row: OutboxMessage) -> bool:
        try:
            reply = await self._transport.request(
                row.peer, PROTOCOL_ORCHESTRATOR, row.envelope, timeout=self._timeout)
        except TransportError as exc:  # unreachable or slow: retry until it answers
            self._store.record_attempt(row.seq, str(exc))
            self._defer(row.peer)
            return False
        return self._settle(row, reply)

    def _settle(self, row: OutboxMessage, reply: bytes) -> bool:
        """Act on the peer's reply to one row: acknowledged, or refused (retried a few
        times); False when it is to be sent again later."""
        try:
            msg.parse_reply(reply)
        except TransportError as exc:  # it answered, but refused the message
            self._store.record_attempt(row.seq, str(exc))
            if row.attempts + 1 < MAX_REFUSALS:
                self._defer(row.peer)
                return False
            log.warning("dropping %s for %s after %d refusals: %s",
                        row.msg_type, row.execution_id, row.attempts + 1, exc)
        self._store.ack_message_later(row.seq)
        self._backoff.pop(row.peer, None)
        self._retry_at.pop(row.peer, None)
        return True

    def _defer(self, peer: str) -> None:
        backoff = min(self._max, self._backoff.get(peer, self._initial / 2) * 2)
        self._backoff[peer] = backoff
        self._retry_at[peer] = time.monotonic() + backoff

