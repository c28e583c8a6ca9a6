"""`/metrics` (bacalhau.metrics): the exposition parsed by prometheus_client's own parser,
histogram bucket rules, request timing by route template, and who may read the metrics."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bacalhau.api.app import create_app
from bacalhau.config import Config
from bacalhau.errors import ConfigError
from bacalhau.metrics import NodeMetrics
from bacalhau.metrics.http import metrics_access
from bacalhau.metrics.instruments import Counter, Histogram
from bacalhau.models import NodeInfo

pytestmark = pytest.mark.unit

READER_KEY = "r" * 24
WRITER_KEY = "w" * 24  # write:job only: no read:agent


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by (name, labels), through prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed: dict[Any, float], name: str, **labels: str) -> float:
    return parsed[(name, frozenset(labels.items()))]


def app_with(config: Config, metrics: NodeMetrics) -> Any:
    return create_app(None, node_info_provider=lambda: NodeInfo(node_id="n-x"),
                      config=config, metrics=metrics)


async def test_histogram_buckets_are_cumulative_with_le_bounds() -> None:
    histogram = Histogram("t_seconds", "test", ("kind",), buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(seconds, "a")
    counter = Counter("t_events", "test", ("kind",))
    counter.inc("a")
    counter.inc("a", amount=2)
    metrics = NodeMetrics("n-x")
    metrics.api_requests = histogram  # scraped like the real one
    parsed = samples((await _scrape(metrics)).decode())
    assert value(parsed, "t_seconds_bucket", kind="a", le="0.1") == 2  # 0.1 is <= 0.1
    assert value(parsed, "t_seconds_bucket", kind="a", le="1.0") == 4
    assert value(parsed, "t_seconds_bucket", kind="a", le="+Inf") == 5
    assert value(parsed, "t_seconds_count", kind="a") == 5
    assert value(parsed, "t_seconds_sum", kind="a") == pytest.approx(8.65)
    assert counter.value("a") == 3
    assert histogram.count("a") == 5


async def _scrape(metrics: NodeMetrics) -> bytes:
    body, content_type = await metrics.scrape()
    assert content_type.startswith("text/plain")
    return body


async def test_requests_are_timed_by_route_template() -> None:
    metrics = NodeMetrics("n-x")
    async with TestClient(TestServer(app_with(Config(), metrics))) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/agent/alive")).status == 200
        assert (await client.get("/no/such/path")).status == 404
        resp = await client.get("/metrics")
        assert resp.status == 200
        parsed = samples(await resp.text())
    assert value(parsed, "bacalhau_api_request_duration_seconds_count", method="GET",
                 route="/api/v1/agent/alive", status="200") == 3
    assert value(parsed, "bacalhau_api_request_duration_seconds_count", method="GET",
                 route="unmatched", status="404") == 1
    assert value(parsed, "bacalhau_node_info", node_id="n-x", roles="", version="") == 1


def users_config(access: str = "read:agent", enabled: bool = True) -> Config:
    return Config({
        "API": {"Auth": {"Users": [
            {"APIKey": READER_KEY, "Capabilities": [{"Actions": ["read:agent"]}]},
            {"APIKey": WRITER_KEY, "Capabilities": [{"Actions": ["write:job"]}]},
        ]}},
        "Metrics": {"Access": access, "Enabled": enabled},
    })


async def test_read_agent_access_needs_that_capability() -> None:
    async with TestClient(TestServer(app_with(users_config(), NodeMetrics("n-x")))) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status == 401
        assert (await anonymous.json())["Details"]["reason"] == "missing Authorization header"
        writer = await client.get("/metrics", headers={"Authorization": f"Bearer {WRITER_KEY}"})
        assert writer.status == 403
        assert "read:agent" in (await writer.json())["Hint"]
        reader = await client.get("/metrics", headers={"Authorization": f"Bearer {READER_KEY}"})
        assert reader.status == 200
        assert "bacalhau_node_info" in await reader.text()


async def test_open_access_and_disabled_metrics() -> None:
    config = users_config(access="open")
    async with TestClient(TestServer(app_with(config, NodeMetrics("n-x")))) as client:
        assert (await client.get("/metrics")).status == 200
        # the rest of the API still needs credentials
        assert (await client.get("/api/v1/agent/node")).status == 401
    disabled = users_config(enabled=False)
    async with TestClient(TestServer(app_with(disabled, NodeMetrics("n-x")))) as client:
        assert (await client.get("/metrics")).status == 404


def test_a_bad_access_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"Metrics\.Access"):
        metrics_access(Config({"Metrics": {"Access": "everyone"}}))


def test_plan_hook_counts_each_end_once_and_times_scheduling() -> None:
    from bacalhau.models import Evaluation, Job, JobState, JobStateType
    from bacalhau.models.timeutil import now_ns
    from bacalhau.orchestrator.plan import Plan

    metrics = NodeMetrics("n-x")
    now = now_ns()
    running = Job(id="j-1", type="batch", state=JobState(JobStateType.RUNNING.value),
                  create_time=now - 3 * 10**9)
    due = Evaluation(id="ev-1", job_id="j-1", type="batch", triggered_by="exec-update",
                     create_time=now - 10**9, wait_until=now - 2 * 10**8)
    ends = Plan(evaluation=due, job=running)
    ends.set_job_state(JobStateType.COMPLETED)
    metrics.plan_applied(ends)
    stopped = Job(id="j-1", type="batch", state=JobState(JobStateType.STOPPED.value))
    metrics.plan_applied(Plan(evaluation=Evaluation(), job=stopped))  # cancel follow-up
    failing = Plan(evaluation=Evaluation(), job=running)
    failing.set_job_state(JobStateType.FAILED, "no nodes")
    metrics.plan_applied(failing)
    metrics.job_event("submitted", running)
    metrics.job_event("stopped", stopped)

    assert metrics.jobs_ended.value("batch", "Completed") == 1
    assert metrics.jobs_ended.value("batch", "Failed") == 1
    assert metrics.jobs_ended.value("batch", "Stopped") == 1
    assert metrics.jobs_submitted.value("batch") == 1
    assert metrics.job_completion.count("batch") == 1
    (row,) = metrics.job_completion.series.values()
    assert 3.0 <= row[-1] < 60.0  # from CreateTime, three seconds ago
    # from the evaluation's WaitUntil (later than its creation), not from its creation
    (sched,) = metrics.scheduling.series.values()
    assert 0.2 <= sched[-1] < 0.9
    assert metrics.scheduling.count("batch", "exec-update") == 1  # evaluations without id: none


def test_a_broken_plan_never_reaches_the_job_path(caplog: pytest.LogCaptureFixture) -> None:
    metrics = NodeMetrics("n-x")
    metrics.plan_applied(object())  # not a plan: logged, not raised
    assert "not counted" in caplog.text
