"""The OpenAPI document against the router, both ways: every `/api/` route of a real app has an
operation, and every operation has a route. Paths outside `/api/` (legacy redirects `/`,
`/version`, `/livez`; the web UI's static files) are not API and are left out on purpose;
aiohttp's automatic HEAD twins of GET routes are left out too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bacalhau.api.app import create_app
from bacalhau.api.openapi import build_document
from bacalhau.config import Config
from bacalhau.models import NodeInfo

pytestmark = pytest.mark.unit

METHODS = ("get", "put", "post", "delete", "patch")


class _NoRequester:
    """The routes only need a requester object to exist; no handler runs in this test."""


def _app(orchestrator: bool) -> web.Application:
    return create_app(_NoRequester() if orchestrator else None,  # type: ignore[arg-type]
                      node_info_provider=lambda: NodeInfo(node_id="n-x"), config=Config())


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method == "HEAD" or not path.startswith("/api/"):
            continue
        out.add((route.method.upper(), re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)))
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item
            if m in METHODS}


@pytest.mark.parametrize("orchestrator", [True, False])
def test_document_matches_router(orchestrator: bool) -> None:
    routes = _routes(_app(orchestrator))
    documented = _documented(build_document(orchestrator=orchestrator))
    assert routes - documented == set(), "routes without a schema"
    assert documented - routes == set(), "schemas without a route"
    assert ("PUT", "/api/v1/orchestrator/jobs") in routes or not orchestrator


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def test_document_is_valid_and_self_contained() -> None:
    from openapi_spec_validator import validate

    doc = build_document()
    validate(doc)
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items()
           if m in METHODS]
    assert len(ids) == len(set(ids))
    # Bacalhau's wire names (reference §2), quirks included
    assert "stderr" in schemas["RunCommandResult"]["properties"]
    assert "QueueCapacity" in schemas["ComputeNodeInfo"]["properties"]
    assert "address" in schemas["ComputeNodeInfo"]["properties"]
    assert "Resources" in schemas["Task"]["properties"]
    assert set(schemas["APIError"]["required"]) == {
        "Status", "Message", "RequestID", "Code", "Component"}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in METHODS:
                assert op["responses"]["default"]["content"]["application/json"]["schema"] \
                    == {"$ref": "#/components/schemas/APIError"}


async def test_node_serves_the_document_openly(tmp_path: Path) -> None:
    config = Config({"API": {"Auth": {"Users": [{"APIKey": "k" * 24,
                                                 "Capabilities": [{"Actions": ["*"]}]}]}}})
    app = create_app(None, node_info_provider=lambda: NodeInfo(node_id="n-x"), config=config)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/v1/openapi.json")
        assert resp.status == 200
        doc = await resp.json()
        assert doc["openapi"].startswith("3.")
        assert not any(p.startswith("/api/v1/orchestrator") for p in doc["paths"])
