"""`AsyncClient`: the Python SDK's client of a Bacalhau node, on typed models.

It is a layer over the REST client the CLI uses (`bacalhau.api.client.AsyncClient`, reachable
as `.api`), turning wire JSON into `bacalhau.models` objects and adding the flows a program
wants: `run` (submit, wait, collect the output), `wait` (follow the job's history, with an
`on_event` callback), `results` (download, verify the CID, merge: the code of `job get`),
`logs` (an async iterator). Server errors raise `APIError` with the server's message and
hint; no answer at all raises `APIUnreachableError`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from bacalhau.api.client import AsyncClient as RawAsyncClient
from bacalhau.api.client import auth_headers
from bacalhau.api.watch import HistoryTimeout, follow_history
from bacalhau.models import (
    Execution,
    ExecutionStateType,
    Job,
    JobHistory,
    NodeInfo,
    NodeState,
)
from bacalhau.sdk.errors import (
    APIUnreachableError,
    JobFailedError,
    NoResultsError,
    ResultDownloadFailedError,
    ResultVerificationError,
    WaitTimeoutError,
)

T = TypeVar("T")
EventCallback = Callable[[JobHistory], Any]


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What the orchestrator answered to a submission."""

    job_id: str
    evaluation_id: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a job's output as the node streams it."""

    stream: str  # "stdout" or "stderr"
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class JobRun:
    """A job that ended, with its executions; `stdout`/`stderr` are those of its Completed
    executions (current version, in creation order) as the node reported them (long output
    is truncated there: `results()` has all of it)."""

    job: Job
    executions: list[Execution]

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def state(self) -> str:
        return self.job.state.state_type

    @property
    def completed(self) -> list[Execution]:
        done = [e for e in self.executions if e.job_version in (0, self.job.version)
                and e.compute_state.state_type == ExecutionStateType.COMPLETED]
        return sorted(done, key=lambda e: (e.create_time, e.id))

    @property
    def stdout(self) -> str:
        return "".join(e.run_output.stdout for e in self.completed if e.run_output)

    @property
    def stderr(self) -> str:
        return "".join(e.run_output.stderr for e in self.completed if e.run_output)

    @property
    def exit_code(self) -> int | None:
        """The first Completed execution's exit code (None when none completed)."""
        for execution in self.completed:
            if execution.run_output is not None:
                return execution.run_output.exit_code
        return None


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


class AsyncClient:
    """Client of one node's API. Where an argument is not given it comes from the environment
    the CLI reads: BACALHAU_API_HOST / BACALHAU_API_PORT (127.0.0.1:1234), BACALHAU_API_KEY or
    BACALHAU_API_USERNAME + BACALHAU_API_PASSWORD, BACALHAU_API_TLS_USETLS / _INSECURE /
    _CAFILE. Use as `async with AsyncClient() as client:`."""

    def __init__(self, host: str | None = None, port: int | None = None, *,
                 api_key: str | None = None, username: str | None = None,
                 password: str | None = None, tls: bool | None = None, insecure: bool = False,
                 ca_file: str = "", timeout: float = 30.0,
                 environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        host = host or env.get("BACALHAU_API_HOST") or "127.0.0.1"
        port = int(port or env.get("BACALHAU_API_PORT") or 1234)
        insecure = insecure or _env_flag(env, "BACALHAU_API_TLS_INSECURE")
        ca_file = ca_file or env.get("BACALHAU_API_TLS_CAFILE", "")
        if tls is None:
            tls = _env_flag(env, "BACALHAU_API_TLS_USETLS") or insecure or bool(ca_file)
        if api_key:
            headers = {"Authorization": f"Bearer {api_key}"}
        elif username and password:
            headers = auth_headers({"BACALHAU_API_USERNAME": username,
                                    "BACALHAU_API_PASSWORD": password})
        else:
            headers = auth_headers(env)
        self.api = RawAsyncClient(host, port, timeout=timeout, tls=tls, headers=headers,
                                  insecure=insecure, ca_file=ca_file)
        self.base_url = self.api.base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.api.close()

    async def _call(self, awaitable: Any) -> Any:
        """Await an API call; no answer at all becomes APIUnreachableError."""
        try:
            return await awaitable
        except HistoryTimeout:
            raise  # a wait that ran out, not the API
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise APIUnreachableError(
                f"no answer from the Bacalhau API at {self.base_url}: "
                f"{exc or type(exc).__name__}",
                hint="start a node with `bacalhau serve` (or `bacalhau devstack`), or give "
                "the client its host and port (BACALHAU_API_HOST, BACALHAU_API_PORT)") from None

    # ----- jobs ------------------------------------------------------------------------------

    async def submit(self, job: Job | Mapping[str, Any], *, force: bool = False) -> SubmitResult:
        """Submit a job (a `Job`, e.g. from `Job.wasm(...)`, or its wire dict)."""
        spec = job.to_dict() if isinstance(job, Job) else dict(job)
        answer = await self._call(self.api.put_job(spec, force=force))
        return SubmitResult(str(answer.get("JobID", "")), str(answer.get("EvaluationID", "")),
                            [str(w) for w in answer.get("Warnings") or []])

    async def job(self, job_id: str, *, namespace: str = "") -> Job:
        answer = await self._call(self.api.get_job(job_id, namespace=namespace))
        return Job.from_dict(answer.get("Job") or {})

    async def jobs(self, *, namespace: str = "", limit: int = 0,
                   labels: Iterable[str] = ()) -> list[Job]:
        """Jobs, newest last (one page of `limit`; 0 = the server's default)."""
        answer = await self._call(self.api.list_jobs(namespace=namespace, limit=limit,
                                                     labels=labels))
        return [Job.from_dict(item) for item in answer.get("Items") or []]

    async def executions(self, job_id: str) -> list[Execution]:
        answer = await self._call(self.api.job_executions(job_id))
        return [Execution.from_dict(item) for item in answer.get("Items") or []]

    async def history(self, job_id: str) -> list[JobHistory]:
        answer = await self._call(self.api.job_history(job_id, event_type="all"))
        return [JobHistory.from_dict(item) for item in answer.get("Items") or []]

    async def stop(self, job_id: str, reason: str = "") -> str:
        """Stop a job; returns the evaluation id ("" when it had already stopped)."""
        answer = await self._call(self.api.stop_job(job_id, reason))
        return str(answer.get("EvaluationID", ""))

    async def wait(self, job_id: str, timeout: float = 600.0, *,
                   on_event: EventCallback | None = None, poll_interval: float = 0.1) -> Job:
        """Wait until the job settles (batch/ops: an end state; daemon/service: running) and
        return it; `on_event` gets each history event as it appears. `WaitTimeoutError` when
        `timeout` seconds pass first (the job keeps running)."""
        job = await self.job(job_id)

        def deliver(item: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(JobHistory.from_dict(item))

        try:
            final = await self._call(follow_history(
                self.api, job.id, deliver, job_type=job.type, timeout=timeout,
                interval=poll_interval))
        except HistoryTimeout as exc:
            raise WaitTimeoutError(str(exc), hint=f"check on it later: client.wait("
                                   f"{job.id!r}) or `bacalhau job describe {job.id}`") from None
        return Job.from_dict(final)

    async def run(self, job: Job | Mapping[str, Any], *, timeout: float = 600.0,
                  on_event: EventCallback | None = None, check: bool = True) -> JobRun:
        """Submit `job`, wait for it and return it with its executions (`.stdout`).
        With `check`, a job that ended Failed or Stopped raises `JobFailedError`."""
        submitted = await self.submit(job)
        final = await self.wait(submitted.job_id, timeout, on_event=on_event)
        outcome = JobRun(final, await self.executions(final.id))
        if check and outcome.state in ("Failed", "Stopped"):
            raise JobFailedError(final, outcome.executions)
        return outcome

    async def results(self, job_id: str, dest: str | os.PathLike[str], *, raw: bool = False,
                      timeout: float = 300.0) -> list[Path]:
        """Download every published result of the job into `dest`, verify each against the
        CID its compute node published and merge them (stdout/stderr appended; `raw` keeps
        one folder per result): the code of `bacalhau job get`. Returns the files written.
        A result that cannot be fetched raises `ResultDownloadFailedError` naming its
        execution, node and location."""
        from bacalhau.cli.result_errors import ResultDownloadError
        from bacalhau.cli.results import NoResults, ResultMismatch, download_results

        warnings: list[str] = []
        try:
            written = await download_results(
                self.api, job_id, Path(dest), raw=raw, timeout=timeout,
                echo=lambda text, err=False: warnings.append(str(text)))
        except NoResults:
            raise NoResultsError(f"job {job_id} published no results to download",
                                 hint="its output may be in run(...).stdout or "
                                 "client.logs(job_id)") from None
        except ResultMismatch as exc:
            raise ResultVerificationError(str(exc)) from None
        except ResultDownloadError as exc:
            raise ResultDownloadFailedError(Exception.__str__(exc), hint=exc.hint) from None
        for text in warnings:
            print(text, file=sys.stderr)
        return [Path(p) for p in written]

    async def logs(self, job_id: str, *, follow: bool = True, execution_id: str = "",
                   tail: bool = False) -> AsyncIterator[LogLine]:
        """The job's output lines (stdout and stderr, as written), following a running job
        until it ends unless `follow=False`."""
        stream = self.api.stream_logs(job_id, execution_id=execution_id, follow=follow,
                                      tail=tail)
        try:
            while True:
                try:
                    value = await self._call(stream.__anext__())
                except StopAsyncIteration:
                    return
                yield LogLine("stderr" if value.get("Type") == 2 else "stdout",
                              str(value.get("Line", "")))
        finally:
            await stream.aclose()

    # ----- nodes and the agent ---------------------------------------------------------------

    async def nodes(self, *, labels: Iterable[str] = (), approval: str = "",
                    status: str = "") -> list[NodeState]:
        """Nodes the orchestrator knows (filters: labels selector, approval, connection)."""
        answer = await self._call(self.api.list_nodes(
            labels=labels, filter_approval=approval, filter_status=status))
        return [NodeState.from_dict(item) for item in answer.get("Nodes") or []]

    async def node(self, node_id: str) -> NodeState:
        """One node, by id or unique prefix."""
        answer = await self._call(self.api.get_node(node_id))
        return NodeState.from_dict(answer.get("Node") or {})

    async def approve_node(self, node_id: str, message: str = "") -> None:
        await self._node_action(node_id, "approve", message)

    async def reject_node(self, node_id: str, message: str = "") -> None:
        await self._node_action(node_id, "reject", message)

    async def delete_node(self, node_id: str, message: str = "") -> None:
        await self._node_action(node_id, "delete", message)

    async def _node_action(self, node_id: str, action: str, message: str) -> None:
        from bacalhau.sdk.errors import APIError

        answer = await self._call(self.api.node_action(node_id, action, message))
        if not answer.get("Success", True):
            raise APIError(400, {"Message": str(answer.get("Error") or f"{action} failed")})

    async def alive(self) -> bool:
        answer = await self._call(self.api.agent_alive())
        return str(answer.get("Status", "")).upper() == "OK"

    async def version(self) -> dict[str, str]:
        """The node's BuildVersionInfo (GitVersion, GitCommit, BuildDate, GOOS, GOARCH)."""
        return {str(k): str(v) for k, v in (await self._call(self.api.agent_version())).items()}

    async def node_info(self) -> NodeInfo:
        """The NodeInfo of the node this client talks to."""
        return NodeInfo.from_dict(await self._call(self.api.agent_node()))

    async def config(self) -> dict[str, Any]:
        """The node's effective config, secrets redacted."""
        answer = await self._call(self.api.agent_config())
        return dict(answer.get("config") or answer.get("Config") or answer)
