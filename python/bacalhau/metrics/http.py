"""`/metrics` on the API port (Prometheus text exposition) and the middleware that times
every API request by route.

Access (`Metrics.Access`): `read:agent` (the default) asks for a user with that capability
when the node has users (`API.Auth.Users`; a node without users is open anyway, like the rest
of its API), `open` serves anyone. `Metrics.Enabled: false` removes the endpoint.
`Metrics.Listen` (`host:port`) serves `/metrics` alone on its own address too: the way to
scrape a compute-only node, which has no API (`start_metrics_site`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bacalhau.config import Config
from bacalhau.errors import BacalhauError, ConfigError
from bacalhau.metrics.node import NodeMetrics

METRICS_PATH = "/metrics"
ACCESS_KEY = "Metrics.Access"
ACCESS_CHOICES = ("read:agent", "open")
METRICS = web.AppKey("metrics", NodeMetrics)
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def metrics_enabled(config: Config) -> bool:
    return config.flag("Metrics.Enabled")


def metrics_access(config: Config) -> str:
    """`Metrics.Access`, checked: ConfigError naming the key otherwise."""
    access = str(config.get(ACCESS_KEY) or "read:agent").strip().lower()
    if access not in ACCESS_CHOICES:
        raise ConfigError(f'{ACCESS_KEY}: invalid value "{access}": use read:agent (users '
                          "with that capability, when the node has users) or open")
    return access


def route_of(request: web.Request) -> str:
    """The route template (`/api/v1/orchestrator/jobs/{id}`), so that ids do not make new
    series; `unmatched` for paths no route serves."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def request_timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time the request (outermost middleware: rate-limited and failed requests count too)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        request.app[METRICS].observe_request(method, route_of(request), status,
                                             time.perf_counter() - start)


async def serve_metrics(request: web.Request) -> web.Response:
    """GET /metrics: every metric of the node (after the access check)."""
    if request.app[_ACCESS] != "open":
        from bacalhau.api.auth import AUTHENTICATOR, USERS_KEY, ForbiddenError

        auth = request.app.get(AUTHENTICATOR)
        if auth is not None and auth.enabled:
            user = await auth.authenticate(request.headers.get("Authorization", ""))
            if not user.may("read:agent"):
                raise ForbiddenError(
                    "Request Forbidden",
                    hint=f"the user needs the capability read:agent in {USERS_KEY}, or set "
                    f"{ACCESS_KEY}=open to serve metrics to anyone",
                    details={"reason": f"user {user.name} lacks capability read:agent"})
    body, content_type = await request.app[METRICS].scrape()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


_ACCESS = web.AppKey("metrics_access", str)


async def start_metrics_site(metrics: NodeMetrics, config: Config) -> tuple[Any, str]:
    """When `Metrics.Listen` is set (and metrics are enabled), serve `/metrics` alone on that
    address; returns (the runner to clean up, the URL), or (None, "")."""
    from bacalhau.api.auth import AUTHENTICATOR, Authenticator
    from bacalhau.api.middleware import error_middleware
    from bacalhau.webui import parse_listen

    listen = str(config.get("Metrics.Listen") or "").strip()
    if not listen or not metrics_enabled(config):
        return None, ""
    try:
        host, port = parse_listen(listen)
    except BacalhauError:
        raise ConfigError(f'Metrics.Listen: invalid address "{listen}": use host:port, e.g. '
                          "127.0.0.1:9100") from None
    app = web.Application(middlewares=[error_middleware])
    app[AUTHENTICATOR] = Authenticator.from_config(config)
    setup_metrics(app, metrics, config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[0][1]) if runner.addresses else port
    return runner, f"http://{host}:{bound}{METRICS_PATH}"


def setup_metrics(app: web.Application, metrics: NodeMetrics, config: Config) -> None:
    """Serve `metrics` at /metrics on `app` (unless `Metrics.Enabled` is false); the caller
    puts `request_timing` first among the app's middlewares."""
    app[METRICS] = metrics
    app[_ACCESS] = metrics_access(config)
    if metrics_enabled(config):
        app.router.add_get(METRICS_PATH, serve_metrics)
