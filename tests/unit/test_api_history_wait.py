"""Long-polled history (`GET /jobs/{id}/history?long_poll_ms=N`, ours) against a real
`Requester`: an empty page is held until the job's next event and no longer; requests without
the parameter get the unchanged answer of Bacalhau's API."""

from __future__ import annotations

import asyncio
import time

import pytest

from bacalhau.api.routes import history_wait
from tests.unit.test_api_orchestrator import JOBS, Harness, _job, api

pytestmark = pytest.mark.unit
__all__ = ["api"]

HOLD_MS = 20_000
"""Asked hold of the tests that expect an early answer: far above any answer they accept."""


async def _caught_up(api: Harness, job_id: str) -> str:
    """The history token of a Queued job after every recorded item was read."""
    await api.until_state(job_id, "Queued")
    page = await api.json(f"{JOBS}/{job_id}/history")
    token = str(page["NextToken"])
    while True:
        more = await api.json(f"{JOBS}/{job_id}/history", next_token=token)
        token = str(more["NextToken"])
        if not more["Items"]:
            return token


async def test_a_held_request_answers_with_the_next_event(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    token = await _caught_up(api, job_id)
    started = time.monotonic()
    held = asyncio.create_task(api.json(f"{JOBS}/{job_id}/history", next_token=token,
                                        long_poll_ms=HOLD_MS))
    resp = await api.client.delete(f"{JOBS}/{job_id}", json={"reason": "enough"})
    assert resp.status == 200
    page = await asyncio.wait_for(held, HOLD_MS / 1000 / 2)
    assert time.monotonic() - started < HOLD_MS / 1000 / 2
    assert page[history_wait.ANSWER_KEY] is True
    states = [i["Event"].get("Details", {}).get("NewState") for i in page["Items"]]
    assert "Stopped" in states


async def test_a_held_request_without_news_answers_empty_after_the_hold(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    token = await _caught_up(api, job_id)
    page = await api.json(f"{JOBS}/{job_id}/history", next_token=token, long_poll_ms=30)
    assert page["Items"] == []
    assert page["NextToken"], "the job is still active"
    assert page[history_wait.ANSWER_KEY] is True


async def test_a_terminal_job_is_not_held(api: Harness) -> None:
    job_id = await api.submit(_job())  # no nodes, no queueing: fails at once
    await api.until_state(job_id, "Failed")
    count = len((await api.json(f"{JOBS}/{job_id}/history"))["Items"])
    full = await api.json(f"{JOBS}/{job_id}/history", limit=count)
    assert len(full["Items"]) == count and full["NextToken"], "a full page keeps a token"
    page = await asyncio.wait_for(
        api.json(f"{JOBS}/{job_id}/history", next_token=full["NextToken"],
                 long_poll_ms=HOLD_MS), HOLD_MS / 1000 / 2)
    assert page["Items"] == [] and page["NextToken"] == ""
    assert page[history_wait.ANSWER_KEY] is True


async def test_without_the_parameter_the_answer_is_bacalhaus(api: Harness) -> None:
    job_id = await api.submit(_job(queue_timeout=600))
    token = await _caught_up(api, job_id)
    page = await api.json(f"{JOBS}/{job_id}/history", next_token=token)
    assert set(page) == {"Items", "NextToken"}
    bad = await api.json(f"{JOBS}/{job_id}/history", status=400, long_poll_ms=-1)
    assert "long_poll_ms" in bad["Message"]


def test_the_hold_is_bounded() -> None:
    assert history_wait.hold_seconds(0, 30.0) == 0.0
    assert history_wait.hold_seconds(2500, 30.0) == 2.5
    assert history_wait.hold_seconds(10**9, 30.0) == history_wait.MAX_WAIT
    assert history_wait.hold_seconds(10**9, 4.0) == 2.0


async def test_the_wait_ends_when_the_client_is_gone() -> None:
    """A client that hung up (Ctrl+C on `--wait`) is not waited for until the hold ends."""
    from bacalhau.models import Job

    job = Job.from_dict({"ID": "j-1", "Type": "batch", "State": {"StateType": "Running"}})
    reads = []

    def read_page() -> history_wait.Page[str]:
        reads.append(1)
        return job, [], 0

    page = await asyncio.wait_for(history_wait.wait_for_history(
        read_page, (job, [], 0), HOLD_MS / 1000, gone=lambda: len(reads) >= 2), HOLD_MS / 2000)
    assert page == (job, [], 0) and len(reads) == 2


async def test_a_held_page_is_read_again_at_the_next_commit(tmp_path) -> None:
    """The hold ends at the commit that makes news, not at the next periodic read."""
    from bacalhau.models import Job
    from bacalhau.store.jobstore import JobStore

    store = JobStore(tmp_path / "jobs.db")
    job = Job.from_dict({"ID": "j-1", "Type": "batch", "State": {"StateType": "Running"}})
    news: list[str] = []

    def read_page() -> history_wait.Page[str]:
        return job, list(news), len(news)

    def commit_news() -> None:
        with store.transaction():
            news.append("event")  # what the page shows once this commit is done

    signal = history_wait.CommitSignal.of(store.db)
    assert history_wait.CommitSignal.of(store.db) is signal  # one per store
    asyncio.get_running_loop().call_later(0.05, commit_news)
    try:
        page = await asyncio.wait_for(history_wait.wait_for_history(
            read_page, (job, [], 0), 60, signal=signal, interval=60), 10)
    finally:
        store.close()
    assert page[1] == ["event"]
