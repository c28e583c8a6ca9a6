"""Dispatcher: sends committed outbox rows to compute nodes and marks them sent.

Woken by the planner after each commit (and once at start, so rows left unsent by a restart
go out again). Rows go to each peer in the order they were written, so an AskForBid always
arrives before the BidAccepted that follows it: with `BATCH_TO_COMPUTE` the rows pending for a
peer travel together as one `Batch` frame (at most `FRAME_MAX_MESSAGES`; one row goes as
itself), applied in order there; a peer that refuses the batch gets them one by one.
Peers are served concurrently.
A peer that cannot be reached is retried with exponential backoff; a row that fails
`max_attempts` times is dropped with a warning. A reply of `{"OK": false}` counts as delivered:
the node heard the message and refused it, and resending would not change that; a refused
AskForBid or BidAccepted (a node that cannot store the execution, e.g. its disk is full) goes
to `on_refused(execution_id, node, reason)`, which fails that execution so the job is placed
again instead of waiting forever for a bid that will not come.
Delivered rows are marked sent with the store's next commit (`JobStore.mark_sent_later`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable

import orjson

from bacalhau.errors import TransportError
from bacalhau.store.joboutbox import OutboxRow
from bacalhau.store.jobstore import JobStore
from bacalhau.transport import Transport, messages

# messages whose refusal leaves the execution waiting for an answer that will never come
_MUST_BE_HEARD = (messages.ASK_FOR_BID, messages.BID_ACCEPTED)

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        store: JobStore,
        transport: Transport,
        *,
        request_timeout: float = 10.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 10.0,
        max_attempts: int = 30,
        on_refused: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.transport = transport
        self.request_timeout = request_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_attempts = max_attempts
        self.on_refused = on_refused
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._backoff: dict[str, float] = {}     # peer -> current delay
        self._resting: set[str] = set()          # peers waiting out their backoff
        self._timers: set[asyncio.TimerHandle] = set()
        self._idle = asyncio.Event()
        self._generation = 0                     # counts wakes: rows may have been written

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")
        self.wake()

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        tasks = [t for t in (self._task, *self._senders.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    def wake(self) -> None:
        """Look for unsent rows now (called after a commit that wrote some)."""
        self._generation += 1
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for peer in self.store.pending_outbox_peers():
                if peer not in self._senders and peer not in self._resting:
                    task = asyncio.create_task(self._send_peer(peer))
                    self._senders[peer] = task
                    task.add_done_callback(functools.partial(self._sender_done, peer))
            if not self._senders:
                self._idle.set()

    def _sender_done(self, peer: str, task: asyncio.Task[None]) -> None:
        if self._senders.get(peer) is task:  # it stopped early (backoff, error, cancel)
            del self._senders[peer]
            self._wake.set()  # rescan: rows may have been written as the sender finished

    async def _send_peer(self, peer: str) -> None:
        batch = 500
        while True:
            generation = self._generation
            rows = self.store.pending_outbox(peer, batch)
            sent: list[int] = []
            try:
                for frame in _frames(rows):
                    delivered = await self._deliver_frame(frame)
                    sent.extend(row.id for row in frame[:delivered])
                    if delivered < len(frame):
                        self._rest(peer)
                        return
                if rows:
                    self._backoff.pop(peer, None)
            finally:
                if sent:
                    self.store.mark_sent_later(sent, peer)
            if len(rows) < batch and generation == self._generation:
                # nothing was committed since the read: this peer is done. Leaving the
                # sender table in the same step means a later wake starts a new sender.
                del self._senders[peer]
                if not self._senders and not self._wake.is_set():
                    self._idle.set()
                return

    async def _deliver_frame(self, rows: list[OutboxRow]) -> int:
        """Send rows of one peer and protocol as one `Batch` frame (one row: as itself);
        returns how many, from the first, were delivered."""
        if len(rows) > 1 and BATCH_TO_COMPUTE:
            row = rows[0]
            try:
                reply = await self.transport.request(
                    row.peer, row.protocol, messages.encode_batch([r.payload for r in rows]),
                    timeout=self.request_timeout)
                results = messages.parse_batch_reply(reply, len(rows))
                if self.on_refused is not None:
                    for sent, result in zip(rows, results, strict=True):
                        self._check_refusal(sent, result)
                return len(rows)
            except TransportError:
                pass  # unreachable, or a peer without Batch: one by one, with their retries
        for index, row in enumerate(rows):
            if not await self._deliver(row):
                return index
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> bool:
        try:
            reply = await self.transport.request(row.peer, row.protocol, row.payload,
                                                 timeout=self.request_timeout)
            if self.on_refused is not None:
                self._check_refusal(row, _reply_doc(reply))
            return True
        except TransportError as exc:
            attempts = self.store.record_attempt(row.id)
            if attempts >= self.max_attempts:
                log.warning("dropping message %d to %s after %d attempts: %s",
                            row.id, row.peer, attempts, exc)
                self.store.mark_sent([row.id])
                return True
            return False

    def _check_refusal(self, row: OutboxRow, doc: object) -> None:
        if not isinstance(doc, dict) or doc.get("OK") is not False:
            return
        try:
            envelope = messages.decode(row.payload)
        except TransportError:
            return
        if envelope.type not in _MUST_BE_HEARD:
            return
        execution = envelope.payload.get("Execution") or {}
        execution_id = str(envelope.payload.get("ExecutionID") or execution.get("ID") or "")
        reason = str(doc.get("Error") or "refused")
        log.warning("node %s refused %s of execution %s: %s", row.peer, envelope.type,
                    execution_id, reason)
        if execution_id and self.on_refused is not None:
            try:
                self.on_refused(execution_id, row.peer, f"{envelope.type}: {reason}")
            except Exception:
                log.exception("failing execution %s after its refusal failed", execution_id)

    def _rest(self, peer: str) -> None:
        delay = self._backoff.get(peer, self.backoff_initial)
        self._backoff[peer] = min(delay * 2, self.backoff_max)
        self._resting.add(peer)
        timer: asyncio.TimerHandle | None = None

        def retry() -> None:
            self._resting.discard(peer)
            if timer is not None:
                self._timers.discard(timer)
            self.wake()

        timer = asyncio.get_running_loop().call_later(delay, retry)
        self._timers.add(timer)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is being sent (tests, shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)


BATCH_TO_COMPUTE = True
"""Off: with Batch frames toward compute nodes, AskForBid/BidAccepted arrive faster than the
nodes' heartbeats report their queues, the over-subscription ranker then sees every node
busy and batch jobs without a QueueTimeout fail ("not enough nodes"; 56 of 300 in the
throughput bench). Turn on once the requester counts its own assignments since a node's last
report (issue 15). Compute nodes batch toward requesters, and both ends accept Batch."""


def _frames(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
    """Consecutive rows of the same protocol, at most `FRAME_MAX_MESSAGES` per frame."""
    frames: list[list[OutboxRow]] = []
    for row in rows:
        if (frames and frames[-1][0].protocol == row.protocol
                and len(frames[-1]) < messages.FRAME_MAX_MESSAGES):
            frames[-1].append(row)
        else:
            frames.append([row])
    return frames


def _reply_doc(reply: bytes) -> object:
    """A reply's JSON document, or None when it is not JSON (then it is no refusal)."""
    try:
        return orjson.loads(reply)
    except orjson.JSONDecodeError:
        return None
