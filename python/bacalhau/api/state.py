"""What the API application holds, under typed keys, and the part of the `Requester` it calls.

Handlers reach their collaborators through `request.app[KEY]`; nothing is global, so several
nodes (devstack, tests) can serve APIs in one process.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from bacalhau.config import Config
from bacalhau.models import Execution, Job, JobHistory, NodeInfo, NodeState, SpecConfig


class SubmitOutcome(Protocol):
    job_id: str
    evaluation_id: str
    warnings: list[str]


class RequesterFacade(Protocol):
    """The calls the REST API makes on the orchestrator (docs/internals.md §5)."""

    async def submit_job(
        self, job: Job, force: bool = False, client_meta: dict[str, str] | None = None
    ) -> SubmitOutcome: ...

    async def stop_job(self, job_id_or_name: str, namespace: str, reason: str) -> str: ...

    def get_job(self, id_or_name: str, namespace: str = "default", version: int = 0) -> Job: ...

    def get_job_json(self, id_or_name: str, namespace: str = "default") -> bytes: ...

    def list_jobs(
        self, namespace: str | None, limit: int, offset: int, order_by: str, reverse: bool,
        labels: list[str],
    ) -> tuple[list[Job], bool]: ...

    def job_history(
        self, job_id: str, *, since: int = 0, event_type: str = "all", execution_id: str = "",
        job_version: int = 0, all_versions: bool = False, offset: int = 0, limit: int = 100,
    ) -> tuple[list[JobHistory], int]: ...

    def job_executions(
        self, job_id: str, *, job_version: int = 0, all_versions: bool = False,
        order_by: str = "created_at", reverse: bool = False,
    ) -> list[Execution]: ...

    def job_versions(self, job_id: str) -> list[Job]: ...

    def job_results(self, job_id: str) -> list[SpecConfig]: ...

    def stream_logs(
        self, job_id: str, execution_id: str, follow: bool, tail: bool
    ) -> AsyncIterator[tuple[int, str]]: ...

    def list_nodes(
        self, *, filter_approval: str = "", filter_status: str = "", labels: list[str] = ...,
        order_by: str = "id", reverse: bool = False,
    ) -> list[NodeState]: ...

    def nodes_wire(self, states: Iterable[NodeState]) -> bytes: ...

    def get_node(self, node_id: str) -> NodeState: ...

    async def node_action(self, node_id: str, action: str, message: str) -> None: ...


NodeInfoProvider = Callable[[], NodeInfo]
DebugInfoProviders = Mapping[str, Callable[[], Any]]

REQUESTER = web.AppKey("requester", RequesterFacade)
NODE_INFO = web.AppKey[NodeInfoProvider]("node_info_provider")
CONFIG = web.AppKey("config", Config)
DEBUG_INFO = web.AppKey[DebugInfoProviders]("debug_info")
HANDLER_TIMEOUT = web.AppKey("handler_timeout", float)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)

# Set by the error middleware. RequestKey exists from aiohttp 3.12; older ones take a string.
REQUEST_ID: Any = (
    web.RequestKey("request_id", str) if hasattr(web, "RequestKey") else "bacalhau.request_id"
)


def requester_of(request: web.Request) -> RequesterFacade:
    return request.app[REQUESTER]
