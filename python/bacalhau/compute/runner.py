"""The runner (reference §6 BaseExecutor.Run): one execution from BidAccepted to a result.

    inputs (storage providers, in parallel) -> Running -> executor.run -> inputs removed ->
    exitCode -> Publishing -> publisher.publish -> Completed + RunResult

The execution dir is laid out as the results a publisher packs, so nothing is copied:

    <execution dir>/stdout, stderr   the logs (written by the executor, read by `job logs`);
                                     for the wasm engine unnamed files first, named only
                                     when needed (executors/logfiles.py): a short run with
                                     little output keeps its logs in its record alone
    <execution dir>/<Name>/          one folder per ResultPath, made before the run
    <execution dir>/exitCode         written after the run, only for a publisher that packs
    <execution dir>/.input-<i>/      a work dir for input i, made by its storage provider
                                     only if the input needs files; removed after the run

An input the executor reads as bytes (`in_memory_targets`: the wasm modules) that its storage
provider can give without a file (`read_bytes`: inline) is handed over in memory. With the
`noop` publisher (issue 15: a lean compute path) the dir ends with the result folders (and
the logs, when they needed files) only, no CID is computed, and no Publishing state is
written: noop publishes nothing, at once, so the Completed write records the output. Nor is it
written where the `local` publisher packs a small tree on the event loop
(`publishes_small_at_once`): nothing could read it before Completed overwrote it.
ResultPath names that would clash with this layout are refused.

The Running state of a batch or ops run is written only once the run has lasted
`RUNNING_AFTER` (or at once when it records GPUs): a shorter run goes from BidAccepted
straight to Publishing or Completed, whose write also stores the "Running" event. Nothing
outside the node could have seen it: the requester is not told of Running, and the restart
rule treats BidAccepted and Running alike (issue 15: one write fewer per execution).

Any error fails the execution with an event whose topic names the phase (Preparing
Environment, Downloading Inputs, Running Execution, Publishing Results) and a ComputeError to
the requester. A non-zero exit code is a normal, Completed result. Every state change is
conditional: when a cancel got there first, the runner stops quietly. Inputs are cleaned up
right after the run (and again, idempotently, when the run ends early); logs and results stay
in the execution dir.

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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from bacalhau import failpoints
from bacalhau.compute.bidder import ENV_PREFIX, env_allowed
from bacalhau.compute.logs import LogHub
from bacalhau.compute.outbox import Reporter
from bacalhau.config import Config
from bacalhau.content import CidError, is_small_tree, results_cid
from bacalhau.errors import BacalhauError, ExecutorError, PublisherError
from bacalhau.executors.base import Executor, PreparedInput, RunRequest, read_output_head
from bacalhau.executors.logfiles import NAME_AFTER, RecordLogs, UnnamedLogs
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
RUNNING_AFTER = 0.05
"""Seconds a batch/ops run lasts before its Running state is written (module doc)."""
_RUN_STATES = (ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING)  # while it runs
FAILED_DUE_TO_RESTART = "Failed due to node restart"


# the names the runner uses in an execution dir: no ResultPath may take them
LOG_NAMES = ("stdout", "stderr")
EXIT_CODE = "exitCode"
INPUT_DIR_PREFIX = ".input-"


def execution_dir(data_dir: Path, execution_id: str) -> Path:
    """Where an execution's logs and results live (see the module doc for the layout)."""
    return data_dir / "compute" / "executions" / execution_id


def layout_problems(task: Any) -> list[str]:
    """ResultPath names that cannot be folders of the execution dir: they would take the
    place of the logs, the exit code or the runner's own folders, or leave the dir."""
    problems = []
    for result in task.result_paths:
        parts = PurePosixPath(result.name).parts
        if (not parts or parts[0] in (*LOG_NAMES, EXIT_CODE, "/") or ".." in parts
                or parts[0].startswith((INPUT_DIR_PREFIX, ".wasm-mounts"))):
            problems.append(f'ResultPath name "{result.name}" cannot be used: stdout, stderr '
                            f'and exitCode are the results\' own files, and a name must not '
                            f'be absolute, hold ".." or start with "{INPUT_DIR_PREFIX}"')
    return problems


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
        self.logs: UnnamedLogs | None = None  # the run's unnamed log files, if any
        self.name_timer: asyncio.TimerHandle | None = None
        self.settled = False  # the record holds the run's output: unnamed logs may go
        self.running_timer: asyncio.TimerHandle | None = None
        self.running_event: Event | None = None  # not written yet: goes with the next write


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
        self._live_logs: dict[str, UnnamedLogs] = {}
        self.running_after = RUNNING_AFTER

    def execution_dir(self, execution_id: str) -> Path:
        return execution_dir(self._data_dir, execution_id)

    def logs_of(self, execution_id: str) -> Path | UnnamedLogs | RecordLogs:
        """Where `job logs` reads the execution's stdout and stderr (compute/logs.py): the
        unnamed files of a run in progress; the execution dir holding `stdout`/`stderr`
        (or its `logs/` folder, for a run of an older node); else the whole logs as kept in
        the execution record, when they were small enough never to get files."""
        live = self._live_logs.get(execution_id)
        if live is not None:
            return live
        base = self.execution_dir(execution_id)
        if (base / LOG_NAMES[0]).exists():
            return base
        if (base / "logs" / LOG_NAMES[0]).is_file():
            return base / "logs"
        local = self._store.get(execution_id)
        output = local.execution.run_output if local is not None else None
        if output is not None and not (output.stdout_truncated or output.stderr_truncated):
            return RecordLogs(output.stdout.encode(), output.stderr.encode())
        return base

    def _layout(self, execution_id: str, task: Any) -> list[Path]:
        """The directories a run of `task` needs, parents first: the execution dir and one
        folder per ResultPath (input work dirs are made by the providers that need them)."""
        base = self.execution_dir(execution_id)
        return [base, *(base / r.name for r in task.result_paths)]

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
        work_dirs: list[Path] = []
        try:
            await self._run(local, phase, prepared, work_dirs, gpus or [])
        except StateConflictError:
            log.debug("execution %s changed state under the runner (cancelled?)", execution_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(execution_id, phase.topic, exc)
        finally:
            if phase.running_timer is not None:  # ended early (failed, cancelled)
                phase.running_timer.cancel()
            self._release_logs(execution_id, phase)
            await self._cleanup(prepared, work_dirs)
            self._hub.notify(execution_id)

    async def _run(self, local: LocalExecution, phase: _Phase, prepared: list[PreparedInput],
                   work_dirs: list[Path], gpus: list[GPU]) -> None:
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

        if problems := layout_problems(task):
            raise ExecutorError("; ".join(problems), hint="rename the ResultPath and resubmit")
        base = results_dir = self.execution_dir(execution.id)
        made_ahead = self._prepared.pop(execution.id, None)
        try:
            if made_ahead is None:
                raise LookupError
            await made_ahead[1]
        except Exception:  # not made ahead, or that failed: make them now
            _make_dirs(self._layout(execution.id, task))
        stdout_path, stderr_path = base / LOG_NAMES[0], base / LOG_NAMES[1]
        if getattr(executor, "accepts_unnamed_logs", False):
            self._unnamed_logs(execution.id, phase, (stdout_path, stderr_path))
        env = self._env(execution, job)

        phase.topic = Topic.DOWNLOADING_INPUTS
        in_memory = getattr(executor, "in_memory_targets", None)
        await self._prepare_inputs(task.input_sources, base, prepared, work_dirs,
                                   (execution.partition_index, job.count),
                                   in_memory(task.engine) if in_memory is not None else set())

        phase.topic = Topic.RUNNING
        resources = execution.allocated_resources.get(task.name, Resources())
        mutate = None
        if gpus:  # the GPUs this run holds, also recorded on the execution
            resources = resources.clone()
            resources.gpus = gpus

            def mutate(ex: Execution) -> None:
                ex.allocated_resources[task.name] = resources.clone()

        running = Event.new(Topic.EXECUTION, "Running")
        if mutate is None and job.type in (JobType.BATCH, JobType.OPS):  # written if it lasts
            phase.running_event = running
            phase.running_timer = asyncio.get_running_loop().call_later(
                self.running_after, self._write_running, execution.id, phase)
        else:
            self._store.update(execution.id, ExecutionStateType.RUNNING,
                               expected=(ExecutionStateType.BID_ACCEPTED,), mutate=mutate,
                               events=[running])
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
            network=task.network, timeout=timeout, execution_dir=base, logs=phase.logs,
        )
        logs = phase.logs
        async with self._hub.watching(execution.id, logs.sizes if logs is not None
                                      else [stdout_path, stderr_path]):
            result = await self._execute(executor, request)
        if phase.running_timer is not None:  # a short run: no Running write of its own
            phase.running_timer.cancel()
            phase.running_timer = None
        unwritten = [phase.running_event] if phase.running_event is not None else []
        # the execution dir is what a publisher packs: no inputs in it from here on
        await self._cleanup(prepared, work_dirs)
        # noop publishes nothing: no exitCode file, no CID (issue 15)
        publishing = publisher is not None and publisher.type != "noop"
        into_results = publisher is None or publishing
        if logs is not None and (into_results or not logs.fits_record()):
            logs.name()  # packed by the publisher, or more than the record keeps
        run_output = self._collect(result, stdout_path, stderr_path, results_dir,
                                   into_results=into_results, logs=logs)

        def set_output(ex: Execution) -> None:
            ex.run_output = run_output

        published = SpecConfig()
        if publisher is not None:
            phase.topic = Topic.PUBLISHING
            small = publishing and is_small_tree(results_dir)
            if small and getattr(publisher, "publishes_small_at_once", False):
                # hashed and published without yielding to the loop, and committed with
                # Completed: a Publishing state would be written and overwritten unseen (a
                # crash finds Running instead, which the restart rule treats alike)
                if self._store.state_of(execution.id) not in _RUN_STATES:
                    raise StateConflictError(f"execution {execution.id} is no longer running")
            elif publishing:  # noop publishes nothing at once: Completed records the output
                local = self._store.update(execution.id, ExecutionStateType.PUBLISHING,
                                           expected=_RUN_STATES, mutate=set_output,
                                           events=unwritten)
                unwritten = []
            # --- content address of the results (issue 4): computed before publishing, so
            # the CID names exactly what was packed; `job get` recomputes and compares it.
            # noop publishes nothing, so no CID is attached: do not hash the results for it
            result_cid = ""
            if publishing:
                try:
                    result_cid = (results_cid(results_dir, threads=1) if small
                                  else await asyncio.to_thread(results_cid, results_dir))
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
                expected=(*_RUN_STATES, ExecutionStateType.PUBLISHING),
                mutate=finish, events=[*unwritten, done])
            self._reporter.run_result(local, [done])
        phase.settled = True
        await failpoints.hit_async("compute.after_commit")

    def _write_running(self, execution_id: str, phase: _Phase) -> None:
        """The run lasted `running_after`: write its Running state (module doc)."""
        phase.running_timer = None
        event, phase.running_event = phase.running_event, None
        try:
            self._store.update(execution_id, ExecutionStateType.RUNNING,
                               expected=(ExecutionStateType.BID_ACCEPTED,),
                               events=[event] if event is not None else [])
        except StateConflictError:
            return  # cancelled meanwhile: the runner stops quietly
        except Exception as exc:  # e.g. a full disk: the result's write records the run
            log.warning("could not write the Running state of %s: %s", execution_id, exc)
            phase.running_event = event
            return
        self._hub.notify(execution_id)

    def _unnamed_logs(self, execution_id: str, phase: _Phase, paths: tuple[Path, Path]) -> None:
        """Give the run unnamed log files (executors/logfiles.py), named after NAME_AFTER."""
        for path in paths:  # an earlier run's logs would be read instead of this run's
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        logs = UnnamedLogs.create(paths[0].parent, paths)
        if logs is None:
            return  # no unnamed files on this file system: the engine writes named ones
        phase.logs = self._live_logs[execution_id] = logs
        phase.name_timer = asyncio.get_running_loop().call_later(NAME_AFTER, _name, logs)

    def _release_logs(self, execution_id: str, phase: _Phase) -> None:
        """After the run: unnamed logs the record does not hold get their names; then the
        descriptors close (see `logs_of` for where readers go next)."""
        if phase.name_timer is not None:
            phase.name_timer.cancel()
        logs = phase.logs
        if logs is None:
            return
        if not phase.settled and any(size > 0 for size in logs.sizes()):
            _name(logs)  # failed, cancelled or stopped: the files keep what it wrote
        self._live_logs.pop(execution_id, None)
        logs.close()

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

    async def _prepare_inputs(self, sources: list[Any], base: Path,
                              prepared: list[PreparedInput], work_dirs: list[Path],
                              partition: tuple[int, int] = (0, 1),
                              in_memory: set[str] | None = None) -> None:
        """Prepare every input; a provider gets `base/.input-<i>` as its work dir and makes it
        only if it writes files there (`work_dirs` lists them, for `_cleanup`). Inputs whose
        target is in `in_memory` are handed over as bytes where the provider can (module
        doc)."""
        async def one(index: int, src: Any) -> None:
            provider = self._storages.get(src.source.type.lower())
            if provider is None:
                raise ExecutorError(f'input type "{src.source.type}" is not installed on this '
                                    "node")
            read_bytes = getattr(provider, "read_bytes", None)
            if in_memory and read_bytes is not None and _guest(src.target) in in_memory:
                data = read_bytes(src)
                if data is not None:
                    prepared.append(PreparedInput(source=src, host_path=Path(),
                                                  target=src.target, data=data))
                    return
            work_dir = base / f"{INPUT_DIR_PREFIX}{index}"
            work_dirs.append(work_dir)
            if os.path.lexists(work_dir):  # left by an earlier run of this execution
                await asyncio.to_thread(shutil.rmtree, work_dir, True)
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
                 results_dir: Path, *, into_results: bool = True,
                 logs: UnnamedLogs | None = None) -> RunCommandResult:
        """The run's output for the execution record; with `into_results`, also what the
        results that a publisher packs need beyond the logs: the `exitCode` file (and empty
        `stdout`/`stderr` files where the executor wrote none)."""
        if into_results:
            for path in (stdout_path, stderr_path):
                if not path.exists():
                    path.write_bytes(b"")
            (results_dir / EXIT_CODE).write_text(str(result.exit_code))
        if logs is not None:
            stdout, stdout_truncated = logs.head(0)
            stderr, stderr_truncated = logs.head(1)
        else:
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

    async def _cleanup(self, prepared: list[PreparedInput], work_dirs: list[Path]) -> None:
        """What the providers prepared, then the input work dirs; empties both lists, so a
        second call does nothing."""
        items, prepared[:] = list(prepared), []
        for item in items:
            if item.data is not None:
                continue  # in memory: nothing on disk
            provider = self._storages.get(item.source.source.type.lower())
            if provider is None:
                continue
            try:
                await provider.cleanup(item)
            except Exception:
                log.warning("cleanup of input %s failed", item.target, exc_info=True)
        dirs, work_dirs[:] = list(work_dirs), []
        for work_dir in dirs:
            try:
                work_dir.rmdir()  # the common case: the provider removed what it wrote
            except FileNotFoundError:
                pass  # the provider needed no files
            except OSError:
                await asyncio.to_thread(shutil.rmtree, work_dir, True)


def _name(logs: UnnamedLogs) -> None:
    try:
        logs.name()
    except OSError as exc:  # e.g. a full disk: the run goes on, its logs stay unnamed
        log.warning("could not name the log files %s: %s", logs.paths[0], exc)


def _guest(target: str) -> str:
    return str(PurePosixPath("/", target))


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

