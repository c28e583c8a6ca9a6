"""Group commit (issue 15): with `enable_group_commit()` and a running event loop, the
transactions of one loop turn share one COMMIT; each still rolls back alone; `after_commit`
callbacks run only after the real COMMIT; `durable()` waits for it; other connections see
nothing before it; the outbox shows only committed rows; without a loop nothing changes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bacalhau.store.executionstore import ExecutionStore
from bacalhau.store.sqlite import COMMITS, Database


def _db(tmp_path: Path) -> Database:
    db = Database(tmp_path / "g.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.enable_group_commit(max_items=100)
    return db


def _other_sees(db: Database) -> int:
    with sqlite3.connect(db.path) as other:
        return int(other.execute("SELECT COUNT(*) FROM t").fetchone()[0])


async def test_one_commit_per_turn_and_callbacks_after_it(tmp_path: Path) -> None:
    db = _db(tmp_path)
    start = COMMITS.get(db.path, 0)
    called: list[int] = []
    for i in range(5):
        with db.transaction():
            db.execute("INSERT INTO t VALUES (?)", (i,))
            db.after_commit(lambda i=i: called.append(i))
    db.execute("INSERT INTO t VALUES (99)")  # an autocommit write joins the group
    assert called == [] and _other_sees(db) == 0  # nothing committed yet
    await db.durable()
    assert called == [0, 1, 2, 3, 4]
    assert _other_sees(db) == 6
    assert COMMITS[db.path] == start + 1
    db.close()


async def test_a_failing_transaction_undoes_only_itself(tmp_path: Path) -> None:
    db = _db(tmp_path)
    called: list[str] = []
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        db.after_commit(lambda: called.append("kept"))
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO t VALUES (2)")
        db.after_commit(lambda: called.append("dropped"))
        raise RuntimeError("roll back")
    await db.durable()
    assert [r[0] for r in db.query("SELECT x FROM t")] == [1]
    assert called == ["kept"]
    db.close()


async def test_max_items_commits_at_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.enable_group_commit(max_items=2)
    start = COMMITS.get(db.path, 0)
    for i in range(4):
        with db.transaction():
            db.execute("INSERT INTO t VALUES (?)", (i,))
    assert COMMITS[db.path] == start + 2 and _other_sees(db) == 4
    db.close()


async def test_an_idle_loop_flushes_at_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(max_delay=60.0)  # only a loop with nothing else to do flushes
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
    await asyncio.wait_for(db.durable(), 5.0)  # no timer involved: the next idle turn
    assert _other_sees(db) == 1
    db.close()


async def test_a_busy_loop_commits_several_turns_at_once(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(max_delay=60.0)
    loop = asyncio.get_running_loop()
    start = COMMITS.get(db.path, 0)
    done = loop.create_future()

    def write(i: int) -> None:  # one write per turn, each turn queues the next
        with db.transaction():
            db.execute("INSERT INTO t VALUES (?)", (i,))
        if i < 5:
            loop.call_soon(write, i + 1)
        else:
            done.set_result(None)

    loop.call_soon(write, 1)
    await done
    await db.durable()
    assert _other_sees(db) == 5 and COMMITS[db.path] == start + 1
    db.close()


async def test_a_busy_loop_commits_by_max_delay(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(max_delay=0.0)  # no waiting behind other callbacks
    loop = asyncio.get_running_loop()
    start = COMMITS.get(db.path, 0)
    seen: list[int] = []

    def write(i: int) -> None:
        seen.append(_other_sees(db))  # what was committed before this turn
        with db.transaction():
            db.execute("INSERT INTO t VALUES (?)", (i,))
        if i < 3:
            loop.call_soon(write, i + 1)

    loop.call_soon(write, 1)
    while len(seen) < 3:
        await asyncio.sleep(0)  # yield until the chain ran (bounded: three turns)
    await db.durable()
    assert seen == [0, 1, 2] and COMMITS[db.path] == start + 3
    db.close()


def test_without_a_running_loop_every_transaction_commits(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
    assert _other_sees(db) == 1
    db.close()


async def test_the_outbox_shows_committed_rows_only(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "e.db")
    store.db.enable_group_commit()
    woken: list[int] = []
    store.add_outbox_listener(lambda: woken.append(len(store.pending_messages())))
    store.enqueue_message("n-req", "BidResult", {"x": 1}, execution_id="e-1")
    assert store.pending_messages() == []  # stored, not committed: nothing may leave
    await store.durable()
    assert [m.execution_id for m in store.pending_messages()] == ["e-1"]
    assert woken == [1]  # listeners hear of it after the commit, and see it then
    store.close()


async def test_a_lazy_group_waits_for_one_that_matters(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(lazy_delay=60.0)
    start = COMMITS.get(db.path, 0)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")  # local progress: nobody waits on it
    for _ in range(3):
        await asyncio.sleep(0)  # idle turns (three): a lazy group is not flushed by them
    assert _other_sees(db) == 0
    with db.transaction():
        db.execute("INSERT INTO t VALUES (2)")
    await db.durable()  # someone waits: both writes commit together, at the next idle turn
    assert _other_sees(db) == 2 and COMMITS[db.path] == start + 1
    db.close()


async def test_a_lazy_group_commits_after_its_delay(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(lazy_delay=0.01)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
    deadline = asyncio.get_running_loop().time() + 5.0
    while _other_sees(db) == 0:
        assert asyncio.get_running_loop().time() < deadline, "the lazy group never committed"
        await asyncio.sleep(0.005)  # poll until the lazy timer committed it (deadline above)
    db.close()


async def test_an_outbox_row_makes_its_group_urgent(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "e.db")
    store.db.enable_group_commit(lazy_delay=60.0)
    woken = asyncio.Event()
    store.add_outbox_listener(woken.set)
    store.enqueue_message("n-req", "BidResult", {"x": 1}, execution_id="e-1")
    await asyncio.wait_for(woken.wait(), 5.0)  # committed at the next idle turn, not in 60 s
    assert len(store.pending_messages()) == 1
    store.close()


async def test_after_block_runs_when_the_block_succeeds_not_at_the_commit(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(lazy_delay=60.0)
    seen: list[str] = []
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        db.after_block(lambda: seen.append("placed"))
        assert seen == []
    assert seen == ["placed"] and _other_sees(db) == 0  # before the group's COMMIT
    with pytest.raises(RuntimeError), db.transaction():
        db.after_block(lambda: seen.append("rolled back"))
        raise RuntimeError("the block fails")
    assert seen == ["placed"]
    await db.durable()
    db.close()


async def test_a_loop_busy_with_reads_does_not_hold_the_commit(tmp_path: Path) -> None:
    db = _db(tmp_path)
    db.enable_group_commit(max_delay=60.0)
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    done = loop.create_future()

    def read(i: int) -> None:  # a turn that writes nothing (a client polling, say)
        seen.append(_other_sees(db))
        if i < 6:
            loop.call_soon(read, i + 1)
        else:
            done.set_result(None)

    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
    loop.call_soon(read, 1)
    await done
    # the flush stepped back once, gathered no write, and committed: not after 60 s
    assert seen[-1] == 1 and seen.index(1) <= 3
    db.close()
