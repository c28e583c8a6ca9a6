"""The filtering proxy of `Network HTTP` over real sockets on loopback: an origin server on
127.0.0.1, the proxy on 127.0.0.2 serving the 127.0.0.0/8 "subnet", clients from 127.0.0.3.
Test names are resolved by the proxy's fixed hosts (the `Compute.Network.ProxyHosts` map)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bacalhau.httpgateway.proxy import FilteringProxy, Resolver, parse_head
from tests.conftest import free_port

pytestmark = pytest.mark.unit

PROXY_HOST = "127.0.0.2"
CLIENT_HOST = "127.0.0.3"
TOKEN = b"origin-says-hello"


@dataclass
class Origin:
    """An HTTP/1.0-style origin on 127.0.0.1 recording each request head."""

    port: int = 0
    heads: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head.decode())
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(TOKEN), TOKEN))
        await writer.drain()
        writer.close()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = Origin()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FilteringProxy]:
    resolver = Resolver({"allowed.test": "127.0.0.1", "a.wild.test": "127.0.0.1",
                         "wild.test": "127.0.0.1", "other.test": "127.0.0.1"})
    filtering = FilteringProxy(["allowed.test", ".wild.test"],
                               clients=ipaddress.ip_network("127.0.0.0/8"), resolver=resolver,
                               label="e-test")
    await filtering.start(PROXY_HOST)
    yield filtering
    await filtering.close()


async def exchange(proxy: FilteringProxy, data: bytes, *, source: str = CLIENT_HOST) -> bytes:
    """Send `data` to the proxy from `source` and read everything back (b"" when the proxy
    cut the connection without an answer)."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port,
                                                   local_addr=(source, 0))
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    except ConnectionResetError:  # closed with our request unread
        return b""
    finally:
        writer.close()


async def test_an_allowed_domain_is_forwarded_in_origin_form(proxy: FilteringProxy,
                                                             origin: Origin) -> None:
    request = (f"GET http://allowed.test:{origin.port}/path?q=1 HTTP/1.1\r\n"
               f"Host: allowed.test:{origin.port}\r\nProxy-Connection: keep-alive\r\n"
               "Proxy-Authorization: Basic c2VjcmV0\r\nUser-Agent: t\r\n\r\n").encode()
    answer = await exchange(proxy, request)
    assert answer.startswith(b"HTTP/1.0 200 OK") and answer.endswith(TOKEN)
    (head,) = origin.heads
    lines = head.split("\r\n")
    assert lines[0] == "GET /path?q=1 HTTP/1.1"
    assert f"Host: allowed.test:{origin.port}" in lines and "User-Agent: t" in lines
    assert "Connection: close" in lines
    assert not any(line.lower().startswith("proxy-") for line in lines)
    assert proxy.stats.allowed == 1 and proxy.stats.denied == 0


async def test_a_domain_not_on_the_list_gets_403_and_reaches_nothing(proxy: FilteringProxy,
                                                                     origin: Origin) -> None:
    answer = await exchange(proxy, f"GET http://other.test:{origin.port}/ HTTP/1.1\r\n"
                                   "Host: other.test\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"other.test is not in this job's Network.Domains (allowed.test, .wild.test)" \
        in answer
    # a lookalike of the wildcard is not a subdomain of it
    answer = await exchange(proxy, f"CONNECT evilwild.test:{origin.port} HTTP/1.1\r\n\r\n"
                            .encode())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert origin.heads == [] and proxy.stats.denied_hosts == ["other.test", "evilwild.test"]


@pytest.mark.parametrize("host", ["a.wild.test", "wild.test"])
async def test_connect_tunnels_to_a_wildcard_domain_and_its_base(proxy: FilteringProxy,
                                                                 origin: Origin,
                                                                 host: str) -> None:
    # the tunnelled request follows the CONNECT in the same packet: nothing may be lost
    answer = await exchange(proxy, f"CONNECT {host}:{origin.port} HTTP/1.1\r\n"
                                   f"Host: {host}:{origin.port}\r\n\r\n"
                                   "GET /inside HTTP/1.0\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.0 200 OK")
    assert answer.endswith(TOKEN)
    assert origin.heads == ["GET /inside HTTP/1.0\r\n\r\n"]  # passed through untouched


async def test_clients_outside_the_network_are_not_served(origin: Origin) -> None:
    other_job = FilteringProxy(["allowed.test"], clients=ipaddress.ip_network("10.9.0.0/16"),
                               resolver=Resolver({"allowed.test": "127.0.0.1"}))
    await other_job.start(PROXY_HOST)
    try:
        answer = await exchange(other_job, f"GET http://allowed.test:{origin.port}/ "
                                           "HTTP/1.1\r\n\r\n".encode())
        assert answer == b"" and origin.heads == []
        assert other_job.stats.foreign_clients == 1
    finally:
        await other_job.close()


async def test_the_gateway_address_itself_is_not_a_client(proxy: FilteringProxy,
                                                          origin: Origin) -> None:
    answer = await exchange(proxy, f"GET http://allowed.test:{origin.port}/ HTTP/1.1\r\n\r\n"
                            .encode(), source=PROXY_HOST)
    assert answer == b"" and origin.heads == []


async def test_names_resolving_to_this_host_are_refused() -> None:
    # `localhost` is resolved by the system (not the fixed hosts): the node's own address
    local = FilteringProxy(["localhost"], clients=ipaddress.ip_network("127.0.0.0/8"))
    await local.start(PROXY_HOST)
    try:
        answer = await exchange(local, b"GET http://localhost:9/ HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert b"localhost resolves to an address of the compute node itself" in answer
    finally:
        await local.close()


async def test_bad_requests_and_dead_upstreams_are_answered(proxy: FilteringProxy) -> None:
    answer = await exchange(proxy, b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"send an absolute http:// URL" in answer
    dead = free_port()
    answer = await exchange(proxy, f"GET http://allowed.test:{dead}/ HTTP/1.1\r\n\r\n"
                            .encode())
    assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert f"cannot connect to allowed.test:{dead}".encode() in answer


async def test_close_ends_open_tunnels(proxy: FilteringProxy, origin: Origin) -> None:
    hold = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hold.wait()
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port,
                                                   local_addr=(CLIENT_HOST, 0))
    writer.write(f"CONNECT allowed.test:{port} HTTP/1.1\r\n\r\n".encode())
    async with asyncio.timeout(10):
        assert await reader.readuntil(b"\r\n\r\n") == \
            b"HTTP/1.1 200 Connection established\r\n\r\n"
        await proxy.close()
        assert await reader.read() == b""  # the tunnel was cut
    hold.set()
    writer.close()
    server.close()
    with pytest.raises(OSError):  # and nothing listens any more
        await asyncio.open_connection(proxy.host, proxy.port)


def test_request_heads_are_parsed_strictly() -> None:
    req = parse_head(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: x")
    assert (req.method, req.host, req.port) == ("CONNECT", "::1", 8443)
    req = parse_head(b"get http://Example.com/a?b HTTP/1.0")
    assert (req.method, req.host, req.port, req.path) == ("GET", "example.com", 80, "/a?b")
    for bad in (b"GET http://x.com/", b"GET ftp://x.com/ HTTP/1.1", b"CONNECT :80 HTTP/1.1",
                b"GET http://x.com:port/ HTTP/1.1", b"GET http://x.com/ HTTP/1.1\r\nbad"):
        with pytest.raises(Exception, match=r"\w"):
            parse_head(bad)
