"""The REST API application: `create_app` wires routes, middleware and the node's collaborators
into an aiohttp app (wire-compatible with Bacalhau v1.5+, reference §3); `start_api` serves it.

A node with a `Requester` (an orchestrator) serves `/api/v1/orchestrator/*`; every node serves
`/api/v1/agent/*` and the legacy redirects.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSCloseCode, web

from bacalhau.config import Config, parse_duration
from bacalhau.errors import BacalhauError, ConfigError
from bacalhau.metrics import NodeMetrics
from bacalhau.metrics.http import request_timing, setup_metrics
from bacalhau.models import NodeInfo
from bacalhau.models.resources import parse_bytes
from bacalhau.webui import setup_webui_routes, webui_enabled

from . import auth, openapi
from .limits import RATE_LIMITER, RateLimiter, rate_limit_middleware
from .middleware import (
    add_response_headers,
    client_version_middleware,
    cors_middleware,
    error_middleware,
)
from .routes import setup_agent_routes, setup_orchestrator_routes
from .state import (
    CONFIG,
    DEBUG_INFO,
    HANDLER_TIMEOUT,
    NODE_INFO,
    REQUESTER,
    WEBSOCKETS,
    RequesterFacade,
)

MAX_BODY_BYTES = 10 * 1024 * 1024  # the default of API.MaxBodySize
HANDLER_TIMEOUT_S = 30.0  # the default of API.HandlerTimeout


def api_limits(config: Config) -> tuple[int, float]:
    """(`API.MaxBodySize` in bytes, `API.HandlerTimeout` in seconds); ConfigError naming the
    key when either is not a positive size / duration."""
    try:
        size = parse_bytes(str(config.get("API.MaxBodySize", "10MiB")), "API.MaxBodySize")
        timeout = parse_duration(config.get("API.HandlerTimeout", "30s"), "API.HandlerTimeout")
    except BacalhauError as exc:
        raise ConfigError(str(exc)) from None
    if size <= 0:
        raise ConfigError('API.MaxBodySize: must be a positive size such as "10MiB"')
    if timeout <= 0:
        raise ConfigError('API.HandlerTimeout: must be a positive duration such as "30s"')
    return size, timeout


def create_app(
    requester: RequesterFacade | None,
    *,
    node_info_provider: Callable[[], NodeInfo],
    config: Config,
    debug_info: Mapping[str, Callable[[], Any]] | None = None,
    handler_timeout: float | None = None,
    metrics: NodeMetrics | None = None,
) -> web.Application:
    """Build the API app of one node.

    `requester` is the orchestrator facade, or None on a compute-only node (then only the agent
    endpoints exist). `node_info_provider` returns this node's current NodeInfo (for
    `/agent/node`); `debug_info` maps component names to callables returning JSON-able debug
    data (for `/agent/debug`). Handlers other than WebSockets are cut off after
    `handler_timeout` seconds (default `API.HandlerTimeout`) with a 503; bodies larger than
    `API.MaxBodySize` get a 413. With `metrics`, every request is timed by route and
    `/metrics` serves them (`Metrics.Enabled`, `Metrics.Access`; bacalhau.metrics).
    """
    max_body, configured_timeout = api_limits(config)
    if handler_timeout is None:
        handler_timeout = configured_timeout
    timing = [request_timing] if metrics is not None else []
    app = web.Application(
        client_max_size=max_body,
        middlewares=[*timing, error_middleware, rate_limit_middleware, cors_middleware,
                     client_version_middleware, auth.auth_middleware],
    )
    if metrics is not None:
        setup_metrics(app, metrics, config)
    limiter = RateLimiter.from_config(config)
    if limiter is not None:
        app[RATE_LIMITER] = limiter
    auth.setup(app, config)
    openapi.setup(app, orchestrator=requester is not None,
                  auth_required=app[auth.AUTHENTICATOR].enabled)
    app[NODE_INFO] = node_info_provider
    app[CONFIG] = config
    app[DEBUG_INFO] = dict(debug_info or {})
    app[HANDLER_TIMEOUT] = float(handler_timeout)
    app[WEBSOCKETS] = weakref.WeakSet()
    if requester is not None:
        app[REQUESTER] = requester
        setup_orchestrator_routes(app)
        if webui_enabled(config):
            setup_webui_routes(app)  # the web UI (/ui/), requester nodes only
    setup_agent_routes(app)
    app.on_response_prepare.append(add_response_headers)
    app.on_shutdown.append(_close_websockets)
    return app


async def _close_websockets(app: web.Application) -> None:
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def start_api(
    app: web.Application, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (0 picks a free port), over TLS with `ssl_context`. Returns the
    runner and the bound port; `await runner.cleanup()` stops the server and closes open log
    streams."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1]) if runner.addresses else port
    return runner, bound_port
