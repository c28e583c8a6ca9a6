"""`api.watch.follow_history_blocking` (the CLI's `--wait`): the same items and final job as the
async loop; long-polled answers are followed at once, others after the poll interval (a server
that ignores `long_poll_ms`: Bacalhau's own, or an older one)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner

from bacalhau.api.watch import LONG_POLLED, follow_history, follow_history_blocking
from bacalhau.cli.main import cli
from tests.unit.test_cli_job import Pages
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, fake_api, history_item, wire_job

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"

PAGES: list[tuple[list[dict[str, Any]], str]] = [
    ([history_item(1, "Submission", "Job submitted", NewState="Pending")], "t1"),
    ([], "t1"),
    ([history_item(2, "Execution", "Completed successfully", exec_id="e-1",
                   NewState="Completed"),
      history_item(3, "State Update", "Job completed", NewState="Completed")], ""),
]


class ScriptedClient:
    """A blocking client answering history pages in turn, each marked held or not."""

    def __init__(self, held: bool) -> None:
        self.pages = list(PAGES)
        self.held = held
        self.history_calls: list[dict[str, Any]] = []

    def job_history(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        self.history_calls.append(kwargs)
        items, token = self.pages.pop(0)
        page: dict[str, Any] = {"Items": items, "NextToken": token}
        if self.held and kwargs.get("long_poll_ms"):
            page[LONG_POLLED] = True
        return page

    def get_job(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return {"Job": wire_job("Completed")}

    async def aio_job_history(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.job_history(job_id, **kwargs)


@pytest.mark.parametrize("held", [True, False])
def test_blocking_follow_sees_every_item_and_pauses_only_when_not_held(held: bool) -> None:
    client = ScriptedClient(held)
    seen: list[int] = []
    pauses: list[float] = []
    final = follow_history_blocking(client, JOB_ID, lambda i: seen.append(i["SeqNum"]),
                                    interval=0.1, long_poll=5.0, sleep=pauses.append)
    assert seen == [1, 2, 3]
    assert final["State"]["StateType"] == "Completed"
    assert all(0 < call["long_poll_ms"] <= 5000 for call in client.history_calls)
    assert pauses == ([] if held else [0.1, 0.1])


def test_async_follow_without_long_poll_asks_as_before() -> None:
    client = ScriptedClient(held=True)

    class Async:
        job_history = client.aio_job_history

        async def get_job(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
            return client.get_job(job_id)

    seen: list[int] = []
    final = asyncio.run(follow_history(Async(), JOB_ID,  # type: ignore[arg-type]
                                       lambda i: seen.append(i["SeqNum"]), interval=0.001))
    assert seen == [1, 2, 3] and final["ID"] == JOB_ID
    assert [call["long_poll_ms"] for call in client.history_calls] == [0, 0, 0]


def test_docker_run_wait_long_polls_and_prints_the_same_rows(fake_api: FakeBacalhau) -> None:
    history = Pages(*PAGES)
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    fake_api.on("GET", f"{JOBS}/{JOB_ID}", {"Job": wire_job("Completed")})
    fake_api.on("GET", f"{JOBS}/{JOB_ID}/history", history)
    result = CliRunner().invoke(cli, ["--api-port", str(fake_api.port), "docker", "run",
                                      "bacalhau-py/test:busybox", "--", "true"])
    assert result.exit_code == 0, result.output
    assert "Completed successfully" in result.output
    assert f"Job completed: {JOB_ID}" in result.output
    calls = fake_api.calls("GET", f"{JOBS}/{JOB_ID}/history")
    assert [c.param("long_poll_ms") for c in calls] == ["5000"] * len(calls)
    assert history.tokens_seen == [None, "t1", "t1"]
