"""`/api/v1/agent` (reference §3.2), served by every node: liveness, build version, this node's
NodeInfo, its redacted config and debug info; plus the legacy redirects of Bacalhau ≤ v1.4."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bacalhau.version import build_version_info

from ..middleware import json_response
from ..state import CONFIG, DEBUG_INFO, NODE_INFO

PREFIX = "/api/v1/agent"


def setup(app: web.Application) -> None:
    router = app.router
    router.add_get(PREFIX + "/alive", alive)
    router.add_get(PREFIX + "/version", version)
    router.add_get(PREFIX + "/node", node)
    router.add_get(PREFIX + "/config", config)
    router.add_get(PREFIX + "/debug", debug)
    router.add_get(PREFIX + "/authconfig", auth_config)
    router.add_get("/", _redirect(PREFIX + "/version"))
    router.add_get("/version", _redirect(PREFIX + "/version"))
    router.add_get("/livez", _redirect(PREFIX + "/alive"))


def _redirect(location: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location)

    return handler


async def alive(request: web.Request) -> web.Response:
    return json_response({"Status": "OK"})


async def version(request: web.Request) -> web.Response:
    """BuildVersionInfo, flattened."""
    return json_response(build_version_info())


async def node(request: web.Request) -> web.Response:
    """This node's NodeInfo, flattened at the top level."""
    info = request.app[NODE_INFO]()
    return json_response(info.to_dict() if hasattr(info, "to_dict") else info)


async def config(request: web.Request) -> web.Response:
    """`{"config": ...}` (lower-case key, as Bacalhau) with secrets replaced by `********`."""
    return json_response({"config": request.app[CONFIG].redacted()})


async def debug(request: web.Request) -> web.Response:
    """Component name -> that component's debug info."""
    providers = request.app[DEBUG_INFO]
    return json_response({name: provide() for name, provide in providers.items()})


async def auth_config(request: web.Request) -> web.Response:
    """No OAuth2 provider is configured: clients fall back to anonymous access."""
    return json_response({"Version": "1.0.0", "Config": {}})
