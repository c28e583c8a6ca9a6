"""The libp2p transport on 127.0.0.1: gossip and requests between nodes, compute nodes finding
every requester (and not each other), a restarted requester redialed where it listened,
private networks (swarm key), allow-lists, a stable identity, and the authenticated sender
that lets the node manager catch a payload claiming another node's id.

Every wait is bounded and event-driven: handlers set asyncio events, `wait_for_peers` wakes
on connection events; only counters (stats) are polled, between short bounded waits."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bacalhau.errors import ConfigError, TransportError
from bacalhau.transport import messages as m
from bacalhau.transport import swarmkey
from bacalhau.transport.libp2p import KEY_FILE, ROLE_REQUESTER, Libp2pTransport

pytestmark = pytest.mark.unit

TOPIC = "test/gossip/1"
DEADLINE = 20.0
FAST = {"gossip_heartbeat": 0.1, "announce_interval": 0.5, "handshake_timeout": 2.0,
        "redial_max": 0.2}


class Inbox:
    """Collects gossip; `wait_for` blocks on an event until a matching message arrives."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    async def handler(self, sender: str, payload: bytes) -> None:
        self.items.append((sender, payload))
        self._changed.set()

    async def wait_for(self, match: Callable[[str, bytes], bool], timeout: float = 0.2) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(match(s, p) for s, p in self.items):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True


async def gossip_until(sender: Libp2pTransport, inbox: Inbox, payload: bytes) -> str:
    """Publishes until `inbox` has `payload` (a peer's subscription takes a moment to be known);
    returns the sender id the receiver saw."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        await sender.publish(TOPIC, payload)
        if await inbox.wait_for(lambda _s, p: p == payload):
            return next(s for s, p in inbox.items if p == payload)
    raise AssertionError(f"{payload!r} never arrived")


async def until(condition: Callable[[], Any], what: str) -> None:
    """Polls a counter between bounded waits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)  # poll interval of a deadline-bounded wait


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    made: list[Libp2pTransport] = []

    async def _make(name: str, *, peers: list[Libp2pTransport] = (),
                    listen: list[str] | None = None, **kw: Any) -> Libp2pTransport:
        t = Libp2pTransport(
            tmp_path / name,
            listen=listen or ["/ip4/127.0.0.1/tcp/0"],
            peers=[a for p in peers for a in p.addresses()],
            **{**FAST, **kw},
        )
        made.append(t)
        await t.start()
        return t

    yield _make
    await asyncio.gather(*(t.close() for t in made))


async def test_two_nodes_gossip_and_request(make):
    a = await make("a")
    b = await make("b", peers=[a])
    inbox_a, inbox_b = Inbox(), Inbox()
    a.subscribe(TOPIC, inbox_a.handler)
    b.subscribe(TOPIC, inbox_b.handler)
    await a.wait_for_peers(lambda p: b.node_id in p)
    assert b.peers() == [a.node_id]

    assert await gossip_until(a, inbox_b, b"hello from a") == a.node_id
    assert await gossip_until(b, inbox_a, b"hello from b") == b.node_id
    assert all(s != a.node_id for s, _ in inbox_a.items)  # no echo of own gossip

    async def echo(sender: str, payload: bytes) -> bytes:
        return sender.encode() + b":" + payload

    async def broken(sender: str, payload: bytes) -> bytes:
        raise ValueError("no such execution")

    async def slow(sender: str, payload: bytes) -> bytes:
        await asyncio.Event().wait()  # never answers
        return b""

    a.serve("/echo", echo)
    a.serve("/broken", broken)
    a.serve("/slow", slow)
    assert await b.request(a.node_id, "/echo", b"x") == f"{b.node_id}:x".encode()
    big = os.urandom(1 << 20)
    assert await b.request(a.node_id, "/echo", big) == f"{b.node_id}:".encode() + big
    with pytest.raises(TransportError, match="no such execution"):
        await b.request(a.node_id, "/broken", b"")
    with pytest.raises(TransportError, match="does not serve /nothing"):
        await b.request(a.node_id, "/nothing", b"")
    with pytest.raises(TransportError, match=r"did not answer /slow within 0\.3"):
        await b.request(a.node_id, "/slow", b"", timeout=0.3)
    with pytest.raises(TransportError, match="invalid peer id"):
        await b.request("n-not-a-peer-id", "/echo", b"")

    stats = a.stats()
    assert stats["messages_in"] >= 5 and stats["bytes_in"] > 1 << 20


async def test_compute_nodes_find_every_requester_and_not_each_other(make):
    r1 = await make("r1", role=ROLE_REQUESTER)
    b = await make("b", peers=[r1])
    c = await make("c", peers=[r1])  # knows only r1
    seen: list[tuple[str, str, bool]] = []
    for t in (b, c):
        t.watch_requesters(lambda peer, up, t=t: seen.append((t.node_id, peer, up)))
    await until(lambda: b.requesters() == [r1.node_id] and c.requesters() == [r1.node_id],
                "b and c to know r1 as a requester")
    assert r1.requesters() == []  # compute nodes are not requesters

    # a requester joining later is told to every compute node (r1 says hello to all)
    r2 = await make("r2", role=ROLE_REQUESTER, peers=[r1])
    both = sorted([r1.node_id, r2.node_id])
    await until(lambda: b.requesters() == both and c.requesters() == both,
                "b and c to find r2 through r1")
    # the callbacks come through the event thread, after the native state they report
    await until(lambda: (b.node_id, r2.node_id, True) in seen
                and (c.node_id, r2.node_id, True) in seen, "both watchers to hear of r2")
    await until(lambda: r1.requesters() == [r2.node_id], "r1 to know r2 as a requester")
    # bounded: the compute nodes never dial each other
    assert c.node_id not in b.peers() and b.node_id not in c.peers()
    assert b.stats()["discovery_messages"] >= 2

    inbox = Inbox()
    r2.subscribe(TOPIC, inbox.handler)
    assert await gossip_until(c, inbox, b"c->r2") == c.node_id

    async def whoami(sender: str, payload: bytes) -> bytes:
        return sender.encode()

    b.serve("/whoami", whoami)
    r2.serve("/whoami", whoami)
    assert await r2.request(b.node_id, "/whoami", b"") == r2.node_id.encode()
    assert await c.request(r2.node_id, "/whoami", b"") == c.node_id.encode()
    await r2.close()
    await until(lambda: b.requesters() == [r1.node_id], "b to see r2 go")
    await until(lambda: (b.node_id, r2.node_id, False) in seen, "b's watcher to hear r2 go")
    with pytest.raises(TransportError):
        await c.request(r2.node_id, "/whoami", b"", timeout=2)


async def test_a_restarted_requester_is_redialed_where_it_listened(make, tmp_path):
    """A compute node joins a requester by its address; the requester restarts on the port
    recorded in its data dir (transport/listen.py), and the compute node is back at once."""
    from bacalhau.transport.listen import listen_addresses, remember

    data = tmp_path / "r"
    first = await make("r", role=ROLE_REQUESTER, listen=listen_addresses([], data))
    remember(data, first.listen_addrs())
    compute = await make("c", peers=[first])
    ups: list[tuple[str, bool]] = []
    compute.watch_requesters(lambda peer, up: ups.append((peer, up)))
    await until(lambda: compute.requesters() == [first.node_id], "the compute to join")
    address = first.listen_addrs()
    await first.close()
    await until(lambda: compute.requesters() == [], "the compute to see the requester go")
    again = await make("r", role=ROLE_REQUESTER, listen=listen_addresses([], data))
    assert again.node_id == first.node_id and again.listen_addrs() == address
    await until(lambda: compute.requesters() == [again.node_id], "the compute to redial")
    # the watcher hears of it by its own event, which may come a moment after the roster
    await until(lambda: ups[-2:] == [(first.node_id, False), (first.node_id, True)],
                "the compute's watcher to hear the requester go and come back")


async def test_wrong_swarm_key_cannot_join(make, tmp_path):
    key, other = tmp_path / "swarm.key", tmp_path / "other.key"
    swarmkey.write(key)
    swarmkey.write(other)
    a = await make("a", swarm_key_path=key)
    b = await make("b", peers=[a], swarm_key_path=key)
    intruder = await make("intruder", peers=[a, b], swarm_key_path=other)
    keyless = await make("keyless", peers=[a])
    inbox_b, inbox_intruder = Inbox(), Inbox()
    b.subscribe(TOPIC, inbox_b.handler)
    intruder.subscribe(TOPIC, inbox_intruder.handler)

    async def echo(sender: str, payload: bytes) -> bytes:
        return payload

    a.serve("/echo", echo)

    await a.wait_for_peers(lambda p: b.node_id in p)
    await until(lambda: intruder.stats()["failed_dials"] >= 2, "the intruder's dials to fail")
    await until(lambda: keyless.stats()["failed_dials"] >= 1, "the keyless dial to fail")
    await until(lambda: a.stats()["failed_incoming"] >= 2, "a to refuse both")
    assert await gossip_until(a, inbox_b, b"members only") == a.node_id

    assert intruder.peers() == [] and keyless.peers() == []
    assert set(a.peers()) == {b.node_id}
    assert inbox_intruder.items == []
    with pytest.raises(TransportError):
        await intruder.request(a.node_id, "/echo", b"let me in", timeout=3)


async def test_allow_list_refuses_other_peers(make, tmp_path):
    b_id = Libp2pTransport(tmp_path / "b").node_id  # the id is known before start
    a = await make("a", allow_list=[b_id])
    b = await make("b", peers=[a])
    c = await make("c", peers=[a])
    assert b.node_id == b_id
    await a.wait_for_peers(lambda p: b.node_id in p)
    await until(lambda: a.stats()["denied_connections"] >= 1, "a to deny c")
    assert c.node_id not in a.peers()
    with pytest.raises(TransportError, match="allow-list"):
        await a.request(c.node_id, "/echo", b"")


async def test_identity_survives_restart(tmp_path):
    first = Libp2pTransport(tmp_path / "n", listen=["/ip4/127.0.0.1/tcp/0"])
    await first.start()
    node_id = first.node_id
    await first.close()
    key_file = tmp_path / "n" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = Libp2pTransport(tmp_path / "n", listen=["/ip4/127.0.0.1/tcp/0"])
    try:
        await second.start()
        assert second.node_id == node_id and node_id.startswith("12D3KooW")
        assert all(a.endswith(f"/p2p/{node_id}") for a in second.addresses())
    finally:
        await second.close()
    assert Libp2pTransport(tmp_path / "other").node_id != node_id


async def test_payload_claiming_another_node_is_detectable(make):
    """Gossip handlers get the signature-verified author. A heartbeat whose NodeID names
    another node is therefore caught by comparing the claim with the sender: what the node
    manager must do before trusting NodeInfo or heartbeats."""
    honest = await make("honest")
    liar = await make("liar", peers=[honest])
    watcher = await make("watcher", peers=[honest, liar])
    inbox = Inbox()
    watcher.subscribe(TOPIC, inbox.handler)
    await watcher.wait_for_peers(lambda p: liar.node_id in p)

    forged = m.encode("Heartbeat", {"NodeID": honest.node_id, "AvailableCapacity": {}})
    sender = await gossip_until(liar, inbox, forged)
    claimed = m.decode(forged).payload["NodeID"]
    assert sender == liar.node_id
    assert claimed != sender  # the node manager drops it

    genuine = m.encode("Heartbeat", {"NodeID": honest.node_id, "AvailableCapacity": {}, "n": 2})
    assert await gossip_until(honest, inbox, genuine) == m.decode(genuine).payload["NodeID"]


async def test_closed_and_unstarted_transports_refuse(tmp_path):
    t = Libp2pTransport(tmp_path / "n", listen=["/ip4/127.0.0.1/tcp/0"])
    with pytest.raises(TransportError, match="not started"):
        await t.publish(TOPIC, b"x")
    await t.start()
    await t.close()
    with pytest.raises(TransportError, match="closed"):
        await t.request(t.node_id, "/echo", b"")
    assert t.peers() == []
    bad = Libp2pTransport(tmp_path / "bad", listen=["not a multiaddr"])
    with pytest.raises(TransportError, match="invalid multiaddr"):
        await bad.start()


def test_swarm_key_files(tmp_path):
    path = tmp_path / "keys" / "swarm.key"
    text = swarmkey.write(path)
    assert text.startswith("/key/swarm/psk/1.0.0/\n/base16/\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert swarmkey.read(path) == swarmkey.parse(text) and len(swarmkey.read(path)) == 32
    assert swarmkey.generate() != text
    with pytest.raises(ConfigError, match="already exists"):
        swarmkey.write(path)
    swarmkey.write(path, swarmkey.generate(), overwrite=True)
    with pytest.raises(ConfigError, match="does not exist"):
        swarmkey.read(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text("/key/swarm/psk/1.0.0/\n/base16/\nnot-hex\n")
    with pytest.raises(ConfigError, match=r"bad\.key.*64 hex digits"):
        swarmkey.read(bad)
    bad.write_text("/key/swarm/psk/1.0.0/\n/base64/\nAAAA\n")
    with pytest.raises(ConfigError, match="not supported"):
        swarmkey.read(bad)
    with pytest.raises(ConfigError, match="line 1"):
        swarmkey.parse("hello")
    bad.write_text("garbage")
    with pytest.raises(ConfigError, match="line 1"):
        Libp2pTransport(tmp_path / "n", swarm_key_path=bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_node_refuses_use_after_fork_and_child_starts_its_own(tmp_path):
    """The network runtime does not survive fork: the child gets a clear error from the
    parent's node and can start a node of its own (on a runtime of its own)."""
    from bacalhau._native import NativeNode, NativeTransportError

    config = {"listen": ["/ip4/127.0.0.1/tcp/0"]}
    node = NativeNode(config, str(tmp_path / "parent.key"))
    try:
        pid = os.fork()
        if pid == 0:  # child: report through the exit code only
            code = 0
            try:
                node.publish(TOPIC, b"x")
                code = 1
            except NativeTransportError as exc:
                code = 0 if "after fork" in str(exc) else 2
            try:
                own = NativeNode(config, str(tmp_path / "child.key"))
                code = code or (0 if own.listen_addrs() else 4)
                own.close()
            except Exception:
                code = code or 3
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        node.publish(TOPIC, b"still fine in the parent")
    finally:
        node.close()
