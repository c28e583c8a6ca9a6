"""Commits are counted, not estimated (issue 15): every COMMIT of a transaction and every
autocommitted write of a `Database` adds one to `bacalhau.store.sqlite.COMMITS`; reads and
savepoints add nothing; `bacalhau.counters.counters` reports them (what SIGUSR1 writes)."""

from __future__ import annotations

from pathlib import Path

from bacalhau.counters import counters
from bacalhau.store.sqlite import COMMITS, Database


def test_commits_are_counted_per_file(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    start = COMMITS.get(db.path, 0)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        with db.transaction():  # a savepoint: part of the outer commit
            db.execute("INSERT INTO t VALUES (2)")
    assert COMMITS[db.path] == start + 1
    db.execute("INSERT INTO t VALUES (3)")  # autocommit
    db.query("SELECT * FROM t")  # a read commits nothing
    db.execute("UPDATE t SET x = x WHERE x = 99")  # changes no row
    assert COMMITS[db.path] == start + 2
    db.executemany("INSERT INTO t VALUES (?)", [(4,), (5,)])  # one autocommit per row
    assert COMMITS[db.path] == start + 4
    try:
        with db.transaction():
            db.execute("INSERT INTO t VALUES (6)")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert COMMITS[db.path] == start + 4  # a rollback is no commit
    db.close()


def test_counters_report_commits_and_no_transport_stats_without_one(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.execute("INSERT INTO t VALUES (1)")
    doc = counters(object())
    assert doc["sqlite_commits"][db.path] >= 1
    assert doc["sqlite_commits_total"] >= doc["sqlite_commits"][db.path]
    assert doc["transport"] == {}
    db.close()


async def test_evaluations_are_counted_by_trigger(tmp_path: Path) -> None:
    """What the scheduler processed shows in the counters, by trigger (the bench's
    evaluations per job)."""
    from bacalhau.counters import EVALUATIONS
    from bacalhau.orchestrator.broker import EvaluationBroker
    from bacalhau.orchestrator.planner import Planner
    from bacalhau.orchestrator.selection import Selection
    from bacalhau.orchestrator.worker import EvaluationWorker
    from bacalhau.store.jobstore import JobStore
    from tests.factories import make_evaluation, make_job

    store = JobStore(tmp_path / "jobs.db")
    job, _ = store.create_or_update_job(make_job())
    worker = EvaluationWorker(store, EvaluationBroker(), Planner(store, node_id="r"),
                              select=lambda j, e: Selection(matched=[], available=0),
                              is_alive=lambda n: True)
    before = counters(object())["evaluations"].get("job-register", 0)
    worker.process(make_evaluation(job, trigger="job-register"))
    assert counters(object())["evaluations"]["job-register"] == before + 1
    assert EVALUATIONS["job-register"] == before + 1
    store.close()
