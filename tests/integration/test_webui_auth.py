"""The web UI's API-key handling in headless Chromium, against a stub API.

API authentication is built on another branch; until it merges, a small aiohttp app stands in
for it here (the only fake: it answers 401 with an APIError body without a valid
`Authorization: Bearer` key, as the reference §9 describes) while the UI files are the real
ones, served by the real `setup_webui_routes`. The page must ask for the key, keep it in
sessionStorage only, and send it on every API request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from bacalhau.models import Job, JobState
from bacalhau.webui import setup_webui_routes
from tests.conftest import free_port
from tests.webui_browser import UiBrowser, browser_missing

pytestmark = [pytest.mark.integration]
_missing = browser_missing()
if _missing:
    pytestmark.append(pytest.mark.skip(reason=f"web UI browser tests need a browser: {_missing}"))

API_KEY = "ui-test-key-0123456789abcdef"
OPEN_PATHS = ("/api/v1/agent/alive", "/api/v1/agent/version")


class StubAPI:
    """An API that wants `Bearer API_KEY` and lists one job; runs on its own thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[tuple[str, str]] = []  # (path, Authorization) of /api requests
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith("/api/"):
                header = request.headers.get("Authorization", "")
                self.seen.append((request.path, header))
                if request.path not in OPEN_PATHS and header != f"Bearer {API_KEY}":
                    return web.json_response({
                        "Status": 401, "Message": "Request Unauthorized", "Code": "Unauthorized",
                        "Component": "APIServer", "RequestID": "stub",
                        "Details": {"reason": "missing or invalid API key"}}, status=401)
            return await handler(request)

        job = Job(id="j-00000000-0000-4000-8000-000000000001", name="secret-job", type="batch",
                  state=JobState("Completed"), create_time=1, modify_time=1)

        async def jobs(request: web.Request) -> web.Response:
            return web.json_response({"Items": [job.to_dict()], "NextToken": ""})

        async def alive(request: web.Request) -> web.Response:
            return web.json_response({"Status": "OK"})

        async def version(request: web.Request) -> web.Response:
            return web.json_response({"GitVersion": "v1.5.0-stub"})

        app = web.Application(middlewares=[auth])
        app.router.add_get("/api/v1/orchestrator/jobs", jobs)
        app.router.add_get("/api/v1/agent/alive", alive)
        app.router.add_get("/api/v1/agent/version", version)
        setup_webui_routes(app)
        return app

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.runner = web.AppRunner(self._app())
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(10), "the stub API did not start"

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def stub_api() -> Iterator[StubAPI]:
    api = StubAPI()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def browser() -> Iterator[UiBrowser]:
    ui = UiBrowser()
    try:
        yield ui
    finally:
        ui.close()


def _enter_key(browser: UiBrowser, key: str) -> None:
    browser.wait(lambda: browser.find("#auth-dialog").get_attribute("open") is not None,
                 what="the API key dialog")
    field = browser.find("#auth-key")
    field.clear()
    field.send_keys(key)
    browser.click("#auth-save")


def test_a_401_asks_for_a_key_kept_in_the_session_and_sent_as_bearer(
        stub_api: StubAPI, browser: UiBrowser) -> None:
    browser.open(f"{stub_api.url}/ui/#/jobs")
    _enter_key(browser, "wrong-key")  # refused: asked again
    _enter_key(browser, API_KEY)
    browser.wait_text("#jobs-table", "secret-job")
    storage = browser.driver.execute_script(
        "return [sessionStorage.getItem('bacalhau.apiKey'), localStorage.length,"
        " document.cookie]")
    assert storage == [API_KEY, 0, ""]
    # every API request after the key was given carried it
    seen = list(stub_api.seen)
    first_ok = next(i for i, (_, auth) in enumerate(seen) if auth == f"Bearer {API_KEY}")
    assert all(auth == f"Bearer {API_KEY}" for _, auth in seen[first_ok:]), seen[first_ok:]
    # "Forget API key" drops it
    browser.click("#auth-button")
    assert browser.driver.execute_script(
        "return sessionStorage.getItem('bacalhau.apiKey')") is None
    # the only console errors are the refused (401) requests themselves
    errors = [e for e in browser.console_errors() if "401" not in e["message"]]
    assert errors == [], errors


def test_declining_the_prompt_shows_the_error_without_asking_again(
        stub_api: StubAPI, browser: UiBrowser) -> None:
    browser.open(f"{stub_api.url}/ui/#/jobs")
    browser.wait(lambda: browser.find("#auth-dialog").get_attribute("open") is not None,
                 what="the API key dialog")
    browser.click("#auth-cancel")
    browser.wait_text("#banner", "Request Unauthorized")
    assert "API key button" in browser.text("#banner")

    def job_requests() -> int:
        return sum(1 for path, _ in stub_api.seen if path == "/api/v1/orchestrator/jobs")

    after_cancel = job_requests()
    # the page keeps refreshing (and failing) without opening the dialog again
    browser.wait(lambda: job_requests() >= after_cancel + 2, what="two more refreshes")
    assert browser.find("#auth-dialog").get_attribute("open") is None
    # the API key button brings the prompt back
    browser.click("#auth-button")
    field = browser.wait(lambda: browser.find("#auth-key"), what="key field")
    field.send_keys(API_KEY)
    browser.click("#auth-save")
    browser.wait_text("#jobs-table", "secret-job")
