"""The libp2p transport: the Transport seam (internals §3) over `rust/transport`.

One `NativeNode` per transport runs a libp2p swarm as a task on the process's one network
runtime (TCP, Noise, yamux, gossipsub, request/response on `/bacalhau/rpc/1`, identify,
ping, connection limits; a swarm key makes the cluster private, an allow-list restricts which
peers may connect). `node_id` is the libp2p peer id, derived from the ed25519 key kept in
`<data_dir>/libp2p.key`, so it survives restarts.

Events come back in batches through the process's event pump (`pump.py`: the event loop
drains the process's one native hub when its wake-up descriptor is readable), on this
transport's event loop; they resolve request futures and start handlers as tasks.

Who sent it: the sender id passed to handlers is authenticated by libp2p. For gossip it is
the message's author, whose signature gossipsub checked (strict validation; forged or
unsigned messages never arrive); for requests it is the peer at the other end of the
Noise-authenticated connection. Ids written inside payloads (a NodeInfo's `NodeID`, a
heartbeat's `NodeID`) are only claims: the node manager must compare them with the sender and
drop messages where they differ.

Discovery (`rust/transport/src/discovery.rs`): a node dials the peers it is given
(`/ip4/…/tcp/…/p2p/<peer id>`) and says hello; hellos tell which peers are requesters and
where every requester listens. A compute node dials every requester it learns of and no other
compute node, and accepts at most `max_peers` other connections; a requester accepts every
node. A lost requester is redialed by its peer id at every address learned for it.
`requesters()` lists the connected requesters, `watch_requesters` reports them coming and
going: membership (heartbeats, NodeInfo) goes to them point to point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bacalhau._native import NativeNode, NativeTransportError, load_peer_id
from bacalhau.errors import TransportError
from bacalhau.transport import swarmkey
from bacalhau.transport.base import GossipHandler, RequesterWatcher, RequestHandler
from bacalhau.transport.pump import pump

log = logging.getLogger(__name__)

KEY_FILE = "libp2p.key"
"""Identity key file name inside the data dir."""

DEFAULT_LISTEN = ("/ip4/127.0.0.1/tcp/0",)

ROLE_REQUESTER = "requester"
ROLE_COMPUTE = "compute"

_GRACE_S = 2.0  # the Rust side times requests out itself; this only guards against a lost reply


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(1, round(seconds * 1000))


class Libp2pTransport:
    """A node's libp2p endpoint. Construct, `await start()`, use, `await close()`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        listen: list[str] | None = None,
        peers: list[str] | None = None,
        role: str = ROLE_COMPUTE,
        max_peers: int | None = None,
        swarm_key_path: Path | None = None,
        allow_list: list[str] | None = None,
        max_message_size: int | None = None,
        gossip_heartbeat: float | None = None,
        announce_interval: float | None = None,
        redial_max: float | None = None,
        ping_interval: float | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        """`role`: "requester" (orchestrators and hybrids: every node connects to it) or
        "compute" (dials the requesters it learns of, accepts at most `max_peers` others)."""
        self.data_dir = Path(data_dir)
        self.key_file = self.data_dir / KEY_FILE
        try:
            self.node_id: str = load_peer_id(str(self.key_file))
        except NativeTransportError as exc:
            raise TransportError(str(exc)) from None
        if role not in (ROLE_REQUESTER, ROLE_COMPUTE):
            raise TransportError(f'unknown libp2p role "{role}": use requester or compute')
        self.role = role
        self._listen = list(DEFAULT_LISTEN if listen is None else listen)
        self._peers = list(peers or [])
        self._swarm_key = swarmkey.read(swarm_key_path) if swarm_key_path is not None else None
        self._allow_list = None if allow_list is None else list(allow_list)
        tuning: dict[str, Any] = {
            "max_peers": max_peers,
            "max_message_size": max_message_size,
            "gossip_heartbeat_ms": _ms(gossip_heartbeat),
            "announce_interval_ms": _ms(announce_interval),
            "redial_max_ms": _ms(redial_max),
            "ping_interval_ms": _ms(ping_interval),
            "handshake_timeout_ms": _ms(handshake_timeout),
        }
        self._tuning = {k: v for k, v in tuning.items() if v is not None}
        self._node: NativeNode | None = None
        self._subs: dict[str, list[GossipHandler]] = defaultdict(list)
        self._servers: dict[str, RequestHandler] = {}
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._requester_watchers: list[RequesterWatcher] = []
        self._subscription_watchers: list[Callable[[str, str], None]] = []
        self._closed = False
        self._peer_change = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._node is not None:
            return
        if self._closed:
            raise TransportError(f"transport of {self.node_id} is closed")
        config: dict[str, Any] = {
            "listen": self._listen,
            "peers": self._peers,
            "role": self.role,
            "swarm_key": self._swarm_key,
            "allow_list": self._allow_list,
            **self._tuning,
        }
        try:
            node = await asyncio.to_thread(NativeNode, config, str(self.key_file))
        except NativeTransportError as exc:
            raise TransportError(str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise TransportError(f"invalid libp2p configuration: {exc}") from None
        self._node = node
        for topic in self._subs:
            node.subscribe(topic)
        pump().attach(node.key, asyncio.get_running_loop(), self._deliver)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        node = self._node
        if node is not None:
            await asyncio.to_thread(node.close)
            pump().detach(node.key)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TransportError(f"transport of {self.node_id} closed"))
        self._pending.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the seam ----------------------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> None:
        node = self._require_node()
        try:
            node.publish(topic, bytes(payload))
        except NativeTransportError as exc:
            raise TransportError(f"cannot publish on {topic}: {exc}") from None

    def subscribe(self, topic: str, handler: GossipHandler) -> None:
        first = topic not in self._subs
        self._subs[topic].append(handler)
        if first and self._node is not None and not self._closed:
            self._node.subscribe(topic)

    async def request(
        self, peer: str, protocol: str, payload: bytes, timeout: float = 10.0
    ) -> bytes:
        node = self._require_node()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        try:
            request_id = node.request(peer, protocol, bytes(payload), timeout)
        except NativeTransportError as exc:
            raise TransportError(f"cannot send {protocol} to peer {peer}: {exc}") from None
        except ValueError as exc:
            raise TransportError(f"cannot send {protocol} to peer {peer}: {exc}") from None
        # Registered before any await, so the drain task cannot see the reply first.
        self._pending[request_id] = fut
        try:
            return await asyncio.wait_for(fut, timeout + _GRACE_S)
        except TimeoutError:
            raise TransportError(
                f"peer {peer} did not answer {protocol} within {timeout:g}s") from None
        finally:
            self._pending.pop(request_id, None)

    def serve(self, protocol: str, handler: RequestHandler) -> None:
        self._servers[protocol] = handler

    def peers(self) -> list[str]:
        if self._node is None or self._closed:
            return []
        return self._node.connected_peers()

    def requesters(self) -> list[str]:
        """Connected peers that are requesters (learned from their hellos), sorted."""
        if self._node is None or self._closed:
            return []
        return self._node.requesters()

    def watch_requesters(self, callback: RequesterWatcher) -> None:
        """Call `callback(peer, up)` when a requester connects (True) or goes (False)."""
        self._requester_watchers.append(callback)

    def watch_subscriptions(self, callback: Callable[[str, str], None]) -> None:
        """Call `callback(peer, topic)` when a connected peer subscribes to a gossip topic."""
        self._subscription_watchers.append(callback)

    # -- beyond the seam (node.py, devstack, tests) ------------------------------------------

    def listen_addrs(self) -> list[str]:
        """Bound listen addresses (ports resolved), without the peer id."""
        return self._require_node().listen_addrs()

    def addresses(self) -> list[str]:
        """Addresses other nodes can pass as `peers`: `<listen addr>/p2p/<peer id>`."""
        return [f"{a}/p2p/{self.node_id}" for a in self.listen_addrs()]

    def dial(self, address: str) -> None:
        """Connect to one more peer address now."""
        try:
            self._require_node().dial(address)
        except NativeTransportError as exc:
            raise TransportError(str(exc)) from None

    async def wait_for_peers(
        self, predicate: Callable[[list[str]], bool], timeout: float = 10.0
    ) -> list[str]:
        """Waits until `predicate(self.peers())` holds (woken by connect/disconnect events);
        TransportError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            peers = self.peers()
            if predicate(peers):
                return peers
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TransportError(
                    f"{self.node_id}: peers {peers} did not reach the expected state "
                    f"within {timeout:g}s")
            change = self._peer_change
            # asyncio.timeout, unlike wait_for on 3.11, never swallows a racing cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await change.wait()

    def stats(self) -> dict[str, int]:
        """Counters: messages/bytes in and out, dropped_by_allow_list, denied_connections,
        rejected_by_validation, failed_incoming, failed_dials, publish_errors, events_dropped.
        Blocks briefly (the network thread refreshes them); call via asyncio.to_thread from
        hot paths."""
        return self._require_node().stats()

    # -- internals ---------------------------------------------------------------------------

    def _require_node(self) -> NativeNode:
        if self._closed:
            raise TransportError(f"transport of {self.node_id} is closed")
        if self._node is None:
            raise TransportError(f"transport of {self.node_id} is not started")
        return self._node

    def _deliver(self, events: list[tuple[Any, ...]]) -> None:
        """A batch of this node's events, on its event loop (called by the pump)."""
        node = self._node
        if node is None or self._closed:
            return
        for event in events:
            self._dispatch(node, event)

    def _dispatch(self, node: NativeNode, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "gossip":
            _, topic, source, data = event
            for handler in self._subs.get(topic, ()):
                self._spawn(self._run_gossip(handler, topic, source, data))
        elif kind == "request":
            _, inbound_id, peer, protocol, data = event
            server = self._servers.get(protocol)
            if server is None:
                node.respond_error(inbound_id, f"{self.node_id} does not serve {protocol}")
            else:
                self._spawn(self._run_request(node, server, inbound_id, peer, protocol, data))
        elif kind == "response":
            _, request_id, ok, body = event
            fut = self._pending.get(request_id)
            if fut is not None and not fut.done():
                if ok:
                    fut.set_result(body)
                else:
                    fut.set_exception(TransportError(body))
        elif kind in ("connected", "disconnected"):
            # peers() reads the live set; this only wakes wait_for_peers.
            change, self._peer_change = self._peer_change, asyncio.Event()
            change.set()
        elif kind in ("requester_up", "requester_down"):
            for watcher in list(self._requester_watchers):
                try:
                    watcher(event[1], kind == "requester_up")
                except Exception:
                    log.exception("requester watcher failed on %s", self.node_id)
        elif kind == "subscribed":
            for sub_watcher in list(self._subscription_watchers):
                try:
                    sub_watcher(event[1], event[2])
                except Exception:
                    log.exception("subscription watcher failed on %s", self.node_id)

    async def _run_gossip(
        self, handler: GossipHandler, topic: str, source: str, data: bytes
    ) -> None:
        try:
            await handler(source, data)
        except Exception:
            log.exception("gossip handler for %s failed on %s", topic, self.node_id)

    async def _run_request(
        self, node: NativeNode, server: RequestHandler, inbound_id: int, peer: str,
        protocol: str, data: bytes,
    ) -> None:
        try:
            reply = await server(peer, data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handler for %s failed on %s", protocol, self.node_id)
            message = str(exc) or type(exc).__name__
            try:
                node.respond_error(inbound_id, message)
            except NativeTransportError:
                pass  # closed meanwhile: the asker sees the connection go
            return
        try:
            node.respond(inbound_id, bytes(reply))
        except NativeTransportError as exc:
            log.warning("cannot answer %s on %s: %s", protocol, self.node_id, exc)
            try:
                node.respond_error(inbound_id, f"reply not sent: {exc}")
            except NativeTransportError:
                pass

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
