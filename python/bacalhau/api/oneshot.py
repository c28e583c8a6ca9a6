"""A blocking API client for one-shot CLI commands, on the standard library's `http.client`.

`bacalhau job list` makes one request and exits; loading aiohttp and asyncio for it costs more
than the request (issue 15: a command's start is mostly imports). `OneShotClient` answers the
plain JSON calls of `bacalhau.api.client.AsyncClient` (the same request building: each call is
that class's coroutine, whose only await is a `_request` that here completes without
suspending) over one keep-alive `http.client` connection. Anything else (`stream_logs`,
`download`, `run`, `aio`) goes to a full `bacalhau.api.client.Client`, created on first use.

Network failures surface as the standard library's `OSError` (`ConnectionRefusedError`,
`TimeoutError`, `socket.gaierror`) or `http.client.HTTPException`; error answers as the same
`ClientError` as the full client.
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

    from bacalhau.api.client import Client

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
    raise RuntimeError("a one-shot API call awaited real I/O; use bacalhau.api.client.Client")


class _BlockingRequests(AsyncClient):
    """`AsyncClient` whose `_request` does blocking I/O on one `http.client` connection."""

    def __init__(self, host: str, port: int, *, insecure: bool, ca_file: str,
                 **kwargs: Any) -> None:
        super().__init__(host, port, insecure=insecure, ca_file=ca_file, **kwargs)
        self._insecure = insecure
        self._ca_file = ca_file
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        import http.client  # here, not at the top: it loads ssl and email (~30 ms)

        if self._conn is None:
            if self.tls:
                context = client_ssl_context(insecure=self._insecure, ca_file=self._ca_file)
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=self.timeout)
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
        conn = self._connection()
        try:
            conn.request(method, url, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except BaseException:
            self.close_connection()
            raise
        if resp.status >= 400:
            raise ClientError.from_response(resp.status, raw)
        return orjson.loads(raw) if raw else {}


class OneShotClient:
    """The CLI's client: `bacalhau.api.client.Client`'s interface, plain JSON calls without
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
            from bacalhau.api.client import Client

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
