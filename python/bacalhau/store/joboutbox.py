"""The outbox part of the orchestrator's job store (`bacalhau.store.jobstore.JobStore`, split
out by concern): messages to compute nodes, written in the same transaction as the state they
announce and sent by the dispatcher after commit.

Only committed rows are pending (`_outbox_committed`): in group-commit mode a turn's writes
commit together at the turn's end, and a dispatcher that looked before then must not send
what a crash could still undo (the outbox rule: nothing leaves a node that was not stored).

Outbox rows the dispatcher delivered are marked sent by `mark_sent_later`: the mark rides on
the next transaction (or a lone one after `SENT_FLUSH_DELAY`), and until then the rows are no
longer pending. A crash in between only sends them again, which receivers tolerate (every
message is idempotent at the compute node).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from bacalhau.models.codec import dumps
from bacalhau.models.timeutil import now_ns
from bacalhau.store.sqlite import Database

SENT_FLUSH_DELAY = 0.1  # seconds a delivered row may wait to be marked sent


@dataclass(slots=True)
class OutboxRow:
    id: int
    peer: str
    protocol: str
    payload: bytes
    attempts: int


class JobOutbox:
    """The outbox methods of `JobStore` (which provides `_db` and `_closed`)."""

    _db: Database
    _closed: bool

    def _init_outbox(self) -> None:
        self._sent_later: set[int] = set()   # delivered, marked sent with the next commit
        # per peer, the highest row id delivered: rows go to a peer in id order, so what is
        # pending for it lies above (the queries skip the delivered rows not yet marked sent)
        self._delivered_upto: dict[str, int] = {}
        self._loose_marks = False  # some rows were marked delivered without their peer
        self._flush_timer: asyncio.TimerHandle | None = None
        row = self._db.query_one("SELECT MAX(id) FROM outbox")
        self._outbox_committed = int(row[0] or 0) if row else 0  # the file holds committed
        row = self._db.query_one("SELECT COUNT(*) FROM outbox WHERE sent = 0")
        self._unsent = int(row[0]) if row else 0  # committed rows not yet marked sent
        self._db.add_before_commit(self._write_sent_marks)

    @property
    def unsent_count(self) -> int:
        """Committed outbox rows not yet delivered (kept in memory: the admission check of
        every submit reads it)."""
        return max(0, self._unsent - len(self._sent_later))

    def add_outbox(self, peer: str, protocol: str, payload: bytes) -> int:
        cur = self._db.execute(
            "INSERT INTO outbox (peer, protocol, payload, created) VALUES (?,?,?,?)",
            (peer, protocol, payload, now_ns()))
        row_id = int(cur.lastrowid or 0)
        self._db.after_commit(lambda: self._mark_committed(row_id))
        self._db.urgent()  # a message waits on this commit
        return row_id

    def _mark_committed(self, row_id: int) -> None:
        self._outbox_committed = max(self._outbox_committed, row_id)
        self._unsent += 1

    def _sent_committed(self, ids: list[int]) -> None:
        self._sent_later.difference_update(ids)
        self._unsent -= len(ids)
        if not self._sent_later:
            self._loose_marks = False

    def pending_outbox(self, peer: str | None = None, limit: int = 500) -> list[OutboxRow]:
        """Unsent rows in the order they were written (per peer when `peer` is given)."""
        skip = self._sent_later
        committed = self._outbox_committed
        if peer is None:
            rows = self._db.query(
                "SELECT id, peer, protocol, payload, attempts FROM outbox WHERE sent = 0 "
                "AND id <= ? ORDER BY id LIMIT ?", (committed, limit + len(skip)))
        else:
            rows = self._db.query(
                "SELECT id, peer, protocol, payload, attempts FROM outbox "
                "WHERE sent = 0 AND peer = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                (peer, self._delivered_upto.get(peer, 0), committed,
                 limit + len(skip) if self._loose_marks else limit))
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), r[4])
                for r in rows if r[0] not in skip][:limit]

    def pending_outbox_peers(self) -> list[str]:
        """Peers with committed rows not yet delivered."""
        rows = self._db.query(
            "SELECT peer, MAX(id) FROM outbox WHERE sent = 0 AND id <= ? GROUP BY peer",
            (self._outbox_committed,))
        upto = self._delivered_upto
        peers = [r[0] for r in rows if r[1] > upto.get(r[0], 0)]
        if self._loose_marks and self._sent_later:
            peers = [p for p in peers if self.pending_outbox(p, 1)]
        return peers

    def mark_sent(self, ids: Iterable[int]) -> None:
        cur = self._db.execute(
            "UPDATE outbox SET sent = 1 WHERE sent = 0 AND id IN (SELECT value FROM json_each(?))",
            (dumps(list(ids)).decode(),))
        changed = cur.rowcount
        self._db.after_commit(lambda: self._count_sent(changed))

    def _count_sent(self, n: int) -> None:
        self._unsent -= n

    def mark_sent_later(self, ids: Iterable[int], peer: str = "") -> None:
        """Mark delivered rows sent with the next commit (see the module docstring); `peer`:
        they are that peer's rows, delivered in order (its pending rows lie above them)."""
        ids = list(ids)
        if peer and ids:
            self._delivered_upto[peer] = max(self._delivered_upto.get(peer, 0), max(ids))
        elif ids:
            self._loose_marks = True
        self._sent_later.update(ids)
        if not self._sent_later or self._flush_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_sent()
            return
        self._flush_timer = loop.call_later(SENT_FLUSH_DELAY, self._flush_timer_fired)

    def _flush_timer_fired(self) -> None:
        self._flush_timer = None
        if not self._closed:
            self.flush_sent()

    def flush_sent(self) -> None:
        """Write the pending sent marks now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._sent_later:
            with self.transaction():
                pass  # the before-commit hook writes them

    def _write_sent_marks(self) -> None:
        if not self._sent_later:
            return
        ids = sorted(self._sent_later)
        try:
            self._db.execute(
                "UPDATE outbox SET sent = 1 WHERE id IN (SELECT value FROM json_each(?))",
                (dumps(ids).decode(),))
        except sqlite3.Error:  # the rows stay marked in memory; a later commit retries
            return
        self._db.after_commit(lambda: self._sent_committed(ids))

    def record_attempt(self, outbox_id: int) -> int:
        """Count a failed send; returns the attempts so far."""
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (outbox_id,))
        row = self._db.query_one("SELECT attempts FROM outbox WHERE id = ?", (outbox_id,))
        return int(row[0]) if row else 0

    def prune_outbox(self, older_than_ns: int) -> int:
        """Delete sent rows created before `older_than_ns`; returns how many."""
        cur = self._db.execute(
            "DELETE FROM outbox WHERE sent = 1 AND created < ?", (older_than_ns,))
        return cur.rowcount
