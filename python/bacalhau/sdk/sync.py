"""`Client`: the blocking face of the SDK's `AsyncClient`, for scripts without an event loop.
Every method runs the async one on a loop the client owns; `logs` is a plain iterator. Where a
loop already runs in the thread (Jupyter, an asyncio program), use `AsyncClient` and await."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from bacalhau.models import Execution, Job, JobHistory, NodeInfo, NodeState
from bacalhau.sdk.client import AsyncClient, EventCallback, JobRun, LogLine, SubmitResult

T = TypeVar("T")


class Client:
    """Blocking client of one node's API; arguments as `AsyncClient` (host, port and
    credentials default to the BACALHAU_API_* environment). Use as `with Client() as c:`."""

    def __init__(self, host: str | None = None, port: int | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncClient(host, port, **options)
        self.base_url = self.aio.base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.aio.close())
            self._loop.close()

    def _run(self, awaitable: Awaitable[T]) -> T:
        return self._loop.run_until_complete(awaitable)

    # ----- jobs ------------------------------------------------------------------------------

    def submit(self, job: Job | Mapping[str, Any], *, force: bool = False) -> SubmitResult:
        """Submit a job; see `AsyncClient.submit`."""
        return self._run(self.aio.submit(job, force=force))

    def job(self, job_id: str, *, namespace: str = "") -> Job:
        return self._run(self.aio.job(job_id, namespace=namespace))

    def jobs(self, *, namespace: str = "", limit: int = 0,
             labels: Iterable[str] = ()) -> list[Job]:
        return self._run(self.aio.jobs(namespace=namespace, limit=limit, labels=labels))

    def executions(self, job_id: str) -> list[Execution]:
        return self._run(self.aio.executions(job_id))

    def history(self, job_id: str) -> list[JobHistory]:
        return self._run(self.aio.history(job_id))

    def stop(self, job_id: str, reason: str = "") -> str:
        return self._run(self.aio.stop(job_id, reason))

    def wait(self, job_id: str, timeout: float = 600.0, *,
             on_event: EventCallback | None = None, poll_interval: float = 0.1) -> Job:
        """Wait for the job to settle; see `AsyncClient.wait`."""
        return self._run(self.aio.wait(job_id, timeout, on_event=on_event,
                                       poll_interval=poll_interval))

    def run(self, job: Job | Mapping[str, Any], *, timeout: float = 600.0,
            on_event: EventCallback | None = None, check: bool = True) -> JobRun:
        """Submit, wait, return the job with its output; see `AsyncClient.run`."""
        return self._run(self.aio.run(job, timeout=timeout, on_event=on_event, check=check))

    def results(self, job_id: str, dest: str | os.PathLike[str], *, raw: bool = False,
                timeout: float = 300.0) -> list[Path]:
        """Download, verify and merge the job's results; see `AsyncClient.results`."""
        return self._run(self.aio.results(job_id, dest, raw=raw, timeout=timeout))

    def logs(self, job_id: str, *, follow: bool = True, execution_id: str = "",
             tail: bool = False) -> Iterator[LogLine]:
        """The job's output lines; see `AsyncClient.logs`."""
        stream = self.aio.logs(job_id, follow=follow, execution_id=execution_id, tail=tail)
        try:
            while True:
                try:
                    yield self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._run(stream.aclose())

    # ----- nodes and the agent ---------------------------------------------------------------

    def nodes(self, *, labels: Iterable[str] = (), approval: str = "",
              status: str = "") -> list[NodeState]:
        return self._run(self.aio.nodes(labels=labels, approval=approval, status=status))

    def node(self, node_id: str) -> NodeState:
        return self._run(self.aio.node(node_id))

    def approve_node(self, node_id: str, message: str = "") -> None:
        self._run(self.aio.approve_node(node_id, message))

    def reject_node(self, node_id: str, message: str = "") -> None:
        self._run(self.aio.reject_node(node_id, message))

    def delete_node(self, node_id: str, message: str = "") -> None:
        self._run(self.aio.delete_node(node_id, message))

    def alive(self) -> bool:
        return self._run(self.aio.alive())

    def version(self) -> dict[str, str]:
        return self._run(self.aio.version())

    def node_info(self) -> NodeInfo:
        return self._run(self.aio.node_info())

    def config(self) -> dict[str, Any]:
        return self._run(self.aio.config())
