"""The compute node's execution store: `<DataDir>/compute/executions.db` (SQLite, WAL).

Three tables:
- `executions`: one row per execution this node was asked to bid on: the Execution JSON (with
  its Job), the compute state as an indexed column, the node that asked (the requester, who
  gets every message about it) and a local revision bumped on each change;
- `execution_events`: the events of each execution, in order;
- `outbox`: messages to requesters (BidResult, RunResult, ComputeError) as encoded envelopes,
  deleted once the requester acknowledged them. A state change and its message are written in
  one transaction, so a message is never lost nor sent for a change that was not stored.

Every state change is conditional (`expected` states, optionally a revision): a cancel racing
a finishing run cannot move an execution backwards; the loser gets `StateConflictError`.

Acknowledged outbox rows are deleted by `ack_message_later`: the delete rides on the next
transaction (or a lone one after `ACK_FLUSH_DELAY`), and until then the rows are no longer
pending. A crash in between only sends them again, which requesters tolerate (they ignore
messages that change nothing).

Reads are served from a cache of the executions this store wrote (filled once the write is
committed), keyed by id together with the exact bytes stored: a read still fetches the row and
parses the JSON only when the bytes differ from the cached ones. Callers get their own copy.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau.errors import NotFoundError, StoreError
from bacalhau.models import Event, Execution, ExecutionState, ExecutionStateType
from bacalhau.models.codec import dumps, loads
from bacalhau.models.timeutil import now_ns
from bacalhau.store.sqlite import Database
from bacalhau.transport import messages

SCHEMA_V1 = """
CREATE TABLE executions (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL,
    state       INTEGER NOT NULL,
    requester   TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    data        BLOB NOT NULL,
    create_time INTEGER NOT NULL,
    modify_time INTEGER NOT NULL
);
CREATE INDEX executions_by_state ON executions (state);
CREATE INDEX executions_by_job ON executions (job_id);
CREATE TABLE execution_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    data         BLOB NOT NULL
);
CREATE INDEX execution_events_by_execution ON execution_events (execution_id, seq);
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    peer         TEXT NOT NULL,
    msg_type     TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    envelope     BLOB NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    create_time  INTEGER NOT NULL
);
"""

MIGRATIONS = [SCHEMA_V1]

CACHE_SIZE = 1024
ACK_FLUSH_DELAY = 0.1  # seconds an acknowledged row may wait to be deleted

ACTIVE_STATES = (
    ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING, ExecutionStateType.PUBLISHING,
)


class StateConflictError(StoreError):
    """A conditional update found the execution in a state (or revision) it did not expect."""

    code = "ResourceInUse"
    status = 409


@dataclass(slots=True)
class LocalExecution:
    """An execution as this compute node knows it."""

    execution: Execution
    requester: str
    revision: int

    @property
    def id(self) -> str:
        return self.execution.id

    @property
    def state(self) -> ExecutionStateType:
        return self.execution.compute_state_type


@dataclass(slots=True)
class OutboxMessage:
    seq: int
    peer: str
    msg_type: str
    execution_id: str
    envelope: bytes
    attempts: int


class ExecutionStore:
    """Executions, their events and the outbox of one compute node."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = Database(self.path)
        self._db.migrate(MIGRATIONS)
        self._listeners: list[Callable[[], None]] = []
        self._cache: dict[str, tuple[bytes, Execution]] = {}  # id -> (stored bytes, parsed)
        self._acked_later: set[int] = set()  # acknowledged, deleted with the next commit
        self._flush_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._db.add_before_commit(self._delete_acked)
        # only committed rows are pending (group commit: see bacalhau.store.joboutbox)
        row = self._db.query_one("SELECT MAX(seq) FROM outbox")
        self._outbox_committed = int(row[0] or 0) if row else 0

    @property
    def db(self) -> Database:
        return self._db

    async def durable(self) -> None:
        """Return once everything written so far is committed (see `Database.durable`)."""
        await self._db.durable()

    def close(self) -> None:
        if not self._closed:
            self.flush_acks()
            self._closed = True
        self._db.close()

    def transaction(self) -> AbstractContextManager[Any]:
        """Group calls into one `BEGIN IMMEDIATE … COMMIT` (nestable)."""
        return self._db.transaction()

    def _exec(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._db.connection.execute(sql, tuple(params))

    # ----- executions ---------------------------------------------------------------------

    def create(
        self, execution: Execution, requester: str, events: Iterable[Event] = ()
    ) -> bool:
        """Store a new execution; False (and nothing written) when the id is already known."""
        now = now_ns()
        with self.transaction():
            row = self._exec("SELECT 1 FROM executions WHERE id = ?", (execution.id,)).fetchone()
            if row is not None:
                return False
            data = dumps(execution.to_dict())
            self._exec(
                "INSERT INTO executions (id, job_id, state, requester, revision, data, "
                "create_time, modify_time) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (execution.id, execution.job_id, int(execution.compute_state.state_type),
                 requester, data, now, now),
            )
            self._add_events(execution.id, events)
            self._remember(execution, data)
        return True

    def _remember(self, execution: Execution, data: bytes) -> None:
        """Cache what was just written. At once, not at the (group's) commit: an entry is
        only used while the stored bytes equal it, so a rollback is harmless, and the next
        read of the same execution, usually in the same group, skips parsing it."""
        if len(self._cache) >= CACHE_SIZE and execution.id not in self._cache:
            del self._cache[next(iter(self._cache))]
        self._cache[execution.id] = (data, execution.copy())

    def _local(self, row: Any) -> LocalExecution:
        """A LocalExecution from a `(id, data, requester, revision)` row."""
        data = row[1]
        cached = self._cache.get(row[0])
        if cached is not None and cached[0] == data:
            execution = cached[1].copy()
        else:
            execution = Execution.from_dict(loads(data))
        return LocalExecution(execution=execution, requester=row[2], revision=int(row[3]))

    def get(self, execution_id: str) -> LocalExecution | None:
        row = self._exec(
            "SELECT id, data, requester, revision FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return self._local(row) if row is not None else None

    def state_of(self, execution_id: str) -> ExecutionStateType | None:
        """The execution's state alone (None if unknown): no record is read or copied."""
        row = self._exec("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return ExecutionStateType(row[0]) if row is not None else None

    def require(self, execution_id: str) -> LocalExecution:
        local = self.get(execution_id)
        if local is None:
            raise NotFoundError(f"execution {execution_id} not found on this node",
                                component="ExecutionStore")
        return local

    def list(self, states: Collection[ExecutionStateType] | None = None) -> list[LocalExecution]:
        """Executions in creation order, optionally only those in `states`."""
        if states is None:
            rows = self._exec(
                "SELECT id, data, requester, revision FROM executions ORDER BY create_time, id")
        else:
            marks = ",".join("?" * len(states))
            rows = self._exec(
                f"SELECT id, data, requester, revision FROM executions WHERE state IN ({marks}) "
                "ORDER BY create_time, id", [int(s) for s in states])
        return [self._local(r) for r in rows.fetchall()]

    def update(
        self,
        execution_id: str,
        new_state: ExecutionStateType,
        *,
        expected: Collection[ExecutionStateType] | None = None,
        expected_revision: int | None = None,
        message: str = "",
        details: dict[str, str] | None = None,
        events: Iterable[Event] = (),
        mutate: Callable[[Execution], None] | None = None,
    ) -> LocalExecution:
        """Move an execution to `new_state` if it is in one of `expected` (any, when None).

        `mutate` may change other fields (allocated resources, run output, published result)
        in the same write. Raises NotFoundError or StateConflictError.
        """
        with self.transaction():
            local = self.require(execution_id)
            current = local.state
            if expected is not None and current not in expected:
                names = ", ".join(s.label for s in expected)
                raise StateConflictError(
                    f"execution {execution_id} is {current.label}, expected one of: {names}",
                    component="ExecutionStore",
                )
            if expected_revision is not None and local.revision != expected_revision:
                raise StateConflictError(
                    f"execution {execution_id} is at revision {local.revision}, "
                    f"expected {expected_revision}", component="ExecutionStore")
            execution = local.execution
            execution.compute_state = ExecutionState(
                state_type=int(new_state), message=message, details=dict(details or {}))
            if mutate is not None:
                mutate(execution)
            execution.modify_time = now_ns()
            data = dumps(execution.to_dict())
            self._exec(
                "UPDATE executions SET state = ?, revision = revision + 1, data = ?, "
                "modify_time = ? WHERE id = ?",
                (int(new_state), data, execution.modify_time, execution_id),
            )
            self._add_events(execution_id, events)
            self._remember(execution, data)
            local.revision += 1
        return local

    # ----- events -------------------------------------------------------------------------

    def add_events(self, execution_id: str, events: Iterable[Event]) -> None:
        with self.transaction():
            self._add_events(execution_id, events)

    def _add_events(self, execution_id: str, events: Iterable[Event]) -> None:
        rows = [(execution_id, dumps(event.to_dict())) for event in events]
        if len(rows) == 1:
            self._exec("INSERT INTO execution_events (execution_id, data) VALUES (?, ?)",
                       rows[0])
        elif rows:
            self._db.connection.executemany(
                "INSERT INTO execution_events (execution_id, data) VALUES (?, ?)", rows)

    def events(self, execution_id: str) -> list[Event]:
        rows = self._exec(
            "SELECT data FROM execution_events WHERE execution_id = ? ORDER BY seq",
            (execution_id,)).fetchall()
        return [Event.from_dict(loads(r[0])) for r in rows]

    # ----- outbox -------------------------------------------------------------------------

    def enqueue_message(
        self, peer: str, msg_type: str, payload: dict[str, Any], *, execution_id: str = "",
        source: str = "",
    ) -> int:
        """Add a message for `peer` to the outbox; listeners are told after the write."""
        envelope = messages.encode(msg_type, payload, source=source)
        with self.transaction():
            cursor = self._exec(
                "INSERT INTO outbox (peer, msg_type, execution_id, envelope, create_time) "
                "VALUES (?, ?, ?, ?, ?)", (peer, msg_type, execution_id, envelope, now_ns()))
            seq = int(cursor.lastrowid or 0)
            self._db.after_commit(lambda: self._mark_committed(seq))
            self._db.after_commit(self._notify)
        self._db.urgent()  # a message waits on this commit
        return seq

    def _mark_committed(self, seq: int) -> None:
        self._outbox_committed = max(self._outbox_committed, seq)

    def pending_messages(self, limit: int = 100) -> list[OutboxMessage]:
        skip = self._acked_later
        rows = self._exec(
            "SELECT seq, peer, msg_type, execution_id, envelope, attempts FROM outbox "
            "WHERE seq <= ? ORDER BY seq LIMIT ?",
            (self._outbox_committed, limit + len(skip))).fetchall()
        return [OutboxMessage(int(r[0]), r[1], r[2], r[3], bytes(r[4]), int(r[5]))
                for r in rows if r[0] not in skip][:limit]

    def ack_message(self, seq: int) -> None:
        with self.transaction():
            self._exec("DELETE FROM outbox WHERE seq = ?", (seq,))

    def ack_message_later(self, seq: int) -> None:
        """Delete an acknowledged row with the next commit (see the module docstring)."""
        self._acked_later.add(seq)
        if self._flush_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_acks()
            return
        self._flush_timer = loop.call_later(ACK_FLUSH_DELAY, self._flush_timer_fired)

    def _flush_timer_fired(self) -> None:
        self._flush_timer = None
        if not self._closed:
            self.flush_acks()

    def flush_acks(self) -> None:
        """Delete the acknowledged rows now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._acked_later:
            with self.transaction():
                pass  # the before-commit hook deletes them

    def _delete_acked(self) -> None:
        if not self._acked_later:
            return
        seqs = sorted(self._acked_later)
        try:
            self._exec("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))",
                       (dumps(seqs).decode(),))
        except sqlite3.Error:  # they stay acknowledged in memory; a later commit retries
            return
        self._db.after_commit(lambda: self._acked_later.difference_update(seqs))

    def record_attempt(self, seq: int, error: str) -> None:
        with self.transaction():
            self._exec("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                       (error[:1000], seq))

    def add_outbox_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` runs after each enqueued message (it must not block)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

