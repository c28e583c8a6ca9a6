"""Planner (plan -> one transaction + outbox messages) and the compute message handlers
(BidResult/RunResult/ComputeError -> execution update + evaluation), against a real store."""

from __future__ import annotations

import pytest

from bacalhau.models import EvalStatus, Event, Topic
from bacalhau.orchestrator.handlers import ExecutionMessageHandlers
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.planner import Planner
from bacalhau.store.jobstore import JobStore, RevisionConflictError
from bacalhau.transport import messages
from tests.factories import Compute, Desired, make_evaluation, make_execution, make_job

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    yield s
    s.close()


def stored_job(store, **kw):
    job, _ = store.create_or_update_job(make_job(**kw))
    return job


def sent(store):
    return [(r.peer, messages.decode(r.payload)) for r in store.pending_outbox()]


def test_new_execution_writes_history_and_ask_for_bid(store):
    job = stored_job(store)
    evaluation = make_evaluation(job)
    store.create_evaluation(evaluation)
    woke = []
    planner = Planner(store, node_id="n-req", on_outbox=lambda: woke.append(1))
    plan = Plan(evaluation, job)
    e = make_execution(job, "n-1")
    e.job = job
    plan.add_execution(e, Event.new(Topic.SCHEDULING, "Requested execution on n-1"))
    planner.apply(plan)
    assert woke == [1]
    ((peer, env),) = sent(store)
    assert peer == "n-1" and env.type == messages.ASK_FOR_BID
    assert env.payload["Execution"]["ID"] == e.id
    assert env.payload["Execution"]["Job"]["ID"] == job.id
    assert env.payload["Events"][0]["Message"] == "Requested execution on n-1"
    assert store.get_evaluation(evaluation.id).status == EvalStatus.COMPLETE
    (h,) = store.job_history(job.id)
    assert h.execution_id == e.id and h.type == "ExecutionLevel"


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((Desired.PENDING, Compute.ASK_FOR_BID_ACCEPTED), (Desired.RUNNING, Compute.BID_ACCEPTED),
     messages.BID_ACCEPTED),
    ((Desired.PENDING, Compute.ASK_FOR_BID_ACCEPTED), (Desired.STOPPED, Compute.BID_REJECTED),
     messages.BID_REJECTED),
    ((Desired.RUNNING, Compute.BID_ACCEPTED), (Desired.STOPPED, Compute.CANCELLED),
     messages.CANCEL_EXECUTION),
    ((Desired.PENDING, Compute.NEW), (Desired.STOPPED, Compute.CANCELLED),
     messages.CANCEL_EXECUTION),
    ((Desired.RUNNING, Compute.COMPLETED), (Desired.STOPPED, Compute.COMPLETED), None),
])
def test_transition_messages(store, before, after, expected):
    job = stored_job(store)
    e = make_execution(job, "n-1", desired=before[0], compute=before[1])
    store.create_execution(e)
    plan = Plan(make_evaluation(job), job)
    plan.update_execution(e, desired=after[0], compute=after[1],
                          event=Event.new(Topic.SCHEDULING, "why"))
    Planner(store, node_id="n-req").apply(plan)
    types = [env.type for _, env in sent(store)]
    assert types == ([expected] if expected else [])
    if expected:
        assert sent(store)[0][1].payload["ExecutionID"] == e.id
    assert store.get_execution(e.id).desired_state.state_type == after[0]


def test_conflicting_plan_writes_nothing(store):
    job = stored_job(store)
    e = make_execution(job, "n-1")
    store.create_execution(e)
    stale = e.copy()
    e.compute_state.state_type = Compute.ASK_FOR_BID_ACCEPTED
    store.update_execution(e, expected_revision=1)
    plan = Plan(make_evaluation(job), job)
    plan.add_execution(make_execution(job, "n-2"))
    plan.stop_execution(stale, Compute.CANCELLED, Event.new(Topic.SCHEDULING, "x"))
    with pytest.raises(RevisionConflictError):
        Planner(store, node_id="n-req").apply(plan)
    assert len(store.get_executions(job.id)) == 1
    assert store.pending_outbox() == []


class Handlers:
    def __init__(self, store):
        self.enqueued = []
        self.h = ExecutionMessageHandlers(store, self.enqueued.append)

    async def send(self, msg_type, execution, **payload):
        payload.setdefault("Events", [Event.new(Topic.EXECUTION, f"{msg_type} event").to_dict()])
        data = messages.encode(msg_type, {"ExecutionID": execution.id, "JobID": execution.job_id,
                                          "JobType": "batch", **payload})
        return messages.parse_reply(await self.h.handle("n-1", data))


async def test_bid_results(store):
    job = stored_job(store)
    pending = make_execution(job, "n-1")
    direct = make_execution(job, "n-2", desired=Desired.RUNNING)
    rejected = make_execution(job, "n-3")
    for e in (pending, direct, rejected):
        store.create_execution(e)
    h = Handlers(store)
    assert (await h.send(messages.BID_RESULT, pending, Accepted=True)) == {"OK": True}
    await h.send(messages.BID_RESULT, direct, Accepted=True)
    await h.send(messages.BID_RESULT, rejected, Accepted=False,
                 Events=[Event.new(Topic.EXEC_SCANNING, "rejected bid: no docker").to_dict()])
    assert store.get_execution(pending.id).compute_state_type == Compute.ASK_FOR_BID_ACCEPTED
    assert store.get_execution(direct.id).compute_state_type == Compute.BID_ACCEPTED
    r = store.get_execution(rejected.id)
    assert r.compute_state_type == Compute.ASK_FOR_BID_REJECTED
    assert r.desired_state_type == Desired.STOPPED
    assert r.compute_state.message == "rejected bid: no docker"
    # an accepted direct bid of a batch job leaves the scheduler nothing to decide: it is
    # stored with the event the approval round writes otherwise, and evaluates nothing
    assert {ev.triggered_by for ev in h.enqueued} == {"exec-update"}
    assert len(h.enqueued) == 2
    assert [ev.id for ev in store.pending_evaluations()] == [ev.id for ev in h.enqueued]
    direct_history = [x.event for x in store.job_history(job.id, execution_id=direct.id)
                      if x.execution_id == direct.id]
    assert [ev.message for ev in direct_history][-1] == "Bid accepted for n-2"
    assert direct_history[-1].details["NodeID"] == "n-2"
    # at-least-once delivery: a duplicate changes nothing and schedules nothing
    await h.send(messages.BID_RESULT, pending, Accepted=True)
    await h.send(messages.BID_RESULT, direct, Accepted=True)
    assert len(h.enqueued) == 2
    assert [x.event.message for x in store.job_history(job.id, execution_id=direct.id)
            if x.execution_id == direct.id] == [ev.message for ev in direct_history]


async def test_an_accepted_direct_bid_of_a_long_running_job_is_evaluated(store):
    """A daemon's or service's update rolls once the replacement runs: its accepted bid is
    evaluated, as every other report is."""
    job = stored_job(store, type="daemon")
    direct = make_execution(job, "n-2", desired=Desired.RUNNING)
    store.create_execution(direct)
    h = Handlers(store)
    await h.send(messages.BID_RESULT, direct, Accepted=True, JobType="daemon")
    assert store.get_execution(direct.id).compute_state_type == Compute.BID_ACCEPTED
    assert [ev.triggered_by for ev in h.enqueued] == ["exec-update"]


async def test_run_result_and_compute_error(store):
    job = stored_job(store)
    ok = make_execution(job, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    bad = make_execution(job, "n-2", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    for e in (ok, bad):
        store.create_execution(e)
    h = Handlers(store)
    await h.send(messages.RUN_RESULT, ok, PublishResult={"Type": "local", "Params": {"URL": "u"}},
                 RunCommandResult={"Stdout": "hi\n", "ExitCode": 3})
    await h.send(messages.COMPUTE_ERROR, bad,
                 Events=[Event.error(Topic.RUNNING, "image not found").to_dict()])
    done = store.get_execution(ok.id)
    assert done.compute_state_type == Compute.COMPLETED
    assert done.desired_state_type == Desired.STOPPED
    assert done.run_output.stdout == "hi\n" and done.run_output.exit_code == 3
    assert done.published_result.params["URL"] == "u"
    failed = store.get_execution(bad.id)
    assert failed.compute_state_type == Compute.FAILED
    assert failed.compute_state.message == "image not found"
    assert [x.event.message for x in store.job_history(job.id, execution_id=bad.id)] == [
        "image not found"]
    await h.send(messages.RUN_RESULT, ok, RunCommandResult={"Stdout": "again"})
    assert store.get_execution(ok.id).run_output.stdout == "hi\n"
    assert len(h.enqueued) == 2


async def test_unknown_execution_is_acknowledged(store):
    h = Handlers(store)
    job = make_job()
    assert await h.send(messages.RUN_RESULT, make_execution(job, "n-1")) == {"OK": True}
    assert h.enqueued == []


async def test_garbage_is_refused(store):
    h = Handlers(store)
    reply = await h.h.handle("n-1", b"\x01garbage")
    assert b'"OK":false' in reply


def test_housekeeping_finds_timeouts(store):
    from bacalhau.models import JobState
    from bacalhau.orchestrator.housekeeping import Housekeeping

    ns = 1_000_000_000
    total = stored_job(store, total_timeout=10)
    per_exec = stored_job(store, execution_timeout=5)
    quiet = stored_job(store, execution_timeout=5)
    done = stored_job(store, total_timeout=1)
    store.update_job_state(done.id, JobState("Completed"))
    long = make_execution(per_exec, "n-1", desired=Desired.RUNNING, compute=Compute.BID_ACCEPTED)
    store.create_execution(long)
    store.create_execution(make_execution(quiet, "n-1"))  # not executing yet
    start = max(j.create_time for j in (total, per_exec, quiet, done))
    enqueued = []
    hk = Housekeeping(store, enqueued.append, buffer=1.0, clock=lambda: start + 7 * ns)
    assert [(e.job_id, e.triggered_by) for e in hk.run_once()] == [(per_exec.id, "exec-timeout")]
    hk.clock = lambda: start + 12 * ns
    found = {e.job_id: e.triggered_by for e in hk.run_once()}
    assert found == {total.id: "job-timeout", per_exec.id: "exec-timeout"}
    assert len(enqueued) == 3
    assert {e.id for e in store.pending_evaluations()} == {e.id for e in enqueued}


async def test_an_accepted_direct_bid_is_dated_when_the_node_decided(store):
    """A held bid reaches the requester with the run's result: its event keeps the time the
    node accepted, so that it does not read as later than the run it started."""
    from bacalhau.models.timeutil import rfc3339

    job = stored_job(store)
    direct = make_execution(job, "n-2", desired=Desired.RUNNING)
    bad = make_execution(job, "n-3", desired=Desired.RUNNING)
    store.create_execution(direct)
    store.create_execution(bad)
    h = Handlers(store)
    decided = 1_700_000_000_123_456_789
    await h.send(messages.BID_RESULT, direct, Accepted=True, Events=[], Time=decided)
    await h.send(messages.BID_RESULT, bad, Accepted=True, Events=[], Time="yesterday")
    (event,) = [x.event for x in store.job_history(job.id, execution_id=direct.id)]
    assert event.message == "Bid accepted for n-2" and event.timestamp == rfc3339(decided)
    (other,) = [x.event for x in store.job_history(job.id, execution_id=bad.id)]
    assert other.timestamp and other.timestamp != rfc3339(decided)  # not a time: now
