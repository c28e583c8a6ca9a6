"""The web UI in a real headless Chromium (Debian's `chromium` + `chromium-driver` through
Selenium) against real processes: an orchestrator `bacalhau serve` serving `/ui/` and two
compute processes joined over libp2p on 127.0.0.2 and 127.0.0.3.

The page lists a job submitted by the CLI and follows it to Completed with its logs, stops a
running job with its Stop button, draws the overview charts, renders API text as text, and shows
a compute node going DISCONNECTED when it is killed. Every test ends by reading the browser's
console log: no errors (failed loads, CSP violations, exceptions) are allowed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.executors.docker import TEST_IMAGE
from tests.conftest import ASSETS, ServeProcess, wait_until
from tests.jobspecs import wordcount_job
from tests.webui_browser import UiBrowser, browser_missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEARTBEAT = 0.5
DISCONNECT_TIMEOUT = 3.0

_missing = browser_missing()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"web UI browser tests need a browser: {_missing}"))


class UiNetwork:
    """An orchestrator with the UI and compute nodes on their own loopback addresses."""

    def __init__(self, base: Path) -> None:
        self.requester = ServeProcess(
            data_dir=base / "requester", roles=("--orchestrator",),
            extra_args=["--listen", "/ip4/127.0.0.1/tcp/0",
                        "-c", f"Orchestrator.NodeManager.DisconnectTimeout={DISCONNECT_TIMEOUT}s"])
        self.base = base
        self.computes: list[ServeProcess] = []

    def start(self, computes: int) -> None:
        self.requester.start()
        for i in range(computes):
            host = f"127.0.0.{i + 2}"
            compute = ServeProcess(
                data_dir=self.base / f"compute-{i}", host=host, roles=("--compute",),
                extra_args=["--listen", f"/ip4/{host}/tcp/0",
                            "--peers", ",".join(self.requester.addresses()),
                            "-c", f"Compute.Heartbeat.Interval={HEARTBEAT}s",
                            "-c", f"Labels.zone=zone-{i}"])
            compute.start()
            self.computes.append(compute)
        ids = {c.node_id for c in self.computes}
        wait_until(lambda: ids <= self.connected(), 30, what="compute nodes CONNECTED",
                   interval=0.1)

    def connected(self) -> set[str]:
        status, doc = self.requester.api("GET", "/api/v1/orchestrator/nodes")
        assert status == 200, doc
        return {n["Info"]["NodeID"] for n in doc["Nodes"]
                if n["ConnectionState"]["Status"] == "CONNECTED"}

    def stop(self) -> None:
        for proc in [*reversed(self.computes), self.requester]:
            proc.stop()

    def ui(self, route: str) -> str:
        return f"{self.requester.url}/ui/#{route}"

    def job(self, job_id: str) -> dict[str, Any]:
        status, doc = self.requester.api("GET", f"/api/v1/orchestrator/jobs/{job_id}")
        assert status == 200, doc
        return doc["Job"]

    def submit_cli(self, *args: str) -> str:
        """`bacalhau wasm run --no-wait --id-only ...` -> the job id."""
        done = self.requester.cli("wasm", "run", "--no-wait", "--id-only", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiNetwork]:
    net = UiNetwork(tmp_path_factory.mktemp("webui"))
    try:
        net.start(computes=2)
        yield net
    finally:
        net.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[UiBrowser]:
    ui = UiBrowser()
    try:
        yield ui
    finally:
        ui.close()


def _no_console_errors(browser: UiBrowser) -> None:
    errors = browser.console_errors()
    assert errors == [], f"the page logged errors: {errors}"


def _state_badge(browser: UiBrowser) -> str:
    return browser.text("h1 .badge")


def test_ui_is_served_with_a_strict_csp(network: UiNetwork, browser: UiBrowser) -> None:
    browser.open(f"{network.requester.url}/ui")  # redirects to /ui/, routes to #/jobs
    browser.wait(lambda: browser.driver.current_url.endswith("/ui/#/jobs"), what="#/jobs")
    browser.wait_text(".topbar", "Jobs")
    browser.wait(lambda: "connected" in browser.text("#health"), what="health indicator")
    # A script the CSP does not allow is refused (and logged as an error, collected here).
    browser.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        "document.head.appendChild(s);")
    assert browser.driver.execute_script("return window.__inline === undefined")
    refused = browser.console_errors()
    assert any("Content Security Policy" in e["message"] for e in refused), refused
    browser.console.clear()


def test_cli_job_is_listed_and_followed_to_completed_with_logs(
        network: UiNetwork, browser: UiBrowser) -> None:
    browser.open(network.ui("/jobs"))
    browser.wait_text("#jobs-table", "No jobs yet")
    job_id = network.submit_cli(str(ASSETS / "sleep.wasm"), "1500")

    row = f'tr[data-job-id="{job_id}"]'
    browser.wait(lambda: browser.find(row), what="the CLI's job in the jobs table")
    assert job_id[:10] in browser.text(row)
    browser.click(f"{row} a")
    browser.wait(lambda: browser.driver.current_url.endswith(f"#/jobs/{job_id}"), what="job page")

    browser.wait(lambda: _state_badge(browser) == "Completed", 60, what="Completed badge")
    assert network.job(job_id)["State"]["StateType"] == "Completed"
    browser.wait_text("#job-logs", "slept")
    browser.wait(lambda: browser.find("#job-logs-status").get_attribute("data-state")
                 == "complete", what="log stream complete")
    # executions: the node that ran it, Completed; results: the CID the node attached
    execution = browser.text("#job-executions tbody tr")
    assert "Completed" in execution
    assert any(c.node_id[:16] in execution for c in network.computes), execution
    cid = browser.wait(lambda: browser.text('#job-results td[data-col="cid"]'), what="CID")
    assert cid.startswith(("Qm", "baf")), cid
    history = browser.text("#job-history")
    assert "Job submitted" in history or "Submission" in history, history
    # back to the list: the row now says Completed
    browser.open(network.ui("/jobs"))
    browser.wait(lambda: browser.text(f'{row} td[data-col="state"]') == "Completed",
                 what="Completed in the jobs table")
    _no_console_errors(browser)


def test_stop_button_stops_a_running_job(network: UiNetwork, browser: UiBrowser) -> None:
    job_id = network.submit_cli(str(ASSETS / "sleep.wasm"), "120000")
    browser.open(network.ui(f"/jobs/{job_id}"))
    browser.wait(lambda: _state_badge(browser) == "Running", 30, what="Running badge")
    browser.wait_text("#job-logs-status", "streaming")
    browser.click('[data-action="stop"]')
    browser.click('[data-action="confirm-stop"]')
    browser.wait(lambda: _state_badge(browser) == "Stopped", 30, what="Stopped badge")
    assert network.job(job_id)["State"]["StateType"] == "Stopped"
    assert browser.find_all('[data-action="stop"]') == []  # no Stop on a terminal job
    _no_console_errors(browser)


def test_logs_stream_while_a_docker_job_runs(network: UiNetwork, browser: UiBrowser) -> None:
    status, doc = network.requester.api("GET", "/api/v1/orchestrator/nodes")
    assert status == 200, doc
    engines = {e for n in doc["Nodes"]
               for e in n["Info"]["ComputeNodeInfo"].get("ExecutionEngines") or []}
    if "docker" not in engines:
        pytest.skip("no compute node has a Docker engine (none answers on this machine)")
    done = network.requester.cli(
        "docker", "run", "--no-wait", "--id-only", TEST_IMAGE, "--",
        "sh", "-c", "echo first line; echo to stderr >&2; sleep 120")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    try:
        browser.open(network.ui(f"/jobs/{job_id}"))
        browser.wait(lambda: _state_badge(browser) == "Running", 60, what="Running badge")
        # the lines arrive over the WebSocket while the container still runs
        browser.wait_text("#job-logs", "first line", 30)
        browser.wait_text("#job-logs .stderr", "to stderr")
        assert _state_badge(browser) == "Running"
        assert "streaming" in browser.text("#job-logs-status")
        _no_console_errors(browser)
    finally:
        network.requester.api("DELETE", f"/api/v1/orchestrator/jobs/{job_id}", {"reason": "done"})


def test_filters_and_api_text_rendered_as_text(network: UiNetwork, browser: UiBrowser) -> None:
    name = "<b id=injected>bold</b>"
    spec = wordcount_job(name=name, extra={"Labels": {"team": "ui-test"}})
    status, doc = network.requester.api("PUT", "/api/v1/orchestrator/jobs", {"Job": spec})
    assert status == 200, doc
    job_id = doc["JobID"]
    wait_until(lambda: network.job(job_id)["State"]["StateType"] == "Completed", 30,
               what="the labelled job to complete")
    # labels filter (server side) + state filter (in the page): only this job is left
    browser.open(network.ui("/jobs?labels=team%3Dui-test&state=Completed"))
    browser.wait(lambda: len(browser.find_all("#jobs-table tbody tr[data-job-id]")) == 1
                 and browser.find(f'tr[data-job-id="{job_id}"]'), what="only the labelled job")
    assert name in browser.text(f'tr[data-job-id="{job_id}"]')
    assert browser.find_all("#injected") == []  # the name is text, not markup
    browser.open(network.ui("/jobs?state=Failed"))
    browser.wait_text("#jobs-table", "No job matches these filters.")
    _no_console_errors(browser)


def test_job_page_says_why_a_job_is_not_scheduled(network: UiNetwork,
                                                  browser: UiBrowser) -> None:
    spec = wordcount_job(extra={
        "Constraints": [{"Key": "zone", "Operator": "=", "Values": ["nowhere"]}]})
    spec["Tasks"][0]["Timeouts"] = {"QueueTimeout": 600}
    status, doc = network.requester.api("PUT", "/api/v1/orchestrator/jobs", {"Job": spec})
    assert status == 200, doc
    job_id = doc["JobID"]
    try:
        browser.open(network.ui(f"/jobs/{job_id}"))
        browser.wait(lambda: _state_badge(browser) == "Queued", 30, what="Queued badge")
        reason = browser.wait_text("#job-not-scheduled", "not enough nodes")
        assert "zone" in reason, reason  # the constraint that rules every node out
        _no_console_errors(browser)
    finally:
        network.requester.api("DELETE", f"/api/v1/orchestrator/jobs/{job_id}", {"reason": "done"})


def test_jobs_table_pages_through_the_server_listing(network: UiNetwork,
                                                    browser: UiBrowser) -> None:
    status, doc = network.requester.api(
        "GET", "/api/v1/orchestrator/jobs?order_by=created_at&reverse=true")
    assert status == 200, doc
    newest_first = [j["ID"] for j in doc["Items"]]
    assert len(newest_first) >= 4, newest_first

    def shown() -> list[str]:
        return [r.get_attribute("data-job-id")
                for r in browser.find_all("#jobs-table tbody tr[data-job-id]")]

    browser.open(network.ui("/jobs?size=2"))
    browser.wait(lambda: shown() == newest_first[:2], what="page 1: the two newest jobs")
    browser.click('[data-action="next"]')
    browser.wait(lambda: shown() == newest_first[2:4], what="page 2")
    browser.wait_text(".pager", "page 2")
    browser.click('[data-action="prev"]')
    browser.wait(lambda: shown() == newest_first[:2], what="back on page 1")
    assert not browser.find('[data-action="prev"]').is_enabled()
    _no_console_errors(browser)


def test_overview_draws_charts(network: UiNetwork, browser: UiBrowser) -> None:
    browser.open(network.ui("/overview"))
    browser.wait(lambda: browser.find_all("#chart-created svg rect"), what="created chart bars")
    browser.wait(lambda: browser.find_all("#chart-throughput svg rect"), what="throughput bars")
    assert "2 / 2" in browser.text("#overview-stats")  # compute nodes connected
    _no_console_errors(browser)


def test_killed_compute_node_is_shown_disconnected(network: UiNetwork,
                                                   browser: UiBrowser) -> None:
    victim, survivor = network.computes
    victim_id, survivor_id = victim.node_id, survivor.node_id  # read while they run
    browser.open(network.ui("/nodes"))

    def connection(node_id: str) -> str:
        return browser.text(f'tr[data-node-id="{node_id}"] td[data-col="connection"]')

    browser.wait(lambda: connection(victim_id) == "CONNECTED"
                 and connection(survivor_id) == "CONNECTED", what="both CONNECTED")
    row = f'tr[data-node-id="{victim_id}"]'
    assert len(browser.find_all(f"{row} .bar")) >= 3  # CPU, memory, disk capacity bars
    assert "zone=zone-0" in browser.text(row)
    assert "wasm" in browser.text(row)

    victim.stop(sig=signal.SIGKILL)
    browser.wait(lambda: connection(victim_id) == "DISCONNECTED", DISCONNECT_TIMEOUT + 20,
                 what="the killed node DISCONNECTED")
    assert connection(survivor_id) == "CONNECTED"
    browser.click(f"{row} a")
    browser.wait(lambda: "DISCONNECTED" in browser.text("h1"), what="node page DISCONNECTED")
    browser.wait_text("main", "Disconnected since")
    _no_console_errors(browser)


def test_manual_approval_buttons_approve_a_pending_node(tmp_path: Path,
                                                        browser: UiBrowser) -> None:
    requester = ServeProcess(
        data_dir=tmp_path / "requester", roles=("--orchestrator",),
        extra_args=["--listen", "/ip4/127.0.0.1/tcp/0",
                    "-c", "Orchestrator.NodeManager.ManualApproval=true"])
    compute: ServeProcess | None = None
    try:
        requester.start()
        compute = ServeProcess(
            data_dir=tmp_path / "compute", host="127.0.0.4", roles=("--compute",),
            extra_args=["--listen", "/ip4/127.0.0.4/tcp/0",
                        "--peers", ",".join(requester.addresses()),
                        "-c", f"Compute.Heartbeat.Interval={HEARTBEAT}s"])
        compute.start()
        node_id = compute.node_id
        row = f'tr[data-node-id="{node_id}"]'
        browser.open(f"{requester.url}/ui/#/nodes")
        browser.wait(lambda: browser.text(f'{row} td[data-col="membership"]') == "PENDING", 30,
                     what="the new node PENDING")
        browser.click(f'{row} [data-action="approve"]')
        browser.wait(lambda: browser.text(f'{row} td[data-col="membership"]') == "APPROVED",
                     what="the node APPROVED")
        status, doc = requester.api("GET", f"/api/v1/orchestrator/nodes/{node_id}")
        assert status == 200 and doc["Node"]["Membership"] == "APPROVED", doc
        # under manual approval an approved node can still be rejected from its page
        browser.click(f"{row} a")
        browser.click('h1 [data-action="reject"]')
        browser.wait(lambda: "REJECTED" in browser.text("h1"), what="the node REJECTED")
        _no_console_errors(browser)
    finally:
        if compute is not None:
            compute.stop()
        requester.stop()
