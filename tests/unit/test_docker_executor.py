"""DockerExecutor without an engine: param checks, the exact container-create request, and how
engine answers become results and errors.

`FakeDockerAPI` is the only fake here, and it exists because these machines have no GPU: the
request a GPU job makes can only be checked by recording what the engine would receive. It
stands in for `docker.APIClient` (same method names and arguments) and records every call.
Everything else about the executor runs against the real engine in
tests/integration/test_docker.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from bacalhau.errors import ExecutorError
from bacalhau.executors.base import PreparedInput, RunRequest
from bacalhau.executors.docker import (
    TEST_IMAGE,
    DockerExecutor,
    container_name,
    parse_spec,
)
from bacalhau.executors.docker_http import HTTPSettings
from bacalhau.models import (
    GPU,
    InputSource,
    NetworkConfig,
    PortMapping,
    Resources,
    ResultPath,
    SpecConfig,
    Task,
)

pytestmark = pytest.mark.unit

NODE = "12D3KooWAbCdEfGh1234567890"


def api_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.ImageNotFound if status == 404 else docker.errors.APIError
    return cls(message, response=response, explanation=message)


class FakeDockerAPI:
    """Records calls; answers like an engine whose containers print `frames` and exit."""

    api_version = "1.41"

    def __init__(self, *, images: set[str] | None = None, exit_code: int = 0,
                 oom: bool = False, frames: list[tuple[bytes | None, bytes | None]] | None = None,
                 pull_error: str = "", registry_error: str = "") -> None:
        self.images = set(images if images is not None else {TEST_IMAGE})
        self.exit_code = exit_code
        self.oom = oom
        self.frames = frames if frames is not None else [(b"hello\n", None), (None, b"warn\n")]
        self.pull_error = pull_error
        self.registry_error = registry_error
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.created: list[tuple[dict[str, Any], str]] = []

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def ping(self) -> bool:
        return True

    def inspect_image(self, image: str) -> dict[str, Any]:
        self._record("inspect_image", image)
        if image not in self.images:
            raise api_error(404, f"No such image: {image}")
        return {"Id": "sha256:abc"}

    def inspect_distribution(self, image: str, auth_config: Any = None) -> dict[str, Any]:
        self._record("inspect_distribution", image, auth_config=auth_config)
        if self.registry_error:
            raise api_error(500, self.registry_error)
        return {"Descriptor": {}}

    def pull(self, repository: str, tag: str | None = None, stream: bool = False,
             decode: bool = False, auth_config: Any = None) -> Any:
        self._record("pull", repository, tag=tag, auth_config=auth_config)
        if self.pull_error:
            raise api_error(500, self.pull_error)
        self.images.add(f"{repository}:{tag}")
        return iter([{"status": "Downloaded"}])

    def create_container_from_config(self, config: dict[str, Any], name: str) -> dict[str, str]:
        self._record("create", name)
        self.created.append((config, name))
        return {"Id": "c0ffee" * 10}

    def attach(self, container: str, **kwargs: Any) -> Any:
        self._record("attach", container, **kwargs)
        return _Stream(self.frames)

    def start(self, container: str) -> None:
        self._record("start", container)

    def wait(self, container: str) -> dict[str, Any]:
        self._record("wait", container)
        return {"StatusCode": self.exit_code, "Error": None}

    def inspect_container(self, container: str) -> dict[str, Any]:
        self._record("inspect_container", container)
        return {"State": {"ExitCode": self.exit_code, "OOMKilled": self.oom}}

    def remove_container(self, container: str, v: bool = False, force: bool = False) -> None:
        self._record("remove", container, v=v, force=force)

    def stop(self, container: str, timeout: int | None = None) -> None:
        self._record("stop", container, timeout=timeout)


class _Stream:
    def __init__(self, frames: list[tuple[bytes | None, bytes | None]]) -> None:
        self._frames = iter(frames)

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> tuple[bytes | None, bytes | None]:
        return next(self._frames)

    def close(self) -> None:
        pass


def make_request(tmp_path: Path, *, params: dict[str, Any] | None = None,
                 resources: Resources | None = None, network: str = "",
                 inputs: list[PreparedInput] | None = None) -> RunRequest:
    base = tmp_path / "e-1"
    (base / "logs").mkdir(parents=True, exist_ok=True)
    return RunRequest(
        execution_id="e-11111111-2222-3333-4444-555555555555",
        job_id="j-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", job_type="batch",
        partition_index=0, partition_count=1,
        engine=SpecConfig("docker", params if params is not None else {
            "Image": TEST_IMAGE, "Entrypoint": ["/bin/sh", "-c"],
            "Parameters": ["nvidia-smi > /outputs/smi.txt"],
            "EnvironmentVariables": ["MODE=fast", "B=from-engine"],
            "WorkingDirectory": "/work"}),
        env={"B": "from-task", "BACALHAU_JOB_ID": "j-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
        inputs=inputs or [], result_paths=[ResultPath("outputs", "/outputs")],
        results_dir=base / "results", stdout_path=base / "logs" / "stdout",
        stderr_path=base / "logs" / "stderr",
        resources=resources or Resources(), network=NetworkConfig(type=network))


def test_param_checks_name_the_param() -> None:
    assert parse_spec(SpecConfig("docker", {"image": TEST_IMAGE}))[1] == []  # case-insensitive
    cases = [
        ({}, "Engine.Params.Image is required"),
        ({"Image": "a b"}, "must not contain spaces"),
        ({"Image": "x", "Entrypoint": "/bin/sh"}, "Entrypoint must be a list of strings"),
        ({"Image": "x", "Parameters": [1]}, "Parameters must be a list of strings"),
        ({"Image": "x", "EnvironmentVariables": ["NOEQUALS"]}, '"NOEQUALS" is not'),
        ({"Image": "x", "EnvironmentVariables": ["BACALHAU_X=1"]}, "BACALHAU_X is refused"),
        ({"Image": "x", "EnvironmentVariables": ["bacalhau_x=1"]}, "reserved for the system"),
        ({"Image": "x", "WorkingDirectory": "rel/dir"}, "must be an absolute path"),
    ]
    executor = DockerExecutor(NODE, client=FakeDockerAPI())
    for params, needle in cases:
        problems = executor.check(SpecConfig("docker", params))
        assert any(needle in p for p in problems), (params, problems)
    # the CLI sends every field, empty ones included
    empty = {"Image": TEST_IMAGE, "Entrypoint": None, "Parameters": [],
             "EnvironmentVariables": [], "WorkingDirectory": ""}
    assert executor.check(SpecConfig("docker", empty)) == []


def test_container_name_is_safe_and_unique_per_execution() -> None:
    assert container_name(NODE, "j-1", "e-2") == "bacalhau-12D3KooWAbCdEfGh-j-1-e-2"
    assert container_name("node 1/x", "j-1", "e-2") == "bacalhau-node-1-x-j-1-e-2"


async def test_gpu_job_create_request_is_exact(tmp_path: Path) -> None:
    """The body the engine receives for a job holding NVIDIA GPUs 1 and 3 (no GPU here, so
    this request is what is checked; the engine's side is the NVIDIA container toolkit's)."""
    api = FakeDockerAPI()
    executor = DockerExecutor(NODE, client=api, gpu_vendor_index={1: 1, 3: 3})
    data = tmp_path / "data"
    data.mkdir()
    source = InputSource(SpecConfig("localDirectory"), target="/inputs")
    request = make_request(
        tmp_path, resources=Resources(cpu=1.5, memory=2 * 2**30, gpu=2, gpus=[
            GPU(1, "Tesla T4", "NVIDIA", 15360), GPU(3, "Tesla T4", "NVIDIA", 15360)]),
        inputs=[PreparedInput(source, data, "/inputs")])
    result = await executor.run(request)

    assert result.exit_code == 0 and result.stdout == "hello\n" and result.stderr == "warn\n"
    assert request.stdout_path.read_text() == "hello\n"
    assert executor.reaper.wait_idle(5)  # removed in the background, after the outcome
    assert api.names() == ["inspect_image", "create", "attach", "start", "wait",
                           "inspect_container", "remove"]
    (body, name), = api.created
    assert name == ("bacalhau-12D3KooWAbCdEfGh-j-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee-"
                    "e-11111111-2222-3333-4444-555555555555")
    results = str((request.results_dir / "outputs").resolve())
    assert body == {
        "Hostname": None, "Domainname": None, "User": None,
        "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
        "ExposedPorts": None, "Tty": False, "OpenStdin": False, "StdinOnce": False,
        "Env": ["MODE=fast", "B=from-task",
                "BACALHAU_JOB_ID=j-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"],
        "Cmd": ["nvidia-smi > /outputs/smi.txt"],
        "Healthcheck": None, "Image": TEST_IMAGE, "Volumes": None,
        "Entrypoint": ["/bin/sh", "-c"], "WorkingDir": "/work", "NetworkDisabled": False,
        "MacAddress": None, "Labels": {
            "bacalhau-executor": NODE, "bacalhau-nodeID": NODE,
            "bacalhau-jobID": "j-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "bacalhau-executionID": "e-11111111-2222-3333-4444-555555555555",
            "bacalhau-jobType": "batch"},
        "StopSignal": None, "NetworkingConfig": None, "StopTimeout": None, "Runtime": None,
        "HostConfig": {
            "NetworkMode": "bridge",
            "Memory": 2 * 2**30, "MemorySwap": 2 * 2**30, "NanoCpus": 1_500_000_000,
            "DeviceRequests": [{"Driver": "", "Count": 0, "DeviceIDs": ["1", "3"],
                                "Capabilities": [["gpu"]], "Options": {}}],
            "Mounts": [
                {"Target": "/inputs", "Source": str(data.resolve()), "Type": "bind",
                 "ReadOnly": True},
                {"Target": "/outputs", "Source": results, "Type": "bind", "ReadOnly": False},
            ],
        },
    }


async def test_amd_gpu_devices_in_the_request(tmp_path: Path) -> None:
    api = FakeDockerAPI()
    links = {"/dev/dri/by-path/pci-0000:83:00.0-card": "/dev/dri/card2",
             "/dev/dri/by-path/pci-0000:83:00.0-render": "/dev/dri/renderD129"}
    executor = DockerExecutor(NODE, client=api, gpu_vendor_index={0: 1},
                              device_resolver=links.__getitem__)
    await executor.run(make_request(tmp_path, resources=Resources(gpu=1, gpus=[
        GPU(0, "Instinct MI210", "AMD/ATI", 65520, "0000:83:00.0")])))
    host = api.created[0][0]["HostConfig"]
    assert host["Devices"] == [
        {"PathOnHost": p, "PathInContainer": p, "CgroupPermissions": "rwm"}
        for p in ("/dev/kfd", "/dev/dri/card2", "/dev/dri/renderD129")]
    assert "DeviceRequests" not in host


@pytest.mark.parametrize(("network", "mode"), [
    ("", "bridge"), ("Default", "bridge"), ("Bridge", "bridge"), ("None", "none"),
    ("Host", "host"), ("Full", "host")])
async def test_network_modes(tmp_path: Path, network: str, mode: str) -> None:
    api = FakeDockerAPI()
    await DockerExecutor(NODE, client=api).run(make_request(tmp_path, network=network))
    assert api.created[0][0]["HostConfig"]["NetworkMode"] == mode


async def test_http_domains_and_ports_are_checked_at_bid_and_run(tmp_path: Path) -> None:
    # the domain checks come before anything touches the engine (its networks are tested
    # against the real engine in tests/integration/test_docker_http.py)
    api = FakeDockerAPI()
    executor = DockerExecutor(NODE, client=api, http=HTTPSettings(
        allow_list=[".example.com", "api.test.org"]))

    def task(*domains: str) -> Task:
        return Task(name="main", engine=SpecConfig("docker", {"Image": TEST_IMAGE}),
                    network=NetworkConfig(type="HTTP", domains=list(domains)))

    assert (await executor.check_task(task())) == [
        "Network HTTP needs at least one domain in Network.Domains (--domain): the job "
        "would reach nothing"]
    assert "is not a domain" in (await executor.check_task(task("https://x.example.com")))[0]
    assert (await executor.check_task(task("a.example.com", "other.org", ".test.org"))) == [
        "this node does not allow the domain(s) other.org, .test.org for Network HTTP "
        "(Compute.Network.AllowListedDomains: .example.com, api.test.org)"]
    with pytest.raises(ExecutorError, match="does not allow the domain"):
        request = make_request(tmp_path, network="HTTP")
        request.network.domains = ["other.org"]
        await executor.run(request)
    assert set(api.names()) == {"inspect_image"}  # refused before any network or container
    ports = Task(name="main", engine=SpecConfig("docker", {"Image": TEST_IMAGE}),
                 network=NetworkConfig(type="Bridge", ports=[PortMapping(name="w", target=80)]))
    assert "Network.Ports" in (await executor.check_task(ports))[0]


async def test_bid_checks_the_image_here_or_in_its_registry() -> None:
    api = FakeDockerAPI(registry_error='manifest for nope/missing:1 not found')
    executor = DockerExecutor(NODE, client=api, registries={
        "docker.io": {"Username": "me", "Password": "secret"}})

    def task(image: str) -> Task:
        return Task(name="main", engine=SpecConfig("docker", {"Image": image}))

    assert await executor.check_task(task(TEST_IMAGE)) == []
    problems = await executor.check_task(task("nope/missing:1"))
    assert problems == ["image nope/missing:1 is not available locally and could not be "
                        "pulled: manifest for nope/missing:1 not found"]
    probe = [c for c in api.calls if c[0] == "inspect_distribution"]
    assert probe[0][2]["auth_config"] == {"username": "me", "password": "secret",
                                          "serveraddress": "docker.io"}
    # the registry's answer is cached: asking again does not ask the registry again
    assert await executor.check_task(task("nope/missing:1")) == problems
    assert len([c for c in api.calls if c[0] == "inspect_distribution"]) == 1
    api.registry_error = ""
    assert await executor.check_task(task("ghcr.io/acme/tool:2")) == []
    assert api.calls[-1][2]["auth_config"] is None  # no credentials for ghcr.io


async def test_missing_image_is_pulled_or_fails_clearly(tmp_path: Path) -> None:
    params = {"Image": "acme/tool:2", "Parameters": ["true"]}
    api = FakeDockerAPI(images=set())
    await DockerExecutor(NODE, client=api).run(make_request(tmp_path, params=params))
    assert ("pull", ("acme/tool",), {"tag": "2", "auth_config": None}) in api.calls

    api = FakeDockerAPI(images=set(), pull_error="pull access denied for acme/secret")
    with pytest.raises(ExecutorError) as info:
        await DockerExecutor(NODE, client=api).run(
            make_request(tmp_path, params={"Image": "acme/secret"}))
    assert str(info.value) == ("image acme/secret is not available locally and could not be "
                               "pulled: pull access denied for acme/secret")
    assert "Engines.Types.Docker.Registries" in info.value.hint
    assert "create" not in api.names()


async def test_oom_kill_is_a_failure_and_exit_codes_are_results(tmp_path: Path) -> None:
    api = FakeDockerAPI(exit_code=137, oom=True)
    executor = DockerExecutor(NODE, client=api)
    with pytest.raises(ExecutorError, match="memory limit exceeded") as info:
        await executor.run(make_request(tmp_path, resources=Resources(memory=64_000_000)))
    assert info.value.details == {"Reason": "memory"}
    assert executor.reaper.wait_idle(5)
    assert api.names()[-1] == "remove"  # removed all the same

    api = FakeDockerAPI(exit_code=3, frames=[])
    result = await DockerExecutor(NODE, client=api).run(make_request(tmp_path))
    assert result.exit_code == 3 and result.stdout == ""


async def test_the_outcome_does_not_wait_for_the_container_removal(tmp_path: Path) -> None:
    """The engine's removal of a finished container happens after the run has answered
    (issue 15)."""
    import threading

    release = threading.Event()

    class SlowRemoval(FakeDockerAPI):
        def remove_container(self, container: str, v: bool = False,
                             force: bool = False) -> None:
            assert release.wait(10), "the test never released the removal"
            super().remove_container(container, v=v, force=force)

    api = SlowRemoval()
    executor = DockerExecutor(NODE, client=api)
    result = await executor.run(make_request(tmp_path))
    assert result.exit_code == 0
    assert "remove" not in api.names()  # still held: the run answered first
    assert not executor.reaper.wait_idle(0.05)
    release.set()
    assert executor.reaper.wait_idle(5)
    assert api.names()[-1] == "remove"
