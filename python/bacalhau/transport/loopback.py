"""A transport wrapper that also delivers a node's own gossip to its own subscribers.

Gossip never comes back to its sender (libp2p gossipsub behaves so, and so does the in-process
transport). A hybrid node holds both roles in one process, so its requester must hear what its
own compute role publishes (NodeInfo, heartbeats); this wrapper adds exactly that and passes
everything else through.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from bacalhau.transport.base import GossipHandler, RequestHandler, Transport

log = logging.getLogger(__name__)


class SelfDeliveringTransport:
    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.node_id = inner.node_id
        self._subs: dict[str, list[GossipHandler]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._inner.start()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._inner.close()

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._inner.publish(topic, payload)
        for handler in self._subs.get(topic, ()):
            task = asyncio.ensure_future(self._deliver(handler, topic, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, handler: GossipHandler, topic: str, payload: bytes) -> None:
        try:
            await handler(self.node_id, payload)
        except Exception:
            log.exception("own gossip handler for %s failed", topic)

    def subscribe(self, topic: str, handler: GossipHandler) -> None:
        self._subs[topic].append(handler)
        self._inner.subscribe(topic, handler)

    async def request(
        self, peer: str, protocol: str, payload: bytes, timeout: float = 10.0
    ) -> bytes:
        return await self._inner.request(peer, protocol, payload, timeout)

    def serve(self, protocol: str, handler: RequestHandler) -> None:
        self._inner.serve(protocol, handler)

    def peers(self) -> list[str]:
        return self._inner.peers()
