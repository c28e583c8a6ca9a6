"""In-process transport: several nodes in one Python process (devstack, tests).

Every message is bytes and every handler runs as its own task, so nodes share nothing but
bytes, exactly as over a network. A closed transport is unreachable, like a dead peer.
Transports made with `requester=True` are the requesters of the medium: every other transport
lists them in `requesters()` and hears them come and go (`watch_requesters`), as compute
nodes do over libp2p.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from bacalhau.errors import TransportError
from bacalhau.transport.base import GossipHandler, RequesterWatcher, RequestHandler

log = logging.getLogger(__name__)


class InProcessNetwork:
    """The shared medium of in-process transports."""

    def __init__(self) -> None:
        self._nodes: dict[str, InProcessTransport] = {}

    def transport(self, node_id: str, *, requester: bool = False) -> InProcessTransport:
        return InProcessTransport(self, node_id, requester=requester)

    def _attach(self, transport: InProcessTransport) -> None:
        self._nodes[transport.node_id] = transport
        for other in self._all():
            if other is transport:
                continue
            if transport.requester:
                other._requester_changed(transport.node_id, True)
            if other.requester:
                transport._requester_changed(other.node_id, True)

    def _detach(self, transport: InProcessTransport) -> None:
        if self._nodes.get(transport.node_id) is transport:
            del self._nodes[transport.node_id]
            if transport.requester:
                for other in self._all():
                    other._requester_changed(transport.node_id, False)

    def _get(self, node_id: str) -> InProcessTransport | None:
        return self._nodes.get(node_id)

    def _all(self) -> list[InProcessTransport]:
        return list(self._nodes.values())


class InProcessTransport:
    def __init__(self, network: InProcessNetwork, node_id: str, *,
                 requester: bool = False) -> None:
        self.node_id = node_id
        self.requester = requester
        self._network = network
        self._requester_watchers: list[RequesterWatcher] = []
        self._subs: dict[str, list[GossipHandler]] = defaultdict(list)
        self._servers: dict[str, RequestHandler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False

    async def start(self) -> None:
        self._running = True
        self._network._attach(self)

    async def close(self) -> None:
        self._running = False
        self._network._detach(self)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def publish(self, topic: str, payload: bytes) -> None:
        if not self._running:
            raise TransportError(f"transport of {self.node_id} is closed")
        data = bytes(payload)
        for peer in self._network._all():
            if peer is not self:
                peer._deliver_gossip(topic, self.node_id, data)

    def _deliver_gossip(self, topic: str, sender: str, payload: bytes) -> None:
        for handler in self._subs.get(topic, ()):
            self._spawn(self._run_gossip(handler, sender, payload, topic))

    async def _run_gossip(
        self, handler: GossipHandler, sender: str, payload: bytes, topic: str
    ) -> None:
        try:
            await handler(sender, payload)
        except Exception:
            log.exception("gossip handler for %s failed on %s", topic, self.node_id)

    def subscribe(self, topic: str, handler: GossipHandler) -> None:
        self._subs[topic].append(handler)

    async def request(
        self, peer: str, protocol: str, payload: bytes, timeout: float = 10.0
    ) -> bytes:
        if not self._running:
            raise TransportError(f"transport of {self.node_id} is closed")
        target = self._network._get(peer)
        if target is None:
            raise TransportError(f"peer {peer} is not reachable")
        handler = target._servers.get(protocol)
        if handler is None:
            raise TransportError(f"peer {peer} does not serve {protocol}")
        task = target._spawn(handler(self.node_id, bytes(payload)))
        try:
            # the shield keeps the handler running if we stop waiting
            async with asyncio.timeout(timeout):
                reply = await asyncio.shield(task)
        except TimeoutError as exc:
            raise TransportError(
                f"peer {peer} did not answer {protocol} within {timeout:g}s") from exc
        except asyncio.CancelledError:
            if task.cancelled() and not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise TransportError(f"peer {peer} went away during {protocol}") from None
            raise
        return bytes(reply)

    def serve(self, protocol: str, handler: RequestHandler) -> None:
        self._servers[protocol] = handler

    def peers(self) -> list[str]:
        return [t.node_id for t in self._network._all() if t is not self]

    def requesters(self) -> list[str]:
        if not self._running:
            return []
        return sorted(t.node_id for t in self._network._all()
                      if t is not self and t.requester)

    def watch_requesters(self, callback: RequesterWatcher) -> None:
        self._requester_watchers.append(callback)

    def _requester_changed(self, node_id: str, up: bool) -> None:
        """Tell the watchers, on the next loop turn (as a network event would arrive)."""
        loop = asyncio.get_running_loop()
        for watcher in list(self._requester_watchers):
            loop.call_soon(self._notify, watcher, node_id, up)

    def _notify(self, watcher: RequesterWatcher, node_id: str, up: bool) -> None:
        if not self._running:
            return
        try:
            watcher(node_id, up)
        except Exception:
            log.exception("requester watcher failed on %s", self.node_id)

    def _spawn(self, coro):  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
