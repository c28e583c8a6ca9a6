"""The API's routes, one module per resource: `jobs` and `logs` and `nodes` (orchestrator only)
and `agent` (every node)."""

from __future__ import annotations

from aiohttp import web

from . import agent, jobs, logs, nodes


def setup_orchestrator_routes(app: web.Application) -> None:
    jobs.setup(app)
    logs.setup(app)
    nodes.setup(app)


def setup_agent_routes(app: web.Application) -> None:
    agent.setup(app)


__all__ = ["setup_agent_routes", "setup_orchestrator_routes"]
