"""The SQLite connection every store shares: WAL mode, `synchronous=NORMAL`, nestable
`BEGIN IMMEDIATE` transactions and schema migrations.

One `Database` holds one connection for the life of the store (no per-call connection opening).
Calls outside `transaction()` commit on their own (autocommit); inside, everything commits once
when the outermost block exits, or rolls back if it raises. Nested blocks use savepoints, so an
inner failure that the caller catches undoes only the inner work.

Migrations are a list of SQL scripts; script `i` brings the schema to version `i + 1`. The
version lives in `PRAGMA user_version`, or, when several stores share one file, in a
`schema_migrations` row named after the store (`migrate(scripts, name="nodes")`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bacalhau.errors import StoreError

BUSY_TIMEOUT_MS = 5000


class Database:
    """One SQLite file opened once; see the module docstring for the transaction rules."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._depth = 0

    @property
    def connection(self) -> sqlite3.Connection:
        return self.conn

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE … COMMIT` for the outermost block, a savepoint for nested ones."""
        depth = self._depth
        savepoint = f"sp{depth}"
        try:
            self.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a transaction on {self.path}: {exc}") from exc
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            self._depth -= 1
            if depth == 0:
                self.conn.execute("ROLLBACK")
            else:
                self.conn.execute(f"ROLLBACK TO {savepoint}")
                self.conn.execute(f"RELEASE {savepoint}")
            raise
        self._depth -= 1
        self.conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, (tuple(r) for r in rows))

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def query_one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, tuple(params)).fetchone()

    def schema_version(self, name: str | None = None) -> int:
        if name is None:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = self.conn.execute(
            "SELECT version FROM schema_migrations WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def migrate(self, scripts: Sequence[str], *, name: str | None = None) -> int:
        """Apply the scripts this file has not seen yet, each in its own transaction.

        Returns the schema version reached. A file newer than the code is refused.
        """
        if name is not None and not name.isidentifier():
            raise ValueError(f"migration name must be an identifier, got {name!r}")
        current = self.schema_version(name)
        if current > len(scripts):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this program knows "
                f"({len(scripts)}); upgrade bacalhau-py or use another data dir")
        for version, script in enumerate(scripts[current:], start=current + 1):
            if name is None:
                mark = f"PRAGMA user_version = {version};"
            else:
                mark = (f"INSERT INTO schema_migrations (name, version) VALUES ('{name}', "
                        f"{version}) ON CONFLICT(name) DO UPDATE SET version = excluded.version;")
            try:
                self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n;\n{mark}\nCOMMIT;")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise StoreError(
                    f"migration to schema version {version} of {self.path} failed: {exc}"
                ) from exc
        return max(current, len(scripts))
