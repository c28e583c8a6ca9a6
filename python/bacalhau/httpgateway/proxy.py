"""The filtering HTTP/HTTPS proxy of one `Network HTTP` execution, on the compute node's loop.

It listens on one address (the gateway of the execution's internal Docker network) and serves
only clients inside that network's subnet, so another job's container cannot use it. Each
client connection carries one request:
- `CONNECT host:port` (HTTPS and any other TLS): when `host` is allowed, a TCP tunnel to it
  after `200 Connection established`;
- `GET http://host[:port]/path` and the other methods with an absolute `http://` URL: the
  request goes on to `host` in origin form with `Connection: close` (hop-by-hop headers
  dropped), the answer comes back as it is.
A host outside the allow-list gets `403 Forbidden` with a body naming it; a request that is
not a proxy request gets `400`; a host that cannot be resolved or reached gets `502`.

Names are resolved on the node (`Resolver`): first the operator's fixed `hosts`
(`Compute.Network.ProxyHosts`, like /etc/hosts: for tests and private names), then DNS. DNS
answers that are addresses of the compute host itself (loopback, link-local, unspecified,
multicast, or bindable here) are refused, so that an allowed name cannot be pointed at the
node's own services.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bacalhau.httpgateway.domains import allowed, normalize

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 256
MAX_DENIED_KEPT = 100  # hosts remembered in ProxyStats.denied_hosts
CHUNK = 64 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
               "proxy-authenticate", "te", "trailer", "upgrade"}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyRefusal(Exception):
    """A request the proxy answers itself: `status` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(slots=True)
class ProxyStats:
    """What one proxy did (for logs and tests)."""

    allowed: int = 0
    denied: int = 0
    failed: int = 0
    foreign_clients: int = 0
    denied_hosts: list[str] = field(default_factory=list)


def _is_own_address(addr: Address) -> bool:
    """Loopback, link-local, unspecified, multicast, or an address of this host."""
    if addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(addr), 0))
        except OSError:
            return False
    return True


class Resolver:
    """Names to addresses for the proxy: fixed `hosts` first (trusted as given), then DNS
    (answers pointing at this host refused)."""

    def __init__(self, hosts: Mapping[str, str] | None = None) -> None:
        self.hosts = {normalize(k): str(v).strip() for k, v in (hosts or {}).items()}

    async def resolve(self, host: str) -> list[str]:
        """The addresses to try for `host`, or ProxyRefusal(502) saying why there are none."""
        name = normalize(host).strip("[]")
        if name in self.hosts:
            return [self.hosts[name]]
        try:
            literal = ipaddress.ip_address(name)
        except ValueError:
            literal = None
        if literal is not None:
            candidates = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ProxyRefusal(502, f"cannot resolve {name}: {exc}") from exc
            candidates = list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0])
                                            for i in infos))
        usable = [str(a) for a in candidates if not _is_own_address(a)]
        if not usable:
            raise ProxyRefusal(403, f"{name} resolves to an address of the compute node "
                                    "itself, which jobs may not reach")
        return usable


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    host: str = ""
    port: int = 0
    path: str = ""


def parse_head(head: bytes) -> _Request:
    """The request line and headers of a proxy request, with its destination."""
    try:
        text = head.decode("iso-8859-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise ProxyRefusal(400, "the request head is not text") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ProxyRefusal(400, f"not an HTTP request line: {lines[0][:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ProxyRefusal(400, f"bad header line {line[:100]!r}")
        headers.append((name.strip(), value.strip()))
    request = _Request(method.upper(), target, version, headers)
    if request.method == "CONNECT":
        split = urlsplit(f"//{target}")
        default_port = 443
    else:
        split = urlsplit(target)
        if split.scheme.lower() != "http" or not split.netloc:
            raise ProxyRefusal(400, "send an absolute http:// URL (GET http://host/path), or "
                                    "CONNECT host:port for https")
        default_port = 80
    try:
        port = split.port or default_port
    except ValueError as exc:
        raise ProxyRefusal(400, f"bad port in {target[:100]!r}") from exc
    if not split.hostname:
        raise ProxyRefusal(400, f"no host in {target[:100]!r}")
    request.host, request.port = split.hostname, port
    if request.method != "CONNECT":
        request.path = split.path or "/"
        if split.query:
            request.path += "?" + split.query
    return request


def _forward_head(request: _Request) -> bytes:
    """The request as the origin server sees it: origin-form target, no hop-by-hop headers,
    `Connection: close` (one request per client connection)."""
    named = {token.strip().lower() for name, value in request.headers
             if name.lower() == "connection" for token in value.split(",")}
    keep = [(n, v) for n, v in request.headers
            if n.lower() not in _HOP_BY_HOP and n.lower() not in named]
    if not any(n.lower() == "host" for n, _ in keep):
        default = request.port == 80
        keep.insert(0, ("Host", request.host if default else f"{request.host}:{request.port}"))
    lines = [f"{request.method} {request.path} {request.version}",
             *(f"{n}: {v}" for n, v in keep), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("iso-8859-1")


def _answer(status: int, reason: str) -> bytes:
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway",
              503: "Service Unavailable"}.get(status, "Error")
    body = f"bacalhau proxy: {reason}\n".encode()
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class FilteringProxy:
    """One execution's proxy: `domains` allowed, clients from `clients` only."""

    def __init__(self, domains: Sequence[str], *, clients: ipaddress.IPv4Network
                 | ipaddress.IPv6Network, resolver: Resolver | None = None,
                 label: str = "") -> None:
        self.domains = [normalize(d) for d in domains]
        self.clients = clients
        self.resolver = resolver or Resolver()
        self.label = label  # the execution, for logs
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int = 0) -> None:
        """Listen on `host:port` (port 0: a free one, then in `.port`)."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=HEAD_LIMIT,
                                                  reuse_address=True)
        self.host = host
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _client_allowed(self, peer: str) -> bool:
        try:
            addr = ipaddress.ip_address(peer.split("%")[0])
        except ValueError:
            return False
        # the gateway itself is the host: only the execution's containers are clients
        return addr in self.clients and str(addr) != self.host

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            peer = writer.get_extra_info("peername") or ("", 0)
            if not self._client_allowed(str(peer[0])):
                self.stats.foreign_clients += 1
                if self.stats.foreign_clients == 1:  # once: a scanning job must not flood logs
                    log.warning("proxy of %s: refused client %s (not a container of its "
                                "network %s)", self.label, peer[0], self.clients)
                return
            if self._slots.locked():
                writer.write(_answer(503, "too many open connections for this job"))
                return
            async with self._slots:
                await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            request = parse_head(head[:-4])
            if not allowed(request.host, self.domains):
                self.stats.denied += 1
                if len(self.stats.denied_hosts) < MAX_DENIED_KEPT:
                    self.stats.denied_hosts.append(request.host)
                raise ProxyRefusal(403, f"{request.host} is not in this job's Network.Domains "
                                        f"({', '.join(self.domains) or 'none'})")
            upstream_reader, upstream_writer = await self._connect(request)
        except ProxyRefusal as refusal:
            if refusal.status != 403:
                self.stats.failed += 1
            writer.write(_answer(refusal.status, str(refusal)))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return
        except asyncio.LimitOverrunError:
            writer.write(_answer(400, "request head too large"))
            return
        except TimeoutError:
            return
        self.stats.allowed += 1
        try:
            if request.method == "CONNECT":
                writer.write(f"{request.version} 200 Connection established\r\n\r\n".encode())
            else:
                upstream_writer.write(_forward_head(request))
            await _relay(reader, writer, upstream_reader, upstream_writer)
        finally:
            with contextlib.suppress(Exception):
                upstream_writer.close()

    async def _connect(self, request: _Request
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        addresses = await self.resolver.resolve(request.host)
        last: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    return await asyncio.open_connection(address, request.port)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise ProxyRefusal(502, f"cannot connect to {request.host}:{request.port}: {last}")


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy until `src` ends, then half-close `dst`."""
    try:
        while chunk := await src.read(CHUNK):
            dst.write(chunk)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        pass


async def _relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                 upstream_reader: asyncio.StreamReader,
                 upstream_writer: asyncio.StreamWriter) -> None:
    """Both directions until the server's side ends: a client that half-closes still gets
    the whole answer; once the server is done, the client's side is cut too."""
    to_upstream = asyncio.ensure_future(_pipe(client_reader, upstream_writer))
    try:
        await _pipe(upstream_reader, client_writer)
    finally:
        to_upstream.cancel()
        with contextlib.suppress(BaseException):
            await to_upstream
