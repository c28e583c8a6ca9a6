"""The runner (reference §6 BaseExecutor.Run): one execution from BidAccepted to a result.

    inputs (storage providers, in parallel) -> Running -> executor.run -> results/{stdout,
    stderr,exitCode,<Name>/} -> Publishing -> publisher.publish -> Completed + RunResult

(With the `noop` publisher nothing is packed: results/ holds only the result paths, the
logs stay in logs/ alone, and no CID is computed.)

Any error fails the execution with an event whose topic names the phase (Preparing
Environment, Downloading Inputs, Running Execution, Publishing Results) and a ComputeError to
the requester. A non-zero exit code is a normal, Completed result. Every state change is
conditional: when a cancel got there first, the runner stops quietly. Inputs are cleaned up
after the run; logs and results stay in the execution dir.

The execution's directories can be made ahead (`prepare_soon`, on a worker thread): the compute
service asks for that once it accepted a bid, so that they are made while the requester
decides, not after; `discard_prepared` removes them again (still empty) when the bid is
rejected or the execution cancelled before it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bacalhau import failpoints
from bacalhau.compute.bidder import ENV_PREFIX, env_allowed
from bacalhau.compute.logs import LogHub
from bacalhau.compute.outbox import Reporter
from bacalhau.config import Config
from bacalhau.content import CidError, results_cid
from bacalhau.errors import BacalhauError, ExecutorError, PublisherError
from bacalhau.executors.base import Executor, PreparedInput, RunRequest, read_output_head
from bacalhau.models import (
    GPU,
    Event,
    Execution,
    ExecutionStateType,
    Job,
    JobType,
    Resources,
    RunCommandResult,
    SpecConfig,
    Topic,
)
from bacalhau.store.executionstore import (
    ACTIVE_STATES,
    ExecutionStore,
    LocalExecution,
    StateConflictError,
)

if TYPE_CHECKING:
    from bacalhau.publishers.base import Publisher
    from bacalhau.storage.base import StorageProvider

log = logging.getLogger(__name__)

# Extra time the runner gives an executor past ExecutionTimeout before it stops waiting.
TIMEOUT_GRACE = 10.0
FAILED_DUE_TO_RESTART = "Failed due to node restart"


def execution_dir(data_dir: Path, execution_id: str) -> Path:
    return data_dir / "compute" / "executions" / execution_id


def system_env(execution: Execution, job: Job) -> dict[str, str]:
    return {
        "BACALHAU_EXECUTION_ID": execution.id,
        "BACALHAU_JOB_ID": job.id,
        "BACALHAU_JOB_TYPE": job.type,
        "BACALHAU_PARTITION_INDEX": str(execution.partition_index),
        "BACALHAU_PARTITION_COUNT": str(job.count),
    }


class _Phase:
    def __init__(self) -> None:
        self.topic = Topic.PREPARING


class ExecutionRunner:
    """Runs executions the buffer hands it; reports through the store's outbox."""

    def __init__(
        self,
        config: Config,
        store: ExecutionStore,
        reporter: Reporter,
        executors: Mapping[str, Executor],
        storages: Mapping[str, StorageProvider],
        publishers: Mapping[str, Publisher],
        data_dir: Path,
        hub: LogHub,
    ) -> None:
        self._config = config
        self._store = store
        self._reporter = reporter
        self._executors = executors
        self._storages = storages
        self._publishers = publishers
        self._data_dir = data_dir
        self._hub = hub
        self._executing: dict[str, Executor] = {}
        self._prepared: dict[str, tuple[list[Path], asyncio.Future[None]]] = {}

    def execution_dir(self, execution_id: str) -> Path:
        return execution_dir(self._data_dir, execution_id)

    def _layout(self, execution_id: str, task: Any) -> list[Path]:
        """The directories a run of `task` needs, parents first."""
        base = self.execution_dir(execution_id)
        inputs_dir, results_dir = base / "inputs", base / "results"
        return [base, inputs_dir, base / "logs", results_dir,
                *(results_dir / r.name for r in task.result_paths),
                *(inputs_dir / str(i) for i in range(len(task.input_sources)))]

    def prepare_soon(self, execution: Execution) -> None:
        """Start making the execution's directories on a worker thread (see module doc)."""
        job = execution.job
        if job is None or not job.tasks or execution.id in self._prepared:
            return
        dirs = self._layout(execution.id, job.task)
        future = asyncio.ensure_future(asyncio.to_thread(_make_dirs, dirs))
        future.add_done_callback(_ignore_result)  # a failure shows when the run makes them
        self._prepared[execution.id] = (dirs, future)

    async def discard_prepared(self, execution_id: str) -> None:
        """Remove directories `prepare_soon` made for an execution that will not run."""
        entry = self._prepared.pop(execution_id, None)
        if entry is None:
            return
        dirs, future = entry
        with contextlib.suppress(Exception):
            await future
        await asyncio.to_thread(_remove_empty_dirs, dirs)

    async def cancel(self, execution_id: str) -> None:
        """Ask the executor to stop; the buffer cancels the run task as well."""
        executor = self._executing.get(execution_id)
        if executor is not None:
            await executor.cancel(execution_id)

    async def run(self, execution_id: str, gpus: list[GPU] | None = None) -> None:
        """Run one execution in state BidAccepted to a terminal state (never raises).
        `gpus`: the specific GPUs the capacity tracker gave it (the executor uses these)."""
        local = self._store.get(execution_id)
        if local is None or local.state != ExecutionStateType.BID_ACCEPTED:
            return
        phase = _Phase()
        prepared: list[PreparedInput] = []
        try:
            await self._run(local, phase, prepared, gpus or [])
        except StateConflictError:
            log.debug("execution %s changed state under the runner (cancelled?)", execution_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(execution_id, phase.topic, exc)
        finally:
            await self._cleanup(prepared)
            self._hub.notify(execution_id)

    async def _run(self, local: LocalExecution, phase: _Phase, prepared: list[PreparedInput],
                   gpus: list[GPU]) -> None:
        execution = local.execution
        job = execution.job
        if job is None or not job.tasks:
            raise ExecutorError("execution has no job task to run")
        task = job.task
        executor = self._executors.get(task.engine.type.lower())
        if executor is None:
            raise ExecutorError(f'engine "{task.engine.type}" is not installed on this node')
        publisher = None
        if not task.publisher.is_empty():
            publisher = self._publishers.get(task.publisher.type.lower())
            if publisher is None:
                raise ExecutorError(
                    f'publisher "{task.publisher.type}" is not installed on this node')

        base = self.execution_dir(execution.id)
        inputs_dir, logs_dir, results_dir = base / "inputs", base / "logs", base / "results"
        prepared_dirs = self._prepared.pop(execution.id, None)
        if prepared_dirs is not None:
            with contextlib.suppress(Exception):  # made again below if that failed
                await prepared_dirs[1]
        for d in (inputs_dir, logs_dir, results_dir):
            d.mkdir(parents=True, exist_ok=True)
        stdout_path, stderr_path = logs_dir / "stdout", logs_dir / "stderr"
        for result in task.result_paths:
            (results_dir / result.name).mkdir(parents=True, exist_ok=True)
        env = self._env(execution, job)

        phase.topic = Topic.DOWNLOADING_INPUTS
        await self._prepare_inputs(task.input_sources, inputs_dir, prepared,
                                   (execution.partition_index, job.count))

        phase.topic = Topic.RUNNING
        resources = execution.allocated_resources.get(task.name, Resources())
        mutate = None
        if gpus:  # the GPUs this run holds, also recorded on the execution
            resources = resources.clone()
            resources.gpus = gpus

            def mutate(ex: Execution) -> None:
                ex.allocated_resources[task.name] = resources.clone()

        self._store.update(execution.id, ExecutionStateType.RUNNING,
                           expected=(ExecutionStateType.BID_ACCEPTED,), mutate=mutate,
                           events=[Event.new(Topic.EXECUTION, "Running")])
        self._hub.notify(execution.id)
        timeout = None
        if job.type in (JobType.BATCH, JobType.OPS) and task.timeouts.execution_timeout > 0:
            timeout = float(task.timeouts.execution_timeout)
        request = RunRequest(
            execution_id=execution.id, job_id=job.id, job_type=job.type,
            partition_index=execution.partition_index, partition_count=job.count,
            engine=task.engine, env=env, inputs=list(prepared),
            result_paths=list(task.result_paths), results_dir=results_dir,
            stdout_path=stdout_path, stderr_path=stderr_path,
            resources=resources,
            network=task.network, timeout=timeout,
        )
        async with self._hub.watching(execution.id, [stdout_path, stderr_path]):
            result = await self._execute(executor, request)
        # noop publishes nothing: the logs stay in logs/, no copies into results/ (issue 15)
        publishing = publisher is not None and publisher.type != "noop"
        run_output = self._collect(result, stdout_path, stderr_path, results_dir,
                                   into_results=publisher is None or publishing)

        def set_output(ex: Execution) -> None:
            ex.run_output = run_output

        published = SpecConfig()
        if publisher is not None:
            phase.topic = Topic.PUBLISHING
            local = self._store.update(execution.id, ExecutionStateType.PUBLISHING,
                                       expected=(ExecutionStateType.RUNNING,), mutate=set_output)
            # --- content address of the results (issue 4): computed before publishing, so
            # the CID names exactly what was packed; `job get` recomputes and compares it.
            # noop publishes nothing, so no CID is attached: do not hash the results for it
            result_cid = ""
            if publishing:
                try:
                    result_cid = await asyncio.to_thread(results_cid, results_dir)
                except CidError as exc:
                    raise PublisherError(
                        f"could not compute the CID of the results: {exc}") from exc
            await failpoints.hit_async("publish.mid")
            published = await publisher.publish(local.execution, results_dir)
            if not published.is_empty():
                published = SpecConfig(type=published.type,
                                       params={**published.params, "CID": result_cid})
            # --- end content address

        def finish(ex: Execution) -> None:
            ex.run_output = run_output
            ex.published_result = published

        done = Event.new(Topic.EXECUTION, "Completed successfully")
        with self._store.transaction():
            local = self._store.update(
                execution.id, ExecutionStateType.COMPLETED,
                expected=(ExecutionStateType.RUNNING, ExecutionStateType.PUBLISHING),
                mutate=finish, events=[done])
            self._reporter.run_result(local, [done])
        await failpoints.hit_async("compute.after_commit")

    def _env(self, execution: Execution, job: Job) -> dict[str, str]:
        allow = [str(p) for p in self._config.get("Compute.Env.AllowList", []) or []]
        env: dict[str, str] = {}
        for name, value in job.task.env.items():
            if value.startswith(ENV_PREFIX):
                host_var = value[len(ENV_PREFIX):]
                if not env_allowed(host_var, allow):
                    raise ExecutorError(f"Env.{name}: host variable {host_var} is not in "
                                        "Compute.Env.AllowList")
                value = os.environ.get(host_var, "")
            env[name] = value
        env.update(system_env(execution, job))
        return env

    async def _prepare_inputs(self, sources: list[Any], inputs_dir: Path,
                              prepared: list[PreparedInput],
                              partition: tuple[int, int] = (0, 1)) -> None:
        async def one(index: int, src: Any) -> None:
            provider = self._storages.get(src.source.type.lower())
            if provider is None:
                raise ExecutorError(f'input type "{src.source.type}" is not installed on this '
                                    "node")
            work_dir = inputs_dir / str(index)
            work_dir.mkdir(parents=True, exist_ok=True)
            if getattr(provider, "wants_partition", False):  # s3: objects split by Count
                prepared.append(await provider.prepare(src, work_dir, partition=partition))
            else:
                prepared.append(await provider.prepare(src, work_dir))

        try:
            async with asyncio.TaskGroup() as group:
                for index, src in enumerate(sources):
                    group.create_task(one(index, src))
        except BaseExceptionGroup as group_error:
            # The first failure is what users need; the others were cancelled because of it.
            first = group_error.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None

    async def _execute(self, executor: Executor, request: RunRequest) -> RunCommandResult:
        self._executing[request.execution_id] = executor
        try:
            if request.timeout is None:
                return await executor.run(request)
            try:
                return await asyncio.wait_for(executor.run(request),
                                              request.timeout + TIMEOUT_GRACE)
            except TimeoutError:
                raise ExecutorError(f"execution timed out after {request.timeout:g}s") from None
        finally:
            self._executing.pop(request.execution_id, None)

    @staticmethod
    def _collect(result: RunCommandResult, stdout_path: Path, stderr_path: Path,
                 results_dir: Path, *, into_results: bool = True) -> RunCommandResult:
        """The run's output for the execution record; with `into_results`, also the
        `stdout`, `stderr` and `exitCode` files of the results that a publisher packs."""
        if into_results:
            for src, name in ((stdout_path, "stdout"), (stderr_path, "stderr")):
                if src.exists():
                    _link_or_copy(src, results_dir / name)
                else:
                    (results_dir / name).write_bytes(b"")
            (results_dir / "exitCode").write_text(str(result.exit_code))
        stdout, stdout_truncated = read_output_head(stdout_path)
        stderr, stderr_truncated = read_output_head(stderr_path)
        return RunCommandResult(stdout=stdout, stdout_truncated=stdout_truncated,
                                stderr=stderr, stderr_truncated=stderr_truncated,
                                exit_code=result.exit_code, error_msg=result.error_msg)

    def _fail(self, execution_id: str, topic: str, exc: BaseException) -> None:
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, BacalhauError):
            log.exception("execution %s failed unexpectedly", execution_id, exc_info=exc)
        hint = getattr(exc, "hint", "") if isinstance(exc, BacalhauError) else ""
        fail_execution(self._store, self._reporter, execution_id, message, topic, hint=hint)

    async def _cleanup(self, prepared: list[PreparedInput]) -> None:
        for item in prepared:
            provider = self._storages.get(item.source.source.type.lower())
            if provider is None:
                continue
            try:
                await provider.cleanup(item)
            except Exception:
                log.warning("cleanup of input %s failed", item.target, exc_info=True)


def _link_or_copy(src: Path, dest: Path) -> None:
    """`dest` with the content of the finished log `src`: a hard link (no new file to make,
    nothing writes the log any more), or a copy where a link cannot be made."""
    try:
        try:
            os.link(src, dest)
        except FileExistsError:  # an earlier run's result: replace it
            dest.unlink()
            os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _make_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)


def _remove_empty_dirs(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):  # not empty (or gone): leave it
            d.rmdir()


def _ignore_result(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def fail_execution(store: ExecutionStore, reporter: Reporter, execution_id: str, message: str,
                   topic: str, *, hint: str = "",
                   expected: tuple[ExecutionStateType, ...] = ACTIVE_STATES) -> bool:
    """Failed + error event + ComputeError in one transaction; False if it was not active."""
    event = Event.error(topic, message, hint=hint, fails_execution=True)
    try:
        with store.transaction():
            local = store.update(execution_id, ExecutionStateType.FAILED, expected=expected,
                                 message=message, events=[event])
            reporter.compute_error(local, [event])
    except StateConflictError:
        return False
    return True

