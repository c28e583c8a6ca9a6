"""The SQLite connection every store shares: WAL mode, `synchronous=NORMAL`, nestable
`BEGIN IMMEDIATE` transactions and schema migrations.

One `Database` holds one connection for the life of the store (no per-call connection opening).
Calls outside `transaction()` commit on their own (autocommit); inside, everything commits once
when the outermost block exits, or rolls back if it raises. Nested blocks use savepoints, so an
inner failure that the caller catches undoes only the inner work. Before-commit hooks let a
store add writes that may wait for the next transaction (see the outboxes). Stores keep
in-memory caches of what they wrote: `after_commit` runs a callback only once the write is
committed, and rollback listeners hear of every rollback, so a cache never holds what the file
does not.
WAL checkpoints run on a background thread (see `CHECKPOINT_EVERY`).

Group commit (issue 15), switched on per database by `enable_group_commit()` (the node does
it for its stores): while an event loop runs, the outermost transactions and autocommitted
writes of one loop turn share one SQLite transaction, each in a savepoint of its own (so a
failing one still undoes only itself), committed when the loop gets to the flush scheduled
when the group opened (the next turn: at low load nothing waits), or at once when the group
holds `max_items` transactions. Under load the flush waits for the loop to run dry: while
other callbacks are ready it steps back behind them (at most `max_delay` after the group
opened), so a busy process commits the work of many turns, e.g. of many jobs, at once; one
flusher per event loop serves every database of the process, so two stores never wait on
each other's flush. A group that nobody waits on yet (no `durable()` caller, no
outbox row: writes that only record local progress) may wait `lazy_delay` for one that is,
so that such writes ride on the next commit that matters instead of costing one of their
own; anything that must leave the process or be answered calls `urgent()` (or awaits
`durable()`). `after_commit` callbacks (the outbox notifications, the
caches) run after that real COMMIT, in order, so the outbox rule holds; a caller that must
not answer before its writes are durable (an API 200, a transport reply) awaits `durable()`.
Without a running loop (scripts, tests of the stores) every transaction commits on its own.

Every commit is counted (`COMMITS`, per file: a transaction's COMMIT, and each autocommitted
write outside one), so that the bench reports commits per job as a count, not an estimate
(issue 15); `bacalhau serve` writes the counts on SIGUSR1 (`bacalhau.node.write_counters`).

Migrations are a list of SQL scripts; script `i` brings the schema to version `i + 1`. The
version lives in `PRAGMA user_version`, or, when several stores share one file, in a
`schema_migrations` row named after the store (`migrate(scripts, name="nodes")`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from bacalhau.errors import StoreError

log = logging.getLogger(__name__)

COMMITS: dict[str, int] = {}
"""Commits so far in this process, by database file (see the module docstring)."""

GROUP_MAX_ITEMS = 256
"""A group commits at once when it holds this many transactions (and at the turn's end)."""
GROUP_MAX_DELAY = 0.002
"""Seconds a group may wait, after it opened, for a busy loop to run dry before it commits."""
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

BUSY_TIMEOUT_MS = 5000
# WAL checkpoints copy the log into the database file and fsync both: milliseconds that a
# committing connection would otherwise pay inline every ~1000 pages. A background thread
# with its own connection runs them instead, after every CHECKPOINT_EVERY commits but at most
# once per CHECKPOINT_INTERVAL seconds (a page written by many commits in between is copied
# once); SQLite's own automatic checkpoint stays on, at a high mark, as a safety net should
# it fall behind.
CHECKPOINT_EVERY = 64
CHECKPOINT_INTERVAL = 1.0
AUTOCHECKPOINT_PAGES = 10000


class _Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection and thread when asked."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint",
                                        daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None,
                                   timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        except sqlite3.Error as exc:  # pragma: no cover - the main connection opened it
            log.warning("checkpoint connection to %s failed: %s", self._path, exc)
            return
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a later one (or SQLite's own) catches up
                    log.debug("background checkpoint of %s failed: %s", self._path, exc)
        finally:
            conn.close()


class _GroupFlusher:
    """Commits the open groups of one event loop's databases once the loop has nothing else
    ready, or once the oldest group is `max_delay` old (see the module docstring). It steps
    back behind ready callbacks only while that pays: after a step that added no write (the
    loop is busy with reads, e.g. clients polling), it commits."""

    __slots__ = ("_changes", "_dbs", "_deadline", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dbs: list[Database] = []
        self._handle: asyncio.Handle | None = None
        self._deadline = 0.0
        self._changes = -1  # rows changed in the groups when it last stepped back

    def add(self, db: Database) -> None:
        deadline = self._loop.time() + db._group_delay
        if not self._dbs:
            self._deadline = deadline
            self._changes = -1
            self._handle = self._loop.call_soon(self._run)
        else:
            self._deadline = min(self._deadline, deadline)
        self._dbs.append(db)

    def discard(self, db: Database) -> None:
        if db in self._dbs:
            self._dbs.remove(db)
            if not self._dbs and self._handle is not None:
                self._handle.cancel()
                self._handle = None

    def _run(self) -> None:
        # other callbacks ready now (asyncio's run queue; absent elsewhere: flush at once)
        if len(getattr(self._loop, "_ready", ())) and self._loop.time() < self._deadline:
            changes = sum(db.conn.total_changes for db in self._dbs)
            if changes != self._changes:  # the first step, or the last one gathered writes
                self._changes = changes
                self._handle = self._loop.call_soon(self._run)
                return
        self._handle = None
        dbs, self._dbs = self._dbs, []
        for db in dbs:
            db.flush_group()


_FLUSHERS: dict[asyncio.AbstractEventLoop, _GroupFlusher] = {}


def _flusher(loop: asyncio.AbstractEventLoop) -> _GroupFlusher:
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        if len(_FLUSHERS) > 16:  # loops of finished asyncio.run() calls (tests, scripts)
            for old in [lp for lp in _FLUSHERS if lp.is_closed()]:
                del _FLUSHERS[old]
        flusher = _FLUSHERS[loop] = _GroupFlusher(loop)
    return flusher


class _Transaction:
    """The context manager of `Database.transaction()` (a class: cheaper than a generator)."""

    __slots__ = ("_db", "_depth", "_grouped")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._depth = 0
        self._grouped = False

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        depth = self._depth = db._depth
        try:
            if depth == 0 and (db._group_open or db._open_group()):
                self._grouped = True  # one savepoint of the turn's group (module doc)
                db.conn.execute("SAVEPOINT sp0")
            else:
                db.conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT sp{depth}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot start a transaction on {db.path}: {exc}") from exc
        db._depth = depth + 1
        return db.conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        db = self._db
        depth = self._depth
        db._depth = depth
        if exc_type is not None:
            if depth == 0 and not self._grouped:
                db.conn.execute("ROLLBACK")
            else:
                db.conn.execute(f"ROLLBACK TO sp{depth}")
                db.conn.execute(f"RELEASE sp{depth}")
            db._rolled_back(depth)
            return
        if depth or self._grouped:
            db.conn.execute(f"RELEASE sp{depth}")
            db._released(depth)
            if self._grouped:
                db._blocks_done()
                db._group_items += 1
                if db._group_items >= db._group_max:
                    db.flush_group()
            return
        try:
            if db._before_commit:
                db._depth = 1  # the hooks write inside this transaction
                try:
                    for hook in db._before_commit:
                        hook()
                finally:
                    db._depth = 0
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            db._rolled_back(0)
            raise
        db._committed()
        db._blocks_done()


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
        # (depth at registration, callback) run after the outermost COMMIT
        self._after_commit: list[tuple[int, Callable[[], None]]] = []
        self._commit_listeners: list[Callable[[], None]] = []
        self._rollback_listeners: list[Callable[[], None]] = []
        self._after_block: list[tuple[int, Callable[[], None]]] = []
        self._before_commit: list[Callable[[], None]] = []
        self._commits = 0
        self._checkpoint_at = 0.0
        self._group_commit = False
        self._group_max = GROUP_MAX_ITEMS
        self._group_open = False
        self._group_items = 0
        self._group_done: asyncio.Future[None] | None = None
        self._group_delay = GROUP_MAX_DELAY
        self._group_flusher: _GroupFlusher | None = None  # set while the group is urgent
        self._lazy_delay = 0.0
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._checkpointer: _Checkpointer | None = None
        self._background_checkpoints = self.path != ":memory:"
        if self._background_checkpoints:
            self.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    @property
    def connection(self) -> sqlite3.Connection:
        return self.conn

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def close(self) -> None:
        self.flush_group()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.conn.close()

    def transaction(self) -> _Transaction:
        """`BEGIN IMMEDIATE … COMMIT` for the outermost block, a savepoint for nested ones."""
        return _Transaction(self)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once what was written so far is committed: at once outside a
        transaction, else after the outermost COMMIT (of the group, in group mode); never if
        that part is rolled back."""
        if self._depth == 0 and not self._group_open:
            callback()
        else:
            self._after_commit.append((self._depth, callback))

    # ----- group commit (see the module docstring) --------------------------------------------

    def enable_group_commit(self, max_items: int = GROUP_MAX_ITEMS,
                            max_delay: float = GROUP_MAX_DELAY,
                            lazy_delay: float = 0.0) -> None:
        """Commit each event-loop turn's transactions together from now on (a busy loop's
        several turns, up to `max_delay` seconds). With `lazy_delay` > 0, a group nobody
        waits on (no `durable()`, no `urgent()`) waits up to that long for one that is."""
        self._group_commit = True
        self._group_max = max(1, max_items)
        self._group_delay = max(0.0, max_delay)
        self._lazy_delay = max(0.0, lazy_delay)

    def _open_group(self) -> bool:
        """Begin the turn's group if group commit is on and a loop runs; False otherwise."""
        if not self._group_commit:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self.conn.execute("BEGIN IMMEDIATE")
        self._group_open = True
        self._group_items = 0
        if self._lazy_delay > 0:
            self._lazy_timer = loop.call_later(self._lazy_delay, self.urgent)
        else:
            self.urgent()
        return True

    def urgent(self) -> None:
        """Something waits on the open group (a message to send, an answer to give): commit
        it once the loop runs dry, not after the lazy delay."""
        if not self._group_open or self._group_flusher is not None:
            return
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        self._group_flusher = _flusher(asyncio.get_running_loop())
        self._group_flusher.add(self)

    def flush_group(self) -> None:
        """Commit the open group now (a no-op without one)."""
        if not self._group_open or self._depth:
            return
        self._group_open = False
        if self._group_flusher is not None:
            self._group_flusher.discard(self)
            self._group_flusher = None
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        done, self._group_done = self._group_done, None
        try:
            if self._before_commit:
                self._depth = 1  # the hooks write inside this transaction
                try:
                    for hook in self._before_commit:
                        hook()
                finally:
                    self._depth = 0
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._rolled_back(-1)  # nothing of the group happened
            error = StoreError(f"group commit on {self.path} failed: {exc}")
            if done is not None and not done.done():
                done.set_exception(error)
            log.error("%s", error)
            return
        self._committed()
        if done is not None and not done.done():
            done.set_result(None)

    async def durable(self) -> None:
        """Return once everything written so far is committed (at once without a group);
        raises `StoreError` when the group failed to commit."""
        if not self._group_open:
            return
        if self._group_done is None:
            self._group_done = asyncio.get_running_loop().create_future()
        self.urgent()
        await asyncio.shield(self._group_done)

    def add_before_commit(self, hook: Callable[[], None]) -> None:
        """`hook()` runs inside every outermost transaction, just before its COMMIT; what it
        writes commits (or rolls back) with the transaction."""
        self._before_commit.append(hook)

    def add_commit_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` runs after every COMMIT (of a transaction, or of a group), on the
        thread that committed: for readers that wait for news (the long-polled history)."""
        self._commit_listeners.append(callback)

    def add_rollback_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` runs after every rollback (of a transaction or a savepoint)."""
        self._rollback_listeners.append(callback)

    def after_block(self, callback: Callable[[], None]) -> None:
        """Run `callback()` once the outermost `transaction()` block open now has succeeded
        (at once outside one; never if it rolls back). Unlike `after_commit`, it does not
        wait for a group's COMMIT: for in-memory views that the next transaction of this
        process must already see (what the planner just placed)."""
        if self._depth == 0:
            callback()
        else:
            self._after_block.append((self._depth, callback))

    def _blocks_done(self) -> None:
        callbacks, self._after_block = self._after_block, []
        for _, callback in callbacks:
            callback()

    def _rolled_back(self, depth: int) -> None:
        """The block entered at `depth` rolled back: drop what was registered inside it."""
        if self._after_commit:
            self._after_commit = [(d, cb) for d, cb in self._after_commit if d <= depth]
        if self._after_block:
            self._after_block = [(d, cb) for d, cb in self._after_block if d <= depth]
        for listener in self._rollback_listeners:
            listener()

    def _released(self, depth: int) -> None:
        """The savepoint entered at `depth` succeeded: its callbacks now belong to its parent
        (so that a later rollback of a sibling block keeps them)."""
        if self._after_commit:
            self._after_commit = [(min(d, depth), cb) for d, cb in self._after_commit]
        if self._after_block:
            self._after_block = [(min(d, depth), cb) for d, cb in self._after_block]

    def _committed(self) -> None:
        COMMITS[self.path] = COMMITS.get(self.path, 0) + 1
        callbacks, self._after_commit = self._after_commit, []
        for _, callback in callbacks:
            callback()
        for listener in self._commit_listeners:
            listener()
        if self._background_checkpoints:
            self._commits += 1
            if (self._commits >= CHECKPOINT_EVERY
                    and time.monotonic() - self._checkpoint_at >= CHECKPOINT_INTERVAL):
                self._commits = 0
                self._checkpoint_at = time.monotonic()
                if self._checkpointer is None:
                    self._checkpointer = _Checkpointer(self.path)
                self._checkpointer.request()

    def _grouping(self, sql: str) -> bool:
        """A write outside a transaction joins (or opens) the turn's group in group mode."""
        if self._group_open:
            return True
        return (self._group_commit and sql.lstrip()[:6].upper() in _WRITES
                and self._open_group())

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        if self._depth or self._grouping(sql):
            return self.conn.execute(sql, tuple(params))
        before = self.conn.total_changes
        cursor = self.conn.execute(sql, tuple(params))
        if self.conn.total_changes != before:  # an autocommitted write
            COMMITS[self.path] = COMMITS.get(self.path, 0) + 1
        return cursor

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        if self._depth or self._grouping(sql):
            return self.conn.executemany(sql, (tuple(r) for r in rows))
        before = self.conn.total_changes
        cursor = self.conn.executemany(sql, (tuple(r) for r in rows))
        if changed := self.conn.total_changes - before:  # one autocommit per changed row
            COMMITS[self.path] = COMMITS.get(self.path, 0) + changed
        return cursor

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
