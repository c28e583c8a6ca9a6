"""A compute node's membership: its NodeInfo and heartbeats, sent point to point to every
requester it is connected to (PROTOCOL_MEMBERSHIP, internals §9), never flooded.

- Heartbeat: every `Compute.Heartbeat.Interval`, one request to each connected requester
  (all at once, one encoded message). A requester that does not know the node answers
  `Known: false`; the node then sends it its NodeInfo. A requester may answer with a
  `HeartbeatInterval` (it bounds the heartbeats it receives as the network grows, as Nomad
  does): the node then heartbeats at the longest interval asked, never faster than its own.
- NodeInfo: to a requester as soon as it connects (`watch_requesters`), to all of them when
  the node's static facts change (checked each heartbeat round) and every
  `Compute.Heartbeat.InfoUpdateInterval`.
- Observers: the NodeInfo is also gossiped on TOPIC_NODE_INFO, and again when a peer
  subscribes to that topic. No requester relies on it; it costs nothing when nobody listens.

A failed round is logged and the loop goes on: a silent node would be marked DISCONNECTED by
every requester. The cost per node and round is one message per requester, whatever the
number of other nodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bacalhau.errors import BacalhauError
from bacalhau.models import NodeInfo
from bacalhau.transport import PROTOCOL_MEMBERSHIP, TOPIC_NODE_INFO, Transport
from bacalhau.transport import messages as msg

log = logging.getLogger(__name__)

INFO_REPUBLISH_GAP = 1.0
"""Seconds between two NodeInfo gossips triggered by subscribing peers."""


def static_part(info: NodeInfo) -> dict[str, Any]:
    """What makes a new NodeInfo worth sending: everything but the changing capacity."""
    cni = info.compute_node_info
    return {"labels": info.labels, "engines": cni.execution_engines,
            "publishers": cni.publishers, "storages": cni.storage_sources,
            "max": cni.max_capacity.to_dict()}


class Membership:
    """Sends one compute node's NodeInfo and heartbeats to its requesters."""

    def __init__(self, transport: Transport, node_id: str, *,
                 node_info: Callable[[], NodeInfo], heartbeat: Callable[[], dict[str, Any]],
                 interval: float, info_interval: float) -> None:
        self.transport = transport
        self.node_id = node_id
        self._node_info = node_info
        self._heartbeat = heartbeat
        self.configured_interval = max(0.01, interval)
        self._asked: dict[str, float] = {}  # requester -> the interval it asked for
        self.info_interval = max(0.01, info_interval)
        self.timeout = max(0.5, min(10.0, self.configured_interval * 2))
        self._last_static: dict[str, Any] | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gossiped_at = 0.0
        self._regossip: asyncio.TimerHandle | None = None
        self._watching = False

    async def start(self) -> None:
        if not self._watching:
            self.transport.watch_requesters(self._on_requester)
            watch = getattr(self.transport, "watch_subscriptions", None)
            if watch is not None:
                watch(self._on_subscription)
            self._watching = True
        await self.publish_info()
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._heartbeat_loop(), name="heartbeats"),
                       loop.create_task(self._info_loop(), name="node-info")]

    @property
    def interval(self) -> float:
        """Seconds between two heartbeat rounds: the node's own, or longer when a requester
        asked for it."""
        return max(self.configured_interval, *self._asked.values(), 0.0)

    async def stop(self) -> None:
        if self._regossip is not None:
            self._regossip.cancel()
            self._regossip = None
        tasks = [*self._loops, *self._tasks]
        self._loops = []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ----- sending ----------------------------------------------------------------------------

    async def publish_info(self) -> None:
        """Send the NodeInfo to every connected requester (and gossip it for observers)."""
        info = self._node_info()
        self._last_static = static_part(info)
        data = msg.encode(msg.NODE_INFO, {"NodeInfo": info.to_dict()}, source=self.node_id)
        await asyncio.gather(*(self._send(peer, data) for peer in self.transport.requesters()))
        await self._gossip(data)

    async def send_info(self, peer: str) -> None:
        info = self._node_info()
        data = msg.encode(msg.NODE_INFO, {"NodeInfo": info.to_dict()}, source=self.node_id)
        await self._send(peer, data)

    async def heartbeat_round(self) -> None:
        """One heartbeat to every connected requester; NodeInfo to those that do not know
        this node, and to all when the static facts changed."""
        if static_part(self._node_info()) != self._last_static:
            await self.publish_info()
        data = msg.encode(msg.HEARTBEAT, self._heartbeat(), source=self.node_id)
        peers = self.transport.requesters()
        replies = await asyncio.gather(*(self._send(peer, data) for peer in peers))
        for peer, reply in zip(peers, replies, strict=True):
            if reply is not None:
                self._asked[peer] = _seconds(reply.get("HeartbeatInterval"))
        unknown = [peer for peer, reply in zip(peers, replies, strict=True)
                   if reply is not None and reply.get("Known") is False]
        if unknown:
            await asyncio.gather(*(self.send_info(peer) for peer in unknown))

    async def _send(self, peer: str, data: bytes) -> dict[str, Any] | None:
        """One membership message; the parsed reply, None when it failed (logged)."""
        try:
            return msg.parse_reply(await self.transport.request(
                peer, PROTOCOL_MEMBERSHIP, data, timeout=self.timeout))
        except BacalhauError as exc:
            log.debug("membership message from %s to %s failed: %s", self.node_id, peer, exc)
            return None

    async def _gossip(self, data: bytes) -> None:
        self._gossiped_at = asyncio.get_running_loop().time()
        try:
            await self.transport.publish(TOPIC_NODE_INFO, data)
        except BacalhauError as exc:
            log.debug("NodeInfo gossip of %s failed: %s", self.node_id, exc)

    # ----- events and loops -------------------------------------------------------------------

    def _on_requester(self, peer: str, up: bool) -> None:
        if not up:
            self._asked.pop(peer, None)
        elif self._loops:
            self._spawn(self.send_info(peer))

    def _on_subscription(self, peer: str, topic: str) -> None:
        """A peer joined the NodeInfo topic: gossip the NodeInfo again, at most once per
        INFO_REPUBLISH_GAP (peers joining in a burst get one message)."""
        if topic != TOPIC_NODE_INFO or not self._loops or self._regossip is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._gossiped_at + INFO_REPUBLISH_GAP - loop.time())
        self._regossip = loop.call_later(delay, self._regossip_now)

    def _regossip_now(self) -> None:
        self._regossip = None
        info = self._node_info()
        self._spawn(self._gossip(
            msg.encode(msg.NODE_INFO, {"NodeInfo": info.to_dict()}, source=self.node_id)))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat_loop(self) -> None:
        """Fixed-rate rounds, each its own task: a requester slow to answer delays neither
        the next round nor the heartbeats to the others."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self._spawn(self._round())
            next_at = max(next_at + self.interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _round(self) -> None:
        try:
            await self.heartbeat_round()
        except Exception:
            log.exception("heartbeat of %s failed", self.node_id)

    async def _info_loop(self) -> None:
        while True:
            await asyncio.sleep(self.info_interval)
            try:
                await self.publish_info()
            except Exception:
                log.exception("NodeInfo update of %s failed", self.node_id)


def _seconds(value: Any) -> float:
    """A requester's HeartbeatInterval: non-negative seconds, anything else 0 (not asked).
    Capped at an hour, so a confused requester cannot silence a node for good."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return min(max(float(value), 0.0), 3600.0)
