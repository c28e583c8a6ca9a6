"""The transport seam: how nodes talk. Gossip (publish/subscribe to topics) for membership,
request/response to one peer for the bid protocol and logs. Payloads are bytes; nothing else
crosses the seam, so the in-process and the libp2p implementations are interchangeable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

GossipHandler = Callable[[str, bytes], Awaitable[None]]
"""Called with (sender node id, payload) for each gossip message on a subscribed topic."""

RequestHandler = Callable[[str, bytes], Awaitable[bytes]]
"""Called with (sender node id, payload); returns the reply payload."""

RequesterWatcher = Callable[[str, bool], None]
"""Called with (requester node id, True when it connected / False when it went)."""

TOPIC_NODE_INFO = "bacalhau/node-info/1"
"""Compute nodes also gossip their NodeInfo here, for observers (requesters get it directly)."""
PROTOCOL_COMPUTE = "/bacalhau/compute/1"
PROTOCOL_ORCHESTRATOR = "/bacalhau/orchestrator/1"
PROTOCOL_MEMBERSHIP = "/bacalhau/membership/1"
"""Compute -> requester, point to point: `Heartbeat` and `NodeInfo` (internals §9)."""


class Transport(Protocol):
    node_id: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send `payload` to every peer subscribed to `topic` (not to this node itself)."""

    def subscribe(self, topic: str, handler: GossipHandler) -> None: ...

    async def request(
        self, peer: str, protocol: str, payload: bytes, timeout: float = 10.0
    ) -> bytes:
        """Ask `peer` and wait for its reply; raises TransportError if it cannot answer."""

    def serve(self, protocol: str, handler: RequestHandler) -> None: ...

    def peers(self) -> list[str]: ...

    def requesters(self) -> list[str]:
        """Connected requesters (a compute node's membership goes to each)."""

    def watch_requesters(self, callback: RequesterWatcher) -> None:
        """Call `callback(requester, up)` when a requester connects or goes away."""
