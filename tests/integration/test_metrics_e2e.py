"""`/metrics` of real processes, parsed by prometheus_client's own parser: an orchestrator and
a compute-only node (scraped on `Metrics.Listen`) over libp2p; a job's run moves the job,
scheduling, API and transport counters, and the compute node shows the running execution and
the capacity it holds while it runs."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, wait_until
from tests.integration.test_network import Network, network, sleep_job

pytestmark = [pytest.mark.integration]
__all__ = ["network"]  # the fixture: one orchestrator process, compute nodes added per test

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def test_metrics_move_when_a_job_runs(network: Network) -> None:
    metrics_port = free_port("127.0.0.2")
    compute = network.add_compute(0, start=False)
    compute.extra_args += ["-c", f"Metrics.Listen=127.0.0.2:{metrics_port}"]
    compute.start()
    network.computes.append(compute)
    network.wait_connected([compute])
    orchestrator_url = network.requester.url + "/metrics"
    compute_url = f"http://127.0.0.2:{metrics_port}/metrics"

    before = scrape(orchestrator_url)
    assert get(before, "bacalhau_nodes", type="Compute", connection="CONNECTED",
               membership="APPROVED") == 1
    compute_before = scrape(compute_url)
    assert get(compute_before, "bacalhau_compute_executions_running") == 0
    assert get(compute_before, "bacalhau_compute_capacity", resource="cpu") > 0

    job_id = network.submit(sleep_job(1500))

    def running() -> Samples | None:
        now = scrape(compute_url)
        return now if get(now, "bacalhau_compute_executions_running") == 1 else None

    during = wait_until(running, 20, what="the compute node to report a running execution",
                        interval=0.05)
    assert get(during, "bacalhau_compute_capacity_used", resource="cpu") > 0
    assert get(during, "bacalhau_compute_capacity_used", resource="memory") > 0
    assert network.wait_terminal(job_id)["StateType"] == "Completed"

    after = scrape(orchestrator_url)
    compute_after = scrape(compute_url)
    assert get(after, "bacalhau_jobs_submitted_total", type="batch") == \
        get(before, "bacalhau_jobs_submitted_total", type="batch") + 1
    assert get(after, "bacalhau_jobs_ended_total", type="batch", state="Completed") == \
        get(before, "bacalhau_jobs_ended_total", type="batch", state="Completed") + 1
    assert get(after, "bacalhau_jobs", type="batch", state="Completed") == 1
    assert get(after, "bacalhau_executions", state="Completed") == 1
    assert total(after, "bacalhau_job_submit_to_completed_seconds_count") == 1
    # the job slept 1.5 s, so its submit-to-Completed time is in the buckets above 1 s
    assert get(after, "bacalhau_job_submit_to_completed_seconds_bucket", type="batch",
               le="1.0") == 0
    assert total(after, "bacalhau_job_submit_to_completed_seconds_sum") >= 1.5
    assert total(after, "bacalhau_scheduling_latency_seconds_count", trigger="job-register") \
        == 1
    assert total(after, "bacalhau_scheduling_latency_seconds_count") > \
        total(before, "bacalhau_scheduling_latency_seconds_count")
    assert get(after, "bacalhau_api_request_duration_seconds_count", method="PUT",
               route="/api/v1/orchestrator/jobs", status="200") == 1
    assert total(after, "bacalhau_evaluation_queue") == 0  # nothing left to schedule
    for direction in ("in", "out"):  # AskForBid, BidAccepted out; BidResult, RunResult in
        assert get(after, "bacalhau_transport_messages_total", direction=direction) > \
            get(before, "bacalhau_transport_messages_total", direction=direction)
        assert get(after, "bacalhau_transport_bytes_total", direction=direction) > \
            get(before, "bacalhau_transport_bytes_total", direction=direction)
    assert get(compute_after, "bacalhau_compute_executions_running") == 0
    assert get(compute_after, "bacalhau_compute_capacity_used", resource="cpu") == 0
    assert get(compute_after, "bacalhau_compute_executions", state="Completed") == 1
    assert get(compute_after, "bacalhau_transport_messages_total", direction="in") > \
        get(compute_before, "bacalhau_transport_messages_total", direction="in")
