"""JobStore: jobs and versions, lookups, paging, executions, history filters, evaluations,
outbox, revision checks and persistence across reopen."""

from __future__ import annotations

import pytest

from bacalhau.errors import ConflictError, MultipleMatchesError, NotFoundError, ValidationError
from bacalhau.models import EvalStatus, Event, JobState, JobStateType
from bacalhau.models.spec import parse_selector
from bacalhau.store.jobstore import JobStore, RevisionConflictError
from bacalhau.store.sqlite import Database
from tests.factories import Compute, Desired, make_evaluation, make_execution, make_job

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    yield s
    s.close()


def test_database_uses_wal_and_nested_transactions(tmp_path):
    db = Database(tmp_path / "x.db")
    assert db.query_one("PRAGMA journal_mode")[0] == "wal"
    assert db.migrate(["CREATE TABLE t (x INTEGER)"]) == 1
    assert db.migrate(["CREATE TABLE t (x INTEGER)"]) == 1  # already applied
    with db.transaction():
        db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(KeyError), db.transaction():
            db.execute("INSERT INTO t VALUES (2)")
            raise KeyError
    assert [r[0] for r in db.query("SELECT x FROM t")] == [1]
    db.close()


def test_create_then_update_by_name_makes_new_version(store):
    job, previous = store.create_or_update_job(make_job(name="hello"))
    assert previous is None and job.version == 1 and job.state_type == JobStateType.PENDING
    with pytest.raises(ConflictError, match=r"no changes detected for job hello\. Use the --force"):
        store.create_or_update_job(make_job(name="hello"))
    forced, _ = store.create_or_update_job(make_job(name="hello"), force=True)
    assert forced.id == job.id and forced.version == 2
    changed = make_job(name="hello", priority=5)
    v3, prev = store.create_or_update_job(changed)
    assert (v3.id, v3.version, prev.version) == (job.id, 3, 2)
    assert v3.create_time == job.create_time
    assert [j.version for j in store.job_versions(job.id)] == [1, 2, 3]
    assert store.get_job_version(job.id, 1).priority == 0
    assert store.get_job_version(job.id, 3).priority == 5
    with pytest.raises(NotFoundError):
        store.get_job_version(job.id, 9)


def test_lookup_by_name_id_and_prefix(store):
    a, _ = store.create_or_update_job(make_job(id="j-aaaa1111-0000-4000-8000-000000000001"))
    b, _ = store.create_or_update_job(make_job(id="j-aaaa2222-0000-4000-8000-000000000002",
                                               name="named"))
    assert store.find_job("named").id == b.id
    assert store.find_job(a.id).id == a.id
    assert store.find_job("j-aaaa1").id == a.id
    with pytest.raises(MultipleMatchesError, match="multiple jobs found for id j-aaaa"):
        store.find_job("j-aaaa")
    with pytest.raises(NotFoundError, match="job not found: j-zzz"):
        store.find_job("j-zzz")
    with pytest.raises(NotFoundError):
        store.find_job("named", "other-namespace")


def test_list_paging_order_and_labels(store):
    ids = []
    for i in range(5):
        job, _ = store.create_or_update_job(make_job(labels={"i": str(i), "even": str(i % 2 == 0)}))
        ids.append(job.id)
    page, more = store.list_jobs(limit=2)
    assert [j.id for j in page] == ids[:2] and more
    page, more = store.list_jobs(limit=2, offset=4)
    assert [j.id for j in page] == ids[4:] and not more
    page, _ = store.list_jobs(reverse=True)
    assert [j.id for j in page] == ids[::-1]
    store.update_job_state(ids[0], JobState("Running"))
    page, _ = store.list_jobs(order_by="modified_at", reverse=True, limit=1)
    assert page[0].id == ids[0]
    page, more = store.list_jobs(selector=parse_selector("even=True"), limit=2)
    assert [j.id for j in page] == [ids[0], ids[2]] and more
    with pytest.raises(ValidationError, match="order_by"):
        store.list_jobs(order_by="id")
    assert store.list_jobs(namespace="nope")[0] == []


def test_revision_checks(store):
    job, _ = store.create_or_update_job(make_job())
    updated = store.update_job_state(job.id, JobState("Running"), expected_revision=1)
    assert updated.revision == 2
    with pytest.raises(RevisionConflictError):
        store.update_job_state(job.id, JobState("Failed"), expected_revision=1)
    e = make_execution(job, "n-1")
    store.create_execution(e)
    e.compute_state.state_type = Compute.ASK_FOR_BID_ACCEPTED
    store.update_execution(e, expected_revision=1)
    assert store.get_execution(e.id).revision == 2
    with pytest.raises(RevisionConflictError):
        store.update_execution(e, expected_revision=1)


def test_transaction_rolls_back_everything(store):
    job, _ = store.create_or_update_job(make_job())
    with pytest.raises(RuntimeError), store.transaction():
        store.create_execution(make_execution(job, "n-1"))
        store.add_history(job.id, 1, Event.new("Submission", "x"))
        raise RuntimeError("boom")
    assert store.get_executions(job.id) == []
    assert store.job_history(job.id) == []


def test_executions_by_version_and_order(store):
    job, _ = store.create_or_update_job(make_job())
    e1 = make_execution(job, "n-1", create_time=1)
    e2 = make_execution(job, "n-2", create_time=2, job_version=2)
    for e in (e1, e2):
        store.create_execution(e)
    assert [e.id for e in store.get_executions(job.id)] == [e1.id, e2.id]
    assert [e.id for e in store.get_executions(job.id, reverse=True)] == [e2.id, e1.id]
    assert [e.id for e in store.get_executions(job.id, job_version=2)] == [e2.id]
    assert [e.id for e in store.active_executions_on_node("n-1")] == [e1.id]
    e1.desired_state.state_type = Desired.STOPPED
    store.update_execution(e1, expected_revision=1)
    assert store.active_executions_on_node("n-1") == []


def test_history_seq_and_filters(store):
    job, _ = store.create_or_update_job(make_job())
    store.add_history(job.id, 1, Event.new("Submission", "Job submitted"))
    store.add_history(job.id, 1, Event.new("Scheduling", "exec a"), "e-aaaa-1")
    store.add_history(job.id, 2, Event.new("Scheduling", "exec b"), "e-bbbb-2")
    store.add_history(job.id, 2, Event.new("State Update", "done"))
    items = store.job_history(job.id)
    assert [h.seq_num for h in items] == [1, 2, 3, 4]
    assert [h.event.message for h in store.job_history(job.id, event_type="job")] == [
        "Job submitted", "done"]
    assert [h.execution_id for h in store.job_history(job.id, event_type="execution")] == [
        "e-aaaa-1", "e-bbbb-2"]
    assert [h.event.message for h in store.job_history(job.id, execution_id="e-bb")] == [
        "exec b"]
    assert [h.seq_num for h in store.job_history(job.id, job_version=2)] == [3, 4]
    assert [h.seq_num for h in store.job_history(job.id, offset=1, limit=2)] == [2, 3]
    assert store.job_history(job.id, since=4_000_000_000) == []
    with pytest.raises(ValidationError):
        store.job_history(job.id, event_type="bogus")


def test_evaluations_and_outbox(store):
    job, _ = store.create_or_update_job(make_job())
    ev1, ev2 = make_evaluation(job), make_evaluation(job)
    with store.transaction():
        store.create_evaluation(ev1)
        store.create_evaluation(ev2)
        store.set_evaluation_status([ev1.id], EvalStatus.COMPLETE)
    assert [e.id for e in store.pending_evaluations()] == [ev2.id]
    assert store.get_evaluation(ev1.id).status == EvalStatus.COMPLETE
    a = store.add_outbox("n-1", "/p", b"one")
    b = store.add_outbox("n-2", "/p", b"two")
    c = store.add_outbox("n-1", "/p", b"three")
    assert [r.id for r in store.pending_outbox()] == [a, b, c]
    assert [r.payload for r in store.pending_outbox("n-1")] == [b"one", b"three"]
    assert sorted(store.pending_outbox_peers()) == ["n-1", "n-2"]
    store.mark_sent([a, b])
    assert [r.id for r in store.pending_outbox()] == [c]
    assert store.record_attempt(c) == 1


def test_finish_evaluation_writes_the_held_object_and_leaves_it_as_it_is(store):
    job, _ = store.create_or_update_job(make_job())
    held, other = make_evaluation(job), make_evaluation(job)
    with store.transaction():
        store.create_evaluation(held)
        store.create_evaluation(other)
    before = held.to_dict()
    with store.transaction():
        store.finish_evaluation(held, EvalStatus.COMPLETE)
    assert held.to_dict() == before  # the caller's object is not changed
    stored = store.get_evaluation(held.id)
    assert stored.status == EvalStatus.COMPLETE
    assert stored.modify_time >= held.modify_time
    assert {k: v for k, v in stored.to_dict().items() if k not in ("Status", "ModifyTime")} == {
        k: v for k, v in before.items() if k not in ("Status", "ModifyTime")}
    assert [e.id for e in store.pending_evaluations()] == [other.id]
    with store.transaction():  # a rolled-back finish leaves the evaluation pending
        store.finish_evaluation(other, EvalStatus.FAILED)
        with pytest.raises(RuntimeError), store.transaction():
            store.finish_evaluation(held, EvalStatus.FAILED)
            raise RuntimeError("undo")
    assert store.get_evaluation(held.id).status == EvalStatus.COMPLETE
    assert store.get_evaluation(other.id).status == EvalStatus.FAILED


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "jobs.db"
    s = JobStore(path)
    job, _ = s.create_or_update_job(make_job(name="keep"))
    e = make_execution(job, "n-1")
    s.create_execution(e)
    ev = make_evaluation(job)
    s.create_evaluation(ev)
    s.add_history(job.id, 1, Event.new("Submission", "Job submitted"))
    row = s.add_outbox("n-1", "/p", b"payload")
    s.close()
    s = JobStore(path)
    assert s.find_job("keep").id == job.id
    assert s.get_execution(e.id).node_id == "n-1"
    assert [x.id for x in s.pending_evaluations()] == [ev.id]
    assert s.job_history(job.id)[0].event.message == "Job submitted"
    assert [r.id for r in s.pending_outbox()] == [row]
    s.close()


def test_prune_keeps_pending_and_unsent(store):
    job, _ = store.create_or_update_job(make_job())
    done, pending = make_evaluation(job, create_time=1), make_evaluation(job, create_time=1)
    store.create_evaluation(done)
    store.create_evaluation(pending)
    store.set_evaluation_status([done.id], EvalStatus.COMPLETE)
    assert store.prune_evaluations(older_than_ns=2) == 1
    assert [e.id for e in store.pending_evaluations()] == [pending.id]
    sent_row, unsent_row = store.add_outbox("n-1", "/p", b"a"), store.add_outbox("n-1", "/p", b"b")
    store.mark_sent([sent_row])
    assert store.prune_outbox(older_than_ns=2**62) == 1
    assert [r.id for r in store.pending_outbox()] == [unsent_row]


def test_database_commit_hooks(tmp_path):
    db = Database(tmp_path / "x.db")
    db.migrate(["CREATE TABLE t (x INTEGER)"])
    seen: list[str] = []
    db.add_rollback_listener(lambda: seen.append("rollback"))
    db.add_before_commit(lambda: seen.append("before-commit"))
    db.after_commit(lambda: seen.append("now: no transaction"))
    with db.transaction():
        db.after_commit(lambda: seen.append("outer committed"))
        with db.transaction():
            db.after_commit(lambda: seen.append("released savepoint committed"))
        with pytest.raises(KeyError), db.transaction():
            db.after_commit(lambda: seen.append("inner, rolled back: never"))
            raise KeyError
    assert seen == ["now: no transaction", "rollback", "before-commit", "outer committed",
                    "released savepoint committed"]
    db.close()


def test_history_numbers_survive_rollbacks_and_other_writers(tmp_path):
    path = tmp_path / "jobs.db"
    store = JobStore(path)
    job, _ = store.create_or_update_job(make_job())
    store.add_history(job.id, 1, Event.new("Submission", "one"))
    with pytest.raises(KeyError), store.transaction():
        store.add_history(job.id, 1, Event.new("Submission", "rolled back"))
        raise KeyError
    store.add_history(job.id, 1, Event.new("Submission", "two"))
    other = JobStore(path)
    other.add_history(job.id, 1, Event.new("Submission", "three"))
    other.close()
    store.add_history(job.id, 1, Event.new("Submission", "four"))
    assert [(h.seq_num, h.event.message) for h in store.job_history(job.id)] == [
        (1, "one"), (2, "two"), (3, "three"), (4, "four")]
    store.close()


def test_job_reads_are_private_copies_and_see_other_writers(tmp_path):
    path = tmp_path / "jobs.db"
    store = JobStore(path)
    job, _ = store.create_or_update_job(make_job(name="cached"))
    copy = store.get_job(job.id)
    copy.meta["mine"] = "x"
    assert "mine" not in store.get_job(job.id).meta
    other = JobStore(path)
    other.update_job_state(job.id, JobState(JobStateType.RUNNING.value))
    other.close()
    assert store.find_job("cached").state_type == JobStateType.RUNNING
    store.close()


async def test_delivered_rows_are_marked_sent_with_the_next_commit(tmp_path):
    path = tmp_path / "jobs.db"
    store = JobStore(path)
    a = store.add_outbox("n-1", "/p", b"a")
    b = store.add_outbox("n-1", "/p", b"b")
    store.mark_sent_later([a])
    assert [r.id for r in store.pending_outbox()] == [b]
    assert store.pending_outbox_peers() == ["n-1"]
    peek = JobStore(path)
    assert [r.id for r in peek.pending_outbox()] == [a, b]  # not written yet
    store.create_evaluation(make_evaluation(make_job()))  # autocommit: no hook
    with store.transaction():
        pass
    assert [r.id for r in peek.pending_outbox()] == [b]
    store.mark_sent_later([b])
    assert store.pending_outbox_peers() == []
    store.close()  # closing writes what is pending
    assert peek.pending_outbox() == []
    peek.close()


def test_a_version_1_file_is_migrated_with_its_versions_and_history(tmp_path, monkeypatch):
    """Schema 2 makes `job_versions` and `history` rowid tables (jobstore.SCHEMA_V2): a file
    written by schema 1 keeps every row, in order, and its keys stay unique."""
    import sqlite3

    from bacalhau.store import jobstore

    path = tmp_path / "jobs.db"
    monkeypatch.setattr(jobstore, "MIGRATIONS", jobstore.MIGRATIONS[:1])
    old = JobStore(path)
    job, _ = old.create_or_update_job(make_job(name="kept"))
    old.create_or_update_job(make_job(name="kept", count=2))
    for i in range(3):
        old.add_history(job.id, 1, Event.new("Submission", f"event {i}"))
    old.close()
    monkeypatch.undo()

    store = JobStore(path)
    assert store.db.schema_version("jobstore") == 2
    schema = dict(store.db.connection.execute("SELECT name, sql FROM sqlite_master").fetchall())
    assert all("WITHOUT ROWID" not in schema[t] for t in ("history", "job_versions"))
    assert [j.version for j in store.job_versions(job.id)] == [1, 2]
    assert store.get_job_version(job.id, 2).count == 2
    assert [h.event.message for h in store.job_history(job.id)] == [
        "event 0", "event 1", "event 2"]
    assert store.add_history(job.id, 2, Event.new("Submission", "after")).seq_num == 4
    with pytest.raises(sqlite3.IntegrityError):
        store.db.connection.execute(
            "INSERT INTO history (job_id, seq_num, type, job_version, execution_id, time_ns, "
            "data) VALUES (?, 4, 'JobLevel', 2, '', 0, x'00')", (job.id,))
    with pytest.raises(sqlite3.IntegrityError):
        store.db.connection.execute(
            "INSERT INTO job_versions (job_id, version, data) VALUES (?, 2, x'00')", (job.id,))
    store.close()
