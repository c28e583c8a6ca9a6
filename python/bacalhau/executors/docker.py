"""The `docker` engine: runs a task as a container of the local Docker engine (reference §4.1).

Engine params (names case-insensitive): `Image` (required), `Entrypoint` [str] (replaces the
image's entrypoint, and then its CMD too, as `docker run --entrypoint` does), `Parameters`
[str] (the container's command), `EnvironmentVariables` ["K=V"] (names starting with
`BACALHAU_` are refused), `WorkingDirectory` (absolute).

Split by concern: params, network modes and names in `docker_spec.py`; image checks, pulls
and registry credentials in `docker_images.py`; `Network HTTP` (internal network + filtering
proxy per execution) in `docker_http.py`.

One run (on a worker thread of its own: every SDK call blocks, none runs on the event loop):
[Network HTTP: the execution's internal network and proxy, on the loop] -> make sure the
image is here (inspect, else pull with the node's registry credentials) -> create the
container -> attach to its output -> start -> copy stdout/stderr, demultiplexed, into
`request.stdout_path`/`stderr_path` as it comes (so `job logs -f` follows a running
container) -> wait -> inspect (OOM) -> hand the container to the reaper, which removes it in
the background while the execution reports (`docker_reaper.py`) [Network HTTP: remove it at
once, then stop the proxy and remove the network].

Container: named `bacalhau-<node short id>-<job id>-<execution id>`, labeled
`bacalhau-executor` and `bacalhau-nodeID` (this node's id), `bacalhau-jobID`,
`bacalhau-executionID`, `bacalhau-jobType`. Env = `EnvironmentVariables`, then the task's Env
and the `BACALHAU_*` system variables (`request.env`, which win on a clash). Inputs are bind
mounts at their targets, read-only unless `read_write`; each result path is a writable bind
mount of `results_dir/<Name>`. Resources: Memory -> memory limit with swap limit equal to it
(no swap), CPU -> NanoCPUs, GPUs -> the devices of exactly the GPUs the compute assigned
(`bacalhau.executors.gpu.docker_devices`).

Network (`Task.Network.Type`): None -> `none` (loopback only); Host and Full -> `host`;
Default and Bridge -> the engine's default `bridge` network (outbound access, no inbound
ports); HTTP -> an internal network of the execution's own whose only way out is the node's
filtering proxy for `Network.Domains` (the proxy variables point at it; see
`docker_http.py`). Port mappings (`Network.Ports`) are not supported yet and are refused at bid
time and at run time.

Outcomes: the container's exit code is the result (non-zero is still a normal result).
`ExecutionTimeout` stops the container and fails with "execution timed out after Ns";
`cancel` stops it (SIGTERM, SIGKILL after `stop_timeout`) and fails the run as cancelled; a
container the kernel OOM-killed (`State.OOMKilled`) fails with "memory limit exceeded"; an
image that is neither here nor pullable fails with "image X is not available locally and
could not be pulled: …"; errors of the engine (bad mount, missing executable, GPU driver)
fail with the engine's explanation.

Bid time: `check` validates the params; the bidder's async hook `check_task` also refuses the
unsupported network modes, checks a Network HTTP task's domains and that this host can serve
it (`docker_http.HTTPNetworks.check`), and whether the image is here or pullable
(`docker_images.DockerImages.problem`).

Restart (called by the compute service before its restart rule, `restore(keep)`): the
containers labeled with this node's id are listed; a running container of an execution in
`keep` (the service/daemon executions the compute re-runs) is adopted: the re-run attaches to
it instead of starting a new one (its log files are rewritten from the engine's copy of the
output; a Network HTTP one gets a new proxy on its network). Every other container of this
node (batch/ops executions, which the restart rule fails, or containers that exited
meanwhile) is removed, then every Network HTTP network of this node not in use by an adopted
container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bacalhau.errors import ExecutorError
from bacalhau.executors import gpu as gpu_mod
from bacalhau.executors.base import RunRequest, in_daemon_thread, read_output_head
from bacalhau.executors.docker_http import HTTPNetwork, HTTPNetworks, HTTPSettings, is_http
from bacalhau.executors.docker_images import DockerImages
from bacalhau.executors.docker_reaper import ContainerReaper
from bacalhau.executors.docker_spec import (
    LABEL_EXECUTION,
    LABEL_EXECUTOR,
    LABEL_JOB,
    LABEL_JOB_TYPE,
    LABEL_NODE,
    TEST_IMAGE,
    DockerSpec,
    container_name,
    explain,
    network_mode,
    network_problems,
    parse_spec,
    target_path,
)
from bacalhau.models import RunCommandResult, SpecConfig
from bacalhau.models.ids import short_id

log = logging.getLogger(__name__)

__all__ = ["LABEL_EXECUTION", "LABEL_JOB", "LABEL_NODE", "TEST_IMAGE", "DockerExecutor",
           "DockerSpec", "container_name", "parse_spec"]

DEFAULT_STOP_TIMEOUT_S = 1.0
API_TIMEOUT_S = 60.0
PING_TIMEOUT_S = 5.0
NANO = 1_000_000_000

REASON_TIMEOUT = "timeout"
REASON_CANCELLED = "cancelled"


class _Run:
    """One execution's container, shared by its run thread and the loop (stop/cancel)."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.lock = threading.Lock()
        self.container_id = ""
        self.started = False  # start was called (or the container was adopted running)
        self.reason = ""  # why it is being stopped: timeout / cancelled
        self.http: HTTPNetwork | None = None  # Network HTTP: its network and proxy


@dataclass(slots=True)
class _Outcome:
    exit_code: int
    oom_killed: bool
    reason: str


# ----- the executor -------------------------------------------------------------------------------

class DockerExecutor:
    """The `docker` engine over the Docker Engine API (the `docker` SDK's APIClient)."""

    name = "docker"

    def __init__(self, node_id: str, *, client: Any = None,
                 registries: Mapping[str, Any] | None = None,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
                 gpu_vendor_index: Mapping[int, int] | None = None,
                 device_resolver: Callable[[str], str] = os.path.realpath,
                 http: HTTPSettings | None = None) -> None:
        """`client` is a `docker.APIClient`; None means the engine of the environment
        (DOCKER_HOST, else the local socket), connected on first use — call `connect()` on
        a worker thread first (node.py does), so that `is_installed` answers from a cache.
        `gpu_vendor_index` maps GPU indices to the vendor tool's own (default: this host's
        detection); `device_resolver` follows `/dev/dri/by-path` links (tests replace it);
        `http`: the node's Network HTTP options (default: any domain, DNS only)."""
        self.node_id = node_id
        self._api = client
        self._installed: bool | None = True if client is not None else None
        self._install_error = ""
        self._stop_timeout = stop_timeout
        self._gpu_vendor_index = gpu_vendor_index
        self._resolve = device_resolver
        self._runs: dict[str, _Run] = {}
        self._adoptable: dict[str, str] = {}  # execution id -> running container id
        self.reaper = ContainerReaper(self._remove_container)
        self.images = DockerImages(lambda: self.api, registries)
        self.http = HTTPNetworks(node_id, lambda: self.api, self.labels, http)

    # ----- engine connection ---------------------------------------------------------------

    def connect(self) -> bool:
        """Blocking: make the client and ping the engine; the answer is what
        `is_installed` returns from then on."""
        if self._installed is not None:
            return self._installed
        try:
            import docker
            from docker.utils import kwargs_from_env

            api = docker.APIClient(version="auto", timeout=PING_TIMEOUT_S, max_pool_size=32,
                                   **kwargs_from_env())
            api.ping()
            api.timeout = API_TIMEOUT_S
            self._api = api
            self._installed = True
        except Exception as exc:  # no SDK, no socket, engine down: docker is not offered
            self._install_error = str(exc)
            log.info("docker engine not available, the docker executor is off: %s", exc)
            self._installed = False
        return self._installed

    def is_installed(self) -> bool:
        return self.connect()

    @property
    def api(self) -> Any:
        if self._api is None and not self.connect():
            raise ExecutorError(f"the docker engine is not available: {self._install_error}")
        return self._api

    # ----- bid time ---------------------------------------------------------------------------

    def check(self, engine: SpecConfig) -> list[str]:
        return parse_spec(engine)[1]

    async def check_task(self, task: Any) -> list[str]:
        """Bid-time checks beyond the params: network mode (and for Network HTTP its domains
        and this host's networks), image availability."""
        problems = network_problems(task.network)
        if not problems and is_http(task.network):
            problems += await self.http.check(task.network)
        spec, spec_problems = parse_spec(task.engine)
        if spec is None or spec_problems:
            return problems  # `check` already reported them
        image_problem = await self.images.problem(spec.image)
        if image_problem:
            problems.append(image_problem)
        return problems

    # ----- running ------------------------------------------------------------------------------

    async def run(self, request: RunRequest) -> RunCommandResult:
        spec, problems = parse_spec(request.engine)
        problems += network_problems(request.network)
        if spec is None or problems:
            raise ExecutorError("invalid docker job: " + "; ".join(problems),
                                hint="fix Tasks[0].Engine.Params / Tasks[0].Network and "
                                     "resubmit")
        if request.execution_id in self._runs:
            raise ExecutorError(f"execution {request.execution_id} is already running")
        state = _Run(request.execution_id)
        self._runs[request.execution_id] = state
        try:
            if is_http(request.network):
                state.http = await self.http.open(
                    f"{container_name(self.node_id, request.job_id, request.execution_id)}-http",
                    job_id=request.job_id, execution_id=request.execution_id,
                    job_type=request.job_type, network=request.network,
                    adopted_container=self._adoptable.get(request.execution_id, ""))
            outcome = await self._run_container(request, spec, state)
        finally:
            self._runs.pop(request.execution_id, None)
            if state.http is not None:
                # shielded: a cancelled run still removes its proxy and network
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.http.close(request.execution_id))

        if outcome.reason == REASON_TIMEOUT:
            raise ExecutorError(
                f"execution timed out after {request.timeout:g}s",
                hint="raise Timeouts.ExecutionTimeout or make the job finish sooner",
                details={"Reason": "timeout"})
        if outcome.reason == REASON_CANCELLED:
            raise ExecutorError(f"execution {request.execution_id} was cancelled",
                                details={"Reason": "cancelled"})
        if outcome.oom_killed:
            limit = request.resources.memory if request.resources else 0
            raise ExecutorError(
                "memory limit exceeded: the container was killed for using more than its "
                f"memory limit{f' of {limit} bytes' if limit else ''} "
                f"(exit code {outcome.exit_code})",
                hint="raise Tasks[0].Resources.Memory", details={"Reason": "memory"})
        stdout, stdout_truncated = read_output_head(request.stdout_path)
        stderr, stderr_truncated = read_output_head(request.stderr_path)
        return RunCommandResult(stdout=stdout, stdout_truncated=stdout_truncated,
                                stderr=stderr, stderr_truncated=stderr_truncated,
                                exit_code=outcome.exit_code)

    async def _run_container(self, request: RunRequest, spec: DockerSpec,
                             state: _Run) -> _Outcome:
        """The container's run on its own thread, stopped at the timeout; a cancelled caller
        stops the container and waits for the thread."""
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        worker = in_daemon_thread(f"docker-{short_id(request.execution_id)}",
                                  self._run_blocking, request, spec, state)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(worker)
        except TimeoutError:
            await self._stop(state, REASON_TIMEOUT)
            return await worker
        except asyncio.CancelledError:
            # The caller gave up: stop the container and wait for the thread, so that
            # nothing writes into the execution dir afterwards and the container is gone.
            with contextlib.suppress(BaseException):
                await self._stop(state, REASON_CANCELLED)
            with contextlib.suppress(BaseException):
                await worker
            raise

    async def cancel(self, execution_id: str) -> None:
        state = self._runs.get(execution_id)
        if state is not None:
            await self._stop(state, REASON_CANCELLED)

    def is_running(self, execution_id: str) -> bool:
        state = self._runs.get(execution_id)
        return state is not None and state.started

    async def _stop(self, state: _Run, reason: str) -> None:
        with state.lock:
            if not state.reason:
                state.reason = reason
            container = state.container_id if state.started else ""
        if container:
            await in_daemon_thread("docker-stop", self._stop_blocking, container)

    def _stop_blocking(self, container: str) -> None:
        import docker.errors

        try:
            self.api.stop(container, timeout=max(0, round(self._stop_timeout)))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("stopping container %s failed (%s); killing it", container[:12], exc)
            with contextlib.suppress(docker.errors.APIError):
                self.api.kill(container)

    # ----- the blocking part, on the run's thread ----------------------------------------------

    def _run_blocking(self, request: RunRequest, spec: DockerSpec, state: _Run) -> _Outcome:
        import docker.errors

        api = self.api
        adopted = self._adoptable.pop(request.execution_id, "")
        container = adopted or self._create(request, spec, state.http)
        with state.lock:
            state.container_id = container
            state.started = bool(adopted)
        try:
            for path in (request.stdout_path, request.stderr_path):
                path.parent.mkdir(parents=True, exist_ok=True)
            with open(request.stdout_path, "wb", buffering=0) as out, \
                    open(request.stderr_path, "wb", buffering=0) as err:
                try:
                    # new: attach before start (nothing can be missed); adopted: follow the
                    # engine's log from its start (attach's replay of a running container's
                    # output is not reliable)
                    stream: Any = (self._follow_logs(container) if adopted else
                                   api.attach(container, stream=True, logs=True, demux=True))
                except docker.errors.APIError as exc:
                    raise ExecutorError(f"could not attach to the container: {explain(exc)}"
                                        ) from exc
                try:
                    if not adopted and not self._start(container, state):
                        return _Outcome(0, False, state.reason)
                    for chunk_out, chunk_err in stream:
                        if chunk_out:
                            out.write(chunk_out)
                        if chunk_err:
                            err.write(chunk_err)
                finally:
                    with contextlib.suppress(Exception):
                        stream.close()
            try:
                status = api.wait(container)
                info = api.inspect_container(container)
            except docker.errors.APIError as exc:
                if state.reason:  # we stopped it (cancel/timeout): it may be gone already
                    return _Outcome(0, False, state.reason)
                raise ExecutorError(f"lost the container: {explain(exc)}") from exc
            exit_code = int(status.get("StatusCode", info["State"].get("ExitCode", 0)))
            oom = bool(info.get("State", {}).get("OOMKilled"))
            return _Outcome(exit_code, oom, state.reason)
        finally:
            if state.http is None:
                self.reaper.submit(container)  # removed while the execution reports
            else:  # its network goes next, which needs the container gone
                self._remove_container(container)

    def _remove_container(self, container: str) -> None:
        import docker.errors

        try:
            self.api.remove_container(container, v=True, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove container %s: %s", container[:12], exc)

    def _follow_logs(self, container: str) -> _LogStream:
        """Blocking: the container's whole output, then what follows until it exits, as
        (stdout, stderr) chunks (`GET /containers/{id}/logs?follow=1`, demultiplexed here:
        the SDK's `logs()` merges the two streams)."""
        import docker.errors

        api = self.api
        response = api.get(f"{api.base_url}/v{api.api_version}/containers/{container}/logs",
                           params={"stdout": 1, "stderr": 1, "follow": 1}, stream=True,
                           timeout=(API_TIMEOUT_S, None))
        if response.status_code >= 400:
            text = response.text
            response.close()
            raise docker.errors.APIError(f"{response.status_code}: {text}",
                                         response=response, explanation=text)
        return _LogStream(response)

    def _start(self, container: str, state: _Run) -> bool:
        """Start unless a stop came first; False when the container was never started."""
        import docker.errors

        with state.lock:
            if state.reason:
                return False
            state.started = True
        try:
            self.api.start(container)
        except docker.errors.APIError as exc:
            raise ExecutorError(f"the container could not start: {explain(exc)}",
                                hint=_start_hint(explain(exc))) from exc
        with state.lock:
            stopped = state.reason
        if stopped:  # a stop raced the start (it found the container not yet running)
            self._stop_blocking(container)
        return True

    def _create(self, request: RunRequest, spec: DockerSpec, http: HTTPNetwork | None) -> str:
        import docker.errors

        self.images.ensure(spec.image)
        config = self.create_config(request, spec, http)
        name = container_name(self.node_id, request.job_id, request.execution_id)
        for attempt in (1, 2):
            try:
                return str(self.api.create_container_from_config(config, name)["Id"])
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and attempt == 1:
                    # a leftover of an earlier attempt of this execution: replace it
                    with contextlib.suppress(docker.errors.APIError):
                        self.api.remove_container(name, v=True, force=True)
                    continue
                raise ExecutorError(f"could not create the container: {explain(exc)}"
                                    ) from exc
        raise AssertionError("unreachable")

    def labels(self, job_id: str, execution_id: str, job_type: str) -> dict[str, str]:
        """The labels of an execution's container (and of its Network HTTP network)."""
        return {
            LABEL_EXECUTOR: self.node_id,
            LABEL_NODE: self.node_id,
            LABEL_JOB: job_id,
            LABEL_EXECUTION: execution_id,
            LABEL_JOB_TYPE: job_type,
        }

    def create_config(self, request: RunRequest, spec: DockerSpec,
                      http: HTTPNetwork | None = None) -> dict[str, Any]:
        """The body of `POST /containers/create` for this execution (pure: no engine calls);
        `http`: the execution's Network HTTP network, whose proxy variables it gets."""
        from docker.types import ContainerConfig, HostConfig, Mount

        version = self.api.api_version
        mounts: dict[str, Any] = {}

        def add(target: str, source: str, read_only: bool, what: str) -> None:
            if target in mounts:
                raise ExecutorError(f"{what} is mounted at {target}, which is already used by "
                                    "another input or result path",
                                    hint="give every input source and result path its own "
                                         "path")
            mounts[target] = Mount(target=target, source=source, type="bind",
                                   read_only=read_only)

        for prepared in request.inputs:
            target = target_path(prepared.target)
            if not prepared.host_path.exists():
                raise ExecutorError(f"input {target}: prepared path {prepared.host_path} does "
                                    "not exist")
            add(target, str(prepared.host_path.resolve()), not prepared.read_write,
                f"input {target}")
        for result in request.result_paths:
            host = request.results_dir / result.name
            host.mkdir(parents=True, exist_ok=True)
            add(target_path(result.path), str(host.resolve()), False, f"result path {result.name}")

        resources = request.resources
        memory = int(resources.memory) if resources and resources.memory else 0
        nano_cpus = round(resources.cpu * NANO) if resources and resources.cpu else 0
        devices: dict[str, Any] = {}
        if resources and resources.gpus:
            vendor_index = self._gpu_vendor_index
            if vendor_index is None:
                vendor_index = gpu_mod.host_gpus().vendor_index
            try:
                devices = gpu_mod.docker_devices(resources.gpus, dict(vendor_index),
                                                 self._resolve).host_config_kwargs()
            except gpu_mod.UnsupportedGPUError as exc:
                raise ExecutorError(str(exc)) from exc
        host_config = HostConfig(
            version,
            mounts=list(mounts.values()),
            network_mode=http.name if http is not None else network_mode(request.network),
            mem_limit=memory or None,
            memswap_limit=memory or None,
            nano_cpus=nano_cpus or None,
            **devices,
        )
        env = dict(spec.env)
        env.update(request.env)
        if http is not None:
            env.update(http.env())  # the system's: a job cannot point them elsewhere
        labels = self.labels(request.job_id, request.execution_id, request.job_type)
        return dict(ContainerConfig(
            version, spec.image, spec.parameters,
            entrypoint=spec.entrypoint,
            environment=[f"{k}={v}" for k, v in env.items()],
            working_dir=spec.working_dir or None,
            labels=labels,
            host_config=host_config,
        ))

    # ----- restart ----------------------------------------------------------------------------

    async def restore(self, keep: Collection[str]) -> None:
        """Adopt the running containers of the executions in `keep`, remove every other
        container of this node (see the module doc). Called once at compute start."""
        if not self.is_installed():
            return
        await in_daemon_thread("docker-restore", self._restore_blocking, set(keep))

    def _restore_blocking(self, keep: set[str]) -> None:
        import docker.errors

        try:
            found = self.api.containers(all=True,
                                        filters={"label": f"{LABEL_NODE}={self.node_id}"})
        except docker.errors.APIError as exc:
            log.warning("could not list this node's containers: %s", exc)
            found = []
        for item in found:
            labels = item.get("Labels") or {}
            execution_id = labels.get(LABEL_EXECUTION, "")
            container = item["Id"]
            if execution_id in keep and item.get("State") == "running":
                self._adoptable[execution_id] = container
                log.info("re-attaching to container %s of execution %s", container[:12],
                         execution_id)
                continue
            log.info("removing container %s of execution %s (node restart)", container[:12],
                     execution_id)
            self._remove_container(container)
        self.http.remove_leftovers(set(self._adoptable))


class _LogStream:
    """Frames of a non-TTY container's log stream (8-byte header: stream id, 3 zero bytes,
    big-endian length) as (stdout, stderr) pairs."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[tuple[bytes | None, bytes | None]]:
        raw = self._response.raw
        while True:
            header = raw.read(8)
            if len(header) < 8:
                return
            stream_id, length = struct.unpack(">BxxxL", header)
            data = raw.read(length) if length else b""
            yield (None, data) if stream_id == 2 else (data, None)

    def close(self) -> None:
        self._response.close()


def _start_hint(text: str) -> str:
    if "executable file not found" in text or "no such file or directory" in text:
        return "check Engine.Params.Entrypoint/Parameters: the program must exist in the image"
    if "device driver" in text and "gpu" in text:
        return "the node lacks the NVIDIA container toolkit needed for GPU jobs"
    return ""
