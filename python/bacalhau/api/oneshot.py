"""A blocking API client for one-shot CLI commands, on the standard library alone.

`bacalhau job list` makes one request and exits; loading aiohttp and asyncio for it costs more
than the request (issue 15: a command's start is mostly imports). `OneShotClient` answers the
plain JSON calls of `bacalhau.api.client.AsyncClient` (the same request building: each call is
that class's coroutine, whose only await is a `_request` that here completes without
suspending) with `plain_http` (a socket: `http.client` alone loads ssl and email, ~30 ms),
or over `http.client` for HTTPS. Anything else (`stream_logs`,
`download`, `run`, `aio`) goes to a full `bacalhau.api.sync_client.Client`, created on first use.

Network failures surface as the standard library's `OSError` (`ConnectionRefusedError`,
`TimeoutError`, `socket.gaierror`, `HTTPResponseError`) or `http.client.HTTPException`;
error answers as the same `ClientError` as the full client.
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlencode

import orjson

from bacalhau.api.client import AsyncClient, ClientError, Params, client_ssl_context

if TYPE_CHECKING:
    import http.client

    from bacalhau.api.sync_client import Client

JSON_CALLS = frozenset({
    "put_job", "job_diff", "get_job", "list_jobs", "job_history", "job_executions",
    "job_versions", "job_results", "stop_job", "rerun_job", "list_nodes", "get_node",
    "node_action", "agent_alive", "agent_version", "agent_node", "agent_config",
})
"""The `AsyncClient` methods that are one `_request` each, answered here without asyncio."""


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (its awaits complete at once) to its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a one-shot API call awaited real I/O; use bacalhau.api.sync_client.Client")


class HTTPResponseError(ConnectionError):
    """The server's answer was not HTTP/1.x as this client reads it."""


def plain_http(host: str, port: int, method: str, target: str, headers: dict[str, str],
               body: bytes | None, *, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange over a fresh TCP connection (`Connection: close`): the status
    and the body (Content-Length, chunked, or up to the close). Plain HTTP only; HTTPS goes
    through `http.client`, which `ssl` needs anyway."""
    import socket

    lines = [f"{method} {target} HTTP/1.1",
             f"Host: {f'[{host}]' if ':' in host else host}:{port}",
             "Connection: close", "Accept: application/json",
             f"Content-Length: {len(body or b'')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HTTPResponseError(f"not an HTTP/1.1 answer from {host}:{port}: {raw[:80]!r}")
    fields = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        rest = _dechunk(rest)
    elif b"content-length" in fields:
        rest = rest[: int(fields[b"content-length"])]
    return int(parts[1]), rest


def _dechunk(data: bytes) -> bytes:
    out = []
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2


class _BlockingRequests(AsyncClient):
    """`AsyncClient` whose `_request` does blocking I/O on one `http.client` connection."""

    def __init__(self, host: str, port: int, *, insecure: bool, ca_file: str,
                 **kwargs: Any) -> None:
        super().__init__(host, port, insecure=insecure, ca_file=ca_file, **kwargs)
        self._insecure = insecure
        self._ca_file = ca_file
        self._conn: http.client.HTTPSConnection | None = None

    def _connection(self) -> http.client.HTTPSConnection:
        import http.client  # only for TLS: it loads ssl and email (~30 ms)

        if self._conn is None:
            context = client_ssl_context(insecure=self._insecure, ca_file=self._ca_file)
            self._conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=context)
        return self._conn

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> Any:
        url = path + ("?" + urlencode(params, quote_via=quote) if params else "")
        headers = {**self._headers, **self._auth}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if self.tls:
            conn = self._connection()
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                status, raw = resp.status, resp.read()
            except BaseException:
                self.close_connection()
                raise
        else:
            status, raw = plain_http(self.host, self.port, method, url, headers, data,
                                     timeout=self.timeout)
        if status >= 400:
            raise ClientError.from_response(status, raw)
        return orjson.loads(raw) if raw else {}


class OneShotClient:
    """The CLI's client: `bacalhau.api.sync_client.Client`'s interface, plain JSON calls without
    aiohttp or asyncio. Use as `with OneShotClient(...) as client:`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1234,
        *,
        timeout: float = 30.0,
        tls: bool = False,
        headers: dict[str, str] | None = None,
        insecure: bool = False,
        ca_file: str = "",
    ) -> None:
        self._args: dict[str, Any] = {"timeout": timeout, "tls": tls, "headers": headers,
                                      "insecure": insecure, "ca_file": ca_file}
        self._host, self._port = host, port
        self.timeout = timeout
        self._requests = _BlockingRequests(host, port, **self._args)
        self._full: Client | None = None
        self.base_url = self._requests.base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._requests.close_connection()
        if self._full is not None:
            self._full.close()

    def full(self) -> Client:
        """The aiohttp client, for the calls that stream (logs, downloads) or run coroutines."""
        if self._full is None:
            from bacalhau.api.sync_client import Client

            self._full = Client(self._host, self._port, **self._args)
        return self._full

    def __getattr__(self, name: str) -> Any:
        if name in JSON_CALLS:
            method = getattr(self._requests, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                return _drive(method(*args, **kwargs))

            call.__name__ = name
            return call
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full(), name)
