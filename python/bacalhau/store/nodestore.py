"""Persisted node states of the orchestrator: one row per node in the orchestrator's database
file (`<DataDir>/orchestrator/jobs.db`), holding the NodeInfo JSON, the membership and the
connection state (reference §1.4).

The table lives next to the job store's tables; its schema version is the `nodes` row of
`schema_migrations` (`Database.migrate(..., name="nodes")`), so it evolves independently of the
job store's `PRAGMA user_version`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from bacalhau.models.codec import dumps, loads
from bacalhau.models.node import ConnectionState, NodeInfo, NodeState
from bacalhau.models.timeutil import now_ns
from bacalhau.store.sqlite import Database

SCHEMA_V1 = """
CREATE TABLE nodes (
    node_id     TEXT PRIMARY KEY,
    node_type   TEXT NOT NULL,
    membership  TEXT NOT NULL,
    status      TEXT NOT NULL,
    info        BLOB NOT NULL,
    connection  BLOB NOT NULL,
    modify_time INTEGER NOT NULL
);
"""

MIGRATIONS = [SCHEMA_V1]
MIGRATION_NAME = "nodes"


class NodeStore:
    """NodeState rows. Give it the orchestrator's `Database` to share its connection (and its
    transactions), or a path to open the file on its own."""

    def __init__(self, db: Database | str | Path) -> None:
        if isinstance(db, Database):
            self._db = db
            self._owned = False
        else:
            path = Path(db)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Database(path)
            self._owned = True
        self._db.migrate(MIGRATIONS, name=MIGRATION_NAME)

    @property
    def db(self) -> Database:
        return self._db

    def close(self) -> None:
        """Close the database if this store opened it."""
        if self._owned:
            self._db.close()

    def transaction(self) -> AbstractContextManager[Any]:
        """Group calls into one `BEGIN IMMEDIATE … COMMIT` (nestable)."""
        return self._db.transaction()

    def _exec(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._db.connection.execute(sql, tuple(params))

    def get(self, node_id: str) -> NodeState | None:
        row = self._exec("SELECT info, membership, connection FROM nodes WHERE node_id = ?",
                         (node_id,)).fetchone()
        return _state(row) if row is not None else None

    def list(self) -> list[NodeState]:
        """Every stored node, ordered by id."""
        rows = self._exec(
            "SELECT info, membership, connection FROM nodes ORDER BY node_id").fetchall()
        return [_state(r) for r in rows]

    def put(self, state: NodeState) -> None:
        """Insert or replace one node."""
        self.put_many((state,))

    def put_many(self, states: Iterable[NodeState]) -> None:
        """Insert or replace several nodes in one transaction."""
        now = now_ns()
        rows = [(s.info.node_id, s.info.node_type, s.membership, s.connection_state.status,
                 dumps(s.info.to_dict()), dumps(s.connection_state.to_dict()), now)
                for s in states]
        if not rows:
            return
        with self._db.transaction():
            self._db.connection.executemany(
                "INSERT INTO nodes (node_id, node_type, membership, status, info, connection, "
                "modify_time) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET "
                "node_type = excluded.node_type, membership = excluded.membership, "
                "status = excluded.status, info = excluded.info, "
                "connection = excluded.connection, modify_time = excluded.modify_time",
                rows)

    def delete(self, node_id: str) -> bool:
        """Remove a node; False when it was not stored."""
        with self._db.transaction():
            cur = self._exec("DELETE FROM nodes WHERE node_id = ?", (node_id,))
        return cur.rowcount > 0


def _state(row: tuple[Any, ...]) -> NodeState:
    info, membership, connection = row
    return NodeState(
        info=NodeInfo.from_dict(loads(info), "NodeState.Info"),
        membership=str(membership),
        connection_state=ConnectionState.from_dict(loads(connection),
                                                   "NodeState.ConnectionState"),
    )
