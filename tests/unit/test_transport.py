"""The in-process transport and the message envelope: bytes only, checksums, unreachable peers."""

from __future__ import annotations

import asyncio

import pytest

from bacalhau.errors import TransportError
from bacalhau.transport import InProcessNetwork
from bacalhau.transport import messages as m

pytestmark = pytest.mark.unit


def test_envelope_round_trip_and_crc():
    data = m.encode(m.ASK_FOR_BID, {"ExecutionID": "e-1"}, source="n-1")
    assert data[0] == 1
    env = m.decode(data)
    assert env.type == "AskForBid" and env.payload == {"ExecutionID": "e-1"}
    assert env.metadata["Bacalhau-Source"] == "n-1"
    corrupted = data[:-2] + bytes([data[-2] ^ 0xFF]) + data[-1:]
    with pytest.raises(TransportError, match="checksum"):
        m.decode(corrupted)
    with pytest.raises(TransportError, match="version"):
        m.decode(b"\x07" + data[1:])


async def test_gossip_and_request_between_nodes():
    net = InProcessNetwork()
    a, b, c = net.transport("a"), net.transport("b"), net.transport("c")
    for t in (a, b, c):
        await t.start()
    received: list[tuple[str, str, bytes]] = []
    done = asyncio.Event()

    def handler_for(name):
        async def handler(sender: str, payload: bytes) -> None:
            received.append((name, sender, payload))
            if len(received) == 2:
                done.set()
        return handler

    b.subscribe("topic", handler_for("b"))
    c.subscribe("topic", handler_for("c"))
    a.subscribe("topic", handler_for("a"))  # a does not hear itself
    await a.publish("topic", b"hello")
    await asyncio.wait_for(done.wait(), 2)
    assert sorted(received) == [("b", "a", b"hello"), ("c", "a", b"hello")]

    async def echo(sender: str, payload: bytes) -> bytes:
        return sender.encode() + b":" + payload

    b.serve("/echo", echo)
    assert await a.request("b", "/echo", b"x") == b"a:x"
    with pytest.raises(TransportError, match="does not serve"):
        await a.request("c", "/echo", b"x")
    await b.close()
    with pytest.raises(TransportError, match="not reachable"):
        await a.request("b", "/echo", b"x")
    assert set(a.peers()) == {"c"}


async def test_request_timeout_is_a_transport_error():
    net = InProcessNetwork()
    a, b = net.transport("a"), net.transport("b")
    await a.start()
    await b.start()
    never = asyncio.Event()

    async def stuck(sender: str, payload: bytes) -> bytes:
        await never.wait()
        return b""

    b.serve("/stuck", stuck)
    with pytest.raises(TransportError, match="did not answer"):
        await a.request("b", "/stuck", b"", timeout=0.05)
    await b.close()
