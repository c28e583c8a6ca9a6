"""The docker engine against the real Docker engine: jobs through a real `bacalhau serve`
(results, env, working dir, OOM, stop, timeout, network modes, restart cleanup), and the
executor itself (live logs, cancel, re-attaching after a restart).

Uses the local test image `bacalhau-py/test:busybox` (built by scripts/build_test_image.sh,
no registry involved). Skips, saying why, only when no Docker engine answers.
"""

from __future__ import annotations

import asyncio
import http.server
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import RunRequest
from bacalhau.executors.docker import LABEL_EXECUTION, LABEL_JOB, TEST_IMAGE, DockerExecutor
from bacalhau.models import NetworkConfig, Resources, ResultPath, SpecConfig
from tests.conftest import REPO, ServeProcess, wait_until
from tests.integration.test_serve_cli import submit, wait_terminal

pytestmark = [pytest.mark.integration]


def _engine() -> tuple[Any, str]:
    try:
        import docker
        from docker.utils import kwargs_from_env

        api = docker.APIClient(version="auto", timeout=10, **kwargs_from_env())
        api.ping()
        return api, ""
    except Exception as exc:  # no SDK, no socket, engine down
        return None, str(exc)


@pytest.fixture(scope="module")
def docker_api() -> Any:
    api, reason = _engine()
    if api is None:
        pytest.skip(f"no Docker engine answers: {reason}")
    # the engine is here: a failing image build is a failure, not a skip
    subprocess.run([str(REPO / "scripts" / "build_test_image.sh")], check=True, timeout=300)
    return api


@pytest.fixture(scope="module")
def server(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    node = ServeProcess(data_dir=tmp_path_factory.mktemp("docker") / "node")
    node.start()
    try:
        yield node
    finally:
        node.stop()


def containers(api: Any, label: str, value: str) -> list[dict[str, Any]]:
    return api.containers(all=True, filters={"label": f"{label}={value}"})


def docker_job(command: str, *, env_vars: list[str] | None = None,
               env: dict[str, str] | None = None, workdir: str = "",
               resources: dict[str, str] | None = None, network: str = "",
               timeout: int = 0) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "docker", "Params": {
            "Image": TEST_IMAGE, "Entrypoint": ["/bin/sh", "-c"], "Parameters": [command],
            "EnvironmentVariables": env_vars or [], "WorkingDirectory": workdir}},
        "Publisher": {"Type": "local"},
        "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
    }
    if env:
        task["Env"] = env
    if resources:
        task["Resources"] = resources
    if network:
        task["Network"] = {"Type": network}
    if timeout:
        task["Timeouts"] = {"ExecutionTimeout": timeout}
    return {"Type": "batch", "Count": 1, "Tasks": [task]}


def executions(server: ServeProcess, job_id: str) -> list[dict[str, Any]]:
    status, body = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions")
    assert status == 200, body
    return body["Items"]


def messages(server: ServeProcess, job_id: str) -> str:
    _, hist = server.api("GET", f"/api/v1/orchestrator/jobs/{job_id}/history?event_type=all")
    texts = [h["Event"]["Message"] for h in hist["Items"]]
    for ex in executions(server, job_id):
        texts.append(ex["ComputeState"].get("Message", ""))
    return "\n".join(texts)


def test_outputs_env_and_working_dir_reach_the_container(server, docker_api, tmp_path):
    job = docker_job('echo "$GREETING $FROM_TASK $BACALHAU_JOB_ID"; pwd; '
                     'echo written > /outputs/out.txt',
                     env_vars=["GREETING=hello"], env={"FROM_TASK": "task-env"},
                     workdir="/tmp")
    job_id = submit(server, job)
    assert wait_terminal(server, job_id, 60)["StateType"] == "Completed", messages(server,
                                                                                     job_id)
    out = tmp_path / "results"
    got = server.cli("job", "get", job_id, "--output-dir", str(out), cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert (out / "outputs" / "out.txt").read_text() == "written\n"
    assert (out / "stdout").read_text() == f"hello task-env {job_id}\n/tmp\n"
    assert (out / "exitCode").read_text().strip() == "0"
    # the container is removed (in the background, once the run has its outcome)
    wait_until(lambda: containers(docker_api, LABEL_JOB, job_id) == [], 15,
               "the job's container to be removed")


def test_memory_hog_fails_with_memory_limit_exceeded(server, docker_api):
    job_id = submit(server, docker_job("dd if=/dev/zero bs=1M count=200 | tail",
                                       resources={"CPU": "500m", "Memory": "64Mb"}))
    state = wait_terminal(server, job_id, 60)
    assert state["StateType"] == "Failed"
    assert "memory limit exceeded" in messages(server, job_id)
    wait_until(lambda: containers(docker_api, LABEL_JOB, job_id) == [], 15,
               "the job's container to be removed")


def _running_container(api: Any, job_id: str) -> list[dict[str, Any]] | None:
    found = [c for c in containers(api, LABEL_JOB, job_id) if c["State"] == "running"]
    return found or None


def test_logs_follow_a_running_container_and_job_stop_stops_it(server, docker_api):
    job_id = submit(server, docker_job("echo started; sleep 600"))
    wait_until(lambda: _running_container(docker_api, job_id), 30,
               what="the job's container to run")
    follow = subprocess.Popen([sys.executable, "-m", "bacalhau", "job", "logs", "-f", job_id],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=server.env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_until(lambda: "started\n" in lines, 30, what="`job logs -f` to show the output")
        assert follow.poll() is None  # still following the running container
        stopped = server.cli("job", "stop", job_id)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert wait_terminal(server, job_id, 30)["StateType"] == "Stopped"
        follow.wait(30)  # the stream ends with the execution
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    wait_until(lambda: containers(docker_api, LABEL_JOB, job_id) == [], 15,
               what="the stopped job's container to be removed")


def test_execution_timeout_stops_the_container(server, docker_api):
    started = time.monotonic()
    job_id = submit(server, docker_job("sleep 600", timeout=2))
    assert wait_terminal(server, job_id, 60)["StateType"] == "Failed"
    assert time.monotonic() - started < 30
    assert "execution timed out after 2s" in messages(server, job_id)
    wait_until(lambda: containers(docker_api, LABEL_JOB, job_id) == [], 15,
               what="the timed-out job's container to be removed")


@pytest.fixture
def loopback_http() -> Iterator[tuple[int, str]]:
    """An HTTP/1.0 server in this process on 127.0.0.1 answering a token."""
    token = f"pong-{uuid.uuid4().hex[:8]}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], token
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_network_none_cannot_reach_a_local_listener_host_can(server, loopback_http):
    port, token = loopback_http
    # busybox nc (the wget of Debian's busybox-static crashes on any URL)
    fetch = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 {port}"
    none_id = submit(server, docker_job(fetch, network="None"))
    host_id = submit(server, docker_job(fetch, network="Host"))
    for job_id in (none_id, host_id):
        assert wait_terminal(server, job_id, 60)["StateType"] == "Completed"
    none_out = executions(server, none_id)[0]["RunOutput"]
    host_out = executions(server, host_id)[0]["RunOutput"]
    assert token not in none_out["Stdout"] and none_out["ExitCode"] != 0
    assert host_out["Stdout"].endswith(token) and host_out["ExitCode"] == 0


def test_unavailable_image_is_refused_with_a_reason(server):
    job = docker_job("true")
    job["Tasks"][0]["Engine"]["Params"]["Image"] = "localhost:1/bacalhau-py/absent:1"
    job_id = submit(server, job)
    assert wait_terminal(server, job_id, 60)["StateType"] == "Failed"
    assert ("image localhost:1/bacalhau-py/absent:1 is not available locally and could not "
            "be pulled") in messages(server, job_id)


def test_restart_fails_batch_executions_and_removes_their_containers(server, docker_api):
    job_id = submit(server, docker_job("sleep 600"))
    running = wait_until(lambda: _running_container(docker_api, job_id), 30,
                         what="the job's container to run")
    execution_id = running[0]["Labels"][LABEL_EXECUTION]
    server.stop(signal.SIGKILL)  # a crash: the container outlives the node
    assert _running_container(docker_api, job_id)
    server.start()
    # the crashed execution's own container (a replacement for the job may already run)
    wait_until(lambda: containers(docker_api, LABEL_EXECUTION, execution_id) == [], 30,
               what="the restarted node to remove the batch container")
    failed = wait_until(
        lambda: [e for e in executions(server, job_id)
                 if e["ID"] == execution_id and e["ComputeState"]["StateType"] == 10], 30,
        what="the execution to be failed by the restart rule")
    assert "node restart" in failed[0]["ComputeState"]["Message"]
    server.cli("job", "stop", job_id)  # its replacement, if one was placed
    wait_until(lambda: containers(docker_api, LABEL_JOB, job_id) == [], 30,
               what="the replacement's container to go")


# ----- the executor on its own ----------------------------------------------------------------

def run_request(tmp_path: Path, execution_id: str, command: str, *, job_type: str = "batch",
                timeout: float | None = None) -> RunRequest:
    base = tmp_path / execution_id
    (base / "logs").mkdir(parents=True, exist_ok=True)
    return RunRequest(
        execution_id=execution_id, job_id="j-" + execution_id[2:], job_type=job_type,
        partition_index=0, partition_count=1,
        engine=SpecConfig("docker", {"Image": TEST_IMAGE, "Entrypoint": ["/bin/sh", "-c"],
                                     "Parameters": [command]}),
        env={}, inputs=[], result_paths=[ResultPath("outputs", "/outputs")],
        results_dir=base / "results", stdout_path=base / "logs" / "stdout",
        stderr_path=base / "logs" / "stderr", resources=Resources(cpu=0.5, memory=64 * 2**20),
        network=NetworkConfig(type="None"), timeout=timeout)


def new_execution_id() -> str:
    return f"e-{uuid.uuid4()}"


async def test_logs_are_written_while_the_container_runs_and_cancel_is_prompt(
        docker_api, tmp_path):
    executor = DockerExecutor(f"n-{uuid.uuid4()}")
    assert await asyncio.to_thread(executor.connect)
    request = run_request(tmp_path, new_execution_id(),
                          "echo first; echo oops >&2; sleep 600")
    run = asyncio.ensure_future(executor.run(request))
    deadline = time.monotonic() + 30
    while b"first" not in request.stdout_path.read_bytes() if request.stdout_path.exists() \
            else True:
        assert time.monotonic() < deadline and not run.done(), "no live output"
        await asyncio.sleep(0.02)  # polling a file the run thread writes, deadline-bounded
    assert not run.done() and executor.is_running(request.execution_id)
    await executor.cancel(request.execution_id)
    with pytest.raises(ExecutorError, match="was cancelled"):
        await asyncio.wait_for(run, 15)
    assert request.stdout_path.read_text() == "first\n"
    assert request.stderr_path.read_text() == "oops\n"
    assert await asyncio.to_thread(executor.reaper.wait_idle, 15)
    assert containers(docker_api, LABEL_EXECUTION, request.execution_id) == []


async def test_restore_adopts_service_containers_and_removes_the_rest(docker_api, tmp_path):
    node_id = f"n-{uuid.uuid4()}"
    before = DockerExecutor(node_id)  # the node before its crash
    assert await asyncio.to_thread(before.connect)
    service = run_request(tmp_path, new_execution_id(), "echo up; sleep 600",
                          job_type="service")
    batch = run_request(tmp_path, new_execution_id(), "sleep 600")
    old_runs = [asyncio.ensure_future(before.run(r)) for r in (service, batch)]
    for r in (service, batch):
        wait = time.monotonic() + 30
        while not [c for c in containers(docker_api, LABEL_EXECUTION, r.execution_id)
                   if c["State"] == "running"]:
            assert time.monotonic() < wait, "container did not start"
            await asyncio.sleep(0.05)  # deadline-bounded poll of the engine

    after = DockerExecutor(node_id)  # the restarted node
    assert await asyncio.to_thread(after.connect)
    await after.restore({service.execution_id})
    assert containers(docker_api, LABEL_EXECUTION, batch.execution_id) == []
    adopted = containers(docker_api, LABEL_EXECUTION, service.execution_id)
    assert len(adopted) == 1 and adopted[0]["State"] == "running"

    # the re-run attaches to the running container: output so far is replayed into the
    # log file, no second container is made
    service.stdout_path.write_bytes(b"")
    rerun = asyncio.ensure_future(after.run(service))
    wait = time.monotonic() + 30
    while service.stdout_path.read_text() != "up\n":
        assert time.monotonic() < wait, "adopted container's output was not replayed"
        await asyncio.sleep(0.02)  # poll interval of the deadline-bounded wait above
    assert [c["Id"] for c in containers(docker_api, LABEL_EXECUTION, service.execution_id)
            ] == [adopted[0]["Id"]]
    await after.cancel(service.execution_id)
    with pytest.raises(ExecutorError, match="was cancelled"):
        await asyncio.wait_for(rerun, 15)
    # the pre-crash runs end with their containers (only a test keeps them running)
    await asyncio.wait_for(asyncio.gather(*old_runs, return_exceptions=True), 15)
    # both executors remove the adopted container (only a test has two); the engine
    # finishes the removal that started first
    await asyncio.to_thread(
        wait_until, lambda: containers(docker_api, LABEL_EXECUTION, service.execution_id)
        == [], 15, "the adopted container to be removed")


async def test_gpu_request_reaches_the_engine(docker_api, tmp_path):
    """No GPU and no NVIDIA container toolkit here: the engine itself refuses the device
    request the executor makes for an NVIDIA GPU (its exact body is asserted in
    tests/unit/test_docker_executor.py), and the run fails saying what is missing."""
    from bacalhau.models import GPU

    if "nvidia" in (docker_api.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime: it would run the GPU request")
    executor = DockerExecutor(f"n-{uuid.uuid4()}", gpu_vendor_index={0: 0})
    assert await asyncio.to_thread(executor.connect)
    request = run_request(tmp_path, new_execution_id(), "true")
    request.resources = Resources(gpu=1, gpus=[GPU(0, "Tesla T4", "NVIDIA", 15360)])
    with pytest.raises(ExecutorError, match="could not select device driver") as info:
        await executor.run(request)
    assert "NVIDIA container toolkit" in info.value.hint
    assert await asyncio.to_thread(executor.reaper.wait_idle, 15)
    assert containers(docker_api, LABEL_EXECUTION, request.execution_id) == []
