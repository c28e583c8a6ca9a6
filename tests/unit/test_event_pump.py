"""The event pump (transport/pump.py): libp2p events reach their node's loop through the hub's
wake-up descriptor, drained by the loop itself, with no pump thread; a node on another loop
gets its events posted to that loop; a loop that runs no node any more stops watching."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bacalhau._native import wake_fd
from bacalhau.transport.libp2p import ROLE_REQUESTER, Libp2pTransport

pytestmark = pytest.mark.unit

PROTOCOL = "/test/echo/1"
DEADLINE = 20.0


async def _echo(peer: str, data: bytes) -> bytes:
    return b"echo:" + data


def _transport(path: Path, **kw: object) -> Libp2pTransport:
    return Libp2pTransport(path, listen=["/ip4/127.0.0.1/tcp/0"], handshake_timeout=2.0,
                           redial_max=0.2, **kw)  # type: ignore[arg-type]


async def _client_of(server: Libp2pTransport, path: Path) -> Libp2pTransport:
    client = _transport(path, peers=server.addresses())
    await client.start()
    return client


async def _echo_round_trips(client: Libp2pTransport, server_id: str, count: int) -> None:
    """Once connected, `count` requests each answered with its own payload."""
    await client.wait_for_peers(lambda peers: server_id in peers, DEADLINE)
    for i in range(count):
        reply = await client.request(server_id, PROTOCOL, f"{i}".encode(), DEADLINE)
        assert reply == f"echo:{i}".encode()


async def test_events_reach_the_loop_without_a_pump_thread(tmp_path: Path) -> None:
    server = _transport(tmp_path / "s", role=ROLE_REQUESTER)
    server.serve(PROTOCOL, _echo)
    await server.start()
    client = await _client_of(server, tmp_path / "c")
    try:
        await _echo_round_trips(client, server.node_id, 20)
        assert wake_fd() is not None
        assert "libp2p-events" not in {t.name for t in threading.enumerate()}
    finally:
        await client.close()
        await server.close()
    fd = wake_fd()
    assert fd is not None
    # both nodes of this loop are gone: the loop no longer watches the descriptor
    assert asyncio.get_running_loop().remove_reader(fd) is False


async def test_a_node_on_another_loop_gets_its_events_there(tmp_path: Path) -> None:
    """The server runs on a loop in another thread; whichever loop drains the hub, each
    node's events run on its own loop."""
    ready = threading.Event()
    stop: asyncio.Event | None = None
    server_loop: asyncio.AbstractEventLoop | None = None
    handled_on: list[int] = []
    server_box: list[Libp2pTransport] = []

    async def serve() -> None:
        nonlocal stop, server_loop
        stop, server_loop = asyncio.Event(), asyncio.get_running_loop()

        async def echo(peer: str, data: bytes) -> bytes:
            handled_on.append(threading.get_ident())
            return b"echo:" + data

        server = _transport(tmp_path / "s", role=ROLE_REQUESTER)
        server.serve(PROTOCOL, echo)
        await server.start()
        server_box.append(server)
        ready.set()
        await stop.wait()
        await server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert await asyncio.to_thread(ready.wait, DEADLINE)
    server = server_box[0]
    client = await _client_of(server, tmp_path / "c")
    try:
        await _echo_round_trips(client, server.node_id, 10)
        assert handled_on and set(handled_on) == {thread.ident}
    finally:
        await client.close()
        assert server_loop is not None and stop is not None
        server_loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, DEADLINE)
    assert not thread.is_alive()
