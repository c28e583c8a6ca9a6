"""The web UI with API authentication on, end to end: a real `bacalhau serve --orchestrator
--compute` with users from a config file (`-c users.yaml`), jobs submitted by the real CLI in
other processes (`BACALHAU_API_KEY` of a writer), and the page in headless Chromium (Debian's
`chromium` + `chromedriver` through Selenium).

The page asks for a key; a wrong key is refused with a clear message and asked for again; a
read-only key (`read:job`, `read:node`) lists the CLI's jobs and reads their logs over the logs
WebSocket (the key offered as the `bacalhau-auth` subprotocol), live while a container runs
(when Docker answers here), but Stop answers a clear "Forbidden" and the job keeps running; a
writer's key stops it. The key lives in this tab's sessionStorage only: a new browser session
asks again. The logs WebSocket's accept and refuse paths are also checked at the API level
with aiohttp's client.

Console errors: the only ones allowed are Chromium's own lines for the refused requests,
`<node url>/api/v1/... - Failed to load resource: the server responded with a status of 401
(Unauthorized)` (or `403 (Forbidden)`); `_unexpected_console_errors` filters exactly those
and nothing else (a failed WebSocket handshake, a CSP violation or an exception fails the test).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bacalhau.executors.docker import TEST_IMAGE
from tests.conftest import ASSETS, ServeProcess, wait_until
from tests.webui_browser import UiBrowser, browser_missing

pytestmark = [pytest.mark.integration, pytest.mark.slow]
_missing = browser_missing()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"web UI browser tests need a browser: {_missing}"))

WRITER_KEY = "writer-" + secrets.token_hex(16)
READER_KEY = "reader-" + secrets.token_hex(16)
KEY_ITEM = "bacalhau.apiKey"
JOBS = "/api/v1/orchestrator/jobs"


class AuthNode:
    """A hybrid node with a writer and a read-only API key user."""

    def __init__(self, base: Path) -> None:
        users = base / "users.yaml"
        users.write_text(yaml.safe_dump({"API": {"Auth": {"Users": [
            {"Alias": "writer", "APIKey": WRITER_KEY,
             "Capabilities": [{"Actions": ["read:job", "write:job", "read:node"]}]},
            {"Alias": "reader", "APIKey": READER_KEY,
             "Capabilities": [{"Actions": ["read:job", "read:node"]}]},
        ]}}}))
        self.server = ServeProcess(data_dir=base / "node", extra_args=["-c", str(users)])

    @property
    def url(self) -> str:
        return self.server.url

    def ui(self, route: str) -> str:
        return f"{self.url}/ui/#{route}"

    def cli(self, *args: str, key: str = WRITER_KEY) -> subprocess.CompletedProcess[str]:
        env = self.server.env()
        env.pop("BACALHAU_API_USERNAME", None)
        env.pop("BACALHAU_API_PASSWORD", None)
        env["BACALHAU_API_KEY"] = key
        return subprocess.run([sys.executable, "-m", "bacalhau", *args], capture_output=True,
                              text=True, timeout=60, env=env)

    def submit(self, *args: str) -> str:
        done = self.cli("wasm", "run", "--no-wait", "--id-only", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"Bearer {WRITER_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    def state(self, job_id: str) -> str:
        return str(self.get(f"{JOBS}/{job_id}")["Job"]["State"]["StateType"])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthNode]:
    auth_node = AuthNode(tmp_path_factory.mktemp("webui-auth"))
    auth_node.server.start()
    try:
        yield auth_node
    finally:
        auth_node.server.stop()


@pytest.fixture(scope="module")
def finished_job(node: AuthNode) -> str:
    """A CLI job that printed a line and completed."""
    job_id = node.submit(str(ASSETS / "probe.wasm"), "hello-from-the-cli")
    wait_until(lambda: node.state(job_id) == "Completed", 60, what="the probe job to complete")
    return job_id


@pytest.fixture
def browser() -> Iterator[UiBrowser]:
    ui = UiBrowser()
    try:
        yield ui
    finally:
        ui.close()


def _unexpected_console_errors(browser: UiBrowser, node: AuthNode) -> list[dict[str, Any]]:
    """Console errors other than Chromium's line for a refused (401/403) API request."""
    refused = re.compile(
        re.escape(node.url) + r"/api/v1/\S+ - Failed to load resource: the server responded "
        r"with a status of (401 \(Unauthorized\)|403 \(Forbidden\))")
    return [e for e in browser.console_errors() if not refused.fullmatch(e["message"])]


def _dialog_open(browser: UiBrowser) -> bool:
    return browser.find("#auth-dialog").get_attribute("open") is not None


def _wait_dialog(browser: UiBrowser, expect: str) -> None:
    browser.wait(lambda: _dialog_open(browser) and expect in browser.text("#auth-message"),
                 what=f"the API key dialog saying {expect!r}")


def _enter_key(browser: UiBrowser, key: str, expect: str) -> None:
    """Wait for the key dialog saying `expect`, then type `key` into it."""
    _wait_dialog(browser, expect)
    field = browser.find("#auth-key")
    field.clear()
    field.send_keys(key)
    browser.click("#auth-save")


def _session(browser: UiBrowser) -> list[Any]:
    return list(browser.driver.execute_script(
        f"return [sessionStorage.getItem('{KEY_ITEM}'), localStorage.length, document.cookie]"))


def _requests_to(browser: UiBrowser, path: str) -> int:
    """How many requests the page made to `path` (from its resource timing entries)."""
    return int(browser.driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter((e) => new URL(e.name).pathname === arguments[0]).length", path))


def _badge(browser: UiBrowser) -> str:
    return browser.text("h1 .badge")


def test_read_only_key_lists_and_reads_logs_but_cannot_stop_a_writer_can(
        node: AuthNode, finished_job: str, browser: UiBrowser) -> None:
    running = node.submit(str(ASSETS / "sleep.wasm"), "300000")
    try:
        browser.open(node.ui("/jobs"))
        _enter_key(browser, "wrong-" + secrets.token_hex(16), "needs an API key")
        # refused with the reason, and asked again; the refused key is not kept
        _wait_dialog(browser, "The API refused this key (invalid API key)")
        assert _session(browser) == [None, 0, ""]
        _enter_key(browser, READER_KEY, "The API refused this key")
        for job_id in (finished_job, running):
            browser.wait(lambda j=job_id: browser.find(f'tr[data-job-id="{j}"]'),
                         what=f"the CLI's job {job_id} in the jobs table")
        assert _session(browser) == [READER_KEY, 0, ""]  # sessionStorage only, no cookie

        # the finished job's logs come over the WebSocket, authenticated by the subprotocol
        browser.open(node.ui(f"/jobs/{finished_job}"))
        browser.wait_text("#job-logs", "hello-from-the-cli")
        browser.wait(lambda: browser.find("#job-logs-status").get_attribute("data-state")
                     == "complete", what="log stream complete")

        # Stop with the read-only key: a clear Forbidden, and the job keeps running
        browser.open(node.ui(f"/jobs/{running}"))
        browser.wait(lambda: _badge(browser) == "Running", 60, what="Running badge")
        browser.click('[data-action="stop"]')
        browser.click('[data-action="confirm-stop"]')
        banner = browser.wait_text("#banner", "Forbidden")
        assert "lacks capability write:job" in banner, banner
        assert "Forget API key" in banner, banner
        path = f"{JOBS}/{running}"
        polled = _requests_to(browser, path)
        browser.wait(lambda: _requests_to(browser, path) >= polled + 2,
                     what="two more refreshes of the job page")
        assert "Forbidden" in browser.text("#banner")  # an action's error stays
        assert node.state(running) == "Running"
        assert _badge(browser) == "Running"

        # a writer's key: forget the reader's, get asked, stop the job
        browser.click("#auth-button")
        assert _session(browser)[0] is None
        _enter_key(browser, WRITER_KEY, "needs an API key")
        browser.click('[data-action="stop"]')
        browser.click('[data-action="confirm-stop"]')
        browser.wait(lambda: _badge(browser) == "Stopped", 30, what="Stopped badge")
        assert node.state(running) == "Stopped"
        assert _session(browser) == [WRITER_KEY, 0, ""]
        errors = _unexpected_console_errors(browser, node)
        assert errors == [], errors
        # the 401s and the 403 did happen (the filter above is not vacuous)
        assert {"401", "403"} <= {m for e in browser.console for m in ("401", "403")
                                  if f"status of {m}" in e["message"]}
    finally:
        if node.state(running) not in ("Stopped", "Completed", "Failed"):
            node.cli("job", "stop", running)

    # a new browser session knows no key: it asks again
    fresh = UiBrowser()
    try:
        fresh.open(node.ui(f"/jobs/{finished_job}"))
        fresh.wait(lambda: _dialog_open(fresh), what="the API key dialog in a new session")
        assert _session(fresh) == [None, 0, ""]
    finally:
        fresh.close()


def test_read_only_key_follows_a_running_containers_logs(
        node: AuthNode, browser: UiBrowser) -> None:
    nodes = node.get("/api/v1/orchestrator/nodes")["Nodes"]
    engines = {e for n in nodes for e in n["Info"]["ComputeNodeInfo"].get("ExecutionEngines") or []}
    if "docker" not in engines:
        pytest.skip("the node has no Docker engine (no Docker daemon answers on this machine)")
    done = node.cli("docker", "run", "--no-wait", "--id-only", TEST_IMAGE, "--",
                    "sh", "-c", "echo first line; echo to stderr >&2; sleep 300")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    try:
        browser.open(node.ui(f"/jobs/{job_id}"))
        _enter_key(browser, READER_KEY, "needs an API key")
        browser.wait(lambda: _badge(browser) == "Running", 60, what="Running badge")
        # the lines arrive over the authenticated WebSocket while the container still runs
        browser.wait_text("#job-logs", "first line", 30)
        browser.wait_text("#job-logs .stderr", "to stderr")
        assert _badge(browser) == "Running"
        assert "streaming" in browser.text("#job-logs-status")
        errors = _unexpected_console_errors(browser, node)
        assert errors == [], errors
    finally:
        node.cli("job", "stop", job_id)


def test_declining_the_prompt_shows_the_error_without_asking_again(
        node: AuthNode, finished_job: str, browser: UiBrowser) -> None:
    browser.open(node.ui("/jobs"))
    browser.wait(lambda: _dialog_open(browser), what="the API key dialog")
    browser.click("#auth-cancel")
    browser.wait_text("#banner", "Request Unauthorized")
    assert "API key button" in browser.text("#banner")
    asked = _requests_to(browser, JOBS)
    # the page keeps refreshing (and failing) without opening the dialog again
    browser.wait(lambda: _requests_to(browser, JOBS) >= asked + 2, what="two more refreshes")
    assert not _dialog_open(browser)
    # the API key button brings the prompt back
    browser.click("#auth-button")
    _enter_key(browser, READER_KEY, "Enter an API key")
    browser.wait(lambda: browser.find(f'tr[data-job-id="{finished_job}"]'), what="the job")
    errors = _unexpected_console_errors(browser, node)
    assert errors == [], errors


def _offer(key: str) -> list[str]:
    return ["bacalhau-auth", base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")]


async def _ws_lines(url: str, **kwargs: Any) -> tuple[str | None, list[str]]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, **kwargs) as ws:
        lines = [msg.json()["value"]["Line"] async for msg in ws
                 if msg.type == aiohttp.WSMsgType.TEXT]
        return ws.protocol, lines


async def _ws_refused(url: str, **kwargs: Any) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            await session.ws_connect(url, **kwargs)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
    raise AssertionError("the WebSocket was accepted")


def test_logs_websocket_accepts_the_subprotocol_key_and_refuses_others(
        node: AuthNode, finished_job: str) -> None:
    url = f"{node.url}{JOBS}/{finished_job}/logs"
    protocol, lines = asyncio.run(_ws_lines(url, protocols=_offer(READER_KEY)))
    assert protocol == "bacalhau-auth"
    assert "hello-from-the-cli" in "".join(lines)
    # the CLI's header, and `job logs` with a read-only key
    protocol, lines = asyncio.run(_ws_lines(
        url, headers={"Authorization": f"Bearer {READER_KEY}"}))
    assert protocol is None and "hello-from-the-cli" in "".join(lines)
    logs = node.cli("job", "logs", finished_job, key=READER_KEY)
    assert logs.returncode == 0 and "hello-from-the-cli" in logs.stdout, logs.stderr
    # refused: no key, a wrong key, the key in the wrong place
    assert asyncio.run(_ws_refused(url)) == 401
    assert asyncio.run(_ws_refused(url, protocols=_offer("wrong-" + secrets.token_hex(16)))) \
        == 401
    assert asyncio.run(_ws_refused(url, protocols=["bacalhau-auth"])) == 401
    assert asyncio.run(_ws_refused(url, protocols=[_offer(READER_KEY)[1]])) == 401
    # the server's log holds no key
    text = (node.server.log_path.read_text() if node.server.log_path else "")
    for secret in (READER_KEY, WRITER_KEY, _offer(READER_KEY)[1]):
        assert secret not in text
