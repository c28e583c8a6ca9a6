"""The docker engine's params and names (reference §4.1): `parse_spec` validates the engine
params into a `DockerSpec`; `network_problems`/`network_mode` map `Task.Network` onto Docker
network modes (HTTP is served by `executors/docker_http.py`); `container_name` names an
execution's container and `LABEL_*` label it; `explain` gives the engine's text of an API error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from bacalhau.errors import ExecutorError
from bacalhau.models import NetworkConfig, SpecConfig
from bacalhau.models.ids import short_id

LABEL_EXECUTOR = "bacalhau-executor"
LABEL_NODE = "bacalhau-nodeID"
LABEL_JOB = "bacalhau-jobID"
LABEL_EXECUTION = "bacalhau-executionID"
LABEL_JOB_TYPE = "bacalhau-jobType"

TEST_IMAGE = "bacalhau-py/test:busybox"
"""The image `scripts/build_test_image.sh` builds (busybox-static, no registry needed)."""

_NETWORK_MODES = {"": "bridge", "default": "bridge", "bridge": "bridge", "none": "none",
                  "host": "host", "full": "host"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(slots=True)
class DockerSpec:
    """The engine params, validated."""

    image: str
    entrypoint: list[str] | None
    parameters: list[str] | None
    env: list[tuple[str, str]]
    working_dir: str


def _str_list(value: Any) -> list[str] | None:
    """A list of strings (None and "" count as empty); None when it is something else."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_spec(engine: SpecConfig) -> tuple[DockerSpec | None, list[str]]:
    """(spec, problems); problems name the param and say what is expected."""
    problems: list[str] = []
    if engine.type.lower() != "docker":
        problems.append(f'engine type "{engine.type}" is not "docker"')
    image = engine.param("Image")
    if not isinstance(image, str) or not image.strip():
        problems.append('Engine.Params.Image is required: an image name such as '
                        f'"ubuntu:24.04" or "{TEST_IMAGE}"')
        image = ""
    elif any(c.isspace() for c in image.strip()):
        problems.append(f'Engine.Params.Image "{image}" must not contain spaces')
    entrypoint = _str_list(engine.param("Entrypoint"))
    if entrypoint is None:
        problems.append("Engine.Params.Entrypoint must be a list of strings")
    parameters = _str_list(engine.param("Parameters"))
    if parameters is None:
        problems.append("Engine.Params.Parameters must be a list of strings")
    env: list[tuple[str, str]] = []
    raw_env = _str_list(engine.param("EnvironmentVariables"))
    if raw_env is None:
        problems.append('Engine.Params.EnvironmentVariables must be a list of "NAME=value" '
                        "strings")
    else:
        for item in raw_env:
            name, sep, value = item.partition("=")
            if not sep or not _ENV_NAME.match(name):
                problems.append(f'Engine.Params.EnvironmentVariables: "{item}" is not '
                                '"NAME=value"')
            elif name.upper().startswith("BACALHAU_"):
                problems.append(f"Engine.Params.EnvironmentVariables: {name} is refused: "
                                "names starting with BACALHAU_ are reserved for the system")
            else:
                env.append((name, value))
    working_dir = engine.param("WorkingDirectory")
    if working_dir is None:
        working_dir = ""
    if not isinstance(working_dir, str):
        problems.append("Engine.Params.WorkingDirectory must be a string")
        working_dir = ""
    elif working_dir and not working_dir.startswith("/"):
        problems.append(f'Engine.Params.WorkingDirectory "{working_dir}" must be an absolute '
                        "path")
    if problems:
        return None, problems
    return DockerSpec(image=image.strip(), entrypoint=entrypoint or None,
                      parameters=parameters or None, env=env, working_dir=working_dir), []


def network_problems(network: NetworkConfig | None) -> list[str]:
    """Why this engine cannot give the task its network type and ports (empty when it can;
    the domains of Network HTTP are checked by `docker_http.HTTPSettings`)."""
    if network is None:
        return []
    kind = (network.type or "").lower()
    problems = []
    if kind not in _NETWORK_MODES and kind != "http":
        problems.append(f'this node does not know Network type "{network.type}"')
    if network.ports:
        problems.append("this node does not support Network.Ports with the docker engine yet")
    return problems


def network_mode(network: NetworkConfig | None) -> str:
    """The Docker network mode of Network None/Host/Full/Default/Bridge (HTTP runs on the
    execution's own internal network, `docker_http.HTTPNetwork.name`)."""
    kind = ((network.type if network else "") or "").lower()
    mode = _NETWORK_MODES.get(kind)
    if mode is None:
        if kind == "http":
            raise ExecutorError("Network HTTP needs the execution's internal network")
        raise ExecutorError(network_problems(network)[0] if network else "bad network")
    return mode


def container_name(node_id: str, job_id: str, execution_id: str) -> str:
    node = _NAME_UNSAFE.sub("-", short_id(node_id)) or "node"
    return f"bacalhau-{node}-{_NAME_UNSAFE.sub('-', job_id)}-" \
           f"{_NAME_UNSAFE.sub('-', execution_id)}"


def target_path(path: str) -> str:
    """`path` as an absolute container path; `..` is refused."""
    normalized = str(PurePosixPath("/", path))
    if ".." in PurePosixPath(normalized).parts:
        raise ExecutorError(f'path "{path}" must not contain ".."')
    return normalized


def explain(exc: Exception) -> str:
    """The engine's own explanation of an APIError (or the exception's text)."""
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return str(text).strip()
