"""The web UI's serving: `/ui` redirects, `/ui/` and its files carry the strict CSP, nothing
outside the static folder is reachable, only requester nodes serve it, `WebUI.Enabled=false`
turns it off, `WebUI.Listen` serves it on its own address, and the wheel ships the files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.config import Config
from bacalhau.errors import ValidationError
from bacalhau.models import NodeInfo
from bacalhau.webui import (
    CONTENT_SECURITY_POLICY,
    STATIC_DIR,
    parse_listen,
    start_webui_site,
    static_files,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


class NoRequester:
    """The UI routes never call the orchestrator; a requester only has to exist."""


async def _client(config: Config | None = None, requester: object = None) -> TestClient:
    app = create_app(requester, node_info_provider=NodeInfo,  # type: ignore[arg-type]
                     config=config or Config())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_ui_redirects_and_serves_the_page_with_a_strict_csp() -> None:
    client = await _client(requester=NoRequester())
    try:
        resp = await client.get("/ui", allow_redirects=False)
        assert resp.status == 301 and resp.headers["Location"] == "/ui/"
        page = await client.get("/ui/")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
        html = await page.text()
        assert '<script type="module" src="app.js">' in html
        module = await client.get("/ui/app.js")
        assert module.status == 200
        assert module.headers["Content-Type"].startswith("text/javascript")
        assert module.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        css = await client.get("/ui/app.css")
        assert css.headers["Content-Type"].startswith("text/css")
    finally:
        await client.close()


async def test_only_the_static_files_are_reachable() -> None:
    client = await _client(requester=NoRequester())
    try:
        for path in ("/ui/nope.js", "/ui/../webui/__init__.py", "/ui/%2e%2e/__init__.py",
                     "/ui/..%2f__init__.py"):
            resp = await client.get(path)
            assert resp.status == 404, path
            assert (await resp.json())["Code"] == "NotFound"
        # the API is untouched next to it
        alive = await client.get("/api/v1/agent/alive")
        assert (await alive.json()) == {"Status": "OK"}
    finally:
        await client.close()


async def test_every_module_the_page_imports_is_served() -> None:
    files = static_files()
    imports = set()
    for name, path in files.items():
        if name.endswith(".js"):
            imports |= set(re.findall(r'from "\./([\w.-]+)"', path.read_text()))
    assert imports and imports <= set(files), imports - set(files)
    # No markup built from strings: every API text goes through text nodes.
    for name, path in files.items():
        if name.endswith(".js"):
            text = path.read_text()
            assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
            assert "eval(" not in text, name


async def test_no_ui_on_compute_only_nodes_or_when_disabled() -> None:
    compute_only = await _client(requester=None)
    disabled = await _client(Config({"WebUI": {"Enabled": "false"}}), requester=NoRequester())
    try:
        for client in (compute_only, disabled):
            resp = await client.get("/ui/")
            assert resp.status == 404
    finally:
        await compute_only.close()
        await disabled.close()


async def test_webui_listen_serves_the_ui_on_its_own_port() -> None:
    config = Config({"WebUI": {"Listen": "127.0.0.1:0"}})
    app = create_app(NoRequester(), node_info_provider=NodeInfo,  # type: ignore[arg-type]
                     config=config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        url = await start_webui_site(runner, config)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/ui/", url), url
        async with ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            assert "Content-Security-Policy" in resp.headers
        assert await start_webui_site(runner, Config()) == ""  # not set: nothing started
    finally:
        await runner.cleanup()


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:8438") == ("0.0.0.0", 8438)
    assert parse_listen(":8438") == ("0.0.0.0", 8438)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8438x", "host", "host:99999"):
        with pytest.raises(ValidationError, match=r"WebUI\.Listen"):
            parse_listen(bad)


def test_the_wheel_includes_the_static_files() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = [i["path"] for i in pyproject["tool"]["maturin"]["include"]]
    static = STATIC_DIR.relative_to(REPO).as_posix()
    shipped = {p for g in globs for p in REPO.glob(g) if p.is_file()}
    assert set(static_files().values()) <= shipped, f"add a {static}/* include to pyproject"
