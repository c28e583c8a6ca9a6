"""The REST API: the server (`bacalhau.api.app`: `create_app`, `start_api`) and the client
(`bacalhau.api.client`). Server names load on first use, so the CLI's client import stays light."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "start_api"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bacalhau.api import app

        return getattr(app, name)
    raise AttributeError(f"module 'bacalhau.api' has no attribute {name!r}")
