"""`Client`: the blocking wrapper of `bacalhau.api.client.AsyncClient` for scripts and the CLI.
Each call runs the async method on the client's own private event loop and returns the same
wire JSON; errors are the async client's (`ClientError` with the server's message and hint).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from bacalhau.api.client import AsyncClient

T = TypeVar("T")


class Client:
    """Blocking wrapper of `AsyncClient` for scripts and the CLI; owns a private event loop."""

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
        import asyncio

        self._loop = asyncio.new_event_loop()
        self.aio = AsyncClient(host, port, timeout=timeout, tls=tls, headers=headers,
                               insecure=insecure, ca_file=ca_file)
        self.base_url = self.aio.base_url

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
        if self._loop.is_closed():
            return
        self._loop.run_until_complete(self.aio.close())
        self._loop.close()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run a coroutine (e.g. one built on `self.aio`) on this client's loop."""
        return self._loop.run_until_complete(awaitable)

    def put_job(self, job: dict[str, Any], force: bool = False) -> dict[str, Any]:
        return self.run(self.aio.put_job(job, force))

    def job_diff(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.run(self.aio.job_diff(job))

    def get_job(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.get_job(job_id, **kwargs))

    def list_jobs(self, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.list_jobs(**kwargs))

    def job_history(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.job_history(job_id, **kwargs))

    def job_executions(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.job_executions(job_id, **kwargs))

    def job_versions(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.job_versions(job_id, **kwargs))

    def job_results(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.job_results(job_id, **kwargs))

    def stop_job(self, job_id: str, reason: str = "", **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.stop_job(job_id, reason, **kwargs))

    def rerun_job(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.rerun_job(job_id, **kwargs))

    def stream_logs(self, job_id: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        agen = self.aio.stream_logs(job_id, **kwargs)
        try:
            while True:
                try:
                    yield self.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self.run(agen.aclose())

    def list_nodes(self, **kwargs: Any) -> dict[str, Any]:
        return self.run(self.aio.list_nodes(**kwargs))

    def get_node(self, node_id: str) -> dict[str, Any]:
        return self.run(self.aio.get_node(node_id))

    def node_action(self, node_id: str, action: str, message: str = "") -> dict[str, Any]:
        return self.run(self.aio.node_action(node_id, action, message))

    def agent_alive(self) -> dict[str, Any]:
        return self.run(self.aio.agent_alive())

    def agent_version(self) -> dict[str, Any]:
        return self.run(self.aio.agent_version())

    def agent_node(self) -> dict[str, Any]:
        return self.run(self.aio.agent_node())

    def agent_config(self) -> dict[str, Any]:
        return self.run(self.aio.agent_config())

    def download(self, url: str, dest: Path, *, timeout: float = 300.0) -> Path:
        return self.run(self.aio.download(url, dest, timeout=timeout))
