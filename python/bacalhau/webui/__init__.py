"""The web UI: a page of plain HTML, CSS and JavaScript modules (no build step) served by a
requester node at `/ui/`, showing jobs, nodes and an overview through the public REST API only.

`setup_webui_routes(app)` adds `/ui` (redirects to `/ui/`), `/ui/` (the page) and
`/ui/<file>` (its static files, from `static/` beside this module) to the API app; every UI
response carries a strict Content-Security-Policy (scripts, styles and connections from the
page's own origin only; no inline script or style, no frames). Routing inside the page is
hash-based (`#/jobs`, `#/jobs/<id>`, `#/nodes`, `#/nodes/<id>`, `#/overview`).

`WebUI.Listen` (`host:port`, empty by default) additionally serves the same app, API
included, on its own address, as Bacalhau's `WebUI.Listen` does: `start_webui_site`.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from bacalhau.config import Config
from bacalhau.errors import ValidationError

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
UI_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the installed package; revalidate instead of guessing an age.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


def static_files(static_dir: Path = STATIC_DIR) -> dict[str, Path]:
    """The files the UI serves, by URL name (`app.js`, `views/jobs.js`): exactly the regular
    files under `static_dir`, so no request path can reach anything else."""
    return {
        path.relative_to(static_dir).as_posix(): path
        for path in sorted(static_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def setup_webui_routes(app: web.Application, static_dir: Path = STATIC_DIR) -> None:
    """Serve the UI under `/ui/` from `static_dir` (the page is `index.html`)."""
    files = static_files(static_dir)
    if "index.html" not in files:
        raise FileNotFoundError(
            f"the web UI's index.html is missing from {static_dir}: reinstall bacalhau-py "
            "or set WebUI.Enabled=false"
        )

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(PREFIX + "/")

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name", "") or "index.html"
        path = files.get(name)
        if path is None:
            raise web.HTTPNotFound()
        content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        headers = dict(UI_HEADERS)
        headers["Content-Type"] = content_type or "application/octet-stream"
        if content_type and content_type.startswith("text/"):
            headers["Content-Type"] += "; charset=utf-8"
        return web.Response(body=path.read_bytes(), headers=headers)

    app.router.add_get(PREFIX, redirect)
    app.router.add_get(PREFIX + "/", serve)
    app.router.add_get(PREFIX + "/{name:.+}", serve)


def webui_enabled(config: Config) -> bool:
    """`WebUI.Enabled` (default true): whether a requester node serves the UI."""
    value = config.get("WebUI.Enabled", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off")
    return bool(value)


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (or `:port`, meaning 0.0.0.0) of `WebUI.Listen` -> (host, port)."""
    text = str(value).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValidationError(
            f'WebUI.Listen: invalid address "{value}": use host:port, e.g. 127.0.0.1:8438'
        )
    return host.strip("[]") or "0.0.0.0", int(port_text)


async def start_webui_site(runner: web.AppRunner, config: Config) -> str:
    """When `WebUI.Listen` is set (and the UI enabled), serve the API app of `runner` on that
    address too; returns the UI's URL there, or "" when nothing was started."""
    listen = str(config.get("WebUI.Listen", "") or "").strip()
    if not listen or not webui_enabled(config):
        return ""
    host, port = parse_listen(listen)
    before = {tuple(a[:2]) for a in runner.addresses}
    await web.TCPSite(runner, host, port).start()
    added = [a for a in runner.addresses if tuple(a[:2]) not in before]
    bound = int(added[0][1]) if added else port
    return f"http://{host}:{bound}{PREFIX}/"


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "STATIC_DIR",
    "parse_listen",
    "setup_webui_routes",
    "start_webui_site",
    "static_files",
    "webui_enabled",
]
