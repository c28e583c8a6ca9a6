"""EvaluationBroker: priority order, one in-flight evaluation per job, redelivery, visibility
timeout, delayed release and dead letters."""

from __future__ import annotations

import asyncio

import pytest

from bacalhau.models.timeutil import now_ns
from bacalhau.orchestrator.broker import EvaluationBroker
from tests.factories import make_evaluation, make_job

pytestmark = pytest.mark.unit


def broker(**kw) -> EvaluationBroker:
    kw.setdefault("visibility_timeout", 5.0)
    kw.setdefault("nack_delays", (0.01,))
    return EvaluationBroker(**kw)


async def next_lease(b: EvaluationBroker, timeout: float = 2.0):
    return await asyncio.wait_for(b.dequeue(), timeout)


async def test_priority_then_create_time():
    b = broker()
    jobs = [make_job(priority=p) for p in (1, 5, 1)]
    evs = [make_evaluation(j, create_time=t) for j, t in zip(jobs, (30, 20, 10), strict=True)]
    for ev in evs:
        b.enqueue(ev)
    order = [(await next_lease(b)).evaluation.id for _ in range(3)]
    assert order == [evs[1].id, evs[2].id, evs[0].id]


async def test_one_in_flight_per_job_keeps_best_waiting():
    discarded = []
    b = broker(on_discard=discarded.append)
    job = make_job()
    first, low, high, later = (make_evaluation(job, create_time=1),
                               make_evaluation(job, priority=0, create_time=2),
                               make_evaluation(job, priority=9, create_time=3),
                               make_evaluation(job, priority=0, create_time=4))
    b.enqueue(first)
    lease = await next_lease(b)
    for ev in (low, high, later):
        b.enqueue(ev)
    assert b.stats()["ready"] == 0 and b.stats()["waiting"] == 1
    assert {e.id for e in discarded} == {low.id, later.id}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.dequeue(), 0.05)
    b.ack(lease)
    assert (await next_lease(b)).evaluation.id == high.id


async def test_other_jobs_are_not_blocked():
    b = broker()
    j1, j2 = make_job(), make_job()
    b.enqueue(make_evaluation(j1))
    b.enqueue(make_evaluation(j1))
    b.enqueue(make_evaluation(j2))
    got = {(await next_lease(b)).evaluation.job_id for _ in range(2)}
    assert got == {j1.id, j2.id}


async def test_nack_redelivers_then_dead_letters():
    dead = []
    b = broker(max_retries=3, on_dead_letter=dead.append)
    ev = make_evaluation(make_job())
    b.enqueue(ev)
    deliveries = []
    for _ in range(3):
        lease = await next_lease(b)
        deliveries.append(lease.deliveries)
        assert b.nack(lease)
    assert deliveries == [1, 2, 3]
    assert [e.id for e in dead] == [ev.id] and b.dead_letters == dead
    assert b.stats() == {"ready": 0, "unacked": 0, "waiting": 0, "delayed": 0, "dead": 1}


async def test_visibility_timeout_redelivers_and_stale_ack_is_refused():
    b = broker(visibility_timeout=0.02)
    ev = make_evaluation(make_job())
    b.enqueue(ev)
    stale = await next_lease(b)
    again = await next_lease(b)
    assert again.evaluation.id == ev.id and again.deliveries == 2
    assert not b.ack(stale)
    assert b.ack(again)


async def test_delayed_evaluation_released_on_time():
    b = broker()
    job = make_job()
    ev = make_evaluation(job, wait_until=now_ns() + 60_000_000)
    b.enqueue(ev)
    assert b.stats()["delayed"] == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.dequeue(), 0.02)
    start = now_ns()
    lease = await next_lease(b)
    assert lease.evaluation.id == ev.id
    assert now_ns() >= ev.wait_until and now_ns() - start < 1_000_000_000


async def test_close_wakes_consumers():
    b = broker()
    waiter = asyncio.create_task(b.dequeue())
    await asyncio.sleep(0)  # let the consumer park
    b.close()
    assert await asyncio.wait_for(waiter, 1.0) is None


async def test_duplicate_enqueue_is_ignored():
    b = broker()
    ev = make_evaluation(make_job())
    b.enqueue(ev)
    b.enqueue(ev)
    lease = await next_lease(b)
    b.ack(lease)
    assert b.stats()["ready"] == 0 and b.stats()["waiting"] == 0


async def test_wake_queued_releases_the_oldest_queued_evaluations_early():
    b = broker()
    later = now_ns() + 3600 * 1_000_000_000
    queued = [make_evaluation(make_job(), "job-queue", wait_until=later, create_time=t)
              for t in (1, 2)]
    retry = make_evaluation(make_job(), "exec-limit", wait_until=later)
    for ev in (*queued, retry):
        b.enqueue(ev)
    assert b.stats()["delayed"] == 3
    assert b.wake_queued(1) == 1  # capacity for one: the oldest queued job
    lease = await next_lease(b)
    assert lease.evaluation.id == queued[0].id
    b.ack(lease)
    assert b.wake_queued(5) == 1  # only job-queue evaluations wake early
    assert (await next_lease(b)).evaluation.id == queued[1].id
    assert b.stats()["delayed"] == 1 and b.stats()["ready"] == 0
